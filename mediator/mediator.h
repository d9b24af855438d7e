/*
 * mediator.h - the vgpu-mediator daemon's core: one event loop serving
 * every domain's vgpu-stub through one socket per qemu-dm chroot, one
 * priority queue, and one backend.
 */
#ifndef VGPU_MEDIATOR_H
#define VGPU_MEDIATOR_H

#include <stdint.h>

#include "chan/ring.h"
#include "stats.h"

/* Limits that keep one VM from taking the mediator's memory. */
#define MEDIATOR_MAX_QUEUED_PER_VM 8
#define MEDIATOR_MAX_QUEUED_TOTAL 4096

/* Where the mediator publishes what it serves (read by the xapi plugin and
 * vgpu-smi): the contract's paths, vgpu/names.h. */
#define MEDIATOR_STATUS_FILE_DEFAULT VGPU_STATUS_FILE_PATH
#define MEDIATOR_ADMIN_SOCKET_DEFAULT VGPU_ADMIN_SOCKET_PATH

/* The user whose uid + domid is qemu-dm's uid on XCP-ng (-runas). */
#define MEDIATOR_QEMU_BASE_USER "qemu_base"

struct mediator_config {
    const char *qemu_root;   /* folder holding root-<domid> chroots */
    const char *status_file; /* NULL: publish nothing */
    /*
     * qemu-dm of domain N runs as uid qemu_uid_base + N, gid
     * qemu_gid_base + N; its socket is owned by that uid and only that
     * uid (or root) may connect.  -1: qemu-dm runs as the owner of its
     * chroot folder.
     */
    long qemu_uid_base;
    long qemu_gid_base;
    const char *backend;        /* "auto", "cpu" or "cuda" */
    unsigned cpu_gpus;          /* pretend GPUs of the CPU backend */
    const char *pools_file;     /* pools.conf */
    uint64_t quota_bytes;       /* device memory per VM; 0: none */
    unsigned starvation_bound;  /* 0: strict priority */
    int sched_mode;             /* enum dispatch_sched_mode */
    unsigned fixed_slots;       /* its fixed share: 1/fixed_slots */
    unsigned max_queued;        /* a VM's v1 requests waiting; 0: the default */
    const char *admin_socket;   /* NULL: none */
    const char *metrics_listen; /* "addr:port" for GET /metrics, or NULL */
    struct ring_config ring;    /* what a v2 channel is offered */
};

struct mediator;

/* Set everything up (sockets for the domains present now included). */
int mediator_open(struct mediator **mp, const struct mediator_config *cfg);
/* Serve until SIGTERM/SIGINT; returns 0 on a clean stop, -1 on failure. */
int mediator_run(struct mediator *m);
/* Close every socket (removing the ones it created) and free everything. */
void mediator_close(struct mediator *m);
/* What the mediator serves now, for the admin socket. */
void mediator_snapshot(void *m, struct vgpu_stats *out);

#endif
