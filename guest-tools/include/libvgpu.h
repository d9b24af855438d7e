/*
 * libvgpu.h - public API of libvgpu, the guest-side library of vgpu.
 *
 * This header owns the guest API: finding a vgpu-stub PCI device in sysfs,
 * choosing its data path, the requests and their validated responses, and
 * diagnostic entry points that let tests forge what a guest writes.
 *
 * Two paths to a device:
 *   - the kernel driver (vgpu.ko) when it is bound to the device: its
 *     /dev/vgpuN (found through <device>/misc/vgpuN in sysfs), ioctls of
 *     include/uapi/vgpu.h; the driver speaks v2 rings or the v1 registers
 *     as the device allows (VGPU_PATH_DRIVER_RINGS / _DRIVER_V1).  This is
 *     the path under kernel lockdown (Secure Boot), where resource0 cannot
 *     be mapped;
 *   - sysfs resource0 (VGPU_PATH_SYSFS) otherwise: BAR0 mapped, the
 *     protocol v1 exchange done here (request buffer, REQUEST_LEN,
 *     REQUEST_ID, DOORBELL, bounded STATUS polling), register access for
 *     diagnostics.
 * $VGPU_PATH (auto, driver, sysfs) or vgpu_open_opts.choose forces one.
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
    VGPU_E_NOTSUP = -10, /* not possible on this context's path */
};

/* The data path of an open context (vgpu_path()). */
enum vgpu_path {
    VGPU_PATH_SYSFS = 0,        /* sysfs resource0 mapped, v1 registers */
    VGPU_PATH_DRIVER_V1 = 1,    /* /dev/vgpuN, the driver's v1 exchange */
    VGPU_PATH_DRIVER_RINGS = 2, /* /dev/vgpuN, v2 rings and DMA */
};

/* How vgpu_open() chooses (vgpu_open_opts.choose, $VGPU_PATH). */
enum vgpu_choose {
    VGPU_CHOOSE_DEFAULT = 0, /* $VGPU_PATH, else auto */
    VGPU_CHOOSE_AUTO = 1,    /* the driver when bound, else sysfs */
    VGPU_CHOOSE_DRIVER = 2,  /* the driver or fail */
    VGPU_CHOOSE_SYSFS = 3,   /* sysfs resource0 or fail */
};

/* Longest BDF string plus NUL ("0000:00:04.0"). */
#define VGPU_BDF_MAX 16
/* Size of the context's last-error message buffer. */
#define VGPU_ERRMSG_MAX 256
/* Environment variable overriding the sysfs root (default "/sys"). */
#define VGPU_SYSFS_ROOT_ENV "VGPU_SYSFS_ROOT"
/* Environment variable overriding where device nodes are (default "/dev"). */
#define VGPU_DEV_ROOT_ENV "VGPU_DEV_ROOT"
/* Environment variable choosing the path: auto, driver or sysfs. */
#define VGPU_PATH_ENV "VGPU_PATH"
/* Longest device node path plus NUL. */
#define VGPU_NODE_MAX 128

struct vgpu_open_opts {
    /* Root of sysfs; NULL: $VGPU_SYSFS_ROOT, else "/sys". */
    const char *sysfs_root;
    /* PCI address "DDDD:BB:DD.F" or "BB:DD.F"; NULL: use index. */
    const char *bdf;
    /* With bdf == NULL: the index-th vgpu device in BDF order (0 first). */
    unsigned int index;
    /* Where /dev is; NULL: $VGPU_DEV_ROOT, else "/dev". */
    const char *dev_root;
    /* enum vgpu_choose; 0: $VGPU_PATH, else auto. */
    int choose;
};

/*
 * Caller-owned context.  Fields are private to the library; read them
 * through the accessors below.  Zero-initialise or let vgpu_open() fill it.
 */
struct vgpu_ctx {
    int fd;                       /* resource0, -1 when closed */
    int devfd;                    /* /dev/vgpuN, -1 when not on it */
    int path;                     /* enum vgpu_path */
    uint64_t max_xfer;            /* largest request on this path */
    uint32_t max_inflight;        /* driver: requests per file */
    char node[VGPU_NODE_MAX];     /* driver: the device node */
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
    uint32_t version;         /* PROTOCOL_VER */
    uint32_t caps;            /* VGPU_CAP_* */
    uint32_t status;          /* enum vgpu_status (sysfs path only, else 0) */
    uint32_t error;           /* enum vgpu_error (sysfs path only, else 0) */
    int path;                 /* enum vgpu_path */
    char node[VGPU_NODE_MAX]; /* driver path: the device node */
};

/* One finished request of vgpu_reap(). */
struct vgpu_completion {
    uint32_t tag;    /* as given to vgpu_submit_async() */
    uint32_t status; /* enum vgpu_error of the device (0: success) */
    int32_t error;   /* 0, or the driver's -errno (-ENODEV: device gone) */
    size_t resp_len; /* response bytes written (0 unless both are 0) */
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

/* The path of an open context (enum vgpu_path) and its description:
 * "driver /dev/vgpu0 (v2 rings)", "driver /dev/vgpu0 (v1 registers)",
 * "sysfs resource0 (v1)". */
int vgpu_path(const struct vgpu_ctx *ctx);
const char *vgpu_path_describe(const struct vgpu_ctx *ctx, char *buf,
                               size_t len);
/* The largest request (and response) this context's path carries. */
uint64_t vgpu_max_request(const struct vgpu_ctx *ctx);

/*
 * Driver path only (VGPU_E_NOTSUP on sysfs): queue a request without
 * waiting (req and resp must stay valid until it is reaped), and reap
 * completions: waits for min of them (bounded by timeout_ms, 0: default),
 * stores up to max in c, their number in *count.  vgpu_event_fd() is the
 * file to poll()/epoll for completions (POLLIN).
 */
int vgpu_submit_async(struct vgpu_ctx *ctx, const void *req, size_t len,
                      void *resp, size_t cap, uint32_t tag);
int vgpu_reap(struct vgpu_ctx *ctx, struct vgpu_completion *c, unsigned int max,
              unsigned int min, unsigned int timeout_ms, unsigned int *count);
int vgpu_event_fd(const struct vgpu_ctx *ctx);

/*
 * Driver path only: this open device's session id (VGPU_IOCTL_SESSION of
 * uapi/vgpu.h).  Once asked for, the driver tells the host when the file
 * is released (closed, or its process ended), so that what was made
 * under the id (protocol v3: CUDA contexts) is freed.  VGPU_E_NOTSUP on
 * the sysfs path or with a driver that has no sessions.
 */
int vgpu_session(struct vgpu_ctx *ctx, uint64_t *id);

/*
 * Memory for large requests and responses: 2 MB aligned, transparent huge
 * pages asked for, so that the driver's scatter-gather lists stay short
 * (a list has at most MAX_SG entries).  NULL when out of memory.
 */
void *vgpu_buffer_alloc(size_t size);
void vgpu_buffer_free(void *p, size_t size);

/* Aligned 32-bit register access; offset < VGPU_BAR0_SIZE, multiple of 4.
 * Sysfs path only (VGPU_E_NOTSUP on the driver path: the driver owns BAR0). */
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

/* c[i] = a[i] + b[i] on the device; 1 <= n <= VGPU_VECTOR_ADD_MAX_COUNT,
 * or as many as vgpu_max_request() allows on the driver's rings. */
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
