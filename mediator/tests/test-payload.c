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
    const uint32_t ops[] = {0, 4, 0xdead, 0xffffffff};
    struct vgpu_request req;

    (void)state;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        uint32_t len = make_add(buf, ops[i], 1, &a, &b, 1);

        assert_int_equal(payload_parse_request(buf, len, &req),
                         VGPU_ERR_BAD_OPCODE);
    }
}

struct result {
    uint32_t error;
    uint32_t len;
    uint8_t resp[VGPU_BUF_SIZE];
};

static void run_request(const uint8_t *buf, uint32_t len, struct result *r)
{
    struct vgpu_request req;

    assert_int_equal(payload_parse_request(buf, len, &req), VGPU_ERR_NONE);
    memset(r, 0, sizeof(*r));
    r->error = backend_cpu_execute(&req, r->resp, &r->len);
}

static void run_cpu(const int32_t *a, const int32_t *b, uint32_t n,
                    struct result *r)
{
    uint8_t buf[VGPU_BUF_SIZE];
    uint32_t len = make_add(buf, VGPU_OP_VECTOR_ADD, n, a, b, n);

    run_request(buf, len, r);
}

static void test_cpu_backend_classic(void **state)
{
    int32_t a = 100, b = 200;
    struct result r;

    (void)state;
    run_cpu(&a, &b, 1, &r);
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

static void put_f32(uint8_t *p, float f)
{
    uint32_t bits;

    memcpy(&bits, &f, 4);
    wire_put_le32(p, bits);
}

static float get_f32(const uint8_t *p)
{
    uint32_t bits = wire_get_le32(p);
    float f;

    memcpy(&f, &bits, 4);
    return f;
}

static uint32_t make_saxpy(uint8_t *buf, uint32_t count, float a,
                           const float *x, const float *y, uint32_t n)
{
    wire_put_le32(buf, VGPU_OP_SAXPY);
    wire_put_le32(buf + 4, count);
    put_f32(buf + 8, a);
    for (uint32_t i = 0; i < n; i++) {
        put_f32(buf + 12 + 4 * i, x[i]);
        put_f32(buf + 12 + 4 * (n + i), y[i]);
    }
    return 12 + 8 * n;
}

static void test_saxpy(void **state)
{
    uint8_t buf[VGPU_BUF_SIZE];
    float x[VGPU_SAXPY_MAX_COUNT], y[VGPU_SAXPY_MAX_COUNT];
    const uint32_t n = VGPU_SAXPY_MAX_COUNT;
    struct result r;
    uint32_t len;

    (void)state;
    for (uint32_t i = 0; i < n; i++) {
        x[i] = (float)i * 0.5f - 3.25f;
        y[i] = 1.0f / (float)(i + 1);
    }
    len = make_saxpy(buf, n, 2.5f, x, y, n);
    assert_int_equal(len, VGPU_SAXPY_REQ_LEN(n));
    run_request(buf, len, &r);
    assert_int_equal(r.error, VGPU_ERR_NONE);
    assert_int_equal(r.len, VGPU_SAXPY_RESP_LEN(n));
    assert_int_equal(wire_get_le32(r.resp), VGPU_OP_SAXPY);
    for (uint32_t i = 0; i < n; i++) {
        volatile float ax = 2.5f * x[i];
        float want = ax + y[i];
        float got = get_f32(r.resp + 8 + 4 * i);

        assert_memory_equal(&got, &want, sizeof(float));
    }
}

static void test_saxpy_malformed(void **state)
{
    uint8_t buf[VGPU_BUF_SIZE + 16] = {0};
    float x[2] = {1, 2}, y[2] = {3, 4};
    struct vgpu_request req;
    uint32_t len;

    (void)state;
    len = make_saxpy(buf, 0, 1.0f, x, y, 0);
    assert_int_equal(payload_parse_request(buf, len, &req),
                     VGPU_ERR_BAD_REQUEST);
    len = make_saxpy(buf, 2, 1.0f, x, y, 1);
    assert_int_equal(payload_parse_request(buf, len, &req),
                     VGPU_ERR_BAD_REQUEST);
    len = make_saxpy(buf, 1, 1.0f, x, y, 2);
    assert_int_equal(payload_parse_request(buf, len, &req),
                     VGPU_ERR_BAD_REQUEST);
    wire_put_le32(buf + 4, VGPU_SAXPY_MAX_COUNT + 1);
    assert_int_equal(payload_parse_request(buf, VGPU_BUF_SIZE, &req),
                     VGPU_ERR_BAD_REQUEST);
}

static uint32_t make_sgemm(uint8_t *buf, uint32_t n, uint32_t seed)
{
    wire_put_le32(buf, VGPU_OP_SGEMM);
    wire_put_le32(buf + 4, n);
    wire_put_le32(buf + 8, seed);
    return 12;
}

static void test_sgemm_matches_reference(void **state)
{
    const uint32_t sizes[] = {1, 2, 17, 64, 200};
    uint8_t buf[16];
    struct result r;

    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (uint32_t seed = 0; seed < 3; seed++) {
            uint32_t len = make_sgemm(buf, sizes[i], seed * 1000 + 7);
            int64_t want = vgpu_sgemm_checksum_ref(seed * 1000 + 7, sizes[i]);
            uint64_t got;

            assert_int_equal(len, VGPU_SGEMM_REQ_LEN);
            run_request(buf, len, &r);
            assert_int_equal(r.error, VGPU_ERR_NONE);
            assert_int_equal(r.len, VGPU_SGEMM_RESP_LEN);
            assert_int_equal(wire_get_le32(r.resp + 4), sizes[i]);
            got = wire_get_le32(r.resp + 8) |
                  (uint64_t)wire_get_le32(r.resp + 12) << 32;
            assert_int_equal((int64_t)got, want);
        }
    }
}

static void test_sgemm_malformed(void **state)
{
    uint8_t buf[32] = {0};
    struct vgpu_request req;

    (void)state;
    make_sgemm(buf, 0, 1);
    assert_int_equal(payload_parse_request(buf, 12, &req),
                     VGPU_ERR_BAD_REQUEST);
    make_sgemm(buf, VGPU_SGEMM_MAX_N + 1, 1);
    assert_int_equal(payload_parse_request(buf, 12, &req),
                     VGPU_ERR_BAD_REQUEST);
    make_sgemm(buf, 4, 1);
    assert_int_equal(payload_parse_request(buf, 8, &req), VGPU_ERR_BAD_REQUEST);
    assert_int_equal(payload_parse_request(buf, 16, &req),
                     VGPU_ERR_BAD_REQUEST);
    make_sgemm(buf, VGPU_SGEMM_MAX_N, 1);
    assert_int_equal(payload_parse_request(buf, 12, &req), VGPU_ERR_NONE);
    /* What the quota is checked against: A, B, C and the checksum. */
    assert_int_equal(payload_device_bytes(&req),
                     3ull * VGPU_SGEMM_MAX_N * VGPU_SGEMM_MAX_N * 4 + 8);
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
        cmocka_unit_test(test_saxpy),
        cmocka_unit_test(test_saxpy_malformed),
        cmocka_unit_test(test_sgemm_matches_reference),
        cmocka_unit_test(test_sgemm_malformed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
