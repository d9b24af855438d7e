/*
 * rdc.cu - a kernel and a non-inlined __device__ function built with
 * -rdc=true: both get a .text.<name> and a .nv.info.<name> section, and
 * only the kernel (STO_CUDA_ENTRY) must be reported.
 */
extern "C" __device__ __noinline__ int dev(int x)
{
    return x * 3;
}

extern "C" __global__ void k(int *o)
{
    o[0] = dev(o[1]);
}
