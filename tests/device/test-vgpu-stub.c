/*
 * test-vgpu-stub.c - qtest-driven test of the vgpu-stub QEMU device.
 *
 * Starts the QEMU named by $VGPU_QEMU with the device under the qtest
 * accelerator, speaks QEMU's qtest text protocol on a unix socket (port I/O
 * on 0xcf8/0xcfc to find the device and map BAR0, MMIO reads and writes,
 * clock_step to drive the virtual clock) and plays the vgpu-mediator on the
 * device's socket.  Each case runs in a fresh QEMU.
 *
 * Environment:
 *   VGPU_QEMU          the QEMU to test (unset: SKIP, exit 77): Debian's 7.2
 *                      qemu-system-x86_64 (qemu-dm-patch/build-qemu.sh) or
 *                      XCP-ng's 4.2 qemu-system-i386 (build-qemu-xcpng.sh,
 *                      run by tests/qemu42/test-xcpng-qemu.sh); both have
 *                      the "pc" machine and the qtest accelerator
 *   VGPU_QEMU_DATADIRS firmware folders, colon-separated
 *                      (default /usr/share/seabios:/usr/share/qemu)
 *   VGPU_TEST_VERBOSE  1: show QEMU's stderr and the qtest traffic
 *
 * Output: one line per case, then "N passed, N failed".  Exit status 0 when
 * every case passed, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "vgpu_protocol.h"

/* ---------------------------------------------------------------------- */
/* tiny test framework                                                     */
/* ---------------------------------------------------------------------- */

static jmp_buf case_abort;
static int case_failed;
static int verbose;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "    %s:%d: check failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                          \
            case_failed = 1;                                                   \
        }                                                                      \
    } while (0)

#define CHECK_EQ(a, b)                                                         \
    do {                                                                       \
        unsigned long long a_ = (unsigned long long)(a);                       \
        unsigned long long b_ = (unsigned long long)(b);                       \
        if (a_ != b_) {                                                        \
            fprintf(stderr,                                                    \
                    "    %s:%d: %s == 0x%llx, expected %s == 0x%llx\n",        \
                    __FILE__, __LINE__, #a, a_, #b, b_);                       \
            case_failed = 1;                                                   \
        }                                                                      \
    } while (0)

/* A failure after which the case cannot go on. */
static void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
static void fatal(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "    fatal: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    case_failed = 1;
    longjmp(case_abort, 1);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------------- */
/* the QEMU under test                                                     */
/* ---------------------------------------------------------------------- */

#define BAR0_ADDR 0xe0000000u
#define TIMEOUT_MS 3000 /* device timeout-ms used by the cases */
#define TIMEOUT_PROP "timeout-ms=3000"
#define WAIT_MS 5000 /* real-time bound for anything we wait on */

static const char *qemu_bin;
static char tmpdir[64];
static char qtest_path[128];
static char med_path[128];
static char log_path[128];
static char qmp_path[128];

static pid_t qemu_pid = -1;
/* More QEMU arguments for the next qemu_start (NULL-terminated). */
static const char *qemu_extra[4];
static int qtest_fd = -1;
static int qmp_fd = -1;
static char qbuf[4096];
static size_t qlen;

/* Mediator side. */
static int listen_fd = -1;
static int conn_fd = -1;

static int unix_listen(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fatal("socket: %s", strerror(errno));
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
        fatal("bind/listen %s: %s", path, strerror(errno));
    }
    return fd;
}

/* Accept within ms; -1 when nothing came. */
static int accept_within(int lfd, int ms)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    int r = poll(&p, 1, ms);

    if (r <= 0) {
        return -1;
    }
    return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

static void qemu_stop(void)
{
    if (qtest_fd >= 0) {
        close(qtest_fd);
        qtest_fd = -1;
    }
    if (qmp_fd >= 0) {
        close(qmp_fd);
        qmp_fd = -1;
    }
    if (qemu_pid > 0) {
        int st;

        kill(qemu_pid, SIGTERM);
        for (int i = 0; i < 200; i++) {
            if (waitpid(qemu_pid, &st, WNOHANG) == qemu_pid) {
                qemu_pid = -1;
                break;
            }
            sleep_ms(10);
        }
        if (qemu_pid > 0) {
            kill(qemu_pid, SIGKILL);
            waitpid(qemu_pid, &st, 0);
            qemu_pid = -1;
        }
    }
    if (conn_fd >= 0) {
        close(conn_fd);
        conn_fd = -1;
    }
    if (listen_fd >= 0) {
        close(listen_fd);
        listen_fd = -1;
    }
    unlink(med_path);
    unlink(qtest_path);
    unlink(qmp_path);
}

static void dump_qemu_log(void)
{
    FILE *f = fopen(log_path, "r");
    char line[512];

    if (!f) {
        return;
    }
    while (fgets(line, sizeof(line), f)) {
        fprintf(stderr, "    qemu: %s", line);
    }
    fclose(f);
}

/* Does QEMU's output (log_path) hold text, within WAIT_MS? */
static bool log_has(const char *text)
{
    uint64_t deadline = now_ms() + WAIT_MS;
    char line[512];

    do {
        FILE *f = fopen(log_path, "r");
        bool found = false;

        while (f && !found && fgets(line, sizeof(line), f)) {
            found = strstr(line, text) != NULL;
        }
        if (f) {
            fclose(f);
        }
        if (found) {
            return true;
        }
        sleep_ms(10);
    } while (now_ms() < deadline);
    return false;
}

static void qtest_send(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void qtest_send(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (verbose) {
        fprintf(stderr, "    > %s", line);
    }
    if (write(qtest_fd, line, n) != n) {
        fatal("qtest write: %s", strerror(errno));
    }
}

/* Read one reply line (skipping asynchronous IRQ lines); returns the text
 * after "OK" (possibly empty). */
static const char *qtest_reply(void)
{
    static char line[512];
    uint64_t deadline = now_ms() + WAIT_MS;

    for (;;) {
        char *nl = memchr(qbuf, '\n', qlen);

        if (nl) {
            size_t n = nl - qbuf;

            if (n >= sizeof(line)) {
                fatal("qtest line too long");
            }
            memcpy(line, qbuf, n);
            line[n] = 0;
            memmove(qbuf, nl + 1, qlen - n - 1);
            qlen -= n + 1;
            if (verbose) {
                fprintf(stderr, "    < %s\n", line);
            }
            if (!strncmp(line, "IRQ", 3)) {
                continue;
            }
            if (strncmp(line, "OK", 2)) {
                fatal("qtest replied '%s'", line);
            }
            return line[2] == ' ' ? line + 3 : line + 2;
        }
        struct pollfd p = {.fd = qtest_fd, .events = POLLIN};
        int left = (int)(deadline - now_ms());

        if (left <= 0 || poll(&p, 1, left) <= 0) {
            fatal("qtest: no reply");
        }
        ssize_t r = read(qtest_fd, qbuf + qlen, sizeof(qbuf) - qlen);
        if (r <= 0) {
            fatal("qtest: QEMU went away");
        }
        qlen += r;
    }
}

static uint64_t qtest_cmd_val(const char *cmd, uint64_t a)
{
    qtest_send("%s 0x%llx\n", cmd, (unsigned long long)a);
    return strtoull(qtest_reply(), NULL, 0);
}

static void qtest_cmd2(const char *cmd, uint64_t a, uint64_t v)
{
    qtest_send("%s 0x%llx 0x%llx\n", cmd, (unsigned long long)a,
               (unsigned long long)v);
    qtest_reply();
}

static uint32_t inl(uint16_t port)
{
    return qtest_cmd_val("inl", port);
}
static void outl(uint16_t port, uint32_t v)
{
    qtest_cmd2("outl", port, v);
}

static uint32_t rd32(uint32_t off)
{
    return qtest_cmd_val("readl", BAR0_ADDR + off);
}
static uint32_t rd16(uint32_t off)
{
    return qtest_cmd_val("readw", BAR0_ADDR + off);
}
static uint32_t rd8(uint32_t off)
{
    return qtest_cmd_val("readb", BAR0_ADDR + off);
}
static void wr32(uint32_t off, uint32_t v)
{
    qtest_cmd2("writel", BAR0_ADDR + off, v);
}
static void wr16(uint32_t off, uint32_t v)
{
    qtest_cmd2("writew", BAR0_ADDR + off, v);
}
static void wr8(uint32_t off, uint32_t v)
{
    qtest_cmd2("writeb", BAR0_ADDR + off, v);
}

static void clock_step_ns(uint64_t ns)
{
    qtest_send("clock_step %llu\n", (unsigned long long)ns);
    qtest_reply();
}

static int pci_dev = -1;

static uint32_t cfg_read(int dev, int reg)
{
    outl(0xcf8, 0x80000000u | (dev << 11) | (reg & 0xfc));
    return inl(0xcfc);
}

static void cfg_write(int dev, int reg, uint32_t v)
{
    outl(0xcf8, 0x80000000u | (dev << 11) | (reg & 0xfc));
    outl(0xcfc, v);
}

static void map_bar0(void)
{
    cfg_write(pci_dev, 0x10, 0xffffffffu);
    uint32_t size_mask = cfg_read(pci_dev, 0x10);
    CHECK_EQ(size_mask & 0xf, 0); /* 32-bit memory, non-prefetchable */
    CHECK_EQ(~(size_mask & ~0xfu) + 1, VGPU_BAR0_SIZE);
    cfg_write(pci_dev, 0x10, BAR0_ADDR);
    cfg_write(pci_dev, 0x04, cfg_read(pci_dev, 0x04) | 0x2); /* memory on */
}

/* Start QEMU with "-device vgpu-stub,<props>,socket=med_path". */
static void qemu_start(const char *props)
{
    char devarg[512];
    char qtarg[160];
    char qmparg[160];
    const char *dirs = getenv("VGPU_QEMU_DATADIRS");
    char *dcopy, *tok, *save = NULL;
    const char *argv[64];
    int argc = 0;
    int lfd, qlfd;

    if (!props[0]) {
        snprintf(devarg, sizeof(devarg), "%s,socket=%s", VGPU_DEVICE_TYPE,
                 med_path);
    } else {
        snprintf(devarg, sizeof(devarg), "%s,%s,socket=%s", VGPU_DEVICE_TYPE,
                 props, med_path);
    }
    snprintf(qtarg, sizeof(qtarg), "unix:%s", qtest_path);
    snprintf(qmparg, sizeof(qmparg), "unix:%s", qmp_path);

    lfd = unix_listen(qtest_path);
    qlfd = unix_listen(qmp_path);
    dcopy = strdup(dirs ? dirs : "/usr/share/seabios:/usr/share/qemu");
    argv[argc++] = qemu_bin;
    argv[argc++] = "-machine";
    argv[argc++] = "pc";
    argv[argc++] = "-accel";
    argv[argc++] = "qtest";
    argv[argc++] = "-qtest";
    argv[argc++] = qtarg;
    if (!verbose) {
        argv[argc++] = "-qtest-log";
        argv[argc++] = "/dev/null";
    }
    argv[argc++] = "-qmp";
    argv[argc++] = qmparg;
    argv[argc++] = "-nodefaults";
    argv[argc++] = "-display";
    argv[argc++] = "none";
    argv[argc++] = "-m";
    argv[argc++] = "128";
    for (tok = strtok_r(dcopy, ":", &save); tok && argc < 56;
         tok = strtok_r(NULL, ":", &save)) {
        argv[argc++] = "-L";
        argv[argc++] = tok;
    }
    argv[argc++] = "-device";
    argv[argc++] = devarg;
    for (int i = 0; qemu_extra[i] && argc < 62; i++) {
        argv[argc++] = qemu_extra[i];
    }
    argv[argc] = NULL;

    qemu_pid = fork();
    if (qemu_pid < 0) {
        fatal("fork: %s", strerror(errno));
    }
    if (qemu_pid == 0) {
        if (!verbose) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
        }
        execv(qemu_bin, (char *const *)argv);
        _exit(127);
    }
    free(dcopy);

    qtest_fd = accept_within(lfd, WAIT_MS);
    close(lfd);
    unlink(qtest_path);
    if (qtest_fd >= 0) {
        qmp_fd = accept_within(qlfd, WAIT_MS);
    }
    close(qlfd);
    unlink(qmp_path);
    if (qtest_fd < 0 || qmp_fd < 0) {
        dump_qemu_log();
        fatal("QEMU did not connect to the qtest/QMP sockets");
    }
    qlen = 0;

    /* Find the device on bus 0 and map BAR0. */
    pci_dev = -1;
    for (int d = 0; d < 32; d++) {
        uint32_t id = cfg_read(d, 0);

        if (id == (VGPU_PCI_VENDOR_ID | (VGPU_PCI_DEVICE_ID << 16))) {
            pci_dev = d;
            break;
        }
    }
    if (pci_dev < 0) {
        fatal("vgpu-stub not found on PCI bus 0");
    }
    /* An incoming QEMU gets BAR0's mapping with the migrated state; sizing
     * the BAR meanwhile would race with the load (migrate_through waits
     * for the load, and the source had it mapped at BAR0_ADDR). */
    if (!qemu_extra[0] || strcmp(qemu_extra[0], "-incoming")) {
        map_bar0();
    }
}

/* What qmp_cmd read last (its "return" included). */
static char qmp_last[8192];

/* Send a QMP command and wait for its "return". */
static void qmp_cmd(const char *json)
{
    char *buf = qmp_last;
    size_t len = 0;
    uint64_t deadline = now_ms() + WAIT_MS;

    if (write(qmp_fd, json, strlen(json)) != (ssize_t)strlen(json)) {
        fatal("qmp write: %s", strerror(errno));
    }
    for (;;) {
        struct pollfd p = {.fd = qmp_fd, .events = POLLIN};
        int left = (int)(deadline - now_ms());

        if (left <= 0 || poll(&p, 1, left) <= 0) {
            fatal("qmp: no reply to %s", json);
        }
        ssize_t r = read(qmp_fd, buf + len, sizeof(qmp_last) - 1 - len);
        if (r <= 0) {
            fatal("qmp: QEMU went away");
        }
        len += r;
        buf[len] = 0;
        if (strstr(buf, "\"error\"")) {
            fatal("qmp: %s failed: %s", json, buf);
        }
        if (strstr(buf, "\"return\"")) {
            return;
        }
        if (len == sizeof(qmp_last) - 1) {
            len = 0; /* events only: drop them */
        }
    }
}

/* ---------------------------------------------------------------------- */
/* mediator helpers                                                        */
/* ---------------------------------------------------------------------- */

struct msg {
    struct vgpu_msg_hdr h;
    uint8_t payload[VGPU_MSG_MAX_PAYLOAD];
};

static void med_listen(void)
{
    if (listen_fd < 0) {
        listen_fd = unix_listen(med_path);
    }
}

static void med_unlisten(void)
{
    if (listen_fd >= 0) {
        close(listen_fd);
        listen_fd = -1;
    }
    unlink(med_path);
}

static void med_accept(void)
{
    if (conn_fd >= 0) {
        close(conn_fd);
    }
    conn_fd = accept_within(listen_fd, WAIT_MS);
    if (conn_fd < 0) {
        fatal("the device did not connect to the mediator socket");
    }
}

/* Read exactly n bytes; false on EOF, fatal on timeout. */
static bool read_full(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    uint64_t deadline = now_ms() + WAIT_MS;

    while (n > 0) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - now_ms());

        if (left <= 0 || poll(&pf, 1, left) <= 0) {
            fatal("mediator side: read timed out");
        }
        ssize_t r = read(fd, p, n);
        if (r <= 0) {
            return false;
        }
        p += r;
        n -= r;
    }
    return true;
}

static void med_recv(struct msg *m, uint16_t want_type)
{
    uint8_t hdr[VGPU_MSG_HDR_SIZE];

    if (!read_full(conn_fd, hdr, sizeof(hdr))) {
        fatal("mediator side: EOF while waiting for a message");
    }
    vgpu_msg_hdr_unpack(hdr, &m->h);
    CHECK_EQ(m->h.magic, VGPU_MSG_MAGIC);
    CHECK_EQ(m->h.version, VGPU_MSG_VERSION);
    CHECK_EQ(m->h.type, want_type);
    CHECK_EQ(m->h.status, 0);
    if (m->h.length > VGPU_MSG_MAX_PAYLOAD) {
        fatal("device sent length %u", m->h.length);
    }
    if (!read_full(conn_fd, m->payload, m->h.length)) {
        fatal("mediator side: EOF inside a message");
    }
}

static void med_send_raw(const void *buf, size_t n)
{
    if (write(conn_fd, buf, n) != (ssize_t)n) {
        fatal("mediator side: write: %s", strerror(errno));
    }
}

/* A header as given (any field, so that broken ones can be sent). */
static void med_send_hdr(const struct vgpu_msg_hdr *h)
{
    uint8_t buf[VGPU_MSG_HDR_SIZE];

    vgpu_msg_hdr_pack(buf, h);
    med_send_raw(buf, sizeof(buf));
}

static void med_send(uint16_t type, uint32_t seq, uint32_t status,
                     const void *payload, uint32_t len)
{
    uint8_t buf[VGPU_MSG_MAX_SIZE];
    struct vgpu_msg_hdr h = vgpu_msg_hdr_make(type, seq, 0, status, len);

    vgpu_msg_hdr_pack(buf, &h);
    if (len) {
        memcpy(buf + VGPU_MSG_HDR_SIZE, payload, len);
    }
    med_send_raw(buf, VGPU_MSG_HDR_SIZE + len);
}

/* A HELLO_ACK of pool (a name, "" for none, or any 16 bytes in raw). */
static void med_hello_ack_raw(const uint8_t raw[VGPU_POOL_NAME_MAX],
                              uint32_t prio, uint32_t vm_id)
{
    struct vgpu_msg_hello h =
        vgpu_msg_hello_make("", prio, vm_id, VGPU_CAPS_V1);
    uint8_t buf[VGPU_MSG_HELLO_SIZE];

    memcpy(h.pool, raw, sizeof(h.pool));
    vgpu_msg_hello_pack(buf, &h);
    med_send(VGPU_MSG_HELLO_ACK, 0, 0, buf, sizeof(buf));
}

static void med_hello_ack(const char *pool, uint32_t prio, uint32_t vm_id)
{
    uint8_t raw[VGPU_POOL_NAME_MAX];

    vgpu_pool_name_pack(raw, pool);
    med_hello_ack_raw(raw, prio, vm_id);
}

/* Accept the device's connection and check its HELLO. */
static void med_accept_hello(const char *pool, uint32_t prio, uint32_t vm_id)
{
    struct msg m;
    struct vgpu_msg_hello h;
    char name[VGPU_POOL_NAME_SIZE];

    med_accept();
    med_recv(&m, VGPU_MSG_HELLO);
    CHECK_EQ(m.h.length, VGPU_MSG_HELLO_SIZE);
    vgpu_msg_hello_unpack(m.payload, &h);
    CHECK_EQ(vgpu_pool_name_unpack(h.pool, name), 1);
    CHECK(strcmp(name, pool) == 0);
    CHECK_EQ(h.priority, prio);
    CHECK_EQ(h.vm_id, vm_id);
    CHECK_EQ(h.caps, VGPU_CAPS_V1);
}

/* Does the mediator side see EOF within ms? */
static bool med_sees_eof(int ms)
{
    struct pollfd p = {.fd = conn_fd, .events = POLLIN};
    char c;

    if (poll(&p, 1, ms) <= 0) {
        return false;
    }
    return read(conn_fd, &c, 1) == 0;
}

/* ---------------------------------------------------------------------- */
/* guest helpers                                                           */
/* ---------------------------------------------------------------------- */

/* Write a VECTOR_ADD request of n elements a[i] = base + i, b[i] = 1000*i. */
static uint32_t put_vector_add(uint32_t n, int32_t base)
{
    uint32_t off = VGPU_REQ_BUF_OFFSET;

    wr32(off, VGPU_OP_VECTOR_ADD);
    wr32(off + 4, n);
    for (uint32_t i = 0; i < n; i++) {
        wr32(off + 8 + 4 * i, (uint32_t)(base + (int32_t)i));
        wr32(off + 8 + 4 * (n + i), 1000 * i);
    }
    wr32(VGPU_REG_REQUEST_LEN, VGPU_VECTOR_ADD_REQ_LEN(n));
    return VGPU_VECTOR_ADD_REQ_LEN(n);
}

/* Poll STATUS (real time) until it leaves BUSY. */
static uint32_t wait_not_busy(void)
{
    uint64_t deadline = now_ms() + WAIT_MS;
    uint32_t st;

    while ((st = rd32(VGPU_REG_STATUS)) == VGPU_STATUS_BUSY) {
        if (now_ms() > deadline) {
            fatal("STATUS stayed BUSY");
        }
        sleep_ms(1);
    }
    return st;
}

#define CHECK_STATUS(st, err)                                                  \
    do {                                                                       \
        CHECK_EQ(rd32(VGPU_REG_STATUS), (st));                                 \
        CHECK_EQ(rd32(VGPU_REG_ERROR_CODE), (err));                            \
    } while (0)

/* Compute the VECTOR_ADD answer for a received request. */
static uint32_t answer_vector_add(const struct msg *req, uint8_t *out)
{
    struct vgpu_req_hdr rh;
    struct vgpu_resp_hdr oh;

    memcpy(&rh, req->payload, sizeof(rh));
    oh.opcode = rh.opcode;
    oh.count = rh.count;
    memcpy(out, &oh, sizeof(oh));
    for (uint32_t i = 0; i < rh.count; i++) {
        int32_t a, b, c;

        memcpy(&a, req->payload + 8 + 4 * i, 4);
        memcpy(&b, req->payload + 8 + 4 * (rh.count + i), 4);
        c = (int32_t)((uint32_t)a + (uint32_t)b);
        memcpy(out + 8 + 4 * i, &c, 4);
    }
    return VGPU_VECTOR_ADD_RESP_LEN(rh.count);
}

/* A full good round trip on an established connection: returns seq. */
static uint32_t round_trip(uint32_t n, int32_t base)
{
    struct msg req;
    uint8_t out[VGPU_BUF_SIZE];
    uint32_t len, rlen;

    len = put_vector_add(n, base);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_recv(&req, VGPU_MSG_REQUEST);
    CHECK_EQ(req.h.length, len);
    rlen = answer_vector_add(&req, out);
    med_send(VGPU_MSG_RESPONSE, req.h.request_id, 0, out, rlen);
    CHECK_EQ(wait_not_busy(), VGPU_STATUS_DONE);
    CHECK_EQ(rd32(VGPU_REG_ERROR_CODE), VGPU_ERR_NONE);
    CHECK_EQ(rd32(VGPU_REG_RESPONSE_LEN), rlen);
    CHECK_EQ(rd32(VGPU_RESP_BUF_OFFSET), VGPU_OP_VECTOR_ADD);
    CHECK_EQ(rd32(VGPU_RESP_BUF_OFFSET + 4), n);
    for (uint32_t i = 0; i < n; i++) {
        CHECK_EQ(rd32(VGPU_RESP_BUF_OFFSET + 8 + 4 * i),
                 (uint32_t)(base + (int32_t)i) + 1000 * i);
    }
    return req.h.request_id;
}

/* ---------------------------------------------------------------------- */
/* cases                                                                   */
/* ---------------------------------------------------------------------- */

static void case_defaults(void)
{
    qemu_start("pool=B,priority=low,vm-id=1234,timeout-ms=3000");
    uint32_t classrev = cfg_read(pci_dev, 0x08);
    CHECK_EQ(classrev & 0xff, VGPU_PCI_REVISION);
    CHECK_EQ(classrev >> 16, VGPU_PCI_CLASS);
    CHECK_EQ(rd32(VGPU_REG_PROTOCOL_VER), VGPU_PROTOCOL_VERSION);
    CHECK_EQ(rd32(VGPU_REG_CAPABILITIES), VGPU_CAPS_V1);
    CHECK_EQ(rd32(VGPU_REG_POOL_ID), 'B');
    CHECK_EQ(rd32(VGPU_REG_PRIORITY), VGPU_PRIO_LOW);
    CHECK_EQ(rd32(VGPU_REG_VM_ID), 1234);
    CHECK_STATUS(VGPU_STATUS_IDLE, VGPU_ERR_NONE);
    CHECK_EQ(rd32(VGPU_REG_REQUEST_LEN), 0);
    CHECK_EQ(rd32(VGPU_REG_RESPONSE_LEN), 0);
    CHECK_EQ(rd32(VGPU_REG_REQUEST_ID), 0);
}

static void case_default_props(void)
{
    qemu_start("");
    CHECK_EQ(rd32(VGPU_REG_POOL_ID), 'A');
    CHECK_EQ(rd32(VGPU_REG_PRIORITY), VGPU_PRIO_MEDIUM);
    CHECK_EQ(rd32(VGPU_REG_VM_ID), 0);
}

static void case_round_trip(void)
{
    struct msg req;
    uint8_t out[VGPU_BUF_SIZE];
    uint32_t rlen, seq1, seq2;

    qemu_start("pool=A,priority=medium,vm-id=5,timeout-ms=3000");
    med_listen();
    wr32(VGPU_REG_REQUEST_ID, 0xabcd0001);
    put_vector_add(1, 100);
    CHECK_EQ(rd32(VGPU_REG_REQUEST_LEN), VGPU_VECTOR_ADD_REQ_LEN(1));
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    CHECK_STATUS(VGPU_STATUS_BUSY, VGPU_ERR_NONE);
    wr32(VGPU_REG_REQUEST_ID, 0x5555); /* ignored while BUSY */
    CHECK_EQ(rd32(VGPU_REG_REQUEST_ID), 0xabcd0001);

    med_accept_hello("A", VGPU_PRIO_MEDIUM, 5);
    med_recv(&req, VGPU_MSG_REQUEST);
    seq1 = req.h.request_id;
    CHECK(seq1 != 0);
    CHECK_EQ(req.h.vm_id, 5);
    CHECK_EQ(req.h.length, VGPU_VECTOR_ADD_REQ_LEN(1));
    uint32_t w[4];
    memcpy(w, req.payload, sizeof(w));
    CHECK_EQ(w[0], VGPU_OP_VECTOR_ADD);
    CHECK_EQ(w[1], 1);
    CHECK_EQ(w[2], 100);
    CHECK_EQ(w[3], 0); /* b[0] = 1000 * 0 */
    /* make it the classic 100 + 200 */
    w[3] = 200;
    memcpy(req.payload, w, sizeof(w));
    rlen = answer_vector_add(&req, out);
    med_send(VGPU_MSG_RESPONSE, seq1, 0, out, rlen);
    CHECK_EQ(wait_not_busy(), VGPU_STATUS_DONE);
    CHECK_EQ(rd32(VGPU_REG_ERROR_CODE), VGPU_ERR_NONE);
    CHECK_EQ(rd32(VGPU_REG_RESPONSE_LEN), VGPU_VECTOR_ADD_RESP_LEN(1));
    CHECK_EQ(rd32(VGPU_RESP_BUF_OFFSET + 8), 300);
    CHECK_EQ(rd32(VGPU_REG_REQUEST_ID), 0xabcd0001); /* echoed */

    /* a second, bigger one on the same connection, new sequence number */
    seq2 = round_trip(VGPU_VECTOR_ADD_MAX_COUNT, -5);
    CHECK(seq2 > seq1);
}

static void case_hello_ack(void)
{
    qemu_start("pool=B,priority=high,vm-id=42,timeout-ms=3000");
    med_listen();
    CHECK_EQ(rd32(VGPU_REG_POOL_ID), 'B');
    CHECK_EQ(rd32(VGPU_REG_PRIORITY), VGPU_PRIO_HIGH);
    CHECK_EQ(rd32(VGPU_REG_VM_ID), 42);
    put_vector_add(2, 1);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_accept_hello("B", VGPU_PRIO_HIGH, 42);
    med_hello_ack("A", VGPU_PRIO_LOW, 7);
    struct msg req;
    uint8_t out[VGPU_BUF_SIZE];
    med_recv(&req, VGPU_MSG_REQUEST);
    med_send(VGPU_MSG_RESPONSE, req.h.request_id, 0, out,
             answer_vector_add(&req, out));
    CHECK_EQ(wait_not_busy(), VGPU_STATUS_DONE);
    CHECK_EQ(rd32(VGPU_REG_POOL_ID), 'A');
    CHECK_EQ(rd32(VGPU_REG_PRIORITY), VGPU_PRIO_LOW);
    CHECK_EQ(rd32(VGPU_REG_VM_ID), 7);
    /* later requests carry the mediator's VM-ID */
    put_vector_add(1, 1);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_recv(&req, VGPU_MSG_REQUEST);
    CHECK_EQ(req.h.vm_id, 7);
}

static void expect_no_connection(void)
{
    int fd = accept_within(listen_fd, 100);

    CHECK(fd < 0);
    if (fd >= 0) {
        close(fd);
    }
}

static void case_request_too_large(void)
{
    qemu_start(TIMEOUT_PROP);
    med_listen();
    wr32(VGPU_REG_REQUEST_LEN, VGPU_BUF_SIZE + 1);
    CHECK_STATUS(VGPU_STATUS_ERROR, VGPU_ERR_REQUEST_TOO_LARGE);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    CHECK_STATUS(VGPU_STATUS_ERROR, VGPU_ERR_REQUEST_TOO_LARGE);
    expect_no_connection();
    /* exactly 1 KB is fine as far as the device is concerned */
    wr32(VGPU_REQ_BUF_OFFSET, VGPU_OP_VECTOR_ADD);
    wr32(VGPU_REG_REQUEST_LEN, VGPU_BUF_SIZE);
    CHECK_EQ(rd32(VGPU_REG_REQUEST_LEN), VGPU_BUF_SIZE);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    CHECK_STATUS(VGPU_STATUS_BUSY, VGPU_ERR_NONE);
    med_accept_hello("A", VGPU_PRIO_MEDIUM, 0);
    struct msg req;
    med_recv(&req, VGPU_MSG_REQUEST);
    CHECK_EQ(req.h.length, VGPU_BUF_SIZE);
    /* REQUEST_LEN > 1 KB while BUSY is ignored */
    wr32(VGPU_REG_REQUEST_LEN, 5000);
    CHECK_STATUS(VGPU_STATUS_BUSY, VGPU_ERR_NONE);
    CHECK_EQ(rd32(VGPU_REG_REQUEST_LEN), VGPU_BUF_SIZE);
}

static void case_request_len_zero(void)
{
    qemu_start(TIMEOUT_PROP);
    med_listen();
    wr32(VGPU_REG_REQUEST_LEN, 0);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    CHECK_STATUS(VGPU_STATUS_ERROR, VGPU_ERR_BAD_REQUEST);
    wr32(VGPU_REG_REQUEST_LEN, sizeof(struct vgpu_req_hdr) - 1);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    CHECK_STATUS(VGPU_STATUS_ERROR, VGPU_ERR_BAD_REQUEST);
    expect_no_connection();
}

static void case_bad_doorbell(void)
{
    qemu_start(TIMEOUT_PROP);
    med_listen();
    put_vector_add(1, 1);
    wr32(VGPU_REG_DOORBELL, 2);
    CHECK_STATUS(VGPU_STATUS_ERROR, VGPU_ERR_BAD_DOORBELL);
    wr32(VGPU_REG_DOORBELL, 0);
    CHECK_STATUS(VGPU_STATUS_ERROR, VGPU_ERR_BAD_DOORBELL);
    expect_no_connection();
}

static void case_doorbell_busy(void)
{
    struct msg req;
    uint8_t out[VGPU_BUF_SIZE];
    uint32_t rlen, seq1;

    qemu_start(TIMEOUT_PROP);
    med_listen();
    put_vector_add(1, 10);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_accept_hello("A", VGPU_PRIO_MEDIUM, 0);
    med_recv(&req, VGPU_MSG_REQUEST);
    seq1 = req.h.request_id;
    CHECK_STATUS(VGPU_STATUS_BUSY, VGPU_ERR_NONE);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    CHECK_STATUS(VGPU_STATUS_ERROR, VGPU_ERR_DOORBELL_BUSY);
    /* the abandoned request's late reply is dropped */
    rlen = answer_vector_add(&req, out);
    med_send(VGPU_MSG_RESPONSE, seq1, 0, out, rlen);
    sleep_ms(100);
    CHECK_STATUS(VGPU_STATUS_ERROR, VGPU_ERR_DOORBELL_BUSY);
    CHECK_EQ(rd32(VGPU_REG_RESPONSE_LEN), 0);
    /* next request works, and a reply with a wrong id is dropped too */
    put_vector_add(1, 20);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_recv(&req, VGPU_MSG_REQUEST);
    CHECK(req.h.request_id != seq1);
    rlen = answer_vector_add(&req, out);
    med_send(VGPU_MSG_RESPONSE, seq1, 0, out, rlen);
    med_send(VGPU_MSG_RESPONSE, req.h.request_id + 100, 0, out, rlen);
    sleep_ms(100);
    CHECK_STATUS(VGPU_STATUS_BUSY, VGPU_ERR_NONE);
    med_send(VGPU_MSG_RESPONSE, req.h.request_id, 0, out, rlen);
    CHECK_EQ(wait_not_busy(), VGPU_STATUS_DONE);
    CHECK_EQ(rd32(VGPU_RESP_BUF_OFFSET + 8), 20);
}

static void case_no_mediator(void)
{
    qemu_start(TIMEOUT_PROP);
    put_vector_add(1, 1);
    uint64_t t0 = now_ms();
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    /* no polling: the answer is there at once */
    CHECK_STATUS(VGPU_STATUS_ERROR, VGPU_ERR_NO_MEDIATOR);
    CHECK(now_ms() - t0 < 1000);
}

static void case_timeout(void)
{
    struct msg req;
    uint8_t out[VGPU_BUF_SIZE];

    qemu_start(TIMEOUT_PROP);
    med_listen();
    put_vector_add(1, 1);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_accept_hello("A", VGPU_PRIO_MEDIUM, 0);
    med_recv(&req, VGPU_MSG_REQUEST);
    clock_step_ns((uint64_t)(TIMEOUT_MS - 1) * 1000000);
    CHECK_STATUS(VGPU_STATUS_BUSY, VGPU_ERR_NONE);
    clock_step_ns(2 * 1000000);
    CHECK_STATUS(VGPU_STATUS_ERROR, VGPU_ERR_TIMEOUT);
    /* the late reply is dropped */
    med_send(VGPU_MSG_RESPONSE, req.h.request_id, 0, out,
             answer_vector_add(&req, out));
    sleep_ms(100);
    CHECK_STATUS(VGPU_STATUS_ERROR, VGPU_ERR_TIMEOUT);
    /* and the connection still serves the next request */
    round_trip(3, 7);
}

static void case_mediator_lost(void)
{
    struct msg req;

    qemu_start(TIMEOUT_PROP);
    med_listen();
    put_vector_add(1, 1);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_accept_hello("A", VGPU_PRIO_MEDIUM, 0);
    med_recv(&req, VGPU_MSG_REQUEST);
    close(conn_fd);
    conn_fd = -1;
    CHECK_EQ(wait_not_busy(), VGPU_STATUS_ERROR);
    CHECK_EQ(rd32(VGPU_REG_ERROR_CODE), VGPU_ERR_MEDIATOR_LOST);
    /* the next doorbell reconnects */
    put_vector_add(1, 1);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_accept_hello("A", VGPU_PRIO_MEDIUM, 0);
    uint8_t out[VGPU_BUF_SIZE];
    med_recv(&req, VGPU_MSG_REQUEST);
    med_send(VGPU_MSG_RESPONSE, req.h.request_id, 0, out,
             answer_vector_add(&req, out));
    CHECK_EQ(wait_not_busy(), VGPU_STATUS_DONE);
}

static void protocol_case(int variant)
{
    struct msg req;
    struct vgpu_msg_hdr h;

    qemu_start(TIMEOUT_PROP);
    med_listen();
    put_vector_add(1, 1);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_accept_hello("A", VGPU_PRIO_MEDIUM, 0);
    med_recv(&req, VGPU_MSG_REQUEST);
    h = vgpu_msg_hdr_make(VGPU_MSG_RESPONSE, req.h.request_id, 0, 0, 0);
    switch (variant) {
    case 0:
        h.magic = 0xdeadbeef;
        h.length = 0;
        break;
    case 1:
        h.length = VGPU_MSG_MAX_PAYLOAD + 1;
        break;
    case 2:
        h.version = 1; /* a mediator of the letter-pool protocol */
        break;
    default:
        h.type = VGPU_MSG_REQUEST; /* not for the device */
        break;
    }
    med_send_hdr(&h);
    CHECK_EQ(wait_not_busy(), VGPU_STATUS_ERROR);
    CHECK_EQ(rd32(VGPU_REG_ERROR_CODE), VGPU_ERR_PROTOCOL);
    CHECK(med_sees_eof(WAIT_MS)); /* the device hung up */
    if (variant == 2 && !verbose) {
        /* ... and said why, in words for the host's operator */
        char want[96];

        snprintf(want, sizeof(want),
                 "the mediator speaks socket protocol version 1, "
                 "this device version %u",
                 VGPU_MSG_VERSION);
        CHECK(log_has(want));
    }
}

static void case_bad_magic(void)
{
    protocol_case(0);
}
static void case_oversize(void)
{
    protocol_case(1);
}
static void case_bad_version(void)
{
    protocol_case(2);
}
static void case_bad_type(void)
{
    protocol_case(3);
}

static void case_error_status(void)
{
    struct msg req;

    qemu_start(TIMEOUT_PROP);
    med_listen();
    put_vector_add(1, 1);
    wr32(VGPU_REQ_BUF_OFFSET, 99); /* opcode the mediator won't know */
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_accept_hello("A", VGPU_PRIO_MEDIUM, 0);
    med_recv(&req, VGPU_MSG_REQUEST);
    med_send(VGPU_MSG_RESPONSE, req.h.request_id, VGPU_ERR_BAD_OPCODE, NULL, 0);
    CHECK_EQ(wait_not_busy(), VGPU_STATUS_ERROR);
    CHECK_EQ(rd32(VGPU_REG_ERROR_CODE), VGPU_ERR_BAD_OPCODE);
    CHECK_EQ(rd32(VGPU_REG_RESPONSE_LEN), 0);
    /* an unknown code is reported as PROTOCOL; connection stays */
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_recv(&req, VGPU_MSG_REQUEST);
    med_send(VGPU_MSG_RESPONSE, req.h.request_id, 999, NULL, 0);
    CHECK_EQ(wait_not_busy(), VGPU_STATUS_ERROR);
    CHECK_EQ(rd32(VGPU_REG_ERROR_CODE), VGPU_ERR_PROTOCOL);
    /* VGPU_MSG_ERROR: its status, and the device hangs up */
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_recv(&req, VGPU_MSG_REQUEST);
    med_send(VGPU_MSG_ERROR, req.h.request_id, VGPU_ERR_QUEUE_FULL, NULL, 0);
    CHECK_EQ(wait_not_busy(), VGPU_STATUS_ERROR);
    CHECK_EQ(rd32(VGPU_REG_ERROR_CODE), VGPU_ERR_QUEUE_FULL);
    CHECK(med_sees_eof(WAIT_MS));
}

static void case_reconnect_real(void)
{
    qemu_start("vm-id=9,timeout-ms=3000");
    put_vector_add(1, 1);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    CHECK_STATUS(VGPU_STATUS_ERROR, VGPU_ERR_NO_MEDIATOR);
    /* the mediator starts */
    med_listen();
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    CHECK_STATUS(VGPU_STATUS_BUSY, VGPU_ERR_NONE);
    med_accept_hello("A", VGPU_PRIO_MEDIUM, 9);
    struct msg req;
    uint8_t out[VGPU_BUF_SIZE];
    med_recv(&req, VGPU_MSG_REQUEST);
    med_send(VGPU_MSG_RESPONSE, req.h.request_id, 0, out,
             answer_vector_add(&req, out));
    CHECK_EQ(wait_not_busy(), VGPU_STATUS_DONE);
    /* the mediator goes away (connection and listener) ... */
    close(conn_fd);
    conn_fd = -1;
    med_unlisten();
    sleep_ms(100);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    CHECK_STATUS(VGPU_STATUS_ERROR, VGPU_ERR_NO_MEDIATOR);
    /* ... and comes back */
    med_listen();
    put_vector_add(4, 4);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_accept_hello("A", VGPU_PRIO_MEDIUM, 9);
    med_recv(&req, VGPU_MSG_REQUEST);
    med_send(VGPU_MSG_RESPONSE, req.h.request_id, 0, out,
             answer_vector_add(&req, out));
    CHECK_EQ(wait_not_busy(), VGPU_STATUS_DONE);
    CHECK_EQ(rd32(VGPU_REG_RESPONSE_LEN), VGPU_VECTOR_ADD_RESP_LEN(4));
}

static void case_read_only(void)
{
    static const uint32_t ro[] = {
        VGPU_REG_STATUS,       VGPU_REG_POOL_ID,      VGPU_REG_PRIORITY,
        VGPU_REG_VM_ID,        VGPU_REG_ERROR_CODE,   VGPU_REG_RESPONSE_LEN,
        VGPU_REG_PROTOCOL_VER, VGPU_REG_CAPABILITIES, VGPU_REG_POOL_NAME_1,
        VGPU_REG_POOL_NAME_2,  VGPU_REG_POOL_NAME_3,
    };
    uint32_t before[sizeof(ro) / sizeof(ro[0])];

    qemu_start("pool=B,priority=high,vm-id=77,timeout-ms=3000");
    for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
        before[i] = rd32(ro[i]);
    }
    for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
        wr32(ro[i], 0x12345678);
    }
    for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
        CHECK_EQ(rd32(ro[i]), before[i]);
    }
    CHECK_EQ(before[1], 'B');
    CHECK_EQ(before[3], 77);
    /* the response buffer is read-only too */
    wr32(VGPU_RESP_BUF_OFFSET, 0xffffffff);
    wr8(VGPU_RESP_BUF_OFFSET + 5, 0xff);
    CHECK_EQ(rd32(VGPU_RESP_BUF_OFFSET), 0);
    CHECK_EQ(rd8(VGPU_RESP_BUF_OFFSET + 5), 0);
}

static void case_reads_outside(void)
{
    qemu_start("vm-id=3,timeout-ms=3000");
    wr32(VGPU_REG_IRQ_CTRL, 0xffffffff);
    wr32(VGPU_REG_IRQ_STATUS, 0xffffffff);
    CHECK_EQ(rd32(VGPU_REG_IRQ_CTRL), 0);
    CHECK_EQ(rd32(VGPU_REG_IRQ_STATUS), 0);
    CHECK_EQ(rd32(VGPU_REG_DOORBELL), 0);
    for (uint32_t off = VGPU_REG_REQUEST_ID + 4; off < VGPU_REQ_BUF_OFFSET;
         off += 4) {
        wr32(off, 0xffffffff);
        CHECK_EQ(rd32(off), 0);
    }
    for (uint32_t off = VGPU_RESP_BUF_OFFSET + VGPU_BUF_SIZE;
         off < VGPU_BAR0_SIZE; off += 0x100) {
        wr32(off, 0xffffffff);
        CHECK_EQ(rd32(off), 0);
    }
    wr32(VGPU_BAR0_SIZE - 4, 0xffffffff);
    CHECK_EQ(rd32(VGPU_BAR0_SIZE - 4), 0);
    /* registers answer only aligned dword accesses */
    CHECK_EQ(rd32(VGPU_REG_VM_ID), 3);
    CHECK_EQ(rd16(VGPU_REG_VM_ID), 0);
    CHECK_EQ(rd8(VGPU_REG_VM_ID), 0);
    CHECK_EQ(rd32(VGPU_REG_VM_ID + 2), 0);
    wr16(VGPU_REG_REQUEST_LEN, 0x10);
    wr32(VGPU_REG_REQUEST_LEN + 1, 0x10);
    CHECK_EQ(rd32(VGPU_REG_REQUEST_LEN), 0);
    /* a sub-dword doorbell does nothing */
    wr8(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    CHECK_STATUS(VGPU_STATUS_IDLE, VGPU_ERR_NONE);
}

static void case_byte_access(void)
{
    struct msg req;
    const uint32_t rb = VGPU_REQ_BUF_OFFSET;

    qemu_start(TIMEOUT_PROP);
    med_listen();
    wr32(rb, 0x04030201);
    CHECK_EQ(rd8(rb), 0x01);
    CHECK_EQ(rd8(rb + 3), 0x04);
    CHECK_EQ(rd16(rb + 1), 0x0302);
    wr8(rb + 4, 0xaa);
    wr16(rb + 5, 0xccbb);     /* unaligned word */
    wr32(rb + 7, 0x11ffeedd); /* unaligned dword */
    CHECK_EQ(rd32(rb + 4), 0xddccbbaa);
    CHECK_EQ(rd32(rb + 8), 0x11ffee);
    CHECK_EQ(rd16(rb + 7), 0xeedd);
    /* last bytes of the buffer; a dword straddling into the response
     * buffer writes only the request-buffer part */
    wr8(rb + VGPU_BUF_SIZE - 1, 0x5a);
    wr32(rb + VGPU_BUF_SIZE - 2, 0x44332211);
    CHECK_EQ(rd16(rb + VGPU_BUF_SIZE - 2), 0x2211);
    CHECK_EQ(rd8(VGPU_RESP_BUF_OFFSET), 0);
    CHECK_EQ(rd8(VGPU_RESP_BUF_OFFSET + 1), 0);

    wr32(VGPU_REG_REQUEST_LEN, 11);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_accept_hello("A", VGPU_PRIO_MEDIUM, 0);
    med_recv(&req, VGPU_MSG_REQUEST);
    static const uint8_t want[11] = {
        0x01, 0x02, 0x03, 0x04, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x11,
    };
    CHECK_EQ(req.h.length, 11);
    CHECK(memcmp(req.payload, want, sizeof(want)) == 0);
}

static void case_reset(void)
{
    struct msg req;
    uint8_t out[VGPU_BUF_SIZE];
    uint64_t deadline;

    qemu_start("vm-id=4," TIMEOUT_PROP);
    qmp_cmd("{\"execute\": \"qmp_capabilities\"}\n");
    med_listen();
    put_vector_add(1, 1);
    wr32(VGPU_REG_REQUEST_ID, 0x77);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_accept_hello("A", VGPU_PRIO_MEDIUM, 4);
    med_hello_ack("B", VGPU_PRIO_HIGH, 99);
    med_recv(&req, VGPU_MSG_REQUEST);
    CHECK_STATUS(VGPU_STATUS_BUSY, VGPU_ERR_NONE);

    qmp_cmd("{\"execute\": \"system_reset\"}\n");
    /* the reset is done when the BAR is unmapped */
    deadline = now_ms() + WAIT_MS;
    while (cfg_read(pci_dev, 0x10) != 0) {
        if (now_ms() > deadline) {
            fatal("system_reset did not happen");
        }
        sleep_ms(1);
    }
    map_bar0();
    CHECK_STATUS(VGPU_STATUS_IDLE, VGPU_ERR_NONE);
    CHECK_EQ(rd32(VGPU_REG_REQUEST_LEN), 0);
    CHECK_EQ(rd32(VGPU_REG_RESPONSE_LEN), 0);
    CHECK_EQ(rd32(VGPU_REG_REQUEST_ID), 0);
    /* the mediator's identity survives a reset */
    CHECK_EQ(rd32(VGPU_REG_POOL_ID), 'B');
    CHECK_EQ(rd32(VGPU_REG_PRIORITY), VGPU_PRIO_HIGH);
    CHECK_EQ(rd32(VGPU_REG_VM_ID), 99);
    /* the abandoned request's reply is dropped */
    med_send(VGPU_MSG_RESPONSE, req.h.request_id, 0, out,
             answer_vector_add(&req, out));
    sleep_ms(100);
    CHECK_STATUS(VGPU_STATUS_IDLE, VGPU_ERR_NONE);
    CHECK_EQ(rd32(VGPU_REG_RESPONSE_LEN), 0);
    /* the connection is kept: the next request comes on it */
    round_trip(2, 2);
    expect_no_connection();
}

/* The pool name registers, POOL_ID first, as a guest reads them. */
static void rd_pool(uint32_t w[VGPU_POOL_NAME_REGS])
{
    w[0] = rd32(VGPU_REG_POOL_ID);
    w[1] = rd32(VGPU_REG_POOL_NAME_1);
    w[2] = rd32(VGPU_REG_POOL_NAME_2);
    w[3] = rd32(VGPU_REG_POOL_NAME_3);
}

/* (through a second macro, so that GPU_POOL_1 below expands to four) */
#define CHECK_POOL(...) CHECK_POOL_(__VA_ARGS__)
#define CHECK_POOL_(w0, w1, w2, w3)                                            \
    do {                                                                       \
        uint32_t w_[VGPU_POOL_NAME_REGS];                                      \
        rd_pool(w_);                                                           \
        CHECK_EQ(w_[0], (w0));                                                 \
        CHECK_EQ(w_[1], (w1));                                                 \
        CHECK_EQ(w_[2], (w2));                                                 \
        CHECK_EQ(w_[3], (w3));                                                 \
    } while (0)

/* "gpu-pool.1" and "ABCDEFGHIJKLMNOP" as little-endian register words. */
#define GPU_POOL_1 0x2d757067, 0x6c6f6f70, 0x312e, 0
#define ALPHABET16 0x44434241, 0x48474645, 0x4c4b4a49, 0x504f4e4d

static void case_pool_name_registers(void)
{
    struct msg req;
    uint8_t out[VGPU_BUF_SIZE];
    uint8_t raw[VGPU_POOL_NAME_MAX];

    qemu_start("pool=gpu-pool.1,priority=high,vm-id=8,timeout-ms=3000");
    med_listen();
    CHECK(rd32(VGPU_REG_CAPABILITIES) & VGPU_CAP_POOL_NAME);
    CHECK_POOL(GPU_POOL_1);
    /* read-only, like POOL_ID */
    wr32(VGPU_REG_POOL_NAME_1, 0x12345678);
    wr32(VGPU_REG_POOL_NAME_3, 0x12345678);
    CHECK_POOL(GPU_POOL_1);

    /* the device's HELLO carries the whole name ... */
    put_vector_add(1, 1);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_accept_hello("gpu-pool.1", VGPU_PRIO_HIGH, 8);
    /* ... and the mediator's 16-byte name fills all four registers */
    med_hello_ack("ABCDEFGHIJKLMNOP", VGPU_PRIO_LOW, 8);
    med_recv(&req, VGPU_MSG_REQUEST);
    med_send(VGPU_MSG_RESPONSE, req.h.request_id, 0, out,
             answer_vector_add(&req, out));
    CHECK_EQ(wait_not_busy(), VGPU_STATUS_DONE);
    CHECK_POOL(ALPHABET16);
    CHECK_EQ(rd32(VGPU_REG_PRIORITY), VGPU_PRIO_LOW);

    /* not assigned in xenstore: no pool, every register 0 */
    med_hello_ack("", VGPU_PRIO_MEDIUM, 0);
    round_trip(1, 2);
    CHECK_POOL(0, 0, 0, 0);
    med_hello_ack("B", VGPU_PRIO_MEDIUM, 8);
    round_trip(1, 3);
    CHECK_POOL('B', 0, 0, 0);

    /* A HELLO_ACK whose pool is no name (a byte after the padding) is a
     * protocol error: the request in flight fails, the identity stays. */
    memset(raw, 0, sizeof(raw));
    raw[0] = 'A';
    raw[2] = 'B';
    put_vector_add(1, 1);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_recv(&req, VGPU_MSG_REQUEST);
    med_hello_ack_raw(raw, VGPU_PRIO_HIGH, 8);
    CHECK_EQ(wait_not_busy(), VGPU_STATUS_ERROR);
    CHECK_EQ(rd32(VGPU_REG_ERROR_CODE), VGPU_ERR_PROTOCOL);
    CHECK(med_sees_eof(WAIT_MS));
    CHECK_POOL('B', 0, 0, 0);
    CHECK_EQ(rd32(VGPU_REG_PRIORITY), VGPU_PRIO_MEDIUM);
}

/* QEMU with the device given props must refuse to start, saying why. */
static void expect_refused(const char *props, const char *why)
{
    char devarg[256];
    const char *dirs = getenv("VGPU_QEMU_DATADIRS");
    char *dcopy = strdup(dirs ? dirs : "/usr/share/seabios:/usr/share/qemu");
    char *tok, *save = NULL;
    const char *argv[32] = {qemu_bin,   "-machine", "pc",
                            "-accel",   "qtest",    "-nodefaults",
                            "-display", "none",     "-S"};
    int argc = 9;
    uint64_t deadline = now_ms() + WAIT_MS;
    int st = 0;
    pid_t pid;

    /* the firmware, as qemu_start: without it QEMU stops before realize */
    for (tok = strtok_r(dcopy, ":", &save); tok && argc < 26;
         tok = strtok_r(NULL, ":", &save)) {
        argv[argc++] = "-L";
        argv[argc++] = tok;
    }
    snprintf(devarg, sizeof(devarg), "%s,%s,socket=%s", VGPU_DEVICE_TYPE, props,
             med_path);
    argv[argc++] = "-device";
    argv[argc++] = devarg;
    argv[argc] = NULL;
    pid = fork();
    if (pid < 0) {
        fatal("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(qemu_bin, (char *const *)argv);
        _exit(127);
    }
    free(dcopy);
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fatal("QEMU with %s did not stop: the device took it", props);
        }
        sleep_ms(10);
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 127);
    if (!log_has(why)) {
        fprintf(stderr, "    QEMU with %s did not say '%s'\n", props, why);
        case_failed = 1;
    }
}

static void case_bad_pool_prop(void)
{
    expect_refused("pool=", "pool '' is not a pool name");
    expect_refused("pool=-A", "pool '-A' is not a pool name");
    expect_refused("pool=ABCDEFGHIJKLMNOPQ",
                   "pool 'ABCDEFGHIJKLMNOPQ' is not a pool name");
    expect_refused("pool=a*b", "pool 'a*b' is not a pool name");
    expect_refused("priority=urgent", "priority must be low|medium|high");
    /* 16 bytes, the longest name, realizes */
    qemu_start("pool=ABCDEFGHIJKLMNOP");
    CHECK_POOL(ALPHABET16);
}

/*
 * Migrate the running QEMU into file (QMP migrate to exec:cat), then start
 * the destination with props from it and wait until it has loaded.
 */
static void migrate_through(const char *file, const char *dest_props)
{
    char cmd[512], incoming[300];
    uint64_t deadline = now_ms() + WAIT_MS;

    qmp_cmd("{\"execute\": \"qmp_capabilities\"}\n");
    snprintf(cmd, sizeof(cmd),
             "{\"execute\": \"migrate\", \"arguments\": "
             "{\"uri\": \"exec:cat > %s\"}}\n",
             file);
    qmp_cmd(cmd);
    for (;;) {
        qmp_cmd("{\"execute\": \"query-migrate\"}\n");
        if (strstr(qmp_last, "\"completed\"")) {
            break;
        }
        if (strstr(qmp_last, "\"failed\"") || now_ms() > deadline) {
            fatal("migration did not complete: %s", qmp_last);
        }
        sleep_ms(10);
    }
    qemu_stop();
    snprintf(incoming, sizeof(incoming), "exec:cat %s", file);
    qemu_extra[0] = "-incoming";
    qemu_extra[1] = incoming;
    qemu_extra[2] = NULL;
    qemu_start(dest_props);
    qemu_extra[0] = NULL;
    qmp_cmd("{\"execute\": \"qmp_capabilities\"}\n");
    deadline = now_ms() + WAIT_MS;
    for (;;) {
        qmp_cmd("{\"execute\": \"query-status\"}\n");
        if (!strstr(qmp_last, "\"inmigrate\"")) {
            break;
        }
        if (now_ms() > deadline) {
            fatal("the destination did not load the migration");
        }
        sleep_ms(10);
    }
    unlink(file);
}

static void case_migrate_pool_name(void)
{
    char file[96];
    struct msg req;
    uint8_t out[VGPU_BUF_SIZE];

    snprintf(file, sizeof(file), "%s/migration", tmpdir);
    /* A 16-byte identity travels whole (the pool-name subsection) and
     * wins over the destination's property. */
    qemu_start("pool=gpu-pool.1,vm-id=5,timeout-ms=3000");
    med_listen();
    put_vector_add(1, 1);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_accept_hello("gpu-pool.1", VGPU_PRIO_MEDIUM, 5);
    med_hello_ack("ABCDEFGHIJKLMNOP", VGPU_PRIO_HIGH, 6);
    med_recv(&req, VGPU_MSG_REQUEST);
    med_send(VGPU_MSG_RESPONSE, req.h.request_id, 0, out,
             answer_vector_add(&req, out));
    CHECK_EQ(wait_not_busy(), VGPU_STATUS_DONE);
    migrate_through(file, "pool=A,vm-id=1");
    CHECK_POOL(ALPHABET16);
    CHECK_EQ(rd32(VGPU_REG_VM_ID), 6);
    CHECK_STATUS(VGPU_STATUS_DONE, VGPU_ERR_NONE);
    qemu_stop();

    /* A one-letter pool sends no subsection (a destination from before
     * pool names takes it): the destination's own longer name must not
     * show through in POOL_NAME_1..3. */
    qemu_start("pool=B,vm-id=2");
    migrate_through(file, "pool=gpu-pool.1,vm-id=2");
    CHECK_POOL('B', 0, 0, 0);
}

/*
 * Random sequences: what a hostile guest and a hostile (or broken)
 * mediator can do to the device at once, from a fixed seed each so that a
 * failure replays.  The guest side writes and reads every register and
 * buffer offset at every width with random values (doorbells often), and
 * moves the virtual clock; the mediator side accepts or not, reads what
 * the device sends, and answers with random messages: replies to the
 * request in flight or to others, HELLO_ACKs, errors, headers with random
 * fields, garbage bytes, or a close.  After every step the device must
 * still answer qtest, and its registers must hold defined values; at the
 * end of each seed a fresh mediator connection gets a correct round trip.
 */
static uint32_t rnd_state;
/* What the random mediator did in a seed, for the log. */
static unsigned rnd_accepts, rnd_sends, rnd_refused;

static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state;
}

/* Send as the random mediator: a device that hung up on us (its answer
 * to a broken stream) only ends this connection. */
static void random_send(const void *buf, size_t n)
{
    rnd_sends++;
    if (send(conn_fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n) {
        rnd_refused++;
        close(conn_fd);
        conn_fd = -1;
    }
}

static void random_mediator_step(uint32_t *last_seq)
{
    uint8_t buf[VGPU_MSG_MAX_SIZE];
    struct pollfd p;
    ssize_t n;

    if (conn_fd < 0) {
        if (rnd() % 2) {
            conn_fd = accept_within(listen_fd, 0);
            rnd_accepts += conn_fd >= 0;
        }
        return;
    }
    /* Read what the device sent; note the last REQUEST's sequence. */
    p = (struct pollfd){.fd = conn_fd, .events = POLLIN};
    while (poll(&p, 1, 0) == 1 && (n = read(conn_fd, buf, sizeof(buf))) > 0) {
        if ((size_t)n >= VGPU_MSG_HDR_SIZE) {
            struct vgpu_msg_hdr h;

            vgpu_msg_hdr_unpack(buf, &h);
            if (h.magic == VGPU_MSG_MAGIC && h.type == VGPU_MSG_REQUEST) {
                *last_seq = h.request_id;
            }
        }
    }
    switch (rnd() % 8) {
    case 0: { /* a good reply to the request in flight, or to another */
        struct msg req = {0};
        uint8_t out[VGPU_BUF_SIZE];
        uint32_t count = 1 + rnd() % 4;

        memcpy(req.payload, &(struct vgpu_req_hdr){VGPU_OP_VECTOR_ADD, count},
               sizeof(struct vgpu_req_hdr));
        uint32_t len = rnd() % 4 ? answer_vector_add(&req, out) : rnd() % 64;
        struct vgpu_msg_hdr h = vgpu_msg_hdr_make(
            VGPU_MSG_RESPONSE, rnd() % 3 ? *last_seq : rnd(), 0,
            rnd() % 4 ? 0 : rnd() % (VGPU_ERR_COUNT + 2), len);

        vgpu_msg_hdr_pack(buf, &h);
        memcpy(buf + VGPU_MSG_HDR_SIZE, out, len);
        random_send(buf, VGPU_MSG_HDR_SIZE + len);
        break;
    }
    case 1: { /* an identity, good or not */
        struct vgpu_msg_hello hello = {.priority = rnd() % 5, .vm_id = rnd()};
        struct vgpu_msg_hdr h =
            vgpu_msg_hdr_make(VGPU_MSG_HELLO_ACK, 0, 0, 0, VGPU_MSG_HELLO_SIZE);

        vgpu_pool_name_pack(hello.pool, rnd() % 2 ? "gpu-pool.1" : "B");
        if (rnd() % 4 == 0) {
            hello.pool[rnd() % VGPU_POOL_NAME_MAX] = (uint8_t)rnd();
        }
        vgpu_msg_hdr_pack(buf, &h);
        vgpu_msg_hello_pack(buf + VGPU_MSG_HDR_SIZE, &hello);
        random_send(buf, VGPU_MSG_HDR_SIZE + VGPU_MSG_HELLO_SIZE);
        break;
    }
    case 2: { /* a header with random fields and a short random payload */
        struct vgpu_msg_hdr h = vgpu_msg_hdr_make(
            (uint16_t)(rnd() % 8), rnd() % 2 ? *last_seq : rnd(), rnd(),
            rnd() % (VGPU_ERR_COUNT + 3), rnd() % 40);

        if (rnd() % 4 == 0) {
            h.magic = rnd();
        }
        if (rnd() % 4 == 0) {
            h.version = (uint16_t)rnd();
        }
        vgpu_msg_hdr_pack(buf, &h);
        for (unsigned i = 0; i < 40; i++) {
            buf[VGPU_MSG_HDR_SIZE + i] = (uint8_t)rnd();
        }
        random_send(buf, VGPU_MSG_HDR_SIZE + rnd() % 41);
        break;
    }
    case 3: /* garbage */
        for (unsigned i = 0; i < 64; i++) {
            buf[i] = (uint8_t)rnd();
        }
        random_send(buf, 1 + rnd() % 64);
        break;
    case 4: /* hang up */
        close(conn_fd);
        conn_fd = -1;
        break;
    default: /* stay quiet */
        break;
    }
}

static void random_guest_step(void)
{
    uint32_t r = rnd(), off, v = rnd();

    /* Registers and the buffers' edges most of the time. */
    switch (r % 4) {
    case 0:
        off = (rnd() % 16) * 4;
        break;
    case 1:
        off = VGPU_REQ_BUF_OFFSET + rnd() % 64;
        break;
    case 2:
        off = VGPU_RESP_BUF_OFFSET - 32 + rnd() % 64;
        break;
    default:
        off = rnd() % VGPU_BAR0_SIZE;
        break;
    }
    switch ((r >> 8) % 10) {
    case 0:
    case 1:
        wr32(VGPU_REG_DOORBELL, rnd() % 4 ? VGPU_DOORBELL_SUBMIT : v);
        break;
    case 2:
        wr32(VGPU_REG_REQUEST_LEN, rnd() % 2 ? 8 + rnd() % 32 : v);
        break;
    case 3:
        wr32(off & ~3u, v);
        break;
    case 4:
        wr16(off & ~1u, v & 0xffff);
        break;
    case 5:
        wr8(off, v & 0xff);
        break;
    case 6:
        (void)rd32(off & ~3u);
        break;
    case 7:
        (void)rd8(off);
        break;
    case 8:
        clock_step_ns((uint64_t)(rnd() % 4000) * 1000000u);
        break;
    default:
        put_vector_add(1 + rnd() % 4, (int32_t)rnd());
        break;
    }
}

static void check_defined_state(void)
{
    CHECK(rd32(VGPU_REG_STATUS) <= VGPU_STATUS_ERROR);
    CHECK(rd32(VGPU_REG_ERROR_CODE) < VGPU_ERR_COUNT);
    CHECK(rd32(VGPU_REG_RESPONSE_LEN) <= VGPU_BUF_SIZE);
    CHECK_EQ(rd32(VGPU_REG_PROTOCOL_VER), VGPU_PROTOCOL_VERSION);
    CHECK_EQ(rd32(VGPU_REG_CAPABILITIES), VGPU_CAPS_V1);
}

static void case_random_sequences(void)
{
    for (uint32_t seed = 1; seed <= 6; seed++) {
        uint32_t last_seq = 0;

        rnd_state = 0x9e3779b9u * seed;
        rnd_accepts = rnd_sends = rnd_refused = 0;
        qemu_start("pool=gpu-pool.1,vm-id=3," TIMEOUT_PROP);
        med_listen();
        for (int step = 0; step < 1000; step++) {
            random_guest_step();
            random_mediator_step(&last_seq);
            if (step % 16 == 0) {
                check_defined_state();
            }
        }
        check_defined_state();
        printf("    seed %u: %u connections accepted, %u messages sent, %u "
               "after the device hung up\n",
               seed, rnd_accepts, rnd_sends, rnd_refused);
        CHECK(rnd_accepts > 0 && rnd_sends > 0);
        /* Still a working device: hang up, let any request in flight end
         * (the virtual clock past the timeout), then a clean round trip
         * on a fresh connection. */
        if (conn_fd >= 0) {
            close(conn_fd);
            conn_fd = -1;
        }
        clock_step_ns(4000 * 1000000ull);
        CHECK(wait_not_busy() != VGPU_STATUS_BUSY);
        while ((conn_fd = accept_within(listen_fd, 0)) >= 0) {
            close(conn_fd); /* connections the random side never took */
        }
        put_vector_add(1, 5);
        wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
        med_accept_hello("gpu-pool.1", VGPU_PRIO_MEDIUM, 3);
        {
            struct msg req;
            uint8_t out[VGPU_BUF_SIZE];

            med_recv(&req, VGPU_MSG_REQUEST);
            med_send(VGPU_MSG_RESPONSE, req.h.request_id, 0, out,
                     answer_vector_add(&req, out));
        }
        CHECK_EQ(wait_not_busy(), VGPU_STATUS_DONE);
        CHECK_EQ(rd32(VGPU_RESP_BUF_OFFSET + 8), 5u);
        med_unlisten();
        qemu_stop();
    }
}

struct test_case {
    const char *name;
    void (*fn)(void);
};

static const struct test_case cases[] = {
    {"register defaults from properties", case_defaults},
    {"property defaults (A, medium, 0)", case_default_props},
    {"VECTOR_ADD round trip", case_round_trip},
    {"HELLO_ACK identity overrides registers", case_hello_ack},
    {"REQUEST_LEN > 1KB -> REQUEST_TOO_LARGE", case_request_too_large},
    {"REQUEST_LEN 0 -> BAD_REQUEST", case_request_len_zero},
    {"doorbell value 2 -> BAD_DOORBELL", case_bad_doorbell},
    {"doorbell while BUSY -> DOORBELL_BUSY, stale reply dropped",
     case_doorbell_busy},
    {"no mediator -> NO_MEDIATOR at once", case_no_mediator},
    {"no reply -> TIMEOUT (virtual clock)", case_timeout},
    {"mediator closes while BUSY -> MEDIATOR_LOST, reconnect",
     case_mediator_lost},
    {"bad magic -> PROTOCOL", case_bad_magic},
    {"oversize length -> PROTOCOL", case_oversize},
    {"bad version -> PROTOCOL", case_bad_version},
    {"unexpected type -> PROTOCOL", case_bad_type},
    {"error status BAD_OPCODE / unknown / MSG_ERROR", case_error_status},
    {"reconnect after the listener comes back", case_reconnect_real},
    {"writes to read-only registers ignored", case_read_only},
    {"outside the map and reserved regs read 0", case_reads_outside},
    {"byte/word access to the request buffer", case_byte_access},
    {"device reset: IDLE, connection and identity kept", case_reset},
    {"pool names: POOL_ID + POOL_NAME_1..3, HELLO, HELLO_ACK",
     case_pool_name_registers},
    {"bad pool= (and priority=) refused at realize", case_bad_pool_prop},
    {"migration carries the pool name (subsection only when needed)",
     case_migrate_pool_name},
    {"random guest and mediator sequences (6 seeds x 1000 steps)",
     case_random_sequences},
};

static void run_case(const struct test_case *tc)
{
    case_failed = 0;
    if (setjmp(case_abort) == 0) {
        tc->fn();
    }
}

int main(void)
{
    int passed = 0, failed = 0;
    const char *v = getenv("VGPU_TEST_VERBOSE");

    setvbuf(stdout, NULL, _IOLBF, 0);
    qemu_bin = getenv("VGPU_QEMU");
    if (!qemu_bin || !qemu_bin[0]) {
        printf("SKIP: VGPU_QEMU not set\n");
        return 77;
    }
    if (access(qemu_bin, X_OK) != 0) {
        fprintf(stderr, "VGPU_QEMU=%s is not executable\n", qemu_bin);
        return 1;
    }
    verbose = v && v[0] == '1';
    signal(SIGPIPE, SIG_IGN);

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vgpu-dev-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(qtest_path, sizeof(qtest_path), "%s/qtest.sock", tmpdir);
    snprintf(med_path, sizeof(med_path), "%s/mediator.sock", tmpdir);
    snprintf(log_path, sizeof(log_path), "%s/qemu.log", tmpdir);
    snprintf(qmp_path, sizeof(qmp_path), "%s/qmp.sock", tmpdir);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_case(&cases[i]);
        if (case_failed && !verbose) {
            dump_qemu_log();
        }
        qemu_stop();
        printf("%s: %s\n", case_failed ? "FAIL" : "PASS", cases[i].name);
        if (case_failed) {
            failed++;
        } else {
            passed++;
        }
    }
    unlink(log_path);
    rmdir(tmpdir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
