/*
 * harness.h - what the programs that drive a real vgpu-mediator share (the
 * integration test, tests/integration/test-mediator.c, and the benchmark,
 * bench/bench.c): monotonic time, a scratch folder, the test xenstore
 * server and other child processes, and the device's side of the socket
 * protocol of vgpu_protocol.h (headers packed with the contract's own
 * helpers, which write any field as given, so that malformed ones can be
 * sent too; replies read with every field checked).  The time and socket
 * helpers are in devwire.c, which needs no libxenstore (the simulated VM's
 * library, tests/cuda-sim, links it alone); the rest in harness.c.
 *
 * No global state: what a helper needs (the binaries' paths, the scratch
 * folder, the prefix of its messages) is in a struct harness the caller
 * owns.
 */
#ifndef VGPU_TESTS_HARNESS_H
#define VGPU_TESTS_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "vgpu_protocol.h"

struct xs_handle;

struct harness {
    const char *prefix;          /* put before each message: "bench: " */
    char mediator_bin[PATH_MAX]; /* BUILD/mediator/vgpu-mediator */
    char xs_bin[PATH_MAX];       /* BUILD/xs-server/xs-server */
    char workdir[PATH_MAX];      /* the scratch folder, "" until made */
};

/* ---- time ---- */

/*
 * One assertion of a test: counted in the includer's `passed` or `failed`
 * (ints in scope), a failure said with its line, condition and message.
 */
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            printf("  FAILED at line %d: %s: ", __LINE__, #cond);              \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
        }                                                                      \
    } while (0)

/* util.h's now_ms(), in the signed type the tests' deadlines are in. */
long harness_now_ms(void);
void harness_sleep_ms(int ms);

/* ---- setting up and tearing down ---- */

/*
 * Fill in h for the binaries under build (a folder holding mediator/ and
 * xs-server/); messages start with prefix.  True when both are executable.
 */
bool harness_init(struct harness *h, const char *prefix, const char *build);

/* Make h->workdir from a mkdtemp() template; false (said) on failure. */
bool harness_make_workdir(struct harness *h, const char *tmpl);

/*
 * Start the test xenstore server on socket path sock and wait for its
 * "ready" line (its socket then accepts connections).  Its pid, or -1.
 */
pid_t harness_start_xs_server(const struct harness *h, const char *sock);

/*
 * Start the test xenstore server on sock (its pid into *pid), point
 * libxenstore at it (XENSTORED_PATH) and open a handle; NULL (said) when
 * any step fails.
 */
struct xs_handle *harness_open_xenstore(const struct harness *h,
                                        const char *sock, pid_t *pid);

/* SIGTERM *pid (when > 0), reap it, set it to -1. */
void harness_stop_process(pid_t *pid);

/*
 * At exit: stop the mediator (*med_pid) and the xenstore server (*xs_pid),
 * close xs (when not NULL), and remove h->workdir and all it holds unless
 * VGPU_KEEP is set.
 */
void harness_teardown(const struct harness *h, pid_t *med_pid, pid_t *xs_pid,
                      struct xs_handle *xs);

/* Write /local/domain/<domid>/vgpu-mediator/<key>; exits on failure. */
void harness_xs_set(const struct harness *h, struct xs_handle *xs,
                    uint32_t domid, const char *key, const char *val);

/* Copy the file at path to stdout (nothing when it cannot be opened). */
void harness_print_file(const char *path);

/* Does a line of the file at path contain text (within timeout_ms)? */
bool harness_file_has(const char *path, const char *text, int timeout_ms);

/* ---- the device's side of the socket ---- */

/* A reply from the mediator: its header's fields and its payload. */
struct harness_reply {
    uint16_t type;
    uint32_t request_id;
    uint32_t vm_id;
    uint32_t status;
    uint32_t length;
    uint8_t payload[VGPU_MSG_MAX_PAYLOAD];
};

void harness_put32(uint8_t *p, uint32_t v); /* little-endian, as the wire */
uint32_t harness_get32(const uint8_t *p);

/*
 * Write a header at buf (VGPU_MSG_HDR_SIZE bytes) announcing len payload
 * bytes; any type and len, so that broken ones can be sent.  Returns
 * VGPU_MSG_HDR_SIZE.
 */
size_t harness_make_hdr(uint8_t *buf, uint16_t type, uint32_t req_id,
                        uint32_t len);

/*
 * A one-element VECTOR_ADD a + b as REQUEST req_id at buf (any opcode, so
 * that an unknown one can be sent too).  Returns the bytes written, at
 * most VGPU_MSG_HDR_SIZE + 16.
 */
size_t harness_make_add(uint8_t *buf, uint32_t req_id, uint32_t opcode,
                        int32_t a, int32_t b);

/* The device socket of domid under the qemu root qroot, into out. */
void harness_sock_path(char *out, size_t cap, const char *qroot,
                       uint32_t domid);

/* Does path exist (present) or not (!present) within timeout_ms? */
bool harness_wait_path(const char *path, bool present, int timeout_ms);

/* Connect to the unix socket at path; the fd, or -1 with errno set. */
int harness_dev_connect(const char *path);

/*
 * A domain as dom0 makes it: introduced to xenstore, its pool, priority
 * and VM-ID (= domid) written, its chroot folder qroot/root-<domid> made.
 * Exits on a xenstore failure.
 */
void harness_make_domain(const struct harness *h, struct xs_handle *xs,
                         const char *qroot, uint32_t domid, const char *pool,
                         const char *prio);

/* Connect to domid's socket once and say HELLO (no pool, low priority,
 * VM-ID 0: the mediator ignores them); the fd once the HELLO_ACK is in
 * *ack (within timeout_ms), or -1. */
int harness_dev_open(const char *qroot, uint32_t domid,
                     struct harness_reply *ack, int timeout_ms);

/* Connect as domid's device (retrying while the socket is not there, up
 * to timeout_ms) and say HELLO; the fd once HELLO_ACK came, or -1. */
int harness_dev_hello(const char *qroot, uint32_t domid, int timeout_ms);

bool harness_send_all(int fd, const void *buf, size_t len);

/* A header and len (<= VGPU_MSG_MAX_PAYLOAD) bytes of payload, in one. */
bool harness_send_msg(int fd, uint16_t type, uint32_t req_id,
                      const void *payload, uint32_t len);

/* HELLO claiming pool (a name, or "" for none), priority and VM-ID (which
 * the mediator ignores). */
bool harness_send_hello(int fd, const char *pool, uint32_t prio,
                        uint32_t vm_id);

/* Exactly len bytes, each wait for data at most timeout_ms. */
bool harness_read_full(int fd, void *buf, size_t len, int timeout_ms);

/*
 * One message into *r: 0, or -1 on EOF, timeout, a bad magic or version,
 * or a length over VGPU_MSG_MAX_PAYLOAD.
 */
int harness_read_reply(int fd, struct harness_reply *r, int timeout_ms);

/*
 * The pool of a HELLO_ACK into pool ("" when the mediator holds none): 0,
 * or -1 when r is no HELLO_ACK or its pool is not a name.
 */
int harness_hello_pool(const struct harness_reply *r,
                       char pool[VGPU_POOL_NAME_SIZE]);

#endif
