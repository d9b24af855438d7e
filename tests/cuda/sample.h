/*
 * tests/cuda/sample.h - what our rewrites of NVIDIA's driver-API samples
 * (vector-add-drv.c, matrix-mul-drv.c) share: a call that must succeed,
 * and the checksum of a result's bits that make gpu-check compares
 * between a remoted run and a native one.
 */
#ifndef VGPU_TESTS_CUDA_SAMPLE_H
#define VGPU_TESTS_CUDA_SAMPLE_H

#include <cuda.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A call that must succeed; the program ends, naming it, when not. */
#define MUST(call)                                                             \
    do {                                                                       \
        CUresult r_ = (call);                                                  \
        if (r_ != CUDA_SUCCESS) {                                              \
            const char *s_ = NULL;                                             \
            cuGetErrorName(r_, &s_);                                           \
            printf("FAILED: %s: %s\n", #call, s_ ? s_ : "?");                  \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

/* FNV-1a over len bytes: printed as "checksum %08x". */
static inline uint32_t sample_checksum(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h = (h ^ b[i]) * 16777619u;
    }
    return h;
}

#endif
