/*
 * vgpu-qemu-wrapper.c - the qemu-dm wrapper xenopsd runs in place of the
 * stock /usr/lib64/xen/bin/qemu-wrapper:
 *
 *     vgpu-qemu-wrapper <domid> --syslog <qemu args...>
 *
 * It logs in to xapi (local root over the unix socket), assigns the VM
 * (VM-ID, xenstore keys) and, for a VM with other-config:vgpu-pool, appends
 *
 *     -device
 * vgpu-stub,pool=P,priority=PRIO,vm-id=N,socket=/vgpu-mediator.sock, addr=0x1f
 *
 * then execs the stock wrapper with every other argument as it came.  The
 * slot is explicit (VGPU_PCI_SLOT_DEFAULT, or pci-slot= in vgpu.conf): the
 * stock wrapper appends the VGA card at addr=2 after all it is given, and
 * a device without addr= would have taken that slot first.  A VM whose
 * qemu-dm runs privileged (-priv: PCI passthrough) is not chrooted, so the
 * mediator's socket in root-<domid> cannot reach it: such a VM gets no
 * device, with the reason logged.  A VM
 * without vgpu-pool gets exactly its original arguments.  Any failure of
 * ours is logged and the VM starts without the device, unless the VM has
 * other-config:vgpu-required=true (or had it at its last assignment when
 * xapi cannot be asked): then it exits 1 and the VM does not start.  Such a
 * refusal ends xenopsd's wait at once (fail_fast_for_xenopsd) instead of
 * after its 300 s qemu_dm_ready_timeout; the reason that xe shows comes
 * from the vm-pre-start hook (vgpu-pre-start.c), which makes the same
 * checks before the domain exists.
 *
 * The stock wrapper: $VGPU_STOCK_WRAPPER, else "stock-wrapper=PATH" in
 * <conf>/vgpu.conf, else /usr/lib64/xen/bin/qemu-wrapper.
 *
 * Two qemu-dm binaries live on the host (docs/xcp-ng.md): XCP-ng's, at the
 * path the stock wrapper hard-codes (/usr/lib64/xen/bin/qemu-system-i386,
 * package qemu), and ours with vgpu-stub (/usr/libexec/vgpu/
 * qemu-system-i386, package qemu-dm-vgpu; common/qemudm.h).  A VM that
 * gets the device runs ours: before the exec this process enters a mount
 * namespace of its own, makes every mount in it a slave of the host's (what
 * the host mounts later still shows here; nothing of ours shows there), and
 * bind-mounts our binary over the stock path, in that namespace only.  The
 * chroot folders /var/xen/qemu/root-<domid> are plain folders on the
 * host's file system, so the mediator sees them as before.  Every other VM
 * runs XCP-ng's binary, untouched.  Ours unusable (missing, or its
 * `-device help` lacks vgpu-stub) is a failure like the others: refused
 * with vgpu-required, else the VM starts without the device on XCP-ng's
 * binary, saying so.  XCP-ng's qemu newer than the release ours was built
 * from is logged at each such start, with the command that rebuilds ours.
 * $VGPU_QEMU_DM_STOCK_PATH moves the mount target (for tests).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/mount.h>
#include <syslog.h>
#include <unistd.h>

#include "core.h"
#include "qemudm.h"
#include "qemuargs.h"
#include "vgpu_protocol.h"

#define STOCK_WRAPPER_DEFAULT "/usr/lib64/xen/bin/qemu-wrapper"
#define STOCK_WRAPPER_ENV "VGPU_STOCK_WRAPPER"

enum outcome {
    ADD_DEVICE,
    NOT_VGPU,
    FAILED,
};

static char *stock_wrapper(struct vgpu_ctx *c)
{
    const char *env = getenv(STOCK_WRAPPER_ENV);
    char *conf;

    if (env && env[0])
        return strdup(env);
    conf = vgpu_conf_get(c, "stock-wrapper");
    return conf ? conf : strdup(STOCK_WRAPPER_DEFAULT);
}

/* Refuse to exec ourselves (a loop through a misconfiguration). */
static int is_self(const char *path)
{
    char a[PATH_MAX], b[PATH_MAX];

    return realpath(path, a) && realpath("/proc/self/exe", b) && !strcmp(a, b);
}

/* What in xenopsd's arguments rules the device out for this start. */
static int check_qemu_args(struct vgpu_ctx *c, int argc, char **argv,
                           unsigned int slot)
{
    const char *user;

    if (qemuargs_has(argc, argv, 2, "-priv"))
        return vgpu_fail(c, VGPU_FAULT_BAD_ARG,
                         "the VM has PCI passthrough (-priv): its qemu-dm "
                         "runs without the chroot in which the mediator's "
                         "socket lives, and vgpu does not support "
                         "passthrough in the same VM");
    user = qemuargs_slot_user(argc, argv, 2, slot);
    if (user)
        return vgpu_fail(c, VGPU_FAULT_BAD_ARG,
                         "PCI slot 0x%x is taken by -device %s; choose "
                         "another with pci-slot= in " VGPU_CONF_FILE,
                         slot, user);
    return 0;
}

static enum outcome assign(struct vgpu_ctx *c, struct xenapi *api,
                           unsigned int domid, struct vgpu_assignment *a)
{
    /* Know who the VM is first: vgpu-required may have to be looked up
     * in the local memory when xapi cannot be asked. */
    if (vgpu_xs_domain_uuid(c, domid, a->uuid) < 0)
        return FAILED;
    if (xenapi_init(api, NULL) < 0) {
        vgpu_fail(c, VGPU_FAULT_XAPI, "%s", api->err);
        return FAILED;
    }
    if (xenapi_login_local(api, "vgpu-qemu-wrapper")) {
        vgpu_fail_xapi(c, "cannot log in to xapi");
        return FAILED;
    }
    /* assign checked the pool (a valid name that pools.conf lists) before
     * it claimed anything: the device takes every valid name. */
    if (vgpu_assign(c, domid, a) < 0)
        return FAILED;
    if (!a->is_vgpu)
        return NOT_VGPU;
    return ADD_DEVICE;
}

/* argv for the stock wrapper: ours, plus "-device <dev>" when dev. */
static char **stock_argv(char *stock, int argc, char **argv, char *dev)
{
    char **v = calloc((size_t)argc + 3, sizeof(*v));
    int n = 0;

    if (!v)
        return NULL;
    v[n++] = stock;
    for (int i = 1; i < argc; i++)
        v[n++] = argv[i];
    if (dev) {
        v[n++] = "-device";
        v[n++] = dev;
    }
    v[n] = NULL;
    return v;
}

static int exec_stock(char *stock, int argc, char **argv, char *dev)
{
    char **v = stock_argv(stock, argc, argv, dev);

    if (!v) {
        syslog(LOG_ERR, "out of memory");
        return 1;
    }
    closelog();
    execv(stock, v);
    openlog("vgpu-qemu-wrapper", LOG_PID, LOG_DAEMON);
    syslog(LOG_ERR, "cannot exec the stock wrapper %s: %s", stock,
           strerror(errno));
    free(v);
    return 127;
}

static char *device_arg(const struct vgpu_assignment *a, unsigned int slot)
{
    char *dev = NULL;

    if (asprintf(&dev,
                 VGPU_DEVICE_TYPE
                 ",pool=%s,priority=%s,vm-id=%u,socket=%s,addr=0x%x",
                 a->pool, a->priority, a->vm_id, VGPU_SOCKET_PATH_IN_CHROOT,
                 slot) < 0)
        return NULL;
    return dev;
}

/*
 * Makes the stock wrapper run our qemu-dm for this VM: probes it (cached
 * by the binary's identity in the run folder), logs a release skew, then
 * enters a mount namespace of its own and bind-mounts ours over the stock
 * path there.  -1 with the reason in c->err when ours cannot be used.
 */
static int use_vgpu_qemu(struct vgpu_ctx *c, const struct vgpu_assignment *a)
{
    const char *env = getenv("VGPU_QEMU_DM_STOCK_PATH");
    const char *target = env && env[0] ? env : QEMUDM_STOCK_PATH;
    struct qemudm_info q;

    if (!qemudm_probe(&q, NULL, c->run_dir))
        return vgpu_fail(c, VGPU_FAULT_STATE, "%s", q.why);
    if (q.skew == QEMUDM_SKEW_NEWER)
        syslog(LOG_WARNING, "domain %u VM %s: qemu-dm skew: %s", a->domid,
               a->uuid, q.skew_msg);
    else if (q.skew == QEMUDM_SKEW_OLDER)
        syslog(LOG_NOTICE, "domain %u VM %s: %s", a->domid, a->uuid,
               q.skew_msg);
    if (unshare(CLONE_NEWNS) < 0)
        return vgpu_fail(c, VGPU_FAULT_STATE,
                         "cannot enter a mount namespace of its own to run "
                         "the vgpu qemu-dm %s: %s",
                         q.path, strerror(errno));
    /* A slave of the host: its mounts (and unmounts) still reach this
     * namespace, the bind mount below never reaches the host. */
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
        return vgpu_fail(c, VGPU_FAULT_STATE,
                         "cannot make the mounts of its namespace slaves of "
                         "the host's: %s",
                         strerror(errno));
    if (mount(q.path, target, NULL, MS_BIND, NULL) < 0)
        return vgpu_fail(c, VGPU_FAULT_STATE,
                         "cannot bind-mount the vgpu qemu-dm %s over %s: %s",
                         q.path, target, strerror(errno));
    syslog(LOG_INFO,
           "domain %u VM %s: qemu-dm is %s (built from XCP-ng's qemu %s), "
           "mounted over %s for this VM only",
           a->domid, a->uuid, q.path, q.built_from[0] ? q.built_from : "?",
           target);
    return 0;
}

/* How long a refusing wrapper waits for xenopsd's probe of the QMP event
 * socket (xenopsd polls for it every 50 ms). */
#define FAIL_FAST_WAIT_MS 10000

/*
 * Makes xenopsd fail the start now rather than after qemu_dm_ready_timeout.
 * xenopsd does not watch our pid; it waits for qemu's QMP event socket
 * (-qmp unix:/var/run/xen/qmp-event-<domid>,server,nowait), probes it with
 * a connect, and then connects again to negotiate QMP inside the handler
 * that turns any failure into FAILED_TO_START_EMULATOR (xenopsd
 * xc/device.ml: wait_event_socket, then QMP_Event.add).  So: listen there,
 * accept the probe and close it, remove the socket, and exit: the
 * negotiation finds nothing and the start fails within a second.  Nothing
 * may keep an accepted connection open (xenopsd's QMP reads have no
 * timeout), hence CLOEXEC and nothing spawned here.
 */
static void fail_fast_for_xenopsd(int argc, char **argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *path = NULL;
    struct pollfd pfd;
    size_t len;
    int fd;

    for (int i = 2; i + 1 < argc && !path; i++) {
        if (!strcmp(argv[i], "-qmp") && !strncmp(argv[i + 1], "unix:", 5) &&
            strstr(argv[i + 1], "/qmp-event-"))
            path = argv[i + 1] + 5;
    }
    if (!path)
        return;
    len = strcspn(path, ",");
    if (len == 0 || len >= sizeof(sa.sun_path))
        return;
    memcpy(sa.sun_path, path, len);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    unlink(sa.sun_path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4)) {
        syslog(LOG_WARNING, "cannot listen on %s to fail the start fast: %s",
               sa.sun_path, strerror(errno));
        close(fd);
        return;
    }
    pfd = (struct pollfd){.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, FAIL_FAST_WAIT_MS) == 1) {
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

        if (c >= 0)
            close(c);
    }
    close(fd);
    unlink(sa.sun_path);
}

/* Decides what to do after a failure; returns 1 when the VM must not
 * start. */
static int must_refuse(struct vgpu_ctx *c, const struct vgpu_assignment *a,
                       unsigned int domid, int argc, char **argv)
{
    int required =
        a->required || (a->uuid[0] && vgpu_required_recall(c, a->uuid));

    if (required) {
        syslog(LOG_ERR,
               "domain %u VM %s: vgpu assignment failed and the VM has "
               "other-config:" VGPU_OC_REQUIRED "=true, refusing to "
               "start it: %s",
               domid, a->uuid[0] ? a->uuid : "?", c->err);
        fprintf(stderr,
                "vgpu-qemu-wrapper: domain %u: vgpu required but not "
                "available: %s\n",
                domid, c->err);
        fail_fast_for_xenopsd(argc, argv);
        return 1;
    }
    syslog(LOG_WARNING,
           "domain %u VM %s: vgpu assignment failed, starting the VM "
           "without the vgpu device: %s",
           domid, a->uuid[0] ? a->uuid : "?", c->err);
    return 0;
}

int main(int argc, char **argv)
{
    const char *perr = getenv("VGPU_LOG_STDERR");
    struct vgpu_assignment a = {0};
    struct xenapi api = {0};
    struct vgpu_ctx c;
    enum outcome what = FAILED;
    unsigned int domid = 0, slot = 0;
    char *stock, *dev = NULL;
    int rc;

    openlog("vgpu-qemu-wrapper",
            LOG_PID | (perr && *perr == '1' ? LOG_PERROR : 0), LOG_DAEMON);
    vgpu_ctx_init(&c, &api);
    stock = stock_wrapper(&c);
    if (!stock || is_self(stock)) {
        syslog(LOG_ERR, "the stock wrapper %s is this program: fix %s",
               stock ? stock : "?", STOCK_WRAPPER_ENV " or vgpu.conf");
        return 1;
    }
    if (argc < 2 || vgpu_parse_domid(argv[1], &domid) < 0)
        vgpu_fail(&c, VGPU_FAULT_BAD_ARG,
                  "first argument '%s' is not a domid, leaving qemu alone",
                  argc < 2 ? "" : argv[1]);
    else
        what = assign(&c, &api, domid, &a);
    if (what == ADD_DEVICE && (vgpu_conf_pci_slot(&c, &slot) ||
                               check_qemu_args(&c, argc, argv, slot)))
        what = FAILED;

    if (what == ADD_DEVICE) {
        dev = device_arg(&a, slot);
        if (!dev) {
            vgpu_fail(&c, VGPU_FAULT_INTERNAL, "out of memory");
        } else if (use_vgpu_qemu(&c, &a) < 0) {
            free(dev);
            dev = NULL;
        } else {
            syslog(LOG_INFO, "domain %u VM %s (%s): adding -device %s", domid,
                   a.uuid, a.name, dev);
        }
    } else if (what == NOT_VGPU) {
        syslog(LOG_INFO, "domain %u VM %s: no vgpu-pool, qemu unchanged", domid,
               a.uuid);
    }
    if (what != NOT_VGPU && !dev && must_refuse(&c, &a, domid, argc, argv)) {
        rc = 1;
        goto out;
    }
    vgpu_ctx_cleanup(&c);
    xenapi_cleanup(&api);
    rc = exec_stock(stock, argc, argv, dev);
out:
    vgpu_ctx_cleanup(&c);
    xenapi_cleanup(&api);
    free(dev);
    free(stock);
    return rc;
}
