/*
 * test-poolconf.c - unit tests of the pools.conf syntax.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "poolconf.h"

static void test_default(void **state)
{
    struct poolconf pc;

    (void)state;
    poolconf_default(&pc);
    assert_int_equal(pc.npools, 2);
    assert_non_null(poolconf_find(&pc, "A"));
    assert_true(poolconf_find(&pc, "B")->all_gpus);
    assert_null(poolconf_find(&pc, "C"));
}

static void test_full_syntax(void **state)
{
    const char *text =
        "# pools of this host\n"
        "A = 0\n"
        "\n"
        "  B = 1, GPU-8f6e3c2a-1b2c-4d5e-9f00-aabbccddeeff # two\n"
        "C\n";
    struct poolconf pc;
    char err[128] = "";
    const struct pool_def *p;

    (void)state;
    assert_int_equal(poolconf_parse(text, &pc, err, sizeof(err)), 0);
    assert_int_equal(pc.npools, 3);
    p = poolconf_find(&pc, "A");
    assert_false(p->all_gpus);
    assert_int_equal(p->ngpus, 1);
    assert_string_equal(p->gpus[0], "0");
    p = poolconf_find(&pc, "B");
    assert_int_equal(p->ngpus, 2);
    assert_string_equal(p->gpus[1], "GPU-8f6e3c2a-1b2c-4d5e-9f00-aabbccddeeff");
    assert_true(poolconf_find(&pc, "C")->all_gpus);
}

/* The contract's rule: 1-16 of [A-Za-z0-9_.-], the first alphanumeric. */
static void test_named_pools(void **state)
{
    const char *text = "gpu-pool.1 = 0\n"
                       "ABCDEFGHIJKLMNOP\n"
                       "a_b = 1\n"
                       "7\n";
    struct poolconf pc;
    char err[128] = "";

    (void)state;
    assert_int_equal(poolconf_parse(text, &pc, err, sizeof(err)), 0);
    assert_int_equal(pc.npools, 4);
    assert_int_equal(poolconf_find(&pc, "gpu-pool.1")->ngpus, 1);
    assert_true(poolconf_find(&pc, "ABCDEFGHIJKLMNOP")->all_gpus);
    assert_non_null(poolconf_find(&pc, "a_b"));
    assert_non_null(poolconf_find(&pc, "7"));
    /* case-sensitive */
    assert_null(poolconf_find(&pc, "A_B"));
}

static void expect_error(const char *text, const char *msg)
{
    struct poolconf pc;
    char err[128] = "";

    assert_int_equal(poolconf_parse(text, &pc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, msg));
}

static void test_errors_name_the_line(void **state)
{
    (void)state;
    expect_error("A = 0\nB = 99\n", "line 2: a GPU is an index");
    expect_error("A = 01\n", "line 1: a GPU is an index");
    expect_error("A = -1\n", "line 1");
    expect_error("A = GPU-xyz\n", "line 1");
    expect_error("A =\n", "line 1: '=' with no GPU");
    expect_error("A = 0,\n", "line 1");
    expect_error("A\nA = 1\n", "line 2: pool defined twice");
    expect_error("bad name = 0\n", "line 1: a pool name");
    expect_error("ABCDEFGHIJKLMNOPQ\n", "line 1: a pool name");
    expect_error("-A\n", "line 1: a pool name");
    expect_error("a.b/c\n", "line 1: a pool name");
    expect_error("= 0\n", "line 1: a pool name");
    expect_error("# nothing\n\n", "no pool defined");
}

static void test_load_missing_and_present(void **state)
{
    char path[] = "/tmp/vgpu-poolconf-XXXXXX";
    struct poolconf pc;
    char err[256];
    int fd;

    (void)state;
    assert_int_equal(
        poolconf_load("/nonexistent/pools.conf", &pc, err, sizeof(err)), 1);
    assert_int_equal(pc.npools, 2);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "X = 3\n", 6), 6);
    close(fd);
    assert_int_equal(poolconf_load(path, &pc, err, sizeof(err)), 0);
    assert_int_equal(pc.npools, 1);
    assert_string_equal(pc.pools[0].name, "X");
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "X = 3\nY = nope\n", 15), 15);
    close(fd);
    assert_int_equal(poolconf_load(path, &pc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 2"));
    assert_non_null(strstr(err, path));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_full_syntax),
        cmocka_unit_test(test_named_pools),
        cmocka_unit_test(test_errors_name_the_line),
        cmocka_unit_test(test_load_missing_and_present),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
