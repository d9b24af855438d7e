/*
 * libvgpu.h - public API of libvgpu, the guest-side library of vgpu.
 *
 * This header owns the guest API: finding a vgpu-stub PCI device in sysfs,
 * mapping its BAR0 through resource0, aligned 32-bit register access, the
 * protocol v1 request path (request buffer, REQUEST_LEN, REQUEST_ID,
 * DOORBELL, bounded STATUS polling, validated response), and diagnostic
 * entry points that let tests forge what a guest writes.
 *
 * The library keeps no global state: everything lives in a caller-owned
 * struct vgpu_ctx.  A context is not thread-safe; protocol v1 allows one
 * request in flight per device anyway.
 *
 * Register map, error codes and payload formats come from vgpu_protocol.h.
 */
#ifndef LIBVGPU_H
#define LIBVGPU_H

#include <stddef.h>
#include <stdint.h>

#include "vgpu_protocol.h"

/* Library result codes: 0 on success, one of these (negative) on failure. */
enum vgpu_result {
    VGPU_OK = 0,
    VGPU_E_INVAL = -1,   /* bad argument from the caller */
    VGPU_E_NODEV = -2,   /* no (matching) vgpu device in sysfs */
    VGPU_E_ACCESS = -3,  /* cannot open or map resource0 */
    VGPU_E_DEVICE = -4,  /* STATUS == ERROR; see vgpu_device_error() */
    VGPU_E_TIMEOUT = -5, /* polling bound reached, no DONE/ERROR seen */
    VGPU_E_BADRESP = -6, /* device broke the protocol (length, header..) */
    VGPU_E_NOSPACE = -7, /* response larger than the caller's buffer */
    VGPU_E_VERSION = -8, /* device speaks an unsupported protocol major */
    VGPU_E_NOTOPEN = -9, /* context is not open */
};

/* Longest BDF string plus NUL ("0000:00:04.0"). */
#define VGPU_BDF_MAX 16
/* Size of the context's last-error message buffer. */
#define VGPU_ERRMSG_MAX 256
/* Environment variable overriding the sysfs root (default "/sys"). */
#define VGPU_SYSFS_ROOT_ENV "VGPU_SYSFS_ROOT"

struct vgpu_open_opts {
    /* Root of sysfs; NULL: $VGPU_SYSFS_ROOT, else "/sys". */
    const char *sysfs_root;
    /* PCI address "DDDD:BB:DD.F" or "BB:DD.F"; NULL: use index. */
    const char *bdf;
    /* With bdf == NULL: the index-th vgpu device in BDF order (0 first). */
    unsigned int index;
};

/*
 * Caller-owned context.  Fields are private to the library; read them
 * through the accessors below.  Zero-initialise or let vgpu_open() fill it.
 */
struct vgpu_ctx {
    int fd;                       /* resource0, -1 when closed */
    volatile uint32_t *bar;       /* BAR0 mapping, NULL when closed */
    uint32_t caps;                /* CAPABILITIES read at open */
    uint32_t version;             /* PROTOCOL_VER read at open */
    uint32_t next_id;             /* next REQUEST_ID tag */
    uint32_t dev_error;           /* ERROR_CODE of the last device error */
    char bdf[VGPU_BDF_MAX];       /* the opened device */
    char errmsg[VGPU_ERRMSG_MAX]; /* description of the last failure */
};

/* Snapshot of the identity and state registers. */
struct vgpu_info {
    char bdf[VGPU_BDF_MAX];
    /* The pool name (POOL_ID, then POOL_NAME_1..3 when the device has
     * VGPU_CAP_POOL_NAME); "" unless pool_state is 1. */
    char pool[VGPU_POOL_NAME_SIZE];
    int pool_state; /* 1: a valid name; 0: no pool yet; -1: not a name */
    uint32_t pool_regs[VGPU_POOL_NAME_REGS]; /* the words as read */
    uint32_t priority;                       /* enum vgpu_priority */
    uint32_t vm_id;
    uint32_t version; /* PROTOCOL_VER */
    uint32_t caps;    /* VGPU_CAP_* */
    uint32_t status;  /* enum vgpu_status */
    uint32_t error;   /* enum vgpu_error */
};

/*
 * Diagnostic submission: what a guest writes, forged at will.  The payload
 * (len bytes, len <= VGPU_BUF_SIZE) is copied into the request buffer;
 * request_len is written to REQUEST_LEN whatever len is; then each value in
 * doorbells[] is written to DOORBELL back to back (NULL/0: one
 * VGPU_DOORBELL_SUBMIT).  The response is bounded like vgpu_submit() but
 * its header is not checked against the request.
 */
struct vgpu_raw_request {
    const void *req;
    size_t len;
    uint32_t request_len;
    const uint32_t *doorbells;
    size_t n_doorbells;
};

/* Open a device.  opts may be NULL.  On failure vgpu_errmsg() explains. */
int vgpu_open(struct vgpu_ctx *ctx, const struct vgpu_open_opts *opts);
/* Unmap and close; safe on a closed or failed context. */
void vgpu_close(struct vgpu_ctx *ctx);

/* Aligned 32-bit register access; offset < VGPU_BAR0_SIZE, multiple of 4. */
int vgpu_read_reg(struct vgpu_ctx *ctx, uint32_t offset, uint32_t *value);
int vgpu_write_reg(struct vgpu_ctx *ctx, uint32_t offset, uint32_t value);

int vgpu_info(struct vgpu_ctx *ctx, struct vgpu_info *info);

/*
 * Submit one request (len bytes, at least a struct vgpu_req_hdr) and wait
 * for the answer.  timeout_ms == 0 means VGPU_GUEST_POLL_TIMEOUT_MS_DEFAULT.
 * On VGPU_OK, *resp_len bytes of resp hold the response, whose header was
 * checked (opcode echoes the request's).  On VGPU_E_DEVICE,
 * vgpu_device_error() gives the device's ERROR_CODE.
 */
int vgpu_submit(struct vgpu_ctx *ctx, const void *req, size_t len, void *resp,
                size_t cap, size_t *resp_len, unsigned int timeout_ms);

/* c[i] = a[i] + b[i] on the device; 1 <= n <= VGPU_VECTOR_ADD_MAX_COUNT. */
int vgpu_vector_add(struct vgpu_ctx *ctx, const int32_t *a, const int32_t *b,
                    int32_t *c, size_t n, unsigned int timeout_ms);

/*
 * y_out[i] = a * x[i] + y[i] on the host (binary32, no fused multiply-add),
 * n in 1..VGPU_SAXPY_MAX_COUNT.
 */
int vgpu_saxpy(struct vgpu_ctx *ctx, float a, const float *x, const float *y,
               float *y_out, size_t n, unsigned int timeout_ms);

/*
 * C = A x B of the n x n matrices the contract generates from seed, on the
 * host; *checksum is the exact sum of C's elements (compare with
 * vgpu_sgemm_checksum_ref()).  n in 1..VGPU_SGEMM_MAX_N.
 */
int vgpu_sgemm(struct vgpu_ctx *ctx, uint32_t n, uint32_t seed,
               int64_t *checksum, unsigned int timeout_ms);

/* Diagnostic: see struct vgpu_raw_request.  resp may be NULL: the response
 * length is still bounds-checked, its bytes are not copied. */
int vgpu_submit_raw(struct vgpu_ctx *ctx, const struct vgpu_raw_request *raw,
                    void *resp, size_t cap, size_t *resp_len,
                    unsigned int timeout_ms);

/* Poll STATUS until it is not BUSY (bounded by timeout_ms, 0: default);
 * *status gets the last value read.  VGPU_E_TIMEOUT if still BUSY. */
int vgpu_wait_idle(struct vgpu_ctx *ctx, unsigned int timeout_ms,
                   uint32_t *status);

/* ERROR_CODE of the last VGPU_E_DEVICE result (VGPU_ERR_NONE otherwise). */
uint32_t vgpu_device_error(const struct vgpu_ctx *ctx);
/* Description of the last failure on this context; never NULL. */
const char *vgpu_errmsg(const struct vgpu_ctx *ctx);
/* Short description of a library result code; never NULL. */
const char *vgpu_strerror(int rc);

/* Register names ("STATUS", case-insensitive, "VGPU_REG_" prefix allowed)
 * to offsets; -1 if unknown.  And back: NULL if no register there. */
long vgpu_reg_offset(const char *name);
const char *vgpu_reg_name(uint32_t offset);

#endif /* LIBVGPU_H */
