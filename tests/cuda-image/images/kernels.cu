/*
 * kernels.cu - the test kernels of tests/cuda-image: parameter lists that
 * exercise every size and alignment rule of the parameter layouts
 * (1, 2, 4, 8 byte scalars, pointers, a 12-byte struct of 4-byte fields,
 * a 16-byte aligned struct, a 40-byte struct, no parameters), plus one C++
 * (mangled) name.  test-cuda-image.c holds the expected layouts.
 */
struct s12 {
    int a, b, c;
};
struct __align__(16) s16 {
    float x, y, z, w;
};
struct s40 {
    double d[5];
};

extern "C" __global__ void vecAdd(const float *a, const float *b, float *c,
                                  int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        c[i] = a[i] + b[i];
}

extern "C" __global__ void scale(float f, double *d, char ch, short sh)
{
    d[0] = f * ch + sh;
}

extern "C" __global__ void structs(char c, struct s12 s, struct s16 v,
                                   struct s40 big, int *out)
{
    out[0] = c + s.a + s.b + s.c + (int)(v.x + v.w) + (int)big.d[4];
}

extern "C" __global__ void noparams(void)
{
}

__global__ void mangled(int x, long long *y)
{
    y[0] = x;
}
