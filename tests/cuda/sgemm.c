/*
 * tests/cuda/sgemm.c - cuda-sgemm: an unmodified cuBLAS program (the
 * runtime API, NVIDIA's libcublas.so.13 and its libcublasLt), built by
 * plain nvcc with -lcublas, as a user would build one.  Nothing in it
 * knows about vgpu: cuBLAS finds the driver, ours or NVIDIA's, by
 * dlopen("libcuda.so.1").
 *
 *   cuda-sgemm check N     C = alpha*A*B + beta*C for N x N matrices of
 *                          known values, against a double-precision CPU
 *                          product (relative tolerance 1e-4 of each
 *                          element's magnitude); "PASS" at the end
 *   cuda-sgemm bench N R   R timed SGEMMs of N x N after one warm-up,
 *                          GFLOP/s printed ("sgemm N=.. R=..: .. GFLOP/s"),
 *                          for make gpu-check's ratio against native
 *
 * Exit status 0 when every check passed; each failing call is named with
 * its status.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CUDA_MUST(call)                                                        \
    do {                                                                       \
        cudaError_t e_ = (call);                                               \
        if (e_ != cudaSuccess) {                                               \
            printf("FAILED: %s -> %s\n", #call, cudaGetErrorName(e_));         \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

#define BLAS_MUST(call)                                                        \
    do {                                                                       \
        cublasStatus_t s_ = (call);                                            \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                     \
            printf("FAILED: %s -> %s\n", #call, cublasGetStatusName(s_));      \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

/* Values small enough that a float product of N terms stays exact to the
 * tolerance, and varied enough that a wrong index shows. */
static float a_val(int i, int j)
{
    return (float)((i * 7 + j * 3) % 17) / 16.0f - 0.5f;
}

static float b_val(int i, int j)
{
    return (float)((i * 5 + j * 11) % 13) / 12.0f - 0.5f;
}

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct mats {
    int n;
    float *a, *b, *c; /* host, column-major as BLAS has them */
    float *da, *db, *dc;
};

static void setup(struct mats *m, int n)
{
    size_t bytes = (size_t)n * (size_t)n * sizeof(float);

    m->n = n;
    m->a = malloc(bytes);
    m->b = malloc(bytes);
    m->c = malloc(bytes);
    if (!m->a || !m->b || !m->c) {
        printf("FAILED: out of host memory for N=%d\n", n);
        exit(1);
    }
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < n; i++) {
            m->a[(size_t)j * n + i] = a_val(i, j);
            m->b[(size_t)j * n + i] = b_val(i, j);
            m->c[(size_t)j * n + i] = 1.0f;
        }
    }
    CUDA_MUST(cudaMalloc((void **)&m->da, bytes));
    CUDA_MUST(cudaMalloc((void **)&m->db, bytes));
    CUDA_MUST(cudaMalloc((void **)&m->dc, bytes));
    CUDA_MUST(cudaMemcpy(m->da, m->a, bytes, cudaMemcpyHostToDevice));
    CUDA_MUST(cudaMemcpy(m->db, m->b, bytes, cudaMemcpyHostToDevice));
    CUDA_MUST(cudaMemcpy(m->dc, m->c, bytes, cudaMemcpyHostToDevice));
}

static int check(cublasHandle_t h, int n)
{
    const float alpha = 1.5f, beta = 0.25f;
    size_t bytes = (size_t)n * (size_t)n * sizeof(float);
    struct mats m;
    long wrong = 0;
    double worst = 0;

    setup(&m, n);
    BLAS_MUST(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, m.da, n,
                          m.db, n, &beta, m.dc, n));
    CUDA_MUST(cudaMemcpy(m.c, m.dc, bytes, cudaMemcpyDeviceToHost));
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < n; i++) {
            double want = 0, mag = 0, got = m.c[(size_t)j * n + i], err;

            for (int k = 0; k < n; k++) {
                double p = (double)a_val(i, k) * (double)b_val(k, j);

                want += p;
                mag += fabs(p);
            }
            want = alpha * want + beta * 1.0;
            mag = alpha * mag + beta;
            err = fabs(got - want) / (mag > 1 ? mag : 1);
            worst = err > worst ? err : worst;
            if (err > 1e-4) {
                if (wrong++ < 3) {
                    printf("  C[%d][%d] = %.6f, want %.6f\n", i, j, got, want);
                }
            }
        }
    }
    printf("%s: sgemm N=%d: %ld of %ld elements wrong (worst relative "
           "error %.2e)\n",
           wrong ? "FAILED" : "ok", n, wrong, (long)n * n, worst);
    cudaFree(m.da);
    cudaFree(m.db);
    cudaFree(m.dc);
    free(m.a);
    free(m.b);
    free(m.c);
    return wrong ? 1 : 0;
}

static int bench(cublasHandle_t h, int n, int reps)
{
    const float alpha = 1.0f, beta = 0.0f;
    struct mats m;
    double t0, t;

    setup(&m, n);
    BLAS_MUST(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, m.da, n,
                          m.db, n, &beta, m.dc, n));
    CUDA_MUST(cudaDeviceSynchronize());
    t0 = now_s();
    for (int r = 0; r < reps; r++) {
        BLAS_MUST(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha,
                              m.da, n, m.db, n, &beta, m.dc, n));
    }
    CUDA_MUST(cudaDeviceSynchronize());
    t = now_s() - t0;
    printf("sgemm N=%d R=%d: %.1f GFLOP/s (%.3f s)\n", n, reps,
           2.0 * n * (double)n * n * reps / t / 1e9, t);
    return 0;
}

int main(int argc, char **argv)
{
    cublasHandle_t h;
    int rc, n = argc > 2 ? atoi(argv[2]) : 0;

    if (argc < 3 || n < 1 || n > 16384 ||
        (strcmp(argv[1], "check") && strcmp(argv[1], "bench"))) {
        fprintf(stderr, "usage: cuda-sgemm check N | bench N REPS\n");
        return 2;
    }
    BLAS_MUST(cublasCreate(&h));
    printf("ok: cublasCreate\n");
    if (strcmp(argv[1], "check") == 0) {
        rc = check(h, n);
    } else {
        rc = bench(h, n, argc > 3 ? atoi(argv[3]) : 10);
    }
    BLAS_MUST(cublasDestroy(h));
    if (rc == 0) {
        printf("PASS\n");
    }
    return rc;
}
