/*
 * sock.c - the v1 transport (chan/transport.h): owns each domain's device
 * connection over its unix socket: framing (wire.c), HELLO/HELLO_ACK,
 * the output buffer, and the connection generation.
 *
 * Everything a device sends is checked; a broken or hostile peer loses its
 * own connection (after an ERROR message where one can be sent) and
 * nothing else: other domains keep being served.  Whatever the device
 * claims in HELLO is logged and otherwise ignored: the answer is vm->id,
 * which xenstore decides (xsid.c keeps it current from watches: no
 * xenstore call is made for a message).
 *
 * No peer holds the loop: a connection handles at most CONN_MSGS_PER_TURN
 * messages per turn of the loop and reads at most once; what it has left
 * waits for its next turn (a timer armed for now, so every other ready fd
 * goes first).  HELLOs and refused requests cost a token of the domain's
 * cheap_rate bucket; with the bucket empty the connection is paused (not
 * read) until a token is back.  Log lines a peer causes go through
 * vm_peer_log_ok.  A message started and not finished within
 * CONN_MSG_STALL_MS closes its connection (a peer cannot park a half
 * message and the mediator's read state for ever).
 */
#include "transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../log.h"
#include "../wire.h"
#include "util.h"
#include "vgpu_protocol.h"

/* Messages one connection may have handled in one turn of the loop. */
#define CONN_MSGS_PER_TURN 16
/*
 * A HELLO of a domain xenstore has not answered for yet (just found, or
 * xenstore away) waits this long for the answer, its connection not read
 * meanwhile, so that a device starting with its domain is not answered
 * "unassigned" for the few milliseconds the read takes.  After it, the
 * domain is answered as it stands; the answer, when it comes, is pushed.
 */
#define CONN_HELLO_HOLD_MS 1000
/*
 * A message whose first bytes came must be whole this long after them, or
 * its connection is closed.  qemu-dm writes each message with one write of
 * at most VGPU_MSG_MAX_SIZE bytes, so the rest of a message is never more
 * than a scheduling delay behind its start; a peer that announces a length
 * and stalls is broken or hostile, and would otherwise hold its connection
 * half read for ever.  Generous, for a loaded dom0.
 */
#define CONN_MSG_STALL_MS 5000
#define CONN_STR_(x) #x
#define CONN_STR(x) CONN_STR_(x)

struct transport {
    struct loop *loop;
    const struct transport_events *ev;
    void *arg;
    uint64_t next_gen;           /* generation of the next connection */
    struct ring_config ring_cfg; /* what a v2 channel is offered */
};

/* Replies that may wait for a slow reader before it is cut off. */
#define CONN_OUT_MAX (4 * VGPU_MSG_MAX_SIZE)

struct conn {
    struct loop_handler h;
    struct transport *t;
    struct vm *vm;
    uint64_t gen;                /* this connection's generation (never 0) */
    struct loop_deferred finish; /* dead: freed after the batch */
    bool hello_done;
    bool dead;
    bool retired; /* its fd closed, its domain told (ev->ended) */
    bool want_write;
    bool paused;             /* out of cheap_rate tokens: not read */
    bool hello_held;         /* HELLO waits for the domain's identity */
    struct loop_timer turn;  /* its next turn: more buffered, or unpause */
    struct loop_timer stall; /* a half message: CONN_MSG_STALL_MS to finish */
    struct ring_chan *ring;  /* v2: the channel of SHM_REQ (chan/ring.c) */
    size_t in_len;
    size_t out_len;
    uint8_t in[VGPU_MSG_MAX_SIZE];
    uint8_t out[CONN_OUT_MAX];
};

static void conn_finish(void *arg);
static void conn_turn_due(void *arg);
static void conn_stall_due(void *arg);

/* The connection stops serving now and is freed after the batch. */
static void conn_kill(struct conn *c, const char *why)
{
    if (!c->dead) {
        if (vm_peer_log_ok(c->vm)) {
            log_info("dom%u: closing device connection: %s", c->vm->domid, why);
        }
        c->dead = true;
        loop_defer(c->t->loop, &c->finish, conn_finish, c);
        c->t->ev->changed(c->t->arg);
    }
}

/* The events c's fd is watched for now. */
static uint32_t conn_events(const struct conn *c)
{
    return (c->paused || c->hello_held ? 0 : EPOLLIN) |
           (c->want_write ? EPOLLOUT : 0);
}

static void conn_flush(struct transport *t, struct conn *c)
{
    size_t off = 0;

    while (off < c->out_len) {
        ssize_t n = send(c->h.fd, c->out + off, c->out_len - off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                conn_kill(c, strerror(errno));
                return;
            }
            break;
        }
        off += (size_t)n;
    }
    memmove(c->out, c->out + off, c->out_len - off);
    c->out_len -= off;
    if ((c->out_len > 0) != c->want_write) {
        c->want_write = c->out_len > 0;
        loop_mod(t->loop, &c->h, conn_events(c));
    }
}

static void conn_send(struct transport *t, struct conn *c, uint16_t type,
                      uint32_t request_id, uint32_t status, const void *payload,
                      uint32_t len)
{
    struct vgpu_msg_hdr hdr = {
        .type = type,
        .request_id = request_id,
        .vm_id = c->vm->id.vm_id,
        .status = status,
        .length = len,
    };
    size_t n;

    if (c->dead) {
        return;
    }
    n = wire_encode(c->out + c->out_len, sizeof(c->out) - c->out_len, &hdr,
                    payload);
    if (n == 0) {
        conn_kill(c, "device is not reading its replies");
        return;
    }
    c->out_len += n;
    conn_flush(t, c);
}

/* Tell the peer why it is being cut off, then cut it off. */
static void conn_fail(struct transport *t, struct conn *c, uint32_t error,
                      const char *why)
{
    if (vm_peer_log_ok(c->vm)) {
        log_warn("dom%u: protocol error from device: %s", c->vm->domid, why);
    }
    conn_send(t, c, VGPU_MSG_ERROR, 0, error, NULL, 0);
    conn_kill(c, why);
}

static void send_hello_ack(struct transport *t, struct conn *c)
{
    /* An unassigned domain's pool is "": all zero on the wire. */
    struct vgpu_msg_hello ack = vgpu_msg_hello_make(
        c->vm->id.pool, c->vm->id.priority, c->vm->id.vm_id, VGPU_CAPS_V1);
    uint8_t buf[VGPU_MSG_HELLO_SIZE];

    vgpu_msg_hello_pack(buf, &ack);
    conn_send(t, c, VGPU_MSG_HELLO_ACK, 0, VGPU_ERR_NONE, buf, sizeof(buf));
}

static void handle_hello(struct transport *t, struct conn *c,
                         const struct vgpu_msg_hdr *hdr, const uint8_t *body)
{
    struct vm *vm = c->vm;
    struct vgpu_msg_hello claim;
    char claimed_pool[VGPU_POOL_NAME_SIZE];

    if (hdr->length != VGPU_MSG_HELLO_SIZE) {
        conn_fail(t, c, VGPU_ERR_PROTOCOL, "HELLO of the wrong size");
        return;
    }
    /* The device's word is only logged: xenstore is the authority.  So a
     * claimed pool that is not a name is shown as "?", not refused. */
    vgpu_msg_hello_unpack(body, &claim);
    if (vgpu_pool_name_unpack(claim.pool, claimed_pool) < 0) {
        snprintf(claimed_pool, sizeof(claimed_pool), "?");
    }
    if (vm_peer_log_ok(vm)) {
        log_info("dom%u: device hello (claims pool %s priority %u vm-id %u); "
                 "serving as pool %s priority %s vm-id %u%s",
                 vm->domid, claimed_pool[0] ? claimed_pool : "-",
                 claim.priority, claim.vm_id,
                 vm->id.assigned ? vm->id.pool : "-",
                 vm->id.assigned ? vgpu_priority_name(vm->id.priority) : "-",
                 vm->id.vm_id, vm->id.assigned ? "" : " (not assigned)");
    }
    if (!vm->id_known) {
        c->hello_held = true;
        loop_mod(t->loop, &c->h, conn_events(c));
        loop_timer_arm(t->loop, &c->turn,
                       now_ns() + CONN_HELLO_HOLD_MS * 1000000ull,
                       conn_turn_due, c);
        return;
    }
    c->hello_done = true;
    send_hello_ack(t, c);
}

/* The held HELLO is answered: the identity came, or the wait ended. */
static void release_hello(struct transport *t, struct conn *c)
{
    c->hello_held = false;
    c->hello_done = true;
    send_hello_ack(t, c);
    if (!c->dead) {
        loop_mod(t->loop, &c->h, conn_events(c));
        /* What it sent after the HELLO was not read yet. */
        loop_timer_arm(t->loop, &c->turn, now_ns(), conn_turn_due, c);
    }
}

static void reply_error(struct transport *t, struct conn *c,
                        uint32_t request_id, uint32_t error)
{
    c->vm->failed++;
    /* A line not written must not spend the domain's log budget: a flood
     * of refusals would silence the line that says why it was cut off. */
    if (vgpu_log_wants(LOG_DEBUG) && vm_peer_log_ok(c->vm)) {
        log_debug("dom%u: request %u refused: %s", c->vm->domid, request_id,
                  vgpu_error_name(error));
    }
    conn_send(t, c, VGPU_MSG_RESPONSE, request_id, error, NULL, 0);
}

/* v2 (chan/ring.c): a message whose fds (SCM_RIGHTS) go with its first
 * byte, so whatever output waits must be gone first. */
static void conn_send_fds(struct transport *t, struct conn *c, uint16_t type,
                          uint32_t status, const void *payload, uint32_t len,
                          const int *fds, unsigned nfds)
{
    struct vgpu_msg_hdr hdr = {.type = type,
                               .vm_id = c->vm->id.vm_id,
                               .status = status,
                               .length = len};
    uint8_t buf[VGPU_MSG_HDR_SIZE + VGPU_SHM_OFFER_SIZE];
    char cbuf[CMSG_SPACE(sizeof(int) * VGPU_SHM_FDS)] = {0};
    struct iovec iov = {.iov_base = buf};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n;

    conn_flush(t, c);
    if (c->dead || c->out_len ||
        !(iov.iov_len = wire_encode(buf, sizeof(buf), &hdr, payload))) {
        conn_kill(c, "device is not reading its replies");
        return;
    }
    if (nfds) {
        struct cmsghdr *cm;

        msg.msg_control = cbuf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
    }
    do {
        n = sendmsg(c->h.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        conn_kill(c, strerror(errno));
        return;
    }
    memcpy(c->out, buf + n, iov.iov_len - (size_t)n); /* the fds went */
    c->out_len = iov.iov_len - (size_t)n;
    conn_flush(t, c);
}

static void conn_fail_v2(void *conn, const char *why)
{
    struct conn *c = conn;

    conn_fail(c->t, c, VGPU_ERR_PROTOCOL, why);
}

/* v2: SHM_REQ, answered with the channel (chan/ring.c) or a status. */
static void handle_shm_req(struct transport *t, struct conn *c,
                           const struct vgpu_msg_hdr *hdr, const uint8_t *body)
{
    struct ring_owner own = {.loop = t->loop,
                             .ev = t->ev,
                             .ev_arg = t->arg,
                             .vm = c->vm,
                             .gen = t->next_gen + 1,
                             .fail = conn_fail_v2,
                             .conn = c};
    struct ring_offer_msg offer;
    const char *why = NULL;

    if (!c->hello_done || ring_shm_req(&c->ring, &t->ring_cfg, &own, body,
                                       hdr->length, &offer, &why)) {
        conn_fail(t, c, VGPU_ERR_PROTOCOL, why ? why : "SHM_REQ before HELLO");
        return;
    }
    if (c->ring) {
        t->next_gen++; /* the channel's generation, never a connection's */
    }
    conn_send_fds(t, c, VGPU_MSG_SHM_OFFER, offer.status, offer.payload,
                  offer.len, offer.fds, offer.nfds);
    ring_offer_sent(&offer);
}

/* Handle one message: true when it was work without a GPU (a HELLO or a
 * refused request), which costs the domain a cheap_rate token. */
static bool handle_msg(struct transport *t, struct conn *c,
                       const struct vgpu_msg_hdr *hdr, const uint8_t *body)
{
    uint32_t err;

    switch (hdr->type) {
    case VGPU_MSG_HELLO:
        handle_hello(t, c, hdr, body);
        return true;
    case VGPU_MSG_REQUEST:
        if (!c->hello_done) {
            conn_fail(t, c, VGPU_ERR_PROTOCOL, "REQUEST before HELLO");
            return false;
        }
        err = t->ev->request(t->arg, c->vm, c->gen, hdr->request_id, body,
                             hdr->length);
        if (err) {
            reply_error(t, c, hdr->request_id, err);
            return true;
        }
        return false;
    case VGPU_MSG_SHM_REQ: /* v2 */
        handle_shm_req(t, c, hdr, body);
        return true;
    default:
        conn_fail(t, c, VGPU_ERR_PROTOCOL, "message type not for the mediator");
        return false;
    }
}

/* Does the receive buffer hold a whole message (or a bad one)? */
static bool conn_has_msg(const struct conn *c)
{
    struct vgpu_msg_hdr hdr;
    size_t frame_len;
    const char *why = NULL;

    return wire_frame(c->in, c->in_len, &hdr, &frame_len, &why) !=
           WIRE_NEED_MORE;
}

/*
 * Handle whole messages of the receive buffer, at most *budget of them,
 * and fewer once the domain's cheap_rate bucket is empty (the connection
 * is paused then).  True when it handled any (what is left starts a new
 * message).
 */
static bool conn_parse(struct transport *t, struct conn *c,
                       unsigned int *budget)
{
    uint64_t now = now_ns(); /* one clock read for the whole turn */
    size_t off = 0;

    while (!c->dead && !c->paused && !c->hello_held && *budget > 0) {
        struct vgpu_msg_hdr hdr;
        size_t frame_len;
        const char *why = NULL;
        enum wire_result r =
            wire_frame(c->in + off, c->in_len - off, &hdr, &frame_len, &why);

        if (r == WIRE_NEED_MORE) {
            break;
        }
        if (r == WIRE_BAD) {
            /* Another protocol version is a host that was half updated,
             * not a hostile peer: say so in words an operator acts on. */
            if (hdr.magic == VGPU_MSG_MAGIC &&
                hdr.version != VGPU_MSG_VERSION) {
                log_warn("dom%u: the device speaks socket protocol version "
                         "%u, this mediator %u: refused (update qemu-dm's "
                         "vgpu-stub and vgpu-mediator together)",
                         c->vm->domid, hdr.version, VGPU_MSG_VERSION);
            }
            conn_fail(t, c, VGPU_ERR_PROTOCOL, why);
            return off > 0;
        }
        /* Out of tokens: nothing more until one is back (whether this
         * message is cheap work is known only once handled). */
        if (!rate_has(&c->vm->cheap_rate, &domain_cheap_limit, now)) {
            c->paused = true;
            break;
        }
        (*budget)--;
        if (handle_msg(t, c, &hdr, c->in + off + VGPU_MSG_HDR_SIZE)) {
            rate_take(&c->vm->cheap_rate, &domain_cheap_limit, now);
        }
        off += frame_len;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return off > 0;
}

/* Read once: false when the connection ended. */
static bool conn_recv(struct conn *c)
{
    ssize_t n;

    if (c->in_len == sizeof(c->in)) {
        return true; /* a whole message is there: wire_frame said so */
    }
    do {
        n = recv(c->h.fd, c->in + c->in_len, sizeof(c->in) - c->in_len,
                 MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN) {
            conn_kill(c, strerror(errno));
            return false;
        }
        return true;
    }
    if (n == 0) {
        conn_kill(c, c->in_len ? "peer closed mid-message (truncated)"
                               : "peer closed the connection");
        return false;
    }
    c->in_len += (size_t)n;
    return true;
}

/*
 * After a turn: paused, the connection is not read until its bucket has a
 * token again; with whole messages still buffered it gets another turn
 * after every other ready fd has had this one.  Bytes still in the socket
 * need nothing: epoll is level-triggered.
 */
static void conn_schedule(struct transport *t, struct conn *c)
{
    uint64_t now = now_ns();

    if (c->dead) {
        return;
    }
    if (c->paused) {
        loop_mod(t->loop, &c->h, conn_events(c));
        loop_timer_arm(
            t->loop, &c->turn,
            rate_next_ns(&c->vm->cheap_rate, &domain_cheap_limit, now),
            conn_turn_due, c);
    } else if (conn_has_msg(c)) {
        loop_timer_arm(t->loop, &c->turn, now, conn_turn_due, c);
    }
}

/*
 * After a turn: only a half message in the buffer starts (or keeps) the
 * stall clock; whole messages waiting for a turn are the mediator's delay,
 * not the peer's.  consumed: messages were handled, so a half message
 * left now is a new one and its clock starts now.
 */
static void conn_watch_stall(struct transport *t, struct conn *c, bool consumed)
{
    if (c->dead) {
        return;
    }
    if (c->in_len == 0 || conn_has_msg(c)) {
        loop_timer_cancel(t->loop, &c->stall);
    } else if (consumed || !c->stall.armed) {
        loop_timer_arm(t->loop, &c->stall,
                       now_ns() + CONN_MSG_STALL_MS * 1000000ull,
                       conn_stall_due, c);
    }
}

static void conn_stall_due(void *arg)
{
    struct conn *c = arg;

    /* conn_kill logs it, within the domain's log limit. */
    conn_kill(c, "message not finished " CONN_STR(
                     CONN_MSG_STALL_MS) " ms after its start (stalled peer)");
}

/* One turn of reading: what is buffered first, then one recv. */
static void conn_serve(struct transport *t, struct conn *c)
{
    unsigned int budget = CONN_MSGS_PER_TURN;
    bool consumed = conn_parse(t, c, &budget);

    if (!c->dead && !c->paused && !c->hello_held && budget > 0 &&
        conn_recv(c)) {
        consumed |= conn_parse(t, c, &budget);
    }
    conn_watch_stall(t, c, consumed);
    if (!c->hello_held) {
        conn_schedule(t, c);
    }
}

static void conn_turn_due(void *arg)
{
    struct conn *c = arg;

    if (c->dead) {
        return;
    }
    if (c->hello_held) {
        release_hello(c->t, c);
        return;
    }
    if (c->paused) {
        if (!rate_has(&c->vm->cheap_rate, &domain_cheap_limit, now_ns())) {
            conn_schedule(c->t, c);
            return;
        }
        c->paused = false;
        loop_mod(c->t->loop, &c->h, conn_events(c));
    }
    conn_serve(c->t, c);
}

static void on_conn(struct loop_handler *h, uint32_t events)
{
    struct conn *c = h->arg;
    struct transport *t = c->t;

    if (c->dead) {
        return;
    }
    /* A turn already due (more buffered) is this turn: served here. */
    if ((events & EPOLLIN) && !c->paused && !c->hello_held) {
        loop_timer_cancel(t->loop, &c->turn);
        conn_serve(t, c);
    }
    if (!c->dead && (events & EPOLLOUT)) {
        conn_flush(t, c);
    }
    if (!c->dead && (events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN) &&
        !conn_has_msg(c)) {
        conn_kill(c, "connection hung up");
    }
}

/* The connection stops: its fd closed, its domain's queued work dropped. */
static void conn_retire(struct conn *c)
{
    if (!c->retired) {
        c->retired = true;
        c->t->ev->ended(c->t->arg, c->vm);
        loop_close_fd(c->t->loop, &c->h);
        ring_chan_close(c->ring); /* v2: freed after the batch */
        c->ring = NULL;
    }
}

/*
 * After the batch of its conn_kill.  Its domain is still there: a domain
 * removed kills its connection before its own free is deferred, and
 * deferred frees run in order.
 */
static void conn_finish(void *arg)
{
    struct conn *c = arg;

    loop_timer_cancel(c->t->loop, &c->turn);
    loop_timer_cancel(c->t->loop, &c->stall);
    conn_retire(c);
    if (c->vm->conn == c) {
        c->vm->conn = NULL;
    }
    free(c);
}

static void sock_attach(struct transport *t, struct vm *vm, int fd)
{
    struct conn *c;

    c = calloc(1, sizeof(*c));
    if (!c) {
        log_err("dom%u: out of memory for a connection", vm->domid);
        close(fd);
        return;
    }
    /* One device per domain: a new connection means qemu reconnected.
     * An event of the old one may still wait in this epoll batch, so it
     * is retired now and freed after the batch. */
    if (vm->conn) {
        conn_kill(vm->conn, "replaced by a new connection");
        conn_retire(vm->conn);
        vm->conn = NULL;
    }
    c->gen = ++t->next_gen;
    c->h.fd = fd;
    c->h.fn = on_conn;
    c->h.arg = c;
    c->t = t;
    c->vm = vm;
    if (loop_add(t->loop, &c->h, conn_events(c))) {
        close(fd);
        free(c);
        vm->conn = NULL;
        return;
    }
    vm->conn = c;
    t->ev->changed(t->arg);
    if (vm_peer_log_ok(vm)) {
        log_info("dom%u: device connected", vm->domid);
    }
}

static void sock_detach(struct transport *t, struct vm *vm)
{
    (void)t;
    if (vm->conn) {
        conn_kill(vm->conn, "domain going away");
        conn_retire(vm->conn);
    }
}

static bool sock_current(const struct vm *vm, uint64_t gen)
{
    return vm->conn && !vm->conn->dead &&
           (vm->conn->gen == gen ||
            (vm->conn->ring && ring_chan_gen(vm->conn->ring) == gen));
}

static bool sock_complete(struct transport *t, struct vm *vm, uint64_t gen,
                          uint32_t request_id, uint32_t status,
                          const void *payload, uint32_t len)
{
    struct conn *c = vm->conn;

    if (!sock_current(vm, gen)) {
        /* Never to another connection: a restarted qemu-dm reuses ids. */
        log_debug("dom%u: request %u finished after the connection that "
                  "sent it left: dropped",
                  vm->domid, request_id);
        vm->stale++;
        return false;
    }
    if (c->gen != gen) { /* v2: the connection's channel */
        return ring_chan_complete(c->ring, request_id, status, payload, len);
    }
    conn_send(t, c, VGPU_MSG_RESPONSE, request_id, status, payload,
              status ? 0 : len);
    return true;
}

static void sock_identity_changed(struct transport *t, struct vm *vm)
{
    struct conn *c = vm->conn;

    if (!c || c->dead) {
        return;
    }
    if (c->hello_held) {
        loop_timer_cancel(t->loop, &c->turn);
        release_hello(t, c);
    } else if (c->hello_done) {
        send_hello_ack(t, c);
    }
}

static bool sock_connected(const struct vm *vm)
{
    return vm->conn && !vm->conn->dead;
}

static int sock_open(struct transport **tp, struct loop *loop,
                     const struct ring_config *ring,
                     const struct transport_events *ev, void *arg)
{
    struct transport *t = calloc(1, sizeof(*t));

    if (!t) {
        return -1;
    }
    t->loop = loop;
    t->ev = ev;
    t->arg = arg;
    t->ring_cfg = *ring;
    *tp = t;
    return 0;
}

static void sock_close(struct transport *t)
{
    if (t) {
        loop_reap(t->loop); /* connections still to free name t */
        free(t);
    }
}

const struct transport_ops transport_sock = {
    .name = "sock",
    .open = sock_open,
    .close = sock_close,
    .attach = sock_attach,
    .detach = sock_detach,
    .current = sock_current,
    .complete = sock_complete,
    .identity_changed = sock_identity_changed,
    .connected = sock_connected,
};
