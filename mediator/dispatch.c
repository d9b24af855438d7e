/*
 * dispatch.c - owns the request queue, the backend and the pools: admits
 * a request (the op table's checks through payload.c, the pool, the
 * quota, the queue limits), places it on an idle GPU of its domain's pool,
 * submits it, and hands its completion upward (struct dispatch_events)
 * with the generation of the connection that sent it; the transport
 * delivers it only to that connection.
 */
#include "dispatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/uio.h>

#include "backend.h"
#include "log.h"
#include "mediator.h" /* MEDIATOR_MAX_QUEUED_* */
#include "payload.h"
#include "poolconf.h"
#include "prio_queue.h"
#include "util.h"
#include "vgpu_protocol.h"

struct job {
    struct sched_entry entry; /* first: a queue entry is its job */
    struct dispatch *d;
    uint64_t conn_gen; /* the connection that sent it */
    uint32_t request_id;
    struct vgpu_backend_job bj; /* bj.req and bj.resp describe bytes[] */
    struct iovec req_iov;       /* the request's bytes in bytes[] or own */
    uint8_t *own; /* a v2 request's own buffer (dispatch_admit_buf), or NULL */
    /* The request's own copy (its size), then its response (the op's). */
    uint8_t bytes[];
};

struct gpu_state {
    uint64_t busy_ns;
    uint64_t jobs;
    struct job *running; /* owned here until its done() */
};

struct dispatch {
    struct loop *loop;
    const struct dispatch_events *ev;
    void *arg;
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
    unsigned max_queued; /* a v1 connection's requests waiting, per VM */
    enum dispatch_sched_mode mode;
    unsigned fixed_slots;
    uint64_t vclock; /* the share modes' virtual time of the last start */
    struct loop_timer share_timer; /* a fixed share's bucket refills */
};

/* The fixed share's bucket holds at most this much of a VM's GPU time:
 * what it may use in a burst, 1/slots of this window. */
#define FIXED_WINDOW_NS 100000000ull

static int64_t share_fill(const struct dispatch *d, struct vm *vm,
                          uint64_t now);

static void job_free(struct job *job)
{
    if (job) {
        free(job->own);
        free(job);
    }
}

static void free_job(struct sched_entry *e, void *arg)
{
    struct dispatch *d = arg;

    d->queued--;
    job_free((struct job *)e);
}

/* Forget every queued request of a domain (its device went away). */
void dispatch_drop(struct dispatch *d, struct vm *vm)
{
    sched_drop_owner(&d->sched, vm->domid, free_job, d);
}

/* ---------------------------------------------------------------------- */
/* device connections                                                      */
/* ---------------------------------------------------------------------- */

/*
 * The GPUs the domain's pool may use (bit i: GPU i); 0 when none, which is
 * also the answer for a valid pool name that pools.conf does not list.
 */
static uint32_t vm_gpus(const struct dispatch *d, const struct vm *vm)
{
    for (unsigned i = 0; i < d->pools.npools; i++) {
        if (strcmp(d->pools.pools[i].name, vm->id.pool) == 0) {
            return d->pool_gpus[i];
        }
    }
    return 0;
}

/* The VM's device memory quota: its own (xenstore's quota-mb), else the
 * mediator's; 0: none. */
static uint64_t vm_quota(const struct dispatch *d, const struct vm *vm)
{
    return vm->id.quota_bytes ? vm->id.quota_bytes : d->quota_bytes;
}

/* The checks of admission that do not depend on where the bytes are. */
static uint32_t admit_check(struct dispatch *d, struct vm *vm,
                            const struct vgpu_request *req, unsigned max_queued)
{
    uint64_t need;

    if (!vm_gpus(d, vm)) {
        if (!vm->no_gpu_logged) {
            log_err("dom%u: pool %s %s (see the pools file); its "
                    "requests fail with NO_GPU",
                    vm->domid, vm->id.pool,
                    poolconf_find(&d->pools, vm->id.pool)
                        ? "has no GPU"
                        : "is not one the pools file defines");
            vm->no_gpu_logged = true;
        }
        return VGPU_ERR_NO_GPU;
    }
    need = payload_device_bytes(req);
    if (vm_quota(d, vm) && need > vm_quota(d, vm)) {
        log_warn("dom%u: request needs %llu bytes of device memory, over "
                 "the quota of %llu",
                 vm->domid, (unsigned long long)need,
                 (unsigned long long)vm_quota(d, vm));
        return VGPU_ERR_QUOTA_EXCEEDED;
    }
    if (sched_count_owner(&d->sched, vm->domid) >= max_queued ||
        d->queued >= MEDIATOR_MAX_QUEUED_TOTAL) {
        return VGPU_ERR_QUEUE_FULL;
    }
    return VGPU_ERR_NONE;
}

static void job_queue(struct dispatch *d, struct vm *vm, struct job *job)
{
    job->bj.quota_bytes = vm_quota(d, vm);
    /* A VM that had nothing waiting joins at the others' virtual time, so
     * that time it spent idle is no credit to spend against them. */
    if (d->mode != DISPATCH_SCHED_PRIORITY && vm->share_vtime < d->vclock &&
        sched_count_owner(&d->sched, vm->domid) == 0) {
        vm->share_vtime = d->vclock;
    }
    sched_push(&d->sched, &job->entry, vm->domid, vm->id.priority);
    d->queued++;
}

uint32_t dispatch_admit(struct dispatch *d, struct vm *vm, uint64_t gen,
                        uint32_t request_id, const uint8_t *body, uint32_t len)
{
    struct vgpu_request req;
    uint32_t err;
    struct job *job;

    if (!vm->id.assigned) {
        return VGPU_ERR_NOT_ASSIGNED;
    }
    err = payload_parse_request(body, len, &req);
    if (err) {
        return err;
    }
    err = admit_check(d, vm, &req, d->max_queued);
    if (err) {
        return err;
    }
    job = malloc(sizeof(*job) + len + payload_resp_size(&req));
    if (!job) {
        return VGPU_ERR_QUEUE_FULL;
    }
    job->d = d;
    job->conn_gen = gen;
    job->request_id = request_id;
    job->bj.domid = vm->domid;
    job->own = NULL;
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
    job_queue(d, vm, job);
    return VGPU_ERR_NONE;
}

uint32_t dispatch_admit_buf(struct dispatch *d, struct vm *vm, uint64_t gen,
                            uint32_t request_id, uint8_t *buf, uint32_t len,
                            const struct dispatch_limits *lim)
{
    struct vgpu_request req;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    uint32_t err;
    struct job *job;

    if (!vm->id.assigned) {
        return VGPU_ERR_NOT_ASSIGNED;
    }
    /* The buffer is the transport's private copy: nobody else writes it. */
    err = payload_parse_iov_limit(&iov, 1, lim->max_bytes, &req);
    if (err) {
        return err;
    }
    err = admit_check(d, vm, &req, lim->max_queued);
    if (err) {
        return err;
    }
    job = malloc(sizeof(*job) + payload_resp_size(&req));
    if (!job) {
        return VGPU_ERR_QUEUE_FULL;
    }
    job->d = d;
    job->conn_gen = gen;
    job->request_id = request_id;
    job->bj.domid = vm->domid;
    job->req_iov = iov;
    job->bj.req = req;
    job->bj.req.iov = &job->req_iov; /* not the stack's */
    job->bj.resp.iov_base = job->bytes;
    job->bj.resp.iov_len = payload_resp_size(&req);
    job->own = buf;
    job_queue(d, vm, job);
    return VGPU_ERR_NONE;
}

bool dispatch_cancel(struct dispatch *d, struct vm *vm, uint64_t gen,
                     uint32_t request_id)
{
    for (unsigned p = 0; p < VGPU_PRIO_COUNT; p++) {
        for (struct sched_entry *e = d->sched.level[p].head; e; e = e->next) {
            struct job *job = (struct job *)e;

            if (e->owner == vm->domid && job->conn_gen == gen &&
                job->request_id == request_id) {
                sched_remove(&d->sched, e);
                free_job(e, d);
                return true;
            }
        }
    }
    return false;
}

static void on_job_done(struct vgpu_backend_job *bj)
{
    struct job *job = bj->owner;
    struct dispatch *d = job->d;
    struct vm *vm = d->ev->find(d->arg, bj->domid);

    d->gpu[bj->gpu].running = NULL;
    d->gpu[bj->gpu].busy_ns += bj->exec_ns;
    d->gpu[bj->gpu].jobs++;
    if (!vm) {
        log_debug("dom%u: request %u finished after the domain left: dropped",
                  bj->domid, job->request_id);
    } else {
        /* The GPU time was used whoever asked: the share modes count it. */
        vm->share_vtime += bj->exec_ns;
        if (d->mode == DISPATCH_SCHED_FIXED) {
            share_fill(d, vm, now_ns());
            vm->share_tokens -= (int64_t)bj->exec_ns;
        }
        /* Counted and logged before the reply goes out, so that whoever
         * reads the reply finds them. */
        if (d->ev->current(d->arg, vm, job->conn_gen)) {
            if (bj->error) {
                vm->failed++;
            } else {
                vm->served++;
            }
            vm->gpu_ns += bj->exec_ns;
            if (bj->req.opcode == VGPU_OP_CUDA && !bj->error &&
                bj->resp_len >= sizeof(struct vgpu_resp_hdr)) {
                /* The calls that ran: the answer's count. */
                vm->cuda_calls +=
                    wire_get_le32((const uint8_t *)bj->resp.iov_base + 4);
            }
            log_debug("dom%u: served request %u prio %s on GPU %u: %s",
                      vm->domid, job->request_id,
                      vgpu_priority_name(job->entry.prio), bj->gpu,
                      vgpu_error_name(bj->error));
        }
        /* Delivered only to the connection that sent it. */
        d->ev->complete(d->arg, vm, job->conn_gen, job->request_id, bj->error,
                        bj->resp.iov_base, bj->error ? 0 : bj->resp_len);
    }
    job_free(job);
}

/*
 * The first idle GPU of the job's pool, or -1.  A v3 batch goes to the
 * pool's first GPU only: the VM's remoted objects (memory, modules,
 * streams) live on one GPU, and its later batches must find them there.
 */
static int idle_gpu_for(struct dispatch *d, const struct sched_entry *e)
{
    const struct job *job = (const struct job *)e;
    struct vm *vm = d->ev->find(d->arg, e->owner);
    uint32_t gpus = vm ? vm_gpus(d, vm) : 0;

    if (job->bj.req.opcode == VGPU_OP_CUDA) {
        gpus &= ~gpus + 1; /* the lowest bit */
    }

    for (unsigned i = 0; i < d->ngpus; i++) {
        if ((gpus & (1u << i)) && d->backend->gpu_idle(d->backend_state, i)) {
            return (int)i;
        }
    }
    return -1;
}

static bool can_place(const struct sched_entry *e, void *arg)
{
    return idle_gpu_for(arg, e) >= 0;
}

/* ---------------------------------------------------------------------- */
/* the share modes                                                         */
/* ---------------------------------------------------------------------- */

int dispatch_parse_sched(const char *s, enum dispatch_sched_mode *mode,
                         unsigned *slots)
{
    char *end;
    unsigned long n;

    *slots = 0;
    if (strcmp(s, "priority") == 0) {
        *mode = DISPATCH_SCHED_PRIORITY;
        return 0;
    }
    if (strcmp(s, "equal") == 0) {
        *mode = DISPATCH_SCHED_EQUAL;
        return 0;
    }
    if (strncmp(s, "fixed:", 6) == 0 && s[6] >= '1' && s[6] <= '9') {
        n = strtoul(s + 6, &end, 10);
        if (*end == '\0' && n >= 1 && n <= 64) {
            *mode = DISPATCH_SCHED_FIXED;
            *slots = (unsigned)n;
            return 0;
        }
    }
    return -1;
}

const char *dispatch_sched_name(enum dispatch_sched_mode mode)
{
    switch (mode) {
    case DISPATCH_SCHED_EQUAL:
        return "equal";
    case DISPATCH_SCHED_FIXED:
        return "fixed";
    default:
        return "priority";
    }
}

static uint64_t share_vtime(uint32_t owner, void *arg)
{
    struct dispatch *d = arg;
    struct vm *vm = d->ev->find(d->arg, owner);

    return vm ? vm->share_vtime : 0;
}

/* The fixed share's bucket of vm, filled for the time since it last was
 * at 1/slots of the clock, up to one window's share. */
static int64_t share_fill(const struct dispatch *d, struct vm *vm, uint64_t now)
{
    const int64_t cap = (int64_t)(FIXED_WINDOW_NS / d->fixed_slots);

    if (vm->share_filled_ns == 0) {
        vm->share_tokens = cap; /* a VM's first job */
    } else if (now > vm->share_filled_ns) {
        uint64_t gained = (now - vm->share_filled_ns) / d->fixed_slots;

        vm->share_tokens =
            gained >= (uint64_t)cap || vm->share_tokens + (int64_t)gained > cap
                ? cap
                : vm->share_tokens + (int64_t)gained;
    }
    vm->share_filled_ns = now;
    return vm->share_tokens;
}

/* In the fixed mode a job also needs its VM's share of the time. */
static bool can_place_fixed(const struct sched_entry *e, void *arg)
{
    struct dispatch *d = arg;
    struct vm *vm = d->ev->find(d->arg, e->owner);

    if (!vm || idle_gpu_for(d, e) < 0) {
        return false;
    }
    return share_fill(d, vm, now_ns()) > 0;
}

static void share_timer_fired(void *arg)
{
    dispatch_run(arg);
}

/*
 * A VM that used its fixed share waits for its bucket: wake dispatch when
 * the first such VM with work has a positive bucket again.
 */
static void share_arm_timer(struct dispatch *d)
{
    uint64_t now = now_ns(), due = 0;

    for (unsigned p = 0; p < VGPU_PRIO_COUNT; p++) {
        for (struct sched_entry *e = d->sched.level[p].head; e; e = e->next) {
            struct vm *vm = d->ev->find(d->arg, e->owner);
            uint64_t at;

            if (!vm || share_fill(d, vm, now) > 0) {
                continue;
            }
            at = now + (uint64_t)(1 - vm->share_tokens) * d->fixed_slots;
            if (!due || at < due) {
                due = at;
            }
        }
    }
    if (due) {
        loop_timer_arm(d->loop, &d->share_timer, due, share_timer_fired, d);
    }
}

/*
 * Start queued requests while some GPU of their pool is idle: the queue
 * decides the order (priority, FIFO, starvation bound), the pools decide
 * where.
 */
static struct sched_entry *next_job(struct dispatch *d)
{
    switch (d->mode) {
    case DISPATCH_SCHED_EQUAL:
        return sched_pop_fair(&d->sched, can_place, share_vtime, d);
    case DISPATCH_SCHED_FIXED:
        return sched_pop_fair(&d->sched, can_place_fixed, share_vtime, d);
    default:
        return sched_pop_first(&d->sched, can_place, d);
    }
}

void dispatch_run(struct dispatch *d)
{
    struct sched_entry *e;

    while ((e = next_job(d))) {
        struct job *job = (struct job *)e;
        int gpu = idle_gpu_for(d, e);
        uint64_t vt = share_vtime(e->owner, d);

        if (vt > d->vclock) {
            d->vclock = vt;
        }
        d->queued--;
        job->bj.gpu = (unsigned)gpu;
        job->bj.owner = job;
        job->bj.done = on_job_done;
        d->gpu[gpu].running = job;
        log_debug("dom%u: started request %u on GPU %d", job->bj.domid,
                  job->request_id, gpu);
        d->backend->submit(d->backend_state, &job->bj);
    }
    if (d->mode == DISPATCH_SCHED_FIXED && sched_count(&d->sched)) {
        share_arm_timer(d);
    }
}

static void on_backend(struct loop_handler *h, uint32_t events)
{
    struct dispatch *d = h->arg;

    (void)events;
    d->backend->poll(d->backend_state);
}

/* ---------------------------------------------------------------------- */
/* life cycle                                                              */
/* ---------------------------------------------------------------------- */

static int start_backend(struct dispatch *d, const struct vgpu_backend_ops *ops,
                         struct vgpu_backend_config *bcfg, const char **why)
{
    if (!ops) {
        *why = "this vgpu-mediator was built without the CUDA backend";
        return -1;
    }
    if (ops->open(&d->backend_state, bcfg, why)) {
        return -1;
    }
    d->backend = ops;
    return 0;
}

/*
 * cuda: the CUDA backend or nothing; cpu: the CPU reference backend;
 * auto: CUDA when it can run here, else the CPU backend, saying why.
 */
static int open_backend(struct dispatch *d, const struct dispatch_config *cfg)
{
    struct vgpu_backend_config bcfg = {.cpu_gpus = cfg->cpu_gpus};
    const char *want = cfg->backend ? cfg->backend : "auto";
    const char *why = NULL;

    if (strcmp(want, "cpu") != 0) {
        if (start_backend(d, vgpu_backend_cuda, &bcfg, &why) == 0) {
            snprintf(d->backend_note, sizeof(d->backend_note), "%s",
                     "NVIDIA GPUs through the CUDA driver API");
        } else if (strcmp(want, "cuda") == 0) {
            log_err("CUDA backend cannot run: %s", why);
            return -1;
        } else {
            log_warn("CUDA backend unavailable (%s); using the CPU "
                     "reference backend",
                     why);
            snprintf(d->backend_note, sizeof(d->backend_note),
                     "CPU reference backend: %s", why);
        }
    } else {
        snprintf(d->backend_note, sizeof(d->backend_note), "%s",
                 "CPU reference backend (chosen)");
    }
    if (!d->backend && start_backend(d, &vgpu_backend_cpu, &bcfg, &why)) {
        log_err("CPU backend failed to start: %s", why);
        return -1;
    }
    d->ngpus = d->backend->gpu_count(d->backend_state);
    d->backend_h.fd = d->backend->fd(d->backend_state);
    d->backend_h.fn = on_backend;
    d->backend_h.arg = d;
    log_info("backend: %s, %u GPU(s): %s", d->backend->name, d->ngpus,
             d->backend_note);
    for (unsigned i = 0; i < d->ngpus; i++) {
        struct vgpu_gpu_info info;

        d->backend->gpu_info(d->backend_state, i, &info);
        log_info("GPU %u: %s %s", i, info.name, info.uuid);
    }
    return loop_add(d->loop, &d->backend_h, EPOLLIN);
}

/* Resolve one pools.conf GPU (index or UUID) to a GPU index, or -1. */
static int resolve_gpu(struct dispatch *d, const char *spec)
{
    unsigned index;

    if (poolconf_gpu_index(spec, &index)) {
        return index < d->ngpus ? (int)index : -1;
    }
    for (unsigned i = 0; i < d->ngpus; i++) {
        struct vgpu_gpu_info info;

        d->backend->gpu_info(d->backend_state, i, &info);
        if (strcasecmp(info.uuid, spec) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int load_pools(struct dispatch *d, const struct dispatch_config *cfg)
{
    const char *path = cfg->pools_file ? cfg->pools_file : VGPU_POOLS_CONF_PATH;
    char err[256];
    int r = poolconf_load(path, &d->pools, err, sizeof(err));

    if (r < 0) {
        log_err("pools: %s", err);
        return -1;
    }
    if (r == 1) {
        log_info("pools: %s absent; the built-in pools use every GPU", path);
    }
    for (unsigned p = 0; p < d->pools.npools; p++) {
        const struct pool_def *def = &d->pools.pools[p];

        d->pool_gpus[p] =
            def->all_gpus ? (uint32_t)((1ull << d->ngpus) - 1) : 0;
        for (unsigned g = 0; g < def->ngpus; g++) {
            int index = resolve_gpu(d, def->gpus[g]);

            if (index < 0) {
                log_warn("pool %s: GPU %s is not on this host", def->name,
                         def->gpus[g]);
                continue;
            }
            d->pool_gpus[p] |= 1u << index;
        }
        if (!d->pool_gpus[p]) {
            log_err("pool %s has no GPU on this host: its VMs get NO_GPU",
                    def->name);
        } else {
            log_info("pool %s: GPU mask 0x%x", def->name, d->pool_gpus[p]);
        }
    }
    return 0;
}

int dispatch_open(struct dispatch **dp, struct loop *loop,
                  const struct dispatch_config *cfg,
                  const struct dispatch_events *ev, void *arg)
{
    struct dispatch *d = calloc(1, sizeof(*d));

    if (!d) {
        return -1;
    }
    d->loop = loop;
    d->ev = ev;
    d->arg = arg;
    d->backend_h.fd = -1;
    sched_init(&d->sched);
    *dp = d;
    if (open_backend(d, cfg) || load_pools(d, cfg)) {
        return -1;
    }
    d->quota_bytes = cfg->quota_bytes;
    d->max_queued =
        cfg->max_queued ? cfg->max_queued : MEDIATOR_MAX_QUEUED_PER_VM;
    d->mode = cfg->sched_mode;
    d->fixed_slots = cfg->fixed_slots ? cfg->fixed_slots : 1;
    if (d->mode == DISPATCH_SCHED_EQUAL) {
        log_info("scheduling: an equal share of GPU time for each VM with "
                 "work (priorities do not order it)");
    } else if (d->mode == DISPATCH_SCHED_FIXED) {
        log_info("scheduling: a fixed share of GPU time, each VM at most "
                 "1/%u of each GPU, even when the GPU would be idle",
                 d->fixed_slots);
    }
    sched_set_starvation_bound(&d->sched, cfg->starvation_bound);
    if (cfg->starvation_bound) {
        log_info("anti-starvation: a waiting request runs after at most %u "
                 "of higher priority",
                 cfg->starvation_bound);
    }
    return 0;
}

void dispatch_identity_changed(struct dispatch *d, struct vm *vm,
                               const struct vgpu_identity *old)
{
    if (vm->id.assigned && old->assigned && vm->id.priority != old->priority) {
        sched_set_owner_priority(&d->sched, vm->domid, vm->id.priority);
    }
    if (!vm->id.assigned) {
        dispatch_drop(d, vm);
    }
}

void dispatch_vm_release(struct dispatch *d, struct vm *vm)
{
    d->backend->vm_release(d->backend_state, vm->domid);
}

unsigned dispatch_npools(const struct dispatch *d)
{
    return d->pools.npools;
}

void dispatch_pool_info(const struct dispatch *d, unsigned p,
                        struct dispatch_pool_info *info)
{
    struct vgpu_gpu_info g;

    memset(info, 0, sizeof(*info));
    if (p >= d->pools.npools) {
        return;
    }
    info->name = d->pools.pools[p].name;
    for (unsigned i = 0; i < d->ngpus && i < VGPU_BACKEND_MAX_GPUS; i++) {
        if (d->pool_gpus[p] & (1u << i)) {
            memset(&g, 0, sizeof(g));
            d->backend->gpu_info(d->backend_state, i, &g);
            info->ngpus++;
            info->mem_total += g.mem_total;
        }
    }
}

const char *dispatch_backend_name(const struct dispatch *d)
{
    return d->backend->name;
}

uint32_t dispatch_vm_cuda_contexts(const struct dispatch *d, uint32_t domid)
{
    return d->backend->vm_cuda_contexts
               ? d->backend->vm_cuda_contexts(d->backend_state, domid)
               : 0;
}

void dispatch_snapshot_vm(const struct dispatch *d, struct vgpu_vm_stats *v)
{
    v->queued = sched_count_owner(&d->sched, v->domid);
    v->mem_used = d->backend->vm_mem_used(d->backend_state, v->domid);
    v->cuda_contexts = dispatch_vm_cuda_contexts(d, v->domid);
    v->mem_quota = d->quota_bytes;
}

static void snapshot_gpu(const struct dispatch *d, unsigned i,
                         struct vgpu_gpu_stats *g)
{
    size_t used = 0;

    g->index = i;
    d->backend->gpu_info(d->backend_state, i, &g->info);
    for (unsigned p = 0; p < d->pools.npools; p++) {
        if (d->pool_gpus[p] & (1u << i)) {
            used += (size_t)snprintf(g->pools + used, sizeof(g->pools) - used,
                                     "%s%s", used ? "," : "",
                                     d->pools.pools[p].name);
            if (used >= sizeof(g->pools)) {
                break;
            }
        }
    }
    g->busy = !d->backend->gpu_idle(d->backend_state, i);
    g->busy_ns = d->gpu[i].busy_ns;
    g->jobs = d->gpu[i].jobs;
}

void dispatch_snapshot(const struct dispatch *d, struct vgpu_stats *out)
{
    snprintf(out->backend, sizeof(out->backend), "%s", d->backend->name);
    snprintf(out->backend_note, sizeof(out->backend_note), "%s",
             d->backend_note);
    out->starvation_bound = d->sched.starvation_bound;
    if (d->mode == DISPATCH_SCHED_FIXED) {
        snprintf(out->schedule, sizeof(out->schedule), "fixed:%u",
                 d->fixed_slots);
    } else {
        snprintf(out->schedule, sizeof(out->schedule), "%s",
                 dispatch_sched_name(d->mode));
    }
    for (unsigned i = 0; i < d->ngpus && i < VGPU_BACKEND_MAX_GPUS; i++) {
        snapshot_gpu(d, i, &out->gpus[out->ngpus++]);
    }
}

void dispatch_close(struct dispatch *d)
{
    if (!d) {
        return;
    }
    loop_timer_cancel(d->loop, &d->share_timer);
    if (d->backend_state) {
        loop_del(d->loop, &d->backend_h); /* the backend's own fd */
        d->backend->close(d->backend_state);
    }
    for (unsigned i = 0; i < VGPU_BACKEND_MAX_GPUS; i++) {
        job_free(d->gpu[i].running); /* finished after the backend stopped */
    }
    free(d);
}
