/*
 * poolconf.h - /etc/vgpu/pools.conf: which GPU pools exist and which GPUs
 * each one may use.  Shared by the mediator (placement) and the xapi plugin
 * (which pool names an administrator may give a VM).
 *
 * Format, one pool per line, '#' starts a comment:
 *
 *     A = 0            pool A runs on GPU 0
 *     B = 1, GPU-8f6e3c2a-...   GPU 1 and the GPU with that UUID
 *     C                no list: every GPU of the host
 *
 * A pool name follows the contract's one rule (vgpu/names.h: 1-16 of
 * [A-Za-z0-9_.-], the first a letter or digit); a GPU is a decimal index
 * or a UUID as nvidia-smi prints it ("GPU-" then hex digits and dashes).
 * Without the file, the pools are VGPU_POOLS_BUILTIN (A and B), each on
 * every GPU.
 */
#ifndef VGPU_POOLCONF_H
#define VGPU_POOLCONF_H

#include <stdbool.h>
#include <stddef.h>

#include "vgpu_protocol.h"

#define POOLCONF_MAX_POOLS 16
#define POOLCONF_MAX_GPUS 16
#define POOLCONF_GPU_MAX 48 /* with the NUL */

struct pool_def {
    char name[VGPU_POOL_NAME_SIZE];
    bool all_gpus; /* no list given */
    unsigned ngpus;
    char gpus[POOLCONF_MAX_GPUS][POOLCONF_GPU_MAX];
};

struct poolconf {
    unsigned npools;
    struct pool_def pools[POOLCONF_MAX_POOLS];
};

/* The built-in pools (A and B), each on every GPU. */
void poolconf_default(struct poolconf *pc);
/*
 * Parse the text of a pools.conf.  0 on success; -1 with a message naming
 * the line in err.
 */
int poolconf_parse(const char *text, struct poolconf *pc, char *err,
                   size_t errlen);
/*
 * Load path; a missing file gives the default pools (returns 1), an
 * unreadable or invalid one -1 with err set, else 0.
 */
int poolconf_load(const char *path, struct poolconf *pc, char *err,
                  size_t errlen);
const struct pool_def *poolconf_find(const struct poolconf *pc,
                                     const char *name);
/* Is s a GPU index ("0".."15") and which? */
bool poolconf_gpu_index(const char *s, unsigned *index);

#endif
