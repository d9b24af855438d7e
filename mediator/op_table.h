/*
 * op_table.h - the op table: all the mediator knows about each opcode, in one
 * entry per opcode.
 *
 * An entry says which requests of its opcode are valid (a count in
 * 1..max_count and exactly operand_bytes(count) bytes of operands), how
 * much device memory running one takes (what the per-VM quota is checked
 * against), how large its response is, and how the CPU computes it (the
 * reference every backend's results must equal bit for bit).  Parsing
 * (payload.c), admission (the mediator), the CPU backend and the response
 * buffers all read this table; a backend that runs ops elsewhere (the CUDA
 * backend's kernels) keys its own launch table by opcode and takes every
 * size from here.  A new op is one entry here plus, where a backend has
 * its own code for it, one entry in that backend's table.
 */
#ifndef VGPU_OP_TABLE_H
#define VGPU_OP_TABLE_H

#include <stdint.h>

#include "payload.h"

struct vgpu_op {
    uint32_t opcode; /* enum vgpu_opcode */
    const char *name;
    uint32_t
        max_count; /* in the v1 buffer, a request's count is 1..max_count */
    /* Beyond the v1 buffer (v2 staging: the byte limit decides), the
     * count is 1..xfer_max_count at most. */
    uint32_t xfer_max_count;
    /* Operand bytes a request of count elements carries, exactly. */
    uint64_t (*operand_bytes)(uint32_t count);
    /* Device memory a backend needs to run it. */
    uint64_t (*device_bytes)(uint32_t count);
    /* Its response's size, header included. */
    uint32_t (*resp_bytes)(uint32_t count);
    /*
     * The reference computation of a validated request: writes
     * resp_bytes(count) bytes to resp and returns an enum vgpu_error.
     */
    uint32_t (*cpu_run)(const struct vgpu_request *req, uint8_t *resp);
    /*
     * Set only for an op whose sizes do not follow from its count (a v3
     * batch of remoted calls, remote/batch.h): it replaces the count rule
     * and the size functions above, which are then NULL.  VGPU_ERR_NONE
     * and *resp_size (header included) when req may run with max_bytes
     * as the limit of its request and of its response.
     */
    uint32_t (*check)(const struct vgpu_request *req, uint64_t max_bytes,
                      uint32_t *resp_size);
};

/* The entry of opcode, or NULL when it is not served. */
const struct vgpu_op *vgpu_op_find(uint32_t opcode);

/*
 * The entries whose sizes follow from their count, in opcode order (for
 * tests and listings); vgpu_op_find() also knows VGPU_OP_CUDA, whose
 * batches size themselves (check).
 */
const struct vgpu_op *vgpu_op_table(unsigned *count);

/*
 * VGPU_ERR_NONE when a request of op with count elements and operands_len
 * operand bytes may run, else VGPU_ERR_BAD_REQUEST: the v1 rule, a request
 * and its response within the VGPU_BUF_SIZE buffers.
 */
uint32_t vgpu_op_validate(const struct vgpu_op *op, uint32_t count,
                          uint32_t operands_len);

/*
 * The same with max_bytes as the limit of the request (header included)
 * and of its response instead of the v1 buffer: the transport's limit
 * (VGPU_BUF_SIZE for the v1 socket, the channel's max_xfer for v2).  With
 * max_bytes <= VGPU_BUF_SIZE this is vgpu_op_validate().
 */
uint32_t vgpu_op_validate_limit(const struct vgpu_op *op, uint32_t count,
                                uint32_t operands_len, uint64_t max_bytes);

/* Write a response header; returns its size. */
uint32_t vgpu_op_put_resp_hdr(uint8_t *out, uint32_t opcode, uint32_t count);

#endif
