/*
 * wire.h - encoding and framing of device <-> mediator socket messages
 * (struct vgpu_msg_hdr + payload, little-endian on the wire, laid out and
 * checked by vgpu/msg.h).
 *
 * Pure functions over byte buffers: no I/O, so every malformed case can be
 * unit-tested.
 */
#ifndef VGPU_WIRE_H
#define VGPU_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "vgpu_protocol.h"

enum wire_result {
    WIRE_BAD = -1,      /* the stream is corrupt: reply ERROR and close */
    WIRE_NEED_MORE = 0, /* not a whole message yet */
    WIRE_FRAME = 1,     /* one whole message is at the start of the buffer */
};

/*
 * Look at the first bytes of a receive buffer.  On WIRE_FRAME, *hdr holds
 * the decoded header and *frame_len the size of the whole message (header
 * plus payload).  On WIRE_BAD, *why says what was wrong.  The header is
 * checked as soon as it is complete, so an oversize length is refused
 * before its payload is waited for.
 */
enum wire_result wire_frame(const uint8_t *buf, size_t len,
                            struct vgpu_msg_hdr *hdr, size_t *frame_len,
                            const char **why);

/*
 * Write header and payload into out (cap bytes).  hdr->magic and
 * hdr->version are filled in here.  Returns the number of bytes written,
 * or 0 if the message does not fit or hdr->length is over the limit.
 */
size_t wire_encode(uint8_t *out, size_t cap, struct vgpu_msg_hdr *hdr,
                   const void *payload);

/* The contract's vgpu_get_le32/vgpu_put_le32 (vgpu/types.h), by the names
 * the mediator's files use. */
uint32_t wire_get_le32(const uint8_t *p);
void wire_put_le32(uint8_t *p, uint32_t v);

#endif
