/*
 * conf.c - value checks and host configuration: domids, uuids, priority
 * names, pools (a valid name that <conf>/pools.conf lists, or A or B
 * without it; the rules are the contract's, vgpu/names.h), and the
 * key=value settings of <conf>/vgpu.conf.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "qemuargs.h"
#include "vgpu_protocol.h"
#include "poolconf.h"

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
    uint32_t prio;

    return vgpu_priority_parse(s, &prio) == 0;
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

/*
 * Is pool one of the pools in <conf>/pools.conf (A and B without the
 * file)?  The syntax of that file is poolconf.c's, shared with the
 * mediator, so both read it the same way.
 */
int vgpu_check_pool(struct vgpu_ctx *c, const char *pool)
{
    char path[PATH_MAX + 32], err[512];
    char list[POOLCONF_MAX_POOLS * (VGPU_POOL_NAME_SIZE + 2) + 1] = "";
    struct poolconf pc;

    snprintf(path, sizeof(path), "%s/%s", c->conf_dir, VGPU_POOLS_CONF_NAME);
    if (poolconf_load(path, &pc, err, sizeof(err)) < 0)
        return vgpu_fail(c, VGPU_FAULT_STATE, "%s", err);
    /* pools.conf holds valid names only (poolconf.c), so a listed pool is
     * also a valid one: safe in a -device option and a xenstore value. */
    if (vgpu_pool_name_valid(pool) && poolconf_find(&pc, pool))
        return 0;
    for (unsigned i = 0; i < pc.npools; i++) {
        if (i)
            strcat(list, ", ");
        strcat(list, pc.pools[i].name);
    }
    if (pool && !vgpu_pool_name_valid(pool))
        return vgpu_fail(c, VGPU_FAULT_BAD_ARG,
                         "bad pool name '%.64s' (known: %s)", pool, list);
    return vgpu_fail(c, VGPU_FAULT_BAD_ARG, "unknown pool '%s' (known: %s)",
                     pool ? pool : "", list);
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

int vgpu_conf_pci_slot(struct vgpu_ctx *c, unsigned int *slot)
{
    char *conf = vgpu_conf_get(c, "pci-slot");
    int s;

    if (!conf) {
        *slot = VGPU_PCI_SLOT_DEFAULT;
        return 0;
    }
    s = qemuargs_parse_addr(conf);
    if (s < (int)VGPU_PCI_SLOT_MIN || s > (int)VGPU_PCI_SLOT_MAX ||
        strchr(conf, '.')) {
        vgpu_fail(c, VGPU_FAULT_BAD_ARG,
                  "pci-slot=%.32s in " VGPU_CONF_FILE " is not a PCI slot in "
                  "0x%x..0x%x (the slots xenopsd never gives out)",
                  conf, VGPU_PCI_SLOT_MIN, VGPU_PCI_SLOT_MAX);
        free(conf);
        return -1;
    }
    free(conf);
    *slot = (unsigned int)s;
    return 0;
}
