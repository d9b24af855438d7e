/*
 * test-payload.c - unit tests of request validation and of the CPU
 * reference backend's results.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "backend.h"
#include "payload.h"
#include "wire.h"

static uint32_t make_add(uint8_t *buf, uint32_t opcode, uint32_t count,
                         const int32_t *a, const int32_t *b, uint32_t n)
{
    wire_put_le32(buf, opcode);
    wire_put_le32(buf + 4, count);
    for (uint32_t i = 0; i < n; i++) {
        wire_put_le32(buf + 8 + 4 * i, (uint32_t)a[i]);
        wire_put_le32(buf + 8 + 4 * (n + i), (uint32_t)b[i]);
    }
    return 8 + 8 * n;
}

static void test_vector_add_ok(void **state)
{
    uint8_t buf[VGPU_BUF_SIZE];
    int32_t a = 100, b = 200;
    struct vgpu_request req;
    uint32_t len = make_add(buf, VGPU_OP_VECTOR_ADD, 1, &a, &b, 1);

    (void)state;
    assert_int_equal(len, VGPU_VECTOR_ADD_REQ_LEN(1));
    assert_int_equal(payload_parse_request(buf, len, &req), VGPU_ERR_NONE);
    assert_int_equal(req.opcode, VGPU_OP_VECTOR_ADD);
    assert_int_equal(req.count, 1);
    assert_int_equal(req.operands_len, 8);
}

static void test_vector_add_max_count(void **state)
{
    uint8_t buf[VGPU_BUF_SIZE];
    int32_t a[VGPU_VECTOR_ADD_MAX_COUNT] = {0}, b[VGPU_VECTOR_ADD_MAX_COUNT];
    const uint32_t max = VGPU_VECTOR_ADD_MAX_COUNT;
    struct vgpu_request req;
    uint32_t len;

    (void)state;
    memset(b, 0, sizeof(b));
    len = make_add(buf, VGPU_OP_VECTOR_ADD, max, a, b, max);
    assert_true(len <= VGPU_BUF_SIZE);
    assert_int_equal(payload_parse_request(buf, len, &req), VGPU_ERR_NONE);
}

static void test_malformed_requests(void **state)
{
    uint8_t buf[VGPU_BUF_SIZE + 8] = {0};
    int32_t a[2] = {1, 2}, b[2] = {3, 4};
    struct vgpu_request req;
    uint32_t len;

    (void)state;
    /* Shorter than a header. */
    for (uint32_t l = 0; l < sizeof(struct vgpu_req_hdr); l++) {
        assert_int_equal(payload_parse_request(buf, l, &req),
                         VGPU_ERR_BAD_REQUEST);
    }
    /* count 0. */
    len = make_add(buf, VGPU_OP_VECTOR_ADD, 0, a, b, 0);
    assert_int_equal(payload_parse_request(buf, len, &req),
                     VGPU_ERR_BAD_REQUEST);
    /* count says 2, payload holds 1 pair (truncated operands). */
    len = make_add(buf, VGPU_OP_VECTOR_ADD, 2, a, b, 1);
    assert_int_equal(payload_parse_request(buf, len, &req),
                     VGPU_ERR_BAD_REQUEST);
    /* count says 1, payload holds 2 pairs (trailing bytes). */
    len = make_add(buf, VGPU_OP_VECTOR_ADD, 1, a, b, 2);
    assert_int_equal(payload_parse_request(buf, len, &req),
                     VGPU_ERR_BAD_REQUEST);
    /* count that would overflow 2 * count * 4 in 32 bits. */
    len = make_add(buf, VGPU_OP_VECTOR_ADD, 0x80000001u, a, b, 1);
    assert_int_equal(payload_parse_request(buf, len, &req),
                     VGPU_ERR_BAD_REQUEST);
    /* count one over the maximum. */
    wire_put_le32(buf + 4, VGPU_VECTOR_ADD_MAX_COUNT + 1);
    assert_int_equal(payload_parse_request(buf, VGPU_BUF_SIZE, &req),
                     VGPU_ERR_BAD_REQUEST);
    /* Longer than the buffer. */
    assert_int_equal(payload_parse_request(buf, VGPU_BUF_SIZE + 1, &req),
                     VGPU_ERR_BAD_REQUEST);
}

static void test_unknown_opcodes(void **state)
{
    uint8_t buf[16];
    int32_t a = 1, b = 2;
    const uint32_t ops[] = {0, 2, 0xdead, 0xffffffff};
    struct vgpu_request req;

    (void)state;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        uint32_t len = make_add(buf, ops[i], 1, &a, &b, 1);

        assert_int_equal(payload_parse_request(buf, len, &req),
                         VGPU_ERR_BAD_OPCODE);
    }
}

struct result {
    int calls;
    uint32_t error;
    uint32_t len;
    uint8_t resp[VGPU_BUF_SIZE];
};

static void record(void *arg, uint32_t error, const uint8_t *resp,
                   uint32_t resp_len)
{
    struct result *r = arg;

    r->calls++;
    r->error = error;
    r->len = resp_len;
    if (resp_len) {
        memcpy(r->resp, resp, resp_len);
    }
}

static void run_cpu(const int32_t *a, const int32_t *b, uint32_t n,
                    struct result *r)
{
    uint8_t buf[VGPU_BUF_SIZE];
    struct vgpu_request req;
    void *st;
    uint32_t len = make_add(buf, VGPU_OP_VECTOR_ADD, n, a, b, n);

    assert_int_equal(payload_parse_request(buf, len, &req), VGPU_ERR_NONE);
    assert_int_equal(vgpu_backend_cpu.open(&st), 0);
    memset(r, 0, sizeof(*r));
    vgpu_backend_cpu.submit(st, &req, record, r);
    vgpu_backend_cpu.close(st);
}

static void test_cpu_backend_classic(void **state)
{
    int32_t a = 100, b = 200;
    struct result r;

    (void)state;
    run_cpu(&a, &b, 1, &r);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.error, VGPU_ERR_NONE);
    assert_int_equal(r.len, VGPU_VECTOR_ADD_RESP_LEN(1));
    assert_int_equal(wire_get_le32(r.resp), VGPU_OP_VECTOR_ADD);
    assert_int_equal(wire_get_le32(r.resp + 4), 1);
    assert_int_equal((int32_t)wire_get_le32(r.resp + 8), 300);
}

static void test_cpu_backend_vector_and_wrap(void **state)
{
    int32_t a[4] = {1, -5, INT32_MAX, INT32_MIN};
    int32_t b[4] = {2, 5, 1, -1};
    int32_t want[4] = {3, 0, INT32_MIN, INT32_MAX};
    struct result r;

    (void)state;
    run_cpu(a, b, 4, &r);
    assert_int_equal(r.error, VGPU_ERR_NONE);
    assert_int_equal(r.len, VGPU_VECTOR_ADD_RESP_LEN(4));
    for (int i = 0; i < 4; i++) {
        assert_int_equal((int32_t)wire_get_le32(r.resp + 8 + 4 * i), want[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_add_ok),
        cmocka_unit_test(test_vector_add_max_count),
        cmocka_unit_test(test_malformed_requests),
        cmocka_unit_test(test_unknown_opcodes),
        cmocka_unit_test(test_cpu_backend_classic),
        cmocka_unit_test(test_cpu_backend_vector_and_wrap),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
