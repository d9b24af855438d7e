/*
 * dispatch.h - between the transports and the backend: admission of a
 * request (the op table's validation, the pool, the device memory quota,
 * the queue limits), the queue (prio_queue.c), placement on an idle GPU
 * of the domain's pool (pools.conf), submission to the backend, and
 * completion.
 *
 * It learns of domains and delivers completions only through struct
 * dispatch_events: the wiring above owns the domains and the transports.
 */
#ifndef VGPU_DISPATCH_H
#define VGPU_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "domain.h"
#include "loop.h"
#include "stats.h"

struct dispatch;

struct dispatch_events {
    /* The served domain domid, or NULL (gone). */
    struct vm *(*find)(void *arg, uint32_t domid);
    /* Is gen the generation of vm's live connection? */
    bool (*current)(void *arg, struct vm *vm, uint64_t gen);
    /* Deliver a completion to vm's connection of generation gen (the
     * transport drops and counts it when that connection is gone). */
    void (*complete)(void *arg, struct vm *vm, uint64_t gen,
                     uint32_t request_id, uint32_t status, const void *payload,
                     uint32_t len);
};

/*
 * How the GPU's time is shared among VMs that all have work waiting:
 * strict priority (with the starvation bound), an equal share of measured
 * GPU time each (work-conserving: an idle VM's share goes to the others),
 * or a fixed share of 1/fixed_slots of each GPU's time each (not
 * work-conserving: a VM gets no more even when the GPU would be idle, as
 * GRID's fixed-share scheduler).  GPU time is what the backend measured
 * each job holding the GPU (a v3 batch ends with the VM's work done).
 */
enum dispatch_sched_mode {
    DISPATCH_SCHED_PRIORITY = 0,
    DISPATCH_SCHED_EQUAL,
    DISPATCH_SCHED_FIXED,
};

/* The mode of a --schedule argument ("priority", "equal", "fixed:N" with
 * N in 1..64): 0, or -1 when it is none of these. */
int dispatch_parse_sched(const char *s, enum dispatch_sched_mode *mode,
                         unsigned *slots);
const char *dispatch_sched_name(enum dispatch_sched_mode mode);

struct dispatch_config {
    const char *backend;       /* "auto", "cpu" or "cuda" */
    unsigned cpu_gpus;         /* pretend GPUs of the CPU backend */
    const char *pools_file;    /* NULL: VGPU_POOLS_CONF_PATH */
    uint64_t quota_bytes;      /* device memory per VM; 0: none */
    unsigned starvation_bound; /* 0: strict priority */
    enum dispatch_sched_mode sched_mode;
    unsigned fixed_slots; /* DISPATCH_SCHED_FIXED: each VM 1/slots */
    unsigned max_queued;  /* a VM's v1 requests waiting; 0: the default */
};

/* Open the backend (its fd on the loop) and load the pools: 0, or -1
 * (logged; *dp is set all the same, for dispatch_close). */
int dispatch_open(struct dispatch **dp, struct loop *loop,
                  const struct dispatch_config *cfg,
                  const struct dispatch_events *ev, void *arg);
/*
 * A request of vm from its connection of generation gen: VGPU_ERR_NONE
 * when queued (its completion comes through ev->complete), or the error
 * to answer at once.
 */
uint32_t dispatch_admit(struct dispatch *d, struct vm *vm, uint64_t gen,
                        uint32_t request_id, const uint8_t *body, uint32_t len);
/*
 * What a transport beyond the v1 buffers admits (the v2 channel): requests
 * and responses of max_bytes at most, and max_queued of vm's requests
 * waiting (the channel's in-flight bound) instead of
 * dispatch_config's max_queued.
 */
struct dispatch_limits {
    uint64_t max_bytes;
    unsigned max_queued;
};

/*
 * dispatch_admit for a request of len bytes in buf (malloc'ed), under lim:
 * VGPU_ERR_NONE when queued, buf then dispatch's (freed with the job);
 * else the error to answer, buf still the caller's.
 */
uint32_t dispatch_admit_buf(struct dispatch *d, struct vm *vm, uint64_t gen,
                            uint32_t request_id, uint8_t *buf, uint32_t len,
                            const struct dispatch_limits *lim);
/* Drop the queued request request_id of vm's connection gen (the device
 * gave up on it): true when it was still queued; a running one finishes
 * and its completion is dropped by the transport. */
bool dispatch_cancel(struct dispatch *d, struct vm *vm, uint64_t gen,
                     uint32_t request_id);
/* Forget every queued request of vm (its device went away). */
void dispatch_drop(struct dispatch *d, struct vm *vm);
/* vm->id changed from old: follow its priority. */
void dispatch_identity_changed(struct dispatch *d, struct vm *vm,
                               const struct vgpu_identity *old);
/* vm is going: the backend frees what it held. */
void dispatch_vm_release(struct dispatch *d, struct vm *vm);
/*
 * Start queued requests while some GPU of their pool is idle (after each
 * batch, when all its input is queued).
 */
void dispatch_run(struct dispatch *d);
/* The backend's name, for the status file. */
/*
 * What pool p (0 .. dispatch_npools()-1) has here: its name, how many GPUs
 * serve it and their device memory together, for the status file that
 * the host's capacity is published from (xapi-plugin/hostcap.c).
 */
struct dispatch_pool_info {
    const char *name;
    unsigned ngpus;
    uint64_t mem_total;
};
unsigned dispatch_npools(const struct dispatch *d);
void dispatch_pool_info(const struct dispatch *d, unsigned p,
                        struct dispatch_pool_info *info);
const char *dispatch_backend_name(const struct dispatch *d);
/* The dispatch part of a snapshot: backend, GPUs, and per domain its
 * queue and memory (v->domid set by the caller). */
void dispatch_snapshot(const struct dispatch *d, struct vgpu_stats *out);
void dispatch_snapshot_vm(const struct dispatch *d, struct vgpu_vm_stats *v);
/* The CUDA contexts (protocol v3) domid holds on this host's GPUs now. */
uint32_t dispatch_vm_cuda_contexts(const struct dispatch *d, uint32_t domid);
/* Close the backend and free what it still ran. */
void dispatch_close(struct dispatch *d);

#endif
