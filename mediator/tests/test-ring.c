/*
 * test-ring.c - unit tests of the v2 channel's checks and its streaming
 * (chan/ring.c), on a region in memory (ring_chan_open_mem): no fds, no
 * loop.  The test plays the device: it writes entries into the sub ring
 * as given, publishes them, lets the channel consume, and reads what the
 * channel wrote into the comp ring.  A fake of the transport's events
 * stands for dispatch: it records every request admitted (with a copy of
 * its bytes) and every cancel.
 *
 * Every rule of vgpu/shm.h that the mediator checks has a case here that
 * breaks it and expects that breach (and nothing else); good sequences
 * are checked for exactly the entries the contract asks for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "chan/ring.h"
#include "chan/transport.h"
#include "domain.h"

/* ---------------------------------------------------------------------- */
/* the fake dispatch                                                       */
/* ---------------------------------------------------------------------- */

struct admitted {
    uint32_t token;
    uint32_t len;
    uint8_t *buf;
};

struct fake {
    uint32_t answer; /* what request_buf returns */
    unsigned nadmitted, ncancelled;
    struct admitted adm[64];
    uint32_t cancelled[64];
    const char *failed; /* owner->fail's why */
};

static uint32_t fake_request_buf(void *arg, struct vm *vm, uint64_t gen,
                                 uint32_t request_id, uint8_t *buf,
                                 uint32_t len, uint64_t max_bytes,
                                 unsigned max_queued)
{
    struct fake *f = arg;

    (void)vm;
    (void)gen;
    (void)max_bytes;
    (void)max_queued;
    if (f->answer || f->nadmitted == 64) {
        return f->answer ? f->answer : VGPU_ERR_QUEUE_FULL;
    }
    f->adm[f->nadmitted].token = request_id;
    f->adm[f->nadmitted].len = len;
    f->adm[f->nadmitted].buf = buf; /* ours now: freed at teardown */
    f->nadmitted++;
    return VGPU_ERR_NONE;
}

static void fake_cancel(void *arg, struct vm *vm, uint64_t gen,
                        uint32_t request_id)
{
    struct fake *f = arg;

    (void)vm;
    (void)gen;
    if (f->ncancelled < 64) {
        f->cancelled[f->ncancelled++] = request_id;
    }
}

static const struct transport_events fake_events = {
    .request_buf = fake_request_buf,
    .cancel = fake_cancel,
};

static void fake_fail(void *conn, const char *why)
{
    struct fake *f = conn;

    f->failed = why;
}

/* ---------------------------------------------------------------------- */
/* the test's device                                                       */
/* ---------------------------------------------------------------------- */

struct t {
    struct fake f;
    struct vm vm;
    struct ring_config cfg;
    struct vgpu_shm_offer o;
    uint8_t *region;
    struct ring_chan *r;
    uint32_t sub_prod, comp_cons;
};

static uint32_t *ctl(struct t *t, uint32_t off)
{
    return (uint32_t *)(void *)(t->region + off);
}

static void put(struct t *t, const struct vgpu_shm_ent *e)
{
    uint32_t slot = t->sub_prod & (t->o.ring_entries - 1);

    vgpu_shm_ent_pack(t->region + t->o.sub_off + slot * VGPU_SHM_ENT_SIZE, e);
    t->sub_prod++;
    *ctl(t, VGPU_SHM_OFF_SUB_PROD) = t->sub_prod;
}

/* The next comp ring entry, or false when there is none. */
static bool take(struct t *t, struct vgpu_shm_ent *e)
{
    uint32_t slot = t->comp_cons & (t->o.ring_entries - 1);

    if (*ctl(t, VGPU_SHM_OFF_COMP_PROD) == t->comp_cons) {
        return false;
    }
    vgpu_shm_ent_unpack(t->region + t->o.comp_off + slot * VGPU_SHM_ENT_SIZE,
                        e);
    t->comp_cons++;
    *ctl(t, VGPU_SHM_OFF_COMP_CONS) = t->comp_cons;
    return true;
}

static struct vgpu_shm_ent piece(uint32_t seq, uint32_t chunk, uint32_t len,
                                 uint64_t offset, uint64_t total,
                                 uint16_t flags)
{
    struct vgpu_shm_ent e = {
        .kind = VGPU_SHM_REQ_DATA,
        .flags = flags,
        .epoch = 7,
        .seq = seq,
        .chunk = chunk,
        .len = len,
        .offset = offset,
        .total = total,
        .resp_cap = 4096,
    };

    return e;
}

static uint8_t *chunk_at(struct t *t, uint64_t pool, uint32_t chunk)
{
    return t->region + pool + (uint64_t)chunk * t->o.chunk_size;
}

static struct t *setup_with(uint32_t chunk_kb, uint32_t chunks,
                            uint32_t inflight, uint64_t max_xfer)
{
    struct t *t = calloc(1, sizeof(*t));
    struct ring_owner own;

    assert_non_null(t);
    ring_config_default(&t->cfg);
    t->cfg.chunk_size = chunk_kb << 10;
    t->cfg.req_chunks = t->cfg.resp_chunks = chunks;
    t->cfg.max_inflight = inflight;
    t->cfg.max_xfer = max_xfer;
    assert_null(ring_config_fix(&t->cfg));
    t->vm.domid = 9;
    memset(&own, 0, sizeof(own));
    own.ev = &fake_events;
    own.ev_arg = &t->f;
    own.vm = &t->vm;
    own.gen = 5;
    own.fail = fake_fail;
    own.conn = &t->f;
    /* Size it from a dry layout: open once on a large buffer. */
    t->region = aligned_alloc(4096, 64u << 20);
    assert_non_null(t->region);
    memset(t->region, 0, 64u << 20);
    assert_int_equal(ring_chan_open_mem(&t->r, &t->cfg, &own, t->region,
                                        &t->o),
                     0);
    assert_true(t->o.region_size <= (64u << 20));
    assert_null(vgpu_shm_offer_check(&t->o, t->o.region_size));
    return t;
}

static int setup(void **state)
{
    *state = setup_with(4, 4, 4, 1u << 20);
    return 0;
}

static int teardown(void **state)
{
    struct t *t = *state;

    ring_chan_free(t->r);
    for (unsigned i = 0; i < t->f.nadmitted; i++) {
        free(t->f.adm[i].buf);
    }
    free(t->region);
    free(t);
    return 0;
}

/* Consume and expect that breach (NULL: none). */
static void expect(struct t *t, const char *why)
{
    int n = ring_chan_consume(t->r, 1000);

    if (why) {
        assert_int_equal(n, -1);
        assert_non_null(t->f.failed);
        assert_string_equal(t->f.failed, why);
        assert_string_equal(ring_chan_breach(t->r), why);
        assert_int_equal(t->vm.breaches, 1);
        /* Nothing more is read once it broke. */
        assert_int_equal(ring_chan_consume(t->r, 1000), -1);
    } else {
        assert_true(n >= 0);
        assert_null(t->f.failed);
    }
}

/* ---------------------------------------------------------------------- */
/* good sequences                                                          */
/* ---------------------------------------------------------------------- */

static void test_one_piece(void **state)
{
    struct t *t = *state;
    struct vgpu_shm_ent e = piece(1, 2, 16, 0, 16,
                                  VGPU_SHM_F_FIRST | VGPU_SHM_F_LAST);
    struct vgpu_shm_ent c;

    memcpy(chunk_at(t, t->o.req_pool_off, 2), "0123456789abcdef", 16);
    put(t, &e);
    expect(t, NULL);
    assert_int_equal(*ctl(t, VGPU_SHM_OFF_SUB_CONS), 1);
    assert_int_equal(t->f.nadmitted, 1);
    assert_int_equal(t->f.adm[0].len, 16);
    assert_memory_equal(t->f.adm[0].buf, "0123456789abcdef", 16);
    assert_true(take(t, &c));
    assert_int_equal(c.kind, VGPU_SHM_REQ_CHUNK_DONE);
    assert_int_equal(c.chunk, 2);
    assert_false(take(t, &c));
    assert_int_equal(ring_chan_open_count(t->r), 1);
}

static void test_streamed_and_answered(void **state)
{
    struct t *t = *state;
    const uint32_t cs = t->o.chunk_size;
    const uint64_t total = 3 * (uint64_t)cs + 100;
    uint8_t *resp = malloc(6 * cs), got[6 * 4096];
    struct vgpu_shm_ent c;
    uint64_t off = 0, rgot = 0;
    unsigned pieces = 0, data = 0;

    assert_non_null(resp);
    /* Four pieces, each its own chunk, the chunks used again as they come
     * back. */
    while (off < total) {
        uint32_t len = (uint32_t)(total - off < cs ? total - off : cs);
        uint16_t fl = (off == 0 ? VGPU_SHM_F_FIRST : 0) |
                      (off + len == total ? VGPU_SHM_F_LAST : 0);
        struct vgpu_shm_ent e = piece(3, pieces % 2, len, off, total, fl);

        memset(chunk_at(t, t->o.req_pool_off, pieces % 2), 'a' + (int)pieces,
               len);
        put(t, &e);
        expect(t, NULL);
        assert_true(take(t, &c));
        assert_int_equal(c.kind, VGPU_SHM_REQ_CHUNK_DONE);
        assert_int_equal(c.chunk, pieces % 2);
        off += len;
        pieces++;
    }
    assert_int_equal(t->f.nadmitted, 1);
    assert_int_equal(t->f.adm[0].len, total);
    assert_int_equal(t->f.adm[0].buf[0], 'a');
    assert_int_equal(t->f.adm[0].buf[total - 1], 'd');
    /* A response of 5 chunks and a bit through 4 response chunks. */
    for (unsigned i = 0; i < 5 * cs + 10; i++) {
        resp[i] = (uint8_t)(i * 7);
    }
    /* resp_cap is 4096 in piece(): too small, so RESPONSE_TOO_LARGE. */
    assert_true(ring_chan_complete(t->r, t->f.adm[0].token, VGPU_ERR_NONE,
                                   resp, 5 * cs + 10));
    assert_true(take(t, &c));
    assert_int_equal(c.kind, VGPU_SHM_RESP_ERROR);
    assert_int_equal(c.status, VGPU_ERR_RESPONSE_TOO_LARGE);
    assert_int_equal(c.seq, 3);
    assert_int_equal(c.epoch, 7);
    assert_int_equal(ring_chan_open_count(t->r), 0);
    /* Again with room for it. */
    {
        struct vgpu_shm_ent e =
            piece(4, 0, 16, 0, 16, VGPU_SHM_F_FIRST | VGPU_SHM_F_LAST);

        e.resp_cap = 6 * cs;
        put(t, &e);
        expect(t, NULL);
        assert_true(take(t, &c)); /* its chunk back */
    }
    assert_true(ring_chan_complete(t->r, t->f.adm[1].token, VGPU_ERR_NONE,
                                   resp, 5 * cs + 10));
    memset(resp, 0, 6 * cs); /* the channel kept its own copy */
    while (rgot < 5 * cs + 10) {
        if (!take(t, &c)) {
            /* Out of response chunks: give back what was copied. */
            expect(t, NULL);
            assert_true(take(t, &c));
        }
        assert_int_equal(c.kind, VGPU_SHM_RESP_DATA);
        assert_int_equal(c.seq, 4);
        assert_int_equal(c.offset, rgot);
        if (rgot == 0) {
            assert_true(c.flags & VGPU_SHM_F_FIRST);
            assert_int_equal(c.total, 5 * cs + 10);
        }
        memcpy(got + rgot, chunk_at(t, t->o.resp_pool_off, c.chunk), c.len);
        rgot += c.len;
        assert_int_equal(!!(c.flags & VGPU_SHM_F_LAST), rgot == 5 * cs + 10);
        {
            struct vgpu_shm_ent back = {.kind = VGPU_SHM_RESP_CHUNK_DONE,
                                        .chunk = c.chunk};

            put(t, &back);
        }
        data++;
    }
    assert_int_equal(data, 6);
    for (unsigned i = 0; i < 5 * cs + 10; i++) {
        assert_int_equal(got[i], (uint8_t)(i * 7));
    }
    expect(t, NULL);
    assert_int_equal(ring_chan_open_count(t->r), 0);
    /* A completion of a request no longer open is dropped and counted. */
    assert_false(ring_chan_complete(t->r, t->f.adm[1].token, VGPU_ERR_NONE,
                                    resp, 8));
    assert_int_equal(t->vm.stale, 1);
    free(resp);
}

static void test_refused_and_error(void **state)
{
    struct t *t = *state;
    struct vgpu_shm_ent e = piece(1, 0, 16, 0, 16,
                                  VGPU_SHM_F_FIRST | VGPU_SHM_F_LAST);
    struct vgpu_shm_ent c;

    t->f.answer = VGPU_ERR_BAD_OPCODE;
    put(t, &e);
    expect(t, NULL);
    assert_true(take(t, &c));
    assert_int_equal(c.kind, VGPU_SHM_REQ_CHUNK_DONE);
    assert_true(take(t, &c));
    assert_int_equal(c.kind, VGPU_SHM_RESP_ERROR);
    assert_int_equal(c.status, VGPU_ERR_BAD_OPCODE);
    assert_int_equal(t->vm.failed, 1);
    assert_int_equal(ring_chan_open_count(t->r), 0);
    /* The backend's error is a RESP_ERROR too. */
    t->f.answer = 0;
    e.seq = 2;
    put(t, &e);
    expect(t, NULL);
    assert_true(take(t, &c));
    assert_true(ring_chan_complete(t->r, t->f.adm[0].token, VGPU_ERR_BACKEND,
                                   NULL, 0));
    assert_true(take(t, &c));
    assert_int_equal(c.kind, VGPU_SHM_RESP_ERROR);
    assert_int_equal(c.status, VGPU_ERR_BACKEND);
    assert_int_equal(c.seq, 2);
}

static void test_cancel_and_epoch(void **state)
{
    struct t *t = *state;
    struct vgpu_shm_ent a = piece(1, 0, 8, 0, 16, VGPU_SHM_F_FIRST);
    struct vgpu_shm_ent b = piece(2, 1, 16, 0, 16,
                                  VGPU_SHM_F_FIRST | VGPU_SHM_F_LAST);
    struct vgpu_shm_ent cancel = {.kind = VGPU_SHM_CANCEL, .epoch = 7};

    put(t, &a);
    put(t, &b);
    expect(t, NULL);
    assert_int_equal(ring_chan_open_count(t->r), 2);
    /* CANCEL of the one being sent, and of one that never was. */
    cancel.seq = 1;
    put(t, &cancel);
    cancel.seq = 99;
    put(t, &cancel);
    expect(t, NULL);
    assert_int_equal(ring_chan_open_count(t->r), 1);
    assert_int_equal(t->f.ncancelled, 0); /* it never reached dispatch */
    /* A new epoch: the old one's admitted request goes, dispatch told. */
    a = piece(1, 2, 16, 0, 16, VGPU_SHM_F_FIRST | VGPU_SHM_F_LAST);
    a.epoch = 8;
    put(t, &a);
    expect(t, NULL);
    assert_int_equal(t->f.ncancelled, 1);
    assert_int_equal(t->f.cancelled[0], t->f.adm[0].token);
    assert_int_equal(ring_chan_open_count(t->r), 1);
    /* Its answer, should it come, is dropped. */
    assert_false(
        ring_chan_complete(t->r, t->f.adm[0].token, VGPU_ERR_NONE, "x", 1));
    assert_true(
        ring_chan_complete(t->r, t->f.adm[1].token, VGPU_ERR_BACKEND, NULL, 0));
    /* A piece of the cancelled request is now a breach. */
    a = piece(1, 3, 8, 8, 16, VGPU_SHM_F_LAST);
    put(t, &a);
    expect(t, "piece of a request that is not being sent");
}

static void test_held_max_refuses(void **state)
{
    struct t *t = *state;
    struct vgpu_shm_ent e;
    struct vgpu_shm_ent c;
    uint64_t big = t->o.max_xfer; /* total + resp_cap over 4 * max_xfer */

    /* Three requests of max_xfer with resp_cap max_xfer: 6x, over 4x. */
    for (uint32_t s = 1; s <= 3; s++) {
        e = piece(s, s - 1, 8, 0, big, VGPU_SHM_F_FIRST);
        e.resp_cap = big;
        put(t, &e);
    }
    expect(t, NULL);
    /* The third is swallowed: its last piece gets QUEUE_FULL. */
    e = piece(3, 3, (uint32_t)(t->o.chunk_size), 8, big, 0);
    for (uint64_t off = 8; off < big; off += e.len) {
        e.offset = off;
        e.len = (uint32_t)(big - off < t->o.chunk_size ? big - off
                                                       : t->o.chunk_size);
        e.flags = off + e.len == big ? VGPU_SHM_F_LAST : 0;
        e.chunk = 3;
        while (take(t, &c)) {
        }
        put(t, &e);
        expect(t, NULL);
    }
    do {
        assert_true(take(t, &c));
    } while (c.kind == VGPU_SHM_REQ_CHUNK_DONE);
    assert_int_equal(c.kind, VGPU_SHM_RESP_ERROR);
    assert_int_equal(c.seq, 3);
    assert_int_equal(c.status, VGPU_ERR_QUEUE_FULL);
    assert_int_equal(t->f.nadmitted, 0);
}

/* ---------------------------------------------------------------------- */
/* breaches                                                                */
/* ---------------------------------------------------------------------- */

#define BREACH_TEST(name, why, ...)                                            \
    static void test_##name(void **state)                                      \
    {                                                                          \
        struct t *t = *state;                                                  \
        __VA_ARGS__;                                                           \
        expect(t, why);                                                        \
    }

BREACH_TEST(index_jump, "sub ring producer index outside the ring",
            *ctl(t, VGPU_SHM_OFF_SUB_PROD) = t->o.ring_entries + 1)
BREACH_TEST(unknown_kind, "unknown kind in a sub ring entry",
            struct vgpu_shm_ent e = {.kind = 0};
            put(t, &e))
BREACH_TEST(comp_kind_on_sub, "unknown kind in a sub ring entry",
            struct vgpu_shm_ent e = {.kind = VGPU_SHM_RESP_DATA};
            put(t, &e))
BREACH_TEST(unknown_flags, "unknown flags in a sub ring entry",
            struct vgpu_shm_ent e = piece(1, 0, 16, 0, 16, 7);
            put(t, &e))
BREACH_TEST(chunk_out_of_range, "request chunk out of range",
            struct vgpu_shm_ent e = piece(1, 4, 16, 0, 16, 3);
            put(t, &e))
BREACH_TEST(chunk_huge, "request chunk out of range",
            struct vgpu_shm_ent e = piece(1, 0xffffffffu, 16, 0, 16, 3);
            put(t, &e))
BREACH_TEST(chunk_twice, "request chunk named while lent to the mediator",
            struct vgpu_shm_ent a = piece(1, 1, 8, 0, 16, 1);
            struct vgpu_shm_ent b = piece(1, 1, 8, 8, 16, 2);
            put(t, &a); put(t, &b))
BREACH_TEST(resp_chunk_not_lent, "response chunk given back while not lent",
            struct vgpu_shm_ent e = {.kind = VGPU_SHM_RESP_CHUNK_DONE};
            put(t, &e))
BREACH_TEST(resp_chunk_out_of_range, "response chunk out of range",
            struct vgpu_shm_ent e = {.kind = VGPU_SHM_RESP_CHUNK_DONE,
                                     .chunk = 4};
            put(t, &e))
BREACH_TEST(len_zero, "piece length 0 or over the chunk size",
            struct vgpu_shm_ent e = piece(1, 0, 0, 0, 16, 1);
            put(t, &e))
BREACH_TEST(len_over_chunk, "piece length 0 or over the chunk size",
            struct vgpu_shm_ent e = piece(1, 0, 4097, 0, 8192, 1);
            put(t, &e))
BREACH_TEST(first_not_at_0, "first piece not at offset 0",
            struct vgpu_shm_ent e = piece(1, 0, 8, 8, 16, 1);
            put(t, &e))
BREACH_TEST(offset_gap, "piece not at the offset where the last ended",
            struct vgpu_shm_ent a = piece(1, 0, 8, 0, 32, 1);
            struct vgpu_shm_ent b = piece(1, 1, 8, 9, 32, 0);
            put(t, &a); put(t, &b))
BREACH_TEST(offset_back, "piece not at the offset where the last ended",
            struct vgpu_shm_ent a = piece(1, 0, 8, 0, 32, 1);
            struct vgpu_shm_ent b = piece(1, 1, 8, 0, 32, 0);
            put(t, &a); put(t, &b))
BREACH_TEST(past_total, "piece past the request's total",
            struct vgpu_shm_ent e = piece(1, 0, 17, 0, 16, 3);
            put(t, &e))
BREACH_TEST(last_early, "LAST on a piece that does not end the request",
            struct vgpu_shm_ent e = piece(1, 0, 8, 0, 16, 3);
            put(t, &e))
BREACH_TEST(last_missing, "the request's last piece without LAST",
            struct vgpu_shm_ent e = piece(1, 0, 16, 0, 16, 1);
            put(t, &e))
BREACH_TEST(total_small, "request total outside 8 .. max_xfer",
            struct vgpu_shm_ent e = piece(1, 0, 4, 0, 4, 3);
            put(t, &e))
BREACH_TEST(total_big, "request total outside 8 .. max_xfer",
            struct vgpu_shm_ent e = piece(1, 0, 8, 0, (1u << 20) + 1, 1);
            put(t, &e))
BREACH_TEST(resp_cap_big, "resp_cap over max_xfer",
            struct vgpu_shm_ent e = piece(1, 0, 16, 0, 16, 3);
            e.resp_cap = (1u << 20) + 1; put(t, &e))
BREACH_TEST(seq_zero, "request seq 0",
            struct vgpu_shm_ent e = piece(0, 0, 16, 0, 16, 3);
            put(t, &e))
BREACH_TEST(seq_reused, "seq of a request still open named again",
            struct vgpu_shm_ent a = piece(5, 0, 8, 0, 16, 1);
            struct vgpu_shm_ent b = piece(5, 1, 8, 0, 16, 1);
            put(t, &a); put(t, &b))
BREACH_TEST(too_many_open, "more than max_inflight requests open",
            for (uint32_t i = 0; i < 5; i++) {
                struct vgpu_shm_ent e = piece(i + 1, i % 4, 8, 0, 16, 1);
                put(t, &e);
                if (i < 3) {
                    assert_true(ring_chan_consume(t->r, 1000) >= 0);
                }
            })
BREACH_TEST(piece_of_nothing, "piece of a request that is not being sent",
            struct vgpu_shm_ent e = piece(1, 0, 8, 8, 16, 2);
            put(t, &e))
BREACH_TEST(piece_other_epoch, "piece of a request that is not being sent",
            struct vgpu_shm_ent a = piece(1, 0, 8, 0, 16, 1);
            struct vgpu_shm_ent b = piece(1, 1, 8, 8, 16, 2);
            b.epoch = 8; put(t, &a); put(t, &b))
BREACH_TEST(comp_cons_jump, "comp ring consumer index outside the ring",
            struct vgpu_shm_ent e = piece(1, 0, 16, 0, 16, 3);
            *ctl(t, VGPU_SHM_OFF_COMP_CONS) = 12345; put(t, &e))

/* The checks are made on a private copy: an entry rewritten after it was
 * taken cannot change what was checked (here: it is simply not read
 * again, the consumer index having moved past it). */
static void test_entry_read_once(void **state)
{
    struct t *t = *state;
    struct vgpu_shm_ent e = piece(1, 0, 16, 0, 16, 3);

    put(t, &e);
    expect(t, NULL);
    e.kind = 99;
    vgpu_shm_ent_pack(t->region + t->o.sub_off, &e);
    expect(t, NULL);
    assert_int_equal(t->f.nadmitted, 1);
}

static void test_config(void **state)
{
    struct ring_config c;

    (void)state;
    ring_config_default(&c);
    assert_null(ring_config_fix(&c));
    assert_true(c.ring_entries >= c.req_chunks + c.resp_chunks +
                                      c.max_inflight);
    assert_int_equal(c.held_max, 4 * c.max_xfer);
    c.chunk_size = 1000;
    assert_non_null(ring_config_fix(&c));
    ring_config_default(&c);
    c.ring_entries = 64; /* cannot hold 32 + 32 + 64 */
    assert_non_null(ring_config_fix(&c));
    ring_config_default(&c);
    c.max_xfer = VGPU_XFER_LIMIT + 1;
    assert_non_null(ring_config_fix(&c));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(test_##name, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        T(one_piece),
        T(streamed_and_answered),
        T(refused_and_error),
        T(cancel_and_epoch),
        T(held_max_refuses),
        T(entry_read_once),
        T(index_jump),
        T(unknown_kind),
        T(comp_kind_on_sub),
        T(unknown_flags),
        T(chunk_out_of_range),
        T(chunk_huge),
        T(chunk_twice),
        T(resp_chunk_not_lent),
        T(resp_chunk_out_of_range),
        T(len_zero),
        T(len_over_chunk),
        T(first_not_at_0),
        T(offset_gap),
        T(offset_back),
        T(past_total),
        T(last_early),
        T(last_missing),
        T(total_small),
        T(total_big),
        T(resp_cap_big),
        T(seq_zero),
        T(seq_reused),
        T(too_many_open),
        T(piece_of_nothing),
        T(piece_other_epoch),
        T(comp_cons_jump),
    };
#undef T

    return cmocka_run_group_tests(tests, NULL, NULL);
}
