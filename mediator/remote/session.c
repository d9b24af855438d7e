/*
 * remote/session.c - owns the handle table and the allocation list of one
 * VM's v3 session (remote/session.h).
 */
#include "session.h"

#include <stdlib.h>
#include <string.h>

struct slot {
    struct rs_object obj;
    uint16_t gen; /* bumped when the slot is freed */
    bool live;
    uint32_t next_free; /* slot index + 1 of the next free one, 0: none */
};

struct alloc {
    uint64_t dptr, bytes;
    uint64_t ctx, mod;
    bool owned;
};

struct rs_session {
    struct slot *slots;
    uint32_t nslots, cap;
    uint32_t free_head; /* index + 1, 0: none */
    unsigned live[RS_KIND_COUNT];
    struct alloc *allocs; /* sorted by dptr, never overlapping */
    uint32_t nallocs, alloc_cap;
    uint64_t used; /* owned bytes; atomic, read from other threads */
};

#define H_KIND_SHIFT 56
#define H_GEN_SHIFT 32

static uint64_t make_handle(enum rs_kind kind, uint16_t gen, uint32_t index)
{
    return ((uint64_t)kind << H_KIND_SHIFT) | ((uint64_t)gen << H_GEN_SHIFT) |
           (uint64_t)(index + 1);
}

struct rs_session *rs_session_new(void)
{
    return calloc(1, sizeof(struct rs_session));
}

void rs_session_free(struct rs_session *s)
{
    if (!s) {
        return;
    }
    for (uint32_t i = 0; i < s->nslots; i++) {
        if (s->slots[i].live) {
            free(s->slots[i].obj.extra);
        }
    }
    free(s->slots);
    free(s->allocs);
    free(s);
}

uint64_t rs_add(struct rs_session *s, enum rs_kind kind, uint64_t ctx,
                struct rs_object **obj)
{
    uint32_t index;
    struct slot *sl;

    if (kind <= 0 || kind >= RS_KIND_COUNT) {
        return 0;
    }
    if (s->free_head) {
        index = s->free_head - 1;
        s->free_head = s->slots[index].next_free;
    } else {
        if (s->nslots >= RS_MAX_OBJECTS) {
            return 0;
        }
        if (s->nslots == s->cap) {
            uint32_t cap = s->cap ? s->cap * 2 : 64;
            struct slot *p = realloc(s->slots, cap * sizeof(*p));

            if (!p) {
                return 0;
            }
            memset(p + s->cap, 0, (cap - s->cap) * sizeof(*p));
            s->slots = p;
            s->cap = cap;
        }
        index = s->nslots++;
    }
    sl = &s->slots[index];
    memset(&sl->obj, 0, sizeof(sl->obj));
    sl->obj.kind = kind;
    sl->obj.ctx = ctx;
    sl->live = true;
    sl->next_free = 0;
    s->live[kind]++;
    if (obj) {
        *obj = &sl->obj;
    }
    return make_handle(kind, sl->gen, index);
}

static struct slot *find(const struct rs_session *s, uint64_t h)
{
    uint32_t low = (uint32_t)(h & 0xffffffffu);
    uint16_t gen = (uint16_t)(h >> H_GEN_SHIFT);
    uint8_t kind = (uint8_t)(h >> H_KIND_SHIFT);
    struct slot *sl;

    if (low == 0 || low > s->nslots || ((h >> 48) & 0xff) != 0) {
        return NULL;
    }
    sl = &s->slots[low - 1];
    if (!sl->live || sl->gen != gen || (uint8_t)sl->obj.kind != kind) {
        return NULL;
    }
    return sl;
}

struct rs_object *rs_get(struct rs_session *s, enum rs_kind kind, uint64_t h)
{
    struct slot *sl = find(s, h);

    return sl && sl->obj.kind == kind ? &sl->obj : NULL;
}

void rs_remove(struct rs_session *s, uint64_t h)
{
    struct slot *sl = find(s, h);
    uint32_t index;

    if (!sl) {
        return;
    }
    index = (uint32_t)(sl - s->slots);
    s->live[sl->obj.kind]--;
    free(sl->obj.extra);
    memset(&sl->obj, 0, sizeof(sl->obj));
    sl->live = false;
    sl->gen++;
    sl->next_free = s->free_head;
    s->free_head = index + 1;
}

void rs_each(struct rs_session *s, uint64_t ctx, enum rs_kind kind,
             void (*fn)(void *arg, uint64_t h, struct rs_object *o), void *arg)
{
    for (uint32_t i = 0; i < s->nslots; i++) {
        struct slot *sl = &s->slots[i];

        if (!sl->live || (ctx && sl->obj.ctx != ctx) ||
            (kind && sl->obj.kind != kind)) {
            continue;
        }
        fn(arg, make_handle(sl->obj.kind, sl->gen, i), &sl->obj);
    }
}

unsigned rs_count(const struct rs_session *s, enum rs_kind kind)
{
    return kind > 0 && kind < RS_KIND_COUNT ? s->live[kind] : 0;
}

/* ---------------------------------------------------------------------- */
/* allocations                                                             */
/* ---------------------------------------------------------------------- */

/* Index of the first allocation whose dptr is > p. */
static uint32_t upper(const struct rs_session *s, uint64_t p)
{
    uint32_t lo = 0, hi = s->nallocs;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (s->allocs[mid].dptr <= p) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

int rs_alloc_add(struct rs_session *s, uint64_t ctx, uint64_t mod,
                 uint64_t dptr, uint64_t bytes, bool owned)
{
    uint32_t at;

    if (bytes == 0 || dptr + bytes < dptr || s->nallocs >= RS_MAX_ALLOCS) {
        return -1;
    }
    at = upper(s, dptr);
    /* No overlap with the one before or the one after. */
    if (at > 0 && s->allocs[at - 1].dptr + s->allocs[at - 1].bytes > dptr) {
        return -1;
    }
    if (at < s->nallocs && dptr + bytes > s->allocs[at].dptr) {
        return -1;
    }
    if (s->nallocs == s->alloc_cap) {
        uint32_t cap = s->alloc_cap ? s->alloc_cap * 2 : 64;
        struct alloc *p = realloc(s->allocs, cap * sizeof(*p));

        if (!p) {
            return -1;
        }
        s->allocs = p;
        s->alloc_cap = cap;
    }
    memmove(&s->allocs[at + 1], &s->allocs[at],
            (s->nallocs - at) * sizeof(s->allocs[0]));
    s->allocs[at] = (struct alloc){dptr, bytes, ctx, mod, owned};
    s->nallocs++;
    if (owned) {
        __atomic_add_fetch(&s->used, bytes, __ATOMIC_RELAXED);
    }
    return 0;
}

bool rs_range_ok(const struct rs_session *s, uint64_t dptr, uint64_t bytes)
{
    uint32_t at = upper(s, dptr);
    const struct alloc *a;

    if (at == 0 || dptr + bytes < dptr) {
        return false;
    }
    a = &s->allocs[at - 1];
    /* dptr >= a->dptr here; the range must end within it. */
    return dptr - a->dptr < a->bytes && bytes <= a->bytes - (dptr - a->dptr);
}

static void alloc_drop(struct rs_session *s, uint32_t at)
{
    if (s->allocs[at].owned) {
        __atomic_sub_fetch(&s->used, s->allocs[at].bytes, __ATOMIC_RELAXED);
    }
    memmove(&s->allocs[at], &s->allocs[at + 1],
            (s->nallocs - at - 1) * sizeof(s->allocs[0]));
    s->nallocs--;
}

int rs_alloc_remove(struct rs_session *s, uint64_t ctx, uint64_t dptr,
                    uint64_t *bytes)
{
    uint32_t at = upper(s, dptr);
    struct alloc *a;

    if (at == 0) {
        return -1;
    }
    a = &s->allocs[at - 1];
    if (a->dptr != dptr || !a->owned || a->ctx != ctx) {
        return -1;
    }
    *bytes = a->bytes;
    alloc_drop(s, at - 1);
    return 0;
}

void rs_alloc_each_remove(struct rs_session *s, uint64_t ctx, uint64_t mod,
                          void (*fn)(void *arg, uint64_t dptr, bool owned),
                          void *arg)
{
    uint32_t i = 0;

    while (i < s->nallocs) {
        struct alloc a = s->allocs[i];

        if ((mod && a.mod != mod) || (ctx && a.ctx != ctx)) {
            i++;
            continue;
        }
        fn(arg, a.dptr, a.owned);
        alloc_drop(s, i);
    }
}

uint64_t rs_mem_used(const struct rs_session *s)
{
    return __atomic_load_n(&s->used, __ATOMIC_RELAXED);
}
