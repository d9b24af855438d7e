/*
 * identity.h - a domain's vgpu identity (pool, priority, VM-ID) as dom0
 * wrote it in xenstore under /local/domain/<domid>/vgpu-mediator/.
 *
 * The mediator takes identity from here only, never from what the device
 * or the guest claims.
 */
#ifndef VGPU_IDENTITY_H
#define VGPU_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu_protocol.h"

struct xs_handle;

struct vgpu_identity {
    bool assigned;                  /* all three keys present and valid */
    char pool[VGPU_POOL_NAME_SIZE]; /* a valid pool name; "" unassigned */
    uint32_t priority;
    uint32_t vm_id;
    /* The optional quota-mb key, in bytes; 0: absent (the mediator's
     * default quota applies). */
    uint64_t quota_bytes;
};

/*
 * Strict parsers of the xenstore values; 0 on success, -1 if invalid.  A
 * pool is any valid pool name (vgpu/names.h), copied into pool.
 */
int identity_parse_pool(const char *s, char pool[VGPU_POOL_NAME_SIZE]);
int identity_parse_priority(const char *s, uint32_t *prio);
int identity_parse_vm_id(const char *s, uint32_t *vm_id);
/* quota-mb: decimal 1..VGPU_QUOTA_MB_MAX, into bytes. */
int identity_parse_quota_mb(const char *s, uint64_t *bytes);

/*
 * Is err (errno after a failed libxenstore call) an answer of xenstored,
 * such as ENOENT, rather than a failed connection?
 */
bool identity_xs_errno_is_answer(int err);

/*
 * Read the three keys of domid (and the optional quota-mb: a value there
 * that is not a quota makes the identity invalid, never ignored).  On
 * success returns 0 with id->assigned
 * set.  On failure clears *id, points *why at the reason and returns -1
 * when xenstored answered (missing key, invalid value) or -2 when it could
 * not be asked (the connection failed: the identity is unknown, not
 * absent).
 */
int identity_read(struct xs_handle *xs, uint32_t domid,
                  struct vgpu_identity *id, const char **why);

/*
 * The domain's name-label (/local/domain/<domid>/name, which the guest
 * cannot change) for operators' eyes: bytes outside printable ASCII become
 * '?', and it is cut to fit.  "" when absent.
 */
void identity_read_name(struct xs_handle *xs, uint32_t domid, char *buf,
                        size_t len);

#endif
