/*
 * test-qemudm.c - unit tests of how the qemu-dm check compares releases
 * (common/qemudm.c): rpm's version comparison, rpmvercmp, and of whole
 * [EPOCH:]VERSION-RELEASE strings.  The expected values are what rpm 4.18
 * answers (`rpm --eval "%{lua: print(rpm.vercmp('A', 'B'))}"`), and
 * CentOS 7's rpm 4.11 agrees on every pair without ^.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "qemudm.h"

struct pair {
    const char *a, *b;
    int want;
};

static int sign(int v)
{
    return v > 0 ? 1 : v < 0 ? -1 : 0;
}

static void test_vercmp(void **state)
{
    static const struct pair pairs[] = {
        {"1.0", "1.0", 0},
        {"1.0", "2.0", -1},
        {"2.0", "1.0", 1},
        {"2.0.1", "2.0.1", 0},
        {"2.0", "2.0.1", -1},
        {"2.0.1a", "2.0.1", 1},
        {"5.5p1", "5.5p2", -1},
        {"10xyz", "10.1xyz", -1},
        {"xyz10", "xyz10.1", -1},
        {"1.0", "1.0a", -1},
        {"1.0a", "1.0b", -1},
        {"1.0~rc1", "1.0", -1},
        {"1.0~rc1", "1.0~rc2", -1},
        {"1.0^", "1.0", 1},
        {"1.0^git1", "1.0", 1},
        {"1.0^git1", "1.01", -1},
        {"001", "1", 0},
        {"1.2", "1_2", 0},
        {"a", "1", -1},
        {"1.a", "1.1", -1},
        {"2.0", "2.0.", 0},
        {"1.0", "1..0", 0},
        /* XCP-ng's releases, and why the old suffix needed its ".1" */
        {"5.2.15.2.xcpng8.3", "5.2.16.1.xcpng8.3", -1},
        {"4.6.4.2.1.vgpu0.1.0.xcpng8.3", "4.6.4.2.xcpng8.3", 1},
        {"4.6.4.2.vgpu0.1.0.xcpng8.3", "4.6.4.2.xcpng8.3", -1},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        int got = sign(qemudm_vercmp(pairs[i].a, pairs[i].b));
        int back = sign(qemudm_vercmp(pairs[i].b, pairs[i].a));

        if (got != pairs[i].want || back != -pairs[i].want)
            fail_msg("vercmp(%s, %s) = %d (reverse %d), rpm says %d",
                     pairs[i].a, pairs[i].b, got, back, pairs[i].want);
    }
}

static void test_evrcmp(void **state)
{
    static const struct pair pairs[] = {
        {"2:4.2.1-5.2.16.1.xcpng8.3", "2:4.2.1-5.2.15.2.xcpng8.3", 1},
        {"2:4.2.1-5.2.15.2.xcpng8.3", "2:4.2.1-5.2.15.2.xcpng8.3", 0},
        {"2:4.2.1-4.6.4.2.xcpng8.2", "2:4.2.1-5.2.15.2.xcpng8.3", -1},
        {"1:9.0-1", "2:0.1-1", -1},                      /* the epoch first */
        {"4.2.1-1", "0:4.2.1-1", 0},                     /* no epoch is 0 */
        {"2:4.2.2-1.xcpng8.3", "2:4.2.1-9.xcpng8.3", 1}, /* then version */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        int got = sign(qemudm_evrcmp(pairs[i].a, pairs[i].b));

        if (got != pairs[i].want)
            fail_msg("evrcmp(%s, %s) = %d, want %d", pairs[i].a, pairs[i].b,
                     got, pairs[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vercmp),
        cmocka_unit_test(test_evrcmp),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
