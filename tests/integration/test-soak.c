/*
 * test-soak.c - the soak (issue 12, item 3): 64 simulated VMs against the
 * real mediator for SOAK_SECONDS (default 20 in `make check`; `make soak`
 * runs it for longer), with a mixed workload, while the mediator's fds and
 * memory are sampled.
 *
 * Odd domains speak v1 on the socket (one request at a time, as the
 * device does: VECTOR_ADD of 1..127 elements), even ones v2 through the
 * shared region (tests/lib/shmdev.c: 4 in flight, VECTOR_ADD of 1..4096
 * elements, now and then one of 1 Mi elements, an 8 MiB request).  Priorities
 * are mixed, pools A and B both.  Every thread now and then drops its
 * connection with a request in flight and connects again.
 *
 * Asserted: every request answered exactly once and correctly on the
 * connection that sent it (a v1 answer carries the request's id; a v2
 * completion is matched to its request by the device side, and one it
 * does not know is a breach), nothing refused; after a warm-up the
 * mediator's open fds stay within a few of where they were, and its
 * RSS stops growing.  Reported, never asserted: requests per second and
 * the p50/p99 of one high-priority v2 VM under this load.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>
#include <xenstore.h>

#include "harness.h"
#include "shmdev.h"
#include "util.h"
#include "vgpu_protocol.h"

#define NDOMS 64
#define WATCH_DOM 2 /* a high-priority v2 VM: its latencies are reported */
#define V2_DEPTH 4
#define RECONNECT_EVERY 400 /* requests, about */
#define BIG_EVERY 64
#define BIG_N (1u << 20) /* slot 0 only */
#define SMALL_MAX 4096
#define MAX_SAMPLES 4096
#define LAT_CAP 200000

static struct harness ctx;
static char qroot[PATH_MAX], mlog[PATH_MAX];
static pid_t xs_pid = -1, med_pid = -1;
static struct xs_handle *xs;
static int passed, failed;


struct vm {
    uint32_t domid;
    bool v2;
    volatile int *stop;
    uint64_t sent, answered, reconnects;
    char err[160]; /* the first thing that went wrong */
    uint64_t *lat;
    size_t nlat;
    pthread_t th;
};

/* ---------------------------------------------------------------------- */
/* set-up                                                                  */
/* ---------------------------------------------------------------------- */

static pid_t start_mediator(void)
{
    pid_t pid = fork();

    if (pid == 0) {
        int fd = open(mlog, O_WRONLY | O_CREAT | O_APPEND, 0644);

        dup2(fd, 2);
        /* A small ASan quarantine, so that freed memory is reused and
         * the RSS of a sanitized mediator can level off at all. */
        setenv("ASAN_OPTIONS", "quarantine_size_mb=8:detect_leaks=1", 1);
        execl(ctx.mediator_bin, ctx.mediator_bin, "--qemu-root", qroot, "--log",
              "stderr", "--status-file", "none", "--admin-socket", "none",
              "--backend", "cpu", "--cpu-gpus", "4", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void cleanup(void)
{
    harness_teardown(&ctx, &med_pid, &xs_pid, xs);
}

static void make_domain(uint32_t domid)
{
    static const char *const prio[] = {"high", "medium", "low"};

    harness_make_domain(&ctx, xs, qroot, domid, domid % 4 ? "A" : "B",
                        domid == WATCH_DOM ? "high" : prio[domid % 3]);
}

static int dev_hello(uint32_t domid)
{
    return harness_dev_hello(qroot, domid, 10000);
}

/* ---------------------------------------------------------------------- */
/* the workload                                                            */
/* ---------------------------------------------------------------------- */

static uint32_t next_rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void vm_fail(struct vm *v, const char *what, const char *why)
{
    if (!v->err[0]) {
        snprintf(v->err, sizeof(v->err), "%s: %s", what, why ? why : "?");
    }
}

/* v1: one request at a time; a reconnect now and then leaves one
 * unanswered on the old connection, which must never show on the new. */
static void run_v1(struct vm *v)
{
    uint32_t rs = 0x9e3779b9u * v->domid, id = 0;
    int fd = dev_hello(v->domid);
    struct harness_reply r;
    uint8_t buf[VGPU_MSG_HDR_SIZE + VGPU_BUF_SIZE];

    while (!*v->stop && fd >= 0) {
        uint32_t n = 1 + next_rnd(&rs) % 127;
        size_t len = harness_make_hdr(buf, VGPU_MSG_REQUEST, ++id,
                                      (uint32_t)VGPU_VECTOR_ADD_REQ_LEN(n));
        uint32_t seed = next_rnd(&rs);

        harness_put32(buf + len, VGPU_OP_VECTOR_ADD);
        harness_put32(buf + len + 4, n);
        for (uint32_t i = 0; i < n; i++) {
            harness_put32(buf + len + 8 + 4 * i, seed + i);
            harness_put32(buf + len + 8 + 4 * (n + i), i);
        }
        len += (size_t)VGPU_VECTOR_ADD_REQ_LEN(n);
        if (!harness_send_all(fd, buf, len)) {
            vm_fail(v, "v1 send", strerror(errno));
            break;
        }
        v->sent++;
        if (next_rnd(&rs) % RECONNECT_EVERY == 0) {
            close(fd); /* with its request in flight */
            v->sent--;
            v->reconnects++;
            fd = dev_hello(v->domid);
            continue;
        }
        if (harness_read_reply(fd, &r, 30000)) {
            vm_fail(v, "v1", "no answer within 30 s");
            break;
        }
        if (r.type != VGPU_MSG_RESPONSE || r.request_id != id || r.status ||
            r.length != VGPU_VECTOR_ADD_RESP_LEN(n)) {
            vm_fail(v, "v1", "an answer that is not this request's");
            break;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (harness_get32(r.payload + 8 + 4 * i) != seed + 2 * i) {
                vm_fail(v, "v1", "a wrong sum");
                goto out;
            }
        }
        v->answered++;
    }
out:
    if (fd < 0 && !*v->stop) {
        vm_fail(v, "v1", "cannot connect");
    }
    if (fd >= 0) {
        close(fd);
    }
}

struct v2_slot {
    struct shmdev_req *q;
    uint8_t *req, *resp;
    uint32_t n, seed;
    uint64_t t0;
};

static bool v2_fill(struct vm *v, struct shmdev *d, struct v2_slot *s,
                    bool big_slot, uint32_t *rs)
{
    uint32_t n = big_slot && next_rnd(rs) % BIG_EVERY == 0
                     ? BIG_N
                     : 1 + next_rnd(rs) % SMALL_MAX;

    s->n = n;
    s->seed = next_rnd(rs);
    vgpu_put_le32(s->req, VGPU_OP_VECTOR_ADD);
    vgpu_put_le32(s->req + 4, n);
    for (uint32_t i = 0; i < n; i++) {
        vgpu_put_le32(s->req + 8 + 4 * (uint64_t)i, s->seed + i);
        vgpu_put_le32(s->req + 8 + 4 * ((uint64_t)n + i), i);
    }
    s->t0 = now_ns();
    s->q = shmdev_submit(d, s->req, VGPU_VECTOR_ADD_REQ_LEN((uint64_t)n),
                         s->resp, VGPU_VECTOR_ADD_RESP_LEN((uint64_t)n));
    if (!s->q) {
        vm_fail(v, "v2", "submit refused");
        return false;
    }
    v->sent++;
    return true;
}

static bool v2_open(struct vm *v, struct shmdev *d)
{
    const char *why = NULL;
    uint32_t status;
    int fd = dev_hello(v->domid);

    if (fd < 0 || shmdev_open(d, fd, 10000, &status, &why)) {
        vm_fail(v, "v2 channel", fd < 0 ? "cannot connect" : why);
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    d->spin_us = 0; /* 64 spinning devices would starve the mediator */
    return true;
}

static void v2_close(struct shmdev *d)
{
    int fd = d->sock;

    shmdev_close(d);
    close(fd);
}

static void run_v2(struct vm *v)
{
    struct v2_slot s[V2_DEPTH];
    uint32_t rs = 0x85ebca6bu * v->domid;
    struct shmdev d;
    bool ok = true;

    memset(s, 0, sizeof(s));
    for (int i = 0; i < V2_DEPTH; i++) {
        uint64_t n = i == 0 ? BIG_N : SMALL_MAX;

        s[i].req = malloc(VGPU_VECTOR_ADD_REQ_LEN(n));
        s[i].resp = malloc(VGPU_VECTOR_ADD_RESP_LEN(n));
        if (!s[i].req || !s[i].resp) {
            vm_fail(v, "v2", "out of memory");
            goto out;
        }
    }
    if (!v2_open(v, &d)) {
        goto out;
    }
    for (int i = 0; i < V2_DEPTH && ok; i++) {
        ok = v2_fill(v, &d, &s[i], i == 0, &rs);
    }
    for (int i = 0; ok && !*v->stop; i = (i + 1) % V2_DEPTH) {
        const char *why = NULL;
        long st = shmdev_wait(&d, s[i].q, 30000, &why);
        uint64_t n = s[i].n;

        if (st != VGPU_ERR_NONE) {
            vm_fail(v, "v2", st < 0 ? why : vgpu_error_name((uint32_t)st));
            break;
        }
        if (s[i].q->resp_total != VGPU_VECTOR_ADD_RESP_LEN(n) ||
            vgpu_get_le32(s[i].resp + 4) != n ||
            vgpu_get_le32(s[i].resp + 8) != s[i].seed ||
            vgpu_get_le32(s[i].resp + 8 + 4 * (n - 1)) !=
                s[i].seed + 2 * (uint32_t)(n - 1) ||
            vgpu_get_le32(s[i].resp + 8 + 4 * (n / 2)) !=
                s[i].seed + 2 * (uint32_t)(n / 2)) {
            vm_fail(v, "v2", "a wrong answer");
            break;
        }
        v->answered++;
        if (v->lat && v->nlat < LAT_CAP && n < BIG_N) {
            v->lat[v->nlat++] = now_ns() - s[i].t0;
        }
        if (next_rnd(&rs) % RECONNECT_EVERY == 0) {
            /* Drop the channel with the others in flight. */
            v->sent -= V2_DEPTH - 1;
            v2_close(&d);
            v->reconnects++;
            if (!v2_open(v, &d)) {
                goto out;
            }
            for (int k = 0; k < V2_DEPTH && ok; k++) {
                ok = v2_fill(v, &d, &s[k], k == 0, &rs);
            }
            continue;
        }
        ok = v2_fill(v, &d, &s[i], i == 0, &rs);
    }
    /* What is still in flight at the end is not counted as sent. */
    v->sent = v->answered + (v->err[0] ? 1 : 0);
    v2_close(&d);
out:
    for (int i = 0; i < V2_DEPTH; i++) {
        free(s[i].req);
        free(s[i].resp);
    }
}

static void *vm_thread(void *arg)
{
    struct vm *v = arg;

    if (v->v2) {
        run_v2(v);
    } else {
        run_v1(v);
        /* The last one, in flight when the run stopped, is not lost. */
        if (!v->err[0] && v->sent == v->answered + 1) {
            v->sent--;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* the mediator's resources                                                */
/* ---------------------------------------------------------------------- */

static long count_fds(pid_t pid)
{
    char path[64];
    struct dirent *e;
    long n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    d = opendir(path);
    if (!d) {
        return -1;
    }
    while ((e = readdir(d))) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[128];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "re");
    while (f && fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmRSS:", 6)) {
            kb = strtol(line + 6, NULL, 10);
        }
    }
    if (f) {
        fclose(f);
    }
    return kb;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static bool find_binaries(const char *argv0)
{
    char self[PATH_MAX], dir[PATH_MAX];

    if (!realpath(argv0, self)) {
        snprintf(self, sizeof(self), "%s", argv0);
    }
    snprintf(dir, sizeof(dir), "%s", self);
    *strrchr(dir, '/') = '\0';
    *strrchr(dir, '/') = '\0';
    return harness_init(&ctx, "", dir);
}

int main(int argc, char **argv)
{
    static struct vm vms[NDOMS];
    static long fds[MAX_SAMPLES], rss[MAX_SAMPLES];
    const char *env = getenv("SOAK_SECONDS");
    long secs = env ? strtol(env, NULL, 10) : 20, t0, nsamp = 0;
    uint64_t sent = 0, answered = 0, reconnects = 0;
    volatile int stop = 0;
    char xs_sock[PATH_MAX];
    long warm, fd_warm_max = 0, fd_max = 0, rss_mid = 0, rss_end = 0;

    (void)argc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (secs < 5 || secs > 86400) {
        secs = 20;
    }
    if (!find_binaries(argv[0])) {
        printf("SKIP: %s or %s not built\n", ctx.mediator_bin, ctx.xs_bin);
        return 77;
    }
    if (!harness_make_workdir(&ctx, "/tmp/vgpu-soak-XXXXXX")) {
        return 1;
    }
    atexit(cleanup);
    snprintf(qroot, sizeof(qroot), "%s/qemu", ctx.workdir);
    snprintf(mlog, sizeof(mlog), "%s/mediator.log", ctx.workdir);
    snprintf(xs_sock, sizeof(xs_sock), "%s/xenstored.sock", ctx.workdir);
    mkdir(qroot, 0755);
    xs = harness_open_xenstore(&ctx, xs_sock, &xs_pid);
    if (!xs) {
        return 1;
    }
    for (uint32_t d = 1; d <= NDOMS; d++) {
        make_domain(d);
    }
    med_pid = start_mediator();
    printf("case: soak of %u VMs (v1 and v2, mixed priorities, pools A and "
           "B, reconnects) for %ld s\n",
           NDOMS, secs);
    for (unsigned i = 0; i < NDOMS; i++) {
        vms[i].domid = i + 1;
        vms[i].v2 = vms[i].domid % 2 == 0;
        vms[i].stop = &stop;
        if (vms[i].domid == WATCH_DOM) {
            vms[i].lat = calloc(LAT_CAP, sizeof(uint64_t));
        }
        if (pthread_create(&vms[i].th, NULL, vm_thread, &vms[i])) {
            printf("  cannot start thread %u\n", i);
            return 1;
        }
    }
    t0 = harness_now_ms();
    while (harness_now_ms() - t0 < secs * 1000 && nsamp < MAX_SAMPLES) {
        harness_sleep_ms(1000);
        fds[nsamp] = count_fds(med_pid);
        rss[nsamp] = rss_kb(med_pid);
        nsamp++;
    }
    stop = 1;
    for (unsigned i = 0; i < NDOMS; i++) {
        pthread_join(vms[i].th, NULL);
        sent += vms[i].sent;
        answered += vms[i].answered;
        reconnects += vms[i].reconnects;
        CHECK(!vms[i].err[0], "dom%u (%s): %s", vms[i].domid,
              vms[i].v2 ? "v2" : "v1", vms[i].err);
        CHECK(vms[i].answered > 0, "dom%u was never answered", vms[i].domid);
    }
    CHECK(sent == answered, "%llu sent, %llu answered",
          (unsigned long long)sent, (unsigned long long)answered);
    CHECK(waitpid(med_pid, NULL, WNOHANG) == 0, "the mediator died");

    /* Resources: the first third is the warm-up. */
    warm = nsamp / 3;
    for (long i = 0; i < nsamp; i++) {
        if (i < warm) {
            fd_warm_max = fds[i] > fd_warm_max ? fds[i] : fd_warm_max;
        } else {
            fd_max = fds[i] > fd_max ? fds[i] : fd_max;
        }
        if (i >= warm && i < warm + (nsamp - warm) / 2) {
            rss_mid = rss[i] > rss_mid ? rss[i] : rss_mid;
        } else if (i >= warm) {
            rss_end = rss[i] > rss_end ? rss[i] : rss_end;
        }
    }
    printf("  %llu requests answered (%.0f/s), %llu reconnects\n",
           (unsigned long long)answered, (double)answered / (double)secs,
           (unsigned long long)reconnects);
    printf("  mediator fds: max %ld in the warm-up, %ld after; RSS max %ld "
           "kB in the middle third, %ld kB in the last\n",
           fd_warm_max, fd_max, rss_mid, rss_end);
    printf("  samples (fds/RSS kB):");
    for (long i = 0; i < nsamp; i++) {
        printf(" %ld/%ld", fds[i], rss[i]);
    }
    printf("\n");
    /* Up to 4 fds per VM come and go with a reconnect (socket, memfd,
     * two eventfds); a leak grows without bound instead. */
    CHECK(nsamp >= 3 && fd_max <= fd_warm_max + 16,
          "fds grew: %ld after the warm-up against %ld", fd_max, fd_warm_max);
    /* The RSS swings with the 8 MiB requests in flight; a leak makes the
     * last third's peak run away from the middle one's. */
    CHECK(rss_end <= rss_mid + rss_mid / 4 + 16384,
          "RSS grew: %ld kB, from %ld kB", rss_end, rss_mid);
    for (unsigned i = 0; i < NDOMS; i++) {
        if (vms[i].lat && vms[i].nlat) {
            qsort(vms[i].lat, vms[i].nlat, sizeof(uint64_t), cmp_u64);
            printf("  dom%u (high, v2): %zu requests, p50 %.1f us, p99 %.1f "
                   "us\n",
                   vms[i].domid, vms[i].nlat,
                   (double)vms[i].lat[vms[i].nlat / 2] / 1000.0,
                   (double)vms[i].lat[vms[i].nlat * 99 / 100] / 1000.0);
        }
        free(vms[i].lat);
    }
    if (failed) {
        printf("--- mediator log (%s), last part ---\n", mlog);
        harness_print_file(mlog);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
