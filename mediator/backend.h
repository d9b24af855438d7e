/*
 * backend.h - the interface between the mediator's scheduler and what
 * executes requests: the CPU reference backend (always there) and the CUDA
 * backend (when libcuda.so.1 and a GPU are present).
 *
 * A backend exposes one or more GPUs (the CPU backend exposes pretend ones,
 * so that pools and scheduling are testable without hardware).  The
 * scheduler gives a GPU at most one job at a time: it calls submit() only
 * for a GPU that gpu_idle() says is idle.  Execution is asynchronous: the
 * backend runs the job on a thread of its own and, when it is finished,
 * makes fd() readable; the event loop then calls poll(), which calls each
 * finished job's done() on the event loop's thread.  So a long kernel of one
 * VM never stops the mediator from accepting other VMs' requests.
 *
 * Both backends are built the same way (backend_worker.h): one worker
 * mechanism (threads, queues, eventfd) behind this interface, and a small
 * table of execution operations per kind of device.
 *
 * A backend receives only requests that passed payload_parse_request() or
 * payload_parse_iov(), and only when payload_device_bytes() fits the VM's
 * quota.  A job's request and response are described, not contained: the
 * request's bytes are wherever its iovecs say, the response goes to one
 * caller's buffer of payload_resp_size() bytes.
 */
#ifndef VGPU_BACKEND_H
#define VGPU_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "payload.h"

#define VGPU_BACKEND_MAX_GPUS 16

struct vgpu_backend_job;
typedef void (*vgpu_backend_done_fn)(struct vgpu_backend_job *job);

/* One request on its way through a backend; owned by the caller. */
struct vgpu_backend_job {
    /* in */
    uint32_t domid; /* whose context to run it in */
    unsigned gpu;   /* index, < gpu_count() */
    /* The VM's device memory quota (0: none): what a v3 batch's
     * allocations are held to (remote/exec.h). */
    uint64_t quota_bytes;
    /* Validated; its bytes (req.iov or req.flat) are the caller's. */
    struct vgpu_request req;
    /* Where the response goes: at least payload_resp_size(&req) bytes. */
    struct iovec resp;
    vgpu_backend_done_fn done;
    void *owner; /* the caller's */
    /* out, valid in done() */
    uint32_t error;    /* enum vgpu_error */
    uint32_t resp_len; /* bytes written to resp; 0 on an error */
    uint64_t exec_ns;  /* time the GPU (or CPU) spent on it */
    /* The backend's own while it holds the job (backend_worker.c). */
    struct {
        struct vgpu_backend_job *next;
        bool released; /* vm_release() of domid while it was held */
    } held;
};

struct vgpu_gpu_info {
    char name[96];
    char uuid[48]; /* "GPU-..." as nvidia-smi prints it, or "" */
    uint64_t mem_total;
};

/*
 * What open() is given, and room for its answer: a failing open() points
 * *why at why[] below (or at a constant), never at static storage, so
 * backends keep no state outside their instances.
 */
struct vgpu_backend_config {
    unsigned cpu_gpus; /* CPU backend: how many pretend GPUs (>= 1) */
    char why[512];     /* out: why open() failed */
};

struct vgpu_backend_ops {
    const char *name;
    /*
     * Start the backend.  0 on success; -1 with *why set when it cannot
     * run here (no libcuda.so.1, no GPU, built without kernels...); *why
     * stays valid while cfg does.
     */
    int (*open)(void **state, struct vgpu_backend_config *cfg,
                const char **why);
    /* Stop: waits for running jobs, calls no more done(). */
    void (*close)(void *state);
    unsigned (*gpu_count)(void *state);
    void (*gpu_info)(void *state, unsigned gpu, struct vgpu_gpu_info *info);
    bool (*gpu_idle)(void *state, unsigned gpu);
    void (*submit)(void *state, struct vgpu_backend_job *job);
    /* Readable when finished jobs wait for poll(). */
    int (*fd)(void *state);
    void (*poll)(void *state);
    /* The domain went away: free its context and device memory. */
    void (*vm_release)(void *state, uint32_t domid);
    /* Device memory the domain holds now, in bytes. */
    uint64_t (*vm_mem_used)(void *state, uint32_t domid);
    /* The guest CUDA contexts (protocol v3) the domain has now. */
    uint32_t (*vm_cuda_contexts)(void *state, uint32_t domid);
};

extern const struct vgpu_backend_ops vgpu_backend_cpu;
/* NULL when the mediator was built without the CUDA backend. */
extern const struct vgpu_backend_ops *const vgpu_backend_cuda;

/*
 * The CPU reference computation of a validated request (the op table's),
 * shared by the CPU backend, the CUDA backend's tests and the bench: fills
 * resp (payload_resp_size(req) bytes) and returns an enum vgpu_error.
 */
uint32_t backend_cpu_execute(const struct vgpu_request *req, uint8_t *resp,
                             uint32_t *resp_len);

#endif
