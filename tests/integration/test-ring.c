/*
 * test-ring.c - integration test of the v2 channel (vgpu/shm.h) of the
 * real vgpu-mediator, played by simulated v2 devices (tests/lib/shmdev.c)
 * against the test xenstore server, as test-mediator.c does for v1.
 *
 * Cases: the offer and its fds, the memfd sealed (the peer's ftruncate
 * fails); a null VECTOR_ADD; a 64 MiB VECTOR_ADD streamed through the
 * chunk pools and checked bit for bit; many requests in flight; two
 * domains at once; CANCEL; a reconnect whose old completion must not
 * arrive; and hostile region contents (index jump, unknown kind, chunk out
 * of range, chunk named twice while lent, RESP_CHUNK_DONE of a chunk not
 * lent, len over the chunk size, an offset gap, total over max_xfer, more
 * than max_inflight open, seq 0, a second SHM_REQ), each of which must cut
 * off only that domain while the other keeps being served.
 *
 * Usage: test-ring [BUILD_DIR]   (default: the folder above this program's)
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xenstore.h>

#include "harness.h"
#include "shmdev.h"
#include "vgpu_protocol.h"

#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#endif
#ifndef F_SEAL_SEAL
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#endif

/* What the mediator is started with (and the test relies on). */
#define INFLIGHT 16
#define CHUNKS 32
#define CHUNK_KB 256

static int passed, failed;
static struct harness ctx;
static char qroot[PATH_MAX], mlog[PATH_MAX], no_pools[PATH_MAX];
static pid_t xs_pid = -1, med_pid = -1;
static struct xs_handle *xs;


/* ---------------------------------------------------------------------- */
/* processes and domains                                                   */
/* ---------------------------------------------------------------------- */

static pid_t start_mediator(void)
{
    char chunk_kb[16], chunks[16], inflight[16];
    pid_t pid;

    snprintf(chunk_kb, sizeof(chunk_kb), "%u", CHUNK_KB);
    snprintf(chunks, sizeof(chunks), "%u", CHUNKS);
    snprintf(inflight, sizeof(inflight), "%u", INFLIGHT);
    pid = fork();
    if (pid == 0) {
        int fd = open(mlog, O_WRONLY | O_CREAT | O_APPEND, 0644);

        dup2(fd, 2);
        execl(ctx.mediator_bin, ctx.mediator_bin, "--qemu-root", qroot, "--log",
              "stderr", "--verbose", "--status-file", "none", "--admin-socket",
              "none", "--pools", no_pools, "--shm-chunk-kb", chunk_kb,
              "--shm-chunks", chunks, "--shm-inflight", inflight, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void cleanup(void)
{
    harness_teardown(&ctx, &med_pid, &xs_pid, xs);
}

static void make_domain(uint32_t domid, const char *prio)
{
    harness_make_domain(&ctx, xs, qroot, domid, "A", prio);
}

static bool log_has(const char *text, int timeout_ms)
{
    return harness_file_has(mlog, text, timeout_ms);
}

/* Connect as domid's device and say HELLO: the socket, or -1. */
static int dev_hello(uint32_t domid)
{
    return harness_dev_hello(qroot, domid, 5000);
}

/* A v2 device of domid: HELLO, then the channel.  0, or -1 (said). */
static int dev_open(struct shmdev *d, uint32_t domid)
{
    const char *why = NULL;
    uint32_t status;
    int fd = dev_hello(domid);

    if (fd < 0) {
        printf("  dom%u: no connection\n", domid);
        return -1;
    }
    if (shmdev_open(d, fd, 5000, &status, &why)) {
        printf("  dom%u: no channel: %s (status %s)\n", domid, why,
               vgpu_error_name(status));
        close(fd);
        return -1;
    }
    return 0;
}

static void dev_close(struct shmdev *d)
{
    int fd = d->sock;

    shmdev_close(d);
    if (fd >= 0) {
        close(fd);
    }
}

/* Is the connection closed by the mediator (EOF within timeout)? */
static bool closed_by_peer(int fd)
{
    long end = harness_now_ms() + 5000;
    char buf[256];

    while (harness_now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, 200) != 1) {
            continue;
        }
        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------------------- */
/* requests                                                                */
/* ---------------------------------------------------------------------- */

/* A VECTOR_ADD of n elements: a[i] = seed * i + 1, b[i] = i ^ seed. */
static uint8_t *make_add(uint32_t n, uint32_t seed, uint64_t *len)
{
    uint64_t bytes = VGPU_VECTOR_ADD_REQ_LEN((uint64_t)n);
    uint8_t *buf = malloc(bytes);

    if (!buf) {
        return NULL;
    }
    vgpu_put_le32(buf, VGPU_OP_VECTOR_ADD);
    vgpu_put_le32(buf + 4, n);
    for (uint32_t i = 0; i < n; i++) {
        vgpu_put_le32(buf + 8 + 4 * (uint64_t)i, seed * i + 1);
        vgpu_put_le32(buf + 8 + 4 * ((uint64_t)n + i), i ^ seed);
    }
    *len = bytes;
    return buf;
}

/* Is resp the right answer to make_add(n, seed)? */
static bool add_ok(const uint8_t *resp, uint64_t len, uint32_t n, uint32_t seed)
{
    if (len != VGPU_VECTOR_ADD_RESP_LEN((uint64_t)n) ||
        vgpu_get_le32(resp) != VGPU_OP_VECTOR_ADD ||
        vgpu_get_le32(resp + 4) != n) {
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (vgpu_get_le32(resp + 8 + 4 * (uint64_t)i) !=
            (seed * i + 1) + (i ^ seed)) {
            return false;
        }
    }
    return true;
}

/* One VECTOR_ADD of n through d: true when answered right. */
static bool run_add(struct shmdev *d, uint32_t n, uint32_t seed, int timeout_ms)
{
    uint64_t len;
    uint8_t *req = make_add(n, seed, &len);
    uint64_t cap = VGPU_VECTOR_ADD_RESP_LEN((uint64_t)n);
    uint8_t *resp = malloc(cap);
    struct shmdev_req *q =
        req && resp ? shmdev_submit(d, req, len, resp, cap) : NULL;
    const char *why = NULL;
    long st = q ? shmdev_wait(d, q, timeout_ms, &why) : -1;
    bool ok = st == VGPU_ERR_NONE && add_ok(resp, q->resp_total, n, seed);

    if (!ok) {
        printf("  VECTOR_ADD n=%u: %s\n", n,
               st < 0 ? (why ? why : "not submitted")
                      : vgpu_error_name((uint32_t)st));
    }
    free(req);
    free(resp);
    return ok;
}

/* ---------------------------------------------------------------------- */
/* cases                                                                   */
/* ---------------------------------------------------------------------- */

static void case_offer_and_seal(void)
{
    struct shmdev d;
    int seals;

    printf("case: SHM_REQ gets the region and two eventfds; the memfd is "
           "sealed\n");
    if (dev_open(&d, 1)) {
        CHECK(false, "no channel");
        return;
    }
    CHECK(d.o.chunk_size == CHUNK_KB * 1024u && d.o.req_chunks == CHUNKS &&
              d.o.resp_chunks == CHUNKS && d.o.max_inflight == INFLIGHT,
          "offer %u x %u/%u, %u in flight", d.o.chunk_size, d.o.req_chunks,
          d.o.resp_chunks, d.o.max_inflight);
    CHECK(d.o.max_xfer == VGPU_XFER_DEFAULT, "max_xfer %llu",
          (unsigned long long)d.o.max_xfer);
    seals = fcntl(d.region_fd, F_GET_SEALS);
    CHECK(seals >= 0 && (seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) ==
                            (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
          "seals 0x%x", seals);
    errno = 0;
    CHECK(ftruncate(d.region_fd, 4096) < 0 && errno == EPERM,
          "shrinking the region was not refused (%s)", strerror(errno));
    errno = 0;
    CHECK(ftruncate(d.region_fd, (off_t)d.o.region_size * 2) < 0 &&
              errno == EPERM,
          "growing the region was not refused (%s)", strerror(errno));
    CHECK(fcntl(d.region_fd, F_ADD_SEALS, 0x0008) < 0,
          "the seals can be changed");
    CHECK(run_add(&d, 1, 100, 5000), "the region is not usable after that");
    dev_close(&d);
}

static void case_null_add(void)
{
    struct shmdev d;
    uint8_t req[16], resp[12];
    struct shmdev_req *q;
    const char *why = NULL;
    long st;

    printf("case: VECTOR_ADD 100 + 200 through the region is 300\n");
    if (dev_open(&d, 1)) {
        CHECK(false, "no channel");
        return;
    }
    vgpu_put_le32(req, VGPU_OP_VECTOR_ADD);
    vgpu_put_le32(req + 4, 1);
    vgpu_put_le32(req + 8, 100);
    vgpu_put_le32(req + 12, 200);
    q = shmdev_submit(&d, req, sizeof(req), resp, sizeof(resp));
    st = q ? shmdev_wait(&d, q, 5000, &why) : -1;
    CHECK(st == VGPU_ERR_NONE && q->resp_total == 12 &&
              vgpu_get_le32(resp + 8) == 300,
          "status %ld (%s), %u", st, why ? why : "-", vgpu_get_le32(resp + 8));
    /* A response over the device's room is an error, not an overflow. */
    q = shmdev_submit(&d, req, sizeof(req), resp, 11);
    st = q ? shmdev_wait(&d, q, 5000, &why) : -1;
    CHECK(st == VGPU_ERR_RESPONSE_TOO_LARGE, "resp_cap 11: %ld", st);
    /* An unknown opcode is refused as on v1, the channel stays. */
    vgpu_put_le32(req, 0xdead);
    q = shmdev_submit(&d, req, sizeof(req), resp, sizeof(resp));
    st = q ? shmdev_wait(&d, q, 5000, &why) : -1;
    CHECK(st == VGPU_ERR_BAD_OPCODE, "bad opcode: %ld", st);
    CHECK(run_add(&d, 3, 7, 5000), "the channel did not survive a refusal");
    dev_close(&d);
}

static void case_big(void)
{
    /* 8 Mi - 1 elements: a request of exactly 64 MiB, over 256 chunks. */
    const uint32_t n = (uint32_t)((VGPU_XFER_DEFAULT - 8) / 8);
    struct shmdev d;
    long t0;

    printf("case: a 64 MiB VECTOR_ADD streams through %u KiB chunks, "
           "checked bit for bit\n",
           CHUNK_KB);
    if (dev_open(&d, 1)) {
        CHECK(false, "no channel");
        return;
    }
    t0 = harness_now_ms();
    CHECK(run_add(&d, n, 0x9e3779b9u, 120000), "64 MiB VECTOR_ADD");
    printf("  (%ld ms)\n", harness_now_ms() - t0);
    CHECK(run_add(&d, 1, 5, 5000), "a small one after it");
    dev_close(&d);
}

static void case_many_in_flight(void)
{
    struct shmdev d, e;
    struct shmdev_req *q[INFLIGHT], *r[INFLIGHT];
    uint8_t *req[INFLIGHT], *rreq[INFLIGHT];
    uint8_t resp[INFLIGHT][8 + 4 * 300], rresp[INFLIGHT][8 + 4 * 300];
    uint64_t len;
    bool ok = true, ok2 = true;
    const char *why = NULL;

    printf("case: %u requests in flight on each of two domains at once\n",
           INFLIGHT);
    if (dev_open(&d, 1) || dev_open(&e, 2)) {
        CHECK(false, "no channel");
        return;
    }
    for (unsigned i = 0; i < INFLIGHT; i++) {
        req[i] = make_add(100 + i, i, &len);
        q[i] = shmdev_submit(&d, req[i], len, resp[i], sizeof(resp[i]));
        rreq[i] = make_add(200 + i, 1000 + i, &len);
        r[i] = shmdev_submit(&e, rreq[i], len, rresp[i], sizeof(rresp[i]));
        ok &= q[i] != NULL;
        ok2 &= r[i] != NULL;
    }
    CHECK(ok && ok2, "could not submit %u", INFLIGHT);
    CHECK(shmdev_submit(&d, req[0], 16, resp[0], 12) == NULL,
          "the simulator let more than max_inflight open");
    /* Poll both until every answer is in. */
    for (long end = harness_now_ms() + 20000; harness_now_ms() < end;) {
        bool all = true;

        for (unsigned i = 0; i < INFLIGHT; i++) {
            all &= (!q[i] || q[i]->done) && (!r[i] || r[i]->done);
        }
        if (all) {
            break;
        }
        if (shmdev_poll(&d, 5, &why) < 0 || shmdev_poll(&e, 5, &why) < 0) {
            break;
        }
    }
    for (unsigned i = 0; i < INFLIGHT; i++) {
        ok &= q[i] && q[i]->done && q[i]->status == 0 &&
              add_ok(resp[i], q[i]->resp_total, 100 + i, i);
        ok2 &= r[i] && r[i]->done && r[i]->status == 0 &&
               add_ok(rresp[i], r[i]->resp_total, 200 + i, 1000 + i);
        free(req[i]);
        free(rreq[i]);
    }
    CHECK(ok, "dom1's answers (%s)", why ? why : "wrong");
    CHECK(ok2, "dom2's answers (%s)", why ? why : "wrong");
    dev_close(&d);
    dev_close(&e);
}

static void case_cancel_and_reconnect(void)
{
    struct shmdev d;
    uint8_t sg[12], resp[16], add[16], aresp[12];
    struct shmdev_req *slow, *q;
    const char *why = NULL;
    long st;

    printf("case: CANCEL drops a request; a reconnect never gets the old "
           "channel's answer\n");
    if (dev_open(&d, 1)) {
        CHECK(false, "no channel");
        return;
    }
    vgpu_put_le32(sg, VGPU_OP_SGEMM);
    vgpu_put_le32(sg + 4, 512);
    vgpu_put_le32(sg + 8, 3);
    vgpu_put_le32(add, VGPU_OP_VECTOR_ADD);
    vgpu_put_le32(add + 4, 1);
    vgpu_put_le32(add + 8, 40);
    vgpu_put_le32(add + 12, 2);
    slow = shmdev_submit(&d, sg, sizeof(sg), resp, sizeof(resp));
    q = shmdev_submit(&d, add, sizeof(add), aresp, sizeof(aresp));
    CHECK(slow && q, "submit");
    if (!slow || !q) {
        dev_close(&d);
        return;
    }
    /* The add waits behind the SGEMM on the one GPU: cancel both. */
    harness_sleep_ms(20);
    shmdev_cancel(&d, q);
    shmdev_cancel(&d, slow);
    CHECK(run_add(&d, 2, 9, 20000), "a request after two cancels");
    /* The queued one never ran; the running one's answer was dropped. */
    CHECK(log_has("cancelled by the device before it ran", 5000),
          "the queued request was not dropped from the queue");
    CHECK(log_has("finished after the device gave it up: dropped", 20000),
          "the running request's answer was not dropped");
    /* Another SGEMM, and the device reconnects while it runs. */
    slow = shmdev_submit(&d, sg, sizeof(sg), resp, sizeof(resp));
    harness_sleep_ms(20);
    dev_close(&d);
    if (dev_open(&d, 1)) {
        CHECK(false, "no channel after a reconnect");
        return;
    }
    /* Its first request has seq 1 again, as the SGEMM had. */
    q = shmdev_submit(&d, add, sizeof(add), aresp, sizeof(aresp));
    st = q ? shmdev_wait(&d, q, 20000, &why) : -1;
    CHECK(st == VGPU_ERR_NONE && q->resp_total == 12 &&
              vgpu_get_le32(aresp + 8) == 42,
          "the new channel's seq 1: %ld, %u bytes, %u", st,
          q ? (unsigned)q->resp_total : 0, vgpu_get_le32(aresp + 8));
    CHECK(log_has("finished after the connection that sent it left", 20000),
          "the old channel's completion was not dropped as stale");
    dev_close(&d);
}

/* ---------------------------------------------------------------------- */
/* hostile region contents                                                 */
/* ---------------------------------------------------------------------- */

typedef void (*hostile_fn)(struct shmdev *d);

static void h_index_jump(struct shmdev *d)
{
    d->sub_prod += d->o.ring_entries + 1;
    shmdev_publish(d);
}

static void h_unknown_kind(struct shmdev *d)
{
    struct vgpu_shm_ent e = {.kind = 99, .epoch = 1, .seq = 1};

    shmdev_put(d, &e);
}

static struct vgpu_shm_ent piece(uint32_t seq, uint32_t chunk, uint32_t len,
                                 uint64_t offset, uint64_t total,
                                 uint16_t flags)
{
    struct vgpu_shm_ent e = {
        .kind = VGPU_SHM_REQ_DATA,
        .flags = flags,
        .epoch = 1,
        .seq = seq,
        .chunk = chunk,
        .len = len,
        .offset = offset,
        .total = total,
        .resp_cap = 64,
    };

    return e;
}

static void h_chunk_out_of_range(struct shmdev *d)
{
    struct vgpu_shm_ent e = piece(1, d->o.req_chunks, 16, 0, 16,
                                  VGPU_SHM_F_FIRST | VGPU_SHM_F_LAST);

    shmdev_put(d, &e);
}

static void h_chunk_twice(struct shmdev *d)
{
    struct vgpu_shm_ent a = piece(1, 3, 16, 0, 32, VGPU_SHM_F_FIRST);
    struct vgpu_shm_ent b = piece(2, 3, 16, 0, 32, VGPU_SHM_F_FIRST);

    shmdev_put_nopub(d, &a);
    shmdev_put_nopub(d, &b);
    shmdev_publish(d);
}

static void h_resp_chunk_not_lent(struct shmdev *d)
{
    struct vgpu_shm_ent e = {.kind = VGPU_SHM_RESP_CHUNK_DONE, .chunk = 0};

    shmdev_put(d, &e);
}

static void h_len_over_chunk(struct shmdev *d)
{
    struct vgpu_shm_ent e =
        piece(1, 0, d->o.chunk_size + 1, 0, d->o.chunk_size + 1,
              VGPU_SHM_F_FIRST | VGPU_SHM_F_LAST);

    shmdev_put(d, &e);
}

static void h_offset_gap(struct shmdev *d)
{
    struct vgpu_shm_ent a = piece(1, 0, 4096, 0, 16384, VGPU_SHM_F_FIRST);
    struct vgpu_shm_ent b = piece(1, 1, 4096, 4097, 16384, 0);

    shmdev_put_nopub(d, &a);
    shmdev_put_nopub(d, &b);
    shmdev_publish(d);
}

static void h_total_over_max(struct shmdev *d)
{
    struct vgpu_shm_ent e =
        piece(1, 0, 4096, 0, d->o.max_xfer + 1, VGPU_SHM_F_FIRST);

    shmdev_put(d, &e);
}

static void h_too_many_open(struct shmdev *d)
{
    for (uint32_t i = 0; i <= d->o.max_inflight; i++) {
        struct vgpu_shm_ent e = piece(i + 1, i, 8, 0, 16, VGPU_SHM_F_FIRST);

        shmdev_put_nopub(d, &e);
    }
    shmdev_publish(d);
}

static void h_seq_zero(struct shmdev *d)
{
    struct vgpu_shm_ent e =
        piece(0, 0, 16, 0, 16, VGPU_SHM_F_FIRST | VGPU_SHM_F_LAST);

    shmdev_put(d, &e);
}

static void h_last_missing(struct shmdev *d)
{
    struct vgpu_shm_ent e = piece(1, 0, 16, 0, 16, VGPU_SHM_F_FIRST);

    shmdev_put(d, &e);
}

static void h_second_shm_req(struct shmdev *d)
{
    uint8_t msg[VGPU_MSG_HDR_SIZE + VGPU_SHM_REQ_SIZE];
    struct vgpu_msg_hdr h =
        vgpu_msg_hdr_make(VGPU_MSG_SHM_REQ, 0, 0, 0, VGPU_SHM_REQ_SIZE);

    vgpu_msg_hdr_pack(msg, &h);
    vgpu_put_le32(msg + VGPU_MSG_HDR_SIZE, VGPU_SHM_VERSION);
    vgpu_put_le32(msg + VGPU_MSG_HDR_SIZE + 4, 0);
    harness_send_all(d->sock, msg, sizeof(msg));
}

static void h_comp_cons_jump(struct shmdev *d)
{
    /* The device's consumer index of the comp ring runs ahead of what
     * the mediator produced; the mediator sees it at its next output. */
    uint8_t req[16], resp[12];

    __atomic_store_n((uint32_t *)(void *)(d->region + VGPU_SHM_OFF_COMP_CONS),
                     0x80000000u, __ATOMIC_RELEASE);
    vgpu_put_le32(req, VGPU_OP_VECTOR_ADD);
    vgpu_put_le32(req + 4, 1);
    vgpu_put_le32(req + 8, 1);
    vgpu_put_le32(req + 12, 1);
    shmdev_submit(d, req, sizeof(req), resp, sizeof(resp));
}

static const struct {
    const char *name;
    hostile_fn fn;
    const char *logged;
} hostile[] = {
    {"sub ring index jump", h_index_jump,
     "sub ring producer index outside the ring"},
    {"unknown kind", h_unknown_kind, "unknown kind in a sub ring entry"},
    {"chunk out of range", h_chunk_out_of_range, "request chunk out of range"},
    {"chunk named twice while lent", h_chunk_twice,
     "request chunk named while lent to the mediator"},
    {"RESP_CHUNK_DONE of a chunk not lent", h_resp_chunk_not_lent,
     "response chunk given back while not lent"},
    {"len over the chunk size", h_len_over_chunk,
     "piece length 0 or over the chunk size"},
    {"offset gap", h_offset_gap,
     "piece not at the offset where the last ended"},
    {"total over max_xfer", h_total_over_max,
     "request total outside 8 .. max_xfer"},
    {"more than max_inflight open", h_too_many_open,
     "more than max_inflight requests open"},
    {"seq 0", h_seq_zero, "request seq 0"},
    {"the last piece without LAST", h_last_missing,
     "the request's last piece without LAST"},
    {"a second SHM_REQ", h_second_shm_req,
     "a second SHM_REQ on one connection"},
    {"comp ring consumer index jump", h_comp_cons_jump,
     "comp ring consumer index outside the ring"},
};

/* Each hostile case plays a domain of its own: the mediator's limit on
 * the log lines one domain causes (10/s, domain.c) would otherwise drop
 * the line a later case looks for. */
#define HOSTILE_DOM0 10u
#define N_HOSTILE (sizeof(hostile) / sizeof(hostile[0]))

static void case_hostile(void)
{
    struct shmdev good;

    printf("case: hostile region contents cut off only that domain\n");
    if (dev_open(&good, 2)) {
        CHECK(false, "no channel for dom2");
        return;
    }
    for (size_t i = 0; i < N_HOSTILE; i++) {
        uint32_t dom = HOSTILE_DOM0 + (uint32_t)i;
        struct shmdev bad;
        char want[160];

        printf("  hostile: %s (dom%u)\n", hostile[i].name, dom);
        if (dev_open(&bad, dom)) {
            CHECK(false, "no channel for dom%u", dom);
            continue;
        }
        hostile[i].fn(&bad);
        CHECK(closed_by_peer(bad.sock), "%s: dom%u was not cut off",
              hostile[i].name, dom);
        snprintf(want, sizeof(want), "dom%u: protocol error from device: %s",
                 dom, hostile[i].logged);
        CHECK(log_has(want, 3000), "%s: not logged as '%s'", hostile[i].name,
              hostile[i].logged);
        dev_close(&bad);
        CHECK(run_add(&good, 50 + (uint32_t)i, (uint32_t)i, 5000),
              "%s: dom2 was not served after it", hostile[i].name);
    }
    dev_close(&good);
}

/* Does d's mapped region hold the n bytes at pat anywhere? */
static bool region_has(const struct shmdev *d, const uint8_t *pat, size_t n)
{
    return memmem(d->region, d->o.region_size, pat, n) != NULL;
}

/*
 * Isolation of the v2 channel (issue 12, item 3): a domain's bytes are in
 * its own region only, a new channel of the same domain starts from a
 * region that holds nothing of the old one, and a domain naming another's
 * request (its seq, in a CANCEL of its own channel) touches nothing of it.
 */
static void case_isolation(void)
{
    const uint32_t n = 1u << 19; /* 4 MiB of operands, over many chunks */
    const uint64_t cap = VGPU_VECTOR_ADD_RESP_LEN((uint64_t)n);
    uint8_t *resp = malloc(cap), *req;
    struct shmdev a, b;
    struct shmdev_req *q;
    const char *why = NULL;
    uint8_t pat[32], rpat[32];
    uint64_t len;
    long st;

    printf("case: isolation: a domain's bytes stay in its region; a new "
           "channel has none of the old; another's seq is not its own\n");
    req = make_add(n, 0x5bd1e995u, &len);
    if (!resp || !req || dev_open(&a, 1)) {
        CHECK(false, "no channel for dom1");
        goto out;
    }
    if (dev_open(&b, 2)) {
        CHECK(false, "no channel for dom2");
        dev_close(&a);
        goto out;
    }
    /* 32 operand bytes from the middle: they passed through a chunk. */
    memcpy(pat, req + 8 + 4 * 300001ull, sizeof(pat));
    q = shmdev_submit(&a, req, len, resp, cap);
    st = q ? shmdev_wait(&a, q, 30000, &why) : -1;
    CHECK(st == VGPU_ERR_NONE && add_ok(resp, cap, n, 0x5bd1e995u),
          "dom1's 4 MiB VECTOR_ADD: %s",
          st < 0 ? (why ? why : "not submitted")
                 : vgpu_error_name((uint32_t)st));
    memcpy(rpat, resp + 8 + 4 * 300001ull, sizeof(rpat));
    /* The control: the scan does find what went through dom1's region. */
    CHECK(region_has(&a, pat, sizeof(pat)) &&
              region_has(&a, rpat, sizeof(rpat)),
          "control: dom1's request and response bytes not found in its own "
          "region");
    CHECK(!region_has(&b, pat, sizeof(pat)) &&
              !region_has(&b, rpat, sizeof(rpat)),
          "dom1's bytes are in dom2's region");

    /* dom2 cancels dom1's request by its seq, on its own channel. */
    memset(resp, 0, cap);
    q = shmdev_submit(&a, req, len, resp, cap);
    if (q) {
        struct vgpu_shm_ent e = {
            .kind = VGPU_SHM_CANCEL, .epoch = b.epoch, .seq = q->seq};

        shmdev_put(&b, &e);
    }
    st = q ? shmdev_wait(&a, q, 30000, &why) : -1;
    CHECK(st == VGPU_ERR_NONE && add_ok(resp, cap, n, 0x5bd1e995u),
          "dom1's request after dom2 named its seq: %s",
          st < 0 ? (why ? why : "not submitted")
                 : vgpu_error_name((uint32_t)st));
    dev_close(&b);

    /* dom1's next channel: a region without a byte of the last one. */
    dev_close(&a);
    if (dev_open(&a, 1)) {
        CHECK(false, "no second channel for dom1");
        goto out;
    }
    CHECK(!region_has(&a, pat, sizeof(pat)) &&
              !region_has(&a, rpat, sizeof(rpat)),
          "the new channel's region holds the old channel's bytes");
    CHECK(run_add(&a, 3, 9, 5000), "the new channel serves");
    dev_close(&a);
out:
    free(req);
    free(resp);
}

static void case_v1_still_works(void)
{
    uint8_t buf[64];
    struct harness_reply r;
    size_t n;
    int fd = dev_hello(2);

    printf("case: v1 requests still work, and stop at the 1 KiB buffer\n");
    if (fd < 0) {
        CHECK(false, "no connection");
        return;
    }
    n = harness_make_hdr(buf, VGPU_MSG_REQUEST, 1, 16);
    harness_put32(buf + n, VGPU_OP_VECTOR_ADD);
    harness_put32(buf + n + 4, 1);
    harness_put32(buf + n + 8, 100);
    harness_put32(buf + n + 12, 200);
    CHECK(harness_send_all(fd, buf, n + 16) &&
              harness_read_reply(fd, &r, 5000) == 0 &&
              r.status == VGPU_ERR_NONE && harness_get32(r.payload + 8) == 300,
          "v1 100 + 200");
    /* A count the v2 limit allows but not the v1 buffer. */
    n = harness_make_hdr(buf, VGPU_MSG_REQUEST, 2, 16);
    harness_put32(buf + n, VGPU_OP_VECTOR_ADD);
    harness_put32(buf + n + 4, 8u << 20);
    CHECK(harness_send_all(fd, buf, n + 16) &&
              harness_read_reply(fd, &r, 5000) == 0 &&
              r.status == VGPU_ERR_BAD_REQUEST,
          "v1 count 8M: %s", vgpu_error_name(r.status));
    close(fd);
}

/* ---------------------------------------------------------------------- */

static bool find_binaries(const char *argv0, const char *build)
{
    char self[PATH_MAX], dir[PATH_MAX];

    if (build) {
        snprintf(dir, sizeof(dir), "%s", build);
    } else {
        if (!realpath(argv0, self)) {
            snprintf(self, sizeof(self), "%s", argv0);
        }
        snprintf(dir, sizeof(dir), "%s", self);
        *strrchr(dir, '/') = '\0';
        *strrchr(dir, '/') = '\0';
    }
    return harness_init(&ctx, "", dir);
}

int main(int argc, char **argv)
{
    char xs_sock[PATH_MAX];

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (!find_binaries(argv[0], argc > 1 ? argv[1] : NULL)) {
        printf("SKIP: %s or %s not built\n", ctx.mediator_bin, ctx.xs_bin);
        return 77;
    }
    if (!harness_make_workdir(&ctx, "/tmp/vgpu-ringtest-XXXXXX")) {
        return 1;
    }
    atexit(cleanup);
    snprintf(qroot, sizeof(qroot), "%s/qemu", ctx.workdir);
    snprintf(mlog, sizeof(mlog), "%s/mediator.log", ctx.workdir);
    snprintf(xs_sock, sizeof(xs_sock), "%s/xenstored.sock", ctx.workdir);
    snprintf(no_pools, sizeof(no_pools), "%s/no-pools.conf", ctx.workdir);
    mkdir(qroot, 0755);
    xs = harness_open_xenstore(&ctx, xs_sock, &xs_pid);
    if (!xs) {
        return 1;
    }
    make_domain(1, "high");
    make_domain(2, "medium");
    for (uint32_t i = 0; i < N_HOSTILE; i++) {
        make_domain(HOSTILE_DOM0 + i, "low");
    }
    med_pid = start_mediator();

    case_offer_and_seal();
    case_null_add();
    case_v1_still_works();
    case_many_in_flight();
    case_big();
    case_cancel_and_reconnect();
    case_hostile();
    case_isolation();

    if (failed) {
        printf("--- mediator log (%s) ---\n", mlog);
        harness_print_file(mlog);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
