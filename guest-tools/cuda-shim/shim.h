/*
 * cuda-shim/shim.h - the inside of the guest's drop-in libcuda.so.1: the
 * CUDA driver API's types as the ABI has them, the process's state, and
 * the batch that carries remoted calls to the mediator (vgpu/rpc.h).
 *
 * Why not <cuda.h>: its macros rename every call to its newest variant
 * (cuMemAlloc -> cuMemAlloc_v2, cuCtxCreate -> cuCtxCreate_v4), and its
 * internal mode brings back the oldest prototypes; a library that exports
 * several variants of one call under their own names is clearer with the
 * ABI's plain types spelled here (ints, pointers, 64-bit device
 * addresses).
 *
 * Why process-wide state: the driver API itself is process-wide (cuInit,
 * the primary context, handles valid in every thread); the current
 * context is per thread, as in CUDA.  One lock serialises the batch.
 */
#ifndef VGPU_CUDA_SHIM_H
#define VGPU_CUDA_SHIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libvgpu.h"
#include "vgpu/rpc.h"

#define API __attribute__((visibility("default")))

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef struct {
    char bytes[16];
} CUuuid;

/* The special streams of cuda.h: both mean the default stream here. */
#define SHIM_STREAM_LEGACY ((CUstream)0x1)
#define SHIM_STREAM_PER_THREAD ((CUstream)0x2)

/* cuLaunchKernel's `extra` keys (cuda.h's values). */
#define SHIM_LAUNCH_PARAM_END ((void *)0x00)
#define SHIM_LAUNCH_PARAM_BUFFER_POINTER ((void *)0x01)
#define SHIM_LAUNCH_PARAM_BUFFER_SIZE ((void *)0x02)

/* A function as the guest holds it: the mediator's handle and the
 * parameter layout it answered, which cuLaunchKernel packs by. */
struct CUfunc_st {
    uint64_t h;
    uint64_t ctx;
    uint32_t count, total;
    struct {
        uint32_t offset, size;
    } param[VGPU_RPC_MAX_PARAMS];
};

struct shim_device {
    char name[VGPU_RPC_DEV_NAME_LEN];
    uint8_t uuid[16];
    uint64_t total_mem;
    int32_t attr[VGPU_RPC_ATTRS];
};

struct shim {
    pthread_mutex_t lock;
    int inited; /* cuInit succeeded */
    CUresult init_error;
    struct vgpu_ctx dev;
    int driver_version;
    uint32_t device_count;
    int props_valid;
    struct shim_device props;
    uint64_t session; /* the driver's id of this process's device file */
    uint64_t primary; /* the primary context's handle, 0: none yet */
    unsigned primary_refs;
    /* The batch being built, and room for its answer. */
    uint8_t *req, *resp;
    size_t req_cap, resp_cap;
    /* The batch buffer's size, set once at open: what callers size their
     * calls by (req_cap is the buffer in use, which shim_call_large
     * swaps under the lock). */
    size_t batch_cap;
    size_t req_len, resp_need;
    uint32_t ncalls;
    /* An error of a queued call, kept for the next call that waits. */
    CUresult deferred;
    uint64_t calls_sent, batches_sent;
};

extern struct shim shim;

/* The current context of the calling thread (0: none). */
uint64_t shim_current(void);
void shim_set_current(uint64_t ctx);

/* Lazily open the device and ask the mediator what it serves. */
CUresult shim_init(void);

/*
 * Add a call to the batch (under shim.lock).  fixed and tail are its
 * arguments (tail may be NULL when tail_len is 0); res_max the most result
 * bytes it may answer.  Flushes first when the batch could not hold it.
 */
CUresult shim_queue(uint32_t fn, const void *fixed, uint32_t fixed_len,
                    const void *tail, uint64_t tail_len, uint64_t res_max);
/*
 * Send the batch and wait; the last call's results are copied to res
 * (res_cap bytes, *res_len set when not NULL).  Returns the error of an
 * earlier queued call if one failed, else the last call's status.
 */
CUresult shim_flush(void *res, size_t res_cap, size_t *res_len);
/* One call that waits for its answer: queue + flush. */
CUresult shim_call(uint32_t fn, const void *fixed, uint32_t fixed_len,
                   const void *tail, uint64_t tail_len, void *res,
                   size_t res_cap, size_t *res_len);
/* shim_call for one call larger than the batch buffer: sent alone, up
 * to the device's largest request (module images). */
CUresult shim_call_large(uint32_t fn, const void *fixed, uint32_t fixed_len,
                         const void *tail, uint64_t tail_len, void *res,
                         size_t res_cap, size_t *res_len);
/* The largest tail one call may carry (copies are cut to it). */
uint64_t shim_max_tail(void);

/* Log once per name: "name is not supported by vgpu". */
CUresult shim_unsupported(const char *name);
void shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Packing helpers. */
static inline void shim_put64(uint8_t *p, uint64_t v)
{
    vgpu_put_le64(p, v);
}
static inline void shim_put32(uint8_t *p, uint32_t v)
{
    vgpu_put_le32(p, v);
}

/* cuLaunchKernelEx's launch attributes that are passed on (func.c). */
struct shim_launch_attrs {
    uint32_t cluster[3]; /* 0 0 0: no cluster */
    uint32_t cooperative;
    uint32_t cluster_policy;
};

/* Queue a launch (api.c); ex NULL: plain cuLaunchKernel. */
CUresult shim_launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                     unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                     CUstream s, void **params, void **extra,
                     const struct shim_launch_attrs *ex);

/* Fixed arguments of a call, packed as vgpu/rpc.h lists them. */
struct args {
    uint8_t b[VGPU_RPC_MAX_FIXED];
    uint32_t n;
};

static inline void a64(struct args *a, uint64_t v)
{
    shim_put64(a->b + a->n, v);
    a->n += 8;
}

static inline void a32(struct args *a, uint32_t v)
{
    shim_put32(a->b + a->n, v);
    a->n += 4;
}

#define CHECK_INIT()                                                           \
    do {                                                                       \
        CUresult r_ = shim_init();                                             \
        if (r_ != VGPU_CU_SUCCESS) {                                           \
            return r_;                                                         \
        }                                                                      \
    } while (0)

/* The calling thread's context, or CUDA_ERROR_INVALID_CONTEXT. */
#define NEED_CTX(var)                                                          \
    uint64_t var = shim_current();                                             \
    do {                                                                       \
        CHECK_INIT();                                                          \
        if (!var) {                                                            \
            return VGPU_CU_ERROR_INVALID_CONTEXT;                              \
        }                                                                      \
    } while (0)

static inline uint64_t stream_handle(CUstream s)
{
    if (s == NULL || s == SHIM_STREAM_LEGACY || s == SHIM_STREAM_PER_THREAD) {
        return 0;
    }
    return (uint64_t)(uintptr_t)s;
}

/* The primary context of dev, made on first use (api.c). */
CUresult shim_primary_ctx(CUdevice dev, uint64_t *h);
/* A context is gone: its context-local storage too (export.c). */
void shim_cls_context_gone(uint64_t ctx);

/* Entry points export.c calls as a program would (api.c). */
CUresult cuDriverGetVersion(int *version);
CUresult cuDeviceGetCount(int *count);
CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev);
CUresult cuDeviceGetAttribute(int *value, int attrib, CUdevice dev);

/* cuGetProcAddress's table (procaddr.c). */
void *shim_proc_lookup(const char *name, int version, int per_thread);

#endif
