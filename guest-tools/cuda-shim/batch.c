/*
 * cuda-shim/batch.c - owns the shim's transport: opening the vgpu device
 * (libvgpu, the /dev/vgpuN driver path), building batches of calls
 * (vgpu/rpc.h), sending them and reading the answers back.
 *
 * Calls without a result are queued and go with the next call that waits
 * for an answer (or when the batch is full), so a loop of launches costs
 * one round trip per batch, not per launch.  An error of a queued call is
 * returned by the call that waits, as CUDA returns asynchronous errors at
 * the next synchronizing call.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

/* Bytes of one batch, each way: large copies are cut to fit. */
#define BATCH_BYTES (4u << 20)

struct shim shim = {.lock = PTHREAD_MUTEX_INITIALIZER};

static __thread uint64_t current_ctx;

uint64_t shim_current(void)
{
    return current_ctx;
}

void shim_set_current(uint64_t ctx)
{
    current_ctx = ctx;
}

void shim_log(const char *fmt, ...)
{
    va_list ap;

    if (getenv("VGPU_CUDA_QUIET")) {
        return;
    }
    va_start(ap, fmt);
    fputs("vgpu libcuda: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Names said once (a short list: unsupported calls a program makes). */
static const char *said[128];
static unsigned nsaid;

CUresult shim_unsupported(const char *name)
{
    pthread_mutex_lock(&shim.lock);
    for (unsigned i = 0; i < nsaid; i++) {
        if (strcmp(said[i], name) == 0) {
            pthread_mutex_unlock(&shim.lock);
            return VGPU_CU_ERROR_NOT_SUPPORTED;
        }
    }
    if (nsaid < sizeof(said) / sizeof(said[0])) {
        said[nsaid++] = name;
    }
    pthread_mutex_unlock(&shim.lock);
    shim_log("%s is not supported by vgpu (CUDA_ERROR_NOT_SUPPORTED)", name);
    return VGPU_CU_ERROR_NOT_SUPPORTED;
}

uint64_t shim_max_tail(void)
{
    /* Room for the headers of a call and of the batch. */
    return shim.batch_cap - 256;
}

static void batch_reset(void)
{
    shim.req_len = sizeof(struct vgpu_req_hdr);
    shim.resp_need = sizeof(struct vgpu_resp_hdr);
    shim.ncalls = 0;
}

/* Under shim.lock. */
static CUresult open_device(void)
{
    size_t cap;
    char path[96];

    if (vgpu_open(&shim.dev, NULL) != VGPU_OK) {
        shim_log("no vgpu device: %s", vgpu_errmsg(&shim.dev));
        return VGPU_CU_ERROR_NO_DEVICE;
    }
    if (vgpu_path(&shim.dev) != VGPU_PATH_DRIVER_RINGS ||
        vgpu_max_request(&shim.dev) < 64 * 1024) {
        shim_log("%s: CUDA needs the vgpu kernel driver on a device with "
                 "rings (protocol v2)",
                 vgpu_path_describe(&shim.dev, path, sizeof(path)));
        vgpu_close(&shim.dev);
        return VGPU_CU_ERROR_NO_DEVICE;
    }
    cap = vgpu_max_request(&shim.dev) < BATCH_BYTES
              ? (size_t)vgpu_max_request(&shim.dev)
              : BATCH_BYTES;
    shim.req = vgpu_buffer_alloc(cap);
    shim.resp = vgpu_buffer_alloc(cap);
    if (!shim.req || !shim.resp) {
        vgpu_close(&shim.dev);
        return VGPU_CU_ERROR_OUT_OF_MEMORY;
    }
    shim.req_cap = shim.resp_cap = shim.batch_cap = cap;
    batch_reset();
    /* Contexts are made under the session, so that the host frees them
     * when this process ends, however it ends. */
    if (vgpu_session(&shim.dev, &shim.session) != VGPU_OK) {
        shim_log("no session from the vgpu driver (%s): if this process "
                 "dies without destroying its contexts, they stay until "
                 "the VM stops",
                 vgpu_errmsg(&shim.dev));
        shim.session = 0;
    }
    return VGPU_CU_SUCCESS;
}

/* Send what is queued; under shim.lock.  The last call's results go to
 * res.  Statuses: see shim_flush. */
static CUresult send_locked(void *res, size_t res_cap, size_t *res_len)
{
    size_t got = 0, off = sizeof(struct vgpu_resp_hdr);
    CUresult first_err = VGPU_CU_SUCCESS, last = VGPU_CU_SUCCESS;
    uint32_t answered;
    int rc;

    if (res_len) {
        *res_len = 0;
    }
    if (shim.ncalls == 0) {
        return VGPU_CU_SUCCESS;
    }
    shim_put32(shim.req, VGPU_OP_CUDA);
    shim_put32(shim.req + 4, shim.ncalls);
    rc = vgpu_submit(&shim.dev, shim.req, shim.req_len, shim.resp,
                     shim.resp_cap, &got, 0);
    shim.calls_sent += shim.ncalls;
    shim.batches_sent++;
    if (rc != VGPU_OK) {
        shim_log("a batch of %u calls failed: %s", shim.ncalls,
                 vgpu_errmsg(&shim.dev));
        batch_reset();
        return VGPU_CU_ERROR_UNKNOWN;
    }
    answered = got >= 8 ? vgpu_get_le32(shim.resp + 4) : 0;
    for (uint32_t i = 0; i < answered; i++) {
        uint32_t status, rlen;

        if (off + sizeof(struct vgpu_rpc_ret) > got) {
            break;
        }
        status = vgpu_get_le32(shim.resp + off + 4);
        rlen = vgpu_get_le32(shim.resp + off + 8);
        off += sizeof(struct vgpu_rpc_ret);
        if (rlen > got - off) {
            break;
        }
        if (status != VGPU_CU_SUCCESS && first_err == VGPU_CU_SUCCESS) {
            first_err = (CUresult)status;
        }
        if (i == shim.ncalls - 1) {
            last = (CUresult)status;
            if (res && status == VGPU_CU_SUCCESS) {
                size_t n = rlen < res_cap ? rlen : res_cap;

                memcpy(res, shim.resp + off, n);
                if (res_len) {
                    *res_len = n;
                }
            }
        }
        off += (size_t)VGPU_RPC_PAD(rlen);
    }
    if (answered < shim.ncalls && first_err == VGPU_CU_SUCCESS) {
        first_err = VGPU_CU_ERROR_UNKNOWN; /* an answer we cannot read */
    }
    batch_reset();
    if (first_err != VGPU_CU_SUCCESS) {
        return first_err;
    }
    return last;
}

static int append(uint32_t fn, const void *fixed, uint32_t fixed_len,
                  const void *tail, uint64_t tail_len, uint64_t res_max);

CUresult shim_init(void)
{
    uint8_t res[VGPU_RPC_RES_GET_VERSION];
    size_t n = 0;
    CUresult r;

    pthread_mutex_lock(&shim.lock);
    if (shim.inited) {
        pthread_mutex_unlock(&shim.lock);
        return VGPU_CU_SUCCESS;
    }
    if (shim.init_error) {
        r = shim.init_error;
        pthread_mutex_unlock(&shim.lock);
        return r;
    }
    r = open_device();
    if (r == VGPU_CU_SUCCESS) {
        r = append(VGPU_RPC_GET_VERSION, NULL, 0, NULL, 0, sizeof(res))
                ? (CUresult)VGPU_CU_ERROR_UNKNOWN
                : send_locked(res, sizeof(res), &n);
    }
    if (r == VGPU_CU_SUCCESS && n == sizeof(res)) {
        if (vgpu_get_le32(res) != VGPU_RPC_VERSION) {
            shim_log("the mediator speaks remoting version %u, this "
                     "library %u",
                     vgpu_get_le32(res), VGPU_RPC_VERSION);
            r = VGPU_CU_ERROR_NOT_SUPPORTED;
        }
        shim.driver_version = (int)vgpu_get_le32(res + 4);
        shim.device_count = vgpu_get_le32(res + 8);
        if (r == VGPU_CU_SUCCESS && shim.device_count == 0) {
            shim_log("the mediator has no CUDA GPU for this VM's pool");
            r = VGPU_CU_ERROR_NO_DEVICE;
        }
    } else if (r == VGPU_CU_SUCCESS) {
        r = VGPU_CU_ERROR_UNKNOWN;
    }
    if (r == VGPU_CU_SUCCESS) {
        shim.inited = 1;
    } else {
        shim.init_error = r;
    }
    pthread_mutex_unlock(&shim.lock);
    return r;
}

/* Append one call; under shim.lock.  0, or -1 when it cannot fit even an
 * empty batch. */
static int append(uint32_t fn, const void *fixed, uint32_t fixed_len,
                  const void *tail, uint64_t tail_len, uint64_t res_max)
{
    uint64_t arg = (uint64_t)fixed_len + tail_len;
    uint64_t need = 8 + VGPU_RPC_PAD(arg);
    uint64_t rneed = sizeof(struct vgpu_rpc_ret) + VGPU_RPC_PAD(res_max);
    uint8_t *p;

    if (sizeof(struct vgpu_req_hdr) + need > shim.req_cap ||
        sizeof(struct vgpu_resp_hdr) + rneed > shim.resp_cap) {
        return -1;
    }
    if (shim.req_len + need > shim.req_cap ||
        shim.resp_need + rneed > shim.resp_cap ||
        shim.ncalls == VGPU_RPC_MAX_CALLS) {
        CUresult r = send_locked(NULL, 0, NULL);

        if (r != VGPU_CU_SUCCESS && shim.deferred == VGPU_CU_SUCCESS) {
            shim.deferred = r;
        }
    }
    p = shim.req + shim.req_len;
    shim_put32(p, fn);
    shim_put32(p + 4, (uint32_t)arg);
    if (fixed_len) {
        memcpy(p + 8, fixed, fixed_len);
    }
    if (tail_len) {
        memcpy(p + 8 + fixed_len, tail, (size_t)tail_len);
    }
    memset(p + 8 + arg, 0, (size_t)(VGPU_RPC_PAD(arg) - arg));
    shim.req_len += (size_t)need;
    shim.resp_need += (size_t)rneed;
    shim.ncalls++;
    return 0;
}

CUresult shim_queue(uint32_t fn, const void *fixed, uint32_t fixed_len,
                    const void *tail, uint64_t tail_len, uint64_t res_max)
{
    CUresult r;

    if ((r = shim_init()) != VGPU_CU_SUCCESS) {
        return r;
    }
    pthread_mutex_lock(&shim.lock);
    r = append(fn, fixed, fixed_len, tail, tail_len, res_max)
            ? VGPU_CU_ERROR_INVALID_VALUE
            : VGPU_CU_SUCCESS;
    pthread_mutex_unlock(&shim.lock);
    return r;
}

CUresult shim_flush(void *res, size_t res_cap, size_t *res_len)
{
    CUresult r, d;

    pthread_mutex_lock(&shim.lock);
    r = send_locked(res, res_cap, res_len);
    d = shim.deferred;
    shim.deferred = VGPU_CU_SUCCESS;
    pthread_mutex_unlock(&shim.lock);
    return d != VGPU_CU_SUCCESS ? d : r;
}

CUresult shim_call(uint32_t fn, const void *fixed, uint32_t fixed_len,
                   const void *tail, uint64_t tail_len, void *res,
                   size_t res_cap, size_t *res_len)
{
    CUresult r, d;

    if ((r = shim_init()) != VGPU_CU_SUCCESS) {
        return r;
    }
    pthread_mutex_lock(&shim.lock);
    if (append(fn, fixed, fixed_len, tail, tail_len, res_cap)) {
        pthread_mutex_unlock(&shim.lock);
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    r = send_locked(res, res_cap, res_len);
    d = shim.deferred;
    shim.deferred = VGPU_CU_SUCCESS;
    pthread_mutex_unlock(&shim.lock);
    return d != VGPU_CU_SUCCESS ? d : r;
}

/*
 * A call too large for the batch buffer (a module image over 4 MB; cuBLAS
 * has three of up to 6 MB): what is queued goes first, then the call
 * alone from a request buffer of its own, up to the largest request the
 * device carries.  Statuses as shim_call's.
 */
CUresult shim_call_large(uint32_t fn, const void *fixed, uint32_t fixed_len,
                         const void *tail, uint64_t tail_len, void *res,
                         size_t res_cap, size_t *res_len)
{
    uint64_t need = sizeof(struct vgpu_req_hdr) + 8 +
                    VGPU_RPC_PAD((uint64_t)fixed_len + tail_len);
    uint8_t *saved, *big;
    size_t saved_cap;
    CUresult r, d;

    if ((r = shim_init()) != VGPU_CU_SUCCESS) {
        return r;
    }
    if (need <= shim.batch_cap) {
        return shim_call(fn, fixed, fixed_len, tail, tail_len, res, res_cap,
                         res_len);
    }
    if (need > vgpu_max_request(&shim.dev)) {
        shim_log("a call of %llu bytes is over the %llu the device carries",
                 (unsigned long long)need,
                 (unsigned long long)vgpu_max_request(&shim.dev));
        return VGPU_CU_ERROR_OUT_OF_MEMORY;
    }
    big = vgpu_buffer_alloc((size_t)need);
    if (!big) {
        return VGPU_CU_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_lock(&shim.lock);
    /* What is queued first; if it failed, the call is not made, as in one
     * batch the mediator stops at the first failure. */
    r = send_locked(NULL, 0, NULL);
    d = shim.deferred;
    if (r != VGPU_CU_SUCCESS || d != VGPU_CU_SUCCESS) {
        shim.deferred = VGPU_CU_SUCCESS;
        pthread_mutex_unlock(&shim.lock);
        vgpu_buffer_free(big, (size_t)need);
        return d != VGPU_CU_SUCCESS ? d : r;
    }
    saved = shim.req;
    saved_cap = shim.req_cap;
    shim.req = big;
    shim.req_cap = (size_t)need;
    r = append(fn, fixed, fixed_len, tail, tail_len, res_cap)
            ? (CUresult)VGPU_CU_ERROR_INVALID_VALUE
            : send_locked(res, res_cap, res_len);
    shim.req = saved;
    shim.req_cap = saved_cap;
    batch_reset();
    d = shim.deferred;
    shim.deferred = VGPU_CU_SUCCESS;
    pthread_mutex_unlock(&shim.lock);
    vgpu_buffer_free(big, (size_t)need);
    return d != VGPU_CU_SUCCESS ? d : r;
}

/* VGPU_CUDA_STATS=1: what the process remoted, said at exit (the e2e test
 * and `make bench` read the round trips per call from it). */
__attribute__((destructor)) static void shim_stats(void)
{
    if (getenv("VGPU_CUDA_STATS") && shim.batches_sent) {
        fprintf(stderr, "vgpu libcuda: %llu calls in %llu batches\n",
                (unsigned long long)shim.calls_sent,
                (unsigned long long)shim.batches_sent);
    }
}
