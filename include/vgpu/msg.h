/*
 * vgpu/msg.h - owns the messages between the vgpu-stub device (in qemu-dm)
 * and vgpu-mediator on their unix socket: where the socket is, the header
 * and HELLO layouts with the offset of every field, the message types, the
 * rules both ends keep, and the helpers that pack, unpack and check them.
 *
 * Every party that speaks the protocol (the device, mediator/wire.c, the
 * test harness, the fuzzers) goes through these helpers rather than
 * spelling offsets, so the layout lives here once.  The pack helpers write
 * whatever they are given (magic and version included), so a test can
 * forge a bad message with them; vgpu_msg_hdr_check() is the one judgement
 * of a received header.
 */
#ifndef VGPU_MSG_H
#define VGPU_MSG_H

#include "names.h"
#include "regs.h"
#include "types.h"

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

/*
 * Every message is a fixed header followed by `length` bytes of payload.
 * A peer that receives a header with a wrong magic, an unsupported
 * version, an unknown type or a length above VGPU_MSG_MAX_PAYLOAD answers
 * with VGPU_MSG_ERROR (where it can) and closes that connection.  Both
 * ends log a version they do not speak as such: a device and a mediator of
 * different versions refuse each other, they never guess.
 *
 * Versions: 1 carried the pool as one ASCII letter in a 16-byte HELLO;
 * 2 carries the pool name (VGPU_POOL_NAME_MAX bytes) in a 28-byte HELLO;
 * 3 adds SHM_REQ and SHM_OFFER, the set-up of the v2 channel (vgpu/shm.h).
 */
#define VGPU_MSG_MAGIC 0x55504756u /* "VGPU" read as little-endian bytes */
#define VGPU_MSG_VERSION 3u
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
    /* device -> mediator: ask for the v2 channel (vgpu/shm.h). */
    VGPU_MSG_SHM_REQ = 6,
    /* mediator -> device: the v2 channel, three fds by SCM_RIGHTS and
     * struct vgpu_shm_offer, or a status and nothing (vgpu/shm.h). */
    VGPU_MSG_SHM_OFFER = 7,
    VGPU_MSG_TYPE_MAX = VGPU_MSG_SHM_OFFER
};

/*
 * Rules both ends keep:
 *  - HELLO and HELLO_ACK carry request_id 0; the mediator may send a new
 *    HELLO_ACK at any time (identity changed in xenstore).
 *  - HELLO and HELLO_ACK payloads are exactly VGPU_MSG_HELLO_SIZE bytes;
 *    any other length is a protocol error.  Their pool is a valid pool name
 *    (names.h) or all zero (not assigned); anything else is a protocol
 *    error too.
 *  - request_id of a REQUEST is the device's own sequence number (never
 *    0); the guest's REQUEST_ID register is a local tag that never
 *    crosses the socket.  A reply whose request_id is not the one in
 *    flight is dropped by the device.
 *  - The device reports a RESPONSE or ERROR whose status is outside enum
 *    vgpu_error (or an ERROR with status NONE) to the guest as
 *    VGPU_ERR_PROTOCOL.
 */
struct vgpu_msg_hdr {
    vgpu_u32 magic;      /* VGPU_MSG_MAGIC */
    vgpu_u16 version;    /* VGPU_MSG_VERSION */
    vgpu_u16 type;       /* enum vgpu_msg_type */
    vgpu_u32 request_id; /* device's sequence number, echoed in replies */
    vgpu_u32 vm_id;      /* informational from the device; the mediator
                          * fills in the VM-ID it holds */
    vgpu_u32 status;     /* enum vgpu_error in replies, 0 otherwise */
    vgpu_u32 length;     /* payload bytes, <= VGPU_MSG_MAX_PAYLOAD */
};
#define VGPU_MSG_HDR_SIZE 24u
#define VGPU_MSG_MAX_SIZE (VGPU_MSG_HDR_SIZE + VGPU_MSG_MAX_PAYLOAD)

/* Where each header field is on the wire (little-endian). */
#define VGPU_MSG_OFF_MAGIC 0u      /* u32 */
#define VGPU_MSG_OFF_VERSION 4u    /* u16 */
#define VGPU_MSG_OFF_TYPE 6u       /* u16 */
#define VGPU_MSG_OFF_REQUEST_ID 8u /* u32 */
#define VGPU_MSG_OFF_VM_ID 12u     /* u32 */
#define VGPU_MSG_OFF_STATUS 16u    /* u32 */
#define VGPU_MSG_OFF_LENGTH 20u    /* u32 */

/*
 * HELLO and HELLO_ACK.  pool holds the name as names.h packs it
 * (vgpu_pool_name_pack/unpack): not a C string.
 */
struct vgpu_msg_hello {
    vgpu_u8 pool[VGPU_POOL_NAME_MAX]; /* pool name, zero padded */
    vgpu_u32 priority;                /* enum vgpu_priority */
    vgpu_u32 vm_id;
    vgpu_u32 caps; /* VGPU_CAP_* */
};
#define VGPU_MSG_HELLO_SIZE 28u

#define VGPU_HELLO_OFF_POOL 0u      /* VGPU_POOL_NAME_MAX bytes */
#define VGPU_HELLO_OFF_PRIORITY 16u /* u32 */
#define VGPU_HELLO_OFF_VM_ID 20u    /* u32 */
#define VGPU_HELLO_OFF_CAPS 24u     /* u32 */

/* A header as it goes out: the magic and version of this contract. */
static inline struct vgpu_msg_hdr
vgpu_msg_hdr_make(vgpu_u16 type, vgpu_u32 request_id, vgpu_u32 vm_id,
                  vgpu_u32 status, vgpu_u32 length)
{
    struct vgpu_msg_hdr h;

    h.magic = VGPU_MSG_MAGIC;
    h.version = VGPU_MSG_VERSION;
    h.type = type;
    h.request_id = request_id;
    h.vm_id = vm_id;
    h.status = status;
    h.length = length;
    return h;
}

/* Write *h into out[VGPU_MSG_HDR_SIZE], every field as given. */
static inline void vgpu_msg_hdr_pack(vgpu_u8 *out, const struct vgpu_msg_hdr *h)
{
    vgpu_put_le32(out + VGPU_MSG_OFF_MAGIC, h->magic);
    vgpu_put_le16(out + VGPU_MSG_OFF_VERSION, h->version);
    vgpu_put_le16(out + VGPU_MSG_OFF_TYPE, h->type);
    vgpu_put_le32(out + VGPU_MSG_OFF_REQUEST_ID, h->request_id);
    vgpu_put_le32(out + VGPU_MSG_OFF_VM_ID, h->vm_id);
    vgpu_put_le32(out + VGPU_MSG_OFF_STATUS, h->status);
    vgpu_put_le32(out + VGPU_MSG_OFF_LENGTH, h->length);
}

/* Read the VGPU_MSG_HDR_SIZE bytes at in into *h, unchecked. */
static inline void vgpu_msg_hdr_unpack(const vgpu_u8 *in,
                                       struct vgpu_msg_hdr *h)
{
    h->magic = vgpu_get_le32(in + VGPU_MSG_OFF_MAGIC);
    h->version = vgpu_get_le16(in + VGPU_MSG_OFF_VERSION);
    h->type = vgpu_get_le16(in + VGPU_MSG_OFF_TYPE);
    h->request_id = vgpu_get_le32(in + VGPU_MSG_OFF_REQUEST_ID);
    h->vm_id = vgpu_get_le32(in + VGPU_MSG_OFF_VM_ID);
    h->status = vgpu_get_le32(in + VGPU_MSG_OFF_STATUS);
    h->length = vgpu_get_le32(in + VGPU_MSG_OFF_LENGTH);
}

/*
 * Is a received header one to accept?  NULL when it is, else why not, in
 * this order: "bad magic", "unsupported version", "unknown message type",
 * "payload length over the limit".  Which types a peer may send is the
 * receiver's business (the mediator takes HELLO and REQUEST only).
 */
static inline const char *vgpu_msg_hdr_check(const struct vgpu_msg_hdr *h)
{
    if (h->magic != VGPU_MSG_MAGIC) {
        return "bad magic";
    }
    if (h->version != VGPU_MSG_VERSION) {
        return "unsupported version";
    }
    if (h->type < VGPU_MSG_HELLO || h->type > VGPU_MSG_TYPE_MAX) {
        return "unknown message type";
    }
    if (h->length > VGPU_MSG_MAX_PAYLOAD) {
        return "payload length over the limit";
    }
    return 0;
}

/* Write *h into out[VGPU_MSG_HELLO_SIZE]. */
static inline void vgpu_msg_hello_pack(vgpu_u8 *out,
                                       const struct vgpu_msg_hello *h)
{
    unsigned int i;

    for (i = 0; i < VGPU_POOL_NAME_MAX; i++) {
        out[VGPU_HELLO_OFF_POOL + i] = h->pool[i];
    }
    vgpu_put_le32(out + VGPU_HELLO_OFF_PRIORITY, h->priority);
    vgpu_put_le32(out + VGPU_HELLO_OFF_VM_ID, h->vm_id);
    vgpu_put_le32(out + VGPU_HELLO_OFF_CAPS, h->caps);
}

/* Read the VGPU_MSG_HELLO_SIZE bytes at in into *h, unchecked. */
static inline void vgpu_msg_hello_unpack(const vgpu_u8 *in,
                                         struct vgpu_msg_hello *h)
{
    unsigned int i;

    for (i = 0; i < VGPU_POOL_NAME_MAX; i++) {
        h->pool[i] = in[VGPU_HELLO_OFF_POOL + i];
    }
    h->priority = vgpu_get_le32(in + VGPU_HELLO_OFF_PRIORITY);
    h->vm_id = vgpu_get_le32(in + VGPU_HELLO_OFF_VM_ID);
    h->caps = vgpu_get_le32(in + VGPU_HELLO_OFF_CAPS);
}

/* A HELLO or HELLO_ACK of pool (a valid name, or "" / NULL for none). */
static inline struct vgpu_msg_hello vgpu_msg_hello_make(const char *pool,
                                                        vgpu_u32 priority,
                                                        vgpu_u32 vm_id,
                                                        vgpu_u32 caps)
{
    struct vgpu_msg_hello h;

    vgpu_pool_name_pack(h.pool, pool);
    h.priority = priority;
    h.vm_id = vm_id;
    h.caps = caps;
    return h;
}

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct vgpu_msg_hdr) == VGPU_MSG_HDR_SIZE,
               "socket header layout");
_Static_assert(sizeof(struct vgpu_msg_hello) == VGPU_MSG_HELLO_SIZE,
               "hello layout");
_Static_assert(VGPU_HELLO_OFF_PRIORITY == VGPU_POOL_NAME_MAX,
               "hello: priority follows the pool name");
#endif

#endif /* VGPU_MSG_H */
