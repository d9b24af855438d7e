/*
 * xs-tree.h - the in-memory xenstore tree of the test xenstore server
 * (xs-server): nodes, their values, permission lists and generation
 * counters, path validation, and the permission rule of xenstored.
 * Owns nothing global: every tree is reached through its root pointer.
 */
#ifndef XS_TREE_H
#define XS_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Access bits, as xenstored computes them for a connection. */
#define XS_ACC_READ 1u
#define XS_ACC_WRITE 2u
#define XS_ACC_OWNER 4u

/* One entry of a node's permission list: 'n', 'r', 'w' or 'b' + domid. */
struct xs_perm {
    unsigned int id;
    char access;
};

struct xs_node {
    char *name; /* last path component; "" for the root */
    char *value;
    size_t len;
    struct xs_perm *perms; /* perms[0] is the owner and the default */
    unsigned int nperms;
    struct xs_node **children; /* in creation order, as xenstored keeps */
    size_t nchildren;
    size_t capchildren;
    struct xs_node *parent;
    uint64_t gen; /* changes when value, perms or the child list change */
};

/* Who is asking: a domain id and whether it is privileged (dom0). */
struct xs_ident {
    unsigned int id;
    bool priv;
};

struct xs_node *xs_node_new(const char *name, size_t namelen,
                            const struct xs_perm *perms, unsigned int nperms);
void xs_node_free(struct xs_node *n);
struct xs_node *xs_node_clone(const struct xs_node *n, struct xs_node *parent);
int xs_node_add_child(struct xs_node *parent, struct xs_node *child);
void xs_node_remove_child(struct xs_node *parent, struct xs_node *child);
int xs_node_set_value(struct xs_node *n, const char *data, size_t len);
int xs_node_set_perms(struct xs_node *n, const struct xs_perm *perms,
                      unsigned int nperms);

/* Absolute path lookup; NULL if any component is missing. */
struct xs_node *xs_tree_lookup(struct xs_node *root, const char *path);
/* The deepest existing node on the way to path (at least the root). */
struct xs_node *xs_tree_nearest(struct xs_node *root, const char *path);

/* xenstored's perm_for_conn(): access bits ident has on n. */
unsigned int xs_perm_for(const struct xs_node *n, const struct xs_ident *who);

/* "r5" -> {5, 'r'}; returns false when malformed. */
bool xs_perm_parse(const char *s, struct xs_perm *out);

/* True if s is a well-formed absolute node path ("/", "/a/b"). */
bool xs_path_valid(const char *s);
/* True if child is path or lies below it. */
bool xs_path_is_at_or_below(const char *child, const char *path);

#endif
