/*
 * shmdev.c - owns the simulated v2 device of shmdev.h: the SHM_REQ
 * exchange with its fds, the device's indices and chunk pool, the
 * streaming of requests and the assembly of responses, and the device's
 * half of adaptive polling.
 */
#include "shmdev.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static uint32_t *ctl(struct shmdev *d, uint32_t off)
{
    return (uint32_t *)(void *)(d->region + off);
}

static void kick(struct shmdev *d)
{
    uint64_t one = 1;

    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(ctl(d, VGPU_SHM_OFF_MED_SLEEPING), __ATOMIC_ACQUIRE)) {
        d->kicks++;
        if (write(d->kick, &one, sizeof(one)) < 0) {
            (void)errno;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* set-up                                                                  */
/* ---------------------------------------------------------------------- */

static int recv_offer(int sock, int timeout_ms, uint8_t *buf, size_t cap,
                      int fds[VGPU_SHM_FDS], unsigned *nfds)
{
    char cbuf[CMSG_SPACE(sizeof(int) * VGPU_SHM_FDS)];
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    struct pollfd p = {.fd = sock, .events = POLLIN};
    ssize_t n;

    *nfds = 0;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof(cbuf);
    if (poll(&p, 1, timeout_ms) != 1) {
        return -1;
    }
    /* The header and the offer come in one sendmsg: one recvmsg takes it
     * (a short read would be a mediator bug, reported as such). */
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) {
        return -1;
    }
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm;
         cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            unsigned k = (unsigned)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));

            for (unsigned i = 0; i < k && *nfds < VGPU_SHM_FDS; i++) {
                memcpy(&fds[(*nfds)++], CMSG_DATA(cm) + i * sizeof(int),
                       sizeof(int));
            }
        }
    }
    return (int)n;
}

int shmdev_open(struct shmdev *d, int sock, int timeout_ms, uint32_t *status,
                const char **why)
{
    uint8_t msg[VGPU_MSG_HDR_SIZE + VGPU_SHM_REQ_SIZE];
    uint8_t in[VGPU_MSG_HDR_SIZE + VGPU_SHM_OFFER_SIZE + 64];
    struct vgpu_msg_hdr h = vgpu_msg_hdr_make(VGPU_MSG_SHM_REQ, 0, 0, 0,
                                              VGPU_SHM_REQ_SIZE);
    int fds[VGPU_SHM_FDS] = {-1, -1, -1};
    unsigned nfds = 0;
    struct stat st;
    int n;

    memset(d, 0, sizeof(*d));
    d->sock = sock;
    d->region_fd = d->kick = d->call = -1;
    *status = VGPU_ERR_PROTOCOL;
    vgpu_msg_hdr_pack(msg, &h);
    vgpu_put_le32(msg + VGPU_MSG_HDR_SIZE, VGPU_SHM_VERSION);
    vgpu_put_le32(msg + VGPU_MSG_HDR_SIZE + 4, VGPU_CAPS_V2);
    if (send(sock, msg, sizeof(msg), MSG_NOSIGNAL) != (ssize_t)sizeof(msg)) {
        *why = "cannot send SHM_REQ";
        return -1;
    }
    n = recv_offer(sock, timeout_ms, in, sizeof(in), fds, &nfds);
    if (n < (int)VGPU_MSG_HDR_SIZE) {
        *why = "no answer to SHM_REQ";
        goto fail;
    }
    vgpu_msg_hdr_unpack(in, &h);
    if (vgpu_msg_hdr_check(&h) || h.type != VGPU_MSG_SHM_OFFER) {
        *why = h.type == VGPU_MSG_ERROR ? "ERROR instead of SHM_OFFER"
                                        : "not an SHM_OFFER";
        *status = h.status;
        goto fail;
    }
    *status = h.status;
    if (h.status != VGPU_ERR_NONE) {
        *why = "the mediator offers no channel";
        goto fail;
    }
    if (h.length != VGPU_SHM_OFFER_SIZE ||
        n != (int)(VGPU_MSG_HDR_SIZE + VGPU_SHM_OFFER_SIZE) ||
        nfds != VGPU_SHM_FDS) {
        *why = "SHM_OFFER without its payload or its three fds";
        goto fail;
    }
    vgpu_shm_offer_unpack(in + VGPU_MSG_HDR_SIZE, &d->o);
    if (fstat(fds[VGPU_SHM_FD_REGION], &st) ||
        (*why = vgpu_shm_offer_check(&d->o, (uint64_t)st.st_size))) {
        if (!*why) {
            *why = "fstat of the region failed";
        }
        goto fail;
    }
    d->region = mmap(NULL, d->o.region_size, PROT_READ | PROT_WRITE,
                     MAP_SHARED, fds[VGPU_SHM_FD_REGION], 0);
    if (d->region == MAP_FAILED) {
        d->region = NULL;
        *why = "cannot map the region";
        goto fail;
    }
    d->region_fd = fds[VGPU_SHM_FD_REGION];
    d->kick = fds[VGPU_SHM_FD_KICK];
    d->call = fds[VGPU_SHM_FD_CALL];
    d->req_free = calloc(d->o.req_chunks, sizeof(*d->req_free));
    d->reqs = calloc(d->o.max_inflight, sizeof(*d->reqs));
    if (!d->req_free || !d->reqs) {
        *why = "out of memory";
        shmdev_close(d);
        return -1;
    }
    for (uint32_t i = 0; i < d->o.req_chunks; i++) {
        d->req_free[d->nreq_free++] = d->o.req_chunks - 1 - i;
    }
    d->epoch = 1;
    d->next_seq = 1;
    return 0;

fail:
    for (unsigned i = 0; i < nfds; i++) {
        close(fds[i]);
    }
    return -1;
}

void shmdev_close(struct shmdev *d)
{
    if (d->region) {
        munmap(d->region, d->o.region_size);
    }
    if (d->region_fd >= 0) {
        close(d->region_fd);
    }
    if (d->kick >= 0) {
        close(d->kick);
    }
    if (d->call >= 0) {
        close(d->call);
    }
    free(d->req_free);
    free(d->reqs);
    d->region = NULL;
    d->req_free = NULL;
    d->reqs = NULL;
    d->region_fd = d->kick = d->call = -1;
}

/* ---------------------------------------------------------------------- */
/* the sub ring                                                            */
/* ---------------------------------------------------------------------- */

void shmdev_put_nopub(struct shmdev *d, const struct vgpu_shm_ent *e)
{
    uint32_t slot = d->sub_prod & (d->o.ring_entries - 1);

    vgpu_shm_ent_pack(d->region + d->o.sub_off +
                          (uint64_t)slot * VGPU_SHM_ENT_SIZE,
                      e);
    d->sub_prod++;
}

void shmdev_publish(struct shmdev *d)
{
    __atomic_store_n(ctl(d, VGPU_SHM_OFF_SUB_PROD), d->sub_prod,
                     __ATOMIC_RELEASE);
    kick(d);
}

void shmdev_put(struct shmdev *d, const struct vgpu_shm_ent *e)
{
    shmdev_put_nopub(d, e);
    shmdev_publish(d);
}

/* Room in the sub ring (the mediator's consumer index, as a device reads
 * it; a bad one is treated as no room). */
static uint32_t sub_room(struct shmdev *d)
{
    uint32_t cons =
        __atomic_load_n(ctl(d, VGPU_SHM_OFF_SUB_CONS), __ATOMIC_ACQUIRE);
    uint32_t used = d->sub_prod - cons;

    return used > d->o.ring_entries ? 0 : d->o.ring_entries - used;
}

/* Send what chunks and room allow, requests in order. */
static void stream(struct shmdev *d)
{
    bool any = false;
    uint32_t room = sub_room(d);

    while (d->send_head && d->nreq_free && room) {
        struct shmdev_req *q = d->send_head;
        uint32_t chunk = d->req_free[--d->nreq_free];
        uint64_t left = q->len - q->sent;
        uint32_t len =
            (uint32_t)(left < d->o.chunk_size ? left : d->o.chunk_size);
        struct vgpu_shm_ent e = {
            .kind = VGPU_SHM_REQ_DATA,
            .epoch = d->epoch,
            .seq = q->seq,
            .chunk = chunk,
            .len = len,
            .offset = q->sent,
        };

        memcpy(d->region + d->o.req_pool_off +
                   (uint64_t)chunk * d->o.chunk_size,
               q->src + q->sent, len);
        if (q->sent == 0) {
            e.flags |= VGPU_SHM_F_FIRST;
            e.total = q->len;
            e.resp_cap = q->resp_cap;
        }
        q->sent += len;
        if (q->sent == q->len) {
            e.flags |= VGPU_SHM_F_LAST;
            d->send_head = q->next_send;
            if (!d->send_head) {
                d->send_tail = NULL;
            }
        }
        shmdev_put_nopub(d, &e);
        room--;
        any = true;
    }
    if (any) {
        shmdev_publish(d);
    }
}

struct shmdev_req *shmdev_submit(struct shmdev *d, const void *req,
                                 uint64_t len, void *resp, uint64_t resp_cap)
{
    struct shmdev_req *q = NULL;

    for (uint32_t i = 0; i < d->o.max_inflight; i++) {
        if (!d->reqs[i].used) {
            q = &d->reqs[i];
            break;
        }
    }
    if (!q) {
        return NULL;
    }
    memset(q, 0, sizeof(*q));
    q->used = true;
    q->seq = d->next_seq++;
    if (d->next_seq == 0) {
        d->next_seq = 1;
    }
    q->src = req;
    q->len = len;
    q->resp = resp;
    q->resp_cap = resp_cap;
    d->nopen++;
    if (d->send_tail) {
        d->send_tail->next_send = q;
    } else {
        d->send_head = q;
    }
    d->send_tail = q;
    stream(d);
    return q;
}

static void unlink_send(struct shmdev *d, struct shmdev_req *q)
{
    struct shmdev_req **pp = &d->send_head, *prev = NULL;

    while (*pp && *pp != q) {
        prev = *pp;
        pp = &(*pp)->next_send;
    }
    if (*pp) {
        *pp = q->next_send;
        if (d->send_tail == q) {
            d->send_tail = prev;
        }
    }
}

void shmdev_cancel(struct shmdev *d, struct shmdev_req *q)
{
    struct vgpu_shm_ent e = {
        .kind = VGPU_SHM_CANCEL, .epoch = d->epoch, .seq = q->seq};

    unlink_send(d, q);
    if (q->used) {
        q->used = false;
        d->nopen--;
    }
    shmdev_put(d, &e);
}

/* ---------------------------------------------------------------------- */
/* the comp ring                                                           */
/* ---------------------------------------------------------------------- */

static struct shmdev_req *find(struct shmdev *d, uint32_t epoch, uint32_t seq)
{
    if (epoch != d->epoch) {
        return NULL;
    }
    for (uint32_t i = 0; i < d->o.max_inflight; i++) {
        if (d->reqs[i].used && d->reqs[i].seq == seq) {
            return &d->reqs[i];
        }
    }
    return NULL;
}

static int on_comp(struct shmdev *d, const struct vgpu_shm_ent *e,
                   const char **why)
{
    struct shmdev_req *q;

    switch (e->kind) {
    case VGPU_SHM_REQ_CHUNK_DONE:
        if (e->chunk >= d->o.req_chunks || d->nreq_free >= d->o.req_chunks) {
            *why = "REQ_CHUNK_DONE of a chunk not lent";
            return -1;
        }
        d->req_free[d->nreq_free++] = e->chunk;
        return 0;
    case VGPU_SHM_RESP_DATA: {
        struct vgpu_shm_ent back = {.kind = VGPU_SHM_RESP_CHUNK_DONE,
                                    .chunk = e->chunk};

        if (e->chunk >= d->o.resp_chunks || e->len > d->o.chunk_size) {
            *why = "RESP_DATA outside the response pool";
            return -1;
        }
        q = find(d, e->epoch, e->seq);
        if (q && !q->done) {
            if (e->flags & VGPU_SHM_F_FIRST) {
                q->resp_total = e->total;
            }
            if (e->offset != q->resp_got || q->resp_total > q->resp_cap ||
                e->offset + e->len > q->resp_total) {
                *why = "RESP_DATA out of order or past resp_cap";
                return -1;
            }
            memcpy(q->resp + e->offset,
                   d->region + d->o.resp_pool_off +
                       (uint64_t)e->chunk * d->o.chunk_size,
                   e->len);
            q->resp_got += e->len;
            if (e->flags & VGPU_SHM_F_LAST) {
                q->done = true;
                q->status = VGPU_ERR_NONE;
            }
        }
        shmdev_put_nopub(d, &back);
        return 1; /* publish later */
    }
    case VGPU_SHM_RESP_ERROR:
        q = find(d, e->epoch, e->seq);
        if (q && !q->done) {
            q->done = true;
            q->status = e->status;
            unlink_send(d, q);
        }
        return 0;
    default:
        *why = "unknown kind in the comp ring";
        return -1;
    }
}

/* Take what the comp ring holds: how many, or -1. */
static int drain(struct shmdev *d, const char **why)
{
    uint32_t prod =
        __atomic_load_n(ctl(d, VGPU_SHM_OFF_COMP_PROD), __ATOMIC_ACQUIRE);
    uint32_t n = prod - d->comp_cons;
    bool publish = false;

    if (n > d->o.ring_entries) {
        *why = "comp ring producer index outside the ring";
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint8_t raw[VGPU_SHM_ENT_SIZE];
        struct vgpu_shm_ent e;
        uint32_t slot = d->comp_cons & (d->o.ring_entries - 1);
        int r;

        memcpy(raw, d->region + d->o.comp_off +
                        (uint64_t)slot * VGPU_SHM_ENT_SIZE,
               sizeof(raw));
        vgpu_shm_ent_unpack(raw, &e);
        r = on_comp(d, &e, why);
        if (r < 0) {
            return -1;
        }
        publish |= r > 0;
        d->comp_cons++;
    }
    if (n) {
        __atomic_store_n(ctl(d, VGPU_SHM_OFF_COMP_CONS), d->comp_cons,
                         __ATOMIC_RELEASE);
    }
    if (publish) {
        shmdev_publish(d);
    }
    stream(d);
    return (int)n;
}

static bool comp_empty(struct shmdev *d)
{
    return __atomic_load_n(ctl(d, VGPU_SHM_OFF_COMP_PROD), __ATOMIC_ACQUIRE) ==
           d->comp_cons;
}

int shmdev_poll(struct shmdev *d, int timeout_ms, const char **why)
{
    uint64_t spin_end = now_ns() + (uint64_t)d->spin_us * 1000u;
    struct pollfd p[2] = {{.fd = d->call, .events = POLLIN},
                          {.fd = d->sock, .events = POLLIN}};
    uint64_t counter;
    int n = drain(d, why);

    if (n != 0) {
        return n;
    }
    while (now_ns() < spin_end) {
        if (!comp_empty(d)) {
            return drain(d, why);
        }
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    __atomic_store_n(ctl(d, VGPU_SHM_OFF_DEV_SLEEPING), 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (comp_empty(d)) {
        d->wakeups++;
        if (poll(p, 2, timeout_ms) > 0 && (p[1].revents & (POLLIN | POLLHUP))) {
            char junk[4096];

            /* Control messages (a new HELLO_ACK, an ERROR before the
             * close) are not this simulator's business: only the end. */
            if (recv(d->sock, junk, sizeof(junk), MSG_DONTWAIT) == 0) {
                *why = "the mediator closed the connection";
                __atomic_store_n(ctl(d, VGPU_SHM_OFF_DEV_SLEEPING), 0,
                                 __ATOMIC_RELEASE);
                return -1;
            }
        }
        if (read(d->call, &counter, sizeof(counter)) < 0) {
            (void)errno;
        }
    }
    __atomic_store_n(ctl(d, VGPU_SHM_OFF_DEV_SLEEPING), 0, __ATOMIC_RELEASE);
    return drain(d, why);
}

long shmdev_wait(struct shmdev *d, struct shmdev_req *q, int timeout_ms,
                 const char **why)
{
    uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000u;

    while (!q->done) {
        uint64_t now = now_ns();

        if (now >= end) {
            *why = "no answer in time";
            return -1;
        }
        if (shmdev_poll(d, (int)((end - now) / 1000000u) + 1, why) < 0) {
            return -1;
        }
    }
    q->used = false;
    d->nopen--;
    return q->status;
}
