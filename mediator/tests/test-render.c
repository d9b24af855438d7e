/*
 * test-render.c - unit tests of the snapshot's text forms: the exact JSON,
 * Prometheus and key=value text of a small snapshot, escaping of hostile
 * names (checked by a small JSON reader of the test's own), the empty
 * snapshot, the largest snapshot, and the key=value reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "render.h"
#include "vgpu_protocol.h"

/* ---------------------------------------------------------------------- */
/* snapshots                                                               */
/* ---------------------------------------------------------------------- */

static struct vgpu_stats *small_snapshot(void)
{
    struct vgpu_stats *s = calloc(1, sizeof(*s));
    struct vgpu_gpu_stats *g = &s->gpus[0];
    struct vgpu_vm_stats *v = &s->vms[0];

    assert_non_null(s);
    s->pid = 4242;
    strcpy(s->backend, "cpu");
    strcpy(s->backend_note, "CUDA backend not built");
    s->uptime_ns = 10000000000u;
    s->now_ns = 123000000000u;
    strcpy(s->schedule, "equal");
    s->ngpus = 1;
    strcpy(g->info.name, "CPU reference 0");
    strcpy(g->pools, "A,B");
    g->info.mem_total = 17179869184u;
    g->busy = true;
    g->busy_ns = 2500000000u;
    g->jobs = 42;
    s->nvms = 2;
    v->domid = 1;
    strcpy(v->name, "web-01");
    v->assigned = true;
    strcpy(v->pool, "gpu-pool.1");
    v->priority = VGPU_PRIO_HIGH;
    v->vm_id = 7;
    v->connected = true;
    v->served = 100;
    v->errors = 2;
    v->queued = 3;
    v->gpu_ns = 1500000000u;
    v->mem_used = 1048576;
    v->mem_quota = 268435456;
    v->cuda_contexts = 2;
    v->cuda_calls = 10055;
    v = &s->vms[1];
    v->domid = 2;
    return s;
}

static const char small_json[] =
    "{\n"
    "  \"schema\": 1,\n"
    "  \"mediator\": {\"pid\": 4242, \"backend\": \"cpu\", \"backend_note\": "
    "\"CUDA backend not built\", \"uptime_ns\": 10000000000, \"now_ns\": "
    "123000000000, \"starvation_bound\": 0, \"schedule\": \"equal\"},\n"
    "  \"gpus\": [\n"
    "    {\"index\": 0, \"name\": \"CPU reference 0\", \"uuid\": \"\", "
    "\"pools\": \"A,B\", \"mem_total\": 17179869184, \"busy\": true, "
    "\"busy_ns\": 2500000000, \"jobs\": 42, \"utilization\": 0.250000}\n"
    "  ],\n"
    "  \"vms\": [\n"
    "    {\"domid\": 1, \"name\": \"web-01\", \"assigned\": true, \"pool\": "
    "\"gpu-pool.1\", \"priority\": \"high\", \"vm_id\": 7, \"connected\": "
    "true, "
    "\"served\": 100, \"errors\": 2, \"queued\": 3, \"gpu_ns\": 1500000000, "
    "\"mem_used\": 1048576, \"mem_quota\": 268435456, \"cuda_contexts\": 2, "
    "\"cuda_calls\": 10055},\n"
    "    {\"domid\": 2, \"name\": \"\", \"assigned\": false, \"pool\": null, "
    "\"priority\": null, \"vm_id\": null, \"connected\": false, \"served\": 0, "
    "\"errors\": 0, \"queued\": 0, \"gpu_ns\": 0, \"mem_used\": 0, "
    "\"mem_quota\": 0, \"cuda_contexts\": 0, \"cuda_calls\": 0}\n"
    "  ]\n"
    "}\n";

#define GPU0 "{gpu=\"0\",name=\"CPU reference 0\",uuid=\"\"}"
#define VM1                                                                    \
    "{domid=\"1\",vm_id=\"7\",name=\"web-01\",pool=\"gpu-pool.1\","            \
    "priority=\"high\"}"
#define VM2 "{domid=\"2\",vm_id=\"\",name=\"\",pool=\"\",priority=\"\"}"

static const char small_prometheus[] =
    "# HELP vgpu_mediator_info The mediator's backend and why it runs that "
    "one; always 1.\n"
    "# TYPE vgpu_mediator_info gauge\n"
    "vgpu_mediator_info{backend=\"cpu\",note=\"CUDA backend not built\"} 1\n"
    "# HELP vgpu_mediator_uptime_seconds Seconds since the mediator started.\n"
    "# TYPE vgpu_mediator_uptime_seconds gauge\n"
    "vgpu_mediator_uptime_seconds 10.000000000\n"
    "# HELP vgpu_mediator_starvation_bound A waiting request runs after at "
    "most this many of higher priority; 0: strict priority.\n"
    "# TYPE vgpu_mediator_starvation_bound gauge\n"
    "vgpu_mediator_starvation_bound 0\n"
    "# HELP vgpu_gpu_info A GPU the mediator schedules on and the pools it "
    "serves; always 1.\n"
    "# TYPE vgpu_gpu_info gauge\n"
    "vgpu_gpu_info{gpu=\"0\",name=\"CPU reference 0\",uuid=\"\",pools=\"A,B\"} "
    "1\n"
    "# HELP vgpu_gpu_memory_total_bytes Device memory of the GPU, bytes.\n"
    "# TYPE vgpu_gpu_memory_total_bytes gauge\n"
    "vgpu_gpu_memory_total_bytes" GPU0 " 17179869184\n"
    "# HELP vgpu_gpu_busy 1 while the GPU runs a job.\n"
    "# TYPE vgpu_gpu_busy gauge\n"
    "vgpu_gpu_busy" GPU0 " 1\n"
    "# HELP vgpu_gpu_busy_seconds_total Time the GPU spent running jobs since "
    "the mediator started, seconds.\n"
    "# TYPE vgpu_gpu_busy_seconds_total counter\n"
    "vgpu_gpu_busy_seconds_total" GPU0 " 2.500000000\n"
    "# HELP vgpu_gpu_jobs_total Jobs the GPU ran since the mediator started.\n"
    "# TYPE vgpu_gpu_jobs_total counter\n"
    "vgpu_gpu_jobs_total" GPU0 " 42\n"
    "# HELP vgpu_gpu_utilization_ratio Share of the time since the mediator "
    "started that the GPU was busy, 0 to 1.\n"
    "# TYPE vgpu_gpu_utilization_ratio gauge\n"
    "vgpu_gpu_utilization_ratio" GPU0 " 0.250000\n"
    "# HELP vgpu_vm_connected 1 while the domain's vgpu-stub device is "
    "connected to the mediator.\n"
    "# TYPE vgpu_vm_connected gauge\n"
    "vgpu_vm_connected" VM1 " 1\n"
    "vgpu_vm_connected" VM2 " 0\n"
    "# HELP vgpu_vm_requests_served_total Requests of the domain answered "
    "with a result.\n"
    "# TYPE vgpu_vm_requests_served_total counter\n"
    "vgpu_vm_requests_served_total" VM1 " 100\n"
    "vgpu_vm_requests_served_total" VM2 " 0\n"
    "# HELP vgpu_vm_requests_errors_total Requests of the domain answered "
    "with an error.\n"
    "# TYPE vgpu_vm_requests_errors_total counter\n"
    "vgpu_vm_requests_errors_total" VM1 " 2\n"
    "vgpu_vm_requests_errors_total" VM2 " 0\n"
    "# HELP vgpu_vm_completions_dropped_total Completions dropped because the "
    "connection that sent the request had gone (a restarted qemu-dm): never "
    "delivered to another.\n"
    "# TYPE vgpu_vm_completions_dropped_total counter\n"
    "vgpu_vm_completions_dropped_total" VM1 " 0\n"
    "vgpu_vm_completions_dropped_total" VM2 " 0\n"
    "# HELP vgpu_vm_requests_queued Requests of the domain waiting for a GPU "
    "now.\n"
    "# TYPE vgpu_vm_requests_queued gauge\n"
    "vgpu_vm_requests_queued" VM1 " 3\n"
    "vgpu_vm_requests_queued" VM2 " 0\n"
    "# HELP vgpu_vm_gpu_seconds_total Execution time the domain's requests "
    "used on the backend, seconds.\n"
    "# TYPE vgpu_vm_gpu_seconds_total counter\n"
    "vgpu_vm_gpu_seconds_total" VM1 " 1.500000000\n"
    "vgpu_vm_gpu_seconds_total" VM2 " 0.000000000\n"
    "# HELP vgpu_vm_memory_used_bytes Device memory the domain holds now, "
    "bytes.\n"
    "# TYPE vgpu_vm_memory_used_bytes gauge\n"
    "vgpu_vm_memory_used_bytes" VM1 " 1048576\n"
    "vgpu_vm_memory_used_bytes" VM2 " 0\n"
    "# HELP vgpu_vm_memory_quota_bytes Device memory the domain may hold, "
    "bytes; 0: no quota.\n"
    "# TYPE vgpu_vm_memory_quota_bytes gauge\n"
    "vgpu_vm_memory_quota_bytes" VM1 " 268435456\n"
    "vgpu_vm_memory_quota_bytes" VM2 " 0\n"
    "# HELP vgpu_vm_cuda_contexts Guest CUDA contexts the domain has now "
    "(protocol v3).\n"
    "# TYPE vgpu_vm_cuda_contexts gauge\n"
    "vgpu_vm_cuda_contexts" VM1 " 2\n"
    "vgpu_vm_cuda_contexts" VM2 " 0\n"
    "# HELP vgpu_vm_cuda_calls_total Remoted CUDA calls of the domain that "
    "ran (protocol v3).\n"
    "# TYPE vgpu_vm_cuda_calls_total counter\n"
    "vgpu_vm_cuda_calls_total" VM1 " 10055\n"
    "vgpu_vm_cuda_calls_total" VM2 " 0\n";

static const char small_kv[] =
    "vgpu-stats 1\n"
    "mediator pid=4242 backend=cpu backend_note=CUDA%20backend%20not%20built "
    "uptime_ns=10000000000 now_ns=123000000000 starvation_bound=0 "
    "schedule=equal\n"
    "gpu index=0 name=CPU%20reference%200 uuid= pools=A,B "
    "mem_total=17179869184 busy=1 busy_ns=2500000000 jobs=42\n"
    "vm domid=1 name=web-01 assigned=1 pool=gpu-pool.1 priority=2 vm_id=7 "
    "connected=1 "
    "served=100 errors=2 stale=0 queued=3 gpu_ns=1500000000 mem_used=1048576 "
    "mem_quota=268435456 cuda_contexts=2 cuda_calls=10055\n"
    "vm domid=2 name= assigned=0 pool= priority=0 vm_id=0 connected=0 "
    "served=0 errors=0 stale=0 queued=0 gpu_ns=0 mem_used=0 mem_quota=0 "
    "cuda_contexts=0 cuda_calls=0\n"
    "end\n";

/* ---------------------------------------------------------------------- */
/* a small JSON reader: checks the syntax, collects the strings decoded     */
/* ---------------------------------------------------------------------- */

#define JSON_MAX_STRINGS 20000

struct json {
    const char *p, *end;
    unsigned nstr;
    char *str[JSON_MAX_STRINGS];
};

static int json_value(struct json *j, int depth);

static void json_ws(struct json *j)
{
    while (j->p < j->end && strchr(" \t\r\n", *j->p)) {
        j->p++;
    }
}

static int json_hex4(struct json *j, unsigned *cp)
{
    char hex[5];

    if (j->end - j->p < 4) {
        return -1;
    }
    memcpy(hex, j->p, 4);
    hex[4] = '\0';
    if (strspn(hex, "0123456789abcdefABCDEF") != 4) {
        return -1;
    }
    *cp = (unsigned)strtoul(hex, NULL, 16);
    j->p += 4;
    return 0;
}

/* A string at j->p (after its quote); its decoded bytes are kept. */
static int json_string(struct json *j)
{
    char *out = malloc((size_t)(j->end - j->p) + 1);
    size_t o = 0;

    assert_non_null(out);
    while (j->p < j->end && *j->p != '"') {
        unsigned char c = (unsigned char)*j->p;
        size_t len;
        unsigned cp;

        if (c < 0x20) {
            goto err_free;
        }
        if (c != '\\') {
            len = render_utf8_len((const unsigned char *)j->p,
                                  (size_t)(j->end - j->p));
            if (!len) {
                goto err_free;
            }
            memcpy(out + o, j->p, len);
            o += len;
            j->p += len;
            continue;
        }
        j->p++;
        if (j->p >= j->end) {
            goto err_free;
        }
        c = (unsigned char)*j->p++;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            out[o++] = (char)c;
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'u':
            if (json_hex4(j, &cp) || cp >= 0x80) {
                goto err_free; /* the renderer escapes ASCII only */
            }
            out[o++] = (char)cp;
            break;
        default:
            goto err_free;
        }
    }
    if (j->p >= j->end) {
        goto err_free;
    }
    j->p++;
    out[o] = '\0';
    assert_true(j->nstr < JSON_MAX_STRINGS);
    j->str[j->nstr++] = out;
    return 0;

err_free:
    free(out);
    return -1;
}

static int json_members(struct json *j, char close, int depth)
{
    json_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        return 0;
    }
    for (;;) {
        json_ws(j);
        if (close == '}') {
            if (j->p >= j->end || *j->p++ != '"' || json_string(j)) {
                return -1;
            }
            json_ws(j);
            if (j->p >= j->end || *j->p++ != ':') {
                return -1;
            }
        }
        if (json_value(j, depth + 1)) {
            return -1;
        }
        json_ws(j);
        if (j->p >= j->end) {
            return -1;
        }
        if (*j->p == close) {
            j->p++;
            return 0;
        }
        if (*j->p++ != ',') {
            return -1;
        }
    }
}

static int json_value(struct json *j, int depth)
{
    static const char *const words[] = {"true", "false", "null"};

    json_ws(j);
    if (j->p >= j->end || depth > 16) {
        return -1;
    }
    switch (*j->p) {
    case '{':
    case '[':
        return json_members(j, *j->p++ == '{' ? '}' : ']', depth);
    case '"':
        j->p++;
        return json_string(j);
    default:
        break;
    }
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);

        if ((size_t)(j->end - j->p) >= n && !memcmp(j->p, words[i], n)) {
            j->p += n;
            return 0;
        }
    }
    if (strchr("-0123456789", *j->p)) {
        char *e;

        strtod(j->p, &e);
        j->p = e;
        return 0;
    }
    return -1;
}

static void json_free(struct json *j)
{
    for (unsigned i = 0; i < j->nstr; i++) {
        free(j->str[i]);
    }
    free(j);
}

/* Parse the whole text; fails the test if it is not one JSON value. */
static struct json *json_parse(const char *text, size_t len)
{
    struct json *j = calloc(1, sizeof(*j));

    assert_non_null(j);
    j->p = text;
    j->end = text + len;
    assert_int_equal(json_value(j, 0), 0);
    json_ws(j);
    assert_true(j->p == j->end);
    return j;
}

static bool json_has_string(const struct json *j, const char *s)
{
    for (unsigned i = 0; i < j->nstr; i++) {
        if (!strcmp(j->str[i], s)) {
            return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------------------- */
/* tests                                                                   */
/* ---------------------------------------------------------------------- */

static void test_small_json(void **state)
{
    struct vgpu_stats *s = small_snapshot();
    struct rbuf b;
    struct json *j;

    (void)state;
    rbuf_init(&b, 0);
    assert_int_equal(render_json(s, &b), 0);
    assert_string_equal(b.data, small_json);
    j = json_parse(b.data, b.len);
    assert_true(json_has_string(j, "web-01"));
    json_free(j);
    rbuf_free(&b);
    free(s);
}

static void test_small_prometheus(void **state)
{
    struct vgpu_stats *s = small_snapshot();
    struct rbuf b;

    (void)state;
    rbuf_init(&b, 0);
    assert_int_equal(render_prometheus(s, &b), 0);
    assert_string_equal(b.data, small_prometheus);
    rbuf_free(&b);
    free(s);
}

static void test_small_kv_round_trip(void **state)
{
    struct vgpu_stats *s = small_snapshot();
    struct vgpu_stats *back = calloc(1, sizeof(*back));
    char err[128] = "";
    struct rbuf b;

    (void)state;
    assert_non_null(back);
    rbuf_init(&b, 0);
    assert_int_equal(render_kv(s, &b), 0);
    assert_string_equal(b.data, small_kv);
    assert_int_equal(render_kv_parse(b.data, b.len, back, err, sizeof(err)), 0);
    assert_memory_equal(back, s, sizeof(*s));
    rbuf_free(&b);
    free(back);
    free(s);
}

static void test_empty(void **state)
{
    struct vgpu_stats *s = calloc(1, sizeof(*s));
    struct rbuf b;
    struct json *j;

    (void)state;
    assert_non_null(s);
    rbuf_init(&b, 0);
    assert_int_equal(render_json(s, &b), 0);
    assert_string_equal(
        b.data, "{\n"
                "  \"schema\": 1,\n"
                "  \"mediator\": {\"pid\": 0, \"backend\": \"\", "
                "\"backend_note\": \"\", \"uptime_ns\": 0, \"now_ns\": 0, "
                "\"starvation_bound\": 0, \"schedule\": \"\"},\n"
                "  \"gpus\": [],\n"
                "  \"vms\": []\n"
                "}\n");
    j = json_parse(b.data, b.len);
    json_free(j);
    rbuf_reset(&b);
    assert_int_equal(render_prometheus(s, &b), 0);
    /* Every family is announced; only the mediator's have samples. */
    assert_non_null(strstr(b.data, "# TYPE vgpu_vm_requests_served_total "
                                   "counter\n# HELP vgpu_vm_requests_errors"));
    assert_null(strstr(b.data, "vgpu_vm_connected{"));
    assert_null(strstr(b.data, "vgpu_gpu_busy{"));
    assert_non_null(strstr(b.data, "\nvgpu_mediator_uptime_seconds "
                                   "0.000000000\n"));
    rbuf_reset(&b);
    assert_int_equal(render_kv(s, &b), 0);
    assert_non_null(strstr(b.data, "\nend\n"));
    rbuf_free(&b);
    free(s);
}

/* Names with everything a xenstore value or a GPU driver might hold. */
static const char hostile_vm[] = "a\"b\\c\nd\x01"
                                 "e\x7f"
                                 "f\xc3\xa9g\xff"
                                 "h\xe2\x82";
static const char hostile_gpu[] = "GPU \"x\" \\ \t\r \xf0\x9f\x98\x80 end";

/* Replace a field whole, so that a round trip compares equal. */
#define SET_FIELD(f, str)                                                      \
    do {                                                                       \
        memset((f), 0, sizeof(f));                                             \
        memcpy((f), (str), sizeof(str) - 1);                                   \
    } while (0)

static struct vgpu_stats *hostile_snapshot(void)
{
    struct vgpu_stats *s = small_snapshot();

    SET_FIELD(s->vms[0].name, hostile_vm);
    SET_FIELD(s->gpus[0].info.name, hostile_gpu);
    SET_FIELD(s->backend_note, "note with } and {\"");
    return s;
}

static void test_hostile_json(void **state)
{
    struct vgpu_stats *s = hostile_snapshot();
    struct rbuf b;
    struct json *j;

    (void)state;
    rbuf_init(&b, 0);
    assert_int_equal(render_json(s, &b), 0);
    assert_non_null(strstr(b.data, "\"name\": \"a\\\"b\\\\c\\nd\\u0001e\\u007f"
                                   "f\xc3\xa9g\xef\xbf\xbdh\xef\xbf\xbd\xef"
                                   "\xbf\xbd\""));
    assert_non_null(strstr(b.data, "\"name\": \"GPU \\\"x\\\" \\\\ \\t\\r "
                                   "\xf0\x9f\x98\x80 end\""));
    j = json_parse(b.data, b.len);
    /* What a JSON reader gets back: invalid bytes became U+FFFD. */
    assert_true(json_has_string(j, "a\"b\\c\nd\x01"
                                   "e\x7f"
                                   "f\xc3\xa9g\xef\xbf\xbdh\xef\xbf\xbd\xef"
                                   "\xbf\xbd"));
    assert_true(json_has_string(j, hostile_gpu));
    assert_true(json_has_string(j, "note with } and {\""));
    json_free(j);
    rbuf_free(&b);
    free(s);
}

static void test_hostile_prometheus(void **state)
{
    struct vgpu_stats *s = hostile_snapshot();
    unsigned lines = 0, plain_lines = 0;
    struct rbuf b, plain;

    (void)state;
    rbuf_init(&b, 0);
    rbuf_init(&plain, 0);
    assert_int_equal(render_prometheus(s, &b), 0);
    assert_non_null(
        strstr(b.data, "vgpu_vm_connected{domid=\"1\",vm_id=\"7\",name=\"a\\\"b"
                       "\\\\c\\nd\xef\xbf\xbd"
                       "e\xef\xbf\xbd"
                       "f\xc3\xa9g\xef\xbf\xbdh\xef\xbf\xbd\xef\xbf\xbd\","
                       "pool=\"gpu-pool.1\",priority=\"high\"} 1\n"));
    assert_non_null(strstr(b.data, "name=\"GPU \\\"x\\\" \\\\ "
                                   "\xef\xbf\xbd\xef\xbf\xbd "
                                   "\xf0\x9f\x98\x80 end\""));
    /* The names add no line: as many lines as with plain names. */
    free(s);
    s = small_snapshot();
    assert_int_equal(render_prometheus(s, &plain), 0);
    for (size_t i = 0; i < b.len; i++) {
        lines += b.data[i] == '\n';
    }
    for (size_t i = 0; i < plain.len; i++) {
        plain_lines += plain.data[i] == '\n';
    }
    assert_int_equal(lines, plain_lines);
    rbuf_free(&plain);
    rbuf_free(&b);
    free(s);
}

static void test_hostile_kv_round_trip(void **state)
{
    struct vgpu_stats *s = hostile_snapshot();
    struct vgpu_stats *back = calloc(1, sizeof(*back));
    char err[128] = "";
    struct rbuf b;

    (void)state;
    assert_non_null(back);
    rbuf_init(&b, 0);
    assert_int_equal(render_kv(s, &b), 0);
    assert_non_null(
        strstr(b.data, " name=a\"b\\c%0Ad%01e%7Ff%C3%A9g%FFh%E2%82 "));
    assert_int_equal(render_kv_parse(b.data, b.len, back, err, sizeof(err)), 0);
    assert_memory_equal(back, s, sizeof(*s));
    rbuf_free(&b);
    free(back);
    free(s);
}

/* Every VM and GPU there can be, every name 63 bytes of the worst kind. */
static struct vgpu_stats *full_snapshot(void)
{
    struct vgpu_stats *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    s->nvms = VGPU_STATS_MAX_VMS;
    s->ngpus = VGPU_BACKEND_MAX_GPUS;
    memset(s->backend, '"', sizeof(s->backend) - 1);
    memset(s->backend_note, '\x01', sizeof(s->backend_note) - 1);
    s->uptime_ns = s->now_ns = UINT64_MAX;
    for (unsigned i = 0; i < s->nvms; i++) {
        struct vgpu_vm_stats *v = &s->vms[i];

        v->domid = UINT32_MAX - i;
        memset(v->name, '\x1f', sizeof(v->name) - 1);
        v->assigned = true;
        memset(v->pool, '"', sizeof(v->pool) - 1);
        v->priority = UINT32_MAX;
        v->vm_id = UINT32_MAX;
        v->served = v->errors = v->queued = v->gpu_ns = UINT64_MAX;
        v->mem_used = v->mem_quota = UINT64_MAX;
    }
    for (unsigned i = 0; i < s->ngpus; i++) {
        struct vgpu_gpu_stats *g = &s->gpus[i];

        g->index = i;
        memset(g->info.name, '\n', sizeof(g->info.name) - 1);
        memset(g->info.uuid, '\\', sizeof(g->info.uuid) - 1);
        memset(g->pools, '\xff', sizeof(g->pools) - 1);
        g->busy_ns = g->jobs = g->info.mem_total = UINT64_MAX;
    }
    return s;
}

static void test_full_snapshot_fits(void **state)
{
    struct vgpu_stats *s = full_snapshot();
    struct vgpu_stats *back = calloc(1, sizeof(*back));
    char err[128] = "";
    struct rbuf b;
    struct json *j;

    (void)state;
    assert_non_null(back);
    rbuf_init(&b, RENDER_OUTPUT_MAX);
    assert_int_equal(render_json(s, &b), 0);
    j = json_parse(b.data, b.len);
    json_free(j);
    printf("full snapshot: JSON %zu bytes", b.len);
    rbuf_reset(&b);
    assert_int_equal(render_prometheus(s, &b), 0);
    printf(", Prometheus %zu bytes", b.len);
    rbuf_reset(&b);
    assert_int_equal(render_kv(s, &b), 0);
    printf(", key=value %zu bytes (limit %u)\n", b.len, RENDER_OUTPUT_MAX);
    assert_int_equal(render_kv_parse(b.data, b.len, back, err, sizeof(err)), 0);
    assert_memory_equal(back, s, sizeof(*s));
    /* Counts past the arrays are not believed. */
    s->nvms = 100000;
    s->ngpus = 1000;
    rbuf_reset(&b);
    assert_int_equal(render_kv(s, &b), 0);
    assert_int_equal(render_kv_parse(b.data, b.len, back, err, sizeof(err)), 0);
    assert_int_equal(back->nvms, VGPU_STATS_MAX_VMS);
    assert_int_equal(back->ngpus, VGPU_BACKEND_MAX_GPUS);
    rbuf_free(&b);
    free(back);
    free(s);
}

static void expect_kv_error(const char *text, const char *msg)
{
    struct vgpu_stats *s = calloc(1, sizeof(*s));
    char err[128] = "";

    assert_non_null(s);
    assert_int_equal(render_kv_parse(text, strlen(text), s, err, sizeof(err)),
                     -1);
    if (!strstr(err, msg)) {
        fail_msg("error \"%s\" lacks \"%s\"", err, msg);
    }
    free(s);
}

static void test_kv_parse_errors(void **state)
{
    struct rbuf b;

    (void)state;
    expect_kv_error("", "empty");
    expect_kv_error("hello\n", "not a vgpu-stats answer");
    expect_kv_error("vgpu-stats 1\nmediator pid=1\n", "cut short");
    expect_kv_error("vgpu-stats 1\nmediator pid=1", "cut short");
    expect_kv_error("vgpu-stats 1\nvm domid=-1\nend\n", "line 2: a bad value");
    expect_kv_error("vgpu-stats 1\nvm domid=4294967296\nend\n", "bad value");
    expect_kv_error("vgpu-stats 1\nvm name=%4\nend\n", "bad value");
    expect_kv_error("vgpu-stats 1\nvm name=%00\nend\n", "bad value");
    expect_kv_error("vgpu-stats 1\nvm pool=ABCDEFGHIJKLMNOPQ\nend\n",
                    "bad value");
    expect_kv_error("vgpu-stats 1\nvm connected=yes\nend\n", "bad value");
    expect_kv_error("vgpu-stats 1\nvm domid\nend\n", "without '='");
    rbuf_init(&b, 0);
    rbuf_puts(&b, "vgpu-stats 1\n");
    for (unsigned i = 0; i <= VGPU_STATS_MAX_VMS; i++) {
        rbuf_printf(&b, "vm domid=%u\n", i);
    }
    rbuf_puts(&b, "end\n");
    expect_kv_error(b.data, "too many VMs");
    rbuf_free(&b);
}

static void test_kv_parse_skips_unknown(void **state)
{
    const char *text = "vgpu-stats 2\n"
                       "mediator pid=9 future=x%20y\n"
                       "scheduler kind=fair\n"
                       "vm domid=3 name=%C3%A9 colour=blue\n"
                       "end\n"
                       "trailing junk";
    struct vgpu_stats *s = calloc(1, sizeof(*s));
    char err[128] = "";

    (void)state;
    assert_non_null(s);
    assert_int_equal(render_kv_parse(text, strlen(text), s, err, sizeof(err)),
                     0);
    assert_int_equal(s->pid, 9);
    assert_int_equal(s->nvms, 1);
    assert_int_equal(s->vms[0].domid, 3);
    assert_string_equal(s->vms[0].name, "\xc3\xa9");
    free(s);
}

static void test_rbuf_limit(void **state)
{
    struct rbuf b;

    (void)state;
    rbuf_init(&b, 8);
    rbuf_puts(&b, "12345678");
    assert_false(b.failed);
    assert_string_equal(b.data, "12345678");
    rbuf_puts(&b, "9");
    assert_true(b.failed);
    assert_int_equal(b.len, 8);
    rbuf_printf(&b, "%d", 1);
    assert_int_equal(b.len, 8);
    rbuf_reset(&b);
    assert_false(b.failed);
    rbuf_printf(&b, "%s-%d", "ab", 42);
    assert_string_equal(b.data, "ab-42");
    rbuf_free(&b);
}

static void test_utf8_and_helpers(void **state)
{
    const unsigned char ok[][5] = {
        "a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
    };
    const unsigned char bad[][5] = {
        "\x80",         "\xc0\xaf",         "\xc3", "\xe0\x80\xaf",
        "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", "\xf0\x9f\x98\x20",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t n = strlen((const char *)ok[i]);

        assert_int_equal(render_utf8_len(ok[i], n), n);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(render_utf8_len(bad[i], strlen((const char *)bad[i])),
                         0);
    }
    assert_string_equal(vgpu_priority_name(VGPU_PRIO_LOW), "low");
    assert_string_equal(vgpu_priority_name(VGPU_PRIO_MEDIUM), "medium");
    assert_string_equal(vgpu_priority_name(99), "unknown");
    assert_true(render_ratio(5, 0) == 0.0);
    assert_true(render_ratio(1, 4) == 0.25);
    assert_true(render_ratio(9, 4) == 1.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_json),
        cmocka_unit_test(test_small_prometheus),
        cmocka_unit_test(test_small_kv_round_trip),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_hostile_json),
        cmocka_unit_test(test_hostile_prometheus),
        cmocka_unit_test(test_hostile_kv_round_trip),
        cmocka_unit_test(test_full_snapshot_fits),
        cmocka_unit_test(test_kv_parse_errors),
        cmocka_unit_test(test_kv_parse_skips_unknown),
        cmocka_unit_test(test_rbuf_limit),
        cmocka_unit_test(test_utf8_and_helpers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
