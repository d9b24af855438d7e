/*
 * remote/batch.h - owns the shape of a protocol v3 batch (vgpu/rpc.h) as
 * the mediator reads it: the check every batch passes before anything of
 * it runs, and the walk over its calls that the executors use.
 *
 * The check is the op table's for VGPU_OP_CUDA (op_table.c): it proves
 * every call well formed (a known function, its exact argument size, the
 * variable tails' lengths consistent with the fields that give them, names
 * NUL-terminated within VGPU_RPC_NAME_MAX, zero padding) and computes the
 * largest response the batch can have, so the response buffer is sized
 * once and a batch whose answer could not fit the transport is refused
 * whole.  After it, a walker never meets a malformed call.
 */
#ifndef VGPU_REMOTE_BATCH_H
#define VGPU_REMOTE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "../payload.h"

/*
 * VGPU_ERR_NONE and *resp_size (header included) when req (opcode
 * VGPU_OP_CUDA, count calls) is a well formed batch whose request and
 * response fit max_bytes; VGPU_ERR_BAD_REQUEST otherwise.
 */
uint32_t rpc_batch_check(const struct vgpu_request *req, uint64_t max_bytes,
                         uint32_t *resp_size);

/* One call of a checked batch. */
struct rpc_call_view {
    uint32_t fn;
    uint32_t arg_len;
    /* The fixed arguments (vgpu/rpc.h's VGPU_RPC_ARGS_*), zero beyond. */
    uint8_t fixed[VGPU_RPC_MAX_FIXED];
    uint32_t fixed_len;
    /* The variable tail: tail_len bytes readable from `tail`. */
    struct payload_reader tail;
    uint32_t tail_len;
};

struct rpc_walk {
    struct payload_reader r;
    uint32_t left; /* calls not yet read */
};

void rpc_walk_init(struct rpc_walk *w, const struct vgpu_request *req);
/* The next call: 1 and *c filled, 0 at the end. */
int rpc_walk_next(struct rpc_walk *w, struct rpc_call_view *c);

/* Bytes of fixed arguments of fn (VGPU_RPC_ARGS_*), or -1 when fn is not
 * a function of the protocol. */
int rpc_fixed_args(uint32_t fn);

/* A readable name for logs ("MEM_ALLOC"), "?" for an unknown fn. */
const char *rpc_fn_name(uint32_t fn);

#endif
