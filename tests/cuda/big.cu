// tests/cuda/big.cu - a module image larger than the guest library's 4 MB
// batch (cuBLAS ships three such fatbins): 5 MiB of initialized device
// data and the small kernel of kernels.cu, for cuda-drv-test's "big"
// mode.  Built for sm_90 only, uncompressed, so that the image stays one
// 5 MiB cubin the host's stand-in libcuda can read.

__device__ unsigned char vgpu_big_data[5 << 20] = {1, 2, 3, 4};

// p[i] += delta for i < n, as kernels.cu's; it names the data (times 0)
// so that the data stays in the image.
extern "C" __global__ void vgpu_test_add_scalar(int *p, int delta, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;

    if (i < n) {
        p[i] += delta + vgpu_big_data[i & 3] * 0;
    }
}
