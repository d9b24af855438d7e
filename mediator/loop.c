/*
 * loop.c - owns the epoll set, the timers, the signalfd and the list of
 * objects to free after the batch (see loop.h for why).  It knows nothing
 * of what the fds are: each handler's fn is called with its own arg.
 *
 * Timers are an unsorted list: the daemon has a handful armed at a time
 * (one per paused or backlogged connection at worst, and a few of its
 * own), so a walk per turn costs less than keeping them sorted.
 */
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define LOOP_BATCH 64

struct loop {
    int epfd;
    bool stop;
    bool failed;
    struct loop_handler signal_h;
    struct loop_timer *timers;
    void (*batch_end)(void *arg);
    void *batch_end_arg;
    /* FIFO, so that an object deferred before its owner is freed first. */
    struct loop_deferred *deferred;
    struct loop_deferred **deferred_tail;
};

int loop_open(struct loop **lp)
{
    struct loop *l = calloc(1, sizeof(*l));

    if (!l) {
        return -1;
    }
    l->signal_h.fd = -1;
    l->deferred_tail = &l->deferred;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        log_err("epoll_create1: %s", strerror(errno));
        free(l);
        return -1;
    }
    *lp = l;
    return 0;
}

void loop_close(struct loop *l)
{
    if (!l) {
        return;
    }
    loop_reap(l);
    loop_close_fd(l, &l->signal_h);
    close(l->epfd);
    free(l);
}

int loop_add(struct loop *l, struct loop_handler *h, uint32_t events)
{
    if (ep_add(l->epfd, h->fd, h, events)) {
        log_err("epoll_ctl add fd %d: %s", h->fd, strerror(errno));
        return -1;
    }
    return 0;
}

void loop_mod(struct loop *l, struct loop_handler *h, uint32_t events)
{
    ep_mod(l->epfd, h->fd, h, events);
}

void loop_del(struct loop *l, struct loop_handler *h)
{
    if (h->fd >= 0) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, h->fd, NULL);
    }
}

void loop_close_fd(struct loop *l, struct loop_handler *h)
{
    if (h->fd >= 0) {
        loop_del(l, h);
        close(h->fd);
        h->fd = -1;
    }
}

static void on_signal(struct loop_handler *h, uint32_t events)
{
    struct loop *l = h->arg;
    struct signalfd_siginfo si;

    (void)events;
    while (read(h->fd, &si, sizeof(si)) == sizeof(si)) {
        log_info("caught signal %u, stopping", si.ssi_signo);
        l->stop = true;
    }
}

int loop_signals(struct loop *l)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL)) {
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    l->signal_h.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    l->signal_h.fn = on_signal;
    l->signal_h.arg = l;
    if (l->signal_h.fd < 0) {
        log_err("signalfd: %s", strerror(errno));
        return -1;
    }
    return loop_add(l, &l->signal_h, EPOLLIN);
}

void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t due_ns,
                    void (*fn)(void *arg), void *arg)
{
    t->due_ns = due_ns;
    t->fn = fn;
    t->arg = arg;
    if (!t->armed) {
        t->armed = true;
        t->next = l->timers;
        l->timers = t;
    }
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
    if (!t->armed) {
        return;
    }
    for (struct loop_timer **p = &l->timers; *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    t->armed = false;
    t->next = NULL;
}

/* Milliseconds epoll_wait may sleep: until the earliest timer, or ever. */
static int wait_ms(const struct loop *l)
{
    uint64_t now, first = UINT64_MAX;

    for (const struct loop_timer *t = l->timers; t; t = t->next) {
        if (t->due_ns < first) {
            first = t->due_ns;
        }
    }
    if (first == UINT64_MAX) {
        return -1;
    }
    now = now_ns();
    if (first <= now) {
        return 0;
    }
    /* Round up: waking a little late is fine, early would spin. */
    return (int)((first - now + 999999u) / 1000000u);
}

/*
 * Run the timers due now.  A timer fn may arm or cancel any timer, itself
 * included, so the list is searched again after every call; a timer armed
 * for now by a fn runs in the next turn, not this one (no turn can loop).
 */
static void run_timers(struct loop *l)
{
    uint64_t now = now_ns();
    bool ran;

    do {
        ran = false;
        for (struct loop_timer *t = l->timers; t; t = t->next) {
            if (t->due_ns <= now) {
                loop_timer_cancel(l, t);
                t->fn(t->arg);
                ran = true;
                break;
            }
        }
    } while (ran);
}

void loop_set_batch_end(struct loop *l, void (*fn)(void *arg), void *arg)
{
    l->batch_end = fn;
    l->batch_end_arg = arg;
}

void loop_defer(struct loop *l, struct loop_deferred *d, void (*fn)(void *arg),
                void *arg)
{
    d->next = NULL;
    d->fn = fn;
    d->arg = arg;
    *l->deferred_tail = d;
    l->deferred_tail = &d->next;
}

void loop_reap(struct loop *l)
{
    /* A free may defer more (a domain its connection): run until none. */
    while (l->deferred) {
        struct loop_deferred *d = l->deferred;

        l->deferred = d->next;
        if (!l->deferred) {
            l->deferred_tail = &l->deferred;
        }
        d->fn(d->arg);
    }
}

void loop_stop(struct loop *l, bool failed)
{
    l->stop = true;
    l->failed |= failed;
}

int loop_run(struct loop *l)
{
    struct epoll_event evs[LOOP_BATCH];

    while (!l->stop) {
        int n = epoll_wait(l->epfd, evs, LOOP_BATCH, wait_ms(l));

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            log_err("epoll_wait: %s", strerror(errno));
            return -1;
        }
        for (int i = 0; i < n; i++) {
            struct loop_handler *h = evs[i].data.ptr;

            h->fn(h, evs[i].events);
        }
        run_timers(l);
        if (l->batch_end) {
            l->batch_end(l->batch_end_arg);
        }
        loop_reap(l);
    }
    return l->failed ? -1 : 0;
}
