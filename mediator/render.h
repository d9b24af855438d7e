/*
 * render.h - owns the text forms of a struct vgpu_stats snapshot:
 *
 *   JSON        for scripts (vgpu-smi --json, "stats json" on the admin
 *               socket); field names are stable and documented in
 *               docs/vgpu-smi.md;
 *   Prometheus  the text exposition format 0.0.4 (metric names vgpu_*);
 *   key=value   one record per line, every value percent-encoded, which
 *               vgpu-smi reads back with render_kv_parse().
 *
 * Pure functions over caller-owned memory: no I/O, no global state.  Every
 * string of the snapshot may hold any byte (names come from xenstore):
 * each format escapes what it must, and bytes that are not valid UTF-8
 * become U+FFFD in JSON and Prometheus output.
 *
 * GPU utilisation here is busy_ns / uptime_ns: the share of the time since
 * the mediator started that the GPU spent running jobs, 0..1.  Over an
 * interval, use two snapshots (render_ratio of the differences), as
 * vgpu-smi --loop does, or rate(vgpu_gpu_busy_seconds_total[...]) in
 * Prometheus.
 */
#ifndef VGPU_RENDER_H
#define VGPU_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

/* Version of the JSON document ("schema") and of the key=value form. */
#define RENDER_SCHEMA_VERSION 1

/* No rendering of any snapshot (all VMs and GPUs, hostile names) is larger. */
#define RENDER_OUTPUT_MAX (4u << 20)

/*
 * A growable string.  After a failed allocation or when it would pass max
 * it stops growing and sets failed; it is always NUL-terminated once it
 * holds anything.
 */
struct rbuf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* 0: no limit */
    bool failed;
};

void rbuf_init(struct rbuf *b, size_t max);
void rbuf_free(struct rbuf *b);
/* Empty it, keeping its memory. */
void rbuf_reset(struct rbuf *b);
void rbuf_add(struct rbuf *b, const void *data, size_t n);
void rbuf_puts(struct rbuf *b, const char *s);
void rbuf_printf(struct rbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Each appends its form of s to out; 0, or -1 when out failed (memory or
 * its max).  At most VGPU_STATS_MAX_VMS VMs and VGPU_BACKEND_MAX_GPUS GPUs
 * are rendered whatever s->nvms and s->ngpus say.
 */
int render_json(const struct vgpu_stats *s, struct rbuf *out);
int render_prometheus(const struct vgpu_stats *s, struct rbuf *out);
int render_kv(const struct vgpu_stats *s, struct rbuf *out);

/*
 * Read what render_kv() wrote back into *out (cleared first).  Lines of
 * unknown kinds and unknown keys are skipped, so that older readers accept
 * newer mediators.  0 on success; -1 with a reason in err when the text is
 * malformed, or incomplete (it must end with the "end" line).
 */
int render_kv_parse(const char *text, size_t len, struct vgpu_stats *out,
                    char *err, size_t errlen);

/* part / whole clamped to 0..1; 0 when whole is 0. */
double render_ratio(uint64_t part, uint64_t whole);

/*
 * Length of the valid UTF-8 sequence at p (1 to 4 bytes, n > 0 bytes
 * available), or 0 when p does not start one (stray continuation byte,
 * overlong form, surrogate, beyond U+10FFFF, cut short).
 */
size_t render_utf8_len(const unsigned char *p, size_t n);

#endif
