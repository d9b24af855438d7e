/*
 * xsio.c - vgpu's xenstore side, through the real libxenstore (xs_open(0),
 * which honours XENSTORED_PATH): which VM a domain is, and the writing of
 * /local/domain/<domid>/vgpu-mediator/{pool,priority,vm-id} in one transaction,
 * each node owned by dom0 with no access for others ("n0") and read access for
 * the domain ("r<domid>"), so the guest can read but never write them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xenstore.h>

#include "core.h"
#include "vgpu_protocol.h"

#define TX_RETRIES 16

struct kv {
    const char *key;
    const char *val;
};

static struct xs_handle *xs(struct vgpu_ctx *c)
{
    if (!c->xs) {
        c->xs = xs_open(0);
        if (!c->xs)
            vgpu_fail(c, VGPU_FAULT_XENSTORE, "cannot reach xenstore: %s",
                      strerror(errno));
    }
    return c->xs;
}

int vgpu_xs_domain_uuid(struct vgpu_ctx *c, unsigned int domid,
                        char uuid[VGPU_UUID_LEN + 1])
{
    struct xs_handle *h = xs(c);
    char path[64];
    unsigned int len = 0;
    char *v;
    int rc = 0;

    if (!h)
        return -1;
    snprintf(path, sizeof(path), "/local/domain/%u/vm", domid);
    v = xs_read(h, XBT_NULL, path, &len);
    if (!v)
        return vgpu_fail(
            c, errno == ENOENT ? VGPU_FAULT_NOT_FOUND : VGPU_FAULT_XENSTORE,
            "domain %u: cannot read %s: %s (no such domain?)", domid, path,
            strerror(errno));
    if (strncmp(v, "/vm/", 4) || !vgpu_uuid_ok(v + 4))
        rc = vgpu_fail(c, VGPU_FAULT_NOT_FOUND,
                       "domain %u: %s is '%.60s', not /vm/<uuid>", domid, path,
                       v);
    else
        snprintf(uuid, VGPU_UUID_LEN + 1, "%s", v + 4);
    free(v);
    return rc;
}

/* Writes one node (a folder when val is NULL) with the vgpu permissions. */
static bool put(struct xs_handle *h, xs_transaction_t t, unsigned int domid,
                const char *path, const char *val)
{
    struct xs_permissions perms[2] = {
        {.id = 0, .perms = XS_PERM_NONE},
        {.id = domid, .perms = XS_PERM_READ},
    };
    bool ok = val ? xs_write(h, t, path, val, (unsigned int)strlen(val))
                  : xs_mkdir(h, t, path);

    return ok && xs_set_permissions(h, t, path, perms, 2);
}

/* Removes every child of dir that is not one of kv's keys. */
static bool drop_others(struct xs_handle *h, xs_transaction_t t,
                        const char *dir, const struct kv *kv, size_t n)
{
    unsigned int num = 0;
    char **ents = xs_directory(h, t, dir, &num);
    char path[128];
    bool ok = true;

    if (!ents)
        return errno == ENOENT;
    for (unsigned int i = 0; ok && i < num; i++) {
        bool ours = false;

        for (size_t k = 0; k < n; k++)
            ours = ours || !strcmp(ents[i], kv[k].key);
        snprintf(path, sizeof(path), "%s/%s", dir, ents[i]);
        ok = ours || xs_rm(h, t, path) || errno == ENOENT;
    }
    free(ents);
    return ok;
}

/*
 * Writes kv[0..n) under the domain's vgpu folder in one transaction,
 * retried on EAGAIN.  fresh: also remove anything else in the folder, so
 * nothing but our keys (with our permissions) is left in it.  (Removing
 * the folder and writing it anew in the same transaction would do the
 * same; overwriting in place spares the mediator a removal to watch.)
 */
static int write_keys(struct vgpu_ctx *c, unsigned int domid,
                      const struct kv *kv, size_t n, bool fresh)
{
    struct xs_handle *h = xs(c);
    char dir[64], path[128];

    if (!h)
        return -1;
    snprintf(dir, sizeof(dir), VGPU_XS_DOMAIN_FMT, domid);
    for (int tries = 0; tries < TX_RETRIES; tries++) {
        xs_transaction_t t = xs_transaction_start(h);
        bool ok = t != XBT_NULL;

        ok = ok && (!fresh || drop_others(h, t, dir, kv, n));
        ok = ok && put(h, t, domid, dir, NULL);
        for (size_t i = 0; ok && i < n; i++) {
            snprintf(path, sizeof(path), "%s/%s", dir, kv[i].key);
            ok = put(h, t, domid, path, kv[i].val);
        }
        if (!ok) {
            int err = errno;

            if (t != XBT_NULL)
                xs_transaction_end(h, t, true);
            return vgpu_fail(c, VGPU_FAULT_XENSTORE, "cannot write %s: %s", dir,
                             strerror(err));
        }
        if (xs_transaction_end(h, t, false))
            return 0;
        if (errno != EAGAIN)
            break;
    }
    return vgpu_fail(c, VGPU_FAULT_XENSTORE, "cannot commit %s: %s", dir,
                     strerror(errno));
}

int vgpu_xs_write_assignment(struct vgpu_ctx *c,
                             const struct vgpu_assignment *a)
{
    char id[16];
    struct kv kv[4] = {
        {VGPU_XS_KEY_POOL, a->pool},
        {VGPU_XS_KEY_PRIORITY, a->priority},
        {VGPU_XS_KEY_VM_ID, id},
        {VGPU_XS_KEY_QUOTA_MB, a->quota_mb},
    };

    snprintf(id, sizeof(id), "%u", a->vm_id);
    /* The quota only when the VM has one (absent: the default). */
    return write_keys(c, a->domid, kv, a->quota_mb[0] ? 4 : 3, true);
}

int vgpu_xs_write_priority(struct vgpu_ctx *c, unsigned int domid,
                           const char *priority)
{
    struct xs_handle *h = xs(c);
    struct kv kv = {VGPU_XS_KEY_PRIORITY, priority};
    char path[128];
    unsigned int len;
    char *v;

    if (!h)
        return -1;
    snprintf(path, sizeof(path), VGPU_XS_DOMAIN_FMT "/" VGPU_XS_KEY_POOL,
             domid);
    v = xs_read(h, XBT_NULL, path, &len);
    if (!v)
        return 0; /* not assigned: nothing running to update */
    free(v);
    return write_keys(c, domid, &kv, 1, false) < 0 ? -1 : 1;
}
