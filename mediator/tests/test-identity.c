/*
 * test-identity.c - unit tests of the strict parsers for the xenstore
 * identity values (reading through libxenstore is covered by the
 * integration test against the wire-protocol server).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "identity.h"
#include "vgpu_protocol.h"

/* Any valid pool name (vgpu/names.h), not just A and B. */
static void test_pool(void **state)
{
    const char *good[] = {"A",  "B",    "a",          "C",
                          "AB", "pool", "gpu-pool.1", "ABCDEFGHIJKLMNOP"};
    const char *bad[] = {
        "", " A", "A ", "A\n", "-A", ".a", "a b", "a/b", "ABCDEFGHIJKLMNOPQ"};
    char pool[VGPU_POOL_NAME_SIZE];

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        memset(pool, 'x', sizeof(pool));
        assert_int_equal(identity_parse_pool(good[i], pool), 0);
        assert_string_equal(pool, good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(identity_parse_pool(bad[i], pool), -1);
    }
}

static void test_priority(void **state)
{
    const char *bad[] = {"", "HIGH", "hi", "2", "high ", "urgent"};
    uint32_t p = 99;

    (void)state;
    assert_int_equal(identity_parse_priority("low", &p), 0);
    assert_int_equal(p, VGPU_PRIO_LOW);
    assert_int_equal(identity_parse_priority("medium", &p), 0);
    assert_int_equal(p, VGPU_PRIO_MEDIUM);
    assert_int_equal(identity_parse_priority("high", &p), 0);
    assert_int_equal(p, VGPU_PRIO_HIGH);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(identity_parse_priority(bad[i], &p), -1);
    }
}

static void test_vm_id(void **state)
{
    const char *bad[] = {"",
                         "0",
                         "-1",
                         "+1",
                         "01",
                         "1a",
                         " 1",
                         "0x10",
                         "1 ",
                         "2147483648",
                         "99999999999999999999999"};
    uint32_t id = 0;

    (void)state;
    assert_int_equal(identity_parse_vm_id("1", &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(identity_parse_vm_id("2147483647", &id), 0);
    assert_int_equal(id, 2147483647u);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(identity_parse_vm_id(bad[i], &id), -1);
    }
}

/* quota-mb: plain decimal MiB, 1 .. VGPU_QUOTA_MB_MAX, into bytes. */
static void test_quota_mb(void **state)
{
    static const char *const bad[] = {
        "",
        "0",
        "-1",
        "+5",
        " 5",
        "5 ",
        "05",
        "0x10",
        "1e3",
        "5M",
        "1073741825",
        "18446744073709551617",
        "99999999999999999999",
    };
    uint64_t bytes = 0;

    (void)state;
    assert_int_equal(identity_parse_quota_mb("1", &bytes), 0);
    assert_int_equal(bytes, 1ull << 20);
    assert_int_equal(identity_parse_quota_mb("64", &bytes), 0);
    assert_int_equal(bytes, 64ull << 20);
    assert_int_equal(identity_parse_quota_mb("1073741824", &bytes), 0);
    assert_int_equal(bytes, (uint64_t)VGPU_QUOTA_MB_MAX << 20);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(identity_parse_quota_mb(bad[i], &bytes), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_priority),
        cmocka_unit_test(test_vm_id),
        cmocka_unit_test(test_quota_mb),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
