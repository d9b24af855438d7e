/*
 * devwire.c - owns the device's side of the socket protocol for the
 * programs that drive a real vgpu-mediator (tests/lib/harness.h declares
 * it): header bytes packed as a device packs them, connecting, sending,
 * HELLO, and reading replies with every header field checked; and the
 * monotonic time they wait by.  Nothing here needs libxenstore, so the
 * simulated VM's libcuda.so.1 (tests/cuda-sim) links it as the
 * integration test and the benchmark do.
 */
#include "harness.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* ---------------------------------------------------------------------- */
/* time                                                                    */
/* ---------------------------------------------------------------------- */

long harness_now_ms(void)
{
    return (long)now_ms();
}

void harness_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------------- */
/* the device's side of the socket                                         */
/* ---------------------------------------------------------------------- */

void harness_put32(uint8_t *p, uint32_t v)
{
    vgpu_put_le32(p, v);
}

uint32_t harness_get32(const uint8_t *p)
{
    return vgpu_get_le32(p);
}

/* The contract's header, packed as the device packs it (vgpu/msg.h). */
size_t harness_make_hdr(uint8_t *buf, uint16_t type, uint32_t req_id,
                        uint32_t len)
{
    /* vm_id 999: claimed by the device, ignored by the mediator. */
    struct vgpu_msg_hdr h = vgpu_msg_hdr_make(type, req_id, 999, 0, len);

    vgpu_msg_hdr_pack(buf, &h);
    return VGPU_MSG_HDR_SIZE;
}

size_t harness_make_add(uint8_t *buf, uint32_t req_id, uint32_t opcode,
                        int32_t a, int32_t b)
{
    size_t n = harness_make_hdr(buf, VGPU_MSG_REQUEST, req_id, 16);

    harness_put32(buf + n, opcode);
    harness_put32(buf + n + 4, 1);
    harness_put32(buf + n + 8, (uint32_t)a);
    harness_put32(buf + n + 12, (uint32_t)b);
    return n + 16;
}

void harness_sock_path(char *out, size_t cap, const char *qroot, uint32_t domid)
{
    snprintf(out, cap, "%s/" VGPU_QEMU_ROOT_PREFIX "%u/%s", qroot, domid,
             VGPU_SOCKET_NAME);
}

bool harness_wait_path(const char *path, bool present, int timeout_ms)
{
    long end = harness_now_ms() + timeout_ms;
    struct stat st;

    while (harness_now_ms() < end) {
        if ((lstat(path, &st) == 0) == present) {
            return true;
        }
        harness_sleep_ms(10);
    }
    return false;
}

int harness_dev_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, err;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

int harness_dev_open(const char *qroot, uint32_t domid,
                     struct harness_reply *ack, int timeout_ms)
{
    char path[PATH_MAX];
    int fd;

    harness_sock_path(path, sizeof(path), qroot, domid);
    fd = harness_dev_connect(path);
    if (fd >= 0 && (!harness_send_hello(fd, "", VGPU_PRIO_LOW, 0) ||
                    harness_read_reply(fd, ack, timeout_ms) ||
                    ack->type != VGPU_MSG_HELLO_ACK)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

int harness_dev_hello(const char *qroot, uint32_t domid, int timeout_ms)
{
    char path[PATH_MAX];
    struct harness_reply ack;
    long end = harness_now_ms() + timeout_ms;
    int fd = -1;

    harness_sock_path(path, sizeof(path), qroot, domid);
    while (fd < 0 && harness_now_ms() < end) {
        fd = harness_dev_connect(path);
        if (fd < 0) {
            harness_sleep_ms(20);
        }
    }
    if (fd >= 0 && (!harness_send_hello(fd, "A", VGPU_PRIO_MEDIUM, domid) ||
                    harness_read_reply(fd, &ack, timeout_ms) ||
                    ack.type != VGPU_MSG_HELLO_ACK)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

bool harness_send_all(int fd, const void *buf, size_t len)
{
    return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len;
}

bool harness_send_msg(int fd, uint16_t type, uint32_t req_id,
                      const void *payload, uint32_t len)
{
    uint8_t buf[VGPU_MSG_MAX_SIZE];
    size_t n;

    if (len > VGPU_MSG_MAX_PAYLOAD) {
        return false;
    }
    n = harness_make_hdr(buf, type, req_id, len);
    if (len) {
        memcpy(buf + n, payload, len);
    }
    return harness_send_all(fd, buf, n + len);
}

bool harness_send_hello(int fd, const char *pool, uint32_t prio, uint32_t vm_id)
{
    struct vgpu_msg_hello h =
        vgpu_msg_hello_make(pool, prio, vm_id, VGPU_CAPS_V1);
    uint8_t hello[VGPU_MSG_HELLO_SIZE];

    vgpu_msg_hello_pack(hello, &h);
    return harness_send_msg(fd, VGPU_MSG_HELLO, 0, hello, sizeof(hello));
}

int harness_hello_pool(const struct harness_reply *r,
                       char pool[VGPU_POOL_NAME_SIZE])
{
    struct vgpu_msg_hello h;

    pool[0] = '\0';
    if (r->type != VGPU_MSG_HELLO_ACK || r->length != VGPU_MSG_HELLO_SIZE) {
        return -1;
    }
    vgpu_msg_hello_unpack(r->payload, &h);
    return vgpu_pool_name_unpack(h.pool, pool) < 0 ? -1 : 0;
}

bool harness_read_full(int fd, void *buf, size_t len, int timeout_ms)
{
    size_t got = 0;

    while (got < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, timeout_ms) != 1) {
            return false;
        }
        n = recv(fd, (char *)buf + got, len - got, 0);
        if (n <= 0) {
            return false;
        }
        got += (size_t)n;
    }
    return true;
}

int harness_read_reply(int fd, struct harness_reply *r, int timeout_ms)
{
    uint8_t h[VGPU_MSG_HDR_SIZE];
    struct vgpu_msg_hdr hdr;

    if (!harness_read_full(fd, h, sizeof(h), timeout_ms)) {
        return -1;
    }
    vgpu_msg_hdr_unpack(h, &hdr);
    if (hdr.magic != VGPU_MSG_MAGIC || hdr.version != VGPU_MSG_VERSION) {
        return -1;
    }
    r->type = hdr.type;
    r->request_id = hdr.request_id;
    r->vm_id = hdr.vm_id;
    r->status = hdr.status;
    r->length = hdr.length;
    if (r->length > VGPU_MSG_MAX_PAYLOAD) {
        return -1;
    }
    return harness_read_full(fd, r->payload, r->length, timeout_ms) ? 0 : -1;
}
