/*
 * test-admin.c - tests of the admin socket and of vgpu-smi against it: an
 * admin_open()ed socket on a temporary path with a fake snapshot, served
 * by admin_process() on a thread of its own while the test plays the
 * clients (vgpu-smi among them, run as the built binary next to this
 * one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <cmocka.h>

#include "admin.h"
#include "log.h"
#include "render.h"
#include "util.h"
#include "vgpu_protocol.h"

#define IO_TIMEOUT_MS 5000
#define CLIENT_TIMEOUT_MS 500

struct fixture {
    char dir[64];
    char path[128]; /* dir/run/admin.sock: its folder made by admin_open */
    struct admin *a;
    struct vgpu_stats *snap;
    atomic_int calls;
    atomic_bool stop;
    atomic_bool advance; /* each snapshot 1 s later, GPU 0 busy half of it */
    pthread_t thread;
};

/* ---------------------------------------------------------------------- */
/* the server side                                                         */
/* ---------------------------------------------------------------------- */

static void fake_snapshot(void *arg, struct vgpu_stats *out)
{
    struct fixture *f = arg;
    uint64_t n = (uint64_t)atomic_fetch_add(&f->calls, 1);

    memcpy(out, f->snap, sizeof(*out));
    if (atomic_load(&f->advance)) {
        out->now_ns += n * 1000000000u;
        out->uptime_ns += n * 1000000000u;
        out->gpus[0].busy_ns += n * 500000000u;
    }
}

static struct vgpu_stats *make_snapshot(void)
{
    struct vgpu_stats *s = calloc(1, sizeof(*s));
    struct vgpu_vm_stats *v = &s->vms[0];
    struct vgpu_gpu_stats *g = &s->gpus[0];

    assert_non_null(s);
    s->pid = 4242;
    strcpy(s->backend, "cpu");
    strcpy(s->backend_note, "CUDA backend not built");
    s->uptime_ns = 3723000000000u; /* 1 h 2 min 3 s */
    s->now_ns = 5000000000000u;
    s->ngpus = 2;
    strcpy(g->info.name, "CPU reference 0");
    strcpy(g->pools, "A,B");
    g->info.mem_total = 17179869184u;
    g->busy = true;
    g->busy_ns = 930750000000u; /* 25% */
    g->jobs = 42;
    g = &s->gpus[1];
    g->index = 1;
    strcpy(g->info.name, "NVIDIA H100 80GB HBM3");
    strcpy(g->info.uuid, "GPU-8f6e3c2a-1b2c-4d5e-9f00-aabbccddeeff");
    strcpy(g->pools, "B");
    s->nvms = 2;
    v->domid = 1;
    strcpy(v->name, "web-01");
    v->assigned = true;
    strcpy(v->pool, "gpu-pool.1");
    v->priority = VGPU_PRIO_HIGH;
    v->vm_id = 7;
    v->connected = true;
    v->served = 100;
    v->errors = 2;
    v->queued = 3;
    v->gpu_ns = 1500000000u;
    v->mem_used = 1048576;
    v->mem_quota = 268435456;
    v = &s->vms[1];
    v->domid = 12;
    strcpy(v->name, "batch \"night\"\n\x01");
    return s;
}

static void *serve(void *arg)
{
    struct fixture *f = arg;
    struct pollfd p = {.fd = admin_fd(f->a), .events = POLLIN};

    while (!atomic_load(&f->stop)) {
        if (poll(&p, 1, 20) > 0) {
            admin_process(f->a);
        }
    }
    return NULL;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    strcpy(f->dir, "/tmp/test-admin-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/run/admin.sock", f->dir);
    f->snap = make_snapshot();
    assert_int_equal(admin_open(&f->a, f->path, fake_snapshot, f), 0);
    assert_int_equal(admin_listen_metrics(f->a, "127.0.0.1:0"), 0);
    assert_true(admin_metrics_port(f->a) > 0);
    admin_set_client_timeout(f->a, CLIENT_TIMEOUT_MS);
    assert_int_equal(pthread_create(&f->thread, NULL, serve, f), 0);
    *state = f;
    return 0;
}

static void remove_tree(const char *dir)
{
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    struct stat st;

    atomic_store(&f->stop, true);
    pthread_join(f->thread, NULL);
    admin_close(f->a);
    /* admin_close removes its socket. */
    assert_int_equal(lstat(f->path, &st), -1);
    remove_tree(f->dir);
    free(f->snap);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* clients                                                                 */
/* ---------------------------------------------------------------------- */

static int unix_connect(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
        int err = errno;

        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

static int tcp_connect(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

/* Read until the server closes; NULL on timeout.  The text is malloc'd. */
static char *read_all(int fd, size_t *lenp)
{
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap + 1);
    struct pollfd p = {.fd = fd, .events = POLLIN};

    assert_non_null(buf);
    for (;;) {
        ssize_t n;

        if (poll(&p, 1, IO_TIMEOUT_MS) <= 0) {
            free(buf);
            return NULL;
        }
        n = read(fd, buf + len, cap - len);
        if (n <= 0) {
            break; /* closed, or reset by a peer that refused us */
        }
        len += (size_t)n;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
    }
    buf[len] = '\0';
    if (lenp) {
        *lenp = len;
    }
    return buf;
}

static char *ask_fd(int fd, const char *req, size_t reqlen)
{
    char *ans;

    assert_int_equal(send(fd, req, reqlen, MSG_NOSIGNAL), (ssize_t)reqlen);
    ans = read_all(fd, NULL);
    close(fd);
    assert_non_null(ans);
    return ans;
}

static char *ask(struct fixture *f, const char *req)
{
    int fd = unix_connect(f->path);

    assert_true(fd >= 0);
    return ask_fd(fd, req, strlen(req));
}

static char *http_get(struct fixture *f, const char *req)
{
    return ask_fd(tcp_connect(admin_metrics_port(f->a)), req, strlen(req));
}

static char *rendered(struct fixture *f,
                      int (*render)(const struct vgpu_stats *, struct rbuf *))
{
    struct rbuf b;

    rbuf_init(&b, 0);
    assert_int_equal(render(f->snap, &b), 0);
    return b.data;
}

/* ---------------------------------------------------------------------- */
/* the unix socket                                                         */
/* ---------------------------------------------------------------------- */

static void test_stats_json(void **state)
{
    struct fixture *f = *state;
    char *ans = ask(f, "stats json\n");
    char *want = rendered(f, render_json);

    assert_string_equal(ans, want);
    assert_int_equal(atomic_load(&f->calls), 1);
    free(want);
    free(ans);
}

static void test_stats_kv_and_metrics(void **state)
{
    struct fixture *f = *state;
    struct vgpu_stats *back = calloc(1, sizeof(*back));
    char err[128] = "";
    char *ans = ask(f, "  stats kv \r\n");
    char *want;

    assert_non_null(back);
    assert_int_equal(render_kv_parse(ans, strlen(ans), back, err, sizeof(err)),
                     0);
    assert_memory_equal(back, f->snap, sizeof(*back));
    free(ans);
    ans = ask(f, "metrics\n");
    want = rendered(f, render_prometheus);
    assert_string_equal(ans, want);
    assert_int_equal(atomic_load(&f->calls), 2);
    free(want);
    free(ans);
    free(back);
}

static void test_ping_help_and_unterminated_line(void **state)
{
    struct fixture *f = *state;
    int fd = unix_connect(f->path);
    char *ans;

    /* A line may end with the end of sending instead of a newline. */
    assert_int_equal(send(fd, "ping", 4, 0), 4);
    shutdown(fd, SHUT_WR);
    ans = read_all(fd, NULL);
    close(fd);
    assert_string_equal(ans, "pong\n");
    free(ans);
    ans = ask(f, "help\n");
    assert_non_null(strstr(ans, "stats json"));
    assert_non_null(strstr(ans, "metrics"));
    free(ans);
    assert_int_equal(atomic_load(&f->calls), 0);
}

static void test_unknown_command(void **state)
{
    struct fixture *f = *state;
    char *ans = ask(f, "frobnicate\n");

    assert_string_equal(
        ans, "error: unknown command \"frobnicate\" (try \"help\")\n");
    free(ans);
    ans = ask(f, "stats\x1b[2J \"xml\"\n");
    assert_string_equal(
        ans, "error: unknown command \"stats?[2J ?xml?\" (try \"help\")\n");
    free(ans);
    ans = ask(f, "\n");
    assert_string_equal(ans, "error: unknown command \"\" (try \"help\")\n");
    free(ans);
    assert_int_equal(atomic_load(&f->calls), 0);
}

static void test_long_line_refused(void **state)
{
    struct fixture *f = *state;
    char line[ADMIN_LINE_MAX];
    char *ans;
    int fd;

    /* The longest line there may be is read (and is no command)... */
    memset(line, 'x', sizeof(line));
    line[sizeof(line) - 1] = '\n';
    fd = unix_connect(f->path);
    ans = ask_fd(fd, line, sizeof(line));
    assert_non_null(strstr(ans, "error: unknown command"));
    free(ans);
    /* ...one byte more is refused. */
    memset(line, 'x', sizeof(line));
    fd = unix_connect(f->path);
    ans = ask_fd(fd, line, sizeof(line));
    assert_string_equal(ans, "error: request line too long (at most 255 "
                             "bytes)\n");
    free(ans);
    assert_int_equal(atomic_load(&f->calls), 0);
}

static void test_silent_client_blocks_nobody(void **state)
{
    struct fixture *f = *state;
    int silent = unix_connect(f->path);
    uint64_t start = now_ms();
    char *ans, *gone;

    assert_true(silent >= 0);
    ans = ask(f, "stats json\n");
    assert_true(ans[0] == '{');
    assert_true(now_ms() - start < CLIENT_TIMEOUT_MS);
    free(ans);
    /* The silent one is cut off at its deadline, without an answer. */
    gone = read_all(silent, NULL);
    assert_non_null(gone);
    assert_string_equal(gone, "");
    assert_true(now_ms() - start >= CLIENT_TIMEOUT_MS - 50);
    free(gone);
    close(silent);
}

static void test_too_many_clients(void **state)
{
    struct fixture *f = *state;
    int idle[ADMIN_MAX_CLIENTS], extra;
    uint64_t start;
    char *ans;

    for (int i = 0; i < ADMIN_MAX_CLIENTS; i++) {
        idle[i] = unix_connect(f->path);
        assert_true(idle[i] >= 0);
    }
    start = now_ms();
    extra = unix_connect(f->path);
    assert_true(extra >= 0);
    ans = read_all(extra, NULL);
    assert_string_equal(ans, ""); /* closed at once, not at the deadline */
    assert_true(now_ms() - start < CLIENT_TIMEOUT_MS / 2);
    free(ans);
    close(extra);
    for (int i = 0; i < ADMIN_MAX_CLIENTS; i++) {
        close(idle[i]);
    }
    /* Once they are gone, there is room again. */
    for (int tries = 0;; tries++) {
        ans = ask(f, "ping\n");
        if (!strcmp(ans, "pong\n") || tries == 50) {
            break;
        }
        free(ans);
        poll(NULL, 0, 20);
    }
    assert_string_equal(ans, "pong\n");
    free(ans);
}

static void test_socket_file(void **state)
{
    struct fixture *f = *state;
    struct stat st;

    assert_int_equal(lstat(f->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_uid, geteuid());
}

static void test_stale_live_and_foreign_paths(void **state)
{
    struct fixture *f = *state;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char path[100];
    struct admin *b = NULL;
    struct stat st;
    char *ans;
    int fd;

    /* A live mediator's socket is left alone. */
    assert_int_equal(admin_open(&b, f->path, fake_snapshot, f), -1);
    ans = ask(f, "ping\n");
    assert_string_equal(ans, "pong\n");
    free(ans);
    /* A dead one's is replaced. */
    snprintf(path, sizeof(path), "%s/stale.sock", f->dir);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);
    assert_int_equal(admin_open(&b, path, fake_snapshot, f), 0);
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    admin_close(b);
    assert_int_equal(lstat(path, &st), -1);
    /* Something that is no socket is not touched. */
    fd = open(path, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(admin_open(&b, path, fake_snapshot, f), -1);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    unlink(path);
}

/* Keep only CAP_DAC_OVERRIDE, effective, after a setuid away from root. */
static int keep_dac_override_only(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {{0}};

    data[0].effective = data[0].permitted = 1u << CAP_DAC_OVERRIDE;
    return (int)syscall(SYS_capset, &hdr, data);
}

static void non_root_child(const char *path)
{
    char buf[64];
    ssize_t n;
    int fd;

    if (prctl(PR_SET_KEEPCAPS, 1) || setgid(4343) || setuid(4343)) {
        _exit(2);
    }
    /* The file mode (and the private folder) say no... */
    if (unix_connect(path) >= 0 || errno != EACCES) {
        _exit(3);
    }
    /* ...and with those checks bypassed, SO_PEERCRED does. */
    if (keep_dac_override_only()) {
        _exit(4);
    }
    fd = unix_connect(path);
    if (fd < 0) {
        _exit(5);
    }
    send(fd, "stats json\n", 11, MSG_NOSIGNAL);
    do {
        struct pollfd p = {.fd = fd, .events = POLLIN};

        if (poll(&p, 1, IO_TIMEOUT_MS) <= 0) {
            _exit(6);
        }
        n = recv(fd, buf, sizeof(buf), 0);
    } while (n < 0 && errno == EINTR);
    _exit(n <= 0 ? 0 : 7);
}

static void test_non_root_refused(void **state)
{
    struct fixture *f = *state;
    int status;
    pid_t pid;

    if (geteuid() != 0) {
        printf("skipped: a non-root peer needs root to switch uid\n");
        skip();
    }
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        non_root_child(f->path);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(atomic_load(&f->calls), 0);
}

/* ---------------------------------------------------------------------- */
/* HTTP                                                                    */
/* ---------------------------------------------------------------------- */

static void test_http_metrics(void **state)
{
    struct fixture *f = *state;
    char *want = rendered(f, render_prometheus);
    char *ans = http_get(f, "GET /metrics HTTP/1.1\r\nHost: x\r\n"
                            "Accept: */*\r\n\r\n");
    char head[256];
    char *body;

    assert_true(!strncmp(ans, "HTTP/1.1 200 OK\r\n", 17));
    assert_non_null(strstr(ans, "\r\nContent-Type: text/plain; "
                                "version=0.0.4; charset=utf-8\r\n"));
    snprintf(head, sizeof(head), "\r\nContent-Length: %zu\r\n", strlen(want));
    assert_non_null(strstr(ans, head));
    body = strstr(ans, "\r\n\r\n");
    assert_non_null(body);
    assert_string_equal(body + 4, want);
    free(ans);
    /* A query string is ignored; HEAD has the head only. */
    ans = http_get(f, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
    assert_true(!strncmp(ans, "HTTP/1.1 200 OK\r\n", 17));
    free(ans);
    ans = http_get(f, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_true(!strncmp(ans, "HTTP/1.1 200 OK\r\n", 17));
    assert_string_equal(strstr(ans, "\r\n\r\n"), "\r\n\r\n");
    free(ans);
    free(want);
}

static void test_http_errors(void **state)
{
    struct fixture *f = *state;
    char big[ADMIN_HTTP_REQ_MAX];
    char *ans;
    int calls = atomic_load(&f->calls);

    ans = http_get(f, "GET / HTTP/1.1\r\n\r\n");
    assert_true(!strncmp(ans, "HTTP/1.1 404 Not Found\r\n", 24));
    free(ans);
    ans = http_get(f, "GET /metricsx HTTP/1.1\r\n\r\n");
    assert_true(!strncmp(ans, "HTTP/1.1 404 Not Found\r\n", 24));
    free(ans);
    ans = http_get(f, "POST /metrics HTTP/1.1\r\n\r\n");
    assert_true(!strncmp(ans, "HTTP/1.1 405 Method Not Allowed\r\n", 33));
    assert_non_null(strstr(ans, "\r\nAllow: GET, HEAD\r\n"));
    free(ans);
    ans = http_get(f, "hello there\n\n");
    assert_true(!strncmp(ans, "HTTP/1.1 400 Bad Request\r\n", 26));
    free(ans);
    memset(big, 'a', sizeof(big));
    ans = ask_fd(tcp_connect(admin_metrics_port(f->a)), big, sizeof(big));
    assert_true(!strncmp(ans, "HTTP/1.1 431 ", 13));
    free(ans);
    assert_int_equal(atomic_load(&f->calls), calls);
}

static void test_metrics_addresses(void **state)
{
    static const char *const bad[] = {
        "nonsense", "1.2.3.4.5:80",    ":abc", "::1:80", "127.0.0.1:",
        "[::1:80",  "127.0.0.1:70000",
    };
    struct fixture *f = *state;
    struct admin *b;
    char path[160];

    /* One endpoint per admin socket. */
    assert_int_equal(admin_listen_metrics(f->a, "127.0.0.1:0"), -1);
    snprintf(path, sizeof(path), "%s/other.sock", f->dir);
    assert_int_equal(admin_open(&b, path, fake_snapshot, f), 0);
    assert_int_equal(admin_metrics_port(b), -1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (admin_listen_metrics(b, bad[i]) != -1) {
            fail_msg("\"%s\" was accepted", bad[i]);
        }
    }
    assert_int_equal(admin_listen_metrics(b, ":0"), 0);
    assert_true(admin_metrics_port(b) > 0);
    admin_close(b);
}

/* ---------------------------------------------------------------------- */
/* vgpu-smi                                                                */
/* ---------------------------------------------------------------------- */

struct smi_run {
    int status; /* exit status, or 128 + signal */
    char *out;
    char *err;
};

static char *slurp(const char *path)
{
    int fd = open(path, O_RDONLY);
    char *text;

    assert_true(fd >= 0);
    text = read_all(fd, NULL);
    close(fd);
    assert_non_null(text);
    return text;
}

static void smi_path(char *buf, size_t len)
{
    char self[PATH_MAX - 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;

    assert_true(n > 0);
    self[n] = '\0';
    slash = strrchr(self, '/');
    assert_non_null(slash);
    *slash = '\0';
    snprintf(buf, len, "%s/vgpu-smi", self);
}

/*
 * Run vgpu-smi with args (NULL-terminated); as uid when uid >= 0; sent
 * SIGTERM after kill_after_ms when that is > 0.
 */
static struct smi_run run_smi(struct fixture *f, const char *const *args,
                              int uid, int kill_after_ms)
{
    char bin[PATH_MAX], out[192], err[192];
    const char *argv[16] = {"vgpu-smi"};
    struct smi_run r;
    int status;
    pid_t pid;
    size_t i;

    smi_path(bin, sizeof(bin));
    for (i = 0; args[i] && i + 2 < sizeof(argv) / sizeof(argv[0]); i++) {
        argv[i + 1] = args[i];
    }
    argv[i + 1] = NULL;
    snprintf(out, sizeof(out), "%s/smi.out", f->dir);
    snprintf(err, sizeof(err), "%s/smi.err", f->dir);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out, O_CREAT | O_TRUNC | O_WRONLY, 0644);
        int e = open(err, O_CREAT | O_TRUNC | O_WRONLY, 0644);

        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) {
            _exit(125);
        }
        if (uid >= 0 && (setgid((gid_t)uid) || setuid((uid_t)uid))) {
            _exit(125);
        }
        execv(bin, (char *const *)argv);
        _exit(126);
    }
    if (kill_after_ms > 0) {
        poll(NULL, 0, kill_after_ms);
        kill(pid, SIGTERM);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

static void smi_free(struct smi_run *r)
{
    free(r->out);
    free(r->err);
}

/* The line of out that starts with prefix, or fail. */
static const char *line_starting(const char *out, const char *prefix)
{
    for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (!strncmp(p, prefix, strlen(prefix))) {
            return p;
        }
    }
    fail_msg("no line starts with \"%s\" in:\n%s", prefix, out);
    return NULL;
}

static void assert_in_line(const char *line, const char *what)
{
    const char *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line) : strlen(line);
    char *copy = strndup(line, n);

    if (!strstr(copy, what)) {
        fail_msg("\"%s\" not in line \"%s\"", what, copy);
    }
    free(copy);
}

static void test_smi_tables(void **state)
{
    struct fixture *f = *state;
    const char *args[] = {"-s", f->path, NULL};
    struct smi_run r = run_smi(f, args, -1, 0);
    const char *l;

    printf("%s", r.out);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    assert_non_null(strstr(r.out, "\nMediator: pid 4242, up 0d 01:02:03\n"));
    assert_non_null(
        strstr(r.out, "\nBackend:  cpu (CUDA backend not built)\n"));
    assert_non_null(strstr(r.out, "\nScheduling: strict priority"));
    assert_non_null(strstr(r.out, "\nUtil: since the mediator started\n"));
    l = line_starting(r.out, "  0  CPU reference 0 ");
    assert_in_line(l, " - ");
    assert_in_line(l, " A,B ");
    assert_in_line(l, "16.0 GiB");
    assert_in_line(l, " yes ");
    assert_in_line(l, "25.0%");
    assert_in_line(l, " 42");
    l = line_starting(r.out, "  1  NVIDIA H100 80GB HBM3 ");
    assert_in_line(l, "GPU-8f6e3c2a-1b2c-4d5e-9f00-aabbccddeeff");
    l = line_starting(r.out, "    1  web-01 ");
    assert_in_line(l, "  7  gpu-pool.1        high      yes");
    assert_in_line(l, "100       3       2");
    assert_in_line(l, "1.500 s");
    assert_in_line(l, "1.0 MiB / 256.0 MiB");
    /* A hostile name stays on its line, unassigned shows dashes. */
    l = line_starting(r.out, "   12  batch \"night\"?? ");
    assert_in_line(l, "  -  -                 -         no");
    assert_in_line(l, "0 B / none");
    smi_free(&r);
}

static void test_smi_json_and_prometheus(void **state)
{
    struct fixture *f = *state;
    const char *json[] = {"--json", "--socket", f->path, NULL};
    const char *prom[] = {"-p", "-s", f->path, NULL};
    char *want = rendered(f, render_json);
    struct smi_run r = run_smi(f, json, -1, 0);

    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, want);
    smi_free(&r);
    free(want);
    want = rendered(f, render_prometheus);
    r = run_smi(f, prom, -1, 0);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, want);
    smi_free(&r);
    free(want);
}

static void test_smi_loop(void **state)
{
    struct fixture *f = *state;
    const char *args[] = {"-s", f->path, "-l", "1", NULL};
    struct smi_run r;
    const char *second;

    atomic_store(&f->advance, true);
    r = run_smi(f, args, -1, 1500);
    assert_int_equal(r.status, 128 + SIGTERM);
    assert_non_null(strstr(r.out, "\nUtil: since the mediator started\n"));
    assert_in_line(line_starting(r.out, "  0  CPU reference 0 "), " 25.0%");
    second = strstr(r.out, "\n\nvgpu-smi ");
    assert_non_null(second);
    /* The second round: 1 s later, GPU 0 busy for 0.5 s of it. */
    assert_non_null(strstr(second, "\nUtil: over the last 1.0 s\n"));
    assert_in_line(line_starting(second + 2, "  0  CPU reference 0 "),
                   " 50.0%");
    smi_free(&r);
}

static void test_smi_errors(void **state)
{
    struct fixture *f = *state;
    char path[160], want[320];
    const char *missing[] = {"-s", path, NULL};
    const char *badopt[] = {"--frob", NULL};
    const char *badloop[] = {"-l", "0", NULL};
    const char *help[] = {"--help", NULL};
    struct smi_run r;

    snprintf(path, sizeof(path), "%s/nothing/admin.sock", f->dir);
    r = run_smi(f, missing, -1, 0);
    assert_int_equal(r.status, 3);
    snprintf(want, sizeof(want),
             "vgpu-smi: cannot reach the mediator at %s: No such file or "
             "directory (is vgpu-mediator running?)\n",
             path);
    assert_string_equal(r.err, want);
    assert_string_equal(r.out, "");
    smi_free(&r);
    r = run_smi(f, badopt, -1, 0);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown option '--frob'"));
    smi_free(&r);
    r = run_smi(f, badloop, -1, 0);
    assert_int_equal(r.status, 2);
    smi_free(&r);
    r = run_smi(f, help, -1, 0);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "SYNOPSIS"));
    assert_non_null(strstr(r.out, "EXIT STATUS"));
    assert_non_null(strstr(r.out, "EXAMPLES"));
    smi_free(&r);
}

static void test_smi_timeout(void **state)
{
    struct fixture *f = *state;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char path[100];
    const char *args[] = {"-s", path, "-t", "1", NULL};
    uint64_t start;
    struct smi_run r;
    int fd;

    /* A server that never answers: vgpu-smi gives up after -t. */
    snprintf(path, sizeof(path), "%s/mute.sock", f->dir);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(fd, 4), 0);
    start = now_ms();
    r = run_smi(f, args, -1, 0);
    assert_int_equal(r.status, 4);
    assert_true(now_ms() - start < 3000);
    assert_non_null(strstr(r.err, "did not answer within 1 s"));
    smi_free(&r);
    close(fd);
    unlink(path);
}

static void test_smi_as_non_root(void **state)
{
    struct fixture *f = *state;
    const char *args[] = {"-s", f->path, NULL};
    struct smi_run r;

    if (geteuid() != 0) {
        printf("skipped: needs root to switch uid\n");
        skip();
    }
    chmod(f->dir, 0755); /* let uid 4343 reach the socket file itself */
    r = run_smi(f, args, 4343, 0);
    assert_int_equal(r.status, 3);
    assert_non_null(strstr(r.err, ": Permission denied (the admin socket is "
                                  "for root only)\n"));
    smi_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stats_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_kv_and_metrics, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ping_help_and_unterminated_line,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_line_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_silent_client_blocks_nobody, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_too_many_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_live_and_foreign_paths,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_root_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_addresses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_smi_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smi_json_and_prometheus, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_smi_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smi_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smi_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smi_as_non_root, setup, teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    vgpu_log_open("test-admin", VGPU_LOG_STDERR, LOG_DEBUG);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
