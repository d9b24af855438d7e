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
 *  - Migration carries the registers, buffers and rings.  While the VM is
 *    stopped the device reads no socket and touches no guest memory, so the
 *    state saved is the state at the stop, whatever comes later.  A request
 *    in flight then (v1: STATUS BUSY; v2: the SQEs of the ring requests
 *    taken and not completed) is sent again, once the VM runs on the
 *    destination, to that host's mediator: the guest sees it complete once,
 *    with its answer.  Requests are pure functions of their bytes (ops.h),
 *    so one that the source's mediator also ran gives the same answer; the
 *    source never completes it into the VM's memory after the stop.
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
#include "hw/pci/msix.h"
#include "qemu/atomic.h"
#include "qemu/bswap.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "sysemu/runstate.h"
#include "trace.h"
#include "hw/misc/vgpu_protocol.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
#define vgpu_add_stat(obj, name, p) \
    object_property_add_uint64_ptr((obj), (name), (p), OBJ_PROP_FLAG_READ)
#else
/* Before 5.2 it takes an Error ** and is always read-only. */
#define vgpu_add_stat(obj, name, p) \
    object_property_add_uint64_ptr((obj), (name), (p), NULL)
#endif

#if VGPU_QEMU_AT_LEAST(5, 2)
#define vgpu_describe_prop(oc, name, text) \
    object_class_property_set_description((oc), (name), (text))
#else
/* Before 5.2 qdev properties are per instance: no class descriptions. */
#define vgpu_describe_prop(oc, name, text) do { } while (0)
#endif
#if VGPU_QEMU_AT_LEAST(6, 0)
typedef bool VGPURunning;
#else
/* Before 6.0 a VMChangeStateHandler's running argument is an int. */
typedef int VGPURunning;
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

/*
 * v2 requests.  A slot is LIVE from the moment its SQ entry is taken until
 * its CQE is written; ORPHAN when the guest side is over (timeout, rings
 * stopped) but the mediator still holds it open and must get a CANCEL.
 * Twice the largest ring: the orphans of one incarnation never keep the
 * next from running.
 */
#define VGPU_REQ_SLOTS (2 * VGPU_RING_MAX_ENTRIES)

enum {
    VGPU_REQ_FREE = 0,
    VGPU_REQ_LIVE,
    VGPU_REQ_ORPHAN,
};

enum {
    VGPU_SHM_ST_NONE = 0,   /* no channel on this connection (yet) */
    VGPU_SHM_ST_WAIT,       /* SHM_REQ sent, no SHM_OFFER yet */
    VGPU_SHM_ST_READY,      /* region mapped */
    VGPU_SHM_ST_FAILED,     /* the mediator said no: shm_status */
};

typedef struct VGPUSge {
    uint64_t addr;
    uint32_t len;
} VGPUSge;

typedef struct VGPURingReq {
    uint8_t state;
    bool opened;            /* FIRST sent: open at the mediator */
    bool resp_started;
    uint32_t epoch;
    uint32_t seq;
    uint32_t tag;
    uint32_t req_n;
    uint32_t resp_n;
    uint64_t req_sg_addr;   /* as the SQE named them: a migration re-sends */
    uint64_t resp_sg_addr;
    VGPUSge *req_sg;
    VGPUSge *resp_sg;
    uint64_t req_len;
    uint64_t resp_cap;
    uint64_t req_sent;      /* request bytes streamed so far */
    uint32_t req_i;         /* where in req_sg they continue */
    uint32_t req_i_off;
    uint64_t resp_total;
    uint64_t resp_got;
    uint32_t resp_i;        /* where in resp_sg the response goes on */
    uint32_t resp_i_off;
    uint32_t resp_status;   /* a DMA error while writing the response */
    int64_t deadline;       /* QEMU_CLOCK_VIRTUAL ns */
    uint64_t order;         /* taken in this order: streamed in it */
} VGPURingReq;

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
    bool hello_acked;       /* this connection had its HELLO_ACK */
    int in_fds[VGPU_SHM_FDS]; /* fds received for the SHM_OFFER */
    unsigned in_nfds;
    bool in_fds_bad;        /* more fds came than an offer carries */

    /* v2: interrupts (ring.h) */
    uint32_t irq_ctrl;
    uint32_t irq_status;
    uint32_t irq_coalesce;
    uint32_t irq_held;      /* completions whose interrupt is held back */
    uint32_t last_irq_tail; /* CQ tail when the CQ vector last fired */
    QEMUTimer *coalesce_timer;

    /* v2: ring registers */
    uint32_t ring_ctrl;
    uint32_t ring_status;   /* READY/ERROR and the code, no counter */
    uint32_t ring_bad;      /* bad writes (saturating at 0xffff) */
    uint64_t sq_base;
    uint64_t cq_base;
    uint64_t dbbuf;
    uint32_t sq_size;
    uint32_t cq_size;
    uint32_t sq_head;       /* next SQ slot the device takes */
    uint32_t sq_tail;       /* the guest's tail as last seen */
    uint32_t cq_tail;       /* next CQ slot the device writes */
    uint32_t cq_head;       /* the guest's head as last seen */
    uint32_t cq_phase;      /* phase written on this pass (1 first) */
    uint32_t sq_event;      /* sq_event_idx as last written */
    uint32_t epoch;         /* ring incarnation, new at every enable */
    uint32_t inflight;      /* requests taken, CQE not yet written */
    uint64_t max_xfer;
    uint32_t next_ring_seq;
    uint64_t next_order;
    VGPURingReq *reqs;      /* VGPU_REQ_SLOTS */
    uint32_t reqs_hi;       /* slots [reqs_hi, end) are all free */
    uint32_t reqs_used;
    QEMUTimer *ring_timer;  /* request deadlines, shadow polling */
    QEMUTimer *retry_timer; /* sub ring full: look again (real time) */
    QEMUBH *mig_bh;         /* completions of requests migrated in */
    bool in_run;
    bool run_again;
    /* migration only: the requests in flight at the source, in order */
    uint32_t mig_count;
    uint32_t mig_tags[VGPU_RING_MAX_ENTRIES];
    uint8_t mig_sqes[VGPU_RING_MAX_ENTRIES * VGPU_SQE_SIZE];
    bool mig_resend;        /* the source sent mig_sqes: re-send them */
    bool mig_pending;       /* mig_count requests wait for the VM to run */
    bool v1_resend;         /* the v1 request in flight came with the VM */

    /*
     * While the VM is stopped (migration, suspend, save) the device does
     * nothing the saved state would miss: no socket or eventfd is read, no
     * guest memory touched.  What arrives meanwhile waits for the run.
     */
    bool vm_running;
    VMChangeStateEntry *vm_state;

    /* v2: the channel to the mediator (shm.h) */
    bool shm_requested;     /* SHM_REQ sent on this connection */
    uint32_t shm_state;     /* VGPU_SHM_ST_* */
    uint32_t shm_status;    /* FAILED: why (enum vgpu_error) */
    struct vgpu_shm_offer offer;
    uint8_t *shm;
    int kick_fd;
    int call_fd;
    uint32_t sub_prod;
    uint32_t comp_cons;
    bool sub_dirty;         /* entries published since the last kick */
    uint32_t chunk_hint;
    uint8_t *req_chunk_lent; /* request chunks lent to the mediator */
    uint32_t med_open;      /* requests open at the mediator */

    /*
     * Read-only QOM properties for `make bench` (x-stat-*): what a request
     * costs on Xen is the BAR0 accesses (each an ioreq round trip to
     * qemu-dm) and the interrupts it takes.  Never migrated, never reset.
     */
    uint64_t stat_mmio;  /* BAR0 reads and writes handled */
    uint64_t stat_irqs;  /* MSI-X messages sent */
    uint64_t stat_done;  /* requests completed, v1 and v2, any status */
} VGPUStubState;

static void vgpu_update_handlers(VGPUStubState *s);
static bool vgpu_connect(VGPUStubState *s);
static void vgpu_shm_close(VGPUStubState *s, uint32_t code);
static bool vgpu_shm_request(VGPUStubState *s);
static bool vgpu_shm_offer(VGPUStubState *s, const struct vgpu_msg_hdr *h,
                           const uint8_t *payload);
static void vgpu_irq_cause(VGPUStubState *s, uint32_t cause);
static void vgpu_ring_run(VGPUStubState *s);
static void vgpu_migrated_in(void *opaque);
static void vgpu_shm_call(void *opaque);
static void vgpu_v1_resend(VGPUStubState *s);
static void vgpu_vm_state(void *opaque, VGPURunning running, RunState state);

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
    bool was_busy = s->status == VGPU_STATUS_BUSY;

    timer_del(s->timer);
    s->inflight_seq = 0;
    s->status = VGPU_STATUS_ERROR;
    s->error_code = code;
    if (was_busy) {
        vgpu_irq_cause(s, VGPU_IRQ_V1_DONE);
    }
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
    s->hello_acked = false;
    if (s->status == VGPU_STATUS_BUSY) {
        vgpu_finish_error(s, busy_code);
    }
    /* v2: the channel goes with its connection */
    vgpu_shm_close(s, busy_code);
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
        vgpu_irq_cause(s, VGPU_IRQ_EVENT);
        s->hello_acked = true;
        return vgpu_shm_request(s);

    case VGPU_MSG_RESPONSE:
        if (s->status != VGPU_STATUS_BUSY || seq == 0 ||
            seq != s->inflight_seq) {
            trace_vgpu_stub_stale_reply(seq, s->inflight_seq);
            return true;
        }
        timer_del(s->timer);
        s->inflight_seq = 0;
        s->stat_done++;
        if (status != VGPU_ERR_NONE) {
            s->status = VGPU_STATUS_ERROR;
            s->error_code = vgpu_clamp_error(status);
            vgpu_irq_cause(s, VGPU_IRQ_V1_DONE);
            return true;
        }
        /* len <= VGPU_MSG_MAX_PAYLOAD == VGPU_BUF_SIZE, checked on receipt */
        memcpy(s->resp_buf, payload, len);
        s->response_len = len;
        s->error_code = VGPU_ERR_NONE;
        s->status = VGPU_STATUS_DONE;
        vgpu_irq_cause(s, VGPU_IRQ_V1_DONE);
        return true;

    case VGPU_MSG_ERROR:
        vgpu_disconnect(s, "mediator sent ERROR", vgpu_clamp_error(status));
        return false;

    case VGPU_MSG_SHM_OFFER:
        return vgpu_shm_offer(s, h, payload);

    default:
        /* HELLO, REQUEST and SHM_REQ only travel to the mediator. */
        vgpu_disconnect(s, "unexpected message type", VGPU_ERR_PROTOCOL);
        return false;
    }
}

/*
 * recv() that keeps the fds of SCM_RIGHTS for the SHM_OFFER they came
 * with: VGPU_SHM_FDS at most are kept, any more are closed (and the offer
 * refused).
 */
static ssize_t vgpu_recv(VGPUStubState *s, void *buf, size_t len)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 2 * VGPU_SHM_FDS)];
    } ctl;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr mh;
    struct cmsghdr *c;
    ssize_t n;

    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);
    n = recvmsg(s->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
        return n;
    }
    for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        size_t i, nfds;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < nfds; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (s->in_nfds < VGPU_SHM_FDS) {
                s->in_fds[s->in_nfds++] = fd;
            } else {
                close(fd);
                s->in_fds_bad = true;
            }
        }
    }
    if (mh.msg_flags & MSG_CTRUNC) {
        s->in_fds_bad = true;
    }
    return n;
}

static void vgpu_read_msgs(VGPUStubState *s)
{
    ssize_t n;

    n = vgpu_recv(s, s->inbuf + s->in_len, VGPU_MSG_MAX_SIZE - s->in_len);
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

static void vgpu_can_read(void *opaque)
{
    VGPUStubState *s = opaque;

    vgpu_read_msgs(s);
    vgpu_ring_run(s);
}

/* The socket's handlers: none while the VM is stopped. */
static void vgpu_update_handlers(VGPUStubState *s)
{
    if (s->fd >= 0) {
        if (s->vm_running) {
            qemu_set_fd_handler(s->fd, vgpu_can_read,
                                s->out_len ? vgpu_can_write : NULL, s);
        } else {
            qemu_set_fd_handler(s->fd, NULL, NULL, NULL);
        }
    }
}

/*
 * The call eventfd's handler, none while the VM is stopped: set when the
 * channel is offered and when the VM stops or runs, not on the socket's
 * send path as the socket's are.
 */
static void vgpu_update_call_handler(VGPUStubState *s)
{
    if (s->call_fd >= 0) {
        qemu_set_fd_handler(s->call_fd,
                            s->vm_running ? vgpu_shm_call : NULL, NULL, s);
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
                                VGPU_CAPS_V2);
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
/* v2: guest memory                                                        */
/* ---------------------------------------------------------------------- */

/*
 * Guest memory only through the device's bus-master address space: a bad
 * address fails, never more.  The range is checked first because QEMU 4.2
 * (XCP-ng's qemu-dm) discards the result of pci_dma_rw() and returns 0,
 * even for an address where no RAM is; address_space_access_valid() is
 * false there, and while bus mastering is off, in 4.2 and 7.2 alike.
 */
static bool vgpu_dma_ok(VGPUStubState *s, uint64_t addr, uint64_t len,
                        bool is_write)
{
    return len == 0 || (addr + len > addr &&
                        address_space_access_valid(
                            pci_get_address_space(&s->parent_obj), addr, len,
                            is_write, MEMTXATTRS_UNSPECIFIED));
}

static bool vgpu_dma_rd(VGPUStubState *s, uint64_t addr, void *buf,
                        uint64_t len)
{
    return vgpu_dma_ok(s, addr, len, false) &&
           pci_dma_read(&s->parent_obj, addr, buf, len) == 0;
}

static bool vgpu_dma_wr(VGPUStubState *s, uint64_t addr, const void *buf,
                        uint64_t len)
{
    return vgpu_dma_ok(s, addr, len, true) &&
           pci_dma_write(&s->parent_obj, addr, buf, len) == 0;
}

/* ---------------------------------------------------------------------- */
/* v2: interrupts                                                          */
/* ---------------------------------------------------------------------- */

/*
 * A cause happened: IRQ_STATUS shows it whatever IRQ_CTRL says; the vector
 * fires only when the guest enabled the source and MSI-X.
 */
static void vgpu_irq_cause(VGPUStubState *s, uint32_t cause)
{
    PCIDevice *pdev = &s->parent_obj;
    unsigned vec = cause == VGPU_IRQ_EVENT ? VGPU_MSIX_VEC_EVENT
                                           : VGPU_MSIX_VEC_CQ;

    s->irq_status |= cause;
    if ((s->irq_ctrl & cause) && msix_enabled(pdev)) {
        trace_vgpu_stub_ring_irq(vec, cause);
        s->stat_irqs++;
        msix_notify(pdev, vec);
    }
}

/* Fire the completion interrupt held back, unless cq_event_idx says no. */
static void vgpu_cq_irq_fire(VGPUStubState *s)
{
    uint32_t old = s->last_irq_tail;

    timer_del(s->coalesce_timer);
    if (!s->irq_held) {
        return;
    }
    s->irq_held = 0;
    s->last_irq_tail = s->cq_tail;
    if (s->dbbuf && (s->ring_ctrl & VGPU_RING_CTRL_ENABLE)) {
        uint8_t b[4];

        if (vgpu_dma_rd(s, s->dbbuf + VGPU_DBBUF_OFF_CQ_EVENT_IDX, b, 4)) {
            uint32_t ev = vgpu_get_le32(b);

            if (ev < s->cq_size &&
                !vgpu_ring_need_event(ev, s->cq_tail, old, s->cq_size)) {
                return;
            }
        }
    }
    vgpu_irq_cause(s, VGPU_IRQ_CQ);
}

static void vgpu_coalesce_timeout(void *opaque)
{
    vgpu_cq_irq_fire(opaque);
}

/* One more CQE: interrupt now, or when the count or the time is reached. */
static void vgpu_cq_irq_account(VGPUStubState *s)
{
    uint32_t count = VGPU_IRQ_COALESCE_COUNT(s->irq_coalesce);
    uint32_t usec = VGPU_IRQ_COALESCE_USEC(s->irq_coalesce);

    s->irq_status |= VGPU_IRQ_CQ;
    s->irq_held++;
    if (count <= 1 || usec == 0 || s->irq_held >= count) {
        vgpu_cq_irq_fire(s);
    } else if (!timer_pending(s->coalesce_timer)) {
        timer_mod(s->coalesce_timer, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) +
                  (int64_t)usec * 1000);
    }
}

static bool vgpu_dbbuf_ld(VGPUStubState *s, uint32_t off, uint32_t *v)
{
    uint8_t b[4];

    if (!vgpu_dma_rd(s, s->dbbuf + off, b, sizeof(b))) {
        return false;
    }
    *v = vgpu_get_le32(b);
    return true;
}

static void vgpu_dbbuf_st(VGPUStubState *s, uint32_t off, uint32_t v)
{
    uint8_t b[4];

    vgpu_put_le32(b, v);
    vgpu_dma_wr(s, s->dbbuf + off, b, sizeof(b));
}

/* Does [addr, addr + len) fit in 64 bits? */
static bool vgpu_range_ok(uint64_t addr, uint64_t len)
{
    return len <= UINT64_MAX - addr;
}

/* ---------------------------------------------------------------------- */
/* v2: the shared region                                                   */
/* ---------------------------------------------------------------------- */

/* Indices are single aligned words the other side writes as a whole. */
static uint32_t vgpu_shm_ld(VGPUStubState *s, uint32_t off)
{
    return le32_to_cpu(*(volatile uint32_t *)(s->shm + off));
}

static void vgpu_shm_st(VGPUStubState *s, uint32_t off, uint32_t v)
{
    *(volatile uint32_t *)(s->shm + off) = cpu_to_le32(v);
}

/*
 * The mediator broke a rule of shm.h: the channel (and with it the
 * connection) goes, every request in flight ends with PROTOCOL.
 */
static void vgpu_shm_breach(VGPUStubState *s, const char *why)
{
    trace_vgpu_stub_shm_breach(why);
    error_report("vgpu-stub: the mediator broke the shared region rules "
                 "(%s): connection dropped", why);
    vgpu_disconnect(s, why, VGPU_ERR_PROTOCOL);
}

static void vgpu_retry_later(VGPUStubState *s)
{
    if (!timer_pending(s->retry_timer)) {
        timer_mod(s->retry_timer,
                  qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1);
    }
}

/* Room for one more entry on the sub ring? */
static bool vgpu_sub_space(VGPUStubState *s)
{
    int breach = 0;
    uint32_t used = vgpu_shm_ring_avail(s->sub_prod,
                                        vgpu_shm_ld(s, VGPU_SHM_OFF_SUB_CONS),
                                        s->offer.ring_entries, &breach);

    if (breach) {
        vgpu_shm_breach(s, "sub ring consumer index beyond the producer");
        return false;
    }
    if (used >= s->offer.ring_entries) {
        vgpu_retry_later(s);
        return false;
    }
    return true;
}

static void vgpu_sub_put(VGPUStubState *s, const struct vgpu_shm_ent *e)
{
    uint32_t slot = s->sub_prod & (s->offer.ring_entries - 1);

    vgpu_shm_ent_pack(s->shm + s->offer.sub_off +
                      (uint64_t)slot * VGPU_SHM_ENT_SIZE, e);
    smp_wmb();
    s->sub_prod++;
    vgpu_shm_st(s, VGPU_SHM_OFF_SUB_PROD, s->sub_prod);
    s->sub_dirty = true;
}

/* After a batch: wake the mediator if (and only if) it sleeps. */
static void vgpu_sub_kick(VGPUStubState *s)
{
    uint64_t one = 1;
    ssize_t n;

    if (!s->sub_dirty) {
        return;
    }
    s->sub_dirty = false;
    smp_mb();
    if (vgpu_shm_ld(s, VGPU_SHM_OFF_MED_SLEEPING)) {
        n = write(s->kick_fd, &one, sizeof(one));
        (void)n; /* a full counter has a wake-up pending anyway */
    }
}

/* ---------------------------------------------------------------------- */
/* v2: requests                                                            */
/* ---------------------------------------------------------------------- */

static VGPURingReq *vgpu_req_alloc(VGPUStubState *s)
{
    uint32_t i;

    for (i = 0; i < VGPU_REQ_SLOTS; i++) {
        VGPURingReq *r = &s->reqs[i];

        if (r->state == VGPU_REQ_FREE) {
            memset(r, 0, sizeof(*r));
            if (i >= s->reqs_hi) {
                s->reqs_hi = i + 1;
            }
            s->reqs_used++;
            return r;
        }
    }
    return NULL;
}

static void vgpu_req_free(VGPUStubState *s, VGPURingReq *r)
{
    g_free(r->req_sg);
    g_free(r->resp_sg);
    memset(r, 0, sizeof(*r));
    s->reqs_used--;
    while (s->reqs_hi && s->reqs[s->reqs_hi - 1].state == VGPU_REQ_FREE) {
        s->reqs_hi--;
    }
}

/* The guest side of r is over: free it, or keep it for its CANCEL. */
static void vgpu_req_orphan(VGPUStubState *s, VGPURingReq *r)
{
    if (r->opened) {
        r->state = VGPU_REQ_ORPHAN;
    } else {
        vgpu_req_free(s, r);
    }
}

static VGPURingReq *vgpu_req_find(VGPUStubState *s, uint32_t epoch,
                                  uint32_t seq)
{
    uint32_t i;

    for (i = 0; i < s->reqs_hi; i++) {
        VGPURingReq *r = &s->reqs[i];

        if (r->state != VGPU_REQ_FREE && r->seq == seq && r->epoch == epoch) {
            return r;
        }
    }
    return NULL;
}

static uint32_t vgpu_cq_unread(VGPUStubState *s)
{
    return (s->cq_tail - s->cq_head) & (s->cq_size - 1);
}

/*
 * The CQ can never overflow: an SQ entry is taken only while the CQEs it
 * and every request in flight will write fit beside those unread.
 */
static bool vgpu_ring_room(VGPUStubState *s)
{
    return s->inflight + vgpu_cq_unread(s) < s->cq_size - 1 &&
           s->reqs_used < VGPU_REQ_SLOTS;
}

static void vgpu_ring_bad(VGPUStubState *s, hwaddr addr, uint32_t val,
                          const char *why)
{
    trace_vgpu_stub_ring_bad_write(addr, val);
    qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: %s (0x%x at 0x%" HWADDR_PRIx
                  "): ignored\n", why, val, addr);
    if (s->ring_bad < 0xffff) {
        s->ring_bad++;
    }
}

static bool vgpu_set_sq_tail(VGPUStubState *s, hwaddr addr, uint32_t v)
{
    if (v >= s->sq_size) {
        vgpu_ring_bad(s, addr, v, "SQ tail outside the ring");
        return false;
    }
    s->sq_tail = v;
    return true;
}

static bool vgpu_set_cq_head(VGPUStubState *s, hwaddr addr, uint32_t v)
{
    if (v >= s->cq_size ||
        ((v - s->cq_head) & (s->cq_size - 1)) > vgpu_cq_unread(s)) {
        vgpu_ring_bad(s, addr, v, "CQ head beyond what the device wrote");
        return false;
    }
    s->cq_head = v;
    return true;
}

/* The rings stop; requests in flight are dropped (their epoch is over). */
static void vgpu_ring_stop(VGPUStubState *s, uint32_t status)
{
    uint32_t i, dropped = 0;

    if (s->irq_held) {
        vgpu_cq_irq_fire(s); /* stopping flushes what is held */
    }
    for (i = 0; i < s->reqs_hi; i++) {
        if (s->reqs[i].state == VGPU_REQ_LIVE) {
            dropped++;
            vgpu_req_orphan(s, &s->reqs[i]);
        }
    }
    if (s->ring_ctrl & VGPU_RING_CTRL_ENABLE) {
        trace_vgpu_stub_ring_stop(s->epoch, dropped);
    }
    s->inflight = 0;
    s->ring_ctrl = 0;
    s->ring_status = status;
    s->sq_head = s->sq_tail = 0;
    s->cq_head = s->cq_tail = 0;
    s->cq_phase = 1;
    s->last_irq_tail = 0;
    s->irq_held = 0;
    timer_del(s->coalesce_timer);
    s->run_again = true;
}

/* The CQ cannot be written: completions can no longer reach the guest. */
static void vgpu_ring_fault(VGPUStubState *s, const char *why)
{
    trace_vgpu_stub_ring_fault(why);
    qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: %s: rings stopped\n", why);
    vgpu_ring_stop(s, VGPU_RING_STATUS_ERROR | (VGPU_ERR_DMA << 8));
    vgpu_irq_cause(s, VGPU_IRQ_EVENT);
}

/*
 * Write r's CQE (phase word last) and end its guest side.  Its mediator
 * side is the caller's: still open, r stays as an orphan for a CANCEL.
 */
static void vgpu_req_complete(VGPUStubState *s, VGPURingReq *r,
                              uint32_t status, uint64_t resp_len)
{
    uint8_t cqe[VGPU_CQE_SIZE];
    uint64_t addr = s->cq_base + (uint64_t)s->cq_tail * VGPU_CQE_SIZE;

    if (status != VGPU_ERR_NONE) {
        resp_len = 0;
    }
    s->stat_done++;
    trace_vgpu_stub_ring_complete(r->tag, r->seq, status, resp_len,
                                  s->cq_tail);
    vgpu_put_le32(cqe + VGPU_CQE_OFF_TAG, r->tag);
    vgpu_put_le32(cqe + VGPU_CQE_OFF_STATUS, status);
    vgpu_put_le32(cqe + VGPU_CQE_OFF_RESP_LEN, resp_len);
    vgpu_put_le16(cqe + VGPU_CQE_OFF_SQ_HEAD, s->sq_head);
    vgpu_put_le16(cqe + VGPU_CQE_OFF_FLAGS, s->cq_phase ? VGPU_CQE_PHASE : 0);
    if (!vgpu_dma_wr(s, addr, cqe, VGPU_CQE_OFF_SQ_HEAD)) {
        vgpu_ring_fault(s, "CQ entry cannot be written");
        return;
    }
    smp_wmb();
    if (!vgpu_dma_wr(s, addr + VGPU_CQE_OFF_SQ_HEAD, cqe + VGPU_CQE_OFF_SQ_HEAD,
                     VGPU_CQE_SIZE - VGPU_CQE_OFF_SQ_HEAD)) {
        vgpu_ring_fault(s, "CQ entry cannot be written");
        return;
    }
    s->cq_tail = (s->cq_tail + 1) & (s->cq_size - 1);
    if (s->cq_tail == 0) {
        s->cq_phase ^= 1;
    }
    s->inflight--;
    vgpu_req_orphan(s, r);
    vgpu_cq_irq_account(s);
    s->run_again = true; /* shadow SQ tail, room for more */
}

/* The mediator ended r (LAST, RESP_ERROR): it is no longer open there. */
static void vgpu_req_closed(VGPUStubState *s, VGPURingReq *r)
{
    if (r->opened) {
        r->opened = false;
        s->med_open--;
    }
}

/* Read and check an SG list; NULL with *err set when it is bad. */
static VGPUSge *vgpu_sg_read(VGPUStubState *s, uint64_t addr, uint32_t n,
                             uint64_t want, uint32_t *err)
{
    uint64_t bytes = (uint64_t)n * VGPU_SGE_SIZE;
    uint64_t sum = 0;
    uint8_t *raw;
    VGPUSge *sg;
    uint32_t i;

    if (addr % VGPU_SGE_ALIGN || !vgpu_range_ok(addr, bytes)) {
        *err = VGPU_ERR_BAD_SG;
        return NULL;
    }
    raw = g_malloc(bytes);
    if (!vgpu_dma_rd(s, addr, raw, bytes)) {
        g_free(raw);
        *err = VGPU_ERR_DMA;
        return NULL;
    }
    sg = g_malloc(n * sizeof(*sg));
    for (i = 0; i < n; i++) {
        const uint8_t *e = raw + (uint64_t)i * VGPU_SGE_SIZE;

        sg[i].addr = vgpu_get_le64(e);
        sg[i].len = vgpu_get_le32(e + 8);
        if (!sg[i].len || vgpu_get_le32(e + 12) ||
            !vgpu_range_ok(sg[i].addr, sg[i].len)) {
            break;
        }
        sum += sg[i].len;
    }
    g_free(raw);
    if (i < n || sum != want) {
        g_free(sg);
        *err = VGPU_ERR_BAD_SG;
        return NULL;
    }
    return sg;
}

/* Check an SQE into r; VGPU_ERR_NONE when it may go to the mediator. */
static uint32_t vgpu_req_parse(VGPUStubState *s, VGPURingReq *r,
                               const uint8_t *e)
{
    uint32_t req_n = vgpu_get_le32(e + VGPU_SQE_OFF_REQ_SG_COUNT);
    uint32_t resp_n = vgpu_get_le32(e + VGPU_SQE_OFF_RESP_SG_COUNT);
    uint32_t err = VGPU_ERR_NONE;

    r->req_len = vgpu_get_le64(e + VGPU_SQE_OFF_REQ_LEN);
    r->resp_cap = vgpu_get_le64(e + VGPU_SQE_OFF_RESP_CAP);
    r->req_sg_addr = vgpu_get_le64(e + VGPU_SQE_OFF_REQ_SG_ADDR);
    r->resp_sg_addr = vgpu_get_le64(e + VGPU_SQE_OFF_RESP_SG_ADDR);
    if (vgpu_get_le32(e + VGPU_SQE_OFF_FLAGS) || vgpu_get_le64(e + 48) ||
        vgpu_get_le64(e + 56)) {
        qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: SQE reserved bits set\n");
        return VGPU_ERR_BAD_REQUEST;
    }
    if (r->req_len < sizeof(struct vgpu_req_hdr)) {
        qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: SQE request of %" PRIu64
                      " bytes is shorter than a header\n", r->req_len);
        return VGPU_ERR_BAD_REQUEST;
    }
    if (r->req_len > s->max_xfer || r->resp_cap > s->max_xfer) {
        qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: SQE request %" PRIu64
                      " or response room %" PRIu64 " over MAX_XFER\n",
                      r->req_len, r->resp_cap);
        return VGPU_ERR_REQUEST_TOO_LARGE;
    }
    if (!req_n || req_n > VGPU_SG_MAX_ENTRIES ||
        resp_n > VGPU_SG_MAX_ENTRIES || (!resp_n && r->resp_cap)) {
        qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: SQE SG counts %u/%u\n",
                      req_n, resp_n);
        return VGPU_ERR_BAD_SG;
    }
    r->req_sg = vgpu_sg_read(s, r->req_sg_addr, req_n, r->req_len, &err);
    if (!r->req_sg) {
        qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: bad request SG list\n");
        return err;
    }
    r->req_n = req_n;
    if (resp_n) {
        r->resp_sg = vgpu_sg_read(s, r->resp_sg_addr, resp_n, r->resp_cap,
                                  &err);
        if (!r->resp_sg) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "vgpu-stub: bad response SG list\n");
            return err;
        }
        r->resp_n = resp_n;
    }
    return VGPU_ERR_NONE;
}

static uint32_t vgpu_next_ring_seq(VGPUStubState *s)
{
    do {
        if (++s->next_ring_seq == 0) {
            s->next_ring_seq = 1;
        }
    } while (vgpu_req_find(s, s->epoch, s->next_ring_seq));
    return s->next_ring_seq;
}

/*
 * Start the request of SQE e, already counted in s->inflight: it goes to
 * the mediator, or completes at once with what is wrong with it.
 */
static void vgpu_req_start(VGPUStubState *s, const uint8_t *e, uint32_t head)
{
    VGPURingReq *r;
    uint32_t err;

    r = vgpu_req_alloc(s);
    r->state = VGPU_REQ_LIVE;
    r->tag = vgpu_get_le32(e + VGPU_SQE_OFF_TAG);
    r->epoch = s->epoch;
    r->seq = vgpu_next_ring_seq(s);
    r->order = s->next_order++;
    r->deadline = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) +
                  (int64_t)s->timeout_ms * SCALE_MS;
    err = vgpu_req_parse(s, r, e);
    trace_vgpu_stub_ring_take(head, r->tag, r->seq, r->req_len, r->resp_cap);
    if (err == VGPU_ERR_NONE) {
        if (s->fd < 0 && !vgpu_connect(s)) {
            err = VGPU_ERR_NO_MEDIATOR;
        } else if (s->shm_state == VGPU_SHM_ST_FAILED) {
            err = s->shm_status;
        }
    }
    if (err != VGPU_ERR_NONE) {
        vgpu_req_complete(s, r, err, 0);
    }
}

/* Take the SQ entry at the head (the caller checked there is room). */
static void vgpu_ring_take(VGPUStubState *s)
{
    uint8_t e[VGPU_SQE_SIZE];
    uint32_t head = s->sq_head;

    if (!vgpu_dma_rd(s, s->sq_base + (uint64_t)head * VGPU_SQE_SIZE, e,
                     sizeof(e))) {
        vgpu_ring_fault(s, "SQ entry cannot be read");
        return;
    }
    s->sq_head = (head + 1) & (s->sq_size - 1);
    s->inflight++;
    vgpu_req_start(s, e, head);
}

static bool vgpu_ring_running(VGPUStubState *s)
{
    return s->ring_ctrl & VGPU_RING_CTRL_ENABLE;
}

/* Read the shadow doorbells of the doorbell buffer, if there is one. */
static void vgpu_ring_shadow(VGPUStubState *s)
{
    uint32_t v;

    if (!s->dbbuf) {
        return;
    }
    if (vgpu_dbbuf_ld(s, VGPU_DBBUF_OFF_SQ_TAIL, &v) && v != s->sq_tail) {
        vgpu_set_sq_tail(s, s->dbbuf + VGPU_DBBUF_OFF_SQ_TAIL, v);
    }
    if (vgpu_dbbuf_ld(s, VGPU_DBBUF_OFF_CQ_HEAD, &v) && v != s->cq_head) {
        vgpu_set_cq_head(s, s->dbbuf + VGPU_DBBUF_OFF_CQ_HEAD, v);
    }
}

static void vgpu_sq_event(VGPUStubState *s, uint32_t idx)
{
    if (idx != s->sq_event) {
        s->sq_event = idx;
        vgpu_dbbuf_st(s, VGPU_DBBUF_OFF_SQ_EVENT_IDX, idx);
    }
}

/* Take what the SQ holds and the CQ has room for. */
static void vgpu_ring_consume(VGPUStubState *s)
{
    uint32_t v;

    for (;;) {
        vgpu_ring_shadow(s);
        while (vgpu_ring_running(s) && s->sq_head != s->sq_tail &&
               vgpu_ring_room(s)) {
            vgpu_ring_take(s);
        }
        if (!vgpu_ring_running(s) || !s->dbbuf) {
            return;
        }
        if (s->inflight) {
            /*
             * Busy: the shadow tail is read at every completion, so no
             * doorbell is wanted; an event index just behind the tail
             * seen is one the guest's tail cannot pass (the SQ holds
             * size - 1 at most).
             */
            vgpu_sq_event(s, (s->sq_tail - 1) & (s->sq_size - 1));
            return;
        }
        /*
         * Going idle: ask for a doorbell once the tail passes what was
         * seen, then look once more, so that a submission made meanwhile
         * is not left waiting for a doorbell the guest will not ring.
         */
        vgpu_sq_event(s, s->sq_tail);
        smp_mb();
        if (!vgpu_dbbuf_ld(s, VGPU_DBBUF_OFF_SQ_TAIL, &v) || v == s->sq_tail ||
            v >= s->sq_size) {
            return;
        }
    }
}

/* The oldest request with bytes still to stream. */
static VGPURingReq *vgpu_stream_next(VGPUStubState *s)
{
    VGPURingReq *best = NULL;
    uint32_t i;

    for (i = 0; i < s->reqs_hi; i++) {
        VGPURingReq *r = &s->reqs[i];

        if (r->state == VGPU_REQ_LIVE && r->req_sent < r->req_len &&
            (!best || r->order < best->order)) {
            best = r;
        }
    }
    return best;
}

static int vgpu_req_chunk_get(VGPUStubState *s)
{
    uint32_t i;

    for (i = 0; i < s->offer.req_chunks; i++) {
        uint32_t c = (s->chunk_hint + i) % s->offer.req_chunks;

        if (!s->req_chunk_lent[c]) {
            s->chunk_hint = c + 1;
            return c;
        }
    }
    return -1;
}

/* Copy the next len request bytes of r from guest memory to dst. */
static bool vgpu_stream_piece(VGPUStubState *s, VGPURingReq *r, uint8_t *dst,
                              uint32_t len)
{
    while (len) {
        VGPUSge *g = &r->req_sg[r->req_i];
        uint32_t n = MIN(len, g->len - r->req_i_off);

        if (!vgpu_dma_rd(s, g->addr + r->req_i_off, dst, n)) {
            return false;
        }
        dst += n;
        len -= n;
        r->req_i_off += n;
        if (r->req_i_off == g->len) {
            r->req_i++;
            r->req_i_off = 0;
        }
    }
    return true;
}

/*
 * Stream request bytes into free request chunks, oldest request first, as
 * far as chunks, sub ring entries and the mediator's max_inflight allow:
 * a request of any size needs no more staging than the pool.
 */
static void vgpu_stream(VGPUStubState *s)
{
    while (s->shm_state == VGPU_SHM_ST_READY) {
        VGPURingReq *r = vgpu_stream_next(s);
        struct vgpu_shm_ent e;
        uint32_t len;
        int chunk;

        if (!r) {
            return;
        }
        if (!r->opened) {
            if (r->req_len > s->offer.max_xfer ||
                r->resp_cap > s->offer.max_xfer) {
                vgpu_req_complete(s, r, VGPU_ERR_REQUEST_TOO_LARGE, 0);
                continue;
            }
            if (s->med_open >= s->offer.max_inflight) {
                return;
            }
        }
        chunk = vgpu_req_chunk_get(s);
        if (chunk < 0 || !vgpu_sub_space(s)) {
            return;
        }
        len = MIN(s->offer.chunk_size, r->req_len - r->req_sent);
        if (!vgpu_stream_piece(s, r, s->shm + s->offer.req_pool_off +
                               (uint64_t)chunk * s->offer.chunk_size, len)) {
            qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: request bytes outside "
                          "guest memory (tag 0x%x)\n", r->tag);
            vgpu_req_complete(s, r, VGPU_ERR_DMA, 0);
            continue;
        }
        memset(&e, 0, sizeof(e));
        e.kind = VGPU_SHM_REQ_DATA;
        e.epoch = r->epoch;
        e.seq = r->seq;
        e.chunk = chunk;
        e.len = len;
        e.offset = r->req_sent;
        if (!r->req_sent) {
            e.flags |= VGPU_SHM_F_FIRST;
            e.total = r->req_len;
            e.resp_cap = r->resp_cap;
            r->opened = true;
            s->med_open++;
        }
        r->req_sent += len;
        if (r->req_sent == r->req_len) {
            e.flags |= VGPU_SHM_F_LAST;
        }
        trace_vgpu_stub_shm_req_data(r->seq, e.offset, len, chunk);
        s->req_chunk_lent[chunk] = 1;
        vgpu_sub_put(s, &e);
    }
}

/* Tell the mediator about requests given up on (orphans). */
static void vgpu_send_cancels(VGPUStubState *s)
{
    uint32_t i;

    for (i = 0; i < s->reqs_hi && s->shm_state == VGPU_SHM_ST_READY; i++) {
        VGPURingReq *r = &s->reqs[i];
        struct vgpu_shm_ent e;

        if (r->state != VGPU_REQ_ORPHAN) {
            continue;
        }
        if (!vgpu_sub_space(s)) {
            return;
        }
        memset(&e, 0, sizeof(e));
        e.kind = VGPU_SHM_CANCEL;
        e.epoch = r->epoch;
        e.seq = r->seq;
        trace_vgpu_stub_shm_cancel(r->epoch, r->seq);
        vgpu_sub_put(s, &e);
        vgpu_req_closed(s, r);
        vgpu_req_free(s, r);
    }
}

static void vgpu_resp_chunk_done(VGPUStubState *s, uint32_t chunk)
{
    struct vgpu_shm_ent e;

    memset(&e, 0, sizeof(e));
    e.kind = VGPU_SHM_RESP_CHUNK_DONE;
    e.chunk = chunk;
    vgpu_sub_put(s, &e); /* the caller made sure there is room */
}

/* Copy len response bytes of r (in order) to its response SG list. */
static bool vgpu_resp_piece(VGPUStubState *s, VGPURingReq *r,
                            const uint8_t *src, uint32_t len)
{
    while (len) {
        VGPUSge *g = &r->resp_sg[r->resp_i];
        uint32_t n = MIN(len, g->len - r->resp_i_off);

        if (!vgpu_dma_wr(s, g->addr + r->resp_i_off, src, n)) {
            return false;
        }
        src += n;
        len -= n;
        r->resp_i_off += n;
        if (r->resp_i_off == g->len) {
            r->resp_i++;
            r->resp_i_off = 0;
        }
    }
    return true;
}

static void vgpu_comp_resp_data(VGPUStubState *s, const struct vgpu_shm_ent *e)
{
    bool first = e->flags & VGPU_SHM_F_FIRST;
    bool last = e->flags & VGPU_SHM_F_LAST;
    VGPURingReq *r;

    if (e->len > s->offer.chunk_size) {
        vgpu_shm_breach(s, "RESP_DATA longer than a chunk");
        return;
    }
    if (e->len && e->chunk >= s->offer.resp_chunks) {
        vgpu_shm_breach(s, "RESP_DATA chunk out of range");
        return;
    }
    r = vgpu_req_find(s, e->epoch, e->seq);
    if (!r || r->state != VGPU_REQ_LIVE) {
        /* another incarnation's, or given up on: dropped */
        trace_vgpu_stub_shm_stale(e->kind, e->epoch, e->seq);
        if (r && last) {
            vgpu_req_closed(s, r);
            vgpu_req_free(s, r);
        }
        if (e->len) {
            vgpu_resp_chunk_done(s, e->chunk);
        }
        return;
    }
    if (!r->opened) {
        vgpu_shm_breach(s, "RESP_DATA for a request not sent");
        return;
    }
    if (first) {
        if (r->resp_started || e->offset) {
            vgpu_shm_breach(s, "RESP_DATA FIRST twice or not at offset 0");
            return;
        }
        if (e->total > r->resp_cap) {
            vgpu_req_closed(s, r);
            vgpu_req_complete(s, r, VGPU_ERR_RESPONSE_TOO_LARGE, 0);
            vgpu_shm_breach(s, "response larger than the request's resp_cap");
            return;
        }
        r->resp_started = true;
        r->resp_total = e->total;
    } else if (!r->resp_started) {
        vgpu_shm_breach(s, "RESP_DATA without FIRST");
        return;
    }
    if (e->offset != r->resp_got || e->len > r->resp_total - r->resp_got ||
        (!e->len && r->resp_total) ||
        last != (r->resp_got + e->len == r->resp_total)) {
        vgpu_shm_breach(s, "RESP_DATA piece out of order or past its total");
        return;
    }
    trace_vgpu_stub_shm_resp_data(e->seq, e->offset, e->len, e->chunk);
    if (e->len) {
        if (r->resp_status == VGPU_ERR_NONE &&
            !vgpu_resp_piece(s, r, s->shm + s->offer.resp_pool_off +
                             (uint64_t)e->chunk * s->offer.chunk_size,
                             e->len)) {
            qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: response SG outside "
                          "guest memory (tag 0x%x)\n", r->tag);
            r->resp_status = VGPU_ERR_DMA;
        }
        vgpu_resp_chunk_done(s, e->chunk);
    }
    r->resp_got += e->len;
    if (last) {
        vgpu_req_closed(s, r);
        vgpu_req_complete(s, r, r->resp_status, r->resp_total);
    }
}

/* One entry of the comp ring, a private copy. */
static void vgpu_comp_entry(VGPUStubState *s, const struct vgpu_shm_ent *e)
{
    VGPURingReq *r;

    switch (e->kind) {
    case VGPU_SHM_REQ_CHUNK_DONE:
        if (e->chunk >= s->offer.req_chunks) {
            vgpu_shm_breach(s, "REQ_CHUNK_DONE chunk out of range");
            return;
        }
        if (!s->req_chunk_lent[e->chunk]) {
            vgpu_shm_breach(s, "REQ_CHUNK_DONE for a chunk not lent");
            return;
        }
        s->req_chunk_lent[e->chunk] = 0;
        return;
    case VGPU_SHM_RESP_DATA:
        vgpu_comp_resp_data(s, e);
        return;
    case VGPU_SHM_RESP_ERROR:
        r = vgpu_req_find(s, e->epoch, e->seq);
        if (!r) {
            trace_vgpu_stub_shm_stale(e->kind, e->epoch, e->seq);
            return;
        }
        if (!r->opened) {
            vgpu_shm_breach(s, "RESP_ERROR for a request not sent");
            return;
        }
        vgpu_req_closed(s, r);
        if (r->state == VGPU_REQ_ORPHAN) {
            vgpu_req_free(s, r);
            return;
        }
        vgpu_req_complete(s, r, vgpu_clamp_error(e->status), 0);
        return;
    default:
        vgpu_shm_breach(s, "unknown entry kind on the comp ring");
        return;
    }
}

/* Take what the mediator published on the comp ring. */
static void vgpu_comp_poll(VGPUStubState *s)
{
    while (s->shm_state == VGPU_SHM_ST_READY) {
        int breach = 0;
        uint32_t n = vgpu_shm_ring_avail(vgpu_shm_ld(s, VGPU_SHM_OFF_COMP_PROD),
                                         s->comp_cons, s->offer.ring_entries,
                                         &breach);

        if (breach) {
            vgpu_shm_breach(s, "comp ring producer index past the ring");
            return;
        }
        if (!n) {
            return;
        }
        smp_rmb();
        for (; n && s->shm_state == VGPU_SHM_ST_READY; n--) {
            uint32_t slot = s->comp_cons & (s->offer.ring_entries - 1);
            uint8_t raw[VGPU_SHM_ENT_SIZE];
            struct vgpu_shm_ent e;

            /* room for the RESP_CHUNK_DONE this entry may need */
            if (!vgpu_sub_space(s)) {
                return;
            }
            memcpy(raw, s->shm + s->offer.comp_off +
                   (uint64_t)slot * VGPU_SHM_ENT_SIZE, sizeof(raw));
            vgpu_shm_ent_unpack(raw, &e);
            s->comp_cons++;
            vgpu_comp_entry(s, &e);
        }
        if (s->shm_state == VGPU_SHM_ST_READY) {
            smp_mb(); /* the copies are done before the slots are given back */
            vgpu_shm_st(s, VGPU_SHM_OFF_COMP_CONS, s->comp_cons);
        }
    }
}

/* Arm the ring timer for the earliest deadline (and shadow polling). */
static void vgpu_ring_timer_update(VGPUStubState *s)
{
    int64_t next = INT64_MAX;
    uint32_t i;

    for (i = 0; i < s->reqs_hi; i++) {
        if (s->reqs[i].state == VGPU_REQ_LIVE) {
            next = MIN(next, s->reqs[i].deadline);
        }
    }
    /*
     * Idle with entries waiting for CQ room that a guest using the doorbell
     * buffer frees without a doorbell: look at its shadow head now and then.
     */
    if (vgpu_ring_running(s) && s->dbbuf && !s->inflight &&
        s->sq_head != s->sq_tail && !vgpu_ring_room(s)) {
        next = MIN(next, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + SCALE_MS);
    }
    if (next == INT64_MAX) {
        timer_del(s->ring_timer);
    } else {
        timer_mod(s->ring_timer, next);
    }
}

/*
 * Everything the rings and the channel can do now.  Every entry point
 * (MMIO, the socket, the call eventfd, timers) ends here; it never waits
 * and never spins: what cannot go on now goes on at the next event.
 */
static void vgpu_ring_run(VGPUStubState *s)
{
    if (!s->vm_running) {
        return; /* the run's bottom half calls this again */
    }
    if (s->in_run) {
        s->run_again = true;
        return;
    }
    s->in_run = true;
    do {
        s->run_again = false;
        vgpu_comp_poll(s);
        if (vgpu_ring_running(s)) {
            vgpu_ring_consume(s);
        }
        vgpu_send_cancels(s);
        vgpu_stream(s);
        if (s->shm_state == VGPU_SHM_ST_READY) {
            vgpu_sub_kick(s);
        }
    } while (s->run_again);
    s->in_run = false;
    vgpu_ring_timer_update(s);
}

static void vgpu_ring_tick(void *opaque)
{
    VGPUStubState *s = opaque;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    uint32_t i;

    for (i = 0; i < s->reqs_hi; i++) {
        VGPURingReq *r = &s->reqs[i];

        if (r->state == VGPU_REQ_LIVE && r->deadline <= now) {
            trace_vgpu_stub_ring_timeout(r->tag, r->seq);
            vgpu_req_complete(s, r, VGPU_ERR_TIMEOUT, 0);
        }
    }
    vgpu_ring_run(s);
}

static void vgpu_retry(void *opaque)
{
    vgpu_ring_run(opaque);
}

/* The call eventfd: the mediator published on the comp ring. */
static void vgpu_shm_call(void *opaque)
{
    VGPUStubState *s = opaque;
    uint64_t v;
    ssize_t n = read(s->call_fd, &v, sizeof(v));

    (void)n; /* non-blocking; nothing or a count, either way look */
    vgpu_ring_run(s);
}

/* ---------------------------------------------------------------------- */
/* v2: the channel's set-up and end                                        */
/* ---------------------------------------------------------------------- */

static void vgpu_close_in_fds(VGPUStubState *s)
{
    while (s->in_nfds) {
        close(s->in_fds[--s->in_nfds]);
    }
    s->in_fds_bad = false;
}

/*
 * The channel ends with its connection: requests in flight complete with
 * code, orphans are forgotten, and nothing of the region is read again.
 */
static void vgpu_shm_close(VGPUStubState *s, uint32_t code)
{
    bool had = s->shm_state != VGPU_SHM_ST_NONE;
    uint32_t i;

    for (i = 0; i < s->reqs_hi; i++) {
        VGPURingReq *r = &s->reqs[i];

        if (r->state == VGPU_REQ_LIVE) {
            r->opened = false;
            vgpu_req_complete(s, r, code, 0);
        }
        if (r->state == VGPU_REQ_ORPHAN) {
            vgpu_req_free(s, r);
        }
    }
    s->med_open = 0;
    if (s->shm) {
        munmap(s->shm, s->offer.region_size);
        s->shm = NULL;
    }
    if (s->call_fd >= 0) {
        qemu_set_fd_handler(s->call_fd, NULL, NULL, NULL);
        close(s->call_fd);
        s->call_fd = -1;
    }
    if (s->kick_fd >= 0) {
        close(s->kick_fd);
        s->kick_fd = -1;
    }
    g_free(s->req_chunk_lent);
    s->req_chunk_lent = NULL;
    vgpu_close_in_fds(s);
    timer_del(s->retry_timer);
    s->shm_state = VGPU_SHM_ST_NONE;
    s->shm_requested = false;
    s->sub_dirty = false;
    s->max_xfer = VGPU_XFER_DEFAULT;
    if (had) {
        vgpu_irq_cause(s, VGPU_IRQ_EVENT);
    }
}

/*
 * Ask for the channel once per connection, when it is wanted: after the
 * HELLO_ACK, while the rings are enabled (a v1 guest never causes one).
 * False if the connection broke.
 */
static bool vgpu_shm_request(VGPUStubState *s)
{
    uint8_t p[VGPU_SHM_REQ_SIZE];

    if (s->fd < 0 || !s->hello_acked || s->shm_requested ||
        !vgpu_ring_running(s)) {
        return true;
    }
    vgpu_put_le32(p, VGPU_SHM_VERSION);
    vgpu_put_le32(p + 4, VGPU_CAPS_V2 & ~VGPU_CAPS_V1);
    if (!vgpu_queue_msg(s, VGPU_MSG_SHM_REQ, 0, p, sizeof(p))) {
        vgpu_disconnect(s, "mediator does not read", VGPU_ERR_MEDIATOR_LOST);
        return false;
    }
    s->shm_requested = true;
    s->shm_state = VGPU_SHM_ST_WAIT;
    if (!vgpu_flush(s)) {
        vgpu_disconnect(s, "write failed", VGPU_ERR_MEDIATOR_LOST);
        return false;
    }
    return true;
}

/* SHM_OFFER.  False if the connection was closed. */
static bool vgpu_shm_offer(VGPUStubState *s, const struct vgpu_msg_hdr *h,
                           const uint8_t *payload)
{
    int fds[VGPU_SHM_FDS];
    bool fds_ok = s->in_nfds == VGPU_SHM_FDS && !s->in_fds_bad;
    struct vgpu_shm_offer o;
    struct stat st;
    const char *why;
    void *map;
    unsigned i;

    if (s->shm_state != VGPU_SHM_ST_WAIT) {
        vgpu_disconnect(s, "SHM_OFFER not asked for", VGPU_ERR_PROTOCOL);
        return false;
    }
    if (h->status != VGPU_ERR_NONE) {
        vgpu_close_in_fds(s);
        if (h->length) {
            vgpu_disconnect(s, "refusing SHM_OFFER with a payload",
                            VGPU_ERR_PROTOCOL);
            return false;
        }
        trace_vgpu_stub_shm_refused(h->status);
        s->shm_status = vgpu_clamp_error(h->status);
        s->shm_state = VGPU_SHM_ST_FAILED;
        for (i = 0; i < s->reqs_hi; i++) {
            if (s->reqs[i].state == VGPU_REQ_LIVE) {
                vgpu_req_complete(s, &s->reqs[i], s->shm_status, 0);
            }
        }
        return true;
    }
    if (h->length != VGPU_SHM_OFFER_SIZE || !fds_ok) {
        vgpu_disconnect(s, "SHM_OFFER without its payload or its three fds",
                        VGPU_ERR_PROTOCOL);
        return false;
    }
    for (i = 0; i < VGPU_SHM_FDS; i++) {
        fds[i] = s->in_fds[i];
    }
    s->in_nfds = 0;
    vgpu_shm_offer_unpack(payload, &o);
    if (fstat(fds[VGPU_SHM_FD_REGION], &st) < 0) {
        why = "cannot fstat the region";
    } else {
        why = vgpu_shm_offer_check(&o, st.st_size);
    }
    map = MAP_FAILED;
    if (!why) {
        map = mmap(NULL, o.region_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                   fds[VGPU_SHM_FD_REGION], 0);
        if (map == MAP_FAILED) {
            why = "cannot map the region";
        }
    }
    close(fds[VGPU_SHM_FD_REGION]);
    if (why) {
        close(fds[VGPU_SHM_FD_KICK]);
        close(fds[VGPU_SHM_FD_CALL]);
        error_report("vgpu-stub: the mediator's shared region is refused: %s",
                     why);
        vgpu_disconnect(s, why, VGPU_ERR_PROTOCOL);
        return false;
    }
    trace_vgpu_stub_shm_offer(o.region_size, o.ring_entries, o.chunk_size,
                              o.req_chunks, o.resp_chunks);
    s->offer = o;
    s->shm = map;
    s->kick_fd = fds[VGPU_SHM_FD_KICK];
    s->call_fd = fds[VGPU_SHM_FD_CALL];
    fcntl(s->call_fd, F_SETFL, fcntl(s->call_fd, F_GETFL) | O_NONBLOCK);
    s->req_chunk_lent = g_malloc0(o.req_chunks);
    s->chunk_hint = 0;
    s->sub_prod = 0;
    s->comp_cons = 0;
    s->med_open = 0;
    s->max_xfer = MIN(o.max_xfer, VGPU_XFER_LIMIT);
    /*
     * The device never spins (it would hold the BQL): it is asleep on the
     * call eventfd all the time, as shm.h allows, so the mediator kicks it
     * after every publication.
     */
    vgpu_shm_st(s, VGPU_SHM_OFF_DEV_SLEEPING, 1);
    smp_mb();
    s->shm_state = VGPU_SHM_ST_READY;
    vgpu_update_call_handler(s);
    vgpu_irq_cause(s, VGPU_IRQ_EVENT);
    return true;
}

/* ---------------------------------------------------------------------- */
/* v2: ring registers                                                      */
/* ---------------------------------------------------------------------- */

static bool vgpu_ring_size_ok(uint32_t n)
{
    return n >= VGPU_RING_MIN_ENTRIES && n <= VGPU_RING_MAX_ENTRIES &&
           !(n & (n - 1));
}

/* NULL when the ring registers describe rings the device can run. */
static const char *vgpu_ring_check(VGPUStubState *s)
{
    uint64_t sq_bytes = (uint64_t)s->sq_size * VGPU_SQE_SIZE;
    uint64_t cq_bytes = (uint64_t)s->cq_size * VGPU_CQE_SIZE;
    const char *why = NULL;
    uint8_t *scratch;

    if (!vgpu_ring_size_ok(s->sq_size) || !vgpu_ring_size_ok(s->cq_size)) {
        return "ring size is not a power of two in [2, 4096]";
    }
    if (s->sq_base % VGPU_RING_ALIGN || s->cq_base % VGPU_RING_ALIGN) {
        return "ring base is not aligned to 64 bytes";
    }
    if (s->dbbuf % VGPU_DBBUF_ALIGN) {
        return "doorbell buffer is not aligned to 64 bytes";
    }
    if (!vgpu_range_ok(s->sq_base, sq_bytes) ||
        !vgpu_range_ok(s->cq_base, cq_bytes) ||
        !vgpu_range_ok(s->dbbuf, VGPU_DBBUF_SIZE)) {
        return "ring wraps around the address space";
    }
    scratch = g_malloc(MAX(sq_bytes, cq_bytes));
    if (!vgpu_dma_rd(s, s->sq_base, scratch, sq_bytes) ||
        !vgpu_dma_rd(s, s->cq_base, scratch, cq_bytes) ||
        (s->dbbuf && !vgpu_dma_rd(s, s->dbbuf, scratch, VGPU_DBBUF_SIZE))) {
        why = "ring or doorbell buffer outside guest memory";
    }
    g_free(scratch);
    return why;
}

static void vgpu_ring_enable(VGPUStubState *s)
{
    const char *why = vgpu_ring_check(s);

    if (why) {
        trace_vgpu_stub_ring_refused(why);
        qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: rings not enabled: %s\n",
                      why);
        s->ring_status = VGPU_RING_STATUS_ERROR | (VGPU_ERR_BAD_RING << 8);
        return;
    }
    vgpu_ring_stop(s, 0);
    s->epoch++;
    s->ring_ctrl = VGPU_RING_CTRL_ENABLE;
    s->ring_status = VGPU_RING_STATUS_READY;
    if (s->dbbuf) {
        s->sq_event = 0;
        vgpu_dbbuf_st(s, VGPU_DBBUF_OFF_SQ_EVENT_IDX, 0);
    }
    trace_vgpu_stub_ring_enable(s->sq_base, s->sq_size, s->cq_base,
                                s->cq_size, s->epoch);
    if (s->fd < 0) {
        vgpu_connect(s); /* failure: requests end in NO_MEDIATOR */
    } else {
        vgpu_shm_request(s);
    }
}

static uint32_t vgpu_ring_reg_read(VGPUStubState *s, hwaddr addr)
{
    switch (addr) {
    case VGPU_REG_RING_CTRL:
        return s->ring_ctrl;
    case VGPU_REG_RING_STATUS:
        return s->ring_status | (s->ring_bad << 16);
    case VGPU_REG_SQ_BASE_LO:
        return s->sq_base;
    case VGPU_REG_SQ_BASE_HI:
        return s->sq_base >> 32;
    case VGPU_REG_CQ_BASE_LO:
        return s->cq_base;
    case VGPU_REG_CQ_BASE_HI:
        return s->cq_base >> 32;
    case VGPU_REG_SQ_SIZE:
        return s->sq_size;
    case VGPU_REG_CQ_SIZE:
        return s->cq_size;
    case VGPU_REG_DBBUF_LO:
        return s->dbbuf;
    case VGPU_REG_DBBUF_HI:
        return s->dbbuf >> 32;
    case VGPU_REG_IRQ_COALESCE:
        return s->irq_coalesce;
    case VGPU_REG_MAX_XFER_LO:
        return s->max_xfer;
    case VGPU_REG_MAX_XFER_HI:
        return s->max_xfer >> 32;
    case VGPU_REG_MAX_SG:
        return VGPU_SG_MAX_ENTRIES;
    case VGPU_REG_SQ_HEAD:
        return s->sq_head;
    case VGPU_REG_CQ_TAIL:
        return s->cq_tail;
    case VGPU_REG_RING_INFLIGHT:
        return s->inflight;
    default:
        /* SQ_TAIL_DB, CQ_HEAD_DB (write-only) */
        return 0;
    }
}

static void vgpu_set_lo(uint64_t *r, uint32_t v)
{
    *r = (*r & ~0xffffffffull) | v;
}

static void vgpu_set_hi(uint64_t *r, uint32_t v)
{
    *r = (*r & 0xffffffffull) | ((uint64_t)v << 32);
}

static void vgpu_ring_reg_write(VGPUStubState *s, hwaddr addr, uint32_t val)
{
    bool running = vgpu_ring_running(s);

    switch (addr) {
    case VGPU_REG_RING_CTRL:
        if (val & ~VGPU_RING_CTRL_ENABLE) {
            vgpu_ring_bad(s, addr, val, "unknown RING_CTRL bits");
        } else if (val && !running) {
            vgpu_ring_enable(s);
        } else if (!val && running) {
            vgpu_ring_stop(s, 0);
        }
        break;
    case VGPU_REG_SQ_BASE_LO:
    case VGPU_REG_SQ_BASE_HI:
    case VGPU_REG_CQ_BASE_LO:
    case VGPU_REG_CQ_BASE_HI:
    case VGPU_REG_SQ_SIZE:
    case VGPU_REG_CQ_SIZE:
    case VGPU_REG_DBBUF_LO:
    case VGPU_REG_DBBUF_HI:
        if (running) {
            vgpu_ring_bad(s, addr, val, "ring register written while the "
                          "rings run");
            break;
        }
        switch (addr) {
        case VGPU_REG_SQ_BASE_LO:
            vgpu_set_lo(&s->sq_base, val);
            break;
        case VGPU_REG_SQ_BASE_HI:
            vgpu_set_hi(&s->sq_base, val);
            break;
        case VGPU_REG_CQ_BASE_LO:
            vgpu_set_lo(&s->cq_base, val);
            break;
        case VGPU_REG_CQ_BASE_HI:
            vgpu_set_hi(&s->cq_base, val);
            break;
        case VGPU_REG_SQ_SIZE:
            s->sq_size = val;
            break;
        case VGPU_REG_CQ_SIZE:
            s->cq_size = val;
            break;
        case VGPU_REG_DBBUF_LO:
            vgpu_set_lo(&s->dbbuf, val);
            break;
        default:
            vgpu_set_hi(&s->dbbuf, val);
            break;
        }
        break;
    case VGPU_REG_SQ_TAIL_DB:
        if (!running) {
            vgpu_ring_bad(s, addr, val, "SQ doorbell while the rings are "
                          "stopped");
        } else if (val >= s->sq_size) {
            vgpu_ring_bad(s, addr, val, "SQ tail outside the ring");
        } else if (!s->dbbuf) {
            s->sq_tail = val;
        }
        /* with a doorbell buffer its shadow is the tail: the doorbell
         * only says "look" */
        break;
    case VGPU_REG_CQ_HEAD_DB:
        if (!running) {
            vgpu_ring_bad(s, addr, val, "CQ doorbell while the rings are "
                          "stopped");
        } else {
            vgpu_set_cq_head(s, addr, val);
        }
        break;
    case VGPU_REG_IRQ_COALESCE:
        s->irq_coalesce = val;
        break;
    default:
        vgpu_ring_bad(s, addr, val, "write to a read-only ring register");
        break;
    }
    vgpu_ring_run(s);
}

/* ---------------------------------------------------------------------- */
/* doorbell                                                                */
/* ---------------------------------------------------------------------- */

static uint32_t vgpu_v1_next_seq(VGPUStubState *s)
{
    if (++s->next_seq == 0) {
        s->next_seq = 1;
    }
    return s->next_seq;
}

/*
 * Send the request in the buffer as seq, connecting when there is no
 * connection; VGPU_ERR_NONE or why it could not go.  STATUS is not BUSY.
 */
static uint32_t vgpu_v1_send(VGPUStubState *s, uint32_t seq)
{
    bool was_connected = s->fd >= 0;

    if (!was_connected && !vgpu_connect(s)) {
        return VGPU_ERR_NO_MEDIATOR;
    }
    if (vgpu_send_request(s, seq)) {
        return VGPU_ERR_NONE;
    }
    /* A connection kept from earlier may have died unnoticed: one fresh
     * attempt. */
    if (!was_connected || !vgpu_connect(s)) {
        return was_connected ? VGPU_ERR_NO_MEDIATOR : VGPU_ERR_MEDIATOR_LOST;
    }
    if (!vgpu_send_request(s, seq)) {
        return VGPU_ERR_MEDIATOR_LOST;
    }
    return VGPU_ERR_NONE;
}

static void vgpu_doorbell(VGPUStubState *s, uint32_t val)
{
    uint32_t seq, err;

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

    seq = vgpu_v1_next_seq(s);
    trace_vgpu_stub_submit(seq, s->request_len, s->request_id);
    err = vgpu_v1_send(s, seq);
    if (err != VGPU_ERR_NONE) {
        vgpu_finish_error(s, err);
        return;
    }
    s->inflight_seq = seq;
    s->response_len = 0;
    s->error_code = VGPU_ERR_NONE;
    s->status = VGPU_STATUS_BUSY;
    timer_mod(s->timer,
              qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL) + s->timeout_ms);
}

/*
 * The v1 request in flight at the source came with the VM (STATUS still
 * BUSY, the request still in its buffer): send it to this host's mediator,
 * with a full timeout of its own.
 */
static void vgpu_v1_resend(VGPUStubState *s)
{
    uint32_t seq, err;

    if (s->status != VGPU_STATUS_BUSY) {
        return;
    }
    seq = vgpu_v1_next_seq(s);
    trace_vgpu_stub_submit(seq, s->request_len, s->request_id);
    /* Not BUSY while sending: a failure here is answered below, once. */
    s->status = VGPU_STATUS_IDLE;
    err = vgpu_v1_send(s, seq);
    s->status = VGPU_STATUS_BUSY;
    if (err != VGPU_ERR_NONE) {
        vgpu_finish_error(s, err);
        return;
    }
    s->inflight_seq = seq;
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
        return VGPU_PROTOCOL_V2;
    case VGPU_REG_CAPABILITIES:
        return VGPU_CAPS_V2;
    case VGPU_REG_IRQ_CTRL:
        return s->irq_ctrl;
    case VGPU_REG_IRQ_STATUS:
        return s->irq_status;
    case VGPU_REG_REQUEST_ID:
        return s->request_id;
    default:
        /* DOORBELL (write-only), holes */
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
        s->irq_ctrl = val & VGPU_IRQ_ALL;
        break;
    case VGPU_REG_IRQ_STATUS:
        s->irq_status &= ~val; /* write 1 to clear */
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

    s->stat_mmio++;
    if (addr < VGPU_REQ_BUF_OFFSET) {
        if (size != VGPU_REG_WIDTH || (addr & (VGPU_REG_WIDTH - 1))) {
            qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: %u-byte read at 0x%"
                          HWADDR_PRIx ": registers are aligned dwords\n",
                          size, addr);
            return 0;
        }
        return vgpu_reg_read(s, addr);
    }
    if (addr >= VGPU_REG_RING_CTRL && addr < VGPU_REG_V2_END) {
        if (size != VGPU_REG_WIDTH || (addr & (VGPU_REG_WIDTH - 1))) {
            qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: %u-byte read at 0x%"
                          HWADDR_PRIx ": registers are aligned dwords\n",
                          size, addr);
            return 0;
        }
        return vgpu_ring_reg_read(s, addr);
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

    s->stat_mmio++;
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
    if (addr >= VGPU_REG_RING_CTRL && addr < VGPU_REG_V2_END) {
        if (size != VGPU_REG_WIDTH || (addr & (VGPU_REG_WIDTH - 1))) {
            qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: %u-byte write at 0x%"
                          HWADDR_PRIx ": registers are aligned dwords\n",
                          size, addr);
            return;
        }
        vgpu_ring_reg_write(s, addr, val);
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

    /* v2: the rings stop (their requests are dropped), registers clear */
    s->irq_ctrl = 0;
    vgpu_ring_stop(s, 0);
    s->irq_status = 0;
    s->irq_coalesce = 0;
    s->ring_bad = 0;
    s->sq_base = s->cq_base = s->dbbuf = 0;
    s->sq_size = s->cq_size = 0;
    s->mig_count = 0;
    s->mig_pending = false;
    s->mig_resend = false;
    s->v1_resend = false;
}

static void vgpu_reset(DeviceState *dev)
{
    VGPUStubState *s = VGPU_STUB(dev);

    vgpu_reset_regs(s);
    vgpu_ring_run(s); /* the CANCELs of what was in flight */
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
    unsigned i;

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
    s->ring_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, vgpu_ring_tick, s);
    s->coalesce_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL,
                                     vgpu_coalesce_timeout, s);
    s->retry_timer = timer_new_ms(QEMU_CLOCK_REALTIME, vgpu_retry, s);
    s->mig_bh = qemu_bh_new(vgpu_migrated_in, s);
    s->vm_running = runstate_is_running();
    s->vm_state = qemu_add_vm_change_state_handler(vgpu_vm_state, s);
    s->reqs = g_malloc0(VGPU_REQ_SLOTS * sizeof(VGPURingReq));
    s->max_xfer = VGPU_XFER_DEFAULT;
    vgpu_reset_regs(s);

    memory_region_init_io(&s->mmio, OBJECT(s), &vgpu_mmio_ops, s,
                          "vgpu-stub-mmio", VGPU_BAR0_SIZE);
    pci_register_bar(pdev, 0, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->mmio);
    /* v2: MSI-X table and PBA alone in BAR1 */
    if (msix_init_exclusive_bar(pdev, VGPU_MSIX_VECTORS, VGPU_MSIX_BAR,
                                errp)) {
        return;
    }
    for (i = 0; i < VGPU_MSIX_VECTORS; i++) {
        msix_vector_use(pdev, i);
    }
}

static void vgpu_exit(PCIDevice *pdev)
{
    VGPUStubState *s = VGPU_STUB(pdev);
    QEMUTimer **timers[] = {
        &s->timer, &s->ring_timer, &s->coalesce_timer, &s->retry_timer,
    };
    unsigned i;

    /* Nothing is signalled or completed any more: the device goes. */
    s->irq_ctrl = 0;
    s->irq_held = 0;
    if (s->reqs) {
        vgpu_ring_stop(s, 0);
        vgpu_shm_close(s, VGPU_ERR_MEDIATOR_LOST);
    }
    if (s->fd >= 0) {
        qemu_set_fd_handler(s->fd, NULL, NULL, NULL);
        close(s->fd);
        s->fd = -1;
    }
    for (i = 0; i < ARRAY_SIZE(timers); i++) {
        if (*timers[i]) {
            timer_del(*timers[i]);
            timer_free(*timers[i]);
            *timers[i] = NULL;
        }
    }
    if (s->vm_state) {
        qemu_del_vm_change_state_handler(s->vm_state);
        s->vm_state = NULL;
    }
    if (s->mig_bh) {
        qemu_bh_delete(s->mig_bh);
        s->mig_bh = NULL;
    }
    if (msix_present(pdev)) {
        msix_uninit_exclusive_bar(pdev);
    }
    g_free(s->reqs);
    s->reqs = NULL;
    g_free(s->outbuf);
    s->outbuf = NULL;
    g_free(s->inbuf);
    s->inbuf = NULL;
}

static void vgpu_instance_init(Object *obj)
{
    VGPUStubState *s = VGPU_STUB(obj);

    s->fd = -1;
    s->kick_fd = -1;
    s->call_fd = -1;
    s->pool_prop = g_strdup(VGPU_POOL_DEFAULT);
    s->priority_prop = g_strdup(VGPU_PRIO_NAME_DEFAULT);
    s->socket_path = g_strdup(VGPU_SOCKET_PATH_IN_CHROOT);
    vgpu_add_stat(obj, "x-stat-mmio", &s->stat_mmio);
    vgpu_add_stat(obj, "x-stat-irqs", &s->stat_irqs);
    vgpu_add_stat(obj, "x-stat-done", &s->stat_done);
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
    s->mig_count = 0;
    s->mig_resend = false;
    s->mig_pending = false;
    s->v1_resend = false;
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
    if (s->mig_count && !s->mig_pending) {
        return -EINVAL; /* in-flight requests without their rings */
    }
    /*
     * The request went to the source's mediator connection, which is not
     * ours; it is sent again once the VM runs (a v1 request is a pure
     * function of its bytes, so running it twice, should the source's
     * mediator have run it too, gives the guest the same one answer).
     */
    if (s->status == VGPU_STATUS_BUSY) {
        s->inflight_seq = 0;
        s->v1_resend = true;
    }
    return 0;
}

static int vgpu_req_by_order(const void *a, const void *b)
{
    const VGPURingReq *x = *(VGPURingReq *const *)a;
    const VGPURingReq *y = *(VGPURingReq *const *)b;

    return x->order < y->order ? -1 : x->order > y->order;
}

/* Write r back as the SQE it came from (the guest's slot may be reused). */
static void vgpu_req_to_sqe(const VGPURingReq *r, uint8_t *e)
{
    memset(e, 0, VGPU_SQE_SIZE);
    vgpu_put_le32(e + VGPU_SQE_OFF_TAG, r->tag);
    vgpu_put_le32(e + VGPU_SQE_OFF_REQ_SG_COUNT, r->req_n);
    vgpu_put_le32(e + VGPU_SQE_OFF_RESP_SG_COUNT, r->resp_n);
    vgpu_put_le64(e + VGPU_SQE_OFF_REQ_SG_ADDR, r->req_sg_addr);
    vgpu_put_le64(e + VGPU_SQE_OFF_RESP_SG_ADDR, r->resp_sg_addr);
    vgpu_put_le64(e + VGPU_SQE_OFF_REQ_LEN, r->req_len);
    vgpu_put_le64(e + VGPU_SQE_OFF_RESP_CAP, r->resp_cap);
}

/*
 * The ring requests in flight go with the rings, as the SQEs they came
 * from, in the order they were taken: the destination sends them again.
 * Their tags also go alone (the rings subsection), for a destination from
 * before re-sending, which completes them with MEDIATOR_LOST.
 */
static int vgpu_pre_save(void *opaque)
{
    VGPUStubState *s = opaque;
    VGPURingReq **live = g_malloc((s->reqs_hi + 1) * sizeof(*live));
    uint32_t i, n = 0;

    for (i = 0; i < s->reqs_hi; i++) {
        if (s->reqs[i].state == VGPU_REQ_LIVE) {
            live[n++] = &s->reqs[i];
        }
    }
    qsort(live, n, sizeof(*live), vgpu_req_by_order);
    s->mig_count = MIN(n, VGPU_RING_MAX_ENTRIES);
    for (i = 0; i < s->mig_count; i++) {
        s->mig_tags[i] = live[i]->tag;
        vgpu_req_to_sqe(live[i], s->mig_sqes + (size_t)i * VGPU_SQE_SIZE);
    }
    g_free(live);
    return 0;
}

/*
 * The VM runs again, or for the first time after an incoming migration or
 * a restore (a bottom half of the run).  The requests that were in flight
 * at the source are started again here, through this host's mediator; a
 * source from before re-sending sent only their tags, and those complete
 * with MEDIATOR_LOST so that the guest's waits end.  Then whatever came
 * while the VM was stopped is taken up.
 */
static void vgpu_migrated_in(void *opaque)
{
    VGPUStubState *s = opaque;
    uint32_t i, n = s->mig_pending ? s->mig_count : 0;

    if (!s->vm_running) {
        return;
    }
    if (s->v1_resend) {
        s->v1_resend = false;
        info_report("vgpu-stub: the v1 request in flight came with the VM: "
                    "sent to the mediator at %s", s->socket_path);
        vgpu_v1_resend(s);
    }
    s->mig_pending = false;
    s->mig_count = 0;
    if (n) {
        info_report("vgpu-stub: %u ring requests in flight came with the "
                    "VM: %s", n, s->mig_resend ? "sent to this mediator"
                    : "completed with MEDIATOR_LOST (the source sent only "
                    "their tags)");
    }
    for (i = 0; i < n && vgpu_ring_running(s); i++) {
        VGPURingReq *r;

        if (s->mig_resend) {
            vgpu_req_start(s, s->mig_sqes + (size_t)i * VGPU_SQE_SIZE,
                           s->sq_head);
            continue;
        }
        r = vgpu_req_alloc(s);
        r->state = VGPU_REQ_LIVE;
        r->tag = s->mig_tags[i];
        r->epoch = s->epoch;
        vgpu_req_complete(s, r, VGPU_ERR_MEDIATOR_LOST, 0);
    }
    s->mig_resend = false;
    if (s->irq_held) {
        vgpu_cq_irq_fire(s);
    }
    vgpu_ring_run(s);
}

static void vgpu_vm_state(void *opaque, VGPURunning running, RunState state)
{
    VGPUStubState *s = opaque;

    s->vm_running = running;
    vgpu_update_handlers(s);
    vgpu_update_call_handler(s);
    if (running) {
        qemu_bh_schedule(s->mig_bh);
    }
}

static bool vgpu_rings_needed(void *opaque)
{
    VGPUStubState *s = opaque;

    return vgpu_ring_running(s);
}

static int vgpu_rings_post_load(void *opaque, int version_id)
{
    VGPUStubState *s = opaque;

    if (s->ring_ctrl != VGPU_RING_CTRL_ENABLE ||
        !vgpu_ring_size_ok(s->sq_size) || !vgpu_ring_size_ok(s->cq_size) ||
        s->sq_head >= s->sq_size || s->sq_tail >= s->sq_size ||
        s->cq_head >= s->cq_size || s->cq_tail >= s->cq_size ||
        s->last_irq_tail >= s->cq_size || s->cq_phase > 1 ||
        s->sq_base % VGPU_RING_ALIGN || s->cq_base % VGPU_RING_ALIGN ||
        s->dbbuf % VGPU_DBBUF_ALIGN || s->ring_bad > 0xffff ||
        s->mig_count + vgpu_cq_unread(s) > s->cq_size - 1) {
        return -EINVAL;
    }
    /* A new incarnation: nothing of the source's channel is ours. */
    s->epoch++;
    s->inflight = s->mig_count;
    s->irq_held = 0;
    s->mig_pending = true;
    return 0;
}

static bool vgpu_resend_needed(void *opaque)
{
    VGPUStubState *s = opaque;

    return vgpu_ring_running(s) && s->mig_count;
}

static int vgpu_resend_post_load(void *opaque, int version_id)
{
    VGPUStubState *s = opaque;

    s->mig_resend = true;
    return 0;
}

/*
 * The SQEs of the requests in flight (their tags are in the rings
 * subsection).  What they name is checked again when they are re-sent,
 * exactly as an SQE the guest wrote.
 */
static const VMStateDescription vgpu_vmstate_resend = {
    /* Not "rings-...": a name starting with a subsection's name is taken
     * for a subsection of that one when loading. */
    .name = VGPU_DEVICE_TYPE "/resend",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = vgpu_resend_needed,
    .post_load = vgpu_resend_post_load,
    .fields = (VMStateField[]) {
        VMSTATE_UINT8_ARRAY(mig_sqes, VGPUStubState,
                            VGPU_RING_MAX_ENTRIES * VGPU_SQE_SIZE),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vgpu_vmstate_rings = {
    .name = VGPU_DEVICE_TYPE "/rings",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = vgpu_rings_needed,
    .post_load = vgpu_rings_post_load,
    .fields = (VMStateField[]) {
        VMSTATE_UINT32(ring_ctrl, VGPUStubState),
        VMSTATE_UINT32(ring_status, VGPUStubState),
        VMSTATE_UINT32(ring_bad, VGPUStubState),
        VMSTATE_UINT64(sq_base, VGPUStubState),
        VMSTATE_UINT64(cq_base, VGPUStubState),
        VMSTATE_UINT64(dbbuf, VGPUStubState),
        VMSTATE_UINT32(sq_size, VGPUStubState),
        VMSTATE_UINT32(cq_size, VGPUStubState),
        VMSTATE_UINT32(sq_head, VGPUStubState),
        VMSTATE_UINT32(sq_tail, VGPUStubState),
        VMSTATE_UINT32(cq_tail, VGPUStubState),
        VMSTATE_UINT32(cq_head, VGPUStubState),
        VMSTATE_UINT32(cq_phase, VGPUStubState),
        VMSTATE_UINT32(last_irq_tail, VGPUStubState),
        VMSTATE_UINT32(sq_event, VGPUStubState),
        VMSTATE_UINT32(epoch, VGPUStubState),
        VMSTATE_UINT32(mig_count, VGPUStubState),
        VMSTATE_UINT32_ARRAY(mig_tags, VGPUStubState, VGPU_RING_MAX_ENTRIES),
        VMSTATE_END_OF_LIST()
    },
};

static bool vgpu_irq_needed(void *opaque)
{
    VGPUStubState *s = opaque;

    return s->irq_ctrl || s->irq_status || s->irq_coalesce;
}

static int vgpu_irq_post_load(void *opaque, int version_id)
{
    VGPUStubState *s = opaque;

    s->irq_ctrl &= VGPU_IRQ_ALL;
    s->irq_status &= VGPU_IRQ_ALL;
    return 0;
}

static const VMStateDescription vgpu_vmstate_irq = {
    .name = VGPU_DEVICE_TYPE "/irq",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = vgpu_irq_needed,
    .post_load = vgpu_irq_post_load,
    .fields = (VMStateField[]) {
        VMSTATE_UINT32(irq_ctrl, VGPUStubState),
        VMSTATE_UINT32(irq_status, VGPUStubState),
        VMSTATE_UINT32(irq_coalesce, VGPUStubState),
        VMSTATE_END_OF_LIST()
    },
};

static bool vgpu_msix_needed(void *opaque)
{
    VGPUStubState *s = opaque;

    return msix_present(&s->parent_obj);
}

/* The MSI-X table and PBA (the capability itself is in config space). */
static const VMStateDescription vgpu_vmstate_msix = {
    .name = VGPU_DEVICE_TYPE "/msix",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = vgpu_msix_needed,
    .fields = (VMStateField[]) {
        VMSTATE_MSIX(parent_obj, VGPUStubState),
        VMSTATE_END_OF_LIST()
    },
};

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
    .pre_save = vgpu_pre_save,
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
        &vgpu_vmstate_rings,
        &vgpu_vmstate_resend,
        &vgpu_vmstate_irq,
        &vgpu_vmstate_msix,
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
