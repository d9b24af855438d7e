/*
 * cuda-shim/export.c - owns cuGetExportTable: the driver's private tables
 * that NVIDIA's runtime (cudart, linked statically by plain nvcc) asks for
 * before its first call, and what their called slots do.
 *
 * The tables are undocumented.  What is served here was found by running
 * nvcc-built runtime programs (CUDA 13.0) against a logging libcuda and
 * finding what each slot cudart calls must answer
 * (guest-tools/cuda-shim/export-notes.md has the whole account, with what
 * was tested and what is taken from public reverse-engineering notes).  A
 * table is an array of pointer-sized slots, the first one its size in
 * bytes (except the context-local storage table); slots cudart was never
 * seen to call hold a stub that answers CUDA_ERROR_NOT_SUPPORTED, never
 * NULL.
 *
 *   6bd5fb6c  the runtime interface: slot 2 gives the primary context
 *   a094798c  tools callback hooks: slots 2 and 6 give zeroed flag buffers
 *             (all tools callbacks off); its size must say 7 slots
 *   42d85a81  tools thread-local storage: must exist, never read
 *   c693336e  context-local storage: put, delete, get of a value per
 *             (context, key), which cudart keeps its per-context state in
 *   263e8860  context checks: slot 2 answers "nothing to report"
 *   d4082055  integrity check: slot 1 answers a keyed hash (HMAC-MD2) over
 *             this process, these tables and the devices, which cudart
 *             computes too and compares; it must be computed here, in the
 *             guest, from the values this library reports
 *   f8cff951  refused: cudart does without it
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "md2.h"
#include "shim.h"

static int stub(void)
{
    return VGPU_CU_ERROR_NOT_SUPPORTED;
}

#define STUB ((void *)stub)

/* ---------------------------------------------------------------------- */
/* 6bd5fb6c: the runtime interface                                         */
/* ---------------------------------------------------------------------- */

/* The primary context of dev: the handle cuDevicePrimaryCtxRetain gives,
 * not made current, not retained (cudart retains it itself). */
static CUresult rt_primary_ctx(CUcontext *pctx, CUdevice dev)
{
    uint64_t h = 0;
    CUresult r;

    if (!pctx) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    r = shim_primary_ctx(dev, &h);
    if (r == VGPU_CU_SUCCESS) {
        *pctx = (CUcontext)(uintptr_t)h;
    }
    return r;
}

static void *runtime_if[13] = {
    (void *)(13 * sizeof(void *)),
    STUB,
    (void *)rt_primary_ctx,
    STUB,
    STUB,
    STUB,
    STUB,
    STUB,
    STUB,
    STUB,
    STUB,
    STUB,
    STUB,
};

/* ---------------------------------------------------------------------- */
/* a094798c: tools callback hooks, all off                                 */
/* ---------------------------------------------------------------------- */

static uint32_t hook_flags[1024];
static uint8_t hook_flags2[64];

static void hooks_buffer(void **ptr, size_t *size)
{
    *ptr = hook_flags;
    *size = 1024;
}

static void hooks_buffer2(void **ptr, size_t *size)
{
    *ptr = hook_flags2;
    *size = 14; /* cudart reads 14 flags; fewer crash it */
}

static void *tools_hooks[7] = {
    (void *)(7 * sizeof(void *)), STUB, (void *)hooks_buffer, STUB, STUB, STUB,
    (void *)hooks_buffer2,
};

/* 42d85a81: tools thread-local storage, asked for, never read. */
static void *tools_tls[4] = {(void *)(4 * sizeof(void *)), STUB, STUB, STUB};

/* ---------------------------------------------------------------------- */
/* c693336e: context-local storage                                         */
/* ---------------------------------------------------------------------- */

struct cls_entry {
    uint64_t ctx;
    void *key, *value;
    void (*dtor)(CUcontext ctx, void *key, void *value);
};

static pthread_mutex_t cls_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cls_entry *cls;
static size_t ncls, cls_cap;

static uint64_t cls_ctx(CUcontext ctx)
{
    return ctx ? (uint64_t)(uintptr_t)ctx : shim_current();
}

static struct cls_entry *cls_find(uint64_t ctx, void *key)
{
    for (size_t i = 0; i < ncls; i++) {
        if (cls[i].ctx == ctx && cls[i].key == key) {
            return &cls[i];
        }
    }
    return NULL;
}

static CUresult cls_put(CUcontext ctx, void *key, void *value,
                        void (*dtor)(CUcontext, void *, void *))
{
    uint64_t c = cls_ctx(ctx);
    struct cls_entry *e;

    if (!c) {
        return VGPU_CU_ERROR_INVALID_CONTEXT;
    }
    pthread_mutex_lock(&cls_lock);
    e = cls_find(c, key);
    if (!e) {
        if (ncls == cls_cap) {
            size_t cap = cls_cap ? 2 * cls_cap : 16;
            struct cls_entry *p = realloc(cls, cap * sizeof(*p));

            if (!p) {
                pthread_mutex_unlock(&cls_lock);
                return VGPU_CU_ERROR_OUT_OF_MEMORY;
            }
            cls = p;
            cls_cap = cap;
        }
        e = &cls[ncls++];
    }
    *e = (struct cls_entry){c, key, value, dtor};
    pthread_mutex_unlock(&cls_lock);
    return VGPU_CU_SUCCESS;
}

static CUresult cls_del(CUcontext ctx, void *key)
{
    uint64_t c = cls_ctx(ctx);
    struct cls_entry *e;

    pthread_mutex_lock(&cls_lock);
    e = cls_find(c, key);
    if (e) {
        *e = cls[--ncls];
    }
    pthread_mutex_unlock(&cls_lock);
    return e ? VGPU_CU_SUCCESS : VGPU_CU_ERROR_INVALID_HANDLE;
}

/* A miss must be an error: it is how cudart learns to set the context
 * up (and then puts its state). */
static CUresult cls_get(void **value, CUcontext ctx, void *key)
{
    uint64_t c = cls_ctx(ctx);
    struct cls_entry *e;

    if (!value) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&cls_lock);
    e = cls_find(c, key);
    if (e) {
        *value = e->value;
    }
    pthread_mutex_unlock(&cls_lock);
    return e ? VGPU_CU_SUCCESS : VGPU_CU_ERROR_INVALID_HANDLE;
}

void shim_cls_context_gone(uint64_t ctx)
{
    for (;;) {
        struct cls_entry e = {0};
        bool found = false;

        pthread_mutex_lock(&cls_lock);
        for (size_t i = 0; i < ncls; i++) {
            if (cls[i].ctx == ctx) {
                e = cls[i];
                cls[i] = cls[--ncls];
                found = true;
                break;
            }
        }
        pthread_mutex_unlock(&cls_lock);
        if (!found) {
            return;
        }
        if (e.dtor) {
            e.dtor((CUcontext)(uintptr_t)ctx, e.key, e.value);
        }
    }
}

static void *ctx_storage[4] = {(void *)cls_put, (void *)cls_del,
                               (void *)cls_get, NULL};

/* ---------------------------------------------------------------------- */
/* 263e8860: context checks                                                */
/* ---------------------------------------------------------------------- */

static CUresult ctx_check(CUcontext ctx, unsigned *out, void **out2)
{
    (void)ctx;
    (void)out2;
    if (out) {
        *out = 0; /* nothing to report */
    }
    return VGPU_CU_SUCCESS;
}

static CUresult ctx_check_init(void)
{
    return VGPU_CU_SUCCESS;
}

static void *ctx_checks[16] = {
    (void *)(16 * sizeof(void *)),
    STUB,
    (void *)ctx_check,
    (void *)ctx_check_init,
    STUB,
    STUB,
    STUB,
    STUB,
    STUB,
    STUB,
    STUB,
    STUB,
    STUB,
    STUB,
    STUB,
    STUB,
};

/* ---------------------------------------------------------------------- */
/* d4082055: the integrity check                                           */
/* ---------------------------------------------------------------------- */

static CUresult integrity_check(uint32_t version, uint64_t unix_seconds,
                                uint64_t out[2]);

static void *integrity[3] = {(void *)(3 * sizeof(void *)),
                             (void *)integrity_check, STUB};

static const uint8_t integrity_key[16] = {
    0x14, 0x6a, 0xdd, 0xae, 0x53, 0xa9, 0xa7, 0x52,
    0xaa, 0x08, 0x41, 0x36, 0x0b, 0xf5, 0x5a, 0x9f,
};

static void put_u32(uint8_t **p, uint32_t v)
{
    memcpy(*p, &v, 4);
    *p += 4;
}

static void put_u64(uint8_t **p, uint64_t v)
{
    memcpy(*p, &v, 8);
    *p += 8;
}

/*
 * cudart's own computation, answered: versions ending in 0 and 1 have
 * fixed answers; others are HMAC-MD2 over the driver version this library
 * reports, the version asked, this process and thread, the addresses of
 * the runtime interface table, of this table and of this function, the
 * time given, then each device's UUID and PCI domain, bus and device as
 * this library reports them.
 */
static CUresult integrity_check(uint32_t version, uint64_t unix_seconds,
                                uint64_t out[2])
{
    uint8_t msg[48 + 28 * 16], *p = msg, mac[16];
    int driver = 0, count = 0;

    if (!out) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    if (version % 10 == 0) {
        out[0] = 0x3341181c03cb675cull;
        out[1] = 0x8ed383aa1f4cd1e8ull;
        return VGPU_CU_SUCCESS;
    }
    if (version % 10 == 1) {
        out[0] = 0x1841181c03cb675cull;
        out[1] = 0x8ed383aa1f4cd1e8ull;
        return VGPU_CU_SUCCESS;
    }
    cuDriverGetVersion(&driver);
    if (cuDeviceGetCount(&count) != VGPU_CU_SUCCESS || count > 16) {
        return VGPU_CU_ERROR_NOT_INITIALIZED;
    }
    put_u32(&p, (uint32_t)driver);
    put_u32(&p, version);
    put_u32(&p, (uint32_t)getpid());
    put_u32(&p, (uint32_t)pthread_self());
    put_u64(&p, (uint64_t)(uintptr_t)runtime_if);
    put_u64(&p, (uint64_t)(uintptr_t)integrity);
    put_u64(&p, (uint64_t)(uintptr_t)integrity[1]);
    put_u64(&p, unix_seconds);
    for (int d = 0; d < count; d++) {
        CUuuid uuid;
        int dom = 0, bus = 0, dev = 0;

        if (cuDeviceGetUuid(&uuid, d) != VGPU_CU_SUCCESS) {
            return VGPU_CU_ERROR_NOT_INITIALIZED;
        }
        cuDeviceGetAttribute(&dom, 50, d); /* PCI_DOMAIN_ID */
        cuDeviceGetAttribute(&bus, 33, d); /* PCI_BUS_ID */
        cuDeviceGetAttribute(&dev, 34, d); /* PCI_DEVICE_ID */
        memcpy(p, uuid.bytes, 16);
        p += 16;
        put_u32(&p, (uint32_t)dom);
        put_u32(&p, (uint32_t)bus);
        put_u32(&p, (uint32_t)dev);
    }
    hmac_md2(integrity_key, msg, (size_t)(p - msg), mac);
    memcpy(out, mac, 16);
    return VGPU_CU_SUCCESS;
}

/* ---------------------------------------------------------------------- */
/* the lookup                                                              */
/* ---------------------------------------------------------------------- */

static const struct {
    uint8_t id[16];
    void **table;
} tables[] = {
    {{0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a, 0x89, 0x87, 0xd9, 0x39,
      0x12, 0xfd, 0x9d, 0xf9},
     runtime_if},
    {{0xa0, 0x94, 0x79, 0x8c, 0x2e, 0x74, 0x2e, 0x74, 0x93, 0xf2, 0x08, 0x00,
      0x20, 0x0c, 0x0a, 0x66},
     tools_hooks},
    {{0x42, 0xd8, 0x5a, 0x81, 0x23, 0xf6, 0xcb, 0x47, 0x82, 0x98, 0xf6, 0xe7,
      0x8a, 0x3a, 0xec, 0xdc},
     tools_tls},
    {{0xc6, 0x93, 0x33, 0x6e, 0x11, 0x21, 0xdf, 0x11, 0xa8, 0xc3, 0x68, 0xf3,
      0x55, 0xd8, 0x95, 0x93},
     ctx_storage},
    {{0x26, 0x3e, 0x88, 0x60, 0x7c, 0xd2, 0x61, 0x43, 0x92, 0xf6, 0xbb, 0xd5,
      0x00, 0x6d, 0xfa, 0x7e},
     ctx_checks},
    {{0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b, 0x8d, 0x34, 0xba, 0x12,
      0x3c, 0x66, 0xe1, 0xf2},
     integrity},
};

/* Asked for and done without: refused quietly. */
static const uint8_t refused_quietly[16] = {0xf8, 0xcf, 0xf9, 0x51, 0x21, 0x46,
                                            0x8b, 0x4e, 0xb9, 0xe2, 0xfb, 0x46,
                                            0x9e, 0x7c, 0x0d, 0xd9};

API CUresult cuGetExportTable(const void **table, const CUuuid *id)
{
    char name[64];
    const uint8_t *b;

    if (!table || !id) {
        return VGPU_CU_ERROR_INVALID_VALUE;
    }
    *table = NULL;
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        if (memcmp(tables[i].id, id->bytes, 16) == 0) {
            *table = tables[i].table;
            return VGPU_CU_SUCCESS;
        }
    }
    if (memcmp(refused_quietly, id->bytes, 16) == 0) {
        return VGPU_CU_ERROR_NOT_FOUND;
    }
    b = (const uint8_t *)id->bytes;
    snprintf(name, sizeof(name),
             "cuGetExportTable(%02x%02x%02x%02x-%02x%02x-%02x%02x-...)", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
    shim_log("%s: a table vgpu does not have (CUDA_ERROR_NOT_SUPPORTED)", name);
    return VGPU_CU_ERROR_NOT_SUPPORTED;
}
