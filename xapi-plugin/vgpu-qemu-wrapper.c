/*
 * vgpu-qemu-wrapper.c - the qemu-dm wrapper xenopsd runs in place of the
 * stock /usr/lib64/xen/bin/qemu-wrapper:
 *
 *     vgpu-qemu-wrapper <domid> --syslog <qemu args...>
 *
 * It logs in to xapi (local root over the unix socket), assigns the VM
 * (VM-ID, xenstore keys) and, for a VM with other-config:vgpu-pool, appends
 *
 *     -device vgpu-stub,pool=P,priority=PRIO,vm-id=N,socket=/vgpu-mediator.sock
 *
 * then execs the stock wrapper with every other argument as it came.  A VM
 * without vgpu-pool gets exactly its original arguments.  Any failure of
 * ours is logged and the VM starts without the device, unless the VM has
 * other-config:vgpu-required=true (or had it at its last assignment when
 * xapi cannot be asked): then it exits 1 and the VM does not start.
 *
 * The stock wrapper: $VGPU_STOCK_WRAPPER, else "stock-wrapper=PATH" in
 * <conf>/vgpu.conf, else /usr/lib64/xen/bin/qemu-wrapper.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "core.h"
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

/* The device only knows pools A and B (see qemu-dm-patch/vgpu-stub.c). */
static int device_pool_ok(const char *pool)
{
    return !strcmp(pool, "A") || !strcmp(pool, "B");
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
    if (vgpu_assign(c, domid, a) < 0)
        return FAILED;
    if (!a->is_vgpu)
        return NOT_VGPU;
    if (!device_pool_ok(a->pool)) {
        vgpu_fail(c, VGPU_FAULT_BAD_ARG,
                  "pool '%s' is not one the vgpu-stub device knows (A, B)",
                  a->pool);
        return FAILED;
    }
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

static char *device_arg(const struct vgpu_assignment *a)
{
    char *dev = NULL;

    if (asprintf(
            &dev, VGPU_DEVICE_TYPE ",pool=%s,priority=%s,vm-id=%u,socket=%s",
            a->pool, a->priority, a->vm_id, VGPU_SOCKET_PATH_IN_CHROOT) < 0)
        return NULL;
    return dev;
}

/* Decides what to do after a failure; returns 1 when the VM must not
 * start. */
static int must_refuse(struct vgpu_ctx *c, const struct vgpu_assignment *a,
                       unsigned int domid)
{
    int required =
        a->required || (a->uuid[0] && vgpu_registry_required(c, a->uuid));

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
    unsigned int domid = 0;
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

    if (what == ADD_DEVICE) {
        dev = device_arg(&a);
        if (dev)
            syslog(LOG_INFO, "domain %u VM %s (%s): adding -device %s", domid,
                   a.uuid, a.name, dev);
        else
            vgpu_fail(&c, VGPU_FAULT_INTERNAL, "out of memory");
    } else if (what == NOT_VGPU) {
        syslog(LOG_INFO, "domain %u VM %s: no vgpu-pool, qemu unchanged", domid,
               a.uuid);
    }
    if (what != NOT_VGPU && !dev && must_refuse(&c, &a, domid)) {
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
