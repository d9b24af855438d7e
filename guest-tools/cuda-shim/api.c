/*
 * cuda-shim/api.c - owns the CUDA driver API entry points the guest's
 * libcuda.so.1 exports, each under the name(s) programs link against
 * (cuMemAlloc_v2, the per-thread-stream _ptsz/_ptds variants, ...), and
 * what each does: answered here (versions, device properties once
 * fetched, the current context), remoted and waited for, or queued
 * without a round trip (launches, asynchronous copies and memsets, event
 * records, stream waits).  docs/cuda.md lists every one with its status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_image.h"
#include "shim.h"

/* ---------------------------------------------------------------------- */
/* initialisation, versions, errors                                        */
/* ---------------------------------------------------------------------- */

API CUresult cuInit(unsigned int flags)
{
    if (flags != 0) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    return shim_init();
}

API CUresult cuDriverGetVersion(int *version)
{
    if (!version) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    /* The host's driver decides what runs; before cuInit, what this
     * library was written against. */
    *version = shim.inited && shim.driver_version ? shim.driver_version : 13000;
    return VGPU_CU_SUCCESS;
}

static const struct {
    CUresult code;
    const char *name, *text;
} errors[] = {
    {0, "CUDA_SUCCESS", "no error"},
    {1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {4, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
    {100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {209, "CUDA_ERROR_NO_BINARY_FOR_GPU",
     "no kernel image is available for execution on the device"},
    {218, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
    {301, "CUDA_ERROR_FILE_NOT_FOUND", "file not found"},
    {400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {600, "CUDA_ERROR_NOT_READY", "device not ready"},
    {700, "CUDA_ERROR_ILLEGAL_ADDRESS",
     "an illegal memory access was encountered"},
    {701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
     "too many resources requested for launch"},
    {719, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {801, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {999, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

API CUresult cuGetErrorName(CUresult error, const char **str)
{
    if (!str) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        if (errors[i].code == error) {
            *str = errors[i].name;
            return VGPU_CU_SUCCESS;
        }
    }
    *str = NULL;
    return VGPU_CU_ERROR_INVALID_VALUE;
}

API CUresult cuGetErrorString(CUresult error, const char **str)
{
    if (!str) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        if (errors[i].code == error) {
            *str = errors[i].text;
            return VGPU_CU_SUCCESS;
        }
    }
    *str = NULL;
    return VGPU_CU_ERROR_INVALID_VALUE;
}

/* ---------------------------------------------------------------------- */
/* devices                                                                 */
/* ---------------------------------------------------------------------- */

API CUresult cuDeviceGetCount(int *count)
{
    if (!count) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    CHECK_INIT();
    *count = (int)shim.device_count;
    return VGPU_CU_SUCCESS;
}

API CUresult cuDeviceGet(CUdevice *dev, int ordinal)
{
    if (!dev) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    CHECK_INIT();
    if (ordinal < 0 || (uint32_t)ordinal >= shim.device_count) {
        return VGPU_CU_ERROR_INVALID_DEVICE;
    }
    *dev = ordinal;
    return VGPU_CU_SUCCESS;
}

/* The device's properties, fetched once: the host GPU's own, its memory
 * cut to the VM's quota. */
static CUresult props(CUdevice dev, const struct shim_device **out)
{
    static uint8_t res[VGPU_RPC_RES_DEVICE_PROPS];
    struct args a = {.n = 0};
    size_t n = 0;
    CUresult r;

    CHECK_INIT();
    if (dev < 0 || (uint32_t)dev >= shim.device_count) {
        return VGPU_CU_ERROR_INVALID_DEVICE;
    }
    if (!shim.props_valid) {
        a32(&a, (uint32_t)dev);
        r = shim_call(VGPU_RPC_DEVICE_PROPS, a.b, a.n, NULL, 0, res,
                      sizeof(res), &n);
        if (r != VGPU_CU_SUCCESS) {
            return r;
        }
        if (n != sizeof(res)) {
            return VGPU_CU_ERROR_UNKNOWN;
        }
        memcpy(shim.props.name, res, VGPU_RPC_DEV_NAME_LEN);
        shim.props.name[VGPU_RPC_DEV_NAME_LEN - 1] = 0;
        memcpy(shim.props.uuid, res + VGPU_RPC_DEV_NAME_LEN, 16);
        shim.props.total_mem = vgpu_get_le64(res + VGPU_RPC_DEV_NAME_LEN + 16);
        for (unsigned i = 0; i < VGPU_RPC_ATTRS; i++) {
            shim.props.attr[i] = (int32_t)vgpu_get_le32(
                res + VGPU_RPC_DEV_NAME_LEN + 24 + 4 * i);
        }
        shim.props_valid = 1;
    }
    *out = &shim.props;
    return VGPU_CU_SUCCESS;
}

API CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
    const struct shim_device *p;
    CUresult r;

    if (!name || len <= 0) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    if ((r = props(dev, &p)) != VGPU_CU_SUCCESS) {
        return r;
    }
    snprintf(name, (size_t)len, "%s", p->name);
    return VGPU_CU_SUCCESS;
}

API CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
    const struct shim_device *p;
    CUresult r;

    if (!uuid) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    if ((r = props(dev, &p)) != VGPU_CU_SUCCESS) {
        return r;
    }
    memcpy(uuid->bytes, p->uuid, 16);
    return VGPU_CU_SUCCESS;
}

API CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    return cuDeviceGetUuid_v2(uuid, dev);
}

API CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    const struct shim_device *p;
    CUresult r;

    if (!bytes) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    if ((r = props(dev, &p)) != VGPU_CU_SUCCESS) {
        return r;
    }
    *bytes = (size_t)p->total_mem;
    return VGPU_CU_SUCCESS;
}

API CUresult cuDeviceGetAttribute(int *value, int attrib, CUdevice dev)
{
    const struct shim_device *p;
    CUresult r;

    if (!value || attrib <= 0 || attrib >= (int)VGPU_RPC_ATTRS) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    if ((r = props(dev, &p)) != VGPU_CU_SUCCESS) {
        return r;
    }
    *value = p->attr[attrib];
    return VGPU_CU_SUCCESS;
}

/* cuda.h: COMPUTE_CAPABILITY_MAJOR 75, MINOR 76. */
API CUresult cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
    CUresult r;

    if (!major || !minor) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    r = cuDeviceGetAttribute(major, 75, dev);
    return r == VGPU_CU_SUCCESS ? cuDeviceGetAttribute(minor, 76, dev) : r;
}

/* ---------------------------------------------------------------------- */
/* contexts                                                                */
/* ---------------------------------------------------------------------- */

static pthread_mutex_t primary_lock = PTHREAD_MUTEX_INITIALIZER;

static CUresult ctx_create(uint64_t *h, unsigned int flags, CUdevice dev)
{
    struct args a = {.n = 0};
    uint8_t res[8];
    size_t n = 0;
    CUresult r;

    CHECK_INIT();
    if (dev < 0 || (uint32_t)dev >= shim.device_count) {
        return VGPU_CU_ERROR_INVALID_DEVICE;
    }
    a32(&a, flags);
    a32(&a, (uint32_t)dev);
    a64(&a, shim.session);
    r = shim_call(VGPU_RPC_CTX_CREATE, a.b, a.n, NULL, 0, res, sizeof(res), &n);
    if (r == VGPU_CU_SUCCESS && n != 8) {
        r = VGPU_CU_ERROR_UNKNOWN;
    }
    if (r == VGPU_CU_SUCCESS) {
        *h = vgpu_get_le64(res);
    }
    return r;
}

API CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    uint64_t h = 0;
    CUresult r;

    if (!pctx) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    r = ctx_create(&h, flags, dev);
    if (r == VGPU_CU_SUCCESS) {
        *pctx = (CUcontext)(uintptr_t)h;
        shim_set_current(h);
    }
    return r;
}

/* CUDA 13's cuCtxCreate: the parameters (execution affinity, CIG) are
 * not remoted; a request for them is refused rather than ignored. */
API CUresult cuCtxCreate_v4(CUcontext *pctx, void *params, unsigned int flags,
                            CUdevice dev)
{
    if (params) {
        return shim_unsupported("cuCtxCreate_v4 with CUctxCreateParams");
    }
    return cuCtxCreate_v2(pctx, flags, dev);
}

API CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    struct args a = {.n = 0};
    uint64_t h = (uint64_t)(uintptr_t)ctx;
    CUresult r;

    CHECK_INIT();
    if (!h) {
        return VGPU_CU_ERROR_INVALID_CONTEXT;
    }
    a64(&a, h);
    r = shim_call(VGPU_RPC_CTX_DESTROY, a.b, a.n, NULL, 0, NULL, 0, NULL);
    shim_cls_context_gone(h);
    if (shim_current() == h) {
        shim_set_current(0);
    }
    if (h == shim.primary) {
        shim.primary = 0;
        shim.primary_refs = 0;
    }
    return r;
}

API CUresult cuCtxSetCurrent(CUcontext ctx)
{
    shim_set_current((uint64_t)(uintptr_t)ctx);
    return VGPU_CU_SUCCESS;
}

API CUresult cuCtxGetCurrent(CUcontext *pctx)
{
    if (!pctx) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    *pctx = (CUcontext)(uintptr_t)shim_current();
    return VGPU_CU_SUCCESS;
}

/* A one-deep stack is what programs use (push the primary, pop it). */
static __thread uint64_t ctx_stack[16];
static __thread unsigned ctx_depth;

API CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
    if (!ctx) {
        return VGPU_CU_ERROR_INVALID_CONTEXT;
    }
    if (ctx_depth == sizeof(ctx_stack) / sizeof(ctx_stack[0])) {
        return VGPU_CU_ERROR_OUT_OF_MEMORY;
    }
    ctx_stack[ctx_depth++] = shim_current();
    shim_set_current((uint64_t)(uintptr_t)ctx);
    return VGPU_CU_SUCCESS;
}

API CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
    if (!shim_current()) {
        return VGPU_CU_ERROR_INVALID_CONTEXT;
    }
    if (pctx) {
        *pctx = (CUcontext)(uintptr_t)shim_current();
    }
    shim_set_current(ctx_depth ? ctx_stack[--ctx_depth] : 0);
    return VGPU_CU_SUCCESS;
}

API CUresult cuCtxGetDevice(CUdevice *dev)
{
    if (!dev) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    if (!shim_current()) {
        return VGPU_CU_ERROR_INVALID_CONTEXT;
    }
    *dev = 0;
    return VGPU_CU_SUCCESS;
}

static CUresult ctx_sync(uint64_t ctx)
{
    struct args a = {.n = 0};

    CHECK_INIT();
    if (!ctx) {
        return VGPU_CU_ERROR_INVALID_CONTEXT;
    }
    a64(&a, ctx);
    return shim_call(VGPU_RPC_CTX_SYNC, a.b, a.n, NULL, 0, NULL, 0, NULL);
}

API CUresult cuCtxGetDevice_v2(CUdevice *dev, CUcontext ctx)
{
    if (!dev) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    if (!ctx && !shim_current()) {
        return VGPU_CU_ERROR_INVALID_CONTEXT;
    }
    *dev = 0;
    return VGPU_CU_SUCCESS;
}

API CUresult cuCtxSynchronize(void)
{
    return ctx_sync(shim_current());
}

/* CUDA 13: the context named, or the current one. */
API CUresult cuCtxSynchronize_v2(CUcontext ctx)
{
    return ctx_sync(ctx ? (uint64_t)(uintptr_t)ctx : shim_current());
}

CUresult shim_primary_ctx(CUdevice dev, uint64_t *h)
{
    CUresult r = VGPU_CU_SUCCESS;

    CHECK_INIT();
    pthread_mutex_lock(&primary_lock);
    if (!shim.primary) {
        r = ctx_create(&shim.primary, 0, dev);
    }
    *h = shim.primary;
    pthread_mutex_unlock(&primary_lock);
    return r;
}

API CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    uint64_t h = 0;
    CUresult r;

    if (!pctx) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    r = shim_primary_ctx(dev, &h);
    if (r == VGPU_CU_SUCCESS) {
        shim.primary_refs++;
        *pctx = (CUcontext)(uintptr_t)h;
    }
    return r;
}

API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    (void)dev;
    if (!shim.primary_refs) {
        return VGPU_CU_ERROR_INVALID_CONTEXT;
    }
    /* Kept until the process ends, as the driver keeps it while other
     * libraries of the process may still use it. */
    shim.primary_refs--;
    return VGPU_CU_SUCCESS;
}

API CUresult cuDevicePrimaryCtxRelease(CUdevice dev)
{
    return cuDevicePrimaryCtxRelease_v2(dev);
}

API CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags,
                                        int *active)
{
    (void)dev;
    if (!flags || !active) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    *flags = 0;
    *active = shim.primary != 0;
    return VGPU_CU_SUCCESS;
}

API CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags)
{
    (void)dev;
    (void)flags; /* scheduling flags: the host's context has its own */
    return VGPU_CU_SUCCESS;
}

/* ---------------------------------------------------------------------- */
/* memory                                                                  */
/* ---------------------------------------------------------------------- */

API CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytes)
{
    struct args a = {.n = 0};
    uint8_t res[8];
    size_t n = 0;
    CUresult r;
    NEED_CTX(ctx);

    if (!dptr) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    a64(&a, ctx);
    a64(&a, bytes);
    r = shim_call(VGPU_RPC_MEM_ALLOC, a.b, a.n, NULL, 0, res, sizeof(res), &n);
    if (r == VGPU_CU_SUCCESS && n == 8) {
        *dptr = vgpu_get_le64(res);
    }
    return r;
}

API CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    struct args a = {.n = 0};
    NEED_CTX(ctx);

    if (!dptr) {
        return VGPU_CU_SUCCESS; /* as CUDA: freeing 0 does nothing */
    }
    a64(&a, ctx);
    a64(&a, dptr);
    return shim_call(VGPU_RPC_MEM_FREE, a.b, a.n, NULL, 0, NULL, 0, NULL);
}

API CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total)
{
    struct args a = {.n = 0};
    uint8_t res[16];
    size_t n = 0;
    CUresult r;
    NEED_CTX(ctx);

    if (!free_bytes || !total) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    a64(&a, ctx);
    r = shim_call(VGPU_RPC_MEM_INFO, a.b, a.n, NULL, 0, res, sizeof(res), &n);
    if (r == VGPU_CU_SUCCESS && n == 16) {
        *free_bytes = (size_t)vgpu_get_le64(res);
        *total = (size_t)vgpu_get_le64(res + 8);
    }
    return r;
}

/* Host to device, cut into batch-sized pieces; queued (async) or waited
 * for (the synchronous copy returns its own error). */
static CUresult htod(CUdeviceptr dst, const void *src, size_t bytes, CUstream s,
                     int wait)
{
    const uint8_t *p = src;
    CUresult r = VGPU_CU_SUCCESS;
    NEED_CTX(ctx);

    if (!src && bytes) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    while (r == VGPU_CU_SUCCESS && bytes) {
        uint64_t n =
            bytes < shim_max_tail() - 64 ? bytes : shim_max_tail() - 64;
        struct args a = {.n = 0};

        a64(&a, ctx);
        a64(&a, stream_handle(s));
        a64(&a, dst);
        a64(&a, n);
        r = shim_queue(VGPU_RPC_MEMCPY_HTOD, a.b, a.n, p, n, 0);
        p += n;
        dst += n;
        bytes -= (size_t)n;
    }
    if (r == VGPU_CU_SUCCESS && wait) {
        r = shim_flush(NULL, 0, NULL);
    }
    return r;
}

static CUresult dtoh(void *dst, CUdeviceptr src, size_t bytes, CUstream s)
{
    uint8_t *p = dst;
    CUresult r = VGPU_CU_SUCCESS;
    NEED_CTX(ctx);

    if (!dst && bytes) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    while (r == VGPU_CU_SUCCESS && bytes) {
        uint64_t n =
            bytes < shim_max_tail() - 64 ? bytes : shim_max_tail() - 64;
        struct args a = {.n = 0};
        size_t got = 0;

        a64(&a, ctx);
        a64(&a, stream_handle(s));
        a64(&a, src);
        a64(&a, n);
        r = shim_call(VGPU_RPC_MEMCPY_DTOH, a.b, a.n, NULL, 0, p, (size_t)n,
                      &got);
        if (r == VGPU_CU_SUCCESS && got != n) {
            r = VGPU_CU_ERROR_UNKNOWN;
        }
        p += n;
        src += n;
        bytes -= (size_t)n;
    }
    return r;
}

static CUresult dtod(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s,
                     int wait)
{
    struct args a = {.n = 0};
    CUresult r;
    NEED_CTX(ctx);

    a64(&a, ctx);
    a64(&a, stream_handle(s));
    a64(&a, dst);
    a64(&a, src);
    a64(&a, bytes);
    r = shim_queue(VGPU_RPC_MEMCPY_DTOD, a.b, a.n, NULL, 0, 0);
    return r == VGPU_CU_SUCCESS && wait ? shim_flush(NULL, 0, NULL) : r;
}

static CUresult memset_n(CUdeviceptr dst, uint32_t value, uint32_t elem,
                         size_t count, CUstream s, int wait)
{
    struct args a = {.n = 0};
    CUresult r;
    NEED_CTX(ctx);

    a64(&a, ctx);
    a64(&a, stream_handle(s));
    a64(&a, dst);
    a32(&a, value);
    a32(&a, elem);
    a64(&a, count);
    r = shim_queue(VGPU_RPC_MEMSET, a.b, a.n, NULL, 0, 0);
    return r == VGPU_CU_SUCCESS && wait ? shim_flush(NULL, 0, NULL) : r;
}

/* The synchronous copies wait; with the legacy default stream they are
 * ordered after all earlier work of the context, as in CUDA. */
API CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n)
{
    return htod(dst, src, n, NULL, 1);
}
API CUresult cuMemcpyHtoD_v2_ptds(CUdeviceptr dst, const void *src, size_t n)
{
    return htod(dst, src, n, NULL, 1);
}
API CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n)
{
    return dtoh(dst, src, n, NULL);
}
API CUresult cuMemcpyDtoH_v2_ptds(void *dst, CUdeviceptr src, size_t n)
{
    return dtoh(dst, src, n, NULL);
}
API CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    return dtod(dst, src, n, NULL, 1);
}
API CUresult cuMemcpyDtoD_v2_ptds(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    return dtod(dst, src, n, NULL, 1);
}
/* Asynchronous: the bytes are taken now, so the caller's buffer is free
 * on return; the copy runs in order on its stream. */
API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n,
                                  CUstream s)
{
    return htod(dst, src, n, s, 0);
}
API CUresult cuMemcpyHtoDAsync_v2_ptsz(CUdeviceptr dst, const void *src,
                                       size_t n, CUstream s)
{
    return htod(dst, src, n, s, 0);
}
/* Device to host must land in the caller's memory: it waits (earlier
 * than CUDA requires, never later). */
API CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n,
                                  CUstream s)
{
    return dtoh(dst, src, n, s);
}
API CUresult cuMemcpyDtoHAsync_v2_ptsz(void *dst, CUdeviceptr src, size_t n,
                                       CUstream s)
{
    return dtoh(dst, src, n, s);
}
API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n,
                                  CUstream s)
{
    return dtod(dst, src, n, s, 0);
}
API CUresult cuMemcpyDtoDAsync_v2_ptsz(CUdeviceptr dst, CUdeviceptr src,
                                       size_t n, CUstream s)
{
    return dtod(dst, src, n, s, 0);
}
API CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t n)
{
    return memset_n(d, v, 1, n, NULL, 1);
}
API CUresult cuMemsetD16_v2(CUdeviceptr d, unsigned short v, size_t n)
{
    return memset_n(d, v, 2, n, NULL, 1);
}
API CUresult cuMemsetD32_v2(CUdeviceptr d, unsigned int v, size_t n)
{
    return memset_n(d, v, 4, n, NULL, 1);
}
API CUresult cuMemsetD8_v2_ptds(CUdeviceptr d, unsigned char v, size_t n)
{
    return memset_n(d, v, 1, n, NULL, 1);
}
API CUresult cuMemsetD32_v2_ptds(CUdeviceptr d, unsigned int v, size_t n)
{
    return memset_n(d, v, 4, n, NULL, 1);
}
API CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n,
                             CUstream s)
{
    return memset_n(d, v, 1, n, s, 0);
}
API CUresult cuMemsetD16Async(CUdeviceptr d, unsigned short v, size_t n,
                              CUstream s)
{
    return memset_n(d, v, 2, n, s, 0);
}
API CUresult cuMemsetD32Async(CUdeviceptr d, unsigned int v, size_t n,
                              CUstream s)
{
    return memset_n(d, v, 4, n, s, 0);
}
API CUresult cuMemsetD8Async_ptsz(CUdeviceptr d, unsigned char v, size_t n,
                                  CUstream s)
{
    return memset_n(d, v, 1, n, s, 0);
}
API CUresult cuMemsetD32Async_ptsz(CUdeviceptr d, unsigned int v, size_t n,
                                   CUstream s)
{
    return memset_n(d, v, 4, n, s, 0);
}

/* Page-locked host memory is the guest's own: plain memory serves (the
 * copies go through the rings either way). */
API CUresult cuMemAllocHost_v2(void **pp, size_t bytes)
{
    if (!pp) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    *pp = malloc(bytes ? bytes : 1);
    return *pp ? VGPU_CU_SUCCESS : VGPU_CU_ERROR_OUT_OF_MEMORY;
}
API CUresult cuMemHostAlloc(void **pp, size_t bytes, unsigned int flags)
{
    (void)flags;
    return cuMemAllocHost_v2(pp, bytes);
}
API CUresult cuMemFreeHost(void *p)
{
    free(p);
    return VGPU_CU_SUCCESS;
}

/* ---------------------------------------------------------------------- */
/* modules and launches                                                    */
/* ---------------------------------------------------------------------- */

static CUresult module_load(CUmodule *mod, const void *image, size_t max)
{
    struct args a = {.n = 0};
    enum cuda_image_kind kind;
    size_t size = 0;
    uint8_t res[8];
    size_t n = 0;
    CUresult r;
    NEED_CTX(ctx);

    if (!mod || !image) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    /* The API gives no size: the image's own headers do. */
    if (cuda_image_size(image, max, &kind, &size)) {
        return VGPU_CU_ERROR_INVALID_IMAGE;
    }
    a64(&a, ctx);
    a64(&a, size);
    /* Over the batch buffer (4 MB), the image goes in a request of its own,
     * up to the device's largest. */
    r = shim_call_large(VGPU_RPC_MODULE_LOAD, a.b, a.n, image, size, res,
                        sizeof(res), &n);
    if (r == VGPU_CU_SUCCESS && n == 8) {
        *mod = (CUmodule)(uintptr_t)vgpu_get_le64(res);
    }
    return r;
}

API CUresult cuModuleLoadData(CUmodule *mod, const void *image)
{
    /* Unbounded: the image is in the caller's memory, trusted to be as
     * large as its headers say (the driver makes the same assumption). */
    return module_load(mod, image, SIZE_MAX / 2);
}

/* cuda.h's CUjit_option values for the log buffers and their sizes. */
#define JIT_INFO_LOG_BUFFER 3
#define JIT_INFO_LOG_BUFFER_SIZE_BYTES 4
#define JIT_ERROR_LOG_BUFFER 5
#define JIT_ERROR_LOG_BUFFER_SIZE_BYTES 6

/* Write text (may be "") into the log buffer option `buf` names, within
 * the size its size option gives, and that size option's value becomes
 * the bytes written, as the driver reports them. */
static void jit_log(unsigned nopts, const int *opts, void **vals, int buf,
                    int size_opt, const char *text)
{
    char *out = NULL;
    int size_at = -1;
    size_t cap = 0, n;

    for (unsigned i = 0; i < nopts; i++) {
        if (opts[i] == buf) {
            out = vals[i];
        } else if (opts[i] == size_opt) {
            size_at = (int)i;
            /* An unsigned int in a pointer's slot: the upper half may be
             * anything. */
            cap = (unsigned)(uintptr_t)vals[i];
        }
    }
    if (!out || size_at < 0 || cap == 0) {
        return;
    }
    n = strlen(text) < cap - 1 ? strlen(text) : cap - 1;
    memcpy(out, text, n);
    out[n] = 0;
    vals[size_at] = (void *)(uintptr_t)n;
}

API CUresult cuModuleLoadDataEx(CUmodule *mod, const void *image,
                                unsigned int nopts, int *opts, void **vals)
{
    CUresult r = cuModuleLoadData(mod, image);

    /* The other JIT options (optimisation level, targets) are not passed
     * on: the host JITs PTX with its defaults, and its logs do not come
     * back.  The log buffers say so rather than hold what they held. */
    if (nopts && opts && vals) {
        char why[160] = "";
        const char *name = NULL;

        if (r != VGPU_CU_SUCCESS) {
            cuGetErrorName(r, &name);
            snprintf(why, sizeof(why),
                     "vgpu: the image was loaded on the host, which answered "
                     "%s; the host's JIT log is not passed back",
                     name ? name : "an error");
        }
        jit_log(nopts, opts, vals, JIT_INFO_LOG_BUFFER,
                JIT_INFO_LOG_BUFFER_SIZE_BYTES, "");
        jit_log(nopts, opts, vals, JIT_ERROR_LOG_BUFFER,
                JIT_ERROR_LOG_BUFFER_SIZE_BYTES, why);
    }
    return r;
}

API CUresult cuModuleLoadFatBinary(CUmodule *mod, const void *fatbin)
{
    return cuModuleLoadData(mod, fatbin);
}

API CUresult cuModuleLoad(CUmodule *mod, const char *path)
{
    FILE *f;
    long len;
    uint8_t *buf;
    CUresult r;

    if (!path) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    f = fopen(path, "rb");
    if (!f) {
        return 301; /* CUDA_ERROR_FILE_NOT_FOUND */
    }
    if (fseek(f, 0, SEEK_END) || (len = ftell(f)) <= 0 ||
        fseek(f, 0, SEEK_SET)) {
        fclose(f);
        return VGPU_CU_ERROR_INVALID_IMAGE;
    }
    buf = malloc((size_t)len + 1);
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        fclose(f);
        return VGPU_CU_ERROR_INVALID_IMAGE;
    }
    fclose(f);
    buf[len] = 0; /* PTX text ends there */
    r = module_load(mod, buf, (size_t)len + 1);
    free(buf);
    return r;
}

API CUresult cuModuleUnload(CUmodule mod)
{
    struct args a = {.n = 0};
    NEED_CTX(ctx);

    a64(&a, ctx);
    a64(&a, (uint64_t)(uintptr_t)mod);
    return shim_call(VGPU_RPC_MODULE_UNLOAD, a.b, a.n, NULL, 0, NULL, 0, NULL);
}

API CUresult cuModuleGetFunction(CUfunction *pf, CUmodule mod, const char *name)
{
    static uint8_t res[VGPU_RPC_RES_GET_FUNCTION_MAX];
    struct args a = {.n = 0};
    struct CUfunc_st *f;
    size_t n = 0, len;
    CUresult r;
    NEED_CTX(ctx);

    if (!pf || !name || (len = strlen(name) + 1) > VGPU_RPC_NAME_MAX) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    a64(&a, ctx);
    a64(&a, (uint64_t)(uintptr_t)mod);
    r = shim_call(VGPU_RPC_MODULE_GET_FUNCTION, a.b, a.n, name, len, res,
                  sizeof(res), &n);
    if (r != VGPU_CU_SUCCESS) {
        return r;
    }
    f = calloc(1, sizeof(*f));
    if (!f) {
        return VGPU_CU_ERROR_OUT_OF_MEMORY;
    }
    f->h = vgpu_get_le64(res);
    f->ctx = ctx;
    f->count = vgpu_get_le32(res + 8);
    f->total = vgpu_get_le32(res + 12);
    if (n < 16 || f->count > VGPU_RPC_MAX_PARAMS ||
        n < 16 + 8 * (size_t)f->count) {
        free(f);
        return VGPU_CU_ERROR_UNKNOWN;
    }
    for (uint32_t i = 0; i < f->count; i++) {
        f->param[i].offset = vgpu_get_le32(res + 16 + 8 * i);
        f->param[i].size = vgpu_get_le32(res + 20 + 8 * i);
        if ((uint64_t)f->param[i].offset + f->param[i].size > f->total) {
            free(f);
            return VGPU_CU_ERROR_UNKNOWN;
        }
    }
    *pf = f;
    return VGPU_CU_SUCCESS;
}

API CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes,
                                  CUmodule mod, const char *name)
{
    struct args a = {.n = 0};
    uint8_t res[16];
    size_t n = 0, len;
    CUresult r;
    NEED_CTX(ctx);

    if (!name || (len = strlen(name) + 1) > VGPU_RPC_NAME_MAX) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    a64(&a, ctx);
    a64(&a, (uint64_t)(uintptr_t)mod);
    r = shim_call(VGPU_RPC_MODULE_GET_GLOBAL, a.b, a.n, name, len, res,
                  sizeof(res), &n);
    if (r == VGPU_CU_SUCCESS && n == 16) {
        if (dptr) {
            *dptr = vgpu_get_le64(res);
        }
        if (bytes) {
            *bytes = (size_t)vgpu_get_le64(res + 8);
        }
    }
    return r;
}

CUresult shim_launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                     unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                     CUstream s, void **params, void **extra,
                     const struct shim_launch_attrs *ex)
{
    static __thread uint8_t block[VGPU_RPC_MAX_PARAM_BYTES];
    struct args a = {.n = 0};
    const void *src = block;
    NEED_CTX(ctx);

    if (!f) {
        return VGPU_CU_ERROR_INVALID_HANDLE;
    }
    if (f->ctx != ctx) {
        return VGPU_CU_ERROR_INVALID_CONTEXT;
    }
    if (params) {
        /* Each parameter from where kernelParams[i] points, to where the
         * function's layout puts it. */
        memset(block, 0, f->total);
        for (uint32_t i = 0; i < f->count; i++) {
            if (!params[i]) {
                return VGPU_CU_ERROR_INVALID_VALUE;
            }
            memcpy(block + f->param[i].offset, params[i], f->param[i].size);
        }
    } else if (extra) {
        const void *buf = NULL;
        size_t size = (size_t)-1;

        for (unsigned i = 0; extra[i] != SHIM_LAUNCH_PARAM_END && i < 8;
             i += 2) {
            if (extra[i] == SHIM_LAUNCH_PARAM_BUFFER_POINTER) {
                buf = extra[i + 1];
            } else if (extra[i] == SHIM_LAUNCH_PARAM_BUFFER_SIZE) {
                size = *(const size_t *)extra[i + 1];
            } else {
                return VGPU_CU_ERROR_INVALID_VALUE;
            }
        }
        if (!buf || size != f->total) {
            return VGPU_CU_ERROR_INVALID_VALUE;
        }
        src = buf;
    } else if (f->count) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    a64(&a, ctx);
    a64(&a, f->h);
    a32(&a, gx);
    a32(&a, gy);
    a32(&a, gz);
    a32(&a, bx);
    a32(&a, by);
    a32(&a, bz);
    a32(&a, shmem);
    a32(&a, f->total);
    a64(&a, stream_handle(s));
    if (!ex) {
        return shim_queue(VGPU_RPC_LAUNCH, a.b, a.n, src, f->total, 0);
    }
    for (unsigned i = 0; i < 3; i++) {
        a32(&a, ex->cluster[i]);
    }
    a32(&a, ex->cooperative);
    a32(&a, ex->cluster_policy);
    a32(&a, 0);
    return shim_queue(VGPU_RPC_LAUNCH_EX, a.b, a.n, src, f->total, 0);
}

API CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                            unsigned bx, unsigned by, unsigned bz,
                            unsigned shmem, CUstream s, void **params,
                            void **extra)
{
    return shim_launch(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra,
                       NULL);
}

API CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy,
                                 unsigned gz, unsigned bx, unsigned by,
                                 unsigned bz, unsigned shmem, CUstream s,
                                 void **params, void **extra)
{
    return shim_launch(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra,
                       NULL);
}

/* ---------------------------------------------------------------------- */
/* streams and events                                                      */
/* ---------------------------------------------------------------------- */

static CUresult handle_call(uint32_t fn, uint64_t h, void **out)
{
    struct args a = {.n = 0};
    uint8_t res[8];
    size_t n = 0;
    CUresult r;
    NEED_CTX(ctx);

    a64(&a, ctx);
    a64(&a, h);
    r = shim_call(fn, a.b, a.n, NULL, 0, out ? res : NULL, out ? 8 : 0, &n);
    if (out && r == VGPU_CU_SUCCESS) {
        *out = (void *)(uintptr_t)(n == 8 ? vgpu_get_le64(res) : 0);
    }
    return r;
}

API CUresult cuStreamCreateWithPriority(CUstream *ps, unsigned int flags,
                                        int priority)
{
    struct args a = {.n = 0};
    uint8_t res[8];
    size_t n = 0;
    CUresult r;
    NEED_CTX(ctx);

    if (!ps) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    a64(&a, ctx);
    a32(&a, flags);
    a32(&a, (uint32_t)priority);
    r = shim_call(VGPU_RPC_STREAM_CREATE, a.b, a.n, NULL, 0, res, sizeof(res),
                  &n);
    if (r == VGPU_CU_SUCCESS && n == 8) {
        *ps = (CUstream)(uintptr_t)vgpu_get_le64(res);
    }
    return r;
}

API CUresult cuStreamCreate(CUstream *ps, unsigned int flags)
{
    return cuStreamCreateWithPriority(ps, flags, 0);
}

API CUresult cuStreamDestroy_v2(CUstream s)
{
    return handle_call(VGPU_RPC_STREAM_DESTROY, stream_handle(s), NULL);
}

API CUresult cuStreamSynchronize(CUstream s)
{
    return handle_call(VGPU_RPC_STREAM_SYNC, stream_handle(s), NULL);
}
API CUresult cuStreamSynchronize_ptsz(CUstream s)
{
    return cuStreamSynchronize(s);
}

API CUresult cuStreamQuery(CUstream s)
{
    return handle_call(VGPU_RPC_STREAM_QUERY, stream_handle(s), NULL);
}
API CUresult cuStreamQuery_ptsz(CUstream s)
{
    return cuStreamQuery(s);
}

API CUresult cuStreamWaitEvent(CUstream s, CUevent ev, unsigned int flags)
{
    struct args a = {.n = 0};
    NEED_CTX(ctx);

    a64(&a, ctx);
    a64(&a, stream_handle(s));
    a64(&a, (uint64_t)(uintptr_t)ev);
    a32(&a, flags);
    return shim_queue(VGPU_RPC_STREAM_WAIT_EVENT, a.b, a.n, NULL, 0, 0);
}
API CUresult cuStreamWaitEvent_ptsz(CUstream s, CUevent ev, unsigned int fl)
{
    return cuStreamWaitEvent(s, ev, fl);
}

API CUresult cuEventCreate(CUevent *pe, unsigned int flags)
{
    struct args a = {.n = 0};
    uint8_t res[8];
    size_t n = 0;
    CUresult r;
    NEED_CTX(ctx);

    if (!pe) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    a64(&a, ctx);
    a32(&a, flags);
    r = shim_call(VGPU_RPC_EVENT_CREATE, a.b, a.n, NULL, 0, res, sizeof(res),
                  &n);
    if (r == VGPU_CU_SUCCESS && n == 8) {
        *pe = (CUevent)(uintptr_t)vgpu_get_le64(res);
    }
    return r;
}

API CUresult cuEventDestroy_v2(CUevent ev)
{
    return handle_call(VGPU_RPC_EVENT_DESTROY, (uint64_t)(uintptr_t)ev, NULL);
}

API CUresult cuEventRecord(CUevent ev, CUstream s)
{
    struct args a = {.n = 0};
    NEED_CTX(ctx);

    a64(&a, ctx);
    a64(&a, (uint64_t)(uintptr_t)ev);
    a64(&a, stream_handle(s));
    return shim_queue(VGPU_RPC_EVENT_RECORD, a.b, a.n, NULL, 0, 0);
}
API CUresult cuEventRecord_ptsz(CUevent ev, CUstream s)
{
    return cuEventRecord(ev, s);
}

API CUresult cuEventSynchronize(CUevent ev)
{
    return handle_call(VGPU_RPC_EVENT_SYNC, (uint64_t)(uintptr_t)ev, NULL);
}

API CUresult cuEventQuery(CUevent ev)
{
    return handle_call(VGPU_RPC_EVENT_QUERY, (uint64_t)(uintptr_t)ev, NULL);
}

API CUresult cuEventElapsedTime_v2(float *ms, CUevent a0, CUevent a1)
{
    struct args a = {.n = 0};
    uint8_t res[4];
    size_t n = 0;
    CUresult r;
    NEED_CTX(ctx);

    if (!ms) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    a64(&a, ctx);
    a64(&a, (uint64_t)(uintptr_t)a0);
    a64(&a, (uint64_t)(uintptr_t)a1);
    r = shim_call(VGPU_RPC_EVENT_ELAPSED, a.b, a.n, NULL, 0, res, sizeof(res),
                  &n);
    if (r == VGPU_CU_SUCCESS && n == 4) {
        uint32_t bits = vgpu_get_le32(res);

        memcpy(ms, &bits, sizeof(*ms));
    }
    return r;
}

API CUresult cuEventElapsedTime(float *ms, CUevent a0, CUevent a1)
{
    return cuEventElapsedTime_v2(ms, a0, a1);
}

/* ---------------------------------------------------------------------- */
/* libraries (CUDA 12's context-independent modules)                      */
/* ---------------------------------------------------------------------- */

/*
 * NVIDIA's runtime loads every translation unit's fatbin as a library at
 * start-up, before any context exists, and asks for a kernel at its first
 * launch.  So a library is the image, kept here; it is loaded as a module
 * into a context when a kernel of it is first asked for there.
 */
#define NVCC_FATBIN_WRAPPER_MAGIC 0x466243b1u
#define LIB_CONTEXTS 8

struct shim_library {
    uint8_t *image;
    size_t size;
    pthread_mutex_t lock;
    struct {
        uint64_t ctx;
        CUmodule mod;
    } loaded[LIB_CONTEXTS];
    unsigned nloaded;
};

typedef struct shim_library *CUlibrary;
typedef CUfunction CUkernel;

/* An image given to the library calls: a fatbin, cubin or PTX, or nvcc's
 * wrapper around a fatbin {magic, version, fatbin, unused}. */
static const void *unwrap_image(const void *code)
{
    uint32_t magic;

    memcpy(&magic, code, sizeof(magic));
    if (magic == NVCC_FATBIN_WRAPPER_MAGIC) {
        const void *fatbin;

        memcpy(&fatbin, (const uint8_t *)code + 8, sizeof(fatbin));
        return fatbin;
    }
    return code;
}

API CUresult cuLibraryLoadData(CUlibrary *lib, const void *code, void *jitopts,
                               void **jitvals, unsigned njit, void *libopts,
                               void **libvals, unsigned nlib)
{
    enum cuda_image_kind kind;
    struct shim_library *l;
    const void *img;
    size_t size;

    (void)jitopts;
    (void)jitvals;
    (void)njit;
    (void)libopts; /* CU_LIBRARY_BINARY_IS_PRESERVED or not: copied */
    (void)libvals;
    (void)nlib;
    if (!lib || !code) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    img = unwrap_image(code);
    if (!img || cuda_image_size(img, SIZE_MAX / 2, &kind, &size)) {
        return VGPU_CU_ERROR_INVALID_IMAGE;
    }
    l = calloc(1, sizeof(*l));
    if (!l || !(l->image = malloc(size + 1))) {
        free(l);
        return VGPU_CU_ERROR_OUT_OF_MEMORY;
    }
    memcpy(l->image, img, size);
    l->image[size] = 0;
    l->size = size;
    pthread_mutex_init(&l->lock, NULL);
    *lib = l;
    return VGPU_CU_SUCCESS;
}

API CUresult cuLibraryUnload(CUlibrary lib)
{
    if (!lib) {
        return VGPU_CU_ERROR_INVALID_HANDLE;
    }
    /* Its modules go with their contexts (or the VM's session). */
    pthread_mutex_destroy(&lib->lock);
    free(lib->image);
    free(lib);
    return VGPU_CU_SUCCESS;
}

/* The library's module in the current context, loaded on first use. */
static CUresult library_module(CUlibrary lib, CUmodule *mod)
{
    uint64_t ctx = shim_current();
    CUresult r = VGPU_CU_SUCCESS;

    if (!lib) {
        return VGPU_CU_ERROR_INVALID_HANDLE;
    }
    if (!ctx) {
        return VGPU_CU_ERROR_INVALID_CONTEXT;
    }
    pthread_mutex_lock(&lib->lock);
    for (unsigned i = 0; i < lib->nloaded; i++) {
        if (lib->loaded[i].ctx == ctx) {
            *mod = lib->loaded[i].mod;
            pthread_mutex_unlock(&lib->lock);
            return VGPU_CU_SUCCESS;
        }
    }
    if (lib->nloaded == LIB_CONTEXTS) {
        r = shim_unsupported("a library used in more than 8 contexts");
    } else {
        r = module_load(mod, lib->image, lib->size + 1);
    }
    if (r == VGPU_CU_SUCCESS) {
        lib->loaded[lib->nloaded].ctx = ctx;
        lib->loaded[lib->nloaded].mod = *mod;
        lib->nloaded++;
    }
    pthread_mutex_unlock(&lib->lock);
    return r;
}

API CUresult cuLibraryGetModule(CUmodule *mod, CUlibrary lib)
{
    return mod ? library_module(lib, mod)
               : (CUresult)VGPU_CU_ERROR_INVALID_VALUE;
}

/* A kernel is the function of the library's module in the current
 * context: cudart launches it cast to a CUfunction (allowed since 12.0). */
API CUresult cuLibraryGetKernel(CUkernel *kernel, CUlibrary lib,
                                const char *name)
{
    CUmodule mod;
    CUresult r;

    if (!kernel || !name) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    r = library_module(lib, &mod);
    return r == VGPU_CU_SUCCESS ? cuModuleGetFunction(kernel, mod, name) : r;
}

API CUresult cuKernelGetFunction(CUfunction *fn, CUkernel kernel)
{
    if (!fn || !kernel) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    if (kernel->ctx != shim_current()) {
        return VGPU_CU_ERROR_INVALID_CONTEXT;
    }
    *fn = kernel;
    return VGPU_CU_SUCCESS;
}

/* Modules load whole, when asked (CUDA's eager loading). */
API CUresult cuModuleGetLoadingMode(int *mode)
{
    if (!mode) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    *mode = 1; /* CU_MODULE_EAGER_LOADING */
    return VGPU_CU_SUCCESS;
}
