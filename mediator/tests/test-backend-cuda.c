/*
 * test-backend-cuda.c - tests of the CUDA backend (backend_cuda.c).
 *
 * Three stages, in this order:
 *
 *  1. always (when the backend is built): loading libcuda fails cleanly:
 *     VGPU_LIBCUDA naming a missing file, or a library without the driver
 *     API, makes open() fail with a why that says so;
 *  2. always (when the backend is built): the whole suite against the
 *     stand-in driver fake-cuda/libcuda-fake.so built next to this program
 *     (the test double tests/fakes/fake-libcuda.c: kernels on the CPU,
 *     strict checks of contexts and device pointers), plus the failures
 *     only a fake can cause (no device, cuInit error, image refused, out of
 *     memory, launch failure, two GPUs);
 *  3. the same suite against the real libcuda.so.1 and GPU.  Where it
 *     cannot run, the program says "SKIP: CUDA backend cannot run here:
 *     <why>" and exits 77 (unless stage 1 or 2 failed: then 1).
 *
 * A mediator built without the CUDA backend (no nvcc) skips at once.
 */
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
#include <dlfcn.h>
#include <cmocka.h>

#include "backend.h"
#include "payload.h"
#include "util.h"
#include "wire.h"

static const struct vgpu_backend_ops *ops;
static void *be;     /* the backend the suite runs against */
static bool on_fake; /* stage 2: the stand-in driver is loaded */
static char fake_lib[PATH_MAX];
static int (*fake_live)(void);
static int (*fake_created)(void);
static int (*fake_pinned_live)(void);
static int (*fake_pinned_leaked)(void);
static long (*fake_copies_pinned)(void);
static long (*fake_copies_pageable)(void);

/* ---------------------------------------------------------------------- */
/* helpers                                                                 */
/* ---------------------------------------------------------------------- */

struct waiter {
    struct vgpu_backend_job job;
    bool done;
    int calls;
    uint8_t payload[VGPU_BUF_SIZE]; /* the request's bytes (job.req) */
    uint8_t resp[VGPU_BUF_SIZE];    /* job.resp: the op's size of it */
};

static void on_done(struct vgpu_backend_job *job)
{
    struct waiter *w = job->owner;

    w->done = true;
    w->calls++;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* Fill w->job from a request payload (validated here). */
static void prepare(struct waiter *w, uint32_t domid, unsigned gpu,
                    const uint8_t *buf, uint32_t len)
{
    memset(w, 0, sizeof(*w));
    memcpy(w->payload, buf, len);
    assert_int_equal(payload_parse_request(w->payload, len, &w->job.req),
                     VGPU_ERR_NONE);
    /* Exactly the op's response size: a backend writes no more. */
    w->job.resp.iov_base = w->resp;
    w->job.resp.iov_len = payload_resp_size(&w->job.req);
    w->job.domid = domid;
    w->job.gpu = gpu;
    w->job.done = on_done;
    w->job.owner = w;
    w->job.error = 0xffffffffu;
}

/* Drive the fd/poll API until w is done; false on timeout. */
static bool wait_done(void *state, struct waiter *w, long timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;

    while (!w->done) {
        struct pollfd p = {.fd = ops->fd(state), .events = POLLIN};
        uint64_t now = now_ms();

        if (now >= end) {
            return false;
        }
        if (poll(&p, 1, (int)(end - now)) == 1) {
            ops->poll(state);
        }
    }
    return true;
}

static void run(void *state, struct waiter *w)
{
    assert_true(ops->gpu_idle(state, w->job.gpu));
    ops->submit(state, &w->job);
    assert_true(wait_done(state, w, 120000));
    assert_int_equal(w->calls, 1);
}

static uint32_t make_vector_add(uint8_t *buf, const int32_t *a,
                                const int32_t *b, uint32_t n)
{
    wire_put_le32(buf, VGPU_OP_VECTOR_ADD);
    wire_put_le32(buf + 4, n);
    for (uint32_t i = 0; i < n; i++) {
        wire_put_le32(buf + 8 + 4 * i, (uint32_t)a[i]);
        wire_put_le32(buf + 8 + 4 * (n + i), (uint32_t)b[i]);
    }
    return (uint32_t)VGPU_VECTOR_ADD_REQ_LEN(n);
}

static uint32_t make_sgemm(uint8_t *buf, uint32_t n, uint32_t seed)
{
    wire_put_le32(buf, VGPU_OP_SGEMM);
    wire_put_le32(buf + 4, n);
    wire_put_le32(buf + 8, seed);
    return (uint32_t)VGPU_SGEMM_REQ_LEN;
}

/* A finite binary32 with any exponent (subnormals included), as bits. */
static uint32_t rnd_float_bits(void)
{
    uint32_t exp = rnd() % 231; /* up to 2^103: products may overflow */

    return (rnd() & 0x80000000u) | (exp << 23) | (rnd() & 0x7fffffu);
}

static uint32_t make_saxpy(uint8_t *buf, uint32_t a_bits, uint32_t n)
{
    wire_put_le32(buf, VGPU_OP_SAXPY);
    wire_put_le32(buf + 4, n);
    wire_put_le32(buf + 8, a_bits);
    for (uint32_t i = 0; i < 2 * n; i++) {
        wire_put_le32(buf + 12 + 4 * i, rnd_float_bits());
    }
    return (uint32_t)VGPU_SAXPY_REQ_LEN(n);
}

/* The job's answer is byte for byte the CPU reference's. */
static void expect_as_cpu(const struct waiter *w)
{
    uint8_t ref[VGPU_BUF_SIZE];
    uint32_t ref_len = 0;

    assert_int_equal(backend_cpu_execute(&w->job.req, ref, &ref_len),
                     VGPU_ERR_NONE);
    assert_int_equal(w->job.error, VGPU_ERR_NONE);
    assert_int_equal(w->job.resp_len, ref_len);
    assert_memory_equal(w->resp, ref, ref_len);
}

static int64_t sgemm_result(const struct waiter *w)
{
    uint64_t lo = wire_get_le32(w->resp + 8);
    uint64_t hi = wire_get_le32(w->resp + 12);

    return (int64_t)(lo | hi << 32);
}

static void set_fake_env(const char *name, const char *value)
{
    if (value) {
        setenv(name, value, 1);
    } else {
        unsetenv(name);
    }
}

static void clear_fake_env(void)
{
    static const char *const names[] = {
        "FAKE_CUDA_DEVICES",        "FAKE_CUDA_INIT_FAIL",
        "FAKE_CUDA_BAD_IMAGE",      "FAKE_CUDA_MEM_LIMIT",
        "FAKE_CUDA_FAIL_LAUNCH",    "FAKE_CUDA_SGEMM_DELAY_MS",
        "FAKE_CUDA_HOSTALLOC_FAIL",
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        unsetenv(names[i]);
    }
}

/* ---------------------------------------------------------------------- */
/* stage 1: loading the driver                                             */
/* ---------------------------------------------------------------------- */

static void test_missing_library(void **state)
{
    const char *path = "/nonexistent/vgpu-test/libcuda.so.1";
    struct vgpu_backend_config cfg = {.cpu_gpus = 1};
    const char *why = NULL;
    void *st = NULL;

    (void)state;
    setenv("VGPU_LIBCUDA", path, 1);
    assert_int_equal(ops->open(&st, &cfg, &why), -1);
    assert_non_null(why);
    printf("  why: %s\n", why);
    assert_non_null(strstr(why, path));
    assert_non_null(strstr(why, "not found"));
    unsetenv("VGPU_LIBCUDA");
}

static void test_library_without_driver_api(void **state)
{
    struct vgpu_backend_config cfg = {.cpu_gpus = 1};
    const char *why = NULL;
    void *st = NULL;

    (void)state;
    setenv("VGPU_LIBCUDA", "libm.so.6", 1);
    assert_int_equal(ops->open(&st, &cfg, &why), -1);
    printf("  why: %s\n", why);
    assert_non_null(strstr(why, "libm.so.6 lacks cuInit"));
    unsetenv("VGPU_LIBCUDA");
}

/* ---------------------------------------------------------------------- */
/* the suite (stages 2 and 3)                                              */
/* ---------------------------------------------------------------------- */

static int suite_setup(void **state)
{
    struct vgpu_backend_config cfg = {.cpu_gpus = 1};
    const char *why = NULL;

    (void)state;
    if (ops->open(&be, &cfg, &why)) {
        fprintf(stderr, "open failed: %s\n", why);
        return -1;
    }
    return 0;
}

static int suite_teardown(void **state)
{
    (void)state;
    ops->close(be);
    be = NULL;
    return 0;
}

static void test_gpu_info(void **state)
{
    unsigned n = ops->gpu_count(be);

    (void)state;
    assert_true(n >= 1 && n <= VGPU_BACKEND_MAX_GPUS);
    for (unsigned i = 0; i < n; i++) {
        struct vgpu_gpu_info info;

        ops->gpu_info(be, i, &info);
        printf("  GPU %u: %s, %s, %llu MiB\n", i, info.name, info.uuid,
               (unsigned long long)(info.mem_total >> 20));
        assert_true(info.name[0] != 0);
        assert_int_equal(strncmp(info.uuid, "GPU-", 4), 0);
        assert_int_equal(strlen(info.uuid), 40);
        assert_true(info.uuid[12] == '-' && info.uuid[17] == '-' &&
                    info.uuid[22] == '-' && info.uuid[27] == '-');
        assert_true(info.mem_total > 0);
        assert_true(ops->gpu_idle(be, i));
    }
    assert_false(ops->gpu_idle(be, n)); /* out of range */
}

static void test_vector_add_300(void **state)
{
    static struct waiter w;
    uint8_t buf[VGPU_BUF_SIZE];
    const int32_t a = 100, b = 200;

    (void)state;
    prepare(&w, 1, 0, buf, make_vector_add(buf, &a, &b, 1));
    run(be, &w);
    assert_int_equal(w.job.error, VGPU_ERR_NONE);
    assert_int_equal(w.job.resp_len, VGPU_VECTOR_ADD_RESP_LEN(1));
    assert_int_equal(wire_get_le32(w.resp), VGPU_OP_VECTOR_ADD);
    assert_int_equal(wire_get_le32(w.resp + 4), 1);
    assert_int_equal((int32_t)wire_get_le32(w.resp + 8), 300);
    assert_true(ops->gpu_idle(be, 0));
    expect_as_cpu(&w);
}

static void test_vector_add_random(void **state)
{
    static const uint32_t counts[] = {1,  2,  31,  32,
                                      33, 64, 100, VGPU_VECTOR_ADD_MAX_COUNT};
    static struct waiter w;
    uint8_t buf[VGPU_BUF_SIZE];
    int32_t a[VGPU_VECTOR_ADD_MAX_COUNT], b[VGPU_VECTOR_ADD_MAX_COUNT];

    (void)state;
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        uint32_t n = counts[c];

        for (uint32_t i = 0; i < n; i++) {
            a[i] = (int32_t)rnd();
            b[i] = (int32_t)rnd();
        }
        a[0] = INT32_MAX; /* wraps */
        b[0] = 1 + (int32_t)(c % 3);
        prepare(&w, 2, (unsigned)(c % ops->gpu_count(be)), buf,
                make_vector_add(buf, a, b, n));
        run(be, &w);
        expect_as_cpu(&w);
    }
}

static void test_saxpy_random(void **state)
{
    static const uint32_t counts[] = {1, 7, 32, 100, VGPU_SAXPY_MAX_COUNT};
    static const uint32_t alphas[] = {0x40000000u /* 2 */, 0x3f8ccccdu,
                                      0xbf000001u, 0x00000001u, 0x7f000000u};
    static struct waiter w;
    uint8_t buf[VGPU_BUF_SIZE];

    (void)state;
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        for (size_t k = 0; k < sizeof(alphas) / sizeof(alphas[0]); k++) {
            prepare(&w, 3, 0, buf, make_saxpy(buf, alphas[k], counts[c]));
            run(be, &w);
            expect_as_cpu(&w);
        }
    }
}

static void test_sgemm(void **state)
{
    static const uint32_t sizes[] = {1, 2, 16, 17, 33, 64, 256, 1024};
    static const uint32_t seeds[] = {0, 1, 12345, 0xdeadbeefu};
    static struct waiter w;
    uint8_t buf[VGPU_BUF_SIZE];

    (void)state;
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        for (size_t k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++) {
            uint32_t n = sizes[s];

            if (on_fake && n == 1024 && k > 1) {
                continue; /* the fake multiplies on the CPU: keep it short */
            }
            prepare(&w, 4, 0, buf, make_sgemm(buf, n, seeds[k]));
            run(be, &w);
            assert_int_equal(w.job.error, VGPU_ERR_NONE);
            assert_int_equal(w.job.resp_len, VGPU_SGEMM_RESP_LEN);
            assert_int_equal(wire_get_le32(w.resp), VGPU_OP_SGEMM);
            assert_int_equal(wire_get_le32(w.resp + 4), n);
            assert_true(sgemm_result(&w) ==
                        vgpu_sgemm_checksum_ref(seeds[k], n));
            if (n <= 64) {
                expect_as_cpu(&w);
            }
        }
    }
}

/* Two VMs: a context each, memory accounted apart, released apart. */
static void test_two_vms(void **state)
{
    static struct waiter w;
    uint8_t buf[VGPU_BUF_SIZE];
    int live0 = on_fake ? fake_live() : 0;
    uint64_t m1, m2;

    (void)state;
    assert_int_equal(ops->vm_mem_used(be, 101), 0);
    prepare(&w, 101, 0, buf, make_sgemm(buf, 64, 7));
    run(be, &w);
    assert_true(sgemm_result(&w) == vgpu_sgemm_checksum_ref(7, 64));
    prepare(&w, 102, 0, buf, make_sgemm(buf, 32, 8));
    run(be, &w);
    assert_true(sgemm_result(&w) == vgpu_sgemm_checksum_ref(8, 32));
    m1 = ops->vm_mem_used(be, 101);
    m2 = ops->vm_mem_used(be, 102);
    printf("  dom101 holds %llu bytes, dom102 %llu\n", (unsigned long long)m1,
           (unsigned long long)m2);
    assert_true(m1 >= 3 * 64 * 64 * 4);
    assert_true(m2 >= 3 * 32 * 32 * 4 && m2 < m1);
    if (on_fake) {
        assert_int_equal(fake_live(), live0 + 2);
    }

    ops->vm_release(be, 101);
    assert_int_equal(ops->vm_mem_used(be, 101), 0);
    assert_int_equal(ops->vm_mem_used(be, 102), m2);
    if (on_fake) {
        assert_int_equal(fake_live(), live0 + 1);
    }
    /* The domain id comes back (a new VM): a fresh context serves it. */
    prepare(&w, 101, 0, buf, make_sgemm(buf, 16, 9));
    run(be, &w);
    assert_true(sgemm_result(&w) == vgpu_sgemm_checksum_ref(9, 16));
    assert_true(ops->vm_mem_used(be, 101) > 0);
    ops->vm_release(be, 101);
    ops->vm_release(be, 102);
    ops->vm_release(be, 999); /* never seen: nothing happens */
    assert_int_equal(ops->vm_mem_used(be, 101), 0);
    assert_int_equal(ops->vm_mem_used(be, 102), 0);
    if (on_fake) {
        assert_int_equal(fake_live(), live0);
    }
}

/*
 * A long SGEMM: submit returns at once, poll() neither blocks nor reports
 * it early, the fd wakes us when it is done; releasing the VM while it
 * runs waits for the job and then frees the memory.
 */
static void test_long_job(void **state)
{
    static struct waiter w, w2;
    uint8_t buf[VGPU_BUF_SIZE];
    const int32_t a = 1, b = 2;
    int live0 = on_fake ? fake_live() : 0;
    uint64_t t0, t1;

    (void)state;
    prepare(&w, 103, 0, buf, make_sgemm(buf, 1024, 3));
    t0 = now_ms();
    ops->submit(be, &w.job);
    t1 = now_ms();
    assert_true(t1 - t0 < 100);
    ops->vm_release(be, 103); /* the VM goes away while its job runs */
    t0 = now_ms();
    ops->poll(be); /* nothing to read yet, most likely: must not block */
    t1 = now_ms();
    printf("  submit+release+poll took %ld ms; job %s\n", (long)(t1 - t0),
           w.done ? "already done" : "still running");
    assert_true(t1 - t0 < 100);
    if (on_fake) {
        assert_false(w.done); /* the fake's SGEMM 1024 takes >= 300 ms */
        assert_false(ops->gpu_idle(be, 0));
    }
    if (ops->gpu_count(be) > 1) {
        /* Another GPU keeps serving meanwhile. */
        prepare(&w2, 104, 1, buf, make_vector_add(buf, &a, &b, 1));
        run(be, &w2);
        assert_int_equal((int32_t)wire_get_le32(w2.resp + 8), 3);
        if (on_fake) {
            assert_false(w.done);
        }
        ops->vm_release(be, 104);
    }
    assert_true(wait_done(be, &w, 120000));
    assert_int_equal(w.job.error, VGPU_ERR_NONE);
    assert_true(sgemm_result(&w) == vgpu_sgemm_checksum_ref(3, 1024));
    printf("  exec_ns %llu\n", (unsigned long long)w.job.exec_ns);
    assert_true(w.job.exec_ns > 0);
    assert_true(ops->gpu_idle(be, 0));
    assert_int_equal(ops->vm_mem_used(be, 103), 0);
    if (on_fake) {
        assert_int_equal(fake_live(), live0);
    }
    /* Nothing more to report. */
    {
        struct pollfd p = {.fd = ops->fd(be), .events = POLLIN};

        assert_int_equal(poll(&p, 1, 0), 0);
    }
}

/* Several GPUs run at once, each its own job. */
static void test_all_gpus(void **state)
{
    static struct waiter w[VGPU_BACKEND_MAX_GPUS];
    uint8_t buf[VGPU_BUF_SIZE];
    unsigned n = ops->gpu_count(be);

    (void)state;
    for (unsigned i = 0; i < n; i++) {
        prepare(&w[i], 110 + i, i, buf, make_sgemm(buf, 256, i));
        ops->submit(be, &w[i].job);
    }
    for (unsigned i = 0; i < n; i++) {
        assert_true(wait_done(be, &w[i], 120000));
        assert_true(sgemm_result(&w[i]) == vgpu_sgemm_checksum_ref(i, 256));
        ops->vm_release(be, 110 + i);
    }
}

static const struct CMUnitTest suite[] = {
    cmocka_unit_test(test_gpu_info),
    cmocka_unit_test(test_vector_add_300),
    cmocka_unit_test(test_vector_add_random),
    cmocka_unit_test(test_saxpy_random),
    cmocka_unit_test(test_sgemm),
    cmocka_unit_test(test_two_vms),
    cmocka_unit_test(test_long_job),
    cmocka_unit_test(test_all_gpus),
};

/* ---------------------------------------------------------------------- */
/* stage 2 only: what the stand-in driver can make go wrong                */
/* ---------------------------------------------------------------------- */

static const char *open_fails(void)
{
    struct vgpu_backend_config cfg = {.cpu_gpus = 1};
    const char *why = NULL;
    void *st = NULL;

    assert_int_equal(ops->open(&st, &cfg, &why), -1);
    assert_non_null(why);
    printf("  why: %s\n", why);
    return why;
}

static void *open_ok(void)
{
    struct vgpu_backend_config cfg = {.cpu_gpus = 1};
    const char *why = NULL;
    void *st = NULL;

    if (ops->open(&st, &cfg, &why)) {
        fail_msg("open: %s", why);
    }
    return st;
}

static void test_fake_no_device(void **state)
{
    (void)state;
    set_fake_env("FAKE_CUDA_DEVICES", "0");
    assert_non_null(strstr(open_fails(), "no CUDA device"));
    clear_fake_env();
}

static void test_fake_init_error(void **state)
{
    (void)state;
    set_fake_env("FAKE_CUDA_INIT_FAIL", "1");
    assert_non_null(
        strstr(open_fails(), "cuInit failed: CUDA_ERROR_INVALID_DEVICE"));
    clear_fake_env();
}

static void test_fake_image_refused(void **state)
{
    const char *why;

    (void)state;
    set_fake_env("FAKE_CUDA_BAD_IMAGE", "1");
    why = open_fails();
    assert_non_null(strstr(why, "GPU 0 (vgpu fake CUDA device 0, sm_90)"));
    assert_non_null(
        strstr(why, "cuModuleLoadDataEx failed: CUDA_ERROR_NO_BINARY_FOR_GPU"));
    assert_non_null(strstr(why, "fake JIT")); /* the JIT log is passed on */
    clear_fake_env();
}

/* Out of device memory: QUOTA_EXCEEDED, and the context stays usable. */
static void test_fake_out_of_memory(void **state)
{
    static struct waiter w;
    uint8_t buf[VGPU_BUF_SIZE];
    const int32_t a = 5, b = 6;
    void *st;
    int created;

    (void)state;
    set_fake_env("FAKE_CUDA_MEM_LIMIT", "65536");
    st = open_ok();
    prepare(&w, 7, 0, buf, make_vector_add(buf, &a, &b, 1));
    run(st, &w);
    created = fake_created();
    prepare(&w, 7, 0, buf, make_sgemm(buf, 256, 1)); /* 768 KiB */
    run(st, &w);
    assert_int_equal(w.job.error, VGPU_ERR_QUOTA_EXCEEDED);
    assert_int_equal(w.job.resp_len, 0);
    prepare(&w, 7, 0, buf, make_vector_add(buf, &a, &b, 1));
    run(st, &w);
    assert_int_equal(w.job.error, VGPU_ERR_NONE);
    assert_int_equal((int32_t)wire_get_le32(w.resp + 8), 11);
    assert_int_equal(fake_created(), created); /* same context */
    ops->close(st);
    clear_fake_env();
}

/* A launch failure: BACKEND, the context is dropped, the next job works. */
static void test_fake_launch_failure(void **state)
{
    static struct waiter w;
    uint8_t buf[VGPU_BUF_SIZE];
    const int32_t a = 5, b = 6;
    int live0 = fake_live(), created;
    void *st;

    (void)state;
    set_fake_env("FAKE_CUDA_FAIL_LAUNCH", "2");
    st = open_ok();
    prepare(&w, 8, 0, buf, make_vector_add(buf, &a, &b, 1));
    run(st, &w);
    assert_int_equal(w.job.error, VGPU_ERR_NONE);
    assert_int_equal(fake_live(), live0 + 1);
    created = fake_created();
    prepare(&w, 8, 0, buf, make_vector_add(buf, &a, &b, 1));
    run(st, &w);
    assert_int_equal(w.job.error, VGPU_ERR_BACKEND);
    assert_int_equal(w.job.resp_len, 0);
    assert_int_equal(fake_live(), live0); /* broken context destroyed */
    assert_int_equal(ops->vm_mem_used(st, 8), 0);
    prepare(&w, 8, 0, buf, make_vector_add(buf, &a, &b, 1));
    run(st, &w);
    assert_int_equal(w.job.error, VGPU_ERR_NONE);
    assert_int_equal(fake_created(), created + 1);
    ops->close(st);
    assert_int_equal(fake_live(), live0); /* close frees every context */
    clear_fake_env();
}

/*
 * A CUDA fault in one VM's context (issue 12): that VM's job fails and its
 * context alone is destroyed; another VM on the same GPU keeps its
 * context, its device memory and its results.
 */
static void test_fake_fault_isolated(void **state)
{
    static struct waiter w;
    uint8_t buf[VGPU_BUF_SIZE];
    const int32_t a = 20, b = 22;
    int live0 = fake_live(), created;
    uint64_t mem21;
    void *st;

    (void)state;
    /* The launch after the next one fails: dom21's goes first and works,
     * dom20's is the one that faults. */
    set_fake_env("FAKE_CUDA_FAIL_LAUNCH", "2");
    st = open_ok();
    prepare(&w, 21, 0, buf, make_vector_add(buf, &a, &b, 1));
    run(st, &w);
    expect_as_cpu(&w);
    mem21 = ops->vm_mem_used(st, 21);
    assert_int_equal(fake_live(), live0 + 1);
    prepare(&w, 20, 0, buf, make_vector_add(buf, &a, &b, 1));
    run(st, &w);
    assert_int_equal(w.job.error, VGPU_ERR_BACKEND); /* dom20's fault */
    assert_int_equal(fake_live(), live0 + 1);        /* its context gone */
    created = fake_created();
    prepare(&w, 21, 0, buf, make_vector_add(buf, &a, &b, 1));
    run(st, &w);
    expect_as_cpu(&w);                         /* dom21 unaffected: */
    assert_int_equal(fake_created(), created); /* the same context */
    assert_int_equal(ops->vm_mem_used(st, 21), mem21);
    prepare(&w, 20, 0, buf, make_vector_add(buf, &a, &b, 1));
    run(st, &w);
    assert_int_equal(w.job.error, VGPU_ERR_NONE); /* dom20 served again */
    assert_int_equal((int32_t)wire_get_le32(w.resp + 8), 42);
    assert_int_equal(fake_created(), created + 1);
    ops->close(st);
    assert_int_equal(fake_live(), live0);
    clear_fake_env();
}

/* Two GPUs: a VM gets a context on each; close waits for a running job. */
static void test_fake_two_gpus(void **state)
{
    static struct waiter w0, w1;
    uint8_t buf[VGPU_BUF_SIZE];
    struct vgpu_gpu_info i0, i1;
    const int32_t a = 5, b = 6;
    int live0 = fake_live();
    uint64_t m;
    void *st;

    (void)state;
    set_fake_env("FAKE_CUDA_DEVICES", "2");
    st = open_ok();
    assert_int_equal(ops->gpu_count(st), 2);
    ops->gpu_info(st, 0, &i0);
    ops->gpu_info(st, 1, &i1);
    assert_string_not_equal(i0.uuid, i1.uuid);
    prepare(&w0, 9, 0, buf, make_sgemm(buf, 64, 1));
    run(st, &w0);
    m = ops->vm_mem_used(st, 9);
    prepare(&w1, 9, 1, buf, make_vector_add(buf, &a, &b, 1));
    run(st, &w1);
    assert_int_equal(fake_live(), live0 + 2);
    assert_int_equal(ops->vm_mem_used(st, 9), m + 12);
    /* close() while a job runs: it waits, and done() is not called. */
    prepare(&w0, 9, 0, buf, make_sgemm(buf, 1024, 1));
    ops->submit(st, &w0.job);
    ops->close(st);
    assert_false(w0.done);
    assert_int_equal(fake_live(), live0);
    clear_fake_env();
}

/* Jobs of growing sizes for domid, each checked against the CPU. */
static void run_sizes(void *st, uint32_t domid)
{
    static struct waiter w;
    static const uint32_t sizes[] = {1, 16, 100, 127};
    uint8_t buf[VGPU_BUF_SIZE];
    int32_t a[127], b[127];

    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        for (uint32_t i = 0; i < sizes[k]; i++) {
            a[i] = (int32_t)rnd();
            b[i] = (int32_t)rnd();
        }
        prepare(&w, domid, 0, buf, make_vector_add(buf, a, b, sizes[k]));
        run(st, &w);
        expect_as_cpu(&w);
        prepare(&w, domid, 0, buf, make_saxpy(buf, rnd_float_bits(), 100));
        run(st, &w);
        expect_as_cpu(&w);
    }
}

/* The staging buffer is pinned: every copy to and from the GPU is from
 * pinned memory, and releasing the VM frees it before its context. */
static void test_fake_pinned_stage(void **state)
{
    long pinned0 = fake_copies_pinned(), pageable0 = fake_copies_pageable();
    int live0 = fake_pinned_live(), leaked0 = fake_pinned_leaked();
    void *st;

    (void)state;
    st = open_ok();
    run_sizes(st, 11);
    assert_true(fake_copies_pinned() >= pinned0 + 16);
    assert_int_equal(fake_copies_pageable(), pageable0);
    assert_int_equal(fake_pinned_live(), live0 + 1); /* grown, not piled */
    ops->vm_release(st, 11);
    assert_int_equal(fake_pinned_live(), live0);
    run_sizes(st, 12);
    ops->close(st);
    assert_int_equal(fake_pinned_live(), live0);
    assert_int_equal(fake_pinned_leaked(), leaked0); /* freed by us */
}

/* Pinned memory refused: the jobs still run, from pageable memory. */
static void test_fake_pinned_refused(void **state)
{
    long pinned0 = fake_copies_pinned(), pageable0 = fake_copies_pageable();
    int live0 = fake_pinned_live();
    void *st;

    (void)state;
    set_fake_env("FAKE_CUDA_HOSTALLOC_FAIL", "1");
    st = open_ok();
    run_sizes(st, 13);
    assert_int_equal(fake_copies_pinned(), pinned0);
    assert_true(fake_copies_pageable() >= pageable0 + 16);
    assert_int_equal(fake_pinned_live(), live0);
    ops->close(st);
    clear_fake_env();
}

static const struct CMUnitTest fake_only[] = {
    cmocka_unit_test(test_fake_no_device),
    cmocka_unit_test(test_fake_init_error),
    cmocka_unit_test(test_fake_image_refused),
    cmocka_unit_test(test_fake_out_of_memory),
    cmocka_unit_test(test_fake_launch_failure),
    cmocka_unit_test(test_fake_two_gpus),
    cmocka_unit_test(test_fake_fault_isolated),
    cmocka_unit_test(test_fake_pinned_stage),
    cmocka_unit_test(test_fake_pinned_refused),
};

static const struct CMUnitTest loading[] = {
    cmocka_unit_test(test_missing_library),
    cmocka_unit_test(test_library_without_driver_api),
};

/* ---------------------------------------------------------------------- */

/* fake-cuda/libcuda-fake.so next to this program, if it was built. */
static bool find_fake(void)
{
    char self[PATH_MAX - 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;

    if (n <= 0) {
        return false;
    }
    self[n] = 0;
    slash = strrchr(self, '/');
    if (!slash) {
        return false;
    }
    *slash = 0;
    snprintf(fake_lib, sizeof(fake_lib), "%s/fake-cuda/libcuda-fake.so", self);
    return access(fake_lib, R_OK) == 0;
}

static int run_fake_stage(void)
{
    void *h;
    int failures;

    setenv("VGPU_LIBCUDA", fake_lib, 1);
    clear_fake_env();
    /* Slow the fake's big SGEMMs so "still running" is certain. */
    setenv("FAKE_CUDA_SGEMM_DELAY_MS", "300", 1);
    h = dlopen(fake_lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        printf("cannot load %s: %s\n", fake_lib, dlerror());
        return 1;
    }
    *(void **)&fake_live = dlsym(h, "fake_cuda_contexts_live");
    *(void **)&fake_created = dlsym(h, "fake_cuda_contexts_created");
    *(void **)&fake_pinned_live = dlsym(h, "fake_cuda_pinned_live");
    *(void **)&fake_pinned_leaked = dlsym(h, "fake_cuda_pinned_leaked");
    *(void **)&fake_copies_pinned = dlsym(h, "fake_cuda_copies_pinned");
    *(void **)&fake_copies_pageable = dlsym(h, "fake_cuda_copies_pageable");
    if (!fake_live || !fake_created || !fake_pinned_live ||
        !fake_pinned_leaked || !fake_copies_pinned || !fake_copies_pageable) {
        printf("%s lacks the fake_cuda_* inspection calls\n", fake_lib);
        return 1;
    }
    on_fake = true;
    printf("stage 2: the stand-in driver %s\n", fake_lib);
    failures = _cmocka_run_group_tests("cuda-backend-on-fake-driver", suite,
                                       sizeof(suite) / sizeof(suite[0]),
                                       suite_setup, suite_teardown);
    unsetenv("FAKE_CUDA_SGEMM_DELAY_MS");
    failures += _cmocka_run_group_tests(
        "fake-driver-failures", fake_only,
        sizeof(fake_only) / sizeof(fake_only[0]), NULL, NULL);
    on_fake = false;
    unsetenv("VGPU_LIBCUDA");
    clear_fake_env();
    return failures;
}

int main(void)
{
    struct vgpu_backend_config cfg = {.cpu_gpus = 1};
    const char *why = NULL;
    const char *real_lib;
    void *st = NULL;
    int failures;

    setvbuf(stdout, NULL, _IOLBF, 0);
    ops = vgpu_backend_cuda;
    if (!ops) {
        printf("SKIP: mediator built without the CUDA backend (no nvcc)\n");
        return 77;
    }
    /* A VGPU_LIBCUDA from outside picks the real driver of stage 3. */
    real_lib = getenv("VGPU_LIBCUDA");
    if (real_lib) {
        real_lib = strdup(real_lib);
    }

    printf("stage 1: loading the driver fails cleanly\n");
    failures = cmocka_run_group_tests_name("cuda-backend-loading", loading,
                                           NULL, NULL);
    if (find_fake()) {
        failures += run_fake_stage();
    } else {
        printf("stage 2: no stand-in driver at %s (not built?)\n", fake_lib);
        failures++;
    }

    printf("stage 3: the real driver\n");
    if (real_lib) {
        setenv("VGPU_LIBCUDA", real_lib, 1);
    }
    if (ops->open(&st, &cfg, &why)) {
        if (failures) {
            printf("FAILED: %d failure(s) before the real-driver stage; "
                   "that stage cannot run here: %s\n",
                   failures, why);
            return 1;
        }
        printf("SKIP: CUDA backend cannot run here: %s\n", why);
        return 77;
    }
    {
        struct vgpu_gpu_info info;

        ops->gpu_info(st, 0, &info);
        printf("real driver: GPU 0 is %s\n", info.name);
        if (!real_lib && strstr(info.name, "vgpu fake")) {
            printf("FAILED: libcuda.so.1 resolved to the stand-in driver\n");
            ops->close(st);
            return 1;
        }
    }
    ops->close(st);
    failures += cmocka_run_group_tests_name("cuda-backend-on-gpu", suite,
                                            suite_setup, suite_teardown);
    return failures ? 1 : 0;
}
