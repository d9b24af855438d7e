/*
 * xsid.c - owns the xenstore connection (libxenstore through
 * common/xs-dl.c), its watches (one per domain's vgpu-mediator folder,
 * and @releaseDomain) and the identity cached in each struct vm.  It
 * reports identity changes and released domains upward (struct xsid_ops)
 * and never calls the parts that act on them.
 */
#include "xsid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <xenstore.h>

#include "log.h"
#include "vgpu_protocol.h"

#define XS_TOKEN_PREFIX "vgpu-dom"
#define XS_TOKEN_RELEASE "vgpu-release"

struct xsid {
    struct loop *loop;
    struct domains *doms;
    const struct xsid_ops *ops;
    void *arg;
    struct xs_handle *xs; /* NULL while not connected */
    struct loop_handler xs_h;
};

static void on_xs(struct loop_handler *h, uint32_t events);

static void xs_watch_vm(struct xsid *x, struct vm *vm)
{
    char path[64], token[32];

    if (!x->xs || vm->xs_watching) {
        return;
    }
    snprintf(path, sizeof(path), VGPU_XS_DOMAIN_FMT, vm->domid);
    snprintf(token, sizeof(token), XS_TOKEN_PREFIX "%u", vm->domid);
    vm->xs_watching = xs_watch(x->xs, path, token);
    if (!vm->xs_watching) {
        log_warn("dom%u: xenstore watch on %s failed: %s", vm->domid, path,
                 strerror(errno));
    }
}

static void xs_unwatch_vm(struct xsid *x, struct vm *vm)
{
    char path[64], token[32];

    if (!x->xs || !vm->xs_watching) {
        return;
    }
    snprintf(path, sizeof(path), VGPU_XS_DOMAIN_FMT, vm->domid);
    snprintf(token, sizeof(token), XS_TOKEN_PREFIX "%u", vm->domid);
    xs_unwatch(x->xs, path, token);
    vm->xs_watching = false;
}

/* Connect to xenstored if not connected; 0 when a connection is up. */
int xsid_ensure(struct xsid *x)
{
    if (x->xs) {
        return 0;
    }
    x->xs = xs_open(0);
    if (!x->xs) {
        return -1;
    }
    x->xs_h.fd = xs_fileno(x->xs);
    x->xs_h.fn = on_xs;
    x->xs_h.arg = x;
    if (x->xs_h.fd < 0 || loop_add(x->loop, &x->xs_h, EPOLLIN)) {
        xs_close(x->xs);
        x->xs = NULL;
        return -1;
    }
    /* A domain that dies is forgotten even if its folder lingers. */
    if (!xs_watch(x->xs, "@releaseDomain", XS_TOKEN_RELEASE)) {
        log_warn("xenstore watch on @releaseDomain failed: %s",
                 strerror(errno));
    }
    log_info("connected to xenstore");
    for (struct vm *vm = domains_first(x->doms); vm; vm = vm->next) {
        if (!vm->dead) {
            xs_watch_vm(x, vm);
        }
    }
    return 0;
}

static void xs_lost(struct xsid *x)
{
    log_err("lost the xenstore connection; will reconnect on demand");
    loop_del(x->loop, &x->xs_h);
    xs_close(x->xs); /* closes the fd as well */
    x->xs = NULL;
    x->xs_h.fd = -1;
    for (struct vm *vm = domains_first(x->doms); vm; vm = vm->next) {
        vm->xs_watching = false;
    }
}

static bool identity_equal(const struct vgpu_identity *a,
                           const struct vgpu_identity *b)
{
    return a->assigned == b->assigned && strcmp(a->pool, b->pool) == 0 &&
           a->priority == b->priority && a->vm_id == b->vm_id;
}

void xsid_refresh(struct xsid *x, struct vm *vm)
{
    struct vgpu_identity id = {0}, old;
    const char *why = "xenstore unreachable";

    if (xsid_ensure(x) == 0) {
        identity_read(x->xs, vm->domid, &id, &why);
    }
    if (identity_equal(&id, &vm->id) &&
        (id.assigned || vm->id_problem == why)) {
        return;
    }
    if (id.assigned) {
        log_info("dom%u: pool %s priority %s vm-id %u", vm->domid, id.pool,
                 vgpu_priority_name(id.priority), id.vm_id);
        vm->id_problem = NULL;
    } else {
        log_warn("dom%u: not assigned: %s", vm->domid, why);
        vm->id_problem = why;
    }
    old = vm->id;
    vm->id = id;
    x->ops->changed(x->arg, vm, &old);
}

/*
 * @releaseDomain names no domain: check every domain served.  A domain
 * xenstored no longer knows is gone; free everything it held.
 */
static void check_released(struct xsid *x)
{
    for (struct vm *vm = domains_first(x->doms); vm; vm = vm->next) {
        if (!vm->dead && !xs_is_domain_introduced(x->xs, vm->domid)) {
            log_info("dom%u: domain released", vm->domid);
            x->ops->released(x->arg, vm);
        }
    }
}

static void on_xs(struct loop_handler *h, uint32_t events)
{
    struct xsid *x = h->arg;
    char **vec;
    unsigned int domid;

    (void)h;
    if (events & (EPOLLHUP | EPOLLERR)) {
        xs_lost(x);
        return;
    }
    while (x->xs && (vec = xs_check_watch(x->xs))) {
        struct vm *vm = NULL;
        bool released = strcmp(vec[XS_WATCH_TOKEN], XS_TOKEN_RELEASE) == 0;

        if (sscanf(vec[XS_WATCH_TOKEN], XS_TOKEN_PREFIX "%u", &domid) == 1) {
            vm = domains_find(x->doms, domid);
        }
        free(vec);
        if (released) {
            check_released(x);
            continue;
        }
        if (vm) {
            xsid_refresh(x, vm);
        }
    }
    if (x->xs && errno != EAGAIN) {
        xs_lost(x);
    }
}

int xsid_open(struct xsid **xp, struct loop *loop, struct domains *doms,
              const struct xsid_ops *ops, void *arg)
{
    struct xsid *x = calloc(1, sizeof(*x));

    if (!x) {
        return -1;
    }
    x->loop = loop;
    x->doms = doms;
    x->ops = ops;
    x->arg = arg;
    x->xs_h.fd = -1;
    *xp = x;
    return 0;
}

void xsid_domain_added(struct xsid *x, struct vm *vm)
{
    if (xsid_ensure(x) == 0) {
        xs_watch_vm(x, vm);
        identity_read_name(x->xs, vm->domid, vm->name, sizeof(vm->name));
    }
    xsid_refresh(x, vm);
}

void xsid_domain_removing(struct xsid *x, struct vm *vm)
{
    xs_unwatch_vm(x, vm);
}

void xsid_close(struct xsid *x)
{
    if (!x) {
        return;
    }
    if (x->xs) {
        loop_del(x->loop, &x->xs_h);
        xs_close(x->xs); /* closes the fd as well */
    }
    free(x);
}
