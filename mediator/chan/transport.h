/*
 * transport.h - a device connection as the rest of the mediator sees it:
 * a table of operations (as libvfio-user's struct transport_ops) behind
 * which each kind of connection lives, the v1 socket (sock.c) first, the
 * v2 ring (ring.c) next.
 *
 * A transport owns its connections: framing, the handshake, buffering,
 * and the connection generation.  Each connection a transport accepts
 * gets a generation never reused; a request is reported upward with the
 * generation of the connection it came on, and a completion is delivered
 * only to the live connection of that generation.  A completion for a
 * connection gone or replaced (a restarted qemu-dm starts its request ids
 * at 1 again) is dropped and counted in vm->stale, never delivered.
 *
 * A connection that ends is freed after the loop's batch (an event of the
 * batch may still name it); its domain learns of the end (ev->ended)
 * when its fd is closed.
 */
#ifndef VGPU_CHAN_TRANSPORT_H
#define VGPU_CHAN_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "../domain.h"
#include "../loop.h"
#include "ring.h"

struct transport;

/* How a transport reports upward; every fn gets the arg of open. */
struct transport_events {
    /* A well-formed request after the handshake: VGPU_ERR_NONE when
     * admitted (its completion comes through ops->complete with gen), or
     * the error the transport answers at once. */
    uint32_t (*request)(void *arg, struct vm *vm, uint64_t gen,
                        uint32_t request_id, const uint8_t *body, uint32_t len);
    /* A whole request of a v2 channel (chan/ring.c) of generation gen, in
     * buf (malloc'ed; the callee's when VGPU_ERR_NONE is returned), under
     * the channel's limits: max_bytes per request and response,
     * max_queued of vm's requests waiting. */
    uint32_t (*request_buf)(void *arg, struct vm *vm, uint64_t gen,
                            uint32_t request_id, uint8_t *buf, uint32_t len,
                            uint64_t max_bytes, unsigned max_queued);
    /* The device gave up on a request: drop it if it still waits. */
    void (*cancel)(void *arg, struct vm *vm, uint64_t gen,
                   uint32_t request_id);
    /* A connection of vm stopped: its work still queued is void. */
    void (*ended)(void *arg, struct vm *vm);
    /* Whether vm is connected changed (the status file is behind). */
    void (*changed)(void *arg);
};

struct transport_ops {
    const char *name;
    /* ring: what a v2 channel (SHM_REQ) is offered. */
    int (*open)(struct transport **tp, struct loop *loop,
                const struct ring_config *ring,
                const struct transport_events *ev, void *arg);
    /* After every domain is detached. */
    void (*close)(struct transport *t);
    /* fd, a connected socket of vm's peer (credentials checked), is the
     * transport's now; it replaces vm's connection if there is one. */
    void (*attach)(struct transport *t, struct vm *vm, int fd);
    /* vm is going: end its connection. */
    void (*detach)(struct transport *t, struct vm *vm);
    /* Is gen the generation of vm's live connection? */
    bool (*current)(const struct vm *vm, uint64_t gen);
    /* Deliver a completion to vm's connection of generation gen: true, or
     * false when that connection is gone or replaced (dropped, counted). */
    bool (*complete)(struct transport *t, struct vm *vm, uint64_t gen,
                     uint32_t request_id, uint32_t status, const void *payload,
                     uint32_t len);
    /* vm->id changed: a connection past its handshake is told. */
    void (*identity_changed)(struct transport *t, struct vm *vm);
    /* Has vm a live connection? */
    bool (*connected)(const struct vm *vm);
};

/* The v1 socket: framed messages over the unix socket (wire.c). */
extern const struct transport_ops transport_sock;

#endif
