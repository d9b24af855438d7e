/*
 * remote/exec.c - owns running the calls of a v3 batch in a VM's session
 * (remote/exec.h): what each call checks and which driver entry it
 * becomes.  The layouts are the contract's (vgpu/rpc.h); the batch was
 * checked whole by remote/batch.c before it got here.
 */
#include "exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../log.h"
#include "batch.h"
#include "cuda_image.h"
#include "vgpu/rpc.h"

/* What one call answers: a status and result bytes at res (res_len). */
struct call {
    const struct rpc_call_view *v;
    uint8_t *res; /* where its results go: room for the batch check's max */
    uint32_t res_len;
};

struct exec {
    struct rs_session *s;
    const struct rs_env *env;
    const struct cu_api *api;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t arg64(const struct call *c, unsigned off)
{
    return vgpu_get_le64(c->v->fixed + off);
}

static uint32_t arg32(const struct call *c, unsigned off)
{
    return vgpu_get_le32(c->v->fixed + off);
}

static void put64(struct call *c, uint64_t v)
{
    vgpu_put_le64(c->res + c->res_len, v);
    c->res_len += 8;
}

static void put32(struct call *c, uint32_t v)
{
    vgpu_put_le32(c->res + c->res_len, v);
    c->res_len += 4;
}

/* CUDA errors after which the context cannot be used (CUDA's own rule:
 * they are sticky, every later call fails with them). */
static bool is_sticky(CUresult r)
{
    return r == CUDA_ERROR_ILLEGAL_ADDRESS || r == CUDA_ERROR_LAUNCH_TIMEOUT ||
           (r >= CUDA_ERROR_HARDWARE_STACK_ERROR &&
            r <= CUDA_ERROR_LAUNCH_FAILED) ||
           r == CUDA_ERROR_ECC_UNCORRECTABLE || r == CUDA_ERROR_UNKNOWN;
}

/* The guest context named by the call's first argument. */
static CUresult need_ctx(struct exec *x, const struct call *c, uint64_t *hctx)
{
    *hctx = arg64(c, 0);
    return rs_get(x->s, RS_CTX, *hctx) ? CUDA_SUCCESS
                                       : CUDA_ERROR_INVALID_CONTEXT;
}

/* An object of kind made in context hctx. */
static struct rs_object *obj_in(struct exec *x, enum rs_kind kind,
                                uint64_t hctx, uint64_t h)
{
    struct rs_object *o = rs_get(x->s, kind, h);

    return o && o->ctx == hctx ? o : NULL;
}

/* Handle 0 is the legacy default stream (the VM's host context is the
 * VM's alone, so its NULL stream is too). */
static CUresult stream_of(struct exec *x, uint64_t hctx, uint64_t h,
                          CUstream *st)
{
    struct rs_object *o;

    if (h == 0) {
        *st = NULL;
        return CUDA_SUCCESS;
    }
    o = obj_in(x, RS_STREAM, hctx, h);
    if (!o) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    *st = o->host;
    return CUDA_SUCCESS;
}

/* The calls that name a context first and a stream second (most
 * copies, memsets, stream calls): both looked up. */
static CUresult ctx_stream(struct exec *x, const struct call *c, uint64_t *hctx,
                           CUstream *st)
{
    CUresult r = need_ctx(x, c, hctx);

    return r == CUDA_SUCCESS ? stream_of(x, *hctx, arg64(c, 8), st) : r;
}

#define NEED(entry)                                                            \
    do {                                                                       \
        if (!x->api->entry) {                                                  \
            return CUDA_ERROR_NOT_SUPPORTED;                                   \
        }                                                                      \
    } while (0)

/* ---------------------------------------------------------------------- */
/* device and contexts                                                     */
/* ---------------------------------------------------------------------- */

static CUresult do_get_version(struct exec *x, struct call *c)
{
    int version = 0;

    x->api->DriverGetVersion(&version);
    put32(c, VGPU_RPC_VERSION);
    put32(c, (uint32_t)version);
    put32(c, 1); /* the VM's GPU: its pool's, chosen by the mediator */
    return CUDA_SUCCESS;
}

static uint64_t quota_cut(const struct exec *x, uint64_t total)
{
    uint64_t q = x->env->quota;

    return q && q < total ? q : total;
}

static CUresult do_device_props(struct exec *x, struct call *c)
{
    char name[VGPU_RPC_DEV_NAME_LEN] = {0};
    CUuuid uuid;
    size_t total = 0;
    CUresult r;

    if (arg32(c, 0) != 0) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    r = x->api->DeviceGetName(name, sizeof(name) - 1, x->env->dev);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    memset(&uuid, 0, sizeof(uuid));
    x->api->DeviceGetUuid(&uuid, x->env->dev);
    r = x->api->DeviceTotalMem(&total, x->env->dev);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    memcpy(c->res, name, sizeof(name));
    memcpy(c->res + sizeof(name), uuid.bytes, 16);
    c->res_len = sizeof(name) + 16;
    put64(c, quota_cut(x, total));
    for (unsigned i = 0; i < VGPU_RPC_ATTRS; i++) {
        int v = 0;

        if (i == 0 || x->api->DeviceGetAttribute(&v, (CUdevice_attribute)i,
                                                 x->env->dev) != CUDA_SUCCESS) {
            v = 0;
        }
        put32(c, (uint32_t)v);
    }
    return CUDA_SUCCESS;
}

static CUresult do_ctx_create(struct exec *x, struct call *c)
{
    struct rs_object *o;
    uint64_t h;

    if (arg32(c, 4) != 0) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    h = rs_add(x->s, RS_CTX, 0, &o);
    if (!h) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    o->parent = arg64(c, 8); /* the guest process's session, or 0 */
    put64(c, h);
    return CUDA_SUCCESS;
}

/* Destroy one host object (with the VM's host context current). */
static void destroy_object(void *arg, uint64_t h, struct rs_object *o)
{
    struct exec *x = arg;

    switch (o->kind) {
    case RS_STREAM:
        if (o->host && x->api->StreamDestroy) {
            x->api->StreamDestroy(o->host);
        }
        break;
    case RS_EVENT:
        if (o->host && x->api->EventDestroy) {
            x->api->EventDestroy(o->host);
        }
        break;
    case RS_MODULE:
        if (o->host && x->api->ModuleUnload) {
            x->api->ModuleUnload(o->host);
        }
        break;
    default: /* functions go with their module, contexts are handles */
        break;
    }
    rs_remove(x->s, h);
}

static void free_alloc(void *arg, uint64_t dptr, bool owned)
{
    struct exec *x = arg;

    if (owned) {
        x->api->MemFree((CUdeviceptr)dptr);
    }
}

/* Everything made in guest context hctx (0: in any), in the order CUDA
 * frees it: work finished, then streams and events, modules (their
 * functions and globals with them), memory. */
static void destroy_in(struct exec *x, uint64_t hctx)
{
    if (x->api->CtxSynchronize) {
        x->api->CtxSynchronize();
    }
    rs_each(x->s, hctx, RS_STREAM, destroy_object, x);
    rs_each(x->s, hctx, RS_EVENT, destroy_object, x);
    rs_each(x->s, hctx, RS_FUNC, destroy_object, x);
    rs_each(x->s, hctx, RS_MODULE, destroy_object, x);
    rs_alloc_each_remove(x->s, hctx, 0, free_alloc, x);
}

static CUresult do_ctx_destroy(struct exec *x, struct call *c)
{
    uint64_t hctx;
    CUresult r = need_ctx(x, c, &hctx);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    destroy_in(x, hctx);
    rs_remove(x->s, hctx);
    return CUDA_SUCCESS;
}

struct of_session {
    struct exec *x;
    uint64_t session;
};

static void end_context_of(void *arg, uint64_t h, struct rs_object *o)
{
    struct of_session *e = arg;

    if (o->parent == e->session) {
        destroy_in(e->x, h);
        rs_remove(e->x->s, h);
    }
}

/* The guest process behind session is gone: its contexts go too.  Any
 * number is accepted (a session with no contexts ends nothing), since
 * the guest's driver sends it for every file that asked for one. */
static CUresult do_session_end(struct exec *x, struct call *c)
{
    struct of_session e = {x, arg64(c, 0)};

    if (e.session) {
        rs_each(x->s, 0, RS_CTX, end_context_of, &e);
    }
    return CUDA_SUCCESS;
}

static CUresult do_ctx_sync(struct exec *x, struct call *c)
{
    uint64_t hctx;
    CUresult r = need_ctx(x, c, &hctx);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    NEED(CtxSynchronize);
    return x->api->CtxSynchronize();
}

/* ---------------------------------------------------------------------- */
/* memory                                                                  */
/* ---------------------------------------------------------------------- */

static uint64_t vm_used(const struct exec *x)
{
    return rs_mem_used(x->s) + x->env->other_used;
}

static CUresult do_mem_alloc(struct exec *x, struct call *c)
{
    uint64_t hctx, bytes = arg64(c, 8);
    CUdeviceptr p = 0;
    CUresult r = need_ctx(x, c, &hctx);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (bytes == 0 || bytes > SIZE_MAX) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* The quota is the VM's: beyond it is what the GPU would say when
     * full, and the driver is not asked. */
    if (x->env->quota &&
        (bytes > x->env->quota || vm_used(x) > x->env->quota - bytes)) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    r = x->api->MemAlloc(&p, (size_t)bytes);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (rs_alloc_add(x->s, hctx, 0, (uint64_t)p, bytes, true)) {
        x->api->MemFree(p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    put64(c, (uint64_t)p);
    return CUDA_SUCCESS;
}

static CUresult do_mem_free(struct exec *x, struct call *c)
{
    uint64_t hctx, bytes;
    CUresult r = need_ctx(x, c, &hctx);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (rs_alloc_remove(x->s, hctx, arg64(c, 8), &bytes)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return x->api->MemFree((CUdeviceptr)arg64(c, 8));
}

static CUresult do_mem_info(struct exec *x, struct call *c)
{
    uint64_t hctx, q = x->env->quota;
    size_t free_b = 0, total = 0;
    CUresult r = need_ctx(x, c, &hctx);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    NEED(MemGetInfo);
    r = x->api->MemGetInfo(&free_b, &total);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (q) {
        uint64_t left = vm_used(x) < q ? q - vm_used(x) : 0;

        total = (size_t)quota_cut(x, total);
        if (free_b > left) {
            free_b = (size_t)left;
        }
    }
    put64(c, free_b);
    put64(c, total);
    return CUDA_SUCCESS;
}

/* Queue the copy of len request bytes at r to dst, segment by segment
 * (the bytes stay where the transport put them until the batch ends). */
static CUresult htod_from(const struct cu_api *api, CUdeviceptr dst,
                          struct payload_reader r, uint64_t len, CUstream st)
{
    while (len && r.iov < r.end) {
        size_t avail = r.iov->iov_len - r.off;
        size_t n = avail < len ? avail : (size_t)len;
        CUresult e;

        if (n) {
            e = api->MemcpyHtoDAsync(
                dst, (const uint8_t *)r.iov->iov_base + r.off, n, st);
            if (e != CUDA_SUCCESS) {
                return e;
            }
        }
        dst += n;
        len -= n;
        r.off += n;
        if (r.off == r.iov->iov_len) {
            r.iov++;
            r.off = 0;
        }
    }
    return len ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

static CUresult do_htod(struct exec *x, struct call *c)
{
    uint64_t hctx, dst = arg64(c, 16), bytes = arg64(c, 24);
    CUstream st;
    CUresult r = ctx_stream(x, c, &hctx, &st);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (bytes == 0) {
        return CUDA_SUCCESS;
    }
    if (!rs_range_ok(x->s, dst, bytes)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return htod_from(x->api, (CUdeviceptr)dst, c->v->tail, bytes, st);
}

static CUresult do_dtoh(struct exec *x, struct call *c)
{
    uint64_t hctx, src = arg64(c, 16), bytes = arg64(c, 24);
    CUstream st;
    CUresult r = ctx_stream(x, c, &hctx, &st);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (bytes == 0) {
        return CUDA_SUCCESS;
    }
    if (!rs_range_ok(x->s, src, bytes)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    r = x->api->MemcpyDtoHAsync(c->res, (CUdeviceptr)src, (size_t)bytes, st);
    if (r == CUDA_SUCCESS) {
        r = x->api->StreamSynchronize(st);
    }
    if (r == CUDA_SUCCESS) {
        c->res_len = (uint32_t)bytes;
    }
    return r;
}

static CUresult do_dtod(struct exec *x, struct call *c)
{
    uint64_t hctx, dst = arg64(c, 16), src = arg64(c, 24);
    uint64_t bytes = arg64(c, 32);
    CUstream st;
    CUresult r = ctx_stream(x, c, &hctx, &st);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    NEED(MemcpyDtoDAsync);
    if (bytes == 0) {
        return CUDA_SUCCESS;
    }
    if (!rs_range_ok(x->s, dst, bytes) || !rs_range_ok(x->s, src, bytes)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return x->api->MemcpyDtoDAsync((CUdeviceptr)dst, (CUdeviceptr)src,
                                   (size_t)bytes, st);
}

static CUresult do_memset(struct exec *x, struct call *c)
{
    uint64_t hctx, dst = arg64(c, 16), count = arg64(c, 32);
    uint32_t value = arg32(c, 24), elem = arg32(c, 28);
    CUstream st;
    CUresult r = ctx_stream(x, c, &hctx, &st);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    if ((elem != 1 && elem != 2 && elem != 4) || count > UINT64_MAX / elem ||
        dst % elem) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (count == 0) {
        return CUDA_SUCCESS;
    }
    if (!rs_range_ok(x->s, dst, count * elem)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    switch (elem) {
    case 1:
        NEED(MemsetD8Async);
        return x->api->MemsetD8Async((CUdeviceptr)dst, (unsigned char)value,
                                     (size_t)count, st);
    case 2:
        NEED(MemsetD16Async);
        return x->api->MemsetD16Async((CUdeviceptr)dst, (unsigned short)value,
                                      (size_t)count, st);
    default:
        NEED(MemsetD32Async);
        return x->api->MemsetD32Async((CUdeviceptr)dst, value, (size_t)count,
                                      st);
    }
}

/* ---------------------------------------------------------------------- */
/* modules and launches                                                    */
/* ---------------------------------------------------------------------- */

static int count_kernel(void *arg, const char *name,
                        const struct cuda_kernel_info *info)
{
    (void)arg;
    (void)name;
    (void)info;
    return 0;
}

static CUresult do_module_load(struct exec *x, struct call *c)
{
    uint64_t hctx, len = arg64(c, 8), h;
    enum cuda_image_kind kind;
    size_t size;
    struct rs_object *o;
    CUmodule mod = NULL;
    uint8_t *img;
    CUresult r = need_ctx(x, c, &hctx);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    img = malloc((size_t)len + 1);
    if (!img) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    {
        struct payload_reader tail = c->v->tail;

        payload_read(&tail, img, (size_t)len);
    }
    img[len] = 0; /* PTX text is read as a string */
    /* The driver is handed only an image that is whole by its own
     * headers and well formed all through (every container entry, ELF
     * section and PTX entry read by common/cuda_image.c): a truncated,
     * inflated or corrupted one never reaches the driver's parser. */
    if (cuda_image_size(img, (size_t)len, &kind, &size) || size > len ||
        cuda_image_kernels(img, size, count_kernel, NULL, NULL) < 0) {
        free(img);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    r = x->api->ModuleLoadDataEx(&mod, img, 0, NULL, NULL);
    if (r != CUDA_SUCCESS) {
        free(img);
        return r;
    }
    h = rs_add(x->s, RS_MODULE, hctx, &o);
    if (!h) {
        if (x->api->ModuleUnload) {
            x->api->ModuleUnload(mod);
        }
        free(img);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    o->host = mod;
    o->extra = img; /* for parameter layouts the driver cannot tell */
    o->extra_len = (size_t)len;
    put64(c, h);
    return CUDA_SUCCESS;
}

struct of_module {
    struct exec *x;
    uint64_t hmod;
};

static void forget_function_of(void *arg, uint64_t h, struct rs_object *o)
{
    struct of_module *m = arg;

    if (o->parent == m->hmod) {
        rs_remove(m->x->s, h);
    }
}

static CUresult do_module_unload(struct exec *x, struct call *c)
{
    uint64_t hctx, hmod = arg64(c, 8);
    struct rs_object *o;
    CUresult r = need_ctx(x, c, &hctx);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    o = obj_in(x, RS_MODULE, hctx, hmod);
    if (!o) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    NEED(ModuleUnload);
    if (x->api->CtxSynchronize) {
        x->api->CtxSynchronize(); /* no kernel of it still running */
    }
    /* Its functions and globals go with it. */
    {
        struct of_module m = {x, hmod};

        rs_each(x->s, hctx, RS_FUNC, forget_function_of, &m);
    }
    rs_alloc_each_remove(x->s, 0, hmod, free_alloc, x);
    r = x->api->ModuleUnload(o->host);
    rs_remove(x->s, hmod);
    return r;
}

/* A name tail (checked: NUL-terminated, at most VGPU_RPC_NAME_MAX). */
static void read_name(const struct call *c, char name[VGPU_RPC_NAME_MAX])
{
    struct payload_reader tail = c->v->tail;

    memset(name, 0, VGPU_RPC_NAME_MAX);
    payload_read(&tail, name, c->v->tail_len);
    name[VGPU_RPC_NAME_MAX - 1] = 0;
}

/* A function's parameter layout: the driver's (cuFuncGetParamInfo, CUDA
 * 12.4+) or, without it, the image's metadata. */
static CUresult param_info(struct exec *x, CUfunction fn,
                           const struct rs_object *mod, const char *name,
                           struct cuda_kernel_info *info)
{
    memset(info, 0, sizeof(*info));
    if (x->api->FuncGetParamInfo) {
        for (size_t i = 0; i <= VGPU_RPC_MAX_PARAMS; i++) {
            size_t off = 0, size = 0;
            CUresult r = x->api->FuncGetParamInfo(fn, i, &off, &size);

            if (r == CUDA_ERROR_INVALID_VALUE) {
                return CUDA_SUCCESS; /* past the last parameter */
            }
            if (r != CUDA_SUCCESS) {
                break; /* the driver cannot tell: the image may */
            }
            if (i == VGPU_RPC_MAX_PARAMS ||
                off + size > VGPU_RPC_MAX_PARAM_BYTES) {
                return CUDA_ERROR_NOT_SUPPORTED;
            }
            info->param[i].offset = (uint32_t)off;
            info->param[i].size = (uint32_t)size;
            info->count = (uint32_t)i + 1;
            if (off + size > info->total) {
                info->total = (uint32_t)(off + size);
            }
        }
        if (info->count) {
            return CUDA_SUCCESS;
        }
    }
    if (cuda_image_find_kernel(mod->extra, mod->extra_len, name, info) == 0 &&
        info->count <= VGPU_RPC_MAX_PARAMS &&
        info->total <= VGPU_RPC_MAX_PARAM_BYTES) {
        return CUDA_SUCCESS;
    }
    log_warn("cuda: %s: no parameter layout for kernel %s (neither "
             "cuFuncGetParamInfo nor the image's metadata)",
             x->env->who, name);
    return CUDA_ERROR_NOT_SUPPORTED;
}

static CUresult do_get_function(struct exec *x, struct call *c)
{
    uint64_t hctx, hmod = arg64(c, 8), h;
    char name[VGPU_RPC_NAME_MAX];
    struct cuda_kernel_info *info;
    struct rs_object *mod, *o;
    CUfunction fn = NULL;
    CUresult r = need_ctx(x, c, &hctx);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    mod = obj_in(x, RS_MODULE, hctx, hmod);
    if (!mod) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    read_name(c, name);
    r = x->api->ModuleGetFunction(&fn, mod->host, name);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    info = malloc(sizeof(*info));
    if (!info) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    r = param_info(x, fn, mod, name, info);
    if (r != CUDA_SUCCESS) {
        free(info);
        return r;
    }
    h = rs_add(x->s, RS_FUNC, hctx, &o);
    if (!h) {
        free(info);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    o->host = fn;
    o->parent = hmod;
    o->extra = info;
    o->extra_len = sizeof(*info);
    put64(c, h);
    put32(c, info->count);
    put32(c, info->total);
    for (uint32_t i = 0; i < info->count; i++) {
        put32(c, info->param[i].offset);
        put32(c, info->param[i].size);
    }
    return CUDA_SUCCESS;
}

static CUresult do_get_global(struct exec *x, struct call *c)
{
    uint64_t hctx, hmod = arg64(c, 8);
    char name[VGPU_RPC_NAME_MAX];
    struct rs_object *mod;
    CUdeviceptr p = 0;
    size_t bytes = 0;
    CUresult r = need_ctx(x, c, &hctx);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    mod = obj_in(x, RS_MODULE, hctx, hmod);
    if (!mod) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    NEED(ModuleGetGlobal);
    read_name(c, name);
    r = x->api->ModuleGetGlobal(&p, &bytes, mod->host, name);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    /* Copies to and from it are checked like any allocation's. */
    if (bytes && !rs_range_ok(x->s, (uint64_t)p, bytes) &&
        rs_alloc_add(x->s, hctx, hmod, (uint64_t)p, bytes, false)) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    put64(c, (uint64_t)p);
    put64(c, bytes);
    return CUDA_SUCCESS;
}

/* A launch's shape, stream and parameter block, checked; ex: with
 * LAUNCH_EX's launch attributes (a NULL LaunchKernelEx is then
 * CUDA_ERROR_NOT_SUPPORTED). */
static CUresult launch(struct exec *x, struct call *c, bool ex)
{
    uint64_t hctx;
    uint32_t g[3], b[3], shared = arg32(c, 40), plen = arg32(c, 44);
    uint8_t params[VGPU_RPC_MAX_PARAM_BYTES];
    void *ptrs[VGPU_RPC_MAX_PARAMS];
    const struct cuda_kernel_info *info;
    struct rs_object *fn;
    CUstream st;
    CUresult r = need_ctx(x, c, &hctx);

    if (r == CUDA_SUCCESS) {
        r = stream_of(x, hctx, arg64(c, 48), &st);
    }
    if (r != CUDA_SUCCESS) {
        return r;
    }
    fn = obj_in(x, RS_FUNC, hctx, arg64(c, 8));
    if (!fn) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    info = fn->extra;
    for (unsigned i = 0; i < 3; i++) {
        g[i] = arg32(c, 16 + 4 * i);
        b[i] = arg32(c, 28 + 4 * i);
        if (g[i] == 0 || b[i] == 0) {
            return CUDA_ERROR_INVALID_VALUE;
        }
    }
    /* The block must be exactly what the function takes: a shorter one
     * would have the driver read past it. */
    if (plen != info->total) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    {
        struct payload_reader tail = c->v->tail;

        payload_read(&tail, params, plen);
    }
    for (uint32_t i = 0; i < info->count; i++) {
        ptrs[i] = params + info->param[i].offset;
    }
    if (!ex) {
        return x->api->LaunchKernel(fn->host, g[0], g[1], g[2], b[0], b[1],
                                    b[2], shared, st, info->count ? ptrs : NULL,
                                    NULL);
    }
    {
        uint32_t cl[3] = {arg32(c, 56), arg32(c, 60), arg32(c, 64)};
        uint32_t coop = arg32(c, 68), policy = arg32(c, 72);
        CUlaunchAttribute attrs[3];
        CUlaunchConfig cfg = {
            .gridDimX = g[0],
            .gridDimY = g[1],
            .gridDimZ = g[2],
            .blockDimX = b[0],
            .blockDimY = b[1],
            .blockDimZ = b[2],
            .sharedMemBytes = shared,
            .hStream = st,
            .attrs = attrs,
        };

        if (!vgpu_rpc_launch_ex_ok(cl, coop, policy) || arg32(c, 76) != 0) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        NEED(LaunchKernelEx);
        memset(attrs, 0, sizeof(attrs));
        if (cl[0]) {
            attrs[cfg.numAttrs].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
            attrs[cfg.numAttrs].value.clusterDim.x = cl[0];
            attrs[cfg.numAttrs].value.clusterDim.y = cl[1];
            attrs[cfg.numAttrs].value.clusterDim.z = cl[2];
            cfg.numAttrs++;
        }
        if (coop) {
            attrs[cfg.numAttrs].id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
            attrs[cfg.numAttrs].value.cooperative = 1;
            cfg.numAttrs++;
        }
        if (policy) {
            attrs[cfg.numAttrs].id =
                CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE;
            attrs[cfg.numAttrs].value.clusterSchedulingPolicyPreference =
                (CUclusterSchedulingPolicy)policy;
            cfg.numAttrs++;
        }
        return x->api->LaunchKernelEx(&cfg, fn->host, info->count ? ptrs : NULL,
                                      NULL);
    }
}

static CUresult do_launch(struct exec *x, struct call *c)
{
    return launch(x, c, false);
}

static CUresult do_launch_ex(struct exec *x, struct call *c)
{
    return launch(x, c, true);
}

/* ---------------------------------------------------------------------- */
/* function attributes and occupancy                                       */
/* ---------------------------------------------------------------------- */

/* The function named by the call's second argument, in its context. */
static CUresult func_of(struct exec *x, const struct call *c, CUfunction *fn)
{
    uint64_t hctx;
    struct rs_object *o;
    CUresult r = need_ctx(x, c, &hctx);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    o = obj_in(x, RS_FUNC, hctx, arg64(c, 8));
    if (!o) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    *fn = o->host;
    return CUDA_SUCCESS;
}

static CUresult do_func_get_attr(struct exec *x, struct call *c)
{
    int32_t attrib = (int32_t)arg32(c, 16);
    CUfunction fn;
    int value = 0;
    CUresult r = func_of(x, c, &fn);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (attrib < 0 || attrib >= VGPU_RPC_FUNC_ATTR_COUNT || arg32(c, 20)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    NEED(FuncGetAttribute);
    r = x->api->FuncGetAttribute(&value, (CUfunction_attribute)attrib, fn);
    if (r == CUDA_SUCCESS) {
        put32(c, (uint32_t)value);
    }
    return r;
}

static CUresult do_func_set_attr(struct exec *x, struct call *c)
{
    int32_t attrib = (int32_t)arg32(c, 16);
    CUfunction fn;
    CUresult r = func_of(x, c, &fn);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!VGPU_RPC_FUNC_ATTR_SETTABLE(attrib)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    NEED(FuncSetAttribute);
    return x->api->FuncSetAttribute(fn, (CUfunction_attribute)attrib,
                                    (int)arg32(c, 20));
}

static CUresult do_func_set_cache(struct exec *x, struct call *c)
{
    uint32_t config = arg32(c, 16);
    CUfunction fn;
    CUresult r = func_of(x, c, &fn);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (config > VGPU_RPC_CACHE_CONFIG_MAX || arg32(c, 20)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    NEED(FuncSetCacheConfig);
    return x->api->FuncSetCacheConfig(fn, (CUfunc_cache)config);
}

static CUresult do_occupancy(struct exec *x, struct call *c)
{
    int32_t block = (int32_t)arg32(c, 16);
    uint32_t flags = arg32(c, 20);
    uint64_t dyn = arg64(c, 24);
    CUfunction fn;
    int blocks = 0;
    CUresult r = func_of(x, c, &fn);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    /* flags: CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE or none; no GPU has
     * 4 GB of shared memory per block. */
    if (block <= 0 || flags > 1 || dyn > UINT32_MAX) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    NEED(OccupancyMaxActiveBlocks);
    r = x->api->OccupancyMaxActiveBlocks(&blocks, fn, block, (size_t)dyn,
                                         flags);
    if (r == CUDA_SUCCESS) {
        put32(c, (uint32_t)blocks);
    }
    return r;
}

/* ---------------------------------------------------------------------- */
/* streams and events                                                      */
/* ---------------------------------------------------------------------- */

static CUresult do_stream_create(struct exec *x, struct call *c)
{
    uint64_t hctx, h;
    uint32_t flags = arg32(c, 8);
    int prio = (int)arg32(c, 12);
    struct rs_object *o;
    CUstream st = NULL;
    CUresult r = need_ctx(x, c, &hctx);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (flags & ~(uint32_t)CU_STREAM_NON_BLOCKING) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    NEED(StreamDestroy);
    r = x->api->StreamCreateWithPriority
            ? x->api->StreamCreateWithPriority(&st, flags, prio)
            : x->api->StreamCreate(&st, flags);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    h = rs_add(x->s, RS_STREAM, hctx, &o);
    if (!h) {
        x->api->StreamDestroy(st);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    o->host = st;
    put64(c, h);
    return CUDA_SUCCESS;
}

/* The object of kind named by the call's second argument, in its ctx. */
static CUresult ctx_obj(struct exec *x, const struct call *c, enum rs_kind kind,
                        struct rs_object **o, uint64_t *h)
{
    uint64_t hctx;
    CUresult r = need_ctx(x, c, &hctx);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    *h = arg64(c, 8);
    *o = obj_in(x, kind, hctx, *h);
    return *o ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

static CUresult do_stream_destroy(struct exec *x, struct call *c)
{
    struct rs_object *o;
    uint64_t h;
    CUresult r = ctx_obj(x, c, RS_STREAM, &o, &h);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    r = x->api->StreamDestroy(o->host);
    rs_remove(x->s, h);
    return r;
}

static CUresult do_stream_sync(struct exec *x, struct call *c)
{
    uint64_t hctx;
    CUstream st;
    CUresult r = ctx_stream(x, c, &hctx, &st);

    return r == CUDA_SUCCESS ? x->api->StreamSynchronize(st) : r;
}

static CUresult do_stream_query(struct exec *x, struct call *c)
{
    uint64_t hctx;
    CUstream st;
    CUresult r = ctx_stream(x, c, &hctx, &st);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    NEED(StreamQuery);
    return x->api->StreamQuery(st);
}

static CUresult do_stream_wait_event(struct exec *x, struct call *c)
{
    uint64_t hctx;
    struct rs_object *ev;
    CUstream st;
    CUresult r = ctx_stream(x, c, &hctx, &st);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    ev = obj_in(x, RS_EVENT, hctx, arg64(c, 16));
    if (!ev) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    NEED(StreamWaitEvent);
    return x->api->StreamWaitEvent(st, ev->host, arg32(c, 24));
}

static CUresult do_event_create(struct exec *x, struct call *c)
{
    uint64_t hctx, h;
    struct rs_object *o;
    CUevent ev = NULL;
    CUresult r = need_ctx(x, c, &hctx);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    NEED(EventDestroy);
    r = x->api->EventCreate(&ev, arg32(c, 8));
    if (r != CUDA_SUCCESS) {
        return r;
    }
    h = rs_add(x->s, RS_EVENT, hctx, &o);
    if (!h) {
        x->api->EventDestroy(ev);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    o->host = ev;
    put64(c, h);
    return CUDA_SUCCESS;
}

static CUresult do_event_destroy(struct exec *x, struct call *c)
{
    struct rs_object *o;
    uint64_t h;
    CUresult r = ctx_obj(x, c, RS_EVENT, &o, &h);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    r = x->api->EventDestroy(o->host);
    rs_remove(x->s, h);
    return r;
}

static CUresult do_event_record(struct exec *x, struct call *c)
{
    struct rs_object *o;
    uint64_t h;
    CUstream st;
    CUresult r = ctx_obj(x, c, RS_EVENT, &o, &h);

    if (r == CUDA_SUCCESS) {
        r = stream_of(x, arg64(c, 0), arg64(c, 16), &st);
    }
    return r == CUDA_SUCCESS ? x->api->EventRecord(o->host, st) : r;
}

static CUresult do_event_sync(struct exec *x, struct call *c)
{
    struct rs_object *o;
    uint64_t h;
    CUresult r = ctx_obj(x, c, RS_EVENT, &o, &h);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    NEED(EventSynchronize);
    return x->api->EventSynchronize(o->host);
}

static CUresult do_event_query(struct exec *x, struct call *c)
{
    struct rs_object *o;
    uint64_t h;
    CUresult r = ctx_obj(x, c, RS_EVENT, &o, &h);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    NEED(EventQuery);
    return x->api->EventQuery(o->host);
}

static CUresult do_event_elapsed(struct exec *x, struct call *c)
{
    uint64_t hctx;
    struct rs_object *a, *b;
    float ms = 0;
    uint32_t bits;
    CUresult r = need_ctx(x, c, &hctx);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    a = obj_in(x, RS_EVENT, hctx, arg64(c, 8));
    b = obj_in(x, RS_EVENT, hctx, arg64(c, 16));
    if (!a || !b) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    r = x->api->EventElapsedTime(&ms, a->host, b->host);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    memcpy(&bits, &ms, sizeof(bits));
    put32(c, bits);
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------------- */
/* the batch                                                               */
/* ---------------------------------------------------------------------- */

typedef CUresult (*call_fn)(struct exec *x, struct call *c);

static const call_fn calls[VGPU_RPC_FN_COUNT] = {
    [VGPU_RPC_GET_VERSION] = do_get_version,
    [VGPU_RPC_DEVICE_PROPS] = do_device_props,
    [VGPU_RPC_CTX_CREATE] = do_ctx_create,
    [VGPU_RPC_CTX_DESTROY] = do_ctx_destroy,
    [VGPU_RPC_CTX_SYNC] = do_ctx_sync,
    [VGPU_RPC_MEM_ALLOC] = do_mem_alloc,
    [VGPU_RPC_MEM_FREE] = do_mem_free,
    [VGPU_RPC_MEM_INFO] = do_mem_info,
    [VGPU_RPC_MEMCPY_HTOD] = do_htod,
    [VGPU_RPC_MEMCPY_DTOH] = do_dtoh,
    [VGPU_RPC_MEMCPY_DTOD] = do_dtod,
    [VGPU_RPC_MEMSET] = do_memset,
    [VGPU_RPC_MODULE_LOAD] = do_module_load,
    [VGPU_RPC_MODULE_UNLOAD] = do_module_unload,
    [VGPU_RPC_MODULE_GET_FUNCTION] = do_get_function,
    [VGPU_RPC_MODULE_GET_GLOBAL] = do_get_global,
    [VGPU_RPC_LAUNCH] = do_launch,
    [VGPU_RPC_STREAM_CREATE] = do_stream_create,
    [VGPU_RPC_STREAM_DESTROY] = do_stream_destroy,
    [VGPU_RPC_STREAM_SYNC] = do_stream_sync,
    [VGPU_RPC_STREAM_QUERY] = do_stream_query,
    [VGPU_RPC_STREAM_WAIT_EVENT] = do_stream_wait_event,
    [VGPU_RPC_EVENT_CREATE] = do_event_create,
    [VGPU_RPC_EVENT_DESTROY] = do_event_destroy,
    [VGPU_RPC_EVENT_RECORD] = do_event_record,
    [VGPU_RPC_EVENT_SYNC] = do_event_sync,
    [VGPU_RPC_EVENT_QUERY] = do_event_query,
    [VGPU_RPC_EVENT_ELAPSED] = do_event_elapsed,
    [VGPU_RPC_SESSION_END] = do_session_end,
    [VGPU_RPC_FUNC_GET_ATTR] = do_func_get_attr,
    [VGPU_RPC_FUNC_SET_ATTR] = do_func_set_attr,
    [VGPU_RPC_FUNC_SET_CACHE] = do_func_set_cache,
    [VGPU_RPC_OCCUPANCY] = do_occupancy,
    [VGPU_RPC_LAUNCH_EX] = do_launch_ex,
};

void rs_exec(struct rs_session *s, const struct rs_env *env,
             const struct vgpu_request *req, uint8_t *resp,
             struct rs_result *out)
{
    struct exec x = {s, env, env->api};
    uint32_t len = sizeof(struct vgpu_resp_hdr), last_ret = 0;
    uint64_t start = now_ns();
    struct rpc_walk w;
    struct rpc_call_view v;
    CUresult r = CUDA_SUCCESS;

    memset(out, 0, sizeof(*out));
    rpc_walk_init(&w, req);
    while (r == CUDA_SUCCESS && rpc_walk_next(&w, &v)) {
        struct call c = {&v, resp + len + sizeof(struct vgpu_rpc_ret), 0};
        uint8_t *ret = resp + len;

        /* The batch check sized resp for this call's largest answer. */
        r = calls[v.fn](&x, &c);
        if (r != CUDA_SUCCESS) {
            c.res_len = 0;
            if (is_sticky(r)) {
                out->sticky = true;
            }
            log_debug("cuda: %s: %s: %s", env->who, rpc_fn_name(v.fn),
                      cu_name(env->api, r));
        }
        vgpu_put_le32(ret, v.fn);
        vgpu_put_le32(ret + 4, (uint32_t)r);
        vgpu_put_le32(ret + 8, c.res_len);
        vgpu_put_le32(ret + 12, 0);
        memset(c.res + c.res_len, 0, VGPU_RPC_PAD(c.res_len) - c.res_len);
        last_ret = len;
        len += sizeof(struct vgpu_rpc_ret) + (uint32_t)VGPU_RPC_PAD(c.res_len);
        out->calls++;
    }
    /* The VM's work is done before the GPU goes to another VM's batch. */
    if (r == CUDA_SUCCESS && env->api->CtxSynchronize) {
        r = env->api->CtxSynchronize();
        if (r != CUDA_SUCCESS && out->calls) {
            vgpu_put_le32(resp + last_ret + 4, (uint32_t)r);
            out->sticky = out->sticky || is_sticky(r);
        }
    }
    vgpu_put_le32(resp, VGPU_OP_CUDA);
    vgpu_put_le32(resp + 4, out->calls);
    out->resp_len = len;
    out->exec_ns = now_ns() - start;
    out->error = VGPU_ERR_NONE;
}

void rs_destroy(struct rs_session *s, const struct cu_api *api)
{
    struct rs_env env = {.api = api, .who = ""};
    struct exec x = {s, &env, api};

    if (!s) {
        return;
    }
    destroy_in(&x, 0);
    rs_session_free(s);
}
