/*
 * payload.c - owns the rules a request payload must follow to be run.
 */
#include "payload.h"

#include "wire.h"

static uint32_t check_vector_add(const struct vgpu_request *req)
{
    if (req->count == 0 || req->count > VGPU_VECTOR_ADD_MAX_COUNT) {
        return VGPU_ERR_BAD_REQUEST;
    }
    if (req->operands_len != 2 * req->count * sizeof(int32_t)) {
        return VGPU_ERR_BAD_REQUEST;
    }
    return VGPU_ERR_NONE;
}

static uint32_t check_saxpy(const struct vgpu_request *req)
{
    if (req->count == 0 || req->count > VGPU_SAXPY_MAX_COUNT) {
        return VGPU_ERR_BAD_REQUEST;
    }
    if (req->operands_len != sizeof(float) + 2 * req->count * sizeof(float)) {
        return VGPU_ERR_BAD_REQUEST;
    }
    return VGPU_ERR_NONE;
}

static uint32_t check_sgemm(const struct vgpu_request *req)
{
    if (req->count == 0 || req->count > VGPU_SGEMM_MAX_N) {
        return VGPU_ERR_BAD_REQUEST;
    }
    if (req->operands_len != sizeof(uint32_t)) {
        return VGPU_ERR_BAD_REQUEST;
    }
    return VGPU_ERR_NONE;
}

uint32_t payload_parse_request(const uint8_t *buf, uint32_t len,
                               struct vgpu_request *req)
{
    if (len < sizeof(struct vgpu_req_hdr) || len > VGPU_BUF_SIZE) {
        return VGPU_ERR_BAD_REQUEST;
    }
    req->opcode = wire_get_le32(buf);
    req->count = wire_get_le32(buf + 4);
    req->operands = buf + sizeof(struct vgpu_req_hdr);
    req->operands_len = len - (uint32_t)sizeof(struct vgpu_req_hdr);

    switch (req->opcode) {
    case VGPU_OP_VECTOR_ADD:
        return check_vector_add(req);
    case VGPU_OP_SAXPY:
        return check_saxpy(req);
    case VGPU_OP_SGEMM:
        return check_sgemm(req);
    default:
        return VGPU_ERR_BAD_OPCODE;
    }
}

uint64_t payload_device_bytes(const struct vgpu_request *req)
{
    uint64_t n = req->count;

    switch (req->opcode) {
    case VGPU_OP_VECTOR_ADD:
        return 3 * n * sizeof(int32_t);
    case VGPU_OP_SAXPY:
        return 2 * n * sizeof(float);
    case VGPU_OP_SGEMM:
        return 3 * n * n * sizeof(float) + sizeof(uint64_t);
    default:
        return 0;
    }
}

uint32_t payload_put_resp_hdr(uint8_t *out, uint32_t opcode, uint32_t count)
{
    wire_put_le32(out, opcode);
    wire_put_le32(out + 4, count);
    return sizeof(struct vgpu_resp_hdr);
}
