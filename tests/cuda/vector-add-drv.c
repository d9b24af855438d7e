/*
 * tests/cuda/vector-add-drv.c - cuda-vector-add-drv: our rewrite of
 * NVIDIA's driver-API sample vectorAddDrv (written after what it does, not
 * copied): 50000 random floats added on the device by VecAdd_kernel
 * (samples.cu) from a fatbin file, launched once with kernelParams and
 * once with a packed parameter buffer (cuLaunchKernel's `extra`), each
 * result checked against the host's sum.  Built against the toolkit's
 * cuda.h and stub libcuda.so; nothing in it knows about vgpu.
 *
 *   cuda-vector-add-drv FATBIN
 *
 * Prints "checksum XXXXXXXX" (FNV-1a over the result's bits, so that
 * make gpu-check can compare a remoted run with a native one bit for
 * bit) and "PASS"; exit status 0 when every element was right.
 */
#include <cuda.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"

/* One launch of fn into dc (zeroed first), with kernelParams or a packed
 * parameter buffer; the elements of c whose sum differs from the host's
 * by more than 1e-5, said under name. */
static int launch_checked(const char *name, CUfunction fn, unsigned blocks,
                          unsigned threads, void **params, void **extra,
                          CUdeviceptr dc, const float *a, const float *b,
                          float *c, int n)
{
    int bad = 0;

    MUST(cuMemsetD32(dc, 0, (size_t)n));
    MUST(cuLaunchKernel(fn, blocks, 1, 1, threads, 1, 1, 0, NULL, params,
                        extra));
    MUST(cuCtxSynchronize());
    MUST(cuMemcpyDtoH(c, dc, (size_t)n * sizeof(float)));
    for (int i = 0; i < n; i++) {
        bad += fabsf(a[i] + b[i] - c[i]) > 1e-5f;
    }
    printf("%s: %s launch: %d of %d wrong\n", bad ? "FAILED" : "ok", name, bad,
           n);
    return bad;
}

int main(int argc, char **argv)
{
    enum { N = 50000, THREADS = 256 };
    const size_t bytes = N * sizeof(float);
    float *a = malloc(bytes), *b = malloc(bytes), *c = malloc(bytes);
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    CUdeviceptr da, db, dc;
    char name[128];
    int n = N, blocks = (N + THREADS - 1) / THREADS, bad1, bad2;

    if (argc != 2 || !a || !b || !c) {
        fprintf(stderr, "usage: cuda-vector-add-drv FATBIN\n");
        return 2;
    }
    MUST(cuInit(0));
    MUST(cuDeviceGet(&dev, 0));
    MUST(cuDeviceGetName(name, sizeof(name), dev));
    printf("Vector addition on %s: %d elements\n", name, N);
    MUST(cuCtxCreate(&ctx, NULL, 0, dev));
    MUST(cuModuleLoad(&mod, argv[1]));
    MUST(cuModuleGetFunction(&fn, mod, "VecAdd_kernel"));

    srand(1);
    for (int i = 0; i < N; i++) {
        a[i] = (float)rand() / (float)RAND_MAX;
        b[i] = (float)rand() / (float)RAND_MAX;
    }
    MUST(cuMemAlloc(&da, bytes));
    MUST(cuMemAlloc(&db, bytes));
    MUST(cuMemAlloc(&dc, bytes));
    MUST(cuMemcpyHtoD(da, a, bytes));
    MUST(cuMemcpyHtoD(db, b, bytes));

    /* With kernelParams, as the sample does. */
    {
        void *args[] = {&da, &db, &dc, &n};

        bad1 = launch_checked("kernelParams", fn, blocks, THREADS, args, NULL,
                              dc, a, b, c, N);
    }
    /* With the parameters packed in one buffer, each at its alignment,
     * the size where the last one ends. */
    {
        uint64_t buf[4];
        size_t size = 0;
        void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, buf,
                         CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
                         CU_LAUNCH_PARAM_END};

        memcpy((char *)buf + size, &da, sizeof(da));
        size += sizeof(da);
        memcpy((char *)buf + size, &db, sizeof(db));
        size += sizeof(db);
        memcpy((char *)buf + size, &dc, sizeof(dc));
        size += sizeof(dc);
        memcpy((char *)buf + size, &n, sizeof(n));
        size += sizeof(n);
        bad2 = launch_checked("parameter-buffer", fn, blocks, THREADS, NULL,
                              extra, dc, a, b, c, N);
    }
    printf("checksum %08x\n", sample_checksum(c, bytes));
    MUST(cuMemFree(da));
    MUST(cuMemFree(db));
    MUST(cuMemFree(dc));
    MUST(cuModuleUnload(mod));
    MUST(cuCtxDestroy(ctx));
    free(a);
    free(b);
    free(c);
    printf("%s\n", bad1 || bad2 ? "FAIL" : "PASS");
    return bad1 || bad2;
}
