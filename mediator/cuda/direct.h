/*
 * direct.h - the CUDA backend's kernels run directly, in the calling
 * thread, without worker threads, job queue or eventfd: what the bench
 * compares the mediator's path against ("the same kernel launched
 * directly through the driver API").  It loads the same embedded image
 * into a context of its own and runs a request exactly as the backend's
 * worker does (copy in, launch, copy out, synchronize).
 *
 * In a mediator built without the CUDA backend, open fails with a why.
 */
#ifndef VGPU_CUDA_DIRECT_H
#define VGPU_CUDA_DIRECT_H

#include <stddef.h>
#include <stdint.h>

#include "../payload.h"

struct vgpu_cuda_direct;

/* 0, or -1 with the reason in why (the caller's, why_len bytes). */
int vgpu_cuda_direct_open(struct vgpu_cuda_direct **d, unsigned gpu, char *why,
                          size_t why_len);
/* Run a validated request; enum vgpu_error.  *exec_ns: GPU time. */
uint32_t vgpu_cuda_direct_run(struct vgpu_cuda_direct *d,
                              const struct vgpu_request *req, uint8_t *resp,
                              uint32_t *resp_len, uint64_t *exec_ns);
void vgpu_cuda_direct_close(struct vgpu_cuda_direct *d);

#endif
