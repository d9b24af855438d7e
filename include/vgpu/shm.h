/*
 * vgpu/shm.h - owns the v2 channel between the vgpu-stub device (qemu-dm)
 * and vgpu-mediator: the control messages on the unix socket that set it
 * up, the layout of the shared staging region, its two rings and their
 * entries, the staging chunks and who owns each, the adaptive-polling
 * flags, and the rules each side checks on what the other wrote.
 *
 * Why this shape (Xen): guest RAM is not qemu-dm's own memory, so it cannot
 * be shared with the mediator; qemu-dm is the one party that touches guest
 * pages (pci_dma_read/write).  The mediator therefore creates a memfd (it
 * sizes it), maps it, and hands it with two eventfds to the device over the
 * socket (SCM_RIGHTS, as vhost-user does).  Requests, completions and
 * payload bytes then travel through that region; the socket carries only
 * control.  Payloads stream in chunks, so moving a GB needs a few MB of
 * staging, and copying from guest memory overlaps the mediator's work.
 *
 * Trust: the device may be a qemu-dm a guest has taken over.  The mediator
 * never reads the layout back from the region (it uses what it offered),
 * copies every entry out of the region before it looks at it (the other
 * side may rewrite it meanwhile) and checks every index, chunk number and
 * length (vgpu_shm_ring_avail and the rules below); any breach ends that
 * domain's channel, as a malformed socket message ends its connection.
 *
 * Kernel-safe (see types.h), though only dom0 programs use it.
 */
#ifndef VGPU_SHM_H
#define VGPU_SHM_H

#include "msg.h"
#include "types.h"

/* ---------------------------------------------------------------------- */
/* Set-up, on the socket                                                   */
/* ---------------------------------------------------------------------- */

/*
 * After HELLO_ACK a device with rings sends VGPU_MSG_SHM_REQ (payload: u32
 * VGPU_SHM_VERSION, u32 the device's ring caps).  The mediator answers
 * VGPU_MSG_SHM_OFFER with exactly three fds in one SCM_RIGHTS control
 * message, in this order: the memfd of the region, the kick eventfd
 * (device -> mediator: "the sub ring has entries"), the call eventfd
 * (mediator -> device: "the comp ring has entries"); its payload is
 * struct vgpu_shm_offer.  Or it answers VGPU_MSG_SHM_OFFER with a status
 * other than VGPU_ERR_NONE, no fds and no payload: no channel (the device
 * completes ring requests with that status).  A second SHM_REQ on one
 * connection is a protocol error.  The channel lives and dies with the
 * connection: a new connection is a new channel with a new region, and
 * nothing of the old one is read again.
 *
 * The device checks the offer (sizes add up, fits the memfd's size by
 * fstat, entry counts powers of two, chunk size a multiple of 4 KB); a bad
 * offer is a protocol error.
 *
 * The mediator creates the memfd with MFD_ALLOW_SEALING | MFD_CLOEXEC,
 * sizes it, and seals it (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
 * before sending it, so a hostile qemu-dm can neither shrink it under the
 * mediator's mapping (a SIGBUS in the daemon) nor grow it nor lift the
 * seals; its ftruncate fails with EPERM.  Only the mediator's mapping of
 * region_size bytes is ever used.
 */
#define VGPU_SHM_VERSION 1u
#define VGPU_SHM_REQ_SIZE 8u
#define VGPU_SHM_FDS 3u
#define VGPU_SHM_FD_REGION 0u
#define VGPU_SHM_FD_KICK 1u
#define VGPU_SHM_FD_CALL 2u

struct vgpu_shm_offer {
    vgpu_u32 version;       /* VGPU_SHM_VERSION */
    vgpu_u32 ring_entries;  /* entries of each ring, power of two */
    vgpu_u64 region_size;   /* bytes of the memfd mapped */
    vgpu_u32 sub_off;       /* offset of the sub ring's entries */
    vgpu_u32 comp_off;      /* offset of the comp ring's entries */
    vgpu_u64 req_pool_off;  /* offset of the request chunks */
    vgpu_u64 resp_pool_off; /* offset of the response chunks */
    vgpu_u32 chunk_size;    /* bytes of one chunk, multiple of 4096 */
    vgpu_u32 req_chunks;    /* chunks in the request pool */
    vgpu_u32 resp_chunks;   /* chunks in the response pool */
    vgpu_u32 max_inflight;  /* requests the device may have open */
    vgpu_u64 max_xfer;      /* bytes per request and response at most */
};
#define VGPU_SHM_OFFER_SIZE 64u

#define VGPU_SHM_OFFER_OFF_VERSION 0u
#define VGPU_SHM_OFFER_OFF_RING_ENTRIES 4u
#define VGPU_SHM_OFFER_OFF_REGION_SIZE 8u
#define VGPU_SHM_OFFER_OFF_SUB_OFF 16u
#define VGPU_SHM_OFFER_OFF_COMP_OFF 20u
#define VGPU_SHM_OFFER_OFF_REQ_POOL_OFF 24u
#define VGPU_SHM_OFFER_OFF_RESP_POOL_OFF 32u
#define VGPU_SHM_OFFER_OFF_CHUNK_SIZE 40u
#define VGPU_SHM_OFFER_OFF_REQ_CHUNKS 44u
#define VGPU_SHM_OFFER_OFF_RESP_CHUNKS 48u
#define VGPU_SHM_OFFER_OFF_MAX_INFLIGHT 52u
#define VGPU_SHM_OFFER_OFF_MAX_XFER 56u

/* ---------------------------------------------------------------------- */
/* The region                                                              */
/* ---------------------------------------------------------------------- */

/*
 * Offset 0: the control block, one 64-byte line per writer so the two
 * sides never write the same cache line.
 *
 *   line 0 (device writes):   sub_prod, comp_cons, dev_sleeping
 *   line 1 (mediator writes): sub_cons, comp_prod, med_sleeping
 *
 * Indices are free-running u32 counters; an entry's slot is index modulo
 * ring_entries.  A reader takes prod - cons entries, and only if that is
 * at most ring_entries (vgpu_shm_ring_avail); more is a breach.
 *
 * Adaptive polling: a side with work spins on the other's producer index
 * for a bounded time, then sets its *_sleeping flag, issues a full
 * barrier, reads the index once more, and only then sleeps on its eventfd.
 * A producer, after publishing entries and a full barrier, writes the
 * other side's eventfd only if that side's *_sleeping flag is set.  So
 * neither side makes a system call while both are busy, and no entry is
 * left unseen by a sleeper.
 */
#define VGPU_SHM_CTRL_SIZE 128u
#define VGPU_SHM_OFF_SUB_PROD 0u
#define VGPU_SHM_OFF_COMP_CONS 4u
#define VGPU_SHM_OFF_DEV_SLEEPING 8u
#define VGPU_SHM_OFF_SUB_CONS 64u
#define VGPU_SHM_OFF_COMP_PROD 68u
#define VGPU_SHM_OFF_MED_SLEEPING 72u

static inline vgpu_u32 vgpu_shm_ring_avail(vgpu_u32 prod, vgpu_u32 cons,
                                           vgpu_u32 entries, int *breach)
{
    vgpu_u32 n = prod - cons;

    if (n > entries) {
        *breach = 1;
        return 0;
    }
    return n;
}

/* ---------------------------------------------------------------------- */
/* Ring entries (64 bytes, both rings)                                     */
/* ---------------------------------------------------------------------- */

/*
 * The sub ring carries device -> mediator, the comp ring mediator ->
 * device.  Every entry names a request by (epoch, seq): epoch is the
 * device's ring incarnation (it changes when the guest stops the rings or
 * the VM resets), seq the device's number for the request, never 0 and
 * never reused within an epoch.  A completion names the epoch of its
 * request; the device drops one of another epoch (the core rule: a
 * completion reaches only the incarnation that submitted the work).
 *
 * Chunks: the request pool belongs to the device, the response pool to
 * the mediator.  The owner fills a chunk, names it in one entry (lending
 * it) and may not touch it until the other side gives it back with a
 * *_CHUNK_DONE entry.  A chunk named while lent, or given back while not
 * lent, is a breach.
 *
 * Kinds, sub ring (device -> mediator):
 *   REQ_DATA        bytes [offset, offset + len) of request seq, in chunk.
 *                   The first piece (offset 0) has FIRST and carries total
 *                   (request bytes, 8 .. max_xfer) and resp_cap (0 ..
 *                   max_xfer); pieces come in order, each len > 0 and
 *                   <= chunk_size; the one that reaches total has LAST.
 *   RESP_CHUNK_DONE the device has copied response chunk `chunk` out.
 *   CANCEL          the device gave up on seq (timeout, rings stopped):
 *                   the mediator may drop it; its completion, if it comes,
 *                   is dropped by the device anyway.
 * Kinds, comp ring (mediator -> device):
 *   REQ_CHUNK_DONE  the mediator has copied request chunk `chunk` out.
 *   RESP_DATA       bytes [offset, offset + len) of seq's response, in
 *                   chunk; FIRST carries total (response bytes, <= the
 *                   request's resp_cap), LAST ends the request with status
 *                   VGPU_ERR_NONE.
 *   RESP_ERROR      seq ended with status (not NONE); no bytes, no chunk.
 *
 * At most max_inflight requests are open (first piece sent, not ended by
 * LAST RESP_DATA, RESP_ERROR or CANCEL) at a time.
 */
enum vgpu_shm_kind {
    VGPU_SHM_REQ_DATA = 1,
    VGPU_SHM_RESP_CHUNK_DONE = 2,
    VGPU_SHM_CANCEL = 3,
    VGPU_SHM_REQ_CHUNK_DONE = 4,
    VGPU_SHM_RESP_DATA = 5,
    VGPU_SHM_RESP_ERROR = 6,
};

#define VGPU_SHM_F_FIRST (1u << 0)
#define VGPU_SHM_F_LAST (1u << 1)

struct vgpu_shm_ent {
    vgpu_u16 kind;  /* enum vgpu_shm_kind */
    vgpu_u16 flags; /* VGPU_SHM_F_* */
    vgpu_u32 epoch;
    vgpu_u32 seq;
    vgpu_u32 status;   /* RESP_ERROR: enum vgpu_error; else 0 */
    vgpu_u32 chunk;    /* chunk index in the pool of the kind */
    vgpu_u32 len;      /* bytes in the chunk */
    vgpu_u64 offset;   /* of this piece in the request or response */
    vgpu_u64 total;    /* FIRST: bytes of the whole request/response */
    vgpu_u64 resp_cap; /* REQ_DATA FIRST: room for the response */
    vgpu_u64 reserved[2];
};
#define VGPU_SHM_ENT_SIZE 64u

#define VGPU_SHM_ENT_OFF_KIND 0u
#define VGPU_SHM_ENT_OFF_FLAGS 2u
#define VGPU_SHM_ENT_OFF_EPOCH 4u
#define VGPU_SHM_ENT_OFF_SEQ 8u
#define VGPU_SHM_ENT_OFF_STATUS 12u
#define VGPU_SHM_ENT_OFF_CHUNK 16u
#define VGPU_SHM_ENT_OFF_LEN 20u
#define VGPU_SHM_ENT_OFF_OFFSET 24u
#define VGPU_SHM_ENT_OFF_TOTAL 32u
#define VGPU_SHM_ENT_OFF_RESP_CAP 40u

/* Write *e into out[VGPU_SHM_ENT_SIZE] (reserved bytes zero). */
static inline void vgpu_shm_ent_pack(vgpu_u8 *out, const struct vgpu_shm_ent *e)
{
    unsigned int i;

    for (i = 0; i < VGPU_SHM_ENT_SIZE; i++) {
        out[i] = 0;
    }
    vgpu_put_le16(out + VGPU_SHM_ENT_OFF_KIND, e->kind);
    vgpu_put_le16(out + VGPU_SHM_ENT_OFF_FLAGS, e->flags);
    vgpu_put_le32(out + VGPU_SHM_ENT_OFF_EPOCH, e->epoch);
    vgpu_put_le32(out + VGPU_SHM_ENT_OFF_SEQ, e->seq);
    vgpu_put_le32(out + VGPU_SHM_ENT_OFF_STATUS, e->status);
    vgpu_put_le32(out + VGPU_SHM_ENT_OFF_CHUNK, e->chunk);
    vgpu_put_le32(out + VGPU_SHM_ENT_OFF_LEN, e->len);
    vgpu_put_le64(out + VGPU_SHM_ENT_OFF_OFFSET, e->offset);
    vgpu_put_le64(out + VGPU_SHM_ENT_OFF_TOTAL, e->total);
    vgpu_put_le64(out + VGPU_SHM_ENT_OFF_RESP_CAP, e->resp_cap);
}

/* Read an entry from in[VGPU_SHM_ENT_SIZE] (a private copy), unchecked. */
static inline void vgpu_shm_ent_unpack(const vgpu_u8 *in,
                                       struct vgpu_shm_ent *e)
{
    e->kind = vgpu_get_le16(in + VGPU_SHM_ENT_OFF_KIND);
    e->flags = vgpu_get_le16(in + VGPU_SHM_ENT_OFF_FLAGS);
    e->epoch = vgpu_get_le32(in + VGPU_SHM_ENT_OFF_EPOCH);
    e->seq = vgpu_get_le32(in + VGPU_SHM_ENT_OFF_SEQ);
    e->status = vgpu_get_le32(in + VGPU_SHM_ENT_OFF_STATUS);
    e->chunk = vgpu_get_le32(in + VGPU_SHM_ENT_OFF_CHUNK);
    e->len = vgpu_get_le32(in + VGPU_SHM_ENT_OFF_LEN);
    e->offset = vgpu_get_le64(in + VGPU_SHM_ENT_OFF_OFFSET);
    e->total = vgpu_get_le64(in + VGPU_SHM_ENT_OFF_TOTAL);
    e->resp_cap = vgpu_get_le64(in + VGPU_SHM_ENT_OFF_RESP_CAP);
    e->reserved[0] = e->reserved[1] = 0;
}

static inline void vgpu_shm_offer_pack(vgpu_u8 *out,
                                       const struct vgpu_shm_offer *o)
{
    vgpu_put_le32(out + VGPU_SHM_OFFER_OFF_VERSION, o->version);
    vgpu_put_le32(out + VGPU_SHM_OFFER_OFF_RING_ENTRIES, o->ring_entries);
    vgpu_put_le64(out + VGPU_SHM_OFFER_OFF_REGION_SIZE, o->region_size);
    vgpu_put_le32(out + VGPU_SHM_OFFER_OFF_SUB_OFF, o->sub_off);
    vgpu_put_le32(out + VGPU_SHM_OFFER_OFF_COMP_OFF, o->comp_off);
    vgpu_put_le64(out + VGPU_SHM_OFFER_OFF_REQ_POOL_OFF, o->req_pool_off);
    vgpu_put_le64(out + VGPU_SHM_OFFER_OFF_RESP_POOL_OFF, o->resp_pool_off);
    vgpu_put_le32(out + VGPU_SHM_OFFER_OFF_CHUNK_SIZE, o->chunk_size);
    vgpu_put_le32(out + VGPU_SHM_OFFER_OFF_REQ_CHUNKS, o->req_chunks);
    vgpu_put_le32(out + VGPU_SHM_OFFER_OFF_RESP_CHUNKS, o->resp_chunks);
    vgpu_put_le32(out + VGPU_SHM_OFFER_OFF_MAX_INFLIGHT, o->max_inflight);
    vgpu_put_le64(out + VGPU_SHM_OFFER_OFF_MAX_XFER, o->max_xfer);
}

static inline void vgpu_shm_offer_unpack(const vgpu_u8 *in,
                                         struct vgpu_shm_offer *o)
{
    o->version = vgpu_get_le32(in + VGPU_SHM_OFFER_OFF_VERSION);
    o->ring_entries = vgpu_get_le32(in + VGPU_SHM_OFFER_OFF_RING_ENTRIES);
    o->region_size = vgpu_get_le64(in + VGPU_SHM_OFFER_OFF_REGION_SIZE);
    o->sub_off = vgpu_get_le32(in + VGPU_SHM_OFFER_OFF_SUB_OFF);
    o->comp_off = vgpu_get_le32(in + VGPU_SHM_OFFER_OFF_COMP_OFF);
    o->req_pool_off = vgpu_get_le64(in + VGPU_SHM_OFFER_OFF_REQ_POOL_OFF);
    o->resp_pool_off = vgpu_get_le64(in + VGPU_SHM_OFFER_OFF_RESP_POOL_OFF);
    o->chunk_size = vgpu_get_le32(in + VGPU_SHM_OFFER_OFF_CHUNK_SIZE);
    o->req_chunks = vgpu_get_le32(in + VGPU_SHM_OFFER_OFF_REQ_CHUNKS);
    o->resp_chunks = vgpu_get_le32(in + VGPU_SHM_OFFER_OFF_RESP_CHUNKS);
    o->max_inflight = vgpu_get_le32(in + VGPU_SHM_OFFER_OFF_MAX_INFLIGHT);
    o->max_xfer = vgpu_get_le64(in + VGPU_SHM_OFFER_OFF_MAX_XFER);
}

/*
 * Is an offer one a device may map?  NULL when it is, else why not.
 * memfd_size is what fstat says of the region fd.
 */
static inline const char *vgpu_shm_offer_check(const struct vgpu_shm_offer *o,
                                               vgpu_u64 memfd_size)
{
    vgpu_u64 ring_bytes = (vgpu_u64)o->ring_entries * VGPU_SHM_ENT_SIZE;
    vgpu_u64 req_end, resp_end;

    if (o->version != VGPU_SHM_VERSION) {
        return "unsupported shared region version";
    }
    if (o->ring_entries < 2 || o->ring_entries > 65536 ||
        (o->ring_entries & (o->ring_entries - 1))) {
        return "ring size is not a power of two in [2, 65536]";
    }
    if (o->chunk_size == 0 || o->chunk_size % 4096u || o->req_chunks == 0 ||
        o->resp_chunks == 0 || o->req_chunks > 65536 ||
        o->resp_chunks > 65536) {
        return "bad chunk geometry";
    }
    if (o->max_inflight == 0 || o->max_inflight > o->ring_entries ||
        o->max_xfer < 8 || o->max_xfer > 0xfffff000ull) {
        return "bad limits";
    }
    if (o->region_size > memfd_size || o->sub_off < VGPU_SHM_CTRL_SIZE ||
        o->sub_off % 64u || o->comp_off % 64u ||
        o->comp_off < o->sub_off + ring_bytes ||
        o->req_pool_off < o->comp_off + ring_bytes || o->req_pool_off % 4096u ||
        o->resp_pool_off % 4096u) {
        return "rings or pools outside the region";
    }
    req_end = o->req_pool_off + (vgpu_u64)o->req_chunks * o->chunk_size;
    resp_end = o->resp_pool_off + (vgpu_u64)o->resp_chunks * o->chunk_size;
    if (o->resp_pool_off < req_end || resp_end > o->region_size) {
        return "rings or pools outside the region";
    }
    return 0;
}

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct vgpu_shm_ent) == VGPU_SHM_ENT_SIZE,
               "shm entry layout");
_Static_assert(sizeof(struct vgpu_shm_offer) == VGPU_SHM_OFFER_SIZE,
               "shm offer layout");
#endif

#endif /* VGPU_SHM_H */
