/*
 * fuzz-wire.c - libFuzzer target for the mediator's socket framing
 * (mediator/wire.c): every byte a qemu-dm sends, which a guest that took
 * over its qemu-dm controls.
 *
 * The input is a receive stream cut into frames the way the mediator's
 * read loop does (wire_frame on what is buffered, then drop the frame).
 * Checked: a frame never claims more bytes than the buffer holds or than
 * the largest message, a refused stream says why, and a frame's header
 * encodes back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    size_t off = 0;

    if (!buf) {
        return 0;
    }
    memcpy(buf, data, size);
    while (off < size) {
        struct vgpu_msg_hdr hdr;
        const char *why = NULL;
        size_t frame_len = 0;
        enum wire_result r =
            wire_frame(buf + off, size - off, &hdr, &frame_len, &why);

        if (r == WIRE_NEED_MORE) {
            break;
        }
        if (r == WIRE_BAD) {
            if (!why) {
                abort();
            }
            break;
        }
        if (frame_len < VGPU_MSG_HDR_SIZE || frame_len > size - off ||
            frame_len > VGPU_MSG_MAX_SIZE ||
            frame_len != VGPU_MSG_HDR_SIZE + hdr.length) {
            abort();
        }
        {
            uint8_t out[VGPU_MSG_MAX_SIZE];
            size_t n = wire_encode(out, sizeof(out), &hdr,
                                   buf + off + VGPU_MSG_HDR_SIZE);

            if (n != frame_len || memcmp(out, buf + off, n) != 0) {
                abort();
            }
        }
        off += frame_len;
    }
    free(buf);
    return 0;
}
