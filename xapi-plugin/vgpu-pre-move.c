/*
 * vgpu-pre-move.c - xenopsd's vm-pre-migrate and vm-pre-suspend hook:
 * refuses to move or suspend a VM whose domain holds CUDA state in this
 * host's mediator, at the moment the operation starts.
 *
 *     /etc/xapi.d/vm-pre-migrate/50-vgpu -vmuuid U -reason source -vmdomid D
 *     /etc/xapi.d/vm-pre-suspend/50-vgpu -vmuuid U -reason suspend -vmdomid D
 *
 * The blocked operations vgpu-publish sets (cudablock.c) make xapi refuse
 * these before they start; they land a second or two after the VM's first
 * CUDA context.  This hook closes that window: xenopsd runs it on the
 * source before it contacts the destination (xenops_server.ml), and an
 * exit status other than 0 and 1 fails the operation with
 * XAPI_HOOK_FAILED, showing our stdout (tests/xapi/xapi-rules.md 5).
 *
 * It reads the mediator's status file only (cuda=N of domain D): no xapi,
 * so a slow xapi cannot hold a migration up.  Exit 0 (move on: no CUDA
 * state, no mediator, or no domid to judge), 2 (refuse, the reason on
 * stdout).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "core.h"

enum {
    HOOK_CONTINUE = 0,
    HOOK_REFUSE = 2,
};

static void usage(void)
{
    fputs("usage: vgpu-pre-move -vmuuid UUID -reason REASON -vmdomid DOMID\n"
          "\n"
          "xenopsd's vm-pre-migrate / vm-pre-suspend hook for vgpu.  Exits 2\n"
          "with the reason on stdout when the domain holds CUDA state in this\n"
          "host's mediator (cuda=N in its status file), which cannot move\n"
          "with the VM; else 0.\n",
          stderr);
}

int main(int argc, char **argv)
{
    struct vgpu_hook_args h;
    const char *uuid, *reason, *dom;
    struct vgpu_ctx c;
    char *status = NULL, *end = NULL;
    unsigned long n = 0;
    long domid = -1;
    int rc = HOOK_CONTINUE;

    vgpu_hook_args(argc, argv, &h);
    if (h.help) {
        usage();
        return 0;
    }
    uuid = h.uuid ? h.uuid : "?";
    reason = h.reason;
    dom = h.domid;
    openlog("vgpu-pre-move", LOG_PID, LOG_DAEMON);
    if (dom)
        domid = strtol(dom, &end, 10);
    if (!dom || *end || domid <= 0) {
        syslog(LOG_WARNING, "VM %s (%s): no domid to judge: not refusing", uuid,
               reason);
        return HOOK_CONTINUE;
    }
    vgpu_ctx_init(&c, NULL);
    if (vgpu_mediator_status(&c, &status) == 0)
        n = vgpu_status_cuda(status, domid);
    else
        syslog(LOG_WARNING, "VM %s (%s): %s: not refusing", uuid, reason,
               c.err);
    if (n) {
        printf("vgpu: VM %s: domain %ld holds CUDA state (%lu context(s), "
               "its device memory and modules) on this host's GPU, which "
               "cannot move with it: end the VM's CUDA programs, then "
               "retry\n",
               uuid, domid, n);
        syslog(LOG_ERR,
               "VM %s (%s): refusing: domain %ld holds %lu CUDA "
               "context(s) here",
               uuid, reason, domid, n);
        rc = HOOK_REFUSE;
    }
    free(status);
    vgpu_ctx_cleanup(&c);
    return rc;
}
