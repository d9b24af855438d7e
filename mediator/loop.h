/*
 * loop.h - the mediator's event loop: one epoll set, the handlers of its
 * fds, timers, the stop signals (signalfd), a hook run once after every
 * batch of events, and "free after the batch".
 *
 * One turn of the loop: wait for events (no longer than the earliest
 * timer), run their handlers, run the timers that are due, run the batch
 * end hook, then free what the turn ended.  A timer armed for "now" makes
 * the next wait return at once: that is how a part that stopped short of
 * its budget (a connection with more messages buffered) gets its next
 * turn after every other ready fd has had one.
 *
 * Why "free after the batch": one epoll_wait returns several events, and
 * the handler of an early one may end an object (a connection, a domain)
 * that a later event of the same batch still names through data.ptr.
 * Such objects are handed to loop_defer() and freed only once the batch
 * and its end hook are over, when no event can name them any more.
 */
#ifndef VGPU_LOOP_H
#define VGPU_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_handler;

typedef void (*loop_fn)(struct loop_handler *h, uint32_t events);

/* One watched fd; embed it in the object that owns the fd. */
struct loop_handler {
    int fd; /* -1: not watched */
    loop_fn fn;
    void *arg; /* for fn, as its owner likes */
};

/* Something to free after the batch; embed it in the object. */
struct loop_deferred {
    struct loop_deferred *next;
    void (*fn)(void *arg);
    void *arg;
};

/* A timer; embed it in its owner, cancel it before the owner is freed. */
struct loop_timer {
    struct loop_timer *next;
    uint64_t due_ns; /* CLOCK_MONOTONIC, as now_ns() */
    void (*fn)(void *arg);
    void *arg;
    bool armed;
};

int loop_open(struct loop **lp);
/* Close the epoll set and the signalfd, running what is still deferred. */
void loop_close(struct loop *l);

/* Watch h->fd for events (EPOLLIN...): 0, or -1 (logged). */
int loop_add(struct loop *l, struct loop_handler *h, uint32_t events);
/* Change the events h->fd is watched for. */
void loop_mod(struct loop *l, struct loop_handler *h, uint32_t events);
/* Stop watching h->fd and close it; h->fd becomes -1.  No-op at -1. */
void loop_close_fd(struct loop *l, struct loop_handler *h);
/* Stop watching h->fd, leaving it open (its owner closes it). */
void loop_del(struct loop *l, struct loop_handler *h);

/*
 * Block SIGTERM, SIGINT and SIGHUP and stop the loop when one comes (read
 * from a signalfd); ignore SIGPIPE.  0, or -1 (logged).
 */
int loop_signals(struct loop *l);

/*
 * fn(arg) once, in the first turn at or after due_ns (now_ns() clock),
 * after that turn's event handlers.  Re-arming an armed timer moves it.
 */
void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t due_ns,
                    void (*fn)(void *arg), void *arg);
/* No-op when not armed. */
void loop_timer_cancel(struct loop *l, struct loop_timer *t);

/* fn(arg) once after every batch, before the deferred frees. */
void loop_set_batch_end(struct loop *l, void (*fn)(void *arg), void *arg);

/* fn(arg) after the current batch (or at the next loop_reap()). */
void loop_defer(struct loop *l, struct loop_deferred *d, void (*fn)(void *arg),
                void *arg);
/* Run what is deferred now (outside a batch: set-up and tear-down). */
void loop_reap(struct loop *l);

/* Stop after this batch; failed makes loop_run return -1. */
void loop_stop(struct loop *l, bool failed);
/* Serve until loop_stop: 0 on a clean stop, -1 on failure. */
int loop_run(struct loop *l);

#endif
