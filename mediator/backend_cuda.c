/*
 * backend_cuda.c - the CUDA backend: runs requests on NVIDIA GPUs through
 * the CUDA driver API.
 *
 * libcuda.so.1 is loaded at run time (dlopen + dlsym of every entry point),
 * never linked, so one mediator binary runs on hosts with and without a
 * GPU; <cuda.h> is used for its types only.  The environment variable
 * VGPU_LIBCUDA names another library to load instead (tests, odd
 * installs).
 *
 * The kernels (cuda/kernels.cu) were compiled by nvcc at build time into a
 * fatbin embedded in the binary (cuda/image.S).  open() loads it once on
 * every GPU as a probe, so a driver too old for it is found at start-up
 * and `--backend auto` falls back to the CPU backend with the reason.
 *
 * Shape: the worker mechanism (backend_worker.c) owns the threads, queues
 * and completions, as for the CPU backend; this file fills its execution
 * operations (struct vgpu_exec_ops) with a per-GPU context (the device and
 * the VMs' contexts on it) and keeps, keyed by opcode, how each op is
 * launched.  What an op is (its validity, its device memory, its response
 * size) comes from the op table (op_table.h), never from here.
 *
 * Isolation: every VM gets its own CUDA context on every GPU it uses,
 * created on first use by that GPU's worker, with the module loaded into
 * it, a stream, two timing events, a grow-only device buffer (what
 * vm_mem_used() reports) and a grow-only host staging buffer.  A VM's context
 * is only ever current on its GPU's worker thread while one of its jobs runs.
 * vm_release() destroys a VM's idle contexts at once, and marks one that is
 * running a job so that the worker destroys it when the job ends; a context
 * that a job of a released domain made after that is dropped by drop_vm() when
 * the job ends.  A context that hit a CUDA error (other than running out of
 * memory) is destroyed after its job too, since CUDA errors in a context are
 * sticky; the VM's next job gets a fresh one.
 */
#include "backend.h"

#include <cuda.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_worker.h"
#include "cuda/api.h"
#include "cuda/direct.h"
#include "cuda/image.h"
#include "log.h"
#include "op_table.h"
#include "remote/exec.h"
#include "vgpu/rpc.h"
#include "util.h"
#include "wire.h"

/* ---------------------------------------------------------------------- */
/* one context: module, functions, stream, events, device buffer           */
/* ---------------------------------------------------------------------- */

enum {
    FN_VECTOR_ADD,
    FN_SAXPY,
    FN_SGEMM_INIT,
    FN_SGEMM,
    FN_CHECKSUM,
    FN_COUNT
};

static const char *const fn_names[FN_COUNT] = {
    [FN_VECTOR_ADD] = VGPU_KERNEL_VECTOR_ADD, [FN_SAXPY] = VGPU_KERNEL_SAXPY,
    [FN_SGEMM_INIT] = VGPU_KERNEL_SGEMM_INIT, [FN_SGEMM] = VGPU_KERNEL_SGEMM,
    [FN_CHECKSUM] = VGPU_KERNEL_CHECKSUM,
};

struct vm_ctx {
    struct vm_ctx *next;
    uint32_t domid;
    bool released; /* vm_release() while running: destroy after the job */
    bool broken;   /* a sticky CUDA error: destroy after the job */
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn[FN_COUNT];
    CUstream stream;
    CUevent ev_start, ev_end;
    CUdeviceptr buf;   /* grow-only */
    uint64_t buf_size; /* bytes; read by vm_mem_used() under the lock */
    /*
     * Operands in and results out, as host-order words; grow-only.  Pinned
     * (cuMemHostAlloc, owned by ctx) so that the copies to and from the
     * GPU are DMA, truly asynchronous; pageable when the driver refuses
     * (pinned memory is limited), said once per context.
     */
    uint32_t *stage;
    size_t stage_words;
    bool stage_pinned;
    bool stage_pageable_said;
    /* Protocol v3: the VM's remoted objects in this context (remote/),
     * made by its first batch; NULL before.  rs_contexts: its guest
     * contexts after the last batch, read by vm_cuda_contexts() under
     * the lock. */
    struct rs_session *rs;
    uint32_t rs_contexts;
};

static uint32_t cu_error(CUresult r)
{
    return r == CUDA_ERROR_OUT_OF_MEMORY ? VGPU_ERR_QUOTA_EXCEEDED
                                         : VGPU_ERR_BACKEND;
}

/*
 * Create c's context on dev (it becomes current to the calling thread) and
 * everything in it.  On failure nothing is left and *what names the call
 * that failed; jit_log, when not NULL, receives the JIT's error log.
 */
static CUresult ctx_create(const struct cu_api *api, CUdevice dev,
                           struct vm_ctx *c, const char **what, char *jit_log,
                           size_t jit_log_len)
{
    CUjit_option opts[2] = {CU_JIT_ERROR_LOG_BUFFER,
                            CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *vals[2] = {jit_log, (void *)(uintptr_t)jit_log_len};
    CUresult r;

    *what = "cuCtxCreate";
    if (api->CtxCreate) {
        r = api->CtxCreate(&c->ctx, CU_CTX_SCHED_BLOCKING_SYNC, dev);
    } else {
        r = api->CtxCreate4(&c->ctx, NULL, CU_CTX_SCHED_BLOCKING_SYNC, dev);
    }
    if (r != CUDA_SUCCESS) {
        c->ctx = NULL;
        return r;
    }
    if (jit_log && jit_log_len) {
        jit_log[0] = 0;
    }
    *what = "cuModuleLoadDataEx";
    r = api->ModuleLoadDataEx(&c->mod, vgpu_cuda_image,
                              jit_log && jit_log_len ? 2 : 0, opts, vals);
    for (unsigned i = 0; r == CUDA_SUCCESS && i < FN_COUNT; i++) {
        *what = "cuModuleGetFunction";
        r = api->ModuleGetFunction(&c->fn[i], c->mod, fn_names[i]);
    }
    if (r == CUDA_SUCCESS) {
        *what = "cuStreamCreate";
        r = api->StreamCreate(&c->stream, CU_STREAM_NON_BLOCKING);
    }
    if (r == CUDA_SUCCESS) {
        *what = "cuEventCreate";
        r = api->EventCreate(&c->ev_start, CU_EVENT_BLOCKING_SYNC);
    }
    if (r == CUDA_SUCCESS) {
        r = api->EventCreate(&c->ev_end, CU_EVENT_BLOCKING_SYNC);
    }
    if (r != CUDA_SUCCESS) {
        api->CtxDestroy(c->ctx);
        c->ctx = NULL;
    }
    return r;
}

/* Frees the context and with it its module, stream, events and memory. */
static void stage_free(const struct cu_api *api, struct vm_ctx *c)
{
    if (c->stage && c->stage_pinned) {
        CUresult r = api->MemFreeHost(c->stage);

        if (r != CUDA_SUCCESS) {
            log_warn("cuda: dom%u: cuMemFreeHost failed: %s", c->domid,
                     cu_name(api, r));
        }
    } else {
        free(c->stage);
    }
    c->stage = NULL;
    c->stage_words = 0;
    c->stage_pinned = false;
}

static void ctx_destroy(const struct cu_api *api, struct vm_ctx *c)
{
    /* The context owns its pinned stage and the VM's remoted objects:
     * free them first, in it. */
    if (c->ctx && (c->stage_pinned || c->rs)) {
        api->CtxSetCurrent(c->ctx);
    }
    if (c->rs) {
        rs_destroy(c->rs, api);
        c->rs = NULL;
    }
    stage_free(api, c);
    if (c->ctx) {
        CUresult r = api->CtxDestroy(c->ctx);

        if (r != CUDA_SUCCESS) {
            log_warn("cuda: dom%u: cuCtxDestroy failed: %s", c->domid,
                     cu_name(api, r));
        }
    }
    c->ctx = NULL;
    c->buf = 0;
    c->buf_size = 0;
}

static unsigned blocks_for(uint64_t n, unsigned per)
{
    return (unsigned)((n + per - 1) / per);
}

/* What ctx_run needs to report a failure. */
struct run_state {
    CUresult r;
    const char *what;
};

#define CU_TRY(st, call, name)                                                 \
    do {                                                                       \
        if ((st)->r == CUDA_SUCCESS) {                                         \
            (st)->r = (call);                                                  \
            if ((st)->r != CUDA_SUCCESS) {                                     \
                (st)->what = (name);                                           \
            }                                                                  \
        }                                                                      \
    } while (0)

/*
 * Make the buffer hold at least need bytes.  lock, when not NULL, guards
 * buf_size against vm_mem_used() readers.
 */
static void ensure_buffer(const struct cu_api *api, struct vm_ctx *c,
                          uint64_t need, pthread_mutex_t *lock,
                          struct run_state *st)
{
    CUdeviceptr p = 0;

    if (c->buf_size >= need) {
        return;
    }
    if (c->buf) {
        CU_TRY(st, api->MemFree(c->buf), "cuMemFree");
        if (lock) {
            pthread_mutex_lock(lock);
        }
        c->buf = 0;
        c->buf_size = 0;
        if (lock) {
            pthread_mutex_unlock(lock);
        }
    }
    CU_TRY(st, api->MemAlloc(&p, (size_t)need), "cuMemAlloc");
    if (st->r == CUDA_SUCCESS) {
        if (lock) {
            pthread_mutex_lock(lock);
        }
        c->buf = p;
        c->buf_size = need;
        if (lock) {
            pthread_mutex_unlock(lock);
        }
    }
}

/*
 * Make the host staging buffer hold at least bytes (rounded up to whole
 * words, then to a power of two: pinning is a system call per block, so
 * sizes that creep up do not pin again each time).  Runs with c current.
 * 0, or -1 when the host is out of memory.
 */
static int ensure_stage(const struct cu_api *api, struct vm_ctx *c,
                        size_t bytes)
{
    size_t words = (bytes + sizeof(uint32_t) - 1) / sizeof(uint32_t);
    size_t want = 1024;
    uint32_t *p = NULL;
    CUresult r = CUDA_ERROR_NOT_SUPPORTED;

    if (c->stage_words >= words) {
        return 0;
    }
    while (want < words && want <= SIZE_MAX / 2 / sizeof(uint32_t)) {
        want *= 2;
    }
    if (want < words) {
        want = words;
    }
    if (api->MemHostAlloc && api->MemFreeHost) {
        void *v = NULL;

        r = api->MemHostAlloc(&v, want * sizeof(uint32_t), 0);
        p = r == CUDA_SUCCESS ? v : NULL;
    }
    if (p) {
        stage_free(api, c);
        c->stage = p;
        c->stage_words = want;
        c->stage_pinned = true;
        return 0;
    }
    if (!c->stage_pageable_said) {
        log_warn("cuda: dom%u: %zu bytes of pinned staging refused (%s): "
                 "pageable memory instead, slower copies to the GPU",
                 c->domid, want * sizeof(uint32_t),
                 api->MemHostAlloc ? cu_name(api, r) : "no cuMemHostAlloc");
        c->stage_pageable_said = true;
    }
    p = malloc(want * sizeof(uint32_t));
    if (!p) {
        return -1;
    }
    stage_free(api, c);
    c->stage = p;
    c->stage_words = want;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* launches, keyed by opcode                                               */
/* ---------------------------------------------------------------------- */

/*
 * Each queues on c's stream the copy of its operands in, its kernels and
 * the copy of its results out into c->stage, as the words of the
 * response's results in order (the op table says how many).  The device
 * buffer holds payload_device_bytes() and the stage enough for both the
 * operands and the results.
 */
static void launch_vector_add(const struct cu_api *api, struct vm_ctx *c,
                              const struct vgpu_request *req,
                              struct run_state *st)
{
    uint32_t n = req->count;
    CUdeviceptr a = c->buf, b = a + 4u * n, out = b + 4u * n;
    void *params[] = {&a, &b, &out, &n};
    struct payload_reader r;

    payload_reader_init(&r, req, 0);
    for (uint32_t i = 0; i < 2 * n; i++) {
        c->stage[i] = payload_read_le32(&r);
    }
    CU_TRY(st, api->MemcpyHtoDAsync(a, c->stage, 8u * n, c->stream),
           "cuMemcpyHtoDAsync");
    CU_TRY(st,
           api->LaunchKernel(
               c->fn[FN_VECTOR_ADD], blocks_for(n, VGPU_KERNEL_BLOCK), 1, 1,
               VGPU_KERNEL_BLOCK, 1, 1, 0, c->stream, params, NULL),
           "cuLaunchKernel(vector_add)");
    CU_TRY(st, api->MemcpyDtoHAsync(c->stage, out, 4u * n, c->stream),
           "cuMemcpyDtoHAsync");
}

static void launch_saxpy(const struct cu_api *api, struct vm_ctx *c,
                         const struct vgpu_request *req, struct run_state *st)
{
    uint32_t n = req->count;
    CUdeviceptr x = c->buf, y = x + 4u * n;
    struct payload_reader r;
    uint32_t abits;
    float a;
    void *params[] = {&a, &x, &y, &n};

    payload_reader_init(&r, req, 0);
    abits = payload_read_le32(&r);
    memcpy(&a, &abits, sizeof(a));
    for (uint32_t i = 0; i < 2 * n; i++) {
        c->stage[i] = payload_read_le32(&r);
    }
    CU_TRY(st, api->MemcpyHtoDAsync(x, c->stage, 8u * n, c->stream),
           "cuMemcpyHtoDAsync");
    CU_TRY(st,
           api->LaunchKernel(c->fn[FN_SAXPY], blocks_for(n, VGPU_KERNEL_BLOCK),
                             1, 1, VGPU_KERNEL_BLOCK, 1, 1, 0, c->stream,
                             params, NULL),
           "cuLaunchKernel(saxpy)");
    CU_TRY(st, api->MemcpyDtoHAsync(c->stage, y, 4u * n, c->stream),
           "cuMemcpyDtoHAsync");
}

/* Layout: int64 sum at 0 (8-aligned for the atomics), then A, B, C. */
static void launch_sgemm(const struct cu_api *api, struct vm_ctx *c,
                         const struct vgpu_request *req, struct run_state *st)
{
    struct payload_reader r;
    uint32_t n = req->count, seed;
    uint32_t count = n * n; /* n <= 1024: fits */
    uint64_t mat = 4ull * count;
    CUdeviceptr sum = c->buf, a = sum + 8, b = a + mat, out = b + mat;
    unsigned tiles = blocks_for(n, VGPU_SGEMM_TILE);
    unsigned sum_blocks = blocks_for(count, VGPU_SUM_THREADS);
    void *init_params[] = {&a, &b, &sum, &n, &seed};
    void *gemm_params[] = {&a, &b, &out, &n};
    void *sum_params[] = {&out, &count, &sum};

    payload_reader_init(&r, req, 0);
    seed = payload_read_le32(&r);
    if (sum_blocks > 1024) {
        sum_blocks = 1024; /* the kernel strides over the rest */
    }
    CU_TRY(st,
           api->LaunchKernel(c->fn[FN_SGEMM_INIT], tiles, tiles, 1,
                             VGPU_SGEMM_TILE, VGPU_SGEMM_TILE, 1, 0, c->stream,
                             init_params, NULL),
           "cuLaunchKernel(sgemm_init)");
    CU_TRY(st,
           api->LaunchKernel(c->fn[FN_SGEMM], tiles, tiles, 1, VGPU_SGEMM_TILE,
                             VGPU_SGEMM_TILE, 1, 0, c->stream, gemm_params,
                             NULL),
           "cuLaunchKernel(sgemm)");
    CU_TRY(st,
           api->LaunchKernel(c->fn[FN_CHECKSUM], sum_blocks, 1, 1,
                             VGPU_SUM_THREADS, 1, 1, 0, c->stream, sum_params,
                             NULL),
           "cuLaunchKernel(checksum)");
    CU_TRY(st, api->MemcpyDtoHAsync(c->stage, sum, 8, c->stream),
           "cuMemcpyDtoHAsync");
}

typedef void (*launch_fn)(const struct cu_api *api, struct vm_ctx *c,
                          const struct vgpu_request *req, struct run_state *st);

static const struct {
    uint32_t opcode;
    launch_fn launch;
} launches[] = {
    {VGPU_OP_VECTOR_ADD, launch_vector_add},
    {VGPU_OP_SAXPY, launch_saxpy},
    {VGPU_OP_SGEMM, launch_sgemm},
};

static launch_fn find_launch(uint32_t opcode)
{
    for (size_t i = 0; i < sizeof(launches) / sizeof(launches[0]); i++) {
        if (launches[i].opcode == opcode) {
            return launches[i].launch;
        }
    }
    return NULL;
}

/*
 * Run a validated request in c, which is current to the calling thread.
 * Fills resp (payload_resp_size() bytes)/resp_len/exec_ns and returns an
 * enum vgpu_error; a CUDA failure is logged with who (e.g. "dom5 gpu0")
 * and, unless it was out of memory, marks c broken.
 */
static uint32_t ctx_run(const struct cu_api *api, struct vm_ctx *c,
                        const struct vgpu_request *req, uint8_t *resp,
                        uint32_t *resp_len, uint64_t *exec_ns,
                        pthread_mutex_t *lock, const char *who)
{
    const uint32_t hdr = sizeof(struct vgpu_resp_hdr);
    const uint32_t size = payload_resp_size(req);
    struct run_state st = {CUDA_SUCCESS, NULL};
    launch_fn launch = find_launch(req->opcode);
    uint64_t start = now_ns();
    uint32_t len;
    float ms = 0;

    *resp_len = 0;
    *exec_ns = 0;
    if (!launch || size < hdr) {
        return VGPU_ERR_BAD_OPCODE;
    }
    if (ensure_stage(api, c,
                     req->operands_len > size - hdr ? req->operands_len
                                                    : size - hdr)) {
        log_err("cuda: %s: out of host memory for staging", who);
        return VGPU_ERR_BACKEND;
    }
    ensure_buffer(api, c, payload_device_bytes(req), lock, &st);
    CU_TRY(&st, api->EventRecord(c->ev_start, c->stream), "cuEventRecord");
    launch(api, c, req, &st);
    CU_TRY(&st, api->EventRecord(c->ev_end, c->stream), "cuEventRecord");
    if (st.what && c->stream) {
        /* Let what was queued before the failure finish before we go. */
        api->StreamSynchronize(c->stream);
    } else {
        CU_TRY(&st, api->StreamSynchronize(c->stream), "cuStreamSynchronize");
    }
    if (st.r != CUDA_SUCCESS) {
        log_err("cuda: %s: %s failed: %s", who, st.what, cu_name(api, st.r));
        if (st.r != CUDA_ERROR_OUT_OF_MEMORY) {
            c->broken = true;
        }
        return cu_error(st.r);
    }
    if (api->EventElapsedTime(&ms, c->ev_start, c->ev_end) == CUDA_SUCCESS &&
        ms >= 0) {
        *exec_ns = (uint64_t)((double)ms * 1e6);
    } else {
        *exec_ns = now_ns() - start;
    }

    /* The results are 32-bit words, as many as the op table's size says. */
    len = vgpu_op_put_resp_hdr(resp, req->opcode, req->count);
    for (uint32_t i = 0; len + sizeof(uint32_t) <= size; i++) {
        wire_put_le32(resp + len, c->stage[i]);
        len += sizeof(uint32_t);
    }
    *resp_len = len;
    return VGPU_ERR_NONE;
}

/* ---------------------------------------------------------------------- */
/* the execution operations                                                */
/* ---------------------------------------------------------------------- */

struct cuda_exec;

/* The per-GPU context of struct vgpu_exec_ops. */
struct cuda_gpu {
    struct cuda_exec *cx;
    unsigned index;
    CUdevice dev;
    /* Guards ctxs, running and each context's buf_size. */
    pthread_mutex_t lock;
    struct vm_ctx *ctxs;    /* one per VM that used this GPU */
    struct vm_ctx *running; /* the context a job runs in now */
};

struct cuda_exec {
    struct cu_api api;
    struct cuda_gpu gpu[VGPU_BACKEND_MAX_GPUS];
};

static void unlink_ctx(struct cuda_gpu *g, struct vm_ctx *c)
{
    for (struct vm_ctx **p = &g->ctxs; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            c->next = NULL;
            return;
        }
    }
}

/* The domain's usable context on g, or NULL (under the lock). */
static struct vm_ctx *find_ctx(struct cuda_gpu *g, uint32_t domid)
{
    for (struct vm_ctx *c = g->ctxs; c; c = c->next) {
        if (c->domid == domid && !c->released && !c->broken) {
            return c;
        }
    }
    return NULL;
}

/*
 * Unlink the domain's contexts on g that no job runs in (under the lock);
 * returns them as a list for destroy_list().
 */
static struct vm_ctx *take_idle(struct cuda_gpu *g, uint32_t domid)
{
    struct vm_ctx *dead = NULL;
    struct vm_ctx **p = &g->ctxs;

    while (*p) {
        struct vm_ctx *c = *p;

        if (c->domid != domid) {
            p = &c->next;
        } else if (c == g->running) {
            c->released = true;
            p = &c->next;
        } else {
            *p = c->next;
            c->next = dead;
            dead = c;
        }
    }
    return dead;
}

static void destroy_list(const struct cu_api *api, struct vm_ctx *dead,
                         const char *where)
{
    while (dead) {
        struct vm_ctx *c = dead;

        dead = c->next;
        log_info("cuda: dom%u%s: context destroyed (domain released)", c->domid,
                 where);
        ctx_destroy(api, c);
        free(c);
    }
}

/*
 * A v3 batch of remoted calls (remote/exec.h) in the VM's context c, which
 * is current.  Its session is made by the VM's first batch; a sticky CUDA
 * error spoils the context, which goes after the job with everything the
 * guest made in it (the guest sees its handles fail from then on, as a
 * CUDA program sees its context fail).
 */
static void run_batch(struct cuda_gpu *g, struct vm_ctx *c,
                      struct vgpu_backend_job *job, const char *who)
{
    struct rs_env env = {
        .api = &g->cx->api,
        .dev = g->dev,
        .quota = job->quota_bytes,
        .other_used = c->buf_size,
        .who = who,
    };
    struct rs_result res;

    if (!c->rs) {
        struct rs_session *rs = rs_session_new();

        if (!rs) {
            log_err("cuda: %s: out of memory for a session", who);
            job->error = VGPU_ERR_BACKEND;
            return;
        }
        pthread_mutex_lock(&g->lock);
        c->rs = rs;
        pthread_mutex_unlock(&g->lock);
        log_info("cuda: %s: remoting session opened", who);
    }
    rs_exec(c->rs, &env, &job->req, job->resp.iov_base, &res);
    pthread_mutex_lock(&g->lock);
    c->rs_contexts = rs_count(c->rs, RS_CTX);
    pthread_mutex_unlock(&g->lock);
    job->error = res.error;
    job->resp_len = res.resp_len;
    job->exec_ns = res.exec_ns;
    if (res.sticky) {
        log_err("cuda: %s: a CUDA error spoiled the context: its objects "
                "are freed",
                who);
        c->broken = true;
    }
}

/* Runs on g's worker, with c the domain's context or NULL. */
static void run_job(struct cuda_gpu *g, struct vgpu_backend_job *job,
                    struct vm_ctx **ctxp)
{
    const struct cu_api *api = &g->cx->api;
    struct vm_ctx *c = *ctxp;
    char who[48];
    CUresult r;

    snprintf(who, sizeof(who), "dom%u gpu%u", job->domid, g->index);
    job->resp_len = 0;
    job->exec_ns = 0;
    if (!c) {
        char jit_log[1024];
        const char *what;

        c = calloc(1, sizeof(*c));
        if (!c) {
            log_err("cuda: %s: out of memory for a context", who);
            job->error = VGPU_ERR_BACKEND;
            return;
        }
        c->domid = job->domid;
        r = ctx_create(api, g->dev, c, &what, jit_log, sizeof(jit_log));
        if (r != CUDA_SUCCESS) {
            log_err("cuda: %s: cannot create the VM's context: %s failed: "
                    "%s%s%s",
                    who, what, cu_name(api, r), jit_log[0] ? ": " : "",
                    jit_log);
            free(c);
            job->error = cu_error(r);
            return;
        }
        log_info("cuda: %s: context created", who);
        pthread_mutex_lock(&g->lock);
        c->next = g->ctxs;
        g->ctxs = c;
        g->running = c;
        pthread_mutex_unlock(&g->lock);
        *ctxp = c;
    } else {
        r = api->CtxSetCurrent(c->ctx);
        if (r != CUDA_SUCCESS) {
            log_err("cuda: %s: cuCtxSetCurrent failed: %s", who,
                    cu_name(api, r));
            c->broken = true;
            job->error = VGPU_ERR_BACKEND;
            return;
        }
    }
    if (job->req.opcode == VGPU_OP_CUDA) {
        run_batch(g, c, job, who);
    } else {
        job->error = ctx_run(api, c, &job->req, job->resp.iov_base,
                             &job->resp_len, &job->exec_ns, &g->lock, who);
    }
    /* Leave the thread's context stack empty between jobs. */
    api->CtxSetCurrent(NULL);
}

static void cuda_run(void *gpu, struct vgpu_backend_job *job)
{
    struct cuda_gpu *g = gpu;
    struct vm_ctx *c;

    pthread_mutex_lock(&g->lock);
    c = find_ctx(g, job->domid);
    g->running = c;
    pthread_mutex_unlock(&g->lock);

    run_job(g, job, &c);

    pthread_mutex_lock(&g->lock);
    g->running = NULL;
    if (c && (c->released || c->broken)) {
        unlink_ctx(g, c);
        pthread_mutex_unlock(&g->lock);
        log_info("cuda: dom%u gpu%u: context destroyed (%s)", c->domid,
                 g->index,
                 c->broken ? "after a CUDA error" : "domain released");
        ctx_destroy(&g->cx->api, c);
        free(c);
        return;
    }
    pthread_mutex_unlock(&g->lock);
}

/* After a job of a released domain, on g's worker: what the job made. */
static void cuda_drop_vm(void *gpu, uint32_t domid)
{
    struct cuda_gpu *g = gpu;
    struct vm_ctx *dead;
    char where[16];

    pthread_mutex_lock(&g->lock);
    dead = take_idle(g, domid);
    pthread_mutex_unlock(&g->lock);
    snprintf(where, sizeof(where), " gpu%u", g->index);
    destroy_list(&g->cx->api, dead, where);
}

/*
 * Idle contexts of the domain are destroyed here, on the caller's thread
 * (no worker can pick them up: they are unlinked under the lock first).  A
 * context in use by a running job is marked, and its worker destroys it
 * when the job ends; one that a queued job of the domain will make is
 * drop_vm()'s.
 */
static void cuda_vm_release(void *gpu, uint32_t domid)
{
    struct cuda_gpu *g = gpu;
    struct vm_ctx *dead;

    pthread_mutex_lock(&g->lock);
    dead = take_idle(g, domid);
    pthread_mutex_unlock(&g->lock);
    destroy_list(&g->cx->api, dead, "");
}

static uint64_t cuda_vm_mem_used(void *gpu, uint32_t domid)
{
    struct cuda_gpu *g = gpu;
    uint64_t used = 0;

    pthread_mutex_lock(&g->lock);
    for (const struct vm_ctx *c = g->ctxs; c; c = c->next) {
        if (c->domid == domid) {
            used += c->buf_size + (c->rs ? rs_mem_used(c->rs) : 0);
        }
    }
    pthread_mutex_unlock(&g->lock);
    return used;
}

static uint32_t cuda_vm_cuda_contexts(void *gpu, uint32_t domid)
{
    struct cuda_gpu *g = gpu;
    uint32_t n = 0;

    pthread_mutex_lock(&g->lock);
    for (const struct vm_ctx *c = g->ctxs; c; c = c->next) {
        if (c->domid == domid && !c->released && !c->broken) {
            n += c->rs_contexts;
        }
    }
    pthread_mutex_unlock(&g->lock);
    return n;
}

static void format_uuid(char *out, size_t cap, const CUuuid *u)
{
    const unsigned char *b = (const unsigned char *)u->bytes;

    snprintf(out, cap,
             "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

/*
 * Name, UUID, memory of device ordinal i, and a probe: a context with the
 * embedded kernels loaded, so that a driver that cannot run them is found
 * now.  -1 with why on failure.
 */
static int probe_gpu(const struct cu_api *api, struct cuda_gpu *g, int ordinal,
                     struct vgpu_gpu_info *info, char *why, size_t why_len)
{
    struct vm_ctx probe = {0};
    char jit_log[1024];
    const char *what;
    size_t mem = 0;
    CUuuid uuid;
    int major = 0, minor = 0;
    CUresult r = api->DeviceGet(&g->dev, ordinal);

    if (r != CUDA_SUCCESS) {
        snprintf(why, why_len, "cuDeviceGet(%d) failed: %s", ordinal,
                 cu_name(api, r));
        return -1;
    }
    if (api->DeviceGetName(info->name, sizeof(info->name), g->dev) !=
        CUDA_SUCCESS) {
        snprintf(info->name, sizeof(info->name), "CUDA device %d", ordinal);
    }
    info->name[sizeof(info->name) - 1] = 0;
    if (api->DeviceGetUuid(&uuid, g->dev) == CUDA_SUCCESS) {
        format_uuid(info->uuid, sizeof(info->uuid), &uuid);
    }
    if (api->DeviceTotalMem(&mem, g->dev) == CUDA_SUCCESS) {
        info->mem_total = mem;
    }
    api->DeviceGetAttribute(
        &major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, g->dev);
    api->DeviceGetAttribute(
        &minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, g->dev);
    r = ctx_create(api, g->dev, &probe, &what, jit_log, sizeof(jit_log));
    if (r != CUDA_SUCCESS) {
        snprintf(why, why_len, "GPU %d (%s, sm_%d%d): %s failed: %s%s%.200s",
                 ordinal, info->name, major, minor, what, cu_name(api, r),
                 jit_log[0] ? ": " : "", jit_log);
        return -1;
    }
    ctx_destroy(api, &probe);
    log_info("cuda: GPU %d: %s, %s, sm_%d%d, %llu MiB", ordinal, info->name,
             info->uuid[0] ? info->uuid : "no UUID", major, minor,
             (unsigned long long)(info->mem_total >> 20));
    return 0;
}

static int cuda_exec_open(void **exec, const struct vgpu_backend_config *cfg,
                          unsigned *ngpus, char *why, size_t why_len)
{
    struct cuda_exec *cx = calloc(1, sizeof(*cx));
    int count = 0, version = 0;

    (void)cfg;
    if (!cx) {
        snprintf(why, why_len, "out of memory");
        return -1;
    }
    if (cu_load(&cx->api, why, why_len)) {
        free(cx);
        return -1;
    }
    if (cu_start(&cx->api, &count, why, why_len)) {
        cu_unload(&cx->api);
        free(cx);
        return -1;
    }
    cx->api.DriverGetVersion(&version);
    if (count > VGPU_BACKEND_MAX_GPUS) {
        log_warn("cuda: %d GPUs, using the first %d", count,
                 VGPU_BACKEND_MAX_GPUS);
        count = VGPU_BACKEND_MAX_GPUS;
    }
    log_info("cuda: driver %d.%d, %d GPU(s), kernels: %llu bytes embedded",
             version / 1000, (version % 1000) / 10, count,
             (unsigned long long)vgpu_cuda_image_size);
    *ngpus = (unsigned)count;
    *exec = cx;
    return 0;
}

static int cuda_open_gpu(void *exec, unsigned index, void **gpu,
                         struct vgpu_gpu_info *info, char *why, size_t why_len)
{
    struct cuda_exec *cx = exec;
    struct cuda_gpu *g = &cx->gpu[index];

    g->cx = cx;
    g->index = index;
    if (probe_gpu(&cx->api, g, (int)index, info, why, why_len)) {
        return -1;
    }
    pthread_mutex_init(&g->lock, NULL);
    *gpu = g;
    return 0;
}

/* The worker has stopped: every context of the GPU goes. */
static void cuda_close_gpu(void *gpu)
{
    struct cuda_gpu *g = gpu;

    while (g->ctxs) {
        struct vm_ctx *c = g->ctxs;

        g->ctxs = c->next;
        ctx_destroy(&g->cx->api, c);
        free(c);
    }
    pthread_mutex_destroy(&g->lock);
}

static void cuda_exec_close(void *exec)
{
    struct cuda_exec *cx = exec;

    cu_unload(&cx->api);
    free(cx);
}

static const struct vgpu_exec_ops cuda_exec = {
    .open = cuda_exec_open,
    .open_gpu = cuda_open_gpu,
    .run = cuda_run,
    .drop_vm = cuda_drop_vm,
    .vm_release = cuda_vm_release,
    .vm_mem_used = cuda_vm_mem_used,
    .vm_cuda_contexts = cuda_vm_cuda_contexts,
    .close_gpu = cuda_close_gpu,
    .close = cuda_exec_close,
};

static int cuda_open(void **state, struct vgpu_backend_config *cfg,
                     const char **why)
{
    return vgpu_worker_open(state, &cuda_exec, cfg, why);
}

static const struct vgpu_backend_ops cuda_ops =
    VGPU_WORKER_BACKEND("cuda", cuda_open);

const struct vgpu_backend_ops *const vgpu_backend_cuda = &cuda_ops;

/* ---------------------------------------------------------------------- */
/* direct runs (cuda/direct.h), for the bench                              */
/* ---------------------------------------------------------------------- */

struct vgpu_cuda_direct {
    struct cu_api api;
    struct vm_ctx ctx;
};

int vgpu_cuda_direct_open(struct vgpu_cuda_direct **out, unsigned gpu,
                          char *why, size_t why_len)
{
    struct vgpu_cuda_direct *d = calloc(1, sizeof(*d));
    char jit_log[1024];
    const char *what;
    CUdevice dev;
    int count = 0;
    CUresult r;

    if (!d) {
        snprintf(why, why_len, "out of memory");
        return -1;
    }
    if (cu_load(&d->api, why, why_len)) {
        free(d);
        return -1;
    }
    if (cu_start(&d->api, &count, why, why_len)) {
        goto err;
    }
    if ((int)gpu >= count) {
        snprintf(why, why_len, "no GPU %u (%d present)", gpu, count);
        goto err;
    }
    r = d->api.DeviceGet(&dev, (int)gpu);
    if (r == CUDA_SUCCESS) {
        r = ctx_create(&d->api, dev, &d->ctx, &what, jit_log, sizeof(jit_log));
    } else {
        what = "cuDeviceGet";
    }
    if (r != CUDA_SUCCESS) {
        snprintf(why, why_len, "%s failed: %s", what, cu_name(&d->api, r));
        goto err;
    }
    *out = d;
    return 0;

err:
    cu_unload(&d->api);
    free(d);
    return -1;
}

uint32_t vgpu_cuda_direct_run(struct vgpu_cuda_direct *d,
                              const struct vgpu_request *req, uint8_t *resp,
                              uint32_t *resp_len, uint64_t *exec_ns)
{
    CUresult r = d->api.CtxSetCurrent(d->ctx.ctx);

    if (r != CUDA_SUCCESS) {
        log_err("cuda: direct: cuCtxSetCurrent failed: %s",
                cu_name(&d->api, r));
        return VGPU_ERR_BACKEND;
    }
    return ctx_run(&d->api, &d->ctx, req, resp, resp_len, exec_ns, NULL,
                   "direct");
}

void vgpu_cuda_direct_close(struct vgpu_cuda_direct *d)
{
    if (!d) {
        return;
    }
    ctx_destroy(&d->api, &d->ctx);
    cu_unload(&d->api);
    free(d);
}
