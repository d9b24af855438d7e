/*
 * privdrop.h - the daemon's privileges after start (privdrop.c says which
 * it keeps and why).
 */
#ifndef VGPU_MEDIATOR_PRIVDROP_H
#define VGPU_MEDIATOR_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct privdrop_config {
    bool bind_low_port; /* --metrics-listen on a port below 1024 */
};

/* The capabilities kept (bit n: capability n). */
uint64_t privdrop_kept_mask(const struct privdrop_config *cfg);

/*
 * Drop every other capability (all sets, the bounding set included) and
 * set no_new_privs; call before any thread exists.  0: done, *kept what
 * remains; 1: not root, nothing done (why says so); -1: failed (why).
 */
int privdrop_apply(const struct privdrop_config *cfg, uint64_t *kept, char *why,
                   size_t why_len);

/* "CAP_CHOWN CAP_DAC_OVERRIDE" for a mask of the kept ones, or "none". */
void privdrop_describe(uint64_t mask, char *out, size_t len);

#endif
