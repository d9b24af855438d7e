/*
 * backend_worker.c - owns the worker mechanism shared by the backends
 * (backend_worker.h): the per-GPU threads and job queues, the finished
 * list and its eventfd, idle tracking, and the order of set-up and
 * teardown around a backend's execution operations.
 *
 * One lock guards every queue, every count and the finished list; it is
 * never held while a job runs or while the backend's operations free
 * anything, so submit(), poll() and gpu_idle() on the event loop never
 * wait for a GPU.
 */
#include "backend_worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

struct vgpu_worker;

struct worker_gpu {
    struct vgpu_worker *w;
    unsigned index;
    pthread_t thread;
    pthread_cond_t wake; /* a job was queued, or stopping */
    void *ctx;           /* the backend's context of this GPU */
    struct vgpu_gpu_info info;
    /* below: under w->lock */
    struct vgpu_backend_job *head, *tail; /* queued, not started */
    struct vgpu_backend_job *running;
    unsigned held; /* submitted and not yet handed back by poll() */
};

struct vgpu_worker {
    const struct vgpu_exec_ops *ops;
    void *exec;
    unsigned ngpus;
    int efd;
    pthread_mutex_t lock;
    bool stopping;
    /* Finished jobs, in the order they finished, waiting for poll(). */
    struct vgpu_backend_job *done_head, *done_tail;
    struct worker_gpu gpu[VGPU_BACKEND_MAX_GPUS];
};

/* Under the lock: hand job to poll() and wake the event loop. */
static void finish(struct vgpu_worker *w, struct vgpu_backend_job *job)
{
    job->held.next = NULL;
    if (w->done_tail) {
        w->done_tail->held.next = job;
    } else {
        w->done_head = job;
    }
    w->done_tail = job;
    efd_signal(w->efd);
}

/* On g's worker, without the lock. */
static void run_one(struct vgpu_worker *w, struct worker_gpu *g,
                    struct vgpu_backend_job *job)
{
    job->error = VGPU_ERR_NONE;
    job->resp_len = 0;
    job->exec_ns = 0;
    if (!job->req.op || job->resp.iov_len < payload_resp_size(&job->req)) {
        /* The caller's bug, not the guest's: say so, run nothing. */
        log_err("backend: dom%u gpu%u: job without a validated request or "
                "a response buffer of its size",
                job->domid, g->index);
        job->error = VGPU_ERR_BACKEND;
        return;
    }
    w->ops->run(g->ctx, job);
    if (job->error) {
        job->resp_len = 0;
    }
}

static void *worker_main(void *arg)
{
    struct worker_gpu *g = arg;
    struct vgpu_worker *w = g->w;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        struct vgpu_backend_job *job;

        while (!g->head && !w->stopping) {
            pthread_cond_wait(&g->wake, &w->lock);
        }
        if (w->stopping) {
            break;
        }
        job = g->head;
        g->head = job->held.next;
        if (!g->head) {
            g->tail = NULL;
        }
        g->running = job;
        pthread_mutex_unlock(&w->lock);

        run_one(w, g, job);

        pthread_mutex_lock(&w->lock);
        /*
         * Read under the same lock that clears running below, unless the
         * domain went: a vm_release() after this finds no job of it here
         * and frees what the job left through the backend's vm_release().
         */
        if (job->held.released && w->ops->drop_vm) {
            pthread_mutex_unlock(&w->lock);
            w->ops->drop_vm(g->ctx, job->domid);
            pthread_mutex_lock(&w->lock);
        }
        g->running = NULL;
        finish(w, job);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Stop and join the first n workers; a running job ends first. */
static void stop_workers(struct vgpu_worker *w, unsigned n)
{
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    for (unsigned i = 0; i < w->ngpus; i++) {
        pthread_cond_broadcast(&w->gpu[i].wake);
    }
    pthread_mutex_unlock(&w->lock);
    for (unsigned i = 0; i < n; i++) {
        pthread_join(w->gpu[i].thread, NULL);
    }
}

/* The backend's contexts of the first n GPUs, last first, then exec. */
static void close_exec(struct vgpu_worker *w, unsigned n)
{
    while (n-- > 0) {
        if (w->ops->close_gpu) {
            w->ops->close_gpu(w->gpu[n].ctx);
        }
    }
    if (w->ops->close) {
        w->ops->close(w->exec);
    }
}

static void free_worker(struct vgpu_worker *w)
{
    for (unsigned i = 0; i < VGPU_BACKEND_MAX_GPUS; i++) {
        pthread_cond_destroy(&w->gpu[i].wake);
    }
    pthread_mutex_destroy(&w->lock);
    if (w->efd >= 0) {
        close(w->efd);
    }
    free(w);
}

int vgpu_worker_open(void **state, const struct vgpu_exec_ops *ops,
                     struct vgpu_backend_config *cfg, const char **why)
{
    struct vgpu_worker *w = calloc(1, sizeof(*w));
    unsigned opened = 0, started = 0;

    cfg->why[0] = 0;
    *why = cfg->why;
    if (!w) {
        *why = "out of memory";
        return -1;
    }
    w->ops = ops;
    w->efd = -1;
    pthread_mutex_init(&w->lock, NULL);
    for (unsigned i = 0; i < VGPU_BACKEND_MAX_GPUS; i++) {
        pthread_cond_init(&w->gpu[i].wake, NULL);
        w->gpu[i].w = w;
        w->gpu[i].index = i;
    }
    if (ops->open(&w->exec, cfg, &w->ngpus, cfg->why, sizeof(cfg->why))) {
        free_worker(w);
        return -1;
    }
    if (w->ngpus == 0 || w->ngpus > VGPU_BACKEND_MAX_GPUS) {
        snprintf(cfg->why, sizeof(cfg->why),
                 "%u GPUs (the mediator serves 1 to %d)", w->ngpus,
                 VGPU_BACKEND_MAX_GPUS);
        goto err;
    }
    for (; opened < w->ngpus; opened++) {
        struct worker_gpu *g = &w->gpu[opened];

        if (ops->open_gpu(w->exec, opened, &g->ctx, &g->info, cfg->why,
                          sizeof(cfg->why))) {
            goto err;
        }
    }
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        snprintf(cfg->why, sizeof(cfg->why), "eventfd failed");
        goto err;
    }
    for (; started < w->ngpus; started++) {
        if (pthread_create(&w->gpu[started].thread, NULL, worker_main,
                           &w->gpu[started])) {
            snprintf(cfg->why, sizeof(cfg->why),
                     "cannot start a worker thread");
            stop_workers(w, started);
            goto err;
        }
    }
    *state = w;
    return 0;

err:
    close_exec(w, opened);
    free_worker(w);
    return -1;
}

void vgpu_worker_close(void *state)
{
    struct vgpu_worker *w = state;

    /* Queued and finished jobs stay the caller's; no done() is called. */
    stop_workers(w, w->ngpus);
    close_exec(w, w->ngpus);
    free_worker(w);
}

unsigned vgpu_worker_gpu_count(void *state)
{
    return ((struct vgpu_worker *)state)->ngpus;
}

void vgpu_worker_gpu_info(void *state, unsigned gpu, struct vgpu_gpu_info *info)
{
    struct vgpu_worker *w = state;

    memset(info, 0, sizeof(*info));
    if (gpu < w->ngpus) {
        *info = w->gpu[gpu].info;
    }
}

bool vgpu_worker_gpu_idle(void *state, unsigned gpu)
{
    struct vgpu_worker *w = state;
    bool idle;

    if (gpu >= w->ngpus) {
        return false;
    }
    pthread_mutex_lock(&w->lock);
    idle = w->gpu[gpu].held == 0;
    pthread_mutex_unlock(&w->lock);
    return idle;
}

void vgpu_worker_submit(void *state, struct vgpu_backend_job *job)
{
    struct vgpu_worker *w = state;

    pthread_mutex_lock(&w->lock);
    job->held.next = NULL;
    job->held.released = false;
    if (job->gpu >= w->ngpus) {
        /* A caller's bug: it still ends through poll(), as every job. */
        log_err("backend: dom%u: job for GPU %u of %u", job->domid, job->gpu,
                w->ngpus);
        job->error = VGPU_ERR_BACKEND;
        job->resp_len = 0;
        job->exec_ns = 0;
        finish(w, job);
    } else {
        struct worker_gpu *g = &w->gpu[job->gpu];

        g->held++;
        if (g->tail) {
            g->tail->held.next = job;
        } else {
            g->head = job;
        }
        g->tail = job;
        pthread_cond_signal(&g->wake);
    }
    pthread_mutex_unlock(&w->lock);
}

int vgpu_worker_fd(void *state)
{
    return ((struct vgpu_worker *)state)->efd;
}

void vgpu_worker_poll(void *state)
{
    struct vgpu_worker *w = state;
    struct vgpu_backend_job *list;
    uint64_t count;

    /*
     * Read under the lock that finish() writes under: the count and the
     * list then agree, so fd() is readable exactly while finished jobs
     * wait (no wakeup left over for a job this call already took).
     */
    pthread_mutex_lock(&w->lock);
    if (read(w->efd, &count, sizeof(count)) < 0 && errno != EAGAIN) {
        pthread_mutex_unlock(&w->lock);
        return;
    }
    list = w->done_head;
    w->done_head = w->done_tail = NULL;
    for (struct vgpu_backend_job *j = list; j; j = j->held.next) {
        if (j->gpu < w->ngpus) {
            w->gpu[j->gpu].held--;
        }
    }
    pthread_mutex_unlock(&w->lock);
    while (list) {
        /* done() may free the job: take the link first. */
        struct vgpu_backend_job *next = list->held.next;

        list->done(list);
        list = next;
    }
}

void vgpu_worker_vm_release(void *state, uint32_t domid)
{
    struct vgpu_worker *w = state;

    /* Jobs of the domain still held: the backend frees after each. */
    pthread_mutex_lock(&w->lock);
    for (unsigned i = 0; i < w->ngpus; i++) {
        struct worker_gpu *g = &w->gpu[i];

        for (struct vgpu_backend_job *j = g->head; j; j = j->held.next) {
            if (j->domid == domid) {
                j->held.released = true;
            }
        }
        if (g->running && g->running->domid == domid) {
            g->running->held.released = true;
        }
    }
    pthread_mutex_unlock(&w->lock);
    if (w->ops->vm_release) {
        for (unsigned i = 0; i < w->ngpus; i++) {
            w->ops->vm_release(w->gpu[i].ctx, domid);
        }
    }
}

uint32_t vgpu_worker_vm_cuda_contexts(void *state, uint32_t domid)
{
    struct vgpu_worker *w = state;
    uint32_t n = 0;

    for (unsigned i = 0; w->ops->vm_cuda_contexts && i < w->ngpus; i++) {
        n += w->ops->vm_cuda_contexts(w->gpu[i].ctx, domid);
    }
    return n;
}

uint64_t vgpu_worker_vm_mem_used(void *state, uint32_t domid)
{
    struct vgpu_worker *w = state;
    uint64_t used = 0;

    if (w->ops->vm_mem_used) {
        for (unsigned i = 0; i < w->ngpus; i++) {
            used += w->ops->vm_mem_used(w->gpu[i].ctx, domid);
        }
        return used;
    }
    pthread_mutex_lock(&w->lock);
    for (unsigned i = 0; i < w->ngpus; i++) {
        const struct worker_gpu *g = &w->gpu[i];

        for (const struct vgpu_backend_job *j = g->head; j; j = j->held.next) {
            if (j->domid == domid) {
                used += payload_device_bytes(&j->req);
            }
        }
        if (g->running && g->running->domid == domid) {
            used += payload_device_bytes(&g->running->req);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return used;
}
