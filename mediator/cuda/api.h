/*
 * cuda/api.h - owns the CUDA driver API as the mediator sees it: a table of
 * entry points looked up at run time in libcuda.so.1 (dlopen + dlsym),
 * never linked, so one binary runs on hosts with and without a GPU.
 * <cuda.h> is used for its types only.  The environment variable
 * VGPU_LIBCUDA names another library to load instead (tests, odd
 * installs).
 *
 * The exact, versioned symbols are spelled out (cuMemAlloc_v2, ...):
 * cuda.h's macros map plain names to whatever its own version prefers,
 * which need not be what the installed driver exports.  Entries the
 * fixed operations of v1/v2 need are required; the ones only protocol v3
 * (remoting, remote/) uses are optional, so an older driver still serves
 * v1/v2, and a v3 call whose entry is missing is answered
 * CUDA_ERROR_NOT_SUPPORTED.
 */
#ifndef VGPU_CUDA_API_H
#define VGPU_CUDA_API_H

#include <cuda.h>
#include <stdbool.h>
#include <stddef.h>

struct cu_api {
    void *lib;
    bool inited; /* cuInit was called: the library stays loaded */
    CUresult (*Init)(unsigned int flags);
    CUresult (*DriverGetVersion)(int *version);
    CUresult (*GetErrorName)(CUresult error, const char **name);
    CUresult (*DeviceGetCount)(int *count);
    CUresult (*DeviceGet)(CUdevice *dev, int ordinal);
    CUresult (*DeviceGetName)(char *name, int len, CUdevice dev);
    CUresult (*DeviceGetUuid)(CUuuid *uuid, CUdevice dev);
    CUresult (*DeviceTotalMem)(size_t *bytes, CUdevice dev);
    CUresult (*DeviceGetAttribute)(int *value, CUdevice_attribute attr,
                                   CUdevice dev);
    CUresult (*CtxCreate)(CUcontext *ctx, unsigned int flags, CUdevice dev);
    CUresult (*CtxCreate4)(CUcontext *ctx, void *params, unsigned int flags,
                           CUdevice dev);
    CUresult (*CtxDestroy)(CUcontext ctx);
    CUresult (*CtxSetCurrent)(CUcontext ctx);
    CUresult (*ModuleLoadDataEx)(CUmodule *mod, const void *image,
                                 unsigned int nopts, CUjit_option *opts,
                                 void **values);
    CUresult (*ModuleGetFunction)(CUfunction *fn, CUmodule mod,
                                  const char *name);
    CUresult (*MemAlloc)(CUdeviceptr *ptr, size_t bytes);
    CUresult (*MemFree)(CUdeviceptr ptr);
    /* Optional: without them the staging stays pageable. */
    CUresult (*MemHostAlloc)(void **pp, size_t bytes, unsigned int flags);
    CUresult (*MemFreeHost)(void *p);
    CUresult (*MemcpyHtoDAsync)(CUdeviceptr dst, const void *src, size_t bytes,
                                CUstream stream);
    CUresult (*MemcpyDtoHAsync)(void *dst, CUdeviceptr src, size_t bytes,
                                CUstream stream);
    CUresult (*StreamCreate)(CUstream *stream, unsigned int flags);
    CUresult (*StreamSynchronize)(CUstream stream);
    CUresult (*LaunchKernel)(CUfunction fn, unsigned int gx, unsigned int gy,
                             unsigned int gz, unsigned int bx, unsigned int by,
                             unsigned int bz, unsigned int shmem,
                             CUstream stream, void **params, void **extra);
    CUresult (*EventCreate)(CUevent *ev, unsigned int flags);
    CUresult (*EventRecord)(CUevent ev, CUstream stream);
    CUresult (*EventElapsedTime)(float *ms, CUevent start, CUevent end);

    /* Protocol v3 only, all optional. */
    CUresult (*CtxSynchronize)(void);
    CUresult (*MemGetInfo)(size_t *free_bytes, size_t *total_bytes);
    CUresult (*MemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t bytes,
                                CUstream stream);
    CUresult (*MemsetD8Async)(CUdeviceptr dst, unsigned char value, size_t n,
                              CUstream stream);
    CUresult (*MemsetD16Async)(CUdeviceptr dst, unsigned short value, size_t n,
                               CUstream stream);
    CUresult (*MemsetD32Async)(CUdeviceptr dst, unsigned int value, size_t n,
                               CUstream stream);
    CUresult (*ModuleUnload)(CUmodule mod);
    CUresult (*ModuleGetGlobal)(CUdeviceptr *dptr, size_t *bytes, CUmodule mod,
                                const char *name);
    /* CUDA 12.4 and later; without it the image's metadata is read. */
    CUresult (*FuncGetParamInfo)(CUfunction fn, size_t index, size_t *offset,
                                 size_t *size);
    CUresult (*StreamCreateWithPriority)(CUstream *stream, unsigned int flags,
                                         int priority);
    CUresult (*StreamDestroy)(CUstream stream);
    CUresult (*StreamQuery)(CUstream stream);
    CUresult (*StreamWaitEvent)(CUstream stream, CUevent ev,
                                unsigned int flags);
    CUresult (*EventDestroy)(CUevent ev);
    CUresult (*EventSynchronize)(CUevent ev);
    CUresult (*EventQuery)(CUevent ev);
    /* What libraries (cuBLAS) size and shape their kernels with. */
    CUresult (*FuncGetAttribute)(int *value, CUfunction_attribute attrib,
                                 CUfunction fn);
    CUresult (*FuncSetAttribute)(CUfunction fn, CUfunction_attribute attrib,
                                 int value);
    CUresult (*FuncSetCacheConfig)(CUfunction fn, CUfunc_cache config);
    CUresult (*OccupancyMaxActiveBlocks)(int *blocks, CUfunction fn,
                                         int block_size, size_t dyn_smem,
                                         unsigned int flags);
    CUresult (*LaunchKernelEx)(const CUlaunchConfig *config, CUfunction fn,
                               void **params, void **extra);
};

/* The name of a CUresult ("CUDA_ERROR_..."), never NULL. */
const char *cu_name(const struct cu_api *api, CUresult r);

/* dlopen libcuda (VGPU_LIBCUDA or libcuda.so.1) and look every entry up:
 * 0, or -1 with why (why_len bytes) and nothing left open. */
int cu_load(struct cu_api *api, char *why, size_t why_len);

/* Close the library unless cuInit ran (the driver's threads stay). */
void cu_unload(struct cu_api *api);

/* cuInit and the device count: 0, or -1 with why when there is nothing to
 * use. */
int cu_start(struct cu_api *api, int *count, char *why, size_t why_len);

#endif
