/*
 * backend.h - the interface between the scheduler and whatever executes
 * requests (the CPU reference backend now, the CUDA backend later).
 *
 * A backend receives only requests that passed payload_parse_request().
 * It reports completion through the done callback exactly once, either
 * before submit() returns (synchronous backends) or later from the event
 * loop (asynchronous ones, which expose a pollable fd).
 */
#ifndef VGPU_BACKEND_H
#define VGPU_BACKEND_H

#include <stdint.h>

#include "payload.h"

/* error is an enum vgpu_error; resp/resp_len are valid when it is 0. */
typedef void (*vgpu_backend_done_fn)(void *arg, uint32_t error,
                                     const uint8_t *resp, uint32_t resp_len);

struct vgpu_backend_ops {
    const char *name;
    /* Create backend state; 0 on success. */
    int (*open)(void **state);
    void (*close)(void *state);
    /* Can the backend take another request now? */
    int (*can_submit)(void *state);
    void (*submit)(void *state, const struct vgpu_request *req,
                   vgpu_backend_done_fn done, void *arg);
};

extern const struct vgpu_backend_ops vgpu_backend_cpu;

#endif
