/*
 * vgpu/regs.h - owns what a guest sees of the vgpu-stub PCI device: its PCI
 * identity and slot, the BAR0 register map (protocol v1), the STATUS and
 * ERROR_CODE values, the protocol version and the capability bits, and the
 * timing bounds of the device and the guest library.
 *
 * Kernel-safe (see types.h): a guest driver includes this as it is.
 */
#ifndef VGPU_REGS_H
#define VGPU_REGS_H

#include "types.h"

/* ---------------------------------------------------------------------- */
/* PCI identity                                                            */
/* ---------------------------------------------------------------------- */

/*
 * 0x1234 is the vendor ID QEMU uses for its own experimental devices (edu,
 * bochs-display); the device ID spells "vG".
 */
#define VGPU_PCI_VENDOR_ID 0x1234
#define VGPU_PCI_DEVICE_ID 0x7647
#define VGPU_PCI_REVISION 0x01
#define VGPU_PCI_CLASS 0xff00 /* PCI_CLASS_OTHERS */

/* QEMU type name of the device: -device vgpu-stub,... */
#define VGPU_DEVICE_TYPE "vgpu-stub"

/*
 * The PCI slot (bus 0) the qemu-dm wrapper gives the device, always
 * explicitly: a device without addr= takes the first free slot, 2, which
 * the stock wrapper gives to the VGA card it appends after every other
 * argument.  xenopsd places (xc/device.ml, profiles qemu-upstream-compat
 * and -uefi): 0-1 chipset, 2 VGA, 3 xen-platform, 4..0xb NICs, the
 * xen-pvdevice after them, 7 nvme, 8 + index vGPUs and passthrough, and
 * hot-plugged passthrough at the first free slot.  A slot at the top of the
 * bus is the last any of those reaches, and a fixed one keeps the
 * guest-visible address the same across starts and migrations.  vgpu.conf
 * may choose another in [MIN, MAX] (the same on every host of a pool).
 */
#define VGPU_PCI_SLOT_DEFAULT 0x1fu
#define VGPU_PCI_SLOT_MIN 0x10u
#define VGPU_PCI_SLOT_MAX 0x1fu

/* ---------------------------------------------------------------------- */
/* BAR0 register map (protocol v1)                                        */
/* ---------------------------------------------------------------------- */

#define VGPU_BAR0_SIZE 0x1000 /* 4 KB */

#define VGPU_REG_DOORBELL 0x000     /* W:  write VGPU_DOORBELL_SUBMIT */
#define VGPU_REG_STATUS 0x004       /* R:  enum vgpu_status */
#define VGPU_REG_POOL_ID 0x008      /* R:  pool name bytes 0..3 (below) */
#define VGPU_REG_PRIORITY 0x00C     /* R:  enum vgpu_priority */
#define VGPU_REG_VM_ID 0x010        /* R:  host-unique VM-ID */
#define VGPU_REG_ERROR_CODE 0x014   /* R:  enum vgpu_error */
#define VGPU_REG_REQUEST_LEN 0x018  /* RW: bytes of the request buffer used */
#define VGPU_REG_RESPONSE_LEN 0x01C /* R:  bytes of the response buffer */
#define VGPU_REG_PROTOCOL_VER 0x020 /* R:  VGPU_PROTOCOL_VERSION */
#define VGPU_REG_CAPABILITIES 0x024 /* R:  VGPU_CAP_* bits */
#define VGPU_REG_IRQ_CTRL 0x028     /* RW: v2 interrupt enables (ring.h) */
#define VGPU_REG_IRQ_STATUS 0x02C   /* RW: v2 causes, write 1 to clear */
#define VGPU_REG_REQUEST_ID 0x030   /* RW: guest's tag, echoed back */
#define VGPU_REG_POOL_NAME_1 0x034  /* R:  pool name bytes 4..7 */
#define VGPU_REG_POOL_NAME_2 0x038  /* R:  pool name bytes 8..11 */
#define VGPU_REG_POOL_NAME_3 0x03C  /* R:  pool name bytes 12..15 */

/*
 * The pool name (names.h: up to VGPU_POOL_NAME_MAX bytes, zero padded) as
 * four little-endian words: POOL_ID holds bytes 0..3, so pool "A" reads
 * 0x41 ('A') there as it did when pools were one letter, and a guest that
 * knows only POOL_ID still sees a one-letter pool right.  POOL_NAME_1..3
 * hold the rest; VGPU_CAP_POOL_NAME says they exist.  All zero: no pool
 * (VGPU_POOL_NONE).
 */
#define VGPU_POOL_NONE 0u
#define VGPU_POOL_NAME_REGS 4u
static inline vgpu_u32 vgpu_pool_name_reg(unsigned int i)
{
    return i == 0 ? VGPU_REG_POOL_ID : VGPU_REG_POOL_NAME_1 + 4u * (i - 1u);
}

#define VGPU_REQ_BUF_OFFSET 0x040
#define VGPU_RESP_BUF_OFFSET 0x440
#define VGPU_BUF_SIZE 1024 /* each buffer: 1 KB */

/* Registers are 32 bits wide and must be accessed as aligned dwords. */
#define VGPU_REG_WIDTH 4

/* The only value a guest may write to DOORBELL. */
#define VGPU_DOORBELL_SUBMIT 1u

/* PROTOCOL_VER: major in bits 31..16, minor in bits 15..0. */
#define VGPU_PROTOCOL_MAJOR 1u
#define VGPU_PROTOCOL_MINOR 0u
#define VGPU_PROTOCOL_VERSION                                                  \
    ((VGPU_PROTOCOL_MAJOR << 16) | VGPU_PROTOCOL_MINOR)
#define VGPU_VERSION_MAJOR(v) (((vgpu_u32)(v) >> 16) & 0xffffu)
#define VGPU_VERSION_MINOR(v) ((vgpu_u32)(v)&0xffffu)

/*
 * CAPABILITIES bits.  A bit is added, never reused, when a v1 device
 * learns something a guest can detect; the major version stays 1.
 */
#define VGPU_CAP_VECTOR_ADD (1u << 0) /* VGPU_OP_VECTOR_ADD is served */
#define VGPU_CAP_REQUEST_ID (1u << 1) /* REQUEST_ID is echoed in replies */
#define VGPU_CAP_IRQ (1u << 2)        /* v2: completion interrupts */
#define VGPU_CAP_DMA (1u << 3)        /* v2: DMA queues */
#define VGPU_CAP_SAXPY (1u << 4)      /* VGPU_OP_SAXPY is served */
#define VGPU_CAP_SGEMM (1u << 5)      /* VGPU_OP_SGEMM is served */
#define VGPU_CAP_POOL_NAME (1u << 6)  /* POOL_NAME_1..3 hold bytes 4..15 */
#define VGPU_CAPS_V1                                                           \
    (VGPU_CAP_VECTOR_ADD | VGPU_CAP_REQUEST_ID | VGPU_CAP_SAXPY |              \
     VGPU_CAP_SGEMM | VGPU_CAP_POOL_NAME)

/* STATUS values. */
enum vgpu_status {
    VGPU_STATUS_IDLE = 0,  /* nothing submitted since reset */
    VGPU_STATUS_BUSY = 1,  /* a request is with the mediator */
    VGPU_STATUS_DONE = 2,  /* RESPONSE_LEN bytes of response are valid */
    VGPU_STATUS_ERROR = 3, /* see ERROR_CODE */
};

/*
 * ERROR_CODE values.  Each guest mistake and each failure on the path has
 * exactly one code.  The same numbering travels in socket replies (the
 * `status` field of struct vgpu_msg_hdr, msg.h).  Their names: names.h.
 */
enum vgpu_error {
    VGPU_ERR_NONE = 0,
    VGPU_ERR_REQUEST_TOO_LARGE = 1, /* REQUEST_LEN > VGPU_BUF_SIZE */
    VGPU_ERR_DOORBELL_BUSY = 2,     /* doorbell while STATUS == BUSY */
    VGPU_ERR_BAD_DOORBELL = 3,      /* value other than DOORBELL_SUBMIT */
    VGPU_ERR_NO_MEDIATOR = 4,       /* mediator socket unreachable */
    VGPU_ERR_TIMEOUT = 5,           /* no reply within the device timeout */
    VGPU_ERR_MEDIATOR_LOST = 6,     /* connection dropped while BUSY */
    VGPU_ERR_BAD_OPCODE = 7,        /* unknown opcode in the request */
    VGPU_ERR_BAD_REQUEST = 8,       /* malformed request payload */
    VGPU_ERR_NOT_ASSIGNED = 9,      /* no pool/priority/VM-ID in xenstore */
    VGPU_ERR_QUEUE_FULL = 10,       /* mediator cannot take more work */
    VGPU_ERR_BACKEND = 11,          /* the backend failed to run it */
    VGPU_ERR_PROTOCOL = 12,         /* malformed message on the socket */
    VGPU_ERR_QUOTA_EXCEEDED = 13,   /* over the VM's device memory quota */
    VGPU_ERR_NO_GPU = 14,           /* the VM's pool has no usable GPU */
    /* v2 (vgpu/ring.h) */
    VGPU_ERR_BAD_RING = 15,           /* ring registers refused at enable */
    VGPU_ERR_BAD_SG = 16,             /* SG list malformed or over limits */
    VGPU_ERR_DMA = 17,                /* a guest address could not be reached */
    VGPU_ERR_RESPONSE_TOO_LARGE = 18, /* response bigger than resp_cap */
    VGPU_ERR_COUNT
};

/* ---------------------------------------------------------------------- */
/* Timing bounds (no hangs)                                               */
/* ---------------------------------------------------------------------- */

/* Device: a request with no reply after this long ends in ERROR/TIMEOUT. */
#define VGPU_DEVICE_TIMEOUT_MS_DEFAULT 5000u
/* Guest library: polling gives up after this long (longer than the device
 * timeout, so a healthy device always answers first). */
#define VGPU_GUEST_POLL_TIMEOUT_MS_DEFAULT 10000u

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(VGPU_RESP_BUF_OFFSET == VGPU_REQ_BUF_OFFSET + VGPU_BUF_SIZE,
               "buffers are contiguous");
_Static_assert(VGPU_RESP_BUF_OFFSET + VGPU_BUF_SIZE <= VGPU_BAR0_SIZE,
               "buffers fit in BAR0");
_Static_assert(VGPU_REG_POOL_NAME_3 + VGPU_REG_WIDTH <= VGPU_REQ_BUF_OFFSET,
               "registers end before the request buffer");
#endif

#endif /* VGPU_REGS_H */
