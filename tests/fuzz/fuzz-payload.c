/*
 * fuzz-payload.c - libFuzzer target for request payloads (mediator/
 * payload.c over the op table, mediator/op_table.c): every byte of a
 * guest's request, which reaches the mediator unchanged through its
 * qemu-dm.
 *
 * The first byte decides where the rest is cut into up to 8 segments (a
 * v2 scatter-gather payload), the rest is the request.  Checked: the
 * segmented parse agrees with the one-buffer parse (same verdict, same op
 * and count); a request accepted has sizes that add up and a response
 * size within the op's bound; and when it is cheap enough to compute
 * (SGEMM only up to n = 32), the CPU reference runs on it under the
 * sanitizers and fills no more than its response size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "backend.h"
#include "op_table.h"
#include "payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEGS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vgpu_request flat, seg;
    struct iovec iov[MAX_SEGS];
    uint8_t *copy, *resp;
    unsigned nseg = 0;
    uint32_t e1, e2, resp_len;
    size_t off = 0, len;

    if (size < 1 || size - 1 > VGPU_BUF_SIZE) {
        return 0;
    }
    len = size - 1;
    copy = malloc(len ? len : 1);
    if (!copy) {
        return 0;
    }
    memcpy(copy, data + 1, len);
    /* Cuts: bit i of data[0] ends a segment after byte i * len / 8. */
    for (unsigned i = 1; i <= MAX_SEGS; i++) {
        size_t end = i == MAX_SEGS ? len : (size_t)i * len / MAX_SEGS;

        if ((i == MAX_SEGS || (data[0] >> (i - 1)) & 1) && end > off) {
            iov[nseg].iov_base = copy + off;
            iov[nseg].iov_len = end - off;
            nseg++;
            off = end;
        }
    }
    e1 = payload_parse_request(copy, (uint32_t)len, &flat);
    e2 = payload_parse_iov(iov, nseg, &seg);
    if (e1 != e2) {
        abort();
    }
    if (e1 == VGPU_ERR_NONE) {
        if (!flat.op || flat.op != seg.op || flat.count != seg.count ||
            flat.opcode != seg.opcode) {
            abort();
        }
        resp_len = payload_resp_size(&flat);
        if (resp_len < 8 || resp_len > VGPU_BUF_SIZE) {
            abort();
        }
        if (flat.opcode != VGPU_OP_SGEMM || flat.count <= 32) {
            uint32_t n = 0;

            resp = malloc(resp_len);
            if (resp && backend_cpu_execute(&seg, resp, &n) == VGPU_ERR_NONE &&
                n > resp_len) {
                abort();
            }
            free(resp);
        }
    }
    free(copy);
    return 0;
}
