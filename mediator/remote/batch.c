/*
 * remote/batch.c - owns the check of a v3 batch and the walk over its
 * calls (remote/batch.h); the layouts are the contract's (vgpu/rpc.h).
 */
#include "batch.h"

#include <string.h>

#include "vgpu/rpc.h"

static const struct {
    int fixed;        /* VGPU_RPC_ARGS_* */
    const char *name; /* for logs */
} fns[VGPU_RPC_FN_COUNT] = {
    [VGPU_RPC_GET_VERSION] = {VGPU_RPC_ARGS_GET_VERSION, "GET_VERSION"},
    [VGPU_RPC_DEVICE_PROPS] = {VGPU_RPC_ARGS_DEVICE_PROPS, "DEVICE_PROPS"},
    [VGPU_RPC_CTX_CREATE] = {VGPU_RPC_ARGS_CTX_CREATE, "CTX_CREATE"},
    [VGPU_RPC_CTX_DESTROY] = {VGPU_RPC_ARGS_CTX, "CTX_DESTROY"},
    [VGPU_RPC_CTX_SYNC] = {VGPU_RPC_ARGS_CTX, "CTX_SYNC"},
    [VGPU_RPC_MEM_ALLOC] = {VGPU_RPC_ARGS_MEM_ALLOC, "MEM_ALLOC"},
    [VGPU_RPC_MEM_FREE] = {VGPU_RPC_ARGS_MEM_FREE, "MEM_FREE"},
    [VGPU_RPC_MEM_INFO] = {VGPU_RPC_ARGS_CTX, "MEM_INFO"},
    [VGPU_RPC_MEMCPY_HTOD] = {VGPU_RPC_ARGS_MEMCPY_HTOD, "MEMCPY_HTOD"},
    [VGPU_RPC_MEMCPY_DTOH] = {VGPU_RPC_ARGS_MEMCPY_DTOH, "MEMCPY_DTOH"},
    [VGPU_RPC_MEMCPY_DTOD] = {VGPU_RPC_ARGS_MEMCPY_DTOD, "MEMCPY_DTOD"},
    [VGPU_RPC_MEMSET] = {VGPU_RPC_ARGS_MEMSET, "MEMSET"},
    [VGPU_RPC_MODULE_LOAD] = {VGPU_RPC_ARGS_MODULE_LOAD, "MODULE_LOAD"},
    [VGPU_RPC_MODULE_UNLOAD] = {VGPU_RPC_ARGS_MODULE_UNLOAD, "MODULE_UNLOAD"},
    [VGPU_RPC_MODULE_GET_FUNCTION] = {VGPU_RPC_ARGS_MODULE_NAME,
                                      "MODULE_GET_FUNCTION"},
    [VGPU_RPC_MODULE_GET_GLOBAL] = {VGPU_RPC_ARGS_MODULE_NAME,
                                    "MODULE_GET_GLOBAL"},
    [VGPU_RPC_LAUNCH] = {VGPU_RPC_ARGS_LAUNCH, "LAUNCH"},
    [VGPU_RPC_STREAM_CREATE] = {VGPU_RPC_ARGS_STREAM_CREATE, "STREAM_CREATE"},
    [VGPU_RPC_STREAM_DESTROY] = {VGPU_RPC_ARGS_CTX_OBJ, "STREAM_DESTROY"},
    [VGPU_RPC_STREAM_SYNC] = {VGPU_RPC_ARGS_CTX_OBJ, "STREAM_SYNC"},
    [VGPU_RPC_STREAM_QUERY] = {VGPU_RPC_ARGS_CTX_OBJ, "STREAM_QUERY"},
    [VGPU_RPC_STREAM_WAIT_EVENT] = {VGPU_RPC_ARGS_STREAM_WAIT_EVENT,
                                    "STREAM_WAIT_EVENT"},
    [VGPU_RPC_EVENT_CREATE] = {VGPU_RPC_ARGS_EVENT_CREATE, "EVENT_CREATE"},
    [VGPU_RPC_EVENT_DESTROY] = {VGPU_RPC_ARGS_CTX_OBJ, "EVENT_DESTROY"},
    [VGPU_RPC_EVENT_RECORD] = {VGPU_RPC_ARGS_EVENT_RECORD, "EVENT_RECORD"},
    [VGPU_RPC_EVENT_SYNC] = {VGPU_RPC_ARGS_CTX_OBJ, "EVENT_SYNC"},
    [VGPU_RPC_EVENT_QUERY] = {VGPU_RPC_ARGS_CTX_OBJ, "EVENT_QUERY"},
    [VGPU_RPC_EVENT_ELAPSED] = {VGPU_RPC_ARGS_EVENT_ELAPSED, "EVENT_ELAPSED"},
    [VGPU_RPC_SESSION_END] = {VGPU_RPC_ARGS_SESSION_END, "SESSION_END"},
    [VGPU_RPC_FUNC_GET_ATTR] = {VGPU_RPC_ARGS_FUNC_ATTR, "FUNC_GET_ATTR"},
    [VGPU_RPC_FUNC_SET_ATTR] = {VGPU_RPC_ARGS_FUNC_ATTR, "FUNC_SET_ATTR"},
    [VGPU_RPC_FUNC_SET_CACHE] = {VGPU_RPC_ARGS_FUNC_ATTR, "FUNC_SET_CACHE"},
    [VGPU_RPC_OCCUPANCY] = {VGPU_RPC_ARGS_OCCUPANCY, "OCCUPANCY"},
    [VGPU_RPC_LAUNCH_EX] = {VGPU_RPC_ARGS_LAUNCH_EX, "LAUNCH_EX"},
};

int rpc_fixed_args(uint32_t fn)
{
    return fn > 0 && fn < VGPU_RPC_FN_COUNT && fns[fn].name ? fns[fn].fixed
                                                            : -1;
}

const char *rpc_fn_name(uint32_t fn)
{
    return rpc_fixed_args(fn) >= 0 ? fns[fn].name : "?";
}

/* Bytes the tail after the fixed arguments must have, from those. */
static uint64_t tail_bytes(uint32_t fn, const uint8_t *fixed)
{
    switch (fn) {
    case VGPU_RPC_MEMCPY_HTOD:
        return vgpu_get_le64(fixed + 24);
    case VGPU_RPC_MODULE_LOAD:
        return vgpu_get_le64(fixed + 8);
    case VGPU_RPC_LAUNCH:
    case VGPU_RPC_LAUNCH_EX:
        return vgpu_get_le32(fixed + 44);
    default:
        return 0;
    }
}

/* Result bytes the call can answer at most. */
static uint64_t result_bytes(uint32_t fn, const uint8_t *fixed)
{
    switch (fn) {
    case VGPU_RPC_GET_VERSION:
        return VGPU_RPC_RES_GET_VERSION;
    case VGPU_RPC_DEVICE_PROPS:
        return VGPU_RPC_RES_DEVICE_PROPS;
    case VGPU_RPC_CTX_CREATE:
    case VGPU_RPC_MODULE_LOAD:
    case VGPU_RPC_STREAM_CREATE:
    case VGPU_RPC_EVENT_CREATE:
        return VGPU_RPC_RES_HANDLE;
    case VGPU_RPC_MEM_ALLOC:
        return VGPU_RPC_RES_MEM_ALLOC;
    case VGPU_RPC_MEM_INFO:
        return VGPU_RPC_RES_MEM_INFO;
    case VGPU_RPC_MEMCPY_DTOH:
        return vgpu_get_le64(fixed + 24);
    case VGPU_RPC_MODULE_GET_FUNCTION:
        return VGPU_RPC_RES_GET_FUNCTION_MAX;
    case VGPU_RPC_MODULE_GET_GLOBAL:
        return VGPU_RPC_RES_GET_GLOBAL;
    case VGPU_RPC_EVENT_ELAPSED:
        return VGPU_RPC_RES_EVENT_ELAPSED;
    case VGPU_RPC_FUNC_GET_ATTR:
    case VGPU_RPC_OCCUPANCY:
        return VGPU_RPC_RES_INT;
    default:
        return 0;
    }
}

/* A name tail: 1..VGPU_RPC_NAME_MAX bytes whose only NUL is the last. */
static int name_ok(struct payload_reader *r, uint64_t len)
{
    uint8_t name[VGPU_RPC_NAME_MAX];

    if (len < 1 || len > VGPU_RPC_NAME_MAX ||
        payload_read(r, name, (size_t)len) != len) {
        return 0;
    }
    return name[len - 1] == 0 && memchr(name, 0, (size_t)len - 1) == NULL;
}

static int zeros_ok(struct payload_reader *r, size_t len)
{
    uint8_t pad[8];

    if (payload_read(r, pad, len) != len) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (pad[i]) {
            return 0;
        }
    }
    return 1;
}

uint32_t rpc_batch_check(const struct vgpu_request *req, uint64_t max_bytes,
                         uint32_t *resp_size)
{
    struct payload_reader r;
    uint64_t left = req->operands_len;
    uint64_t resp = sizeof(struct vgpu_resp_hdr);

    *resp_size = 0;
    if (req->count == 0 || req->count > VGPU_RPC_MAX_CALLS ||
        sizeof(struct vgpu_req_hdr) + (uint64_t)req->operands_len > max_bytes) {
        return VGPU_ERR_BAD_REQUEST;
    }
    payload_reader_init(&r, req, 0);
    for (uint32_t i = 0; i < req->count; i++) {
        uint8_t hdr[8], fixed[VGPU_RPC_MAX_FIXED] = {0};
        uint32_t fn, arg_len;
        uint64_t tail, padded;
        int nfixed;

        if (left < sizeof(hdr) || payload_read(&r, hdr, sizeof(hdr)) != 8) {
            return VGPU_ERR_BAD_REQUEST;
        }
        left -= sizeof(hdr);
        fn = vgpu_get_le32(hdr);
        arg_len = vgpu_get_le32(hdr + 4);
        nfixed = rpc_fixed_args(fn);
        padded = VGPU_RPC_PAD((uint64_t)arg_len);
        if (nfixed < 0 || arg_len < (uint32_t)nfixed || padded > left) {
            return VGPU_ERR_BAD_REQUEST;
        }
        left -= padded;
        if (payload_read(&r, fixed, (size_t)nfixed) != (size_t)nfixed) {
            return VGPU_ERR_BAD_REQUEST;
        }
        tail = (uint64_t)arg_len - (uint64_t)nfixed;
        if (fn == VGPU_RPC_MODULE_GET_FUNCTION ||
            fn == VGPU_RPC_MODULE_GET_GLOBAL) {
            if (!name_ok(&r, tail)) {
                return VGPU_ERR_BAD_REQUEST;
            }
        } else {
            if (tail != tail_bytes(fn, fixed)) {
                return VGPU_ERR_BAD_REQUEST;
            }
            if ((fn == VGPU_RPC_MODULE_LOAD && tail == 0) ||
                ((fn == VGPU_RPC_LAUNCH || fn == VGPU_RPC_LAUNCH_EX) &&
                 tail > VGPU_RPC_MAX_PARAM_BYTES)) {
                return VGPU_ERR_BAD_REQUEST;
            }
            payload_read(&r, NULL, (size_t)tail);
        }
        if (!zeros_ok(&r, (size_t)(padded - arg_len))) {
            return VGPU_ERR_BAD_REQUEST;
        }
        /* A copy out may be as large as the transport; the sum is bounded
         * below, each term first so that it cannot wrap. */
        if (result_bytes(fn, fixed) > max_bytes) {
            return VGPU_ERR_BAD_REQUEST;
        }
        resp +=
            sizeof(struct vgpu_rpc_ret) + VGPU_RPC_PAD(result_bytes(fn, fixed));
        if (resp > max_bytes || resp > UINT32_MAX) {
            return VGPU_ERR_BAD_REQUEST;
        }
    }
    if (left != 0) {
        return VGPU_ERR_BAD_REQUEST; /* bytes after the last call */
    }
    *resp_size = (uint32_t)resp;
    return VGPU_ERR_NONE;
}

void rpc_walk_init(struct rpc_walk *w, const struct vgpu_request *req)
{
    payload_reader_init(&w->r, req, 0);
    w->left = req->count;
}

int rpc_walk_next(struct rpc_walk *w, struct rpc_call_view *c)
{
    uint8_t hdr[8];
    int nfixed;

    if (w->left == 0) {
        return 0;
    }
    w->left--;
    memset(c, 0, sizeof(*c));
    payload_read(&w->r, hdr, sizeof(hdr));
    c->fn = vgpu_get_le32(hdr);
    c->arg_len = vgpu_get_le32(hdr + 4);
    nfixed = rpc_fixed_args(c->fn);
    c->fixed_len = nfixed > 0 ? (uint32_t)nfixed : 0;
    payload_read(&w->r, c->fixed, c->fixed_len);
    c->tail = w->r;
    c->tail_len = c->arg_len - c->fixed_len;
    payload_read(&w->r, NULL,
                 (size_t)(VGPU_RPC_PAD((uint64_t)c->arg_len) - c->fixed_len));
    return 1;
}
