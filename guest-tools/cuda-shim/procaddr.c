/*
 * cuda-shim/procaddr.c - owns cuGetProcAddress: the table from a call's
 * base name ("cuMemAlloc", as NVIDIA's runtime asks for it) and the CUDA
 * version the caller was built for to this library's variant of it, and
 * to the per-thread-default-stream variant (_ptsz/_ptds) when the caller
 * asks for those (flags CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM).
 *
 * The newest variant answers every version, except where a call's
 * signature changed and a caller built for an older CUDA asks for it: the
 * "older" table below.  cudart 13 asks for several names at two versions
 * (cuCtxSynchronize at 2000 and 13000) and calls the one it got for the
 * newer; each must have the signature of its version.  A name that is not
 * here answers CUDA_ERROR_NOT_FOUND with CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND,
 * which is how a runtime learns that a call does not exist and does
 * without it.
 *
 * The "newest" table lists every entry point api.c, func.c and export.c
 * export (written from their definitions; e2e-test-cuda-sim checks that
 * every exported cu* symbol is reachable through it by its base name).
 */
#include <stdlib.h>
#include <string.h>

#include "shim.h"

/* What api.c and export.c define (their exact types do not matter here). */
CUresult cuCtxCreate_v2(void);
CUresult cuCtxCreate_v4(void);
CUresult cuCtxDestroy_v2(void);
CUresult cuCtxGetCurrent(void);
CUresult cuCtxGetDevice(void);
CUresult cuCtxGetDevice_v2(void);
CUresult cuCtxPopCurrent_v2(void);
CUresult cuCtxPushCurrent_v2(void);
CUresult cuCtxSetCurrent(void);
CUresult cuCtxSynchronize(void);
CUresult cuCtxSynchronize_v2(void);
CUresult cuDeviceComputeCapability(void);
CUresult cuDeviceGet(void);
CUresult cuDeviceGetName(void);
CUresult cuDeviceGetUuid_v2(void);
CUresult cuDevicePrimaryCtxGetState(void);
CUresult cuDevicePrimaryCtxRelease(void);
CUresult cuDevicePrimaryCtxRelease_v2(void);
CUresult cuDevicePrimaryCtxRetain(void);
CUresult cuDevicePrimaryCtxSetFlags_v2(void);
CUresult cuDeviceTotalMem_v2(void);
CUresult cuEventCreate(void);
CUresult cuEventDestroy_v2(void);
CUresult cuEventElapsedTime(void);
CUresult cuEventElapsedTime_v2(void);
CUresult cuEventQuery(void);
CUresult cuEventRecord(void);
CUresult cuEventRecord_ptsz(void);
CUresult cuEventSynchronize(void);
CUresult cuGetErrorName(void);
CUresult cuGetErrorString(void);
CUresult cuGetExportTable(void);
CUresult cuInit(void);
CUresult cuKernelGetFunction(void);
CUresult cuLaunchKernel(void);
CUresult cuLaunchKernel_ptsz(void);
CUresult cuLibraryGetKernel(void);
CUresult cuLibraryGetModule(void);
CUresult cuLibraryLoadData(void);
CUresult cuLibraryUnload(void);
CUresult cuMemAllocHost_v2(void);
CUresult cuMemAlloc_v2(void);
CUresult cuMemFreeHost(void);
CUresult cuMemFree_v2(void);
CUresult cuMemGetInfo_v2(void);
CUresult cuMemHostAlloc(void);
CUresult cuMemcpyDtoDAsync_v2(void);
CUresult cuMemcpyDtoDAsync_v2_ptsz(void);
CUresult cuMemcpyDtoD_v2(void);
CUresult cuMemcpyDtoD_v2_ptds(void);
CUresult cuMemcpyDtoHAsync_v2(void);
CUresult cuMemcpyDtoHAsync_v2_ptsz(void);
CUresult cuMemcpyDtoH_v2(void);
CUresult cuMemcpyDtoH_v2_ptds(void);
CUresult cuMemcpyHtoDAsync_v2(void);
CUresult cuMemcpyHtoDAsync_v2_ptsz(void);
CUresult cuMemcpyHtoD_v2(void);
CUresult cuMemcpyHtoD_v2_ptds(void);
CUresult cuMemsetD16Async(void);
CUresult cuMemsetD16_v2(void);
CUresult cuMemsetD32Async(void);
CUresult cuMemsetD32Async_ptsz(void);
CUresult cuMemsetD32_v2(void);
CUresult cuMemsetD32_v2_ptds(void);
CUresult cuMemsetD8Async(void);
CUresult cuMemsetD8Async_ptsz(void);
CUresult cuMemsetD8_v2(void);
CUresult cuMemsetD8_v2_ptds(void);
CUresult cuModuleGetFunction(void);
CUresult cuModuleGetGlobal_v2(void);
CUresult cuModuleGetLoadingMode(void);
CUresult cuModuleLoad(void);
CUresult cuModuleLoadData(void);
CUresult cuModuleLoadDataEx(void);
CUresult cuModuleLoadFatBinary(void);
CUresult cuModuleUnload(void);
CUresult cuStreamCreate(void);
CUresult cuStreamCreateWithPriority(void);
CUresult cuStreamDestroy_v2(void);
CUresult cuStreamQuery(void);
CUresult cuStreamQuery_ptsz(void);
CUresult cuStreamSynchronize(void);
CUresult cuStreamSynchronize_ptsz(void);
CUresult cuStreamWaitEvent(void);
CUresult cuStreamWaitEvent_ptsz(void);
/* func.c */
CUresult cuFuncGetAttribute(void);
CUresult cuFuncSetAttribute(void);
CUresult cuFuncSetCacheConfig(void);
CUresult cuKernelGetAttribute(void);
CUresult cuKernelSetAttribute(void);
CUresult cuKernelSetCacheConfig(void);
CUresult cuLaunchKernelEx(void);
CUresult cuLaunchKernelEx_ptsz(void);
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(void);
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(void);
CUresult cuStreamGetCaptureInfo(void);
CUresult cuStreamGetCaptureInfo_v2(void);
CUresult cuStreamGetCaptureInfo_v3(void);
CUresult cuStreamIsCapturing(void);
CUresult cuStreamIsCapturing_ptsz(void);
CUresult cuThreadExchangeStreamCaptureMode(void);

static const struct {
    const char *name;
    void *fn;
    void *per_thread; /* NULL: the same as fn */
} newest[] = {
    {"cuCtxCreate", (void *)cuCtxCreate_v4, NULL},
    {"cuCtxDestroy", (void *)cuCtxDestroy_v2, NULL},
    {"cuCtxGetCurrent", (void *)cuCtxGetCurrent, NULL},
    {"cuCtxGetDevice", (void *)cuCtxGetDevice_v2, NULL},
    {"cuCtxPopCurrent", (void *)cuCtxPopCurrent_v2, NULL},
    {"cuCtxPushCurrent", (void *)cuCtxPushCurrent_v2, NULL},
    {"cuCtxSetCurrent", (void *)cuCtxSetCurrent, NULL},
    {"cuCtxSynchronize", (void *)cuCtxSynchronize_v2, NULL},
    {"cuDeviceComputeCapability", (void *)cuDeviceComputeCapability, NULL},
    {"cuDeviceGet", (void *)cuDeviceGet, NULL},
    {"cuDeviceGetAttribute", (void *)cuDeviceGetAttribute, NULL},
    {"cuDeviceGetCount", (void *)cuDeviceGetCount, NULL},
    {"cuDeviceGetName", (void *)cuDeviceGetName, NULL},
    {"cuDeviceGetUuid", (void *)cuDeviceGetUuid_v2, NULL},
    {"cuDevicePrimaryCtxGetState", (void *)cuDevicePrimaryCtxGetState, NULL},
    {"cuDevicePrimaryCtxRelease", (void *)cuDevicePrimaryCtxRelease_v2, NULL},
    {"cuDevicePrimaryCtxRetain", (void *)cuDevicePrimaryCtxRetain, NULL},
    {"cuDevicePrimaryCtxSetFlags", (void *)cuDevicePrimaryCtxSetFlags_v2, NULL},
    {"cuDeviceTotalMem", (void *)cuDeviceTotalMem_v2, NULL},
    {"cuDriverGetVersion", (void *)cuDriverGetVersion, NULL},
    {"cuEventCreate", (void *)cuEventCreate, NULL},
    {"cuEventDestroy", (void *)cuEventDestroy_v2, NULL},
    {"cuEventElapsedTime", (void *)cuEventElapsedTime_v2, NULL},
    {"cuEventQuery", (void *)cuEventQuery, NULL},
    {"cuEventRecord", (void *)cuEventRecord, (void *)cuEventRecord_ptsz},
    {"cuEventSynchronize", (void *)cuEventSynchronize, NULL},
    {"cuFuncGetAttribute", (void *)cuFuncGetAttribute, NULL},
    {"cuFuncSetAttribute", (void *)cuFuncSetAttribute, NULL},
    {"cuFuncSetCacheConfig", (void *)cuFuncSetCacheConfig, NULL},
    {"cuGetErrorName", (void *)cuGetErrorName, NULL},
    {"cuGetErrorString", (void *)cuGetErrorString, NULL},
    {"cuGetExportTable", (void *)cuGetExportTable, NULL},
    {"cuInit", (void *)cuInit, NULL},
    {"cuKernelGetFunction", (void *)cuKernelGetFunction, NULL},
    {"cuKernelGetAttribute", (void *)cuKernelGetAttribute, NULL},
    {"cuKernelSetAttribute", (void *)cuKernelSetAttribute, NULL},
    {"cuKernelSetCacheConfig", (void *)cuKernelSetCacheConfig, NULL},
    {"cuLaunchKernel", (void *)cuLaunchKernel, (void *)cuLaunchKernel_ptsz},
    {"cuLaunchKernelEx", (void *)cuLaunchKernelEx,
     (void *)cuLaunchKernelEx_ptsz},
    {"cuLibraryGetKernel", (void *)cuLibraryGetKernel, NULL},
    {"cuLibraryGetModule", (void *)cuLibraryGetModule, NULL},
    {"cuLibraryLoadData", (void *)cuLibraryLoadData, NULL},
    {"cuLibraryUnload", (void *)cuLibraryUnload, NULL},
    {"cuMemAlloc", (void *)cuMemAlloc_v2, NULL},
    {"cuMemAllocHost", (void *)cuMemAllocHost_v2, NULL},
    {"cuMemFree", (void *)cuMemFree_v2, NULL},
    {"cuMemFreeHost", (void *)cuMemFreeHost, NULL},
    {"cuMemGetInfo", (void *)cuMemGetInfo_v2, NULL},
    {"cuMemHostAlloc", (void *)cuMemHostAlloc, NULL},
    {"cuMemcpyDtoD", (void *)cuMemcpyDtoD_v2, (void *)cuMemcpyDtoD_v2_ptds},
    {"cuMemcpyDtoDAsync", (void *)cuMemcpyDtoDAsync_v2,
     (void *)cuMemcpyDtoDAsync_v2_ptsz},
    {"cuMemcpyDtoH", (void *)cuMemcpyDtoH_v2, (void *)cuMemcpyDtoH_v2_ptds},
    {"cuMemcpyDtoHAsync", (void *)cuMemcpyDtoHAsync_v2,
     (void *)cuMemcpyDtoHAsync_v2_ptsz},
    {"cuMemcpyHtoD", (void *)cuMemcpyHtoD_v2, (void *)cuMemcpyHtoD_v2_ptds},
    {"cuMemcpyHtoDAsync", (void *)cuMemcpyHtoDAsync_v2,
     (void *)cuMemcpyHtoDAsync_v2_ptsz},
    {"cuMemsetD16", (void *)cuMemsetD16_v2, NULL},
    {"cuMemsetD16Async", (void *)cuMemsetD16Async, NULL},
    {"cuMemsetD32", (void *)cuMemsetD32_v2, (void *)cuMemsetD32_v2_ptds},
    {"cuMemsetD32Async", (void *)cuMemsetD32Async,
     (void *)cuMemsetD32Async_ptsz},
    {"cuMemsetD8", (void *)cuMemsetD8_v2, (void *)cuMemsetD8_v2_ptds},
    {"cuMemsetD8Async", (void *)cuMemsetD8Async, (void *)cuMemsetD8Async_ptsz},
    {"cuModuleGetFunction", (void *)cuModuleGetFunction, NULL},
    {"cuModuleGetGlobal", (void *)cuModuleGetGlobal_v2, NULL},
    {"cuModuleGetLoadingMode", (void *)cuModuleGetLoadingMode, NULL},
    {"cuModuleLoad", (void *)cuModuleLoad, NULL},
    {"cuModuleLoadData", (void *)cuModuleLoadData, NULL},
    {"cuModuleLoadDataEx", (void *)cuModuleLoadDataEx, NULL},
    {"cuModuleLoadFatBinary", (void *)cuModuleLoadFatBinary, NULL},
    {"cuModuleUnload", (void *)cuModuleUnload, NULL},
    {"cuOccupancyMaxActiveBlocksPerMultiprocessor",
     (void *)cuOccupancyMaxActiveBlocksPerMultiprocessor, NULL},
    {"cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags",
     (void *)cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags, NULL},
    {"cuStreamCreate", (void *)cuStreamCreate, NULL},
    {"cuStreamCreateWithPriority", (void *)cuStreamCreateWithPriority, NULL},
    {"cuStreamDestroy", (void *)cuStreamDestroy_v2, NULL},
    {"cuStreamGetCaptureInfo", (void *)cuStreamGetCaptureInfo_v3, NULL},
    {"cuStreamIsCapturing", (void *)cuStreamIsCapturing,
     (void *)cuStreamIsCapturing_ptsz},
    {"cuStreamQuery", (void *)cuStreamQuery, (void *)cuStreamQuery_ptsz},
    {"cuStreamSynchronize", (void *)cuStreamSynchronize,
     (void *)cuStreamSynchronize_ptsz},
    {"cuStreamWaitEvent", (void *)cuStreamWaitEvent,
     (void *)cuStreamWaitEvent_ptsz},
    {"cuThreadExchangeStreamCaptureMode",
     (void *)cuThreadExchangeStreamCaptureMode, NULL},
};

/* For callers built before a call's signature changed: below version
 * `before`, the old variant. */
static const struct {
    const char *name;
    int before;
    void *fn;
} older[] = {
    {"cuCtxCreate", 12050, (void *)cuCtxCreate_v2},
    {"cuCtxGetDevice", 13000, (void *)cuCtxGetDevice},
    {"cuCtxSynchronize", 13000, (void *)cuCtxSynchronize},
    {"cuDeviceGetUuid", 11040, (void *)cuDeviceGetUuid},
    {"cuDevicePrimaryCtxRelease", 11000, (void *)cuDevicePrimaryCtxRelease},
    {"cuEventElapsedTime", 12080, (void *)cuEventElapsedTime},
    {"cuStreamGetCaptureInfo", 11030, (void *)cuStreamGetCaptureInfo},
    {"cuStreamGetCaptureInfo", 12030, (void *)cuStreamGetCaptureInfo_v2},
};

void *shim_proc_lookup(const char *name, int version, int per_thread)
{
    for (size_t i = 0; i < sizeof(older) / sizeof(older[0]); i++) {
        if (version < older[i].before && strcmp(older[i].name, name) == 0) {
            return older[i].fn;
        }
    }
    for (size_t i = 0; i < sizeof(newest) / sizeof(newest[0]); i++) {
        if (strcmp(newest[i].name, name) == 0) {
            return per_thread && newest[i].per_thread ? newest[i].per_thread
                                                      : newest[i].fn;
        }
    }
    return NULL;
}

API CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version,
                                 uint64_t flags, int *status);
API CUresult cuGetProcAddress(const char *symbol, void **pfn, int version,
                              uint64_t flags);

/* cuda.h's CU_GET_PROC_ADDRESS_* flags and query results. */
#define PER_THREAD_DEFAULT_STREAM 0x2
enum { PROC_SUCCESS = 0, PROC_SYMBOL_NOT_FOUND = 1 };

API CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version,
                                 uint64_t flags, int *status)
{
    void *fn;

    if (!symbol || !pfn) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    if (strcmp(symbol, "cuGetProcAddress") == 0) {
        /* Callers from 12.0 on use the five-argument form. */
        fn = version >= 12000 ? (void *)cuGetProcAddress_v2
                              : (void *)cuGetProcAddress;
    } else {
        fn = shim_proc_lookup(symbol, version,
                              (flags & PER_THREAD_DEFAULT_STREAM) != 0);
    }
    *pfn = fn;
    if (!fn && getenv("VGPU_CUDA_TRACE")) {
        /* What a program (or a library under it) looked for and did
         * without: the first thing to read when it then fails. */
        shim_log("cuGetProcAddress(\"%s\", %d): not in vgpu's libcuda", symbol,
                 version);
    }
    if (status) {
        *status = fn ? PROC_SUCCESS : PROC_SYMBOL_NOT_FOUND;
    }
    return fn ? VGPU_CU_SUCCESS : VGPU_CU_ERROR_NOT_FOUND;
}

/* The CUDA 11.3-11.8 form, without the status. */
API CUresult cuGetProcAddress(const char *symbol, void **pfn, int version,
                              uint64_t flags)
{
    return cuGetProcAddress_v2(symbol, pfn, version, flags, NULL);
}
