/*
 * xsid.c - owns the xenstore connection (libxenstore through
 * common/xs-dl.c), the thread that alone calls libxenstore, its watches
 * (one per domain's vgpu-mediator folder, and @releaseDomain), the
 * detection of a lost or restarted xenstored, and the delivery of what it
 * learns (identities, names, released domains) to the loop's thread,
 * which keeps them in each struct vm and reports changes upward (struct
 * xsid_ops).  It never calls the parts that act on them.
 *
 * Why a thread: every libxenstore call may wait without bound (a
 * xenstored that is stopped, or busy, answers nothing and closes nothing),
 * and the loop must never wait (the daemon's core rule).  So the loop only
 * queues requests (a domain added or going) and takes results; the thread
 * makes the calls.  While xenstore is away, domains already assigned keep
 * being served from their cached identity; new or changed ones wait.
 *
 * Why a probe: libxenstore's pollable fd is its watch pipe, which does not
 * hang up when the connection to xenstored dies (its reader thread just
 * ends), so a restarted xenstored would go unnoticed.  The thread lists
 * "/" after every XSID_PROBE_MS without traffic; a call that fails with
 * anything but an answer of xenstored (identity_xs_errno_is_answer) means
 * the connection is lost: the handle is closed and reopened, every watch
 * set again and every domain's identity read again.
 *
 * The thread and the loop share only the queues below, under mu, and
 * call_since_ns (atomic): the start of the libxenstore call in progress,
 * which the loop's watchdog reads to log an outage once, and its end with
 * the duration.
 */
#include "xsid.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <xenstore.h>

#include "log.h"
#include "util.h"
#include "vgpu_protocol.h"

#define XS_TOKEN_PREFIX "vgpu-dom"
#define XS_TOKEN_RELEASE "vgpu-release"

/* The thread lists "/" after this long without a call (lost connection). */
#define XSID_PROBE_MS 1000
/* While disconnected, the thread tries again this often. */
#define XSID_RETRY_MS 500
/* A call that has not returned after this long is an outage (logged). */
#define XSID_STALL_MS 2000
/* The loop's watchdog looks this often while a call is in progress. */
#define XSID_WATCHDOG_MS 500

enum xs_req_kind { REQ_ADD, REQ_REMOVE };

struct xs_req {
    struct xs_req *next;
    enum xs_req_kind kind;
    uint32_t domid;
    uint64_t cookie;
};

enum xs_res_kind { RES_IDENTITY, RES_RELEASED };

struct xs_res {
    struct xs_res *next;
    enum xs_res_kind kind;
    uint32_t domid;
    uint64_t cookie;
    struct vgpu_identity id;
    const char *why; /* static string: unassigned reason */
    bool has_name;
    char name[64];
};

/* A domain as the thread knows it. */
struct xs_dom {
    struct xs_dom *next;
    uint32_t domid;
    uint64_t cookie;
    bool watching;
};

struct xsid {
    /* The loop's side. */
    struct loop *loop;
    struct domains *doms;
    const struct xsid_ops *ops;
    void *arg;
    struct loop_handler result_h; /* eventfd: results to take */
    struct loop_timer watchdog;
    uint64_t next_cookie;
    bool stall_logged;
    uint64_t stall_started_ns;

    /* Shared, under mu. */
    pthread_mutex_t mu;
    struct xs_req *reqs, **reqs_tail;
    struct xs_res *results, **results_tail;
    bool stop;
    int wake_fd; /* eventfd: the thread has requests (or must stop) */
    uint64_t call_since_ns; /* atomic; 0 when no call is in progress */

    /* The thread's side. */
    pthread_t thread;
    bool thread_started;
    bool thread_done; /* atomic: it returned */
    struct xs_handle *xs;
    struct xs_dom *tdoms;
    uint64_t down_since_ns; /* 0 while connected or never connected */
    bool ever_connected;
};

/* ---------------------------------------------------------------------- */
/* the thread                                                              */
/* ---------------------------------------------------------------------- */

static void call_begin(struct xsid *x)
{
    __atomic_store_n(&x->call_since_ns, now_ns(), __ATOMIC_RELEASE);
}

static void call_end(struct xsid *x)
{
    __atomic_store_n(&x->call_since_ns, 0, __ATOMIC_RELEASE);
}

static void post(struct xsid *x, struct xs_res *r)
{
    pthread_mutex_lock(&x->mu);
    r->next = NULL;
    *x->results_tail = r;
    x->results_tail = &r->next;
    pthread_mutex_unlock(&x->mu);
    efd_signal(x->result_h.fd);
}

static void lost(struct xsid *x, const char *what, int err)
{
    log_err("lost the xenstore connection (%s: %s); reconnecting; "
            "assigned domains are still served",
            what, strerror(err));
    call_begin(x);
    xs_close(x->xs);
    call_end(x);
    x->xs = NULL;
    x->down_since_ns = now_ns();
    for (struct xs_dom *d = x->tdoms; d; d = d->next) {
        d->watching = false;
    }
}

/* Is the connection alive?  Lists "/", which always exists. */
static bool probe(struct xsid *x)
{
    unsigned int n = 0;
    char **v;

    call_begin(x);
    v = xs_directory(x->xs, XBT_NULL, "/", &n);
    call_end(x);
    if (!v) {
        lost(x, "probe", errno);
        return false;
    }
    free(v);
    return true;
}

static void watch_dom(struct xsid *x, struct xs_dom *d)
{
    char path[64], token[32];

    if (!x->xs || d->watching) {
        return;
    }
    snprintf(path, sizeof(path), VGPU_XS_DOMAIN_FMT, d->domid);
    snprintf(token, sizeof(token), XS_TOKEN_PREFIX "%u", d->domid);
    call_begin(x);
    d->watching = xs_watch(x->xs, path, token);
    call_end(x);
    if (!d->watching) {
        log_warn("dom%u: xenstore watch on %s failed: %s", d->domid, path,
                 strerror(errno));
    }
}

static void unwatch_dom(struct xsid *x, struct xs_dom *d)
{
    char path[64], token[32];

    if (!x->xs || !d->watching) {
        return;
    }
    snprintf(path, sizeof(path), VGPU_XS_DOMAIN_FMT, d->domid);
    snprintf(token, sizeof(token), XS_TOKEN_PREFIX "%u", d->domid);
    call_begin(x);
    xs_unwatch(x->xs, path, token);
    call_end(x);
    d->watching = false;
}

/* Read d's identity (and name) and hand it to the loop.  Nothing is handed
 * when the connection failed: the cached identity stays until a read
 * succeeds. */
static void read_dom(struct xsid *x, struct xs_dom *d, bool with_name)
{
    struct xs_res *r;
    int rc;

    if (!x->xs) {
        return;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        log_err("dom%u: out of memory reading its identity", d->domid);
        return;
    }
    r->kind = RES_IDENTITY;
    r->domid = d->domid;
    r->cookie = d->cookie;
    call_begin(x);
    rc = identity_read(x->xs, d->domid, &r->id, &r->why);
    if (rc != -2 && with_name) {
        identity_read_name(x->xs, d->domid, r->name, sizeof(r->name));
        r->has_name = true;
    }
    call_end(x);
    if (rc == -2) {
        free(r);
        lost(x, "reading an identity", errno);
        return;
    }
    post(x, r);
}

static struct xs_dom *find_tdom(struct xsid *x, uint32_t domid)
{
    for (struct xs_dom *d = x->tdoms; d; d = d->next) {
        if (d->domid == domid) {
            return d;
        }
    }
    return NULL;
}

/* @releaseDomain names no domain: ask about each one known. */
static void check_released(struct xsid *x)
{
    for (struct xs_dom *d = x->tdoms; d && x->xs; d = d->next) {
        bool alive;

        call_begin(x);
        alive = xs_is_domain_introduced(x->xs, d->domid);
        call_end(x);
        /* false is also what a failed call returns: make sure it was an
         * answer before the domain is declared gone. */
        if (!alive && probe(x)) {
            struct xs_res *r = calloc(1, sizeof(*r));

            if (r) {
                r->kind = RES_RELEASED;
                r->domid = d->domid;
                r->cookie = d->cookie;
                post(x, r);
            }
        }
    }
}

static void try_connect(struct xsid *x)
{
    call_begin(x);
    x->xs = xs_open(0);
    call_end(x);
    if (!x->xs) {
        if (!x->down_since_ns) {
            x->down_since_ns = now_ns();
            log_warn("xenstore unreachable (%s); domains stay unassigned "
                     "until it answers; retrying",
                     strerror(errno));
        }
        return;
    }
    if (x->down_since_ns && x->ever_connected) {
        log_info("connected to xenstore again after %.1f s; watching and "
                 "reading every domain again",
                 (double)(now_ns() - x->down_since_ns) / 1e9);
    } else if (x->down_since_ns) {
        log_info("connected to xenstore after %.1f s",
                 (double)(now_ns() - x->down_since_ns) / 1e9);
    } else {
        log_info("connected to xenstore");
    }
    x->down_since_ns = 0;
    x->ever_connected = true;
    /* A domain that dies is forgotten even if its folder lingers. */
    call_begin(x);
    if (!xs_watch(x->xs, "@releaseDomain", XS_TOKEN_RELEASE)) {
        log_warn("xenstore watch on @releaseDomain failed: %s",
                 strerror(errno));
    }
    call_end(x);
    /* A watch fires once when set, but a restarted xenstored may hold
     * other values than before: read each domain now as well. */
    for (struct xs_dom *d = x->tdoms; d && x->xs; d = d->next) {
        watch_dom(x, d);
        read_dom(x, d, true);
    }
    if (x->xs) {
        check_released(x);
    }
}

/* Take the loop's requests; false when the thread must stop. */
static bool take_requests(struct xsid *x)
{
    struct xs_req *q;
    bool stop;

    efd_drain(x->wake_fd);
    pthread_mutex_lock(&x->mu);
    q = x->reqs;
    x->reqs = NULL;
    x->reqs_tail = &x->reqs;
    stop = x->stop;
    pthread_mutex_unlock(&x->mu);
    while (q) {
        struct xs_req *next = q->next;
        struct xs_dom *d = find_tdom(x, q->domid);

        if (q->kind == REQ_ADD) {
            if (!d) {
                d = calloc(1, sizeof(*d));
                if (d) {
                    d->domid = q->domid;
                    d->next = x->tdoms;
                    x->tdoms = d;
                }
            }
            if (d) {
                unwatch_dom(x, d); /* a new life of the domid */
                d->cookie = q->cookie;
                watch_dom(x, d);
                read_dom(x, d, true);
            }
        } else if (d && d->cookie == q->cookie) {
            unwatch_dom(x, d);
            for (struct xs_dom **p = &x->tdoms; *p; p = &(*p)->next) {
                if (*p == d) {
                    *p = d->next;
                    break;
                }
            }
            free(d);
        }
        free(q);
        q = next;
    }
    return !stop;
}

static void take_watches(struct xsid *x)
{
    char **vec;
    unsigned int domid;

    while (x->xs && (vec = xs_check_watch(x->xs))) {
        bool released = strcmp(vec[XS_WATCH_TOKEN], XS_TOKEN_RELEASE) == 0;
        struct xs_dom *d = NULL;

        if (sscanf(vec[XS_WATCH_TOKEN], XS_TOKEN_PREFIX "%u", &domid) == 1) {
            d = find_tdom(x, domid);
        }
        free(vec);
        if (released) {
            check_released(x);
        } else if (d) {
            read_dom(x, d, false);
        }
    }
}

static void *xsid_thread(void *arg)
{
    struct xsid *x = arg;

    for (;;) {
        struct pollfd p[2] = {{.fd = x->wake_fd, .events = POLLIN}};
        int n = 1, rc;

        if (!x->xs) {
            try_connect(x);
        }
        if (x->xs) {
            p[1].fd = xs_fileno(x->xs);
            p[1].events = POLLIN;
            n = p[1].fd >= 0 ? 2 : 1;
        }
        rc = poll(p, (nfds_t)n, x->xs ? XSID_PROBE_MS : XSID_RETRY_MS);
        if (!take_requests(x)) {
            break;
        }
        if (x->xs && n == 2 && (p[1].revents & POLLIN)) {
            take_watches(x);
        }
        if (rc == 0 && x->xs) {
            probe(x);
        }
    }
    if (x->xs) {
        xs_close(x->xs);
        x->xs = NULL;
    }
    while (x->tdoms) {
        struct xs_dom *d = x->tdoms;

        x->tdoms = d->next;
        free(d);
    }
    __atomic_store_n(&x->thread_done, true, __ATOMIC_RELEASE);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* the loop's side                                                         */
/* ---------------------------------------------------------------------- */

static void request(struct xsid *x, enum xs_req_kind kind, struct vm *vm)
{
    struct xs_req *q = calloc(1, sizeof(*q));

    if (!q) {
        log_err("dom%u: out of memory for a xenstore request", vm->domid);
        return;
    }
    q->kind = kind;
    q->domid = vm->domid;
    q->cookie = vm->xs_cookie;
    pthread_mutex_lock(&x->mu);
    *x->reqs_tail = q;
    x->reqs_tail = &q->next;
    pthread_mutex_unlock(&x->mu);
    efd_signal(x->wake_fd);
}

static bool identity_equal(const struct vgpu_identity *a,
                           const struct vgpu_identity *b)
{
    return a->assigned == b->assigned && strcmp(a->pool, b->pool) == 0 &&
           a->priority == b->priority && a->vm_id == b->vm_id &&
           a->quota_bytes == b->quota_bytes;
}

static void apply_identity(struct xsid *x, struct vm *vm,
                           const struct xs_res *r)
{
    struct vgpu_identity old;

    bool first = !vm->id_known;

    if (r->has_name) {
        snprintf(vm->name, sizeof(vm->name), "%s", r->name);
    }
    vm->id_known = true;
    /* The first answer is news even when it is "unassigned": a device
     * waiting for it is answered now. */
    if (!first && identity_equal(&r->id, &vm->id) &&
        (r->id.assigned || vm->id_problem == r->why)) {
        return;
    }
    if (r->id.assigned) {
        log_info("dom%u: pool %s priority %s vm-id %u", vm->domid, r->id.pool,
                 vgpu_priority_name(r->id.priority), r->id.vm_id);
        vm->id_problem = NULL;
    } else {
        log_warn("dom%u: not assigned: %s", vm->domid, r->why);
        vm->id_problem = r->why;
    }
    old = vm->id;
    vm->id = r->id;
    x->ops->changed(x->arg, vm, &old);
}

static void on_results(struct loop_handler *h, uint32_t events)
{
    struct xsid *x = h->arg;
    struct xs_res *r;

    (void)events;
    efd_drain(h->fd);
    pthread_mutex_lock(&x->mu);
    r = x->results;
    x->results = NULL;
    x->results_tail = &x->results;
    pthread_mutex_unlock(&x->mu);
    while (r) {
        struct xs_res *next = r->next;
        struct vm *vm = domains_find(x->doms, r->domid);

        /* A result for an earlier life of the domid is not this one's. */
        if (vm && !vm->dead && vm->xs_cookie == r->cookie) {
            if (r->kind == RES_IDENTITY) {
                apply_identity(x, vm, r);
            } else {
                log_info("dom%u: domain released", vm->domid);
                x->ops->released(x->arg, vm);
            }
        }
        free(r);
        r = next;
    }
}

/* Log a xenstore call that does not return once, and its end once. */
static void on_watchdog(void *arg)
{
    struct xsid *x = arg;
    uint64_t since = __atomic_load_n(&x->call_since_ns, __ATOMIC_ACQUIRE);
    uint64_t now = now_ns();

    if (since && now - since >= (uint64_t)XSID_STALL_MS * 1000000u) {
        if (!x->stall_logged) {
            x->stall_logged = true;
            x->stall_started_ns = since;
            log_err("xenstore has not answered for %u ms; assigned domains "
                    "are still served, new or changed ones wait",
                    XSID_STALL_MS);
        }
    } else if (x->stall_logged && (!since || since != x->stall_started_ns)) {
        x->stall_logged = false;
        log_info("xenstore answered again after %.1f s",
                 (double)(now - x->stall_started_ns) / 1e9);
    }
    loop_timer_arm(x->loop, &x->watchdog,
                   now + (uint64_t)XSID_WATCHDOG_MS * 1000000u, on_watchdog, x);
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
    x->reqs_tail = &x->reqs;
    x->results_tail = &x->results;
    pthread_mutex_init(&x->mu, NULL);
    x->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    x->result_h.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    x->result_h.fn = on_results;
    x->result_h.arg = x;
    *xp = x;
    if (x->wake_fd < 0 || x->result_h.fd < 0) {
        log_err("xenstore: eventfd: %s", strerror(errno));
        return -1;
    }
    if (loop_add(loop, &x->result_h, EPOLLIN)) {
        return -1;
    }
    if (pthread_create(&x->thread, NULL, xsid_thread, x)) {
        log_err("xenstore: cannot start its thread");
        return -1;
    }
    x->thread_started = true;
    on_watchdog(x);
    return 0;
}

void xsid_domain_added(struct xsid *x, struct vm *vm)
{
    vm->xs_cookie = ++x->next_cookie;
    vm->id_problem = NULL;
    vm->id_known = false;
    request(x, REQ_ADD, vm);
}

void xsid_domain_removing(struct xsid *x, struct vm *vm)
{
    request(x, REQ_REMOVE, vm);
}

void xsid_close(struct xsid *x)
{
    struct xs_res *r;

    if (!x) {
        return;
    }
    loop_timer_cancel(x->loop, &x->watchdog);
    if (x->thread_started) {
        pthread_mutex_lock(&x->mu);
        x->stop = true;
        pthread_mutex_unlock(&x->mu);
        efd_signal(x->wake_fd);
        /* A thread stuck in a call to a xenstored that does not answer
         * must not keep the daemon from stopping: wait a bounded time,
         * then leave it (and x) to the process's exit. */
        for (int i = 0; i < 200; i++) {
            if (__atomic_load_n(&x->thread_done, __ATOMIC_ACQUIRE)) {
                break;
            }
            usleep(10000);
        }
        if (!__atomic_load_n(&x->thread_done, __ATOMIC_ACQUIRE)) {
            log_warn("xenstore does not answer: stopping without waiting "
                     "for it");
            pthread_detach(x->thread);
            loop_del(x->loop, &x->result_h);
            return;
        }
        pthread_join(x->thread, NULL);
    }
    loop_close_fd(x->loop, &x->result_h);
    if (x->wake_fd >= 0) {
        close(x->wake_fd);
    }
    while (x->reqs) {
        struct xs_req *q = x->reqs;

        x->reqs = q->next;
        free(q);
    }
    for (r = x->results; r;) {
        struct xs_res *next = r->next;

        free(r);
        r = next;
    }
    pthread_mutex_destroy(&x->mu);
    free(x);
}
