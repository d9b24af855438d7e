/*
 * ring.h - the mediator's side of the v2 channel (vgpu/shm.h): a shared
 * staging region and two eventfds that a device connection of the v1
 * socket (chan/sock.c) sets up with SHM_REQ, after which requests,
 * completions and payload bytes travel through the region and the socket
 * carries only control.
 *
 * A channel belongs to one connection and has a generation of its own
 * (from the transport's counter, so never that of a connection): jobs it
 * admits carry that generation, and a completion reaches the channel only
 * while its connection is the domain's live one (sock.c routes it).  The
 * channel ends with its connection; its region, its records and its fds
 * are freed after the loop's batch.
 *
 * Trust: everything in the region is the device's to rewrite at any time.
 * The channel reads each entry once into a private copy, then checks it
 * (ring_chan_consume): kind, flags, chunk number and its lending state,
 * length, offset, total, resp_cap, (epoch, seq) and the in-flight bound.
 * The first breach ends the connection through owner->fail (logged by
 * the owner, counted in vm->breaches) and nothing of the region is read
 * again.  No other domain is touched: each channel has its own region.
 *
 * Work per wakeup is bounded (cfg->budget entries, budget_bytes copied);
 * what is left makes the channel kick itself, so ready channels of other
 * domains are served in between.  Adaptive polling: after work, the
 * handler spins on the sub ring for at most spin_us, then sets
 * med_sleeping, issues a full barrier, reads the producer index once more
 * and sleeps on the kick eventfd.  It never spins in a wakeup that
 * admitted a request, so that dispatch runs at once.
 */
#ifndef VGPU_CHAN_RING_H
#define VGPU_CHAN_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "vgpu_protocol.h"

struct loop;
struct vm;
struct transport_events;
struct ring_chan;

/* The geometry and limits of every channel the mediator offers. */
struct ring_config {
    uint32_t ring_entries; /* each ring; 0: the least power of two >= 256
                            * that holds every entry that can be pending */
    uint32_t chunk_size;   /* bytes, a multiple of 4096 */
    uint32_t req_chunks;   /* the device's pool */
    uint32_t resp_chunks;  /* the mediator's pool */
    uint32_t max_inflight; /* requests a device may have open */
    uint64_t max_xfer;     /* bytes per request and per response */
    uint64_t held_max;     /* request + response bytes a channel may hold
                            * at once (0: 4 * max_xfer); more is refused
                            * with QUEUE_FULL, never allocated */
    uint32_t spin_us;      /* adaptive polling: spin this long while busy */
    uint32_t budget;       /* sub ring entries per wakeup */
    uint32_t budget_bytes; /* bytes copied per wakeup (at least a chunk) */
};

#define RING_DEFAULT_CHUNK_SIZE (256u << 10)
#define RING_DEFAULT_CHUNKS 32u
#define RING_DEFAULT_INFLIGHT 64u
#define RING_DEFAULT_SPIN_US 50u
#define RING_DEFAULT_BUDGET 64u
#define RING_DEFAULT_BUDGET_BYTES (4u << 20)

void ring_config_default(struct ring_config *c);
/* Fill in ring_entries and held_max when 0; NULL when c can be offered,
 * else why not. */
const char *ring_config_fix(struct ring_config *c);

/* Who owns a channel: a connection of chan/sock.c. */
struct ring_owner {
    struct loop *loop; /* NULL: ring_chan_open_mem (no fds, no loop) */
    const struct transport_events *ev; /* request_buf and cancel */
    void *ev_arg;
    struct vm *vm;
    uint64_t gen; /* the channel's generation */
    /* A breach: end the connection (why says what the device did). */
    void (*fail)(void *conn, const char *why);
    void *conn;
};

/* What the mediator answers to SHM_REQ. */
struct ring_offer_msg {
    uint32_t status; /* VGPU_ERR_NONE: the channel, with fds and payload */
    int fds[VGPU_SHM_FDS];
    unsigned nfds;
    uint8_t payload[VGPU_SHM_OFFER_SIZE];
    uint32_t len;
};

/*
 * SHM_REQ (len bytes at body) on a connection past HELLO whose channel is
 * *slot.  0: send out as SHM_OFFER (SCM_RIGHTS), then call
 * ring_offer_sent(out); *slot is the new channel when out->status is
 * NONE.  -1: a protocol error (a second SHM_REQ, a bad size): *why.
 */
int ring_shm_req(struct ring_chan **slot, const struct ring_config *cfg,
                 const struct ring_owner *own, const uint8_t *body,
                 uint32_t len, struct ring_offer_msg *out, const char **why);
/* The offer went (or could not): closes what only the device keeps. */
void ring_offer_sent(struct ring_offer_msg *out);

/* The channel's generation. */
uint64_t ring_chan_gen(const struct ring_chan *r);

/*
 * Deliver the completion of request token (its request_id upward):
 * streamed through response chunks, or RESP_ERROR.  False when the
 * request is no longer open (cancelled, its epoch gone): dropped and
 * counted in vm->stale.
 */
bool ring_chan_complete(struct ring_chan *r, uint32_t token, uint32_t status,
                        const void *payload, uint32_t len);

/* The connection ended: stop now, free after the batch. */
void ring_chan_close(struct ring_chan *r);

/* ---- the core without fds or loop: the unit tests and the fuzzer ---- */

/*
 * A channel over region (laid out as *offer says, which this fills in;
 * at least offer->region_size bytes, 4096-aligned, zeroed).
 */
int ring_chan_open_mem(struct ring_chan **rp, const struct ring_config *cfg,
                       const struct ring_owner *own, void *region,
                       struct vgpu_shm_offer *offer);
/*
 * Consume up to budget entries of the sub ring (and push what output
 * waits): how many, or -1 after a breach (ring_chan_breach says why).
 */
int ring_chan_consume(struct ring_chan *r, unsigned budget);
/* NULL, or why the channel ended. */
const char *ring_chan_breach(const struct ring_chan *r);
/* Requests open now. */
unsigned ring_chan_open_count(const struct ring_chan *r);
/* Free a channel of ring_chan_open_mem now. */
void ring_chan_free(struct ring_chan *r);

#endif
