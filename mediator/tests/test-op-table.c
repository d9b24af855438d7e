/*
 * test-op-table.c - unit tests of the op table (op_table.c) and of request
 * parsing over iovecs (payload.c).
 *
 * The validation edge cases are generated from the table itself (every
 * entry: count 0, 1, max, max + 1, counts that overflow 32-bit sizes,
 * operands one byte short or long), so an op added to the table is tested
 * without a new case here; the sizes the table states are checked against
 * the contract's macros, and a request cut into segments at every byte
 * must parse and compute exactly as the same bytes in one buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "backend.h"
#include "op_table.h"
#include "payload.h"
#include "wire.h"

/* A request of op with count elements and operand bytes of pattern. */
static uint32_t make_request(uint8_t *buf, size_t cap, uint32_t opcode,
                             uint32_t count, uint64_t operands)
{
    uint64_t len = sizeof(struct vgpu_req_hdr) + operands;

    assert_true(len <= cap);
    wire_put_le32(buf, opcode);
    wire_put_le32(buf + 4, count);
    for (uint64_t i = 0; i < operands; i++) {
        /* Small integers: valid int32s and finite floats alike. */
        buf[8 + i] = (i % 4 == 0) ? (uint8_t)(i / 4 % 7) : 0;
    }
    return (uint32_t)len;
}

static void test_table_is_sane(void **state)
{
    unsigned n;
    const struct vgpu_op *t = vgpu_op_table(&n);

    (void)state;
    assert_true(n >= 3);
    for (unsigned i = 0; i < n; i++) {
        assert_ptr_equal(vgpu_op_find(t[i].opcode), &t[i]);
        assert_non_null(t[i].name);
        assert_true(t[i].max_count >= 1);
        assert_non_null(t[i].operand_bytes);
        assert_non_null(t[i].device_bytes);
        assert_non_null(t[i].resp_bytes);
        assert_non_null(t[i].cpu_run);
        for (unsigned j = 0; j < i; j++) {
            assert_int_not_equal(t[i].opcode, t[j].opcode);
            assert_string_not_equal(t[i].name, t[j].name);
        }
        /* Responses are a header and 32-bit words (the CUDA staging). */
        assert_true(t[i].resp_bytes(1) >= sizeof(struct vgpu_resp_hdr));
        assert_int_equal(
            (t[i].resp_bytes(t[i].max_count) - sizeof(struct vgpu_resp_hdr)) %
                4,
            0);
        /* A v1 request of the largest count fits the 1 KB buffer. */
        assert_true(sizeof(struct vgpu_req_hdr) +
                        t[i].operand_bytes(t[i].max_count) <=
                    VGPU_BUF_SIZE);
        assert_true(t[i].resp_bytes(t[i].max_count) <= VGPU_BUF_SIZE);
    }
}

/* The table's sizes are the contract's (vgpu_protocol.h). */
static void test_sizes_match_the_contract(void **state)
{
    const uint32_t counts[] = {1, 2, 17, 64, 127, 1024};
    const struct vgpu_op *add = vgpu_op_find(VGPU_OP_VECTOR_ADD);
    const struct vgpu_op *saxpy = vgpu_op_find(VGPU_OP_SAXPY);
    const struct vgpu_op *sgemm = vgpu_op_find(VGPU_OP_SGEMM);

    (void)state;
    assert_non_null(add);
    assert_non_null(saxpy);
    assert_non_null(sgemm);
    assert_int_equal(add->max_count, VGPU_VECTOR_ADD_MAX_COUNT);
    assert_int_equal(saxpy->max_count, VGPU_SAXPY_MAX_COUNT);
    assert_int_equal(sgemm->max_count, VGPU_SGEMM_MAX_N);
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        uint64_t n = counts[i];

        assert_int_equal(add->operand_bytes(counts[i]) + 8,
                         VGPU_VECTOR_ADD_REQ_LEN(n));
        assert_int_equal(add->resp_bytes(counts[i]),
                         VGPU_VECTOR_ADD_RESP_LEN(n));
        assert_int_equal(add->device_bytes(counts[i]), 12 * n);
        assert_int_equal(saxpy->operand_bytes(counts[i]) + 8,
                         VGPU_SAXPY_REQ_LEN(n));
        assert_int_equal(saxpy->resp_bytes(counts[i]), VGPU_SAXPY_RESP_LEN(n));
        assert_int_equal(saxpy->device_bytes(counts[i]), 8 * n);
        assert_int_equal(sgemm->operand_bytes(counts[i]) + 8,
                         VGPU_SGEMM_REQ_LEN);
        assert_int_equal(sgemm->resp_bytes(counts[i]), VGPU_SGEMM_RESP_LEN);
        assert_int_equal(sgemm->device_bytes(counts[i]), 12 * n * n + 8);
    }
}

/* Every entry's validity rule, at and around each of its edges. */
static void test_validation_edges_of_every_op(void **state)
{
    unsigned n;
    const struct vgpu_op *t = vgpu_op_table(&n);

    (void)state;
    for (unsigned i = 0; i < n; i++) {
        const struct vgpu_op *op = &t[i];
        const uint32_t max = op->max_count;
        const uint32_t ok[] = {1, 2, max / 2 ? max / 2 : 1, max};
        const uint32_t bad[] = {0, max + 1, 0x80000001u, 0xffffffffu};

        for (size_t k = 0; k < sizeof(ok) / sizeof(ok[0]); k++) {
            uint32_t c = ok[k] > max ? max : ok[k];
            uint32_t len = (uint32_t)op->operand_bytes(c);

            assert_int_equal(vgpu_op_validate(op, c, len), VGPU_ERR_NONE);
            /* One byte short or over, or none at all: refused. */
            if (len > 0) {
                assert_int_equal(vgpu_op_validate(op, c, len - 1),
                                 VGPU_ERR_BAD_REQUEST);
            }
            assert_int_equal(vgpu_op_validate(op, c, len + 1),
                             VGPU_ERR_BAD_REQUEST);
            if (len > 0) {
                assert_int_equal(vgpu_op_validate(op, c, 0),
                                 VGPU_ERR_BAD_REQUEST);
            }
        }
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            /* Whatever operands come with it. */
            assert_int_equal(vgpu_op_validate(op, bad[k], 0),
                             VGPU_ERR_BAD_REQUEST);
            assert_int_equal(
                vgpu_op_validate(op, bad[k], (uint32_t)op->operand_bytes(1)),
                VGPU_ERR_BAD_REQUEST);
            assert_int_equal(
                vgpu_op_validate(op, bad[k], (uint32_t)op->operand_bytes(max)),
                VGPU_ERR_BAD_REQUEST);
            assert_int_equal(vgpu_op_validate(op, bad[k], 0xffffffffu),
                             VGPU_ERR_BAD_REQUEST);
        }
    }
}

/* The same edges through the parser, as a guest's bytes. */
static void test_parse_edges_of_every_op(void **state)
{
    uint8_t buf[VGPU_BUF_SIZE + 16];
    struct vgpu_request req;
    unsigned n;
    const struct vgpu_op *t = vgpu_op_table(&n);

    (void)state;
    for (unsigned i = 0; i < n; i++) {
        const struct vgpu_op *op = &t[i];
        const uint32_t max = op->max_count;
        uint32_t len;

        len = make_request(buf, sizeof(buf), op->opcode, max,
                           op->operand_bytes(max));
        assert_int_equal(payload_parse_request(buf, len, &req), VGPU_ERR_NONE);
        assert_ptr_equal(req.op, op);
        assert_int_equal(req.opcode, op->opcode);
        assert_int_equal(req.count, max);
        assert_int_equal(req.operands_len, op->operand_bytes(max));
        assert_int_equal(payload_device_bytes(&req), op->device_bytes(max));
        assert_int_equal(payload_resp_size(&req), op->resp_bytes(max));

        len =
            make_request(buf, sizeof(buf), op->opcode, 1, op->operand_bytes(1));
        assert_int_equal(payload_parse_request(buf, len, &req), VGPU_ERR_NONE);
        assert_int_equal(payload_parse_request(buf, len - 1, &req),
                         VGPU_ERR_BAD_REQUEST);
        assert_int_equal(payload_parse_request(buf, len + 1, &req),
                         VGPU_ERR_BAD_REQUEST);
        wire_put_le32(buf + 4, 0);
        assert_int_equal(payload_parse_request(buf, len, &req),
                         VGPU_ERR_BAD_REQUEST);
        wire_put_le32(buf + 4, max + 1);
        assert_int_equal(payload_parse_request(buf, len, &req),
                         VGPU_ERR_BAD_REQUEST);
        assert_int_equal(payload_parse_request(buf, VGPU_BUF_SIZE, &req),
                         VGPU_ERR_BAD_REQUEST);
        /* Only a header: every op takes operands. */
        wire_put_le32(buf + 4, 1);
        assert_int_equal(payload_parse_request(buf, 8, &req),
                         VGPU_ERR_BAD_REQUEST);
    }
    /* Over the v1 buffer, whatever it holds. */
    assert_int_equal(payload_parse_request(buf, VGPU_BUF_SIZE + 1, &req),
                     VGPU_ERR_BAD_REQUEST);
}

static void test_unknown_opcodes(void **state)
{
    uint8_t buf[64];
    struct vgpu_request req;
    unsigned known = 0;

    (void)state;
    for (uint32_t op = 0; op < 300; op++) {
        uint32_t len = make_request(buf, sizeof(buf), op, 1, 8);

        if (vgpu_op_find(op)) {
            known++;
            continue;
        }
        assert_int_equal(payload_parse_request(buf, len, &req),
                         VGPU_ERR_BAD_OPCODE);
    }
    assert_null(vgpu_op_find(0xffffffffu));
    assert_null(vgpu_op_find(0x80000001u));
    {
        unsigned n;

        vgpu_op_table(&n);
        /* The count-sized ops, and the v3 batch (it sizes itself). */
        assert_int_equal(known, n + 1);
        assert_non_null(vgpu_op_find(VGPU_OP_CUDA));
        assert_non_null(vgpu_op_find(VGPU_OP_CUDA)->check);
    }
}

/* Segments of a payload: cut at each offset in cuts, empties between. */
static unsigned cut(const uint8_t *buf, uint32_t len, const uint32_t *cuts,
                    unsigned ncuts, struct iovec *iov)
{
    unsigned cnt = 0;
    uint32_t at = 0;

    for (unsigned i = 0; i <= ncuts; i++) {
        uint32_t end = i < ncuts ? cuts[i] : len;

        iov[cnt].iov_base = (void *)(buf + at);
        iov[cnt++].iov_len = end - at;
        iov[cnt].iov_base = NULL; /* an empty segment: skipped */
        iov[cnt++].iov_len = 0;
        at = end;
    }
    return cnt;
}

/* Any split of the bytes parses and computes as the flat buffer does. */
static void test_iov_splits_compute_the_same(void **state)
{
    uint8_t buf[VGPU_BUF_SIZE];
    uint8_t flat_resp[VGPU_BUF_SIZE], iov_resp[VGPU_BUF_SIZE];
    struct iovec iov[8];
    unsigned n;
    const struct vgpu_op *t = vgpu_op_table(&n);

    (void)state;
    for (unsigned i = 0; i < n; i++) {
        const struct vgpu_op *op = &t[i];
        uint32_t count = op->max_count < 9 ? op->max_count : 9;
        uint32_t len = make_request(buf, sizeof(buf), op->opcode, count,
                                    op->operand_bytes(count));
        struct vgpu_request flat, split;
        uint32_t flat_len, split_len;

        assert_int_equal(payload_parse_request(buf, len, &flat), VGPU_ERR_NONE);
        assert_int_equal(backend_cpu_execute(&flat, flat_resp, &flat_len),
                         VGPU_ERR_NONE);
        assert_int_equal(flat_len, op->resp_bytes(count));
        for (uint32_t a = 0; a <= len; a++) {
            for (uint32_t b = a; b <= len; b += 3) {
                const uint32_t cuts[2] = {a, b};
                unsigned cnt = cut(buf, len, cuts, 2, iov);

                assert_int_equal(payload_parse_iov(iov, cnt, &split),
                                 VGPU_ERR_NONE);
                assert_ptr_equal(split.op, op);
                assert_int_equal(split.count, count);
                assert_int_equal(split.operands_len, flat.operands_len);
                memset(iov_resp, 0xa5, sizeof(iov_resp));
                assert_int_equal(
                    backend_cpu_execute(&split, iov_resp, &split_len),
                    VGPU_ERR_NONE);
                assert_int_equal(split_len, flat_len);
                assert_memory_equal(iov_resp, flat_resp, flat_len);
            }
        }
        /* A split that leaves a byte out is a short request. */
        iov[0].iov_base = buf;
        iov[0].iov_len = len - 1;
        assert_int_equal(payload_parse_iov(iov, 1, &split),
                         VGPU_ERR_BAD_REQUEST);
    }
}

static void test_iov_bounds(void **state)
{
    uint8_t buf[16] = {0};
    struct iovec iov[3] = {{0}};
    struct vgpu_request req;

    (void)state;
    /* Nothing, or less than a header in pieces. */
    assert_int_equal(payload_parse_iov(iov, 0, &req), VGPU_ERR_BAD_REQUEST);
    iov[0] = (struct iovec){buf, 3};
    iov[1] = (struct iovec){buf + 3, 4};
    assert_int_equal(payload_parse_iov(iov, 2, &req), VGPU_ERR_BAD_REQUEST);
    /* Segments whose sizes add up past 32 bits: refused before reading. */
    iov[0] = (struct iovec){buf, 8};
    iov[1] = (struct iovec){buf, 0xffffffffu};
    iov[2] = (struct iovec){buf, 0xffffffffu};
    assert_int_equal(payload_parse_iov(iov, 3, &req), VGPU_ERR_BAD_REQUEST);
}

/* A reader crosses segments, and yields zeros past the end. */
static void test_reader(void **state)
{
    uint8_t a[] = {8, 0, 0, 0, 1, 0, 0, 0, 0x11, 0x22};
    uint8_t b[] = {0x33, 0x44, 0x55};
    struct iovec iov[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
    struct vgpu_request req = {.iov = iov, .iovcnt = 2};
    struct payload_reader r;
    uint8_t out[4];

    (void)state;
    payload_reader_init(&r, &req, 0);
    assert_int_equal(payload_read_le32(&r), 0x44332211u);
    assert_int_equal(payload_read(&r, out, sizeof(out)), 1);
    assert_int_equal(out[0], 0x55);
    assert_int_equal(payload_read_le32(&r), 0);
    payload_reader_at(&r, &req, 0);
    assert_int_equal(payload_read_le32(&r), 8);
    payload_reader_init(&r, &req, 3);
    assert_int_equal(payload_read(&r, NULL, 100), 2);
}

/* A copy of a request parsed from one buffer is as good as the original. */
static void test_flat_copy(void **state)
{
    uint8_t buf[VGPU_BUF_SIZE], r1[VGPU_BUF_SIZE], r2[VGPU_BUF_SIZE];
    const struct vgpu_op *op = vgpu_op_find(VGPU_OP_VECTOR_ADD);
    struct vgpu_request req, *copy = malloc(sizeof(*copy));
    uint32_t len =
        make_request(buf, sizeof(buf), op->opcode, 5, op->operand_bytes(5));
    uint32_t l1, l2;

    (void)state;
    assert_non_null(copy);
    assert_int_equal(payload_parse_request(buf, len, &req), VGPU_ERR_NONE);
    *copy = req;
    memset(&req, 0xff, sizeof(req));
    assert_int_equal(payload_parse_request(buf, len, &req), VGPU_ERR_NONE);
    assert_int_equal(backend_cpu_execute(&req, r1, &l1), VGPU_ERR_NONE);
    assert_int_equal(backend_cpu_execute(copy, r2, &l2), VGPU_ERR_NONE);
    assert_int_equal(l1, l2);
    assert_memory_equal(r1, r2, l1);
    free(copy);
}

/*
 * The byte limit is the transport's: a 64 MiB VECTOR_ADD (count 8 Mi - 1)
 * passes under the v2 channel's max_xfer and is refused under the v1
 * buffer, and a request or response one byte over the limit is refused.
 */
static void test_limit_is_a_parameter(void **state)
{
    const struct vgpu_op *add = vgpu_op_find(VGPU_OP_VECTOR_ADD);
    const uint64_t mib64 = 64ull << 20;
    const uint32_t n = (uint32_t)((mib64 - 8) / 8);
    const uint32_t operands = (uint32_t)(mib64 - 8);
    struct iovec iov;
    struct vgpu_request req;
    uint8_t *buf = calloc(1, mib64);

    (void)state;
    assert_non_null(buf);
    assert_int_equal(vgpu_op_validate_limit(add, n, operands, mib64),
                     VGPU_ERR_NONE);
    assert_int_equal(vgpu_op_validate_limit(add, n, operands, mib64 - 1),
                     VGPU_ERR_BAD_REQUEST);
    assert_int_equal(vgpu_op_validate(add, n, operands), VGPU_ERR_BAD_REQUEST);
    assert_int_equal(vgpu_op_validate_limit(add, n, operands, VGPU_BUF_SIZE),
                     VGPU_ERR_BAD_REQUEST);
    /* The v1 rule is unchanged under a v1 limit. */
    assert_int_equal(vgpu_op_validate_limit(add, VGPU_VECTOR_ADD_MAX_COUNT,
                                            (uint32_t)add->operand_bytes(
                                                VGPU_VECTOR_ADD_MAX_COUNT),
                                            VGPU_BUF_SIZE),
                     VGPU_ERR_NONE);
    /* SGEMM's bound is work, not bytes. */
    assert_int_equal(vgpu_op_validate_limit(vgpu_op_find(VGPU_OP_SGEMM),
                                            VGPU_SGEMM_MAX_N + 1, 4, mib64),
                     VGPU_ERR_BAD_REQUEST);
    /* Parsed over iovecs with the limit, and without it. */
    wire_put_le32(buf, VGPU_OP_VECTOR_ADD);
    wire_put_le32(buf + 4, n);
    iov.iov_base = buf;
    iov.iov_len = mib64;
    assert_int_equal(payload_parse_iov_limit(&iov, 1, mib64, &req),
                     VGPU_ERR_NONE);
    assert_int_equal(req.count, n);
    assert_int_equal(payload_resp_size(&req), 8 + 4 * (uint64_t)n);
    assert_int_equal(payload_parse_iov(&iov, 1, &req), VGPU_ERR_BAD_REQUEST);
    assert_int_equal(payload_parse_request(buf, (uint32_t)mib64, &req),
                     VGPU_ERR_BAD_REQUEST);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_sane),
        cmocka_unit_test(test_sizes_match_the_contract),
        cmocka_unit_test(test_validation_edges_of_every_op),
        cmocka_unit_test(test_parse_edges_of_every_op),
        cmocka_unit_test(test_unknown_opcodes),
        cmocka_unit_test(test_iov_splits_compute_the_same),
        cmocka_unit_test(test_iov_bounds),
        cmocka_unit_test(test_reader),
        cmocka_unit_test(test_flat_copy),
        cmocka_unit_test(test_limit_is_a_parameter),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
