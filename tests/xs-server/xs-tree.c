/*
 * xs-tree.c - the in-memory xenstore tree of the test xenstore server:
 * node allocation, deep copies (transactions work on one), child lists,
 * path lookup and validation, and xenstored's permission rule.
 */
#include "xs-tree.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct xs_node *xs_node_new(const char *name, size_t namelen,
                            const struct xs_perm *perms, unsigned int nperms)
{
    struct xs_node *n = calloc(1, sizeof(*n));

    if (!n)
        return NULL;
    n->name = strndup(name, namelen);
    n->value = malloc(1);
    n->perms = calloc(nperms ? nperms : 1, sizeof(*perms));
    if (!n->name || !n->value || !n->perms) {
        xs_node_free(n);
        return NULL;
    }
    if (nperms)
        memcpy(n->perms, perms, nperms * sizeof(*perms));
    n->nperms = nperms;
    return n;
}

void xs_node_free(struct xs_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nchildren; i++)
        xs_node_free(n->children[i]);
    free(n->children);
    free(n->name);
    free(n->value);
    free(n->perms);
    free(n);
}

struct xs_node *xs_node_clone(const struct xs_node *n, struct xs_node *parent)
{
    struct xs_node *c =
        xs_node_new(n->name, strlen(n->name), n->perms, n->nperms);

    if (!c)
        return NULL;
    c->parent = parent;
    c->gen = n->gen;
    if (xs_node_set_value(c, n->value, n->len) < 0)
        goto fail;
    if (n->nchildren) {
        c->children = calloc(n->nchildren, sizeof(*c->children));
        if (!c->children)
            goto fail;
        c->capchildren = n->nchildren;
        for (size_t i = 0; i < n->nchildren; i++) {
            c->children[i] = xs_node_clone(n->children[i], c);
            if (!c->children[i])
                goto fail;
            c->nchildren++;
        }
    }
    return c;
fail:
    xs_node_free(c);
    return NULL;
}

int xs_node_add_child(struct xs_node *parent, struct xs_node *child)
{
    if (parent->nchildren == parent->capchildren) {
        size_t cap = parent->capchildren ? parent->capchildren * 2 : 4;
        struct xs_node **p =
            realloc(parent->children, cap * sizeof(*parent->children));

        if (!p)
            return -ENOMEM;
        parent->children = p;
        parent->capchildren = cap;
    }
    parent->children[parent->nchildren++] = child;
    child->parent = parent;
    return 0;
}

void xs_node_remove_child(struct xs_node *parent, struct xs_node *child)
{
    for (size_t i = 0; i < parent->nchildren; i++) {
        if (parent->children[i] == child) {
            memmove(&parent->children[i], &parent->children[i + 1],
                    (parent->nchildren - i - 1) * sizeof(*parent->children));
            parent->nchildren--;
            child->parent = NULL;
            return;
        }
    }
}

int xs_node_set_value(struct xs_node *n, const char *data, size_t len)
{
    char *v = malloc(len + 1);

    if (!v)
        return -ENOMEM;
    if (len)
        memcpy(v, data, len);
    v[len] = '\0';
    free(n->value);
    n->value = v;
    n->len = len;
    return 0;
}

int xs_node_set_perms(struct xs_node *n, const struct xs_perm *perms,
                      unsigned int nperms)
{
    struct xs_perm *p = calloc(nperms, sizeof(*p));

    if (!p)
        return -ENOMEM;
    memcpy(p, perms, nperms * sizeof(*p));
    free(n->perms);
    n->perms = p;
    n->nperms = nperms;
    return 0;
}

static struct xs_node *find_child(struct xs_node *n, const char *name,
                                  size_t len)
{
    for (size_t i = 0; i < n->nchildren; i++) {
        const char *cn = n->children[i]->name;

        if (strlen(cn) == len && memcmp(cn, name, len) == 0)
            return n->children[i];
    }
    return NULL;
}

/* Walks path; *missing is set when a component was not found. */
static struct xs_node *walk(struct xs_node *root, const char *path,
                            bool *missing)
{
    struct xs_node *n = root;
    const char *p = path;

    *missing = false;
    while (*p == '/')
        p++;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        struct xs_node *c = find_child(n, p, len);

        if (!c) {
            *missing = true;
            return n;
        }
        n = c;
        p += len;
        while (*p == '/')
            p++;
    }
    return n;
}

struct xs_node *xs_tree_lookup(struct xs_node *root, const char *path)
{
    bool missing;
    struct xs_node *n = walk(root, path, &missing);

    return missing ? NULL : n;
}

struct xs_node *xs_tree_nearest(struct xs_node *root, const char *path)
{
    bool missing;

    return walk(root, path, &missing);
}

unsigned int xs_perm_for(const struct xs_node *n, const struct xs_ident *who)
{
    const unsigned int all = XS_ACC_READ | XS_ACC_WRITE | XS_ACC_OWNER;
    char acc;

    if (who->priv || n->nperms == 0 || n->perms[0].id == who->id)
        return all;
    acc = n->perms[0].access;
    for (unsigned int i = 1; i < n->nperms; i++) {
        if (n->perms[i].id == who->id) {
            acc = n->perms[i].access;
            break;
        }
    }
    switch (acc) {
    case 'r':
        return XS_ACC_READ;
    case 'w':
        return XS_ACC_WRITE;
    case 'b':
        return XS_ACC_READ | XS_ACC_WRITE;
    default:
        return 0;
    }
}

bool xs_perm_parse(const char *s, struct xs_perm *out)
{
    unsigned long v = 0;

    if (!strchr("nrwb", s[0]) || s[0] == '\0' || s[1] == '\0')
        return false;
    for (const char *p = s + 1; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > UINT_MAX)
            return false;
    }
    out->access = s[0];
    out->id = (unsigned int)v;
    return true;
}

bool xs_path_valid(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || s[0] != '/')
        return false;
    if (len == 1)
        return true;
    if (s[len - 1] == '/')
        return false;
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("-/_@", *p))
            return false;
        if (p[0] == '/' && p[1] == '/')
            return false;
    }
    return true;
}

bool xs_path_is_at_or_below(const char *child, const char *path)
{
    size_t len = strlen(path);

    if (strcmp(path, "/") == 0)
        return child[0] == '/';
    return strncmp(child, path, len) == 0 &&
           (child[len] == '\0' || child[len] == '/');
}
