/*
 * vgpu/names.h - owns the names and limits every part agrees on: what a
 * pool name is (the one validity rule) and which pools exist without a
 * pools.conf, the priority names and their parsing, the VM-ID and domid
 * ranges, the host paths (pools.conf, the mediator's status file and admin
 * socket), the xenstore folder and keys, and the printable names of STATUS
 * and ERROR_CODE values.
 *
 * Pools are names, case-sensitive: 1 to VGPU_POOL_NAME_MAX bytes, the first
 * [A-Za-z0-9], the rest [A-Za-z0-9_.-].  Such a name is safe in a -device
 * option (no ',' or '='), a xenstore value, a file line, a JSON string and
 * a Prometheus label without escaping.  A pool is usable when its name is
 * valid and pools.conf lists it; with no pools.conf the pools are
 * VGPU_POOLS_BUILTIN.  The plugin refuses any other pool before it claims
 * a VM-ID; the device, the wrapper and the mediator accept every valid
 * name, and the mediator serves a valid name its pools.conf lacks as a pool
 * without a GPU (NO_GPU).
 *
 * Kernel-safe (see types.h): plain loops, no libc.
 */
#ifndef VGPU_NAMES_H
#define VGPU_NAMES_H

#include "regs.h"
#include "types.h"

/* ---------------------------------------------------------------------- */
/* Pool names                                                              */
/* ---------------------------------------------------------------------- */

#define VGPU_POOL_NAME_MAX 16                        /* bytes, no NUL */
#define VGPU_POOL_NAME_SIZE (VGPU_POOL_NAME_MAX + 1) /* a C string of one */

/* The pools of a host without pools.conf, each on every GPU. */
#define VGPU_POOLS_BUILTIN "A", "B"
#define VGPU_POOLS_BUILTIN_COUNT 2
/* The device's pool= when none is given. */
#define VGPU_POOL_DEFAULT "A"
/* The rule, for messages. */
#define VGPU_NAMES_STR_(x) #x
#define VGPU_NAMES_STR(x) VGPU_NAMES_STR_(x)
#define VGPU_POOL_NAME_RULE                                                    \
    "1 to " VGPU_NAMES_STR(VGPU_POOL_NAME_MAX) " of A-Z a-z 0-9 _ . -, the "   \
                                               "first a letter or digit"

static inline int vgpu_pool_name_char_ok(char c, int first)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9')) {
        return 1;
    }
    return !first && (c == '_' || c == '.' || c == '-');
}

/* 1 when s is a valid pool name, else 0 (NULL included). */
static inline int vgpu_pool_name_valid(const char *s)
{
    unsigned int n;

    if (!s) {
        return 0;
    }
    for (n = 0; s[n]; n++) {
        if (n == VGPU_POOL_NAME_MAX || !vgpu_pool_name_char_ok(s[n], n == 0)) {
            return 0;
        }
    }
    return n > 0;
}

/*
 * The wire and register form of a name: VGPU_POOL_NAME_MAX bytes, zero
 * padded (no NUL when the name is 16 bytes long).  name is a valid name, or
 * "" / NULL for no pool (all zero); bytes past VGPU_POOL_NAME_MAX are cut.
 */
static inline void vgpu_pool_name_pack(vgpu_u8 out[VGPU_POOL_NAME_MAX],
                                       const char *name)
{
    unsigned int i = 0;

    for (; name && name[i] && i < VGPU_POOL_NAME_MAX; i++) {
        out[i] = (vgpu_u8)name[i];
    }
    for (; i < VGPU_POOL_NAME_MAX; i++) {
        out[i] = 0;
    }
}

/*
 * Back from the 16 bytes into out (a C string).  1: a valid name; 0: all
 * zero, no pool (out ""); -1: neither, e.g. bytes after the padding or a
 * bad character (out "").
 */
static inline int vgpu_pool_name_unpack(const vgpu_u8 in[VGPU_POOL_NAME_MAX],
                                        char out[VGPU_POOL_NAME_SIZE])
{
    unsigned int n = 0, i;

    while (n < VGPU_POOL_NAME_MAX && in[n]) {
        out[n] = (char)in[n];
        n++;
    }
    out[n] = '\0';
    for (i = n; i < VGPU_POOL_NAME_MAX; i++) {
        if (in[i]) {
            out[0] = '\0';
            return -1;
        }
    }
    if (n == 0) {
        return 0;
    }
    if (!vgpu_pool_name_valid(out)) {
        out[0] = '\0';
        return -1;
    }
    return 1;
}

/* The name as the POOL_ID, POOL_NAME_1..3 register values (regs.h). */
static inline void vgpu_pool_name_to_regs(const char *name,
                                          vgpu_u32 w[VGPU_POOL_NAME_REGS])
{
    vgpu_u8 b[VGPU_POOL_NAME_MAX];
    unsigned int i;

    vgpu_pool_name_pack(b, name);
    for (i = 0; i < VGPU_POOL_NAME_REGS; i++) {
        w[i] = vgpu_get_le32(b + 4 * i);
    }
}

/* And back, with vgpu_pool_name_unpack()'s results. */
static inline int
vgpu_pool_name_from_regs(const vgpu_u32 w[VGPU_POOL_NAME_REGS],
                         char out[VGPU_POOL_NAME_SIZE])
{
    vgpu_u8 b[VGPU_POOL_NAME_MAX];
    unsigned int i;

    for (i = 0; i < VGPU_POOL_NAME_REGS; i++) {
        vgpu_put_le32(b + 4 * i, w[i]);
    }
    return vgpu_pool_name_unpack(b, out);
}

/* ---------------------------------------------------------------------- */
/* Priorities (the PRIORITY register, xenstore, the scheduler)             */
/* ---------------------------------------------------------------------- */

enum vgpu_priority {
    VGPU_PRIO_LOW = 0,
    VGPU_PRIO_MEDIUM = 1,
    VGPU_PRIO_HIGH = 2,
};
#define VGPU_PRIO_COUNT 3
#define VGPU_PRIO_DEFAULT VGPU_PRIO_MEDIUM

#define VGPU_PRIO_NAME_LOW "low"
#define VGPU_PRIO_NAME_MEDIUM "medium"
#define VGPU_PRIO_NAME_HIGH "high"
#define VGPU_PRIO_NAME_DEFAULT VGPU_PRIO_NAME_MEDIUM
/* The choices, for messages: "low|medium|high". */
#define VGPU_PRIO_NAMES                                                        \
    VGPU_PRIO_NAME_LOW "|" VGPU_PRIO_NAME_MEDIUM "|" VGPU_PRIO_NAME_HIGH

/* "low", "medium", "high", or "unknown" for any other value. */
static inline const char *vgpu_priority_name(vgpu_u32 prio)
{
    switch (prio) {
    case VGPU_PRIO_LOW:
        return VGPU_PRIO_NAME_LOW;
    case VGPU_PRIO_MEDIUM:
        return VGPU_PRIO_NAME_MEDIUM;
    case VGPU_PRIO_HIGH:
        return VGPU_PRIO_NAME_HIGH;
    default:
        return "unknown";
    }
}

/*
 * The priority named exactly s (case-sensitive, no blanks) into *prio: 0,
 * or -1 when s names none (*prio unchanged).
 */
static inline int vgpu_priority_parse(const char *s, vgpu_u32 *prio)
{
    vgpu_u32 p;

    if (!s) {
        return -1;
    }
    for (p = 0; p < VGPU_PRIO_COUNT; p++) {
        const char *n = vgpu_priority_name(p);
        unsigned int i = 0;

        while (n[i] && s[i] == n[i]) {
            i++;
        }
        if (!n[i] && !s[i]) {
            *prio = p;
            return 0;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------------- */
/* Limits                                                                  */
/* ---------------------------------------------------------------------- */

/* VM-IDs: host-unique, decimal in xenstore, never 0. */
#define VGPU_VM_ID_MIN 1u
#define VGPU_VM_ID_MAX 0x7fffffffu
/* Largest domid of a real domain (Xen's DOMID_FIRST_RESERVED - 1). */
#define VGPU_DOMID_MAX 0x7fefu

/* ---------------------------------------------------------------------- */
/* Host paths (dom0)                                                       */
/* ---------------------------------------------------------------------- */

#define VGPU_CONF_DIR "/etc/vgpu"
#define VGPU_RUN_DIR "/run/vgpu"
/* Which pools exist and which GPUs each may use (mediator/poolconf.h). */
#define VGPU_POOLS_CONF_NAME "pools.conf"
#define VGPU_POOLS_CONF_PATH VGPU_CONF_DIR "/" VGPU_POOLS_CONF_NAME
/* What the mediator serves, rewritten as it changes; the plugin's status
 * reads it. */
#define VGPU_STATUS_FILE_NAME "mediator.status"
#define VGPU_STATUS_FILE_PATH VGPU_RUN_DIR "/" VGPU_STATUS_FILE_NAME
/* The mediator's admin socket (vgpu-smi). */
#define VGPU_ADMIN_SOCKET_PATH VGPU_RUN_DIR "/admin.sock"

/* ---------------------------------------------------------------------- */
/* xenstore                                                                */
/* ---------------------------------------------------------------------- */

/*
 * Keys written by dom0 only (the plugin), read by the mediator.  Our own
 * folder: /local/domain/<domid>/vgpu/ belongs to xenopsd and NVIDIA vGPU
 * (vgpu/state, vgpu/error-code), so nothing of ours goes there.
 */
#define VGPU_XS_DOMAIN_FMT "/local/domain/%u/vgpu-mediator"
#define VGPU_XS_KEY_POOL "pool"         /* a valid pool name */
#define VGPU_XS_KEY_PRIORITY "priority" /* a priority name */
#define VGPU_XS_KEY_VM_ID "vm-id"       /* decimal, VM_ID_MIN..VM_ID_MAX */
/* Optional: the VM's device memory quota in MiB, decimal 1 ..
 * VGPU_QUOTA_MB_MAX; absent: the mediator's --quota-mb.  Written from
 * other-config:vgpu-quota-mb by the plugin. */
#define VGPU_XS_KEY_QUOTA_MB "quota-mb"
#define VGPU_QUOTA_MB_MAX (1u << 30)

/* ---------------------------------------------------------------------- */
/* STATUS and ERROR_CODE names                                             */
/* ---------------------------------------------------------------------- */

/* Printable name of an error code; never NULL. */
static inline const char *vgpu_error_name(vgpu_u32 code)
{
    static const char *const names[VGPU_ERR_COUNT] = {
        [VGPU_ERR_NONE] = "NONE",
        [VGPU_ERR_REQUEST_TOO_LARGE] = "REQUEST_TOO_LARGE",
        [VGPU_ERR_DOORBELL_BUSY] = "DOORBELL_BUSY",
        [VGPU_ERR_BAD_DOORBELL] = "BAD_DOORBELL",
        [VGPU_ERR_NO_MEDIATOR] = "NO_MEDIATOR",
        [VGPU_ERR_TIMEOUT] = "TIMEOUT",
        [VGPU_ERR_MEDIATOR_LOST] = "MEDIATOR_LOST",
        [VGPU_ERR_BAD_OPCODE] = "BAD_OPCODE",
        [VGPU_ERR_BAD_REQUEST] = "BAD_REQUEST",
        [VGPU_ERR_NOT_ASSIGNED] = "NOT_ASSIGNED",
        [VGPU_ERR_QUEUE_FULL] = "QUEUE_FULL",
        [VGPU_ERR_BACKEND] = "BACKEND",
        [VGPU_ERR_PROTOCOL] = "PROTOCOL",
        [VGPU_ERR_QUOTA_EXCEEDED] = "QUOTA_EXCEEDED",
        [VGPU_ERR_NO_GPU] = "NO_GPU",
        [VGPU_ERR_BAD_RING] = "BAD_RING",
        [VGPU_ERR_BAD_SG] = "BAD_SG",
        [VGPU_ERR_DMA] = "DMA",
        [VGPU_ERR_RESPONSE_TOO_LARGE] = "RESPONSE_TOO_LARGE",
    };
    return code < VGPU_ERR_COUNT ? names[code] : "UNKNOWN";
}

static inline const char *vgpu_status_name(vgpu_u32 status)
{
    switch (status) {
    case VGPU_STATUS_IDLE:
        return "IDLE";
    case VGPU_STATUS_BUSY:
        return "BUSY";
    case VGPU_STATUS_DONE:
        return "DONE";
    case VGPU_STATUS_ERROR:
        return "ERROR";
    default:
        return "UNKNOWN";
    }
}

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(VGPU_POOL_NAME_MAX == 4 * VGPU_POOL_NAME_REGS,
               "the pool name registers hold a whole name");
#endif

#endif /* VGPU_NAMES_H */
