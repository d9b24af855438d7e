/*
 * wire.c - owns the mediator's framing of socket messages between
 * vgpu-stub and vgpu-mediator: finding whole messages in a receive buffer
 * (the header checked as soon as it is complete) and encoding replies.
 * The byte layout and the header check are the contract's (vgpu/msg.h).
 */
#include "wire.h"

#include <string.h>

uint32_t wire_get_le32(const uint8_t *p)
{
    return vgpu_get_le32(p);
}

void wire_put_le32(uint8_t *p, uint32_t v)
{
    vgpu_put_le32(p, v);
}

enum wire_result wire_frame(const uint8_t *buf, size_t len,
                            struct vgpu_msg_hdr *hdr, size_t *frame_len,
                            const char **why)
{
    if (len < VGPU_MSG_HDR_SIZE) {
        return WIRE_NEED_MORE;
    }
    vgpu_msg_hdr_unpack(buf, hdr);
    *why = vgpu_msg_hdr_check(hdr);
    if (*why) {
        return WIRE_BAD;
    }
    if (len < VGPU_MSG_HDR_SIZE + (size_t)hdr->length) {
        return WIRE_NEED_MORE;
    }
    *frame_len = VGPU_MSG_HDR_SIZE + hdr->length;
    return WIRE_FRAME;
}

size_t wire_encode(uint8_t *out, size_t cap, struct vgpu_msg_hdr *hdr,
                   const void *payload)
{
    size_t total = VGPU_MSG_HDR_SIZE + (size_t)hdr->length;

    if (hdr->length > VGPU_MSG_MAX_PAYLOAD || total > cap) {
        return 0;
    }
    hdr->magic = VGPU_MSG_MAGIC;
    hdr->version = VGPU_MSG_VERSION;
    vgpu_msg_hdr_pack(out, hdr);
    if (hdr->length) {
        memcpy(out + VGPU_MSG_HDR_SIZE, payload, hdr->length);
    }
    return total;
}
