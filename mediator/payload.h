/*
 * payload.h - the bytes of a request, wherever they lie, and how they are
 * read.
 *
 * A request payload (struct vgpu_req_hdr + operands) is described by an
 * array of iovecs: one segment for the v1 request buffer, several for a
 * scatter-gather payload (v2) or a call with bulk arguments (v3).  It is
 * parsed and validated once, into a struct vgpu_request that keeps
 * pointing at those bytes (it copies nothing), and every later reader (the
 * op table's CPU execution, the CUDA backend's staging) goes through a
 * struct payload_reader, which crosses segment boundaries, so no code
 * outside this header assumes the operands are contiguous.
 *
 * What each opcode requires (sizes, limits, device memory, response size)
 * is the op table's (op_table.h); this file owns the header, the walk over the
 * segments and the entry points that look an opcode up in that table.
 */
#ifndef VGPU_PAYLOAD_H
#define VGPU_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "vgpu_protocol.h"
#include "wire.h"

struct vgpu_op;

/* A request that passed payload_parse_request() or payload_parse_iov(). */
struct vgpu_request {
    const struct vgpu_op *op; /* its entry in the op table (op_table.h) */
    uint32_t opcode;
    uint32_t count;
    uint32_t operands_len; /* bytes after the header */
    /* Its response's size, for an op that sizes each request itself
     * (struct vgpu_op's check); 0 otherwise. */
    uint32_t resp_size;
    /*
     * Its bytes, header first: iov[0..iovcnt), the caller's, who keeps
     * them alive and unchanged while the request is in use.  A request
     * parsed from one flat buffer has iov NULL and that buffer in flat, so
     * that a copy of the struct is as valid as the original.
     */
    const struct iovec *iov;
    unsigned iovcnt;
    struct iovec flat;
};

/*
 * Check a request payload of len bytes in one buffer (the v1 request
 * buffer: at most VGPU_BUF_SIZE).  Returns VGPU_ERR_NONE and fills *req,
 * or VGPU_ERR_BAD_REQUEST (sizes do not add up) or VGPU_ERR_BAD_OPCODE
 * (opcode unknown).
 */
uint32_t payload_parse_request(const uint8_t *buf, uint32_t len,
                               struct vgpu_request *req);

/* The same for a payload in iovcnt segments (the op table bounds it to
 * what fits the v1 buffers). */
uint32_t payload_parse_iov(const struct iovec *iov, unsigned iovcnt,
                           struct vgpu_request *req);

/*
 * The same with max_bytes (request and response, headers included) as the
 * limit instead of the v1 buffers: the v2 channel's max_xfer.
 */
uint32_t payload_parse_iov_limit(const struct iovec *iov, unsigned iovcnt,
                                 uint64_t max_bytes, struct vgpu_request *req);

/*
 * Device memory a backend needs to run req (inputs and outputs on the
 * GPU), the figure the per-VM quota is checked against.
 */
uint64_t payload_device_bytes(const struct vgpu_request *req);

/* Size of req's response, header included: what a response buffer holds. */
uint32_t payload_resp_size(const struct vgpu_request *req);

/* ---------------------------------------------------------------------- */
/* reading the bytes                                                       */
/* ---------------------------------------------------------------------- */

/*
 * A position in a request's bytes.  Reads past the end yield zeros; a
 * validated request never needs them, since the op table checked the
 * operand size against the count.
 */
struct payload_reader {
    const struct iovec *iov; /* the segment being read */
    const struct iovec *end;
    size_t off; /* into *iov */
};

/*
 * Copy the next len bytes to dst (or skip them when dst is NULL); returns
 * how many there were.
 */
static inline size_t payload_read(struct payload_reader *r, void *dst,
                                  size_t len)
{
    uint8_t *out = dst;
    size_t done = 0;

    while (done < len && r->iov < r->end) {
        size_t avail = r->iov->iov_len - r->off;
        size_t n = avail < len - done ? avail : len - done;

        if (out && n) {
            memcpy(out + done, (const uint8_t *)r->iov->iov_base + r->off, n);
        }
        done += n;
        r->off += n;
        if (r->off == r->iov->iov_len) {
            r->iov++;
            r->off = 0;
        }
    }
    return done;
}

/* A reader at byte `at` of the payload (0: the header's first byte). */
static inline void payload_reader_at(struct payload_reader *r,
                                     const struct vgpu_request *req, size_t at)
{
    r->iov = req->iov ? req->iov : &req->flat;
    r->end = r->iov + (req->iov ? req->iovcnt : 1);
    r->off = 0;
    payload_read(r, NULL, at);
}

/* A reader at byte `at` of the operands. */
static inline void payload_reader_init(struct payload_reader *r,
                                       const struct vgpu_request *req,
                                       size_t at)
{
    payload_reader_at(r, req, sizeof(struct vgpu_req_hdr) + at);
}

/* The next little-endian uint32 (the wire's byte order). */
static inline uint32_t payload_read_le32(struct payload_reader *r)
{
    uint8_t b[4] = {0};

    payload_read(r, b, sizeof(b));
    return wire_get_le32(b);
}

#endif
