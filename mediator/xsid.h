/*
 * xsid.h - the xenstore connection and what the mediator learns through
 * it: each domain's identity (pool, priority, VM-ID: the authority, not
 * the device), its name-label, and domains xenstored has released.
 *
 * One thread of its own makes every libxenstore call, so the loop never
 * waits on xenstore; results reach the loop's thread through an eventfd
 * and are applied there, where struct vm lives.  The connection is made
 * when the thread starts, checked by a probe when idle, and remade after a
 * loss (or a restart of xenstored); watches are set again on every domain
 * and every identity read again when it comes back.  Changes are reported
 * upward through struct xsid_ops, on the loop's thread.
 */
#ifndef VGPU_XSID_H
#define VGPU_XSID_H

#include "domain.h"
#include "identity.h"
#include "loop.h"

struct xsid;

struct xsid_ops {
    /* vm->id (or the reason it is unassigned) changed; old is what it
     * was. */
    void (*changed)(void *arg, struct vm *vm, const struct vgpu_identity *old);
    /* xenstored no longer knows the domain. */
    void (*released)(void *arg, struct vm *vm);
};

/* Start the thread, which connects (and keeps trying): 0, or -1 (logged;
 * xsid_close still must be called). */
int xsid_open(struct xsid **xp, struct loop *loop, struct domains *doms,
              const struct xsid_ops *ops, void *arg);
/* A new domain: its folder is watched, its name and identity read (the
 * identity reaches ops->changed when it differs from vm->id). */
void xsid_domain_added(struct xsid *x, struct vm *vm);
/* A domain going: stop watching it; nothing more is reported of it. */
void xsid_domain_removing(struct xsid *x, struct vm *vm);
/* Stop the thread (waiting a bounded time for a call in progress). */
void xsid_close(struct xsid *x);

#endif
