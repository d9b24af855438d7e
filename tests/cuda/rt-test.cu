// tests/cuda/rt-test.cu - cuda-rt-test: an unmodified CUDA runtime-API
// program, built by plain `nvcc` (NVIDIA's runtime linked statically, its
// default), that the e2e tests run in TCG guests against the guest's
// libcuda.so.1.  cudart finds the driver by dlopen("libcuda.so.1") and
// cuGetProcAddress, asks for the driver's private tables
// (cuGetExportTable), loads this file's fatbin as a library and launches
// by the kernels' names; nothing in it knows about vgpu.  Prints "PASS"
// when every result is right; exit status 0 then.
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

// The kernels of tests/cuda/kernels.cu that the host's stand-in libcuda
// runs by name on the CPU (plain C names).
extern "C" __global__ void vgpu_test_vec_add(const float *a, const float *b,
                                             float *c, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;

    if (i < n) {
        c[i] = a[i] + b[i];
    }
}

extern "C" __global__ void vgpu_test_add_scalar(int *p, int delta, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;

    if (i < n) {
        p[i] += delta;
    }
}

static int failures;

static void check(bool ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok" : "FAILED", what);
    failures += !ok;
}

#define MUST(call)                                                             \
    do {                                                                       \
        cudaError_t e_ = (call);                                               \
        if (e_ != cudaSuccess) {                                               \
            printf("FAILED: %s: %s (%s)\n", #call, cudaGetErrorName(e_),       \
                   cudaGetErrorString(e_));                                    \
            return 1;                                                          \
        }                                                                      \
    } while (0)

int main()
{
    const int n = 100000;
    int count = 0, bad = 0;
    cudaDeviceProp prop;
    size_t free_b = 0, total = 0;
    float *a, *b, *c, *da, *db, *dc;

    MUST(cudaGetDeviceCount(&count));
    check(count >= 1, "a device");
    MUST(cudaGetDeviceProperties(&prop, 0));
    printf("device 0: %s, compute capability %d.%d, %zu bytes\n", prop.name,
           prop.major, prop.minor, prop.totalGlobalMem);
    MUST(cudaMemGetInfo(&free_b, &total));
    printf("memory: %zu free of %zu\n", free_b, total);

    a = (float *)malloc(n * sizeof(float));
    b = (float *)malloc(n * sizeof(float));
    c = (float *)malloc(n * sizeof(float));
    for (int i = 0; i < n; i++) {
        a[i] = (float)(i % 1000);
        b[i] = (float)(3 * (i % 333));
    }
    MUST(cudaMalloc(&da, n * sizeof(float)));
    MUST(cudaMalloc(&db, n * sizeof(float)));
    MUST(cudaMalloc(&dc, n * sizeof(float)));
    MUST(cudaMemcpy(da, a, n * sizeof(float), cudaMemcpyHostToDevice));
    MUST(cudaMemcpy(db, b, n * sizeof(float), cudaMemcpyHostToDevice));
    vgpu_test_vec_add<<<(n + 255) / 256, 256>>>(da, db, dc, n);
    MUST(cudaGetLastError());
    MUST(cudaDeviceSynchronize());
    MUST(cudaMemcpy(c, dc, n * sizeof(float), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++) {
        bad += c[i] != a[i] + b[i];
    }
    check(bad == 0, "vector add through the runtime API");

    {
        cudaStream_t s;
        cudaEvent_t e0, e1;
        int *dp, host[1024];
        float ms = -1;

        MUST(cudaStreamCreate(&s));
        MUST(cudaEventCreate(&e0));
        MUST(cudaEventCreate(&e1));
        MUST(cudaMalloc(&dp, sizeof(host)));
        MUST(cudaEventRecord(e0, s));
        MUST(cudaMemsetAsync(dp, 0, sizeof(host), s));
        for (int k = 0; k < 100; k++) {
            vgpu_test_add_scalar<<<4, 256, 0, s>>>(dp, 2, 1024);
        }
        MUST(cudaEventRecord(e1, s));
        MUST(cudaMemcpyAsync(host, dp, sizeof(host), cudaMemcpyDeviceToHost,
                             s));
        MUST(cudaStreamSynchronize(s));
        MUST(cudaEventSynchronize(e1));
        MUST(cudaEventElapsedTime(&ms, e0, e1));
        bad = 0;
        for (int i = 0; i < 1024; i++) {
            bad += host[i] != 200;
        }
        check(bad == 0 && ms >= 0, "stream: memset, 100 launches, events");
        MUST(cudaEventDestroy(e0));
        MUST(cudaEventDestroy(e1));
        MUST(cudaStreamDestroy(s));
        MUST(cudaFree(dp));
    }
    MUST(cudaFree(da));
    MUST(cudaFree(db));
    MUST(cudaFree(dc));
    free(a);
    free(b);
    free(c);
    printf("%s\n", failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
}
