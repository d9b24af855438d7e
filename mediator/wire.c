/*
 * wire.c - owns the byte layout of socket messages between vgpu-stub and
 * vgpu-mediator: header decoding with every field checked, and encoding.
 */
#include "wire.h"

#include <string.h>

uint32_t wire_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

void wire_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = v & 0xff;
    p[1] = (v >> 8) & 0xff;
    p[2] = (v >> 16) & 0xff;
    p[3] = (v >> 24) & 0xff;
}

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = v & 0xff;
    p[1] = (v >> 8) & 0xff;
}

/* Field offsets inside the 24-byte header, as laid out in the contract. */
enum {
    OFF_MAGIC = 0,
    OFF_VERSION = 4,
    OFF_TYPE = 6,
    OFF_REQUEST_ID = 8,
    OFF_VM_ID = 12,
    OFF_STATUS = 16,
    OFF_LENGTH = 20,
};

static void decode_hdr(const uint8_t *buf, struct vgpu_msg_hdr *hdr)
{
    hdr->magic = wire_get_le32(buf + OFF_MAGIC);
    hdr->version = get_le16(buf + OFF_VERSION);
    hdr->type = get_le16(buf + OFF_TYPE);
    hdr->request_id = wire_get_le32(buf + OFF_REQUEST_ID);
    hdr->vm_id = wire_get_le32(buf + OFF_VM_ID);
    hdr->status = wire_get_le32(buf + OFF_STATUS);
    hdr->length = wire_get_le32(buf + OFF_LENGTH);
}

static const char *check_hdr(const struct vgpu_msg_hdr *hdr)
{
    if (hdr->magic != VGPU_MSG_MAGIC) {
        return "bad magic";
    }
    if (hdr->version != VGPU_MSG_VERSION) {
        return "unsupported version";
    }
    if (hdr->type < VGPU_MSG_HELLO || hdr->type > VGPU_MSG_TYPE_MAX) {
        return "unknown message type";
    }
    if (hdr->length > VGPU_MSG_MAX_PAYLOAD) {
        return "payload length over the limit";
    }
    return NULL;
}

enum wire_result wire_frame(const uint8_t *buf, size_t len,
                            struct vgpu_msg_hdr *hdr, size_t *frame_len,
                            const char **why)
{
    if (len < VGPU_MSG_HDR_SIZE) {
        return WIRE_NEED_MORE;
    }
    decode_hdr(buf, hdr);
    *why = check_hdr(hdr);
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
    wire_put_le32(out + OFF_MAGIC, hdr->magic);
    put_le16(out + OFF_VERSION, hdr->version);
    put_le16(out + OFF_TYPE, hdr->type);
    wire_put_le32(out + OFF_REQUEST_ID, hdr->request_id);
    wire_put_le32(out + OFF_VM_ID, hdr->vm_id);
    wire_put_le32(out + OFF_STATUS, hdr->status);
    wire_put_le32(out + OFF_LENGTH, hdr->length);
    if (hdr->length) {
        memcpy(out + VGPU_MSG_HDR_SIZE, payload, hdr->length);
    }
    return total;
}
