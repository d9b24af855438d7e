/*
 * registry.c - the host-local VM-ID registry and the vgpu-required memory.
 *
 * <state>/vm-ids holds one "<vm-id> <vm-uuid>" line per VM that was ever
 * assigned on this host; it is what makes VM-IDs unique on the host (a
 * cloned VM carries its parent's other-config:vgpu-vm-id).  <state>/required
 * lists the uuids whose last assignment saw vgpu-required=true, so the
 * wrapper can still refuse to start such a VM when xapi cannot be asked.
 * Both are read and rewritten under flock() on <state>/vm-ids.lock, and
 * each rewrite is a write to a temporary file, fsync and rename.
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
    unsigned int id; /* 0 in the required list */
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

static int table_add(struct table *t, unsigned int id, const char *uuid)
{
    struct entry *e;

    if (t->n >= MAX_ENTRIES)
        return -1;
    e = realloc(t->e, (t->n + 1) * sizeof(*e));
    if (!e)
        return -1;
    t->e = e;
    e[t->n].id = id;
    snprintf(e[t->n].uuid, sizeof(e[t->n].uuid), "%s", uuid);
    t->n++;
    return 0;
}

/* Parses one line; with_id: "<id> <uuid>", else "<uuid>". */
static int parse_line(char *line, int with_id, unsigned int *id, char **uuid)
{
    char *end;
    unsigned long v = 0;

    line[strcspn(line, "\n")] = '\0';
    if (with_id) {
        errno = 0;
        v = strtoul(line, &end, 10);
        if (end == line || *end != ' ' || errno || v == 0 || v > VGPU_VM_ID_MAX)
            return -1;
        line = end + 1;
    }
    if (!vgpu_uuid_ok(line))
        return -1;
    *id = (unsigned int)v;
    *uuid = line;
    return 0;
}

static int load(struct vgpu_ctx *c, const char *name, int with_id,
                struct table *t)
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
        unsigned int id;
        char *uuid;

        lineno++;
        if (line[0] == '\n' || line[0] == '#')
            continue;
        if (parse_line(line, with_id, &id, &uuid) < 0 ||
            table_add(t, id, uuid) < 0) {
            fclose(f);
            return vgpu_fail(c, VGPU_FAULT_STATE,
                             "%s line %d is malformed (fix or remove it)", path,
                             lineno);
        }
    }
    fclose(f);
    return 0;
}

static int save(struct vgpu_ctx *c, const char *name, int with_id,
                const struct table *t)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 64];
    FILE *f;
    int ok;

    path_of(c, name, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    f = fopen(tmp, "we");
    if (!f)
        goto fail;
    for (size_t i = 0; i < t->n; i++) {
        if (with_id)
            fprintf(f, "%u %s\n", t->e[i].id, t->e[i].uuid);
        else
            fprintf(f, "%s\n", t->e[i].uuid);
    }
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

static int id_holder(const struct table *t, unsigned int id)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->e[i].id == id)
            return (int)i;
    return -1;
}

static unsigned int id_of(const struct table *t, const char *uuid)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->e[i].uuid, uuid))
            return t->e[i].id;
    return 0;
}

static unsigned int lowest_free(const struct table *t)
{
    for (unsigned int id = 1; id <= VGPU_VM_ID_MAX; id++)
        if (id_holder(t, id) < 0)
            return id;
    return 0;
}

/* Drops every entry of uuid (its old ids) and records uuid -> id. */
static int record(struct table *t, const char *uuid, unsigned int id)
{
    size_t w = 0;

    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->e[i].uuid, uuid))
            t->e[w++] = t->e[i];
    t->n = w;
    return table_add(t, id, uuid);
}

static unsigned int choose(const struct table *t, const char *uuid,
                           unsigned int wanted)
{
    int holder = wanted ? id_holder(t, wanted) : -1;
    unsigned int mine;

    if (wanted && (holder < 0 || !strcmp(t->e[holder].uuid, uuid)))
        return wanted;
    mine = id_of(t, uuid);
    return mine ? mine : lowest_free(t);
}

static int update_required(struct vgpu_ctx *c, const char *uuid, int required)
{
    struct table t = {0};
    int had, rc;

    rc = load(c, VGPU_REQUIRED_FILE, 0, &t);
    if (rc)
        goto out;
    had = 0;
    for (size_t i = 0; i < t.n; i++)
        if (!strcmp(t.e[i].uuid, uuid))
            had = 1;
    if (had == !!required)
        goto out;
    if (required) {
        rc = table_add(&t, 0, uuid);
    } else {
        size_t w = 0;

        for (size_t i = 0; i < t.n; i++)
            if (strcmp(t.e[i].uuid, uuid))
                t.e[w++] = t.e[i];
        t.n = w;
    }
    rc = rc ? vgpu_fail(c, VGPU_FAULT_INTERNAL, "out of memory")
            : save(c, VGPU_REQUIRED_FILE, 0, &t);
out:
    free(t.e);
    return rc;
}

int vgpu_registry_claim(struct vgpu_ctx *c, const char *uuid,
                        unsigned int wanted, int required, unsigned int *vm_id)
{
    struct table t = {0};
    int fd = lock_state(c);
    int rc;

    if (fd < 0)
        return -1;
    rc = load(c, VGPU_REGISTRY_FILE, 1, &t);
    if (rc)
        goto out;
    *vm_id = choose(&t, uuid, wanted);
    if (!*vm_id) {
        rc = vgpu_fail(c, VGPU_FAULT_STATE, "no free VM-ID left");
        goto out;
    }
    if (id_of(&t, uuid) != *vm_id || id_holder(&t, *vm_id) < 0) {
        rc = record(&t, uuid, *vm_id) < 0
                 ? vgpu_fail(c, VGPU_FAULT_INTERNAL, "out of memory")
                 : save(c, VGPU_REGISTRY_FILE, 1, &t);
        if (rc)
            goto out;
    }
    rc = update_required(c, uuid, required);
out:
    free(t.e);
    close(fd);
    return rc;
}

int vgpu_registry_required(struct vgpu_ctx *c, const char *uuid)
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
