/*
 * vgpu-stub: paravirtual GPU-sharing PCI device (vgpu protocol v1)
 *
 * This file owns the guest-visible behaviour of the vgpu-stub device: its PCI
 * identity, the BAR0 register file and the two 1 KB buffers, the validation
 * of everything the guest writes, and the device side of the unix-socket
 * protocol spoken with the dom0 vgpu-mediator.  All numbers come from
 * hw/misc/vgpu_protocol.h (include/vgpu_protocol.h in the vgpu tree).
 *
 * Behaviour in brief:
 *  - The guest fills the request buffer, sets REQUEST_LEN (and optionally a
 *    REQUEST_ID tag) and writes VGPU_DOORBELL_SUBMIT to DOORBELL.  The device
 *    snapshots the request, sends it as VGPU_MSG_REQUEST and sets STATUS to
 *    BUSY.  The reply sets DONE (response buffer + RESPONSE_LEN) or ERROR
 *    (ERROR_CODE); a virtual-clock timer turns a missing reply into
 *    ERROR/TIMEOUT.
 *  - The socket header's request_id is a device-internal sequence number,
 *    one per submission, never 0.  Replies carrying any other number than
 *    the one in flight (late replies of abandoned or timed-out requests) are
 *    dropped.  The guest's REQUEST_ID register is a tag that never leaves
 *    the device: it is captured at the doorbell, writes to it are ignored
 *    while BUSY, so on DONE/ERROR it reads the tag of the request that
 *    completed ("echoed").
 *  - The mediator socket is connected lazily, at the first doorbell (never
 *    in realize: qemu-dm chroots after realizing devices), with a
 *    non-blocking connect; failure is ERROR/NO_MEDIATOR at once.  After a
 *    connect the device sends VGPU_MSG_HELLO, then requests.  vCPUs never
 *    block on the socket: writes go through an output buffer drained by a
 *    write fd handler, reads are parsed by a read fd handler.  When the
 *    connection is lost the next doorbell reconnects.
 *  - POOL_ID, POOL_NAME_1..3, PRIORITY and VM_ID show the device
 *    properties until the mediator's HELLO_ACK arrives, then the identity
 *    the mediator holds (from xenstore; it is authoritative).  The pool name
 *    reads as four little-endian words, bytes 0..3 in POOL_ID, so a
 *    one-letter pool reads as that letter there.  The mediator's identity is
 *    kept after a disconnect until the next HELLO_ACK.
 *  - Device reset returns the registers and buffers to IDLE, cancels the
 *    timer and abandons an in-flight request, but keeps the connection and
 *    the mediator's identity (a guest reboot does not change who the VM is).
 *  - Migration carries the registers and buffers; a request in flight at
 *    migration time ends as ERROR/MEDIATOR_LOST on the destination.
 *
 * Properties:
 *  pool=NAME                 pool name (default A): 1 to 16 of
 *                            [A-Za-z0-9_.-], the first a letter or digit;
 *                            any other is refused at realize.  Which pools
 *                            exist is pools.conf's business, checked by the
 *                            plugin before the device is ever added
 *  priority=low|medium|high  scheduling priority (default medium)
 *  vm-id=N                   VM-ID (uint32, default 0)
 *  socket=PATH               mediator socket (default /vgpu-mediator.sock,
 *                            i.e. inside qemu-dm's chroot)
 *  timeout-ms=N              request timeout, > 0 (default 5000)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/timer.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "hw/pci/pci.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "trace.h"
#include "hw/misc/vgpu_protocol.h"

#include <sys/socket.h>
#include <sys/un.h>

/* ---- QEMU version differences (4.2.1 for XCP-ng, 7.2 for the tests) ----
 *
 * This block is the only place where the two QEMU versions differ; the
 * rest of the file uses the API common to both.  Audited for 4.2 (the
 * tests/qemu42 check compiles this file against declarations of the 4.2
 * API): qdev properties are a DeviceClass field there (device_class_set_props
 * is 5.0+) and are instance properties, so class property descriptions
 * (qdev properties are class properties from 5.2; the older call also took
 * an Error **) are left out.
 * The rest of what the device uses exists unchanged in both: OBJECT_CHECK,
 * TypeInfo with INTERFACE_CONVENTIONAL_PCI_DEVICE, dc->reset, dc->vmsd,
 * PCIDeviceClass realize/exit, pci_register_bar, memory_region_init_io,
 * MemoryRegionOps .valid/.impl, VMSTATE_PCI_DEVICE/UINT32/UINT32_ARRAY/
 * UINT8_ARRAY, VMStateDescription .pre_load/.needed/.subsections,
 * DEFINE_PROP_STRING/UINT32, timer_new_ms/timer_mod/timer_del/timer_free,
 * qemu_clock_get_ms, qemu_set_fd_handler, qemu_log_mask, error_setg,
 * error_report, pstrcpy.  Socket bytes go through the contract's own
 * pack/unpack helpers (vgpu/msg.h).  No atomics, chardev, DMA, ERRP_GUARD
 * or OBJECT_DECLARE_* are used.
 *
 * QEMU_VERSION_MAJOR/MINOR come from config-host.h, which qemu/osdep.h
 * includes first: written by scripts/create_config (from the VERSION file)
 * in 4.2, by meson in 7.2.  A build without them stops here rather than
 * silently picking a branch.
 */
#if !defined(QEMU_VERSION_MAJOR) || !defined(QEMU_VERSION_MINOR)
#error "vgpu-stub: QEMU_VERSION_MAJOR/MINOR not defined (config-host.h)"
#endif
#define VGPU_QEMU_AT_LEAST(maj, min) \
    (QEMU_VERSION_MAJOR > (maj) || \
     (QEMU_VERSION_MAJOR == (maj) && QEMU_VERSION_MINOR >= (min)))

#if VGPU_QEMU_AT_LEAST(5, 0)
#define vgpu_set_props(dc, p) device_class_set_props((dc), (p))
#else
/* 4.2: properties are a DeviceClass field. */
#define vgpu_set_props(dc, p) ((dc)->props = (p))
#endif

#if VGPU_QEMU_AT_LEAST(5, 2)
#define vgpu_describe_prop(oc, name, text) \
    object_class_property_set_description((oc), (name), (text))
#else
/* Before 5.2 qdev properties are per instance: no class descriptions. */
#define vgpu_describe_prop(oc, name, text) do { } while (0)
#endif
/* ---- end of QEMU version differences ----------------------------------- */

#define TYPE_VGPU_STUB VGPU_DEVICE_TYPE
#define VGPU_STUB(obj) OBJECT_CHECK(VGPUStubState, (obj), TYPE_VGPU_STUB)

/*
 * Output queue bound: HELLO plus a few requests.  A mediator that lets
 * this much pile up is not reading and the connection is dropped.
 */
#define VGPU_OUTBUF_SIZE (4 * VGPU_MSG_MAX_SIZE)

QEMU_BUILD_BUG_ON(sizeof(struct vgpu_msg_hdr) != VGPU_MSG_HDR_SIZE);
QEMU_BUILD_BUG_ON(sizeof(struct vgpu_msg_hello) != VGPU_MSG_HELLO_SIZE);
QEMU_BUILD_BUG_ON(VGPU_POOL_NAME_REGS != 4);
QEMU_BUILD_BUG_ON(VGPU_RESP_BUF_OFFSET != VGPU_REQ_BUF_OFFSET + VGPU_BUF_SIZE);
QEMU_BUILD_BUG_ON(VGPU_RESP_BUF_OFFSET + VGPU_BUF_SIZE > VGPU_BAR0_SIZE);
QEMU_BUILD_BUG_ON(VGPU_REG_POOL_NAME_3 + VGPU_REG_WIDTH > VGPU_REQ_BUF_OFFSET);
QEMU_BUILD_BUG_ON(VGPU_MSG_MAX_PAYLOAD < VGPU_BUF_SIZE);

typedef struct VGPUStubState {
    PCIDevice parent_obj;

    MemoryRegion mmio;
    QEMUTimer *timer;

    /* properties */
    char *pool_prop;
    char *priority_prop;
    uint32_t vm_id_prop;
    char *socket_path;
    uint32_t timeout_ms;

    /* validated property values */
    char cfg_pool[VGPU_POOL_NAME_SIZE];
    uint32_t cfg_priority;

    /* registers */
    uint32_t status;
    uint32_t error_code;
    uint32_t request_len;
    uint32_t response_len;
    uint32_t request_id;    /* guest tag */
    uint32_t pool;          /* identity shown in POOL_ID/PRIORITY/VM_ID */
    uint32_t pool_name[3];  /* and POOL_NAME_1..3: the pool name's rest */
    uint32_t priority;
    uint32_t vm_id;
    uint8_t req_buf[VGPU_BUF_SIZE];
    uint8_t resp_buf[VGPU_BUF_SIZE];

    /* submission */
    uint32_t next_seq;      /* last sequence number used */
    uint32_t inflight_seq;  /* 0: nothing in flight */

    /* mediator connection */
    int fd;                 /* -1: not connected */
    bool connect_warned;    /* one error_report per outage */
    bool version_warned;    /* the same for a mediator of another version */
    uint8_t *outbuf;
    size_t out_len;
    uint8_t *inbuf;
    size_t in_len;
} VGPUStubState;

static void vgpu_update_handlers(VGPUStubState *s);

/* Show pool name (valid, or "" for none) in POOL_ID and POOL_NAME_1..3. */
static void vgpu_set_pool(VGPUStubState *s, const char *name)
{
    uint32_t w[VGPU_POOL_NAME_REGS];

    vgpu_pool_name_to_regs(name, w);
    s->pool = w[0];
    memcpy(s->pool_name, w + 1, sizeof(s->pool_name));
}

/* The pool name the registers show: 1 valid, 0 none, -1 neither. */
static int vgpu_get_pool(VGPUStubState *s, char name[VGPU_POOL_NAME_SIZE])
{
    uint32_t w[VGPU_POOL_NAME_REGS];

    w[0] = s->pool;
    memcpy(w + 1, s->pool_name, sizeof(s->pool_name));
    return vgpu_pool_name_from_regs(w, name);
}

/* ---------------------------------------------------------------------- */
/* state changes                                                           */
/* ---------------------------------------------------------------------- */

static void vgpu_finish_error(VGPUStubState *s, uint32_t code)
{
    timer_del(s->timer);
    s->inflight_seq = 0;
    s->status = VGPU_STATUS_ERROR;
    s->error_code = code;
}

static void vgpu_disconnect(VGPUStubState *s, const char *why,
                            uint32_t busy_code)
{
    if (s->fd < 0) {
        return;
    }
    trace_vgpu_stub_disconnect(why);
    qemu_set_fd_handler(s->fd, NULL, NULL, NULL);
    close(s->fd);
    s->fd = -1;
    s->out_len = 0;
    s->in_len = 0;
    if (s->status == VGPU_STATUS_BUSY) {
        vgpu_finish_error(s, busy_code);
    }
}

/* Map a code received from the mediator to a guest-visible error. */
static uint32_t vgpu_clamp_error(uint32_t code)
{
    if (code == VGPU_ERR_NONE || code >= VGPU_ERR_COUNT) {
        return VGPU_ERR_PROTOCOL;
    }
    return code;
}

/* ---------------------------------------------------------------------- */
/* socket output                                                           */
/* ---------------------------------------------------------------------- */

/*
 * Send what the socket takes now.  Returns false if the connection broke
 * (the caller decides what to do), true otherwise.
 */
static bool vgpu_flush(VGPUStubState *s)
{
    while (s->out_len > 0) {
        ssize_t n = send(s->fd, s->outbuf, s->out_len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            return false;
        }
        memmove(s->outbuf, s->outbuf + n, s->out_len - n);
        s->out_len -= n;
    }
    vgpu_update_handlers(s);
    return true;
}

static bool vgpu_queue_msg(VGPUStubState *s, uint16_t type, uint32_t seq,
                           const void *payload, uint32_t len)
{
    struct vgpu_msg_hdr h = vgpu_msg_hdr_make(type, seq, s->vm_id, 0, len);
    uint8_t *p;

    if (s->out_len + VGPU_MSG_HDR_SIZE + len > VGPU_OUTBUF_SIZE) {
        return false;
    }
    p = s->outbuf + s->out_len;
    vgpu_msg_hdr_pack(p, &h);
    if (len) {
        memcpy(p + VGPU_MSG_HDR_SIZE, payload, len);
    }
    s->out_len += VGPU_MSG_HDR_SIZE + len;
    return true;
}

static void vgpu_can_write(void *opaque)
{
    VGPUStubState *s = opaque;

    if (!vgpu_flush(s)) {
        vgpu_disconnect(s, "write failed", VGPU_ERR_MEDIATOR_LOST);
    }
}

/* ---------------------------------------------------------------------- */
/* socket input                                                            */
/* ---------------------------------------------------------------------- */

/*
 * Handle one complete message.  Returns false if the connection was
 * closed (stop parsing).
 */
static bool vgpu_handle_msg(VGPUStubState *s, const struct vgpu_msg_hdr *h,
                            const uint8_t *payload)
{
    uint32_t seq = h->request_id;
    uint32_t status = h->status;
    uint32_t len = h->length;
    struct vgpu_msg_hello ack;
    char pool[VGPU_POOL_NAME_SIZE];

    trace_vgpu_stub_reply(h->type, seq, status, len);

    switch (h->type) {
    case VGPU_MSG_HELLO_ACK:
        if (len != VGPU_MSG_HELLO_SIZE) {
            vgpu_disconnect(s, "bad HELLO_ACK length", VGPU_ERR_PROTOCOL);
            return false;
        }
        vgpu_msg_hello_unpack(payload, &ack);
        /* A valid name, or none (the VM is not assigned): nothing else
         * goes into the registers. */
        if (vgpu_pool_name_unpack(ack.pool, pool) < 0) {
            vgpu_disconnect(s, "HELLO_ACK pool is not a pool name",
                            VGPU_ERR_PROTOCOL);
            return false;
        }
        vgpu_set_pool(s, pool);
        s->priority = ack.priority;
        s->vm_id = ack.vm_id;
        trace_vgpu_stub_hello_ack(pool, s->priority, s->vm_id);
        return true;

    case VGPU_MSG_RESPONSE:
        if (s->status != VGPU_STATUS_BUSY || seq == 0 ||
            seq != s->inflight_seq) {
            trace_vgpu_stub_stale_reply(seq, s->inflight_seq);
            return true;
        }
        timer_del(s->timer);
        s->inflight_seq = 0;
        if (status != VGPU_ERR_NONE) {
            s->status = VGPU_STATUS_ERROR;
            s->error_code = vgpu_clamp_error(status);
            return true;
        }
        /* len <= VGPU_MSG_MAX_PAYLOAD == VGPU_BUF_SIZE, checked on receipt */
        memcpy(s->resp_buf, payload, len);
        s->response_len = len;
        s->error_code = VGPU_ERR_NONE;
        s->status = VGPU_STATUS_DONE;
        return true;

    case VGPU_MSG_ERROR:
        vgpu_disconnect(s, "mediator sent ERROR", vgpu_clamp_error(status));
        return false;

    default:
        /* HELLO and REQUEST only travel to the mediator. */
        vgpu_disconnect(s, "unexpected message type", VGPU_ERR_PROTOCOL);
        return false;
    }
}

static void vgpu_can_read(void *opaque)
{
    VGPUStubState *s = opaque;
    ssize_t n;

    n = recv(s->fd, s->inbuf + s->in_len, VGPU_MSG_MAX_SIZE - s->in_len,
             MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        }
        vgpu_disconnect(s, "read failed", VGPU_ERR_MEDIATOR_LOST);
        return;
    }
    if (n == 0) {
        vgpu_disconnect(s, "mediator closed the connection",
                        VGPU_ERR_MEDIATOR_LOST);
        return;
    }
    s->in_len += n;

    while (s->in_len >= VGPU_MSG_HDR_SIZE) {
        struct vgpu_msg_hdr h;
        const char *why;
        size_t total;

        vgpu_msg_hdr_unpack(s->inbuf, &h);
        why = vgpu_msg_hdr_check(&h);
        if (why) {
            /*
             * A mediator of another protocol version is a host
             * misconfiguration, not a guest error: said once, until a
             * mediator of our version answers.
             */
            if (h.magic == VGPU_MSG_MAGIC && h.version != VGPU_MSG_VERSION &&
                !s->version_warned) {
                error_report("vgpu-stub: the mediator speaks socket protocol "
                             "version %u, this device version %u: refused "
                             "(update qemu-dm and vgpu-mediator together)",
                             h.version, VGPU_MSG_VERSION);
                s->version_warned = true;
            }
            vgpu_disconnect(s, why, VGPU_ERR_PROTOCOL);
            return;
        }
        total = VGPU_MSG_HDR_SIZE + h.length;
        if (s->in_len < total) {
            break;
        }
        if (h.type == VGPU_MSG_HELLO_ACK) {
            s->version_warned = false;
        }
        if (!vgpu_handle_msg(s, &h, s->inbuf + VGPU_MSG_HDR_SIZE)) {
            return;
        }
        memmove(s->inbuf, s->inbuf + total, s->in_len - total);
        s->in_len -= total;
    }
}

static void vgpu_update_handlers(VGPUStubState *s)
{
    if (s->fd >= 0) {
        qemu_set_fd_handler(s->fd, vgpu_can_read,
                            s->out_len ? vgpu_can_write : NULL, s);
    }
}

/* ---------------------------------------------------------------------- */
/* connection                                                              */
/* ---------------------------------------------------------------------- */

static bool vgpu_connect(VGPUStubState *s)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct vgpu_msg_hello hello;
    uint8_t hello_buf[VGPU_MSG_HELLO_SIZE];
    int fd;

    /* Checked in realize: the path fits. */
    pstrcpy(sa.sun_path, sizeof(sa.sun_path), s->socket_path);

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        trace_vgpu_stub_connect_failed(s->socket_path, errno);
        return false;
    }
    /*
     * A unix stream connect completes or fails at once; EAGAIN (backlog
     * full) counts as failure too: the doorbell must not wait.
     */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = errno;

        trace_vgpu_stub_connect_failed(s->socket_path, err);
        if (!s->connect_warned) {
            error_report("vgpu-stub: cannot reach the mediator at %s: %s",
                         s->socket_path, strerror(err));
            s->connect_warned = true;
        }
        close(fd);
        return false;
    }
    trace_vgpu_stub_connect(s->socket_path, fd);
    s->connect_warned = false;
    s->fd = fd;
    s->out_len = 0;
    s->in_len = 0;

    hello = vgpu_msg_hello_make(s->cfg_pool, s->cfg_priority, s->vm_id_prop,
                                VGPU_CAPS_V1);
    vgpu_msg_hello_pack(hello_buf, &hello);
    /* The queue is empty: this cannot fail. */
    vgpu_queue_msg(s, VGPU_MSG_HELLO, 0, hello_buf, sizeof(hello_buf));
    vgpu_update_handlers(s);
    return true;
}

/*
 * Queue the request and push it out.  Returns false if the connection
 * broke on the way (it is closed then).
 */
static bool vgpu_send_request(VGPUStubState *s, uint32_t seq)
{
    if (!vgpu_queue_msg(s, VGPU_MSG_REQUEST, seq, s->req_buf,
                        s->request_len)) {
        vgpu_disconnect(s, "mediator does not read", VGPU_ERR_MEDIATOR_LOST);
        return false;
    }
    if (!vgpu_flush(s)) {
        vgpu_disconnect(s, "write failed", VGPU_ERR_MEDIATOR_LOST);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------------- */
/* doorbell                                                                */
/* ---------------------------------------------------------------------- */

static void vgpu_doorbell(VGPUStubState *s, uint32_t val)
{
    bool was_connected;
    uint32_t seq;

    if (val != VGPU_DOORBELL_SUBMIT) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgpu-stub: bad doorbell value 0x%x\n", val);
        vgpu_finish_error(s, VGPU_ERR_BAD_DOORBELL);
        return;
    }
    if (s->status == VGPU_STATUS_BUSY) {
        /* The in-flight request is abandoned; its reply will not match. */
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgpu-stub: doorbell while a request is in flight\n");
        vgpu_finish_error(s, VGPU_ERR_DOORBELL_BUSY);
        return;
    }
    if (s->request_len > VGPU_BUF_SIZE) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgpu-stub: REQUEST_LEN %u too large\n", s->request_len);
        vgpu_finish_error(s, VGPU_ERR_REQUEST_TOO_LARGE);
        return;
    }
    if (s->request_len < sizeof(struct vgpu_req_hdr)) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgpu-stub: REQUEST_LEN %u shorter than a header\n",
                      s->request_len);
        vgpu_finish_error(s, VGPU_ERR_BAD_REQUEST);
        return;
    }

    if (++s->next_seq == 0) {
        s->next_seq = 1;
    }
    seq = s->next_seq;
    trace_vgpu_stub_submit(seq, s->request_len, s->request_id);

    was_connected = s->fd >= 0;
    if (!was_connected && !vgpu_connect(s)) {
        vgpu_finish_error(s, VGPU_ERR_NO_MEDIATOR);
        return;
    }
    if (!vgpu_send_request(s, seq)) {
        /*
         * A connection kept from earlier may have died unnoticed: one
         * fresh attempt.
         */
        if (!was_connected || !vgpu_connect(s)) {
            vgpu_finish_error(s, was_connected ? VGPU_ERR_NO_MEDIATOR
                                               : VGPU_ERR_MEDIATOR_LOST);
            return;
        }
        if (!vgpu_send_request(s, seq)) {
            vgpu_finish_error(s, VGPU_ERR_MEDIATOR_LOST);
            return;
        }
    }

    s->inflight_seq = seq;
    s->response_len = 0;
    s->error_code = VGPU_ERR_NONE;
    s->status = VGPU_STATUS_BUSY;
    timer_mod(s->timer,
              qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL) + s->timeout_ms);
}

static void vgpu_timeout(void *opaque)
{
    VGPUStubState *s = opaque;

    if (s->status == VGPU_STATUS_BUSY) {
        trace_vgpu_stub_timeout(s->inflight_seq);
        vgpu_finish_error(s, VGPU_ERR_TIMEOUT);
    }
}

/* ---------------------------------------------------------------------- */
/* MMIO                                                                    */
/* ---------------------------------------------------------------------- */

static uint32_t vgpu_reg_read(VGPUStubState *s, hwaddr addr)
{
    switch (addr) {
    case VGPU_REG_STATUS:
        return s->status;
    case VGPU_REG_POOL_ID:
        return s->pool;
    case VGPU_REG_POOL_NAME_1:
    case VGPU_REG_POOL_NAME_2:
    case VGPU_REG_POOL_NAME_3:
        return s->pool_name[(addr - VGPU_REG_POOL_NAME_1) / VGPU_REG_WIDTH];
    case VGPU_REG_PRIORITY:
        return s->priority;
    case VGPU_REG_VM_ID:
        return s->vm_id;
    case VGPU_REG_ERROR_CODE:
        return s->error_code;
    case VGPU_REG_REQUEST_LEN:
        return s->request_len;
    case VGPU_REG_RESPONSE_LEN:
        return s->response_len;
    case VGPU_REG_PROTOCOL_VER:
        return VGPU_PROTOCOL_VERSION;
    case VGPU_REG_CAPABILITIES:
        return VGPU_CAPS_V1;
    case VGPU_REG_REQUEST_ID:
        return s->request_id;
    default:
        /* DOORBELL (write-only), IRQ_CTRL/IRQ_STATUS (reserved), holes */
        return 0;
    }
}

static void vgpu_reg_write(VGPUStubState *s, hwaddr addr, uint32_t val)
{
    switch (addr) {
    case VGPU_REG_DOORBELL:
        vgpu_doorbell(s, val);
        break;
    case VGPU_REG_REQUEST_LEN:
        if (s->status == VGPU_STATUS_BUSY) {
            if (val > VGPU_BUF_SIZE) {
                qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: REQUEST_LEN %u "
                              "while busy ignored\n", val);
                break;
            }
            s->request_len = val;
            break;
        }
        s->request_len = val;
        if (val > VGPU_BUF_SIZE) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "vgpu-stub: REQUEST_LEN %u too large\n", val);
            vgpu_finish_error(s, VGPU_ERR_REQUEST_TOO_LARGE);
        }
        break;
    case VGPU_REG_REQUEST_ID:
        if (s->status == VGPU_STATUS_BUSY) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "vgpu-stub: REQUEST_ID written while busy\n");
            break;
        }
        s->request_id = val;
        break;
    case VGPU_REG_IRQ_CTRL:
    case VGPU_REG_IRQ_STATUS:
        /* reserved for v2 */
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: write 0x%x to read-only "
                      "register 0x%" HWADDR_PRIx "\n", val, addr);
        break;
    }
}

static uint8_t vgpu_buf_byte(VGPUStubState *s, hwaddr off)
{
    if (off >= VGPU_REQ_BUF_OFFSET &&
        off < VGPU_REQ_BUF_OFFSET + VGPU_BUF_SIZE) {
        return s->req_buf[off - VGPU_REQ_BUF_OFFSET];
    }
    if (off >= VGPU_RESP_BUF_OFFSET &&
        off < VGPU_RESP_BUF_OFFSET + VGPU_BUF_SIZE) {
        return s->resp_buf[off - VGPU_RESP_BUF_OFFSET];
    }
    return 0;
}

static uint64_t vgpu_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    VGPUStubState *s = opaque;
    uint64_t val = 0;
    unsigned i;

    if (addr < VGPU_REQ_BUF_OFFSET) {
        if (size != VGPU_REG_WIDTH || (addr & (VGPU_REG_WIDTH - 1))) {
            qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: %u-byte read at 0x%"
                          HWADDR_PRIx ": registers are aligned dwords\n",
                          size, addr);
            return 0;
        }
        return vgpu_reg_read(s, addr);
    }
    /* buffers, little-endian bytes; beyond them reads 0 */
    for (i = 0; i < size; i++) {
        val |= (uint64_t)vgpu_buf_byte(s, addr + i) << (8 * i);
    }
    return val;
}

static void vgpu_mmio_write(void *opaque, hwaddr addr, uint64_t val,
                            unsigned size)
{
    VGPUStubState *s = opaque;
    unsigned i;

    if (addr < VGPU_REQ_BUF_OFFSET) {
        if (size != VGPU_REG_WIDTH || (addr & (VGPU_REG_WIDTH - 1))) {
            qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: %u-byte write at 0x%"
                          HWADDR_PRIx ": registers are aligned dwords\n",
                          size, addr);
            return;
        }
        vgpu_reg_write(s, addr, val);
        return;
    }
    /* Only the request buffer is writable; the rest is ignored. */
    for (i = 0; i < size; i++) {
        hwaddr off = addr + i;

        if (off >= VGPU_REQ_BUF_OFFSET &&
            off < VGPU_REQ_BUF_OFFSET + VGPU_BUF_SIZE) {
            s->req_buf[off - VGPU_REQ_BUF_OFFSET] = val >> (8 * i);
        }
    }
}

static const MemoryRegionOps vgpu_mmio_ops = {
    .read = vgpu_mmio_read,
    .write = vgpu_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 4,
        .unaligned = true,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 4,
        .unaligned = true,
    },
};

/* ---------------------------------------------------------------------- */
/* lifecycle                                                               */
/* ---------------------------------------------------------------------- */

static void vgpu_reset_regs(VGPUStubState *s)
{
    timer_del(s->timer);
    s->inflight_seq = 0;
    s->status = VGPU_STATUS_IDLE;
    s->error_code = VGPU_ERR_NONE;
    s->request_len = 0;
    s->response_len = 0;
    s->request_id = 0;
    memset(s->req_buf, 0, sizeof(s->req_buf));
    memset(s->resp_buf, 0, sizeof(s->resp_buf));
}

static void vgpu_reset(DeviceState *dev)
{
    vgpu_reset_regs(VGPU_STUB(dev));
}

static bool vgpu_parse_props(VGPUStubState *s, Error **errp)
{
    const char *pool = s->pool_prop ? s->pool_prop : VGPU_POOL_DEFAULT;
    const char *prio = s->priority_prop ? s->priority_prop
                                        : VGPU_PRIO_NAME_DEFAULT;
    size_t plen;

    /* Any valid name: the plugin checked that this host has the pool. */
    if (!vgpu_pool_name_valid(pool)) {
        error_setg(errp, "pool '%s' is not a pool name (" VGPU_POOL_NAME_RULE
                   ")", pool);
        return false;
    }
    pstrcpy(s->cfg_pool, sizeof(s->cfg_pool), pool);

    if (vgpu_priority_parse(prio, &s->cfg_priority)) {
        error_setg(errp, "priority must be " VGPU_PRIO_NAMES ", not '%s'",
                   prio);
        return false;
    }

    if (s->timeout_ms == 0) {
        error_setg(errp, "timeout-ms must be greater than 0");
        return false;
    }

    if (!s->socket_path || !s->socket_path[0]) {
        error_setg(errp, "socket must name a unix socket path");
        return false;
    }
    plen = strlen(s->socket_path);
    if (plen >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
        error_setg(errp, "socket path '%s' is too long",
                   s->socket_path);
        return false;
    }
    return true;
}

static void vgpu_realize(PCIDevice *pdev, Error **errp)
{
    VGPUStubState *s = VGPU_STUB(pdev);

    if (!vgpu_parse_props(s, errp)) {
        return;
    }

    /* No socket work here: qemu-dm chroots after realize. */
    s->fd = -1;
    s->outbuf = g_malloc(VGPU_OUTBUF_SIZE);
    s->inbuf = g_malloc(VGPU_MSG_MAX_SIZE);
    vgpu_set_pool(s, s->cfg_pool);
    s->priority = s->cfg_priority;
    s->vm_id = s->vm_id_prop;
    s->timer = timer_new_ms(QEMU_CLOCK_VIRTUAL, vgpu_timeout, s);
    vgpu_reset_regs(s);

    memory_region_init_io(&s->mmio, OBJECT(s), &vgpu_mmio_ops, s,
                          "vgpu-stub-mmio", VGPU_BAR0_SIZE);
    pci_register_bar(pdev, 0, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->mmio);
}

static void vgpu_exit(PCIDevice *pdev)
{
    VGPUStubState *s = VGPU_STUB(pdev);

    if (s->fd >= 0) {
        qemu_set_fd_handler(s->fd, NULL, NULL, NULL);
        close(s->fd);
        s->fd = -1;
    }
    if (s->timer) {
        timer_del(s->timer);
        timer_free(s->timer);
        s->timer = NULL;
    }
    g_free(s->outbuf);
    s->outbuf = NULL;
    g_free(s->inbuf);
    s->inbuf = NULL;
}

static void vgpu_instance_init(Object *obj)
{
    VGPUStubState *s = VGPU_STUB(obj);

    s->fd = -1;
    s->pool_prop = g_strdup(VGPU_POOL_DEFAULT);
    s->priority_prop = g_strdup(VGPU_PRIO_NAME_DEFAULT);
    s->socket_path = g_strdup(VGPU_SOCKET_PATH_IN_CHROOT);
}

/*
 * A source whose pool name fits in POOL_ID (up to 4 bytes, as every pool
 * of a device from before pool names) sends no pool-name subsection: its
 * POOL_NAME_1..3 are zero.
 */
static int vgpu_pre_load(void *opaque)
{
    VGPUStubState *s = opaque;

    memset(s->pool_name, 0, sizeof(s->pool_name));
    return 0;
}

static int vgpu_post_load(void *opaque, int version_id)
{
    VGPUStubState *s = opaque;
    char pool[VGPU_POOL_NAME_SIZE];

    if (s->status > VGPU_STATUS_ERROR || s->error_code >= VGPU_ERR_COUNT ||
        s->response_len > VGPU_BUF_SIZE || vgpu_get_pool(s, pool) < 0) {
        return -EINVAL;
    }
    /* The request went to the source's mediator connection. */
    if (s->status == VGPU_STATUS_BUSY) {
        vgpu_finish_error(s, VGPU_ERR_MEDIATOR_LOST);
    }
    return 0;
}

static bool vgpu_pool_name_needed(void *opaque)
{
    VGPUStubState *s = opaque;

    return s->pool_name[0] || s->pool_name[1] || s->pool_name[2];
}

/* Bytes 4..15 of the pool name, only when there are any: a destination
 * from before pool names can still take a pool of up to 4 bytes. */
static const VMStateDescription vgpu_vmstate_pool_name = {
    .name = VGPU_DEVICE_TYPE "/pool-name",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = vgpu_pool_name_needed,
    .fields = (VMStateField[]) {
        VMSTATE_UINT32_ARRAY(pool_name, VGPUStubState, 3),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vgpu_vmstate = {
    .name = VGPU_DEVICE_TYPE,
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_load = vgpu_pre_load,
    .post_load = vgpu_post_load,
    .fields = (VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, VGPUStubState),
        VMSTATE_UINT32(status, VGPUStubState),
        VMSTATE_UINT32(error_code, VGPUStubState),
        VMSTATE_UINT32(request_len, VGPUStubState),
        VMSTATE_UINT32(response_len, VGPUStubState),
        VMSTATE_UINT32(request_id, VGPUStubState),
        VMSTATE_UINT32(pool, VGPUStubState),
        VMSTATE_UINT32(priority, VGPUStubState),
        VMSTATE_UINT32(vm_id, VGPUStubState),
        VMSTATE_UINT8_ARRAY(req_buf, VGPUStubState, VGPU_BUF_SIZE),
        VMSTATE_UINT8_ARRAY(resp_buf, VGPUStubState, VGPU_BUF_SIZE),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription *[]) {
        &vgpu_vmstate_pool_name,
        NULL
    },
};

static Property vgpu_properties[] = {
    DEFINE_PROP_STRING("pool", VGPUStubState, pool_prop),
    DEFINE_PROP_STRING("priority", VGPUStubState, priority_prop),
    DEFINE_PROP_UINT32("vm-id", VGPUStubState, vm_id_prop, 0),
    DEFINE_PROP_STRING("socket", VGPUStubState, socket_path),
    DEFINE_PROP_UINT32("timeout-ms", VGPUStubState, timeout_ms,
                       VGPU_DEVICE_TIMEOUT_MS_DEFAULT),
    DEFINE_PROP_END_OF_LIST(),
};

static void vgpu_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = vgpu_realize;
    k->exit = vgpu_exit;
    k->vendor_id = VGPU_PCI_VENDOR_ID;
    k->device_id = VGPU_PCI_DEVICE_ID;
    k->revision = VGPU_PCI_REVISION;
    k->class_id = VGPU_PCI_CLASS;
    dc->desc = "vgpu paravirtual GPU-sharing device (protocol v1)";
    dc->reset = vgpu_reset;
    dc->vmsd = &vgpu_vmstate;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    vgpu_set_props(dc, vgpu_properties);
    vgpu_describe_prop(klass, "pool", "GPU pool name: " VGPU_POOL_NAME_RULE
                       " (default " VGPU_POOL_DEFAULT ")");
    vgpu_describe_prop(klass, "priority",
                       "scheduling priority: low, medium or high "
                       "(default medium)");
    vgpu_describe_prop(klass, "vm-id", "VM-ID reported to the mediator");
    vgpu_describe_prop(klass, "socket",
                       "mediator unix socket path (default "
                       VGPU_SOCKET_PATH_IN_CHROOT ", inside the chroot)");
    vgpu_describe_prop(klass, "timeout-ms",
                       "request timeout in ms, > 0");
}

static const TypeInfo vgpu_info = {
    .name = TYPE_VGPU_STUB,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(VGPUStubState),
    .instance_init = vgpu_instance_init,
    .class_init = vgpu_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    },
};

static void vgpu_register_types(void)
{
    type_register_static(&vgpu_info);
}

type_init(vgpu_register_types)
