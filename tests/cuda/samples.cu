// tests/cuda/samples.cu - the kernels of our rewrites of NVIDIA's
// driver-API samples vectorAddDrv and matrixMulDrv (vector-add-drv.c,
// matrix-mul-drv.c): written here after what those samples do, not
// copied.  Built by nvcc into a fatbin and PTX text like kernels.cu; the
// host's stand-in libcuda runs them by name on the CPU.

// C = A + B, one thread per element (vectorAddDrv's kernel).
extern "C" __global__ void VecAdd_kernel(const float *A, const float *B,
                                         float *C, int N)
{
    int i = blockDim.x * blockIdx.x + threadIdx.x;

    if (i < N) {
        C[i] = A[i] + B[i];
    }
}

// C = A x B with square tiles of BS x BS in shared memory, row-major,
// wA columns of A and wB of B, both multiples of BS (matrixMulDrv's
// kernel, with 64-bit sizes as its _64bit variant has).  Each block
// computes one tile of C, walking the tiles of A's rows and B's columns.
template <int BS>
__device__ void matrix_mul_tiled(float *C, const float *A, const float *B,
                                 size_t wA, size_t wB)
{
    __shared__ float As[BS][BS];
    __shared__ float Bs[BS][BS];
    size_t bx = blockIdx.x, by = blockIdx.y;
    int tx = threadIdx.x, ty = threadIdx.y;
    size_t a_begin = wA * BS * by, a_end = a_begin + wA - 1;
    size_t b_begin = BS * bx;
    float sum = 0.0f;

    for (size_t a = a_begin, b = b_begin; a <= a_end; a += BS, b += BS * wB) {
        As[ty][tx] = A[a + wA * ty + tx];
        Bs[ty][tx] = B[b + wB * ty + tx];
        __syncthreads();
        for (int k = 0; k < BS; k++) {
            sum += As[ty][k] * Bs[k][tx];
        }
        __syncthreads();
    }
    C[wB * BS * by + BS * bx + wB * ty + tx] = sum;
}

extern "C" __global__ void matrixMul_bs16_64bit(float *C, float *A, float *B,
                                                size_t wA, size_t wB)
{
    matrix_mul_tiled<16>(C, A, B, wA, wB);
}

extern "C" __global__ void matrixMul_bs32_64bit(float *C, float *A, float *B,
                                                size_t wA, size_t wB)
{
    matrix_mul_tiled<32>(C, A, B, wA, wB);
}
