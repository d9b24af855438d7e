/*
 * ring.c - owns the mediator's side of the v2 channel (ring.h, the
 * contract in vgpu/shm.h): the staging region (a sealed memfd it sizes and
 * maps), the kick and call eventfds, the sub ring's consumer and the comp
 * ring's producer, the records of the requests open on the channel (their
 * assembly from request chunks, their response streamed through response
 * chunks), the lending state of every chunk, the output that waits for
 * room, and adaptive polling.
 *
 * It reports upward only through the owner's callbacks (ring_owner): a
 * whole request goes to ev->request_buf, a cancelled one to ev->cancel, a
 * breach to owner->fail, which ends the connection.  No global state.
 *
 * Why the entry is copied before it is looked at: the device may rewrite
 * the region at any moment; a check made on shared memory could be undone
 * between the check and the use.  So an entry is read once (memcpy), and
 * nothing but that private copy is checked or used; indices are read once
 * per pass (acquire) and the mediator's own are never read back.
 */
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../log.h"
#include "../loop.h"
#include "transport.h"
#include "util.h"

/* glibc 2.17 (dom0) has neither memfd_create() nor the sealing names. */
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001u
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002u
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#endif
#ifndef F_SEAL_SEAL
#define F_SEAL_SEAL 0x0001
#endif
#ifndef F_SEAL_SHRINK
#define F_SEAL_SHRINK 0x0002
#endif
#ifndef F_SEAL_GROW
#define F_SEAL_GROW 0x0004
#endif
#ifndef SYS_memfd_create
#if defined(__x86_64__)
#define SYS_memfd_create 319
#elif defined(__aarch64__)
#define SYS_memfd_create 279
#endif
#endif

enum req_state {
    REQ_FREE = 0,
    REQ_ASSEMBLING, /* pieces coming, bytes into buf */
    REQ_DISCARD,    /* pieces coming, over held_max: refused at LAST */
    REQ_QUEUED,     /* with dispatch, buf is dispatch's */
    REQ_ANSWERING,  /* its final entries wait for room or chunks */
};

struct ring_req {
    enum req_state state;
    uint32_t epoch, seq;
    uint32_t token; /* its request_id upward: slot + nslots * uses */
    uint32_t uses;
    uint64_t total, got, resp_cap, held;
    uint8_t *buf;
    /* Answering: an error (final_status), or resp_total bytes of which
     * resp_sent are in chunks; the rest at src (src_base: the response
     * offset of src[0]), own when src is a copy of ours. */
    uint32_t final_status;
    uint64_t resp_total, resp_sent, src_base;
    const uint8_t *src;
    uint8_t *own;
    struct ring_req *next_out; /* the output queue */
    bool queued_out;
};

struct ring_chan {
    struct ring_config cfg;
    struct ring_owner own;
    struct vgpu_shm_offer geo; /* what was offered: never read back */
    uint8_t *region;
    bool mapped; /* region is our mmap (else the caller's memory) */
    struct loop_handler kick;
    int call_fd;
    struct loop_deferred free_later;
    bool dead;
    const char *breach;
    /* the sub ring's consumer, the comp ring's producer */
    uint32_t sub_cons, comp_prod;
    uint32_t epoch; /* the device's current ring incarnation */
    bool epoch_seen;
    /* requests */
    struct ring_req *reqs; /* max_inflight slots */
    unsigned nopen;
    uint64_t held;
    /* chunks: a request chunk the mediator holds (its DONE not yet in the
     * comp ring); a response chunk lent to the device; free response
     * chunks as a stack */
    uint8_t *req_held;
    uint8_t *resp_lent;
    uint32_t *resp_free;
    uint32_t nfree;
    /* output waiting: REQ_CHUNK_DONEs (a FIFO of chunk numbers), then
     * requests answering, in order */
    uint32_t *done_q;
    uint32_t done_head, done_len;
    struct ring_req *out_head, *out_tail;
    /* this wakeup */
    bool admitted;
    uint64_t bytes_left;
    uint64_t busy_until_ns;
    /* counters */
    uint64_t requests, cancelled, refused;
};

/* ---------------------------------------------------------------------- */
/* configuration                                                           */
/* ---------------------------------------------------------------------- */

void ring_config_default(struct ring_config *c)
{
    memset(c, 0, sizeof(*c));
    c->chunk_size = RING_DEFAULT_CHUNK_SIZE;
    c->req_chunks = RING_DEFAULT_CHUNKS;
    c->resp_chunks = RING_DEFAULT_CHUNKS;
    c->max_inflight = RING_DEFAULT_INFLIGHT;
    c->max_xfer = VGPU_XFER_DEFAULT;
    c->spin_us = RING_DEFAULT_SPIN_US;
    c->budget = RING_DEFAULT_BUDGET;
    c->budget_bytes = RING_DEFAULT_BUDGET_BYTES;
}

const char *ring_config_fix(struct ring_config *c)
{
    /* Every entry that can wait in the comp ring of a device that keeps
     * the rules: a DONE per request chunk, a RESP_DATA per response chunk,
     * a final entry per open request.  So its ring never fills. */
    uint64_t need = (uint64_t)c->req_chunks + c->resp_chunks + c->max_inflight;

    if (c->chunk_size == 0 || c->chunk_size % 4096u ||
        c->chunk_size > (64u << 20)) {
        return "the chunk size is a multiple of 4 KiB up to 64 MiB";
    }
    if (c->req_chunks == 0 || c->resp_chunks == 0 || c->req_chunks > 4096 ||
        c->resp_chunks > 4096) {
        return "chunks per pool are 1..4096";
    }
    if (c->max_inflight == 0 || c->max_inflight > 4096) {
        return "requests in flight are 1..4096";
    }
    if (c->max_xfer < 4096 || c->max_xfer > VGPU_XFER_LIMIT) {
        return "the transfer limit is 4 KiB .. 4 GiB - 4 KiB";
    }
    if (c->ring_entries == 0) {
        c->ring_entries = 256;
        while (c->ring_entries < need) {
            c->ring_entries *= 2;
        }
    }
    if (c->ring_entries < need || c->ring_entries > 65536 ||
        (c->ring_entries & (c->ring_entries - 1))) {
        return "ring entries are a power of two up to 65536 holding "
               "every chunk and request";
    }
    if (c->held_max == 0) {
        c->held_max = 4 * c->max_xfer;
    }
    if (c->budget == 0) {
        c->budget = RING_DEFAULT_BUDGET;
    }
    if (c->budget_bytes < c->chunk_size) {
        c->budget_bytes = c->chunk_size;
    }
    if ((uint64_t)c->req_chunks * c->chunk_size +
            (uint64_t)c->resp_chunks * c->chunk_size >
        (4ull << 30)) {
        return "the staging region would be over 4 GiB";
    }
    return NULL;
}

/* The layout every channel of cfg gets. */
static void layout(const struct ring_config *cfg, struct vgpu_shm_offer *o)
{
    uint64_t ring_bytes = (uint64_t)cfg->ring_entries * VGPU_SHM_ENT_SIZE;
    uint64_t end;

    memset(o, 0, sizeof(*o));
    o->version = VGPU_SHM_VERSION;
    o->ring_entries = cfg->ring_entries;
    o->sub_off = VGPU_SHM_CTRL_SIZE;
    o->comp_off = (uint32_t)(o->sub_off + ring_bytes);
    end = o->comp_off + ring_bytes;
    o->req_pool_off = (end + 4095) & ~4095ull;
    o->chunk_size = cfg->chunk_size;
    o->req_chunks = cfg->req_chunks;
    o->resp_chunks = cfg->resp_chunks;
    o->resp_pool_off =
        o->req_pool_off + (uint64_t)cfg->req_chunks * cfg->chunk_size;
    o->region_size =
        o->resp_pool_off + (uint64_t)cfg->resp_chunks * cfg->chunk_size;
    o->max_inflight = cfg->max_inflight;
    o->max_xfer = cfg->max_xfer;
}

/* ---------------------------------------------------------------------- */
/* the shared indices                                                      */
/* ---------------------------------------------------------------------- */

static uint32_t *ctrl(struct ring_chan *r, uint32_t off)
{
    return (uint32_t *)(void *)(r->region + off);
}

static uint32_t load_acq(struct ring_chan *r, uint32_t off)
{
    return __atomic_load_n(ctrl(r, off), __ATOMIC_ACQUIRE);
}

static void store_rel(struct ring_chan *r, uint32_t off, uint32_t v)
{
    __atomic_store_n(ctrl(r, off), v, __ATOMIC_RELEASE);
}

static void full_barrier(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
#endif
}

static void poke(int fd)
{
    uint64_t one = 1;

    /* EAGAIN: the counter is full, the reader wakes all the same. */
    if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
        (void)errno;
    }
}

/* ---------------------------------------------------------------------- */
/* breaches                                                                */
/* ---------------------------------------------------------------------- */

/* The device broke the contract: nothing of the region is read again. */
static int breach(struct ring_chan *r, const char *why)
{
    if (!r->dead) {
        r->dead = true;
        r->breach = why;
        if (r->own.vm) {
            r->own.vm->breaches++;
        }
        if (r->own.fail) {
            r->own.fail(r->own.conn, why);
        }
    }
    return -1;
}

/* ---------------------------------------------------------------------- */
/* requests                                                                */
/* ---------------------------------------------------------------------- */

static struct ring_req *find_req(struct ring_chan *r, uint32_t epoch,
                                 uint32_t seq)
{
    for (uint32_t i = 0; i < r->cfg.max_inflight; i++) {
        struct ring_req *q = &r->reqs[i];

        if (q->state != REQ_FREE && q->seq == seq && q->epoch == epoch) {
            return q;
        }
    }
    return NULL;
}

static struct ring_req *alloc_req(struct ring_chan *r)
{
    for (uint32_t i = 0; i < r->cfg.max_inflight; i++) {
        struct ring_req *q = &r->reqs[i];

        if (q->state == REQ_FREE) {
            /* slot + nslots * uses, never wrapping: token % nslots is
             * the slot again. */
            q->uses = (q->uses + 1) % (UINT32_MAX / r->cfg.max_inflight);
            q->token = i + r->cfg.max_inflight * q->uses;
            return q;
        }
    }
    return NULL;
}

static void out_unlink(struct ring_chan *r, struct ring_req *q)
{
    struct ring_req **pp = &r->out_head, *prev = NULL;

    if (!q->queued_out) {
        return;
    }
    while (*pp && *pp != q) {
        prev = *pp;
        pp = &(*pp)->next_out;
    }
    if (*pp) {
        *pp = q->next_out;
        if (r->out_tail == q) {
            r->out_tail = prev;
        }
    }
    q->queued_out = false;
    q->next_out = NULL;
}

/* The request ends for the channel (its final entry written, or dropped). */
static void free_req(struct ring_chan *r, struct ring_req *q)
{
    out_unlink(r, q);
    free(q->buf);
    free(q->own);
    r->held -= q->held;
    r->nopen--;
    q->buf = q->own = NULL;
    q->src = NULL;
    q->state = REQ_FREE;
}

static void out_queue(struct ring_chan *r, struct ring_req *q)
{
    if (q->queued_out) {
        return;
    }
    q->queued_out = true;
    q->next_out = NULL;
    if (r->out_tail) {
        r->out_tail->next_out = q;
    } else {
        r->out_head = q;
    }
    r->out_tail = q;
}

static void answer_error(struct ring_chan *r, struct ring_req *q,
                         uint32_t status)
{
    free(q->buf);
    q->buf = NULL;
    q->state = REQ_ANSWERING;
    q->final_status = status;
    out_queue(r, q);
}

/* The device gave up on q, or q's epoch ended: dropped without an answer. */
static void drop_req(struct ring_chan *r, struct ring_req *q)
{
    if (q->state == REQ_QUEUED && r->own.ev && r->own.ev->cancel) {
        r->own.ev->cancel(r->own.ev_arg, r->own.vm, r->own.gen, q->token);
    }
    r->cancelled++;
    free_req(r, q);
}

/* A new incarnation of the device's rings: the old one's requests go. */
static void new_epoch(struct ring_chan *r, uint32_t epoch)
{
    for (uint32_t i = 0; i < r->cfg.max_inflight; i++) {
        struct ring_req *q = &r->reqs[i];

        if (q->state != REQ_FREE && q->epoch != epoch) {
            drop_req(r, q);
        }
    }
    r->epoch = epoch;
    r->epoch_seen = true;
}

/* The last piece came: admit it as a v1 request is admitted. */
static void finish_req(struct ring_chan *r, struct ring_req *q)
{
    uint32_t err;

    if (q->state == REQ_DISCARD) {
        r->refused++;
        if (r->own.vm) {
            r->own.vm->failed++;
        }
        answer_error(r, q, VGPU_ERR_QUEUE_FULL);
        return;
    }
    r->requests++;
    err = r->own.ev && r->own.ev->request_buf
              ? r->own.ev->request_buf(r->own.ev_arg, r->own.vm, r->own.gen,
                                       q->token, q->buf, (uint32_t)q->total,
                                       r->cfg.max_xfer, r->cfg.max_inflight)
              : VGPU_ERR_BACKEND;
    if (err) {
        r->refused++;
        if (r->own.vm) {
            r->own.vm->failed++;
            log_debug("dom%u: v2 request %u refused: %s", r->own.vm->domid,
                      q->seq, vgpu_error_name(err));
        }
        answer_error(r, q, err);
        return;
    }
    q->buf = NULL; /* dispatch's now */
    q->state = REQ_QUEUED;
    r->admitted = true;
}

/* ---------------------------------------------------------------------- */
/* the sub ring                                                            */
/* ---------------------------------------------------------------------- */

static int on_req_data(struct ring_chan *r, const struct vgpu_shm_ent *e)
{
    struct ring_req *q;
    bool first = e->flags & VGPU_SHM_F_FIRST;
    bool last = e->flags & VGPU_SHM_F_LAST;

    if (e->flags & ~(VGPU_SHM_F_FIRST | VGPU_SHM_F_LAST)) {
        return breach(r, "unknown flags in a sub ring entry");
    }
    if (e->chunk >= r->geo.req_chunks) {
        return breach(r, "request chunk out of range");
    }
    if (r->req_held[e->chunk]) {
        return breach(r, "request chunk named while lent to the mediator");
    }
    if (e->len == 0 || e->len > r->geo.chunk_size) {
        return breach(r, "piece length 0 or over the chunk size");
    }
    if (e->seq == 0) {
        return breach(r, "request seq 0");
    }
    if (first) {
        if (e->offset != 0) {
            return breach(r, "first piece not at offset 0");
        }
        if (e->total < sizeof(struct vgpu_req_hdr) ||
            e->total > r->geo.max_xfer) {
            return breach(r, "request total outside 8 .. max_xfer");
        }
        if (e->resp_cap > r->geo.max_xfer) {
            return breach(r, "resp_cap over max_xfer");
        }
        if (!r->epoch_seen || e->epoch != r->epoch) {
            new_epoch(r, e->epoch);
        }
        if (find_req(r, e->epoch, e->seq)) {
            return breach(r, "seq of a request still open named again");
        }
        if (r->nopen >= r->geo.max_inflight) {
            return breach(r, "more than max_inflight requests open");
        }
        q = alloc_req(r);
        if (!q) {
            return breach(r, "more than max_inflight requests open");
        }
        q->epoch = e->epoch;
        q->seq = e->seq;
        q->total = e->total;
        q->got = 0;
        q->resp_cap = e->resp_cap;
        q->final_status = 0;
        q->resp_total = q->resp_sent = q->src_base = 0;
        q->held = e->total + e->resp_cap;
        r->nopen++;
        if (r->held + q->held > r->cfg.held_max ||
            !(q->buf = malloc(e->total))) {
            /* Swallowed piece by piece, refused at the end: never held. */
            q->held = 0;
            q->state = REQ_DISCARD;
        } else {
            r->held += q->held;
            q->state = REQ_ASSEMBLING;
        }
    } else {
        q = find_req(r, e->epoch, e->seq);
        if (!q || (q->state != REQ_ASSEMBLING && q->state != REQ_DISCARD)) {
            return breach(r, "piece of a request that is not being sent");
        }
        if (e->offset != q->got) {
            return breach(r, "piece not at the offset where the last ended");
        }
    }
    if (e->len > q->total - q->got) {
        return breach(r, "piece past the request's total");
    }
    if (last != (q->got + e->len == q->total)) {
        return breach(r, last ? "LAST on a piece that does not end the request"
                              : "the request's last piece without LAST");
    }
    if (q->buf) {
        memcpy(q->buf + q->got,
               r->region + r->geo.req_pool_off +
                   (uint64_t)e->chunk * r->geo.chunk_size,
               e->len);
    }
    q->got += e->len;
    r->bytes_left = r->bytes_left > e->len ? r->bytes_left - e->len : 0;
    /* Copied: the chunk goes back at once, so the device streams on. */
    r->req_held[e->chunk] = 1;
    r->done_q[(r->done_head + r->done_len) % r->geo.req_chunks] = e->chunk;
    r->done_len++;
    if (last) {
        finish_req(r, q);
    }
    return 0;
}

static int on_sub_entry(struct ring_chan *r, const struct vgpu_shm_ent *e)
{
    struct ring_req *q;

    switch (e->kind) {
    case VGPU_SHM_REQ_DATA:
        return on_req_data(r, e);
    case VGPU_SHM_RESP_CHUNK_DONE:
        if (e->chunk >= r->geo.resp_chunks) {
            return breach(r, "response chunk out of range");
        }
        if (!r->resp_lent[e->chunk]) {
            return breach(r, "response chunk given back while not lent");
        }
        r->resp_lent[e->chunk] = 0;
        r->resp_free[r->nfree++] = e->chunk;
        return 0;
    case VGPU_SHM_CANCEL:
        /* A request that already ended is no breach: the answer and the
         * device's timeout may cross. */
        q = find_req(r, e->epoch, e->seq);
        if (q) {
            drop_req(r, q);
        }
        return 0;
    default:
        return breach(r, "unknown kind in a sub ring entry");
    }
}

/* ---------------------------------------------------------------------- */
/* the comp ring                                                           */
/* ---------------------------------------------------------------------- */

/* Room in the comp ring now, or -1 (breach: its consumer index is off). */
static int comp_room(struct ring_chan *r)
{
    int bad = 0;
    uint32_t used = vgpu_shm_ring_avail(
        r->comp_prod, load_acq(r, VGPU_SHM_OFF_COMP_CONS), r->geo.ring_entries,
        &bad);

    if (bad) {
        return breach(r, "comp ring consumer index outside the ring");
    }
    return (int)(r->geo.ring_entries - used);
}

static void put_comp(struct ring_chan *r, const struct vgpu_shm_ent *e)
{
    uint32_t slot = r->comp_prod & (r->geo.ring_entries - 1);

    vgpu_shm_ent_pack(r->region + r->geo.comp_off +
                          (uint64_t)slot * VGPU_SHM_ENT_SIZE,
                      e);
    r->comp_prod++;
}

/* One response piece of q into a free chunk. */
static void put_resp_piece(struct ring_chan *r, struct ring_req *q)
{
    uint32_t chunk = r->resp_free[--r->nfree];
    uint64_t left = q->resp_total - q->resp_sent;
    uint32_t len =
        (uint32_t)(left < r->geo.chunk_size ? left : r->geo.chunk_size);
    struct vgpu_shm_ent e = {
        .kind = VGPU_SHM_RESP_DATA,
        .epoch = q->epoch,
        .seq = q->seq,
        .chunk = chunk,
        .len = len,
        .offset = q->resp_sent,
    };

    memcpy(r->region + r->geo.resp_pool_off +
               (uint64_t)chunk * r->geo.chunk_size,
           q->src + (q->resp_sent - q->src_base), len);
    if (q->resp_sent == 0) {
        e.flags |= VGPU_SHM_F_FIRST;
        e.total = q->resp_total;
    }
    q->resp_sent += len;
    if (q->resp_sent == q->resp_total) {
        e.flags |= VGPU_SHM_F_LAST;
    }
    r->resp_lent[chunk] = 1;
    put_comp(r, &e);
}

/*
 * Write what waits while there is room: chunk returns first (they let the
 * device stream), then answers in order.  Then the device is told, if it
 * sleeps.
 */
static int pump(struct ring_chan *r)
{
    int room = comp_room(r);
    uint32_t before = r->comp_prod;

    if (room < 0) {
        return -1;
    }
    while (room > 0 && r->done_len) {
        struct vgpu_shm_ent e = {.kind = VGPU_SHM_REQ_CHUNK_DONE};

        e.chunk = r->done_q[r->done_head];
        r->done_head = (r->done_head + 1) % r->geo.req_chunks;
        r->done_len--;
        r->req_held[e.chunk] = 0;
        put_comp(r, &e);
        room--;
    }
    while (room > 0 && r->out_head) {
        struct ring_req *q = r->out_head;

        if (q->final_status) {
            struct vgpu_shm_ent e = {
                .kind = VGPU_SHM_RESP_ERROR,
                .epoch = q->epoch,
                .seq = q->seq,
                .status = q->final_status,
            };

            put_comp(r, &e);
            room--;
            free_req(r, q);
            continue;
        }
        while (room > 0 && r->nfree && q->resp_sent < q->resp_total) {
            put_resp_piece(r, q);
            room--;
        }
        if (q->resp_sent < q->resp_total) {
            break; /* waits for chunks or room, and those behind it too */
        }
        free_req(r, q);
    }
    if (r->comp_prod != before) {
        store_rel(r, VGPU_SHM_OFF_COMP_PROD, r->comp_prod);
        full_barrier();
        if (load_acq(r, VGPU_SHM_OFF_DEV_SLEEPING)) {
            poke(r->call_fd);
        }
    }
    return 0;
}

int ring_chan_consume(struct ring_chan *r, unsigned budget)
{
    unsigned done = 0;
    int bad = 0;
    uint32_t prod, avail;

    if (r->dead) {
        return -1;
    }
    prod = load_acq(r, VGPU_SHM_OFF_SUB_PROD);
    avail = vgpu_shm_ring_avail(prod, r->sub_cons, r->geo.ring_entries, &bad);
    if (bad) {
        return breach(r, "sub ring producer index outside the ring");
    }
    while (done < avail && done < budget && r->bytes_left > 0) {
        uint8_t raw[VGPU_SHM_ENT_SIZE];
        struct vgpu_shm_ent e;
        uint32_t slot = r->sub_cons & (r->geo.ring_entries - 1);

        /* One read of the shared entry; only the copy is looked at. */
        memcpy(raw,
               r->region + r->geo.sub_off + (uint64_t)slot * VGPU_SHM_ENT_SIZE,
               sizeof(raw));
        vgpu_shm_ent_unpack(raw, &e);
        if (on_sub_entry(r, &e)) {
            return -1;
        }
        r->sub_cons++;
        done++;
    }
    if (done) {
        store_rel(r, VGPU_SHM_OFF_SUB_CONS, r->sub_cons);
    }
    if (pump(r)) {
        return -1;
    }
    return (int)done;
}

/* ---------------------------------------------------------------------- */
/* completions                                                             */
/* ---------------------------------------------------------------------- */

bool ring_chan_complete(struct ring_chan *r, uint32_t token, uint32_t status,
                        const void *payload, uint32_t len)
{
    struct ring_req *q = &r->reqs[token % r->cfg.max_inflight];

    if (r->dead || q->state != REQ_QUEUED || q->token != token) {
        if (r->own.vm) {
            log_debug("dom%u: v2 request (token %u) finished after the "
                      "device gave it up: dropped",
                      r->own.vm->domid, token);
            r->own.vm->stale++;
        }
        return false;
    }
    q->state = REQ_ANSWERING;
    if (status != VGPU_ERR_NONE) {
        q->final_status = status;
    } else if (len > q->resp_cap) {
        q->final_status = VGPU_ERR_RESPONSE_TOO_LARGE;
    } else {
        q->resp_total = len;
        q->resp_sent = 0;
        q->src = payload;
        q->src_base = 0;
    }
    out_queue(r, q);
    if (pump(r)) {
        return true;
    }
    /* What did not fit yet must outlive the caller's buffer. */
    if (q->state == REQ_ANSWERING && !q->final_status && q->src == payload &&
        q->resp_sent < q->resp_total) {
        uint64_t rest = q->resp_total - q->resp_sent;

        q->own = malloc(rest);
        if (!q->own) {
            q->final_status = VGPU_ERR_BACKEND;
            q->src = NULL;
        } else {
            memcpy(q->own, (const uint8_t *)payload + q->resp_sent, rest);
            q->src = q->own;
            q->src_base = q->resp_sent;
        }
    }
    /* Busy: look for the device's next request for a while. */
    if (r->kick.fd >= 0 && r->cfg.spin_us) {
        r->busy_until_ns = now_ns() + (uint64_t)r->cfg.spin_us * 1000u;
        if (__atomic_load_n(ctrl(r, VGPU_SHM_OFF_MED_SLEEPING),
                            __ATOMIC_RELAXED)) {
            store_rel(r, VGPU_SHM_OFF_MED_SLEEPING, 0);
            poke(r->kick.fd);
        }
    }
    return true;
}

/* ---------------------------------------------------------------------- */
/* the kick handler: bounded work, adaptive polling                        */
/* ---------------------------------------------------------------------- */

static void on_kick(struct loop_handler *h, uint32_t events)
{
    struct ring_chan *r = h->arg;
    unsigned left = r->cfg.budget;
    uint64_t counter;
    int n;

    (void)events;
    if (r->dead) {
        return;
    }
    if (read(h->fd, &counter, sizeof(counter)) < 0) {
        (void)errno; /* EAGAIN: a spurious wakeup */
    }
    store_rel(r, VGPU_SHM_OFF_MED_SLEEPING, 0);
    r->admitted = false;
    r->bytes_left = r->cfg.budget_bytes;
    for (;;) {
        n = ring_chan_consume(r, left);
        if (n < 0) {
            return;
        }
        left -= (unsigned)n;
        if (n > 0 && r->cfg.spin_us) {
            r->busy_until_ns = now_ns() + (uint64_t)r->cfg.spin_us * 1000u;
        }
        if (left == 0 || r->bytes_left == 0) {
            poke(h->fd); /* more next turn: other channels first */
            return;
        }
        /* A request admitted waits for the batch's end to start. */
        if (r->admitted || now_ns() >= r->busy_until_ns) {
            break;
        }
        cpu_relax();
    }
    store_rel(r, VGPU_SHM_OFF_MED_SLEEPING, 1);
    full_barrier();
    if (load_acq(r, VGPU_SHM_OFF_SUB_PROD) != r->sub_cons) {
        store_rel(r, VGPU_SHM_OFF_MED_SLEEPING, 0);
        poke(h->fd);
    }
}

/* ---------------------------------------------------------------------- */
/* set-up and tear-down                                                    */
/* ---------------------------------------------------------------------- */

static int chan_alloc(struct ring_chan **rp, const struct ring_config *cfg,
                      const struct ring_owner *own)
{
    struct ring_chan *r = calloc(1, sizeof(*r));

    if (!r) {
        return -1;
    }
    r->cfg = *cfg;
    r->own = *own;
    r->kick.fd = -1;
    r->call_fd = -1;
    layout(cfg, &r->geo);
    r->reqs = calloc(cfg->max_inflight, sizeof(*r->reqs));
    r->req_held = calloc(cfg->req_chunks, 1);
    r->done_q = calloc(cfg->req_chunks, sizeof(*r->done_q));
    r->resp_lent = calloc(cfg->resp_chunks, 1);
    r->resp_free = calloc(cfg->resp_chunks, sizeof(*r->resp_free));
    if (!r->reqs || !r->req_held || !r->done_q || !r->resp_lent ||
        !r->resp_free) {
        ring_chan_free(r);
        return -1;
    }
    for (uint32_t i = 0; i < cfg->resp_chunks; i++) {
        r->resp_free[i] = cfg->resp_chunks - 1 - i; /* chunk 0 first */
    }
    r->nfree = cfg->resp_chunks;
    r->bytes_left = UINT64_MAX;
    *rp = r;
    return 0;
}

static void chan_region_init(struct ring_chan *r)
{
    /* The mediator starts asleep: the device's first entry kicks. */
    store_rel(r, VGPU_SHM_OFF_MED_SLEEPING, 1);
}

int ring_chan_open_mem(struct ring_chan **rp, const struct ring_config *cfg,
                       const struct ring_owner *own, void *region,
                       struct vgpu_shm_offer *offer)
{
    struct ring_chan *r;

    if (chan_alloc(&r, cfg, own)) {
        return -1;
    }
    r->region = region;
    chan_region_init(r);
    *offer = r->geo;
    *rp = r;
    return 0;
}

void ring_chan_free(struct ring_chan *r)
{
    if (!r) {
        return;
    }
    if (r->reqs) {
        for (uint32_t i = 0; i < r->cfg.max_inflight; i++) {
            free(r->reqs[i].buf);
            free(r->reqs[i].own);
        }
    }
    if (r->mapped) {
        munmap(r->region, r->geo.region_size);
    }
    free(r->reqs);
    free(r->req_held);
    free(r->done_q);
    free(r->resp_lent);
    free(r->resp_free);
    free(r);
}

static int make_memfd(uint64_t size, const char **why)
{
    int fd;

#ifdef SYS_memfd_create
    fd = (int)syscall(SYS_memfd_create, "vgpu-staging",
                      MFD_CLOEXEC | MFD_ALLOW_SEALING);
#else
    fd = -1;
    errno = ENOSYS;
#endif
    if (fd < 0) {
        *why = "memfd_create failed";
        return -1;
    }
    if (ftruncate(fd, (off_t)size) ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
        *why = "cannot size or seal the staging memfd";
        close(fd);
        return -1;
    }
    return fd;
}

/* The channel with its region and eventfds; *memfd for the device. */
static int chan_open(struct ring_chan **rp, const struct ring_config *cfg,
                     const struct ring_owner *own, int *memfd,
                     const char **why)
{
    struct ring_chan *r;
    void *p;

    if (chan_alloc(&r, cfg, own)) {
        *why = "out of memory";
        return -1;
    }
    *memfd = make_memfd(r->geo.region_size, why);
    if (*memfd < 0) {
        ring_chan_free(r);
        return -1;
    }
    p = mmap(NULL, r->geo.region_size, PROT_READ | PROT_WRITE, MAP_SHARED,
             *memfd, 0);
    if (p == MAP_FAILED) {
        *why = "cannot map the staging region";
        goto fail;
    }
    r->region = p;
    r->mapped = true;
    chan_region_init(r);
    r->kick.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    r->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->kick.fd < 0 || r->call_fd < 0) {
        *why = "eventfd failed";
        goto fail;
    }
    r->kick.fn = on_kick;
    r->kick.arg = r;
    if (loop_add(own->loop, &r->kick, EPOLLIN)) {
        *why = "cannot watch the kick eventfd";
        goto fail;
    }
    *rp = r;
    return 0;

fail:
    if (r->kick.fd >= 0) {
        close(r->kick.fd);
    }
    if (r->call_fd >= 0) {
        close(r->call_fd);
    }
    close(*memfd);
    *memfd = -1;
    ring_chan_free(r);
    return -1;
}

int ring_shm_req(struct ring_chan **slot, const struct ring_config *cfg,
                 const struct ring_owner *own, const uint8_t *body,
                 uint32_t len, struct ring_offer_msg *out, const char **why)
{
    struct ring_chan *r = NULL;
    const char *fail = NULL;
    int memfd = -1;

    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < VGPU_SHM_FDS; i++) {
        out->fds[i] = -1;
    }
    if (*slot) {
        *why = "a second SHM_REQ on one connection";
        return -1;
    }
    if (len != VGPU_SHM_REQ_SIZE) {
        *why = "SHM_REQ of the wrong size";
        return -1;
    }
    if (vgpu_get_le32(body) != VGPU_SHM_VERSION) {
        log_warn("dom%u: the device asks for shared region version %u, "
                 "this mediator speaks %u: no v2 channel",
                 own->vm->domid, vgpu_get_le32(body), VGPU_SHM_VERSION);
        out->status = VGPU_ERR_PROTOCOL;
        return 0;
    }
    if (chan_open(&r, cfg, own, &memfd, &fail)) {
        log_err("dom%u: no v2 channel: %s: %s", own->vm->domid, fail,
                strerror(errno));
        out->status = VGPU_ERR_BACKEND;
        return 0;
    }
    vgpu_shm_offer_pack(out->payload, &r->geo);
    out->len = VGPU_SHM_OFFER_SIZE;
    out->fds[VGPU_SHM_FD_REGION] = memfd;
    out->fds[VGPU_SHM_FD_KICK] = r->kick.fd;
    out->fds[VGPU_SHM_FD_CALL] = r->call_fd;
    out->nfds = VGPU_SHM_FDS;
    out->status = VGPU_ERR_NONE;
    *slot = r;
    log_info("dom%u: v2 channel: %llu bytes of staging (%u + %u chunks of "
             "%u KiB), %u ring entries, %u in flight, %llu bytes per "
             "request",
             own->vm->domid, (unsigned long long)r->geo.region_size,
             r->geo.req_chunks, r->geo.resp_chunks, r->geo.chunk_size >> 10,
             r->geo.ring_entries, r->geo.max_inflight,
             (unsigned long long)r->geo.max_xfer);
    return 0;
}

void ring_offer_sent(struct ring_offer_msg *out)
{
    /* The mapping stays; the memfd itself is the device's business. */
    if (out->nfds && out->fds[VGPU_SHM_FD_REGION] >= 0) {
        close(out->fds[VGPU_SHM_FD_REGION]);
        out->fds[VGPU_SHM_FD_REGION] = -1;
    }
}

uint64_t ring_chan_gen(const struct ring_chan *r)
{
    return r->own.gen;
}

const char *ring_chan_breach(const struct ring_chan *r)
{
    return r->breach;
}

unsigned ring_chan_open_count(const struct ring_chan *r)
{
    return r->nopen;
}

static void chan_finish(void *arg)
{
    ring_chan_free(arg);
}

void ring_chan_close(struct ring_chan *r)
{
    if (!r) {
        return;
    }
    r->dead = true;
    if (r->own.loop) {
        loop_close_fd(r->own.loop, &r->kick);
    }
    if (r->call_fd >= 0) {
        close(r->call_fd);
        r->call_fd = -1;
    }
    if (r->own.loop) {
        loop_defer(r->own.loop, &r->free_later, chan_finish, r);
    } else {
        ring_chan_free(r);
    }
}
