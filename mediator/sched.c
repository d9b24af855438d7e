/*
 * sched.c - owns the order in which queued requests run.
 */
#include "sched.h"

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
    link_after(&s->level[e->prio], s->level[e->prio].tail, e);
}

struct sched_entry *sched_pop(struct sched *s)
{
    for (int i = VGPU_PRIO_COUNT - 1; i >= 0; i--) {
        struct sched_entry *e = s->level[i].head;

        if (e) {
            unlink_entry(&s->level[i], e);
            return e;
        }
    }
    return NULL;
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
                      void (*drop)(struct sched_entry *e, void *arg),
                      void *arg)
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
