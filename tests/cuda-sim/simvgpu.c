/*
 * simvgpu.c - a simulated VM for the guest libcuda.so.1: the part of
 * libvgpu's API that cuda-shim uses (guest-tools/include/libvgpu.h), played
 * on the host over the real device <-> mediator channel of vgpu/shm.h
 * instead of a guest's /dev/vgpuN.  A test double, never installed.
 *
 * Why: a TCG guest is the real path, but it is slow and its CPU time
 * would hide what the remoting costs.  Built with this file, the same shim
 * sources give a libcuda.so.1 that an unmodified CUDA program on the host
 * loads (LD_LIBRARY_PATH), whose batches go to a real vgpu-mediator as a
 * qemu-dm's device would send them (tests/lib/shmdev.c: HELLO, SHM_REQ,
 * the staging region, the rings).  So `make gpu-check` can measure the
 * shim against native on one machine, and `make check` can run programs
 * whose libraries a guest's initramfs cannot hold (cuBLAS).
 *
 * What the driver does that this must do too: one session id per open
 * device, and SESSION_END of it when the device is closed (here also at
 * exit), so that the mediator frees the contexts the process made.  What
 * it does not do: a process killed by a signal sends nothing; its
 * connection closing is all the mediator sees.
 *
 * Environment: VGPU_SIM_SOCKET, the mediator's socket in the simulated
 * domain's qemu-dm chroot (root-<domid>/vgpu-mediator.sock);
 * VGPU_SIM_TIMEOUT_MS, how long one batch may take (default 300000).
 *
 * One process at a time per simulated VM: each process is the domain's
 * device connection, and the mediator serves one per domain (a qemu-dm's);
 * in a guest, the kernel driver shares that one among processes.
 *
 * State: one device per process (as the shim opens one), kept here; the
 * shim calls in under its own lock, and the channel has one of its own
 * too, for the exit handler's SESSION_END.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "libvgpu.h"
#include "shmdev.h"
#include "vgpu/rpc.h"

static struct {
    pthread_mutex_t lock; /* the channel, also for the exit handler */
    bool open;
    struct shmdev d;
    uint64_t session; /* 0: none asked for */
    unsigned timeout_ms;
} sim = {.lock = PTHREAD_MUTEX_INITIALIZER};

__attribute__((format(printf, 3, 4))) static int
fail(struct vgpu_ctx *ctx, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ctx->errmsg, sizeof(ctx->errmsg), fmt, ap);
    va_end(ap);
    return rc;
}

/* HELLO as vgpu-stub says it (its pool, priority and VM-ID are the
 * mediator's to give, from xenstore), and its HELLO_ACK. */
static const char *hello(int fd)
{
    struct harness_reply ack;

    if (!harness_send_hello(fd, "", 0, 0)) {
        return "HELLO could not be sent";
    }
    if (harness_read_reply(fd, &ack, 5000) || ack.type != VGPU_MSG_HELLO_ACK ||
        ack.length != VGPU_MSG_HELLO_SIZE) {
        return "no HELLO_ACK within 5 s";
    }
    if (ack.status != VGPU_ERR_NONE) {
        return vgpu_error_name(ack.status);
    }
    return NULL;
}

static void send_session_end(void);

static void at_exit(void)
{
    send_session_end();
}

int vgpu_open(struct vgpu_ctx *ctx, const struct vgpu_open_opts *opts)
{
    const char *path = getenv("VGPU_SIM_SOCKET"), *why, *t;
    static bool hooked;
    uint32_t status = 0;
    int fd;

    (void)opts;
    memset(ctx, 0, sizeof(*ctx));
    ctx->fd = ctx->devfd = -1;
    if (sim.open) {
        return fail(ctx, VGPU_E_ACCESS, "%s", "the simulated device is open");
    }
    if (!path || !*path) {
        return fail(ctx, VGPU_E_NODEV, "%s",
                    "simulated VM: VGPU_SIM_SOCKET names no mediator socket");
    }
    fd = harness_dev_connect(path);
    if (fd < 0) {
        return fail(ctx, VGPU_E_NODEV, "simulated VM: cannot connect to %s: %s",
                    path, strerror(errno));
    }
    why = hello(fd);
    if (!why && shmdev_open(&sim.d, fd, 5000, &status, &why)) {
        why = why ? why : "no channel";
    }
    if (why) {
        close(fd);
        return fail(ctx, VGPU_E_DEVICE, "simulated VM: %s", why);
    }
    t = getenv("VGPU_SIM_TIMEOUT_MS");
    sim.timeout_ms = 300000;
    if (t) {
        long v = strtol(t, NULL, 10);

        if (v > 0 && v <= 3600000) {
            sim.timeout_ms = (unsigned)v;
        }
    }
    sim.open = true;
    sim.session = 0;
    ctx->fd = fd;
    ctx->path = VGPU_PATH_DRIVER_RINGS;
    ctx->max_xfer = sim.d.o.max_xfer;
    snprintf(ctx->node, sizeof(ctx->node), "%s", path);
    if (!hooked) {
        hooked = true;
        atexit(at_exit);
    }
    return VGPU_OK;
}

int vgpu_submit(struct vgpu_ctx *ctx, const void *req, size_t len, void *resp,
                size_t cap, size_t *resp_len, unsigned int timeout_ms)
{
    const char *why = NULL;
    struct shmdev_req *q;
    long st;

    if (!sim.open || ctx->fd < 0) {
        return fail(ctx, VGPU_E_NOTOPEN, "%s", "not open");
    }
    pthread_mutex_lock(&sim.lock);
    q = shmdev_submit(&sim.d, req, len, resp, cap);
    if (!q) {
        pthread_mutex_unlock(&sim.lock);
        return fail(ctx, VGPU_E_INVAL, "%s", "the request does not fit");
    }
    st = shmdev_wait(&sim.d, q,
                     timeout_ms ? (int)timeout_ms : (int)sim.timeout_ms, &why);
    if (st < 0) {
        /* Given up, so that nothing more is read from the caller's
         * buffers nor written into them. */
        shmdev_cancel(&sim.d, q);
        pthread_mutex_unlock(&sim.lock);
        return fail(ctx, VGPU_E_TIMEOUT, "simulated VM: %s",
                    why ? why : "no answer");
    }
    pthread_mutex_unlock(&sim.lock);
    if (st != VGPU_ERR_NONE) {
        ctx->dev_error = (uint32_t)st;
        return fail(ctx, VGPU_E_DEVICE, "device error %s",
                    vgpu_error_name((uint32_t)st));
    }
    *resp_len = q->resp_total;
    return VGPU_OK;
}

/* The driver's vgpu_send_session_end: one SESSION_END call of the id. */
static void send_session_end(void)
{
    uint8_t msg[sizeof(struct vgpu_req_hdr) + sizeof(struct vgpu_rpc_call) + 8];
    uint8_t resp[sizeof(struct vgpu_resp_hdr) + sizeof(struct vgpu_rpc_ret)];
    const char *why = NULL;
    struct shmdev_req *q;

    pthread_mutex_lock(&sim.lock);
    if (!sim.open || !sim.session) {
        pthread_mutex_unlock(&sim.lock);
        return;
    }
    vgpu_put_le32(msg, VGPU_OP_CUDA);
    vgpu_put_le32(msg + 4, 1);
    vgpu_put_le32(msg + 8, VGPU_RPC_SESSION_END);
    vgpu_put_le32(msg + 12, VGPU_RPC_ARGS_SESSION_END);
    vgpu_put_le64(msg + 16, sim.session);
    sim.session = 0;
    q = shmdev_submit(&sim.d, msg, sizeof(msg), resp, sizeof(resp));
    if (q && shmdev_wait(&sim.d, q, 5000, &why) < 0) {
        shmdev_cancel(&sim.d, q);
    }
    pthread_mutex_unlock(&sim.lock);
}

void vgpu_close(struct vgpu_ctx *ctx)
{
    if (sim.open && ctx->fd >= 0) {
        send_session_end();
        pthread_mutex_lock(&sim.lock);
        shmdev_close(&sim.d);
        close(ctx->fd);
        sim.open = false;
        pthread_mutex_unlock(&sim.lock);
    }
    ctx->fd = -1;
}

int vgpu_path(const struct vgpu_ctx *ctx)
{
    return ctx->path;
}

const char *vgpu_path_describe(const struct vgpu_ctx *ctx, char *buf,
                               size_t len)
{
    snprintf(buf, len, "simulated VM (%s)", ctx->node);
    return buf;
}

uint64_t vgpu_max_request(const struct vgpu_ctx *ctx)
{
    return ctx->max_xfer;
}

/* Ids as the driver makes them: unique among the VM's processes. */
int vgpu_session(struct vgpu_ctx *ctx, uint64_t *id)
{
    if (!sim.open || ctx->fd < 0) {
        return fail(ctx, VGPU_E_NOTOPEN, "%s", "not open");
    }
    if (!sim.session) {
        sim.session = ((uint64_t)getpid() << 16) | 1u;
    }
    *id = sim.session;
    return VGPU_OK;
}

const char *vgpu_errmsg(const struct vgpu_ctx *ctx)
{
    return ctx->errmsg;
}

void *vgpu_buffer_alloc(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

void vgpu_buffer_free(void *p, size_t size)
{
    if (p) {
        munmap(p, size);
    }
}
