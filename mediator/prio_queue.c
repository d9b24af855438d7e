/*
 * prio_queue.c - owns the order in which queued requests run (the
 * priority queue of prio_queue.h).
 */
#include "prio_queue.h"

static uint32_t clamp_prio(uint32_t prio)
{
    return prio < VGPU_PRIO_COUNT ? prio : VGPU_PRIO_HIGH;
}

void sched_init(struct sched *s)
{
    for (int i = 0; i < VGPU_PRIO_COUNT; i++) {
        s->level[i].head = s->level[i].tail = NULL;
        s->level[i].count = 0;
    }
    s->next_seq = 0;
    s->starvation_bound = 0;
}

void sched_set_starvation_bound(struct sched *s, uint32_t k)
{
    s->starvation_bound = k;
}

/* Link e into lv after `after` (NULL: at the head). */
static void link_after(struct sched_level *lv, struct sched_entry *after,
                       struct sched_entry *e)
{
    e->prev = after;
    e->next = after ? after->next : lv->head;
    if (e->next) {
        e->next->prev = e;
    } else {
        lv->tail = e;
    }
    if (after) {
        after->next = e;
    } else {
        lv->head = e;
    }
    lv->count++;
}

static void unlink_entry(struct sched_level *lv, struct sched_entry *e)
{
    if (e->prev) {
        e->prev->next = e->next;
    } else {
        lv->head = e->next;
    }
    if (e->next) {
        e->next->prev = e->prev;
    } else {
        lv->tail = e->prev;
    }
    e->prev = e->next = NULL;
    lv->count--;
}

/* Insert by arrival order: the last entry older than e precedes it. */
static void insert_by_seq(struct sched_level *lv, struct sched_entry *e)
{
    struct sched_entry *after = lv->tail;

    while (after && after->seq > e->seq) {
        after = after->prev;
    }
    link_after(lv, after, e);
}

void sched_push(struct sched *s, struct sched_entry *e, uint32_t owner,
                uint32_t prio)
{
    e->owner = owner;
    e->prio = clamp_prio(prio);
    e->seq = s->next_seq++;
    e->bypassed = 0;
    link_after(&s->level[e->prio], s->level[e->prio].tail, e);
}

static bool accept_any(const struct sched_entry *e, void *arg)
{
    (void)e;
    (void)arg;
    return true;
}

/* The oldest acceptable entry that waited past the bound, if any. */
static struct sched_entry *find_due(struct sched *s, sched_accept_fn accept,
                                    void *arg)
{
    struct sched_entry *best = NULL;

    if (!s->starvation_bound) {
        return NULL;
    }
    for (int i = 0; i < VGPU_PRIO_COUNT; i++) {
        for (struct sched_entry *e = s->level[i].head; e; e = e->next) {
            if (e->bypassed >= s->starvation_bound && accept(e, arg) &&
                (!best || e->seq < best->seq)) {
                best = e;
            }
        }
    }
    return best;
}

static struct sched_entry *find_first(struct sched *s, sched_accept_fn accept,
                                      void *arg)
{
    for (int i = VGPU_PRIO_COUNT - 1; i >= 0; i--) {
        for (struct sched_entry *e = s->level[i].head; e; e = e->next) {
            if (accept(e, arg)) {
                return e;
            }
        }
    }
    return NULL;
}

/* e is served: everything of lower priority still waiting was passed. */
static void count_bypass(struct sched *s, const struct sched_entry *e)
{
    if (!s->starvation_bound) {
        return;
    }
    for (uint32_t i = 0; i < e->prio; i++) {
        for (struct sched_entry *w = s->level[i].head; w; w = w->next) {
            w->bypassed++;
        }
    }
}

struct sched_entry *sched_pop_first(struct sched *s, sched_accept_fn accept,
                                    void *arg)
{
    struct sched_entry *e = find_due(s, accept, arg);

    if (!e) {
        e = find_first(s, accept, arg);
    }
    if (e) {
        unlink_entry(&s->level[e->prio], e);
        count_bypass(s, e);
    }
    return e;
}

struct sched_entry *sched_pop_fair(struct sched *s, sched_accept_fn accept,
                                   uint64_t (*vtime)(uint32_t owner, void *arg),
                                   void *arg)
{
    struct sched_entry *best = NULL;
    uint64_t best_vt = 0;

    for (int i = 0; i < VGPU_PRIO_COUNT; i++) {
        for (struct sched_entry *e = s->level[i].head; e; e = e->next) {
            uint64_t vt;

            /* An owner's older entry, when allowed, comes first. */
            if (best && e->owner == best->owner && e->seq > best->seq) {
                continue;
            }
            if (!accept(e, arg)) {
                continue;
            }
            vt = vtime(e->owner, arg);
            if (!best || vt < best_vt ||
                (vt == best_vt && e->seq < best->seq)) {
                best = e;
                best_vt = vt;
            }
        }
    }
    if (best) {
        unlink_entry(&s->level[best->prio], best);
    }
    return best;
}

struct sched_entry *sched_pop(struct sched *s)
{
    return sched_pop_first(s, accept_any, NULL);
}

void sched_remove(struct sched *s, struct sched_entry *e)
{
    unlink_entry(&s->level[e->prio], e);
}

size_t sched_count(const struct sched *s)
{
    size_t n = 0;

    for (int i = 0; i < VGPU_PRIO_COUNT; i++) {
        n += s->level[i].count;
    }
    return n;
}

size_t sched_count_owner(const struct sched *s, uint32_t owner)
{
    size_t n = 0;

    for (int i = 0; i < VGPU_PRIO_COUNT; i++) {
        for (struct sched_entry *e = s->level[i].head; e; e = e->next) {
            n += e->owner == owner;
        }
    }
    return n;
}

void sched_set_owner_priority(struct sched *s, uint32_t owner, uint32_t prio)
{
    prio = clamp_prio(prio);
    for (int i = 0; i < VGPU_PRIO_COUNT; i++) {
        struct sched_entry *e, *next;

        if ((uint32_t)i == prio) {
            continue;
        }
        for (e = s->level[i].head; e; e = next) {
            next = e->next;
            if (e->owner == owner) {
                unlink_entry(&s->level[i], e);
                e->prio = prio;
                insert_by_seq(&s->level[prio], e);
            }
        }
    }
}

void sched_drop_owner(struct sched *s, uint32_t owner,
                      void (*drop)(struct sched_entry *e, void *arg), void *arg)
{
    for (int i = 0; i < VGPU_PRIO_COUNT; i++) {
        struct sched_entry *e, *next;

        for (e = s->level[i].head; e; e = next) {
            next = e->next;
            if (e->owner == owner) {
                unlink_entry(&s->level[i], e);
                drop(e, arg);
            }
        }
    }
}
