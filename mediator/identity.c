/*
 * identity.c - owns reading and validating a domain's vgpu identity from
 * xenstore through the real libxenstore.
 */
#include "identity.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenstore.h>

#include "vgpu_protocol.h"

bool identity_xs_errno_is_answer(int err)
{
    /* xenstored's own answers to a read; anything else (EBADF, EPIPE,
     * ECONNRESET, EINVAL from a reply that never came...) means the
     * connection failed, not that the key is absent. */
    return err == ENOENT || err == EACCES || err == EPERM || err == E2BIG ||
           err == ENOSPC;
}

int identity_parse_pool(const char *s, char pool[VGPU_POOL_NAME_SIZE])
{
    /* Any valid name: whether this host serves it is pools.conf's to say
     * (a pool it lacks gets NO_GPU, not NOT_ASSIGNED). */
    if (!vgpu_pool_name_valid(s)) {
        return -1;
    }
    memcpy(pool, s, strlen(s) + 1);
    return 0;
}

int identity_parse_priority(const char *s, uint32_t *prio)
{
    return vgpu_priority_parse(s, prio);
}

int identity_parse_vm_id(const char *s, uint32_t *vm_id)
{
    unsigned long v;
    char *end;

    /* Plain decimal only: no sign, no spaces, no leading zero, no hex. */
    if (s[0] < '1' || s[0] > '9') {
        return -1;
    }
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end != '\0' || v < VGPU_VM_ID_MIN || v > VGPU_VM_ID_MAX) {
        return -1;
    }
    *vm_id = (uint32_t)v;
    return 0;
}

int identity_parse_quota_mb(const char *s, uint64_t *bytes)
{
    unsigned long v;
    char *end;

    if (s[0] < '1' || s[0] > '9') {
        return -1;
    }
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end != '\0' || v > VGPU_QUOTA_MB_MAX) {
        return -1;
    }
    *bytes = (uint64_t)v << 20;
    return 0;
}

/*
 * Read one key below the domain's vgpu folder as a C string.  Values with
 * embedded NULs or over 64 bytes are refused: none of ours is that long.
 */
static char *read_key(struct xs_handle *xs, uint32_t domid, const char *key,
                      bool *lost)
{
    char path[96];
    unsigned int len = 0;
    char *val;

    snprintf(path, sizeof(path), VGPU_XS_DOMAIN_FMT "/%s", domid, key);
    val = xs_read(xs, XBT_NULL, path, &len);
    if (!val && !identity_xs_errno_is_answer(errno)) {
        *lost = true;
    }
    if (val && (len > 64 || strlen(val) != len)) {
        free(val);
        return NULL;
    }
    return val;
}

int identity_read(struct xs_handle *xs, uint32_t domid,
                  struct vgpu_identity *id, const char **why)
{
    char *pool = NULL, *prio = NULL, *vm_id = NULL, *quota = NULL;
    bool lost = false;
    int ret = -1;

    memset(id, 0, sizeof(*id));
    pool = read_key(xs, domid, VGPU_XS_KEY_POOL, &lost);
    prio = read_key(xs, domid, VGPU_XS_KEY_PRIORITY, &lost);
    vm_id = read_key(xs, domid, VGPU_XS_KEY_VM_ID, &lost);
    quota = read_key(xs, domid, VGPU_XS_KEY_QUOTA_MB, &lost);
    if (lost) {
        *why = "xenstore unreachable";
        ret = -2;
        goto out_free;
    }
    if (!pool || !prio || !vm_id) {
        *why = "vgpu keys missing in xenstore";
        goto out_free;
    }
    if (identity_parse_pool(pool, id->pool)) {
        *why = "invalid pool in xenstore";
        goto out_free;
    }
    if (identity_parse_priority(prio, &id->priority)) {
        *why = "invalid priority in xenstore";
        goto out_free;
    }
    if (identity_parse_vm_id(vm_id, &id->vm_id)) {
        *why = "invalid vm-id in xenstore";
        goto out_free;
    }
    if (quota && identity_parse_quota_mb(quota, &id->quota_bytes)) {
        *why = "invalid quota-mb in xenstore";
        goto out_free;
    }
    id->assigned = true;
    ret = 0;
out_free:
    if (ret) {
        memset(id, 0, sizeof(*id));
    }
    free(quota);
    free(vm_id);
    free(prio);
    free(pool);
    return ret;
}

void identity_read_name(struct xs_handle *xs, uint32_t domid, char *buf,
                        size_t len)
{
    char path[64];
    unsigned int n = 0;
    char *val;
    size_t i;

    if (len == 0) {
        return;
    }
    buf[0] = '\0';
    snprintf(path, sizeof(path), "/local/domain/%u/name", domid);
    val = xs_read(xs, XBT_NULL, path, &n);
    if (!val) {
        return;
    }
    for (i = 0; i < n && i + 1 < len; i++) {
        unsigned char ch = (unsigned char)val[i];

        buf[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    buf[i] = '\0';
    free(val);
}
