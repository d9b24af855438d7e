/*
 * backend_worker.h - the one worker mechanism every backend is built on,
 * and the table of execution operations a backend fills in.
 *
 * The mechanism (backend_worker.c) is what struct vgpu_backend_ops asks
 * for and what does not depend on the device: one worker thread per GPU,
 * each with a FIFO queue of submitted jobs that it runs one at a time; a
 * list of finished jobs and an eventfd that the event loop polls; idle
 * tracking (a GPU is busy from submit() until poll() has handed its last
 * job back); close() that waits for the running jobs and calls no done().
 *
 * What does depend on the device sits behind struct vgpu_exec_ops, as a
 * transport sits behind libvfio-user's transport_ops: an opaque
 * backend-wide state (`exec`, e.g. the loaded driver) made by open(), and
 * an opaque context per GPU (`gpu`, e.g. the device and the VMs' contexts
 * on it) made by open_gpu().  run() is called on that GPU's worker thread
 * only, so a per-GPU context needs no lock against itself; vm_release()
 * and vm_mem_used() come from the event loop's thread while run() may be
 * running, so what they share with run() needs one.
 *
 * A backend is then a table and three lines:
 *
 *     static int cpu_open(void **st, struct vgpu_backend_config *cfg,
 *                         const char **why)
 *     {
 *         return vgpu_worker_open(st, &cpu_exec, cfg, why);
 *     }
 *     const struct vgpu_backend_ops vgpu_backend_cpu =
 *         VGPU_WORKER_BACKEND("cpu", cpu_open);
 */
#ifndef VGPU_BACKEND_WORKER_H
#define VGPU_BACKEND_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

struct vgpu_exec_ops {
    /*
     * Backend-wide set-up, on the caller's thread: *exec and *ngpus (1 to
     * VGPU_BACKEND_MAX_GPUS).  0, or -1 with the reason in why (why_len
     * bytes) and nothing left to close.
     */
    int (*open)(void **exec, const struct vgpu_backend_config *cfg,
                unsigned *ngpus, char *why, size_t why_len);
    /*
     * GPU index, after open() and before its worker starts: *gpu, the
     * context every later call about that GPU gets, and *info (zeroed
     * before).  0, or -1 with why and nothing of that GPU left.
     */
    int (*open_gpu)(void *exec, unsigned index, void **gpu,
                    struct vgpu_gpu_info *info, char *why, size_t why_len);
    /*
     * Run a validated job on the GPU's worker thread: set job->error,
     * job->resp_len (what it wrote to job->resp, which holds
     * payload_resp_size() bytes) and job->exec_ns.
     */
    void (*run)(void *gpu, struct vgpu_backend_job *job);
    /*
     * Optional.  On the worker thread right after run(), when vm_release()
     * of the job's domain came while the job was queued or running: free
     * what the domain still holds on this GPU (run() may have made it
     * after vm_release() looked).
     */
    void (*drop_vm)(void *gpu, uint32_t domid);
    /*
     * Optional.  On the caller's thread: free at once what the domain
     * holds on this GPU that no running job uses.
     */
    void (*vm_release)(void *gpu, uint32_t domid);
    /*
     * Optional.  Device memory the domain holds on this GPU; when NULL,
     * the mechanism counts payload_device_bytes() of the domain's jobs
     * that are queued or running (a backend that keeps nothing between
     * jobs).
     */
    uint64_t (*vm_mem_used)(void *gpu, uint32_t domid);
    /* Optional.  The domain's guest CUDA contexts on this GPU (v3). */
    uint32_t (*vm_cuda_contexts)(void *gpu, uint32_t domid);
    /* Optional.  The worker has stopped: free the GPU's context. */
    void (*close_gpu)(void *gpu);
    /* Optional.  Every GPU is closed: free exec. */
    void (*close)(void *exec);
};

/* open() of a worker backend: the mechanism with exec's operations. */
int vgpu_worker_open(void **state, const struct vgpu_exec_ops *exec,
                     struct vgpu_backend_config *cfg, const char **why);

/* The rest of struct vgpu_backend_ops, the same for every worker backend. */
void vgpu_worker_close(void *state);
unsigned vgpu_worker_gpu_count(void *state);
void vgpu_worker_gpu_info(void *state, unsigned gpu,
                          struct vgpu_gpu_info *info);
bool vgpu_worker_gpu_idle(void *state, unsigned gpu);
void vgpu_worker_submit(void *state, struct vgpu_backend_job *job);
int vgpu_worker_fd(void *state);
void vgpu_worker_poll(void *state);
void vgpu_worker_vm_release(void *state, uint32_t domid);
uint64_t vgpu_worker_vm_mem_used(void *state, uint32_t domid);
uint32_t vgpu_worker_vm_cuda_contexts(void *state, uint32_t domid);

#define VGPU_WORKER_BACKEND(name_, open_)                                      \
    {                                                                          \
        .name = (name_), .open = (open_), .close = vgpu_worker_close,          \
        .gpu_count = vgpu_worker_gpu_count, .gpu_info = vgpu_worker_gpu_info,  \
        .gpu_idle = vgpu_worker_gpu_idle, .submit = vgpu_worker_submit,        \
        .fd = vgpu_worker_fd, .poll = vgpu_worker_poll,                        \
        .vm_release = vgpu_worker_vm_release,                                  \
        .vm_mem_used = vgpu_worker_vm_mem_used,                                \
        .vm_cuda_contexts = vgpu_worker_vm_cuda_contexts,                      \
    }

#endif
