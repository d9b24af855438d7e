/*
 * op_table.c - owns the op table (op_table.h): for each opcode, its validity
 * rule, its device memory, its response size and its reference computation on
 * the CPU.  The formats themselves are the contract's (vgpu_protocol.h);
 * the sizes below are written with its macros so that both agree.
 */
#include "op_table.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "remote/batch.h"
#include "vgpu/rpc.h"
#include "wire.h"

/* ---------------------------------------------------------------------- */
/* helpers of the reference computations                                   */
/* ---------------------------------------------------------------------- */

static float read_f32(struct payload_reader *r)
{
    uint32_t bits = payload_read_le32(r);
    float f;

    memcpy(&f, &bits, sizeof(f));
    return f;
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t bits;

    memcpy(&bits, &f, sizeof(bits));
    wire_put_le32(p, bits);
}

/* int32 addition that wraps, as the GPU's does (no UB on overflow). */
static int32_t add_wrapping(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* ---------------------------------------------------------------------- */
/* VECTOR_ADD: int32 a[n], b[n] -> c[n]                                    */
/* ---------------------------------------------------------------------- */

static uint64_t vector_add_operands(uint32_t n)
{
    return VGPU_VECTOR_ADD_REQ_LEN((uint64_t)n) - sizeof(struct vgpu_req_hdr);
}

static uint64_t vector_add_device(uint32_t n)
{
    return 3 * (uint64_t)n * sizeof(int32_t); /* a, b and c */
}

static uint32_t vector_add_resp(uint32_t n)
{
    return (uint32_t)VGPU_VECTOR_ADD_RESP_LEN((uint64_t)n);
}

static uint32_t vector_add_cpu(const struct vgpu_request *req, uint8_t *resp)
{
    struct payload_reader a, b;
    uint32_t len = vgpu_op_put_resp_hdr(resp, req->opcode, req->count);

    payload_reader_init(&a, req, 0);
    payload_reader_init(&b, req, (size_t)req->count * sizeof(int32_t));
    for (uint32_t i = 0; i < req->count; i++) {
        int32_t c = add_wrapping((int32_t)payload_read_le32(&a),
                                 (int32_t)payload_read_le32(&b));

        wire_put_le32(resp + len, (uint32_t)c);
        len += sizeof(int32_t);
    }
    return VGPU_ERR_NONE;
}

/* ---------------------------------------------------------------------- */
/* SAXPY: float a, x[n], y[n] -> a * x + y                                 */
/* ---------------------------------------------------------------------- */

static uint64_t saxpy_operands(uint32_t n)
{
    return VGPU_SAXPY_REQ_LEN((uint64_t)n) - sizeof(struct vgpu_req_hdr);
}

static uint64_t saxpy_device(uint32_t n)
{
    return 2 * (uint64_t)n * sizeof(float); /* x, and y in place */
}

static uint32_t saxpy_resp(uint32_t n)
{
    return (uint32_t)VGPU_SAXPY_RESP_LEN((uint64_t)n);
}

static uint32_t saxpy_cpu(const struct vgpu_request *req, uint8_t *resp)
{
    struct payload_reader r, x, y;
    float a;
    uint32_t len = vgpu_op_put_resp_hdr(resp, req->opcode, req->count);

    payload_reader_init(&r, req, 0);
    a = read_f32(&r);
    payload_reader_init(&x, req, sizeof(float));
    payload_reader_init(&y, req,
                        sizeof(float) + (size_t)req->count * sizeof(float));
    for (uint32_t i = 0; i < req->count; i++) {
        /* Two roundings (no FMA), as the contract asks of every backend. */
        volatile float ax = a * read_f32(&x);

        put_f32(resp + len, ax + read_f32(&y));
        len += sizeof(float);
    }
    return VGPU_ERR_NONE;
}

/* ---------------------------------------------------------------------- */
/* SGEMM: seed, n -> sum of C = A x B                                      */
/* ---------------------------------------------------------------------- */

static uint64_t sgemm_operands(uint32_t n)
{
    (void)n;
    return VGPU_SGEMM_REQ_LEN - sizeof(struct vgpu_req_hdr);
}

static uint64_t sgemm_device(uint32_t n)
{
    /* A, B, C and the int64 checksum. */
    return 3 * (uint64_t)n * n * sizeof(float) + sizeof(uint64_t);
}

static uint32_t sgemm_resp(uint32_t n)
{
    (void)n;
    return (uint32_t)VGPU_SGEMM_RESP_LEN;
}

/* C = A x B in binary32 (exact: small integers), then the int64 sum. */
static uint32_t sgemm_cpu(const struct vgpu_request *req, uint8_t *resp)
{
    const uint32_t n = req->count;
    struct payload_reader r;
    uint32_t seed, len;
    float *a = malloc(sizeof(float) * n * n);
    float *b = malloc(sizeof(float) * n * n);
    float *row = malloc(sizeof(float) * n);
    int64_t sum = 0;

    if (!a || !b || !row) {
        free(row);
        free(b);
        free(a);
        return VGPU_ERR_BACKEND;
    }
    payload_reader_init(&r, req, 0);
    seed = payload_read_le32(&r);
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < n; j++) {
            a[i * n + j] = (float)vgpu_sgemm_a(seed, i, j);
            b[i * n + j] = (float)vgpu_sgemm_b(seed, i, j);
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        memset(row, 0, sizeof(float) * n);
        for (uint32_t k = 0; k < n; k++) {
            const float aik = a[i * n + k];

            for (uint32_t j = 0; j < n; j++) {
                row[j] += aik * b[k * n + j];
            }
        }
        for (uint32_t j = 0; j < n; j++) {
            sum += (int64_t)row[j];
        }
    }
    free(row);
    free(b);
    free(a);
    len = vgpu_op_put_resp_hdr(resp, req->opcode, n);
    wire_put_le32(resp + len, (uint32_t)((uint64_t)sum & 0xffffffffu));
    wire_put_le32(resp + len + 4, (uint32_t)((uint64_t)sum >> 32));
    return VGPU_ERR_NONE;
}

/* ---------------------------------------------------------------------- */
/* the table                                                               */
/* ---------------------------------------------------------------------- */

static const struct vgpu_op table[] = {
    {
        .opcode = VGPU_OP_VECTOR_ADD,
        .name = "vector_add",
        .max_count = VGPU_VECTOR_ADD_MAX_COUNT,
        .xfer_max_count = (uint32_t)((VGPU_XFER_LIMIT - 8) / 8),
        .operand_bytes = vector_add_operands,
        .device_bytes = vector_add_device,
        .resp_bytes = vector_add_resp,
        .cpu_run = vector_add_cpu,
    },
    {
        .opcode = VGPU_OP_SAXPY,
        .name = "saxpy",
        .max_count = VGPU_SAXPY_MAX_COUNT,
        .xfer_max_count = (uint32_t)((VGPU_XFER_LIMIT - 12) / 8),
        .operand_bytes = saxpy_operands,
        .device_bytes = saxpy_device,
        .resp_bytes = saxpy_resp,
        .cpu_run = saxpy_cpu,
    },
    {
        .opcode = VGPU_OP_SGEMM,
        .name = "sgemm",
        .max_count = VGPU_SGEMM_MAX_N,
        .xfer_max_count = VGPU_SGEMM_MAX_N, /* work, not bytes, bounds it */
        .operand_bytes = sgemm_operands,
        .device_bytes = sgemm_device,
        .resp_bytes = sgemm_resp,
        .cpu_run = sgemm_cpu,
    },
};

#define OP_COUNT (sizeof(table) / sizeof(table[0]))

/*
 * A v3 batch on the CPU backend: there is no CUDA device behind it, and the
 * guest is told so in CUDA's terms: GET_VERSION answers no device, and the
 * first other call fails with CUDA_ERROR_NO_DEVICE (the calls after it do
 * not run, as after any failed call of a batch).
 */
static uint32_t cuda_batch_cpu(const struct vgpu_request *req, uint8_t *resp)
{
    struct rpc_walk w;
    struct rpc_call_view c;
    uint32_t len = sizeof(struct vgpu_resp_hdr), ran = 0;

    rpc_walk_init(&w, req);
    while (rpc_walk_next(&w, &c)) {
        uint8_t *ret = resp + len;
        bool version = c.fn == VGPU_RPC_GET_VERSION;
        uint32_t res = version ? VGPU_RPC_RES_GET_VERSION : 0;

        wire_put_le32(ret, c.fn);
        wire_put_le32(ret + 4,
                      version ? VGPU_CU_SUCCESS : VGPU_CU_ERROR_NO_DEVICE);
        wire_put_le32(ret + 8, res);
        wire_put_le32(ret + 12, 0);
        len += sizeof(struct vgpu_rpc_ret);
        if (version) {
            wire_put_le32(resp + len, VGPU_RPC_VERSION);
            wire_put_le32(resp + len + 4, 0); /* no driver */
            wire_put_le32(resp + len + 8, 0); /* no device */
            memset(resp + len + 12, 0, VGPU_RPC_PAD(res) - res);
            len += (uint32_t)VGPU_RPC_PAD(res);
        }
        ran++;
        if (!version) {
            break;
        }
    }
    vgpu_op_put_resp_hdr(resp, req->opcode, ran);
    /* The response is read by its count; what is left of it is zero. */
    memset(resp + len, 0, req->resp_size - len);
    return VGPU_ERR_NONE;
}

/* Ops that size each request themselves (struct vgpu_op's check). */
static const struct vgpu_op batch_ops[] = {
    {
        .opcode = VGPU_OP_CUDA,
        .name = "cuda",
        .cpu_run = cuda_batch_cpu,
        .check = rpc_batch_check,
    },
};

const struct vgpu_op *vgpu_op_find(uint32_t opcode)
{
    for (unsigned i = 0; i < OP_COUNT; i++) {
        if (table[i].opcode == opcode) {
            return &table[i];
        }
    }
    for (unsigned i = 0; i < sizeof(batch_ops) / sizeof(batch_ops[0]); i++) {
        if (batch_ops[i].opcode == opcode) {
            return &batch_ops[i];
        }
    }
    return NULL;
}

const struct vgpu_op *vgpu_op_table(unsigned *count)
{
    *count = OP_COUNT;
    return table;
}

uint32_t vgpu_op_validate(const struct vgpu_op *op, uint32_t count,
                          uint32_t operands_len)
{
    return vgpu_op_validate_limit(op, count, operands_len, VGPU_BUF_SIZE);
}

uint32_t vgpu_op_validate_limit(const struct vgpu_op *op, uint32_t count,
                                uint32_t operands_len, uint64_t max_bytes)
{
    uint32_t bound =
        max_bytes <= VGPU_BUF_SIZE ? op->max_count : op->xfer_max_count;

    /* count first: operand_bytes() is only asked of a bounded count. */
    if (count == 0 || count > bound) {
        return VGPU_ERR_BAD_REQUEST;
    }
    if (operands_len != op->operand_bytes(count)) {
        return VGPU_ERR_BAD_REQUEST;
    }
    if (sizeof(struct vgpu_req_hdr) + (uint64_t)operands_len > max_bytes ||
        op->resp_bytes(count) > max_bytes) {
        return VGPU_ERR_BAD_REQUEST;
    }
    return VGPU_ERR_NONE;
}

uint32_t vgpu_op_put_resp_hdr(uint8_t *out, uint32_t opcode, uint32_t count)
{
    wire_put_le32(out, opcode);
    wire_put_le32(out + 4, count);
    return sizeof(struct vgpu_resp_hdr);
}
