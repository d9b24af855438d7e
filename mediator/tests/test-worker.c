/*
 * test-worker.c - unit tests of the worker mechanism (backend_worker.c),
 * driven through struct vgpu_backend_ops as the mediator drives it, over
 * a fake table of execution operations.
 *
 * The fake records what the mechanism asks of it (which GPU opens and
 * closes, in what order; which job runs on which GPU's thread; drop_vm and
 * vm_release calls) and can hold its jobs at a gate, so the tests can look
 * at the mechanism while work is queued, running, finished but not polled,
 * and while it is being closed.  Each per-GPU context and the backend-wide
 * state are heap blocks, so under ASan (make check) a teardown that forgets
 * one is a leak report.
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "backend.h"
#include "backend_worker.h"
#include "payload.h"
#include "util.h"
#include "wire.h"

/* ---------------------------------------------------------------------- */
/* the fake execution operations                                           */
/* ---------------------------------------------------------------------- */

#define MAX_JOBS 64

/* What the fake answers, set by each test before open(). */
static struct {
    unsigned ngpus;
    bool fail_open;
    int fail_gpu;       /* open_gpu() fails for this index; -1: never */
    bool with_mem_used; /* fill vm_mem_used() */
    bool hold;          /* run() waits until the gate opens */
} fake;

/* What the fake saw, under rec.lock. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool gate_open;
    unsigned misplaced; /* run() on the wrong thread or GPU */
    unsigned running;   /* in run() now */
    unsigned ran;       /* run() returned */
    int run_order[VGPU_BACKEND_MAX_GPUS][MAX_JOBS];
    unsigned nrun[VGPU_BACKEND_MAX_GPUS];
    char events[512];
    unsigned drops;
    unsigned drop_gpu[MAX_JOBS];
    uint32_t drop_domid[MAX_JOBS];
    bool drop_off_main[MAX_JOBS];
    unsigned releases;
    bool release_on_main;
    /* done() calls, by the event loop (the test's thread) */
    unsigned ndone;
    int done_order[VGPU_BACKEND_MAX_GPUS][MAX_JOBS];
    unsigned ndone_gpu[VGPU_BACKEND_MAX_GPUS];
} rec = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
};

static pthread_t main_thread;

struct fake_exec {
    unsigned ngpus;
};

struct fake_gpu {
    unsigned index;
    unsigned runs;
};

__attribute__((format(printf, 1, 2))) static void event(const char *fmt, ...)
{
    va_list ap;
    size_t len;

    pthread_mutex_lock(&rec.lock);
    len = strlen(rec.events);
    va_start(ap, fmt);
    vsnprintf(rec.events + len, sizeof(rec.events) - len, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&rec.lock);
}

static int fake_open(void **exec, const struct vgpu_backend_config *cfg,
                     unsigned *ngpus, char *why, size_t why_len)
{
    struct fake_exec *fx;

    (void)cfg;
    if (fake.fail_open) {
        snprintf(why, why_len, "fake: cannot open");
        return -1;
    }
    fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->ngpus = fake.ngpus;
    *ngpus = fake.ngpus;
    *exec = fx;
    event("open");
    return 0;
}

static int fake_open_gpu(void *exec, unsigned index, void **gpu,
                         struct vgpu_gpu_info *info, char *why, size_t why_len)
{
    struct fake_gpu *g;

    (void)exec;
    if ((int)index == fake.fail_gpu) {
        snprintf(why, why_len, "fake: GPU %u is broken", index);
        return -1;
    }
    g = calloc(1, sizeof(*g));
    assert_non_null(g);
    g->index = index;
    snprintf(info->name, sizeof(info->name), "fake GPU %u", index);
    info->mem_total = 1000 + index;
    *gpu = g;
    event(" gpu%u", index);
    return 0;
}

static void fake_run(void *gpu, struct vgpu_backend_job *job)
{
    struct fake_gpu *g = gpu;
    int id = *(const int *)job->owner;

    pthread_mutex_lock(&rec.lock);
    /* Checked by the test's thread: cmocka asserts only there. */
    if (pthread_equal(pthread_self(), main_thread) || job->gpu != g->index) {
        rec.misplaced++;
    }
    rec.run_order[g->index][rec.nrun[g->index]++] = id;
    rec.running++;
    pthread_cond_broadcast(&rec.cond);
    while (fake.hold && !rec.gate_open) {
        pthread_cond_wait(&rec.cond, &rec.lock);
    }
    rec.running--;
    pthread_mutex_unlock(&rec.lock);

    /* A real answer, so a response is checked end to end. */
    job->error =
        backend_cpu_execute(&job->req, job->resp.iov_base, &job->resp_len);
    job->exec_ns = 1000;
    g->runs++;

    pthread_mutex_lock(&rec.lock);
    rec.ran++;
    pthread_cond_broadcast(&rec.cond);
    pthread_mutex_unlock(&rec.lock);
}

static void fake_drop_vm(void *gpu, uint32_t domid)
{
    struct fake_gpu *g = gpu;

    pthread_mutex_lock(&rec.lock);
    rec.drop_gpu[rec.drops] = g->index;
    rec.drop_domid[rec.drops] = domid;
    rec.drop_off_main[rec.drops] = !pthread_equal(pthread_self(), main_thread);
    rec.drops++;
    pthread_mutex_unlock(&rec.lock);
}

static void fake_vm_release(void *gpu, uint32_t domid)
{
    (void)gpu;
    (void)domid;
    pthread_mutex_lock(&rec.lock);
    rec.releases++;
    rec.release_on_main = pthread_equal(pthread_self(), main_thread);
    pthread_mutex_unlock(&rec.lock);
}

static uint64_t fake_vm_mem_used(void *gpu, uint32_t domid)
{
    struct fake_gpu *g = gpu;

    return domid == 7 ? 100u * (g->index + 1) : 0;
}

static void fake_close_gpu(void *gpu)
{
    struct fake_gpu *g = gpu;

    event(" close_gpu%u", g->index);
    free(g);
}

static void fake_close(void *exec)
{
    event(" close");
    free(exec);
}

static const struct vgpu_exec_ops fake_exec = {
    .open = fake_open,
    .open_gpu = fake_open_gpu,
    .run = fake_run,
    .drop_vm = fake_drop_vm,
    .vm_release = fake_vm_release,
    .close_gpu = fake_close_gpu,
    .close = fake_close,
};

/* The same, with vm_mem_used() of its own. */
static const struct vgpu_exec_ops fake_exec_mem = {
    .open = fake_open,
    .open_gpu = fake_open_gpu,
    .run = fake_run,
    .drop_vm = fake_drop_vm,
    .vm_release = fake_vm_release,
    .vm_mem_used = fake_vm_mem_used,
    .close_gpu = fake_close_gpu,
    .close = fake_close,
};

static int fake_backend_open(void **state, struct vgpu_backend_config *cfg,
                             const char **why)
{
    return vgpu_worker_open(
        state, fake.with_mem_used ? &fake_exec_mem : &fake_exec, cfg, why);
}

static const struct vgpu_backend_ops fake_backend =
    VGPU_WORKER_BACKEND("fake", fake_backend_open);
static const struct vgpu_backend_ops *const be = &fake_backend;

/* ---------------------------------------------------------------------- */
/* jobs and helpers                                                        */
/* ---------------------------------------------------------------------- */

struct tjob {
    int id; /* first: the fake reads it through job.owner */
    struct vgpu_backend_job job;
    int done_calls;
    bool free_in_done; /* as the mediator does */
    uint8_t req[64];
    uint8_t resp[64];
};

static void on_done(struct vgpu_backend_job *job)
{
    struct tjob *t = job->owner;

    assert_true(pthread_equal(pthread_self(), main_thread));
    t->done_calls++;
    if (job->gpu < VGPU_BACKEND_MAX_GPUS) {
        rec.done_order[job->gpu][rec.ndone_gpu[job->gpu]++] = t->id;
    }
    rec.ndone++;
    if (t->free_in_done) {
        free(t);
    }
}

/* A VECTOR_ADD id + 1, validated, with a response buffer of its size. */
static struct tjob *make_job(int id, uint32_t domid, unsigned gpu)
{
    struct tjob *t = calloc(1, sizeof(*t));

    assert_non_null(t);
    t->id = id;
    wire_put_le32(t->req, VGPU_OP_VECTOR_ADD);
    wire_put_le32(t->req + 4, 1);
    wire_put_le32(t->req + 8, (uint32_t)id);
    wire_put_le32(t->req + 12, 1);
    assert_int_equal(payload_parse_request(t->req, 16, &t->job.req),
                     VGPU_ERR_NONE);
    t->job.resp.iov_base = t->resp;
    t->job.resp.iov_len = payload_resp_size(&t->job.req);
    t->job.domid = domid;
    t->job.gpu = gpu;
    t->job.done = on_done;
    t->job.owner = t;
    t->job.error = 0xffffffffu;
    return t;
}

static void reset(unsigned ngpus, bool hold)
{
    pthread_mutex_lock(&rec.lock);
    memset((char *)&rec + offsetof(__typeof__(rec), gate_open), 0,
           sizeof(rec) - offsetof(__typeof__(rec), gate_open));
    pthread_mutex_unlock(&rec.lock);
    memset(&fake, 0, sizeof(fake));
    fake.ngpus = ngpus;
    fake.fail_gpu = -1;
    fake.hold = hold;
    main_thread = pthread_self();
}

static void *open_ok(void)
{
    struct vgpu_backend_config cfg = {.cpu_gpus = 1};
    const char *why = NULL;
    void *st = NULL;

    if (be->open(&st, &cfg, &why)) {
        fail_msg("open: %s", why);
    }
    return st;
}

/* fake.hold, as the workers read it: under the lock. */
static void set_hold(bool hold)
{
    pthread_mutex_lock(&rec.lock);
    fake.hold = hold;
    pthread_mutex_unlock(&rec.lock);
}

static void open_gate(void)
{
    pthread_mutex_lock(&rec.lock);
    rec.gate_open = true;
    pthread_cond_broadcast(&rec.cond);
    pthread_mutex_unlock(&rec.lock);
}

/* Until n jobs are inside run() (or n have returned, with ran). */
static bool wait_rec(unsigned n, bool ran)
{
    struct timespec end;
    bool ok = true;

    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += 10;
    pthread_mutex_lock(&rec.lock);
    while ((ran ? rec.ran : rec.running) < n && ok) {
        ok = pthread_cond_timedwait(&rec.cond, &rec.lock, &end) == 0;
    }
    ok = (ran ? rec.ran : rec.running) >= n;
    pthread_mutex_unlock(&rec.lock);
    return ok;
}

/* The event loop: fd() and poll() until n done() calls in all. */
static bool pump(void *st, unsigned n)
{
    uint64_t end = now_ms() + 10000;

    while (rec.ndone < n) {
        struct pollfd p = {.fd = be->fd(st), .events = POLLIN};
        uint64_t now = now_ms();

        if (now >= end) {
            return false;
        }
        if (poll(&p, 1, (int)(end - now)) == 1) {
            be->poll(st);
        }
    }
    return rec.misplaced == 0;
}

static bool fd_readable(void *st, int timeout_ms)
{
    struct pollfd p = {.fd = be->fd(st), .events = POLLIN};

    return poll(&p, 1, timeout_ms) == 1;
}

/* ---------------------------------------------------------------------- */
/* tests                                                                   */
/* ---------------------------------------------------------------------- */

static void expect_open_fails(const char *want, const char *events)
{
    struct vgpu_backend_config cfg = {.cpu_gpus = 1};
    const char *why = NULL;
    void *st = NULL;

    assert_int_equal(be->open(&st, &cfg, &why), -1);
    assert_non_null(why);
    printf("  why: %s; %s\n", why, rec.events);
    assert_non_null(strstr(why, want));
    assert_ptr_equal(why, cfg.why); /* the caller's room, not static */
    assert_null(st);
    assert_string_equal(rec.events, events);
}

/* Set-up fails cleanly at each step, undoing what it did, last first. */
static void test_open_failures(void **state)
{
    (void)state;
    reset(2, false);
    fake.fail_open = true;
    expect_open_fails("fake: cannot open", "");

    reset(0, false);
    expect_open_fails("0 GPUs", "open close");

    reset(VGPU_BACKEND_MAX_GPUS + 1, false);
    expect_open_fails("17 GPUs", "open close");

    reset(4, false);
    fake.fail_gpu = 2;
    expect_open_fails("fake: GPU 2 is broken",
                      "open gpu0 gpu1 close_gpu1 close_gpu0 close");

    reset(4, false);
    fake.fail_gpu = 0;
    expect_open_fails("fake: GPU 0 is broken", "open close");
}

static void test_gpu_info_and_teardown_order(void **state)
{
    struct vgpu_gpu_info info;
    void *st;

    (void)state;
    reset(3, false);
    st = open_ok();
    assert_int_equal(be->gpu_count(st), 3);
    for (unsigned i = 0; i < 3; i++) {
        char want[32];

        be->gpu_info(st, i, &info);
        snprintf(want, sizeof(want), "fake GPU %u", i);
        assert_string_equal(info.name, want);
        assert_int_equal(info.mem_total, 1000 + i);
        assert_true(be->gpu_idle(st, i));
    }
    be->gpu_info(st, 3, &info);
    assert_string_equal(info.name, "");
    assert_false(be->gpu_idle(st, 3));
    be->close(st);
    assert_string_equal(rec.events,
                        "open gpu0 gpu1 gpu2 close_gpu2 close_gpu1 close_gpu0 "
                        "close");
}

/* Jobs queued on a GPU run and complete in the order they were given. */
static void test_jobs_complete_in_order_per_gpu(void **state)
{
    struct tjob *keep[16] = {0};
    void *st;

    (void)state;
    reset(2, true);
    st = open_ok();
    for (int i = 0; i < 16; i++) {
        struct tjob *t = make_job(i, 10 + (uint32_t)i % 3, (unsigned)i % 2);

        /* Half are freed by done(), as the mediator frees its jobs. */
        t->free_in_done = i % 4 < 2;
        if (!t->free_in_done) {
            keep[i] = t;
        }
        be->submit(st, &t->job);
    }
    assert_false(be->gpu_idle(st, 0));
    assert_false(be->gpu_idle(st, 1));
    assert_true(wait_rec(2, false)); /* one running per GPU, no more */
    usleep(20000);
    pthread_mutex_lock(&rec.lock);
    assert_int_equal(rec.running, 2);
    pthread_mutex_unlock(&rec.lock);
    open_gate();
    assert_true(pump(st, 16));
    for (unsigned g = 0; g < 2; g++) {
        assert_int_equal(rec.nrun[g], 8);
        assert_int_equal(rec.ndone_gpu[g], 8);
        for (int k = 0; k < 8; k++) {
            assert_int_equal(rec.run_order[g][k], 2 * k + (int)g);
            assert_int_equal(rec.done_order[g][k], 2 * k + (int)g);
        }
        assert_true(be->gpu_idle(st, g));
    }
    for (int i = 0; i < 16; i++) {
        if (keep[i]) {
            assert_int_equal(keep[i]->done_calls, 1);
            assert_int_equal(keep[i]->job.error, VGPU_ERR_NONE);
            assert_int_equal(keep[i]->job.resp_len,
                             VGPU_VECTOR_ADD_RESP_LEN(1));
            assert_int_equal(wire_get_le32(keep[i]->resp + 8), (uint32_t)i + 1);
            assert_int_equal(keep[i]->job.exec_ns, 1000);
            free(keep[i]);
        }
    }
    assert_false(fd_readable(st, 0)); /* nothing more to report */
    be->close(st);
}

/* Busy from submit() until poll() hands the job back, not before. */
static void test_gpu_idle_reflects_running_work(void **state)
{
    struct tjob *t, *u;
    void *st;

    (void)state;
    reset(2, true);
    st = open_ok();
    t = make_job(1, 5, 0);
    assert_true(be->gpu_idle(st, 0));
    be->submit(st, &t->job);
    assert_false(be->gpu_idle(st, 0)); /* queued */
    assert_true(be->gpu_idle(st, 1));  /* the other GPU is not */
    assert_true(wait_rec(1, false));
    assert_false(be->gpu_idle(st, 0)); /* running */
    be->poll(st);                      /* nothing finished: no done() */
    assert_int_equal(t->done_calls, 0);
    open_gate();
    assert_true(wait_rec(1, true));
    assert_true(fd_readable(st, 10000));
    assert_false(be->gpu_idle(st, 0)); /* finished, not handed back */
    assert_int_equal(t->done_calls, 0);
    be->poll(st);
    assert_int_equal(t->done_calls, 1);
    assert_true(be->gpu_idle(st, 0));
    assert_false(fd_readable(st, 0));

    /* Two on one GPU: busy until the last is handed back. */
    u = make_job(2, 5, 0);
    t->done_calls = 0;
    be->submit(st, &t->job);
    be->submit(st, &u->job);
    assert_true(pump(st, 2)); /* t's, at least (it ran first) */
    if (u->done_calls == 0) {
        assert_false(be->gpu_idle(st, 0));
        assert_true(pump(st, 3));
    }
    assert_int_equal(t->done_calls, 1);
    assert_int_equal(u->done_calls, 1);
    assert_true(be->gpu_idle(st, 0));
    be->close(st);
    free(u);
    free(t);
}

static void *open_gate_later(void *arg)
{
    (void)arg;
    usleep(200000);
    open_gate();
    return NULL;
}

/*
 * close() with jobs running, queued, and finished but not polled: it waits
 * for the running ones, runs no queued one, calls no done(), and frees the
 * backend's every context (ASan reports a leak otherwise).
 */
static void test_close_with_work_in_flight(void **state)
{
    struct tjob *t[5];
    pthread_t opener;
    void *st;

    (void)state;
    reset(3, true);
    st = open_ok();
    t[0] = make_job(0, 1, 0); /* runs */
    t[1] = make_job(1, 1, 0); /* queued */
    t[2] = make_job(2, 2, 0); /* queued */
    t[3] = make_job(3, 3, 1); /* runs */
    t[4] = make_job(4, 4, 2); /* finishes, never polled */
    set_hold(false);
    be->submit(st, &t[4]->job);
    assert_true(wait_rec(1, true));
    set_hold(true);
    for (int i = 0; i < 4; i++) {
        be->submit(st, &t[i]->job);
    }
    assert_true(wait_rec(2, false));
    assert_int_equal(pthread_create(&opener, NULL, open_gate_later, NULL), 0);
    be->close(st); /* returns once jobs 0 and 3 have ended */
    pthread_join(opener, NULL);
    assert_int_equal(rec.ran, 3);
    assert_int_equal(rec.nrun[0], 1);
    assert_int_equal(rec.run_order[0][0], 0);
    assert_int_equal(rec.nrun[1], 1);
    assert_int_equal(rec.nrun[2], 1);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(t[i]->done_calls, 0);
        free(t[i]);
    }
    assert_int_equal(rec.ndone, 0);
    assert_string_equal(rec.events, "open gpu0 gpu1 gpu2 close_gpu2 "
                                    "close_gpu1 close_gpu0 close");
}

/*
 * vm_release(): the backend frees at once what no job uses (on the
 * caller's thread, for every GPU), and after each of the domain's jobs
 * that was queued or running then (drop_vm, on that GPU's thread).
 */
static void test_release_while_held(void **state)
{
    struct tjob *a, *b, *c, *d;
    void *st;

    (void)state;
    reset(2, true);
    st = open_ok();
    a = make_job(1, 7, 0); /* running when released */
    b = make_job(2, 7, 0); /* queued when released */
    c = make_job(3, 8, 1); /* another domain */
    be->submit(st, &a->job);
    be->submit(st, &b->job);
    be->submit(st, &c->job);
    assert_true(wait_rec(2, false));
    be->vm_release(st, 7);
    assert_int_equal(rec.releases, 2); /* each GPU, before returning */
    assert_true(rec.release_on_main);
    assert_int_equal(rec.drops, 0); /* not before the jobs end */
    open_gate();
    assert_true(pump(st, 3));
    assert_int_equal(rec.drops, 2);
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(rec.drop_gpu[i], 0);
        assert_int_equal(rec.drop_domid[i], 7);
        assert_true(rec.drop_off_main[i]);
    }
    /* The next job of a domid (a new VM) is not marked. */
    d = make_job(4, 7, 0);
    be->submit(st, &d->job);
    assert_true(pump(st, 4));
    assert_int_equal(rec.drops, 2);
    /* Released with nothing held: vm_release() only. */
    be->vm_release(st, 8);
    assert_int_equal(rec.releases, 4);
    assert_int_equal(rec.drops, 2);
    be->close(st);
    free(a);
    free(b);
    free(c);
    free(d);
}

/* Without vm_mem_used(): the device bytes of the domain's held jobs. */
static void test_mem_used_default(void **state)
{
    const uint64_t one = 12; /* VECTOR_ADD of 1: a, b and c */
    struct tjob *a, *b, *c;
    void *st;

    (void)state;
    reset(2, true);
    st = open_ok();
    a = make_job(1, 5, 0);
    b = make_job(2, 5, 0);
    c = make_job(3, 6, 1);
    assert_int_equal(payload_device_bytes(&a->job.req), one);
    assert_int_equal(be->vm_mem_used(st, 5), 0);
    be->submit(st, &a->job);
    be->submit(st, &b->job);
    be->submit(st, &c->job);
    assert_true(wait_rec(2, false));
    assert_int_equal(be->vm_mem_used(st, 5), 2 * one);
    assert_int_equal(be->vm_mem_used(st, 6), one);
    assert_int_equal(be->vm_mem_used(st, 9), 0);
    open_gate();
    assert_true(pump(st, 3));
    assert_int_equal(be->vm_mem_used(st, 5), 0);
    assert_int_equal(be->vm_mem_used(st, 6), 0);
    be->close(st);
    free(a);
    free(b);
    free(c);
}

/* With vm_mem_used(): the backend's figure, summed over the GPUs. */
static void test_mem_used_of_the_backend(void **state)
{
    void *st;

    (void)state;
    reset(3, false);
    fake.with_mem_used = true;
    st = open_ok();
    assert_int_equal(be->vm_mem_used(st, 7), 100 + 200 + 300);
    assert_int_equal(be->vm_mem_used(st, 8), 0);
    be->close(st);
}

/* A caller's mistakes end through poll() with BACKEND; nothing runs. */
static void test_bad_jobs(void **state)
{
    struct tjob *small, *far;
    void *st;

    (void)state;
    reset(1, false);
    st = open_ok();
    small = make_job(1, 5, 0);
    small->job.resp.iov_len = VGPU_VECTOR_ADD_RESP_LEN(1) - 1;
    far = make_job(2, 5, 1); /* GPU 1 of 1 */
    be->submit(st, &small->job);
    be->submit(st, &far->job);
    assert_true(pump(st, 2));
    assert_int_equal(small->job.error, VGPU_ERR_BACKEND);
    assert_int_equal(small->job.resp_len, 0);
    assert_int_equal(far->job.error, VGPU_ERR_BACKEND);
    assert_int_equal(far->job.resp_len, 0);
    assert_int_equal(rec.nrun[0], 0);
    assert_true(be->gpu_idle(st, 0));
    be->close(st);
    free(small);
    free(far);
}

/* The CPU backend is this mechanism with the op table's computations. */
static void test_cpu_backend(void **state)
{
    const struct vgpu_backend_ops *cpu = &vgpu_backend_cpu;
    struct vgpu_backend_config cfg = {.cpu_gpus = 2};
    struct vgpu_gpu_info info;
    const char *why = NULL;
    struct tjob *t[2];
    void *st = NULL;

    (void)state;
    reset(0, false);
    assert_int_equal(cpu->open(&st, &cfg, &why), 0);
    assert_int_equal(cpu->gpu_count(st), 2);
    cpu->gpu_info(st, 1, &info);
    assert_string_equal(info.name, "CPU reference backend #1");
    for (unsigned i = 0; i < 2; i++) {
        t[i] = make_job(99 + (int)i, 3, i);
        cpu->submit(st, &t[i]->job);
    }
    while (rec.ndone < 2) {
        struct pollfd p = {.fd = cpu->fd(st), .events = POLLIN};

        assert_int_equal(poll(&p, 1, 10000), 1);
        cpu->poll(st);
    }
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(t[i]->job.error, VGPU_ERR_NONE);
        assert_int_equal(wire_get_le32(t[i]->resp + 8), 100 + i);
        assert_true(cpu->gpu_idle(st, i));
        free(t[i]);
    }
    assert_int_equal(cpu->vm_mem_used(st, 3), 0);
    cpu->vm_release(st, 3);
    cpu->close(st);

    cfg.cpu_gpus = VGPU_BACKEND_MAX_GPUS + 1;
    assert_int_equal(cpu->open(&st, &cfg, &why), -1);
    assert_string_equal(why, "too many CPU pretend GPUs");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_failures),
        cmocka_unit_test(test_gpu_info_and_teardown_order),
        cmocka_unit_test(test_jobs_complete_in_order_per_gpu),
        cmocka_unit_test(test_gpu_idle_reflects_running_work),
        cmocka_unit_test(test_close_with_work_in_flight),
        cmocka_unit_test(test_release_while_held),
        cmocka_unit_test(test_mem_used_default),
        cmocka_unit_test(test_mem_used_of_the_backend),
        cmocka_unit_test(test_bad_jobs),
        cmocka_unit_test(test_cpu_backend),
    };

    setvbuf(stdout, NULL, _IOLBF, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
