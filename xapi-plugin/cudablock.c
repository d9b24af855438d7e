/*
 * cudablock.c - keeps a VM that holds CUDA state on this host's GPU from
 * being moved, through its blocked_operations in xapi.
 *
 * A v3 VM's CUDA contexts, device memory, modules and streams live in this
 * host's mediator and GPU, and they do not move with the VM (docs/pool.md:
 * why the state is not migrated).  So while the mediator's status file
 * shows cuda=N (N > 0) for a domain, the VM resident here with that domid
 * has these operations blocked, each with the reason that xapi hands back
 * in OPERATION_BLOCKED [vm_ref; reason] before the operation starts
 * (xapi_vm_lifecycle.ml checks blocked_operations first):
 *
 *     pool_migrate  xe vm-migrate, and xe host-evacuate's plan
 *     migrate_send  xe vm-migrate to another pool
 *     suspend       xe vm-suspend
 *     checkpoint    xe vm-checkpoint
 *
 * Once it holds none (or the mediator stops, taking the state with it),
 * these blocks are removed.  Ours are the values that start with
 * CUDA_BLOCK_PREFIX; a block an admin set is never touched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define CUDA_BLOCK_PREFIX "vgpu: "

static const char *const blocked_ops[] = {"pool_migrate", "migrate_send",
                                          "suspend", "checkpoint"};

/* cuda=N of "domain <domid> ..." in the status text, 0 when absent or
 * when the text is not a running mediator's. */
unsigned long vgpu_status_cuda(const char *status, long domid)
{
    char head[32];
    size_t hl;

    if (!status || domid <= 0 || !vgpu_status_running(status))
        return 0;
    hl = (size_t)snprintf(head, sizeof(head), "domain %ld ", domid);
    for (const char *l = status; l; l = strchr(l, '\n')) {
        const char *end, *cuda;

        if (*l == '\n')
            l++;
        if (strncmp(l, head, hl))
            continue;
        end = l + strcspn(l, "\n");
        cuda = strstr(l, " cuda=");
        return cuda && cuda < end ? strtoul(cuda + 6, NULL, 10) : 0;
    }
    return 0;
}

int vgpu_cuda_block_ours(const char *v)
{
    return v && !strncmp(v, CUDA_BLOCK_PREFIX, strlen(CUDA_BLOCK_PREFIX));
}

/* Makes one VM's blocks what want says; counts the changes. */
static int apply_vm(struct vgpu_ctx *c, const char *vm, int want,
                    const char *reason, int *changed)
{
    struct xr_value *bo = NULL;
    int rc = 0;

    if (xenapi_get_map(c->api, "VM", "blocked_operations", vm, &bo))
        return vgpu_fail_xapi(c, "cannot read a VM's blocked operations");
    for (size_t i = 0; i < sizeof(blocked_ops) / sizeof(blocked_ops[0]); i++) {
        const char *have = xr_struct_get_string(bo, blocked_ops[i]);

        if (want && !have) {
            if (xenapi_add_to_map(c->api, "VM", "blocked_operations", vm,
                                  blocked_ops[i], reason)) {
                rc = vgpu_fail_xapi(c, "cannot block a VM's migration");
                break;
            }
            (*changed)++;
        } else if (!want && vgpu_cuda_block_ours(have)) {
            if (xenapi_remove_from_map(c->api, "VM", "blocked_operations", vm,
                                       blocked_ops[i])) {
                rc = vgpu_fail_xapi(c, "cannot unblock a VM's migration");
                break;
            }
            (*changed)++;
        }
    }
    xr_value_free(bo);
    return rc;
}

int vgpu_cuda_blocks(struct vgpu_ctx *c, const char *host, const char *status,
                     int *held, int *changed)
{
    struct xr_value *vms = NULL;
    char *name = NULL, reason[256];
    int rc = 0;

    *held = *changed = 0;
    if (xenapi_get_string(c->api, "host", "name_label", host, &name))
        return vgpu_fail_xapi(c, "cannot read this host's name");
    snprintf(reason, sizeof(reason),
             CUDA_BLOCK_PREFIX "the VM holds CUDA state (contexts, device "
                               "memory, modules) on the GPU of host %.64s, "
                               "which cannot move with it: end the VM's "
                               "CUDA programs, then retry",
             name);
    free(name);
    if (xenapi_host_resident_vms(c->api, host, &vms))
        return vgpu_fail_xapi(c, "cannot list the VMs of this host");
    for (size_t i = 0; i < vms->n && rc == 0; i++) {
        const char *vm = vms->items[i]->str;
        long domid = -1;
        int want;

        if (xenapi_vm_get_domid(c->api, vm, &domid))
            continue; /* gone meanwhile: nothing of it to block */
        want = vgpu_status_cuda(status, domid) > 0;
        *held += want;
        rc = apply_vm(c, vm, want, reason, changed);
    }
    xr_value_free(vms);
    return rc;
}
