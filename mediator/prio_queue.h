/*
 * prio_queue.h - the mediator's priority queue of requests: strict priority
 * across levels (high > medium > low), FIFO within a level.  (Not named
 * sched.h, which would hide the system <sched.h> from <pthread.h> for any
 * file built with -I of this folder; its names keep the sched_ prefix.)
 *
 * Entries are intrusive (embedded in the caller's job struct), so the
 * queue never allocates and cannot fail.  An entry's `owner` is the domid
 * it belongs to, used to drop or re-prioritise one VM's work at once.
 *
 * Optional anti-starvation bound K (off when 0, the documented strict
 * order): an entry that has seen K entries of higher priority served while
 * it waited is served next, before anything of higher priority.
 */
#ifndef VGPU_PRIO_QUEUE_H
#define VGPU_PRIO_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu_protocol.h"

struct sched_entry {
    struct sched_entry *prev, *next;
    uint32_t owner;
    uint32_t prio;     /* enum vgpu_priority */
    uint64_t seq;      /* arrival order, assigned by sched_push */
    uint32_t bypassed; /* higher-priority entries served while waiting */
};

struct sched_level {
    struct sched_entry *head, *tail;
    size_t count;
};

struct sched {
    struct sched_level level[VGPU_PRIO_COUNT];
    uint64_t next_seq;
    uint32_t starvation_bound; /* K; 0: strict priority */
};

/* May this entry run now?  (e.g. has its pool an idle GPU) */
typedef bool (*sched_accept_fn)(const struct sched_entry *e, void *arg);

void sched_init(struct sched *s);
void sched_set_starvation_bound(struct sched *s, uint32_t k);
/* Queue e at the tail of level prio (clamped to a valid level). */
void sched_push(struct sched *s, struct sched_entry *e, uint32_t owner,
                uint32_t prio);
/* Take the oldest entry of the highest non-empty level, or NULL. */
struct sched_entry *sched_pop(struct sched *s);
/*
 * Take the entry that should run next among those accept() allows: the
 * oldest entry that reached the starvation bound, else the oldest of the
 * highest level.  NULL when accept() allows none.
 */
struct sched_entry *sched_pop_first(struct sched *s, sched_accept_fn accept,
                                    void *arg);
/*
 * The share modes' choice (equal or fixed share of GPU time, dispatch.c):
 * among the entries accept() allows, the one whose owner has the least
 * virtual time (vtime(owner, arg): GPU time used, normalised), the oldest
 * on a tie; priorities and the starvation bound do not enter.  NULL when
 * accept() allows none.
 */
struct sched_entry *sched_pop_fair(struct sched *s, sched_accept_fn accept,
                                   uint64_t (*vtime)(uint32_t owner, void *arg),
                                   void *arg);
/* Unlink an entry that is queued. */
void sched_remove(struct sched *s, struct sched_entry *e);
size_t sched_count(const struct sched *s);
size_t sched_count_owner(const struct sched *s, uint32_t owner);
/*
 * Move every queued entry of owner to level prio, keeping arrival order
 * inside the new level (entries are placed by seq among the others).
 */
void sched_set_owner_priority(struct sched *s, uint32_t owner, uint32_t prio);
/* Unlink every entry of owner, calling drop(e, arg) on each. */
void sched_drop_owner(struct sched *s, uint32_t owner,
                      void (*drop)(struct sched_entry *e, void *arg),
                      void *arg);

#endif
