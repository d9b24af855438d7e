/*
 * cuda/api.c - owns loading the CUDA driver API table (cuda/api.h): which
 * symbol each entry is, which are optional, and the start-up calls.
 */
#include "api.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIBCUDA_DEFAULT "libcuda.so.1"

struct cu_sym {
    const char *name;     /* preferred symbol */
    const char *fallback; /* older/newer name with the same use, or NULL */
    size_t offset;        /* of the pointer in struct cu_api */
    bool optional;
};

#define SYM(field, name, fallback, optional)                                   \
    {                                                                          \
        name, fallback, offsetof(struct cu_api, field), optional               \
    }

static const struct cu_sym cu_syms[] = {
    SYM(Init, "cuInit", NULL, false),
    SYM(DriverGetVersion, "cuDriverGetVersion", NULL, false),
    SYM(GetErrorName, "cuGetErrorName", NULL, false),
    SYM(DeviceGetCount, "cuDeviceGetCount", NULL, false),
    SYM(DeviceGet, "cuDeviceGet", NULL, false),
    SYM(DeviceGetName, "cuDeviceGetName", NULL, false),
    SYM(DeviceGetUuid, "cuDeviceGetUuid_v2", "cuDeviceGetUuid", false),
    SYM(DeviceTotalMem, "cuDeviceTotalMem_v2", NULL, false),
    SYM(DeviceGetAttribute, "cuDeviceGetAttribute", NULL, false),
    /* cuCtxCreate_v2 (flags, dev); drivers without it have _v4. */
    SYM(CtxCreate, "cuCtxCreate_v2", NULL, true),
    SYM(CtxCreate4, "cuCtxCreate_v4", NULL, true),
    SYM(CtxDestroy, "cuCtxDestroy_v2", NULL, false),
    SYM(CtxSetCurrent, "cuCtxSetCurrent", NULL, false),
    SYM(ModuleLoadDataEx, "cuModuleLoadDataEx", NULL, false),
    SYM(ModuleGetFunction, "cuModuleGetFunction", NULL, false),
    SYM(MemAlloc, "cuMemAlloc_v2", NULL, false),
    SYM(MemFree, "cuMemFree_v2", NULL, false),
    SYM(MemHostAlloc, "cuMemHostAlloc", NULL, true),
    SYM(MemFreeHost, "cuMemFreeHost", NULL, true),
    SYM(MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2", NULL, false),
    SYM(MemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2", NULL, false),
    SYM(StreamCreate, "cuStreamCreate", NULL, false),
    SYM(StreamSynchronize, "cuStreamSynchronize", NULL, false),
    SYM(LaunchKernel, "cuLaunchKernel", NULL, false),
    SYM(EventCreate, "cuEventCreate", NULL, false),
    SYM(EventRecord, "cuEventRecord", NULL, false),
    SYM(EventElapsedTime, "cuEventElapsedTime_v2", "cuEventElapsedTime", false),
    /* protocol v3 (remote/), optional */
    SYM(CtxSynchronize, "cuCtxSynchronize", NULL, true),
    SYM(MemGetInfo, "cuMemGetInfo_v2", NULL, true),
    SYM(MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2", NULL, true),
    SYM(MemsetD8Async, "cuMemsetD8Async", NULL, true),
    SYM(MemsetD16Async, "cuMemsetD16Async", NULL, true),
    SYM(MemsetD32Async, "cuMemsetD32Async", NULL, true),
    SYM(ModuleUnload, "cuModuleUnload", NULL, true),
    SYM(ModuleGetGlobal, "cuModuleGetGlobal_v2", NULL, true),
    SYM(FuncGetParamInfo, "cuFuncGetParamInfo", NULL, true),
    SYM(StreamCreateWithPriority, "cuStreamCreateWithPriority", NULL, true),
    SYM(StreamDestroy, "cuStreamDestroy_v2", NULL, true),
    SYM(StreamQuery, "cuStreamQuery", NULL, true),
    SYM(StreamWaitEvent, "cuStreamWaitEvent", NULL, true),
    SYM(EventDestroy, "cuEventDestroy_v2", NULL, true),
    SYM(EventSynchronize, "cuEventSynchronize", NULL, true),
    SYM(EventQuery, "cuEventQuery", NULL, true),
    SYM(FuncGetAttribute, "cuFuncGetAttribute", NULL, true),
    SYM(FuncSetAttribute, "cuFuncSetAttribute", NULL, true),
    SYM(FuncSetCacheConfig, "cuFuncSetCacheConfig", NULL, true),
    SYM(OccupancyMaxActiveBlocks,
        "cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags", NULL, true),
    SYM(LaunchKernelEx, "cuLaunchKernelEx", NULL, true),
};

const char *cu_name(const struct cu_api *api, CUresult r)
{
    const char *name = NULL;

    if (api->GetErrorName && api->GetErrorName(r, &name) == CUDA_SUCCESS &&
        name) {
        return name;
    }
    return "CUDA_ERROR_UNKNOWN_CODE";
}

int cu_load(struct cu_api *api, char *why, size_t why_len)
{
    const char *path = getenv("VGPU_LIBCUDA");

    memset(api, 0, sizeof(*api));
    if (!path || !*path) {
        path = LIBCUDA_DEFAULT;
    }
    api->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!api->lib) {
        const char *err = dlerror();

        snprintf(why, why_len, "%s not found: %s", path,
                 err ? err : "dlopen failed");
        return -1;
    }
    for (size_t i = 0; i < sizeof(cu_syms) / sizeof(cu_syms[0]); i++) {
        const struct cu_sym *s = &cu_syms[i];
        void *p = dlsym(api->lib, s->name);

        if (!p && s->fallback) {
            p = dlsym(api->lib, s->fallback);
        }
        if (!p && !s->optional) {
            snprintf(why, why_len, "%s lacks %s", path, s->name);
            dlclose(api->lib);
            api->lib = NULL;
            return -1;
        }
        memcpy((char *)api + s->offset, &p, sizeof(p));
    }
    if (!api->CtxCreate && !api->CtxCreate4) {
        snprintf(why, why_len, "%s lacks cuCtxCreate_v2", path);
        dlclose(api->lib);
        api->lib = NULL;
        return -1;
    }
    return 0;
}

/*
 * After cuInit the driver has threads and state of its own that do not
 * expect the library to go away, so it is only unloaded before that; a
 * later dlopen finds it loaded and initialised.
 */
void cu_unload(struct cu_api *api)
{
    if (api->lib && !api->inited) {
        dlclose(api->lib);
    }
    memset(api, 0, sizeof(*api));
}

/* cuInit and the device count; -1 with why when there is nothing to use. */
int cu_start(struct cu_api *api, int *count, char *why, size_t why_len)
{
    CUresult r = api->Init(0);

    api->inited = true;
    if (r == CUDA_ERROR_NO_DEVICE) {
        snprintf(why, why_len, "no CUDA device (cuInit: %s)", cu_name(api, r));
        return -1;
    }
    if (r != CUDA_SUCCESS) {
        snprintf(why, why_len, "cuInit failed: %s", cu_name(api, r));
        return -1;
    }
    r = api->DeviceGetCount(count);
    if (r != CUDA_SUCCESS) {
        snprintf(why, why_len, "cuDeviceGetCount failed: %s", cu_name(api, r));
        return -1;
    }
    if (*count <= 0) {
        snprintf(why, why_len, "no CUDA device");
        return -1;
    }
    return 0;
}
