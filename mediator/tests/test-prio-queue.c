/*
 * test-prio-queue.c - unit tests pinning the queue's order: strict priority
 * across levels, FIFO within a level, on deterministic timelines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "prio_queue.h"

struct item {
    struct sched_entry e; /* first */
    int id;
};

static int pop_id(struct sched *s)
{
    struct sched_entry *e = sched_pop(s);

    return e ? ((struct item *)e)->id : -1;
}

static void test_empty(void **state)
{
    struct sched s;

    (void)state;
    sched_init(&s);
    assert_null(sched_pop(&s));
    assert_int_equal(sched_count(&s), 0);
}

static void test_strict_priority_then_fifo(void **state)
{
    /* Arrival order: L1 M1 H1 L2 M2 H2 */
    static const struct {
        uint32_t prio;
        int id;
    } arrivals[] = {
        {VGPU_PRIO_LOW, 1}, {VGPU_PRIO_MEDIUM, 2}, {VGPU_PRIO_HIGH, 3},
        {VGPU_PRIO_LOW, 4}, {VGPU_PRIO_MEDIUM, 5}, {VGPU_PRIO_HIGH, 6},
    };
    const int want[] = {3, 6, 2, 5, 1, 4};
    struct item items[6];
    struct sched s;

    (void)state;
    sched_init(&s);
    for (int i = 0; i < 6; i++) {
        items[i].id = arrivals[i].id;
        sched_push(&s, &items[i].e, 10 + (uint32_t)i, arrivals[i].prio);
    }
    assert_int_equal(sched_count(&s), 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(pop_id(&s), want[i]);
    }
    assert_int_equal(pop_id(&s), -1);
}

static void test_interleaved_timeline(void **state)
{
    /* A high request arriving while lows wait is served before them. */
    struct item l1 = {.id = 1}, l2 = {.id = 2}, h = {.id = 3}, m = {.id = 4};
    struct sched s;

    (void)state;
    sched_init(&s);
    sched_push(&s, &l1.e, 1, VGPU_PRIO_LOW);
    sched_push(&s, &l2.e, 2, VGPU_PRIO_LOW);
    assert_int_equal(pop_id(&s), 1);
    sched_push(&s, &h.e, 3, VGPU_PRIO_HIGH);
    sched_push(&s, &m.e, 4, VGPU_PRIO_MEDIUM);
    assert_int_equal(pop_id(&s), 3);
    assert_int_equal(pop_id(&s), 4);
    assert_int_equal(pop_id(&s), 2);
}

static void test_invalid_priority_is_clamped(void **state)
{
    struct item a = {.id = 1}, b = {.id = 2};
    struct sched s;

    (void)state;
    sched_init(&s);
    sched_push(&s, &a.e, 1, VGPU_PRIO_MEDIUM);
    sched_push(&s, &b.e, 2, 77);
    assert_int_equal(b.e.prio, VGPU_PRIO_HIGH);
    assert_int_equal(pop_id(&s), 2);
}

static void test_remove_and_count_owner(void **state)
{
    struct item it[4];
    struct sched s;

    (void)state;
    sched_init(&s);
    for (int i = 0; i < 4; i++) {
        it[i].id = i;
        sched_push(&s, &it[i].e, i % 2 ? 7 : 8, VGPU_PRIO_MEDIUM);
    }
    assert_int_equal(sched_count_owner(&s, 7), 2);
    assert_int_equal(sched_count_owner(&s, 8), 2);
    sched_remove(&s, &it[2].e);
    assert_int_equal(sched_count_owner(&s, 8), 1);
    assert_int_equal(pop_id(&s), 0);
    assert_int_equal(pop_id(&s), 1);
    assert_int_equal(pop_id(&s), 3);
    assert_int_equal(pop_id(&s), -1);
}

static int dropped;

static void count_drop(struct sched_entry *e, void *arg)
{
    (void)e;
    (void)arg;
    dropped++;
}

static void test_drop_owner_leaves_others(void **state)
{
    struct item it[6];
    struct sched s;

    (void)state;
    sched_init(&s);
    for (int i = 0; i < 6; i++) {
        it[i].id = i;
        sched_push(&s, &it[i].e, i < 3 ? 1 : 2, (uint32_t)i % 3);
    }
    dropped = 0;
    sched_drop_owner(&s, 1, count_drop, NULL);
    assert_int_equal(dropped, 3);
    assert_int_equal(sched_count(&s), 3);
    assert_int_equal(pop_id(&s), 5);
    assert_int_equal(pop_id(&s), 4);
    assert_int_equal(pop_id(&s), 3);
}

static void test_priority_change_keeps_arrival_order(void **state)
{
    /*
     * VM 1 (low) queues a, then VM 2 (medium) queues b, then VM 1 queues
     * c.  VM 1 is raised to medium: its queued work joins the medium
     * level in arrival order: a, b, c.
     */
    struct item a = {.id = 1}, b = {.id = 2}, c = {.id = 3}, h = {.id = 4};
    struct sched s;

    (void)state;
    sched_init(&s);
    sched_push(&s, &a.e, 1, VGPU_PRIO_LOW);
    sched_push(&s, &b.e, 2, VGPU_PRIO_MEDIUM);
    sched_push(&s, &c.e, 1, VGPU_PRIO_LOW);
    sched_push(&s, &h.e, 3, VGPU_PRIO_HIGH);
    sched_set_owner_priority(&s, 1, VGPU_PRIO_MEDIUM);
    assert_int_equal(pop_id(&s), 4);
    assert_int_equal(pop_id(&s), 1);
    assert_int_equal(pop_id(&s), 2);
    assert_int_equal(pop_id(&s), 3);
    assert_int_equal(pop_id(&s), -1);
}

static void test_priority_lowered(void **state)
{
    struct item a = {.id = 1}, b = {.id = 2};
    struct sched s;

    (void)state;
    sched_init(&s);
    sched_push(&s, &a.e, 1, VGPU_PRIO_HIGH);
    sched_push(&s, &b.e, 2, VGPU_PRIO_MEDIUM);
    sched_set_owner_priority(&s, 1, VGPU_PRIO_LOW);
    assert_int_equal(pop_id(&s), 2);
    assert_int_equal(pop_id(&s), 1);
}

static void test_starvation_bound_off_is_strict(void **state)
{
    /* One low waits while ten highs arrive one by one: with no bound the
     * low is served last. */
    struct item low = {.id = 100}, high[10];
    struct sched s;

    (void)state;
    sched_init(&s);
    sched_push(&s, &low.e, 1, VGPU_PRIO_LOW);
    for (int i = 0; i < 10; i++) {
        high[i].id = i;
        sched_push(&s, &high[i].e, 2, VGPU_PRIO_HIGH);
        assert_int_equal(pop_id(&s), i);
    }
    assert_int_equal(pop_id(&s), 100);
}

static void test_starvation_bound_k(void **state)
{
    /* K = 3: the low is served after at most three highs, then the highs
     * go on; a second low, arriving later, waits its own three. */
    struct item l1 = {.id = 101}, l2 = {.id = 102}, h[8];
    const int first[] = {0, 1, 2, 101};
    const int then[] = {3, 4, 5, 102, 6, 7};
    struct sched s;

    (void)state;
    sched_init(&s);
    sched_set_starvation_bound(&s, 3);
    sched_push(&s, &l1.e, 1, VGPU_PRIO_LOW);
    for (int i = 0; i < 8; i++) {
        h[i].id = i;
        sched_push(&s, &h[i].e, 2, VGPU_PRIO_HIGH);
    }
    for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
        assert_int_equal(pop_id(&s), first[i]);
    }
    sched_push(&s, &l2.e, 3, VGPU_PRIO_LOW);
    for (size_t i = 0; i < sizeof(then) / sizeof(then[0]); i++) {
        assert_int_equal(pop_id(&s), then[i]);
    }
    assert_int_equal(pop_id(&s), -1);
}

static void test_starvation_bound_medium_and_low(void **state)
{
    /* K = 2 with three levels: medium passes low too. */
    struct item l = {.id = 1}, m = {.id = 2}, h[4];
    struct sched s;

    (void)state;
    sched_init(&s);
    sched_set_starvation_bound(&s, 2);
    sched_push(&s, &l.e, 1, VGPU_PRIO_LOW);
    sched_push(&s, &m.e, 2, VGPU_PRIO_MEDIUM);
    for (int i = 0; i < 4; i++) {
        h[i].id = 10 + i;
        sched_push(&s, &h[i].e, 3, VGPU_PRIO_HIGH);
    }
    /* After two highs, low and medium have both seen two: both are due
     * and the older arrival (low) goes first; medium passing low is not
     * counted against low any more (it was already due). */
    assert_int_equal(pop_id(&s), 10);
    assert_int_equal(pop_id(&s), 11);
    assert_int_equal(pop_id(&s), 1);
    assert_int_equal(pop_id(&s), 2);
    assert_int_equal(pop_id(&s), 12);
    assert_int_equal(pop_id(&s), 13);
}

static bool only_owner_7(const struct sched_entry *e, void *arg)
{
    (void)arg;
    return e->owner == 7;
}

static void test_pop_first_with_predicate(void **state)
{
    /* The head is not runnable (its pool's GPUs are busy): the next
     * runnable entry in priority order is taken, the head stays. */
    struct item a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
    struct sched s;

    (void)state;
    sched_init(&s);
    sched_push(&s, &a.e, 8, VGPU_PRIO_HIGH);
    sched_push(&s, &b.e, 7, VGPU_PRIO_LOW);
    sched_push(&s, &c.e, 7, VGPU_PRIO_MEDIUM);
    assert_int_equal(
        ((struct item *)sched_pop_first(&s, only_owner_7, NULL))->id, 3);
    assert_int_equal(
        ((struct item *)sched_pop_first(&s, only_owner_7, NULL))->id, 2);
    assert_null(sched_pop_first(&s, only_owner_7, NULL));
    assert_int_equal(pop_id(&s), 1);
}

static uint64_t vtimes[16];

static uint64_t vtime_of(uint32_t owner, void *arg)
{
    (void)arg;
    return owner < 16 ? vtimes[owner] : 0;
}

static bool accept_all(const struct sched_entry *e, void *arg)
{
    (void)e;
    (void)arg;
    return true;
}

/* The share modes: least virtual time first, whatever the priority; an
 * owner's own entries in arrival order; the oldest on a tie. */
static void test_pop_fair(void **state)
{
    struct item a1 = {.id = 1}, a2 = {.id = 2}, b1 = {.id = 3}, c1 = {.id = 4};
    struct sched s;

    (void)state;
    sched_init(&s);
    sched_push(&s, &a1.e, 1, VGPU_PRIO_HIGH);
    sched_push(&s, &a2.e, 1, VGPU_PRIO_HIGH);
    sched_push(&s, &b1.e, 2, VGPU_PRIO_LOW);
    sched_push(&s, &c1.e, 3, VGPU_PRIO_MEDIUM);
    vtimes[1] = 500;
    vtimes[2] = 100;
    vtimes[3] = 100;
    /* 2 and 3 tie: 2's entry is older. */
    assert_int_equal(
        ((struct item *)sched_pop_fair(&s, accept_all, vtime_of, NULL))->id, 3);
    assert_int_equal(
        ((struct item *)sched_pop_fair(&s, accept_all, vtime_of, NULL))->id, 4);
    /* Only owner 1 is left: its entries in order. */
    assert_int_equal(
        ((struct item *)sched_pop_fair(&s, accept_all, vtime_of, NULL))->id, 1);
    sched_push(&s, &b1.e, 2, VGPU_PRIO_LOW);
    vtimes[2] = 900;
    /* Owner 1 is now behind owner 2: its next entry first. */
    assert_int_equal(
        ((struct item *)sched_pop_fair(&s, accept_all, vtime_of, NULL))->id, 2);
    /* A predicate that refuses owner 2 leaves nothing. */
    assert_null(sched_pop_fair(&s, only_owner_7, vtime_of, NULL));
    assert_int_equal(sched_count(&s), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_strict_priority_then_fifo),
        cmocka_unit_test(test_interleaved_timeline),
        cmocka_unit_test(test_invalid_priority_is_clamped),
        cmocka_unit_test(test_remove_and_count_owner),
        cmocka_unit_test(test_drop_owner_leaves_others),
        cmocka_unit_test(test_priority_change_keeps_arrival_order),
        cmocka_unit_test(test_priority_lowered),
        cmocka_unit_test(test_starvation_bound_off_is_strict),
        cmocka_unit_test(test_starvation_bound_k),
        cmocka_unit_test(test_starvation_bound_medium_and_low),
        cmocka_unit_test(test_pop_first_with_predicate),
        cmocka_unit_test(test_pop_fair),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
