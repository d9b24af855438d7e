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
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

#include "backend.h"
#include "cuda/direct.h"
#include "payload.h"
#include "vgpu_protocol.h"
#include "wire.h"

#define DOMID 1

static char workdir[PATH_MAX], qroot[PATH_MAX], mlog[PATH_MAX];
static char mediator_bin[PATH_MAX], xs_bin[PATH_MAX];
static pid_t xs_pid = -1, med_pid = -1;
static struct xs_handle *xs;
static int errors;

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------------- */
/* processes                                                               */
/* ---------------------------------------------------------------------- */

static pid_t start_xs_server(const char *sock)
{
    int fds[2];
    char buf[64] = {0};
    pid_t pid;
    FILE *f;

    if (pipe(fds)) {
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl(xs_bin, xs_bin, "--socket", sock, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    f = fdopen(fds[0], "r");
    if (!f || !fgets(buf, sizeof(buf), f) || strncmp(buf, "ready", 5)) {
        fprintf(stderr, "bench: xs-server did not get ready\n");
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    fclose(f);
    return pid;
}

static pid_t start_mediator(const char *backend)
{
    pid_t pid = fork();

    if (pid == 0) {
        int fd = open(mlog, O_WRONLY | O_CREAT | O_APPEND, 0644);

        dup2(fd, 2);
        execl(mediator_bin, mediator_bin, "--qemu-root", qroot, "--log",
              "stderr", "--status-file", "none", "--admin-socket", "none",
              "--backend", backend, "--cpu-gpus", "1", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop_process(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGTERM);
        waitpid(*pid, NULL, 0);
        *pid = -1;
    }
}

static void cleanup(void)
{
    char cmd[PATH_MAX + 16];

    stop_process(&med_pid);
    stop_process(&xs_pid);
    if (xs) {
        xs_close(xs);
    }
    if (workdir[0] && !getenv("VGPU_KEEP")) {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", workdir);
        if (system(cmd)) {
            fprintf(stderr, "bench: could not remove %s\n", workdir);
        }
    }
}

static void xs_set(const char *key, const char *val)
{
    char path[128];

    snprintf(path, sizeof(path), VGPU_XS_DOMAIN_FMT "/%s", DOMID, key);
    if (!xs_write(xs, XBT_NULL, path, val, strlen(val))) {
        fprintf(stderr, "bench: xs_write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* ---------------------------------------------------------------------- */
/* the device's side of the socket                                         */
/* ---------------------------------------------------------------------- */

static bool send_all(int fd, const void *buf, size_t len)
{
    return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len;
}

static bool read_full(int fd, void *buf, size_t len, int timeout_ms)
{
    size_t got = 0;

    while (got < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, timeout_ms) != 1) {
            return false;
        }
        n = recv(fd, (char *)buf + got, len - got, 0);
        if (n <= 0) {
            return false;
        }
        got += (size_t)n;
    }
    return true;
}

/* One message; its payload (<= VGPU_MSG_MAX_PAYLOAD) into payload. */
static bool read_msg(int fd, struct vgpu_msg_hdr *h, uint8_t *payload)
{
    uint8_t raw[VGPU_MSG_HDR_SIZE];

    if (!read_full(fd, raw, sizeof(raw), 60000)) {
        return false;
    }
    h->magic = wire_get_le32(raw);
    h->version = (uint16_t)(raw[4] | raw[5] << 8);
    h->type = (uint16_t)(raw[6] | raw[7] << 8);
    h->request_id = wire_get_le32(raw + 8);
    h->vm_id = wire_get_le32(raw + 12);
    h->status = wire_get_le32(raw + 16);
    h->length = wire_get_le32(raw + 20);
    if (h->magic != VGPU_MSG_MAGIC || h->length > VGPU_MSG_MAX_PAYLOAD) {
        return false;
    }
    return read_full(fd, payload, h->length, 60000);
}

static bool send_msg(int fd, uint16_t type, uint32_t req_id,
                     const void *payload, uint32_t len)
{
    uint8_t buf[VGPU_MSG_MAX_SIZE];
    struct vgpu_msg_hdr h = {.type = type, .request_id = req_id,
                             .length = len};
    size_t n = wire_encode(buf, sizeof(buf), &h, payload);

    return n && send_all(fd, buf, n);
}

/* Connect as the device of DOMID and say HELLO; the fd or -1. */
static int dev_open(int timeout_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000u;
    uint8_t hello[16], ack[VGPU_MSG_MAX_PAYLOAD];
    struct vgpu_msg_hdr h;
    int fd = -1;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/root-%u/%s", qroot,
             DOMID, VGPU_SOCKET_NAME);
    while (now_ns() < end) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            break;
        }
        close(fd);
        fd = -1;
        if (med_pid > 0 && waitpid(med_pid, NULL, WNOHANG) == med_pid) {
            med_pid = -1;
            return -1; /* the mediator exited */
        }
        sleep_ms(20);
    }
    if (fd < 0) {
        return -1;
    }
    wire_put_le32(hello, VGPU_POOL_A);
    wire_put_le32(hello + 4, VGPU_PRIO_HIGH);
    wire_put_le32(hello + 8, DOMID);
    wire_put_le32(hello + 12, VGPU_CAPS_V1);
    if (!send_msg(fd, VGPU_MSG_HELLO, 0, hello, sizeof(hello)) ||
        !read_msg(fd, &h, ack) || h.type != VGPU_MSG_HELLO_ACK) {
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
    uint8_t payload[VGPU_MSG_MAX_PAYLOAD];
    static uint32_t req_id;
    uint64_t start = 0;

    for (unsigned i = 0; ns && i < warmup + iters; i++) {
        struct vgpu_msg_hdr h;
        uint64_t t0;

        if (i == warmup) {
            start = now_ns();
        }
        t0 = now_ns();
        if (!send_msg(fd, VGPU_MSG_REQUEST, ++req_id, r->buf, r->len) ||
            !read_msg(fd, &h, payload)) {
            fprintf(stderr, "bench: %s: the mediator stopped answering\n",
                    r->name);
            free(ns);
            return -1;
        }
        if (h.type != VGPU_MSG_RESPONSE || h.status != VGPU_ERR_NONE ||
            h.request_id != req_id || h.length != r->expect_len ||
            memcmp(payload, r->expect, r->expect_len)) {
            fprintf(stderr, "bench: %s: wrong answer (type %u status %s)\n",
                    r->name, h.type, vgpu_error_name(h.status));
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
           d->p99_us, d->per_s, d->median_us > 0 ? m->median_us / d->median_us : 0,
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
    stop_process(&med_pid);
    return 0;
}

int main(int argc, char **argv)
{
    char xs_sock[PATH_MAX], dir[PATH_MAX + 16];
    const char *backends = getenv("BENCH_BACKENDS");
    char cuda_note[600] = "";
    const char *why = NULL;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 2) {
        fprintf(stderr, "usage: vgpu-bench BUILD_DIR\n");
        return 2;
    }
    snprintf(mediator_bin, sizeof(mediator_bin), "%s/mediator/vgpu-mediator",
             argv[1]);
    snprintf(xs_bin, sizeof(xs_bin), "%s/xs-server/xs-server", argv[1]);
    if (access(mediator_bin, X_OK) || access(xs_bin, X_OK)) {
        fprintf(stderr, "bench: %s or %s not built\n", mediator_bin, xs_bin);
        return 1;
    }
    if (!backends) {
        backends = "cpu cuda";
    }
    snprintf(workdir, sizeof(workdir), "/tmp/vgpu-bench-XXXXXX");
    if (!mkdtemp(workdir)) {
        perror("mkdtemp");
        return 1;
    }
    atexit(cleanup);
    signal(SIGPIPE, SIG_IGN);
    snprintf(qroot, sizeof(qroot), "%s/qemu", workdir);
    snprintf(mlog, sizeof(mlog), "%s/mediator.log", workdir);
    snprintf(xs_sock, sizeof(xs_sock), "%s/xenstored.sock", workdir);
    mkdir(qroot, 0755);
    xs_pid = start_xs_server(xs_sock);
    if (xs_pid < 0) {
        return 1;
    }
    setenv("XENSTORED_PATH", xs_sock, 1);
    xs = xs_open(0);
    if (!xs) {
        perror("bench: xs_open");
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
    printf("%-5s %-16s %10s %10s %11s | %10s %10s %11s | %8s %8s\n",
           "back", "request", "median", "p99", "req/s", "median", "p99",
           "req/s", "latency", "thruput");

    if (strstr(backends, "cpu") && bench_backend("cpu", NULL)) {
        errors++;
    }
    if (strstr(backends, "cuda")) {
        struct vgpu_cuda_direct *cuda = NULL;

        if (vgpu_cuda_direct_open(&cuda, 0, &why)) {
            snprintf(cuda_note, sizeof(cuda_note), " (cuda: skipped: %s)",
                     why);
        } else {
            if (bench_backend("cuda", cuda)) {
                errors++;
            }
            vgpu_cuda_direct_close(cuda);
        }
    }
    if (errors) {
        FILE *f = fopen(mlog, "r");
        char line[1024];

        printf("--- mediator log ---\n");
        while (f && fgets(line, sizeof(line), f)) {
            fputs(line, stdout);
        }
        if (f) {
            fclose(f);
        }
        printf("bench: FAILED%s\n", cuda_note);
        return 1;
    }
    printf("bench: done%s\n", cuda_note);
    return 0;
}
