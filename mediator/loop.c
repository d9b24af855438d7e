/*
 * loop.c - owns the epoll set, the signalfd and the list of objects to
 * free after the batch (see loop.h for why).  It knows nothing of what
 * the fds are: each handler's fn is called with its own arg.
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
        int n = epoll_wait(l->epfd, evs, LOOP_BATCH, -1);

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
        if (l->batch_end) {
            l->batch_end(l->batch_end_arg);
        }
        loop_reap(l);
    }
    return l->failed ? -1 : 0;
}
