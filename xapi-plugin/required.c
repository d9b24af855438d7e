/*
 * required.c - the host-local memory of vgpu-required.
 *
 * <state>/required lists the uuids whose last assignment on this host saw
 * other-config:vgpu-required=true, so that the wrapper can still refuse to
 * start such a VM without its device when xapi cannot be asked.  It is
 * read and rewritten under flock() on <state>/required.lock, and each
 * rewrite is a write to a temporary file, fsync and rename.  (VM-IDs are
 * no longer kept here but in the pool: poolids.c.)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core.h"
#include "util.h"

#define MAX_ENTRIES 65536

struct entry {
    char uuid[VGPU_UUID_LEN + 1];
};

struct table {
    struct entry *e;
    size_t n;
};

static void path_of(struct vgpu_ctx *c, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", c->state_dir, name);
}

static int lock_state(struct vgpu_ctx *c)
{
    char path[PATH_MAX + 32];
    int fd;

    if (mkdir_p(c->state_dir) < 0)
        return vgpu_fail(c, VGPU_FAULT_STATE, "cannot create %s: %s",
                         c->state_dir, strerror(errno));
    path_of(c, VGPU_LOCK_FILE, path, sizeof(path));
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) < 0) {
        vgpu_fail(c, VGPU_FAULT_STATE, "cannot lock %s: %s", path,
                  strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int table_add(struct table *t, const char *uuid)
{
    struct entry *e;

    if (t->n >= MAX_ENTRIES)
        return -1;
    e = realloc(t->e, (t->n + 1) * sizeof(*e));
    if (!e)
        return -1;
    t->e = e;
    snprintf(e[t->n].uuid, sizeof(e[t->n].uuid), "%s", uuid);
    t->n++;
    return 0;
}

static int load(struct vgpu_ctx *c, const char *name, struct table *t)
{
    char path[PATH_MAX + 32], line[128];
    FILE *f;
    int lineno = 0;

    path_of(c, name, path, sizeof(path));
    f = fopen(path, "re");
    if (!f)
        return errno == ENOENT
                   ? 0
                   : vgpu_fail(c, VGPU_FAULT_STATE, "cannot read %s: %s", path,
                               strerror(errno));
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (line[0] == '\n' || line[0] == '#')
            continue;
        line[strcspn(line, "\n")] = '\0';
        if (!vgpu_uuid_ok(line) || table_add(t, line) < 0) {
            fclose(f);
            return vgpu_fail(c, VGPU_FAULT_STATE,
                             "%s line %d is malformed (fix or remove it)", path,
                             lineno);
        }
    }
    fclose(f);
    return 0;
}

static int save(struct vgpu_ctx *c, const char *name, const struct table *t)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 64];
    FILE *f;
    int ok;

    path_of(c, name, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    f = fopen(tmp, "we");
    if (!f)
        goto fail;
    for (size_t i = 0; i < t->n; i++)
        fprintf(f, "%s\n", t->e[i].uuid);
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) < 0) {
        unlink(tmp);
        goto fail;
    }
    return 0;
fail:
    return vgpu_fail(c, VGPU_FAULT_STATE, "cannot write %s: %s", path,
                     strerror(errno));
}

static int update_required(struct vgpu_ctx *c, const char *uuid, int required)
{
    struct table t = {0};
    int had, rc;

    rc = load(c, VGPU_REQUIRED_FILE, &t);
    if (rc)
        goto out;
    had = 0;
    for (size_t i = 0; i < t.n; i++)
        if (!strcmp(t.e[i].uuid, uuid))
            had = 1;
    if (had == !!required)
        goto out;
    if (required) {
        rc = table_add(&t, uuid);
    } else {
        size_t w = 0;

        for (size_t i = 0; i < t.n; i++)
            if (strcmp(t.e[i].uuid, uuid))
                t.e[w++] = t.e[i];
        t.n = w;
    }
    rc = rc ? vgpu_fail(c, VGPU_FAULT_INTERNAL, "out of memory")
            : save(c, VGPU_REQUIRED_FILE, &t);
out:
    free(t.e);
    return rc;
}

int vgpu_required_remember(struct vgpu_ctx *c, const char *uuid, int required)
{
    int fd = lock_state(c);
    int rc;

    if (fd < 0)
        return -1;
    rc = update_required(c, uuid, required);
    close(fd);
    return rc;
}

int vgpu_required_recall(struct vgpu_ctx *c, const char *uuid)
{
    char path[PATH_MAX + 32], line[128];
    int found = 0;
    FILE *f;

    path_of(c, VGPU_REQUIRED_FILE, path, sizeof(path));
    f = fopen(path, "re");
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        found = !strcmp(line, uuid);
    }
    fclose(f);
    return found;
}
