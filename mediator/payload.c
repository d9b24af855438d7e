/*
 * payload.c - owns the parsing of a request payload: its header, its
 * total size, and the hand-off to the op table (op_table.c), which holds every
 * rule that depends on the opcode.
 */
#include "payload.h"

#include "op_table.h"

/* Fills in everything but op from req->iov/flat, then asks the table. */
static uint32_t parse(struct vgpu_request *req, uint64_t max_bytes)
{
    const struct iovec *iov = req->iov ? req->iov : &req->flat;
    unsigned cnt = req->iov ? req->iovcnt : 1;
    struct payload_reader r;
    uint64_t total = 0;

    for (unsigned i = 0; i < cnt; i++) {
        total += iov[i].iov_len;
        if (total > UINT32_MAX) {
            return VGPU_ERR_BAD_REQUEST;
        }
    }
    if (total < sizeof(struct vgpu_req_hdr)) {
        return VGPU_ERR_BAD_REQUEST;
    }
    payload_reader_at(&r, req, 0);
    req->opcode = payload_read_le32(&r);
    req->count = payload_read_le32(&r);
    req->operands_len = (uint32_t)(total - sizeof(struct vgpu_req_hdr));
    req->op = vgpu_op_find(req->opcode);
    if (!req->op) {
        return VGPU_ERR_BAD_OPCODE;
    }
    if (req->op->check) {
        return req->op->check(req, max_bytes, &req->resp_size);
    }
    return vgpu_op_validate_limit(req->op, req->count, req->operands_len,
                                  max_bytes);
}

uint32_t payload_parse_request(const uint8_t *buf, uint32_t len,
                               struct vgpu_request *req)
{
    memset(req, 0, sizeof(*req));
    /* The v1 buffer's bound, before anything is read from it. */
    if (len > VGPU_BUF_SIZE) {
        return VGPU_ERR_BAD_REQUEST;
    }
    req->flat.iov_base = (void *)buf;
    req->flat.iov_len = len;
    return parse(req, VGPU_BUF_SIZE);
}

uint32_t payload_parse_iov(const struct iovec *iov, unsigned iovcnt,
                           struct vgpu_request *req)
{
    memset(req, 0, sizeof(*req));
    req->iov = iov;
    req->iovcnt = iovcnt;
    return parse(req, VGPU_BUF_SIZE);
}

uint32_t payload_parse_iov_limit(const struct iovec *iov, unsigned iovcnt,
                                 uint64_t max_bytes, struct vgpu_request *req)
{
    memset(req, 0, sizeof(*req));
    req->iov = iov;
    req->iovcnt = iovcnt;
    return parse(req, max_bytes);
}

uint64_t payload_device_bytes(const struct vgpu_request *req)
{
    /* A batch's memory is counted where it is allocated (remote/). */
    return req->op && req->op->device_bytes ? req->op->device_bytes(req->count)
                                            : 0;
}

uint32_t payload_resp_size(const struct vgpu_request *req)
{
    if (!req->op) {
        return 0;
    }
    return req->op->check ? req->resp_size : req->op->resp_bytes(req->count);
}
