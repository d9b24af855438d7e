/*
 * kernels.cu - the built-in kernels of the CUDA backend.
 *
 * Compiled by nvcc at build time into a fatbin (SASS for the common
 * architectures plus PTX for JIT on newer ones) that is embedded in the
 * mediator (cuda/image.S) and loaded into each VM's context with
 * cuModuleLoadDataEx.  Every entry point is extern "C" so its name is not
 * mangled: backend_cuda.c looks them up by the names in cuda/image.h.
 *
 * The results must be bit-identical to backend_cpu_execute():
 *  - VECTOR_ADD wraps (unsigned add);
 *  - SAXPY rounds twice (__fmul_rn then __fadd_rn: never fused);
 *  - SGEMM builds A and B with the formulas of vgpu_sgemm_a/b in
 *    vgpu_protocol.h (elements in [-8, 8], so every product and every sum
 *    of C is a small integer, exact in binary32 whatever the order), then
 *    sums C into an int64 with two's-complement atomics.
 */
#include <stdint.h>

#include "image.h" /* kernel names and launch shapes */

extern "C" __global__ void vgpu_vector_add(const uint32_t *a,
                                           const uint32_t *b, uint32_t *c,
                                           uint32_t n)
{
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;

    if (i < n) {
        c[i] = a[i] + b[i];
    }
}

/* y[i] = a * x[i] + y[i], in place, two roundings. */
extern "C" __global__ void vgpu_saxpy(float a, const float *x, float *y,
                                      uint32_t n)
{
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;

    if (i < n) {
        y[i] = __fadd_rn(__fmul_rn(a, x[i]), y[i]);
    }
}

/* The same formulas as vgpu_sgemm_a/b (uint32 arithmetic, wrapping). */
__device__ static float sgemm_a(uint32_t seed, uint32_t i, uint32_t j)
{
    return (float)((int32_t)((i * 7u + j * 3u + seed) % 17u) - 8);
}

__device__ static float sgemm_b(uint32_t seed, uint32_t i, uint32_t j)
{
    return (float)((int32_t)((i * 5u + j * 11u + seed * 3u) % 17u) - 8);
}

/* A and B (row-major n x n) from the seed; also zeroes the checksum. */
extern "C" __global__ void vgpu_sgemm_init(float *a, float *b,
                                           unsigned long long *sum,
                                           uint32_t n, uint32_t seed)
{
    uint32_t j = blockIdx.x * blockDim.x + threadIdx.x;
    uint32_t i = blockIdx.y * blockDim.y + threadIdx.y;

    if (i == 0 && j == 0) {
        *sum = 0;
    }
    if (i < n && j < n) {
        a[(size_t)i * n + j] = sgemm_a(seed, i, j);
        b[(size_t)i * n + j] = sgemm_b(seed, i, j);
    }
}

/* C = A x B, 16 x 16 tiles through shared memory. */
extern "C" __global__ void vgpu_sgemm(const float *a, const float *b,
                                      float *c, uint32_t n)
{
    __shared__ float ta[VGPU_SGEMM_TILE][VGPU_SGEMM_TILE];
    __shared__ float tb[VGPU_SGEMM_TILE][VGPU_SGEMM_TILE];
    const uint32_t tx = threadIdx.x, ty = threadIdx.y;
    const uint32_t col = blockIdx.x * VGPU_SGEMM_TILE + tx;
    const uint32_t row = blockIdx.y * VGPU_SGEMM_TILE + ty;
    float acc = 0.0f;

    for (uint32_t k0 = 0; k0 < n; k0 += VGPU_SGEMM_TILE) {
        ta[ty][tx] = (row < n && k0 + tx < n) ? a[(size_t)row * n + k0 + tx]
                                               : 0.0f;
        tb[ty][tx] = (col < n && k0 + ty < n) ? b[(size_t)(k0 + ty) * n + col]
                                               : 0.0f;
        __syncthreads();
#pragma unroll
        for (uint32_t k = 0; k < VGPU_SGEMM_TILE; k++) {
            /* Exact either way (small integers); kept unfused anyway. */
            acc = __fadd_rn(acc, __fmul_rn(ta[ty][k], tb[k][tx]));
        }
        __syncthreads();
    }
    if (row < n && col < n) {
        c[(size_t)row * n + col] = acc;
    }
}

/*
 * *sum += sum of c[0..count), each element converted to int64 as the CPU
 * reference does.  One block-wide reduction per block, then one 64-bit
 * atomic: two's-complement addition, so negative totals come out right.
 */
extern "C" __global__ void vgpu_checksum(const float *c, uint32_t count,
                                         unsigned long long *sum)
{
    __shared__ long long part[VGPU_SUM_THREADS];
    long long mine = 0;

    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count;
         i += gridDim.x * blockDim.x) {
        mine += (long long)c[i];
    }
    part[threadIdx.x] = mine;
    __syncthreads();
    for (uint32_t s = blockDim.x / 2; s > 0; s /= 2) {
        if (threadIdx.x < s) {
            part[threadIdx.x] += part[threadIdx.x + s];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        atomicAdd(sum, (unsigned long long)part[0]);
    }
}
