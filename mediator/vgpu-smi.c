/*
 * vgpu-smi.c - the operator's view of the mediator, in the spirit of
 * nvidia-smi: asks the mediator's admin socket for a snapshot and prints
 * it as tables, as JSON (--json) or in the Prometheus text format
 * (--prometheus).  Every wait is bounded: it never hangs on a stuck
 * mediator.  Exit statuses are listed in usage() and docs/vgpu-smi.md.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "qemudm.h"
#include "render.h"
#include "stats.h"
#include "util.h"

#ifndef VGPU_VERSION
#define VGPU_VERSION "0.1.0"
#endif

#define SMI_SOCKET_DEFAULT VGPU_ADMIN_SOCKET_PATH
#define SMI_TIMEOUT_MS_DEFAULT 5000

/* Exit statuses (documented in usage() and docs/vgpu-smi.md). */
enum smi_exit {
    SMI_OK = 0,
    SMI_ERR_ANSWER = 1,      /* the mediator refused or answered garbage */
    SMI_ERR_USAGE = 2,       /* bad command line */
    SMI_ERR_UNREACHABLE = 3, /* no mediator at the socket */
    SMI_ERR_TIMEOUT = 4,     /* it did not answer in time */
};

enum smi_mode {
    MODE_TABLE,
    MODE_JSON,
    MODE_PROMETHEUS,
    MODE_KV,
};

struct smi_opts {
    const char *socket;
    enum smi_mode mode;
    unsigned loop_s; /* 0: once */
    unsigned timeout_ms;
};

/* The previous snapshot, for utilisation over the last interval. */
struct smi_prev {
    bool valid;
    int pid;
    uint64_t now_ns;
    unsigned ngpus;
    uint64_t busy_ns[VGPU_BACKEND_MAX_GPUS];
    unsigned nvms;
    uint32_t vm_domid[VGPU_STATS_MAX_VMS];
    uint64_t vm_calls[VGPU_STATS_MAX_VMS], vm_gpu_ns[VGPU_STATS_MAX_VMS];
};

static void usage(FILE *out)
{
    fputs(
        "NAME\n"
        "    vgpu-smi - show what the vgpu mediator serves: GPUs, VMs, usage\n"
        "\n"
        "SYNOPSIS\n"
        "    vgpu-smi [-s PATH] [-t SECONDS] [-l SECONDS] [--json | "
        "--prometheus]\n"
        "    vgpu-smi -h | --help\n"
        "    vgpu-smi -V | --version\n"
        "\n"
        "DESCRIPTION\n"
        "    vgpu-smi asks vgpu-mediator, over its admin socket, what it "
        "serves\n"
        "    now, and prints:\n"
        "\n"
        "    - a header: the mediator's pid, its backend (cuda or cpu) and "
        "why\n"
        "      it runs that one, its uptime, and the scheduler's\n"
        "      anti-starvation bound;\n"
        "    - one row per GPU: index, name, UUID, the pools it serves, its\n"
        "      memory, whether it runs a job now, its utilisation and the\n"
        "      jobs it ran;\n"
        "    - one row per VM (domain): domid, name, VM-ID, pool, priority,\n"
        "      whether its vgpu-stub device is connected, requests served,\n"
        "      queued and failed, GPU time used and its share of all VMs'\n"
        "      GPU time, device memory used / quota, its guest CUDA contexts\n"
        "      and remoted CUDA calls per second (protocol v3).\n"
        "\n"
        "    Utilisation is the share of time the GPU spent running jobs: "
        "since\n"
        "    the mediator started, or, from the second round of --loop on, "
        "over\n"
        "    the last interval (the header says which).\n"
        "\n"
        "    The admin socket is for root only.\n"
        "\n"
        "OPTIONS\n"
        "    -s, --socket PATH     the mediator's admin socket\n"
        "                          (default " SMI_SOCKET_DEFAULT ")\n"
        "    -j, --json            print the snapshot as JSON, for scripts\n"
        "    -p, --prometheus      print it in the Prometheus text format "
        "0.0.4\n"
        "        --kv              print it as key=value lines (what the "
        "tables\n"
        "                          are made from)\n"
        "    -l, --loop SECONDS    print again every SECONDS (1-86400) until\n"
        "                          interrupted\n"
        "    -t, --timeout SECONDS give up on a mediator that does not answer\n"
        "                          within SECONDS (1-600; default 5)\n"
        "    -h, --help            show this help and exit\n"
        "    -V, --version         show the version and exit\n"
        "\n"
        "EXIT STATUS\n"
        "    0  success\n"
        "    1  the mediator refused the request or its answer was unreadable\n"
        "    2  bad command line\n"
        "    3  cannot reach the mediator (no socket, nothing listening,\n"
        "       permission denied)\n"
        "    4  the mediator did not answer in time\n"
        "\n"
        "FILES\n"
        "    " SMI_SOCKET_DEFAULT "\n"
        "        the admin socket vgpu-mediator creates (its --admin-socket)\n"
        "\n"
        "EXAMPLES\n"
        "    vgpu-smi                  the tables, once\n"
        "    vgpu-smi -l 2             the tables every 2 seconds\n"
        "    vgpu-smi --json | jq '.vms[] | {name, served, queued}'\n"
        "    vgpu-smi --prometheus     the metrics the mediator's\n"
        "                              --metrics-listen endpoint serves\n"
        "\n"
        "SEE ALSO\n"
        "    vgpu-mediator(8), docs/vgpu-smi.md\n",
        out);
}

/* ---------------------------------------------------------------------- */
/* talking to the mediator                                                 */
/* ---------------------------------------------------------------------- */

static int ms_left(uint64_t deadline)
{
    uint64_t now = now_ms();

    return now >= deadline ? 0 : (int)(deadline - now);
}

static int smi_unreachable(const char *path, int err)
{
    const char *hint = "is vgpu-mediator running?";

    if (err == EACCES || err == EPERM) {
        hint = "the admin socket is for root only";
    }
    fprintf(stderr, "vgpu-smi: cannot reach the mediator at %s: %s (%s)\n",
            path, strerror(err), hint);
    return SMI_ERR_UNREACHABLE;
}

static int smi_timeout(const char *path, const struct smi_opts *o)
{
    fprintf(stderr, "vgpu-smi: the mediator at %s did not answer within %u s\n",
            path, o->timeout_ms / 1000);
    return SMI_ERR_TIMEOUT;
}

/* Connect, retrying while the mediator's backlog is full. */
static int smi_connect(const struct smi_opts *o, uint64_t deadline, int *fdp)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(o->socket) >= sizeof(sun.sun_path)) {
        return smi_unreachable(o->socket, ENAMETOOLONG);
    }
    memcpy(sun.sun_path, o->socket, strlen(o->socket));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return smi_unreachable(o->socket, errno);
    }
    while (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
        if (errno != EAGAIN && errno != EINTR) {
            int err = errno;

            close(fd);
            return smi_unreachable(o->socket, err);
        }
        if (!ms_left(deadline)) {
            close(fd);
            return smi_timeout(o->socket, o);
        }
        poll(NULL, 0, 20);
    }
    *fdp = fd;
    return SMI_OK;
}

/* Wait for events on fd until the deadline; false on timeout. */
static bool smi_wait(int fd, short events, uint64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n;

    do {
        n = poll(&p, 1, ms_left(deadline));
    } while (n < 0 && errno == EINTR);
    return n > 0;
}

static int smi_send(const struct smi_opts *o, int fd, const char *cmd,
                    uint64_t deadline)
{
    size_t len = strlen(cmd), off = 0;

    while (off < len) {
        ssize_t n = send(fd, cmd + off, len - off, MSG_NOSIGNAL);

        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!smi_wait(fd, POLLOUT, deadline)) {
                return smi_timeout(o->socket, o);
            }
        } else {
            return smi_unreachable(o->socket, errno);
        }
    }
    return SMI_OK;
}

static int smi_recv(const struct smi_opts *o, int fd, struct rbuf *out,
                    uint64_t deadline)
{
    char buf[65536];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);

        if (n > 0) {
            rbuf_add(out, buf, (size_t)n);
            if (out->failed) {
                fprintf(stderr, "vgpu-smi: the answer is too large\n");
                return SMI_ERR_ANSWER;
            }
        } else if (n == 0) {
            return SMI_OK;
        } else if (errno == EAGAIN || errno == EINTR) {
            if (!smi_wait(fd, POLLIN, deadline)) {
                return smi_timeout(o->socket, o);
            }
        } else if (errno == ECONNRESET && out->len == 0) {
            return SMI_OK; /* refused: reported by the caller */
        } else {
            return smi_unreachable(o->socket, errno);
        }
    }
}

/* Send one command and read the whole answer into out. */
static int smi_ask(const struct smi_opts *o, const char *cmd, struct rbuf *out)
{
    uint64_t deadline = now_ms() + o->timeout_ms;
    int fd = -1, rc;

    rc = smi_connect(o, deadline, &fd);
    if (rc) {
        return rc;
    }
    rc = smi_send(o, fd, cmd, deadline);
    if (!rc) {
        rc = smi_recv(o, fd, out, deadline);
    }
    close(fd);
    if (rc) {
        return rc;
    }
    if (out->len == 0) {
        fprintf(stderr,
                "vgpu-smi: the mediator at %s closed the connection "
                "without an answer (the admin socket is for root only)\n",
                o->socket);
        return SMI_ERR_ANSWER;
    }
    if (!strncmp(out->data, "error: ", 7)) {
        fprintf(stderr, "vgpu-smi: the mediator refused the request: %s",
                out->data + 7);
        return SMI_ERR_ANSWER;
    }
    return SMI_OK;
}

/* ---------------------------------------------------------------------- */
/* the tables                                                              */
/* ---------------------------------------------------------------------- */

/*
 * Print s (n bytes) in a column of width characters (0: as long as it
 * is), left- or right-aligned: control characters and invalid UTF-8 show
 * as '?', and a text too long ends in "...".
 */
static void print_cell(const char *s, size_t n, int width, bool right)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, chars = 0, total = 0, w = width > 0 ? (size_t)width : 0;
    bool cut;

    for (size_t j = 0; j < n; total++) {
        size_t len = render_utf8_len(p + j, n - j);

        j += len ? len : 1;
    }
    cut = w > 3 && total > w;
    for (size_t k = cut ? w : total; right && k < w; k++) {
        putchar(' ');
    }
    while (i < n && !(cut && chars + 3 == w)) {
        size_t len = render_utf8_len(p + i, n - i);

        if (len > 1) {
            fwrite(p + i, 1, len, stdout);
        } else {
            putchar(len && p[i] >= 0x20 && p[i] != 0x7f ? p[i] : '?');
        }
        i += len ? len : 1;
        chars++;
    }
    if (cut) {
        fputs("...", stdout);
        chars += 3;
    }
    for (size_t k = chars; !right && k < w; k++) {
        putchar(' ');
    }
}

static void print_str(const char *s, size_t size, int width)
{
    print_cell(s, strnlen(s, size), width, false);
}

/* Bytes in binary units: "0 B", "512 B", "1.5 KiB", "80.0 GiB". */
static void fmt_bytes(char *buf, size_t len, uint64_t v)
{
    static const char *const units[] = {"B",   "KiB", "MiB", "GiB",
                                        "TiB", "PiB", "EiB"};
    double d = (double)v;
    unsigned u = 0;

    if (v < 1024) {
        snprintf(buf, len, "%" PRIu64 " B", v);
        return;
    }
    while (d >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        d /= 1024.0;
        u++;
    }
    snprintf(buf, len, "%.1f %s", d, units[u]);
}

static void fmt_uptime(char *buf, size_t len, uint64_t ns)
{
    uint64_t s = ns / 1000000000u;

    snprintf(buf, len, "%" PRIu64 "d %02" PRIu64 ":%02" PRIu64 ":%02" PRIu64,
             s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
}

static void print_header(const struct vgpu_stats *s, const struct smi_prev *p)
{
    char up[48], date[64];
    time_t t = time(NULL);
    struct tm tm;

    strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", localtime_r(&t, &tm));
    fmt_uptime(up, sizeof(up), s->uptime_ns);
    printf("vgpu-smi %-24s%48s\n", VGPU_VERSION, date);
    printf("Mediator: pid %d, up %s\n", s->pid, up);
    printf("Backend:  ");
    print_str(s->backend, sizeof(s->backend), 0);
    if (s->backend_note[0]) {
        printf(" (");
        print_str(s->backend_note, sizeof(s->backend_note), 0);
        printf(")");
    }
    if (s->schedule[0] && strcmp(s->schedule, "priority") != 0) {
        printf("\nScheduling: ");
        print_str(s->schedule, sizeof(s->schedule), 0);
        printf(" share of GPU time\n");
    } else if (s->starvation_bound) {
        printf("\nScheduling: priority; a waiting request runs after at most "
               "%u of higher priority\n",
               s->starvation_bound);
    } else {
        printf("\nScheduling: strict priority (no anti-starvation bound)\n");
    }
    if (p->valid) {
        printf("Util: over the last %.1f s\n",
               (double)(s->now_ns - p->now_ns) / 1e9);
    } else {
        printf("Util: since the mediator started\n");
    }
}

static double gpu_util(const struct vgpu_stats *s, unsigned i,
                       const struct smi_prev *p)
{
    const struct vgpu_gpu_stats *g = &s->gpus[i];

    if (p->valid && i < p->ngpus && g->busy_ns >= p->busy_ns[i]) {
        return render_ratio(g->busy_ns - p->busy_ns[i], s->now_ns - p->now_ns);
    }
    return render_ratio(g->busy_ns, s->uptime_ns);
}

static void print_gpus(const struct vgpu_stats *s, const struct smi_prev *p)
{
    char mem[32];

    printf("\n%-3s  %-24s  %-40s  %-8s  %10s  %-4s  %6s  %10s\n", "GPU", "Name",
           "UUID", "Pools", "Memory", "Busy", "Util", "Jobs");
    if (!s->ngpus) {
        printf("(no GPUs)\n");
    }
    for (unsigned i = 0; i < s->ngpus; i++) {
        const struct vgpu_gpu_stats *g = &s->gpus[i];

        fmt_bytes(mem, sizeof(mem), g->info.mem_total);
        printf("%3u  ", g->index);
        print_str(g->info.name, sizeof(g->info.name), 24);
        printf("  ");
        print_cell(g->info.uuid[0] ? g->info.uuid : "-",
                   g->info.uuid[0] ? strnlen(g->info.uuid, sizeof(g->info.uuid))
                                   : 1,
                   40, false);
        printf("  ");
        print_cell(g->pools[0] ? g->pools : "-",
                   g->pools[0] ? strnlen(g->pools, sizeof(g->pools)) : 1, 8,
                   false);
        printf("  %10s  %-4s  %5.1f%%  %10" PRIu64 "\n", mem,
               g->busy ? "yes" : "no", 100.0 * gpu_util(s, i, p), g->jobs);
    }
}

/* A VM's GPU time and calls over the interval: since the previous
 * snapshot when it had the VM, else since the mediator started. */
static void vm_interval(const struct vgpu_stats *s, const struct smi_prev *p,
                        const struct vgpu_vm_stats *v, uint64_t *gpu_ns,
                        uint64_t *calls, uint64_t *span_ns)
{
    *gpu_ns = v->gpu_ns;
    *calls = v->cuda_calls;
    *span_ns = s->uptime_ns;
    for (unsigned i = 0; p->valid && i < p->nvms; i++) {
        if (p->vm_domid[i] == v->domid && v->gpu_ns >= p->vm_gpu_ns[i] &&
            v->cuda_calls >= p->vm_calls[i]) {
            *gpu_ns = v->gpu_ns - p->vm_gpu_ns[i];
            *calls = v->cuda_calls - p->vm_calls[i];
            *span_ns = s->now_ns - p->now_ns;
        }
    }
}

static void print_vm(const struct vgpu_stats *s, const struct smi_prev *p,
                     const struct vgpu_vm_stats *v, uint64_t all_gpu_ns)
{
    char used[32], quota[32], vmid[16], gpu[32], share[16], rate[16];
    uint64_t g, calls, span;

    fmt_bytes(used, sizeof(used), v->mem_used);
    if (v->mem_quota) {
        fmt_bytes(quota, sizeof(quota), v->mem_quota);
    } else {
        snprintf(quota, sizeof(quota), "none");
    }
    snprintf(vmid, sizeof(vmid), "%" PRIu32, v->vm_id);
    snprintf(gpu, sizeof(gpu), "%.3f s", (double)v->gpu_ns / 1e9);
    vm_interval(s, p, v, &g, &calls, &span);
    snprintf(share, sizeof(share), "%.1f%%",
             100.0 * render_ratio(g, all_gpu_ns));
    snprintf(rate, sizeof(rate), "%.0f",
             span ? (double)calls * 1e9 / (double)span : 0.0);
    printf("%5" PRIu32 "  ", v->domid);
    print_cell(v->name[0] ? v->name : "-",
               v->name[0] ? strnlen(v->name, sizeof(v->name)) : 1, 20, false);
    printf("  %5s  ", v->assigned ? vmid : "-");
    print_cell(v->assigned ? v->pool : "-",
               v->assigned ? strnlen(v->pool, sizeof(v->pool)) : 1,
               VGPU_POOL_NAME_MAX, false);
    printf("  %-8s  %-4s  %8" PRIu64 "  %6" PRIu64 "  %6" PRIu64
           "  %12s  %6s  %4" PRIu64 "  %8s  %s / %s\n",
           v->assigned ? vgpu_priority_name(v->priority) : "-",
           v->connected ? "yes" : "no", v->served, v->queued, v->errors, gpu,
           share, v->cuda_contexts, rate, used, quota);
}

static void print_vms(const struct vgpu_stats *s, const struct smi_prev *p)
{
    uint64_t all = 0;

    for (unsigned i = 0; i < s->nvms; i++) {
        uint64_t g, calls, span;

        vm_interval(s, p, &s->vms[i], &g, &calls, &span);
        all += g;
    }
    printf("\n%5s  %-20s  %5s  %-16s  %-8s  %-4s  %8s  %6s  %6s  %12s  %6s  "
           "%4s  %8s  %s\n",
           "DomID", "Name", "VM-ID", "Pool", "Priority", "Conn", "Served",
           "Queued", "Errors", "GPU time", "Share", "CUDA", "Calls/s",
           "Memory used / quota");
    if (!s->nvms) {
        printf("(no VMs)\n");
    }
    for (unsigned i = 0; i < s->nvms; i++) {
        print_vm(s, p, &s->vms[i], all);
    }
}

/* The vgpu qemu-dm of this host, as the qemu-dm wrapper sees it
 * (common/qemudm.h): usable or why not, and a release skew. */
static void print_qemu_dm(void)
{
    const char *run = getenv("VGPU_RUN_DIR");
    static struct qemudm_info q;
    static char line[sizeof(q.skew_msg) + 64];

    qemudm_probe(&q, NULL, run && run[0] ? run : VGPU_RUN_DIR);
    qemudm_summary(&q, line, sizeof(line));
    printf("QEMU-DM:  %s\n", line + strlen("qemu-dm "));
}

static void remember(const struct vgpu_stats *s, struct smi_prev *p)
{
    p->valid = true;
    p->pid = s->pid;
    p->now_ns = s->now_ns;
    p->ngpus = s->ngpus;
    for (unsigned i = 0; i < s->ngpus; i++) {
        p->busy_ns[i] = s->gpus[i].busy_ns;
    }
    p->nvms = s->nvms < VGPU_STATS_MAX_VMS ? s->nvms : VGPU_STATS_MAX_VMS;
    for (unsigned i = 0; i < p->nvms; i++) {
        p->vm_domid[i] = s->vms[i].domid;
        p->vm_calls[i] = s->vms[i].cuda_calls;
        p->vm_gpu_ns[i] = s->vms[i].gpu_ns;
    }
}

static int show_tables(const struct smi_opts *o, struct rbuf *ans,
                       struct smi_prev *prev)
{
    struct vgpu_stats *s = calloc(1, sizeof(*s));
    char err[128];
    int rc;

    if (!s) {
        fprintf(stderr, "vgpu-smi: out of memory\n");
        return SMI_ERR_ANSWER;
    }
    rc = smi_ask(o, "stats kv\n", ans);
    if (rc) {
        goto out_free;
    }
    if (render_kv_parse(ans->data, ans->len, s, err, sizeof(err))) {
        fprintf(stderr, "vgpu-smi: cannot read the mediator's answer: %s\n",
                err);
        rc = SMI_ERR_ANSWER;
        goto out_free;
    }
    if (prev->valid && (prev->pid != s->pid || s->now_ns <= prev->now_ns)) {
        prev->valid = false; /* a restarted mediator: start over */
    }
    print_header(s, prev);
    print_qemu_dm();
    print_gpus(s, prev);
    print_vms(s, prev);
    remember(s, prev);
out_free:
    free(s);
    return rc;
}

static int show_once(const struct smi_opts *o, struct smi_prev *prev)
{
    static const char *const commands[] = {
        [MODE_JSON] = "stats json\n",
        [MODE_PROMETHEUS] = "metrics\n",
        [MODE_KV] = "stats kv\n",
    };
    struct rbuf ans;
    int rc;

    rbuf_init(&ans, RENDER_OUTPUT_MAX);
    if (o->mode == MODE_TABLE) {
        rc = show_tables(o, &ans, prev);
    } else {
        rc = smi_ask(o, commands[o->mode], &ans);
        if (!rc) {
            fwrite(ans.data, 1, ans.len, stdout);
        }
    }
    rbuf_free(&ans);
    fflush(stdout);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* the command line                                                        */
/* ---------------------------------------------------------------------- */

static int parse_seconds(const char *s, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < 1 || v > max) {
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static int bad_usage(const char *what, const char *arg, const char *hint)
{
    fprintf(stderr,
            "vgpu-smi: %s '%s'%s\n"
            "Try 'vgpu-smi --help' for more information.\n",
            what, arg, hint);
    return SMI_ERR_USAGE;
}

/* 0 to go on, or the exit status to leave with (-1: exit 0). */
static int parse_options(int argc, char **argv, struct smi_opts *o)
{
    enum { OPT_KV = 256 };
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"prometheus", no_argument, NULL, 'p'},
        {"kv", no_argument, NULL, OPT_KV},
        {"loop", required_argument, NULL, 'l'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    unsigned secs;
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":s:jpl:t:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            o->socket = optarg;
            break;
        case 'j':
            o->mode = MODE_JSON;
            break;
        case 'p':
            o->mode = MODE_PROMETHEUS;
            break;
        case OPT_KV:
            o->mode = MODE_KV;
            break;
        case 'l':
            if (parse_seconds(optarg, 86400, &o->loop_s)) {
                return bad_usage("bad --loop interval", optarg,
                                 " (1-86400 seconds)");
            }
            break;
        case 't':
            if (parse_seconds(optarg, 600, &secs)) {
                return bad_usage("bad --timeout", optarg, " (1-600 seconds)");
            }
            o->timeout_ms = secs * 1000u;
            break;
        case 'h':
            usage(stdout);
            return -1;
        case 'V':
            printf("vgpu-smi %s\n", VGPU_VERSION);
            return -1;
        case ':':
            return bad_usage("missing value of option", argv[optind - 1], "");
        default:
            if (optopt) {
                char opt[3] = {'-', (char)optopt, '\0'};

                return bad_usage("unknown option", opt, "");
            }
            return bad_usage("unknown option", argv[optind - 1], "");
        }
    }
    if (optind < argc) {
        return bad_usage("unexpected argument", argv[optind], "");
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct smi_opts o = {
        .socket = SMI_SOCKET_DEFAULT,
        .mode = MODE_TABLE,
        .timeout_ms = SMI_TIMEOUT_MS_DEFAULT,
    };
    struct smi_prev prev = {0};
    int rc = parse_options(argc, argv, &o);

    if (rc) {
        return rc < 0 ? SMI_OK : rc;
    }
    for (;;) {
        rc = show_once(&o, &prev);
        if (rc || !o.loop_s) {
            return rc;
        }
        sleep(o.loop_s);
        if (o.mode != MODE_PROMETHEUS) {
            putchar('\n');
        }
    }
}
