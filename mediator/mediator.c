/*
 * mediator.c - owns the request queue, admission, placement and
 * completion, and the wiring of the parts: the event loop (loop.c), the
 * domains with their sockets and peer credential check (domain.c), the
 * xenstore connection and identities (xsid.c) and the device connections
 * (a transport, chan/transport.h; the v1 socket is chan/sock.c).  Each
 * part reports upward through its ops table; none calls another back.
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
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "backend.h"
#include "domain.h"
#include "identity.h"
#include "log.h"
#include "loop.h"
#include "payload.h"
#include "poolconf.h"
#include "prio_queue.h"
#include "util.h"
#include "vgpu_protocol.h"
#include "wire.h"
#include "xsid.h"
#include "chan/transport.h"

struct job {
    struct sched_entry entry; /* first: a queue entry is its job */
    struct mediator *m;
    uint64_t conn_gen; /* the connection that sent it */
    uint32_t request_id;
    struct vgpu_backend_job bj; /* bj.req and bj.resp describe bytes[] */
    struct iovec req_iov;       /* the request's bytes in bytes[] */
    /* The request's own copy (its size), then its response (the op's). */
    uint8_t bytes[];
};

struct gpu_state {
    uint64_t busy_ns;
    uint64_t jobs;
    struct job *running; /* owned here until its done() */
};

struct mediator {
    struct loop *loop;
    bool status_dirty; /* the status file is behind */
    bool status_warned;
    const char *status_file;
    struct xsid *xsid;
    struct domains *doms;
    const struct transport_ops *tops; /* the v1 socket today */
    struct transport *tp;
    struct sched sched;
    size_t queued;
    const struct vgpu_backend_ops *backend;
    void *backend_state;
    char backend_note[128];
    struct loop_handler backend_h;
    unsigned ngpus;
    struct gpu_state gpu[VGPU_BACKEND_MAX_GPUS];
    struct poolconf pools;
    uint32_t pool_gpus[POOLCONF_MAX_POOLS]; /* bit i: GPU i serves it */
    uint64_t quota_bytes;
    uint64_t started_ns;
    struct admin *admin;
    struct loop_handler admin_h;
};

/* ---------------------------------------------------------------------- */
/* the request queue                                                       */
/* ---------------------------------------------------------------------- */

static void free_job(struct sched_entry *e, void *arg)
{
    struct mediator *m = arg;

    m->queued--;
    free((struct job *)e);
}

/* Forget every queued request of a domain (its device went away). */
static void drop_queued(struct mediator *m, struct vm *vm)
{
    sched_drop_owner(&m->sched, vm->domid, free_job, m);
}

/* ---------------------------------------------------------------------- */
/* device connections                                                      */
/* ---------------------------------------------------------------------- */

/*
 * The GPUs the domain's pool may use (bit i: GPU i); 0 when none, which is
 * also the answer for a valid pool name that pools.conf does not list.
 */
static uint32_t vm_gpus(const struct mediator *m, const struct vm *vm)
{
    for (unsigned i = 0; i < m->pools.npools; i++) {
        if (strcmp(m->pools.pools[i].name, vm->id.pool) == 0) {
            return m->pool_gpus[i];
        }
    }
    return 0;
}

/* The transport's report of a request: queue it, or say why not. */
static uint32_t on_request(void *arg, struct vm *vm, uint64_t gen,
                           uint32_t request_id, const uint8_t *body,
                           uint32_t len)
{
    struct mediator *m = arg;
    struct vgpu_request req;
    uint64_t need;
    uint32_t err;
    struct job *job;

    if (!vm->id.assigned) {
        return VGPU_ERR_NOT_ASSIGNED;
    }
    err = payload_parse_request(body, len, &req);
    if (err) {
        return err;
    }
    if (!vm_gpus(m, vm)) {
        if (!vm->no_gpu_logged) {
            log_err("dom%u: pool %s %s (see the pools file); its "
                    "requests fail with NO_GPU",
                    vm->domid, vm->id.pool,
                    poolconf_find(&m->pools, vm->id.pool)
                        ? "has no GPU"
                        : "is not one the pools file defines");
            vm->no_gpu_logged = true;
        }
        return VGPU_ERR_NO_GPU;
    }
    need = payload_device_bytes(&req);
    if (m->quota_bytes && need > m->quota_bytes) {
        log_warn("dom%u: request needs %llu bytes of device memory, over "
                 "the quota of %llu",
                 vm->domid, (unsigned long long)need,
                 (unsigned long long)m->quota_bytes);
        return VGPU_ERR_QUOTA_EXCEEDED;
    }
    if (sched_count_owner(&m->sched, vm->domid) >= MEDIATOR_MAX_QUEUED_PER_VM ||
        m->queued >= MEDIATOR_MAX_QUEUED_TOTAL) {
        return VGPU_ERR_QUEUE_FULL;
    }
    job = malloc(sizeof(*job) + len + payload_resp_size(&req));
    if (!job) {
        return VGPU_ERR_QUEUE_FULL;
    }
    job->m = m;
    job->conn_gen = gen;
    job->request_id = request_id;
    job->bj.domid = vm->domid;
    /* The request checked above, checked again where its copy now lies. */
    memcpy(job->bytes, body, len);
    job->req_iov.iov_base = job->bytes;
    job->req_iov.iov_len = len;
    err = payload_parse_iov(&job->req_iov, 1, &job->bj.req);
    if (err) {
        free(job);
        return err;
    }
    job->bj.resp.iov_base = job->bytes + len;
    job->bj.resp.iov_len = payload_resp_size(&req);
    sched_push(&m->sched, &job->entry, vm->domid, vm->id.priority);
    m->queued++;
    return VGPU_ERR_NONE;
}

/* The transport's report of a HELLO from a domain not assigned yet. */
static void on_hello(void *arg, struct vm *vm)
{
    struct mediator *m = arg;

    xsid_refresh(m->xsid, vm);
}

/* The transport's report of a connection stopped. */
static void on_ended(void *arg, struct vm *vm)
{
    drop_queued(arg, vm);
}

static void on_conn_changed(void *arg)
{
    struct mediator *m = arg;

    m->status_dirty = true;
}

static const struct transport_events transport_events = {
    .hello = on_hello,
    .request = on_request,
    .ended = on_ended,
    .changed = on_conn_changed,
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

    if (vm->id.assigned && old->assigned && vm->id.priority != old->priority) {
        sched_set_owner_priority(&m->sched, vm->domid, vm->id.priority);
    }
    if (!vm->id.assigned) {
        drop_queued(m, vm);
    }
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
    drop_queued(m, vm);
    m->backend->vm_release(m->backend_state, vm->domid);
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
            m->backend->name, domains_root(m->doms));
    for (struct vm *vm = domains_first(m->doms); vm; vm = vm->next) {
        if (vm->dead) {
            continue;
        }
        fprintf(f, "domain %u pool=%s priority=%s vm-id=%u device=%s\n",
                vm->domid, vm->id.assigned ? vm->id.pool : "-",
                vm->id.assigned ? vgpu_priority_name(vm->id.priority) : "-",
                vm->id.vm_id, m->tops->connected(vm) ? "connected" : "waiting");
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

/* ---------------------------------------------------------------------- */
/* dispatch                                                                */
/* ---------------------------------------------------------------------- */

static void on_job_done(struct vgpu_backend_job *bj)
{
    struct job *job = bj->owner;
    struct mediator *m = job->m;
    struct vm *vm = domains_find(m->doms, bj->domid);

    m->gpu[bj->gpu].running = NULL;
    m->gpu[bj->gpu].busy_ns += bj->exec_ns;
    m->gpu[bj->gpu].jobs++;
    if (!vm) {
        log_debug("dom%u: request %u finished after the domain left: dropped",
                  bj->domid, job->request_id);
    } else {
        /* Counted and logged before the reply goes out, so that whoever
         * reads the reply finds them. */
        if (m->tops->current(vm, job->conn_gen)) {
            if (bj->error) {
                vm->failed++;
            } else {
                vm->served++;
            }
            vm->gpu_ns += bj->exec_ns;
            log_debug("dom%u: served request %u prio %s on GPU %u: %s",
                      vm->domid, job->request_id,
                      vgpu_priority_name(job->entry.prio), bj->gpu,
                      vgpu_error_name(bj->error));
        }
        /* Delivered only to the connection that sent it. */
        m->tops->complete(m->tp, vm, job->conn_gen, job->request_id, bj->error,
                          bj->resp.iov_base, bj->error ? 0 : bj->resp_len);
    }
    free(job);
}

/* The first idle GPU of the job's pool, or -1. */
static int idle_gpu_for(struct mediator *m, const struct sched_entry *e)
{
    struct vm *vm = domains_find(m->doms, e->owner);
    uint32_t gpus = vm ? vm_gpus(m, vm) : 0;

    for (unsigned i = 0; i < m->ngpus; i++) {
        if ((gpus & (1u << i)) && m->backend->gpu_idle(m->backend_state, i)) {
            return (int)i;
        }
    }
    return -1;
}

static bool can_place(const struct sched_entry *e, void *arg)
{
    return idle_gpu_for(arg, e) >= 0;
}

/*
 * Start queued requests while some GPU of their pool is idle: the queue
 * decides the order (priority, FIFO, starvation bound), the pools decide
 * where.
 */
static void dispatch(struct mediator *m)
{
    struct sched_entry *e;

    while ((e = sched_pop_first(&m->sched, can_place, m))) {
        struct job *job = (struct job *)e;
        int gpu = idle_gpu_for(m, e);

        m->queued--;
        job->bj.gpu = (unsigned)gpu;
        job->bj.owner = job;
        job->bj.done = on_job_done;
        m->gpu[gpu].running = job;
        log_debug("dom%u: started request %u on GPU %d", job->bj.domid,
                  job->request_id, gpu);
        m->backend->submit(m->backend_state, &job->bj);
    }
}

static void on_backend(struct loop_handler *h, uint32_t events)
{
    struct mediator *m = h->arg;
    (void)h;
    (void)events;
    m->backend->poll(m->backend_state);
}

/* ---------------------------------------------------------------------- */
/* life cycle                                                              */
/* ---------------------------------------------------------------------- */

static int start_backend(struct mediator *m, const struct vgpu_backend_ops *ops,
                         struct vgpu_backend_config *bcfg, const char **why)
{
    if (!ops) {
        *why = "this vgpu-mediator was built without the CUDA backend";
        return -1;
    }
    if (ops->open(&m->backend_state, bcfg, why)) {
        return -1;
    }
    m->backend = ops;
    return 0;
}

/*
 * cuda: the CUDA backend or nothing; cpu: the CPU reference backend;
 * auto: CUDA when it can run here, else the CPU backend, saying why.
 */
static int open_backend(struct mediator *m, const struct mediator_config *cfg)
{
    struct vgpu_backend_config bcfg = {.cpu_gpus = cfg->cpu_gpus};
    const char *want = cfg->backend ? cfg->backend : "auto";
    const char *why = NULL;

    if (strcmp(want, "cpu") != 0) {
        if (start_backend(m, vgpu_backend_cuda, &bcfg, &why) == 0) {
            snprintf(m->backend_note, sizeof(m->backend_note), "%s",
                     "NVIDIA GPUs through the CUDA driver API");
        } else if (strcmp(want, "cuda") == 0) {
            log_err("CUDA backend cannot run: %s", why);
            return -1;
        } else {
            log_warn("CUDA backend unavailable (%s); using the CPU "
                     "reference backend",
                     why);
            snprintf(m->backend_note, sizeof(m->backend_note),
                     "CPU reference backend: %s", why);
        }
    } else {
        snprintf(m->backend_note, sizeof(m->backend_note), "%s",
                 "CPU reference backend (chosen)");
    }
    if (!m->backend && start_backend(m, &vgpu_backend_cpu, &bcfg, &why)) {
        log_err("CPU backend failed to start: %s", why);
        return -1;
    }
    m->ngpus = m->backend->gpu_count(m->backend_state);
    m->backend_h.fd = m->backend->fd(m->backend_state);
    m->backend_h.fn = on_backend;
    m->backend_h.arg = m;
    log_info("backend: %s, %u GPU(s): %s", m->backend->name, m->ngpus,
             m->backend_note);
    for (unsigned i = 0; i < m->ngpus; i++) {
        struct vgpu_gpu_info info;

        m->backend->gpu_info(m->backend_state, i, &info);
        log_info("GPU %u: %s %s", i, info.name, info.uuid);
    }
    return loop_add(m->loop, &m->backend_h, EPOLLIN);
}

/* Resolve one pools.conf GPU (index or UUID) to a GPU index, or -1. */
static int resolve_gpu(struct mediator *m, const char *spec)
{
    unsigned index;

    if (poolconf_gpu_index(spec, &index)) {
        return index < m->ngpus ? (int)index : -1;
    }
    for (unsigned i = 0; i < m->ngpus; i++) {
        struct vgpu_gpu_info info;

        m->backend->gpu_info(m->backend_state, i, &info);
        if (strcasecmp(info.uuid, spec) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int load_pools(struct mediator *m, const struct mediator_config *cfg)
{
    const char *path = cfg->pools_file ? cfg->pools_file : VGPU_POOLS_CONF_PATH;
    char err[256];
    int r = poolconf_load(path, &m->pools, err, sizeof(err));

    if (r < 0) {
        log_err("pools: %s", err);
        return -1;
    }
    if (r == 1) {
        log_info("pools: %s absent; the built-in pools use every GPU", path);
    }
    for (unsigned p = 0; p < m->pools.npools; p++) {
        const struct pool_def *def = &m->pools.pools[p];

        m->pool_gpus[p] =
            def->all_gpus ? (uint32_t)((1ull << m->ngpus) - 1) : 0;
        for (unsigned g = 0; g < def->ngpus; g++) {
            int index = resolve_gpu(m, def->gpus[g]);

            if (index < 0) {
                log_warn("pool %s: GPU %s is not on this host", def->name,
                         def->gpus[g]);
                continue;
            }
            m->pool_gpus[p] |= 1u << index;
        }
        if (!m->pool_gpus[p]) {
            log_err("pool %s has no GPU on this host: its VMs get NO_GPU",
                    def->name);
        } else {
            log_info("pool %s: GPU mask 0x%x", def->name, m->pool_gpus[p]);
        }
    }
    return 0;
}

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

    dispatch(m);
    write_status(m);
}

int mediator_open(struct mediator **mp, const struct mediator_config *cfg)
{
    struct mediator *m = calloc(1, sizeof(*m));
    struct domains_config dcfg;

    if (!m) {
        return -1;
    }
    sched_init(&m->sched);
    m->started_ns = now_ns();
    m->backend_h.fd = -1;
    m->admin_h.fd = -1;
    if (loop_open(&m->loop)) {
        goto err_free;
    }
    loop_set_batch_end(m->loop, after_batch, m);
    if (loop_signals(m->loop)) {
        goto err_close;
    }
    if (open_backend(m, cfg) || load_pools(m, cfg) || open_admin(m, cfg)) {
        goto err_close;
    }
    m->quota_bytes = cfg->quota_bytes;
    sched_set_starvation_bound(&m->sched, cfg->starvation_bound);
    if (cfg->starvation_bound) {
        log_info("anti-starvation: a waiting request runs after at most %u "
                 "of higher priority",
                 cfg->starvation_bound);
    }
    dcfg.qemu_root = cfg->qemu_root;
    dcfg.qemu_uid_base = cfg->qemu_uid_base;
    dcfg.qemu_gid_base = cfg->qemu_gid_base;
    m->tops = &transport_sock;
    if (m->tops->open(&m->tp, m->loop, &transport_events, m) ||
        domains_open(&m->doms, m->loop, &dcfg, &domain_ops, m) ||
        xsid_open(&m->xsid, m->loop, m->doms, &xsid_ops, m)) {
        goto err_close;
    }
    if (xsid_ensure(m->xsid)) {
        log_warn("xenstore unreachable (%s); domains stay unassigned until "
                 "it answers",
                 strerror(errno));
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
    v->queued = sched_count_owner(&m->sched, vm->domid);
    v->gpu_ns = vm->gpu_ns;
    v->mem_used = m->backend->vm_mem_used(m->backend_state, vm->domid);
    v->mem_quota = m->quota_bytes;
}

static void snapshot_gpu(struct mediator *m, unsigned i,
                         struct vgpu_gpu_stats *g)
{
    size_t used = 0;

    g->index = i;
    m->backend->gpu_info(m->backend_state, i, &g->info);
    for (unsigned p = 0; p < m->pools.npools; p++) {
        if (m->pool_gpus[p] & (1u << i)) {
            used += (size_t)snprintf(g->pools + used, sizeof(g->pools) - used,
                                     "%s%s", used ? "," : "",
                                     m->pools.pools[p].name);
            if (used >= sizeof(g->pools)) {
                break;
            }
        }
    }
    g->busy = !m->backend->gpu_idle(m->backend_state, i);
    g->busy_ns = m->gpu[i].busy_ns;
    g->jobs = m->gpu[i].jobs;
}

void mediator_snapshot(void *arg, struct vgpu_stats *out)
{
    struct mediator *m = arg;

    memset(out, 0, sizeof(*out));
    out->pid = (int)getpid();
    snprintf(out->backend, sizeof(out->backend), "%s", m->backend->name);
    snprintf(out->backend_note, sizeof(out->backend_note), "%s",
             m->backend_note);
    out->now_ns = now_ns();
    out->uptime_ns = out->now_ns - m->started_ns;
    out->starvation_bound = m->sched.starvation_bound;
    for (struct vm *vm = domains_first(m->doms);
         vm && out->nvms < VGPU_STATS_MAX_VMS; vm = vm->next) {
        if (!vm->dead) {
            snapshot_vm(m, vm, &out->vms[out->nvms++]);
        }
    }
    for (unsigned i = 0; i < m->ngpus && i < VGPU_BACKEND_MAX_GPUS; i++) {
        snapshot_gpu(m, i, &out->gpus[out->ngpus++]);
    }
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
    xsid_close(m->xsid); /* after the domains: they unwatch */
    if (m->backend_state) {
        m->backend->close(m->backend_state);
    }
    for (unsigned i = 0; i < VGPU_BACKEND_MAX_GPUS; i++) {
        free(m->gpu[i].running); /* finished after the backend stopped */
    }
    loop_close(m->loop); /* frees the replaced connections too */
    free(m);
}
