// tests/cuda/kernels.cu - the kernels of the guest CUDA test programs
// (cuda-drv-test): built by nvcc into a fatbin (SASS and PTX) and PTX text,
// loaded by the programs through the guest's libcuda.so.1.  Plain C names
// (extern "C"), so a driver-API program finds them by name.  The stand-in
// libcuda of the host tests (mediator/tests/fakes/fake-libcuda.c) runs the
// ones it knows by these names on the CPU; on a GPU they run for real.
//
// Values are small integers held in binary32, so every result is exact on
// any device and a program can check it bit for bit.

extern "C" __global__ void vgpu_test_vec_add(const float *a, const float *b,
                                             float *c, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;

    if (i < n) {
        c[i] = a[i] + b[i];
    }
}

// C = A x B, n x n, row-major; one thread per element.
extern "C" __global__ void vgpu_test_matmul(const float *A, const float *B,
                                            float *C, int n)
{
    int row = blockIdx.y * blockDim.y + threadIdx.y;
    int col = blockIdx.x * blockDim.x + threadIdx.x;

    if (row < n && col < n) {
        float sum = 0.0f;

        for (int k = 0; k < n; k++) {
            sum += A[row * n + k] * B[k * n + col];
        }
        C[row * n + col] = sum;
    }
}

// p[i] += delta for i < n: a small launch, run many times in a loop.
extern "C" __global__ void vgpu_test_add_scalar(int *p, int delta, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;

    if (i < n) {
        p[i] += delta;
    }
}

// Writes through the pointer it is given: given an address that is not
// the VM's, it faults (CUDA_ERROR_ILLEGAL_ADDRESS), which must spoil that
// VM's context only.
extern "C" __global__ void vgpu_test_poke(int *p, int value)
{
    *p = value;
}
