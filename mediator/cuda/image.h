/*
 * image.h - the kernels of the CUDA backend as the mediator carries them:
 * a fatbin compiled by nvcc from kernels.cu at build time (see cuda.mk),
 * embedded by image.S.  Only present in a build with the CUDA backend.
 */
#ifndef VGPU_CUDA_IMAGE_H
#define VGPU_CUDA_IMAGE_H

#include <stdint.h>

extern const unsigned char vgpu_cuda_image[];
extern const uint64_t vgpu_cuda_image_size; /* bytes, without the NUL */

/* Entry points of kernels.cu (extern "C": names as written). */
#define VGPU_KERNEL_VECTOR_ADD "vgpu_vector_add"
#define VGPU_KERNEL_SAXPY "vgpu_saxpy"
#define VGPU_KERNEL_SGEMM_INIT "vgpu_sgemm_init"
#define VGPU_KERNEL_SGEMM "vgpu_sgemm"
#define VGPU_KERNEL_CHECKSUM "vgpu_checksum"

/* Launch shapes, shared with kernels.cu's assumptions. */
#define VGPU_KERNEL_BLOCK 256 /* 1-D kernels */
#define VGPU_SGEMM_TILE 16    /* vgpu_sgemm's block is TILE x TILE */
#define VGPU_SUM_THREADS 256  /* vgpu_checksum's block size */

#endif
