/*
 * test-sched-modes.c - the mediator's --schedule modes against the real
 * daemon (CPU backend, one GPU), with simulated v1 devices that keep the
 * GPU busy with SGEMMs of two sizes:
 *
 *  - priority: dom1 (high) and dom2 (low) both keep requests waiting; dom1
 *    gets nearly all of the GPU's time;
 *  - equal: the same two, dom1's SGEMMs 3.4x as costly as dom2's; each
 *    gets about half of the GPU time (the mediator's own per-VM GPU time
 *    is read back from its status file), so dom2 completes about 3.4x as
 *    many requests;
 *  - fixed:4: dom2 alone gets at most about a quarter of the GPU's time
 *    (the GPU idle the rest), measured against dom2 alone in priority
 *    mode.
 *
 * Shares are ratios within one run, not times (a slow machine slows both
 * sides alike).  A run of each mode is RUN_MS long.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xenstore.h>

#include "harness.h"

#define RUN_MS 3000
#define DEPTH 4 /* requests each device keeps waiting */

static struct harness ctx;
static char qroot[PATH_MAX], mlog[PATH_MAX], xs_sock[PATH_MAX];
static char admin[PATH_MAX], smi[PATH_MAX + 32];
static struct xs_handle *xs;
static pid_t xs_pid = -1, med_pid = -1;
static int passed, failed;

static void cleanup(void)
{
    harness_teardown(&ctx, &med_pid, &xs_pid, xs);
}

static pid_t start_mediator(const char *mode)
{
    pid_t pid = fork();

    if (pid == 0) {
        int fd = open(mlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
        char pools[PATH_MAX + 16];

        snprintf(pools, sizeof(pools), "%s/no-pools.conf", ctx.workdir);
        dup2(fd, 2);
        execl(ctx.mediator_bin, ctx.mediator_bin, "--qemu-root", qroot, "--log",
              "stderr", "--backend", "cpu", "--pools", pools, "--status-file",
              "none", "--admin-socket", admin, "--schedule", mode,
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* --schedule with a value that is no mode: a usage error (exit 2). */
static int bad_schedule_status(const char *mode)
{
    pid_t pid = fork();
    int st = 0;

    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        dup2(null, 2);
        execl(ctx.mediator_bin, ctx.mediator_bin, "--schedule", mode,
              (char *)NULL);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
        return -1;
    }
    return WEXITSTATUS(st);
}

static size_t make_sgemm(uint8_t *buf, uint32_t req_id, uint32_t n)
{
    uint8_t p[VGPU_SGEMM_REQ_LEN];

    harness_put32(p, VGPU_OP_SGEMM);
    harness_put32(p + 4, n);
    harness_put32(p + 8, req_id);
    harness_make_hdr(buf, VGPU_MSG_REQUEST, req_id, sizeof(p));
    memcpy(buf + VGPU_MSG_HDR_SIZE, p, sizeof(p));
    return VGPU_MSG_HDR_SIZE + sizeof(p);
}

struct dev {
    int fd;
    uint32_t n; /* SGEMM size */
    uint32_t next_id;
    long done, errors;
};

static bool send_one(struct dev *d)
{
    uint8_t buf[VGPU_MSG_HDR_SIZE + VGPU_SGEMM_REQ_LEN];
    size_t len = make_sgemm(buf, ++d->next_id, d->n);

    return harness_send_all(d->fd, buf, len);
}

/* Drive every device for ms: DEPTH requests each waiting at all times. */
static void drive(struct dev *devs, int ndev, int ms)
{
    long end = harness_now_ms() + ms;

    for (int i = 0; i < ndev; i++) {
        devs[i].done = devs[i].errors = 0;
        for (int k = 0; k < DEPTH; k++) {
            send_one(&devs[i]);
        }
    }
    while (harness_now_ms() < end) {
        for (int i = 0; i < ndev; i++) {
            struct harness_reply r;

            /* A reply is ready or comes soon: the GPU is always busy. */
            if (harness_read_reply(devs[i].fd, &r, 1) == 0 &&
                r.type == VGPU_MSG_RESPONSE) {
                if (r.status == VGPU_ERR_NONE) {
                    devs[i].done++;
                } else {
                    devs[i].errors++;
                }
                if (harness_now_ms() < end) {
                    send_one(&devs[i]);
                }
            }
        }
    }
}

/* Drain what is still in flight so the next run starts clean. */
static void drain(struct dev *devs, int ndev)
{
    for (int i = 0; i < ndev; i++) {
        struct harness_reply r;

        while (harness_read_reply(devs[i].fd, &r, 1500) == 0) {
        }
        close(devs[i].fd);
    }
}

/* The mediator's GPU time for domid as vgpu-smi --json reports it
 * ("domid": N, ... "gpu_ns": M in the VM's object), in ns; -1 when not
 * found. */
static long long gpu_ns_of(uint32_t domid)
{
    char cmd[PATH_MAX * 2 + 64], buf[65536], key[32], *p;
    size_t n;
    FILE *f;

    snprintf(cmd, sizeof(cmd), "%s --json -s %s", smi, admin);
    f = popen(cmd, "r");
    if (!f) {
        return -1;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    pclose(f);
    buf[n] = 0;
    snprintf(key, sizeof(key), "\"domid\": %u,", domid);
    p = strstr(buf, key);
    p = p ? strstr(p, "\"gpu_ns\": ") : NULL;
    return p ? atoll(p + 10) : -1;
}

static void start(const char *mode)
{
    char path[PATH_MAX];

    med_pid = start_mediator(mode);
    harness_sock_path(path, sizeof(path), qroot, 2);
    if (!harness_wait_path(path, true, 5000)) {
        printf("FAILED: mediator (--schedule %s) did not start\n", mode);
        harness_print_file(mlog);
        exit(1);
    }
}

static void stop(void)
{
    harness_stop_process(&med_pid);
}

static void open_devs(struct dev *devs, int ndev, const uint32_t *domids,
                      const uint32_t *sizes)
{
    for (int i = 0; i < ndev; i++) {
        memset(&devs[i], 0, sizeof(devs[i]));
        devs[i].fd = harness_dev_hello(qroot, domids[i], 5000);
        devs[i].n = sizes[i];
        if (devs[i].fd < 0) {
            printf("FAILED: no device connection for dom%u\n", domids[i]);
            exit(1);
        }
    }
}

int main(int argc, char **argv)
{
    char build[PATH_MAX];
    const uint32_t both[] = {1, 2}, big_small[] = {384, 256},
                   same[] = {256, 256};
    const uint32_t alone[] = {2}, small[] = {256};
    struct dev devs[2];
    double full_rate;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1) {
        snprintf(build, sizeof(build), "%s", argv[1]);
    } else {
        if (!realpath(argv[0], build)) {
            snprintf(build, sizeof(build), "%s", argv[0]);
        }
        *strrchr(build, '/') = '\0';
        *strrchr(build, '/') = '\0';
    }
    if (!harness_init(&ctx, "test-sched-modes: ", build)) {
        printf("SKIP: %s or %s not built\n", ctx.mediator_bin, ctx.xs_bin);
        return 77;
    }
    if (!harness_make_workdir(&ctx, "/tmp/vgpu-sched-XXXXXX")) {
        return 1;
    }
    atexit(cleanup);
    signal(SIGPIPE, SIG_IGN);
    snprintf(qroot, sizeof(qroot), "%s/qemu", ctx.workdir);
    snprintf(mlog, sizeof(mlog), "%s/mediator.log", ctx.workdir);
    snprintf(admin, sizeof(admin), "%s/admin.sock", ctx.workdir);
    snprintf(smi, sizeof(smi), "%s/mediator/vgpu-smi", build);
    snprintf(xs_sock, sizeof(xs_sock), "%s/xenstored.sock", ctx.workdir);
    mkdir(qroot, 0755);
    xs = harness_open_xenstore(&ctx, xs_sock, &xs_pid);
    if (!xs) {
        return 1;
    }
    harness_make_domain(&ctx, xs, qroot, 1, "A", "high");
    harness_make_domain(&ctx, xs, qroot, 2, "A", "low");

    {
        static const char *const bad[] = {"",         "bogus",    "Equal",
                                          "fixed",    "fixed:",   "fixed:0",
                                          "fixed:65", "fixed:4x", "fixed:-1",
                                          "priority "};

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            int st = bad_schedule_status(bad[i]);

            CHECK(st == 2, "--schedule '%s': exit %d, want 2", bad[i], st);
        }
    }
    printf("priority: dom1 high, dom2 low, same SGEMMs\n");
    start("priority");
    open_devs(devs, 2, both, same);
    drive(devs, 2, RUN_MS);
    printf("  dom1 %ld, dom2 %ld done\n", devs[0].done, devs[1].done);
    CHECK(devs[0].done > 0 && devs[0].errors == 0 && devs[1].errors == 0,
          "requests served without errors");
    CHECK(devs[1].done * 10 <= devs[0].done,
          "high priority takes the GPU: dom2 %ld vs dom1 %ld", devs[1].done,
          devs[0].done);
    drain(devs, 2);
    /* dom2 alone, the GPU all its: the rate fixed: is measured against. */
    open_devs(devs, 1, alone, small);
    drive(devs, 1, RUN_MS);
    full_rate = (double)devs[0].done / RUN_MS;
    printf("  dom2 alone: %ld done\n", devs[0].done);
    drain(devs, 1);
    stop();

    printf("equal: dom1 high with SGEMMs of 384, dom2 low with 256\n");
    start("equal");
    open_devs(devs, 2, both, big_small);
    {
        long long g1 = gpu_ns_of(1), g2 = gpu_ns_of(2);
        double share;

        drive(devs, 2, RUN_MS);
        drain(devs, 2);
        harness_sleep_ms(300); /* the status file follows */
        g1 = gpu_ns_of(1) - (g1 > 0 ? g1 : 0);
        g2 = gpu_ns_of(2) - (g2 > 0 ? g2 : 0);
        share = g1 + g2 > 0 ? (double)g1 / (double)(g1 + g2) : 0;
        printf("  dom1 %ld done, %.0f ms of GPU; dom2 %ld done, %.0f ms: "
               "dom1's share %.2f\n",
               devs[0].done, g1 / 1e6, devs[1].done, g2 / 1e6, share);
        CHECK(g1 > 0 && g2 > 0, "both VMs got GPU time");
        CHECK(share > 0.35 && share < 0.65,
              "each VM about half the GPU time (dom1 %.2f)", share);
        CHECK(devs[1].done > devs[0].done,
              "the cheaper requests complete more often (%ld > %ld)",
              devs[1].done, devs[0].done);
    }
    stop();

    printf("fixed:4: dom2 alone may use a quarter of the GPU\n");
    start("fixed:4");
    open_devs(devs, 1, alone, small);
    drive(devs, 1, RUN_MS);
    {
        double ratio =
            full_rate > 0 ? (double)devs[0].done / RUN_MS / full_rate : 0;

        printf("  dom2 alone: %ld done, %.2f of its rate in priority mode\n",
               devs[0].done, ratio);
        CHECK(devs[0].done > 0 && devs[0].errors == 0,
              "served, without errors");
        CHECK(ratio > 0.1 && ratio < 0.4,
              "at most about a quarter of the GPU (%.2f)", ratio);
    }
    drain(devs, 1);
    stop();

    if (failed) {
        printf("--- mediator log (%s), last lines ---\n", mlog);
        harness_print_file(mlog);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
