/*
 * vgpu-pre-start.c - the xenopsd VM hook that refuses, before the domain
 * exists, to start a VM whose vgpu device is required but cannot be set
 * up, with the reason where the administrator looks: in what `xe vm-start`
 * prints.
 *
 *     /etc/xapi.d/vm-pre-start/50-vgpu  -vmuuid <uuid> -reason <reason>
 *     /etc/xapi.d/vm-pre-resume/50-vgpu -vmuuid <uuid> -reason <reason>
 *
 * Why a hook: xenopsd does not watch the qemu-dm wrapper's pid.  A wrapper
 * that exits early shows only after qemu_dm_ready_timeout (300 s) as
 * "Timeout reached while starting daemon", its reason in syslog alone.
 * xenopsd runs the vm-pre-start hooks as the first step of VM_start (and
 * of a reboot; vm-pre-resume on resume) and turns an exit status other
 * than 0 and 1 into XAPI_HOOK_FAILED, which xe shows with the hook's
 * stdout (xenopsd lib/xenops_hooks.ml, execute_vm_hook).  Exit 1 means
 * "log and continue" there.
 *
 * So: exit 0 for every VM that starts (no vgpu-pool, or a device that can
 * be set up, or one that is not required); exit 2 with one line on stdout
 * for a VM with other-config:vgpu-required=true whose device cannot be set
 * up, and for any VM whose pool this host does not serve while other hosts
 * of the pool do (the line names them: placement, docs/pool.md); exit 1
 * (xenopsd logs it, the start goes on, the wrapper decides)
 * when this hook cannot tell, e.g. xapi does not answer.  A hook that
 * blocked every start on its own trouble would take the host down with
 * it, so nothing else fails the start.  The wrapper makes the same checks
 * again at start, for the paths with no hook (incoming migration).
 */
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "core.h"

enum {
    HOOK_CONTINUE = 0,
    HOOK_LOG_AND_CONTINUE = 1, /* xenops_hooks.ml exitcode_log_and_continue */
    HOOK_REFUSE = 2,
};

static void usage(void)
{
    fputs(
        "usage: vgpu-pre-start -vmuuid UUID [-reason REASON]\n"
        "\n"
        "xenopsd's vm-pre-start / vm-pre-resume hook for vgpu.  Exits 0 when\n"
        "the VM may start, 2 with the reason on stdout when it has\n"
        "other-config:vgpu-required=true and its vgpu device cannot be set\n"
        "up, or when its pool is served by other hosts of the pool and not\n"
        "by this one (xe vm-start then fails with XAPI_HOOK_FAILED showing\n"
        "the reason and those hosts), and 1 when it cannot tell (xenopsd\n"
        "logs that and goes on).\n",
        stderr);
}

int main(int argc, char **argv)
{
    struct vgpu_hook_args h;
    const char *uuid, *reason;
    struct vgpu_assignment a;
    struct xenapi api = {0};
    struct vgpu_ctx c;
    int rc = HOOK_CONTINUE;

    vgpu_hook_args(argc, argv, &h);
    if (h.help) {
        usage();
        return 0;
    }
    uuid = h.uuid;
    reason = h.reason;
    openlog("vgpu-pre-start", LOG_PID, LOG_DAEMON);
    if (!uuid) {
        usage();
        syslog(LOG_ERR, "called without -vmuuid: not judging this start");
        return HOOK_LOG_AND_CONTINUE;
    }
    vgpu_ctx_init(&c, &api);
    if (xenapi_init(&api, NULL) < 0 ||
        xenapi_login_local(&api, "vgpu-pre-start")) {
        syslog(LOG_WARNING,
               "VM %s (%s): cannot ask xapi (%s); the wrapper "
               "decides at start",
               uuid, reason, api.err);
        rc = HOOK_LOG_AND_CONTINUE;
        goto out;
    }
    if (vgpu_check_start(&c, uuid, &a) == 0) {
        if (a.is_vgpu)
            syslog(LOG_INFO, "VM %s (%s) %s: pool=%s priority=%s: may start",
                   uuid, a.name, reason, a.pool, a.priority);
        goto out;
    }
    if (c.err_code == VGPU_FAULT_XAPI || !a.is_vgpu) {
        syslog(LOG_WARNING, "VM %s (%s): %s; the wrapper decides at start",
               uuid, reason, c.err);
        rc = HOOK_LOG_AND_CONTINUE;
    } else if (a.elsewhere) {
        /* Another host would give the VM its device: not here without. */
        syslog(LOG_ERR, "VM %s (%s) %s: refusing to start here: %s", uuid,
               a.name, reason, c.err);
        printf("vgpu: VM %s: %s\n", uuid, c.err);
        rc = HOOK_REFUSE;
    } else if (a.required) {
        syslog(LOG_ERR, "VM %s (%s) %s: refusing to start: %s", uuid, a.name,
               reason, c.err);
        printf("vgpu: VM %s has other-config:" VGPU_OC_REQUIRED
               "=true and its vgpu device cannot be set up: %s\n",
               uuid, c.err);
        rc = HOOK_REFUSE;
    } else {
        syslog(LOG_WARNING, "VM %s (%s) %s: starts without the vgpu device: %s",
               uuid, a.name, reason, c.err);
    }
out:
    vgpu_ctx_cleanup(&c);
    xenapi_cleanup(&api);
    return rc;
}
