/*
 * mediator.c - owns the mediator's run time state: the device connections
 * of the domains it serves and the request queue; the event loop is
 * loop.c's, the domains (their sockets and the peer credential check)
 * domain.c's, the xenstore connection and identities xsid.c's; both
 * report upward through their ops tables.
 *
 * Identity: pool, priority and VM-ID come from xenstore; whatever the
 * device claims in HELLO is logged and otherwise ignored.
 *
 * Everything a device sends is checked; a broken or hostile peer loses its
 * own connection (after an ERROR message where one can be sent) and
 * nothing else: other domains keep being served.
 *
 * Objects that an event in the current epoll batch may still point at
 * (connections, domains) are only marked dead while the batch runs and
 * are freed by reap(), the loop's end-of-batch hook (loop.c), once it is
 * over.  A connection replaced by a new one of the same domain is retired
 * at once (its fd closed, its queued work dropped) but freed only after
 * the batch (loop_defer).
 *
 * A job belongs to the connection that sent it, not to the domain: each
 * connection has a generation (m->next_gen, never reused), the job
 * records it, and a completion whose connection is gone or replaced (a
 * restarted qemu-dm starts its request ids at 1 again) is dropped and
 * counted (vm->stale), never delivered.
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

/* Replies that may wait for a slow reader before it is cut off. */
#define CONN_OUT_MAX (4 * VGPU_MSG_MAX_SIZE)

struct conn {
    struct loop_handler h;
    struct vm *vm;
    uint64_t gen;                 /* this connection's generation (never 0) */
    struct loop_deferred retired; /* replaced: freed after the batch */
    bool hello_done;
    bool dead;
    bool want_write;
    size_t in_len;
    size_t out_len;
    uint8_t in[VGPU_MSG_MAX_SIZE];
    uint8_t out[CONN_OUT_MAX];
};

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
    uint64_t next_gen; /* generation of the next connection */
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

static void conn_kill(struct conn *c, const char *why)
{
    if (!c->dead) {
        log_info("dom%u: closing device connection: %s", c->vm->domid, why);
        c->dead = true;
    }
}

static void conn_flush(struct mediator *m, struct conn *c)
{
    size_t off = 0;

    while (off < c->out_len) {
        ssize_t n = send(c->h.fd, c->out + off, c->out_len - off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                conn_kill(c, strerror(errno));
                return;
            }
            break;
        }
        off += (size_t)n;
    }
    memmove(c->out, c->out + off, c->out_len - off);
    c->out_len -= off;
    if ((c->out_len > 0) != c->want_write) {
        c->want_write = c->out_len > 0;
        loop_mod(m->loop, &c->h, EPOLLIN | (c->want_write ? EPOLLOUT : 0));
    }
}

static void conn_send(struct mediator *m, struct conn *c, uint16_t type,
                      uint32_t request_id, uint32_t status, const void *payload,
                      uint32_t len)
{
    struct vgpu_msg_hdr hdr = {
        .type = type,
        .request_id = request_id,
        .vm_id = c->vm->id.vm_id,
        .status = status,
        .length = len,
    };
    size_t n;

    if (c->dead) {
        return;
    }
    n = wire_encode(c->out + c->out_len, sizeof(c->out) - c->out_len, &hdr,
                    payload);
    if (n == 0) {
        conn_kill(c, "device is not reading its replies");
        return;
    }
    c->out_len += n;
    conn_flush(m, c);
}

/* Tell the peer why it is being cut off, then cut it off. */
static void conn_fail(struct mediator *m, struct conn *c, uint32_t error,
                      const char *why)
{
    log_warn("dom%u: protocol error from device: %s", c->vm->domid, why);
    conn_send(m, c, VGPU_MSG_ERROR, 0, error, NULL, 0);
    conn_kill(c, why);
}

static void send_hello_ack(struct mediator *m, struct conn *c)
{
    /* An unassigned domain's pool is "": all zero on the wire. */
    struct vgpu_msg_hello ack = vgpu_msg_hello_make(
        c->vm->id.pool, c->vm->id.priority, c->vm->id.vm_id, VGPU_CAPS_V1);
    uint8_t buf[VGPU_MSG_HELLO_SIZE];

    vgpu_msg_hello_pack(buf, &ack);
    conn_send(m, c, VGPU_MSG_HELLO_ACK, 0, VGPU_ERR_NONE, buf, sizeof(buf));
}

static void handle_hello(struct mediator *m, struct conn *c,
                         const struct vgpu_msg_hdr *hdr, const uint8_t *body)
{
    struct vm *vm = c->vm;
    struct vgpu_msg_hello claim;
    char claimed_pool[VGPU_POOL_NAME_SIZE];

    if (hdr->length != VGPU_MSG_HELLO_SIZE) {
        conn_fail(m, c, VGPU_ERR_PROTOCOL, "HELLO of the wrong size");
        return;
    }
    if (!vm->id.assigned) {
        xsid_refresh(m->xsid, vm);
    }
    /* The device's word is only logged: xenstore is the authority.  So a
     * claimed pool that is not a name is shown as "?", not refused. */
    vgpu_msg_hello_unpack(body, &claim);
    if (vgpu_pool_name_unpack(claim.pool, claimed_pool) < 0) {
        snprintf(claimed_pool, sizeof(claimed_pool), "?");
    }
    log_info("dom%u: device hello (claims pool %s priority %u vm-id %u); "
             "serving as pool %s priority %s vm-id %u%s",
             vm->domid, claimed_pool[0] ? claimed_pool : "-", claim.priority,
             claim.vm_id, vm->id.assigned ? vm->id.pool : "-",
             vm->id.assigned ? vgpu_priority_name(vm->id.priority) : "-",
             vm->id.vm_id, vm->id.assigned ? "" : " (not assigned)");
    c->hello_done = true;
    send_hello_ack(m, c);
}

static void reply_error(struct mediator *m, struct conn *c, uint32_t request_id,
                        uint32_t error)
{
    c->vm->failed++;
    log_debug("dom%u: request %u refused: %s", c->vm->domid, request_id,
              vgpu_error_name(error));
    conn_send(m, c, VGPU_MSG_RESPONSE, request_id, error, NULL, 0);
}

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

static uint32_t admit_request(struct mediator *m, struct conn *c,
                              const struct vgpu_msg_hdr *hdr,
                              const uint8_t *body)
{
    struct vm *vm = c->vm;
    struct vgpu_request req;
    uint64_t need;
    uint32_t err;
    struct job *job;

    if (!vm->id.assigned) {
        return VGPU_ERR_NOT_ASSIGNED;
    }
    err = payload_parse_request(body, hdr->length, &req);
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
    job = malloc(sizeof(*job) + hdr->length + payload_resp_size(&req));
    if (!job) {
        return VGPU_ERR_QUEUE_FULL;
    }
    job->m = m;
    job->conn_gen = c->gen;
    job->request_id = hdr->request_id;
    job->bj.domid = vm->domid;
    /* The request checked above, checked again where its copy now lies. */
    memcpy(job->bytes, body, hdr->length);
    job->req_iov.iov_base = job->bytes;
    job->req_iov.iov_len = hdr->length;
    err = payload_parse_iov(&job->req_iov, 1, &job->bj.req);
    if (err) {
        free(job);
        return err;
    }
    job->bj.resp.iov_base = job->bytes + hdr->length;
    job->bj.resp.iov_len = payload_resp_size(&req);
    sched_push(&m->sched, &job->entry, vm->domid, vm->id.priority);
    m->queued++;
    return VGPU_ERR_NONE;
}

static void handle_msg(struct mediator *m, struct conn *c,
                       const struct vgpu_msg_hdr *hdr, const uint8_t *body)
{
    uint32_t err;

    switch (hdr->type) {
    case VGPU_MSG_HELLO:
        handle_hello(m, c, hdr, body);
        return;
    case VGPU_MSG_REQUEST:
        if (!c->hello_done) {
            conn_fail(m, c, VGPU_ERR_PROTOCOL, "REQUEST before HELLO");
            return;
        }
        err = admit_request(m, c, hdr, body);
        if (err) {
            reply_error(m, c, hdr->request_id, err);
        }
        return;
    default:
        conn_fail(m, c, VGPU_ERR_PROTOCOL, "message type not for the mediator");
        return;
    }
}

/* Handle every whole message in the receive buffer. */
static void conn_parse(struct mediator *m, struct conn *c)
{
    size_t off = 0;

    while (!c->dead) {
        struct vgpu_msg_hdr hdr;
        size_t frame_len;
        const char *why = NULL;
        enum wire_result r =
            wire_frame(c->in + off, c->in_len - off, &hdr, &frame_len, &why);

        if (r == WIRE_NEED_MORE) {
            break;
        }
        if (r == WIRE_BAD) {
            /* Another protocol version is a host that was half updated,
             * not a hostile peer: say so in words an operator acts on. */
            if (hdr.magic == VGPU_MSG_MAGIC &&
                hdr.version != VGPU_MSG_VERSION) {
                log_warn("dom%u: the device speaks socket protocol version "
                         "%u, this mediator %u: refused (update qemu-dm's "
                         "vgpu-stub and vgpu-mediator together)",
                         c->vm->domid, hdr.version, VGPU_MSG_VERSION);
            }
            conn_fail(m, c, VGPU_ERR_PROTOCOL, why);
            return;
        }
        handle_msg(m, c, &hdr, c->in + off + VGPU_MSG_HDR_SIZE);
        off += frame_len;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
}

static void conn_read(struct mediator *m, struct conn *c)
{
    while (!c->dead) {
        ssize_t n = recv(c->h.fd, c->in + c->in_len, sizeof(c->in) - c->in_len,
                         MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                conn_kill(c, strerror(errno));
            }
            return;
        }
        if (n == 0) {
            conn_kill(c, c->in_len ? "peer closed mid-message (truncated)"
                                   : "peer closed the connection");
            return;
        }
        c->in_len += (size_t)n;
        conn_parse(m, c);
    }
}

static void on_conn(struct loop_handler *h, uint32_t events)
{
    struct mediator *m = h->arg;
    struct conn *c = (struct conn *)h;

    if (c->dead) {
        return;
    }
    if (events & EPOLLIN) {
        conn_read(m, c);
    }
    if (!c->dead && (events & EPOLLOUT)) {
        conn_flush(m, c);
    }
    if (!c->dead && (events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN)) {
        conn_kill(c, "connection hung up");
    }
}

/* The connection stops: its fd closed, its domain's queued work dropped. */
static void conn_retire(struct mediator *m, struct conn *c)
{
    drop_queued(m, c->vm);
    loop_close_fd(m->loop, &c->h);
}

static void conn_free(struct mediator *m, struct conn *c)
{
    conn_retire(m, c);
    free(c);
}

/* domain.c's report of a peer it let in. */
static void on_connected(void *arg, struct vm *vm, int fd)
{
    struct mediator *m = arg;
    struct conn *c;

    c = calloc(1, sizeof(*c));
    if (!c) {
        log_err("dom%u: out of memory for a connection", vm->domid);
        close(fd);
        return;
    }
    /* One device per domain: a new connection means qemu reconnected.
     * An event of the old one may still wait in this epoll batch, so it
     * is retired now and freed by reap(). */
    if (vm->conn) {
        conn_kill(vm->conn, "replaced by a new connection");
        conn_retire(m, vm->conn);
        loop_defer(m->loop, &vm->conn->retired, free, vm->conn);
        vm->conn = NULL;
    }
    c->gen = ++m->next_gen;
    c->h.fd = fd;
    c->h.fn = on_conn;
    c->h.arg = m;
    c->vm = vm;
    if (loop_add(m->loop, &c->h, EPOLLIN)) {
        close(fd);
        free(c);
        vm->conn = NULL;
        return;
    }
    vm->conn = c;
    m->status_dirty = true;
    log_info("dom%u: device connected", vm->domid);
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
    if (vm->conn && vm->conn->hello_done) {
        send_hello_ack(m, vm->conn);
    }
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

    if (vm->conn) {
        conn_kill(vm->conn, "domain going away");
        conn_retire(m, vm->conn);
        loop_defer(m->loop, &vm->conn->retired, free, vm->conn);
        vm->conn = NULL;
    }
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
                vm->id.vm_id,
                vm->conn && !vm->conn->dead ? "connected" : "waiting");
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

/* Free the connections the last epoll batch marked dead (a domain
 * removed has retired its own: domain.c frees the domain). */
static void reap(struct mediator *m)
{
    for (struct vm *vm = domains_first(m->doms); vm; vm = vm->next) {
        if (vm->conn && vm->conn->dead) {
            conn_free(m, vm->conn);
            vm->conn = NULL;
            m->status_dirty = true;
        }
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
    if (!vm || !vm->conn || vm->conn->dead || vm->conn->gen != job->conn_gen) {
        /* Never to another connection: a restarted qemu-dm reuses ids. */
        log_debug("dom%u: request %u finished after the connection that "
                  "sent it left: dropped",
                  bj->domid, job->request_id);
        if (vm) {
            vm->stale++;
        }
    } else {
        if (bj->error) {
            vm->failed++;
        } else {
            vm->served++;
        }
        vm->gpu_ns += bj->exec_ns;
        log_debug("dom%u: served request %u prio %s on GPU %u: %s", vm->domid,
                  job->request_id, vgpu_priority_name(job->entry.prio), bj->gpu,
                  vgpu_error_name(bj->error));
        conn_send(m, vm->conn, VGPU_MSG_RESPONSE, job->request_id, bj->error,
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
    reap(m);
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
    if (domains_open(&m->doms, m->loop, &dcfg, &domain_ops, m) ||
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
    v->connected = vm->conn && !vm->conn->dead;
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
    if (m->doms) {
        reap(m);
        domains_close(m->doms); /* each domain's on_removing, then frees */
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
