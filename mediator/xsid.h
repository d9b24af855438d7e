/*
 * xsid.h - the xenstore connection and what the mediator learns through
 * it: each domain's identity (pool, priority, VM-ID: the authority, not
 * the device), its name-label, and domains xenstored has released.
 *
 * The connection is made on demand and remade after a loss; watches are
 * set again on every domain when it comes back.  Changes are reported
 * upward through struct xsid_ops.  Calls into libxenstore run on the
 * loop's thread, as before the split (moving them off the loop is a later
 * issue).
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

/* Nothing connects yet (xsid_ensure does); doms is walked for watches. */
int xsid_open(struct xsid **xp, struct loop *loop, struct domains *doms,
              const struct xsid_ops *ops, void *arg);
/* Connect to xenstored if not connected: 0 when a connection is up, -1
 * with errno. */
int xsid_ensure(struct xsid *x);
/* A new domain: watch its folder, read its name, then its identity. */
void xsid_domain_added(struct xsid *x, struct vm *vm);
/* A domain going: stop watching it. */
void xsid_domain_removing(struct xsid *x, struct vm *vm);
/* Read vm's identity again; ops->changed when it changed. */
void xsid_refresh(struct xsid *x, struct vm *vm);
void xsid_close(struct xsid *x);

#endif
