/*
 * remote/session.h - owns one VM's protocol v3 state on one GPU: the table
 * of handles the guest may name (contexts, modules, functions, streams,
 * events) and the list of its device allocations, with the bytes they
 * hold.  No CUDA here: an object's host side is an opaque pointer, which
 * the executor (remote/exec.c) makes and destroys.
 *
 * Why handles: a guest must be able to name only its own objects.  A
 * handle is (kind << 56) | (generation << 32) | (slot + 1), looked up in
 * this session's table only, so a value made up, copied from another VM,
 * of another kind, or of a destroyed object (its slot's generation has
 * moved on) finds nothing.  Device pointers are not handles (kernels use
 * them as addresses), so instead every range a copy names is checked
 * against the allocations listed here.
 *
 * Limits: RS_MAX_OBJECTS handles and RS_MAX_ALLOCS allocations per
 * session, so a guest that creates objects in a loop gets
 * CUDA_ERROR_OUT_OF_MEMORY rather than the mediator's memory.
 *
 * A session is used by its GPU's worker thread only; rs_mem_used() may be
 * read from any thread.
 */
#ifndef VGPU_REMOTE_SESSION_H
#define VGPU_REMOTE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RS_MAX_OBJECTS 65536u
#define RS_MAX_ALLOCS 65536u

enum rs_kind {
    RS_CTX = 1,
    RS_MODULE,
    RS_FUNC,
    RS_STREAM,
    RS_EVENT,
    RS_KIND_COUNT
};

struct rs_object {
    enum rs_kind kind;
    uint64_t ctx;    /* the guest context it was made in (0 for a context) */
    uint64_t parent; /* a function's module, else 0 */
    void *host;      /* CUmodule, CUfunction, CUstream, CUevent; NULL for a
                      * context (the VM's one host context stands behind
                      * every guest context) */
    void *extra;     /* a function's parameter info, a module's image copy:
                      * malloc'd, freed with the object */
    size_t extra_len;
};

struct rs_session;

struct rs_session *rs_session_new(void);
/* Frees the tables (the host objects are the executor's to destroy
 * first, see rs_each and rs_alloc_each). */
void rs_session_free(struct rs_session *s);

/* A new handle for an object of kind in guest context ctx: its handle, or
 * 0 when the table is full or memory ran out.  *obj points at the entry. */
uint64_t rs_add(struct rs_session *s, enum rs_kind kind, uint64_t ctx,
                struct rs_object **obj);
/* The live object h names if it is of kind, else NULL. */
struct rs_object *rs_get(struct rs_session *s, enum rs_kind kind, uint64_t h);
/* Forget h (its extra is freed); nothing when h names nothing. */
void rs_remove(struct rs_session *s, uint64_t h);
/* fn for each live object made in ctx (0: every object), of kind (0: any);
 * fn may rs_remove() the object it is given. */
void rs_each(struct rs_session *s, uint64_t ctx, enum rs_kind kind,
             void (*fn)(void *arg, uint64_t h, struct rs_object *o), void *arg);
/* Live objects (for tests and vgpu-smi). */
unsigned rs_count(const struct rs_session *s, enum rs_kind kind);

/*
 * An allocation of bytes at dptr made in guest context ctx.  owned: a
 * cuMemAlloc the guest frees (counted in rs_mem_used); a module's global
 * is not owned (it goes with its module, mod).  0, or -1 when full or out
 * of memory, or when it overlaps one already listed.
 */
int rs_alloc_add(struct rs_session *s, uint64_t ctx, uint64_t mod,
                 uint64_t dptr, uint64_t bytes, bool owned);
/* Does [dptr, dptr + bytes) lie inside one listed allocation?  bytes 0
 * asks about dptr alone. */
bool rs_range_ok(const struct rs_session *s, uint64_t dptr, uint64_t bytes);
/* Remove the owned allocation that starts at dptr in ctx: 0 and *bytes,
 * or -1 when there is none. */
int rs_alloc_remove(struct rs_session *s, uint64_t ctx, uint64_t dptr,
                    uint64_t *bytes);
/* fn for each allocation made in ctx (0: all) or belonging to module mod
 * (when mod != 0), which is removed after fn returns; owned tells a
 * cuMemAlloc (to free) from a global. */
void rs_alloc_each_remove(struct rs_session *s, uint64_t ctx, uint64_t mod,
                          void (*fn)(void *arg, uint64_t dptr, bool owned),
                          void *arg);
/* Bytes of owned allocations now. */
uint64_t rs_mem_used(const struct rs_session *s);

#endif
