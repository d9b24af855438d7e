/*
 * test-wire.c - unit tests of socket message framing: every malformed
 * header is refused, partial input waits, good frames decode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "wire.h"

static size_t make_msg(uint8_t *buf, uint16_t type, uint32_t len)
{
    struct vgpu_msg_hdr hdr = {
        .type = type, .request_id = 7, .vm_id = 3, .length = len};
    uint8_t payload[VGPU_MSG_MAX_PAYLOAD];

    memset(payload, 0xab, sizeof(payload));
    return wire_encode(buf, VGPU_MSG_MAX_SIZE, &hdr, payload);
}

static void test_roundtrip(void **state)
{
    uint8_t buf[VGPU_MSG_MAX_SIZE];
    struct vgpu_msg_hdr hdr;
    size_t frame_len = 0;
    const char *why = NULL;
    size_t n = make_msg(buf, VGPU_MSG_REQUEST, 16);

    (void)state;
    assert_int_equal(n, VGPU_MSG_HDR_SIZE + 16);
    /* Byte layout is the contract's: little-endian magic first. */
    assert_memory_equal(buf, "VGPU", 4);
    assert_int_equal(wire_frame(buf, n, &hdr, &frame_len, &why), WIRE_FRAME);
    assert_int_equal(frame_len, n);
    assert_int_equal(hdr.type, VGPU_MSG_REQUEST);
    assert_int_equal(hdr.request_id, 7);
    assert_int_equal(hdr.vm_id, 3);
    assert_int_equal(hdr.length, 16);
    assert_int_equal(buf[VGPU_MSG_HDR_SIZE], 0xab);
}

static void test_partial_header_and_payload(void **state)
{
    uint8_t buf[VGPU_MSG_MAX_SIZE];
    struct vgpu_msg_hdr hdr;
    size_t frame_len;
    const char *why;
    size_t n = make_msg(buf, VGPU_MSG_REQUEST, 100);

    (void)state;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(wire_frame(buf, i, &hdr, &frame_len, &why),
                         WIRE_NEED_MORE);
    }
    assert_int_equal(wire_frame(buf, n, &hdr, &frame_len, &why), WIRE_FRAME);
}

static void test_two_frames_back_to_back(void **state)
{
    uint8_t buf[2 * VGPU_MSG_MAX_SIZE];
    struct vgpu_msg_hdr hdr;
    size_t frame_len;
    const char *why;
    size_t a = make_msg(buf, VGPU_MSG_HELLO, 16);
    size_t b = make_msg(buf + a, VGPU_MSG_REQUEST, 8);

    (void)state;
    assert_int_equal(wire_frame(buf, a + b, &hdr, &frame_len, &why),
                     WIRE_FRAME);
    assert_int_equal(frame_len, a);
    assert_int_equal(hdr.type, VGPU_MSG_HELLO);
    assert_int_equal(wire_frame(buf + a, b, &hdr, &frame_len, &why),
                     WIRE_FRAME);
    assert_int_equal(hdr.type, VGPU_MSG_REQUEST);
}

static void expect_bad(uint8_t *buf, size_t len, const char *reason)
{
    struct vgpu_msg_hdr hdr;
    size_t frame_len;
    const char *why = NULL;

    assert_int_equal(wire_frame(buf, len, &hdr, &frame_len, &why), WIRE_BAD);
    assert_non_null(why);
    assert_string_equal(why, reason);
}

static void test_bad_magic(void **state)
{
    uint8_t buf[VGPU_MSG_MAX_SIZE];
    size_t n = make_msg(buf, VGPU_MSG_REQUEST, 8);

    (void)state;
    buf[0] ^= 0xff;
    expect_bad(buf, n, "bad magic");
}

static void test_bad_version(void **state)
{
    uint8_t buf[VGPU_MSG_MAX_SIZE];
    size_t n = make_msg(buf, VGPU_MSG_REQUEST, 8);

    (void)state;
    buf[4] = 1; /* the letter-pool protocol before VGPU_MSG_VERSION 2 */
    expect_bad(buf, n, "unsupported version");
    buf[4] = VGPU_MSG_VERSION - 1; /* without SHM_REQ (3) */
    expect_bad(buf, n, "unsupported version");
    buf[4] = VGPU_MSG_VERSION + 1;
    expect_bad(buf, n, "unsupported version");
}

static void test_unknown_types(void **state)
{
    uint8_t buf[VGPU_MSG_MAX_SIZE];
    const uint16_t bad[] = {0, VGPU_MSG_TYPE_MAX + 1, 0xffff};

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = make_msg(buf, VGPU_MSG_REQUEST, 0);

        buf[6] = bad[i] & 0xff;
        buf[7] = bad[i] >> 8;
        expect_bad(buf, n, "unknown message type");
    }
}

static void test_oversize_length_refused_from_header(void **state)
{
    uint8_t buf[VGPU_MSG_HDR_SIZE];
    const uint32_t lens[] = {VGPU_MSG_MAX_PAYLOAD + 1, 0x7fffffff, 0xffffffff};

    (void)state;
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        make_msg(buf, VGPU_MSG_REQUEST, 0);
        wire_put_le32(buf + 20, lens[i]);
        /* Refused from the header alone: no waiting for 4 GB. */
        expect_bad(buf, sizeof(buf), "payload length over the limit");
    }
}

static void test_encode_limits(void **state)
{
    uint8_t buf[VGPU_MSG_MAX_SIZE];
    uint8_t payload[VGPU_MSG_MAX_PAYLOAD + 1] = {0};
    struct vgpu_msg_hdr hdr = {.type = VGPU_MSG_RESPONSE};

    (void)state;
    hdr.length = VGPU_MSG_MAX_PAYLOAD + 1;
    assert_int_equal(wire_encode(buf, sizeof(buf), &hdr, payload), 0);
    hdr.length = VGPU_MSG_MAX_PAYLOAD;
    assert_int_equal(wire_encode(buf, sizeof(buf) - 1, &hdr, payload), 0);
    assert_int_equal(wire_encode(buf, sizeof(buf), &hdr, payload),
                     VGPU_MSG_MAX_SIZE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_partial_header_and_payload),
        cmocka_unit_test(test_two_frames_back_to_back),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_bad_version),
        cmocka_unit_test(test_unknown_types),
        cmocka_unit_test(test_oversize_length_refused_from_header),
        cmocka_unit_test(test_encode_limits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
