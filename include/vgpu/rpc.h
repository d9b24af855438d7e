/*
 * vgpu/rpc.h - owns protocol v3: CUDA driver calls remoted from a guest's
 * libcuda.so.1 (guest-tools/cuda-shim) to the mediator, which runs them in
 * the VM's own CUDA context.
 *
 * Concepts.
 *
 * A batch.  Remoted calls travel as one request of opcode VGPU_OP_CUDA over
 * the v2 data plane (rings, SG lists, /dev/vgpuN), never over the v1 1 KB
 * buffers.  Its count is the number of calls; the operands are the calls
 * one after another, each a struct vgpu_rpc_call followed by its arguments
 * (arg_len bytes, padded with zeros to 8):
 *
 *     vgpu_req_hdr { VGPU_OP_CUDA, ncalls }
 *     vgpu_rpc_call { fn, arg_len } args... pad
 *     vgpu_rpc_call { fn, arg_len } args... pad
 *     ...
 *
 * The mediator runs the calls in order and answers, for each call it ran,
 * a struct vgpu_rpc_ret followed by its results (res_len bytes, padded to
 * 8); the response header's count is the number of calls that ran.  It
 * stops after the first call that fails: that call's ret carries the CUDA
 * error, and the calls after it did not run.  Calls without results that
 * a guest queues without a round trip (launches, asynchronous copies, event
 * records, stream waits) thus report their error at the next call that
 * waits for the answer, as CUDA's asynchronous errors do.
 *
 * Statuses are CUresult values, as cuda.h numbers them (0 is
 * CUDA_SUCCESS); the few this header needs are named below, so that the
 * parts without cuda.h (the kernel-safe contract, tests) agree on them.
 *
 * Handles.  Contexts, modules, functions, streams and events are 64-bit
 * handles the mediator makes per VM: opaque to the guest, meaningful only
 * in the session (the VM) that got them, never a host pointer.  A handle of
 * another VM, of another kind, or of a destroyed object is
 * CUDA_ERROR_INVALID_HANDLE (contexts: CUDA_ERROR_INVALID_CONTEXT).  Handle
 * 0 of a stream is the context's default stream.
 *
 * Device pointers are the GPU's own addresses (kernels dereference them
 * and programs do arithmetic on them), so they are not handles; instead
 * every range a copy or memset names must lie inside one allocation of the
 * VM (CUDA_ERROR_INVALID_VALUE otherwise), and a free must name the start
 * of one.  Kernel parameters are bytes the mediator passes on as they are,
 * laid out as the function's parameter info (MODULE_GET_FUNCTION's
 * answer) says.
 *
 * Every size and count below is checked by the mediator when the batch is
 * parsed (struct sizes, the strings' NUL, the padding, the response's size
 * against the transport's limit) before anything runs.
 */
#ifndef VGPU_RPC_H
#define VGPU_RPC_H

#include "ops.h"
#include "types.h"

/* The opcode of a batch of remoted calls (enum vgpu_opcode's space). */
#define VGPU_OP_CUDA 16u

/* Protocol v3's version, in GET_VERSION's answer. */
#define VGPU_RPC_VERSION 1u

/* CUresult values used by the contract and its tests (cuda.h's numbers). */
#define VGPU_CU_SUCCESS 0u
#define VGPU_CU_ERROR_INVALID_VALUE 1u
#define VGPU_CU_ERROR_OUT_OF_MEMORY 2u
#define VGPU_CU_ERROR_NOT_INITIALIZED 3u
#define VGPU_CU_ERROR_NO_DEVICE 100u
#define VGPU_CU_ERROR_INVALID_DEVICE 101u
#define VGPU_CU_ERROR_INVALID_IMAGE 200u
#define VGPU_CU_ERROR_INVALID_CONTEXT 201u
#define VGPU_CU_ERROR_INVALID_HANDLE 400u
#define VGPU_CU_ERROR_NOT_FOUND 500u
#define VGPU_CU_ERROR_NOT_READY 600u
#define VGPU_CU_ERROR_LAUNCH_FAILED 719u
#define VGPU_CU_ERROR_NOT_SUPPORTED 801u
#define VGPU_CU_ERROR_UNKNOWN 999u

/* One call in a batch; arg_len bytes of arguments follow, then zero
 * padding to a multiple of 8. */
struct vgpu_rpc_call {
    vgpu_u32 fn;      /* enum vgpu_rpc_fn */
    vgpu_u32 arg_len; /* bytes of arguments, without the padding */
};

/* One answer; res_len bytes of results follow, then zero padding to 8. */
struct vgpu_rpc_ret {
    vgpu_u32 fn;      /* echoes the call's */
    vgpu_u32 status;  /* CUresult */
    vgpu_u32 res_len; /* bytes of results, without the padding */
    vgpu_u32 reserved;
};

#define VGPU_RPC_PAD(n) (((n) + 7u) & ~(vgpu_u64)7u)

/* Limits the mediator enforces when it parses a batch. */
#define VGPU_RPC_MAX_CALLS 4096u        /* calls in one batch */
#define VGPU_RPC_NAME_MAX 256u          /* function/global names, NUL incl. */
#define VGPU_RPC_MAX_PARAMS 256u        /* kernel parameters */
#define VGPU_RPC_MAX_PARAM_BYTES 32764u /* a launch's parameter block */
#define VGPU_RPC_DEV_NAME_LEN 256u
/* Device attributes answered at once: cuDeviceGetAttribute's enum values
 * 1 .. VGPU_RPC_ATTRS - 1 (0 is unused in cuda.h). */
#define VGPU_RPC_ATTRS 192u

/*
 * The calls.  Arguments and results are packed little-endian fields, in
 * the order listed; "u64 h" is a handle; "[...]" is a variable tail.
 */
enum vgpu_rpc_fn {
    /* -> u32 rpc_version, s32 driver_version (the host's), u32
     * device_count (the GPUs the VM may use) */
    VGPU_RPC_GET_VERSION = 1,
    /* u32 ordinal -> char name[VGPU_RPC_DEV_NAME_LEN], u8 uuid[16], u64
     * total_mem (cut to the VM's quota), s32 attr[VGPU_RPC_ATTRS] (attr[i]
     * = cuDeviceGetAttribute(i); 0 where the driver has none) */
    VGPU_RPC_DEVICE_PROPS = 2,
    /* u32 flags, u32 ordinal, u64 session (the guest driver's id of the
     * process's open device file, VGPU_IOCTL_SESSION; 0: none) ->
     * u64 h_ctx */
    VGPU_RPC_CTX_CREATE = 3,
    /* u64 h_ctx -> ; frees every object made in it */
    VGPU_RPC_CTX_DESTROY = 4,
    /* u64 h_ctx -> ; waits for all of the context's work */
    VGPU_RPC_CTX_SYNC = 5,
    /* u64 h_ctx, u64 bytes -> u64 dptr */
    VGPU_RPC_MEM_ALLOC = 6,
    /* u64 h_ctx, u64 dptr -> */
    VGPU_RPC_MEM_FREE = 7,
    /* u64 h_ctx -> u64 free, u64 total (both cut to the VM's quota) */
    VGPU_RPC_MEM_INFO = 8,
    /* u64 h_ctx, u64 h_stream, u64 dst, u64 bytes, u8 data[bytes] -> */
    VGPU_RPC_MEMCPY_HTOD = 9,
    /* u64 h_ctx, u64 h_stream, u64 src, u64 bytes -> u8 data[bytes];
     * answered once the copy is done */
    VGPU_RPC_MEMCPY_DTOH = 10,
    /* u64 h_ctx, u64 h_stream, u64 dst, u64 src, u64 bytes -> */
    VGPU_RPC_MEMCPY_DTOD = 11,
    /* u64 h_ctx, u64 h_stream, u64 dst, u32 value, u32 elem_size (1, 2
     * or 4), u64 count -> */
    VGPU_RPC_MEMSET = 12,
    /* u64 h_ctx, u64 image_len, u8 image[image_len] -> u64 h_module */
    VGPU_RPC_MODULE_LOAD = 13,
    /* u64 h_ctx, u64 h_module -> */
    VGPU_RPC_MODULE_UNLOAD = 14,
    /* u64 h_ctx, u64 h_module, char name[] (NUL-terminated, <=
     * VGPU_RPC_NAME_MAX) -> u64 h_func, u32 nparams, u32 param_bytes,
     * then nparams x (u32 offset, u32 size) */
    VGPU_RPC_MODULE_GET_FUNCTION = 15,
    /* u64 h_ctx, u64 h_module, char name[] -> u64 dptr, u64 bytes */
    VGPU_RPC_MODULE_GET_GLOBAL = 16,
    /* u64 h_ctx, u64 h_func, u32 grid[3], u32 block[3], u32 shared_bytes,
     * u32 param_len, u64 h_stream, u8 params[param_len] -> */
    VGPU_RPC_LAUNCH = 17,
    /* u64 h_ctx, u32 flags, s32 priority -> u64 h_stream */
    VGPU_RPC_STREAM_CREATE = 18,
    /* u64 h_ctx, u64 h_stream -> */
    VGPU_RPC_STREAM_DESTROY = 19,
    /* u64 h_ctx, u64 h_stream -> */
    VGPU_RPC_STREAM_SYNC = 20,
    /* u64 h_ctx, u64 h_stream -> ; status NOT_READY while work is pending */
    VGPU_RPC_STREAM_QUERY = 21,
    /* u64 h_ctx, u64 h_stream, u64 h_event, u32 flags -> */
    VGPU_RPC_STREAM_WAIT_EVENT = 22,
    /* u64 h_ctx, u32 flags -> u64 h_event */
    VGPU_RPC_EVENT_CREATE = 23,
    /* u64 h_ctx, u64 h_event -> */
    VGPU_RPC_EVENT_DESTROY = 24,
    /* u64 h_ctx, u64 h_event, u64 h_stream -> */
    VGPU_RPC_EVENT_RECORD = 25,
    /* u64 h_ctx, u64 h_event -> */
    VGPU_RPC_EVENT_SYNC = 26,
    /* u64 h_ctx, u64 h_event -> ; status NOT_READY while pending */
    VGPU_RPC_EVENT_QUERY = 27,
    /* u64 h_ctx, u64 h_start, u64 h_end -> u32 ms (binary32 bits) */
    VGPU_RPC_EVENT_ELAPSED = 28,
    /* u64 session -> ; every context made with that session goes, with
     * everything in it.  Sent by the guest's kernel driver when the
     * process's device file is released (the process ended or closed it),
     * so that what a dead process made does not stay until the VM goes. */
    VGPU_RPC_SESSION_END = 29,
    /* u64 h_ctx, u64 h_func, s32 attrib (CUfunction_attribute), u32 0 ->
     * s32 value */
    VGPU_RPC_FUNC_GET_ATTR = 30,
    /* u64 h_ctx, u64 h_func, s32 attrib, s32 value -> ; only the
     * attributes CUDA lets a program set (VGPU_RPC_FUNC_ATTR_SETTABLE) */
    VGPU_RPC_FUNC_SET_ATTR = 31,
    /* u64 h_ctx, u64 h_func, u32 config (CUfunc_cache, 0..3), u32 0 -> */
    VGPU_RPC_FUNC_SET_CACHE = 32,
    /* u64 h_ctx, u64 h_func, s32 block_size, u32 flags, u64 dyn_smem ->
     * s32 blocks (cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags) */
    VGPU_RPC_OCCUPANCY = 33,
    /* LAUNCH's arguments, then u32 cluster[3] (0 0 0: none), u32
     * cooperative (0/1), u32 cluster_policy (CUclusterSchedulingPolicy),
     * u32 0 -> ; cuLaunchKernelEx with those launch attributes */
    VGPU_RPC_LAUNCH_EX = 34,
    VGPU_RPC_FN_COUNT
};

/* Fixed argument bytes of each call (the variable tail comes after). */
#define VGPU_RPC_ARGS_GET_VERSION 0u
#define VGPU_RPC_ARGS_DEVICE_PROPS 4u
#define VGPU_RPC_ARGS_CTX_CREATE 16u
#define VGPU_RPC_ARGS_CTX 8u /* CTX_DESTROY, CTX_SYNC, MEM_INFO */
#define VGPU_RPC_ARGS_MEM_ALLOC 16u
#define VGPU_RPC_ARGS_MEM_FREE 16u
#define VGPU_RPC_ARGS_MEMCPY_HTOD 32u /* + bytes of data */
#define VGPU_RPC_ARGS_MEMCPY_DTOH 32u
#define VGPU_RPC_ARGS_MEMCPY_DTOD 40u
#define VGPU_RPC_ARGS_MEMSET 40u
#define VGPU_RPC_ARGS_MODULE_LOAD 16u /* + image */
#define VGPU_RPC_ARGS_MODULE_UNLOAD 16u
#define VGPU_RPC_ARGS_MODULE_NAME 16u /* + name: GET_FUNCTION, GET_GLOBAL */
#define VGPU_RPC_ARGS_LAUNCH 56u      /* + params */
#define VGPU_RPC_ARGS_STREAM_CREATE 16u
#define VGPU_RPC_ARGS_CTX_OBJ 16u /* h_ctx + one handle */
#define VGPU_RPC_ARGS_STREAM_WAIT_EVENT 28u
#define VGPU_RPC_ARGS_EVENT_CREATE 12u
#define VGPU_RPC_ARGS_EVENT_RECORD 24u
#define VGPU_RPC_ARGS_EVENT_ELAPSED 24u
#define VGPU_RPC_ARGS_SESSION_END 8u
#define VGPU_RPC_ARGS_FUNC_ATTR 24u /* FUNC_GET_ATTR, FUNC_SET_ATTR, _CACHE */
#define VGPU_RPC_ARGS_OCCUPANCY 32u
#define VGPU_RPC_ARGS_LAUNCH_EX 80u /* + params */
/* The largest fixed part of any call. */
#define VGPU_RPC_MAX_FIXED 80u

/* CUfunction_attribute values (cuda.h's numbers): every attribute is
 * below VGPU_RPC_FUNC_ATTR_COUNT; these may be set. */
#define VGPU_RPC_FUNC_ATTR_COUNT 16
#define VGPU_RPC_FUNC_ATTR_SETTABLE(a)                                         \
    ((a) == 8 || (a) == 9 || ((a) >= 11 && (a) <= 15))

/* FUNC_SET_CACHE's config: CUfunc_cache has 0 (none) .. 3 (equal). */
#define VGPU_RPC_CACHE_CONFIG_MAX 3u

/* LAUNCH_EX's attributes as a launch may have them: a cluster is all three
 * of its sizes or none, cooperative is 0 or 1, CUclusterSchedulingPolicy
 * has three values.  The guest library refuses others at the call (the
 * launch is queued); the mediator again, as it trusts no guest. */
static inline int vgpu_rpc_launch_ex_ok(const vgpu_u32 cluster[3],
                                        vgpu_u32 cooperative, vgpu_u32 policy)
{
    int any = cluster[0] || cluster[1] || cluster[2];
    int all = cluster[0] && cluster[1] && cluster[2];

    return (!any || all) && cooperative <= 1 && policy <= 2;
}

/* Result bytes of the calls whose answer has a fixed size. */
#define VGPU_RPC_RES_GET_VERSION 12u
#define VGPU_RPC_RES_DEVICE_PROPS                                              \
    (VGPU_RPC_DEV_NAME_LEN + 16u + 8u + 4u * VGPU_RPC_ATTRS)
#define VGPU_RPC_RES_HANDLE 8u /* CTX_CREATE, MODULE_LOAD, STREAM/EVENT */
#define VGPU_RPC_RES_MEM_ALLOC 8u
#define VGPU_RPC_RES_MEM_INFO 16u
#define VGPU_RPC_RES_GET_FUNCTION_MAX (16u + 8u * VGPU_RPC_MAX_PARAMS)
#define VGPU_RPC_RES_GET_GLOBAL 16u
#define VGPU_RPC_RES_EVENT_ELAPSED 4u
#define VGPU_RPC_RES_INT 4u /* FUNC_GET_ATTR, OCCUPANCY */

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct vgpu_rpc_call) == 8, "rpc call layout");
_Static_assert(sizeof(struct vgpu_rpc_ret) == 16, "rpc ret layout");
#endif

#endif /* VGPU_RPC_H */
