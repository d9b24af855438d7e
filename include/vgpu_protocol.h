/*
 * vgpu_protocol.h - THE contract of vgpu.
 *
 * This header owns every value that crosses a boundary between the parts of
 * vgpu: the BAR0 register map of the vgpu-stub PCI device, its STATUS and
 * ERROR_CODE values, capability bits, the request/response payload format the
 * guest writes into the device buffers, and the message format spoken on the
 * unix socket between the device (qemu-dm) and vgpu-mediator.
 *
 * It is included by the QEMU device, the mediator, the guest library and the
 * tests.  Nothing else defines these values.  It depends on <stdint.h> only
 * and is plain C99 so that QEMU 4.2, QEMU 7.2 and a static guest build can
 * all include it unchanged.
 *
 * All multi-byte fields, in registers, payloads and socket messages, are
 * little-endian.
 */
#ifndef VGPU_PROTOCOL_H
#define VGPU_PROTOCOL_H

#include <stdint.h>

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
#define VGPU_REG_POOL_ID 0x008      /* R:  ASCII pool letter, 'A' or 'B' */
#define VGPU_REG_PRIORITY 0x00C     /* R:  enum vgpu_priority */
#define VGPU_REG_VM_ID 0x010        /* R:  host-unique VM-ID */
#define VGPU_REG_ERROR_CODE 0x014   /* R:  enum vgpu_error */
#define VGPU_REG_REQUEST_LEN 0x018  /* RW: bytes of the request buffer used */
#define VGPU_REG_RESPONSE_LEN 0x01C /* R:  bytes of the response buffer */
#define VGPU_REG_PROTOCOL_VER 0x020 /* R:  VGPU_PROTOCOL_VERSION */
#define VGPU_REG_CAPABILITIES 0x024 /* R:  VGPU_CAP_* bits */
#define VGPU_REG_IRQ_CTRL 0x028     /* RW: reserved (v2), reads 0 */
#define VGPU_REG_IRQ_STATUS 0x02C   /* RW: reserved (v2), reads 0 */
#define VGPU_REG_REQUEST_ID 0x030   /* RW: guest's tag, echoed back */

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
#define VGPU_PROTOCOL_VERSION ((VGPU_PROTOCOL_MAJOR << 16) | VGPU_PROTOCOL_MINOR)
#define VGPU_VERSION_MAJOR(v) (((uint32_t)(v) >> 16) & 0xffffu)
#define VGPU_VERSION_MINOR(v) ((uint32_t)(v) & 0xffffu)

/* CAPABILITIES bits. */
#define VGPU_CAP_VECTOR_ADD (1u << 0) /* VGPU_OP_VECTOR_ADD is served */
#define VGPU_CAP_REQUEST_ID (1u << 1) /* REQUEST_ID is echoed in replies */
#define VGPU_CAP_IRQ (1u << 2)        /* v2: completion interrupts */
#define VGPU_CAP_DMA (1u << 3)        /* v2: DMA queues */
#define VGPU_CAP_SAXPY (1u << 4)      /* VGPU_OP_SAXPY is served */
#define VGPU_CAP_SGEMM (1u << 5)      /* VGPU_OP_SGEMM is served */
#define VGPU_CAPS_V1                                                         \
    (VGPU_CAP_VECTOR_ADD | VGPU_CAP_REQUEST_ID | VGPU_CAP_SAXPY |            \
     VGPU_CAP_SGEMM)

/* STATUS values. */
enum vgpu_status {
    VGPU_STATUS_IDLE = 0,  /* nothing submitted since reset */
    VGPU_STATUS_BUSY = 1,  /* a request is with the mediator */
    VGPU_STATUS_DONE = 2,  /* RESPONSE_LEN bytes of response are valid */
    VGPU_STATUS_ERROR = 3, /* see ERROR_CODE */
};

/* PRIORITY values (registers, xenstore, scheduler). */
enum vgpu_priority {
    VGPU_PRIO_LOW = 0,
    VGPU_PRIO_MEDIUM = 1,
    VGPU_PRIO_HIGH = 2,
};
#define VGPU_PRIO_COUNT 3
#define VGPU_PRIO_DEFAULT VGPU_PRIO_MEDIUM

/*
 * ERROR_CODE values.  Each guest mistake and each failure on the path has
 * exactly one code.  The same numbering travels in socket replies (the
 * `status` field of struct vgpu_msg_hdr).
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
    VGPU_ERR_COUNT
};

/* Printable name of an error code; never NULL. */
static inline const char *vgpu_error_name(uint32_t code)
{
    static const char *const names[VGPU_ERR_COUNT] = {
        [VGPU_ERR_NONE] = "NONE",
        [VGPU_ERR_REQUEST_TOO_LARGE] = "REQUEST_TOO_LARGE",
        [VGPU_ERR_DOORBELL_BUSY] = "DOORBELL_BUSY",
        [VGPU_ERR_BAD_DOORBELL] = "BAD_DOORBELL",
        [VGPU_ERR_NO_MEDIATOR] = "NO_MEDIATOR",
        [VGPU_ERR_TIMEOUT] = "TIMEOUT",
        [VGPU_ERR_MEDIATOR_LOST] = "MEDIATOR_LOST",
        [VGPU_ERR_BAD_OPCODE] = "BAD_OPCODE",
        [VGPU_ERR_BAD_REQUEST] = "BAD_REQUEST",
        [VGPU_ERR_NOT_ASSIGNED] = "NOT_ASSIGNED",
        [VGPU_ERR_QUEUE_FULL] = "QUEUE_FULL",
        [VGPU_ERR_BACKEND] = "BACKEND",
        [VGPU_ERR_PROTOCOL] = "PROTOCOL",
        [VGPU_ERR_QUOTA_EXCEEDED] = "QUOTA_EXCEEDED",
        [VGPU_ERR_NO_GPU] = "NO_GPU",
    };
    return code < VGPU_ERR_COUNT ? names[code] : "UNKNOWN";
}

static inline const char *vgpu_status_name(uint32_t status)
{
    switch (status) {
    case VGPU_STATUS_IDLE:
        return "IDLE";
    case VGPU_STATUS_BUSY:
        return "BUSY";
    case VGPU_STATUS_DONE:
        return "DONE";
    case VGPU_STATUS_ERROR:
        return "ERROR";
    default:
        return "UNKNOWN";
    }
}

static inline const char *vgpu_priority_name(uint32_t prio)
{
    switch (prio) {
    case VGPU_PRIO_LOW:
        return "low";
    case VGPU_PRIO_MEDIUM:
        return "medium";
    case VGPU_PRIO_HIGH:
        return "high";
    default:
        return "unknown";
    }
}

/* Pools: v1 knows pool 'A' and pool 'B'. */
#define VGPU_POOL_A 'A'
#define VGPU_POOL_B 'B'
#define VGPU_POOL_NONE 0 /* register value before assignment */

/* ---------------------------------------------------------------------- */
/* Request / response payloads (the contents of the 1 KB buffers)         */
/* ---------------------------------------------------------------------- */

/*
 * A request is a header followed by operands:
 *
 *     struct vgpu_req_hdr  { opcode, count }
 *     operands             (opcode specific)
 *
 * A response is a header followed by results:
 *
 *     struct vgpu_resp_hdr { opcode, count }
 *     results              (opcode specific)
 */
enum vgpu_opcode {
    VGPU_OP_VECTOR_ADD = 1, /* int32 c[i] = a[i] + b[i] (wrapping) */
    VGPU_OP_SAXPY = 2,      /* float y[i] = a * x[i] + y[i] */
    VGPU_OP_SGEMM = 3,      /* C = A x B of generated n x n matrices */
};

struct vgpu_req_hdr {
    uint32_t opcode;
    uint32_t count; /* number of elements */
};

struct vgpu_resp_hdr {
    uint32_t opcode; /* echoes the request's opcode */
    uint32_t count;  /* number of result elements */
};

/*
 * VECTOR_ADD: request operands are int32 a[count] then int32 b[count];
 * response results are int32 c[count].  count >= 1.  With count == 1 this
 * is the classic 100 + 200 = 300.
 */
#define VGPU_VECTOR_ADD_MAX_COUNT \
    ((VGPU_BUF_SIZE - sizeof(struct vgpu_req_hdr)) / (2 * sizeof(int32_t)))
#define VGPU_VECTOR_ADD_REQ_LEN(n) \
    (sizeof(struct vgpu_req_hdr) + 2 * (n) * sizeof(int32_t))
#define VGPU_VECTOR_ADD_RESP_LEN(n) \
    (sizeof(struct vgpu_resp_hdr) + (n) * sizeof(int32_t))

/*
 * SAXPY: request operands are float a, then float x[count], then float
 * y[count] (IEEE-754 binary32, little-endian); the response holds float
 * y'[count] with y'[i] = a * x[i] + y[i], computed in binary32 without
 * fused multiply-add (so every backend gives the same bits).
 */
#define VGPU_SAXPY_MAX_COUNT                                                 \
    ((VGPU_BUF_SIZE - sizeof(struct vgpu_req_hdr) - sizeof(float)) /         \
     (2 * sizeof(float)))
#define VGPU_SAXPY_REQ_LEN(n)                                                \
    (sizeof(struct vgpu_req_hdr) + sizeof(float) + 2 * (n) * sizeof(float))
#define VGPU_SAXPY_RESP_LEN(n)                                               \
    (sizeof(struct vgpu_resp_hdr) + (n) * sizeof(float))

/*
 * SGEMM: work that is large on the GPU and small on the wire.  count is
 * n (1..VGPU_SGEMM_MAX_N); the one operand is uint32 seed.  The backend
 * builds A and B (n x n, binary32) with vgpu_sgemm_a/b below, computes
 * C = A x B and answers int64 checksum = sum of all C[i][j] (as two
 * little-endian uint32, low word first).  Elements are small integers, so
 * every C[i][j] and the checksum are exact on any backend: a guest can
 * check the answer against vgpu_sgemm_checksum_ref().
 */
#define VGPU_SGEMM_MAX_N 1024u
#define VGPU_SGEMM_REQ_LEN (sizeof(struct vgpu_req_hdr) + sizeof(uint32_t))
#define VGPU_SGEMM_RESP_LEN (sizeof(struct vgpu_resp_hdr) + sizeof(uint64_t))

static inline int32_t vgpu_sgemm_a(uint32_t seed, uint32_t i, uint32_t j)
{
    return (int32_t)((i * 7u + j * 3u + seed) % 17u) - 8;
}

static inline int32_t vgpu_sgemm_b(uint32_t seed, uint32_t i, uint32_t j)
{
    return (int32_t)((i * 5u + j * 11u + seed * 3u) % 17u) - 8;
}

/*
 * The checksum without forming C: sum_ij C[i][j] = sum_k (sum_i A[i][k]) *
 * (sum_j B[k][j]).  O(n^2), so a guest or a test can check any n cheaply.
 */
static inline int64_t vgpu_sgemm_checksum_ref(uint32_t seed, uint32_t n)
{
    int64_t total = 0;

    for (uint32_t k = 0; k < n; k++) {
        int64_t col_a = 0, row_b = 0;

        for (uint32_t i = 0; i < n; i++) {
            col_a += vgpu_sgemm_a(seed, i, k);
            row_b += vgpu_sgemm_b(seed, k, i);
        }
        total += col_a * row_b;
    }
    return total;
}

/* ---------------------------------------------------------------------- */
/* Device <-> mediator socket messages                                    */
/* ---------------------------------------------------------------------- */

/*
 * The mediator creates one listening SOCK_STREAM unix socket per domain,
 * named VGPU_SOCKET_NAME, inside that domain's qemu-dm chroot
 * (<qemu-root>/root-<domid>/).  qemu-dm, chrooted, reaches it as
 * "/" VGPU_SOCKET_NAME.
 */
#define VGPU_QEMU_ROOT_DEFAULT "/var/xen/qemu"
#define VGPU_QEMU_ROOT_PREFIX "root-"
#define VGPU_SOCKET_NAME "vgpu-mediator.sock"
#define VGPU_SOCKET_PATH_IN_CHROOT "/" VGPU_SOCKET_NAME

/* xenstore keys, written by dom0 only, read by the mediator. */
/*
 * Our own folder: /local/domain/<domid>/vgpu/ belongs to xenopsd and NVIDIA
 * vGPU (vgpu/state, vgpu/error-code), so nothing of ours goes there.
 */
#define VGPU_XS_DOMAIN_FMT "/local/domain/%u/vgpu-mediator"
#define VGPU_XS_KEY_POOL "pool"         /* "A" or "B" */
#define VGPU_XS_KEY_PRIORITY "priority" /* "low", "medium" or "high" */
#define VGPU_XS_KEY_VM_ID "vm-id"       /* decimal, 1..2^31-1 */

/*
 * Every message is a fixed header followed by `length` bytes of payload.
 * A peer that receives a header with a wrong magic, an unsupported
 * version, an unknown type or a length above VGPU_MSG_MAX_PAYLOAD answers
 * with VGPU_MSG_ERROR (where it can) and closes that connection.
 */
#define VGPU_MSG_MAGIC 0x55504756u /* "VGPU" read as little-endian bytes */
#define VGPU_MSG_VERSION 1u
#define VGPU_MSG_MAX_PAYLOAD VGPU_BUF_SIZE

enum vgpu_msg_type {
    /* device -> mediator: first message after connect, payload
     * struct vgpu_msg_hello (what the device was configured with; the
     * mediator logs it and never trusts it). */
    VGPU_MSG_HELLO = 1,
    /* mediator -> device: answer to HELLO, payload struct vgpu_msg_hello
     * holding the identity the mediator holds from xenstore. */
    VGPU_MSG_HELLO_ACK = 2,
    /* device -> mediator: payload is the guest's request buffer. */
    VGPU_MSG_REQUEST = 3,
    /* mediator -> device: status = enum vgpu_error; payload is the
     * response buffer when status == VGPU_ERR_NONE, else empty. */
    VGPU_MSG_RESPONSE = 4,
    /* either way: status = enum vgpu_error, no payload; the sender closes
     * the connection after sending it. */
    VGPU_MSG_ERROR = 5,
    VGPU_MSG_TYPE_MAX = VGPU_MSG_ERROR
};

/*
 * Rules both ends keep:
 *  - HELLO and HELLO_ACK carry request_id 0; the mediator may send a new
 *    HELLO_ACK at any time (identity changed in xenstore).
 *  - HELLO and HELLO_ACK payloads are exactly sizeof(struct
 *    vgpu_msg_hello); any other length is a protocol error.
 *  - request_id of a REQUEST is the device's own sequence number (never
 *    0); the guest's REQUEST_ID register is a local tag that never
 *    crosses the socket.  A reply whose request_id is not the one in
 *    flight is dropped by the device.
 *  - The device reports a RESPONSE or ERROR whose status is outside enum
 *    vgpu_error (or an ERROR with status NONE) to the guest as
 *    VGPU_ERR_PROTOCOL.
 */
struct vgpu_msg_hdr {
    uint32_t magic;      /* VGPU_MSG_MAGIC */
    uint16_t version;    /* VGPU_MSG_VERSION */
    uint16_t type;       /* enum vgpu_msg_type */
    uint32_t request_id; /* device's sequence number, echoed in replies */
    uint32_t vm_id;      /* informational from the device; the mediator
                          * fills in the VM-ID it holds */
    uint32_t status;     /* enum vgpu_error in replies, 0 otherwise */
    uint32_t length;     /* payload bytes, <= VGPU_MSG_MAX_PAYLOAD */
};
#define VGPU_MSG_HDR_SIZE 24u
#define VGPU_MSG_MAX_SIZE (VGPU_MSG_HDR_SIZE + VGPU_MSG_MAX_PAYLOAD)

struct vgpu_msg_hello {
    uint32_t pool;     /* ASCII pool letter or VGPU_POOL_NONE */
    uint32_t priority; /* enum vgpu_priority */
    uint32_t vm_id;
    uint32_t caps; /* VGPU_CAP_* */
};

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct vgpu_msg_hdr) == VGPU_MSG_HDR_SIZE,
               "socket header layout");
_Static_assert(sizeof(struct vgpu_msg_hello) == 16, "hello layout");
_Static_assert(sizeof(struct vgpu_req_hdr) == 8, "request header layout");
_Static_assert(VGPU_RESP_BUF_OFFSET == VGPU_REQ_BUF_OFFSET + VGPU_BUF_SIZE,
               "buffers are contiguous");
_Static_assert(VGPU_RESP_BUF_OFFSET + VGPU_BUF_SIZE <= VGPU_BAR0_SIZE,
               "buffers fit in BAR0");
#endif

/* ---------------------------------------------------------------------- */
/* Timing bounds (no hangs)                                               */
/* ---------------------------------------------------------------------- */

/* Device: a request with no reply after this long ends in ERROR/TIMEOUT. */
#define VGPU_DEVICE_TIMEOUT_MS_DEFAULT 5000u
/* Guest library: polling gives up after this long (longer than the device
 * timeout, so a healthy device always answers first). */
#define VGPU_GUEST_POLL_TIMEOUT_MS_DEFAULT 10000u

#endif /* VGPU_PROTOCOL_H */
