/*
 * bench.c - vgpu-bench: the cost of the mediator's path, as ratios measured
 * in one run.
 *
 * For each backend (cpu, then cuda where it can run) it starts the real
 * vgpu-mediator (--backend B) against a temporary qemu-root and the test
 * xenstore server (domain 1 assigned through xenstore, as dom0 would), plays
 * the vgpu-stub device on the domain's socket (HELLO, then REQUEST/RESPONSE
 * round trips, one in flight as in protocol v1), and runs the same requests
 * directly in this process: backend_cpu_execute() for cpu, the same
 * embedded kernels launched through the driver API (cuda/direct.h) for
 * cuda.  It reports per-request latency (median, p99), throughput, and the
 * ratio mediator/direct.  Absolute times depend on the machine; only the
 * ratios are meant to be compared.
 *
 * Usage: vgpu-bench BUILD_DIR   (BUILD_DIR/mediator/vgpu-mediator and
 * BUILD_DIR/xs-server/xs-server).  Environment: BENCH_ITERS (round trips
 * per small case, default 2000), BENCH_SGEMM_ITERS (default 20 on cuda, 3
 * on cpu), BENCH_BACKENDS (default "cpu cuda"), VGPU_LIBCUDA (as for the
 * mediator).
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xenstore.h>

#include "backend.h"
#include "cuda/direct.h"
#include "harness.h"
#include "payload.h"
#include "util.h"
#include "vgpu_protocol.h"
#include "wire.h"

#define DOMID 1
/* How long a reply may take (an SGEMM, the CUDA backend starting). */
#define REPLY_TIMEOUT_MS 60000

/* The binaries and the scratch folder. */
static struct harness ctx;
static char qroot[PATH_MAX], mlog[PATH_MAX];
static pid_t xs_pid = -1, med_pid = -1;
static struct xs_handle *xs;
static int errors;

/* ---------------------------------------------------------------------- */
/* processes                                                               */
/* ---------------------------------------------------------------------- */

static pid_t start_mediator(const char *backend)
{
    pid_t pid = fork();

    if (pid == 0) {
        int fd = open(mlog, O_WRONLY | O_CREAT | O_APPEND, 0644);

        dup2(fd, 2);
        execl(ctx.mediator_bin, ctx.mediator_bin, "--qemu-root", qroot, "--log",
              "stderr", "--status-file", "none", "--admin-socket", "none",
              "--backend", backend, "--cpu-gpus", "1", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void cleanup(void)
{
    harness_teardown(&ctx, &med_pid, &xs_pid, xs);
}

static void xs_set(const char *key, const char *val)
{
    harness_xs_set(&ctx, xs, DOMID, key, val);
}

/* ---------------------------------------------------------------------- */
/* the device's side of the socket                                         */
/* ---------------------------------------------------------------------- */

/* Connect as the device of DOMID and say HELLO; the fd or -1. */
static int dev_open(int timeout_ms)
{
    char path[PATH_MAX];
    uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000u;
    struct harness_reply ack;
    int fd = -1;

    harness_sock_path(path, sizeof(path), qroot, DOMID);
    while (now_ns() < end) {
        fd = harness_dev_connect(path);
        if (fd >= 0) {
            break;
        }
        if (med_pid > 0 && waitpid(med_pid, NULL, WNOHANG) == med_pid) {
            med_pid = -1;
            return -1; /* the mediator exited */
        }
        harness_sleep_ms(20);
    }
    if (fd < 0) {
        return -1;
    }
    if (!harness_send_hello(fd, "A", VGPU_PRIO_HIGH, DOMID) ||
        harness_read_reply(fd, &ack, REPLY_TIMEOUT_MS) ||
        ack.type != VGPU_MSG_HELLO_ACK) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---------------------------------------------------------------------- */
/* measurements                                                            */
/* ---------------------------------------------------------------------- */

struct stats {
    double median_us, p99_us, per_s;
    unsigned n;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static struct stats summarize(uint64_t *ns, unsigned n, uint64_t total_ns)
{
    struct stats s = {0};

    if (!n) {
        return s;
    }
    qsort(ns, n, sizeof(ns[0]), cmp_u64);
    s.n = n;
    s.median_us = (double)ns[n / 2] / 1e3;
    s.p99_us = (double)ns[(size_t)((n - 1) * 0.99)] / 1e3;
    s.per_s = (double)n / ((double)total_ns / 1e9);
    return s;
}

struct request {
    const char *name;
    uint8_t buf[VGPU_BUF_SIZE];
    uint32_t len;
    uint8_t expect[VGPU_BUF_SIZE]; /* the CPU reference answer */
    uint32_t expect_len;
};

static void make_request(struct request *r, const char *name, uint32_t op,
                         uint32_t n)
{
    struct vgpu_request req;

    r->name = name;
    wire_put_le32(r->buf, op);
    wire_put_le32(r->buf + 4, n);
    if (op == VGPU_OP_VECTOR_ADD) {
        for (uint32_t i = 0; i < 2 * n; i++) {
            wire_put_le32(r->buf + 8 + 4 * i, i == 0 ? 100 : i == n ? 200 : i);
        }
        r->len = (uint32_t)VGPU_VECTOR_ADD_REQ_LEN(n);
    } else {
        wire_put_le32(r->buf + 8, 42); /* seed */
        r->len = (uint32_t)VGPU_SGEMM_REQ_LEN;
    }
    if (payload_parse_request(r->buf, r->len, &req) ||
        backend_cpu_execute(&req, r->expect, &r->expect_len)) {
        fprintf(stderr, "bench: bad request %s\n", name);
        exit(1);
    }
}

/* Round trips through the mediator: one in flight, as protocol v1. */
static int via_mediator(int fd, const struct request *r, unsigned iters,
                        unsigned warmup, struct stats *out)
{
    uint64_t *ns = calloc(iters, sizeof(*ns));
    struct harness_reply rep;
    static uint32_t req_id;
    uint64_t start = 0;

    for (unsigned i = 0; ns && i < warmup + iters; i++) {
        uint64_t t0;

        if (i == warmup) {
            start = now_ns();
        }
        t0 = now_ns();
        if (!harness_send_msg(fd, VGPU_MSG_REQUEST, ++req_id, r->buf, r->len) ||
            harness_read_reply(fd, &rep, REPLY_TIMEOUT_MS)) {
            fprintf(stderr, "bench: %s: the mediator stopped answering\n",
                    r->name);
            free(ns);
            return -1;
        }
        if (rep.type != VGPU_MSG_RESPONSE || rep.status != VGPU_ERR_NONE ||
            rep.request_id != req_id || rep.length != r->expect_len ||
            memcmp(rep.payload, r->expect, r->expect_len)) {
            fprintf(stderr, "bench: %s: wrong answer (type %u status %s)\n",
                    r->name, rep.type, vgpu_error_name(rep.status));
            free(ns);
            return -1;
        }
        if (i >= warmup) {
            ns[i - warmup] = now_ns() - t0;
        }
    }
    if (!ns) {
        return -1;
    }
    *out = summarize(ns, iters, now_ns() - start);
    free(ns);
    return 0;
}

/* The same request run in this process. */
static int direct(struct vgpu_cuda_direct *cuda, const struct request *r,
                  unsigned iters, unsigned warmup, struct stats *out)
{
    uint64_t *ns = calloc(iters, sizeof(*ns));
    uint8_t buf[VGPU_BUF_SIZE], resp[VGPU_BUF_SIZE];
    struct vgpu_request req;
    uint64_t start = 0;

    memcpy(buf, r->buf, r->len);
    if (!ns || payload_parse_request(buf, r->len, &req)) {
        free(ns);
        return -1;
    }
    for (unsigned i = 0; i < warmup + iters; i++) {
        uint32_t len = 0, err;
        uint64_t t0, exec_ns;

        if (i == warmup) {
            start = now_ns();
        }
        t0 = now_ns();
        err = cuda ? vgpu_cuda_direct_run(cuda, &req, resp, &len, &exec_ns)
                   : backend_cpu_execute(&req, resp, &len);
        if (i >= warmup) {
            ns[i - warmup] = now_ns() - t0;
        }
        if (err || len != r->expect_len || memcmp(resp, r->expect, len)) {
            fprintf(stderr, "bench: %s direct: wrong answer (%s)\n", r->name,
                    vgpu_error_name(err));
            free(ns);
            return -1;
        }
    }
    *out = summarize(ns, iters, now_ns() - start);
    free(ns);
    return 0;
}

static void print_row(const char *backend, const char *name,
                      const struct stats *m, const struct stats *d)
{
    printf("%-5s %-16s %10.2f %10.2f %11.0f | %10.2f %10.2f %11.0f | "
           "%7.2fx %7.3fx\n",
           backend, name, m->median_us, m->p99_us, m->per_s, d->median_us,
           d->p99_us, d->per_s,
           d->median_us > 0 ? m->median_us / d->median_us : 0,
           d->per_s > 0 ? m->per_s / d->per_s : 0);
}

static unsigned env_uint(const char *name, unsigned def)
{
    const char *v = getenv(name);

    return v && *v ? (unsigned)strtoul(v, NULL, 10) : def;
}

/*
 * One backend: start the mediator with it, measure, stop it.  Returns 0,
 * or -1 when something failed to run.
 */
static int bench_backend(const char *backend, struct vgpu_cuda_direct *cuda)
{
    static struct request add1, add127, sgemm;
    unsigned iters = env_uint("BENCH_ITERS", 2000);
    unsigned sg_iters = env_uint("BENCH_SGEMM_ITERS", cuda ? 20 : 3);
    struct stats m, d;
    int fd;

    make_request(&add1, "VECTOR_ADD n=1", VGPU_OP_VECTOR_ADD, 1);
    make_request(&add127, "VECTOR_ADD n=127", VGPU_OP_VECTOR_ADD,
                 VGPU_VECTOR_ADD_MAX_COUNT);
    make_request(&sgemm, "SGEMM n=512", VGPU_OP_SGEMM, 512);

    med_pid = start_mediator(backend);
    fd = dev_open(cuda ? 60000 : 10000);
    if (fd < 0) {
        fprintf(stderr, "bench: %s: cannot reach the mediator (log: %s)\n",
                backend, mlog);
        return -1;
    }
    if (via_mediator(fd, &add1, iters, iters / 10 + 1, &m) ||
        direct(cuda, &add1, iters, iters / 10 + 1, &d)) {
        return -1;
    }
    print_row(backend, add1.name, &m, &d);
    if (via_mediator(fd, &add127, iters, iters / 10 + 1, &m) ||
        direct(cuda, &add127, iters, iters / 10 + 1, &d)) {
        return -1;
    }
    print_row(backend, add127.name, &m, &d);
    if (via_mediator(fd, &sgemm, sg_iters, 1, &m) ||
        direct(cuda, &sgemm, sg_iters, 1, &d)) {
        return -1;
    }
    print_row(backend, sgemm.name, &m, &d);
    close(fd);
    harness_stop_process(&med_pid);
    return 0;
}

int main(int argc, char **argv)
{
    char xs_sock[PATH_MAX], dir[PATH_MAX + 16];
    const char *backends = getenv("BENCH_BACKENDS");
    char cuda_note[600] = "";
    char why[512] = "";

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 2) {
        fprintf(stderr, "usage: vgpu-bench BUILD_DIR\n");
        return 2;
    }
    if (!harness_init(&ctx, "bench: ", argv[1])) {
        fprintf(stderr, "bench: %s or %s not built\n", ctx.mediator_bin,
                ctx.xs_bin);
        return 1;
    }
    if (!backends) {
        backends = "cpu cuda";
    }
    if (!harness_make_workdir(&ctx, "/tmp/vgpu-bench-XXXXXX")) {
        return 1;
    }
    atexit(cleanup);
    signal(SIGPIPE, SIG_IGN);
    snprintf(qroot, sizeof(qroot), "%s/qemu", ctx.workdir);
    snprintf(mlog, sizeof(mlog), "%s/mediator.log", ctx.workdir);
    snprintf(xs_sock, sizeof(xs_sock), "%s/xenstored.sock", ctx.workdir);
    mkdir(qroot, 0755);
    xs = harness_open_xenstore(&ctx, xs_sock, &xs_pid);
    if (!xs) {
        return 1;
    }
    /* The domain starts (as xenopsd and our xapi plugin would do it). */
    xs_introduce_domain(xs, DOMID, 0, 0);
    xs_set(VGPU_XS_KEY_POOL, "A");
    xs_set(VGPU_XS_KEY_PRIORITY, "high");
    xs_set(VGPU_XS_KEY_VM_ID, "1");
    snprintf(dir, sizeof(dir), "%s/root-%u", qroot, DOMID);
    mkdir(dir, 0755);

    printf("vgpu bench: one VM, one request in flight (protocol v1); "
           "latency in us, throughput in requests/s\n");
    printf("ratio = mediator / direct (latency: above 1 is the mediator's "
           "cost; throughput: below 1)\n");
    if (getenv("VGPU_LIBCUDA")) {
        printf("note: VGPU_LIBCUDA=%s (not the system's libcuda.so.1)\n",
               getenv("VGPU_LIBCUDA"));
    }
    printf("%-5s %-16s %10s %10s %11s | %10s %10s %11s | %8s %8s\n", "", "",
           "mediator", "", "", "direct", "", "", "ratio", "ratio");
    printf("%-5s %-16s %10s %10s %11s | %10s %10s %11s | %8s %8s\n", "back",
           "request", "median", "p99", "req/s", "median", "p99", "req/s",
           "latency", "thruput");

    if (strstr(backends, "cpu") && bench_backend("cpu", NULL)) {
        errors++;
    }
    if (strstr(backends, "cuda")) {
        struct vgpu_cuda_direct *cuda = NULL;

        if (vgpu_cuda_direct_open(&cuda, 0, why, sizeof(why))) {
            snprintf(cuda_note, sizeof(cuda_note), " (cuda: skipped: %s)", why);
        } else {
            if (bench_backend("cuda", cuda)) {
                errors++;
            }
            vgpu_cuda_direct_close(cuda);
        }
    }
    if (errors) {
        printf("--- mediator log ---\n");
        harness_print_file(mlog);
        printf("bench: FAILED%s\n", cuda_note);
        return 1;
    }
    printf("bench: done%s\n", cuda_note);
    return 0;
}
