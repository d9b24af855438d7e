/*
 * payload.h - validation of the request payloads a guest writes into the
 * device's request buffer (struct vgpu_req_hdr + operands).
 *
 * Every request is checked here, once, before any backend sees it; a
 * backend may then rely on the sizes in struct vgpu_request.
 */
#ifndef VGPU_PAYLOAD_H
#define VGPU_PAYLOAD_H

#include <stdint.h>

#include "vgpu_protocol.h"

/* A request that passed payload_parse_request(). */
struct vgpu_request {
    uint32_t opcode;
    uint32_t count;
    const uint8_t *operands; /* points into the caller's buffer */
    uint32_t operands_len;
};

/*
 * Check a request payload of len bytes.  Returns VGPU_ERR_NONE and fills
 * *req, or VGPU_ERR_BAD_REQUEST (sizes do not add up) or
 * VGPU_ERR_BAD_OPCODE (opcode unknown).
 */
uint32_t payload_parse_request(const uint8_t *buf, uint32_t len,
                               struct vgpu_request *req);

/*
 * Device memory a backend needs to run req (inputs and outputs on the
 * GPU), the figure the per-VM quota is checked against.
 */
uint64_t payload_device_bytes(const struct vgpu_request *req);

/* Write a response header; returns its size. */
uint32_t payload_put_resp_hdr(uint8_t *out, uint32_t opcode, uint32_t count);

#endif
