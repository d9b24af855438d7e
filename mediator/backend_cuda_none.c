/*
 * backend_cuda_none.c - stands for the CUDA backend in a mediator built
 * without nvcc: there is none, and the mediator says so at run time.
 */
#include <stddef.h>

#include "backend.h"

const struct vgpu_backend_ops *const vgpu_backend_cuda = NULL;
