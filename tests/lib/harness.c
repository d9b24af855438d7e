/*
 * harness.c - owns the helpers that the integration test and the benchmark
 * share to drive a real vgpu-mediator: the scratch folder, child processes
 * (the test xenstore server), xenstore writes and domains.  Time and the
 * device's side of the socket are devwire.c's (harness.h declares both),
 * which needs no libxenstore, so the simulated VM's library links it too.
 */
#include "harness.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xenstore.h>

/* ---------------------------------------------------------------------- */
/* setting up and tearing down                                             */
/* ---------------------------------------------------------------------- */

/*
 * VGPU_MEDIATOR_BIN, when set, is the mediator to drive instead of the
 * build's: any executable that ends up as the daemon with the pid it was
 * started with (tests/integration/test-mediator-glibc217.sh: a script that
 * execs the glibc 2.17 build through tests/lib/run-glibc217.sh).
 */
bool harness_init(struct harness *h, const char *prefix, const char *build)
{
    const char *med = getenv("VGPU_MEDIATOR_BIN");

    h->prefix = prefix;
    h->workdir[0] = '\0';
    if (med && *med) {
        snprintf(h->mediator_bin, sizeof(h->mediator_bin), "%s", med);
    } else {
        snprintf(h->mediator_bin, sizeof(h->mediator_bin),
                 "%s/mediator/vgpu-mediator", build);
    }
    snprintf(h->xs_bin, sizeof(h->xs_bin), "%s/xs-server/xs-server", build);
    return access(h->mediator_bin, X_OK) == 0 && access(h->xs_bin, X_OK) == 0;
}

bool harness_make_workdir(struct harness *h, const char *tmpl)
{
    snprintf(h->workdir, sizeof(h->workdir), "%s", tmpl);
    if (!mkdtemp(h->workdir)) {
        perror("mkdtemp");
        h->workdir[0] = '\0';
        return false;
    }
    return true;
}

static void remove_workdir(const struct harness *h)
{
    char cmd[PATH_MAX + 16];

    if (h->workdir[0] && !getenv("VGPU_KEEP")) {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", h->workdir);
        if (system(cmd)) {
            fprintf(stderr, "%scould not remove %s\n", h->prefix, h->workdir);
        }
    }
}

/* The child: stdout into the pipe, then the server. */
static void exec_xs_server(const struct harness *h, const char *sock,
                           const int fds[2])
{
    dup2(fds[1], 1);
    close(fds[0]);
    execl(h->xs_bin, h->xs_bin, "--socket", sock, (char *)NULL);
    _exit(127);
}

pid_t harness_start_xs_server(const struct harness *h, const char *sock)
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
        exec_xs_server(h, sock, fds);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    f = fdopen(fds[0], "r");
    /* The server prints "ready" once its socket accepts connections. */
    if (!f || !fgets(buf, sizeof(buf), f) || strncmp(buf, "ready", 5)) {
        fprintf(stderr, "%sxs-server did not get ready\n", h->prefix);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (f) {
            fclose(f);
        }
        return -1;
    }
    fclose(f);
    return pid;
}

struct xs_handle *harness_open_xenstore(const struct harness *h,
                                        const char *sock, pid_t *pid)
{
    struct xs_handle *xs;

    *pid = harness_start_xs_server(h, sock);
    if (*pid < 0) {
        return NULL;
    }
    setenv("XENSTORED_PATH", sock, 1);
    xs = xs_open(0);
    if (!xs) {
        fprintf(stderr, "%sxs_open: %s\n", h->prefix, strerror(errno));
    }
    return xs;
}

void harness_stop_process(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGTERM);
        waitpid(*pid, NULL, 0);
        *pid = -1;
    }
}

void harness_teardown(const struct harness *h, pid_t *med_pid, pid_t *xs_pid,
                      struct xs_handle *xs)
{
    harness_stop_process(med_pid);
    harness_stop_process(xs_pid);
    if (xs) {
        xs_close(xs);
    }
    remove_workdir(h);
}

void harness_xs_set(const struct harness *h, struct xs_handle *xs,
                    uint32_t domid, const char *key, const char *val)
{
    char path[128];

    snprintf(path, sizeof(path), VGPU_XS_DOMAIN_FMT "/%s", domid, key);
    if (!xs_write(xs, XBT_NULL, path, val, strlen(val))) {
        fprintf(stderr, "%sxs_write %s: %s\n", h->prefix, path,
                strerror(errno));
        exit(1);
    }
}

void harness_print_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];

    while (f && fgets(line, sizeof(line), f)) {
        fputs(line, stdout);
    }
    if (f) {
        fclose(f);
    }
}

/* One look: does a line of the file contain text? */
static bool file_has_now(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    bool found = false;

    while (!found && f && fgets(line, sizeof(line), f)) {
        found = strstr(line, text) != NULL;
    }
    if (f) {
        fclose(f);
    }
    return found;
}

bool harness_file_has(const char *path, const char *text, int timeout_ms)
{
    long end = harness_now_ms() + timeout_ms;

    do {
        if (file_has_now(path, text)) {
            return true;
        }
        harness_sleep_ms(10);
    } while (harness_now_ms() < end);
    return false;
}

/* ---------------------------------------------------------------------- */
/* domains                                                                 */
/* ---------------------------------------------------------------------- */

void harness_make_domain(const struct harness *h, struct xs_handle *xs,
                         const char *qroot, uint32_t domid, const char *pool,
                         const char *prio)
{
    char path[PATH_MAX], id[16];

    xs_introduce_domain(xs, domid, 0, 0);
    snprintf(id, sizeof(id), "%u", domid);
    harness_xs_set(h, xs, domid, VGPU_XS_KEY_POOL, pool);
    harness_xs_set(h, xs, domid, VGPU_XS_KEY_PRIORITY, prio);
    harness_xs_set(h, xs, domid, VGPU_XS_KEY_VM_ID, id);
    snprintf(path, sizeof(path), "%s/" VGPU_QEMU_ROOT_PREFIX "%u", qroot,
             domid);
    mkdir(path, 0755);
}
