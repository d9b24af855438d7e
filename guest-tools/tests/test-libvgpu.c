/*
 * test-libvgpu.c - unit tests of libvgpu without a guest.
 *
 * This file owns a fake sysfs tree (bus/pci/devices/<bdf>/{vendor,device,
 * resource0}, resource0 a 4 KB regular file) and a fake vgpu device: a
 * thread that watches DOORBELL on a MAP_SHARED mapping of the same
 * resource0 file, checks the request like the real device, and answers,
 * or misbehaves on purpose (silent, hostile lengths and headers); and a
 * fake vgpu driver: a <device>/misc/vgpu0 folder, a fake /dev/vgpu0 (a
 * regular file) and this program's own ioctl(), which answers the uapi
 * ioctls on that file like vgpu.ko (the path choice and the driver path of
 * the library).  It runs
 * the library against both, and, when the static vgpu-client sits next to
 * this binary (or $VGPU_CLIENT names it), the CLI too.
 *
 * Output: one line per case, then exactly "N passed, N failed".
 */
#include "libvgpu.h"
#include "uapi/vgpu.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BDF_VGPU0 "0000:00:04.0"
#define BDF_VGPU1 "0000:00:05.0"
#define BDF_DECOY "0000:00:03.0"
#define BDF_DECOY2 "0000:00:06.0"
#define BDF_SHORT "0000:00:07.0" /* vgpu IDs, resource0 too small */
#define FAKE_VM_ID 42u

/* ------------------------------------------------------------------ */
/* Tiny test framework                                                 */
/* ------------------------------------------------------------------ */

static int n_passed, n_failed;
static bool case_failed;
static char case_msg[512];

__attribute__((format(printf, 3, 4))) static void
check_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (case_failed)
        return;
    case_failed = true;
    n = snprintf(case_msg, sizeof(case_msg), "%s:%d: ", file, line);
    va_start(ap, fmt);
    vsnprintf(case_msg + n, sizeof(case_msg) - (size_t)n, fmt, ap);
    va_end(ap);
}

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            check_fail(__FILE__, __LINE__, "%s", #cond);                       \
    } while (0)

#define CHECK_RC(got, want)                                                    \
    do {                                                                       \
        int got_ = (got), want_ = (want);                                      \
        if (got_ != want_)                                                     \
            check_fail(__FILE__, __LINE__, "%s = %d (%s), want %d (%s)", #got, \
                       got_, vgpu_strerror(got_), want_,                       \
                       vgpu_strerror(want_));                                  \
    } while (0)

static void run_case(const char *name, void (*fn)(void))
{
    case_failed = false;
    case_msg[0] = '\0';
    fn();
    if (case_failed) {
        n_failed++;
        printf("FAIL %s: %s\n", name, case_msg);
    } else {
        n_passed++;
        printf("PASS %s\n", name);
    }
    fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* Fake sysfs                                                          */
/* ------------------------------------------------------------------ */

static char root[64];             /* fake sysfs with devices */
static char empty_root[PATH_MAX]; /* fake sysfs without vgpu devices */

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX * 2];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        perror(path);
        exit(2);
    }
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) && errno != EEXIST) {
        perror(path);
        exit(2);
    }
}

static void make_pci_tree(const char *r)
{
    char path[PATH_MAX * 2];

    snprintf(path, sizeof(path), "%s/bus", r);
    make_dir(path);
    snprintf(path, sizeof(path), "%s/bus/pci", r);
    make_dir(path);
    snprintf(path, sizeof(path), "%s/bus/pci/devices", r);
    make_dir(path);
}

static void add_device(const char *r, const char *bdf, const char *vendor,
                       const char *device, off_t res_size)
{
    char dir[PATH_MAX * 2], path[PATH_MAX * 3];
    int fd;

    snprintf(dir, sizeof(dir), "%s/bus/pci/devices/%s", r, bdf);
    make_dir(dir);
    write_file(dir, "vendor", vendor);
    write_file(dir, "device", device);
    snprintf(path, sizeof(path), "%s/resource0", dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, res_size) || close(fd)) {
        perror(path);
        exit(2);
    }
}

static void make_sysfs(void)
{
    char path[PATH_MAX * 2];

    snprintf(root, sizeof(root), "/tmp/test-libvgpu.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(empty_root, sizeof(empty_root), "%s/empty", root);
    make_dir(empty_root);
    make_pci_tree(empty_root);
    add_device(empty_root, BDF_DECOY, "0x8086\n", "0x100e\n", 4096);
    make_pci_tree(root);
    add_device(root, BDF_DECOY, "0x8086\n", "0x100e\n", 4096);
    add_device(root, BDF_VGPU1, "0x1234\n", "0x7647\n", 4096);
    add_device(root, BDF_VGPU0, "0x1234\n", "0x7647\n", 4096);
    add_device(root, BDF_DECOY2, "0x1234\n", "0x1111\n", 4096);
    add_device(root, BDF_SHORT, "0x1234\n", "0x7647\n", 100);
    snprintf(path, sizeof(path), "%s/bus/pci/devices/not-a-bdf", root);
    make_dir(path);
}

static void remove_sysfs(void)
{
    char cmd[PATH_MAX + 16];

    if (strncmp(root, "/tmp/test-libvgpu.", 18) != 0)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", root);
}

/* ------------------------------------------------------------------ */
/* Fake device                                                         */
/* ------------------------------------------------------------------ */

enum fake_mode {
    FAKE_NORMAL,
    FAKE_ERROR,      /* STATUS=ERROR with fake.err_code */
    FAKE_SILENT,     /* BUSY forever */
    FAKE_HUGE_LEN,   /* RESPONSE_LEN = fake.arg */
    FAKE_BAD_OPCODE, /* response opcode + 1 */
    FAKE_BAD_COUNT,  /* response count = fake.arg, length unchanged */
    FAKE_EXTRA,      /* one more element than asked, consistent header */
    FAKE_BAD_STATUS, /* STATUS = 7 */
    FAKE_BAD_ID,     /* REQUEST_ID changed */
};

static struct {
    volatile uint32_t *regs;
    pthread_t thread;
    int stop;
    int mode;
    uint32_t err_code;
    uint32_t arg;
    uint32_t handled;
} fake;

static uint32_t rd(uint32_t off)
{
    return __atomic_load_n(&fake.regs[off / 4], __ATOMIC_ACQUIRE);
}

static void wr(uint32_t off, uint32_t v)
{
    __atomic_store_n(&fake.regs[off / 4], v, __ATOMIC_RELEASE);
}

/* Check a request like the device does; 0 or an error code. */
static uint32_t fake_check(uint32_t bell, uint32_t len, uint32_t *req)
{
    uint32_t i;

    if (bell != VGPU_DOORBELL_SUBMIT)
        return VGPU_ERR_BAD_DOORBELL;
    if (len > VGPU_BUF_SIZE)
        return VGPU_ERR_REQUEST_TOO_LARGE;
    if (len < sizeof(struct vgpu_req_hdr))
        return VGPU_ERR_BAD_REQUEST;
    for (i = 0; i < (len + 3) / 4; i++)
        req[i] = rd(VGPU_REQ_BUF_OFFSET + 4 * i);
    if (req[0] != VGPU_OP_VECTOR_ADD)
        return VGPU_ERR_BAD_OPCODE;
    if (req[1] < 1 || req[1] > VGPU_VECTOR_ADD_MAX_COUNT ||
        len != VGPU_VECTOR_ADD_REQ_LEN(req[1]))
        return VGPU_ERR_BAD_REQUEST;
    return VGPU_ERR_NONE;
}

static void fake_error(uint32_t code)
{
    wr(VGPU_REG_ERROR_CODE, code);
    wr(VGPU_REG_STATUS, VGPU_STATUS_ERROR);
}

static void fake_answer(const uint32_t *req, int mode)
{
    uint32_t n = req[1], count = n, rlen, i;

    if (mode == FAKE_EXTRA)
        count = n + 1;
    rlen = (uint32_t)VGPU_VECTOR_ADD_RESP_LEN(count);
    wr(VGPU_RESP_BUF_OFFSET, mode == FAKE_BAD_OPCODE ? req[0] + 1 : req[0]);
    wr(VGPU_RESP_BUF_OFFSET + 4, mode == FAKE_BAD_COUNT ? fake.arg : count);
    for (i = 0; i < count; i++)
        wr(VGPU_RESP_BUF_OFFSET + 8 + 4 * i,
           i < n ? req[2 + i] + req[2 + n + i] : 0xdeadbeef);
    wr(VGPU_REG_RESPONSE_LEN, mode == FAKE_HUGE_LEN ? fake.arg : rlen);
    if (mode == FAKE_BAD_ID)
        wr(VGPU_REG_REQUEST_ID, rd(VGPU_REG_REQUEST_ID) ^ 0x5a5a);
    wr(VGPU_REG_STATUS, mode == FAKE_BAD_STATUS ? 7 : VGPU_STATUS_DONE);
}

static void fake_handle(uint32_t bell)
{
    uint32_t req[VGPU_BUF_SIZE / 4];
    int mode = __atomic_load_n(&fake.mode, __ATOMIC_ACQUIRE);
    uint32_t err;

    wr(VGPU_REG_STATUS, VGPU_STATUS_BUSY);
    wr(VGPU_REG_DOORBELL, 0);
    err = fake_check(bell, rd(VGPU_REG_REQUEST_LEN), req);
    if (mode == FAKE_SILENT)
        return;
    if (mode == FAKE_ERROR)
        fake_error(fake.err_code);
    else if (err)
        fake_error(err);
    else
        fake_answer(req, mode);
}

static void *fake_main(void *unused)
{
    struct timespec ts = {0, 20000};
    uint32_t bell;

    (void)unused;
    while (!__atomic_load_n(&fake.stop, __ATOMIC_ACQUIRE)) {
        bell = rd(VGPU_REG_DOORBELL);
        if (bell) {
            fake_handle(bell);
            __atomic_add_fetch(&fake.handled, 1, __ATOMIC_RELEASE);
        } else {
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/* The pool name registers of the fake device, as the device sets them. */
static void fake_pool(const char *name)
{
    uint32_t w[VGPU_POOL_NAME_REGS];

    vgpu_pool_name_to_regs(name, w);
    for (unsigned i = 0; i < VGPU_POOL_NAME_REGS; i++)
        wr(vgpu_pool_name_reg(i), w[i]);
}

/* Reset to IDLE with the given behaviour, once the device is quiet. */
static void fake_set(int mode, uint32_t err_code, uint32_t arg)
{
    struct timespec ts = {0, 100000};
    int i;

    for (i = 0; i < 10000 && rd(VGPU_REG_DOORBELL); i++)
        nanosleep(&ts, NULL);
    fake.err_code = err_code;
    fake.arg = arg;
    __atomic_store_n(&fake.mode, mode, __ATOMIC_RELEASE);
    wr(VGPU_REG_ERROR_CODE, 0);
    wr(VGPU_REG_RESPONSE_LEN, 0);
    wr(VGPU_REG_STATUS, VGPU_STATUS_IDLE);
}

static void fake_start(void)
{
    char path[PATH_MAX * 2];
    void *p;
    int fd;

    snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/resource0", root,
             BDF_VGPU0);
    fd = open(path, O_RDWR);
    p = fd < 0 ? MAP_FAILED
               : mmap(NULL, VGPU_BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                      fd, 0);
    if (p == MAP_FAILED) {
        perror(path);
        exit(2);
    }
    close(fd);
    fake.regs = p;
    fake_pool("A");
    wr(VGPU_REG_PRIORITY, VGPU_PRIO_HIGH);
    wr(VGPU_REG_VM_ID, FAKE_VM_ID);
    wr(VGPU_REG_PROTOCOL_VER, VGPU_PROTOCOL_VERSION);
    wr(VGPU_REG_CAPABILITIES, VGPU_CAPS_V1);
    fake_set(FAKE_NORMAL, 0, 0);
    if (pthread_create(&fake.thread, NULL, fake_main, NULL)) {
        fprintf(stderr, "pthread_create failed\n");
        exit(2);
    }
}

static void fake_stop(void)
{
    __atomic_store_n(&fake.stop, 1, __ATOMIC_RELEASE);
    pthread_join(fake.thread, NULL);
    munmap((void *)fake.regs, VGPU_BAR0_SIZE);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static int open_at(struct vgpu_ctx *ctx, const char *r, const char *bdf,
                   unsigned int index)
{
    struct vgpu_open_opts o = {.sysfs_root = r, .bdf = bdf, .index = index};

    return vgpu_open(ctx, &o);
}

static bool open_vgpu0(struct vgpu_ctx *ctx)
{
    int rc = open_at(ctx, root, NULL, 0);

    CHECK_RC(rc, VGPU_OK);
    return rc == VGPU_OK;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One-element add with the fake in `mode`; returns the library's rc. */
static int add_one(int mode, uint32_t err, uint32_t arg, uint32_t *dev_err)
{
    struct vgpu_ctx ctx;
    int32_t a = 100, b = 200, *c;
    int rc;

    fake_set(mode, err, arg);
    if (!open_vgpu0(&ctx))
        return VGPU_E_NODEV;
    c = malloc(sizeof(*c)); /* exact size: ASan sees any overrun */
    *c = 0x7777;
    rc = vgpu_vector_add(&ctx, &a, &b, c, 1, 200);
    if (rc != VGPU_OK)
        CHECK(*c == 0x7777);
    if (dev_err)
        *dev_err = vgpu_device_error(&ctx);
    free(c);
    vgpu_close(&ctx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Cases: discovery                                                    */
/* ------------------------------------------------------------------ */

static void t_discovery_first(void)
{
    struct vgpu_ctx ctx;

    CHECK_RC(open_at(&ctx, root, NULL, 0), VGPU_OK);
    CHECK(strcmp(ctx.bdf, BDF_VGPU0) == 0);
    vgpu_close(&ctx);
}

static void t_discovery_index(void)
{
    struct vgpu_ctx ctx;

    CHECK_RC(open_at(&ctx, root, NULL, 1), VGPU_OK);
    CHECK(strcmp(ctx.bdf, BDF_VGPU1) == 0);
    vgpu_close(&ctx);
    /* 00:07.0 is a vgpu too (index 2) but its resource0 is too small. */
    CHECK_RC(open_at(&ctx, root, NULL, 2), VGPU_E_ACCESS);
    CHECK_RC(open_at(&ctx, root, NULL, 3), VGPU_E_NODEV);
    vgpu_close(&ctx);
}

static void t_discovery_bdf(void)
{
    struct vgpu_ctx ctx;

    CHECK_RC(open_at(&ctx, root, BDF_VGPU1, 0), VGPU_OK);
    CHECK(strcmp(ctx.bdf, BDF_VGPU1) == 0);
    vgpu_close(&ctx);
    CHECK_RC(open_at(&ctx, root, "00:05.0", 0), VGPU_OK);
    CHECK(strcmp(ctx.bdf, BDF_VGPU1) == 0);
    vgpu_close(&ctx);
    CHECK_RC(open_at(&ctx, root, "0000:00:04.0", 0), VGPU_OK);
    CHECK(strcmp(ctx.bdf, BDF_VGPU0) == 0);
    vgpu_close(&ctx);
}

static void t_discovery_bdf_wrong(void)
{
    struct vgpu_ctx ctx;

    CHECK_RC(open_at(&ctx, root, BDF_DECOY, 0), VGPU_E_NODEV);
    CHECK(strstr(vgpu_errmsg(&ctx), "8086:100e") != NULL);
    CHECK_RC(open_at(&ctx, root, BDF_DECOY2, 0), VGPU_E_NODEV);
    CHECK_RC(open_at(&ctx, root, "0000:00:09.0", 0), VGPU_E_NODEV);
    CHECK_RC(open_at(&ctx, root, "../../etc", 0), VGPU_E_INVAL);
    CHECK_RC(open_at(&ctx, root, "0000:00:04.8", 0), VGPU_E_INVAL);
    CHECK_RC(open_at(&ctx, root, "", 0), VGPU_E_INVAL);
    vgpu_close(&ctx);
}

static void t_discovery_none(void)
{
    struct vgpu_ctx ctx;
    char missing[PATH_MAX + 16];

    CHECK_RC(open_at(&ctx, empty_root, NULL, 0), VGPU_E_NODEV);
    CHECK(strstr(vgpu_errmsg(&ctx), "no vgpu device found") != NULL);
    snprintf(missing, sizeof(missing), "%s/nonexistent", root);
    CHECK_RC(open_at(&ctx, missing, NULL, 0), VGPU_E_NODEV);
    CHECK(strstr(vgpu_errmsg(&ctx), "no vgpu device found") != NULL);
    vgpu_close(&ctx);
}

static void t_discovery_env(void)
{
    struct vgpu_ctx ctx;

    setenv(VGPU_SYSFS_ROOT_ENV, root, 1);
    CHECK_RC(vgpu_open(&ctx, NULL), VGPU_OK);
    CHECK(strcmp(ctx.bdf, BDF_VGPU0) == 0);
    vgpu_close(&ctx);
    unsetenv(VGPU_SYSFS_ROOT_ENV);
}

/* ------------------------------------------------------------------ */
/* Cases: registers                                                    */
/* ------------------------------------------------------------------ */

static void t_registers(void)
{
    struct vgpu_ctx ctx;
    uint32_t v = 0;

    if (!open_vgpu0(&ctx))
        return;
    CHECK_RC(vgpu_read_reg(&ctx, VGPU_REG_PROTOCOL_VER, &v), VGPU_OK);
    CHECK(v == VGPU_PROTOCOL_VERSION);
    CHECK_RC(vgpu_write_reg(&ctx, VGPU_REG_IRQ_CTRL, 0xabcd), VGPU_OK);
    CHECK_RC(vgpu_read_reg(&ctx, VGPU_REG_IRQ_CTRL, &v), VGPU_OK);
    CHECK(v == 0xabcd);
    CHECK_RC(vgpu_write_reg(&ctx, VGPU_REG_IRQ_CTRL, 0), VGPU_OK);
    CHECK_RC(vgpu_read_reg(&ctx, 2, &v), VGPU_E_INVAL);
    CHECK_RC(vgpu_read_reg(&ctx, VGPU_BAR0_SIZE, &v), VGPU_E_INVAL);
    CHECK_RC(vgpu_write_reg(&ctx, 0xfffffffc, 1), VGPU_E_INVAL);
    CHECK(vgpu_reg_offset("status") == VGPU_REG_STATUS);
    CHECK(vgpu_reg_offset("VGPU_REG_REQUEST_ID") == VGPU_REG_REQUEST_ID);
    CHECK(vgpu_reg_offset("nope") == -1);
    CHECK(strcmp(vgpu_reg_name(VGPU_REG_VM_ID), "VM_ID") == 0);
    vgpu_close(&ctx);
    CHECK_RC(vgpu_read_reg(&ctx, 0, &v), VGPU_E_NOTOPEN);
    vgpu_close(&ctx); /* twice is fine */
}

static void t_info(void)
{
    struct vgpu_ctx ctx;
    struct vgpu_info in;

    fake_set(FAKE_NORMAL, 0, 0);
    if (!open_vgpu0(&ctx))
        return;
    CHECK_RC(vgpu_info(&ctx, &in), VGPU_OK);
    CHECK(strcmp(in.pool, "A") == 0 && in.pool_state == 1);
    CHECK(in.pool_regs[0] == 'A'); /* a one-letter pool reads as before */
    CHECK(in.priority == VGPU_PRIO_HIGH);
    CHECK(in.vm_id == FAKE_VM_ID);
    CHECK(in.version == VGPU_PROTOCOL_VERSION);
    CHECK(in.caps == VGPU_CAPS_V1);
    CHECK(in.status == VGPU_STATUS_IDLE);
    CHECK(strcmp(in.bdf, BDF_VGPU0) == 0);
    /* the whole name, from POOL_ID and POOL_NAME_1..3 */
    fake_pool("gpu-pool.1");
    CHECK_RC(vgpu_info(&ctx, &in), VGPU_OK);
    CHECK(strcmp(in.pool, "gpu-pool.1") == 0 && in.pool_state == 1);
    fake_pool("ABCDEFGHIJKLMNOP");
    CHECK_RC(vgpu_info(&ctx, &in), VGPU_OK);
    CHECK(strcmp(in.pool, "ABCDEFGHIJKLMNOP") == 0);
    fake_pool("");
    CHECK_RC(vgpu_info(&ctx, &in), VGPU_OK);
    CHECK(strcmp(in.pool, "") == 0 && in.pool_state == 0);
    wr(VGPU_REG_POOL_ID, 0x00002041); /* "A " */
    CHECK_RC(vgpu_info(&ctx, &in), VGPU_OK);
    CHECK(strcmp(in.pool, "") == 0 && in.pool_state == -1);
    CHECK(in.pool_regs[0] == 0x2041);
    vgpu_close(&ctx);
    /* A device without VGPU_CAP_POOL_NAME: POOL_ID alone is read. */
    fake_pool("gpu-pool.1");
    wr(VGPU_REG_CAPABILITIES, VGPU_CAPS_V1 & ~VGPU_CAP_POOL_NAME);
    if (open_vgpu0(&ctx)) {
        CHECK_RC(vgpu_info(&ctx, &in), VGPU_OK);
        CHECK(strcmp(in.pool, "gpu-") == 0 && in.pool_regs[1] == 0);
        vgpu_close(&ctx);
    }
    wr(VGPU_REG_CAPABILITIES, VGPU_CAPS_V1);
    fake_pool("A");
}

/* ------------------------------------------------------------------ */
/* Cases: requests                                                     */
/* ------------------------------------------------------------------ */

static void t_add_one(void)
{
    struct vgpu_ctx ctx;
    int32_t a = 100, b = 200, c = 0;

    fake_set(FAKE_NORMAL, 0, 0);
    if (!open_vgpu0(&ctx))
        return;
    CHECK_RC(vgpu_vector_add(&ctx, &a, &b, &c, 1, 0), VGPU_OK);
    CHECK(c == 300);
    /* A second request on the same context (new REQUEST_ID). */
    fake_set(FAKE_NORMAL, 0, 0);
    a = -5;
    b = 3;
    CHECK_RC(vgpu_vector_add(&ctx, &a, &b, &c, 1, 0), VGPU_OK);
    CHECK(c == -2);
    vgpu_close(&ctx);
}

static void t_add_vector(void)
{
    enum { N = VGPU_VECTOR_ADD_MAX_COUNT };
    int32_t a[N], b[N], *c = malloc(N * sizeof(int32_t));
    struct vgpu_ctx ctx;
    size_t i;
    bool ok = true;

    fake_set(FAKE_NORMAL, 0, 0);
    if (!open_vgpu0(&ctx))
        goto out_free;
    for (i = 0; i < N; i++) {
        a[i] = (int32_t)(i * 1000);
        b[i] = -(int32_t)i;
    }
    a[N - 1] = INT32_MAX;
    b[N - 1] = 1;
    CHECK_RC(vgpu_vector_add(&ctx, a, b, c, N, 0), VGPU_OK);
    for (i = 0; i < N - 1; i++)
        ok = ok && c[i] == (int32_t)(i * 999);
    CHECK(ok);
    CHECK(c[N - 1] == INT32_MIN); /* wrapping */
    CHECK_RC(vgpu_vector_add(&ctx, a, b, c, 0, 0), VGPU_E_INVAL);
    CHECK_RC(vgpu_vector_add(&ctx, a, b, c, N + 1, 0), VGPU_E_INVAL);
    vgpu_close(&ctx);
out_free:
    free(c);
}

static void t_device_errors(void)
{
    uint32_t code, got;

    for (code = 1; code < VGPU_ERR_COUNT; code++) {
        got = 0;
        CHECK_RC(add_one(FAKE_ERROR, code, 0, &got), VGPU_E_DEVICE);
        if (got != code)
            check_fail(__FILE__, __LINE__,
                       "device error %u (%s) came back "
                       "as %u",
                       code, vgpu_error_name(code), got);
    }
}

static int raw_submit(uint32_t opcode, uint32_t request_len, uint32_t bell,
                      uint32_t *dev_err)
{
    uint32_t req[4] = {opcode, 1, 100, 200};
    struct vgpu_raw_request raw = {req, sizeof(req), request_len, &bell, 1};
    uint32_t resp[VGPU_BUF_SIZE / 4];
    struct vgpu_ctx ctx;
    size_t rlen;
    int rc;

    fake_set(FAKE_NORMAL, 0, 0);
    if (!open_vgpu0(&ctx))
        return VGPU_E_NODEV;
    rc = vgpu_submit_raw(&ctx, &raw, resp, sizeof(resp), &rlen, 500);
    *dev_err = vgpu_device_error(&ctx);
    if (rc == VGPU_OK)
        CHECK(rlen == 12 && resp[2] == 300);
    vgpu_close(&ctx);
    return rc;
}

static void t_forged(void)
{
    uint32_t e = 0;

    CHECK_RC(raw_submit(VGPU_OP_VECTOR_ADD, 16, 1, &e), VGPU_OK);
    CHECK_RC(raw_submit(VGPU_OP_VECTOR_ADD, 2000, 1, &e), VGPU_E_DEVICE);
    CHECK(e == VGPU_ERR_REQUEST_TOO_LARGE);
    CHECK_RC(raw_submit(99, 16, 1, &e), VGPU_E_DEVICE);
    CHECK(e == VGPU_ERR_BAD_OPCODE);
    CHECK_RC(raw_submit(VGPU_OP_VECTOR_ADD, 16, 5, &e), VGPU_E_DEVICE);
    CHECK(e == VGPU_ERR_BAD_DOORBELL);
    CHECK_RC(raw_submit(VGPU_OP_VECTOR_ADD, 12, 1, &e), VGPU_E_DEVICE);
    CHECK(e == VGPU_ERR_BAD_REQUEST);
}

static void t_timeout(void)
{
    uint64_t t0 = now_ms(), dt;

    CHECK_RC(add_one(FAKE_SILENT, 0, 0, NULL), VGPU_E_TIMEOUT);
    dt = now_ms() - t0;
    if (dt < 200 || dt > 3000)
        check_fail(__FILE__, __LINE__, "200 ms timeout took %llu ms",
                   (unsigned long long)dt);
}

static void t_wait_idle(void)
{
    struct vgpu_ctx ctx;
    uint32_t st = 0;

    fake_set(FAKE_NORMAL, 0, 0);
    if (!open_vgpu0(&ctx))
        return;
    CHECK_RC(vgpu_wait_idle(&ctx, 100, &st), VGPU_OK);
    CHECK(st == VGPU_STATUS_IDLE);
    CHECK_RC(vgpu_write_reg(&ctx, VGPU_REG_DOORBELL, 9), VGPU_OK);
    CHECK_RC(vgpu_wait_idle(&ctx, 1000, &st), VGPU_OK);
    /* the fake may still be on its way from IDLE to ERROR */
    if (st == VGPU_STATUS_IDLE) {
        usleep(100000);
        CHECK_RC(vgpu_wait_idle(&ctx, 1000, &st), VGPU_OK);
    }
    CHECK(st == VGPU_STATUS_ERROR);
    fake_set(FAKE_SILENT, 0, 0);
    CHECK_RC(vgpu_write_reg(&ctx, VGPU_REG_DOORBELL, 1), VGPU_OK);
    usleep(50000);
    CHECK_RC(vgpu_wait_idle(&ctx, 100, &st), VGPU_E_TIMEOUT);
    vgpu_close(&ctx);
}

static void t_hostile_len(void)
{
    CHECK_RC(add_one(FAKE_HUGE_LEN, 0, VGPU_BUF_SIZE + 4, NULL),
             VGPU_E_BADRESP);
    CHECK_RC(add_one(FAKE_HUGE_LEN, 0, 0xffffffffu, NULL), VGPU_E_BADRESP);
    CHECK_RC(add_one(FAKE_HUGE_LEN, 0, 4, NULL), VGPU_E_BADRESP);
    CHECK_RC(add_one(FAKE_HUGE_LEN, 0, 0, NULL), VGPU_E_BADRESP);
    CHECK_RC(add_one(FAKE_HUGE_LEN, 0, VGPU_BUF_SIZE, NULL), VGPU_E_BADRESP);
}

static void t_hostile_header(void)
{
    CHECK_RC(add_one(FAKE_BAD_OPCODE, 0, 0, NULL), VGPU_E_BADRESP);
    CHECK_RC(add_one(FAKE_BAD_COUNT, 0, 2, NULL), VGPU_E_BADRESP);
    CHECK_RC(add_one(FAKE_BAD_COUNT, 0, 0x40000000u, NULL), VGPU_E_BADRESP);
    CHECK_RC(add_one(FAKE_EXTRA, 0, 0, NULL), VGPU_E_BADRESP);
}

static void t_hostile_status_id(void)
{
    CHECK_RC(add_one(FAKE_BAD_STATUS, 0, 0, NULL), VGPU_E_BADRESP);
    CHECK_RC(add_one(FAKE_BAD_ID, 0, 0, NULL), VGPU_E_BADRESP);
}

/* Response bigger than the caller's buffer: refused, nothing written. */
static void t_small_buffer(void)
{
    uint32_t req[4] = {VGPU_OP_VECTOR_ADD, 1, 1, 2};
    unsigned char *resp = malloc(8);
    struct vgpu_ctx ctx;
    size_t rlen = 99;

    fake_set(FAKE_NORMAL, 0, 0);
    if (!open_vgpu0(&ctx))
        goto out_free;
    CHECK_RC(vgpu_submit(&ctx, req, sizeof(req), resp, 8, &rlen, 500),
             VGPU_E_NOSPACE);
    CHECK(rlen == 0);
    fake_set(FAKE_NORMAL, 0, 0);
    CHECK_RC(vgpu_submit(&ctx, req, 4, resp, 8, &rlen, 500), VGPU_E_INVAL);
    CHECK_RC(vgpu_submit(&ctx, req, VGPU_BUF_SIZE + 1, resp, 8, &rlen, 500),
             VGPU_E_INVAL);
    vgpu_close(&ctx);
out_free:
    free(resp);
}

static void t_raw_no_resp(void)
{
    uint32_t req[4] = {VGPU_OP_VECTOR_ADD, 1, 1, 2};
    struct vgpu_raw_request raw = {req, sizeof(req), sizeof(req), NULL, 0};
    struct vgpu_ctx ctx;
    size_t rlen = 0;

    fake_set(FAKE_NORMAL, 0, 0);
    if (!open_vgpu0(&ctx))
        return;
    CHECK_RC(vgpu_submit_raw(&ctx, &raw, NULL, 0, &rlen, 500), VGPU_OK);
    CHECK(rlen == 12);
    raw.len = VGPU_BUF_SIZE + 4;
    CHECK_RC(vgpu_submit_raw(&ctx, &raw, NULL, 0, &rlen, 500), VGPU_E_INVAL);
    vgpu_close(&ctx);
}

static void t_version(void)
{
    struct vgpu_ctx ctx;
    int32_t a = 1, b = 2, c = 0;

    fake_set(FAKE_NORMAL, 0, 0);
    wr(VGPU_REG_PROTOCOL_VER, 3u << 16); /* 1 and 2 are served */
    if (open_vgpu0(&ctx)) {
        CHECK_RC(vgpu_vector_add(&ctx, &a, &b, &c, 1, 200), VGPU_E_VERSION);
        vgpu_close(&ctx);
    }
    wr(VGPU_REG_PROTOCOL_VER, VGPU_PROTOCOL_VERSION);
}

/* ------------------------------------------------------------------ */
/* Fake driver: /dev/vgpu0 and the uapi ioctls                         */
/* ------------------------------------------------------------------ */

enum fdrv_mode {
    FDRV_NORMAL,
    FDRV_SILENT,   /* never completes */
    FDRV_STATUS,   /* completes with status fdrv.arg */
    FDRV_GONE,     /* completes with -ENODEV */
    FDRV_SUBMIT_E, /* SUBMIT fails with errno fdrv.arg */
};

static struct {
    bool on;
    dev_t dev;
    ino_t ino;
    uint32_t path;
    uint64_t max_xfer;
    int mode;
    uint32_t arg;
    struct vgpu_ioctl_completion q[64];
    unsigned int nq;
    unsigned int submits;
} fdrv;

static char dev_root[PATH_MAX];

static int fdrv_submit(struct vgpu_ioctl_submit *s)
{
    struct vgpu_ioctl_completion *c;
    const uint32_t *req = (const uint32_t *)(uintptr_t)s->req_addr;
    uint32_t *resp = (uint32_t *)(uintptr_t)s->resp_addr;

    if (fdrv.mode == FDRV_SUBMIT_E) {
        errno = (int)fdrv.arg;
        return -1;
    }
    if (s->flags || s->reserved || s->req_len < 8 || s->req_len > fdrv.max_xfer) {
        errno = s->req_len > fdrv.max_xfer ? E2BIG : EINVAL;
        return -1;
    }
    if (fdrv.nq >= 8) {
        errno = EAGAIN;
        return -1;
    }
    fdrv.submits++;
    if (fdrv.mode == FDRV_SILENT)
        return 0;
    c = &fdrv.q[fdrv.nq++];
    memset(c, 0, sizeof(*c));
    c->tag = s->tag;
    if (fdrv.mode == FDRV_STATUS) {
        c->status = fdrv.arg;
        return 0;
    }
    if (fdrv.mode == FDRV_GONE) {
        c->error = -ENODEV;
        return 0;
    }
    if (req[0] == VGPU_OP_VECTOR_ADD &&
        s->req_len == VGPU_VECTOR_ADD_REQ_LEN((uint64_t)req[1]) &&
        s->resp_cap >= VGPU_VECTOR_ADD_RESP_LEN((uint64_t)req[1])) {
        uint32_t n = req[1];

        resp[0] = req[0];
        resp[1] = n;
        for (uint32_t i = 0; i < n; i++)
            resp[2 + i] = req[2 + i] + req[2 + n + i];
        c->resp_len = VGPU_VECTOR_ADD_RESP_LEN((uint64_t)n);
    } else {
        c->status = VGPU_ERR_BAD_REQUEST;
    }
    return 0;
}

static int fdrv_ioctl(unsigned long req, void *arg)
{
    switch (req) {
    case VGPU_IOCTL_INFO: {
        struct vgpu_ioctl_info *in = arg;
        uint8_t b[VGPU_POOL_NAME_MAX];

        memset(in, 0, sizeof(*in));
        in->protocol_version = rd(VGPU_REG_PROTOCOL_VER);
        in->caps = rd(VGPU_REG_CAPABILITIES);
        in->priority = rd(VGPU_REG_PRIORITY);
        in->vm_id = rd(VGPU_REG_VM_ID);
        for (unsigned i = 0; i < VGPU_POOL_NAME_REGS; i++)
            vgpu_put_le32(b + 4 * i, rd(vgpu_pool_name_reg(i)));
        memcpy(in->pool, b, sizeof(b));
        return 0;
    }
    case VGPU_IOCTL_DRIVER_INFO: {
        struct vgpu_ioctl_driver_info *di = arg;

        memset(di, 0, sizeof(*di));
        di->path = fdrv.path;
        di->max_xfer = fdrv.max_xfer;
        di->max_inflight = 8;
        di->queue_depth = fdrv.path == VGPU_DRIVER_PATH_RINGS ? 64 : 1;
        return 0;
    }
    case VGPU_IOCTL_SUBMIT:
        return fdrv_submit(arg);
    case VGPU_IOCTL_WAIT: {
        struct vgpu_ioctl_wait *w = arg;
        struct vgpu_ioctl_completion *out =
            (struct vgpu_ioctl_completion *)(uintptr_t)w->comps_addr;
        unsigned int n = fdrv.nq < w->max_count ? fdrv.nq : w->max_count;

        if (w->min_count > n && fdrv.mode == FDRV_SILENT)
            usleep(w->timeout_ms * 1000u);
        memcpy(out, fdrv.q, n * sizeof(*out));
        memmove(fdrv.q, fdrv.q + n, (fdrv.nq - n) * sizeof(*out));
        fdrv.nq -= n;
        w->count = n;
        w->inflight = fdrv.nq;
        return 0;
    }
    default:
        errno = ENOTTY;
        return -1;
    }
}

/* The program's ioctl(): the fake node gets the fake driver, the rest the
 * system call. */
int ioctl(int fd, unsigned long req, ...)
{
    struct stat st;
    va_list ap;
    void *arg;

    va_start(ap, req);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (fdrv.on && fstat(fd, &st) == 0 && st.st_ino == fdrv.ino &&
        st.st_dev == fdrv.dev)
        return fdrv_ioctl(req, arg);
    return (int)syscall(SYS_ioctl, fd, req, arg);
}

static void misc_dir(bool present)
{
    char path[PATH_MAX * 2];

    snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/misc/vgpu0", root,
             BDF_VGPU0);
    if (present) {
        snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/misc", root,
                 BDF_VGPU0);
        make_dir(path);
        snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/misc/vgpu0",
                 root, BDF_VGPU0);
        make_dir(path);
    } else {
        rmdir(path);
        snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/misc", root,
                 BDF_VGPU0);
        rmdir(path);
    }
}

/* The fake driver bound (misc folder, node) with the given path. */
static void fdrv_start(uint32_t path, uint64_t max_xfer)
{
    char node[PATH_MAX * 2];
    struct stat st;

    snprintf(dev_root, sizeof(dev_root), "%s/dev", root);
    make_dir(dev_root);
    write_file(dev_root, "vgpu0", "");
    snprintf(node, sizeof(node), "%s/vgpu0", dev_root);
    if (stat(node, &st)) {
        perror(node);
        exit(2);
    }
    misc_dir(true);
    fdrv.dev = st.st_dev;
    fdrv.ino = st.st_ino;
    fdrv.path = path;
    fdrv.max_xfer = max_xfer;
    fdrv.mode = FDRV_NORMAL;
    fdrv.nq = 0;
    fdrv.submits = 0;
    fdrv.on = true;
}

static void fdrv_stop(void)
{
    fdrv.on = false;
    misc_dir(false);
}

static int open_drv(struct vgpu_ctx *ctx, int choose)
{
    struct vgpu_open_opts o = {
        .sysfs_root = root, .dev_root = dev_root, .choose = choose};

    return vgpu_open(ctx, &o);
}

static void t_path_sysfs(void)
{
    struct vgpu_ctx ctx;
    char d[256];

    fake_set(FAKE_NORMAL, 0, 0);
    if (!open_vgpu0(&ctx))
        return;
    CHECK(vgpu_path(&ctx) == VGPU_PATH_SYSFS);
    CHECK(strcmp(vgpu_path_describe(&ctx, d, sizeof(d)),
                 "sysfs resource0 (v1)") == 0);
    CHECK(vgpu_max_request(&ctx) == VGPU_BUF_SIZE);
    CHECK(vgpu_event_fd(&ctx) < 0);
    CHECK_RC(vgpu_submit_async(&ctx, d, 8, d, 8, 1), VGPU_E_NOTSUP);
    vgpu_close(&ctx);
}

static void t_path_driver_v1(void)
{
    struct vgpu_ctx ctx;
    struct vgpu_info in;
    int32_t a = 100, b = 200, c = 0;
    char d[PATH_MAX + 64], want[PATH_MAX + 64];
    uint32_t v;

    fake_set(FAKE_NORMAL, 0, 0);
    fdrv_start(VGPU_DRIVER_PATH_V1, VGPU_BUF_SIZE);
    CHECK_RC(open_drv(&ctx, VGPU_CHOOSE_DEFAULT), VGPU_OK);
    CHECK(vgpu_path(&ctx) == VGPU_PATH_DRIVER_V1);
    snprintf(want, sizeof(want), "driver %s/vgpu0 (v1 registers)", dev_root);
    CHECK(strcmp(vgpu_path_describe(&ctx, d, sizeof(d)), want) == 0);
    CHECK_RC(vgpu_vector_add(&ctx, &a, &b, &c, 1, 200), VGPU_OK);
    CHECK(c == 300);
    CHECK(fdrv.submits == 1);
    CHECK_RC(vgpu_info(&ctx, &in), VGPU_OK);
    CHECK(strcmp(in.pool, "A") == 0 && in.vm_id == FAKE_VM_ID);
    CHECK(in.priority == VGPU_PRIO_HIGH && in.path == VGPU_PATH_DRIVER_V1);
    CHECK_RC(vgpu_read_reg(&ctx, VGPU_REG_STATUS, &v), VGPU_E_NOTSUP);
    CHECK(strstr(vgpu_errmsg(&ctx), "needs the sysfs resource0 path") != NULL);
    CHECK_RC(vgpu_write_reg(&ctx, VGPU_REG_IRQ_CTRL, 0), VGPU_E_NOTSUP);
    CHECK_RC(vgpu_wait_idle(&ctx, 10, &v), VGPU_E_NOTSUP);
    vgpu_close(&ctx);
    fdrv_stop();
}

static void t_path_driver_rings(void)
{
    struct vgpu_ctx ctx;
    struct vgpu_completion comp[4];
    uint32_t req[3][4], resp[3][3];
    int32_t *a, *b, *c;
    unsigned int n = 0;
    size_t big = 1000, i;
    bool good = true;

    fake_set(FAKE_NORMAL, 0, 0);
    fdrv_start(VGPU_DRIVER_PATH_RINGS, 1u << 20);
    CHECK_RC(open_drv(&ctx, VGPU_CHOOSE_AUTO), VGPU_OK);
    CHECK(vgpu_path(&ctx) == VGPU_PATH_DRIVER_RINGS);
    CHECK(vgpu_max_request(&ctx) == 1u << 20);
    CHECK(vgpu_event_fd(&ctx) >= 0);
    /* More than a v1 buffer holds: through the rings in one request. */
    a = calloc(big, sizeof(*a));
    b = calloc(big, sizeof(*b));
    c = calloc(big, sizeof(*c));
    for (i = 0; i < big; i++) {
        a[i] = (int32_t)i;
        b[i] = (int32_t)(3 * i);
    }
    CHECK_RC(vgpu_vector_add(&ctx, a, b, c, big, 200), VGPU_OK);
    for (i = 0; i < big; i++)
        good = good && c[i] == (int32_t)(4 * i);
    CHECK(good);
    free(a);
    free(b);
    free(c);
    /* Three in flight, reaped together. */
    for (i = 0; i < 3; i++) {
        req[i][0] = VGPU_OP_VECTOR_ADD;
        req[i][1] = 1;
        req[i][2] = (uint32_t)i;
        req[i][3] = 10;
        CHECK_RC(vgpu_submit_async(&ctx, req[i], sizeof(req[i]), resp[i],
                                   sizeof(resp[i]), 7 + (uint32_t)i),
                 VGPU_OK);
    }
    CHECK_RC(vgpu_reap(&ctx, comp, 4, 3, 200, &n), VGPU_OK);
    CHECK(n == 3);
    for (i = 0; i < n && i < 3; i++) {
        CHECK(comp[i].tag == 7 + i && !comp[i].status && !comp[i].error);
        CHECK(comp[i].resp_len == sizeof(resp[i]) && resp[i][2] == 10 + i);
    }
    vgpu_close(&ctx);
    fdrv_stop();
}

static void t_path_choice(void)
{
    struct vgpu_ctx ctx;

    fake_set(FAKE_NORMAL, 0, 0);
    fdrv_start(VGPU_DRIVER_PATH_V1, VGPU_BUF_SIZE);
    /* Forced to sysfs: the driver is not used even though bound. */
    CHECK_RC(open_drv(&ctx, VGPU_CHOOSE_SYSFS), VGPU_OK);
    CHECK(vgpu_path(&ctx) == VGPU_PATH_SYSFS);
    vgpu_close(&ctx);
    setenv(VGPU_PATH_ENV, "sysfs", 1);
    CHECK_RC(open_drv(&ctx, VGPU_CHOOSE_DEFAULT), VGPU_OK);
    CHECK(vgpu_path(&ctx) == VGPU_PATH_SYSFS);
    vgpu_close(&ctx);
    setenv(VGPU_PATH_ENV, "bogus", 1);
    CHECK_RC(open_drv(&ctx, VGPU_CHOOSE_DEFAULT), VGPU_E_INVAL);
    setenv(VGPU_PATH_ENV, "driver", 1);
    CHECK_RC(open_drv(&ctx, VGPU_CHOOSE_DEFAULT), VGPU_OK);
    CHECK(vgpu_path(&ctx) == VGPU_PATH_DRIVER_V1);
    vgpu_close(&ctx);
    unsetenv(VGPU_PATH_ENV);
    /* Bound, but the node cannot be opened: an error naming it. */
    fdrv.on = false;
    {
        char node[PATH_MAX * 2];

        snprintf(node, sizeof(node), "%s/vgpu0", dev_root);
        unlink(node);
    }
    CHECK_RC(open_drv(&ctx, VGPU_CHOOSE_AUTO), VGPU_E_ACCESS);
    CHECK(strstr(vgpu_errmsg(&ctx), "/dev/vgpu0 cannot be opened") != NULL);
    fdrv_stop();
    /* No driver bound: auto falls back to sysfs, driver fails. */
    CHECK_RC(open_drv(&ctx, VGPU_CHOOSE_AUTO), VGPU_OK);
    CHECK(vgpu_path(&ctx) == VGPU_PATH_SYSFS);
    vgpu_close(&ctx);
    CHECK_RC(open_drv(&ctx, VGPU_CHOOSE_DRIVER), VGPU_E_NODEV);
    CHECK(strstr(vgpu_errmsg(&ctx), "no vgpu driver bound") != NULL);
}

static void t_driver_errors(void)
{
    struct vgpu_ctx ctx;
    int32_t a = 1, b = 2, c = 0x7777;
    uint64_t t0;

    fake_set(FAKE_NORMAL, 0, 0);
    fdrv_start(VGPU_DRIVER_PATH_V1, VGPU_BUF_SIZE);
    CHECK_RC(open_drv(&ctx, VGPU_CHOOSE_AUTO), VGPU_OK);
    fdrv.mode = FDRV_STATUS;
    fdrv.arg = VGPU_ERR_QUEUE_FULL;
    CHECK_RC(vgpu_vector_add(&ctx, &a, &b, &c, 1, 200), VGPU_E_DEVICE);
    CHECK(vgpu_device_error(&ctx) == VGPU_ERR_QUEUE_FULL);
    CHECK(c == 0x7777);
    fdrv.mode = FDRV_GONE;
    CHECK_RC(vgpu_vector_add(&ctx, &a, &b, &c, 1, 200), VGPU_E_NODEV);
    CHECK(strstr(vgpu_errmsg(&ctx), "went away") != NULL);
    fdrv.mode = FDRV_SUBMIT_E;
    fdrv.arg = ENODEV;
    CHECK_RC(vgpu_vector_add(&ctx, &a, &b, &c, 1, 200), VGPU_E_NODEV);
    fdrv.mode = FDRV_SILENT;
    t0 = now_ms();
    CHECK_RC(vgpu_vector_add(&ctx, &a, &b, &c, 1, 100), VGPU_E_TIMEOUT);
    CHECK(now_ms() - t0 < 2000);
    /* Over the path's limit: refused before anything is sent. */
    fdrv.mode = FDRV_NORMAL;
    fdrv.submits = 0;
    {
        int32_t big[200] = {0};

        CHECK_RC(vgpu_vector_add(&ctx, big, big, big, 200, 100), VGPU_E_INVAL);
        CHECK(fdrv.submits == 0);
    }
    vgpu_close(&ctx);
    fdrv_stop();
}

/* ------------------------------------------------------------------ */
/* Cases: the CLI against the fake device                              */
/* ------------------------------------------------------------------ */

static char client[PATH_MAX];

static bool find_client(void)
{
    const char *env = getenv("VGPU_CLIENT");
    char self[PATH_MAX];
    ssize_t n;
    char *slash;

    if (env && *env) {
        snprintf(client, sizeof(client), "%s", env);
        return access(client, X_OK) == 0;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return false;
    self[n] = '\0';
    slash = strrchr(self, '/');
    if (!slash)
        return false;
    *slash = '\0';
    if (strlen(self) + sizeof("/vgpu-client") > sizeof(client))
        return false;
    snprintf(client, sizeof(client), "%s/vgpu-client", self);
    return access(client, X_OK) == 0;
}

/* Run the client with args; capture stdout+stderr; return exit status. */
static int run_client(const char *args, char *out, size_t cap)
{
    char cmd[PATH_MAX * 3];
    size_t n;
    FILE *p;
    int st;

    snprintf(cmd, sizeof(cmd), "VGPU_SYSFS_ROOT='%s' '%s' %s 2>&1", root,
             client, args);
    p = popen(cmd, "r");
    if (!p)
        return -1;
    n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define CHECK_CLIENT(args, want_rc, want_text)                                 \
    do {                                                                       \
        char out_[16384];                                                      \
        int rc_;                                                               \
        fake_set(FAKE_NORMAL, 0, 0);                                           \
        rc_ = run_client(args, out_, sizeof(out_));                            \
        if (rc_ != (want_rc) || !strstr(out_, want_text))                      \
            check_fail(__FILE__, __LINE__,                                     \
                       "vgpu-client %s: exit %d, want %d; output '%s', "       \
                       "want '%s'",                                            \
                       args, rc_, want_rc, out_, want_text);                   \
    } while (0)

static void t_client(void)
{
    CHECK_CLIENT("100 200", 0, "300\n");
    CHECK_CLIENT("-- -100 20", 0, "-80\n");
    CHECK_CLIENT("--add 1,2,3 4,5,6", 0, "5,7,9\n");
    CHECK_CLIENT("--info", 0, "priority:     high (2)");
    CHECK_CLIENT("--info", 0, "\npath:         sysfs resource0 (v1)\n");
    CHECK_CLIENT("--bulk 127", 0, "every element matches");
    CHECK_CLIENT("--bulk 128", 1, "request must be 8..1024 bytes");
    CHECK_CLIENT("--info", 0, "\npool:         A\n");
    CHECK_CLIENT("--info", 0,
                 "capabilities: 0x00000073 (VECTOR_ADD "
                 "REQUEST_ID SAXPY SGEMM POOL_NAME)");
    fake_pool("gpu-pool.1");
    CHECK_CLIENT("--info", 0, "\npool:         gpu-pool.1\n");
    CHECK_CLIENT("--read-reg POOL_NAME_1", 0,
                 "POOL_NAME_1 (0x034) = 0x6c6f6f70");
    fake_pool("");
    CHECK_CLIENT("--info", 0, "\npool:         none (not assigned)\n");
    wr(VGPU_REG_POOL_NAME_3, 0x41);
    CHECK_CLIENT("--info", 0,
                 "\npool:         invalid (0x00000000 0x00000000 "
                 "0x00000000 0x00000041)\n");
    fake_pool("A");
    CHECK_CLIENT("-d 00:05.0 --info", 0, "device:       " BDF_VGPU1);
    CHECK_CLIENT("--request-len 2000 1 2", 2,
                 "vgpu-client: device error: REQUEST_TOO_LARGE (1)");
    CHECK_CLIENT("--opcode 99 1 2", 2, "device error: BAD_OPCODE (7)");
    CHECK_CLIENT("--doorbell 5 1 2", 2, "device error: BAD_DOORBELL (3)");
    CHECK_CLIENT("--read-reg VM_ID", 0, "VM_ID (0x010) = 0x0000002a (42)");
    CHECK_CLIENT("--write-reg 0x28=7 --read-reg IRQ_CTRL", 0, "= 0x00000007");
    CHECK_CLIENT("--write-reg 0x28=0 --read-reg 0x28", 0, "= 0x00000000");
    CHECK_CLIENT("-d 00:03.0 1 2", 3, "no vgpu device found");
    CHECK_CLIENT("1 2147483648", 1, "invalid operand");
    CHECK_CLIENT("1 2x", 1, "invalid operand");
    CHECK_CLIENT("--timeout 0 1 2", 1, "invalid --timeout");
    CHECK_CLIENT("--read-reg 0x2", 1, "invalid register");
    CHECK_CLIENT("--add 1,2 3", 1, "differ in length");
    CHECK_CLIENT("1", 1, "expected two operands");
    CHECK_CLIENT("--help", 0, "EXIT STATUS");
}

/*
 * --doorbell alone: a real device answers the (trapping) MMIO write before
 * it returns; this fake is a thread that may see it only after the client
 * has read STATUS, so accept either answer and check what the fake did.
 */
static void t_client_doorbell(void)
{
    struct timespec ts = {0, 1000000};
    char out[4096];
    int rc, i;

    fake_set(FAKE_NORMAL, 0, 0);
    rc = run_client("--doorbell 5", out, sizeof(out));
    CHECK((rc == 2 && strstr(out, "device error: BAD_DOORBELL (3)")) ||
          (rc == 0 && strstr(out, "status: IDLE (0)")));
    for (i = 0; i < 1000 && rd(VGPU_REG_STATUS) != VGPU_STATUS_ERROR; i++)
        nanosleep(&ts, NULL);
    CHECK(rd(VGPU_REG_ERROR_CODE) == VGPU_ERR_BAD_DOORBELL);
}

static void t_client_timeout(void)
{
    char out[4096];
    int rc;

    fake_set(FAKE_SILENT, 0, 0);
    rc = run_client("-t 200 1 2", out, sizeof(out));
    CHECK(rc == 4);
    CHECK(strstr(out, "no answer from the device within 200 ms") != NULL);
    fake_set(FAKE_HUGE_LEN, 0, 4096);
    rc = run_client("-t 500 1 2", out, sizeof(out));
    CHECK(rc == 5);
    CHECK(strstr(out, "RESPONSE_LEN 4096") != NULL);
}

/* ------------------------------------------------------------------ */

int main(void)
{
    make_sysfs();
    fake_start();
    run_case("discovery: first vgpu device, decoys skipped", t_discovery_first);
    run_case("discovery: by index", t_discovery_index);
    run_case("discovery: by BDF (long and short form)", t_discovery_bdf);
    run_case("discovery: wrong, missing or malformed BDF",
             t_discovery_bdf_wrong);
    run_case("discovery: no device found", t_discovery_none);
    run_case("discovery: VGPU_SYSFS_ROOT", t_discovery_env);
    run_case("registers: aligned access, bounds, names", t_registers);
    run_case("info: identity registers", t_info);
    run_case("vector add: 100 + 200 = 300", t_add_one);
    run_case("vector add: 127 elements, wrapping", t_add_vector);
    run_case("device errors: every ERROR_CODE comes back", t_device_errors);
    run_case("diagnostics: forged length, opcode, doorbell", t_forged);
    run_case("timeout: silent device, bounded wait", t_timeout);
    run_case("wait idle: doorbell alone", t_wait_idle);
    run_case("hostile: RESPONSE_LEN out of range", t_hostile_len);
    run_case("hostile: response header opcode/count", t_hostile_header);
    run_case("hostile: unknown STATUS, wrong REQUEST_ID", t_hostile_status_id);
    run_case("caller buffer too small / bad request size", t_small_buffer);
    run_case("raw submit without response buffer", t_raw_no_resp);
    run_case("protocol major mismatch", t_version);
    run_case("path: sysfs when no driver is bound", t_path_sysfs);
    run_case("path: the driver (v1 registers) when bound", t_path_driver_v1);
    run_case("path: the driver's rings, large and async requests",
             t_path_driver_rings);
    run_case("path: forced choices, unopenable node, fallback",
             t_path_choice);
    run_case("driver path: device errors, device gone, timeout, limits",
             t_driver_errors);
    if (find_client()) {
        run_case("vgpu-client: results, info, errors, exit codes", t_client);
        run_case("vgpu-client: doorbell alone", t_client_doorbell);
        run_case("vgpu-client: timeout and hostile length", t_client_timeout);
    } else {
        printf("SKIP vgpu-client cases (no vgpu-client next to the test)\n");
    }
    fake_stop();
    remove_sysfs();
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
