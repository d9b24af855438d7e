/*
 * test-remote.c - protocol v3 in the mediator: batches of remoted CUDA
 * calls (vgpu/rpc.h) checked by remote/batch.c and run by the CUDA
 * backend's sessions (remote/exec.c, remote/session.c) against the
 * stand-in libcuda (the test double tests/fakes/fake-libcuda.c, which
 * loads real nvcc-built images and runs tests/cuda/kernels.cu's kernels on
 * the CPU).  The images are built by nvcc next to this program.
 *
 * What it pins: the batch check refuses every malformed batch before
 * anything runs; a VM can name only its own objects (made-up handles,
 * another VM's handles and device addresses, another guest context's
 * objects); copies stay inside the VM's allocations; the quota holds at
 * allocation and is what the device reports; truncated and inflated
 * images never reach the driver; a fault spoils only the faulting VM;
 * vm_release frees everything of a VM.
 *
 * Also: the session's handle table and allocation list on their own
 * (no CUDA), and the CPU backend's answer (no device).
 */
#include <dlfcn.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "backend.h"
#include "op_table.h"
#include "payload.h"
#include "remote/batch.h"
#include "remote/session.h"
#include "util.h"
#include "vgpu/rpc.h"

#define MAX_BATCH (8u << 20)

static const struct vgpu_backend_ops *ops;
static void *be;
static char dir[PATH_MAX];
static uint8_t *fatbin, *ptx;
static size_t fatbin_len, ptx_len;
static size_t (*fake_mem_used)(int dev);
static int (*fake_live)(void);
static bool on_fake; /* the stand-in is loaded, its counters readable */

/* ---------------------------------------------------------------------- */
/* building batches                                                        */
/* ---------------------------------------------------------------------- */

struct batch {
    uint8_t *buf;
    uint32_t len, n;
};

static void b_init(struct batch *b)
{
    b->buf = calloc(1, MAX_BATCH);
    assert_non_null(b->buf);
    b->len = 8;
    b->n = 0;
}

static void b_call(struct batch *b, uint32_t fn, const uint8_t *fixed,
                   uint32_t flen, const void *tail, uint32_t tlen)
{
    uint32_t arg = flen + tlen;

    vgpu_put_le32(b->buf + b->len, fn);
    vgpu_put_le32(b->buf + b->len + 4, arg);
    if (flen) {
        memcpy(b->buf + b->len + 8, fixed, flen);
    }
    if (tlen) {
        memcpy(b->buf + b->len + 8 + flen, tail, tlen);
    }
    b->len += 8 + (uint32_t)VGPU_RPC_PAD(arg);
    b->n++;
}

/* Fixed arguments, as u64/u32 fields: "qqi" = u64, u64, u32. */
static uint32_t pack(uint8_t *out, const char *fmt, ...)
{
    va_list ap;
    uint32_t n = 0;

    va_start(ap, fmt);
    for (const char *f = fmt; *f; f++) {
        if (*f == 'q') {
            vgpu_put_le64(out + n, va_arg(ap, uint64_t));
            n += 8;
        } else {
            vgpu_put_le32(out + n, va_arg(ap, uint32_t));
            n += 4;
        }
    }
    va_end(ap);
    return n;
}

#define CALL(b, fn, tail, tlen, fmt, ...)                                      \
    do {                                                                       \
        uint8_t fx_[VGPU_RPC_MAX_FIXED];                                       \
        uint32_t fl_ = pack(fx_, fmt, __VA_ARGS__);                            \
        b_call(b, fn, fx_, fl_, tail, tlen);                                   \
    } while (0)

/* The answer of one call. */
struct ret {
    uint32_t fn, status, len;
    const uint8_t *res;
};

struct answer {
    struct vgpu_backend_job job;
    bool done;
    uint8_t *resp;
    uint32_t count;
    struct ret ret[64];
};

static void on_done(struct vgpu_backend_job *job)
{
    ((struct answer *)job->owner)->done = true;
}

static void wait_done(struct answer *a)
{
    uint64_t end = now_ms() + 60000;

    while (!a->done && now_ms() < end) {
        struct pollfd p = {.fd = ops->fd(be), .events = POLLIN};

        if (poll(&p, 1, 1000) == 1) {
            ops->poll(be);
        }
    }
    assert_true(a->done);
}

/* Send b as domid's batch, with quota; fills a.  Returns the request's
 * own error (VGPU_ERR_*). */
static uint32_t send_batch(struct batch *b, uint32_t domid, uint64_t quota,
                           struct answer *a)
{
    static struct iovec iov;
    uint32_t err;
    uint32_t off = 8;

    memset(a, 0, sizeof(*a));
    vgpu_put_le32(b->buf, VGPU_OP_CUDA);
    vgpu_put_le32(b->buf + 4, b->n);
    iov.iov_base = b->buf;
    iov.iov_len = b->len;
    err = payload_parse_iov_limit(&iov, 1, MAX_BATCH, &a->job.req);
    if (err) {
        return err;
    }
    a->resp = calloc(1, payload_resp_size(&a->job.req));
    assert_non_null(a->resp);
    a->job.resp.iov_base = a->resp;
    a->job.resp.iov_len = payload_resp_size(&a->job.req);
    a->job.domid = domid;
    a->job.gpu = 0;
    a->job.quota_bytes = quota;
    a->job.done = on_done;
    a->job.owner = a;
    assert_true(ops->gpu_idle(be, 0));
    ops->submit(be, &a->job);
    wait_done(a);
    if (a->job.error) {
        return a->job.error;
    }
    assert_true(a->job.resp_len >= 8);
    a->count = vgpu_get_le32(a->resp + 4);
    assert_true(a->count <= 64);
    for (uint32_t i = 0; i < a->count; i++) {
        a->ret[i].fn = vgpu_get_le32(a->resp + off);
        a->ret[i].status = vgpu_get_le32(a->resp + off + 4);
        a->ret[i].len = vgpu_get_le32(a->resp + off + 8);
        a->ret[i].res = a->resp + off + 16;
        off += 16 + (uint32_t)VGPU_RPC_PAD(a->ret[i].len);
        assert_true(off <= a->job.resp_len);
    }
    return VGPU_ERR_NONE;
}

static void answer_free(struct answer *a)
{
    free(a->resp);
    a->resp = NULL;
}

/* One call alone: its status, its result in res (up to cap bytes). */
static uint32_t one(uint32_t domid, uint64_t quota, uint32_t fn,
                    const uint8_t *fixed, uint32_t flen, const void *tail,
                    uint32_t tlen, void *res, uint32_t cap)
{
    struct batch b;
    struct answer a;
    uint32_t status;

    b_init(&b);
    b_call(&b, fn, fixed, flen, tail, tlen);
    assert_int_equal(send_batch(&b, domid, quota, &a), VGPU_ERR_NONE);
    assert_int_equal(a.count, 1);
    status = a.ret[0].status;
    if (res) {
        memcpy(res, a.ret[0].res, a.ret[0].len < cap ? a.ret[0].len : cap);
    }
    answer_free(&a);
    free(b.buf);
    return status;
}

#define ONE(dom, quota, fn, tail, tlen, res, cap, fmt, ...)                    \
    ({                                                                         \
        uint8_t fx_[VGPU_RPC_MAX_FIXED];                                       \
        uint32_t fl_ = pack(fx_, fmt, __VA_ARGS__);                            \
        one(dom, quota, fn, fx_, fl_, tail, tlen, res, cap);                   \
    })

static uint64_t get64(const uint8_t *p)
{
    return vgpu_get_le64(p);
}

static uint64_t new_ctx(uint32_t dom)
{
    uint8_t res[8];

    assert_int_equal(
        ONE(dom, 0, VGPU_RPC_CTX_CREATE, NULL, 0, res, 8, "iiq", 0u, 0u, 0ull),
        VGPU_CU_SUCCESS);
    return get64(res);
}

static uint64_t alloc(uint32_t dom, uint64_t ctx, uint64_t bytes,
                      uint64_t quota, uint32_t *status)
{
    uint8_t res[8] = {0};

    *status =
        ONE(dom, quota, VGPU_RPC_MEM_ALLOC, NULL, 0, res, 8, "qq", ctx, bytes);
    return get64(res);
}

static uint64_t load(uint32_t dom, uint64_t ctx, const void *img, uint32_t len,
                     uint32_t *status)
{
    uint8_t res[8] = {0};

    *status = ONE(dom, 0, VGPU_RPC_MODULE_LOAD, img, len, res, 8, "qq", ctx,
                  (uint64_t)len);
    return get64(res);
}

/* ---------------------------------------------------------------------- */
/* the batch check, without a backend                                      */
/* ---------------------------------------------------------------------- */

static uint32_t check_bytes(uint8_t *buf, uint32_t len, uint64_t max)
{
    struct iovec iov = {buf, len};
    struct vgpu_request req;

    return payload_parse_iov_limit(&iov, 1, max, &req);
}

static void test_batch_check(void **state)
{
    struct batch b;
    uint8_t fx[64], name[300];
    uint32_t fl;

    (void)state;
    /* Every call's fixed part fits the parser's buffer for it; numbers
     * past the last are unknown. */
    for (uint32_t fn = 0; fn < VGPU_RPC_FN_COUNT; fn++) {
        assert_true(rpc_fixed_args(fn) <= (int)VGPU_RPC_MAX_FIXED);
    }
    assert_int_equal(rpc_fixed_args(0), -1);
    assert_int_equal(rpc_fixed_args(VGPU_RPC_FN_COUNT), -1);
    b_init(&b);
    /* A good batch passes. */
    fl = pack(fx, "qq", 1ull, 64ull);
    b_call(&b, VGPU_RPC_MEM_ALLOC, fx, fl, NULL, 0);
    vgpu_put_le32(b.buf, VGPU_OP_CUDA);
    vgpu_put_le32(b.buf + 4, 1);
    assert_int_equal(check_bytes(b.buf, b.len, MAX_BATCH), VGPU_ERR_NONE);
    /* Its count says more calls than there are, or fewer. */
    vgpu_put_le32(b.buf + 4, 2);
    assert_int_equal(check_bytes(b.buf, b.len, MAX_BATCH),
                     VGPU_ERR_BAD_REQUEST);
    vgpu_put_le32(b.buf + 4, 0);
    assert_int_equal(check_bytes(b.buf, b.len, MAX_BATCH),
                     VGPU_ERR_BAD_REQUEST);
    vgpu_put_le32(b.buf + 4, 1);
    /* Bytes after the last call. */
    assert_int_equal(check_bytes(b.buf, b.len + 8, MAX_BATCH),
                     VGPU_ERR_BAD_REQUEST);
    /* An unknown function; 0; past the last. */
    vgpu_put_le32(b.buf + 8, 0);
    assert_int_equal(check_bytes(b.buf, b.len, MAX_BATCH),
                     VGPU_ERR_BAD_REQUEST);
    vgpu_put_le32(b.buf + 8, VGPU_RPC_FN_COUNT);
    assert_int_equal(check_bytes(b.buf, b.len, MAX_BATCH),
                     VGPU_ERR_BAD_REQUEST);
    vgpu_put_le32(b.buf + 8, VGPU_RPC_MEM_ALLOC);
    /* Arguments shorter than the call's, or longer. */
    vgpu_put_le32(b.buf + 12, 8);
    assert_int_equal(check_bytes(b.buf, b.len, MAX_BATCH),
                     VGPU_ERR_BAD_REQUEST);
    vgpu_put_le32(b.buf + 12, 0xfffffff0u);
    assert_int_equal(check_bytes(b.buf, b.len, MAX_BATCH),
                     VGPU_ERR_BAD_REQUEST);
    free(b.buf);

    /* A copy whose data is not as long as it says. */
    b_init(&b);
    fl = pack(fx, "qqqq", 1ull, 0ull, 0x1000ull, 100ull);
    b_call(&b, VGPU_RPC_MEMCPY_HTOD, fx, fl, name, 50);
    vgpu_put_le32(b.buf, VGPU_OP_CUDA);
    vgpu_put_le32(b.buf + 4, 1);
    assert_int_equal(check_bytes(b.buf, b.len, MAX_BATCH),
                     VGPU_ERR_BAD_REQUEST);
    free(b.buf);

    /* A copy out larger than the transport can answer. */
    b_init(&b);
    fl = pack(fx, "qqqq", 1ull, 0ull, 0x1000ull, 1ull << 40);
    b_call(&b, VGPU_RPC_MEMCPY_DTOH, fx, fl, NULL, 0);
    vgpu_put_le32(b.buf, VGPU_OP_CUDA);
    vgpu_put_le32(b.buf + 4, 1);
    assert_int_equal(check_bytes(b.buf, b.len, MAX_BATCH),
                     VGPU_ERR_BAD_REQUEST);
    free(b.buf);

    /* A name without its NUL, one with an inner NUL, one too long. */
    memset(name, 'k', sizeof(name));
    for (int k = 0; k < 3; k++) {
        uint32_t tlen = k == 2 ? VGPU_RPC_NAME_MAX + 1 : 8;

        b_init(&b);
        name[7] = k == 0 ? 'k' : 0;
        name[3] = k == 1 ? 0 : 'k';
        name[tlen - 1] = k == 0 ? 'k' : 0;
        fl = pack(fx, "qq", 1ull, 2ull);
        b_call(&b, VGPU_RPC_MODULE_GET_FUNCTION, fx, fl, name, tlen);
        vgpu_put_le32(b.buf, VGPU_OP_CUDA);
        vgpu_put_le32(b.buf + 4, 1);
        assert_int_equal(check_bytes(b.buf, b.len, MAX_BATCH),
                         VGPU_ERR_BAD_REQUEST);
        free(b.buf);
    }

    /* Padding that is not zero. */
    b_init(&b);
    fl = pack(fx, "i", 0u);
    b_call(&b, VGPU_RPC_DEVICE_PROPS, fx, fl, NULL, 0);
    vgpu_put_le32(b.buf, VGPU_OP_CUDA);
    vgpu_put_le32(b.buf + 4, 1);
    assert_int_equal(check_bytes(b.buf, b.len, MAX_BATCH), VGPU_ERR_NONE);
    b.buf[8 + 8 + 4] = 1;
    assert_int_equal(check_bytes(b.buf, b.len, MAX_BATCH),
                     VGPU_ERR_BAD_REQUEST);
    free(b.buf);

    /* A launch whose parameter block is over the limit. */
    b_init(&b);
    fl = pack(fx, "qqiiiiiiiiq", 1ull, 2ull, 1u, 1u, 1u, 1u, 1u, 1u, 0u,
              VGPU_RPC_MAX_PARAM_BYTES + 4, 0ull);
    {
        uint8_t *big = calloc(1, VGPU_RPC_MAX_PARAM_BYTES + 4);

        b_call(&b, VGPU_RPC_LAUNCH, fx, fl, big, VGPU_RPC_MAX_PARAM_BYTES + 4);
        free(big);
    }
    vgpu_put_le32(b.buf, VGPU_OP_CUDA);
    vgpu_put_le32(b.buf + 4, 1);
    assert_int_equal(check_bytes(b.buf, b.len, MAX_BATCH),
                     VGPU_ERR_BAD_REQUEST);
    free(b.buf);

    /* The device properties' answer cannot fit a small transport. */
    b_init(&b);
    fl = pack(fx, "i", 0u);
    b_call(&b, VGPU_RPC_DEVICE_PROPS, fx, fl, NULL, 0);
    vgpu_put_le32(b.buf, VGPU_OP_CUDA);
    vgpu_put_le32(b.buf + 4, 1);
    assert_int_equal(check_bytes(b.buf, b.len, 512), VGPU_ERR_BAD_REQUEST);
    free(b.buf);
}

/* The session's tables, without CUDA. */
static void test_session_tables(void **state)
{
    struct rs_session *s = rs_session_new(), *t = rs_session_new();
    struct rs_object *o;
    uint64_t c1, m1, m2, c2, bytes;

    (void)state;
    assert_non_null(s);
    c1 = rs_add(s, RS_CTX, 0, NULL);
    m1 = rs_add(s, RS_MODULE, c1, &o);
    assert_non_null(rs_get(s, RS_CTX, c1));
    assert_non_null(rs_get(s, RS_MODULE, m1));
    /* Of another kind, made up, or of another session. */
    assert_null(rs_get(s, RS_STREAM, m1));
    assert_null(rs_get(s, RS_MODULE, m1 + 1));
    assert_null(rs_get(s, RS_MODULE, m1 ^ (1ull << 50)));
    assert_null(rs_get(t, RS_MODULE, m1));
    assert_null(rs_get(s, RS_MODULE, 0));
    /* A freed slot's handle stays dead when the slot is reused. */
    rs_remove(s, m1);
    assert_null(rs_get(s, RS_MODULE, m1));
    m2 = rs_add(s, RS_MODULE, c1, NULL);
    assert_int_not_equal(m1, m2);
    assert_null(rs_get(s, RS_MODULE, m1));
    assert_non_null(rs_get(s, RS_MODULE, m2));
    assert_int_equal(rs_count(s, RS_MODULE), 1);

    /* Allocations: inside, across, outside; overlaps refused. */
    c2 = rs_add(s, RS_CTX, 0, NULL);
    assert_int_equal(rs_alloc_add(s, c1, 0, 0x1000, 0x100, true), 0);
    assert_int_equal(rs_alloc_add(s, c1, 0, 0x2000, 0x100, true), 0);
    assert_int_equal(rs_alloc_add(s, c1, 0, 0x10f0, 0x20, true), -1);
    assert_int_equal(rs_alloc_add(s, c1, 0, UINT64_MAX - 8, 0x20, true), -1);
    assert_true(rs_range_ok(s, 0x1000, 0x100));
    assert_true(rs_range_ok(s, 0x10ff, 1));
    assert_false(rs_range_ok(s, 0x10ff, 2));
    assert_false(rs_range_ok(s, 0x0fff, 2));
    assert_false(rs_range_ok(s, 0x1100, 1));
    assert_false(rs_range_ok(s, 0x1080, UINT64_MAX));
    assert_int_equal(rs_mem_used(s), 0x200);
    /* Freed only at its start and by its own context. */
    assert_int_equal(rs_alloc_remove(s, c1, 0x1010, &bytes), -1);
    assert_int_equal(rs_alloc_remove(s, c2, 0x1000, &bytes), -1);
    assert_int_equal(rs_alloc_remove(s, c1, 0x1000, &bytes), 0);
    assert_int_equal(bytes, 0x100);
    assert_int_equal(rs_mem_used(s), 0x100);
    rs_session_free(s);
    rs_session_free(t);
}

/* The CPU backend has no CUDA device, and says so in CUDA's terms. */
static void test_cpu_backend_answer(void **state)
{
    struct batch b;
    struct iovec iov;
    struct vgpu_request req;
    uint8_t fx[16], *resp;
    uint32_t fl;

    (void)state;
    b_init(&b);
    b_call(&b, VGPU_RPC_GET_VERSION, NULL, 0, NULL, 0);
    fl = pack(fx, "iiq", 0u, 0u, 0ull);
    b_call(&b, VGPU_RPC_CTX_CREATE, fx, fl, NULL, 0);
    b_call(&b, VGPU_RPC_CTX_CREATE, fx, fl, NULL, 0);
    vgpu_put_le32(b.buf, VGPU_OP_CUDA);
    vgpu_put_le32(b.buf + 4, b.n);
    iov.iov_base = b.buf;
    iov.iov_len = b.len;
    assert_int_equal(payload_parse_iov_limit(&iov, 1, MAX_BATCH, &req),
                     VGPU_ERR_NONE);
    resp = malloc(payload_resp_size(&req));
    assert_int_equal(req.op->cpu_run(&req, resp), VGPU_ERR_NONE);
    assert_int_equal(vgpu_get_le32(resp + 4), 2); /* ran up to the failure */
    assert_int_equal(vgpu_get_le32(resp + 8 + 4), VGPU_CU_SUCCESS);
    assert_int_equal(vgpu_get_le32(resp + 8 + 16 + 8), 0); /* no device */
    assert_int_equal(vgpu_get_le32(resp + 8 + 32 + 4), VGPU_CU_ERROR_NO_DEVICE);
    free(resp);
    free(b.buf);
}

/* ---------------------------------------------------------------------- */
/* against the stand-in driver                                             */
/* ---------------------------------------------------------------------- */

static void test_vector_add_remoted(void **state)
{
    enum { N = 1000 };
    uint64_t ctx = new_ctx(5), mod, fn, da, db, dc;
    float a[N], b[N], c[N];
    uint8_t res[VGPU_RPC_RES_GET_FUNCTION_MAX];
    uint32_t st;
    struct batch bt;
    struct answer ans;
    uint8_t params[28];

    (void)state;
    mod = load(5, ctx, fatbin, (uint32_t)fatbin_len, &st);
    assert_int_equal(st, VGPU_CU_SUCCESS);
    assert_int_equal(ONE(5, 0, VGPU_RPC_MODULE_GET_FUNCTION,
                         "vgpu_test_vec_add", 18, res, sizeof(res), "qq", ctx,
                         mod),
                     VGPU_CU_SUCCESS);
    fn = get64(res);
    /* Its layout: three pointers and an int. */
    assert_int_equal(vgpu_get_le32(res + 8), 4);
    assert_int_equal(vgpu_get_le32(res + 12), 28);
    assert_int_equal(vgpu_get_le32(res + 16 + 8 * 3), 24);
    assert_int_equal(vgpu_get_le32(res + 20 + 8 * 3), 4);
    da = alloc(5, ctx, sizeof(a), 0, &st);
    db = alloc(5, ctx, sizeof(b), 0, &st);
    dc = alloc(5, ctx, sizeof(c), 0, &st);
    assert_int_equal(st, VGPU_CU_SUCCESS);
    for (int i = 0; i < N; i++) {
        a[i] = (float)i;
        b[i] = (float)(3 * i);
    }
    /* One batch: two copies in, the launch, the copy out. */
    b_init(&bt);
    CALL(&bt, VGPU_RPC_MEMCPY_HTOD, a, sizeof(a), "qqqq", ctx, 0ull, da,
         (uint64_t)sizeof(a));
    CALL(&bt, VGPU_RPC_MEMCPY_HTOD, b, sizeof(b), "qqqq", ctx, 0ull, db,
         (uint64_t)sizeof(b));
    vgpu_put_le64(params, da);
    vgpu_put_le64(params + 8, db);
    vgpu_put_le64(params + 16, dc);
    vgpu_put_le32(params + 24, N);
    CALL(&bt, VGPU_RPC_LAUNCH, params, 28, "qqiiiiiiiiq", ctx, fn, 4u, 1u, 1u,
         256u, 1u, 1u, 0u, 28u, 0ull);
    CALL(&bt, VGPU_RPC_MEMCPY_DTOH, NULL, 0, "qqqq", ctx, 0ull, dc,
         (uint64_t)sizeof(c));
    assert_int_equal(send_batch(&bt, 5, 0, &ans), VGPU_ERR_NONE);
    assert_int_equal(ans.count, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ans.ret[i].status, VGPU_CU_SUCCESS);
    }
    assert_int_equal(ans.ret[3].len, sizeof(c));
    memcpy(c, ans.ret[3].res, sizeof(c));
    for (int i = 0; i < N; i++) {
        assert_true(c[i] == (float)(4 * i));
    }
    answer_free(&ans);
    free(bt.buf);
    /* A PTX image loads as well, with the same layout. */
    mod = load(5, ctx, ptx, (uint32_t)ptx_len + 1, &st);
    assert_int_equal(st, VGPU_CU_SUCCESS);
    assert_int_equal(ONE(5, 0, VGPU_RPC_MODULE_GET_FUNCTION, "vgpu_test_matmul",
                         17, res, sizeof(res), "qq", ctx, mod),
                     VGPU_CU_SUCCESS);
    assert_int_equal(vgpu_get_le32(res + 8), 4);
    ops->vm_release(be, 5);
}

static void test_foreign_handles(void **state)
{
    uint64_t ctx_a = new_ctx(6), ctx_b, ctx_a2, mod_a, da, db;
    uint8_t buf[64] = {0}, res[VGPU_RPC_RES_GET_FUNCTION_MAX];
    uint32_t st;

    (void)state;
    mod_a = load(6, ctx_a, fatbin, (uint32_t)fatbin_len, &st);
    assert_int_equal(st, VGPU_CU_SUCCESS);
    da = alloc(6, ctx_a, 64, 0, &st);
    ctx_b = new_ctx(7);
    db = alloc(7, ctx_b, 64, 0, &st);
    assert_int_equal(st, VGPU_CU_SUCCESS);

    /* VM 7 names VM 6's module: its own table has no such object. */
    assert_int_equal(ONE(7, 0, VGPU_RPC_MODULE_GET_FUNCTION, "vgpu_test_poke",
                         15, res, sizeof(res), "qq", ctx_b, mod_a),
                     VGPU_CU_ERROR_INVALID_HANDLE);
    /* VM 7 copies from and to VM 6's device address. */
    assert_int_equal(ONE(7, 0, VGPU_RPC_MEMCPY_DTOH, NULL, 0, buf, 64, "qqqq",
                         ctx_b, 0ull, da, 64ull),
                     VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(ONE(7, 0, VGPU_RPC_MEMCPY_HTOD, buf, 64, NULL, 0, "qqqq",
                         ctx_b, 0ull, da, 64ull),
                     VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(
        ONE(7, 0, VGPU_RPC_MEM_FREE, NULL, 0, NULL, 0, "qq", ctx_b, da),
        VGPU_CU_ERROR_INVALID_VALUE);
    /* A made-up context, stream, event. */
    assert_int_equal(ONE(7, 0, VGPU_RPC_CTX_SYNC, NULL, 0, NULL, 0, "q",
                         0x0100000000000063ull),
                     VGPU_CU_ERROR_INVALID_CONTEXT);
    assert_int_equal(ONE(7, 0, VGPU_RPC_STREAM_SYNC, NULL, 0, NULL, 0, "qq",
                         ctx_b, 0x0400000000000001ull),
                     VGPU_CU_ERROR_INVALID_HANDLE);
    assert_int_equal(ONE(7, 0, VGPU_RPC_EVENT_RECORD, NULL, 0, NULL, 0, "qqq",
                         ctx_b, ctx_b, 0ull),
                     VGPU_CU_ERROR_INVALID_HANDLE);
    /* Another guest context of the same VM: its objects are not this
     * one's. */
    ctx_a2 = new_ctx(6);
    assert_int_equal(ONE(6, 0, VGPU_RPC_MODULE_GET_FUNCTION, "vgpu_test_poke",
                         15, res, sizeof(res), "qq", ctx_a2, mod_a),
                     VGPU_CU_ERROR_INVALID_HANDLE);
    assert_int_equal(
        ONE(6, 0, VGPU_RPC_MEM_FREE, NULL, 0, NULL, 0, "qq", ctx_a2, da),
        VGPU_CU_ERROR_INVALID_VALUE);
    /* Ranges: past the end, before the start, wrapping, memset too long,
     * a copy of zero bytes is fine. */
    assert_int_equal(ONE(6, 0, VGPU_RPC_MEMCPY_DTOH, NULL, 0, buf, 64, "qqqq",
                         ctx_a, 0ull, da + 32, 64ull),
                     VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(ONE(6, 0, VGPU_RPC_MEMCPY_DTOD, NULL, 0, NULL, 0, "qqqqq",
                         ctx_a, 0ull, da, da - 8, 16ull),
                     VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(ONE(6, 0, VGPU_RPC_MEMSET, NULL, 0, NULL, 0, "qqqiiq",
                         ctx_a, 0ull, da, 0u, 4u, 17ull),
                     VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(ONE(6, 0, VGPU_RPC_MEMSET, NULL, 0, NULL, 0, "qqqiiq",
                         ctx_a, 0ull, da, 0u, 3u, 1ull),
                     VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(ONE(6, 0, VGPU_RPC_MEMSET, NULL, 0, NULL, 0, "qqqiiq",
                         ctx_a, 0ull, da + 8, 0u, 4u, UINT64_MAX / 2),
                     VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(ONE(6, 0, VGPU_RPC_MEMCPY_DTOH, NULL, 0, buf, 64, "qqqq",
                         ctx_a, 0ull, da, 0ull),
                     VGPU_CU_SUCCESS);
    /* VM 7's own memory is untouched by all this, and still works. */
    assert_int_equal(ONE(7, 0, VGPU_RPC_MEMSET, NULL, 0, NULL, 0, "qqqiiq",
                         ctx_b, 0ull, db, 0x11u, 1u, 64ull),
                     VGPU_CU_SUCCESS);
    assert_int_equal(ONE(7, 0, VGPU_RPC_MEMCPY_DTOH, NULL, 0, buf, 64, "qqqq",
                         ctx_b, 0ull, db, 64ull),
                     VGPU_CU_SUCCESS);
    assert_int_equal(buf[0], 0x11);
    assert_int_equal(buf[63], 0x11);
    ops->vm_release(be, 6);
    ops->vm_release(be, 7);
}

static void test_quota_and_sizes(void **state)
{
    const uint64_t quota = 1 << 20;
    uint64_t ctx = new_ctx(8), d1;
    uint8_t res[VGPU_RPC_RES_DEVICE_PROPS];
    uint32_t st;

    (void)state;
    /* The device and memory info say the quota, not the GPU's size. */
    assert_int_equal(ONE(8, quota, VGPU_RPC_DEVICE_PROPS, NULL, 0, res,
                         sizeof(res), "i", 0u),
                     VGPU_CU_SUCCESS);
    assert_int_equal(get64(res + VGPU_RPC_DEV_NAME_LEN + 16), quota);
    if (on_fake) {
        assert_non_null(strstr((char *)res, "fake"));
    }
    assert_int_equal(ONE(8, quota, VGPU_RPC_DEVICE_PROPS, NULL, 0, res,
                         sizeof(res), "i", 1u),
                     VGPU_CU_ERROR_INVALID_DEVICE);
    d1 = alloc(8, ctx, 700 * 1024, quota, &st);
    assert_int_equal(st, VGPU_CU_SUCCESS);
    assert_int_equal(
        ONE(8, quota, VGPU_RPC_MEM_INFO, NULL, 0, res, 16, "q", ctx),
        VGPU_CU_SUCCESS);
    assert_int_equal(get64(res + 8), quota);
    assert_true(get64(res) <= quota - 700 * 1024);
    /* Over the quota, at once and by adding up. */
    alloc(8, ctx, 400 * 1024, quota, &st);
    assert_int_equal(st, VGPU_CU_ERROR_OUT_OF_MEMORY);
    alloc(8, ctx, UINT64_MAX, quota, &st);
    assert_int_equal(st, VGPU_CU_ERROR_OUT_OF_MEMORY);
    /* Without a quota, what the GPU has decides. */
    alloc(8, ctx, 1ull << 50, 0, &st);
    assert_int_equal(st, VGPU_CU_ERROR_OUT_OF_MEMORY);
    alloc(8, ctx, 0, quota, &st);
    assert_int_equal(st, VGPU_CU_ERROR_INVALID_VALUE);
    /* Freed memory counts no more. */
    assert_int_equal(
        ONE(8, quota, VGPU_RPC_MEM_FREE, NULL, 0, NULL, 0, "qq", ctx, d1),
        VGPU_CU_SUCCESS);
    alloc(8, ctx, 1000 * 1024, quota, &st);
    assert_int_equal(st, VGPU_CU_SUCCESS);
    assert_true(ops->vm_mem_used(be, 8) >= 1000 * 1024);
    ops->vm_release(be, 8);
    assert_int_equal(ops->vm_mem_used(be, 8), 0);
}

static void test_bad_images(void **state)
{
    uint64_t ctx = new_ctx(9);
    uint8_t *img = malloc(fatbin_len);
    uint32_t st;

    (void)state;
    memcpy(img, fatbin, fatbin_len);
    /* Cut short: the container says more than there is. */
    load(9, ctx, img, (uint32_t)fatbin_len / 2, &st);
    assert_int_equal(st, VGPU_CU_ERROR_INVALID_IMAGE);
    load(9, ctx, img, 15, &st);
    assert_int_equal(st, VGPU_CU_ERROR_INVALID_IMAGE);
    /* Its size inflated. */
    img[13] = 0x7f;
    load(9, ctx, img, (uint32_t)fatbin_len, &st);
    assert_int_equal(st, VGPU_CU_ERROR_INVALID_IMAGE);
    /* Not an image at all; PTX without its NUL. */
    load(9, ctx, "hello, driver", 13, &st);
    assert_int_equal(st, VGPU_CU_ERROR_INVALID_IMAGE);
    load(9, ctx, ptx, (uint32_t)ptx_len, &st);
    assert_int_equal(st, VGPU_CU_ERROR_INVALID_IMAGE);
    free(img);
    ops->vm_release(be, 9);
}

static void test_fault_isolated(void **state)
{
    uint64_t ctx_a = new_ctx(10), ctx_b = new_ctx(11), mod, fn, db;
    uint8_t res[VGPU_RPC_RES_GET_FUNCTION_MAX], params[12], buf[4];
    struct batch bt;
    struct answer ans;
    uint32_t st;

    (void)state;
    db = alloc(11, ctx_b, 64, 0, &st);
    assert_int_equal(ONE(11, 0, VGPU_RPC_MEMSET, NULL, 0, NULL, 0, "qqqiiq",
                         ctx_b, 0ull, db, 0x42u, 1u, 64ull),
                     VGPU_CU_SUCCESS);
    mod = load(10, ctx_a, fatbin, (uint32_t)fatbin_len, &st);
    assert_int_equal(ONE(10, 0, VGPU_RPC_MODULE_GET_FUNCTION, "vgpu_test_poke",
                         15, res, sizeof(res), "qq", ctx_a, mod),
                     VGPU_CU_SUCCESS);
    fn = get64(res);
    /* VM 10 launches poke at VM 11's memory: a fault, in VM 10 only. */
    vgpu_put_le64(params, db);
    vgpu_put_le32(params + 8, 7);
    b_init(&bt);
    CALL(&bt, VGPU_RPC_LAUNCH, params, 12, "qqiiiiiiiiq", ctx_a, fn, 1u, 1u, 1u,
         1u, 1u, 1u, 0u, 12u, 0ull);
    CALL(&bt, VGPU_RPC_CTX_SYNC, NULL, 0, "q", ctx_a);
    assert_int_equal(send_batch(&bt, 10, 0, &ans), VGPU_ERR_NONE);
    assert_int_equal(ans.ret[0].status, 700); /* CUDA_ERROR_ILLEGAL_ADDRESS */
    answer_free(&ans);
    free(bt.buf);
    /* A launch whose parameter block is not the kernel's size. */
    /* VM 10's context is gone with everything in it. */
    assert_int_equal(
        ONE(10, 0, VGPU_RPC_CTX_SYNC, NULL, 0, NULL, 0, "q", ctx_a),
        VGPU_CU_ERROR_INVALID_CONTEXT);
    /* VM 11 is served, its bytes as they were. */
    assert_int_equal(ONE(11, 0, VGPU_RPC_MEMCPY_DTOH, NULL, 0, buf, 4, "qqqq",
                         ctx_b, 0ull, db, 4ull),
                     VGPU_CU_SUCCESS);
    assert_int_equal(buf[0], 0x42);
    /* A new context of VM 10 works. */
    ctx_a = new_ctx(10);
    alloc(10, ctx_a, 64, 0, &st);
    assert_int_equal(st, VGPU_CU_SUCCESS);
    ops->vm_release(be, 10);
    ops->vm_release(be, 11);
}

static void test_launch_checks(void **state)
{
    uint64_t ctx = new_ctx(12), mod, fn, d;
    uint8_t res[VGPU_RPC_RES_GET_FUNCTION_MAX], params[16] = {0};
    uint32_t st;

    (void)state;
    mod = load(12, ctx, fatbin, (uint32_t)fatbin_len, &st);
    assert_int_equal(ONE(12, 0, VGPU_RPC_MODULE_GET_FUNCTION, "vgpu_test_poke",
                         15, res, sizeof(res), "qq", ctx, mod),
                     VGPU_CU_SUCCESS);
    fn = get64(res);
    d = alloc(12, ctx, 64, 0, &st);
    vgpu_put_le64(params, d);
    /* A block shorter or longer than the kernel's layout (12 bytes). */
    assert_int_equal(ONE(12, 0, VGPU_RPC_LAUNCH, params, 8, NULL, 0,
                         "qqiiiiiiiiq", ctx, fn, 1u, 1u, 1u, 1u, 1u, 1u, 0u, 8u,
                         0ull),
                     VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(ONE(12, 0, VGPU_RPC_LAUNCH, params, 16, NULL, 0,
                         "qqiiiiiiiiq", ctx, fn, 1u, 1u, 1u, 1u, 1u, 1u, 0u,
                         16u, 0ull),
                     VGPU_CU_ERROR_INVALID_VALUE);
    /* A grid or block of zero. */
    assert_int_equal(ONE(12, 0, VGPU_RPC_LAUNCH, params, 12, NULL, 0,
                         "qqiiiiiiiiq", ctx, fn, 0u, 1u, 1u, 1u, 1u, 1u, 0u,
                         12u, 0ull),
                     VGPU_CU_ERROR_INVALID_VALUE);
    /* A module handle given as a function. */
    assert_int_equal(ONE(12, 0, VGPU_RPC_LAUNCH, params, 12, NULL, 0,
                         "qqiiiiiiiiq", ctx, mod, 1u, 1u, 1u, 1u, 1u, 1u, 0u,
                         12u, 0ull),
                     VGPU_CU_ERROR_INVALID_HANDLE);
    /* A good one. */
    assert_int_equal(ONE(12, 0, VGPU_RPC_LAUNCH, params, 12, NULL, 0,
                         "qqiiiiiiiiq", ctx, fn, 1u, 1u, 1u, 1u, 1u, 1u, 0u,
                         12u, 0ull),
                     VGPU_CU_SUCCESS);
    /* After unload, its functions are gone. */
    assert_int_equal(
        ONE(12, 0, VGPU_RPC_MODULE_UNLOAD, NULL, 0, NULL, 0, "qq", ctx, mod),
        VGPU_CU_SUCCESS);
    assert_int_equal(ONE(12, 0, VGPU_RPC_LAUNCH, params, 12, NULL, 0,
                         "qqiiiiiiiiq", ctx, fn, 1u, 1u, 1u, 1u, 1u, 1u, 0u,
                         12u, 0ull),
                     VGPU_CU_ERROR_INVALID_HANDLE);
    ops->vm_release(be, 12);
}

/* What libraries ask of a kernel (cuBLAS): attributes, occupancy,
 * launches with cluster and cooperative attributes; each value checked
 * before the driver sees it, each handle the VM's own. */
static void test_func_attrs(void **state)
{
    const uint32_t L[] = {1u, 1u, 1u, 1u, 1u, 1u, 0u, 12u};
    uint64_t ctx = new_ctx(13), other = new_ctx(14), mod, fn, d;
    uint8_t res[VGPU_RPC_RES_GET_FUNCTION_MAX], params[16] = {0};
    uint32_t st, v;

    (void)state;
    mod = load(13, ctx, fatbin, (uint32_t)fatbin_len, &st);
    assert_int_equal(ONE(13, 0, VGPU_RPC_MODULE_GET_FUNCTION, "vgpu_test_poke",
                         15, res, sizeof(res), "qq", ctx, mod),
                     VGPU_CU_SUCCESS);
    fn = get64(res);
    d = alloc(13, ctx, 64, 0, &st);
    vgpu_put_le64(params, d);

    /* Attributes: the driver's answer, settable ones only set. */
    assert_int_equal(ONE(13, 0, VGPU_RPC_FUNC_GET_ATTR, NULL, 0, res, 4, "qqii",
                         ctx, fn, 0u, 0u),
                     VGPU_CU_SUCCESS);
    assert_true(vgpu_get_le32(res) > 0); /* MAX_THREADS_PER_BLOCK */
    assert_int_equal(ONE(13, 0, VGPU_RPC_FUNC_SET_ATTR, NULL, 0, NULL, 0,
                         "qqii", ctx, fn, 8u, 65536u),
                     VGPU_CU_SUCCESS);
    assert_int_equal(ONE(13, 0, VGPU_RPC_FUNC_GET_ATTR, NULL, 0, res, 4, "qqii",
                         ctx, fn, 8u, 0u),
                     VGPU_CU_SUCCESS);
    assert_int_equal(vgpu_get_le32(res), 65536);
    for (v = 0; v < 16; v++) {
        if (!VGPU_RPC_FUNC_ATTR_SETTABLE(v)) {
            assert_int_equal(ONE(13, 0, VGPU_RPC_FUNC_SET_ATTR, NULL, 0, NULL,
                                 0, "qqii", ctx, fn, v, 1u),
                             VGPU_CU_ERROR_INVALID_VALUE);
        }
    }
    assert_int_equal(ONE(13, 0, VGPU_RPC_FUNC_GET_ATTR, NULL, 0, res, 4, "qqii",
                         ctx, fn, 16u, 0u),
                     VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(ONE(13, 0, VGPU_RPC_FUNC_GET_ATTR, NULL, 0, res, 4, "qqii",
                         ctx, fn, 0xffffffffu, 0u),
                     VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(ONE(13, 0, VGPU_RPC_FUNC_GET_ATTR, NULL, 0, res, 4, "qqii",
                         ctx, fn, 0u, 1u),
                     VGPU_CU_ERROR_INVALID_VALUE);
    /* Another VM's function, a module as a function, another context. */
    assert_int_equal(ONE(14, 0, VGPU_RPC_FUNC_GET_ATTR, NULL, 0, res, 4, "qqii",
                         other, fn, 0u, 0u),
                     VGPU_CU_ERROR_INVALID_HANDLE);
    assert_int_equal(ONE(13, 0, VGPU_RPC_FUNC_SET_ATTR, NULL, 0, NULL, 0,
                         "qqii", ctx, mod, 8u, 1024u),
                     VGPU_CU_ERROR_INVALID_HANDLE);
    assert_int_equal(ONE(14, 0, VGPU_RPC_OCCUPANCY, NULL, 0, res, 4, "qqiiq",
                         other, fn, 256u, 0u, 0ull),
                     VGPU_CU_ERROR_INVALID_HANDLE);

    /* Cache preference: CUfunc_cache's four values only. */
    assert_int_equal(ONE(13, 0, VGPU_RPC_FUNC_SET_CACHE, NULL, 0, NULL, 0,
                         "qqii", ctx, fn, 1u, 0u),
                     VGPU_CU_SUCCESS);
    assert_int_equal(ONE(13, 0, VGPU_RPC_FUNC_SET_CACHE, NULL, 0, NULL, 0,
                         "qqii", ctx, fn, 4u, 0u),
                     VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(ONE(13, 0, VGPU_RPC_FUNC_SET_CACHE, NULL, 0, NULL, 0,
                         "qqii", ctx, fn, 1u, 1u),
                     VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(ONE(14, 0, VGPU_RPC_FUNC_SET_CACHE, NULL, 0, NULL, 0,
                         "qqii", other, fn, 1u, 0u),
                     VGPU_CU_ERROR_INVALID_HANDLE);

    /* Occupancy: the driver's count; no block, bad flags, 8 GB of
     * shared memory refused first. */
    assert_int_equal(ONE(13, 0, VGPU_RPC_OCCUPANCY, NULL, 0, res, 4, "qqiiq",
                         ctx, fn, 256u, 0u, 0ull),
                     VGPU_CU_SUCCESS);
    assert_true(vgpu_get_le32(res) > 0);
    assert_int_equal(ONE(13, 0, VGPU_RPC_OCCUPANCY, NULL, 0, res, 4, "qqiiq",
                         ctx, fn, 0u, 0u, 0ull),
                     VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(ONE(13, 0, VGPU_RPC_OCCUPANCY, NULL, 0, res, 4, "qqiiq",
                         ctx, fn, 256u, 2u, 0ull),
                     VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(ONE(13, 0, VGPU_RPC_OCCUPANCY, NULL, 0, res, 4, "qqiiq",
                         ctx, fn, 256u, 0u, 8ull << 30),
                     VGPU_CU_ERROR_INVALID_VALUE);

#define LAUNCH_EX(cx, cy, cz, coop, pol, rsv)                                  \
    ONE(13, 0, VGPU_RPC_LAUNCH_EX, params, 12, NULL, 0, "qqiiiiiiiiqiiiiii",   \
        ctx, fn, L[0], L[1], L[2], L[3], L[4], L[5], L[6], L[7], 0ull,         \
        (uint32_t)(cx), (uint32_t)(cy), (uint32_t)(cz), (uint32_t)(coop),      \
        (uint32_t)(pol), (uint32_t)(rsv))
    if (on_fake) {
        /* A GPU without clusters (before sm_90) refuses one; the
         * stand-in is an sm_90. */
        assert_int_equal(LAUNCH_EX(1, 1, 1, 0, 0, 0), VGPU_CU_SUCCESS);
        assert_int_equal(LAUNCH_EX(0, 0, 0, 0, 1, 0), VGPU_CU_SUCCESS);
    }
    /* LAUNCH_EX names its function as LAUNCH does: a module is none. */
    assert_int_equal(ONE(13, 0, VGPU_RPC_LAUNCH_EX, params, 12, NULL, 0,
                         "qqiiiiiiiiqiiiiii", ctx, mod, L[0], L[1], L[2], L[3],
                         L[4], L[5], L[6], L[7], 0ull, 0u, 0u, 0u, 0u, 0u, 0u),
                     VGPU_CU_ERROR_INVALID_HANDLE);
    /* A cluster of two blocks for a grid of one: the driver says no. */
    assert_int_not_equal(LAUNCH_EX(2, 1, 1, 0, 0, 0), VGPU_CU_SUCCESS);
    /* Values no launch attribute has: refused before the driver. */
    assert_int_equal(LAUNCH_EX(1, 0, 1, 0, 0, 0), VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(LAUNCH_EX(0, 0, 0, 2, 0, 0), VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(LAUNCH_EX(0, 0, 0, 0, 3, 0), VGPU_CU_ERROR_INVALID_VALUE);
    assert_int_equal(LAUNCH_EX(0, 0, 0, 0, 0, 7), VGPU_CU_ERROR_INVALID_VALUE);
#undef LAUNCH_EX
    /* LAUNCH_EX's parameter block is checked as LAUNCH's: a tail that is
     * not the length it names is a malformed batch. */
    {
        struct batch b;
        struct answer a;

        b_init(&b);
        CALL(&b, VGPU_RPC_LAUNCH_EX, params, 8, "qqiiiiiiiiqiiiiii", ctx, fn,
             L[0], L[1], L[2], L[3], L[4], L[5], L[6], 12u, 0ull, 0u, 0u, 0u,
             0u, 0u, 0u);
        assert_int_equal(send_batch(&b, 13, 0, &a), VGPU_ERR_BAD_REQUEST);
        free(b.buf);
    }
    ops->vm_release(be, 13);
    ops->vm_release(be, 14);
}

/* A guest process's session ends (its device file was released): its
 * contexts go with everything in them; another process's stay. */
static void test_session_end(void **state)
{
    uint8_t res[8];
    uint64_t dead, alive, d1, d2;
    uint32_t st;

    (void)state;
    assert_int_equal(ONE(14, 0, VGPU_RPC_CTX_CREATE, NULL, 0, res, 8, "iiq", 0u,
                         0u, 0x1111ull),
                     VGPU_CU_SUCCESS);
    dead = get64(res);
    assert_int_equal(ONE(14, 0, VGPU_RPC_CTX_CREATE, NULL, 0, res, 8, "iiq", 0u,
                         0u, 0x2222ull),
                     VGPU_CU_SUCCESS);
    alive = get64(res);
    d1 = alloc(14, dead, 1 << 20, 0, &st);
    assert_int_equal(st, VGPU_CU_SUCCESS);
    d2 = alloc(14, alive, 4096, 0, &st);
    assert_int_equal(st, VGPU_CU_SUCCESS);
    (void)d1;
    assert_true(ops->vm_mem_used(be, 14) >= (1 << 20) + 4096);
    /* A session nobody used ends nothing. */
    assert_int_equal(
        ONE(14, 0, VGPU_RPC_SESSION_END, NULL, 0, NULL, 0, "q", 0x9999ull),
        VGPU_CU_SUCCESS);
    assert_int_equal(ONE(14, 0, VGPU_RPC_CTX_SYNC, NULL, 0, NULL, 0, "q", dead),
                     VGPU_CU_SUCCESS);
    assert_int_equal(
        ONE(14, 0, VGPU_RPC_SESSION_END, NULL, 0, NULL, 0, "q", 0x1111ull),
        VGPU_CU_SUCCESS);
    assert_int_equal(ONE(14, 0, VGPU_RPC_CTX_SYNC, NULL, 0, NULL, 0, "q", dead),
                     VGPU_CU_ERROR_INVALID_CONTEXT);
    assert_true(ops->vm_mem_used(be, 14) < (1 << 20));
    assert_int_equal(ONE(14, 0, VGPU_RPC_MEMSET, NULL, 0, NULL, 0, "qqqiiq",
                         alive, 0ull, d2, 1u, 1u, 4096ull),
                     VGPU_CU_SUCCESS);
    ops->vm_release(be, 14);
}

/* Everything of a VM goes with vm_release: memory, contexts. */
static void test_release_frees_all(void **state)
{
    size_t before;
    int live;
    uint64_t ctx;
    uint32_t st;

    (void)state;
    if (!on_fake) {
        skip(); /* the real driver has no such counters */
    }
    before = fake_mem_used(0);
    live = fake_live();
    ctx = new_ctx(13);
    for (int i = 0; i < 20; i++) {
        alloc(13, ctx, 4096, 0, &st);
        assert_int_equal(st, VGPU_CU_SUCCESS);
    }
    load(13, ctx, fatbin, (uint32_t)fatbin_len, &st);
    assert_true(fake_mem_used(0) >= before + 20 * 4096);
    ops->vm_release(be, 13);
    assert_int_equal(fake_mem_used(0), before);
    assert_int_equal(fake_live(), live);
}

static void *read_all(const char *name, size_t *len)
{
    char path[PATH_MAX + 64];
    FILE *f;
    uint8_t *buf;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_batch_check),
        cmocka_unit_test(test_session_tables),
        cmocka_unit_test(test_cpu_backend_answer),
    };
    const struct CMUnitTest remoted[] = {
        cmocka_unit_test(test_vector_add_remoted),
        cmocka_unit_test(test_foreign_handles),
        cmocka_unit_test(test_quota_and_sizes),
        cmocka_unit_test(test_bad_images),
        cmocka_unit_test(test_fault_isolated),
        cmocka_unit_test(test_launch_checks),
        cmocka_unit_test(test_func_attrs),
        cmocka_unit_test(test_session_end),
        cmocka_unit_test(test_release_frees_all),
    };
    struct vgpu_backend_config cfg = {.cpu_gpus = 1};
    char lib[PATH_MAX + 64];
    const char *why = NULL;
    char *real_lib =
        getenv("VGPU_LIBCUDA") ? strdup(getenv("VGPU_LIBCUDA")) : NULL;
    ssize_t n;
    void *h;
    int failures;

    setvbuf(stdout, NULL, _IOLBF, 0);
    failures = cmocka_run_group_tests_name("rpc-batches", pure, NULL, NULL);
    ops = vgpu_backend_cuda;
    if (!ops) {
        printf("SKIP: the remoted part: mediator built without the CUDA "
               "backend (no nvcc)\n");
        return failures ? 1 : 77;
    }
    n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
    assert_true(n > 0);
    dir[n] = 0;
    *strrchr(dir, '/') = 0;
    snprintf(lib, sizeof(lib), "%s/fake-cuda/libcuda-fake.so", dir);
    fatbin = read_all("guest-cuda/kernels.fatbin", &fatbin_len);
    ptx = read_all("guest-cuda/kernels.ptx", &ptx_len);
    if (!fatbin || !ptx) {
        printf("FAILED: no guest images in %s/guest-cuda (not built?)\n", dir);
        return 1;
    }
    setenv("VGPU_LIBCUDA", lib, 1);
    h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        printf("FAILED: cannot load %s: %s\n", lib, dlerror());
        return 1;
    }
    *(void **)&fake_mem_used = dlsym(h, "fake_cuda_mem_used");
    *(void **)&fake_live = dlsym(h, "fake_cuda_contexts_live");
    if (ops->open(&be, &cfg, &why)) {
        printf("FAILED: the CUDA backend on the stand-in: %s\n", why);
        return 1;
    }
    on_fake = true;
    printf("remoted calls against the stand-in driver %s\n", lib);
    failures += cmocka_run_group_tests_name("rpc-remoted", remoted, NULL, NULL);
    ops->close(be);
    on_fake = false;

    /* The same against the real driver, where there is one (make
     * gpu-check); here it says why not and the stand-in's run stands. */
    if (real_lib) {
        setenv("VGPU_LIBCUDA", real_lib, 1);
    } else {
        unsetenv("VGPU_LIBCUDA");
    }
    if (ops->open(&be, &cfg, &why)) {
        printf("real driver: cannot run here: %s\n", why);
    } else {
        struct vgpu_gpu_info info;

        ops->gpu_info(be, 0, &info);
        printf("remoted calls against the real driver: GPU 0 is %s\n",
               info.name);
        failures += cmocka_run_group_tests_name("rpc-remoted-real-gpu", remoted,
                                                NULL, NULL);
        ops->close(be);
    }
    free(real_lib);
    free(fatbin);
    free(ptx);
    return failures ? 1 : 0;
}
