/*
 * xs-server.c - a small xenstore daemon for tests.  It speaks the real
 * xenstore wire protocol (xen/io/xs_wire.h) over unix sockets so that code
 * under test links the real libxenstore and reaches it via XENSTORED_PATH.
 * This file owns the command line, the listening sockets, the poll() event
 * loop, per-connection buffering, request dispatch, watches, transactions
 * and the introduced-domain list.  The tree itself lives in xs-tree.c.
 *
 * Connections accepted on --socket are dom0 (privileged); connections on a
 * --domain-socket DOMID:PATH are that domain (unprivileged).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <xen/io/xs_wire.h>

#include "xs-tree.h"

#define HDR_LEN sizeof(struct xsd_sockmsg)
#define MAX_OUT_QUEUE (4u << 20) /* a client that never reads is dropped */
#define MAX_WATCHES 256          /* per connection */
#define MAX_TRANSACTIONS 32      /* per connection */

struct watch {
    char *path; /* absolute, or "@introduceDomain" / "@releaseDomain" */
    char *token;
    bool relative; /* registered relative: events are reported relative */
    struct watch *next;
};

struct access {
    char *path;
    uint64_t gen; /* 0: did not exist */
};

struct txop {
    uint32_t type; /* XS_WRITE, XS_MKDIR, XS_RM, XS_SET_PERMS */
    char *path;
    char *data;
    size_t len;
    struct xs_perm *perms;
    unsigned int nperms;
};

struct tx {
    uint32_t id;
    struct xs_node *root; /* private copy of the tree */
    struct access *acc;
    size_t nacc, capacc;
    struct txop *ops;
    size_t nops, capops;
    struct tx *next;
};

struct conn {
    int fd;
    struct xs_ident who;
    unsigned char in[HDR_LEN + XENSTORE_PAYLOAD_MAX];
    size_t inlen;
    unsigned char *out;
    size_t outlen, outcap;
    struct watch *watches;
    unsigned int nwatches;
    struct tx *txs;
    unsigned int ntxs;
    bool dead;
    struct conn *next;
};

struct listener {
    int fd;
    char *path;
    struct xs_ident who;
};

struct domain {
    unsigned int id;
    bool introduced;
};

/* Everything the daemon owns; main() holds the only instance. */
struct server {
    struct xs_node *root;
    uint64_t gen;
    uint32_t next_txid;
    struct listener *listeners;
    size_t nlisteners;
    struct conn *conns;
    struct domain *domains;
    size_t ndomains;
    bool verbose;
    int sigfd;
    const char *pidfile;
};

/* A parsed request handed to the handlers. */
struct req {
    struct xsd_sockmsg hdr;
    char *body; /* hdr.len bytes, NUL-terminated copy */
};

static void logv(const struct server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void logv(const struct server *s, const char *fmt, ...)
{
    va_list ap;

    if (!s->verbose)
        return;
    va_start(ap, fmt);
    fputs("xs-server: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static const char *errname(int err)
{
    for (size_t i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)
        if (xsd_errors[i].errnum == err)
            return xsd_errors[i].errstring;
    return "EINVAL";
}

/* ---- output ---------------------------------------------------------- */

static void conn_flush(struct conn *c)
{
    while (c->outlen && !c->dead) {
        ssize_t n = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                c->dead = true;
            return;
        }
        memmove(c->out, c->out + n, c->outlen - (size_t)n);
        c->outlen -= (size_t)n;
    }
}

static void conn_send(struct conn *c, uint32_t type, uint32_t req_id,
                      uint32_t tx_id, const void *data, size_t len)
{
    struct xsd_sockmsg h = {
        .type = type, .req_id = req_id, .tx_id = tx_id, .len = (uint32_t)len};
    size_t need = c->outlen + HDR_LEN + len;

    if (c->dead)
        return;
    if (need > MAX_OUT_QUEUE) {
        c->dead = true;
        return;
    }
    if (need > c->outcap) {
        size_t cap = c->outcap ? c->outcap : 8192;
        unsigned char *p;

        while (cap < need)
            cap *= 2;
        p = realloc(c->out, cap);
        if (!p) {
            c->dead = true;
            return;
        }
        c->out = p;
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, &h, HDR_LEN);
    if (len)
        memcpy(c->out + c->outlen + HDR_LEN, data, len);
    c->outlen = need;
    conn_flush(c);
}

static void reply(struct conn *c, const struct req *r, const void *data,
                  size_t len)
{
    conn_send(c, r->hdr.type, r->hdr.req_id, r->hdr.tx_id, data, len);
}

static void reply_ok(struct conn *c, const struct req *r)
{
    reply(c, r, "OK", 3);
}

static void reply_err(struct server *s, struct conn *c, const struct req *r,
                      int err)
{
    const char *e = errname(err);

    logv(s, "fd %d dom%u: type %u -> %s", c->fd, c->who.id, r->hdr.type, e);
    conn_send(c, XS_ERROR, r->hdr.req_id, r->hdr.tx_id, e, strlen(e) + 1);
}

/* ---- watches --------------------------------------------------------- */

static void send_event(struct conn *c, const struct watch *w, const char *path)
{
    char buf[XENSTORE_PAYLOAD_MAX + 64];
    const char *p = path;
    int n;

    if (w->relative) {
        /* w->path is /local/domain/N/rel: report path relative to it. */
        char prefix[64];
        size_t pl;

        snprintf(prefix, sizeof(prefix), "/local/domain/%u/", c->who.id);
        pl = strlen(prefix);
        if (strncmp(path, prefix, pl) == 0)
            p = path + pl;
    }
    n = snprintf(buf, sizeof(buf), "%s%c%s", p, '\0', w->token);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return;
    conn_send(c, XS_WATCH_EVENT, 0, 0, buf, (size_t)n + 1);
}

/*
 * A node at path changed (n: the node, or what it was before removal;
 * old: its previous permissions after a set-perms, else NULL).  Watches at
 * or above path fire with path, for watchers that may read the node.
 */
static void fire_watches(struct server *s, const char *path,
                         const struct xs_node *n, const struct xs_node *old)
{
    for (struct conn *c = s->conns; c; c = c->next) {
        if (c->dead)
            continue;
        if (!(xs_perm_for(n, &c->who) & XS_ACC_READ) &&
            !(old && (xs_perm_for(old, &c->who) & XS_ACC_READ)))
            continue;
        for (struct watch *w = c->watches; w; w = w->next)
            if (w->path[0] == '/' && xs_path_is_at_or_below(path, w->path))
                send_event(c, w, path);
    }
}

/* Before removing the subtree at path: watches strictly below it fire. */
static void fire_watches_below(struct server *s, struct xs_node *root,
                               const char *path)
{
    for (struct conn *c = s->conns; c; c = c->next) {
        if (c->dead)
            continue;
        for (struct watch *w = c->watches; w; w = w->next) {
            struct xs_node *n;

            if (w->path[0] != '/' || strcmp(w->path, path) == 0 ||
                !xs_path_is_at_or_below(w->path, path))
                continue;
            n = xs_tree_lookup(root, w->path);
            if (n && (xs_perm_for(n, &c->who) & XS_ACC_READ))
                send_event(c, w, w->path);
        }
    }
}

/* @introduceDomain / @releaseDomain: only privileged watchers see them. */
static void fire_special(struct server *s, const char *name)
{
    for (struct conn *c = s->conns; c; c = c->next) {
        if (c->dead || !c->who.priv)
            continue;
        for (struct watch *w = c->watches; w; w = w->next)
            if (strcmp(w->path, name) == 0)
                send_event(c, w, name);
    }
}

static void watch_free(struct watch *w)
{
    free(w->path);
    free(w->token);
    free(w);
}

static void conn_drop_watches(struct conn *c)
{
    while (c->watches) {
        struct watch *w = c->watches;

        c->watches = w->next;
        watch_free(w);
    }
    c->nwatches = 0;
}

/* ---- transactions ---------------------------------------------------- */

static void txop_clear(struct txop *op)
{
    free(op->path);
    free(op->data);
    free(op->perms);
}

static void tx_free(struct tx *t)
{
    xs_node_free(t->root);
    for (size_t i = 0; i < t->nacc; i++)
        free(t->acc[i].path);
    free(t->acc);
    for (size_t i = 0; i < t->nops; i++)
        txop_clear(&t->ops[i]);
    free(t->ops);
    free(t);
}

static void conn_drop_txs(struct conn *c)
{
    while (c->txs) {
        struct tx *t = c->txs;

        c->txs = t->next;
        tx_free(t);
    }
    c->ntxs = 0;
}

/*
 * Notes n's generation (0: missing) under path unless path was seen before.
 * Only the first sighting counts: it is the state the transaction started
 * from, which the main tree must still have at commit.  Every operation
 * notes a node before it changes it, so the copy still shows that state.
 */
static int tx_note_node(struct tx *t, const char *path, const struct xs_node *n)
{
    for (size_t i = 0; i < t->nacc; i++)
        if (strcmp(t->acc[i].path, path) == 0)
            return 0;
    if (t->nacc == t->capacc) {
        size_t cap = t->capacc ? t->capacc * 2 : 16;
        struct access *a = realloc(t->acc, cap * sizeof(*a));

        if (!a)
            return -ENOMEM;
        t->acc = a;
        t->capacc = cap;
    }
    t->acc[t->nacc].path = strdup(path);
    if (!t->acc[t->nacc].path)
        return -ENOMEM;
    t->acc[t->nacc].gen = n ? n->gen : 0;
    t->nacc++;
    return 0;
}

/* Notes the generation path has in the transaction's copy, if first seen. */
static int tx_note(struct tx *t, const char *path)
{
    if (!t)
        return 0;
    return tx_note_node(t, path, xs_tree_lookup(t->root, path));
}

/*
 * Notes every node below n, whose path is path[0..len), before a removal
 * takes them out of the copy, as xenstored's delete_node() accesses each:
 * a change anywhere in the removed subtree by someone else conflicts, and
 * a node the transaction recreates there later is compared with the state
 * it had before the removal, not with "missing" (which never matches).
 * path has room for XENSTORE_ABS_PATH_MAX + 1 bytes.
 */
static int tx_note_subtree(struct tx *t, const struct xs_node *n, char *path,
                           size_t len)
{
    for (size_t i = 0; i < n->nchildren; i++) {
        const struct xs_node *c = n->children[i];
        int k = snprintf(path + len, XENSTORE_ABS_PATH_MAX + 1 - len, "/%s",
                         c->name);
        int rc;

        if (k < 0 || (size_t)k > XENSTORE_ABS_PATH_MAX - len)
            return -E2BIG;
        if ((rc = tx_note_node(t, path, c)) < 0 ||
            (rc = tx_note_subtree(t, c, path, len + (size_t)k)) < 0)
            return rc;
    }
    path[len] = '\0';
    return 0;
}

/* Notes path and every ancestor of it up to the first existing one. */
static int tx_note_chain(struct tx *t, const char *path)
{
    char buf[XENSTORE_ABS_PATH_MAX + 1];
    int rc;

    if (!t)
        return 0;
    snprintf(buf, sizeof(buf), "%s", path);
    for (;;) {
        char *slash;

        rc = tx_note(t, buf);
        if (rc < 0 || xs_tree_lookup(t->root, buf))
            return rc;
        slash = strrchr(buf, '/');
        if (!slash)
            return 0;
        if (slash == buf)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
}

static int tx_log(struct tx *t, const struct txop *op)
{
    struct txop *o;

    if (t->nops == t->capops) {
        size_t cap = t->capops ? t->capops * 2 : 8;
        struct txop *p = realloc(t->ops, cap * sizeof(*p));

        if (!p)
            return -ENOMEM;
        t->ops = p;
        t->capops = cap;
    }
    o = &t->ops[t->nops];
    memset(o, 0, sizeof(*o));
    o->type = op->type;
    o->path = strdup(op->path);
    o->len = op->len;
    o->data = malloc(op->len + 1);
    if (op->nperms) {
        o->perms = calloc(op->nperms, sizeof(*o->perms));
        if (o->perms)
            memcpy(o->perms, op->perms, op->nperms * sizeof(*o->perms));
        o->nperms = op->nperms;
    }
    if (!o->path || !o->data || (op->nperms && !o->perms)) {
        txop_clear(o);
        return -ENOMEM;
    }
    if (op->len)
        memcpy(o->data, op->data, op->len);
    t->nops++;
    return 0;
}

static struct tx *conn_find_tx(struct conn *c, uint32_t id)
{
    for (struct tx *t = c->txs; t; t = t->next)
        if (t->id == id)
            return t;
    return NULL;
}

/* ---- tree operations (on the main tree, or a transaction's copy) ----- */

/*
 * Finds path for an access needing the bits in want.  A missing node gives
 * ENOENT when its nearest existing ancestor grants some of want (so a
 * create needs w there), else EACCES: nothing leaks about hidden nodes.
 */
static int get_node(struct xs_node *root, const struct xs_ident *who,
                    const char *path, unsigned int want, struct xs_node **out)
{
    struct xs_node *n = xs_tree_lookup(root, path);

    *out = n;
    if (!n) {
        struct xs_node *a = xs_tree_nearest(root, path);

        return (xs_perm_for(a, who) & want) ? -ENOENT : -EACCES;
    }
    if ((xs_perm_for(n, who) & want) != want)
        return -EACCES;
    return 0;
}

static void bump(struct server *s, struct xs_node *n)
{
    n->gen = ++s->gen;
}

/*
 * Creates path and missing ancestors; each new node inherits its parent's
 * permissions, except that an unprivileged creator becomes the owner.
 * The nearest existing ancestor must be writable.
 */
static int create_path(struct server *s, struct xs_node *root,
                       const struct xs_ident *who, const char *path,
                       struct xs_node **out)
{
    struct xs_node *n = xs_tree_nearest(root, path);
    const char *p;
    size_t done;

    if (!(xs_perm_for(n, who) & XS_ACC_WRITE))
        return -EACCES;
    /* Skip the components that exist: rebuild n's path length. */
    done = 0;
    for (struct xs_node *a = n; a->parent; a = a->parent)
        done += strlen(a->name) + 1;
    p = path + done;
    while (*p == '/')
        p++;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        struct xs_node *c = xs_node_new(p, len, n->perms, n->nperms);

        if (!c)
            return -ENOMEM;
        if (!who->priv)
            c->perms[0].id = who->id;
        if (xs_node_add_child(n, c) < 0) {
            xs_node_free(c);
            return -ENOMEM;
        }
        bump(s, n);
        bump(s, c);
        n = c;
        p += len;
        while (*p == '/')
            p++;
    }
    *out = n;
    return 0;
}

/*
 * Applies one modifying operation to root.  fire: root is the main tree,
 * so watches fire.  t: the transaction whose copy root is (records reads).
 */
static int apply_op(struct server *s, struct xs_node *root,
                    const struct xs_ident *who, const struct txop *op,
                    struct tx *t, bool fire)
{
    struct xs_node *n;
    struct xs_node old = {0};
    int rc;

    switch (op->type) {
    case XS_WRITE:
    case XS_MKDIR:
        if ((rc = tx_note_chain(t, op->path)) < 0)
            return rc;
        rc = get_node(root, who, op->path, XS_ACC_WRITE, &n);
        if (rc == -ENOENT) {
            rc = create_path(s, root, who, op->path, &n);
            if (rc < 0)
                return rc;
            if (op->type == XS_WRITE &&
                xs_node_set_value(n, op->data, op->len) < 0)
                return -ENOMEM;
        } else if (rc < 0) {
            return rc;
        } else if (op->type == XS_MKDIR) {
            return 0; /* exists already: nothing changes, nothing fires */
        } else {
            if (xs_node_set_value(n, op->data, op->len) < 0)
                return -ENOMEM;
            bump(s, n);
        }
        if (fire)
            fire_watches(s, op->path, n, NULL);
        return 0;
    case XS_RM: {
        struct xs_node *parent;

        if (strcmp(op->path, "/") == 0)
            return -EINVAL;
        if ((rc = tx_note_chain(t, op->path)) < 0)
            return rc;
        rc = get_node(root, who, op->path, XS_ACC_WRITE, &n);
        if (rc == -ENOENT) {
            /* Like xenstored: removing a missing child of a node is OK. */
            char buf[XENSTORE_ABS_PATH_MAX + 1];
            char *slash;

            snprintf(buf, sizeof(buf), "%s", op->path);
            slash = strrchr(buf, '/');
            if (slash == buf)
                slash[1] = '\0';
            else
                *slash = '\0';
            return xs_tree_lookup(root, buf) ? 0 : -ENOENT;
        }
        if (rc < 0)
            return rc;
        parent = n->parent;
        if (t) {
            char buf[XENSTORE_ABS_PATH_MAX + 1];
            char *slash;

            snprintf(buf, sizeof(buf), "%s", op->path);
            if ((rc = tx_note_subtree(t, n, buf, strlen(buf))) < 0)
                return rc;
            slash = strrchr(buf, '/');
            if (slash == buf)
                slash[1] = '\0';
            else
                *slash = '\0';
            if ((rc = tx_note(t, buf)) < 0)
                return rc;
        }
        if (fire) {
            fire_watches_below(s, root, op->path);
            fire_watches(s, op->path, n, NULL);
        }
        xs_node_remove_child(parent, n);
        xs_node_free(n);
        bump(s, parent);
        return 0;
    }
    case XS_SET_PERMS:
        if ((rc = tx_note(t, op->path)) < 0)
            return rc;
        rc = get_node(root, who, op->path, XS_ACC_WRITE | XS_ACC_OWNER, &n);
        if (rc < 0)
            return rc;
        /* An unprivileged owner may not give the node away. */
        if (!who->priv && op->perms[0].id != n->perms[0].id)
            return -EPERM;
        old.perms = n->perms;
        old.nperms = n->nperms;
        n->perms = NULL;
        if (xs_node_set_perms(n, op->perms, op->nperms) < 0) {
            n->perms = old.perms;
            return -ENOMEM;
        }
        bump(s, n);
        if (fire)
            fire_watches(s, op->path, n, &old);
        free(old.perms);
        return 0;
    default:
        return -EINVAL;
    }
}

/* ---- request parsing helpers ----------------------------------------- */

/* Splits the body into NUL-terminated strings; returns their count. */
static int split(const struct req *r, const char **v, int max)
{
    int n = 0;
    size_t off = 0;

    while (off < r->hdr.len) {
        const char *str = r->body + off;
        size_t l = strnlen(str, r->hdr.len - off);

        if (off + l == r->hdr.len)
            return -1; /* last string not terminated */
        if (n == max)
            return -1;
        v[n++] = str;
        off += l + 1;
    }
    return n;
}

/* Makes an absolute path of a request path; NULL if malformed. */
static char *canon(const struct conn *c, const char *in, bool *relative)
{
    char *out;

    *relative = false;
    if (in[0] == '/') {
        if (strlen(in) > XENSTORE_ABS_PATH_MAX)
            return NULL;
        out = strdup(in);
    } else {
        /* "@..." names only special watch paths, never a node. */
        if (in[0] == '\0' || in[0] == '@' || strlen(in) > XENSTORE_REL_PATH_MAX)
            return NULL;
        if (asprintf(&out, "/local/domain/%u/%s", c->who.id, in) < 0)
            return NULL;
        *relative = true;
    }
    if (out && !xs_path_valid(out)) {
        free(out);
        return NULL;
    }
    return out;
}

static bool parse_uint(const char *s, unsigned int *out)
{
    char *end;
    unsigned long v;

    if (s[0] < '0' || s[0] > '9')
        return false;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v > UINT_MAX)
        return false;
    *out = (unsigned int)v;
    return true;
}

static struct domain *find_domain(struct server *s, unsigned int id)
{
    for (size_t i = 0; i < s->ndomains; i++)
        if (s->domains[i].id == id)
            return &s->domains[i];
    return NULL;
}

static int add_domain(struct server *s, unsigned int id, bool introduced)
{
    struct domain *d = find_domain(s, id);

    if (!d) {
        d = realloc(s->domains, (s->ndomains + 1) * sizeof(*d));
        if (!d)
            return -ENOMEM;
        s->domains = d;
        d = &s->domains[s->ndomains++];
        d->id = id;
    }
    d->introduced = introduced;
    return 0;
}

/* ---- request handlers ------------------------------------------------ */

/* Handlers return 0 when they replied, or -errno for an error reply. */

static int do_read_like(struct server *s, struct conn *c, const struct req *r,
                        struct tx *t)
{
    const char *v[1];
    struct xs_node *root = t ? t->root : s->root;
    struct xs_node *n;
    bool rel;
    char *path;
    int rc;

    if (split(r, v, 1) != 1 || !(path = canon(c, v[0], &rel)))
        return -EINVAL;
    if ((rc = tx_note(t, path)) < 0)
        goto out;
    rc = get_node(root, &c->who, path, XS_ACC_READ, &n);
    if (rc < 0)
        goto out;
    if (r->hdr.type == XS_READ) {
        reply(c, r, n->value, n->len);
    } else if (r->hdr.type == XS_GET_PERMS) {
        char buf[XENSTORE_PAYLOAD_MAX];
        size_t len = 0;

        for (unsigned int i = 0; i < n->nperms; i++) {
            int k = snprintf(buf + len, sizeof(buf) - len, "%c%u",
                             n->perms[i].access, n->perms[i].id);

            if (k < 0 || (size_t)k >= sizeof(buf) - len) {
                rc = -E2BIG;
                goto out;
            }
            len += (size_t)k + 1;
        }
        reply(c, r, buf, len);
    } else {
        /* XS_DIRECTORY */
        char buf[XENSTORE_PAYLOAD_MAX];
        size_t len = 0;

        for (size_t i = 0; i < n->nchildren; i++) {
            size_t l = strlen(n->children[i]->name) + 1;

            if (len + l > sizeof(buf)) {
                rc = -E2BIG;
                goto out;
            }
            memcpy(buf + len, n->children[i]->name, l);
            len += l;
        }
        reply(c, r, buf, len);
    }
out:
    free(path);
    return rc;
}

static int do_directory_part(struct server *s, struct conn *c,
                             const struct req *r, struct tx *t)
{
    const char *v[2];
    struct xs_node *root = t ? t->root : s->root;
    struct xs_node *n;
    char buf[XENSTORE_PAYLOAD_MAX];
    unsigned int off;
    size_t len, total = 0, pos = 0;
    bool rel;
    char *path;
    int rc, k;

    if (split(r, v, 2) != 2 || !parse_uint(v[1], &off) ||
        !(path = canon(c, v[0], &rel)))
        return -EINVAL;
    if ((rc = tx_note(t, path)) < 0)
        goto out;
    rc = get_node(root, &c->who, path, XS_ACC_READ, &n);
    if (rc < 0)
        goto out;
    k = snprintf(buf, sizeof(buf), "%" PRIu64, n->gen);
    len = (size_t)k + 1;
    /* off is a byte offset into the concatenated child list. */
    for (size_t i = 0; i < n->nchildren; i++)
        total += strlen(n->children[i]->name) + 1;
    for (size_t i = 0; i < n->nchildren; i++) {
        size_t l = strlen(n->children[i]->name) + 1;

        if (pos >= off) {
            if (len + l + 1 > sizeof(buf))
                break;
            memcpy(buf + len, n->children[i]->name, l);
            len += l;
        }
        pos += l;
    }
    if (pos == total)
        buf[len++] = '\0'; /* reached the end: an empty string marks it */
    reply(c, r, buf, len);
out:
    free(path);
    return rc;
}

static int do_modify(struct server *s, struct conn *c, const struct req *r,
                     struct tx *t)
{
    struct txop op = {.type = r->hdr.type};
    struct xs_perm perms[XENSTORE_PAYLOAD_MAX / 2];
    const char *v[XENSTORE_PAYLOAD_MAX / 2];
    bool rel;
    int rc, nv;

    if (r->hdr.type == XS_WRITE) {
        size_t l = strnlen(r->body, r->hdr.len);

        if (l == r->hdr.len)
            return -EINVAL;
        v[0] = r->body;
        op.data = r->body + l + 1;
        op.len = r->hdr.len - l - 1;
    } else if (r->hdr.type == XS_SET_PERMS) {
        nv = split(r, v, XENSTORE_PAYLOAD_MAX / 2);
        if (nv < 2)
            return -EINVAL;
        for (int i = 1; i < nv; i++)
            if (!xs_perm_parse(v[i], &perms[i - 1]))
                return -EINVAL;
        op.perms = perms;
        op.nperms = (unsigned int)(nv - 1);
    } else if (split(r, v, 1) != 1) {
        return -EINVAL;
    }
    op.path = canon(c, v[0], &rel);
    if (!op.path)
        return -EINVAL;
    if (op.data == NULL)
        op.data = "";
    rc = apply_op(s, t ? t->root : s->root, &c->who, &op, t, !t);
    if (rc == 0 && t)
        rc = tx_log(t, &op);
    if (rc == 0)
        reply_ok(c, r);
    free(op.path);
    return rc;
}

static int do_watch(struct server *s, struct conn *c, const struct req *r)
{
    const char *v[2];
    struct watch *w;
    char *path;
    bool rel = false;

    (void)s;
    if (split(r, v, 2) != 2)
        return -EINVAL;
    if (v[0][0] == '@') {
        if (strcmp(v[0], "@introduceDomain") != 0 &&
            strcmp(v[0], "@releaseDomain") != 0)
            return -EINVAL;
        path = strdup(v[0]);
    } else {
        path = canon(c, v[0], &rel);
    }
    if (!path)
        return -EINVAL;
    for (w = c->watches; w; w = w->next) {
        if (strcmp(w->path, path) == 0 && strcmp(w->token, v[1]) == 0) {
            free(path);
            return -EEXIST;
        }
    }
    if (c->nwatches >= MAX_WATCHES) {
        free(path);
        return -E2BIG;
    }
    w = calloc(1, sizeof(*w));
    if (!w || !(w->token = strdup(v[1]))) {
        free(w);
        free(path);
        return -ENOMEM;
    }
    w->path = path;
    w->relative = rel;
    w->next = c->watches;
    c->watches = w;
    c->nwatches++;
    reply_ok(c, r);
    /* xenstored fires every new watch once, with the path as given. */
    send_event(c, w, w->path);
    return 0;
}

static int do_unwatch(struct server *s, struct conn *c, const struct req *r)
{
    const char *v[2];
    char *path;
    bool rel;

    (void)s;
    if (split(r, v, 2) != 2)
        return -EINVAL;
    path = v[0][0] == '@' ? strdup(v[0]) : canon(c, v[0], &rel);
    if (!path)
        return -EINVAL;
    for (struct watch **pp = &c->watches; *pp; pp = &(*pp)->next) {
        struct watch *w = *pp;

        if (strcmp(w->path, path) == 0 && strcmp(w->token, v[1]) == 0) {
            *pp = w->next;
            watch_free(w);
            c->nwatches--;
            free(path);
            reply_ok(c, r);
            return 0;
        }
    }
    free(path);
    return -ENOENT;
}

static int do_tx_start(struct server *s, struct conn *c, const struct req *r)
{
    struct tx *t;
    char buf[16];

    if (r->hdr.tx_id)
        return -EBUSY;
    if (c->ntxs >= MAX_TRANSACTIONS)
        return -ENOSPC;
    t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->root = xs_node_clone(s->root, NULL);
    if (!t->root) {
        free(t);
        return -ENOMEM;
    }
    t->id = s->next_txid++;
    if (s->next_txid == 0)
        s->next_txid = 1;
    t->next = c->txs;
    c->txs = t;
    c->ntxs++;
    snprintf(buf, sizeof(buf), "%u", t->id);
    reply(c, r, buf, strlen(buf) + 1);
    return 0;
}

static int do_tx_end(struct server *s, struct conn *c, const struct req *r)
{
    const char *v[1];
    struct tx *t = NULL;
    struct tx **pp;
    bool commit;
    int rc = 0;

    if (split(r, v, 1) != 1)
        return -EINVAL;
    if (strcmp(v[0], "T") == 0)
        commit = true;
    else if (strcmp(v[0], "F") == 0)
        commit = false;
    else
        return -EINVAL;
    for (pp = &c->txs; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == r->hdr.tx_id) {
            t = *pp;
            *pp = t->next;
            c->ntxs--;
            break;
        }
    }
    if (!t)
        return -ENOENT;
    if (commit) {
        /* Conflict if anything it saw changed in the main tree since. */
        for (size_t i = 0; i < t->nacc; i++) {
            struct xs_node *n = xs_tree_lookup(s->root, t->acc[i].path);

            if ((n ? n->gen : 0) != t->acc[i].gen) {
                logv(s, "tx %u: %s changed, EAGAIN", t->id, t->acc[i].path);
                rc = -EAGAIN;
                break;
            }
        }
        for (size_t i = 0; rc == 0 && i < t->nops; i++) {
            int e = apply_op(s, s->root, &c->who, &t->ops[i], NULL, true);

            if (e < 0)
                logv(s, "tx %u: replay of %s failed (%d)", t->id,
                     t->ops[i].path, e);
        }
    }
    tx_free(t);
    if (rc == 0)
        reply_ok(c, r);
    return rc;
}

static int do_domain_op(struct server *s, struct conn *c, const struct req *r)
{
    const char *v[4];
    unsigned int id;
    struct domain *d;
    char buf[64];
    int nv = split(r, v, 4);

    if (nv < 1 || !parse_uint(v[0], &id))
        return -EINVAL;
    switch (r->hdr.type) {
    case XS_GET_DOMAIN_PATH:
        snprintf(buf, sizeof(buf), "/local/domain/%u", id);
        reply(c, r, buf, strlen(buf) + 1);
        return 0;
    case XS_IS_DOMAIN_INTRODUCED:
        if (!c->who.priv)
            return -EACCES;
        d = find_domain(s, id);
        reply(c, r, (id == 0 || (d && d->introduced)) ? "T" : "F", 2);
        return 0;
    case XS_INTRODUCE:
        if (!c->who.priv)
            return -EACCES;
        if (nv < 3)
            return -EINVAL;
        d = find_domain(s, id);
        if (!d || !d->introduced) {
            if (add_domain(s, id, true) < 0)
                return -ENOMEM;
            reply_ok(c, r);
            fire_special(s, "@introduceDomain");
        } else {
            reply_ok(c, r);
        }
        return 0;
    case XS_RELEASE:
        if (!c->who.priv)
            return -EACCES;
        if (id == 0)
            return -EINVAL;
        d = find_domain(s, id);
        if (!d || !d->introduced)
            return -ENOENT;
        d->introduced = false;
        /* The domain's own connections go away, as in xenstored. */
        for (struct conn *o = s->conns; o; o = o->next)
            if (!o->who.priv && o->who.id == id)
                o->dead = true;
        reply_ok(c, r);
        fire_special(s, "@releaseDomain");
        return 0;
    default:
        return -EINVAL;
    }
}

static void dispatch(struct server *s, struct conn *c, const struct req *r)
{
    struct tx *t = NULL;
    int rc;

    logv(s, "fd %d dom%u: type %u len %u tx %u", c->fd, c->who.id, r->hdr.type,
         r->hdr.len, r->hdr.tx_id);
    switch (r->hdr.type) {
    case XS_READ:
    case XS_DIRECTORY:
    case XS_GET_PERMS:
    case XS_DIRECTORY_PART:
    case XS_WRITE:
    case XS_MKDIR:
    case XS_RM:
    case XS_SET_PERMS:
        if (r->hdr.tx_id) {
            t = conn_find_tx(c, r->hdr.tx_id);
            if (!t) {
                rc = -ENOENT;
                break;
            }
        }
        if (r->hdr.type == XS_DIRECTORY_PART)
            rc = do_directory_part(s, c, r, t);
        else if (r->hdr.type == XS_READ || r->hdr.type == XS_DIRECTORY ||
                 r->hdr.type == XS_GET_PERMS)
            rc = do_read_like(s, c, r, t);
        else
            rc = do_modify(s, c, r, t);
        break;
    case XS_WATCH:
        rc = do_watch(s, c, r);
        break;
    case XS_UNWATCH:
        rc = do_unwatch(s, c, r);
        break;
    case XS_RESET_WATCHES:
        conn_drop_watches(c);
        conn_drop_txs(c);
        reply_ok(c, r);
        rc = 0;
        break;
    case XS_TRANSACTION_START:
        rc = do_tx_start(s, c, r);
        break;
    case XS_TRANSACTION_END:
        rc = do_tx_end(s, c, r);
        break;
    case XS_GET_DOMAIN_PATH:
    case XS_IS_DOMAIN_INTRODUCED:
    case XS_INTRODUCE:
    case XS_RELEASE:
        rc = do_domain_op(s, c, r);
        break;
    case XS_RESUME:
    case XS_SET_TARGET:
        rc = c->who.priv ? -ENOSYS : -EACCES;
        break;
    case XS_CONTROL:
        rc = c->who.priv ? -ENOSYS : -EACCES;
        break;
    default:
        rc = -ENOSYS; /* XS_WATCH_EVENT, XS_ERROR, unknown types */
        break;
    }
    if (rc < 0)
        reply_err(s, c, r, -rc);
}

/* ---- connections ----------------------------------------------------- */

static void conn_read(struct server *s, struct conn *c)
{
    for (;;) {
        struct xsd_sockmsg h;
        size_t need = HDR_LEN;
        ssize_t n;

        if (c->inlen >= HDR_LEN) {
            memcpy(&h, c->in, HDR_LEN);
            if (h.len > XENSTORE_PAYLOAD_MAX) {
                logv(s, "fd %d: payload %u too long, dropping", c->fd, h.len);
                c->dead = true;
                return;
            }
            need += h.len;
        }
        if (c->inlen < need) {
            n = recv(c->fd, c->in + c->inlen, need - c->inlen, MSG_DONTWAIT);
            if (n == 0) {
                c->dead = true;
                return;
            }
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    c->dead = true;
                return;
            }
            c->inlen += (size_t)n;
            continue;
        }
        /* A whole message. */
        {
            char body[XENSTORE_PAYLOAD_MAX + 1];
            struct req r = {.hdr = h, .body = body};

            memcpy(body, c->in + HDR_LEN, h.len);
            body[h.len] = '\0';
            c->inlen = 0;
            dispatch(s, c, &r);
        }
        if (c->dead)
            return;
    }
}

static void conn_free(struct conn *c)
{
    conn_drop_watches(c);
    conn_drop_txs(c);
    close(c->fd);
    free(c->out);
    free(c);
}

static void do_accept(struct server *s, const struct listener *l)
{
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct conn *c;

        if (fd < 0)
            return;
        if (!l->who.priv) {
            struct domain *d = find_domain(s, l->who.id);

            if (!d || !d->introduced) {
                logv(s, "dom%u is released, refusing", l->who.id);
                close(fd);
                continue;
            }
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            return;
        }
        c->fd = fd;
        c->who = l->who;
        c->next = s->conns;
        s->conns = c;
        logv(s, "fd %d: new dom%u connection", fd, c->who.id);
    }
}

static void reap(struct server *s)
{
    for (struct conn **pp = &s->conns; *pp;) {
        struct conn *c = *pp;

        if (c->dead) {
            logv(s, "fd %d: closed", c->fd);
            *pp = c->next;
            conn_free(c);
        } else {
            pp = &c->next;
        }
    }
}

/* Returns when a termination signal arrives. */
static int event_loop(struct server *s)
{
    struct pollfd *pfd = NULL;
    struct conn **map = NULL;
    size_t cap = 0;
    int ret = 0;

    for (;;) {
        size_t nconn = 0, n = 0, base;

        for (struct conn *c = s->conns; c; c = c->next)
            nconn++;
        if (1 + s->nlisteners + nconn > cap) {
            cap = (1 + s->nlisteners + nconn) * 2;
            free(pfd);
            free(map);
            pfd = calloc(cap, sizeof(*pfd));
            map = calloc(cap, sizeof(*map));
            if (!pfd || !map) {
                ret = -1;
                break;
            }
        }
        pfd[n++] = (struct pollfd){.fd = s->sigfd, .events = POLLIN};
        for (size_t i = 0; i < s->nlisteners; i++)
            pfd[n++] =
                (struct pollfd){.fd = s->listeners[i].fd, .events = POLLIN};
        base = n;
        for (struct conn *c = s->conns; c; c = c->next) {
            map[n] = c;
            pfd[n++] = (struct pollfd){
                .fd = c->fd, .events = POLLIN | (c->outlen ? POLLOUT : 0)};
        }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("xs-server: poll");
            ret = -1;
            break;
        }
        if (pfd[0].revents) {
            struct signalfd_siginfo si;

            if (read(s->sigfd, &si, sizeof(si)) > 0)
                logv(s, "signal %u, exiting", si.ssi_signo);
            break;
        }
        for (size_t i = 0; i < s->nlisteners; i++)
            if (pfd[1 + i].revents & POLLIN)
                do_accept(s, &s->listeners[i]);
        for (size_t i = base; i < n; i++) {
            struct conn *c = map[i];

            if (c->dead)
                continue;
            if (pfd[i].revents & POLLOUT)
                conn_flush(c);
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
                conn_read(s, c);
        }
        reap(s);
    }
    free(pfd);
    free(map);
    return ret;
}

/* ---- setup ----------------------------------------------------------- */

static int make_listener(struct listener *l, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "xs-server: socket path too long: %s\n", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("xs-server: socket");
        return -1;
    }
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, 64) < 0) {
        fprintf(stderr, "xs-server: %s: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    l->fd = fd;
    l->path = strdup(path);
    return l->path ? 0 : -1;
}

static int add_node(struct server *s, const char *path, unsigned int owner,
                    char other)
{
    struct xs_perm p = {.id = owner, .access = other};
    struct xs_ident root = {.id = 0, .priv = true};
    struct xs_node *n;

    if (create_path(s, s->root, &root, path, &n) < 0)
        return -1;
    return xs_node_set_perms(n, &p, 1);
}

static int init_tree(struct server *s)
{
    struct xs_perm p = {.id = 0, .access = 'n'};

    s->root = xs_node_new("", 0, &p, 1);
    if (!s->root)
        return -1;
    bump(s, s->root);
    if (add_node(s, "/local", 0, 'n') < 0 ||
        add_node(s, "/local/domain", 0, 'n') < 0 ||
        add_node(s, "/tool", 0, 'n') < 0)
        return -1;
    return 0;
}

static int write_pidfile(const char *file)
{
    char tmp[PATH_MAX];
    FILE *f;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= (int)sizeof(tmp))
        return -1;
    f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%ld\n", (long)getpid());
    if (fclose(f) != 0 || rename(tmp, file) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fputs(
        "Usage: xs-server --socket PATH [--domain-socket DOMID:PATH]...\n"
        "                 [--pidfile FILE] [--foreground] [--verbose]\n"
        "\n"
        "A small xenstore daemon for tests, speaking the xenstore wire\n"
        "protocol over unix sockets (point libxenstore at it with\n"
        "XENSTORED_PATH=PATH).\n"
        "\n"
        "  -s, --socket PATH          listen on PATH; clients are dom0\n"
        "                             (privileged)\n"
        "  -d, --domain-socket ID:PATH\n"
        "                             listen on PATH; clients are domain ID\n"
        "                             (unprivileged); may be repeated\n"
        "  -p, --pidfile FILE         write the pid to FILE once every\n"
        "                             socket is listening\n"
        "  -f, --foreground           accepted for compatibility: the server\n"
        "                             always stays in the foreground\n"
        "  -v, --verbose              log requests to stderr\n"
        "  -h, --help                 show this help\n"
        "\n"
        "Once all sockets listen (and the pidfile is written), it prints\n"
        "\"ready\" on stdout.  SIGTERM or SIGINT: removes the sockets and\n"
        "the pidfile and exits 0.\n",
        f);
}

static void cleanup(struct server *s)
{
    while (s->conns) {
        struct conn *c = s->conns;

        s->conns = c->next;
        conn_free(c);
    }
    for (size_t i = 0; i < s->nlisteners; i++) {
        close(s->listeners[i].fd);
        unlink(s->listeners[i].path);
        free(s->listeners[i].path);
    }
    free(s->listeners);
    free(s->domains);
    xs_node_free(s->root);
    if (s->pidfile)
        unlink(s->pidfile);
    if (s->sigfd >= 0)
        close(s->sigfd);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"domain-socket", required_argument, NULL, 'd'},
        {"pidfile", required_argument, NULL, 'p'},
        {"foreground", no_argument, NULL, 'f'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct server s = {.next_txid = 1, .sigfd = -1};
    const char *sock = NULL;
    const char *pidfile = NULL;
    char **dsocks = NULL;
    size_t ndsocks = 0;
    sigset_t mask;
    int opt, rc = 1;

    while ((opt = getopt_long(argc, argv, "s:d:p:fvh", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            sock = optarg;
            break;
        case 'd': {
            char **p = realloc(dsocks, (ndsocks + 1) * sizeof(*p));

            if (!p)
                return 1;
            dsocks = p;
            dsocks[ndsocks++] = optarg;
            break;
        }
        case 'p':
            pidfile = optarg;
            break;
        case 'f':
            break;
        case 'v':
            s.verbose = true;
            break;
        case 'h':
            usage(stdout);
            free(dsocks);
            return 0;
        default:
            usage(stderr);
            free(dsocks);
            return 2;
        }
    }
    if (!sock || optind != argc) {
        usage(stderr);
        free(dsocks);
        return 2;
    }

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    s.sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (s.sigfd < 0) {
        perror("xs-server: signalfd");
        goto out;
    }
    if (init_tree(&s) < 0)
        goto out;

    s.listeners = calloc(1 + ndsocks, sizeof(*s.listeners));
    if (!s.listeners)
        goto out;
    s.listeners[0].who = (struct xs_ident){.id = 0, .priv = true};
    if (make_listener(&s.listeners[0], sock) < 0)
        goto out;
    s.nlisteners = 1;
    for (size_t i = 0; i < ndsocks; i++) {
        char *colon = strchr(dsocks[i], ':');
        unsigned int id;

        if (colon)
            *colon = '\0';
        if (!colon || !parse_uint(dsocks[i], &id) || id == 0 ||
            colon[1] == '\0') {
            fprintf(stderr, "xs-server: bad --domain-socket (want ID:PATH)\n");
            goto out;
        }
        s.listeners[s.nlisteners].who = (struct xs_ident){.id = id};
        if (make_listener(&s.listeners[s.nlisteners], colon + 1) < 0)
            goto out;
        s.nlisteners++;
        if (add_domain(&s, id, true) < 0)
            goto out;
    }
    if (pidfile) {
        if (write_pidfile(pidfile) < 0) {
            fprintf(stderr, "xs-server: cannot write %s\n", pidfile);
            goto out;
        }
        s.pidfile = pidfile;
    }
    printf("ready\n");
    fflush(stdout);

    rc = event_loop(&s) < 0 ? 1 : 0;
out:
    cleanup(&s);
    free(dsocks);
    return rc;
}
