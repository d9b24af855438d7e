/*
 * tests/cuda/drv-test.c - cuda-drv-test: an unmodified CUDA driver-API
 * program, of the kind of NVIDIA's vectorAddDrv and matrixMulDrv, that the
 * e2e tests run in a TCG guest against the guest's libcuda.so.1.  Built by
 * the CUDA toolkit's nvcc against its cuda.h and its stub libcuda.so (as
 * any driver-API program is); nothing in it knows about vgpu.
 *
 *   cuda-drv-test run FATBIN PTX   device query, vector add (fatbin loaded
 *                                  from a file), matrix multiply (PTX
 *                                  loaded from memory), 10000 small
 *                                  launches then one sync, streams and
 *                                  events, memory info, kernel attributes,
 *                                  occupancy, cuLaunchKernelEx; every result
 *                                  checked; "PASS" at the end
 *   cuda-drv-test launches N FATBIN  N small launches then one sync, the
 *                                  result checked (make bench counts the
 *                                  round trips this takes)
 *   cuda-drv-test hold MB          a context holding MB of device memory,
 *                                  "holding" printed, then sleeps until
 *                                  killed (what a process that dies leaves)
 *   cuda-drv-test copy MB          MB MiB host -> device -> host, pageable
 *                                  and pinned, best of 3 each, checked;
 *                                  GiB/s printed (make gpu-check's rows)
 *   cuda-drv-test big FATBIN       a module image over the library's 4 MB
 *                                  batch (big.fatbin), loaded and run
 *   cuda-drv-test hostile FATBIN   calls a hostile program makes: foreign
 *                                  and made-up handles, out-of-range
 *                                  copies, huge allocations, a truncated
 *                                  image, a kernel that faults; each must
 *                                  get its CUDA error; a fault spoils this
 *                                  VM's contexts (as CUDA spoils a faulted
 *                                  context), a new one works
 *
 * Exit status 0 when every check passed.
 */
#include <cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            printf("ok: ");                                                    \
        } else {                                                               \
            printf("FAILED: ");                                                \
            failures++;                                                        \
        }                                                                      \
        printf(__VA_ARGS__);                                                   \
        printf("\n");                                                          \
    } while (0)

static const char *err_name(CUresult r)
{
    const char *s = NULL;

    cuGetErrorName(r, &s);
    return s ? s : "?";
}

/* A call that must succeed; the program stops when it does not. */
#define MUST(call)                                                             \
    do {                                                                       \
        CUresult r_ = (call);                                                  \
        if (r_ != CUDA_SUCCESS) {                                              \
            printf("FAILED: %s: %s\n", #call, err_name(r_));                   \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET)) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void device_query(CUdevice *dev)
{
    char name[256];
    int count = 0, major = 0, minor = 0, sms = 0;
    size_t total = 0;

    MUST(cuInit(0));
    MUST(cuDeviceGetCount(&count));
    CHECK(count >= 1, "device count %d", count);
    MUST(cuDeviceGet(dev, 0));
    MUST(cuDeviceGetName(name, sizeof(name), *dev));
    MUST(cuDeviceGetAttribute(
        &major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, *dev));
    MUST(cuDeviceGetAttribute(
        &minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, *dev));
    cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, *dev);
    MUST(cuDeviceTotalMem(&total, *dev));
    printf("device 0: %s, compute capability %d.%d, %d SMs, %zu bytes\n", name,
           major, minor, sms, total);
    CHECK(name[0] != 0 && major >= 1, "device name and capability reported");
}

static void vector_add(CUmodule mod)
{
    enum { N = 50000 };
    CUfunction fn;
    CUdeviceptr da, db, dc;
    float *a = malloc(N * sizeof(float)), *b = malloc(N * sizeof(float));
    float *c = malloc(N * sizeof(float));
    int n = N, bad = 0;
    void *args[] = {&da, &db, &dc, &n};

    for (int i = 0; i < N; i++) {
        a[i] = (float)(i % 1000);
        b[i] = (float)(2 * (i % 777));
    }
    MUST(cuModuleGetFunction(&fn, mod, "vgpu_test_vec_add"));
    MUST(cuMemAlloc(&da, N * sizeof(float)));
    MUST(cuMemAlloc(&db, N * sizeof(float)));
    MUST(cuMemAlloc(&dc, N * sizeof(float)));
    MUST(cuMemcpyHtoD(da, a, N * sizeof(float)));
    MUST(cuMemcpyHtoD(db, b, N * sizeof(float)));
    MUST(cuLaunchKernel(fn, (N + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, args,
                        NULL));
    MUST(cuMemcpyDtoH(c, dc, N * sizeof(float)));
    for (int i = 0; i < N; i++) {
        bad += c[i] != a[i] + b[i];
    }
    CHECK(bad == 0, "vector add of %d elements: %d wrong", N, bad);
    MUST(cuMemFree(da));
    MUST(cuMemFree(db));
    MUST(cuMemFree(dc));
    free(a);
    free(b);
    free(c);
}

static void matrix_multiply(CUmodule mod)
{
    enum { W = 64 };
    CUfunction fn;
    CUdeviceptr dA, dB, dC;
    float *A = malloc(W * W * 4), *B = malloc(W * W * 4),
          *C = malloc(W * W * 4);
    int n = W, bad = 0;
    void *args[] = {&dA, &dB, &dC, &n};

    for (int i = 0; i < W * W; i++) {
        A[i] = (float)(i % 7 - 3);
        B[i] = (float)(i % 5 - 2);
    }
    MUST(cuModuleGetFunction(&fn, mod, "vgpu_test_matmul"));
    MUST(cuMemAlloc(&dA, W * W * 4));
    MUST(cuMemAlloc(&dB, W * W * 4));
    MUST(cuMemAlloc(&dC, W * W * 4));
    MUST(cuMemcpyHtoD(dA, A, W * W * 4));
    MUST(cuMemcpyHtoD(dB, B, W * W * 4));
    MUST(cuLaunchKernel(fn, W / 16, W / 16, 1, 16, 16, 1, 0, NULL, args, NULL));
    MUST(cuCtxSynchronize());
    MUST(cuMemcpyDtoH(C, dC, W * W * 4));
    for (int r = 0; r < W; r++) {
        for (int col = 0; col < W; col++) {
            float s = 0;

            for (int k = 0; k < W; k++) {
                s += A[r * W + k] * B[k * W + col];
            }
            bad += C[r * W + col] != s;
        }
    }
    CHECK(bad == 0, "matrix multiply %dx%d from PTX: %d wrong", W, W, bad);
    cuMemFree(dA);
    cuMemFree(dB);
    cuMemFree(dC);
    free(A);
    free(B);
    free(C);
}

/* Many small launches, one sync: they are batched by the library. */
static void launch_loop(CUmodule mod, int launches)
{
    enum { N = 256 };
    CUfunction fn;
    CUdeviceptr d;
    int host[N], n = N, delta = 1, bad = 0;
    void *args[] = {&d, &delta, &n};
    double t0, t;

    MUST(cuModuleGetFunction(&fn, mod, "vgpu_test_add_scalar"));
    MUST(cuMemAlloc(&d, sizeof(host)));
    MUST(cuMemsetD32(d, 0, N));
    MUST(cuCtxSynchronize());
    t0 = now_s();
    for (int i = 0; i < launches; i++) {
        MUST(cuLaunchKernel(fn, 1, 1, 1, N, 1, 1, 0, NULL, args, NULL));
    }
    MUST(cuCtxSynchronize());
    t = now_s() - t0;
    MUST(cuMemcpyDtoH(host, d, sizeof(host)));
    for (int i = 0; i < N; i++) {
        bad += host[i] != launches;
    }
    CHECK(bad == 0, "%d launches then one sync: every element is %d", launches,
          launches);
    printf("launch loop: %d launches and one sync in %.6f s\n", launches, t);
    cuMemFree(d);
}

static void streams_and_events(CUmodule mod)
{
    enum { N = 4096 };
    CUfunction fn;
    CUstream s;
    CUevent e0, e1;
    CUdeviceptr d;
    int host[N], n = N, delta = 5, bad = 0;
    float ms = -1;
    void *args[] = {&d, &delta, &n};

    for (int i = 0; i < N; i++) {
        host[i] = i;
    }
    MUST(cuModuleGetFunction(&fn, mod, "vgpu_test_add_scalar"));
    MUST(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    MUST(cuEventCreate(&e0, CU_EVENT_DEFAULT));
    MUST(cuEventCreate(&e1, CU_EVENT_DEFAULT));
    MUST(cuMemAlloc(&d, sizeof(host)));
    MUST(cuEventRecord(e0, s));
    MUST(cuMemcpyHtoDAsync(d, host, sizeof(host), s));
    memset(host, 0, sizeof(host)); /* the async copy took the bytes */
    MUST(cuLaunchKernel(fn, N / 256, 1, 1, 256, 1, 1, 0, s, args, NULL));
    MUST(cuEventRecord(e1, s));
    MUST(cuMemcpyDtoHAsync(host, d, sizeof(host), s));
    MUST(cuStreamSynchronize(s));
    MUST(cuEventSynchronize(e1));
    MUST(cuEventElapsedTime(&ms, e0, e1));
    for (int i = 0; i < N; i++) {
        bad += host[i] != i + 5;
    }
    CHECK(bad == 0 && ms >= 0, "stream: async copy, launch, events (%.3f ms)",
          ms);
    MUST(cuEventDestroy(e0));
    MUST(cuEventDestroy(e1));
    MUST(cuStreamDestroy(s));
    cuMemFree(d);
}

/* What libraries ask of a kernel before they launch it (cuBLAS does all
 * of this): its attributes, its occupancy, whether the stream is being
 * captured, and a launch with launch attributes (a cluster, where the GPU
 * has them: sm_90 on). */
static void kernel_queries(CUmodule mod, CUdevice dev)
{
    enum { N = 256 };
    CUfunction fn;
    CUdeviceptr d;
    CUstreamCaptureStatus cs = CU_STREAM_CAPTURE_STATUS_ACTIVE;
    int v = 0, blocks = 0, major = 0, host[N], n = N, delta = 1, bad = 0;
    void *args[] = {&d, &delta, &n};
    CUlaunchAttribute at[1];
    CUlaunchConfig cfg;
    CUresult r;

    MUST(cuModuleGetFunction(&fn, mod, "vgpu_test_add_scalar"));
    MUST(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, fn));
    CHECK(v >= N, "function attribute: up to %d threads per block", v);
    MUST(cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                            32768));
    MUST(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                            fn));
    CHECK(v == 32768, "dynamic shared memory set to 32768, reads back %d", v);
    r = cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_NUM_REGS, 8);
    CHECK(r == CUDA_ERROR_INVALID_VALUE, "setting a read-only attribute: %s",
          err_name(r));
    MUST(cuFuncSetCacheConfig(fn, CU_FUNC_CACHE_PREFER_SHARED));
    MUST(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, fn, N, 0));
    CHECK(blocks > 0, "occupancy: %d blocks of %d threads per multiprocessor",
          blocks, N);
    MUST(cuStreamIsCapturing(NULL, &cs));
    CHECK(cs == CU_STREAM_CAPTURE_STATUS_NONE,
          "the default stream is not being captured");

    MUST(cuDeviceGetAttribute(
        &major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
    MUST(cuMemAlloc(&d, sizeof(host)));
    MUST(cuMemsetD32(d, 0, N));
    memset(&cfg, 0, sizeof(cfg));
    memset(at, 0, sizeof(at));
    cfg.gridDimX = 2;
    cfg.gridDimY = cfg.gridDimZ = 1;
    cfg.blockDimX = N / 2;
    cfg.blockDimY = cfg.blockDimZ = 1;
    at[0].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    at[0].value.clusterDim.x = 2;
    at[0].value.clusterDim.y = at[0].value.clusterDim.z = 1;
    cfg.attrs = at;
    cfg.numAttrs = major >= 9 ? 1 : 0;
    MUST(cuLaunchKernelEx(&cfg, fn, args, NULL));
    cfg.numAttrs = 0;
    MUST(cuLaunchKernelEx(&cfg, fn, args, NULL));
    MUST(cuCtxSynchronize());
    MUST(cuMemcpyDtoH(host, d, sizeof(host)));
    for (int i = 0; i < N; i++) {
        bad += host[i] != 2;
    }
    CHECK(bad == 0, "cuLaunchKernelEx%s, then without attributes: %d wrong",
          major >= 9 ? " in clusters of 2" : "", bad);
    cuMemFree(d);
}

static int run(const char *fatbin, const char *ptx_path)
{
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod, ptxmod;
    size_t free_b = 0, total = 0, ptx_len;
    char *ptx = read_file(ptx_path, &ptx_len);
    const char *loops = getenv("CUDA_TEST_LAUNCHES");

    device_query(&dev);
    MUST(cuCtxCreate(&ctx, NULL, 0, dev));
    MUST(cuMemGetInfo(&free_b, &total));
    printf("memory: %zu free of %zu\n", free_b, total);
    {
        /* What the device reports is what can be had: half of it, yes;
         * more than all of it, no. */
        CUdeviceptr half, over;
        CUresult r;

        MUST(cuMemAlloc(&half, total / 2));
        r = cuMemAlloc(&over, total / 2 + total / 4);
        CHECK(r == CUDA_ERROR_OUT_OF_MEMORY,
              "allocating past the reported memory: %s", err_name(r));
        MUST(cuMemFree(half));
    }
    MUST(cuModuleLoad(&mod, fatbin));
    MUST(cuModuleLoadData(&ptxmod, ptx));
    vector_add(mod);
    matrix_multiply(ptxmod);
    launch_loop(mod, loops ? atoi(loops) : 10000);
    streams_and_events(mod);
    kernel_queries(mod, dev);
    MUST(cuModuleUnload(ptxmod));
    MUST(cuModuleUnload(mod));
    MUST(cuCtxDestroy(ctx));
    free(ptx);
    printf("%s\n", failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
}

/* ---------------------------------------------------------------------- */

#define EXPECT(call, want)                                                     \
    do {                                                                       \
        CUresult r_ = (call);                                                  \
        CHECK(r_ == (want), "%s -> %s (want %s)", #call, err_name(r_),         \
              err_name(want));                                                 \
    } while (0)

static int hostile(const char *fatbin)
{
    CUdevice dev;
    CUcontext ctx, victim;
    CUmodule mod;
    CUfunction fn, poke;
    CUdeviceptr d, other;
    size_t len;
    unsigned char *img = read_file(fatbin, &len);
    unsigned char buf[64] = {0};
    int value = 7, got = 0;
    void *args[] = {&d, &value};
    CUdeviceptr wild = 0x10;
    void *wild_args[] = {&wild, &value};

    device_query(&dev);
    MUST(cuCtxCreate(&victim, NULL, 0, dev));
    MUST(cuCtxCreate(&ctx, NULL, 0, dev));
    MUST(cuMemAlloc(&other, 64));
    MUST(cuModuleLoadData(&mod, img));
    MUST(cuMemAlloc(&d, 64));

    /* Handles that are not this program's. */
    EXPECT(cuModuleGetFunction(&fn, (CUmodule)(uintptr_t)0x0200000700000001ull,
                               "vgpu_test_poke"),
           CUDA_ERROR_INVALID_HANDLE);
    EXPECT(cuStreamSynchronize((CUstream)(uintptr_t)0x0400000000000003ull),
           CUDA_ERROR_INVALID_HANDLE);
    /* Queued without a round trip: the error comes at the next sync. */
    EXPECT(cuEventRecord((CUevent)(uintptr_t)0x1234, NULL), CUDA_SUCCESS);
    EXPECT(cuCtxSynchronize(), CUDA_ERROR_INVALID_HANDLE);
    /* Another context's object named in this one. */
    cuCtxSetCurrent(victim);
    EXPECT(cuModuleGetFunction(&fn, mod, "vgpu_test_poke"),
           CUDA_ERROR_INVALID_HANDLE);
    cuCtxSetCurrent(ctx);
    EXPECT(cuModuleGetFunction(&fn, mod, "no_such_kernel"),
           CUDA_ERROR_NOT_FOUND);

    /* Copies outside the allocation, or of no allocation. */
    EXPECT(cuMemcpyHtoD(d + 32, buf, 64), CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuMemcpyDtoH(buf, d - 8, 16), CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuMemcpyDtoH(buf, (CUdeviceptr)0x7f0000000000ull, 16),
           CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuMemcpyDtoD(d, other + 60, 8), CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuMemsetD32(d, 0, 1u << 30), CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuMemFree(d + 4), CUDA_ERROR_INVALID_VALUE);

    /* Sizes no GPU has, or beyond the VM's quota. */
    EXPECT(cuMemAlloc(&other, (size_t)1 << 50), CUDA_ERROR_OUT_OF_MEMORY);
    EXPECT(cuMemAlloc(&other, 0), CUDA_ERROR_INVALID_VALUE);

    /* Not an image; an image whose size was inflated over bytes that
     * are no part of it (the library sends what the header says, the
     * mediator finds the entries do not add up). */
    EXPECT(cuModuleLoadData(&mod, "not an image"), CUDA_ERROR_INVALID_IMAGE);
    {
        unsigned char *big = calloc(1, 2 * len);
        uint64_t fat;
        CUmodule m2;

        memcpy(big, img, len);
        memcpy(&fat, big + 8, 8);
        fat += len; /* little-endian host, as the fatbin */
        memcpy(big + 8, &fat, 8);
        EXPECT(cuModuleLoadData(&m2, big), CUDA_ERROR_INVALID_IMAGE);
        {
            /* Through cuModuleLoadDataEx, the error log has the why. */
            char elog[256] = "";
            CUjit_option o[] = {CU_JIT_ERROR_LOG_BUFFER,
                                CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
            void *v[] = {elog, (void *)(uintptr_t)sizeof(elog)};

            EXPECT(cuModuleLoadDataEx(&m2, big, 2, o, v),
                   CUDA_ERROR_INVALID_IMAGE);
            CHECK((uintptr_t)v[1] < sizeof(elog) &&
                      strlen(elog) == (size_t)(uintptr_t)v[1],
                  "its JIT error log: \"%s\" (%zu bytes)", elog,
                  (size_t)(uintptr_t)v[1]);
        }
        free(big);
    }

    /* A launch whose parameters do not match the kernel. */
    MUST(cuModuleGetFunction(&poke, mod, "vgpu_test_poke"));
    EXPECT(cuLaunchKernel(poke, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL),
           CUDA_ERROR_INVALID_VALUE);
    /* Queued without a round trip; its error comes at the next sync. */
    EXPECT(cuLaunchKernel(poke, 0, 1, 1, 1, 1, 1, 0, NULL, args, NULL),
           CUDA_SUCCESS);
    EXPECT(cuCtxSynchronize(), CUDA_ERROR_INVALID_VALUE);
    /* What the library queues, refused at the call (as CUDA does): a
     * cache preference CUfunc_cache does not have, half a cluster, a
     * launch attribute it does not pass on. */
    EXPECT(cuFuncSetCacheConfig(poke, (CUfunc_cache)7),
           CUDA_ERROR_INVALID_VALUE);
    {
        CUlaunchAttribute at[1];
        CUlaunchConfig cfg;

        memset(&cfg, 0, sizeof(cfg));
        memset(at, 0, sizeof(at));
        cfg.gridDimX = cfg.gridDimY = cfg.gridDimZ = 1;
        cfg.blockDimX = cfg.blockDimY = cfg.blockDimZ = 1;
        cfg.attrs = at;
        cfg.numAttrs = 1;
        at[0].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
        at[0].value.clusterDim.x = 2;
        at[0].value.clusterDim.z = 1;
        EXPECT(cuLaunchKernelEx(&cfg, poke, args, NULL),
               CUDA_ERROR_INVALID_VALUE);
        at[0].id = CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW;
        EXPECT(cuLaunchKernelEx(&cfg, poke, args, NULL),
               CUDA_ERROR_NOT_SUPPORTED);
        cfg.attrs = NULL;
        EXPECT(cuLaunchKernelEx(&cfg, poke, args, NULL),
               CUDA_ERROR_INVALID_VALUE);
        EXPECT(cuLaunchKernelEx(NULL, poke, args, NULL),
               CUDA_ERROR_INVALID_VALUE);
    }
    EXPECT(cuCtxSynchronize(), CUDA_SUCCESS);
    /* A good launch still works after all that. */
    MUST(cuLaunchKernel(poke, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL));
    MUST(cuMemcpyDtoH(&got, d, sizeof(got)));
    CHECK(got == 7, "the context still works: poke wrote %d", got);

    /* A kernel that writes where the VM has nothing: the context is
     * spoiled (sticky), as on a GPU. */
    MUST(cuLaunchKernel(poke, 1, 1, 1, 1, 1, 1, 0, NULL, wild_args, NULL));
    EXPECT(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
    {
        CUresult r = cuMemAlloc(&d, 64);

        CHECK(r != CUDA_SUCCESS, "after the fault the context is gone: %s",
              err_name(r));
    }
    /* A new context works again. */
    MUST(cuCtxCreate(&ctx, NULL, 0, dev));
    MUST(cuMemAlloc(&d, 64));
    MUST(cuMemsetD8(d, 1, 64));
    MUST(cuMemcpyDtoH(buf, d, 64));
    CHECK(buf[0] == 1 && buf[63] == 1, "a new context after the fault works");
    free(img);
    printf("%s\n", failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
}

static int launches(int n, const char *fatbin)
{
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;

    device_query(&dev);
    MUST(cuCtxCreate(&ctx, NULL, 0, dev));
    MUST(cuModuleLoad(&mod, fatbin));
    launch_loop(mod, n);
    MUST(cuCtxDestroy(ctx));
    printf("%s\n", failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
}

/*
 * MB MiB each way between host and device memory, pageable (malloc) and
 * pinned (cuMemAllocHost), best of three, every byte checked once: the
 * copy rows of make gpu-check's benchmark.
 */
static double copy_best(CUdeviceptr d, unsigned char *h, size_t len, int to_dev)
{
    double best = 1e30;

    for (int r = 0; r < 3; r++) {
        double t0 = now_s(), t;

        if (to_dev) {
            MUST(cuMemcpyHtoD(d, h, len));
        } else {
            MUST(cuMemcpyDtoH(h, d, len));
        }
        t = now_s() - t0;
        best = t < best ? t : best;
    }
    return best;
}

static int copies(int mb)
{
    size_t len = (size_t)mb << 20, bad = 0;
    unsigned char *pageable = malloc(len), *pinned = NULL;
    CUdevice dev;
    CUcontext ctx;
    CUdeviceptr d;
    double h2d, d2h, ph2d, pd2h, gib = (double)len / (1u << 30);

    if (!pageable) {
        printf("FAILED: no %d MiB of host memory\n", mb);
        return 1;
    }
    device_query(&dev);
    MUST(cuCtxCreate(&ctx, NULL, 0, dev));
    MUST(cuMemAlloc(&d, len));
    MUST(cuMemAllocHost((void **)&pinned, len));
    for (size_t i = 0; i < len; i++) {
        pageable[i] = (unsigned char)(i * 7 + 3);
    }
    h2d = copy_best(d, pageable, len, 1);
    memset(pageable, 0, len);
    d2h = copy_best(d, pageable, len, 0);
    for (size_t i = 0; i < len; i++) {
        bad += pageable[i] != (unsigned char)(i * 7 + 3);
    }
    CHECK(bad == 0, "%d MiB there and back: %zu bytes wrong", mb, bad);
    memcpy(pinned, pageable, len);
    ph2d = copy_best(d, pinned, len, 1);
    pd2h = copy_best(d, pinned, len, 0);
    printf("copy %d MiB: pageable H2D %.2f GiB/s D2H %.2f GiB/s; pinned H2D "
           "%.2f GiB/s D2H %.2f GiB/s\n",
           mb, gib / h2d, gib / d2h, gib / ph2d, gib / pd2h);
    cuMemFreeHost(pinned);
    cuMemFree(d);
    MUST(cuCtxDestroy(ctx));
    free(pageable);
    printf("%s\n", failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
}

/* A module image over the library's 4 MB batch: it goes in a request of
 * its own, and its kernel runs. */
static int big_module(const char *fatbin)
{
    enum { N = 256 };
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    CUdeviceptr d;
    size_t len;
    unsigned char *img = read_file(fatbin, &len);
    int host[N], n = N, delta = 7, bad = 0, major = 0, minor = 0;
    void *args[] = {&d, &delta, &n};

    device_query(&dev);
    MUST(cuDeviceGetAttribute(
        &major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
    MUST(cuDeviceGetAttribute(
        &minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
    if (major != 9 || minor != 0) {
        printf("SKIP: the big image has sm_90 code only, this GPU is sm_%d%d\n",
               major, minor);
        return 0;
    }
    MUST(cuCtxCreate(&ctx, NULL, 0, dev));
    MUST(cuModuleLoadData(&mod, img));
    MUST(cuModuleGetFunction(&fn, mod, "vgpu_test_add_scalar"));
    MUST(cuMemAlloc(&d, sizeof(host)));
    MUST(cuMemsetD32(d, 0, N));
    MUST(cuLaunchKernel(fn, 1, 1, 1, N, 1, 1, 0, NULL, args, NULL));
    MUST(cuMemcpyDtoH(host, d, sizeof(host)));
    for (int i = 0; i < N; i++) {
        bad += host[i] != delta;
    }
    CHECK(len > (4u << 20), "the image, %zu bytes, is over the 4 MiB batch",
          len);
    CHECK(bad == 0,
          "a module image of %zu bytes loaded, its kernel ran: %d wrong", len,
          bad);
    MUST(cuModuleUnload(mod));
    MUST(cuCtxDestroy(ctx));
    free(img);
    printf("%s\n", failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
}

static int hold(int mb)
{
    CUdevice dev;
    CUcontext ctx;
    CUdeviceptr d;

    device_query(&dev);
    MUST(cuCtxCreate(&ctx, NULL, 0, dev));
    MUST(cuMemAlloc(&d, (size_t)mb << 20));
    printf("holding %d MB\n", mb);
    fflush(stdout);
    for (;;) {
        pause();
    }
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "hold") == 0) {
        return hold(atoi(argv[2]));
    }
    if (argc == 4 && strcmp(argv[1], "launches") == 0) {
        return launches(atoi(argv[2]), argv[3]);
    }
    if (argc == 3 && strcmp(argv[1], "big") == 0) {
        return big_module(argv[2]);
    }
    if (argc == 3 && strcmp(argv[1], "copy") == 0) {
        return copies(atoi(argv[2]));
    }
    if (argc == 4 && strcmp(argv[1], "run") == 0) {
        return run(argv[2], argv[3]);
    }
    if (argc == 3 && strcmp(argv[1], "hostile") == 0) {
        return hostile(argv[2]);
    }
    fprintf(stderr, "usage: cuda-drv-test run FATBIN PTX | launches N FATBIN "
                    "| hostile FATBIN | hold MB | copy MB | big FATBIN\n");
    return 2;
}
