/*
 * vgpu-publish.c - tells the pool what this host's mediator serves.
 *
 *     vgpu-publish             publish (or withdraw, if the mediator is
 *                              not running) in this host's other-config
 *     vgpu-publish --withdraw  remove this host's vgpu keys
 *
 * It also keeps each VM of this host that holds CUDA state on its GPU from
 * being moved: blocked_operations pool_migrate, migrate_send, suspend and
 * checkpoint, with the reason (cudablock.c), lifted when the VM holds none
 * or the mediator stops.
 *
 * Run by vgpu-publish.path when the mediator's status file changes, by
 * vgpu-publish.timer every 30 s and by the mediator's unit when it starts
 * (ExecStartPost) and stops (ExecStopPost --withdraw), so the keys follow
 * the mediator.  The keys and their values are hostcap.c's.  Exit
 * 0 when done, 1 when xapi or the inventory cannot be read (logged to
 * syslog and stderr), 2 on a bad command line.
 */
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "core.h"

static void usage(FILE *f)
{
    fputs("usage: vgpu-publish [--withdraw]\n"
          "\n"
          "Publishes which vgpu pools this host's mediator serves, with its\n"
          "GPUs, their memory and the VMs it serves, in this host's\n"
          "other-config (vgpu-pool-<name>, vgpu-mediator), where every host\n"
          "of the XCP-ng pool reads it.  A VM of this host that holds CUDA\n"
          "state on its GPU gets pool_migrate, migrate_send, suspend and\n"
          "checkpoint in its blocked_operations, with the reason xe shows;\n"
          "they are lifted when it holds none.  With the mediator not\n"
          "running, or with --withdraw, the keys and blocks are removed.\n"
          "This host is the\n"
          "INSTALLATION_UUID of " VGPU_INVENTORY_DEFAULT
          " ($" VGPU_INVENTORY_ENV "\n"
          "overrides the path); xapi is reached at its local socket "
          "($" XENAPI_URL_ENV ").\n",
          f);
}

int main(int argc, char **argv)
{
    struct xenapi api = {0};
    struct vgpu_ctx c;
    char msg[256] = "";
    int withdraw = 0, rc = 1;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--withdraw")) {
            withdraw = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "vgpu-publish: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    openlog("vgpu-publish", LOG_PID, LOG_DAEMON);
    vgpu_ctx_init(&c, &api);
    if (xenapi_init(&api, NULL) < 0) {
        vgpu_fail(&c, VGPU_FAULT_XAPI, "%s", api.err);
    } else if (xenapi_login_local(&api, "vgpu-publish")) {
        vgpu_fail_xapi(&c, "cannot log in to xapi");
    } else if (vgpu_publish(&c, withdraw, msg, sizeof(msg)) == 0) {
        rc = 0;
    }
    if (rc) {
        syslog(LOG_ERR, "%s", c.err);
        fprintf(stderr, "vgpu-publish: %s\n", c.err);
    } else {
        syslog(LOG_INFO, "%s", msg);
        printf("%s\n", msg);
    }
    vgpu_ctx_cleanup(&c);
    xenapi_cleanup(&api);
    return rc;
}
