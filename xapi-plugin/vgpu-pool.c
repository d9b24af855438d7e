/*
 * vgpu-pool.c - the pool-wide view and moves of vgpu VMs, on any host of
 * the XCP-ng pool:
 *
 *     vgpu-pool status            every host (what it publishes, and its
 *                                 mediator's status through
 *                                 `xe host-call-plugin ... fn=status`) and
 *                                 every vgpu VM of the pool
 *     vgpu-pool start VM          start VM on a host that serves its vgpu
 *                                 pool (VM.start_on)
 *     vgpu-pool evacuate HOST     move each vgpu VM of HOST to another host
 *                                 that serves its pool, then the rest with
 *                                 host.evacuate (xe host-evacuate)
 *
 * All of it is xapi's: the hosts' published keys (hostcap.c), the VMs'
 * other-config and blocked_operations (cudablock.c), host.call_plugin.
 * Nothing is kept here.  Exit 0 done, 1 refused or failed (the reason on
 * stderr), 2 bad command line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define PROG "vgpu-pool"

static void usage(FILE *f)
{
    fputs("usage: " PROG " status\n"
          "       " PROG " start VM-UUID\n"
          "       " PROG " evacuate HOST   (a host's uuid or name)\n"
          "\n"
          "The vgpu VMs of the XCP-ng pool and the hosts that serve them, on\n"
          "any host of the pool.\n"
          "\n"
          "  status    every host: the vgpu pools it publishes and its\n"
          "            mediator's status (xe host-call-plugin fn=status);\n"
          "            every VM with other-config:vgpu-pool: its pool,\n"
          "            VM-ID, where it runs, and whether CUDA state keeps\n"
          "            it on its host\n"
          "  start     starts the VM on the host that publishes its vgpu\n"
          "            pool and serves the fewest VMs (xe vm-start on=)\n"
          "  evacuate  moves each running vgpu VM of HOST, live, to such a\n"
          "            host other than HOST, then evacuates the rest with\n"
          "            xe host-evacuate; a VM that holds CUDA state, or\n"
          "            whose pool no other host serves, stops it before\n"
          "            anything moves\n"
          "\n"
          "xapi is reached at its local socket ($" XENAPI_URL_ENV ").\n"
          "Exit status: 0 done, 1 refused or failed, 2 bad usage.\n",
          f);
}

/* vgpu_fail_xapi with a formatted "what". */
static int __attribute__((format(printf, 2, 3)))
fail_xapi(struct vgpu_ctx *c, const char *fmt, ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return vgpu_fail_xapi(c, what);
}

/* host name_label of ref, or the ref itself when xapi cannot say. */
static void host_name(struct vgpu_ctx *c, const char *ref, char *out,
                      size_t len)
{
    char *name = NULL;

    if (xenapi_get_string(c->api, "host", "name_label", ref, &name) == 0)
        snprintf(out, len, "%s", name);
    else
        snprintf(out, len, "%s", ref);
    free(name);
}

static void print_indented(const char *text)
{
    for (const char *l = text; *l;) {
        size_t n = strcspn(l, "\n");

        printf("    %.*s\n", (int)n, l);
        l += n + (l[n] == '\n');
    }
}

static int cmd_status(struct vgpu_ctx *c)
{
    struct xr_value *hosts = NULL, *vms = NULL;

    if (xenapi_get_all(c->api, "host", &hosts))
        return vgpu_fail_xapi(c, "cannot list the pool's hosts");
    for (size_t i = 0; i < hosts->n; i++) {
        const char *h = hosts->items[i]->str;
        struct xr_value *oc = NULL;
        char name[128], *status = NULL;
        int any = 0;

        host_name(c, h, name, sizeof(name));
        printf("host %s:", name);
        if (xenapi_get_other_config(c->api, "host", h, &oc) == 0) {
            for (size_t k = 0; k < oc->n; k++) {
                if (strncmp(oc->keys[k], VGPU_HOST_OC_POOL_PREFIX,
                            strlen(VGPU_HOST_OC_POOL_PREFIX)))
                    continue;
                printf("%s pool %s (%s)", any++ ? "," : "",
                       oc->keys[k] + strlen(VGPU_HOST_OC_POOL_PREFIX),
                       oc->items[k]->str);
            }
            xr_value_free(oc);
        }
        printf("%s\n", any ? "" : " serves no vgpu pool");
        if (xenapi_call_plugin(c->api, h, "vgpu", "status", &status) == 0)
            print_indented(status);
        else
            printf("    status: %s\n", c->api->err);
        free(status);
    }
    xr_value_free(hosts);

    if (xenapi_get_all(c->api, "VM", &vms))
        return vgpu_fail_xapi(c, "cannot list the pool's VMs");
    printf("vgpu VMs:\n");
    for (size_t i = 0; i < vms->n; i++) {
        const char *vm = vms->items[i]->str;
        struct xr_value *oc = NULL, *bo = NULL;
        char *name = NULL, *uuid = NULL, *power = NULL, *on = NULL;
        char where[128] = "";
        const char *pool, *id, *held;

        if (xenapi_get_other_config(c->api, "VM", vm, &oc))
            continue;
        pool = xr_struct_get_string(oc, VGPU_OC_POOL);
        if (pool &&
            xenapi_get_string(c->api, "VM", "name_label", vm, &name) == 0 &&
            xenapi_get_string(c->api, "VM", "uuid", vm, &uuid) == 0 &&
            xenapi_get_string(c->api, "VM", "power_state", vm, &power) == 0) {
            if (xenapi_get_string(c->api, "VM", "resident_on", vm, &on) == 0 &&
                strcmp(on, "OpaqueRef:NULL")) {
                char hn[96];

                host_name(c, on, hn, sizeof(hn));
                snprintf(where, sizeof(where), " on %s", hn);
            }
            id = xr_struct_get_string(oc, VGPU_OC_VM_ID);
            if (xenapi_get_map(c->api, "VM", "blocked_operations", vm, &bo))
                bo = NULL;
            held = bo ? xr_struct_get_string(bo, "pool_migrate") : NULL;
            printf("  %s (%s): pool %s, VM-ID %s, %s%s%s\n", name, uuid, pool,
                   id ? id : "none yet", power, where,
                   vgpu_cuda_block_ours(held)
                       ? ", holds CUDA state: kept on its host"
                       : "");
        }
        xr_value_free(bo);
        free(name);
        free(uuid);
        free(power);
        free(on);
        xr_value_free(oc);
    }
    xr_value_free(vms);
    return 0;
}

/* The VM's vgpu pool into out; 0, or -1 (not a vgpu VM, or xapi). */
static int vm_pool(struct vgpu_ctx *c, const char *vm, char *out, size_t len)
{
    struct xr_value *oc = NULL;
    const char *pool;

    if (xenapi_get_other_config(c->api, "VM", vm, &oc))
        return vgpu_fail_xapi(c, "cannot read the VM's other-config");
    pool = xr_struct_get_string(oc, VGPU_OC_POOL);
    if (pool)
        snprintf(out, len, "%s", pool);
    xr_value_free(oc);
    return pool ? 0 : -1;
}

static int cmd_start(struct vgpu_ctx *c, const char *uuid)
{
    char pool[VGPU_POOL_NAME_SIZE + 8] = "", name[128], *vm = NULL, *h = NULL;
    int rc = -1;

    if (xenapi_get_by_uuid(c->api, "VM", uuid, &vm))
        return fail_xapi(c, "no VM %s", uuid);
    if (vm_pool(c, vm, pool, sizeof(pool)) < 0) {
        if (!c->err[0])
            vgpu_fail(c, VGPU_FAULT_BAD_ARG,
                      "VM %s has no other-config:" VGPU_OC_POOL
                      ": not a vgpu VM (xe vm-start starts it anywhere)",
                      uuid);
        goto out;
    }
    switch (vgpu_pick_host(c, pool, NULL, &h, name, sizeof(name))) {
    case 0:
        vgpu_fail(c, VGPU_FAULT_NOT_FOUND,
                  "no host of the pool publishes vgpu pool '%s' "
                  "(other-config:" VGPU_HOST_OC_POOL_PREFIX "%s)",
                  pool, pool);
        /* fall through */
    case -1:
        goto out;
    }
    if (xenapi_vm_start_on(c->api, vm, h)) {
        fail_xapi(c, "VM.start_on %s", name);
        goto out;
    }
    printf("VM %s: started on %s, which serves vgpu pool %s\n", uuid, name,
           pool);
    rc = 0;
out:
    free(vm);
    free(h);
    return rc;
}

static int find_host(struct vgpu_ctx *c, const char *arg, char **ref)
{
    struct xr_value *hosts = NULL;

    if (vgpu_uuid_ok(arg) && xenapi_get_by_uuid(c->api, "host", arg, ref) == 0)
        return 0;
    if (xenapi_get_all(c->api, "host", &hosts))
        return vgpu_fail_xapi(c, "cannot list the pool's hosts");
    *ref = NULL;
    for (size_t i = 0; i < hosts->n && !*ref; i++) {
        char name[128];

        host_name(c, hosts->items[i]->str, name, sizeof(name));
        if (!strcmp(name, arg))
            *ref = strdup(hosts->items[i]->str);
    }
    xr_value_free(hosts);
    return *ref ? 0
                : vgpu_fail(c, VGPU_FAULT_NOT_FOUND,
                            "no host of the pool has uuid or name '%s'", arg);
}

struct move {
    char *vm;
    char *to;
    char label[128];
    char to_name[128];
};

/*
 * Plan first, as xapi's evacuation does: every vgpu VM of the host gets a
 * destination that serves its pool, or nothing moves.
 */
static int cmd_evacuate(struct vgpu_ctx *c, const char *arg)
{
    struct xr_value *vms = NULL, *done = NULL;
    struct move *plan = NULL;
    char *host = NULL, hname[128];
    size_t n = 0;
    int rc = -1, blocked = 0;

    if (find_host(c, arg, &host) < 0)
        return -1;
    host_name(c, host, hname, sizeof(hname));
    if (xenapi_host_resident_vms(c->api, host, &vms)) {
        fail_xapi(c, "cannot list the VMs of %s", hname);
        goto out;
    }
    plan = calloc(vms->n + 1, sizeof(*plan));
    if (!plan) {
        vgpu_fail(c, VGPU_FAULT_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < vms->n; i++) {
        const char *vm = vms->items[i]->str;
        char pool[VGPU_POOL_NAME_SIZE + 8], *name = NULL, *to = NULL;
        struct xr_value *bo = NULL;
        const char *why = NULL;

        c->err[0] = '\0';
        if (vm_pool(c, vm, pool, sizeof(pool)) < 0) {
            if (c->err[0])
                goto out;
            continue; /* not ours: host.evacuate moves it */
        }
        xenapi_get_string(c->api, "VM", "name_label", vm, &name);
        if (xenapi_get_map(c->api, "VM", "blocked_operations", vm, &bo) == 0)
            why = xr_struct_get_string(bo, "pool_migrate");
        if (why) {
            fprintf(stderr, PROG ": VM %s blocks: %s\n", name ? name : vm, why);
            blocked++;
        } else {
            int got = vgpu_pick_host(c, pool, host, &to, plan[n].to_name,
                                     sizeof(plan[n].to_name));

            if (got < 0) {
                free(name);
                xr_value_free(bo);
                goto out;
            }
            if (got == 0) {
                fprintf(stderr,
                        PROG ": VM %s blocks: no host but %s serves its vgpu "
                             "pool '%s'\n",
                        name ? name : vm, hname, pool);
                blocked++;
            } else {
                plan[n].vm = strdup(vm);
                plan[n].to = to;
                snprintf(plan[n].label, sizeof(plan[n].label), "%s",
                         name ? name : vm);
                n++;
            }
        }
        free(name);
        xr_value_free(bo);
    }
    if (blocked) {
        vgpu_fail(c, VGPU_FAULT_BAD_ARG,
                  "%d vgpu VM(s) of %s cannot move (above): nothing was moved",
                  blocked, hname);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!plan[i].vm ||
            xenapi_vm_pool_migrate(c->api, plan[i].vm, plan[i].to)) {
            fail_xapi(c, "VM %s: migration to %s failed", plan[i].label,
                      plan[i].to_name);
            goto out;
        }
        printf("VM %s: moved to %s\n", plan[i].label, plan[i].to_name);
    }
    if (xenapi_call(c->api, "host.evacuate", &done, host, NULL)) {
        fail_xapi(c, "xe host-evacuate of %s (after the vgpu VMs)", hname);
        goto out;
    }
    printf("host %s: evacuated (%zu vgpu VM(s) moved to hosts serving their "
           "pools, the rest by xapi)\n",
           hname, n);
    rc = 0;
out:
    for (size_t i = 0; plan && i < n; i++) {
        free(plan[i].vm);
        free(plan[i].to);
    }
    free(plan);
    xr_value_free(done);
    xr_value_free(vms);
    free(host);
    return rc;
}

int main(int argc, char **argv)
{
    struct xenapi api = {0};
    struct vgpu_ctx c;
    int rc = 1;

    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc < 2 || (!strcmp(argv[1], "status") && argc != 2) ||
        ((!strcmp(argv[1], "start") || !strcmp(argv[1], "evacuate")) &&
         argc != 3) ||
        (strcmp(argv[1], "status") && strcmp(argv[1], "start") &&
         strcmp(argv[1], "evacuate"))) {
        usage(stderr);
        return 2;
    }
    vgpu_ctx_init(&c, &api);
    if (xenapi_init(&api, NULL) < 0) {
        vgpu_fail(&c, VGPU_FAULT_XAPI, "%s", api.err);
    } else if (xenapi_login_local(&api, PROG)) {
        vgpu_fail_xapi(&c, "cannot log in to xapi");
    } else if (!strcmp(argv[1], "status")) {
        rc = cmd_status(&c) < 0;
    } else if (!strcmp(argv[1], "start")) {
        rc = cmd_start(&c, argv[2]) < 0;
    } else {
        rc = cmd_evacuate(&c, argv[2]) < 0;
    }
    if (rc && c.err[0])
        fprintf(stderr, PROG ": %s\n", c.err);
    vgpu_ctx_cleanup(&c);
    xenapi_cleanup(&api);
    return rc;
}
