/*
 * shmdev.h - a simulated v2 device: the device's side of the channel of
 * vgpu/shm.h, as the integration test (tests/integration/test-ring.c) and
 * the benchmark's simulator (bench/) play it against a real mediator.
 *
 * It asks for the channel on a connection past HELLO (SHM_REQ), receives
 * the three fds (SCM_RIGHTS), checks the offer as a device must
 * (vgpu_shm_offer_check with fstat), maps the region, and then submits
 * requests of any size up to max_xfer: each streamed through the request
 * chunks in pieces, a chunk used again once the mediator gives it back
 * (REQ_CHUNK_DONE); responses are assembled from RESP_DATA pieces, each
 * response chunk given back (RESP_CHUNK_DONE) once copied.  It polls
 * adaptively as the contract says (spin spin_us, then dev_sleeping, a full
 * barrier, a last look, and a sleep on the call eventfd), and kicks the
 * mediator only when med_sleeping is set.
 *
 * For hostile tests, shmdev_put() writes any entry as it is given.
 *
 * No global state: everything is in the struct shmdev the caller owns.
 */
#ifndef VGPU_TESTS_SHMDEV_H
#define VGPU_TESTS_SHMDEV_H

#include <stdbool.h>
#include <stdint.h>

#include "vgpu_protocol.h"

#define SHMDEV_MAX_OPEN 4096

struct shmdev_req {
    bool used, done;
    uint32_t seq;
    uint32_t status;
    const uint8_t *src; /* the request's bytes (the caller's) */
    uint64_t len, sent;
    uint8_t *resp; /* the caller's, resp_cap bytes */
    uint64_t resp_cap, resp_total, resp_got;
    struct shmdev_req *next_send; /* requests with bytes still to send */
};

struct shmdev {
    int sock, region_fd, kick, call;
    uint8_t *region;
    struct vgpu_shm_offer o;
    uint32_t sub_prod, comp_cons;
    uint32_t epoch, next_seq;
    uint32_t *req_free;
    uint32_t nreq_free;
    struct shmdev_req *reqs; /* o.max_inflight */
    unsigned nopen;
    struct shmdev_req *send_head, *send_tail;
    unsigned spin_us; /* adaptive polling; 0: sleep at once */
    uint64_t kicks;   /* eventfd writes made */
    uint64_t wakeups; /* sleeps on the call eventfd */
};

/*
 * SHM_REQ on sock (a connection past HELLO), the offer and its fds, the
 * region mapped.  0, or -1 with why (the mediator's status, or what was
 * wrong with its answer); *status gets the offer's status when there was
 * one.
 */
int shmdev_open(struct shmdev *d, int sock, int timeout_ms, uint32_t *status,
                const char **why);
void shmdev_close(struct shmdev *d);

/* Write e at the sub ring's tail as given, publish it, kick if needed. */
void shmdev_put(struct shmdev *d, const struct vgpu_shm_ent *e);
/* Write e without publishing (several, then shmdev_publish). */
void shmdev_put_nopub(struct shmdev *d, const struct vgpu_shm_ent *e);
void shmdev_publish(struct shmdev *d);

/*
 * Start a request of len bytes at req (kept by the caller until it is
 * done), its response into resp (resp_cap bytes).  The request, or NULL
 * when max_inflight are open.
 */
struct shmdev_req *shmdev_submit(struct shmdev *d, const void *req,
                                 uint64_t len, void *resp, uint64_t resp_cap);

/*
 * Handle what the comp ring holds, streaming on as chunks come back;
 * wait up to timeout_ms (adaptively) when it holds nothing.  The number
 * of entries handled, or -1 on a protocol breach by the mediator or the
 * socket closing (why set).
 */
int shmdev_poll(struct shmdev *d, int timeout_ms, const char **why);

/*
 * Poll until q is done: its status (VGPU_ERR_NONE: q->resp_total bytes in
 * its response), or -1 on a timeout or breach.  q is free again after.
 */
long shmdev_wait(struct shmdev *d, struct shmdev_req *q, int timeout_ms,
                 const char **why);

/* Give q up (CANCEL), freeing its slot. */
void shmdev_cancel(struct shmdev *d, struct shmdev_req *q);

#endif
