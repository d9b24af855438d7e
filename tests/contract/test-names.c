/*
 * test-names.c - unit tests of the contract's own code (include/vgpu/):
 * the one pool-name rule and its wire and register forms, priority names
 * and parsing, and the socket header and HELLO layouts against bytes
 * written out by hand, so that a change of layout shows here first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vgpu_protocol.h"

static void test_pool_name_lengths(void **state)
{
    (void)state;
    assert_false(vgpu_pool_name_valid(NULL));
    assert_false(vgpu_pool_name_valid(""));                  /* 0 */
    assert_true(vgpu_pool_name_valid("A"));                  /* 1 */
    assert_true(vgpu_pool_name_valid("ABCDEFGHIJKLMNOP"));   /* 16 */
    assert_false(vgpu_pool_name_valid("ABCDEFGHIJKLMNOPQ")); /* 17 */
    assert_false(vgpu_pool_name_valid("gpu-pool.1-much-too-long"));
    assert_int_equal(strlen("ABCDEFGHIJKLMNOP"), VGPU_POOL_NAME_MAX);
}

static void test_pool_name_characters(void **state)
{
    const char *good[] = {"A",       "B",  "C",  "a",          "z",
                          "Z",       "0",  "9",  "gpu-pool.1", "a_b",
                          "A.B-C_D", "0-", "x.", "pool_"};
    const char *bad[] = {"-A",    ".A",   "_A",   " A",   "A ",
                         "a b",   "a,b",  "a=b",  "a/b",  "a:b",
                         "a\"b",  "a\\b", "a\nb", "a\tb", "\xc3\xa9t\xc3\xa9",
                         "a\x7f", "a*b",  "a+b",  "a@b"};
    char s[3];

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(vgpu_pool_name_valid(good[i]));
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(vgpu_pool_name_valid(bad[i]));
    }
    /* Every byte, first and later: exactly the rule's classes. */
    for (int c = 1; c < 256; c++) {
        int alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                    (c >= '0' && c <= '9');
        int punct = c == '_' || c == '.' || c == '-';

        s[0] = (char)c;
        s[1] = '\0';
        assert_int_equal(vgpu_pool_name_valid(s), alnum);
        s[0] = 'A';
        s[1] = (char)c;
        s[2] = '\0';
        assert_int_equal(vgpu_pool_name_valid(s), alnum || punct);
    }
    /* case-sensitive: different names, both valid */
    assert_true(vgpu_pool_name_valid("a") && vgpu_pool_name_valid("A"));
}

static void test_pool_name_wire_form(void **state)
{
    uint8_t b[VGPU_POOL_NAME_MAX];
    char out[VGPU_POOL_NAME_SIZE];
    static const uint8_t one[VGPU_POOL_NAME_MAX] = {'A'};

    (void)state;
    vgpu_pool_name_pack(b, "A");
    assert_memory_equal(b, one, sizeof(one));
    assert_int_equal(vgpu_pool_name_unpack(b, out), 1);
    assert_string_equal(out, "A");
    vgpu_pool_name_pack(b, "ABCDEFGHIJKLMNOP"); /* no NUL on the wire */
    assert_memory_equal(b, "ABCDEFGHIJKLMNOP", VGPU_POOL_NAME_MAX);
    assert_int_equal(vgpu_pool_name_unpack(b, out), 1);
    assert_string_equal(out, "ABCDEFGHIJKLMNOP");
    vgpu_pool_name_pack(b, "");
    assert_int_equal(vgpu_pool_name_unpack(b, out), 0);
    assert_string_equal(out, "");
    vgpu_pool_name_pack(b, NULL);
    assert_int_equal(vgpu_pool_name_unpack(b, out), 0);
    /* not a name: a byte after the padding, a bad character */
    memset(b, 0, sizeof(b));
    b[0] = 'A';
    b[15] = 'B';
    assert_int_equal(vgpu_pool_name_unpack(b, out), -1);
    assert_string_equal(out, "");
    vgpu_pool_name_pack(b, "a b");
    assert_int_equal(vgpu_pool_name_unpack(b, out), -1);
    vgpu_pool_name_pack(b, "-A");
    assert_int_equal(vgpu_pool_name_unpack(b, out), -1);
}

static void test_pool_name_registers(void **state)
{
    uint32_t w[VGPU_POOL_NAME_REGS];
    char out[VGPU_POOL_NAME_SIZE];

    (void)state;
    /* Backward compatible: a one-letter pool reads as that letter. */
    vgpu_pool_name_to_regs("A", w);
    assert_int_equal(w[0], 'A');
    assert_int_equal(w[1] | w[2] | w[3], 0);
    vgpu_pool_name_to_regs("gpu-pool.1", w);
    assert_int_equal(w[0], 0x2d757067); /* "gpu-" little-endian */
    assert_int_equal(w[1], 0x6c6f6f70); /* "pool" */
    assert_int_equal(w[2], 0x0000312e); /* ".1" */
    assert_int_equal(w[3], 0);
    assert_int_equal(vgpu_pool_name_from_regs(w, out), 1);
    assert_string_equal(out, "gpu-pool.1");
    w[3] = 0x41; /* a byte after the padding */
    assert_int_equal(vgpu_pool_name_from_regs(w, out), -1);
    memset(w, 0, sizeof(w));
    assert_int_equal(vgpu_pool_name_from_regs(w, out), 0);
    assert_int_equal(vgpu_pool_name_reg(0), VGPU_REG_POOL_ID);
    assert_int_equal(vgpu_pool_name_reg(1), 0x034);
    assert_int_equal(vgpu_pool_name_reg(2), 0x038);
    assert_int_equal(vgpu_pool_name_reg(3), 0x03C);
    assert_true(VGPU_CAPS_V1 & VGPU_CAP_POOL_NAME);
}

static void test_priorities(void **state)
{
    const char *bad[] = {"",     "HIGH",   "hi",   "2",    "high ",
                         " low", "urgent", "lowx", "mediu"};
    uint32_t p = 99;

    (void)state;
    for (uint32_t i = 0; i < VGPU_PRIO_COUNT; i++) {
        assert_int_equal(vgpu_priority_parse(vgpu_priority_name(i), &p), 0);
        assert_int_equal(p, i);
    }
    assert_string_equal(vgpu_priority_name(VGPU_PRIO_LOW), "low");
    assert_string_equal(vgpu_priority_name(VGPU_PRIO_MEDIUM), "medium");
    assert_string_equal(vgpu_priority_name(VGPU_PRIO_HIGH), "high");
    assert_string_equal(vgpu_priority_name(3), "unknown");
    assert_string_equal(VGPU_PRIO_NAMES, "low|medium|high");
    assert_string_equal(VGPU_PRIO_NAME_DEFAULT,
                        vgpu_priority_name(VGPU_PRIO_DEFAULT));
    p = 99;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(vgpu_priority_parse(bad[i], &p), -1);
    }
    assert_int_equal(vgpu_priority_parse(NULL, &p), -1);
    assert_int_equal(p, 99);
}

static void test_header_layout(void **state)
{
    /* magic "VGPU", version 3, type 4, request 0x01020304, vm-id 7,
     * status 14, length 0x100: written out by hand. */
    /* clang-format off: one row per 12 bytes */
    static const uint8_t want[VGPU_MSG_HDR_SIZE] = {
        'V', 'G', 'P', 'U', 3,  0, 4, 0, 4, 3, 2, 1,
        7,   0,   0,   0,   14, 0, 0, 0, 0, 1, 0, 0,
    };
    /* clang-format on */
    struct vgpu_msg_hdr h = vgpu_msg_hdr_make(VGPU_MSG_RESPONSE, 0x01020304, 7,
                                              VGPU_ERR_NO_GPU, 0x100);
    struct vgpu_msg_hdr back;
    uint8_t b[VGPU_MSG_HDR_SIZE];

    (void)state;
    vgpu_msg_hdr_pack(b, &h);
    assert_memory_equal(b, want, sizeof(want));
    vgpu_msg_hdr_unpack(want, &back);
    assert_memory_equal(&back, &h, sizeof(h));
    assert_null(vgpu_msg_hdr_check(&back));
    back.magic ^= 1;
    assert_string_equal(vgpu_msg_hdr_check(&back), "bad magic");
    back = h;
    back.version = 1;
    assert_string_equal(vgpu_msg_hdr_check(&back), "unsupported version");
    back = h;
    back.type = 0;
    assert_string_equal(vgpu_msg_hdr_check(&back), "unknown message type");
    back.type = VGPU_MSG_TYPE_MAX + 1;
    assert_string_equal(vgpu_msg_hdr_check(&back), "unknown message type");
    back = h;
    back.length = VGPU_MSG_MAX_PAYLOAD + 1;
    assert_string_equal(vgpu_msg_hdr_check(&back),
                        "payload length over the limit");
}

static void test_hello_layout(void **state)
{
    /* pool "gpu-pool.1" (16 bytes, zero padded), priority 2, vm-id 0x1234,
     * caps VGPU_CAPS_V1: written out by hand. */
    /* clang-format off: the pool's 16 bytes, then the three words */
    static const uint8_t want[VGPU_MSG_HELLO_SIZE] = {
        'g',  'p',  'u', '-', 'p',
        'o',  'o',  'l', '.', '1',
        0,    0,    0,   0,   0,
        0,    2,    0,   0,   0,
        0x34, 0x12, 0,   0,   VGPU_CAPS_V1,
        0,    0,    0,
    };
    /* clang-format on */
    struct vgpu_msg_hello h =
        vgpu_msg_hello_make("gpu-pool.1", VGPU_PRIO_HIGH, 0x1234, VGPU_CAPS_V1);
    struct vgpu_msg_hello back;
    char pool[VGPU_POOL_NAME_SIZE];
    uint8_t b[VGPU_MSG_HELLO_SIZE];

    (void)state;
    assert_int_equal(VGPU_MSG_VERSION, 3);
    assert_true(VGPU_CAPS_V1 < 0x100);
    vgpu_msg_hello_pack(b, &h);
    assert_memory_equal(b, want, sizeof(want));
    vgpu_msg_hello_unpack(want, &back);
    assert_int_equal(vgpu_pool_name_unpack(back.pool, pool), 1);
    assert_string_equal(pool, "gpu-pool.1");
    assert_int_equal(back.priority, VGPU_PRIO_HIGH);
    assert_int_equal(back.vm_id, 0x1234);
    assert_int_equal(back.caps, VGPU_CAPS_V1);
}

static void test_limits_and_names(void **state)
{
    (void)state;
    assert_int_equal(VGPU_VM_ID_MAX, 2147483647u);
    assert_int_equal(VGPU_DOMID_MAX, 32751u);
    assert_string_equal(VGPU_POOLS_CONF_PATH, "/etc/vgpu/pools.conf");
    assert_string_equal(VGPU_STATUS_FILE_PATH, "/run/vgpu/mediator.status");
    assert_string_equal(VGPU_POOL_NAME_RULE,
                        "1 to 16 of A-Z a-z 0-9 _ . -, the first a letter or "
                        "digit");
    assert_string_equal(vgpu_error_name(VGPU_ERR_NO_GPU), "NO_GPU");
    assert_string_equal(vgpu_error_name(VGPU_ERR_COUNT), "UNKNOWN");
    assert_string_equal(vgpu_status_name(VGPU_STATUS_BUSY), "BUSY");
    assert_string_equal(vgpu_status_name(99), "UNKNOWN");
    for (uint32_t e = 0; e < VGPU_ERR_COUNT; e++) {
        assert_string_not_equal(vgpu_error_name(e), "UNKNOWN");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_name_lengths),
        cmocka_unit_test(test_pool_name_characters),
        cmocka_unit_test(test_pool_name_wire_form),
        cmocka_unit_test(test_pool_name_registers),
        cmocka_unit_test(test_priorities),
        cmocka_unit_test(test_header_layout),
        cmocka_unit_test(test_hello_layout),
        cmocka_unit_test(test_limits_and_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
