/*
 * fuzz-shm.c - libFuzzer target for the mediator's checks of the v2
 * staging region (mediator/chan/ring.c, vgpu/shm.h): whatever a hostile
 * qemu-dm writes into the sub ring and the control block.
 *
 * The input is a program for a device: each step is one opcode byte and
 * its operands, which either write an entry into the sub ring (raw 64
 * bytes, or one built from a few bytes so that valid-looking sequences are
 * common), publish and let the channel consume, complete a request the
 * fake dispatch admitted (any status, any length), give back the response
 * chunks the channel lent, or set a shared index to any value.
 *
 * Checked, besides ASan/UBSan: once the channel reports a breach it reads
 * nothing again; open requests never exceed max_inflight; every entry the
 * channel writes into the comp ring names a chunk of its pool and a length
 * within the chunk, and its response pieces stay within their total.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chan/ring.h"
#include "chan/transport.h"
#include "domain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ADM 64

struct fz {
    uint32_t tokens[MAX_ADM];
    unsigned nadm;
    const char *failed;
};

static uint32_t fz_request_buf(void *arg, struct vm *vm, uint64_t gen,
                               uint32_t request_id, uint8_t *buf, uint32_t len,
                               uint64_t max_bytes, unsigned max_queued)
{
    struct fz *f = arg;

    (void)vm;
    (void)gen;
    (void)max_queued;
    if (len > max_bytes) {
        abort();
    }
    if (f->nadm == MAX_ADM || (len && buf[0] == 0xee)) {
        return VGPU_ERR_BAD_REQUEST; /* the channel keeps buf */
    }
    free(buf);
    f->tokens[f->nadm++] = request_id;
    return VGPU_ERR_NONE;
}

static void fz_cancel(void *arg, struct vm *vm, uint64_t gen, uint32_t id)
{
    (void)arg;
    (void)vm;
    (void)gen;
    (void)id;
}

static void fz_fail(void *conn, const char *why)
{
    ((struct fz *)conn)->failed = why;
}

static const struct transport_events fz_events = {
    .request_buf = fz_request_buf,
    .cancel = fz_cancel,
};

struct cursor {
    const uint8_t *p;
    size_t left;
};

static uint32_t take(struct cursor *c, unsigned bytes)
{
    uint32_t v = 0;

    for (unsigned i = 0; i < bytes && c->left; i++) {
        v |= (uint32_t)*c->p++ << (8 * i);
        c->left--;
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *region; /* reused: 64-byte aligned, zeroed per input */
    struct ring_config cfg;
    struct ring_owner own;
    struct vgpu_shm_offer o;
    struct ring_chan *r;
    struct fz f;
    struct vm vm;
    struct cursor c = {data, size};
    uint32_t sub_prod = 0, comp_cons = 0;
    bool broken = false;
    uint8_t resp[3 * 4096];

    ring_config_default(&cfg);
    cfg.chunk_size = 4096;
    cfg.req_chunks = 4;
    cfg.resp_chunks = 2;
    cfg.max_inflight = 4;
    cfg.max_xfer = 3 * 4096;
    cfg.ring_entries = 16;
    if (ring_config_fix(&cfg)) {
        abort();
    }
    if (!region) {
        region = aligned_alloc(4096, 1u << 20);
        if (!region) {
            return 0;
        }
    }
    memset(region, 0, 1u << 20);
    memset(&f, 0, sizeof(f));
    memset(&vm, 0, sizeof(vm));
    memset(&own, 0, sizeof(own));
    own.ev = &fz_events;
    own.ev_arg = &f;
    own.vm = &vm;
    own.fail = fz_fail;
    own.conn = &f;
    if (ring_chan_open_mem(&r, &cfg, &own, region, &o) ||
        o.region_size > (1u << 20)) {
        abort();
    }
    for (unsigned i = 0; i < sizeof(resp); i++) {
        resp[i] = (uint8_t)i;
    }
    while (c.left) {
        uint8_t op = (uint8_t)take(&c, 1);
        struct vgpu_shm_ent e;
        uint32_t *idx;

        switch (op % 8) {
        case 0: { /* a raw entry */
            uint8_t raw[VGPU_SHM_ENT_SIZE] = {0};

            for (unsigned i = 0; i < sizeof(raw) && c.left; i++) {
                raw[i] = (uint8_t)take(&c, 1);
            }
            memcpy(region + o.sub_off +
                       (sub_prod & (o.ring_entries - 1)) * VGPU_SHM_ENT_SIZE,
                   raw, sizeof(raw));
            sub_prod++;
            break;
        }
        case 1:
        case 2: { /* a piece built from 6 bytes */
            uint32_t b = take(&c, 4), t = take(&c, 2);

            memset(&e, 0, sizeof(e));
            e.kind = (uint16_t)(1 + b % 3);
            e.flags = (uint16_t)((b >> 2) & 3);
            e.epoch = (b >> 4) & 1;
            e.seq = (b >> 5) & 7;
            e.chunk = (b >> 8) & 7;
            e.len = ((b >> 11) & 0x1fff) % 4100;
            e.offset = (uint64_t)((b >> 24) & 3) * 4096;
            e.total = t % (4 * 4096);
            e.resp_cap = (uint64_t)(t >> 12) * 1024;
            vgpu_shm_ent_pack(region + o.sub_off +
                                  (sub_prod & (o.ring_entries - 1)) *
                                      VGPU_SHM_ENT_SIZE,
                              &e);
            sub_prod++;
            break;
        }
        case 3: { /* publish and consume */
            int n;

            __atomic_store_n((uint32_t *)(void *)(region +
                                                  VGPU_SHM_OFF_SUB_PROD),
                             sub_prod, __ATOMIC_RELEASE);
            n = ring_chan_consume(r, 1 + (unsigned)take(&c, 1) % 32);
            if (broken && n != -1) {
                abort(); /* read on after a breach */
            }
            if (n < 0) {
                if (!f.failed || !ring_chan_breach(r)) {
                    abort();
                }
                broken = true;
            }
            break;
        }
        case 4: /* complete an admitted request */
            if (f.nadm) {
                uint32_t k = take(&c, 1) % f.nadm;
                uint32_t st = take(&c, 1) % 3 == 0 ? VGPU_ERR_BACKEND : 0;
                uint32_t len = take(&c, 2) % sizeof(resp);

                ring_chan_complete(r, f.tokens[k], st, resp, len);
                f.tokens[k] = f.tokens[--f.nadm];
            }
            break;
        case 5: /* read the comp ring as a device, giving chunks back */
            while (!broken) {
                uint32_t prod = __atomic_load_n(
                    (uint32_t *)(void *)(region + VGPU_SHM_OFF_COMP_PROD),
                    __ATOMIC_ACQUIRE);

                if (prod == comp_cons || prod - comp_cons > o.ring_entries) {
                    break;
                }
                vgpu_shm_ent_unpack(region + o.comp_off +
                                        (comp_cons & (o.ring_entries - 1)) *
                                            VGPU_SHM_ENT_SIZE,
                                    &e);
                comp_cons++;
                if (e.kind == VGPU_SHM_REQ_CHUNK_DONE &&
                    e.chunk >= o.req_chunks) {
                    abort();
                }
                if (e.kind == VGPU_SHM_RESP_DATA) {
                    struct vgpu_shm_ent back = {
                        .kind = VGPU_SHM_RESP_CHUNK_DONE, .chunk = e.chunk};

                    if (e.chunk >= o.resp_chunks || e.len == 0 ||
                        e.len > o.chunk_size ||
                        ((e.flags & VGPU_SHM_F_FIRST) &&
                         e.offset + e.len > e.total)) {
                        abort();
                    }
                    vgpu_shm_ent_pack(region + o.sub_off +
                                          (sub_prod & (o.ring_entries - 1)) *
                                              VGPU_SHM_ENT_SIZE,
                                      &back);
                    sub_prod++;
                }
            }
            __atomic_store_n(
                (uint32_t *)(void *)(region + VGPU_SHM_OFF_COMP_CONS),
                comp_cons, __ATOMIC_RELEASE);
            break;
        case 6: /* set an index of the device to anything */
            idx = (uint32_t *)(void *)(region + (take(&c, 1) & 1
                                                     ? VGPU_SHM_OFF_SUB_PROD
                                                     : VGPU_SHM_OFF_COMP_CONS));
            *idx = take(&c, 4);
            if (idx == (uint32_t *)(void *)(region + VGPU_SHM_OFF_SUB_PROD)) {
                sub_prod = *idx;
            }
            break;
        default: /* scribble on a pool */
            region[o.req_pool_off + take(&c, 2) % (4 * 4096)] =
                (uint8_t)take(&c, 1);
            break;
        }
        if (ring_chan_open_count(r) > o.max_inflight) {
            abort();
        }
    }
    ring_chan_free(r);
    return 0;
}
