/*
 * fake-libcuda.c - TEST DOUBLE: a stand-in libcuda.so.1 for the CUDA
 * backend's tests (tests/test-backend-cuda.c) on machines without an
 * NVIDIA GPU.  It lives with the tests, is built only for them (as
 * fake-cuda/libcuda-fake.so next to test-backend-cuda, see cuda/cuda.mk)
 * and is never installed or packaged.
 *
 * NOT a CUDA implementation: it provides exactly the driver entry points
 * backend_cuda.c looks up, runs the five built-in kernels of kernels.cu on
 * the CPU (by name), and checks how it is used, so that the backend's
 * run-time path (dlopen, device enumeration, one context per VM, module
 * loading from the embedded image, buffers, launch shapes, error mapping,
 * context teardown) is exercised for real:
 *
 *  - a call that needs a context fails with CUDA_ERROR_INVALID_CONTEXT
 *    when none is current on the calling thread, or CONTEXT_IS_DESTROYED
 *    when the current one was destroyed;
 *  - device pointers must lie inside an allocation of the CURRENT context
 *    (so one VM's context touching another's memory is an error);
 *  - the module image must be the fatbin nvcc made (magic, size) and hold
 *    the function names looked up;
 *  - launches must cover the problem size the kernel is given.
 *
 * Protocol v3 (remoting, remote/exec.c) loads the guest's own images: any
 * image nvcc made (fatbin, cubin, PTX) is read with common/cuda_image.c,
 * its kernels' names and parameter layouts kept (cuFuncGetParamInfo
 * answers them), and the known kernels of the guest test programs
 * (tests/cuda/kernels.cu: vgpu_test_*; samples.cu: VecAdd_kernel,
 * matrixMul_bs16/32_64bit) run on the CPU by name; a launch
 * of any other kernel is CUDA_ERROR_NOT_SUPPORTED, said as such.  A
 * kernel that touches memory outside its context's allocations faults:
 * CUDA_ERROR_ILLEGAL_ADDRESS, sticky in that context as on a GPU.
 *
 * Behaviour is set by environment variables read at cuInit:
 *   FAKE_CUDA_DEVICES=N       devices (default 1; 0: cuInit says NO_DEVICE)
 *   FAKE_CUDA_INIT_FAIL=1     cuInit fails with CUDA_ERROR_INVALID_DEVICE
 *   FAKE_CUDA_BAD_IMAGE=1     module loads fail (NO_BINARY_FOR_GPU + log)
 *   FAKE_CUDA_MEM_LIMIT=B     device memory per device, bytes (default 1 GiB)
 *   FAKE_CUDA_FAIL_LAUNCH=K   the K-th launch from now fails (LAUNCH_FAILED)
 *   FAKE_CUDA_SGEMM_DELAY_MS  sleep this long in every SGEMM with n >= 512
 *   FAKE_CUDA_HOSTALLOC_FAIL=1  cuMemHostAlloc says OUT_OF_MEMORY (pinned
 *                             memory is a limited resource on a host)
 * and fake_cuda_*() below let a test look inside.
 *
 * Pinned host memory (cuMemHostAlloc) follows the driver's rules: it needs
 * a current context and belongs to it; cuMemFreeHost of a pointer it did
 * not hand out is CUDA_ERROR_INVALID_VALUE; destroying a context frees
 * its blocks still live (the driver does), counted as leaked for the
 * tests.  Every host<->device copy is counted as from pinned memory (its
 * whole host range inside one live block) or pageable.
 */
#include <cuda.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../cuda/image.h" /* the kernel names it answers to */
#include "cuda_image.h"       /* guest images (protocol v3) */

#define API __attribute__((visibility("default")))
#define FATBIN_MAGIC 0xBA55ED50u
#define MAX_DEVICES 16

struct alloc {
    struct alloc *next;
    unsigned char *p;
    size_t size;
};

struct CUctx_st {
    struct CUctx_st *next; /* all contexts ever made: never freed */
    bool alive;
    int dev;
    struct alloc *allocs;
    struct alloc *host; /* cuMemHostAlloc blocks */
    size_t used;
    CUresult sticky; /* a fault: every later call fails with it */
};

enum fake_fn { F_ADD, F_SAXPY, F_INIT, F_GEMM, F_SUM, F_COUNT, F_GUEST };

#define MAX_GUEST_KERNELS 64

struct CUfunc_st {
    enum fake_fn kind;
    /* F_GUEST: a kernel of a guest's image */
    char name[128];
    struct cuda_kernel_info info;
    /* cuFuncSetAttribute's values (bit i of attr_set: attr[i] was set)
     * and cuFuncSetCacheConfig's */
    int attr[16];
    unsigned attr_set;
    int cache_config;
};

struct CUmod_st {
    struct CUctx_st *ctx;
    bool loaded;
    struct CUfunc_st fn[F_COUNT];
    /* A guest's image (protocol v3): its kernels. */
    unsigned nguest;
    struct CUfunc_st *guest[MAX_GUEST_KERNELS];
};

struct CUstream_st {
    struct CUctx_st *ctx;
};

struct CUevent_st {
    struct CUctx_st *ctx;
    double ms;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static __thread struct CUctx_st *current;
static struct CUctx_st *contexts;
static int ndevices = -1;
static bool init_fail, bad_image;
static size_t mem_limit = 1ul << 30;
static long fail_launch; /* 0: never */
static long sgemm_delay_ms;
static size_t dev_used[MAX_DEVICES];
static int contexts_created, contexts_live;
static bool hostalloc_fail;
static int pinned_live, pinned_leaked;
static long copies_pinned, copies_pageable;
/*
 * Small objects handed out as handles, kept reachable until exit (not
 * static: a static array that is never read could be optimised away, and
 * LeakSanitizer would see leaks).
 */
void *fake_cuda_objects[4096];
static int nobjects;

static const char *fn_names[F_COUNT] = {
    VGPU_KERNEL_VECTOR_ADD, VGPU_KERNEL_SAXPY,    VGPU_KERNEL_SGEMM_INIT,
    VGPU_KERNEL_SGEMM,      VGPU_KERNEL_CHECKSUM,
};

static void *keep(size_t size)
{
    void *p = calloc(1, size);

    if (p && nobjects < (int)(sizeof(fake_cuda_objects) /
                              sizeof(fake_cuda_objects[0]))) {
        fake_cuda_objects[nobjects++] = p;
    }
    return p;
}

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);

    return v && *v ? strtol(v, NULL, 0) : def;
}

/* ---------------------------------------------------------------------- */
/* inspection, for tests                                                   */
/* ---------------------------------------------------------------------- */

API int fake_cuda_contexts_live(void);
API int fake_cuda_contexts_created(void);
API size_t fake_cuda_mem_used(int dev);
API int fake_cuda_pinned_live(void);
API int fake_cuda_pinned_leaked(void);
API long fake_cuda_copies_pinned(void);
API long fake_cuda_copies_pageable(void);

static int locked_int(const int *v)
{
    int n;

    pthread_mutex_lock(&lock);
    n = *v;
    pthread_mutex_unlock(&lock);
    return n;
}

static long locked_long(const long *v)
{
    long n;

    pthread_mutex_lock(&lock);
    n = *v;
    pthread_mutex_unlock(&lock);
    return n;
}

API int fake_cuda_pinned_live(void)
{
    return locked_int(&pinned_live);
}

API int fake_cuda_pinned_leaked(void)
{
    return locked_int(&pinned_leaked);
}

API long fake_cuda_copies_pinned(void)
{
    return locked_long(&copies_pinned);
}

API long fake_cuda_copies_pageable(void)
{
    return locked_long(&copies_pageable);
}

/* Count a copy by where its host bytes are: inside one live pinned block
 * of the current context, or anywhere else (under no lock). */
static void count_copy(const void *host, size_t bytes)
{
    const unsigned char *h = host;
    bool pinned = false;

    pthread_mutex_lock(&lock);
    for (struct alloc *a = current ? current->host : NULL; a && !pinned;
         a = a->next) {
        pinned = h >= a->p && bytes <= a->size &&
                 h - a->p <= (long)(a->size - bytes);
    }
    if (pinned) {
        copies_pinned++;
    } else {
        copies_pageable++;
    }
    pthread_mutex_unlock(&lock);
}

API int fake_cuda_contexts_live(void)
{
    int n;

    pthread_mutex_lock(&lock);
    n = contexts_live;
    pthread_mutex_unlock(&lock);
    return n;
}

API int fake_cuda_contexts_created(void)
{
    int n;

    pthread_mutex_lock(&lock);
    n = contexts_created;
    pthread_mutex_unlock(&lock);
    return n;
}

API size_t fake_cuda_mem_used(int dev)
{
    size_t n;

    pthread_mutex_lock(&lock);
    n = dev >= 0 && dev < MAX_DEVICES ? dev_used[dev] : 0;
    pthread_mutex_unlock(&lock);
    return n;
}

/* ---------------------------------------------------------------------- */
/* driver entry points                                                     */
/* ---------------------------------------------------------------------- */

#define DECL(ret, name, args)                                                  \
    API ret name args;                                                         \
    API ret name args

DECL(CUresult, cuGetErrorName, (CUresult error, const char **name))
{
    switch (error) {
#define E(x)                                                                   \
    case x:                                                                    \
        *name = #x;                                                            \
        return CUDA_SUCCESS
        E(CUDA_SUCCESS);
        E(CUDA_ERROR_INVALID_VALUE);
        E(CUDA_ERROR_OUT_OF_MEMORY);
        E(CUDA_ERROR_NOT_INITIALIZED);
        E(CUDA_ERROR_NO_DEVICE);
        E(CUDA_ERROR_INVALID_DEVICE);
        E(CUDA_ERROR_INVALID_CONTEXT);
        E(CUDA_ERROR_CONTEXT_IS_DESTROYED);
        E(CUDA_ERROR_INVALID_IMAGE);
        E(CUDA_ERROR_NO_BINARY_FOR_GPU);
        E(CUDA_ERROR_NOT_FOUND);
        E(CUDA_ERROR_INVALID_HANDLE);
        E(CUDA_ERROR_LAUNCH_FAILED);
        E(CUDA_ERROR_ILLEGAL_ADDRESS);
        E(CUDA_ERROR_NOT_SUPPORTED);
        E(CUDA_ERROR_NOT_READY);
#undef E
    default:
        *name = NULL;
        return CUDA_ERROR_INVALID_VALUE;
    }
}

DECL(CUresult, cuInit, (unsigned int flags))
{
    if (flags) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&lock);
    ndevices = (int)env_long("FAKE_CUDA_DEVICES", 1);
    if (ndevices > MAX_DEVICES) {
        ndevices = MAX_DEVICES;
    }
    init_fail = env_long("FAKE_CUDA_INIT_FAIL", 0) != 0;
    bad_image = env_long("FAKE_CUDA_BAD_IMAGE", 0) != 0;
    mem_limit = (size_t)env_long("FAKE_CUDA_MEM_LIMIT", 1l << 30);
    fail_launch = env_long("FAKE_CUDA_FAIL_LAUNCH", 0);
    sgemm_delay_ms = env_long("FAKE_CUDA_SGEMM_DELAY_MS", 0);
    hostalloc_fail = env_long("FAKE_CUDA_HOSTALLOC_FAIL", 0) != 0;
    pthread_mutex_unlock(&lock);
    if (init_fail) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    return ndevices > 0 ? CUDA_SUCCESS : CUDA_ERROR_NO_DEVICE;
}

DECL(CUresult, cuDriverGetVersion, (int *version))
{
    *version = 13000;
    return CUDA_SUCCESS;
}

static CUresult check_dev(CUdevice dev)
{
    if (ndevices < 0) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    return dev >= 0 && dev < ndevices ? CUDA_SUCCESS
                                      : CUDA_ERROR_INVALID_DEVICE;
}

DECL(CUresult, cuDeviceGetCount, (int *count))
{
    if (ndevices < 0) {
        return CUDA_ERROR_NOT_INITIALIZED;
    }
    *count = ndevices;
    return CUDA_SUCCESS;
}

DECL(CUresult, cuDeviceGet, (CUdevice * dev, int ordinal))
{
    CUresult r = check_dev(ordinal);

    if (r == CUDA_SUCCESS) {
        *dev = ordinal;
    }
    return r;
}

DECL(CUresult, cuDeviceGetName, (char *name, int len, CUdevice dev))
{
    CUresult r = check_dev(dev);

    if (r == CUDA_SUCCESS) {
        snprintf(name, (size_t)len, "vgpu fake CUDA device %d", dev);
    }
    return r;
}

DECL(CUresult, cuDeviceGetUuid_v2, (CUuuid * uuid, CUdevice dev))
{
    CUresult r = check_dev(dev);

    if (r == CUDA_SUCCESS) {
        for (int i = 0; i < 16; i++) {
            uuid->bytes[i] = (char)(0xa0 + i + 16 * dev);
        }
    }
    return r;
}

DECL(CUresult, cuDeviceTotalMem_v2, (size_t * bytes, CUdevice dev))
{
    CUresult r = check_dev(dev);

    if (r == CUDA_SUCCESS) {
        *bytes = mem_limit;
    }
    return r;
}

/*
 * The attributes a small sm_90 part would report, so that libraries which
 * size their work by them (cuBLAS divides by the SM count) see a
 * plausible device; anything else is CUDA_ERROR_INVALID_VALUE, which the
 * mediator reports as 0.
 */
static const struct {
    CUdevice_attribute attr;
    int value;
} fake_attrs[] = {
    {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 9},
    {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0},
    {CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 4},
    {CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 1024},
    {CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, 1024},
    {CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, 1024},
    {CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, 64},
    {CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, 2147483647},
    {CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, 65535},
    {CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, 65535},
    {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 49152},
    {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 232448},
    {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 233472},
    {CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY, 65536},
    {CU_DEVICE_ATTRIBUTE_WARP_SIZE, 32},
    {CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK, 65536},
    {CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR, 65536},
    {CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, 2048},
    {CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR, 32},
    {CU_DEVICE_ATTRIBUTE_CLOCK_RATE, 1000000},
    {CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, 1000000},
    {CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, 256},
    {CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, 4194304},
    {CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS, 1},
    {CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 1},
    {CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT, 512},
};

DECL(CUresult, cuDeviceGetAttribute,
     (int *value, CUdevice_attribute attr, CUdevice dev))
{
    CUresult r = check_dev(dev);

    if (r != CUDA_SUCCESS) {
        return r;
    }
    for (size_t i = 0; i < sizeof(fake_attrs) / sizeof(fake_attrs[0]); i++) {
        if (fake_attrs[i].attr == attr) {
            *value = fake_attrs[i].value;
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_INVALID_VALUE;
}

DECL(CUresult, cuCtxCreate_v2,
     (CUcontext * pctx, unsigned int flags, CUdevice dev))
{
    CUresult r = check_dev(dev);
    struct CUctx_st *c;

    (void)flags;
    if (r != CUDA_SUCCESS) {
        return r;
    }
    pthread_mutex_lock(&lock);
    c = keep(sizeof(*c));
    if (!c) {
        pthread_mutex_unlock(&lock);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    c->alive = true;
    c->dev = dev;
    c->next = contexts;
    contexts = c;
    contexts_created++;
    contexts_live++;
    pthread_mutex_unlock(&lock);
    current = c;
    *pctx = c;
    return CUDA_SUCCESS;
}

DECL(CUresult, cuCtxDestroy_v2, (CUcontext ctx))
{
    pthread_mutex_lock(&lock);
    if (!ctx || !ctx->alive) {
        pthread_mutex_unlock(&lock);
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    while (ctx->allocs) {
        struct alloc *a = ctx->allocs;

        ctx->allocs = a->next;
        dev_used[ctx->dev] -= a->size;
        free(a->p);
        free(a);
    }
    /* The driver frees what was pinned in it; a backend should have. */
    while (ctx->host) {
        struct alloc *a = ctx->host;

        ctx->host = a->next;
        free(a->p);
        free(a);
        pinned_live--;
        pinned_leaked++;
    }
    ctx->used = 0;
    ctx->alive = false;
    contexts_live--;
    pthread_mutex_unlock(&lock);
    if (current == ctx) {
        current = NULL;
    }
    return CUDA_SUCCESS;
}

DECL(CUresult, cuCtxSetCurrent, (CUcontext ctx))
{
    if (ctx && !ctx->alive) {
        return CUDA_ERROR_CONTEXT_IS_DESTROYED;
    }
    current = ctx;
    return CUDA_SUCCESS;
}

/* The current context, or why there is none usable. */
static CUresult need_ctx(void)
{
    if (!current) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (!current->alive) {
        return CUDA_ERROR_CONTEXT_IS_DESTROYED;
    }
    return current->sticky;
}

/* The backend's own image: a fatbin holding all five kernels' names. */
static bool is_backend_image(const unsigned char *p, uint32_t magic,
                             uint16_t hsize, uint64_t fsize)
{
    if (magic != FATBIN_MAGIC || fsize > (1u << 30)) {
        return false;
    }
    for (int i = 0; i < F_COUNT; i++) {
        if (!memmem(p, hsize + fsize, fn_names[i], strlen(fn_names[i]))) {
            return false;
        }
    }
    return true;
}

struct guest_load {
    struct CUmod_st *m;
    bool full;
};

static int add_guest_kernel(void *arg, const char *name,
                            const struct cuda_kernel_info *info)
{
    struct guest_load *g = arg;
    struct CUfunc_st *f;

    for (unsigned i = 0; i < g->m->nguest; i++) {
        if (strcmp(g->m->guest[i]->name, name) == 0) {
            return 0; /* another architecture's copy */
        }
    }
    if (g->m->nguest == MAX_GUEST_KERNELS || strlen(name) >= sizeof(f->name)) {
        g->full = true;
        return 1;
    }
    pthread_mutex_lock(&lock);
    f = keep(sizeof(*f));
    pthread_mutex_unlock(&lock);
    if (!f) {
        g->full = true;
        return 1;
    }
    f->kind = F_GUEST;
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->info = *info;
    g->m->guest[g->m->nguest++] = f;
    return 0;
}

/* A guest's image: sized and read as the driver would, by its headers. */
static CUresult load_guest_image(CUmodule *mod, const void *image)
{
    enum cuda_image_kind kind;
    size_t size;
    struct guest_load g = {0};

    /* The caller (remote/exec.c) checked the size against its bytes. */
    if (cuda_image_size(image, (size_t)1 << 30, &kind, &size)) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    pthread_mutex_lock(&lock);
    g.m = keep(sizeof(*g.m));
    pthread_mutex_unlock(&lock);
    if (!g.m) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    g.m->ctx = current;
    g.m->loaded = true;
    if (cuda_image_kernels(image, size, add_guest_kernel, &g, NULL) < 0 ||
        g.full) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    if (g.m->nguest == 0) {
        return CUDA_ERROR_NO_BINARY_FOR_GPU;
    }
    *mod = g.m;
    return CUDA_SUCCESS;
}

DECL(CUresult, cuModuleLoadDataEx,
     (CUmodule * mod, const void *image, unsigned int nopts, CUjit_option *opts,
      void **values))
{
    const unsigned char *p = image;
    uint32_t magic;
    uint16_t hsize;
    uint64_t fsize;
    struct CUmod_st *m;
    CUresult r = need_ctx();

    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!image) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    memcpy(&magic, p, 4);
    memcpy(&hsize, p + 6, 2);
    memcpy(&fsize, p + 8, 8);
    if (!bad_image && !is_backend_image(p, magic, hsize, fsize)) {
        return load_guest_image(mod, image);
    }
    if (magic != FATBIN_MAGIC || bad_image) {
        for (unsigned i = 0; i < nopts; i++) {
            if (opts[i] == CU_JIT_ERROR_LOG_BUFFER) {
                snprintf(values[i], 64, "fake JIT: no image for this GPU");
            }
        }
        return magic != FATBIN_MAGIC ? CUDA_ERROR_INVALID_IMAGE
                                     : CUDA_ERROR_NO_BINARY_FOR_GPU;
    }
    pthread_mutex_lock(&lock);
    m = keep(sizeof(*m));
    pthread_mutex_unlock(&lock);
    if (!m) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    m->ctx = current;
    m->loaded = true;
    for (int i = 0; i < F_COUNT; i++) {
        /* Every name must really be in the image nvcc built. */
        if (!memmem(p, hsize + fsize, fn_names[i], strlen(fn_names[i]))) {
            return CUDA_ERROR_INVALID_IMAGE;
        }
        m->fn[i].kind = (enum fake_fn)i;
    }
    *mod = m;
    return CUDA_SUCCESS;
}

DECL(CUresult, cuModuleGetFunction,
     (CUfunction * fn, CUmodule mod, const char *name))
{
    CUresult r = need_ctx();

    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!mod || mod->ctx != current || !mod->loaded) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    for (unsigned i = 0; i < mod->nguest; i++) {
        if (strcmp(name, mod->guest[i]->name) == 0) {
            *fn = mod->guest[i];
            return CUDA_SUCCESS;
        }
    }
    for (int i = 0; i < F_COUNT && !mod->nguest; i++) {
        if (strcmp(name, fn_names[i]) == 0) {
            *fn = &mod->fn[i];
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_NOT_FOUND;
}

DECL(CUresult, cuMemAlloc_v2, (CUdeviceptr * ptr, size_t bytes))
{
    CUresult r = need_ctx();
    struct alloc *a;

    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!bytes) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&lock);
    if (dev_used[current->dev] + bytes > mem_limit) {
        pthread_mutex_unlock(&lock);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    a = calloc(1, sizeof(*a));
    if (a) {
        a->p = malloc(bytes);
    }
    if (!a || !a->p) {
        free(a);
        pthread_mutex_unlock(&lock);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    memset(a->p, 0xa5, bytes); /* device memory is not zeroed */
    a->size = bytes;
    a->next = current->allocs;
    current->allocs = a;
    current->used += bytes;
    dev_used[current->dev] += bytes;
    pthread_mutex_unlock(&lock);
    *ptr = (CUdeviceptr)(uintptr_t)a->p;
    return CUDA_SUCCESS;
}

DECL(CUresult, cuMemFree_v2, (CUdeviceptr ptr))
{
    CUresult r = need_ctx();

    if (r != CUDA_SUCCESS) {
        return r;
    }
    pthread_mutex_lock(&lock);
    for (struct alloc **p = &current->allocs; *p; p = &(*p)->next) {
        struct alloc *a = *p;

        if ((CUdeviceptr)(uintptr_t)a->p == ptr) {
            *p = a->next;
            current->used -= a->size;
            dev_used[current->dev] -= a->size;
            free(a->p);
            free(a);
            pthread_mutex_unlock(&lock);
            return CUDA_SUCCESS;
        }
    }
    pthread_mutex_unlock(&lock);
    return CUDA_ERROR_INVALID_VALUE;
}

/* Host address of [ptr, ptr + bytes) in the current context, or NULL. */
static void *dev_range(CUdeviceptr ptr, size_t bytes)
{
    void *out = NULL;

    if (!current || !current->alive) {
        return NULL;
    }
    pthread_mutex_lock(&lock);
    for (struct alloc *a = current->allocs; a; a = a->next) {
        CUdeviceptr lo = (CUdeviceptr)(uintptr_t)a->p;

        if (ptr >= lo && ptr + bytes <= lo + a->size && ptr + bytes >= ptr) {
            out = (void *)(uintptr_t)ptr;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return out;
}

static CUresult check_stream(CUstream s)
{
    CUresult r = need_ctx();

    if (r == CUDA_SUCCESS && s && s->ctx != current) {
        r = CUDA_ERROR_INVALID_HANDLE;
    }
    return r;
}

DECL(CUresult, cuMemcpyHtoDAsync_v2,
     (CUdeviceptr dst, const void *src, size_t bytes, CUstream s))
{
    CUresult r = check_stream(s);
    void *d;

    if (r != CUDA_SUCCESS) {
        return r;
    }
    d = dev_range(dst, bytes);
    if (!d) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    count_copy(src, bytes);
    memcpy(d, src, bytes);
    return CUDA_SUCCESS;
}

DECL(CUresult, cuMemcpyDtoHAsync_v2,
     (void *dst, CUdeviceptr src, size_t bytes, CUstream s))
{
    CUresult r = check_stream(s);
    void *d;

    if (r != CUDA_SUCCESS) {
        return r;
    }
    d = dev_range(src, bytes);
    if (!d) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    count_copy(dst, bytes);
    memcpy(dst, d, bytes);
    return CUDA_SUCCESS;
}

DECL(CUresult, cuMemHostAlloc, (void **pp, size_t bytes, unsigned int flags))
{
    CUresult r = need_ctx();
    struct alloc *a;

    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!pp || !bytes || flags) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&lock);
    if (hostalloc_fail) {
        pthread_mutex_unlock(&lock);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    a = calloc(1, sizeof(*a));
    if (a) {
        a->p = malloc(bytes);
    }
    if (!a || !a->p) {
        free(a);
        pthread_mutex_unlock(&lock);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    a->size = bytes;
    a->next = current->host;
    current->host = a;
    pinned_live++;
    pthread_mutex_unlock(&lock);
    *pp = a->p;
    return CUDA_SUCCESS;
}

/* Any context's block, as the driver's: pinned memory is not per thread. */
DECL(CUresult, cuMemFreeHost, (void *p))
{
    pthread_mutex_lock(&lock);
    for (struct CUctx_st *c = contexts; c; c = c->next) {
        for (struct alloc **ap = &c->host; *ap; ap = &(*ap)->next) {
            struct alloc *a = *ap;

            if (a->p == p) {
                *ap = a->next;
                free(a->p);
                free(a);
                pinned_live--;
                pthread_mutex_unlock(&lock);
                return CUDA_SUCCESS;
            }
        }
    }
    pthread_mutex_unlock(&lock);
    return CUDA_ERROR_INVALID_VALUE;
}

DECL(CUresult, cuStreamCreate, (CUstream * s, unsigned int flags))
{
    CUresult r = need_ctx();

    (void)flags;
    if (r != CUDA_SUCCESS) {
        return r;
    }
    pthread_mutex_lock(&lock);
    *s = keep(sizeof(**s));
    pthread_mutex_unlock(&lock);
    if (!*s) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    (*s)->ctx = current;
    return CUDA_SUCCESS;
}

DECL(CUresult, cuStreamSynchronize, (CUstream s))
{
    return check_stream(s); /* work ran at launch */
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

DECL(CUresult, cuEventCreate, (CUevent * ev, unsigned int flags))
{
    CUresult r = need_ctx();

    (void)flags;
    if (r != CUDA_SUCCESS) {
        return r;
    }
    pthread_mutex_lock(&lock);
    *ev = keep(sizeof(**ev));
    pthread_mutex_unlock(&lock);
    if (!*ev) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    (*ev)->ctx = current;
    (*ev)->ms = -1;
    return CUDA_SUCCESS;
}

DECL(CUresult, cuEventRecord, (CUevent ev, CUstream s))
{
    CUresult r = check_stream(s);

    if (r == CUDA_SUCCESS && (!ev || ev->ctx != current)) {
        r = CUDA_ERROR_INVALID_HANDLE;
    }
    if (r == CUDA_SUCCESS) {
        ev->ms = now_ms();
    }
    return r;
}

DECL(CUresult, cuEventElapsedTime_v2, (float *ms, CUevent a, CUevent b))
{
    if (!a || !b || a->ms < 0 || b->ms < 0) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    *ms = (float)(b->ms - a->ms);
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------------- */
/* the kernels, on the CPU                                                 */
/* ---------------------------------------------------------------------- */

static float gen_a(uint32_t seed, uint32_t i, uint32_t j)
{
    return (float)((int32_t)((i * 7u + j * 3u + seed) % 17u) - 8);
}

static float gen_b(uint32_t seed, uint32_t i, uint32_t j)
{
    return (float)((int32_t)((i * 5u + j * 11u + seed * 3u) % 17u) - 8);
}

#define PARAM(type, i) (*(type *)params[i])

/* A kernel of the guest test programs, by name, on the CPU.  Pointers
 * outside the context's allocations fault as on a GPU. */
static CUresult fault(void)
{
    current->sticky = CUDA_ERROR_ILLEGAL_ADDRESS;
    return CUDA_ERROR_ILLEGAL_ADDRESS;
}

static CUresult run_guest_kernel(const struct CUfunc_st *f, unsigned gx,
                                 unsigned gy, unsigned gz, unsigned bx,
                                 unsigned by, unsigned bz, void **params)
{
    const uint64_t tx = (uint64_t)gx * bx, ty = (uint64_t)gy * by;

    (void)gz;
    (void)bz;
    /* kernels.cu's and samples.cu's (vectorAddDrv's) vector add. */
    if ((strcmp(f->name, "vgpu_test_vec_add") == 0 ||
         strcmp(f->name, "VecAdd_kernel") == 0) &&
        f->info.count == 4) {
        int n = PARAM(int, 3);
        size_t bytes = n > 0 ? 4ul * (size_t)n : 0;
        float *a, *b, *c;

        if (n <= 0) {
            return CUDA_SUCCESS;
        }
        a = dev_range(PARAM(CUdeviceptr, 0), bytes);
        b = dev_range(PARAM(CUdeviceptr, 1), bytes);
        c = dev_range(PARAM(CUdeviceptr, 2), bytes);
        if (!a || !b || !c) {
            return fault();
        }
        for (int i = 0; i < n && (uint64_t)i < tx; i++) {
            c[i] = a[i] + b[i];
        }
        return CUDA_SUCCESS;
    }
    if (strcmp(f->name, "vgpu_test_matmul") == 0 && f->info.count == 4) {
        int n = PARAM(int, 3);
        size_t bytes = n > 0 ? 4ul * (size_t)n * (size_t)n : 0;
        float *a, *b, *c;

        if (n <= 0 || n > 4096) {
            return CUDA_SUCCESS;
        }
        a = dev_range(PARAM(CUdeviceptr, 0), bytes);
        b = dev_range(PARAM(CUdeviceptr, 1), bytes);
        c = dev_range(PARAM(CUdeviceptr, 2), bytes);
        if (!a || !b || !c) {
            return fault();
        }
        for (int r = 0; r < n && (uint64_t)r < ty; r++) {
            for (int col = 0; col < n && (uint64_t)col < tx; col++) {
                float sum = 0.0f;

                for (int k = 0; k < n; k++) {
                    sum += a[r * n + k] * b[k * n + col];
                }
                c[r * n + col] = sum;
            }
        }
        return CUDA_SUCCESS;
    }
    /* samples.cu's matrixMulDrv kernels. */
    if ((strcmp(f->name, "matrixMul_bs16_64bit") == 0 ||
         strcmp(f->name, "matrixMul_bs32_64bit") == 0) &&
        f->info.count == 5) {
        /* One tile of C per block: rows gy * by of A, columns gx * bx of
         * B; A is rows x wA, B is wA x wB, C rows x wB, summed in k order
         * as the tiles walk it. */
        uint64_t wa = PARAM(uint64_t, 3), wb = PARAM(uint64_t, 4);
        uint64_t rows = ty, cols = tx;
        const float *a, *b;
        float *c;

        if (!wa || !wb || cols > wb || wa > 65536 || wb > 65536 ||
            rows > 65536) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        c = dev_range(PARAM(CUdeviceptr, 0), 4 * rows * wb);
        a = dev_range(PARAM(CUdeviceptr, 1), 4 * rows * wa);
        b = dev_range(PARAM(CUdeviceptr, 2), 4 * wa * wb);
        if (!a || !b || !c) {
            return fault();
        }
        for (uint64_t r = 0; r < rows; r++) {
            for (uint64_t col = 0; col < cols; col++) {
                float sum = 0.0f;

                for (uint64_t k = 0; k < wa; k++) {
                    sum += a[r * wa + k] * b[k * wb + col];
                }
                c[r * wb + col] = sum;
            }
        }
        return CUDA_SUCCESS;
    }
    if (strcmp(f->name, "vgpu_test_add_scalar") == 0 && f->info.count == 3) {
        int delta = PARAM(int, 1), n = PARAM(int, 2);
        int *p;

        if (n <= 0) {
            return CUDA_SUCCESS;
        }
        p = dev_range(PARAM(CUdeviceptr, 0), 4ul * (size_t)n);
        if (!p) {
            return fault();
        }
        for (int i = 0; i < n && (uint64_t)i < tx; i++) {
            p[i] += delta;
        }
        return CUDA_SUCCESS;
    }
    if (strcmp(f->name, "vgpu_test_poke") == 0 && f->info.count == 2) {
        int *p = dev_range(PARAM(CUdeviceptr, 0), sizeof(int));

        if (!p) {
            return fault();
        }
        *p = PARAM(int, 1);
        return CUDA_SUCCESS;
    }
    fprintf(stderr,
            "fake-libcuda: kernel %s cannot run on the CPU stand-in "
            "(CUDA_ERROR_NOT_SUPPORTED)\n",
            f->name);
    return CUDA_ERROR_NOT_SUPPORTED;
}
#define DEV(i, bytes) dev_range(PARAM(CUdeviceptr, i), (bytes))

DECL(CUresult, cuLaunchKernel,
     (CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
      unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem,
      CUstream s, void **params, void **extra))
{
    const uint64_t threads_x = (uint64_t)gx * bx, threads_y = (uint64_t)gy * by;
    CUresult r = check_stream(s);

    (void)shmem;
    (void)extra;
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!f || (!params && !(f->kind == F_GUEST && f->info.count == 0)) || !gx ||
        !gy || !gz || !bx || !by || !bz || (uint64_t)bx * by * bz > 1024) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&lock);
    if (fail_launch > 0 && --fail_launch == 0) {
        pthread_mutex_unlock(&lock);
        return CUDA_ERROR_LAUNCH_FAILED;
    }
    pthread_mutex_unlock(&lock);

    switch (f->kind) {
    case F_GUEST:
        return run_guest_kernel(f, gx, gy, gz, bx, by, bz, params);
    case F_ADD: {
        uint32_t n = PARAM(uint32_t, 3);
        uint32_t *a = DEV(0, 4ul * n), *b = DEV(1, 4ul * n),
                 *c = DEV(2, 4ul * n);

        if (!a || !b || !c || threads_x < n) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        for (uint32_t i = 0; i < n; i++) {
            c[i] = a[i] + b[i];
        }
        return CUDA_SUCCESS;
    }
    case F_SAXPY: {
        float alpha = PARAM(float, 0);
        uint32_t n = PARAM(uint32_t, 3);
        float *x = DEV(1, 4ul * n), *y = DEV(2, 4ul * n);

        if (!x || !y || threads_x < n) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        for (uint32_t i = 0; i < n; i++) {
            volatile float ax = alpha * x[i];

            y[i] = ax + y[i];
        }
        return CUDA_SUCCESS;
    }
    case F_INIT: {
        uint32_t n = PARAM(uint32_t, 3), seed = PARAM(uint32_t, 4);
        size_t nn = (size_t)n * n;
        float *a = DEV(0, 4 * nn), *b = DEV(1, 4 * nn);
        uint64_t *sum = DEV(2, 8);

        if (!a || !b || !sum || threads_x < n || threads_y < n) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        *sum = 0;
        for (uint32_t i = 0; i < n; i++) {
            for (uint32_t j = 0; j < n; j++) {
                a[(size_t)i * n + j] = gen_a(seed, i, j);
                b[(size_t)i * n + j] = gen_b(seed, i, j);
            }
        }
        return CUDA_SUCCESS;
    }
    case F_GEMM: {
        uint32_t n = PARAM(uint32_t, 3);
        size_t nn = (size_t)n * n;
        float *a = DEV(0, 4 * nn), *b = DEV(1, 4 * nn), *c = DEV(2, 4 * nn);

        if (!a || !b || !c || threads_x < n || threads_y < n) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        memset(c, 0, 4 * nn);
        for (uint32_t i = 0; i < n; i++) {
            for (uint32_t k = 0; k < n; k++) {
                float aik = a[(size_t)i * n + k];

                for (uint32_t j = 0; j < n; j++) {
                    c[(size_t)i * n + j] += aik * b[(size_t)k * n + j];
                }
            }
        }
        if (sgemm_delay_ms > 0 && n >= 512) {
            struct timespec ts = {sgemm_delay_ms / 1000,
                                  (sgemm_delay_ms % 1000) * 1000000L};

            nanosleep(&ts, NULL);
        }
        return CUDA_SUCCESS;
    }
    case F_SUM: {
        uint32_t count = PARAM(uint32_t, 1);
        float *c = DEV(0, 4ul * count);
        uint64_t *sum = DEV(2, 8);

        if (!c || !sum) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        for (uint32_t i = 0; i < count; i++) {
            *sum += (uint64_t)(int64_t)c[i];
        }
        return CUDA_SUCCESS;
    }
    default:
        return CUDA_ERROR_INVALID_HANDLE;
    }
}

/* ---------------------------------------------------------------------- */
/* protocol v3's entry points                                              */
/* ---------------------------------------------------------------------- */

/* Work runs when it is queued, so waiting is only the checks. */
DECL(CUresult, cuCtxSynchronize, (void))
{
    return need_ctx();
}

DECL(CUresult, cuMemGetInfo_v2, (size_t * free_bytes, size_t *total))
{
    CUresult r = need_ctx();

    if (r != CUDA_SUCCESS) {
        return r;
    }
    pthread_mutex_lock(&lock);
    *total = mem_limit;
    *free_bytes = mem_limit - dev_used[current->dev];
    pthread_mutex_unlock(&lock);
    return CUDA_SUCCESS;
}

DECL(CUresult, cuMemcpyDtoDAsync_v2,
     (CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s))
{
    CUresult r = check_stream(s);
    void *d, *from;

    if (r != CUDA_SUCCESS) {
        return r;
    }
    d = dev_range(dst, bytes);
    from = dev_range(src, bytes);
    if (!d || !from) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    memmove(d, from, bytes);
    return CUDA_SUCCESS;
}

static CUresult memset_elems(CUdeviceptr dst, unsigned v, size_t n, size_t elem,
                             CUstream s)
{
    CUresult r = check_stream(s);
    unsigned char *d;

    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (n > SIZE_MAX / elem || !(d = dev_range(dst, n * elem))) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(d + i * elem, &v, elem); /* little-endian host */
    }
    return CUDA_SUCCESS;
}

DECL(CUresult, cuMemsetD8Async,
     (CUdeviceptr dst, unsigned char v, size_t n, CUstream s))
{
    return memset_elems(dst, v, n, 1, s);
}

DECL(CUresult, cuMemsetD16Async,
     (CUdeviceptr dst, unsigned short v, size_t n, CUstream s))
{
    return memset_elems(dst, v, n, 2, s);
}

DECL(CUresult, cuMemsetD32Async,
     (CUdeviceptr dst, unsigned int v, size_t n, CUstream s))
{
    return memset_elems(dst, v, n, 4, s);
}

DECL(CUresult, cuModuleUnload, (CUmodule mod))
{
    CUresult r = need_ctx();

    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!mod || mod->ctx != current || !mod->loaded) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    mod->loaded = false;
    return CUDA_SUCCESS;
}

/* The stand-in's images have no device globals it could place. */
DECL(CUresult, cuModuleGetGlobal_v2,
     (CUdeviceptr * dptr, size_t *bytes, CUmodule mod, const char *name))
{
    CUresult r = need_ctx();

    (void)dptr;
    (void)bytes;
    (void)name;
    if (r != CUDA_SUCCESS) {
        return r;
    }
    return mod && mod->ctx == current && mod->loaded
               ? CUDA_ERROR_NOT_FOUND
               : CUDA_ERROR_INVALID_HANDLE;
}

DECL(CUresult, cuFuncGetParamInfo,
     (CUfunction f, size_t index, size_t *offset, size_t *size))
{
    if (!f || f->kind != F_GUEST) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (index >= f->info.count) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *offset = f->info.param[index].offset;
    *size = f->info.param[index].size;
    return CUDA_SUCCESS;
}

DECL(CUresult, cuStreamCreateWithPriority,
     (CUstream * s, unsigned int flags, int priority))
{
    (void)priority;
    return cuStreamCreate(s, flags);
}

DECL(CUresult, cuStreamDestroy_v2, (CUstream s))
{
    CUresult r = check_stream(s);

    if (r == CUDA_SUCCESS && !s) {
        r = CUDA_ERROR_INVALID_HANDLE;
    }
    if (r == CUDA_SUCCESS) {
        s->ctx = NULL; /* any later use is a foreign handle */
    }
    return r;
}

DECL(CUresult, cuStreamQuery, (CUstream s))
{
    return check_stream(s);
}

DECL(CUresult, cuStreamWaitEvent, (CUstream s, CUevent ev, unsigned int fl))
{
    CUresult r = check_stream(s);

    (void)fl;
    if (r == CUDA_SUCCESS && (!ev || ev->ctx != current)) {
        r = CUDA_ERROR_INVALID_HANDLE;
    }
    return r;
}

DECL(CUresult, cuEventDestroy_v2, (CUevent ev))
{
    CUresult r = need_ctx();

    if (r == CUDA_SUCCESS && (!ev || ev->ctx != current)) {
        r = CUDA_ERROR_INVALID_HANDLE;
    }
    if (r == CUDA_SUCCESS) {
        ev->ctx = NULL;
    }
    return r;
}

DECL(CUresult, cuEventSynchronize, (CUevent ev))
{
    CUresult r = need_ctx();

    if (r == CUDA_SUCCESS && (!ev || ev->ctx != current)) {
        r = CUDA_ERROR_INVALID_HANDLE;
    }
    return r;
}

DECL(CUresult, cuEventQuery, (CUevent ev))
{
    return cuEventSynchronize(ev);
}

/* ---------------------------------------------------------------------- */
/* function attributes, occupancy, launches with attributes               */
/* ---------------------------------------------------------------------- */

/* What a small kernel on the sm_90 part of fake_attrs would answer. */
static int func_attr_default(int attrib)
{
    switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
        return 1024;
    case CU_FUNC_ATTRIBUTE_NUM_REGS:
        return 32;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION:
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION:
        return 90;
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
        return 49152;
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
        return -1;
    default:
        return 0;
    }
}

DECL(CUresult, cuFuncGetAttribute,
     (int *value, CUfunction_attribute attrib, CUfunction f))
{
    if (!f || f->kind != F_GUEST) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (!value || (int)attrib < 0 || (int)attrib >= 16) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *value = f->attr_set & (1u << attrib) ? f->attr[attrib]
                                          : func_attr_default((int)attrib);
    return CUDA_SUCCESS;
}

DECL(CUresult, cuFuncSetAttribute,
     (CUfunction f, CUfunction_attribute attrib, int value))
{
    if (!f || f->kind != F_GUEST) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
        /* fake_attrs' MAX_SHARED_MEMORY_PER_BLOCK_OPTIN */
        if (value < 0 || value > 232448) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        break;
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
        if (value < -1 || value > 100) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        break;
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
        if (value < 0) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        break;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    f->attr[attrib] = value;
    f->attr_set |= 1u << attrib;
    return CUDA_SUCCESS;
}

DECL(CUresult, cuFuncSetCacheConfig, (CUfunction f, CUfunc_cache config))
{
    if (!f || f->kind != F_GUEST) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if ((int)config < 0 || config > CU_FUNC_CACHE_PREFER_EQUAL) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    f->cache_config = (int)config;
    return CUDA_SUCCESS;
}

/* Blocks of block_size threads and dyn bytes of dynamic shared memory
 * that fit on one of fake_attrs' multiprocessors: by threads (2048), by
 * shared memory (233472) and by blocks (32). */
DECL(CUresult, cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags,
     (int *blocks, CUfunction f, int block_size, size_t dyn,
      unsigned int flags))
{
    int n;

    if (!f || f->kind != F_GUEST) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    if (!blocks || block_size <= 0 || flags > 1) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (block_size > 1024) {
        *blocks = 0;
        return CUDA_SUCCESS;
    }
    n = 2048 / block_size;
    if (dyn && (size_t)n > 233472 / dyn) {
        n = (int)(233472 / dyn);
    }
    *blocks = n < 32 ? n : 32;
    return CUDA_SUCCESS;
}

/* As a GPU checks them: a cluster's sizes divide the grid's, at most 8
 * blocks in a cluster (the portable size); then the launch as
 * cuLaunchKernel's. */
DECL(CUresult, cuLaunchKernelEx,
     (const CUlaunchConfig *cfg, CUfunction f, void **params, void **extra))
{
    if (!cfg || (cfg->numAttrs && !cfg->attrs)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    for (unsigned i = 0; i < cfg->numAttrs; i++) {
        const CUlaunchAttribute *a = &cfg->attrs[i];

        if (a->id == CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION) {
            unsigned x = a->value.clusterDim.x, y = a->value.clusterDim.y,
                     z = a->value.clusterDim.z;

            if (!x || !y || !z || cfg->gridDimX % x || cfg->gridDimY % y ||
                cfg->gridDimZ % z || (uint64_t)x * y * z > 8) {
                return CUDA_ERROR_INVALID_CLUSTER_SIZE;
            }
        } else if (
            a->id != CU_LAUNCH_ATTRIBUTE_COOPERATIVE &&
            a->id != CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE) {
            return CUDA_ERROR_NOT_SUPPORTED;
        }
    }
    return cuLaunchKernel(f, cfg->gridDimX, cfg->gridDimY, cfg->gridDimZ,
                          cfg->blockDimX, cfg->blockDimY, cfg->blockDimZ,
                          cfg->sharedMemBytes, cfg->hStream, params, extra);
}
