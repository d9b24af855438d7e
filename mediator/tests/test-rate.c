/*
 * test-rate.c - the token bucket of rate.h: a full bucket at the start,
 * refill at the rate and never above the burst, nothing lost to rounding
 * when it is asked often, and the time of the next token.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rate.h"

#define MS 1000000ull

static const struct rate_limit lim = {.per_s = 1000, .burst = 10};

static void test_burst_then_empty(void **state)
{
    struct rate_bucket b = {0};
    int taken = 0;

    (void)state;
    while (rate_take(&b, &lim, 5 * MS)) {
        taken++;
    }
    assert_int_equal(taken, 10);
    assert_false(rate_has(&b, &lim, 5 * MS));
}

static void test_refill_at_rate_capped(void **state)
{
    struct rate_bucket b = {0};
    int taken = 0;

    (void)state;
    while (rate_take(&b, &lim, 0)) {
    }
    /* 3 ms at 1000/s: 3 tokens. */
    while (rate_take(&b, &lim, 3 * MS)) {
        taken++;
    }
    assert_int_equal(taken, 3);
    /* A long pause gives the burst, not more. */
    taken = 0;
    while (rate_take(&b, &lim, 10000 * MS)) {
        taken++;
    }
    assert_int_equal(taken, 10);
}

static void test_often_asked_loses_nothing(void **state)
{
    struct rate_bucket b = {0};
    uint64_t t;
    int taken = 0;

    (void)state;
    while (rate_take(&b, &lim, 0)) {
    }
    /* Asked every 300 ns for 20 ms: each call alone adds 0.3 millionths
     * of... less than a unit; together they must make 20 tokens. */
    for (t = 0; t <= 20 * MS; t += 300) {
        taken += rate_take(&b, &lim, t);
    }
    assert_in_range(taken, 19, 20);
}

static void test_next_token_time(void **state)
{
    struct rate_bucket b = {0};
    uint64_t next;

    (void)state;
    while (rate_take(&b, &lim, 0)) {
    }
    next = rate_next_ns(&b, &lim, 0);
    assert_in_range(next, MS - 1000, MS + 1000);
    assert_false(rate_has(&b, &lim, next - 2000));
    assert_true(rate_has(&b, &lim, next));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_empty),
        cmocka_unit_test(test_refill_at_rate_capped),
        cmocka_unit_test(test_often_asked_loses_nothing),
        cmocka_unit_test(test_next_token_time),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
