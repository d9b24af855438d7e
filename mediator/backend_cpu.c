/*
 * backend_cpu.c - the CPU reference backend.
 *
 * It owns the reference results every other backend is checked against
 * (backend_cpu_execute), and serves hosts without a GPU.  It exposes
 * cfg->cpu_gpus pretend GPUs, each a worker thread that runs one job at a
 * time, so pools, per-GPU scheduling and asynchronous completion behave as
 * they do with real GPUs.  Finished jobs wait on a list until the event
 * loop, woken through an eventfd, calls poll().
 */
#include "backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util.h"
#include "wire.h"

struct cpu_gpu {
    pthread_t thread;
    struct cpu_backend *cpu;
    unsigned index;
    struct vgpu_backend_job *job; /* given to the thread, NULL when idle */
    bool busy;                    /* from submit until poll() returns it */
};

struct cpu_backend {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    int efd;
    unsigned ngpus;
    struct cpu_gpu gpu[VGPU_BACKEND_MAX_GPUS];
    /* Finished jobs, in completion order, waiting for poll(). */
    struct vgpu_backend_job *done[VGPU_BACKEND_MAX_GPUS];
    unsigned ndone;
};

/* ---------------------------------------------------------------------- */
/* reference computations                                                  */
/* ---------------------------------------------------------------------- */

static float get_f32(const uint8_t *p)
{
    uint32_t bits = wire_get_le32(p);
    float f;

    memcpy(&f, &bits, sizeof(f));
    return f;
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t bits;

    memcpy(&bits, &f, sizeof(bits));
    wire_put_le32(p, bits);
}

/* int32 addition that wraps, as the GPU's does (no UB on overflow). */
static int32_t add_wrapping(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static uint32_t vector_add(const struct vgpu_request *req, uint8_t *resp)
{
    const uint8_t *a = req->operands;
    const uint8_t *b = req->operands + req->count * sizeof(int32_t);
    uint32_t len = payload_put_resp_hdr(resp, req->opcode, req->count);

    for (uint32_t i = 0; i < req->count; i++) {
        int32_t c = add_wrapping((int32_t)wire_get_le32(a + 4 * i),
                                 (int32_t)wire_get_le32(b + 4 * i));

        wire_put_le32(resp + len, (uint32_t)c);
        len += sizeof(int32_t);
    }
    return len;
}

static uint32_t saxpy(const struct vgpu_request *req, uint8_t *resp)
{
    const float a = get_f32(req->operands);
    const uint8_t *x = req->operands + sizeof(float);
    const uint8_t *y = x + req->count * sizeof(float);
    uint32_t len = payload_put_resp_hdr(resp, req->opcode, req->count);

    for (uint32_t i = 0; i < req->count; i++) {
        /* Two roundings (no FMA), as the contract asks of every backend. */
        volatile float ax = a * get_f32(x + 4 * i);

        put_f32(resp + len, ax + get_f32(y + 4 * i));
        len += sizeof(float);
    }
    return len;
}

/* C = A x B in binary32 (exact: small integers), then the int64 sum. */
static uint32_t sgemm(const struct vgpu_request *req, uint8_t *resp,
                      uint32_t *resp_len)
{
    const uint32_t n = req->count;
    const uint32_t seed = wire_get_le32(req->operands);
    float *a = malloc(sizeof(float) * n * n);
    float *b = malloc(sizeof(float) * n * n);
    float *row = malloc(sizeof(float) * n);
    int64_t sum = 0;
    uint32_t len;

    if (!a || !b || !row) {
        free(row);
        free(b);
        free(a);
        return VGPU_ERR_BACKEND;
    }
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < n; j++) {
            a[i * n + j] = (float)vgpu_sgemm_a(seed, i, j);
            b[i * n + j] = (float)vgpu_sgemm_b(seed, i, j);
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        memset(row, 0, sizeof(float) * n);
        for (uint32_t k = 0; k < n; k++) {
            const float aik = a[i * n + k];

            for (uint32_t j = 0; j < n; j++) {
                row[j] += aik * b[k * n + j];
            }
        }
        for (uint32_t j = 0; j < n; j++) {
            sum += (int64_t)row[j];
        }
    }
    free(row);
    free(b);
    free(a);
    len = payload_put_resp_hdr(resp, req->opcode, n);
    wire_put_le32(resp + len, (uint32_t)((uint64_t)sum & 0xffffffffu));
    wire_put_le32(resp + len + 4, (uint32_t)((uint64_t)sum >> 32));
    *resp_len = len + sizeof(uint64_t);
    return VGPU_ERR_NONE;
}

uint32_t backend_cpu_execute(const struct vgpu_request *req, uint8_t *resp,
                             uint32_t *resp_len)
{
    switch (req->opcode) {
    case VGPU_OP_VECTOR_ADD:
        *resp_len = vector_add(req, resp);
        return VGPU_ERR_NONE;
    case VGPU_OP_SAXPY:
        *resp_len = saxpy(req, resp);
        return VGPU_ERR_NONE;
    case VGPU_OP_SGEMM:
        return sgemm(req, resp, resp_len);
    default:
        *resp_len = 0;
        return VGPU_ERR_BAD_OPCODE;
    }
}

/* ---------------------------------------------------------------------- */
/* workers                                                                 */
/* ---------------------------------------------------------------------- */

static void run_job(struct vgpu_backend_job *job)
{
    uint64_t start = now_ns();

    job->error = backend_cpu_execute(&job->req, job->resp, &job->resp_len);
    if (job->error) {
        job->resp_len = 0;
    }
    job->exec_ns = now_ns() - start;
}

static void *worker(void *arg)
{
    struct cpu_gpu *g = arg;
    struct cpu_backend *cpu = g->cpu;
    const uint64_t one = 1;

    pthread_mutex_lock(&cpu->lock);
    for (;;) {
        struct vgpu_backend_job *job;

        while (!g->job && !cpu->stopping) {
            pthread_cond_wait(&cpu->wake, &cpu->lock);
        }
        if (cpu->stopping) {
            break;
        }
        job = g->job;
        pthread_mutex_unlock(&cpu->lock);
        run_job(job);
        pthread_mutex_lock(&cpu->lock);
        g->job = NULL;
        cpu->done[cpu->ndone++] = job;
        if (write(cpu->efd, &one, sizeof(one)) < 0) {
            /* The counter cannot overflow here; nothing to do. */
        }
    }
    pthread_mutex_unlock(&cpu->lock);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* the interface                                                           */
/* ---------------------------------------------------------------------- */

static void stop_workers(struct cpu_backend *cpu, unsigned started)
{
    pthread_mutex_lock(&cpu->lock);
    cpu->stopping = true;
    pthread_cond_broadcast(&cpu->wake);
    pthread_mutex_unlock(&cpu->lock);
    for (unsigned i = 0; i < started; i++) {
        pthread_join(cpu->gpu[i].thread, NULL);
    }
}

static int cpu_open(void **state, const struct vgpu_backend_config *cfg,
                    const char **why)
{
    struct cpu_backend *cpu = calloc(1, sizeof(*cpu));
    unsigned i;

    if (!cpu) {
        *why = "out of memory";
        return -1;
    }
    cpu->ngpus = cfg->cpu_gpus ? cfg->cpu_gpus : 1;
    if (cpu->ngpus > VGPU_BACKEND_MAX_GPUS) {
        *why = "too many CPU pretend GPUs";
        goto err_free;
    }
    cpu->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (cpu->efd < 0) {
        *why = "eventfd failed";
        goto err_free;
    }
    pthread_mutex_init(&cpu->lock, NULL);
    pthread_cond_init(&cpu->wake, NULL);
    for (i = 0; i < cpu->ngpus; i++) {
        cpu->gpu[i].cpu = cpu;
        cpu->gpu[i].index = i;
        if (pthread_create(&cpu->gpu[i].thread, NULL, worker, &cpu->gpu[i])) {
            *why = "cannot start a worker thread";
            goto err_stop;
        }
    }
    *state = cpu;
    return 0;

err_stop:
    stop_workers(cpu, i);
    pthread_cond_destroy(&cpu->wake);
    pthread_mutex_destroy(&cpu->lock);
    close(cpu->efd);
err_free:
    free(cpu);
    return -1;
}

static void cpu_close(void *state)
{
    struct cpu_backend *cpu = state;

    stop_workers(cpu, cpu->ngpus);
    pthread_cond_destroy(&cpu->wake);
    pthread_mutex_destroy(&cpu->lock);
    close(cpu->efd);
    free(cpu);
}

static unsigned cpu_gpu_count(void *state)
{
    return ((struct cpu_backend *)state)->ngpus;
}

static void cpu_gpu_info(void *state, unsigned gpu, struct vgpu_gpu_info *info)
{
    (void)state;
    memset(info, 0, sizeof(*info));
    snprintf(info->name, sizeof(info->name), "CPU reference backend #%u",
             gpu);
}

static bool cpu_gpu_idle(void *state, unsigned gpu)
{
    struct cpu_backend *cpu = state;

    return gpu < cpu->ngpus && !cpu->gpu[gpu].busy;
}

static void cpu_submit(void *state, struct vgpu_backend_job *job)
{
    struct cpu_backend *cpu = state;
    struct cpu_gpu *g = &cpu->gpu[job->gpu];

    pthread_mutex_lock(&cpu->lock);
    g->busy = true;
    g->job = job;
    pthread_cond_broadcast(&cpu->wake);
    pthread_mutex_unlock(&cpu->lock);
}

static int cpu_fd(void *state)
{
    return ((struct cpu_backend *)state)->efd;
}

static void cpu_poll(void *state)
{
    struct cpu_backend *cpu = state;
    struct vgpu_backend_job *done[VGPU_BACKEND_MAX_GPUS];
    unsigned n;
    uint64_t count;

    if (read(cpu->efd, &count, sizeof(count)) < 0 && errno != EAGAIN) {
        return;
    }
    pthread_mutex_lock(&cpu->lock);
    n = cpu->ndone;
    memcpy(done, cpu->done, n * sizeof(done[0]));
    cpu->ndone = 0;
    for (unsigned i = 0; i < n; i++) {
        cpu->gpu[done[i]->gpu].busy = false;
    }
    pthread_mutex_unlock(&cpu->lock);
    for (unsigned i = 0; i < n; i++) {
        done[i]->done(done[i]);
    }
}

static void cpu_vm_release(void *state, uint32_t domid)
{
    /* Nothing outlives a job on the CPU backend. */
    (void)state;
    (void)domid;
}

static uint64_t cpu_vm_mem_used(void *state, uint32_t domid)
{
    struct cpu_backend *cpu = state;
    uint64_t used = 0;

    pthread_mutex_lock(&cpu->lock);
    for (unsigned i = 0; i < cpu->ngpus; i++) {
        const struct vgpu_backend_job *job = cpu->gpu[i].job;

        if (job && job->domid == domid) {
            used += payload_device_bytes(&job->req);
        }
    }
    pthread_mutex_unlock(&cpu->lock);
    return used;
}

const struct vgpu_backend_ops vgpu_backend_cpu = {
    .name = "cpu",
    .open = cpu_open,
    .close = cpu_close,
    .gpu_count = cpu_gpu_count,
    .gpu_info = cpu_gpu_info,
    .gpu_idle = cpu_gpu_idle,
    .submit = cpu_submit,
    .fd = cpu_fd,
    .poll = cpu_poll,
    .vm_release = cpu_vm_release,
    .vm_mem_used = cpu_vm_mem_used,
};
