/*
 * big.cu - kernels with more than 4 KiB of parameters, for which nvcc
 * writes EIATTR_KPARAM_INFO_V2 records (u32 size) instead of
 * EIATTR_KPARAM_INFO (14-bit size in the flags); test-cuda-image.c holds
 * the expected layouts.
 */
struct b20000 {
    char b[20000];
};
struct __align__(16) a16000 {
    char b[16000];
};

extern "C" __global__ void kbig(struct b20000 b, int *o)
{
    o[0] = b.b[19999];
}

extern "C" __global__ void kalign(char c, struct a16000 x, float f, double *d)
{
    d[0] = x.b[1] + c + f;
}
