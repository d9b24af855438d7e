/*
 * test-qemuargs.c - unit tests of what the qemu-dm wrapper reads in
 * xenopsd's argument list: PCI addresses as QEMU reads addr=, the slots the
 * devices xenopsd placed take, and whole-word options such as -priv.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "qemuargs.h"

static void test_parse_addr(void **state)
{
    const char *bad[] = {"",   "g",     "20", "0x20", "1f.8", "1f.",
                         ".1", "1f.1x", "-1", "x",    "0x",   "123456789"};

    (void)state;
    assert_int_equal(qemuargs_parse_addr("3"), 3);
    assert_int_equal(qemuargs_parse_addr("a"), 10); /* xenopsd: NIC devid 6 */
    assert_int_equal(qemuargs_parse_addr("0x1f"), 0x1f);
    assert_int_equal(qemuargs_parse_addr("1F"), 0x1f);
    assert_int_equal(qemuargs_parse_addr("2.0"), 2);
    assert_int_equal(qemuargs_parse_addr("04.7"), 4);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(qemuargs_parse_addr(bad[i]), -1);
}

/* What xenopsd passes for an HVM guest with a NIC (fixtures README). */
static char *xenopsd_argv[] = {
    "wrapper",    "5",
    "--syslog",   "-std-vga",
    "-xen-domid", "5",
    "-device",    "xen-platform,addr=3,device-id=0x0001,revision=0x2",
    "-device",    "rtl8139,netdev=tapnet0,mac=00:16:3e:00:00:01,addr=4",
    "-device",    "e1000,netdev=tapnet6,mac=00:16:3e:00:00:07,addr=a",
    "-device",    "usb-tablet,port=2",
    "-drive",     "file=/dev/sm/x,if=none,id=ide0-cd1,addr=1f",
};

static void test_slot_user(void **state)
{
    int n = (int)(sizeof(xenopsd_argv) / sizeof(xenopsd_argv[0]));

    (void)state;
    assert_string_equal(qemuargs_slot_user(n, xenopsd_argv, 2, 3),
                        xenopsd_argv[7]);
    assert_string_equal(qemuargs_slot_user(n, xenopsd_argv, 2, 4),
                        xenopsd_argv[9]);
    assert_string_equal(qemuargs_slot_user(n, xenopsd_argv, 2, 0xa),
                        xenopsd_argv[11]);
    /* No device names slot 2 (the VGA card comes later) nor 0x1f: an
     * addr= outside a -device value does not count. */
    assert_null(qemuargs_slot_user(n, xenopsd_argv, 2, 2));
    assert_null(qemuargs_slot_user(n, xenopsd_argv, 2, 0x1f));
    /* A -device at the very end without a value is ignored. */
    assert_null(qemuargs_slot_user(7, xenopsd_argv, 2, 3));
}

static void test_has(void **state)
{
    char *with_priv[] = {"wrapper", "5", "--syslog", "-priv", "-S"};
    char *without[] = {"wrapper", "5", "--syslog", "-privx", "-S"};

    (void)state;
    assert_true(qemuargs_has(5, with_priv, 2, "-priv"));
    assert_false(qemuargs_has(5, without, 2, "-priv"));
    /* The domid and argv[0] are not options. */
    assert_false(qemuargs_has(5, with_priv, 4, "-priv"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_slot_user),
        cmocka_unit_test(test_has),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
