/*
 * hostcap.c - what each host of the pool can serve, published in xapi.
 *
 * A host says which vgpu pools it serves, and with how much, in its own
 * host object's other-config, where every host of the pool reads it:
 *
 *     vgpu-pool-<name> = "gpus=<n> mem-mb=<m> vms=<k>"  one per pool served
 *     vgpu-mediator    = "backend=<name>"               the mediator runs
 *
 * The values come from the mediator's status file ("pool ..." lines,
 * mediator.c), so only a running mediator is published; with the mediator
 * stopped the keys are withdrawn.  vgpu-publish keeps them current (run by
 * a timer and when the mediator starts and stops); the vm-pre-start check
 * reads them to name the hosts that serve a pool this host does not.
 *
 * A VM that holds CUDA state here is kept from moving: cudablock.c, run
 * with each publish.
 *
 * Which host is this one: INSTALLATION_UUID of /etc/xensource-inventory,
 * as xapi itself finds it (xapi's Inventory module), then host.get_by_uuid.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "poolconf.h"

#define MEDIATOR_KEY VGPU_HOST_OC_MEDIATOR
#define POOL_PREFIX VGPU_HOST_OC_POOL_PREFIX

int vgpu_this_host(struct vgpu_ctx *c, char **ref)
{
    const char *path = getenv(VGPU_INVENTORY_ENV);
    char line[256], uuid[VGPU_UUID_LEN + 1] = "";
    FILE *f;

    if (!path || path[0] != '/')
        path = VGPU_INVENTORY_DEFAULT;
    f = fopen(path, "re");
    if (!f)
        return vgpu_fail(c, VGPU_FAULT_STATE, "cannot read %s: %s", path,
                         strerror(errno));
    /* INSTALLATION_UUID='<uuid>' (the quotes are optional) */
    while (fgets(line, sizeof(line), f)) {
        char *v = line + strlen("INSTALLATION_UUID=");

        if (strncmp(line, "INSTALLATION_UUID=", strlen("INSTALLATION_UUID=")))
            continue;
        v[strcspn(v, "\r\n")] = '\0';
        if (*v == '\'' || *v == '"') {
            size_t n = strlen(v);

            if (n < 2 || v[n - 1] != *v)
                break;
            v[n - 1] = '\0';
            v++;
        }
        if (vgpu_uuid_ok(v)) /* exactly VGPU_UUID_LEN characters */
            memcpy(uuid, v, sizeof(uuid));
        break;
    }
    fclose(f);
    if (!uuid[0])
        return vgpu_fail(c, VGPU_FAULT_STATE,
                         "%s has no valid INSTALLATION_UUID line", path);
    if (xenapi_get_by_uuid(c->api, "host", uuid, ref))
        return vgpu_fail_xapi(c, "cannot find this host in xapi");
    return 0;
}

/* One published key and its value. */
struct kv {
    char key[VGPU_POOL_NAME_SIZE + 16];
    char val[96];
};

struct want {
    struct kv kv[POOLCONF_MAX_POOLS + 1];
    size_t n;
    int running;
};

/* "pool <name> gpus=N mem-mb=M vms=K" -> vgpu-pool-<name> = "gpus=..." */
static void want_pool_line(struct want *w, const char *line)
{
    char name[VGPU_POOL_NAME_SIZE];
    const char *rest;
    size_t n;

    line += strlen("pool ");
    n = strcspn(line, " ");
    if (n == 0 || n >= sizeof(name) || w->n >= POOLCONF_MAX_POOLS + 1)
        return;
    memcpy(name, line, n);
    name[n] = '\0';
    if (!vgpu_pool_name_valid(name))
        return;
    rest = line + n + (line[n] == ' ');
    snprintf(w->kv[w->n].key, sizeof(w->kv[w->n].key), POOL_PREFIX "%s", name);
    snprintf(w->kv[w->n].val, sizeof(w->kv[w->n].val), "%.95s", rest);
    w->n++;
}

/* What should be published, from the mediator's status text. */
static void want_from_status(struct want *w, const char *text)
{
    const char *b = strstr(text, "backend=");

    memset(w, 0, sizeof(*w));
    if (!vgpu_status_running(text))
        return; /* "mediator not running ..." */
    w->running = 1;
    snprintf(w->kv[0].key, sizeof(w->kv[0].key), "%s", MEDIATOR_KEY);
    snprintf(w->kv[0].val, sizeof(w->kv[0].val), "backend=%.*s",
             b ? (int)strcspn(b + 8, " \n") : 1, b ? b + 8 : "?");
    w->n = 1;
    for (const char *l = text; l; l = strchr(l, '\n')) {
        char line[256];

        if (*l == '\n')
            l++;
        snprintf(line, sizeof(line), "%.*s", (int)strcspn(l, "\n"), l);
        if (!strncmp(line, "pool ", 5))
            want_pool_line(w, line);
    }
}

static int ours(const char *key)
{
    return !strcmp(key, MEDIATOR_KEY) ||
           !strncmp(key, POOL_PREFIX, strlen(POOL_PREFIX));
}

/*
 * Makes this host's keys what w says: removes ours that are not wanted or
 * differ, adds what is missing.  *changed counts the keys written.
 */
static int apply(struct vgpu_ctx *c, const char *host, const struct want *w,
                 int *changed)
{
    struct xr_value *oc = NULL;
    int rc = -1;

    *changed = 0;
    if (xenapi_get_other_config(c->api, "host", host, &oc))
        return vgpu_fail_xapi(c, "cannot read this host's other-config");
    for (size_t i = 0; i < oc->n; i++) {
        const char *k = oc->keys[i];
        size_t j;

        if (!ours(k))
            continue;
        for (j = 0; j < w->n && strcmp(w->kv[j].key, k); j++)
            ;
        if (j < w->n && !strcmp(w->kv[j].val, oc->items[i]->str))
            continue;
        if (xenapi_remove_from_other_config(c->api, "host", host, k)) {
            vgpu_fail_xapi(c, "cannot withdraw from this host's other-config");
            goto out;
        }
        (*changed)++;
    }
    for (size_t j = 0; j < w->n; j++) {
        const char *have = xr_struct_get_string(oc, w->kv[j].key);

        if (have && !strcmp(have, w->kv[j].val))
            continue;
        if (xenapi_add_to_other_config(c->api, "host", host, w->kv[j].key,
                                       w->kv[j].val)) {
            vgpu_fail_xapi(c, "cannot publish in this host's other-config");
            goto out;
        }
        (*changed)++;
    }
    rc = 0;
out:
    xr_value_free(oc);
    return rc;
}

int vgpu_publish(struct vgpu_ctx *c, int withdraw, char *msg, size_t len)
{
    struct want w;
    char *host = NULL, *text = NULL;
    int changed = 0, held = 0, blocks = 0, rc = -1;

    memset(&w, 0, sizeof(w));
    if (!withdraw) {
        if (vgpu_mediator_status(c, &text) < 0)
            return -1;
        want_from_status(&w, text);
    }
    if (vgpu_this_host(c, &host) < 0)
        goto out;
    if (apply(c, host, &w, &changed) < 0)
        goto out;
    if (vgpu_cuda_blocks(c, host, w.running ? text : NULL, &held, &blocks) < 0)
        goto out;
    if (w.running)
        snprintf(msg, len,
                 "published %zu pool(s) of this host (%d key(s) "
                 "changed); %d VM(s) with CUDA state kept from moving (%d "
                 "block(s) changed)",
                 w.n - 1, changed, held, blocks);
    else
        snprintf(msg, len,
                 "withdrawn: the mediator %s (%d key(s) removed, %d "
                 "block(s) lifted)",
                 withdraw ? "stops" : "is not running", changed, blocks);
    rc = 0;
out:
    free(text);
    free(host);
    return rc;
}

/* Appends s to out as part of a ", " list; never overflows. */
static void list_add(char *out, size_t len, const char *s)
{
    size_t used = strlen(out);

    if (used + 1 < len)
        snprintf(out + used, len - used, "%s%s", used ? ", " : "", s);
}

/*
 * Calls visit for each host other than exclude (a ref, or NULL) that
 * publishes vgpu pool `pool`, with the published value and its name_label.
 * A host we cannot read serves nobody now.  0, or -1 when the hosts cannot
 * be listed.
 */
static int each_server(struct vgpu_ctx *c, const char *pool,
                       const char *exclude,
                       void (*visit)(void *arg, const char *ref,
                                     const char *val, const char *name),
                       void *arg)
{
    struct xr_value *hosts = NULL;
    char key[VGPU_POOL_NAME_SIZE + 16];

    snprintf(key, sizeof(key), POOL_PREFIX "%s", pool);
    if (xenapi_get_all(c->api, "host", &hosts))
        return vgpu_fail_xapi(c, "cannot list the pool's hosts");
    for (size_t i = 0; i < hosts->n; i++) {
        const char *ref = hosts->items[i]->str, *val;
        struct xr_value *oc = NULL;
        char *name = NULL;

        if ((exclude && !strcmp(ref, exclude)) ||
            xenapi_get_other_config(c->api, "host", ref, &oc))
            continue;
        val = xr_struct_get_string(oc, key);
        if (val &&
            xenapi_get_string(c->api, "host", "name_label", ref, &name) == 0)
            visit(arg, ref, val, name);
        free(name);
        xr_value_free(oc);
    }
    xr_value_free(hosts);
    return 0;
}

struct server_list {
    char *out;
    size_t len;
    int found;
};

static void list_server(void *arg, const char *ref, const char *val,
                        const char *name)
{
    struct server_list *l = arg;

    (void)ref;
    (void)val;
    list_add(l->out, l->len, name);
    l->found++;
}

int vgpu_pool_servers(struct vgpu_ctx *c, const char *pool, char *out,
                      size_t len)
{
    struct server_list l = {out, len, 0};

    out[0] = '\0';
    if (each_server(c, pool, NULL, list_server, &l) < 0)
        return -1;
    return l.found;
}

/* vms=K of a published "gpus=N mem-mb=M vms=K" value. */
static unsigned long published_vms(const char *val)
{
    const char *p = strstr(val, "vms=");

    return p ? strtoul(p + 4, NULL, 10) : 0;
}

struct server_pick {
    char **ref;
    char *name;
    size_t len;
    unsigned long best;
};

/* The fewest VMs served: the first such host on a tie. */
static void pick_server(void *arg, const char *ref, const char *val,
                        const char *name)
{
    struct server_pick *p = arg;
    char *copy;

    if (*p->ref && published_vms(val) >= p->best)
        return;
    copy = strdup(ref);
    if (!copy)
        return;
    free(*p->ref);
    *p->ref = copy;
    p->best = published_vms(val);
    snprintf(p->name, p->len, "%s", name);
}

int vgpu_pick_host(struct vgpu_ctx *c, const char *pool, const char *exclude,
                   char **ref, char *name, size_t len)
{
    struct server_pick p = {ref, name, len, 0};

    *ref = NULL;
    name[0] = '\0';
    if (each_server(c, pool, exclude, pick_server, &p) < 0)
        return -1;
    return *ref != NULL;
}
