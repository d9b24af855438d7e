/*
 * cuda-shim/md2.h - MD2 (RFC 1319) and HMAC-MD2 (RFC 2104 with MD2's
 * 16-byte block): the hash NVIDIA's runtime checks the driver's integrity
 * answer with (export.c).  Not for anything that needs a secure hash.
 */
#ifndef VGPU_CUDA_SHIM_MD2_H
#define VGPU_CUDA_SHIM_MD2_H

#include <stddef.h>
#include <stdint.h>

struct md2 {
    uint8_t state[48];
    uint8_t checksum[16];
    uint8_t buf[16];
    unsigned used;
    uint8_t last;
};

void md2_init(struct md2 *m);
void md2_update(struct md2 *m, const void *data, size_t len);
void md2_final(struct md2 *m, uint8_t out[16]);
void hmac_md2(const uint8_t key[16], const void *msg, size_t len,
              uint8_t out[16]);

#endif
