/*
 * status.c - what the mediator serves now, from the status file it keeps
 * (<run>/mediator.status: a "mediator pid=... backend=... qemu-root=..."
 * line, then one "domain <domid> pool=... priority=... vm-id=...
 * device=..." line per domain).  The text is handed back as it is, minus
 * bytes that are not printable ASCII; a missing file means the mediator is
 * not running.  A last line tells of our qemu-dm (common/qemudm.h):
 * "qemu-dm unusable: <why>", "qemu-dm skew: <XCP-ng's newer release and
 * the command that rebuilds ours>", or "qemu-dm <path>: vgpu-stub, built
 * from XCP-ng's qemu <EVR> ...".
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "qemudm.h"

#define STATUS_MAX (64 * 1024)

static void sanitize(char *s)
{
    for (; *s; s++)
        if ((*s < 0x20 && *s != '\n' && *s != '\t') || *s == 0x7f ||
            (unsigned char)*s >= 0x80)
            *s = '?';
}

static char *read_all(FILE *f)
{
    char *buf = malloc(STATUS_MAX + 1);
    size_t n;

    if (!buf)
        return NULL;
    n = fread(buf, 1, STATUS_MAX, f);
    buf[n] = '\0';
    buf[strlen(buf)] = '\0'; /* stop at a NUL byte */
    while (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    return buf;
}

/* The pid of the "mediator pid=N" line, or 0. */
static long mediator_pid(const char *text)
{
    const char *p = strstr(text, "pid=");

    if (strncmp(text, "mediator ", 9) || !p)
        return 0;
    return strtol(p + 4, NULL, 10);
}

/* Appends the qemu-dm line to *text (replaced; freed on failure). */
static int add_qemu_dm(struct vgpu_ctx *c, char **text)
{
    struct qemudm_info q;
    char line[sizeof(q.skew_msg) + 64];
    char *t = NULL;

    qemudm_probe(&q, NULL, c->run_dir);
    qemudm_summary(&q, line, sizeof(line));
    sanitize(line);
    if (asprintf(&t, "%s\n%s", *text, line) < 0)
        t = NULL;
    free(*text);
    *text = t;
    return t ? 0 : vgpu_fail(c, VGPU_FAULT_INTERNAL, "out of memory");
}

int vgpu_status_running(const char *text)
{
    return !strncmp(text, "mediator pid=", strlen("mediator pid="));
}

int vgpu_status(struct vgpu_ctx *c, char **text)
{
    if (vgpu_mediator_status(c, text) < 0)
        return -1;
    return add_qemu_dm(c, text);
}

int vgpu_mediator_status(struct vgpu_ctx *c, char **text)
{
    char path[PATH_MAX + 32];
    FILE *f;
    char *s;
    long pid;

    snprintf(path, sizeof(path), "%s/%s", c->run_dir, VGPU_STATUS_FILE_NAME);
    f = fopen(path, "re");
    if (!f) {
        if (errno != ENOENT)
            return vgpu_fail(c, VGPU_FAULT_STATE, "cannot read %s: %s", path,
                             strerror(errno));
        if (asprintf(text, "mediator not running (no %s)", path) < 0)
            return vgpu_fail(c, VGPU_FAULT_INTERNAL, "out of memory");
        return 0;
    }
    s = read_all(f);
    fclose(f);
    if (!s)
        return vgpu_fail(c, VGPU_FAULT_INTERNAL, "out of memory");
    sanitize(s);
    pid = mediator_pid(s);
    if (pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
        char *t = NULL;

        if (asprintf(&t, "mediator not running (stale %s of pid %ld)\n%s", path,
                     pid, s) < 0)
            t = NULL;
        free(s);
        s = t;
        if (!s)
            return vgpu_fail(c, VGPU_FAULT_INTERNAL, "out of memory");
    }
    *text = s;
    return 0;
}
