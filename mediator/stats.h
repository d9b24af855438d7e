/*
 * stats.h - a snapshot of what the mediator serves, for operators: the
 * admin socket renders it (vgpu-smi, JSON, Prometheus text format).
 *
 * The mediator core fills it (mediator_snapshot); nothing else reaches
 * into the core's state.
 */
#ifndef VGPU_STATS_H
#define VGPU_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "poolconf.h"
#include "vgpu_protocol.h"

#define VGPU_STATS_MAX_VMS 256

struct vgpu_vm_stats {
    uint32_t domid;
    char name[64]; /* name-label from xenstore, "" if unknown */
    bool assigned; /* pool/priority/vm-id valid */
    char pool[VGPU_POOL_NAME_SIZE]; /* its pool name; "" unassigned */
    uint32_t priority;              /* enum vgpu_priority */
    uint32_t vm_id;
    bool connected;         /* its vgpu-stub is connected */
    uint64_t served;        /* requests answered with a result */
    uint64_t errors;        /* requests answered with an error */
    uint64_t stale;         /* completions dropped: their connection had gone */
    uint64_t queued;        /* waiting now */
    uint64_t gpu_ns;        /* execution time used on the backend */
    uint64_t mem_used;      /* device memory held now, bytes */
    uint64_t mem_quota;     /* bytes; 0: no quota */
    uint64_t cuda_contexts; /* guest CUDA contexts now (protocol v3) */
    uint64_t cuda_calls;    /* remoted CUDA calls run since start */
};

struct vgpu_gpu_stats {
    unsigned index;
    struct vgpu_gpu_info info;
    /* pools served by this GPU, comma-separated: "A,B" */
    char pools[POOLCONF_MAX_POOLS * VGPU_POOL_NAME_SIZE];
    bool busy;        /* running a job now */
    uint64_t busy_ns; /* time spent running jobs since start */
    uint64_t jobs;    /* jobs run since start */
};

struct vgpu_stats {
    int pid;
    char backend[16];
    char backend_note[128];    /* why this backend (e.g. CUDA missing) */
    uint64_t uptime_ns;        /* since the mediator started */
    uint64_t now_ns;           /* CLOCK_MONOTONIC when taken */
    unsigned starvation_bound; /* 0: strict priority */
    char schedule[16];         /* --schedule: "priority", "equal", "fixed:N" */
    unsigned nvms;
    struct vgpu_vm_stats vms[VGPU_STATS_MAX_VMS];
    unsigned ngpus;
    struct vgpu_gpu_stats gpus[VGPU_BACKEND_MAX_GPUS];
};

#endif
