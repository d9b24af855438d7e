/*
 * conf.c - value checks and host configuration: domids, uuids, priority
 * names, pool names (A and B, or the list in <conf>/pools.conf), and the
 * key=value settings of <conf>/vgpu.conf.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

int vgpu_parse_domid(const char *s, unsigned int *domid)
{
    unsigned long v;
    char *end;

    if (!s || !isdigit((unsigned char)s[0]) || strlen(s) > 5)
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (*end || errno || v == 0 || v > VGPU_DOMID_MAX)
        return -1;
    *domid = (unsigned int)v;
    return 0;
}

int vgpu_uuid_ok(const char *s)
{
    if (!s || strlen(s) != VGPU_UUID_LEN)
        return 0;
    for (int i = 0; i < VGPU_UUID_LEN; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return 0;
    }
    return 1;
}

int vgpu_priority_ok(const char *s)
{
    return s &&
           (!strcmp(s, "low") || !strcmp(s, "medium") || !strcmp(s, "high"));
}

/* A pool name is safe to put in a -device option and a xenstore value. */
static int pool_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > VGPU_POOL_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return 0;
    return 1;
}

/* Strips comments and surrounding blanks in place; returns the text. */
static char *trim_line(char *line)
{
    char *hash = strchr(line, '#');
    char *end;

    if (hash)
        *hash = '\0';
    while (isspace((unsigned char)*line))
        line++;
    end = line + strlen(line);
    while (end > line && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return line;
}

static FILE *open_conf(struct vgpu_ctx *c, const char *name)
{
    char path[PATH_MAX + 32];

    snprintf(path, sizeof(path), "%s/%s", c->conf_dir, name);
    return fopen(path, "re");
}

/* Fills names with the known pools; returns how many. */
static size_t known_pools(struct vgpu_ctx *c,
                          char names[][VGPU_POOL_NAME_MAX + 1], size_t max)
{
    FILE *f = open_conf(c, VGPU_POOLS_FILE);
    char line[256];
    size_t n = 0;

    if (!f) {
        strcpy(names[0], "A");
        strcpy(names[1], "B");
        return 2;
    }
    while (n < max && fgets(line, sizeof(line), f)) {
        char *t = trim_line(line);

        if (pool_name_ok(t))
            snprintf(names[n++], VGPU_POOL_NAME_MAX + 1, "%s", t);
    }
    fclose(f);
    return n;
}

int vgpu_check_pool(struct vgpu_ctx *c, const char *pool)
{
    char names[VGPU_MAX_POOLS][VGPU_POOL_NAME_MAX + 1];
    char list[VGPU_MAX_POOLS * (VGPU_POOL_NAME_MAX + 2) + 1] = "";
    size_t n = known_pools(c, names, VGPU_MAX_POOLS);

    for (size_t i = 0; i < n; i++) {
        if (pool && !strcmp(pool, names[i]))
            return 0;
        if (i)
            strcat(list, ", ");
        strcat(list, names[i]);
    }
    if (pool && !pool_name_ok(pool))
        return vgpu_fail(c, VGPU_FAULT_BAD_ARG,
                         "bad pool name '%.64s' (known: %s)", pool,
                         n ? list : "none");
    return vgpu_fail(c, VGPU_FAULT_BAD_ARG, "unknown pool '%s' (known: %s)",
                     pool ? pool : "", n ? list : "none");
}

char *vgpu_conf_get(struct vgpu_ctx *c, const char *key)
{
    FILE *f = open_conf(c, VGPU_CONF_FILE);
    size_t klen = strlen(key);
    char line[PATH_MAX + 64];
    char *val = NULL;

    if (!f)
        return NULL;
    while (!val && fgets(line, sizeof(line), f)) {
        char *t = trim_line(line);

        if (!strncmp(t, key, klen) && (t[klen] == '=' || t[klen] == ' ')) {
            t += klen;
            while (*t == ' ' || *t == '=')
                t++;
            if (*t)
                val = strdup(t);
        }
    }
    fclose(f);
    return val;
}
