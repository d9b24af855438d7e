/*
 * mediator.c - the wiring: creates the parts and connects their
 * callbacks, and owns only what belongs to no part: the status file and
 * the admin socket's snapshot.  The parts: the event loop (loop.c), the
 * domains with their sockets and peer credential check (domain.c), the
 * xenstore connection and identities (xsid.c), the device connections
 * (a transport, chan/transport.h; the v1 socket is chan/sock.c) and
 * admission, placement and completion (dispatch.c).  Each reports upward
 * through its ops table; this file answers, and no part calls another
 * back.
 *
 * Identity: pool, priority and VM-ID come from xenstore; whatever the
 * device claims in HELLO is logged and otherwise ignored.
 *
 * Objects that an event in the current epoll batch may still point at
 * (connections, domains) are only marked dead while the batch runs and
 * are freed after it (loop_defer), when no event can name them.
 *
 * A job belongs to the connection that sent it, not to the domain: the job
 * records the connection's generation, and the transport delivers its
 * completion only to that connection (chan/transport.h).
 */
#include "mediator.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "admin.h"
#include "chan/transport.h"
#include "dispatch.h"
#include "domain.h"
#include "log.h"
#include "loop.h"
#include "util.h"
#include "vgpu_protocol.h"
#include "xsid.h"

struct mediator {
    struct loop *loop;
    bool status_dirty; /* the status file is behind */
    bool status_warned;
    const char *status_file;
    struct xsid *xsid;
    struct domains *doms;
    const struct transport_ops *tops; /* the v1 socket today */
    struct transport *tp;
    struct dispatch *disp;
    uint64_t started_ns;
    struct admin *admin;
    struct loop_handler admin_h;
    struct loop_timer cuda_timer; /* the status file's cuda= counts */
};

/* ---------------------------------------------------------------------- */
/* device connections                                                      */
/* ---------------------------------------------------------------------- */

/* The transport's report of a request: queue it, or say why not. */
static uint32_t on_request(void *arg, struct vm *vm, uint64_t gen,
                           uint32_t request_id, const uint8_t *body,
                           uint32_t len)
{
    struct mediator *m = arg;

    return dispatch_admit(m->disp, vm, gen, request_id, body, len);
}

/* v2: a whole request of a channel, in its own buffer, under its limits. */
static uint32_t on_request_buf(void *arg, struct vm *vm, uint64_t gen,
                               uint32_t request_id, uint8_t *buf, uint32_t len,
                               uint64_t max_bytes, unsigned max_queued)
{
    struct mediator *m = arg;
    struct dispatch_limits lim = {max_bytes, max_queued};

    return dispatch_admit_buf(m->disp, vm, gen, request_id, buf, len, &lim);
}

static void on_cancel(void *arg, struct vm *vm, uint64_t gen,
                      uint32_t request_id)
{
    struct mediator *m = arg;

    if (dispatch_cancel(m->disp, vm, gen, request_id)) {
        log_debug("dom%u: request %u cancelled by the device before it ran",
                  vm->domid, request_id);
    }
}

/* The transport's report of a connection stopped. */
static void on_ended(void *arg, struct vm *vm)
{
    struct mediator *m = arg;

    dispatch_drop(m->disp, vm);
}

static void on_conn_changed(void *arg)
{
    struct mediator *m = arg;

    m->status_dirty = true;
}

static const struct transport_events transport_events = {
    .request = on_request,
    .request_buf = on_request_buf,
    .cancel = on_cancel,
    .ended = on_ended,
    .changed = on_conn_changed,
};

/* dispatch.c's questions and completions, answered by the parts. */
static struct vm *disp_find(void *arg, uint32_t domid)
{
    struct mediator *m = arg;

    return domains_find(m->doms, domid);
}

static bool disp_current(void *arg, struct vm *vm, uint64_t gen)
{
    struct mediator *m = arg;

    return m->tops->current(vm, gen);
}

static void disp_complete(void *arg, struct vm *vm, uint64_t gen,
                          uint32_t request_id, uint32_t status,
                          const void *payload, uint32_t len)
{
    struct mediator *m = arg;

    m->tops->complete(m->tp, vm, gen, request_id, status, payload, len);
}

static const struct dispatch_events dispatch_events = {
    .find = disp_find,
    .current = disp_current,
    .complete = disp_complete,
};

/* domain.c's report of a peer it let in. */
static void on_connected(void *arg, struct vm *vm, int fd)
{
    struct mediator *m = arg;

    m->tops->attach(m->tp, vm, fd);
}

/* ---------------------------------------------------------------------- */
/* xenstore                                                                */
/* ---------------------------------------------------------------------- */

/* xsid.c's report of a domain's new identity (or unassigned reason). */
static void on_identity(void *arg, struct vm *vm,
                        const struct vgpu_identity *old)
{
    struct mediator *m = arg;

    dispatch_identity_changed(m->disp, vm, old);
    /* Another pool: whether it has a GPU is news worth one line again. */
    if (strcmp(vm->id.pool, old->pool) != 0) {
        vm->no_gpu_logged = false;
    }
    m->status_dirty = true;
    m->tops->identity_changed(m->tp, vm);
}

/* xsid.c's report of a domain xenstored released: free what it held. */
static void on_released(void *arg, struct vm *vm)
{
    (void)arg;
    domain_remove(vm, true);
}

static const struct xsid_ops xsid_ops = {
    .changed = on_identity,
    .released = on_released,
};

/* ---------------------------------------------------------------------- */
/* domains                                                                 */
/* ---------------------------------------------------------------------- */

/* domain.c's report of a domain listening: learn who it is. */
static void on_added(void *arg, struct vm *vm)
{
    struct mediator *m = arg;

    xsid_domain_added(m->xsid, vm);
}

/*
 * domain.c's report of a domain going: its connection is retired now
 * (freed after the batch, before the domain itself: loop_defer is FIFO)
 * and everything it held is let go.
 */
static void on_removing(void *arg, struct vm *vm)
{
    struct mediator *m = arg;

    m->tops->detach(m->tp, vm);
    dispatch_drop(m->disp, vm);
    dispatch_vm_release(m->disp, vm);
    xsid_domain_removing(m->xsid, vm);
    m->status_dirty = true;
}

static const struct domain_ops domain_ops = {
    .added = on_added,
    .connected = on_connected,
    .removing = on_removing,
};

/* ---------------------------------------------------------------------- */
/* status file                                                             */
/* ---------------------------------------------------------------------- */

static void write_status_lines(struct mediator *m, FILE *f)
{
    fprintf(f, "mediator pid=%d backend=%s qemu-root=%s\n", (int)getpid(),
            dispatch_backend_name(m->disp), domains_root(m->doms));
    for (struct vm *vm = domains_first(m->doms); vm; vm = vm->next) {
        if (vm->dead) {
            continue;
        }
        fprintf(f, "domain %u pool=%s priority=%s vm-id=%u device=%s cuda=%u\n",
                vm->domid, vm->id.assigned ? vm->id.pool : "-",
                vm->id.assigned ? vgpu_priority_name(vm->id.priority) : "-",
                vm->id.vm_id, m->tops->connected(vm) ? "connected" : "waiting",
                vm->cuda_shown);
    }
    /* What this host can serve, per pool: hostcap.c publishes it in xapi. */
    for (unsigned p = 0; p < dispatch_npools(m->disp); p++) {
        struct dispatch_pool_info pi;
        unsigned vms = 0;

        dispatch_pool_info(m->disp, p, &pi);
        for (struct vm *vm = domains_first(m->doms); vm; vm = vm->next) {
            vms +=
                !vm->dead && vm->id.assigned && !strcmp(vm->id.pool, pi.name);
        }
        fprintf(f, "pool %s gpus=%u mem-mb=%llu vms=%u\n", pi.name, pi.ngpus,
                (unsigned long long)(pi.mem_total >> 20), vms);
    }
}

/*
 * Publish the domains served and their state, replacing the file
 * atomically so that a reader never sees half of it.
 */
static void write_status(struct mediator *m)
{
    char tmp[PATH_MAX];
    FILE *f;

    if (!m->status_file || !m->status_dirty) {
        return;
    }
    m->status_dirty = false;
    snprintf(tmp, sizeof(tmp), "%s.tmp", m->status_file);
    f = fopen(tmp, "w");
    if (f) {
        write_status_lines(m, f);
        if (fclose(f) == 0 && rename(tmp, m->status_file) == 0) {
            m->status_warned = false;
            return;
        }
        unlink(tmp);
    }
    if (!m->status_warned) {
        log_warn("cannot write status file %s: %s", m->status_file,
                 strerror(errno));
        m->status_warned = true;
    }
}

/*
 * cuda=N of each domain line: the CUDA contexts the VM holds here.  They
 * come and go in the backend's workers, which report nothing upward, so
 * they are looked at every second; the file is rewritten when one
 * changed.  vgpu-publish turns them into the VM's blocked operations in
 * xapi (a VM with CUDA state cannot move: hostcap.c, docs/pool.md).
 */
#define CUDA_TICK_NS 1000000000ull

static void cuda_tick(void *arg)
{
    struct mediator *m = arg;

    for (struct vm *vm = domains_first(m->doms); vm; vm = vm->next) {
        uint32_t n =
            vm->dead ? 0 : dispatch_vm_cuda_contexts(m->disp, vm->domid);

        if (n != vm->cuda_shown) {
            vm->cuda_shown = n;
            m->status_dirty = true;
        }
    }
    write_status(m);
    loop_timer_arm(m->loop, &m->cuda_timer, now_ns() + CUDA_TICK_NS, cuda_tick,
                   m);
}

/* ---------------------------------------------------------------------- */
/* life cycle                                                              */
/* ---------------------------------------------------------------------- */

static void on_admin(struct loop_handler *h, uint32_t events)
{
    struct mediator *m = h->arg;
    (void)h;
    (void)events;
    admin_process(m->admin);
}

/* The root-only socket of vgpu-smi and the optional metrics endpoint. */
static int open_admin(struct mediator *m, const struct mediator_config *cfg)
{
    if (!cfg->admin_socket) {
        if (cfg->metrics_listen) {
            log_err("--metrics-listen needs the admin socket");
            return -1;
        }
        return 0;
    }
    if (admin_open(&m->admin, cfg->admin_socket, mediator_snapshot, m)) {
        return -1;
    }
    if (cfg->metrics_listen &&
        admin_listen_metrics(m->admin, cfg->metrics_listen)) {
        return -1;
    }
    m->admin_h.fd = admin_fd(m->admin);
    m->admin_h.fn = on_admin;
    m->admin_h.arg = m;
    log_info("admin socket %s%s%s", cfg->admin_socket,
             cfg->metrics_listen ? ", metrics on http://" : "",
             cfg->metrics_listen ? cfg->metrics_listen : "");
    return loop_add(m->loop, &m->admin_h, EPOLLIN);
}

/* The loop's end of batch: all input of the batch is queued, so now
 * priority decides; then what the batch ended is freed and published. */
static void after_batch(void *arg)
{
    struct mediator *m = arg;

    dispatch_run(m->disp);
    write_status(m);
}

int mediator_open(struct mediator **mp, const struct mediator_config *cfg)
{
    struct mediator *m = calloc(1, sizeof(*m));
    struct domains_config dcfg;
    struct dispatch_config dispcfg;

    if (!m) {
        return -1;
    }
    m->started_ns = now_ns();
    m->admin_h.fd = -1;
    if (loop_open(&m->loop)) {
        goto err_free;
    }
    loop_set_batch_end(m->loop, after_batch, m);
    if (loop_signals(m->loop)) {
        goto err_close;
    }
    dispcfg.backend = cfg->backend;
    dispcfg.cpu_gpus = cfg->cpu_gpus;
    dispcfg.pools_file = cfg->pools_file;
    dispcfg.quota_bytes = cfg->quota_bytes;
    dispcfg.starvation_bound = cfg->starvation_bound;
    dispcfg.sched_mode = (enum dispatch_sched_mode)cfg->sched_mode;
    dispcfg.fixed_slots = cfg->fixed_slots;
    dispcfg.max_queued = cfg->max_queued;
    if (dispatch_open(&m->disp, m->loop, &dispcfg, &dispatch_events, m) ||
        open_admin(m, cfg)) {
        goto err_close;
    }
    dcfg.qemu_root = cfg->qemu_root;
    dcfg.qemu_uid_base = cfg->qemu_uid_base;
    dcfg.qemu_gid_base = cfg->qemu_gid_base;
    m->tops = &transport_sock;
    if (m->tops->open(&m->tp, m->loop, &cfg->ring, &transport_events, m) ||
        domains_open(&m->doms, m->loop, &dcfg, &domain_ops, m) ||
        xsid_open(&m->xsid, m->loop, m->doms, &xsid_ops, m)) {
        goto err_close;
    }
    if (domains_scan(m->doms)) {
        goto err_close;
    }
    log_info("watching %s for %s<domid> folders", cfg->qemu_root,
             VGPU_QEMU_ROOT_PREFIX);
    m->status_file = cfg->status_file;
    m->status_dirty = true;
    if (m->status_file && make_parent_dir(m->status_file)) {
        log_warn("cannot make the folder of %s: %s", m->status_file,
                 strerror(errno));
    }
    write_status(m);
    loop_timer_arm(m->loop, &m->cuda_timer, now_ns() + CUDA_TICK_NS, cuda_tick,
                   m);
    *mp = m;
    return 0;

err_close:
    mediator_close(m);
    return -1;
err_free:
    free(m);
    return -1;
}

int mediator_run(struct mediator *m)
{
    return loop_run(m->loop);
}

static void snapshot_vm(struct mediator *m, const struct vm *vm,
                        struct vgpu_vm_stats *v)
{
    v->domid = vm->domid;
    snprintf(v->name, sizeof(v->name), "%s", vm->name);
    v->assigned = vm->id.assigned;
    snprintf(v->pool, sizeof(v->pool), "%s",
             vm->id.assigned ? vm->id.pool : "");
    v->priority = vm->id.priority;
    v->vm_id = vm->id.vm_id;
    v->connected = m->tops->connected(vm);
    v->stale = vm->stale;
    v->served = vm->served;
    v->errors = vm->failed;
    v->gpu_ns = vm->gpu_ns;
    v->cuda_calls = vm->cuda_calls;
    dispatch_snapshot_vm(m->disp, v);
    if (vm->id.quota_bytes) {
        v->mem_quota = vm->id.quota_bytes; /* its own, over the default */
    }
}

void mediator_snapshot(void *arg, struct vgpu_stats *out)
{
    struct mediator *m = arg;

    memset(out, 0, sizeof(*out));
    out->pid = (int)getpid();
    out->now_ns = now_ns();
    out->uptime_ns = out->now_ns - m->started_ns;
    for (struct vm *vm = domains_first(m->doms);
         vm && out->nvms < VGPU_STATS_MAX_VMS; vm = vm->next) {
        if (!vm->dead) {
            snapshot_vm(m, vm, &out->vms[out->nvms++]);
        }
    }
    dispatch_snapshot(m->disp, out);
}

void mediator_close(struct mediator *m)
{
    if (!m) {
        return;
    }
    domains_close(m->doms); /* each domain's on_removing, then frees */
    if (m->tp) {
        m->tops->close(m->tp);
    }
    if (m->admin) {
        admin_close(m->admin); /* closes admin_h.fd too */
    }
    if (m->status_file) {
        unlink(m->status_file);
    }
    xsid_close(m->xsid);     /* after the domains: they unwatch */
    dispatch_close(m->disp); /* the backend, what it still ran */
    loop_close(m->loop);     /* frees the replaced connections too */
    free(m);
}
