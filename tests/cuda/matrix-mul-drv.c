/*
 * tests/cuda/matrix-mul-drv.c - cuda-matrix-mul-drv: our rewrite of
 * NVIDIA's driver-API sample matrixMulDrv (written after what it does, not
 * copied): C = A x B for random A (HA x WA) and B (WA x WB) on the device,
 * by the shared-memory tiled kernel of samples.cu, whose module is JIT
 * compiled from PTX text loaded with cuModuleLoadDataEx and JIT options
 * (an info log buffer and its size), as the sample loads it; checked
 * against the host's product by the relative L2 error (< 1e-6, the
 * sample's bound).  Nothing in it knows about vgpu.
 *
 *   cuda-matrix-mul-drv PTX [BLOCK]   BLOCK 16 (default) or 32
 *
 * Prints "checksum XXXXXXXX" (FNV-1a over C's bits, for make gpu-check's
 * bit-for-bit comparison with a native run) and "PASS".
 */
#include <cuda.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) || !(buf = malloc((size_t)n + 1)) ||
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    buf[n] = 0;
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    int bs = argc > 2 ? atoi(argv[2]) : 16;
    /* The sample's shapes: multiples of the block size. */
    size_t wa = 4 * (size_t)bs, ha = 6 * (size_t)bs, wb = 4 * (size_t)bs;
    size_t sa = wa * ha, sb = wb * wa, sc = wb * ha;
    float *a, *b, *c;
    double num = 0, den = 0, l2;
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    CUdeviceptr da, db, dc;
    char info[4096] = "", kernel[32], name[128];
    CUjit_option opts[] = {CU_JIT_INFO_LOG_BUFFER,
                           CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES};
    void *vals[] = {info, (void *)(uintptr_t)sizeof(info)};
    void *args[] = {&dc, &da, &db, &wa, &wb};

    if (argc < 2 || (bs != 16 && bs != 32)) {
        fprintf(stderr, "usage: cuda-matrix-mul-drv PTX [16|32]\n");
        return 2;
    }
    a = malloc(sa * sizeof(float));
    b = malloc(sb * sizeof(float));
    c = malloc(sc * sizeof(float));
    if (!a || !b || !c) {
        return 2;
    }
    MUST(cuInit(0));
    MUST(cuDeviceGet(&dev, 0));
    MUST(cuDeviceGetName(name, sizeof(name), dev));
    printf("Matrix multiply on %s: A %zux%zu, B %zux%zu, block %d\n", name, ha,
           wa, wa, wb, bs);
    MUST(cuCtxCreate(&ctx, NULL, 0, dev));
    MUST(cuModuleLoadDataEx(&mod, read_text(argv[1]), 2, opts, vals));
    if ((uintptr_t)vals[1] >= sizeof(info) || !memchr(info, 0, sizeof(info))) {
        printf("FAILED: the JIT info log: %zu bytes said, or not ended\n",
               (size_t)(uintptr_t)vals[1]);
        return 1;
    }
    printf("ok: JIT info log of %zu bytes\n", (size_t)(uintptr_t)vals[1]);
    snprintf(kernel, sizeof(kernel), "matrixMul_bs%d_64bit", bs);
    MUST(cuModuleGetFunction(&fn, mod, kernel));

    srand(2006);
    for (size_t i = 0; i < sa; i++) {
        a[i] = (float)rand() / (float)RAND_MAX;
    }
    for (size_t i = 0; i < sb; i++) {
        b[i] = (float)rand() / (float)RAND_MAX;
    }
    MUST(cuMemAlloc(&da, sa * sizeof(float)));
    MUST(cuMemAlloc(&db, sb * sizeof(float)));
    MUST(cuMemAlloc(&dc, sc * sizeof(float)));
    MUST(cuMemcpyHtoD(da, a, sa * sizeof(float)));
    MUST(cuMemcpyHtoD(db, b, sb * sizeof(float)));
    MUST(cuLaunchKernel(fn, (unsigned)(wb / bs), (unsigned)(ha / bs), 1, bs, bs,
                        1, 0, NULL, args, NULL));
    MUST(cuCtxSynchronize());
    MUST(cuMemcpyDtoH(c, dc, sc * sizeof(float)));

    for (size_t i = 0; i < ha; i++) {
        for (size_t j = 0; j < wb; j++) {
            double want = 0, d;

            for (size_t k = 0; k < wa; k++) {
                want += (double)a[i * wa + k] * (double)b[k * wb + j];
            }
            d = want - c[i * wb + j];
            num += d * d;
            den += want * want;
        }
    }
    l2 = sqrt(num / den);
    printf("%s: relative L2 error %.3e against the host's product (bound "
           "1e-6)\n",
           l2 < 1e-6 ? "ok" : "FAILED", l2);
    printf("checksum %08x\n", sample_checksum(c, sc * sizeof(float)));
    MUST(cuMemFree(da));
    MUST(cuMemFree(db));
    MUST(cuMemFree(dc));
    MUST(cuModuleUnload(mod));
    MUST(cuCtxDestroy(ctx));
    printf("%s\n", l2 < 1e-6 ? "PASS" : "FAIL");
    return l2 < 1e-6 ? 0 : 1;
}
