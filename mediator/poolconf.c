/*
 * poolconf.c - owns the syntax of pools.conf (see poolconf.h); what a
 * pool name is, is the contract's rule (vgpu/names.h).
 */
#include "poolconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void poolconf_default(struct poolconf *pc)
{
    static const char *const builtin[] = {VGPU_POOLS_BUILTIN};

    memset(pc, 0, sizeof(*pc));
    for (unsigned i = 0; i < VGPU_POOLS_BUILTIN_COUNT; i++) {
        snprintf(pc->pools[i].name, sizeof(pc->pools[i].name), "%s",
                 builtin[i]);
        pc->pools[i].all_gpus = true;
    }
    pc->npools = VGPU_POOLS_BUILTIN_COUNT;
}

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) {
        *--end = '\0';
    }
    return s;
}

bool poolconf_gpu_index(const char *s, unsigned *index)
{
    unsigned long v;
    char *end;

    if (!isdigit((unsigned char)s[0]) || (s[0] == '0' && s[1])) {
        return false;
    }
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v >= POOLCONF_MAX_GPUS) {
        return false;
    }
    *index = (unsigned)v;
    return true;
}

static bool valid_uuid(const char *s)
{
    size_t n = strlen(s);

    if (strncmp(s, "GPU-", 4) != 0 || n <= 4 || n >= POOLCONF_GPU_MAX) {
        return false;
    }
    for (s += 4; *s; s++) {
        if (!isxdigit((unsigned char)*s) && *s != '-') {
            return false;
        }
    }
    return true;
}

static int parse_gpus(char *list, struct pool_def *p, const char **why)
{
    char *tok;

    if (!*trim(list)) {
        *why = "'=' with no GPU after it";
        return -1;
    }
    /* strsep keeps empty items, so "0,,1" and "0," are refused. */
    while ((tok = strsep(&list, ","))) {
        unsigned index;

        tok = trim(tok);
        if (!poolconf_gpu_index(tok, &index) && !valid_uuid(tok)) {
            *why = "a GPU is an index 0-15 or a GPU-<uuid>";
            return -1;
        }
        if (p->ngpus == POOLCONF_MAX_GPUS) {
            *why = "too many GPUs in one pool";
            return -1;
        }
        snprintf(p->gpus[p->ngpus++], POOLCONF_GPU_MAX, "%s", tok);
    }
    return 0;
}

static int parse_line(char *line, struct poolconf *pc, const char **why)
{
    char *hash = strchr(line, '#');
    char *eq, *name;
    struct pool_def *p;

    if (hash) {
        *hash = '\0';
    }
    line = trim(line);
    if (!*line) {
        return 0;
    }
    eq = strchr(line, '=');
    if (eq) {
        *eq = '\0';
    }
    name = trim(line);
    if (!vgpu_pool_name_valid(name)) {
        *why = "a pool name is " VGPU_POOL_NAME_RULE;
        return -1;
    }
    if (poolconf_find(pc, name)) {
        *why = "pool defined twice";
        return -1;
    }
    if (pc->npools == POOLCONF_MAX_POOLS) {
        *why = "too many pools";
        return -1;
    }
    p = &pc->pools[pc->npools];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->all_gpus = !eq;
    if (eq && parse_gpus(eq + 1, p, why)) {
        return -1;
    }
    pc->npools++;
    return 0;
}

int poolconf_parse(const char *text, struct poolconf *pc, char *err,
                   size_t errlen)
{
    char *copy = strdup(text), *save = NULL, *line;
    unsigned lineno = 0;
    const char *why = NULL;
    int ret = 0;

    memset(pc, 0, sizeof(*pc));
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* strsep keeps empty lines, so line numbers stay right. */
    save = copy;
    while ((line = strsep(&save, "\n"))) {
        lineno++;
        if (parse_line(line, pc, &why)) {
            snprintf(err, errlen, "line %u: %s", lineno, why);
            ret = -1;
            break;
        }
    }
    if (ret == 0 && pc->npools == 0) {
        snprintf(err, errlen, "no pool defined");
        ret = -1;
    }
    free(copy);
    return ret;
}

int poolconf_load(const char *path, struct poolconf *pc, char *err,
                  size_t errlen)
{
    char text[16384];
    size_t n;
    FILE *f = fopen(path, "r");
    int ret;

    if (!f) {
        if (errno == ENOENT) {
            poolconf_default(pc);
            return 1;
        }
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    n = fread(text, 1, sizeof(text) - 1, f);
    ret = ferror(f) || !feof(f) ? -1 : 0;
    fclose(f);
    if (ret) {
        snprintf(err, errlen, "%s: unreadable or over %zu bytes", path,
                 sizeof(text) - 1);
        return -1;
    }
    text[n] = '\0';
    if (memchr(text, '\0', n)) {
        snprintf(err, errlen, "%s: contains a NUL byte", path);
        return -1;
    }
    if (poolconf_parse(text, pc, err, errlen)) {
        char msg[256];

        snprintf(msg, sizeof(msg), "%s", err);
        snprintf(err, errlen, "%s: %s", path, msg);
        return -1;
    }
    return 0;
}

const struct pool_def *poolconf_find(const struct poolconf *pc,
                                     const char *name)
{
    for (unsigned i = 0; i < pc->npools; i++) {
        if (strcmp(pc->pools[i].name, name) == 0) {
            return &pc->pools[i];
        }
    }
    return NULL;
}
