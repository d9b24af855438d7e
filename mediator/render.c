/*
 * render.c - owns the text forms of a struct vgpu_stats snapshot (JSON,
 * Prometheus text format 0.0.4, key=value) and the growable string they
 * are written into.  See render.h for the contract and docs/vgpu-smi.md
 * for the field names.
 */
#include "render.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu_protocol.h"

#define UTF8_REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

/* A char array field of the snapshot: its bytes up to the first NUL. */
#define FIELD(arr) (arr), strnlen((arr), sizeof(arr))

/* ---------------------------------------------------------------------- */
/* the growable string                                                     */
/* ---------------------------------------------------------------------- */

void rbuf_init(struct rbuf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void rbuf_free(struct rbuf *b)
{
    free(b->data);
    rbuf_init(b, b->max);
}

void rbuf_reset(struct rbuf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data) {
        b->data[0] = '\0';
    }
}

/* Room for n more bytes and a NUL; false (and failed) if there is none. */
static bool rbuf_reserve(struct rbuf *b, size_t n)
{
    size_t need, cap;
    char *p;

    if (b->failed) {
        return false;
    }
    need = b->len + n + 1;
    if (need < n || (b->max && need > b->max + 1)) {
        b->failed = true;
        return false;
    }
    if (need <= b->cap) {
        return true;
    }
    cap = b->cap ? b->cap : 256;
    while (cap < need) {
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void rbuf_add(struct rbuf *b, const void *data, size_t n)
{
    if (!rbuf_reserve(b, n)) {
        return;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void rbuf_puts(struct rbuf *b, const char *s)
{
    rbuf_add(b, s, strlen(s));
}

void rbuf_printf(struct rbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !rbuf_reserve(b, (size_t)n)) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ---------------------------------------------------------------------- */
/* small shared helpers                                                    */
/* ---------------------------------------------------------------------- */

size_t render_utf8_len(const unsigned char *p, size_t n)
{
    uint32_t cp;
    size_t len;

    if (p[0] < 0x80) {
        return 1;
    }
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}

double render_ratio(uint64_t part, uint64_t whole)
{
    if (!whole) {
        return 0.0;
    }
    if (part >= whole) {
        return 1.0;
    }
    return (double)part / (double)whole;
}

static unsigned vm_count(const struct vgpu_stats *s)
{
    return s->nvms < VGPU_STATS_MAX_VMS ? s->nvms : VGPU_STATS_MAX_VMS;
}

static unsigned gpu_count(const struct vgpu_stats *s)
{
    return s->ngpus < VGPU_BACKEND_MAX_GPUS ? s->ngpus : VGPU_BACKEND_MAX_GPUS;
}

/* Nanoseconds as exact decimal seconds: "1.500000000". */
static void put_seconds(struct rbuf *b, uint64_t ns)
{
    rbuf_printf(b, "%" PRIu64 ".%09" PRIu64, ns / 1000000000u,
                ns % 1000000000u);
}

/*
 * The byte walk both escapers share: valid UTF-8 sequences of two bytes
 * or more are copied, invalid bytes become U+FFFD, and every ASCII byte
 * goes to put_ascii, which appends it in the format's own way.
 */
static void put_escaped(struct rbuf *b, const char *s, size_t n,
                        void (*put_ascii)(struct rbuf *b, unsigned char c))
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        size_t len = render_utf8_len(p + i, n - i);

        if (len == 1) {
            put_ascii(b, p[i]);
            i++;
        } else if (len) {
            rbuf_add(b, p + i, len);
            i += len;
        } else {
            rbuf_puts(b, UTF8_REPLACEMENT);
            i++;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* JSON                                                                    */
/* ---------------------------------------------------------------------- */

static void json_ascii(struct rbuf *b, unsigned char c)
{
    switch (c) {
    case '"':
        rbuf_puts(b, "\\\"");
        return;
    case '\\':
        rbuf_puts(b, "\\\\");
        return;
    case '\n':
        rbuf_puts(b, "\\n");
        return;
    case '\r':
        rbuf_puts(b, "\\r");
        return;
    case '\t':
        rbuf_puts(b, "\\t");
        return;
    default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
        rbuf_printf(b, "\\u%04x", c);
    } else {
        rbuf_add(b, &c, 1);
    }
}

static void json_str(struct rbuf *b, const char *s, size_t n)
{
    rbuf_puts(b, "\"");
    put_escaped(b, s, n, json_ascii);
    rbuf_puts(b, "\"");
}

static const char *json_bool(bool v)
{
    return v ? "true" : "false";
}

static void json_mediator(struct rbuf *b, const struct vgpu_stats *s)
{
    rbuf_printf(b, "  \"mediator\": {\"pid\": %d, \"backend\": ", s->pid);
    json_str(b, FIELD(s->backend));
    rbuf_puts(b, ", \"backend_note\": ");
    json_str(b, FIELD(s->backend_note));
    rbuf_printf(b,
                ", \"uptime_ns\": %" PRIu64 ", \"now_ns\": %" PRIu64
                ", \"starvation_bound\": %u, \"schedule\": ",
                s->uptime_ns, s->now_ns, s->starvation_bound);
    json_str(b, FIELD(s->schedule));
    rbuf_puts(b, "},\n");
}

static void json_gpu(struct rbuf *b, const struct vgpu_gpu_stats *g,
                     uint64_t uptime_ns)
{
    rbuf_printf(b, "    {\"index\": %u, \"name\": ", g->index);
    json_str(b, FIELD(g->info.name));
    rbuf_puts(b, ", \"uuid\": ");
    json_str(b, FIELD(g->info.uuid));
    rbuf_puts(b, ", \"pools\": ");
    json_str(b, FIELD(g->pools));
    rbuf_printf(b,
                ", \"mem_total\": %" PRIu64 ", \"busy\": %s"
                ", \"busy_ns\": %" PRIu64 ", \"jobs\": %" PRIu64
                ", \"utilization\": %.6f}",
                g->info.mem_total, json_bool(g->busy), g->busy_ns, g->jobs,
                render_ratio(g->busy_ns, uptime_ns));
}

static void json_vm(struct rbuf *b, const struct vgpu_vm_stats *v)
{
    rbuf_printf(b, "    {\"domid\": %" PRIu32 ", \"name\": ", v->domid);
    json_str(b, FIELD(v->name));
    rbuf_printf(b, ", \"assigned\": %s, ", json_bool(v->assigned));
    if (v->assigned) {
        rbuf_puts(b, "\"pool\": ");
        json_str(b, FIELD(v->pool));
        rbuf_printf(b, ", \"priority\": \"%s\", \"vm_id\": %" PRIu32,
                    vgpu_priority_name(v->priority), v->vm_id);
    } else {
        rbuf_puts(b, "\"pool\": null, \"priority\": null, \"vm_id\": null");
    }
    rbuf_printf(
        b,
        ", \"connected\": %s, \"served\": %" PRIu64 ", \"errors\": %" PRIu64
        ", \"queued\": %" PRIu64 ", \"gpu_ns\": %" PRIu64
        ", \"mem_used\": %" PRIu64 ", \"mem_quota\": %" PRIu64
        ", \"cuda_contexts\": %" PRIu64 ", \"cuda_calls\": %" PRIu64 "}",
        json_bool(v->connected), v->served, v->errors, v->queued, v->gpu_ns,
        v->mem_used, v->mem_quota, v->cuda_contexts, v->cuda_calls);
}

int render_json(const struct vgpu_stats *s, struct rbuf *out)
{
    unsigned ngpus = gpu_count(s), nvms = vm_count(s);

    rbuf_printf(out, "{\n  \"schema\": %d,\n", RENDER_SCHEMA_VERSION);
    json_mediator(out, s);
    rbuf_puts(out, ngpus ? "  \"gpus\": [\n" : "  \"gpus\": [],\n");
    for (unsigned i = 0; i < ngpus; i++) {
        json_gpu(out, &s->gpus[i], s->uptime_ns);
        rbuf_puts(out, i + 1 < ngpus ? ",\n" : "\n  ],\n");
    }
    rbuf_puts(out, nvms ? "  \"vms\": [\n" : "  \"vms\": []\n");
    for (unsigned i = 0; i < nvms; i++) {
        json_vm(out, &s->vms[i]);
        rbuf_puts(out, i + 1 < nvms ? ",\n" : "\n  ]\n");
    }
    rbuf_puts(out, "}\n");
    return out->failed ? -1 : 0;
}

/* ---------------------------------------------------------------------- */
/* Prometheus text format 0.0.4                                            */
/* ---------------------------------------------------------------------- */

enum prom_unit {
    PROM_COUNT,   /* an integer as it is */
    PROM_SECONDS, /* nanoseconds, written as seconds */
    PROM_BOOL,    /* 0 or 1 */
    PROM_RATIO,   /* GPU busy_ns over uptime */
};

/* One metric family: which member of the VM or GPU record it shows. */
struct prom_family {
    const char *name;
    const char *type; /* "counter" or "gauge" */
    const char *help;
    enum prom_unit unit;
    size_t off; /* of a uint64_t, or of a bool for PROM_BOOL */
};

#define VM_FIELD(m) offsetof(struct vgpu_vm_stats, m)
#define GPU_FIELD(m) offsetof(struct vgpu_gpu_stats, m)

static const struct prom_family vm_families[] = {
    {"vgpu_vm_connected", "gauge",
     "1 while the domain's vgpu-stub device is connected to the mediator.",
     PROM_BOOL, VM_FIELD(connected)},
    {"vgpu_vm_requests_served_total", "counter",
     "Requests of the domain answered with a result.", PROM_COUNT,
     VM_FIELD(served)},
    {"vgpu_vm_requests_errors_total", "counter",
     "Requests of the domain answered with an error.", PROM_COUNT,
     VM_FIELD(errors)},
    {"vgpu_vm_completions_dropped_total", "counter",
     "Completions dropped because the connection that sent the request had "
     "gone (a restarted qemu-dm): never delivered to another.",
     PROM_COUNT, VM_FIELD(stale)},
    {"vgpu_vm_requests_queued", "gauge",
     "Requests of the domain waiting for a GPU now.", PROM_COUNT,
     VM_FIELD(queued)},
    {"vgpu_vm_gpu_seconds_total", "counter",
     "Execution time the domain's requests used on the backend, seconds.",
     PROM_SECONDS, VM_FIELD(gpu_ns)},
    {"vgpu_vm_memory_used_bytes", "gauge",
     "Device memory the domain holds now, bytes.", PROM_COUNT,
     VM_FIELD(mem_used)},
    {"vgpu_vm_memory_quota_bytes", "gauge",
     "Device memory the domain may hold, bytes; 0: no quota.", PROM_COUNT,
     VM_FIELD(mem_quota)},
    {"vgpu_vm_cuda_contexts", "gauge",
     "Guest CUDA contexts the domain has now (protocol v3).", PROM_COUNT,
     VM_FIELD(cuda_contexts)},
    {"vgpu_vm_cuda_calls_total", "counter",
     "Remoted CUDA calls of the domain that ran (protocol v3).", PROM_COUNT,
     VM_FIELD(cuda_calls)},
};

static const struct prom_family gpu_families[] = {
    {"vgpu_gpu_memory_total_bytes", "gauge", "Device memory of the GPU, bytes.",
     PROM_COUNT, GPU_FIELD(info.mem_total)},
    {"vgpu_gpu_busy", "gauge", "1 while the GPU runs a job.", PROM_BOOL,
     GPU_FIELD(busy)},
    {"vgpu_gpu_busy_seconds_total", "counter",
     "Time the GPU spent running jobs since the mediator started, seconds.",
     PROM_SECONDS, GPU_FIELD(busy_ns)},
    {"vgpu_gpu_jobs_total", "counter",
     "Jobs the GPU ran since the mediator started.", PROM_COUNT,
     GPU_FIELD(jobs)},
    {"vgpu_gpu_utilization_ratio", "gauge",
     "Share of the time since the mediator started that the GPU was busy, "
     "0 to 1.",
     PROM_RATIO, GPU_FIELD(busy_ns)},
};

static void prom_ascii(struct rbuf *b, unsigned char c)
{
    if (c == '\\') {
        rbuf_puts(b, "\\\\");
    } else if (c == '"') {
        rbuf_puts(b, "\\\"");
    } else if (c == '\n') {
        rbuf_puts(b, "\\n");
    } else if (c < 0x20 || c == 0x7f) {
        rbuf_puts(b, UTF8_REPLACEMENT);
    } else {
        rbuf_add(b, &c, 1);
    }
}

/* Label sets are left open: the caller adds more or the closing `}`. */
/* `first` decides the separator: `{` before the first label, `,` after. */
static void prom_label(struct rbuf *b, bool first, const char *key,
                       const char *val, size_t n)
{
    rbuf_printf(b, "%s%s=\"", first ? "{" : ",", key);
    put_escaped(b, val, n, prom_ascii);
    rbuf_puts(b, "\"");
}

static void prom_header(struct rbuf *b, const struct prom_family *f)
{
    rbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                f->type);
}

static void prom_value(struct rbuf *b, const struct prom_family *f,
                       const void *rec, uint64_t uptime_ns)
{
    const char *p = (const char *)rec + f->off;
    uint64_t v = 0;

    if (f->unit == PROM_BOOL) {
        rbuf_puts(b, *(const bool *)p ? " 1\n" : " 0\n");
        return;
    }
    memcpy(&v, p, sizeof(v));
    if (f->unit == PROM_SECONDS) {
        rbuf_puts(b, " ");
        put_seconds(b, v);
        rbuf_puts(b, "\n");
    } else if (f->unit == PROM_RATIO) {
        rbuf_printf(b, " %.6f\n", render_ratio(v, uptime_ns));
    } else {
        rbuf_printf(b, " %" PRIu64 "\n", v);
    }
}

static void prom_vm_labels(struct rbuf *b, const struct vgpu_vm_stats *v)
{
    char num[16] = "";

    snprintf(num, sizeof(num), "%" PRIu32, v->domid);
    prom_label(b, true, "domid", num, strlen(num));
    num[0] = '\0';
    if (v->assigned) {
        snprintf(num, sizeof(num), "%" PRIu32, v->vm_id);
    }
    prom_label(b, false, "vm_id", num, strlen(num));
    prom_label(b, false, "name", FIELD(v->name));
    prom_label(b, false, "pool", v->pool,
               v->assigned ? strnlen(v->pool, sizeof(v->pool)) : 0);
    num[0] = '\0';
    if (v->assigned) {
        snprintf(num, sizeof(num), "%s", vgpu_priority_name(v->priority));
    }
    prom_label(b, false, "priority", num, strlen(num));
}

static void prom_gpu_labels(struct rbuf *b, const struct vgpu_gpu_stats *g)
{
    char num[16];

    snprintf(num, sizeof(num), "%u", g->index);
    prom_label(b, true, "gpu", num, strlen(num));
    prom_label(b, false, "name", FIELD(g->info.name));
    prom_label(b, false, "uuid", FIELD(g->info.uuid));
}

static void prom_mediator(struct rbuf *b, const struct vgpu_stats *s)
{
    rbuf_puts(b, "# HELP vgpu_mediator_info The mediator's backend and why "
                 "it runs that one; always 1.\n"
                 "# TYPE vgpu_mediator_info gauge\nvgpu_mediator_info");
    prom_label(b, true, "backend", FIELD(s->backend));
    prom_label(b, false, "note", FIELD(s->backend_note));
    rbuf_puts(b, "} 1\n"
                 "# HELP vgpu_mediator_uptime_seconds Seconds since the "
                 "mediator started.\n"
                 "# TYPE vgpu_mediator_uptime_seconds gauge\n"
                 "vgpu_mediator_uptime_seconds ");
    put_seconds(b, s->uptime_ns);
    rbuf_printf(b,
                "\n# HELP vgpu_mediator_starvation_bound A waiting request "
                "runs after at most this many of higher priority; 0: strict "
                "priority.\n"
                "# TYPE vgpu_mediator_starvation_bound gauge\n"
                "vgpu_mediator_starvation_bound %u\n",
                s->starvation_bound);
}

static void prom_gpu_info(struct rbuf *b, const struct vgpu_stats *s)
{
    rbuf_puts(b, "# HELP vgpu_gpu_info A GPU the mediator schedules on and "
                 "the pools it serves; always 1.\n"
                 "# TYPE vgpu_gpu_info gauge\n");
    for (unsigned i = 0; i < gpu_count(s); i++) {
        const struct vgpu_gpu_stats *g = &s->gpus[i];

        rbuf_puts(b, "vgpu_gpu_info");
        prom_gpu_labels(b, g);
        prom_label(b, false, "pools", FIELD(g->pools));
        rbuf_puts(b, "} 1\n");
    }
}

int render_prometheus(const struct vgpu_stats *s, struct rbuf *out)
{
    const size_t nvmf = sizeof(vm_families) / sizeof(vm_families[0]);
    const size_t ngpuf = sizeof(gpu_families) / sizeof(gpu_families[0]);

    prom_mediator(out, s);
    prom_gpu_info(out, s);
    for (size_t f = 0; f < ngpuf; f++) {
        prom_header(out, &gpu_families[f]);
        for (unsigned i = 0; i < gpu_count(s); i++) {
            rbuf_puts(out, gpu_families[f].name);
            prom_gpu_labels(out, &s->gpus[i]);
            rbuf_puts(out, "}");
            prom_value(out, &gpu_families[f], &s->gpus[i], s->uptime_ns);
        }
    }
    for (size_t f = 0; f < nvmf; f++) {
        prom_header(out, &vm_families[f]);
        for (unsigned i = 0; i < vm_count(s); i++) {
            rbuf_puts(out, vm_families[f].name);
            prom_vm_labels(out, &s->vms[i]);
            rbuf_puts(out, "}");
            prom_value(out, &vm_families[f], &s->vms[i], s->uptime_ns);
        }
    }
    return out->failed ? -1 : 0;
}

/* ---------------------------------------------------------------------- */
/* key=value                                                               */
/* ---------------------------------------------------------------------- */

enum kv_type {
    KV_U64,
    KV_U32,
    KV_UINT,
    KV_INT,
    KV_BOOL,
    KV_STR,
};

/* One key of a record: the member it is read from and written to. */
struct kv_field {
    const char *key;
    enum kv_type type;
    size_t off;
    size_t size;
};

#define KVF(st, key, member, type)                                             \
    {                                                                          \
        key, type, offsetof(st, member), sizeof(((st *)0)->member)             \
    }
#define KV_MED(key, m, t) KVF(struct vgpu_stats, key, m, t)
#define KV_GPU(key, m, t) KVF(struct vgpu_gpu_stats, key, m, t)
#define KV_VM(key, m, t) KVF(struct vgpu_vm_stats, key, m, t)

static const struct kv_field kv_mediator[] = {
    KV_MED("pid", pid, KV_INT),
    KV_MED("backend", backend, KV_STR),
    KV_MED("backend_note", backend_note, KV_STR),
    KV_MED("uptime_ns", uptime_ns, KV_U64),
    KV_MED("now_ns", now_ns, KV_U64),
    KV_MED("starvation_bound", starvation_bound, KV_UINT),
    KV_MED("schedule", schedule, KV_STR),
    {NULL, KV_INT, 0, 0},
};

static const struct kv_field kv_gpu[] = {
    KV_GPU("index", index, KV_UINT),
    KV_GPU("name", info.name, KV_STR),
    KV_GPU("uuid", info.uuid, KV_STR),
    KV_GPU("pools", pools, KV_STR),
    KV_GPU("mem_total", info.mem_total, KV_U64),
    KV_GPU("busy", busy, KV_BOOL),
    KV_GPU("busy_ns", busy_ns, KV_U64),
    KV_GPU("jobs", jobs, KV_U64),
    {NULL, KV_INT, 0, 0},
};

static const struct kv_field kv_vm[] = {
    KV_VM("domid", domid, KV_U32),
    KV_VM("name", name, KV_STR),
    KV_VM("assigned", assigned, KV_BOOL),
    KV_VM("pool", pool, KV_STR),
    KV_VM("priority", priority, KV_U32),
    KV_VM("vm_id", vm_id, KV_U32),
    KV_VM("connected", connected, KV_BOOL),
    KV_VM("served", served, KV_U64),
    KV_VM("errors", errors, KV_U64),
    KV_VM("stale", stale, KV_U64),
    KV_VM("queued", queued, KV_U64),
    KV_VM("gpu_ns", gpu_ns, KV_U64),
    KV_VM("mem_used", mem_used, KV_U64),
    KV_VM("mem_quota", mem_quota, KV_U64),
    KV_VM("cuda_contexts", cuda_contexts, KV_U64),
    KV_VM("cuda_calls", cuda_calls, KV_U64),
    {NULL, KV_INT, 0, 0},
};

/* Printable ASCII but '%' and '=' as is, every other byte as %XX. */
static void kv_escape(struct rbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c > 0x20 && c < 0x7f && c != '%' && c != '=') {
            rbuf_add(b, &c, 1);
        } else {
            rbuf_printf(b, "%%%02X", c);
        }
    }
}

static void kv_put_value(struct rbuf *b, const struct kv_field *f,
                         const char *p)
{
    uint64_t u64;
    uint32_t u32;
    unsigned u;
    int i;

    switch (f->type) {
    case KV_U64:
        memcpy(&u64, p, sizeof(u64));
        rbuf_printf(b, "%" PRIu64, u64);
        break;
    case KV_U32:
        memcpy(&u32, p, sizeof(u32));
        rbuf_printf(b, "%" PRIu32, u32);
        break;
    case KV_UINT:
        memcpy(&u, p, sizeof(u));
        rbuf_printf(b, "%u", u);
        break;
    case KV_INT:
        memcpy(&i, p, sizeof(i));
        rbuf_printf(b, "%d", i);
        break;
    case KV_BOOL:
        rbuf_puts(b, *(const bool *)p ? "1" : "0");
        break;
    case KV_STR:
        kv_escape(b, p, strnlen(p, f->size));
        break;
    }
}

static void kv_record(struct rbuf *b, const char *kind,
                      const struct kv_field *fields, const void *rec)
{
    rbuf_puts(b, kind);
    for (const struct kv_field *f = fields; f->key; f++) {
        rbuf_printf(b, " %s=", f->key);
        kv_put_value(b, f, (const char *)rec + f->off);
    }
    rbuf_puts(b, "\n");
}

int render_kv(const struct vgpu_stats *s, struct rbuf *out)
{
    rbuf_printf(out, "vgpu-stats %d\n", RENDER_SCHEMA_VERSION);
    kv_record(out, "mediator", kv_mediator, s);
    for (unsigned i = 0; i < gpu_count(s); i++) {
        kv_record(out, "gpu", kv_gpu, &s->gpus[i]);
    }
    for (unsigned i = 0; i < vm_count(s); i++) {
        kv_record(out, "vm", kv_vm, &s->vms[i]);
    }
    rbuf_puts(out, "end\n");
    return out->failed ? -1 : 0;
}

/* ---- reading it back ---- */

struct kv_reader {
    char *err;
    size_t errlen;
    unsigned line;
};

static int kv_fail(struct kv_reader *r, const char *what)
{
    snprintf(r->err, r->errlen, "line %u: %s", r->line, what);
    return -1;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Decode the value s[0..n) into out (size bytes, NUL-terminated). */
static int kv_unescape(const char *s, size_t n, char *out, size_t size,
                       size_t *outlen)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '%') {
            int hi, lo;

            if (n - i < 3) {
                return -1;
            }
            hi = hex_digit(s[i + 1]);
            lo = hex_digit(s[i + 2]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (o + 1 >= size) {
            return -1;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    *outlen = o;
    return 0;
}

static int kv_number(const char *s, bool is_signed, uint64_t max, uint64_t *v)
{
    char *end;
    unsigned long long u;
    long long l;

    errno = 0;
    if (is_signed) {
        l = strtoll(s, &end, 10);
        if (l < 0) {
            l = -l;
        }
        u = (unsigned long long)l;
    } else {
        if (s[0] == '-') {
            return -1;
        }
        u = strtoull(s, &end, 10);
    }
    if (errno || end == s || *end || u > max) {
        return -1;
    }
    *v = u;
    return 0;
}

static int kv_store(const struct kv_field *f, const char *val, char *p)
{
    uint64_t v;
    uint32_t u32;
    unsigned u;
    int i;

    switch (f->type) {
    case KV_STR:
        snprintf(p, f->size, "%s", val);
        return strlen(val) < f->size ? 0 : -1;
    case KV_BOOL:
        if (strcmp(val, "0") && strcmp(val, "1")) {
            return -1;
        }
        *(bool *)p = val[0] == '1';
        return 0;
    case KV_INT:
        if (kv_number(val, true, INT32_MAX, &v)) {
            return -1;
        }
        i = val[0] == '-' ? -(int)v : (int)v;
        memcpy(p, &i, sizeof(i));
        return 0;
    case KV_UINT:
        if (kv_number(val, false, UINT32_MAX, &v)) {
            return -1;
        }
        u = (unsigned)v;
        memcpy(p, &u, sizeof(u));
        return 0;
    case KV_U32:
        if (kv_number(val, false, UINT32_MAX, &v)) {
            return -1;
        }
        u32 = (uint32_t)v;
        memcpy(p, &u32, sizeof(u32));
        return 0;
    case KV_U64:
        if (kv_number(val, false, UINT64_MAX, &v)) {
            return -1;
        }
        memcpy(p, &v, sizeof(v));
        return 0;
    }
    return -1;
}

static const struct kv_field *kv_find(const struct kv_field *fields,
                                      const char *key, size_t n)
{
    for (const struct kv_field *f = fields; f->key; f++) {
        if (strlen(f->key) == n && !memcmp(f->key, key, n)) {
            return f;
        }
    }
    return NULL;
}

/* One " key=value" token list (after the record kind) into rec. */
static int kv_fill(struct kv_reader *r, const char *s, size_t n,
                   const struct kv_field *fields, void *rec)
{
    char val[512];
    size_t i = 0;

    while (i < n) {
        size_t start, eq, end, vlen;
        const struct kv_field *f;

        while (i < n && s[i] == ' ') {
            i++;
        }
        start = i;
        while (i < n && s[i] != ' ') {
            i++;
        }
        end = i;
        if (start == end) {
            break;
        }
        for (eq = start; eq < end && s[eq] != '='; eq++) {
        }
        if (eq == end) {
            return kv_fail(r, "a field without '='");
        }
        f = kv_find(fields, s + start, eq - start);
        if (!f) {
            continue; /* a newer mediator's field */
        }
        if (kv_unescape(s + eq + 1, end - eq - 1, val, sizeof(val), &vlen) ||
            memchr(val, '\0', vlen) || kv_store(f, val, (char *)rec + f->off)) {
            return kv_fail(r, "a bad value");
        }
    }
    return 0;
}

static bool kv_kind(const char *line, size_t n, const char *kind, size_t *rest)
{
    size_t k = strlen(kind);

    if (n < k || memcmp(line, kind, k) || (n > k && line[k] != ' ')) {
        return false;
    }
    *rest = k;
    return true;
}

static int kv_line(struct kv_reader *r, const char *line, size_t n,
                   struct vgpu_stats *out)
{
    size_t rest;

    if (kv_kind(line, n, "mediator", &rest)) {
        return kv_fill(r, line + rest, n - rest, kv_mediator, out);
    }
    if (kv_kind(line, n, "gpu", &rest)) {
        if (out->ngpus >= VGPU_BACKEND_MAX_GPUS) {
            return kv_fail(r, "too many GPUs");
        }
        return kv_fill(r, line + rest, n - rest, kv_gpu,
                       &out->gpus[out->ngpus++]);
    }
    if (kv_kind(line, n, "vm", &rest)) {
        if (out->nvms >= VGPU_STATS_MAX_VMS) {
            return kv_fail(r, "too many VMs");
        }
        return kv_fill(r, line + rest, n - rest, kv_vm, &out->vms[out->nvms++]);
    }
    return 0; /* a newer mediator's record */
}

int render_kv_parse(const char *text, size_t len, struct vgpu_stats *out,
                    char *err, size_t errlen)
{
    struct kv_reader r = {err, errlen, 0};
    const char *p = text, *end = text + len;
    bool header = false;

    memset(out, 0, sizeof(*out));
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n;

        r.line++;
        if (!nl) {
            return kv_fail(&r, "the answer is cut short");
        }
        n = (size_t)(nl - p);
        if (!header) {
            if (!kv_kind(p, n, "vgpu-stats", &(size_t){0})) {
                return kv_fail(&r, "not a vgpu-stats answer");
            }
            header = true;
        } else if (n == 3 && !memcmp(p, "end", 3)) {
            return 0;
        } else if (kv_line(&r, p, n, out)) {
            return -1;
        }
        p = nl + 1;
    }
    r.line++;
    return kv_fail(&r,
                   header ? "the answer is cut short" : "the answer is empty");
}
