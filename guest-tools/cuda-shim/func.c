/*
 * cuda-shim/func.c - owns what libraries ask of a kernel before they
 * launch it: its attributes (cuFuncGetAttribute, cuFuncSetAttribute,
 * cuFuncSetCacheConfig and their cuKernel* forms), how many of its blocks
 * fit on a multiprocessor (cuOccupancy*), launches with launch attributes
 * (cuLaunchKernelEx), and the stream-capture queries the runtime makes
 * around every launch.
 *
 * cuBLAS and the runtime under it ask for these: an SGEMM kernel wants
 * more than 48 KB of dynamic shared memory (a settable attribute), and
 * Hopper's kernels run in clusters (a launch attribute).  Attributes and
 * occupancy are the host driver's answers for the VM's own function;
 * setting one is remoted and waited for (CUDA returns its error at once),
 * the cache preference is queued.
 *
 * Stream capture (CUDA graphs) is not supported: cuStreamBeginCapture is
 * not exported, so no stream of this library is ever capturing, and the
 * queries answer that, here, without a round trip.
 */
#include <string.h>

#include "shim.h"

/* CUkernel is a function in the current context here (api.c). */
typedef CUfunction CUkernel;

/* cuda.h's values. */
#define LAUNCH_ATTR_IGNORE 0
#define LAUNCH_ATTR_COOPERATIVE 2
#define LAUNCH_ATTR_CLUSTER_DIMENSION 4
#define LAUNCH_ATTR_CLUSTER_SCHEDULING_POLICY_PREFERENCE 5
#define LAUNCH_ATTR_PROGRAMMATIC_STREAM_SERIALIZATION 6
#define CAPTURE_STATUS_NONE 0

/* cuda.h's CUlaunchAttribute and CUlaunchConfig, as the ABI lays them. */
struct shim_launch_attribute {
    int id;
    char pad[4];
    union {
        char bytes[64];
        int cooperative;
        struct {
            unsigned x, y, z;
        } cluster;
        int cluster_policy;
        int programmatic;
    } value;
};

struct shim_launch_config {
    unsigned grid[3], block[3], shared;
    CUstream stream;
    const struct shim_launch_attribute *attrs;
    unsigned nattrs;
};

_Static_assert(sizeof(struct shim_launch_attribute) == 72,
               "CUlaunchAttribute layout");
_Static_assert(sizeof(struct shim_launch_config) == 56,
               "CUlaunchConfig layout");

/* The function's context must be the caller's, as for a launch. */
static CUresult func_args(struct args *a, CUfunction f, uint64_t ctx)
{
    if (!f) {
        return VGPU_CU_ERROR_INVALID_HANDLE;
    }
    if (f->ctx != ctx) {
        return VGPU_CU_ERROR_INVALID_CONTEXT;
    }
    a64(a, ctx);
    a64(a, f->h);
    return VGPU_CU_SUCCESS;
}

/* A remoted call whose answer is one s32, stored in *out. */
static CUresult ask_int(uint32_t fn, const struct args *a, int *out)
{
    uint8_t res[4];
    size_t n = 0;
    CUresult r = shim_call(fn, a->b, a->n, NULL, 0, res, sizeof(res), &n);

    if (r == VGPU_CU_SUCCESS) {
        if (n != 4) {
            return VGPU_CU_ERROR_UNKNOWN; /* an answer we cannot read */
        }
        *out = (int)vgpu_get_le32(res);
    }
    return r;
}

API CUresult cuFuncGetAttribute(int *value, int attrib, CUfunction f)
{
    struct args a = {.n = 0};
    CUresult r;
    NEED_CTX(ctx);

    if (!value) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    r = func_args(&a, f, ctx);
    if (r != VGPU_CU_SUCCESS) {
        return r;
    }
    a32(&a, (uint32_t)attrib);
    a32(&a, 0);
    return ask_int(VGPU_RPC_FUNC_GET_ATTR, &a, value);
}

API CUresult cuFuncSetAttribute(CUfunction f, int attrib, int value)
{
    struct args a = {.n = 0};
    CUresult r;
    NEED_CTX(ctx);

    r = func_args(&a, f, ctx);
    if (r != VGPU_CU_SUCCESS) {
        return r;
    }
    a32(&a, (uint32_t)attrib);
    a32(&a, (uint32_t)value);
    return shim_call(VGPU_RPC_FUNC_SET_ATTR, a.b, a.n, NULL, 0, NULL, 0, NULL);
}

API CUresult cuFuncSetCacheConfig(CUfunction f, int config)
{
    struct args a = {.n = 0};
    CUresult r;
    NEED_CTX(ctx);

    r = func_args(&a, f, ctx);
    if (r != VGPU_CU_SUCCESS) {
        return r;
    }
    /* Queued, so its one error is found here, as CUDA returns it. */
    if (config < 0 || (unsigned)config > VGPU_RPC_CACHE_CONFIG_MAX) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    a32(&a, (uint32_t)config);
    a32(&a, 0);
    /* A preference, with no answer to wait for. */
    return shim_queue(VGPU_RPC_FUNC_SET_CACHE, a.b, a.n, NULL, 0, 0);
}

/* The cuKernel* forms: the kernel in the current context, on its device
 * (this library has one). */
static CUresult kernel_func(CUkernel k, CUdevice dev)
{
    if (dev != 0) {
        return VGPU_CU_ERROR_INVALID_DEVICE;
    }
    return k ? VGPU_CU_SUCCESS : VGPU_CU_ERROR_INVALID_HANDLE;
}

API CUresult cuKernelGetAttribute(int *value, int attrib, CUkernel k,
                                  CUdevice dev)
{
    CUresult r = kernel_func(k, dev);

    return r == VGPU_CU_SUCCESS ? cuFuncGetAttribute(value, attrib, k) : r;
}

API CUresult cuKernelSetAttribute(int attrib, int value, CUkernel k,
                                  CUdevice dev)
{
    CUresult r = kernel_func(k, dev);

    return r == VGPU_CU_SUCCESS ? cuFuncSetAttribute(k, attrib, value) : r;
}

API CUresult cuKernelSetCacheConfig(CUkernel k, int config, CUdevice dev)
{
    CUresult r = kernel_func(k, dev);

    return r == VGPU_CU_SUCCESS ? cuFuncSetCacheConfig(k, config) : r;
}

API CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(
    int *blocks, CUfunction f, int block_size, size_t dyn, unsigned flags)
{
    struct args a = {.n = 0};
    CUresult r;
    NEED_CTX(ctx);

    if (!blocks) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    r = func_args(&a, f, ctx);
    if (r != VGPU_CU_SUCCESS) {
        return r;
    }
    a32(&a, (uint32_t)block_size);
    a32(&a, flags);
    a64(&a, (uint64_t)dyn);
    return ask_int(VGPU_RPC_OCCUPANCY, &a, blocks);
}

API CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *blocks,
                                                         CUfunction f,
                                                         int block_size,
                                                         size_t dyn)
{
    return cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(
        blocks, f, block_size, dyn, 0);
}

/* The attributes passed on; any other is not supported (said once). */
static CUresult launch_ex(const struct shim_launch_config *cfg, CUfunction f,
                          void **params, void **extra)
{
    struct shim_launch_attrs ex;
    bool any = false;

    if (!cfg || (cfg->nattrs && !cfg->attrs)) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    memset(&ex, 0, sizeof(ex));
    for (unsigned i = 0; i < cfg->nattrs; i++) {
        const struct shim_launch_attribute *at = &cfg->attrs[i];

        switch (at->id) {
        case LAUNCH_ATTR_IGNORE:
            break;
        case LAUNCH_ATTR_COOPERATIVE:
            ex.cooperative = at->value.cooperative != 0;
            any = true;
            break;
        case LAUNCH_ATTR_CLUSTER_DIMENSION:
            ex.cluster[0] = at->value.cluster.x;
            ex.cluster[1] = at->value.cluster.y;
            ex.cluster[2] = at->value.cluster.z;
            any = true;
            break;
        case LAUNCH_ATTR_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
            ex.cluster_policy = (uint32_t)at->value.cluster_policy;
            any = true;
            break;
        case LAUNCH_ATTR_PROGRAMMATIC_STREAM_SERIALIZATION:
            /* Off is what every launch here does; on is not passed on. */
            if (at->value.programmatic == 0) {
                break;
            }
            /* fall through */
        default:
            return shim_unsupported("cuLaunchKernelEx with a launch attribute "
                                    "other than cluster size, cluster "
                                    "scheduling or cooperative");
        }
    }
    /* The launch is queued: what the mediator would refuse is refused
     * here, at the call, as CUDA does. */
    if (!vgpu_rpc_launch_ex_ok(ex.cluster, ex.cooperative, ex.cluster_policy)) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    return shim_launch(f, cfg->grid[0], cfg->grid[1], cfg->grid[2],
                       cfg->block[0], cfg->block[1], cfg->block[2], cfg->shared,
                       cfg->stream, params, extra, any ? &ex : NULL);
}

API CUresult cuLaunchKernelEx(const struct shim_launch_config *cfg,
                              CUfunction f, void **params, void **extra)
{
    return launch_ex(cfg, f, params, extra);
}

API CUresult cuLaunchKernelEx_ptsz(const struct shim_launch_config *cfg,
                                   CUfunction f, void **params, void **extra)
{
    return launch_ex(cfg, f, params, extra);
}

/* ---------------------------------------------------------------------- */
/* stream capture: never capturing                                         */
/* ---------------------------------------------------------------------- */

static __thread int capture_mode; /* CU_STREAM_CAPTURE_MODE_GLOBAL */

API CUresult cuThreadExchangeStreamCaptureMode(int *mode)
{
    int old;

    if (!mode || *mode < 0 || *mode > 2) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    old = capture_mode;
    capture_mode = *mode;
    *mode = old;
    return VGPU_CU_SUCCESS;
}

API CUresult cuStreamIsCapturing(CUstream s, int *status)
{
    (void)s;
    CHECK_INIT();
    if (!status) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    *status = CAPTURE_STATUS_NONE;
    return VGPU_CU_SUCCESS;
}

API CUresult cuStreamIsCapturing_ptsz(CUstream s, int *status)
{
    return cuStreamIsCapturing(s, status);
}

/* The three signatures cuStreamGetCaptureInfo has had: status and id
 * (before 11.3), then the graph and its dependencies (_v2), then their
 * edge data (_v3, CUDA 13's plain name).  Not capturing: all empty. */
API CUresult cuStreamGetCaptureInfo_v3(CUstream s, int *status, uint64_t *id,
                                       void **graph, const void **deps,
                                       const void **edges, size_t *ndeps)
{
    CUresult r = cuStreamIsCapturing(s, status);

    if (r != VGPU_CU_SUCCESS) {
        return r;
    }
    if (id) {
        *id = 0;
    }
    if (graph) {
        *graph = NULL;
    }
    if (deps) {
        *deps = NULL;
    }
    if (edges) {
        *edges = NULL;
    }
    if (ndeps) {
        *ndeps = 0;
    }
    return VGPU_CU_SUCCESS;
}

API CUresult cuStreamGetCaptureInfo_v2(CUstream s, int *status, uint64_t *id,
                                       void **graph, const void **deps,
                                       size_t *ndeps)
{
    return cuStreamGetCaptureInfo_v3(s, status, id, graph, deps, NULL, ndeps);
}

API CUresult cuStreamGetCaptureInfo(CUstream s, int *status, uint64_t *id)
{
    return cuStreamGetCaptureInfo_v3(s, status, id, NULL, NULL, NULL, NULL);
}
