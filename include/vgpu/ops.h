/*
 * vgpu/ops.h - owns the request and response payloads that a guest writes
 * into the device's 1 KB buffers and that travel unchanged to the mediator:
 * opcodes, headers, the operand layout and size limits of each operation,
 * and the generated SGEMM matrices with their reference checksum.
 *
 * Kernel-safe (see types.h).  Binary32 operands are 4 bytes, counted as
 * sizeof(vgpu_u32): no floating-point type appears here, so a kernel
 * module (built without FPU code) can include it.
 */
#ifndef VGPU_OPS_H
#define VGPU_OPS_H

#include "regs.h"
#include "types.h"

/*
 * A request is a header followed by operands:
 *
 *     struct vgpu_req_hdr  { opcode, count }
 *     operands             (opcode specific)
 *
 * A response is a header followed by results:
 *
 *     struct vgpu_resp_hdr { opcode, count }
 *     results              (opcode specific)
 */
enum vgpu_opcode {
    VGPU_OP_VECTOR_ADD = 1, /* int32 c[i] = a[i] + b[i] (wrapping) */
    VGPU_OP_SAXPY = 2,      /* float y[i] = a * x[i] + y[i] */
    VGPU_OP_SGEMM = 3,      /* C = A x B of generated n x n matrices */
};

struct vgpu_req_hdr {
    vgpu_u32 opcode;
    vgpu_u32 count; /* number of elements */
};

struct vgpu_resp_hdr {
    vgpu_u32 opcode; /* echoes the request's opcode */
    vgpu_u32 count;  /* number of result elements */
};

/* Size of one binary32 operand. */
#define VGPU_F32_SIZE sizeof(vgpu_u32)

/*
 * VECTOR_ADD: request operands are int32 a[count] then int32 b[count];
 * response results are int32 c[count].  count >= 1.  With count == 1 this
 * is the classic 100 + 200 = 300.
 */
#define VGPU_VECTOR_ADD_MAX_COUNT                                              \
    ((VGPU_BUF_SIZE - sizeof(struct vgpu_req_hdr)) / (2 * sizeof(vgpu_s32)))
#define VGPU_VECTOR_ADD_REQ_LEN(n)                                             \
    (sizeof(struct vgpu_req_hdr) + 2 * (n) * sizeof(vgpu_s32))
#define VGPU_VECTOR_ADD_RESP_LEN(n)                                            \
    (sizeof(struct vgpu_resp_hdr) + (n) * sizeof(vgpu_s32))

/*
 * SAXPY: request operands are float a, then float x[count], then float
 * y[count] (IEEE-754 binary32, little-endian); the response holds float
 * y'[count] with y'[i] = a * x[i] + y[i], computed in binary32 without
 * fused multiply-add (so every backend gives the same bits).
 */
#define VGPU_SAXPY_MAX_COUNT                                                   \
    ((VGPU_BUF_SIZE - sizeof(struct vgpu_req_hdr) - VGPU_F32_SIZE) /           \
     (2 * VGPU_F32_SIZE))
#define VGPU_SAXPY_REQ_LEN(n)                                                  \
    (sizeof(struct vgpu_req_hdr) + VGPU_F32_SIZE + 2 * (n)*VGPU_F32_SIZE)
#define VGPU_SAXPY_RESP_LEN(n)                                                 \
    (sizeof(struct vgpu_resp_hdr) + (n)*VGPU_F32_SIZE)

/*
 * SGEMM: work that is large on the GPU and small on the wire.  count is
 * n (1..VGPU_SGEMM_MAX_N); the one operand is uint32 seed.  The backend
 * builds A and B (n x n, binary32) with vgpu_sgemm_a/b below, computes
 * C = A x B and answers int64 checksum = sum of all C[i][j] (as two
 * little-endian uint32, low word first).  Elements are small integers, so
 * every C[i][j] and the checksum are exact on any backend: a guest can
 * check the answer against vgpu_sgemm_checksum_ref().
 */
#define VGPU_SGEMM_MAX_N 1024u
#define VGPU_SGEMM_REQ_LEN (sizeof(struct vgpu_req_hdr) + sizeof(vgpu_u32))
#define VGPU_SGEMM_RESP_LEN (sizeof(struct vgpu_resp_hdr) + sizeof(vgpu_u64))

static inline vgpu_s32 vgpu_sgemm_a(vgpu_u32 seed, vgpu_u32 i, vgpu_u32 j)
{
    return (vgpu_s32)((i * 7u + j * 3u + seed) % 17u) - 8;
}

static inline vgpu_s32 vgpu_sgemm_b(vgpu_u32 seed, vgpu_u32 i, vgpu_u32 j)
{
    return (vgpu_s32)((i * 5u + j * 11u + seed * 3u) % 17u) - 8;
}

/*
 * The checksum without forming C: sum_ij C[i][j] = sum_k (sum_i A[i][k]) *
 * (sum_j B[k][j]).  O(n^2), so a guest or a test can check any n cheaply.
 */
static inline vgpu_s64 vgpu_sgemm_checksum_ref(vgpu_u32 seed, vgpu_u32 n)
{
    vgpu_s64 total = 0;
    vgpu_u32 k, i;

    for (k = 0; k < n; k++) {
        vgpu_s64 col_a = 0, row_b = 0;

        for (i = 0; i < n; i++) {
            col_a += vgpu_sgemm_a(seed, i, k);
            row_b += vgpu_sgemm_b(seed, k, i);
        }
        total += col_a * row_b;
    }
    return total;
}

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct vgpu_req_hdr) == 8, "request header layout");
_Static_assert(sizeof(struct vgpu_resp_hdr) == 8, "response header layout");
#endif

#endif /* VGPU_OPS_H */
