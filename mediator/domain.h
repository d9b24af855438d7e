/*
 * domain.h - the domains the mediator serves: one per qemu-dm chroot
 * folder root-<domid> that discovery reports, each with its listening
 * socket in that folder and the peer credential check of whoever
 * connects.
 *
 * A domain's life: discovery reports the folder (domain added, socket
 * listening, ops->added), peers connect (checked, then ops->connected
 * with the new fd), and the folder goes or the caller removes it
 * (ops->removing, socket closed, the struct freed after the loop's batch:
 * an event of this batch may still name it).  What a domain is served
 * with (identity, device connection, counters) is kept in struct vm for
 * the parts above; this file only creates and frees it.
 */
#ifndef VGPU_DOMAIN_H
#define VGPU_DOMAIN_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "discovery.h"
#include "identity.h"
#include "loop.h"
#include "rate.h"

struct conn;
struct domains;

struct vm {
    struct vm *next;
    struct domains *owner;
    uint32_t domid;
    bool dead; /* removed: freed after the batch */
    uid_t uid; /* owner of root-<domid>: the uid qemu-dm runs as */
    gid_t gid;
    char dir[PATH_MAX];
    struct loop_handler listen;
    struct loop_deferred free_later;
    /* Kept here for the parts above; domain.c does not touch them. */
    uint64_t xs_cookie; /* this domain's name in xsid.c's thread */
    bool id_known;      /* xenstore answered for it at least once */
    struct conn *conn;
    struct vgpu_identity id;
    const char *id_problem; /* last reason identity_read gave, for logs */
    char name[64];          /* name-label from xenstore, for operators */
    uint64_t served;
    uint64_t failed;
    uint64_t gpu_ns;
    uint64_t cuda_calls; /* remoted calls of its v3 batches that ran */
    uint32_t cuda_shown; /* its CUDA contexts, as the status file says */
    /* The share modes' accounting (dispatch.c): virtual GPU time, and the
     * fixed share's bucket of GPU time (ns, may be in debt) with when it
     * was last filled. */
    uint64_t share_vtime;
    int64_t share_tokens;
    uint64_t share_filled_ns;
    uint64_t stale;     /* completions dropped: their connection had gone */
    uint64_t breaches;  /* v2 channels ended for breaking shm.h's rules */
    bool no_gpu_logged; /* its pool has no GPU: said once */
    /* What a peer makes the daemon do without a GPU, bounded per domain
     * (rate.h, limits in domain.c): HELLOs and refused requests, and the
     * log lines a peer causes. */
    struct rate_bucket cheap_rate;
    struct rate_bucket log_rate;
    uint64_t logs_dropped; /* since the last line let through */
};

/* HELLOs and refusals a domain may cause per second, and saved up. */
extern const struct rate_limit domain_cheap_limit;

/*
 * May a line caused by vm's peer be logged now?  Takes a token of its log
 * bucket; the first line let through after some were dropped is preceded
 * by one that says how many.
 */
bool vm_peer_log_ok(struct vm *vm);

/* How domains report upward; every fn gets the arg of domains_open. */
struct domain_ops {
    /* A domain is listening (found at start or appeared). */
    void (*added)(void *arg, struct vm *vm);
    /* A peer with the right credentials connected: fd is its socket,
     * non-blocking, now the callee's to keep or close. */
    void (*connected)(void *arg, struct vm *vm, int fd);
    /* The domain is going: vm->dead is set, its socket still open. */
    void (*removing)(void *arg, struct vm *vm);
};

struct domains_config {
    const char *qemu_root; /* folder holding root-<domid> chroots */
    /* qemu-dm of domain N runs as uid base + N (gid base + N); -1: as the
     * owner of its chroot folder. */
    long qemu_uid_base;
    long qemu_gid_base;
};

/*
 * Start watching the qemu root (discovery) on the loop; domains present
 * now are reported by domains_scan.  0, or -1 (logged).  If discovery
 * itself fails later, the loop is stopped as failed.
 */
int domains_open(struct domains **dp, struct loop *loop,
                 const struct domains_config *cfg, const struct domain_ops *ops,
                 void *arg);
/* Add every root-<domid> folder there now: 0, or -1. */
int domains_scan(struct domains *d);
/* The served domain domid (not one being removed), or NULL. */
struct vm *domains_find(struct domains *d, uint32_t domid);
/* The first domain, dead ones included (walk with vm->next); NULL for
 * d NULL, so that parts set up before the domains may walk them. */
struct vm *domains_first(struct domains *d);
/* The qemu root watched. */
const char *domains_root(const struct domains *d);
/*
 * Stop serving vm: ops->removing, its socket closed (and its file removed
 * when unlink_socket: false when the folder itself went away), freed
 * after the batch.
 */
void domain_remove(struct vm *vm, bool unlink_socket);
/* Remove every domain (sockets unlinked) and stop discovery; the structs
 * are freed by the loop's next reap. */
void domains_close(struct domains *d);

#endif
