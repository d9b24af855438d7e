/*
 * vgpu/ring.h - owns protocol v2 as the guest sees it: the ring registers
 * of BAR0, the submission and completion ring entries in guest memory, the
 * scatter-gather entries that name payload bytes, the doorbell buffer
 * (shadow doorbells and event indices), interrupt control and coalescing,
 * the MSI-X vectors, and the rules the device enforces on all of it.
 *
 * v2 sits beside v1: every v1 register and behaviour stays as it is, and a
 * v1 guest never touches anything here.  A request's bytes are exactly a
 * v1 request (vgpu/ops.h: header, then operands) of any length up to the
 * per-VM limit; only the way they travel differs.
 *
 * The model is NVMe's queue pair: the guest owns both rings in its memory,
 * the device consumes the submission ring (SQ) from its head and produces
 * completions on the completion ring (CQ) at its tail.  Completions come in
 * any order and carry the guest's tag; a phase bit tells new entries from
 * old ones, so the guest never reads a device register to find them.
 *
 * Kernel-safe (see types.h): a guest driver includes this as it is.
 */
#ifndef VGPU_RING_H
#define VGPU_RING_H

#include "regs.h"
#include "types.h"

/* ---------------------------------------------------------------------- */
/* Version and capabilities                                                */
/* ---------------------------------------------------------------------- */

/*
 * A device with rings answers PROTOCOL_VER 2.0 and sets the bits below
 * (CAPABILITIES); the v1 bits keep their meaning.  VGPU_CAP_IRQ and
 * VGPU_CAP_DMA were reserved for v2 in regs.h from the start.
 */
#define VGPU_PROTOCOL_V2_MAJOR 2u
#define VGPU_PROTOCOL_V2_MINOR 0u
#define VGPU_PROTOCOL_V2                                                       \
    ((VGPU_PROTOCOL_V2_MAJOR << 16) | VGPU_PROTOCOL_V2_MINOR)

#define VGPU_CAP_RINGS VGPU_CAP_DMA     /* SQ/CQ rings, SG DMA payloads */
#define VGPU_CAP_MSIX VGPU_CAP_IRQ      /* MSI-X completion interrupts */
#define VGPU_CAP_DBBUF (1u << 7)        /* doorbell buffer (shadow, event) */
#define VGPU_CAP_IRQ_COALESCE (1u << 8) /* IRQ_COALESCE is honoured */
#define VGPU_CAPS_V2                                                           \
    (VGPU_CAPS_V1 | VGPU_CAP_RINGS | VGPU_CAP_MSIX | VGPU_CAP_DBBUF |          \
     VGPU_CAP_IRQ_COALESCE)

/* ---------------------------------------------------------------------- */
/* BAR0 registers of v2 (after the v1 response buffer)                     */
/* ---------------------------------------------------------------------- */

#define VGPU_REG_RING_CTRL 0x880   /* RW: VGPU_RING_CTRL_* */
#define VGPU_REG_RING_STATUS 0x884 /* R:  VGPU_RING_STATUS_*, error */
#define VGPU_REG_SQ_BASE_LO 0x888  /* RW: guest address of the SQ */
#define VGPU_REG_SQ_BASE_HI 0x88C
#define VGPU_REG_CQ_BASE_LO 0x890 /* RW: guest address of the CQ */
#define VGPU_REG_CQ_BASE_HI 0x894
#define VGPU_REG_SQ_SIZE 0x898    /* RW: SQ entries (power of two) */
#define VGPU_REG_CQ_SIZE 0x89C    /* RW: CQ entries (power of two) */
#define VGPU_REG_SQ_TAIL_DB 0x8A0 /* W:  new SQ tail (reads 0) */
#define VGPU_REG_CQ_HEAD_DB 0x8A4 /* W:  new CQ head (reads 0) */
#define VGPU_REG_DBBUF_LO 0x8A8   /* RW: struct vgpu_dbbuf address, 0 none */
#define VGPU_REG_DBBUF_HI 0x8AC
#define VGPU_REG_IRQ_COALESCE 0x8B0 /* RW: VGPU_IRQ_COALESCE_* */
#define VGPU_REG_MAX_XFER_LO 0x8B4  /* R:  bytes per request at most */
#define VGPU_REG_MAX_XFER_HI 0x8B8
#define VGPU_REG_MAX_SG 0x8BC        /* R:  SG entries per list at most */
#define VGPU_REG_SQ_HEAD 0x8C0       /* R:  entries the device consumed */
#define VGPU_REG_CQ_TAIL 0x8C4       /* R:  where the next CQE goes */
#define VGPU_REG_RING_INFLIGHT 0x8C8 /* R:  requests taken, not completed */
#define VGPU_REG_V2_END 0x8CC

/*
 * RING_CTRL.  Writing ENABLE with the ring registers set checks them
 * (below) and starts the rings, or leaves them stopped with the reason in
 * RING_STATUS.  Writing 0 stops them: every request in flight is dropped
 * (its completion, should the mediator still send one, is never written:
 * the rings of a new enable are a new incarnation), SQ head and CQ tail
 * return to 0 and the phase to 1.  Base, size and DBBUF registers may only
 * change while the rings are stopped; a write to them while running is
 * ignored and counted as a ring error (RING_STATUS).  Device reset and
 * VM reset stop the rings.
 */
#define VGPU_RING_CTRL_ENABLE (1u << 0)

/*
 * RING_STATUS: READY while the rings run.  ERROR with a code in bits
 * 15..8 (enum vgpu_error) after an enable that was refused or a fatal ring
 * fault (the CQ could not be written: the rings stop, since completions
 * can no longer reach the guest).  Bits 31..16 count bad writes to ring
 * registers (saturating), for diagnosis.
 */
#define VGPU_RING_STATUS_READY (1u << 0)
#define VGPU_RING_STATUS_ERROR (1u << 1)
#define VGPU_RING_STATUS_CODE(v) (((vgpu_u32)(v) >> 8) & 0xffu)
#define VGPU_RING_STATUS_BAD_WRITES(v) ((vgpu_u32)(v) >> 16)

/*
 * Ring geometry.  SQ_SIZE and CQ_SIZE are entry counts, powers of two in
 * [VGPU_RING_MIN_ENTRIES, VGPU_RING_MAX_ENTRIES]; each base is aligned to
 * VGPU_RING_ALIGN and its ring lies in guest RAM (the device checks with a
 * DMA read of the whole ring at enable).  Anything else refuses the enable
 * with VGPU_ERR_BAD_RING.
 *
 * Indices: SQ_TAIL_DB and CQ_HEAD_DB take ring positions in [0, size).  A
 * tail that would put more than size - 1 entries in the SQ, or a head
 * outside what the device has produced, is a bad doorbell: ignored,
 * counted in RING_STATUS, never acted on.
 *
 * In flight: the device takes an SQ entry only while fewer than
 * CQ_SIZE - 1 of its completions are taken or unread, so the CQ can never
 * overflow whatever the guest does; the rest waits in the SQ.
 */
#define VGPU_RING_MIN_ENTRIES 2u
#define VGPU_RING_MAX_ENTRIES 4096u
#define VGPU_RING_ALIGN 64u

/* ---------------------------------------------------------------------- */
/* Submission entry (64 bytes, in the SQ)                                  */
/* ---------------------------------------------------------------------- */

/*
 * One request.  Its bytes come from the request SG list (req_sg_count
 * entries at req_sg_addr), in list order, req_len of them in all; the
 * response goes to the response SG list (resp_sg_count at resp_sg_addr),
 * resp_cap bytes of room in all.  A request that fits in no SG entry at
 * all does not exist: req_len >= sizeof(struct vgpu_req_hdr).  A response
 * SG list may be empty (resp_cap 0) for requests without results.
 */
struct vgpu_sqe {
    vgpu_u32 tag;   /* the guest's, echoed in the CQE; any value */
    vgpu_u32 flags; /* 0 (reserved) */
    vgpu_u32 req_sg_count;
    vgpu_u32 resp_sg_count;
    vgpu_u64 req_sg_addr;  /* guest address of vgpu_sge[req_sg_count] */
    vgpu_u64 resp_sg_addr; /* guest address of vgpu_sge[resp_sg_count] */
    vgpu_u64 req_len;      /* == sum of the request entries' len */
    vgpu_u64 resp_cap;     /* == sum of the response entries' len */
    vgpu_u64 reserved[2];  /* 0 */
};
#define VGPU_SQE_SIZE 64u

#define VGPU_SQE_OFF_TAG 0u
#define VGPU_SQE_OFF_FLAGS 4u
#define VGPU_SQE_OFF_REQ_SG_COUNT 8u
#define VGPU_SQE_OFF_RESP_SG_COUNT 12u
#define VGPU_SQE_OFF_REQ_SG_ADDR 16u
#define VGPU_SQE_OFF_RESP_SG_ADDR 24u
#define VGPU_SQE_OFF_REQ_LEN 32u
#define VGPU_SQE_OFF_RESP_CAP 40u

/*
 * Scatter-gather entry (16 bytes).  A list is an array of them, aligned to
 * VGPU_SGE_ALIGN, at most MAX_SG entries (the register; at most
 * VGPU_SG_MAX_ENTRIES).  Each entry names len > 0 bytes at addr with
 * addr + len not wrapping; the device reads request bytes and writes
 * response bytes only inside the entries the guest named, and only with
 * pci_dma_read/pci_dma_write, so an address outside guest RAM fails that
 * request (VGPU_ERR_DMA), never anything else.
 */
struct vgpu_sge {
    vgpu_u64 addr;
    vgpu_u32 len;
    vgpu_u32 reserved; /* 0 */
};
#define VGPU_SGE_SIZE 16u
#define VGPU_SGE_ALIGN 16u
#define VGPU_SG_MAX_ENTRIES 4096u

/* ---------------------------------------------------------------------- */
/* Completion entry (16 bytes, in the CQ)                                  */
/* ---------------------------------------------------------------------- */

/*
 * One finished request.  status is enum vgpu_error; resp_len the response
 * bytes written to the response SG list from its start (0 unless status is
 * VGPU_ERR_NONE).  sq_head: how far the device has consumed the SQ when it
 * wrote this entry (the guest may reuse SQ slots before it).  flags bit 0
 * is the phase: the device writes 1 on its first pass over the CQ, 0 on
 * the second, and so on; the guest starts with a zeroed CQ and consumes
 * while the phase of the entry at its head is the one it expects.  The
 * device writes the first 12 bytes, then (after a write barrier) the last
 * 4, so an entry whose phase is new is whole.
 */
struct vgpu_cqe {
    vgpu_u32 tag;
    vgpu_u32 status;
    vgpu_u32 resp_len;
    vgpu_u16 sq_head;
    vgpu_u16 flags; /* VGPU_CQE_PHASE */
};
#define VGPU_CQE_SIZE 16u
#define VGPU_CQE_PHASE 1u

#define VGPU_CQE_OFF_TAG 0u
#define VGPU_CQE_OFF_STATUS 4u
#define VGPU_CQE_OFF_RESP_LEN 8u
#define VGPU_CQE_OFF_SQ_HEAD 12u
#define VGPU_CQE_OFF_FLAGS 14u

/* ---------------------------------------------------------------------- */
/* Doorbell buffer: submit and reap without a trap per request             */
/* ---------------------------------------------------------------------- */

/*
 * As NVMe's doorbell buffer config and virtio's EVENT_IDX: a guest page
 * (DBBUF, aligned to VGPU_DBBUF_ALIGN, set while the rings are stopped)
 * where the guest keeps shadows of its doorbells and the device says when
 * it needs a real one.
 *
 *   sq_tail       guest writes: its SQ tail, before any SQ_TAIL_DB
 *   cq_head       guest writes: its CQ head (no CQ_HEAD_DB needed at all)
 *   sq_event_idx  device writes: ring SQ_TAIL_DB only when the tail moves
 *                 past this index (vgpu_ring_need_event)
 *   cq_event_idx  guest writes: interrupt only when the CQ tail moves past
 *                 this index (interrupt suppression for a polling guest)
 *
 * The device reads the shadow SQ tail whenever it has a request in flight
 * and gets a completion, so a busy guest never traps; it writes
 * sq_event_idx = the last tail it saw before it goes idle, then reads the
 * shadow again (the guest's submission in between is not lost).  A shadow
 * index outside [0, size) is ignored as a bad doorbell is.
 */
struct vgpu_dbbuf {
    vgpu_u32 sq_tail;
    vgpu_u32 cq_head;
    vgpu_u32 sq_event_idx;
    vgpu_u32 cq_event_idx;
    vgpu_u32 reserved[12];
};
#define VGPU_DBBUF_SIZE 64u
#define VGPU_DBBUF_ALIGN 64u
#define VGPU_DBBUF_OFF_SQ_TAIL 0u
#define VGPU_DBBUF_OFF_CQ_HEAD 4u
#define VGPU_DBBUF_OFF_SQ_EVENT_IDX 8u
#define VGPU_DBBUF_OFF_CQ_EVENT_IDX 12u

/*
 * Should the side that moved an index from old to new_idx tell the other,
 * which asked to be told once the index passes event?  (virtio's
 * vring_need_event, in ring positions modulo size, a power of two.)
 */
static inline int vgpu_ring_need_event(vgpu_u32 event, vgpu_u32 new_idx,
                                       vgpu_u32 old, vgpu_u32 size)
{
    vgpu_u32 mask = size - 1u;

    return ((new_idx - event - 1u) & mask) < ((new_idx - old) & mask);
}

/* ---------------------------------------------------------------------- */
/* Interrupts                                                              */
/* ---------------------------------------------------------------------- */

/*
 * MSI-X, in its own BAR (VGPU_MSIX_BAR), VGPU_MSIX_VECTORS vectors:
 * completions on VGPU_MSIX_VEC_CQ; changes the guest should look at
 * (identity registers, a ring stopped by a fault, the mediator lost or
 * back) on VGPU_MSIX_VEC_EVENT.  Without MSI-X enabled in the guest's
 * config space, nothing is signalled: the guest polls.
 *
 * IRQ_CTRL (regs.h 0x028) bits enable the sources; IRQ_STATUS (0x02C)
 * holds the causes that fired since the guest last wrote them back (write
 * 1 to clear).  A source disabled in IRQ_CTRL still sets its IRQ_STATUS
 * bit, so a polling guest can see it.  A v1 device reads both as 0.
 */
#define VGPU_MSIX_BAR 1
#define VGPU_MSIX_VECTORS 2u
#define VGPU_MSIX_VEC_CQ 0u
#define VGPU_MSIX_VEC_EVENT 1u

#define VGPU_IRQ_CQ (1u << 0)      /* new completions on the CQ */
#define VGPU_IRQ_EVENT (1u << 1)   /* identity, ring fault, mediator state */
#define VGPU_IRQ_V1_DONE (1u << 2) /* v1 STATUS left BUSY (on VEC_CQ) */
#define VGPU_IRQ_ALL (VGPU_IRQ_CQ | VGPU_IRQ_EVENT | VGPU_IRQ_V1_DONE)

/*
 * IRQ_COALESCE: bits 7..0 completions per interrupt (0 and 1: each), bits
 * 31..16 microseconds the device may hold a completion interrupt back
 * (0: never).  The interrupt fires when either is reached, so latency is
 * bounded by the time field; rings stopping or the mediator being lost
 * flushes what is held.
 */
#define VGPU_IRQ_COALESCE_COUNT(v) ((vgpu_u32)(v)&0xffu)
#define VGPU_IRQ_COALESCE_USEC(v) ((vgpu_u32)(v) >> 16)
#define VGPU_IRQ_COALESCE_MAKE(count, usec)                                    \
    (((vgpu_u32)(usec) << 16) | ((vgpu_u32)(count)&0xffu))

/* ---------------------------------------------------------------------- */
/* Limits                                                                  */
/* ---------------------------------------------------------------------- */

/*
 * MAX_XFER: the largest req_len and resp_cap the device accepts, set by
 * the operator per VM (the mediator's per-pool limit, sent at connect);
 * never above VGPU_XFER_LIMIT (the CQE's 32-bit resp_len).  Before the
 * mediator has said, the device answers VGPU_XFER_DEFAULT.
 */
#define VGPU_XFER_DEFAULT (64ull << 20)
#define VGPU_XFER_LIMIT 0xfffff000ull

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct vgpu_sqe) == VGPU_SQE_SIZE, "SQE layout");
_Static_assert(sizeof(struct vgpu_cqe) == VGPU_CQE_SIZE, "CQE layout");
_Static_assert(sizeof(struct vgpu_sge) == VGPU_SGE_SIZE, "SGE layout");
_Static_assert(sizeof(struct vgpu_dbbuf) == VGPU_DBBUF_SIZE, "DBBUF layout");
_Static_assert(VGPU_REG_RING_CTRL >= VGPU_RESP_BUF_OFFSET + VGPU_BUF_SIZE,
               "v2 registers follow the v1 buffers");
_Static_assert(VGPU_REG_V2_END <= VGPU_BAR0_SIZE, "v2 registers fit BAR0");
#endif

#endif /* VGPU_RING_H */
