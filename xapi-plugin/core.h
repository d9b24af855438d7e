/*
 * core.h - what the vgpu plugin and the qemu-dm wrapper share: the context
 * (XenAPI client, xenstore handle, configured folders, last error: ctx.c),
 * config and value checks (conf.c), VM-IDs claimed pool-wide in xapi
 * (poolids.c), the host-local vgpu-required memory (required.c), the
 * xenstore side (xsio.c), and the operations assign / set-priority /
 * status (assign.c, status.c).
 *
 * Calls between the library's files go one way (the operations of assign.c
 * on top, ctx.c under every file that reports a failure), so none depends
 * on a file that depends on it:
 *   assign.c             -> conf.c poolids.c required.c xsio.c ctx.c
 *                           xenapi.c xr.c
 *   poolids.c            -> conf.c ctx.c xenapi.c
 *   required.c, xsio.c   -> conf.c ctx.c
 *   conf.c               -> ctx.c qemuargs.c poolconf.c
 *   status.c             -> ctx.c
 *   hostcap.c            -> status.c conf.c ctx.c xenapi.c
 *   ctx.c                -> libxenstore only (xs_close)
 *   xenapi.c -> xr.c;  required.c, xenapi.c -> common/util.c
 */
#ifndef VGPU_CORE_H
#define VGPU_CORE_H

#include <limits.h>
#include <stddef.h>

#include "vgpu_protocol.h"
#include "xenapi.h"

/*
 * Folders and their environment overrides.  The mediator reads pools.conf
 * in the same conf folder and writes its status file in the same run
 * folder (both from vgpu/names.h); the files' names are the contract's:
 * VGPU_POOLS_CONF_NAME, VGPU_STATUS_FILE_NAME.
 */
#define VGPU_CONF_DIR_DEFAULT VGPU_CONF_DIR
#define VGPU_CONF_DIR_ENV "VGPU_CONF_DIR"
#define VGPU_STATE_DIR_DEFAULT "/var/lib/vgpu"
#define VGPU_STATE_DIR_ENV "VGPU_STATE_DIR"
#define VGPU_RUN_DIR_DEFAULT VGPU_RUN_DIR
#define VGPU_RUN_DIR_ENV "VGPU_RUN_DIR"

#define VGPU_CONF_FILE "vgpu.conf"
#define VGPU_REQUIRED_FILE "required"
#define VGPU_LOCK_FILE "required.lock"

/* other-config keys of a VM. */
#define VGPU_OC_POOL "vgpu-pool"
/* The VM's device memory quota in MiB (xenstore quota-mb); absent: the
 * mediator's default. */
#define VGPU_OC_QUOTA_MB "vgpu-quota-mb"
#define VGPU_OC_PRIORITY "vgpu-priority"
#define VGPU_OC_VM_ID "vgpu-vm-id"
#define VGPU_OC_REQUIRED "vgpu-required"

/*
 * other-config keys of the pool object: the VM-ID claims of poolids.c,
 * "vgpu-vm-id-<id>.<gen>" = the holder's uuid; gen counts take-overs of a
 * stale claim.
 */
#define VGPU_POOL_OC_VM_ID_PREFIX "vgpu-vm-id-"
#define VGPU_POOL_CLAIM_GEN_MAX 0x7fffffffUL

/*
 * other-config keys of a host object: what its mediator serves (hostcap.c).
 * "vgpu-pool-<name>" = "gpus=<n> mem-mb=<m> vms=<k>", one per pool;
 * "vgpu-mediator" = "backend=<name>" while the mediator runs.
 */
#define VGPU_HOST_OC_POOL_PREFIX "vgpu-pool-"
#define VGPU_HOST_OC_MEDIATOR "vgpu-mediator"
/* Where xapi's host keeps its own uuid (INSTALLATION_UUID=...). */
#define VGPU_INVENTORY_DEFAULT "/etc/xensource-inventory"
#define VGPU_INVENTORY_ENV "VGPU_INVENTORY"

#define VGPU_UUID_LEN 36

/* faultCode values of the plugin (XML-RPC protocol faults are in xr.h). */
enum vgpu_fault {
    VGPU_FAULT_NONE = 0,
    VGPU_FAULT_BAD_ARG = 1,   /* an argument's value is wrong */
    VGPU_FAULT_NOT_FOUND = 2, /* no such VM or domain */
    VGPU_FAULT_XAPI = 3,      /* xapi unreachable or failed */
    VGPU_FAULT_XENSTORE = 4,  /* xenstore unreachable or failed */
    VGPU_FAULT_STATE = 5,     /* state: host-local files, VM-IDs used up */
    VGPU_FAULT_INTERNAL = 6,  /* out of memory and the like */
};

struct vgpu_ctx {
    struct xenapi *api;
    void *xs; /* struct xs_handle *, opened on first use */
    char conf_dir[PATH_MAX];
    char state_dir[PATH_MAX];
    char run_dir[PATH_MAX];
    int err_code; /* enum vgpu_fault of the last failure */
    char err[768];
};

/* The outcome of assign. */
struct vgpu_assignment {
    unsigned int domid;
    char uuid[VGPU_UUID_LEN + 1];
    char name[128]; /* name_label, for messages ("" when unknown) */
    int is_vgpu;    /* the VM has other-config:vgpu-pool */
    int required;   /* other-config:vgpu-required=true */
    char pool[VGPU_POOL_NAME_SIZE];
    char priority[8];
    unsigned int vm_id;
    char quota_mb[16]; /* decimal, "" when the VM has none */
    /* vgpu_check_start: this host does not serve the pool, others do */
    int elsewhere;
};

/* core context (ctx.c) */
void vgpu_ctx_init(struct vgpu_ctx *c, struct xenapi *api);
void vgpu_ctx_cleanup(struct vgpu_ctx *c);
int vgpu_fail(struct vgpu_ctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps a XenAPI failure to a fault (UUID_INVALID -> NOT_FOUND ...). */
int vgpu_fail_xapi(struct vgpu_ctx *c, const char *what);

/* conf.c */
int vgpu_parse_domid(const char *s, unsigned int *domid);
int vgpu_uuid_ok(const char *s);
int vgpu_priority_ok(const char *s);
/*
 * The one pool check, made before anything is claimed or written: 0 when
 * pool is usable (a valid name, vgpu/names.h, that <conf>/pools.conf lists,
 * or A or B without the file); else fails with "bad pool name 'X'" or
 * "unknown pool 'X' (known: ...)".
 */
int vgpu_check_pool(struct vgpu_ctx *c, const char *pool);
/* Value of `key` in <conf>/vgpu.conf (key=value lines), or NULL. */
char *vgpu_conf_get(struct vgpu_ctx *c, const char *key);
/*
 * The device's PCI slot: pci-slot= in vgpu.conf (hex, within
 * VGPU_PCI_SLOT_MIN..MAX), else VGPU_PCI_SLOT_DEFAULT.  -1 on a bad value.
 */
int vgpu_conf_pci_slot(struct vgpu_ctx *c, unsigned int *slot);

/* poolids.c */
/*
 * The VM-ID for uuid, claimed in the pool object's other-config: `wanted`
 * (the VM's other-config:vgpu-vm-id, 0 = none) when no other live VM holds
 * it, else the one uuid holds already, else the lowest free id >= 1 (one
 * nobody claimed, or whose VM is gone from xapi).  Safe against every host
 * of the pool claiming at the same time.
 */
int vgpu_poolid_claim(struct vgpu_ctx *c, const char *uuid,
                      unsigned int wanted, unsigned int *vm_id);

/* required.c */
/* Remembers on this host whether uuid's last assign saw vgpu-required. */
int vgpu_required_remember(struct vgpu_ctx *c, const char *uuid, int required);
/* 1 when the last assign of uuid saw vgpu-required=true, else 0. */
int vgpu_required_recall(struct vgpu_ctx *c, const char *uuid);

/* xsio.c */
/* uuid of the VM running as domid, from /local/domain/<domid>/vm. */
int vgpu_xs_domain_uuid(struct vgpu_ctx *c, unsigned int domid,
                        char uuid[VGPU_UUID_LEN + 1]);
/* Writes pool, priority and vm-id for domid, dom0-owned, domain-readable. */
int vgpu_xs_write_assignment(struct vgpu_ctx *c,
                             const struct vgpu_assignment *a);
/* Rewrites priority; returns 1 when done, 0 when domid has no vgpu/. */
int vgpu_xs_write_priority(struct vgpu_ctx *c, unsigned int domid,
                           const char *priority);

/* assign.c */
int vgpu_assign(struct vgpu_ctx *c, unsigned int domid,
                struct vgpu_assignment *a);
/*
 * Before a start (the vm-pre-start hook): reads the VM named by uuid and
 * fills a (is_vgpu, required, pool, priority, name) without changing
 * anything.  0 when the VM is no vgpu VM or its device can be set up as
 * far as can be told before the domain exists; -1 with the reason in
 * c->err otherwise (bad settings, PCI passthrough, a PV/PVH guest, a bad
 * pci-slot, our qemu-dm missing or without vgpu-stub), or when xapi cannot
 * be asked (err_code VGPU_FAULT_XAPI).  A pool this host does not serve
 * but other hosts publish (hostcap.c) sets a->elsewhere, the reason
 * naming those hosts.
 */
int vgpu_check_start(struct vgpu_ctx *c, const char *uuid,
                     struct vgpu_assignment *a);
/*
 * uuid or domid (the other NULL / 0) names the VM.  A readable summary of
 * what changed goes to msg.
 */
int vgpu_set_priority(struct vgpu_ctx *c, const char *uuid, unsigned int domid,
                      const char *priority, char *msg, size_t msglen);

/* status.c: *text is the mediator's status, or "mediator not running". */
int vgpu_status(struct vgpu_ctx *c, char **text);
/*
 * hookargs.c: xenopsd's VM hook arguments; NULL for one not given, reason
 * "none" by default, help set for -h or --help.
 */
struct vgpu_hook_args {
    const char *uuid;
    const char *reason;
    const char *domid;
    int help;
};
void vgpu_hook_args(int argc, char **argv, struct vgpu_hook_args *a);

/* The same without the qemu-dm line (nothing is probed: for hooks). */
int vgpu_mediator_status(struct vgpu_ctx *c, char **text);
/* 1 when such a text is a running mediator's ("mediator pid=..."). */
int vgpu_status_running(const char *text);
/* cudablock.c: cuda=N of domid's line in a running mediator's status. */
unsigned long vgpu_status_cuda(const char *status, long domid);
/* cudablock.c: 1 when a blocked_operations reason is one vgpu-publish set. */
int vgpu_cuda_block_ours(const char *reason);

/* hostcap.c */
/* This host's reference (INSTALLATION_UUID of the inventory). */
int vgpu_this_host(struct vgpu_ctx *c, char **ref);
/*
 * Publishes what this host's mediator serves in the host's other-config
 * (withdraw, or a mediator not running: removes our keys).  A readable
 * summary goes to msg.
 */
int vgpu_publish(struct vgpu_ctx *c, int withdraw, char *msg, size_t len);

/*
 * cudablock.c: the VMs resident on host whose domain the status text shows
 * with cuda=N > 0 get their pool_migrate, migrate_send, suspend and
 * checkpoint operations blocked in xapi, with the reason; the others lose
 * the blocks of ours (status NULL: the mediator stopped, none holds any).
 * *held: such VMs; *changed: keys written.  0 or -1 (c->err).
 */
int vgpu_cuda_blocks(struct vgpu_ctx *c, const char *host, const char *status,
                     int *held, int *changed);
/*
 * The hosts of the pool that publish `pool`: their name_labels, ", "
 * separated, into out; returns how many, or -1 when xapi cannot be asked.
 */
int vgpu_pool_servers(struct vgpu_ctx *c, const char *pool, char *out,
                      size_t len);

/*
 * hostcap.c: the host to put a VM of vgpu pool `pool` on: of the hosts
 * that publish the pool, other than `exclude` (a host ref, or NULL), the
 * one serving the fewest VMs.  *ref (caller frees) and its name_label;
 * returns 1, 0 when no host serves the pool, -1 on a xapi failure.
 */
int vgpu_pick_host(struct vgpu_ctx *c, const char *pool, const char *exclude,
                   char **ref, char *name, size_t len);

#endif /* VGPU_CORE_H */
