/*
 * remote/exec.h - runs a checked v3 batch (remote/batch.h) in one VM's
 * session (remote/session.h) through the CUDA driver (cuda/api.h).
 *
 * The VM has one host CUDA context per GPU (the CUDA backend's, made on
 * first use); every guest context of the VM is a handle standing for it,
 * owning the objects made "in" it, so that a guest cuCtxDestroy frees what
 * CUDA would free.  The host context is current on the calling thread (the
 * GPU's worker) for the whole batch.
 *
 * Every handle, range and size of a call is checked against the session
 * before the driver sees it; a call that fails answers its CUresult and
 * ends the batch.  A batch ends with the VM's work on the GPU finished
 * (cuCtxSynchronize), so what the scheduler measures is that VM's GPU time
 * and the next VM's batch finds the GPU free; an asynchronous error found
 * there becomes the last call's status.
 */
#ifndef VGPU_REMOTE_EXEC_H
#define VGPU_REMOTE_EXEC_H

#include <cuda.h>
#include <stdbool.h>
#include <stdint.h>

#include "../cuda/api.h"
#include "../payload.h"
#include "session.h"

struct rs_env {
    const struct cu_api *api;
    CUdevice dev;
    uint64_t quota;      /* the VM's device memory, bytes; 0: no quota */
    uint64_t other_used; /* what the VM holds outside the session */
    const char *who;     /* "dom5 gpu0", for logs */
};

struct rs_result {
    uint32_t error;    /* enum vgpu_error of the request itself */
    uint32_t resp_len; /* bytes written to resp */
    uint64_t exec_ns;  /* time the batch held the GPU */
    bool sticky;       /* a CUDA error that spoils the context */
    uint32_t calls;    /* calls that ran */
};

/* Run req (a checked VGPU_OP_CUDA batch) into resp (payload_resp_size()
 * bytes). */
void rs_exec(struct rs_session *s, const struct rs_env *env,
             const struct vgpu_request *req, uint8_t *resp,
             struct rs_result *out);

/* Destroy every host object of the session (its context current), then
 * the session. */
void rs_destroy(struct rs_session *s, const struct cu_api *api);

#endif
