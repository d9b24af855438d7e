/*
 * backend_cuda_none.c - stands for the CUDA backend in a mediator built
 * without nvcc: there is none, and the mediator says so at run time.
 */
#include <stddef.h>
#include <stdio.h>

#include "backend.h"
#include "cuda/direct.h"

const struct vgpu_backend_ops *const vgpu_backend_cuda = NULL;

int vgpu_cuda_direct_open(struct vgpu_cuda_direct **d, unsigned gpu, char *why,
                          size_t why_len)
{
    (void)gpu;
    *d = NULL;
    snprintf(why, why_len, "%s",
             "mediator built without the CUDA backend (no nvcc)");
    return -1;
}

uint32_t vgpu_cuda_direct_run(struct vgpu_cuda_direct *d,
                              const struct vgpu_request *req, uint8_t *resp,
                              uint32_t *resp_len, uint64_t *exec_ns)
{
    (void)d;
    (void)req;
    (void)resp;
    *resp_len = 0;
    *exec_ns = 0;
    return VGPU_ERR_BACKEND;
}

void vgpu_cuda_direct_close(struct vgpu_cuda_direct *d)
{
    (void)d;
}
