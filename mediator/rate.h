/*
 * rate.h - owns the token bucket that bounds what a peer can make the
 * daemon do without a GPU: HELLOs, refused requests, log lines.  Each
 * domain has its buckets in struct vm (domain.h), so a qemu-dm that
 * reconnects does not get a full bucket back.
 *
 * Tokens are kept in millionths, so a refill of a fraction of a token per
 * call is not lost to rounding.  Pure arithmetic on a clock the caller
 * passes: the unit test drives it with made-up times.
 */
#ifndef VGPU_RATE_H
#define VGPU_RATE_H

#include <stdbool.h>
#include <stdint.h>

#define RATE_UNIT 1000000ull /* millionths of a token */

struct rate_bucket {
    uint64_t micro;   /* tokens held, in millionths */
    uint64_t last_ns; /* when micro was last brought up to date */
    bool started;
};

/* What a bucket allows: per_s tokens a second (at most 1000000), at most
 * burst saved up. */
struct rate_limit {
    uint32_t per_s;
    uint32_t burst;
};

static inline void rate_refill(struct rate_bucket *b,
                               const struct rate_limit *l, uint64_t now_ns)
{
    uint64_t cap = (uint64_t)l->burst * RATE_UNIT;

    if (!b->started) {
        b->started = true;
        b->micro = cap;
        b->last_ns = now_ns;
        return;
    }
    if (now_ns > b->last_ns && l->per_s) {
        /* per_s tokens per 1e9 ns = per_s / 1000 millionths per ns.  Only
         * the time turned into tokens is consumed, so frequent calls lose
         * nothing to rounding. */
        uint64_t dt = now_ns - b->last_ns;
        uint64_t add = dt >= 1000000000000ull ? cap : dt * l->per_s / 1000u;

        if (add == 0) {
            return;
        }
        if (add >= cap || b->micro + add >= cap) {
            b->micro = cap;
            b->last_ns = now_ns;
        } else {
            b->micro += add;
            b->last_ns += add * 1000u / l->per_s;
        }
    }
}

/* Take one token: true, or false when the bucket is empty (none taken). */
static inline bool rate_take(struct rate_bucket *b, const struct rate_limit *l,
                             uint64_t now_ns)
{
    rate_refill(b, l, now_ns);
    if (b->micro < RATE_UNIT) {
        return false;
    }
    b->micro -= RATE_UNIT;
    return true;
}

/* Is a token there now (none taken)? */
static inline bool rate_has(struct rate_bucket *b, const struct rate_limit *l,
                            uint64_t now_ns)
{
    rate_refill(b, l, now_ns);
    return b->micro >= RATE_UNIT;
}

/* When the next whole token will be there (now_ns if it is). */
static inline uint64_t rate_next_ns(struct rate_bucket *b,
                                    const struct rate_limit *l, uint64_t now_ns)
{
    uint64_t missing;

    rate_refill(b, l, now_ns);
    if (b->micro >= RATE_UNIT || l->per_s == 0) {
        return l->per_s ? now_ns : UINT64_MAX;
    }
    missing = RATE_UNIT - b->micro;
    /* missing millionths at per_s / 1000 per ns, rounded up. */
    return now_ns + (missing * 1000u + l->per_s - 1) / l->per_s;
}

#endif
