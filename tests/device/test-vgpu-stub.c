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
#include <sys/eventfd.h>
#include <sys/mman.h>
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
static char qbuf[1 << 16];
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

static void fm_reset(void);

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
    fm_reset();
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

/* Does QEMU's output hold text now? */
static bool log_has_now(const char *text)
{
    FILE *f = fopen(log_path, "r");
    char line[512];
    bool found = false;

    while (f && !found && fgets(line, sizeof(line), f)) {
        found = strstr(line, text) != NULL;
    }
    if (f) {
        fclose(f);
    }
    return found;
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
    static char line[1 << 16];
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

static unsigned mmio_count; /* BAR0 accesses: traps per request */

static uint32_t rd32(uint32_t off)
{
    mmio_count++;
    return qtest_cmd_val("readl", BAR0_ADDR + off);
}
static uint32_t rd16(uint32_t off)
{
    mmio_count++;
    return qtest_cmd_val("readw", BAR0_ADDR + off);
}
static uint32_t rd8(uint32_t off)
{
    mmio_count++;
    return qtest_cmd_val("readb", BAR0_ADDR + off);
}
static void wr32(uint32_t off, uint32_t v)
{
    mmio_count++;
    qtest_cmd2("writel", BAR0_ADDR + off, v);
}
static void wr16(uint32_t off, uint32_t v)
{
    mmio_count++;
    qtest_cmd2("writew", BAR0_ADDR + off, v);
}
static void wr8(uint32_t off, uint32_t v)
{
    mmio_count++;
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

/* Find the device on bus 0 (pci_dev). */
static void find_device(void)
{
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

    /*
     * An incoming QEMU gets the config space and BAR0's mapping with the
     * migrated state: touching them while it loads (the host bridge's
     * config address register included) races with the load, so
     * migrate_through finds the device once the load is done, and the
     * source had BAR0 mapped at BAR0_ADDR.
     */
    if (!qemu_extra[0] || strcmp(qemu_extra[0], "-incoming")) {
        find_device();
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
    CHECK_EQ(h.caps, VGPU_CAPS_V2);
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
    CHECK_EQ(rd32(VGPU_REG_PROTOCOL_VER), VGPU_PROTOCOL_V2);
    CHECK_EQ(rd32(VGPU_REG_CAPABILITIES), VGPU_CAPS_V2);
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

/* One of the device's x-stat-* counters over QMP; id=vgpu0 given. */
static uint64_t stat_get(const char *name)
{
    char cmd[256];
    const char *r;

    snprintf(cmd, sizeof(cmd),
             "{\"execute\": \"qom-get\", \"arguments\": {\"path\": "
             "\"/machine/peripheral/vgpu0\", \"property\": \"%s\"}}\n",
             name);
    qmp_cmd(cmd);
    r = strstr(qmp_last, "\"return\":");
    if (!r) {
        fatal("qom-get %s: %s", name, qmp_last);
    }
    return strtoull(r + strlen("\"return\":"), NULL, 10);
}

/*
 * make bench divides these by the requests completed: each BAR0 access
 * the guest makes is counted once, each completion once, and v1 (which
 * polls) sends no interrupt.  The counters are read-only.
 */
static void case_stat_counters(void)
{
    uint64_t m0, d0;

    qemu_start("id=vgpu0,pool=A,priority=medium,vm-id=5,timeout-ms=3000");
    med_listen();
    qmp_cmd("{\"execute\": \"qmp_capabilities\"}\n");
    m0 = stat_get("x-stat-mmio");
    d0 = stat_get("x-stat-done");
    CHECK_EQ(stat_get("x-stat-irqs"), 0);
    mmio_count = 0;
    rd32(VGPU_REG_PROTOCOL_VER);
    wr32(VGPU_REG_REQUEST_ID, 7);
    rd8(VGPU_REQ_BUF_OFFSET);
    CHECK_EQ(stat_get("x-stat-mmio") - m0, mmio_count);
    CHECK_EQ(stat_get("x-stat-done"), d0);
    {
        struct msg req;
        uint8_t out[VGPU_BUF_SIZE];

        put_vector_add(1, 1);
        wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
        med_accept_hello("A", VGPU_PRIO_MEDIUM, 5);
        med_recv(&req, VGPU_MSG_REQUEST);
        med_send(VGPU_MSG_RESPONSE, req.h.request_id, 0, out,
                 answer_vector_add(&req, out));
        CHECK_EQ(wait_not_busy(), VGPU_STATUS_DONE);
    }
    round_trip(4, 1);
    CHECK_EQ(stat_get("x-stat-mmio") - m0, mmio_count);
    CHECK_EQ(stat_get("x-stat-done") - d0, 2);
    CHECK_EQ(stat_get("x-stat-irqs"), 0);
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
                 "this device version %u", VGPU_MSG_VERSION);
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
    /* v2: IRQ_CTRL keeps the defined source bits, IRQ_STATUS is write 1
     * to clear (nothing happened yet) */
    wr32(VGPU_REG_IRQ_CTRL, 0xffffffff);
    wr32(VGPU_REG_IRQ_STATUS, 0xffffffff);
    CHECK_EQ(rd32(VGPU_REG_IRQ_CTRL), VGPU_IRQ_ALL);
    CHECK_EQ(rd32(VGPU_REG_IRQ_STATUS), 0);
    wr32(VGPU_REG_IRQ_CTRL, 0);
    CHECK_EQ(rd32(VGPU_REG_IRQ_CTRL), 0);
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
 * the destination with props from it and wait until it has loaded.  With
 * mediator, a mediator socket listens for the destination (a new host's
 * mediator) before it starts; the source's connection is gone.
 */
/* Called with the saved stream's file before the destination reads it. */
static void (*mig_tamper)(const char *file);

static void migrate_through(const char *file, const char *dest_props,
                            bool mediator)
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
    if (mig_tamper) {
        mig_tamper(file);
    }
    if (mediator) {
        med_listen();
    }
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
    find_device();
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
    migrate_through(file, "pool=A,vm-id=1", false);
    CHECK_POOL(ALPHABET16);
    CHECK_EQ(rd32(VGPU_REG_VM_ID), 6);
    CHECK_STATUS(VGPU_STATUS_DONE, VGPU_ERR_NONE);
    qemu_stop();

    /* A one-letter pool sends no subsection (a destination from before
     * pool names takes it): the destination's own longer name must not
     * show through in POOL_NAME_1..3. */
    qemu_start("pool=B,vm-id=2");
    migrate_through(file, "pool=gpu-pool.1,vm-id=2", false);
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
    CHECK_EQ(rd32(VGPU_REG_PROTOCOL_VER), VGPU_PROTOCOL_V2);
    CHECK_EQ(rd32(VGPU_REG_CAPABILITIES), VGPU_CAPS_V2);
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

/* ---------------------------------------------------------------------- */
/* v2: guest memory through qtest                                          */
/* ---------------------------------------------------------------------- */

/* Guest-physical layout of the v2 cases (RAM is 128 MB). */
#define G_SQ 0x100000u
#define G_CQ 0x140000u
#define G_DBBUF 0x150000u
#define G_MSI 0x151000u   /* MSI-X messages land here (a RAM write) */
#define G_SG 0x160000u    /* SG lists: 0x800 bytes per request slot */
#define G_DATA 0x400000u  /* request data: 64 KB per slot */
#define G_RESP 0x1400000u /* response data: 64 KB per slot */
#define G_BIG 0x2000000u  /* the multi-MB request */
#define G_BIGRESP 0x3000000u
#define G_OUTSIDE 0x10000000u /* beyond the 128 MB of RAM */
#define BAR1_ADDR 0xe0010000u

#define HEXCHUNK 8192 /* bytes per qtest read/write command */

static char hexline[2 * HEXCHUNK + 128];

static void gmem_write(uint64_t addr, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len) {
        size_t n = len < HEXCHUNK ? len : HEXCHUNK, k;
        int o = snprintf(hexline, sizeof(hexline), "write 0x%llx 0x%zx 0x",
                         (unsigned long long)addr, n);

        for (k = 0; k < n; k++) {
            o += snprintf(hexline + o, sizeof(hexline) - o, "%02x", p[k]);
        }
        hexline[o++] = '\n';
        if (write(qtest_fd, hexline, o) != o) {
            fatal("qtest write: %s", strerror(errno));
        }
        qtest_reply();
        addr += n;
        p += n;
        len -= n;
    }
}

static void gmem_read(uint64_t addr, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len) {
        size_t n = len < HEXCHUNK ? len : HEXCHUNK, k;
        const char *r;

        qtest_send("read 0x%llx 0x%zx\n", (unsigned long long)addr, n);
        r = qtest_reply();
        if (strncmp(r, "0x", 2) || strlen(r) != 2 + 2 * n) {
            fatal("qtest read: '%.40s'", r);
        }
        for (k = 0; k < n; k++) {
            unsigned v;

            sscanf(r + 2 + 2 * k, "%2x", &v);
            p[k] = v;
        }
        addr += n;
        p += n;
        len -= n;
    }
}

static void gmem_set(uint64_t addr, uint8_t v, size_t len)
{
    qtest_send("memset 0x%llx 0x%zx 0x%x\n", (unsigned long long)addr, len, v);
    qtest_reply();
}

static uint32_t gr32(uint64_t addr)
{
    return qtest_cmd_val("readl", addr);
}
static void gw32(uint64_t addr, uint32_t v)
{
    qtest_cmd2("writel", addr, v);
}

/* ---------------------------------------------------------------------- */
/* v2: the fake mediator's shared region (shm.h)                           */
/* ---------------------------------------------------------------------- */

#define FM_REQS 256
#define FM_MAXCHUNKS 64

struct fm_req {
    bool used, complete, answered;
    uint32_t epoch, seq;
    uint64_t total, got, resp_cap;
    uint8_t *buf;
};

struct fm_out {
    bool used, first_sent;
    uint32_t epoch, seq, status;
    uint8_t *data;
    uint64_t total, sent;
};

static struct fm {
    int memfd, kick, call;
    uint8_t *map;
    struct vgpu_shm_offer o;
    uint32_t sub_cons, comp_prod;
    uint8_t resp_lent[FM_MAXCHUNKS];
    struct fm_req r[FM_REQS];
    struct fm_out out[FM_REQS];
    bool hold;          /* keep finished requests for fm_answer */
    bool keep_chunks;   /* do not give request chunks back */
    bool paused;        /* fm_serve does nothing (hostile indices stay) */
    uint8_t held_chunks[FM_MAXCHUNKS];
    unsigned cancels, pieces, firsts, bad;
    uint32_t max_chunks_seen_lent, lent_now;
} fm = {.memfd = -1, .kick = -1, .call = -1};

static void fm_reset(void)
{
    if (fm.map) {
        munmap(fm.map, fm.o.region_size);
    }
    if (fm.memfd >= 0) {
        close(fm.memfd);
    }
    if (fm.kick >= 0) {
        close(fm.kick);
    }
    if (fm.call >= 0) {
        close(fm.call);
    }
    for (int i = 0; i < FM_REQS; i++) {
        free(fm.r[i].buf);
        free(fm.out[i].data);
    }
    memset(&fm, 0, sizeof(fm));
    fm.memfd = fm.kick = fm.call = -1;
}

static uint32_t fm_ld(uint32_t off)
{
    return __atomic_load_n((uint32_t *)(fm.map + off), __ATOMIC_ACQUIRE);
}
static void fm_st(uint32_t off, uint32_t v)
{
    __atomic_store_n((uint32_t *)(fm.map + off), v, __ATOMIC_RELEASE);
}

/* Offer geometry for fm_offer. */
struct fm_geom {
    uint32_t entries, chunk_size, req_chunks, resp_chunks, max_inflight;
    uint64_t max_xfer;
};
static const struct fm_geom FM_DEFAULT = {64, 65536, 8, 8, 64, 64u << 20};

static void fm_make(const struct fm_geom *g)
{
    struct vgpu_shm_offer *o = &fm.o;

    o->version = VGPU_SHM_VERSION;
    o->ring_entries = g->entries;
    o->sub_off = VGPU_SHM_CTRL_SIZE;
    o->comp_off = o->sub_off + g->entries * VGPU_SHM_ENT_SIZE;
    o->req_pool_off =
        (o->comp_off + g->entries * VGPU_SHM_ENT_SIZE + 4095) & ~4095ull;
    o->chunk_size = g->chunk_size;
    o->req_chunks = g->req_chunks;
    o->resp_chunks = g->resp_chunks;
    o->resp_pool_off = o->req_pool_off + (uint64_t)g->req_chunks * g->chunk_size;
    o->region_size = o->resp_pool_off + (uint64_t)g->resp_chunks * g->chunk_size;
    o->max_inflight = g->max_inflight;
    o->max_xfer = g->max_xfer;
    fm.memfd = memfd_create("vgpu-test-region", MFD_CLOEXEC);
    if (fm.memfd < 0 || ftruncate(fm.memfd, o->region_size) < 0) {
        fatal("memfd: %s", strerror(errno));
    }
    fm.map = mmap(NULL, o->region_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                  fm.memfd, 0);
    if (fm.map == MAP_FAILED) {
        fatal("mmap: %s", strerror(errno));
    }
    fm.kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    fm.call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    /* asleep: the device kicks after every publication */
    fm_st(VGPU_SHM_OFF_MED_SLEEPING, 1);
}

/* SHM_OFFER with fds (nfds of region, kick, call, and more if asked). */
static void fm_send_offer(uint32_t status, const uint8_t *payload,
                          uint32_t len, const int *fds, int nfds)
{
    uint8_t buf[VGPU_MSG_HDR_SIZE + VGPU_SHM_OFFER_SIZE];
    struct vgpu_msg_hdr h =
        vgpu_msg_hdr_make(VGPU_MSG_SHM_OFFER, 0, 0, status, len);
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(8 * sizeof(int))];
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = VGPU_MSG_HDR_SIZE + len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

    vgpu_msg_hdr_pack(buf, &h);
    if (len) {
        memcpy(buf + VGPU_MSG_HDR_SIZE, payload, len);
    }
    if (nfds) {
        struct cmsghdr *c;

        mh.msg_control = ctl.b;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    if (sendmsg(conn_fd, &mh, MSG_NOSIGNAL) != (ssize_t)iov.iov_len) {
        fatal("sendmsg: %s", strerror(errno));
    }
}

static void fm_offer(void)
{
    uint8_t p[VGPU_SHM_OFFER_SIZE];
    int fds[3] = {fm.memfd, fm.kick, fm.call};

    vgpu_shm_offer_pack(p, &fm.o);
    fm_send_offer(0, p, sizeof(p), fds, 3);
}

static bool fm_comp_space(void)
{
    return fm.comp_prod - fm_ld(VGPU_SHM_OFF_COMP_CONS) < fm.o.ring_entries;
}

/* Publish one entry on the comp ring (as given: hostile ones too). */
static bool fm_comp_put(const struct vgpu_shm_ent *e)
{
    uint32_t slot = fm.comp_prod & (fm.o.ring_entries - 1);

    if (!fm_comp_space()) {
        return false;
    }
    vgpu_shm_ent_pack(fm.map + fm.o.comp_off + slot * VGPU_SHM_ENT_SIZE, e);
    fm.comp_prod++;
    fm_st(VGPU_SHM_OFF_COMP_PROD, fm.comp_prod);
    return true;
}

static void fm_call(void)
{
    uint64_t one = 1;

    if (write(fm.call, &one, sizeof(one)) != sizeof(one)) {
        fatal("call eventfd: %s", strerror(errno));
    }
}

static struct fm_req *fm_find(uint32_t epoch, uint32_t seq)
{
    for (int i = 0; i < FM_REQS; i++) {
        if (fm.r[i].used && fm.r[i].epoch == epoch && fm.r[i].seq == seq) {
            return &fm.r[i];
        }
    }
    return NULL;
}

/* Queue the answer to r: data of len bytes, or an error status. */
static void fm_answer_data(struct fm_req *r, uint32_t status,
                           const uint8_t *data, uint64_t len)
{
    for (int i = 0; i < FM_REQS; i++) {
        struct fm_out *o = &fm.out[i];

        if (!o->used) {
            memset(o, 0, sizeof(*o));
            o->used = true;
            o->epoch = r->epoch;
            o->seq = r->seq;
            o->status = status;
            o->total = status ? 0 : len;
            if (len && !status) {
                o->data = malloc(len);
                memcpy(o->data, data, len);
            }
            r->answered = true;
            return;
        }
    }
    fatal("fake mediator: too many answers queued");
}

/* The default answer: the request's bytes + 1, as many as fit. */
static void fm_answer(struct fm_req *r)
{
    uint64_t n = r->total < r->resp_cap ? r->total : r->resp_cap;
    uint8_t *d = malloc(n ? n : 1);

    for (uint64_t i = 0; i < n; i++) {
        d[i] = r->buf[i] + 1;
    }
    fm_answer_data(r, 0, d, n);
    free(d);
}

static int fm_resp_chunk(void)
{
    for (uint32_t c = 0; c < fm.o.resp_chunks; c++) {
        if (!fm.resp_lent[c]) {
            return c;
        }
    }
    return -1;
}

/* Push queued answers as far as comp entries and response chunks go. */
static bool fm_push_out(void)
{
    bool any = false;

    for (int i = 0; i < FM_REQS; i++) {
        struct fm_out *o = &fm.out[i];

        while (o->used) {
            struct vgpu_shm_ent e = {.epoch = o->epoch, .seq = o->seq};
            int c = -1;

            if (!fm_comp_space()) {
                return any;
            }
            if (o->status) {
                e.kind = VGPU_SHM_RESP_ERROR;
                e.status = o->status;
            } else {
                uint64_t n = o->total - o->sent;

                if (n > fm.o.chunk_size) {
                    n = fm.o.chunk_size;
                }
                if (n) {
                    c = fm_resp_chunk();
                    if (c < 0) {
                        return any;
                    }
                    memcpy(fm.map + fm.o.resp_pool_off +
                               (uint64_t)c * fm.o.chunk_size,
                           o->data + o->sent, n);
                    fm.resp_lent[c] = 1;
                    e.chunk = c;
                }
                e.kind = VGPU_SHM_RESP_DATA;
                e.len = n;
                e.offset = o->sent;
                if (!o->first_sent) {
                    e.flags |= VGPU_SHM_F_FIRST;
                    e.total = o->total;
                }
                if (o->sent + n == o->total) {
                    e.flags |= VGPU_SHM_F_LAST;
                }
                o->sent += n;
            }
            o->first_sent = true;
            fm_comp_put(&e);
            any = true;
            if (o->status || o->sent == o->total) {
                free(o->data);
                memset(o, 0, sizeof(*o));
                struct fm_req *r = fm_find(e.epoch, e.seq);
                if (r) {
                    free(r->buf);
                    memset(r, 0, sizeof(*r));
                }
            }
        }
    }
    return any;
}

/* Serve the region once: take the sub ring, give chunks back, answer. */
static void fm_serve(void)
{
    uint32_t prod;
    bool any = false;
    uint64_t v;

    if (!fm.map || fm.paused) {
        return;
    }
    if (read(fm.kick, &v, sizeof(v)) < 0) {
        /* nothing pending: fine */
    }
    prod = fm_ld(VGPU_SHM_OFF_SUB_PROD);
    while (fm.sub_cons != prod && fm_comp_space()) {
        uint8_t raw[VGPU_SHM_ENT_SIZE];
        struct vgpu_shm_ent e;
        uint32_t slot = fm.sub_cons & (fm.o.ring_entries - 1);
        struct fm_req *r;

        memcpy(raw, fm.map + fm.o.sub_off + slot * VGPU_SHM_ENT_SIZE,
               sizeof(raw));
        vgpu_shm_ent_unpack(raw, &e);
        fm.sub_cons++;
        switch (e.kind) {
        case VGPU_SHM_REQ_DATA:
            fm.pieces++;
            if (e.chunk >= fm.o.req_chunks || e.len > fm.o.chunk_size) {
                fm.bad++;
                break;
            }
            r = fm_find(e.epoch, e.seq);
            if (e.flags & VGPU_SHM_F_FIRST) {
                fm.firsts++;
                if (r) {
                    fm.bad++;
                }
                for (int i = 0; i < FM_REQS && !r; i++) {
                    if (!fm.r[i].used) {
                        r = &fm.r[i];
                    }
                }
                if (!r) {
                    fatal("fake mediator: too many requests");
                }
                memset(r, 0, sizeof(*r));
                r->used = true;
                r->epoch = e.epoch;
                r->seq = e.seq;
                r->total = e.total;
                r->resp_cap = e.resp_cap;
                r->buf = malloc(e.total);
            }
            if (!r || e.offset != r->got || e.offset + e.len > r->total) {
                fm.bad++;
                break;
            }
            memcpy(r->buf + e.offset,
                   fm.map + fm.o.req_pool_off +
                       (uint64_t)e.chunk * fm.o.chunk_size,
                   e.len);
            r->got += e.len;
            fm.lent_now++;
            if (fm.lent_now > fm.max_chunks_seen_lent) {
                fm.max_chunks_seen_lent = fm.lent_now;
            }
            if (fm.keep_chunks) {
                fm.held_chunks[e.chunk] = 1;
            } else {
                fm_comp_put(&(struct vgpu_shm_ent){
                    .kind = VGPU_SHM_REQ_CHUNK_DONE, .chunk = e.chunk});
                fm.lent_now--;
                any = true;
            }
            if (e.flags & VGPU_SHM_F_LAST) {
                if (r->got != r->total) {
                    fm.bad++;
                }
                r->complete = true;
                if (!fm.hold) {
                    fm_answer(r);
                }
            }
            break;
        case VGPU_SHM_RESP_CHUNK_DONE:
            if (e.chunk >= fm.o.resp_chunks || !fm.resp_lent[e.chunk]) {
                fm.bad++;
            } else {
                fm.resp_lent[e.chunk] = 0;
            }
            break;
        case VGPU_SHM_CANCEL:
            fm.cancels++;
            r = fm_find(e.epoch, e.seq);
            if (r) {
                free(r->buf);
                memset(r, 0, sizeof(*r));
            }
            break;
        default:
            fm.bad++;
            break;
        }
    }
    fm_st(VGPU_SHM_OFF_SUB_CONS, fm.sub_cons);
    any |= fm_push_out();
    if (any) {
        fm_call();
    }
}

/* Finished requests not yet answered, in the order they came. */
static int fm_complete_list(struct fm_req **out, int max)
{
    int n = 0;

    for (int i = 0; i < FM_REQS && n < max; i++) {
        if (fm.r[i].used && fm.r[i].complete && !fm.r[i].answered) {
            out[n++] = &fm.r[i];
        }
    }
    /* by seq: the order the device numbered them */
    for (int i = 1; i < n; i++) {
        for (int j = i; j > 0 && out[j]->seq < out[j - 1]->seq; j--) {
            struct fm_req *t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    }
    return n;
}

/* ---------------------------------------------------------------------- */
/* v2: the guest's rings                                                   */
/* ---------------------------------------------------------------------- */


static struct gring {
    uint32_t sqn, cqn, sq_tail, cq_head, phase;
    bool dbbuf;
} gr;

static void bus_master_on(void)
{
    cfg_write(pci_dev, 0x04, cfg_read(pci_dev, 0x04) | 0x6);
}

static void wr64reg(uint32_t lo, uint64_t v)
{
    wr32(lo, (uint32_t)v);
    wr32(lo + 4, (uint32_t)(v >> 32));
}

/* Program and enable rings; RING_STATUS after the enable. */
static uint32_t ring_enable(uint32_t sqn, uint32_t cqn, uint64_t sq,
                            uint64_t cq, uint64_t dbbuf)
{
    memset(&gr, 0, sizeof(gr));
    gr.sqn = sqn;
    gr.cqn = cqn;
    gr.phase = 1;
    gr.dbbuf = dbbuf != 0;
    if (sqn && sqn <= 4096 && sq < 128u << 20 &&
        sq + 64ull * sqn <= 128u << 20) {
        gmem_set(sq, 0, 64 * sqn);
    }
    if (cqn && cqn <= 4096 && cq < 128u << 20 &&
        cq + 16ull * cqn <= 128u << 20) {
        gmem_set(cq, 0, 16 * cqn);
    }
    if (dbbuf && dbbuf < 128u << 20) {
        gmem_set(dbbuf, 0, 64);
    }
    wr64reg(VGPU_REG_SQ_BASE_LO, sq);
    wr64reg(VGPU_REG_CQ_BASE_LO, cq);
    wr32(VGPU_REG_SQ_SIZE, sqn);
    wr32(VGPU_REG_CQ_SIZE, cqn);
    wr64reg(VGPU_REG_DBBUF_LO, dbbuf);
    wr32(VGPU_REG_RING_CTRL, VGPU_RING_CTRL_ENABLE);
    return rd32(VGPU_REG_RING_STATUS);
}

/* Rings up, the device connected, its channel offered and taken. */
static void v2_start(const char *props, const struct fm_geom *g, uint32_t sqn,
                     uint32_t cqn, bool dbbuf)
{
    struct msg m;

    qemu_start(props);
    med_listen();
    bus_master_on();
    CHECK_EQ(ring_enable(sqn, cqn, G_SQ, G_CQ, dbbuf ? G_DBBUF : 0) & 0xffff,
             VGPU_RING_STATUS_READY);
    med_accept_hello("A", VGPU_PRIO_MEDIUM, 0);
    med_hello_ack("A", VGPU_PRIO_MEDIUM, 0);
    med_recv(&m, VGPU_MSG_SHM_REQ);
    CHECK_EQ(m.h.length, VGPU_SHM_REQ_SIZE);
    CHECK_EQ(vgpu_get_le32(m.payload), VGPU_SHM_VERSION);
    CHECK_EQ(vgpu_get_le32(m.payload + 4), VGPU_CAPS_V2 & ~VGPU_CAPS_V1);
    fm_make(g ? g : &FM_DEFAULT);
    fm_offer();
    /* taken when MAX_XFER shows the mediator's limit */
    uint64_t deadline = now_ms() + WAIT_MS;
    while (rd32(VGPU_REG_MAX_XFER_LO) != (uint32_t)fm.o.max_xfer) {
        if (now_ms() > deadline) {
            fatal("the device did not take the SHM_OFFER");
        }
        sleep_ms(1);
    }
    CHECK_EQ(fm_ld(VGPU_SHM_OFF_DEV_SLEEPING), 1);
}

/* Write an SG list of n entries at addr. */
static void put_sg(uint64_t addr, const uint64_t *a, const uint32_t *len,
                   uint32_t n)
{
    uint8_t b[16 * 64];

    for (uint32_t i = 0; i < n; i++) {
        vgpu_put_le64(b + 16 * i, a[i]);
        vgpu_put_le32(b + 16 * i + 8, len[i]);
        vgpu_put_le32(b + 16 * i + 12, 0);
    }
    gmem_write(addr, b, 16 * n);
}

struct sqe_args {
    uint32_t tag, flags, req_n, resp_n;
    uint64_t req_sg, resp_sg, req_len, resp_cap, reserved;
};

/* Put an SQE at the guest's tail and advance it (no doorbell yet). */
static void sq_put(const struct sqe_args *a)
{
    uint8_t e[64] = {0};

    vgpu_put_le32(e + VGPU_SQE_OFF_TAG, a->tag);
    vgpu_put_le32(e + VGPU_SQE_OFF_FLAGS, a->flags);
    vgpu_put_le32(e + VGPU_SQE_OFF_REQ_SG_COUNT, a->req_n);
    vgpu_put_le32(e + VGPU_SQE_OFF_RESP_SG_COUNT, a->resp_n);
    vgpu_put_le64(e + VGPU_SQE_OFF_REQ_SG_ADDR, a->req_sg);
    vgpu_put_le64(e + VGPU_SQE_OFF_RESP_SG_ADDR, a->resp_sg);
    vgpu_put_le64(e + VGPU_SQE_OFF_REQ_LEN, a->req_len);
    vgpu_put_le64(e + VGPU_SQE_OFF_RESP_CAP, a->resp_cap);
    vgpu_put_le64(e + 48, a->reserved);
    gmem_write(G_SQ + 64ull * gr.sq_tail, e, sizeof(e));
    gr.sq_tail = (gr.sq_tail + 1) & (gr.sqn - 1);
    if (gr.dbbuf) {
        gw32(G_DBBUF + VGPU_DBBUF_OFF_SQ_TAIL, gr.sq_tail);
    }
}

static void sq_ring(void)
{
    wr32(VGPU_REG_SQ_TAIL_DB, gr.sq_tail);
}

/* Submit with a doorbell only where the device asked for one. */
static void sq_ring_if_needed(uint32_t old)
{
    if (!gr.dbbuf) {
        sq_ring();
        return;
    }
    uint32_t ev = gr32(G_DBBUF + VGPU_DBBUF_OFF_SQ_EVENT_IDX);
    if (vgpu_ring_need_event(ev, gr.sq_tail, old, gr.sqn)) {
        sq_ring();
    }
}

/* A simple request in slot i: len bytes (a header + pattern) at
 * G_DATA + 64K*i, a response room of cap at G_RESP + 64K*i. */
static struct sqe_args simple_req(uint32_t i, uint32_t tag, uint32_t len,
                                  uint32_t cap)
{
    uint64_t ra = G_DATA + 0x10000ull * i, pa = G_RESP + 0x10000ull * i;
    uint64_t sg = G_SG + 0x800ull * i;
    uint8_t d[4096];
    struct sqe_args a = {.tag = tag, .req_n = 1, .resp_n = cap ? 1 : 0,
                         .req_sg = sg, .resp_sg = sg + 0x400,
                         .req_len = len, .resp_cap = cap};

    for (uint32_t k = 0; k < len && k < sizeof(d); k++) {
        d[k] = (uint8_t)(tag * 7 + k);
    }
    gmem_write(ra, d, len < sizeof(d) ? len : sizeof(d));
    put_sg(sg, &ra, &len, 1);
    if (cap) {
        put_sg(sg + 0x400, &pa, &cap, 1);
    }
    return a;
}

struct cqe {
    uint32_t tag, status, resp_len;
    uint16_t sq_head, flags;
};

static bool cq_peek(struct cqe *c)
{
    uint8_t b[16];

    gmem_read(G_CQ + 16ull * gr.cq_head, b, sizeof(b));
    c->tag = vgpu_get_le32(b);
    c->status = vgpu_get_le32(b + 4);
    c->resp_len = vgpu_get_le32(b + 8);
    c->sq_head = vgpu_get_le16(b + 12);
    c->flags = vgpu_get_le16(b + 14);
    return (c->flags & VGPU_CQE_PHASE) == gr.phase;
}

static void cq_pop(bool doorbell)
{
    gr.cq_head = (gr.cq_head + 1) & (gr.cqn - 1);
    if (!gr.cq_head) {
        gr.phase ^= 1;
    }
    if (gr.dbbuf) {
        gw32(G_DBBUF + VGPU_DBBUF_OFF_CQ_HEAD, gr.cq_head);
    }
    if (doorbell) {
        wr32(VGPU_REG_CQ_HEAD_DB, gr.cq_head);
    }
}

/* Serve the region until a CQE is there (real-time bound), take it. */
static struct cqe wait_cqe_db(bool doorbell)
{
    uint64_t deadline = now_ms() + WAIT_MS;
    struct cqe c;

    for (;;) {
        fm_serve();
        if (cq_peek(&c)) {
            cq_pop(doorbell);
            return c;
        }
        if (now_ms() > deadline) {
            fatal("no completion at CQ %u", gr.cq_head);
        }
        sleep_ms(1);
    }
}

static struct cqe wait_cqe(void)
{
    return wait_cqe_db(!gr.dbbuf);
}

/* No CQE within ms of serving. */
static bool no_cqe_within(int ms)
{
    uint64_t deadline = now_ms() + ms;
    struct cqe c;

    do {
        fm_serve();
        if (cq_peek(&c)) {
            return false;
        }
        sleep_ms(2);
    } while (now_ms() < deadline);
    return true;
}

static void check_resp(uint32_t i, uint32_t tag, uint32_t n)
{
    uint8_t d[4096];

    if (n > sizeof(d)) {
        n = sizeof(d);
    }
    gmem_read(G_RESP + 0x10000ull * i, d, n);
    for (uint32_t k = 0; k < n; k++) {
        if (d[k] != (uint8_t)(tag * 7 + k + 1)) {
            CHECK_EQ(d[k], (uint8_t)(tag * 7 + k + 1));
            return;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* v2: cases                                                               */
/* ---------------------------------------------------------------------- */

#define RING_CODE(st) VGPU_RING_STATUS_CODE(st)
#define RING_BAD(st) VGPU_RING_STATUS_BAD_WRITES(st)

static void case_v2_registers(void)
{
    static const uint32_t rw[] = {
        VGPU_REG_SQ_BASE_LO, VGPU_REG_SQ_BASE_HI, VGPU_REG_CQ_BASE_LO,
        VGPU_REG_CQ_BASE_HI, VGPU_REG_SQ_SIZE,    VGPU_REG_CQ_SIZE,
        VGPU_REG_DBBUF_LO,   VGPU_REG_DBBUF_HI,   VGPU_REG_IRQ_COALESCE,
    };
    static const uint32_t ro[] = {
        VGPU_REG_MAX_XFER_LO, VGPU_REG_MAX_XFER_HI, VGPU_REG_MAX_SG,
        VGPU_REG_SQ_HEAD,     VGPU_REG_CQ_TAIL,     VGPU_REG_RING_INFLIGHT,
        VGPU_REG_RING_STATUS,
    };
    uint32_t st;

    qemu_start(TIMEOUT_PROP);
    CHECK_EQ(rd32(VGPU_REG_RING_CTRL), 0);
    CHECK_EQ(rd32(VGPU_REG_RING_STATUS), 0);
    CHECK_EQ(rd32(VGPU_REG_MAX_XFER_LO), (uint32_t)VGPU_XFER_DEFAULT);
    CHECK_EQ(rd32(VGPU_REG_MAX_XFER_HI), (uint32_t)(VGPU_XFER_DEFAULT >> 32));
    CHECK_EQ(rd32(VGPU_REG_MAX_SG), VGPU_SG_MAX_ENTRIES);
    for (size_t i = 0; i < sizeof(rw) / sizeof(rw[0]); i++) {
        CHECK_EQ(rd32(rw[i]), 0);
        wr32(rw[i], 0x1000u * (i + 1) + 0x40);
        CHECK_EQ(rd32(rw[i]), 0x1000u * (i + 1) + 0x40);
    }
    for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
        uint32_t before = rd32(ro[i]);

        wr32(ro[i], 0x5a5a5a5a);
        if (ro[i] != VGPU_REG_RING_STATUS) {
            CHECK_EQ(rd32(ro[i]), before);
        }
    }
    st = rd32(VGPU_REG_RING_STATUS);
    CHECK_EQ(RING_BAD(st), sizeof(ro) / sizeof(ro[0])); /* each counted */
    CHECK_EQ(st & 0xffff, 0);
    /* doorbells while stopped: counted, read 0 */
    wr32(VGPU_REG_SQ_TAIL_DB, 1);
    wr32(VGPU_REG_CQ_HEAD_DB, 1);
    CHECK_EQ(rd32(VGPU_REG_SQ_TAIL_DB), 0);
    CHECK_EQ(rd32(VGPU_REG_CQ_HEAD_DB), 0);
    CHECK_EQ(RING_BAD(rd32(VGPU_REG_RING_STATUS)), 9);
    /* unknown RING_CTRL bits: counted, nothing starts */
    wr32(VGPU_REG_RING_CTRL, 0x2);
    CHECK_EQ(rd32(VGPU_REG_RING_CTRL), 0);
    CHECK_EQ(RING_BAD(rd32(VGPU_REG_RING_STATUS)), 10);
    /* sub-dword access to ring registers does nothing */
    wr16(VGPU_REG_SQ_SIZE, 0x4);
    CHECK_EQ(rd16(VGPU_REG_SQ_SIZE), 0);
    CHECK_EQ(rd32(VGPU_REG_SQ_SIZE), 0x5040);
    /* running: geometry writes are refused and counted */
    bus_master_on();
    CHECK_EQ(ring_enable(8, 8, G_SQ, G_CQ, G_DBBUF) & 0xffff,
             VGPU_RING_STATUS_READY);
    CHECK_EQ(rd32(VGPU_REG_RING_CTRL), VGPU_RING_CTRL_ENABLE);
    st = rd32(VGPU_REG_RING_STATUS);
    for (size_t i = 0; i < 8; i++) {
        wr32(rw[i], 0x80);
    }
    CHECK_EQ(rd32(VGPU_REG_SQ_BASE_LO), G_SQ);
    CHECK_EQ(rd32(VGPU_REG_CQ_SIZE), 8);
    CHECK_EQ(rd32(VGPU_REG_DBBUF_LO), G_DBBUF);
    CHECK_EQ(RING_BAD(rd32(VGPU_REG_RING_STATUS)), RING_BAD(st) + 8);
    /* coalescing may change while running */
    wr32(VGPU_REG_IRQ_COALESCE, VGPU_IRQ_COALESCE_MAKE(4, 100));
    CHECK_EQ(rd32(VGPU_REG_IRQ_COALESCE), VGPU_IRQ_COALESCE_MAKE(4, 100));
    /* the device asked for the first doorbell */
    CHECK_EQ(gr32(G_DBBUF + VGPU_DBBUF_OFF_SQ_EVENT_IDX), 0);
    wr32(VGPU_REG_RING_CTRL, 0);
    CHECK_EQ(rd32(VGPU_REG_RING_CTRL), 0);
    CHECK_EQ(rd32(VGPU_REG_RING_STATUS) & 0xffff, 0);
    /* a device reset clears them all */
    qmp_cmd("{\"execute\": \"qmp_capabilities\"}\n");
    qmp_cmd("{\"execute\": \"system_reset\"}\n");
    uint64_t deadline = now_ms() + WAIT_MS;
    while (cfg_read(pci_dev, 0x10) != 0) {
        if (now_ms() > deadline) {
            fatal("system_reset did not happen");
        }
        sleep_ms(1);
    }
    map_bar0();
    for (size_t i = 0; i < sizeof(rw) / sizeof(rw[0]); i++) {
        CHECK_EQ(rd32(rw[i]), 0);
    }
    CHECK_EQ(rd32(VGPU_REG_RING_STATUS), 0);
}

static void case_v2_bad_rings(void)
{
    static const struct {
        uint32_t sqn, cqn;
        uint64_t sq, cq, db;
        const char *what;
    } bad[] = {
        {0, 8, G_SQ, G_CQ, 0, "SQ size 0"},
        {1, 8, G_SQ, G_CQ, 0, "SQ size 1"},
        {8, 6, G_SQ, G_CQ, 0, "CQ size 6"},
        {8192, 8, G_SQ, G_CQ, 0, "SQ size 8192"},
        {8, 8, G_SQ + 32, G_CQ, 0, "SQ base misaligned"},
        {8, 8, G_SQ, G_CQ + 16, 0, "CQ base misaligned"},
        {8, 8, G_SQ, G_CQ, G_DBBUF + 4, "DBBUF misaligned"},
        {8, 8, G_OUTSIDE, G_CQ, 0, "SQ outside RAM"},
        {8, 8, G_SQ, G_OUTSIDE, 0, "CQ outside RAM"},
        {8, 8, G_SQ, G_CQ, G_OUTSIDE, "DBBUF outside RAM"},
        {8, 8, 0xffffffffffffffc0ull, G_CQ, 0, "SQ wraps"},
        {4096, 8, (128u << 20) - 4096 * 32, G_CQ, 0, "SQ runs past RAM"},
    };

    qemu_start(TIMEOUT_PROP);
    bus_master_on();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint32_t st = ring_enable(bad[i].sqn, bad[i].cqn, bad[i].sq, bad[i].cq,
                                  bad[i].db);

        if ((st & 0xffff) != (VGPU_RING_STATUS_ERROR |
                              (VGPU_ERR_BAD_RING << 8))) {
            fprintf(stderr, "    %s: RING_STATUS 0x%x\n", bad[i].what, st);
            case_failed = 1;
        }
        CHECK_EQ(rd32(VGPU_REG_RING_CTRL), 0);
    }
    /* no ring ever ran: nobody tried the mediator */
    CHECK(!log_has_now("cannot reach the mediator"));
    /* and a good enable after them works (the mediator is absent:
     * requests end in NO_MEDIATOR, at once) */
    CHECK_EQ(ring_enable(8, 8, G_SQ, G_CQ, 0) & 0xffff,
             VGPU_RING_STATUS_READY);
    struct sqe_args a = simple_req(0, 0x77, 16, 16);
    sq_put(&a);
    sq_ring();
    struct cqe c = wait_cqe();
    CHECK_EQ(c.tag, 0x77);
    CHECK_EQ(c.status, VGPU_ERR_NO_MEDIATOR);
    CHECK_EQ(c.flags & VGPU_CQE_PHASE, 1);
    CHECK_EQ(c.sq_head, 1);
    CHECK_EQ(rd32(VGPU_REG_RING_INFLIGHT), 0);
}

static void case_v2_round_trip(void)
{
    struct sqe_args a;
    struct cqe c;
    unsigned before;

    v2_start(TIMEOUT_PROP, NULL, 8, 8, false);
    a = simple_req(0, 0xabc, 200, 512);
    before = mmio_count;
    sq_put(&a);
    sq_ring();
    c = wait_cqe();
    CHECK_EQ(c.tag, 0xabc);
    CHECK_EQ(c.status, VGPU_ERR_NONE);
    CHECK_EQ(c.resp_len, 200);
    CHECK_EQ(c.sq_head, 1);
    check_resp(0, 0xabc, 200);
    printf("    MMIO per request without the doorbell buffer: %u "
           "(SQ doorbell + CQ doorbell)\n", mmio_count - before);
    CHECK_EQ(rd32(VGPU_REG_SQ_HEAD), 1);
    CHECK_EQ(rd32(VGPU_REG_CQ_TAIL), 1);
    CHECK_EQ(rd32(VGPU_REG_RING_INFLIGHT), 0);
    CHECK_EQ(fm.firsts, 1);
    CHECK_EQ(fm.bad, 0);
    /* an empty response room, a response of 0 bytes */
    a = simple_req(1, 0xabd, 8, 0);
    sq_put(&a);
    sq_ring();
    c = wait_cqe();
    CHECK_EQ(c.tag, 0xabd);
    CHECK_EQ(c.status, VGPU_ERR_NONE);
    CHECK_EQ(c.resp_len, 0);
    /* the mediator's error status reaches the CQE */
    fm.hold = true;
    a = simple_req(2, 0xabe, 8, 64);
    sq_put(&a);
    sq_ring();
    struct fm_req *r[4];
    uint64_t deadline = now_ms() + WAIT_MS;
    while (fm_complete_list(r, 4) < 1) {
        fm_serve();
        if (now_ms() > deadline) {
            fatal("request did not reach the mediator");
        }
        sleep_ms(1);
    }
    fm_answer_data(r[0], VGPU_ERR_BAD_OPCODE, NULL, 0);
    c = wait_cqe();
    CHECK_EQ(c.status, VGPU_ERR_BAD_OPCODE);
    CHECK_EQ(c.resp_len, 0);
    CHECK_EQ(fm.bad, 0);
}

/* One bad SQE; its completion status. */
static uint32_t bad_sqe(const struct sqe_args *a)
{
    struct cqe c;

    sq_put(a);
    sq_ring();
    c = wait_cqe();
    CHECK_EQ(c.tag, a->tag);
    return c.status;
}

static void case_v2_bad_sqes(void)
{
    struct sqe_args a;
    uint64_t addrs[4] = {G_DATA, G_DATA + 0x1000, G_DATA + 0x2000, 0};
    uint32_t lens[4] = {8, 8, 8, 0};
    unsigned firsts;
    uint32_t st;

    v2_start(TIMEOUT_PROP, &(struct fm_geom){64, 65536, 4, 4, 64, 1u << 20},
             16, 16, false);
    CHECK_EQ(rd32(VGPU_REG_MAX_XFER_LO), 1u << 20);
    firsts = fm.firsts;

    a = simple_req(0, 1, 64, 64);
    a.req_n = 0;
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_BAD_SG);            /* no request SG */
    a = simple_req(0, 2, 64, 64);
    a.req_n = VGPU_SG_MAX_ENTRIES + 1;
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_BAD_SG);            /* over MAX_SG */
    a = simple_req(0, 3, 64, 64);
    a.resp_n = VGPU_SG_MAX_ENTRIES + 1;
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_BAD_SG);
    a = simple_req(0, 4, 64, 64);
    a.req_len = 65;
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_BAD_SG);            /* lengths != req_len */
    a = simple_req(0, 5, 64, 64);
    a.resp_cap = 63;
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_BAD_SG);            /* != resp_cap */
    a = simple_req(0, 6, 64, 64);
    a.req_sg += 8;
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_BAD_SG);            /* list misaligned */
    a = simple_req(0, 7, 64, 0);
    a.resp_cap = 16;
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_BAD_SG);            /* room without SG */
    /* an entry of length 0, one that wraps, a reserved word */
    a = simple_req(0, 8, 16, 0);
    put_sg(G_SG, addrs, (uint32_t[]){8, 0, 8}, 3);
    a.req_n = 3;
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_BAD_SG);
    a = simple_req(0, 9, 16, 0);
    put_sg(G_SG, (uint64_t[]){0xfffffffffffffff8ull}, (uint32_t[]){16}, 1);
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_BAD_SG);
    a = simple_req(0, 10, 16, 0);
    gw32(G_SG + 12, 1);
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_BAD_SG);
    a = simple_req(0, 11, 16, 0);
    a.req_sg = 0xfffffffffffffff0ull;
    a.req_n = 2;
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_BAD_SG);            /* list wraps */
    /* addresses outside RAM: the list, then the data */
    a = simple_req(0, 12, 16, 0);
    a.req_sg = G_OUTSIDE;
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_DMA);
    a = simple_req(0, 13, 16, 0);
    put_sg(G_SG, (uint64_t[]){G_OUTSIDE}, (uint32_t[]){16}, 1);
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_DMA);
    /* sizes */
    a = simple_req(0, 14, 4, 0);
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_BAD_REQUEST);       /* under a header */
    a = simple_req(0, 15, 16, 0);
    a.flags = 1;
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_BAD_REQUEST);       /* reserved flags */
    a = simple_req(0, 16, 16, 0);
    a.reserved = 1;
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_BAD_REQUEST);
    a = simple_req(0, 17, 16, 0);
    put_sg(G_SG, (uint64_t[]){G_DATA}, (uint32_t[]){(1u << 20) + 8}, 1);
    a.req_len = (1u << 20) + 8;
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_REQUEST_TOO_LARGE); /* over MAX_XFER */
    a = simple_req(0, 18, 16, 64);
    a.resp_cap = (1u << 20) + 8;
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_REQUEST_TOO_LARGE);
    /* response SG outside RAM: the bytes cannot land, DMA */
    a = simple_req(0, 19, 32, 32);
    put_sg(G_SG + 0x400, (uint64_t[]){G_OUTSIDE}, (uint32_t[]){32}, 1);
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_DMA);
    /* the mediator saw only the last one */
    CHECK_EQ(fm.firsts, firsts + 1);
    /* a request over several SG entries still works after all that */
    a = simple_req(0, 20, 24, 24);
    put_sg(G_SG, addrs, lens, 3);
    a.req_n = 3;
    gmem_write(G_DATA, "abcdefgh", 8);
    gmem_write(G_DATA + 0x1000, "ijklmnop", 8);
    gmem_write(G_DATA + 0x2000, "qrstuvwx", 8);
    put_sg(G_SG + 0x400, (uint64_t[]){G_RESP, G_RESP + 0x3000},
           (uint32_t[]){5, 19}, 2);
    a.resp_n = 2;
    CHECK_EQ(bad_sqe(&a), VGPU_ERR_NONE);
    char out[24];
    gmem_read(G_RESP, out, 5);
    gmem_read(G_RESP + 0x3000, out + 5, 19);
    CHECK(memcmp(out, "bcdefghijklmnopqrstuvwxy", 24) == 0);

    /* bad doorbells: counted, ignored */
    st = rd32(VGPU_REG_RING_STATUS);
    wr32(VGPU_REG_SQ_TAIL_DB, 16);                  /* beyond the ring */
    wr32(VGPU_REG_SQ_TAIL_DB, 0xffffffff);
    wr32(VGPU_REG_CQ_HEAD_DB, (gr.cq_head + 1) & 15); /* not written yet */
    wr32(VGPU_REG_CQ_HEAD_DB, 16);
    CHECK_EQ(RING_BAD(rd32(VGPU_REG_RING_STATUS)), RING_BAD(st) + 4);
    CHECK_EQ(rd32(VGPU_REG_SQ_HEAD), gr.sq_tail);
    CHECK_EQ(rd32(VGPU_REG_RING_INFLIGHT), 0);
    CHECK(no_cqe_within(50));
    CHECK_EQ(rd32(VGPU_REG_RING_STATUS) & 0xffff, VGPU_RING_STATUS_READY);
    CHECK_EQ(fm.bad, 0);
}

/* Many in flight, answered in reverse; the CQ bound; phase over wraps. */
static void case_v2_out_of_order(void)
{
    struct fm_req *r[64];
    struct sqe_args a;
    struct cqe c;
    int n;

    v2_start(TIMEOUT_PROP, NULL, 16, 8, false);
    fm.hold = true;
    /* 12 submitted; the CQ of 8 lets 7 in flight, the rest waits */
    for (uint32_t i = 0; i < 12; i++) {
        a = simple_req(i, 100 + i, 16 + i, 64);
        sq_put(&a);
    }
    sq_ring();
    uint64_t deadline = now_ms() + WAIT_MS;
    while ((n = fm_complete_list(r, 64)) < 7) {
        fm_serve();
        if (now_ms() > deadline) {
            fatal("7 requests did not reach the mediator (%d)", n);
        }
        sleep_ms(1);
    }
    sleep_ms(50);
    fm_serve();
    CHECK_EQ(fm_complete_list(r, 64), 7);
    CHECK_EQ(rd32(VGPU_REG_RING_INFLIGHT), 7);
    CHECK_EQ(rd32(VGPU_REG_SQ_HEAD), 7);
    /* answer them newest first */
    for (int i = n - 1; i >= 0; i--) {
        fm_answer(r[i]);
    }
    for (int i = 6; i >= 0; i--) {
        c = wait_cqe_db(false); /* no CQ doorbell: the CQ fills up */
        CHECK_EQ(c.tag, 100 + i);
        CHECK_EQ(c.status, VGPU_ERR_NONE);
        CHECK_EQ(c.resp_len, 16 + i);
        check_resp(i, 100 + i, 16 + i);
    }
    /* CQ holds 7 unread: nothing more is taken until the guest says */
    sleep_ms(50);
    fm_serve();
    CHECK_EQ(rd32(VGPU_REG_SQ_HEAD), 7);
    CHECK_EQ(fm_complete_list(r, 64), 0);
    wr32(VGPU_REG_CQ_HEAD_DB, gr.cq_head);
    deadline = now_ms() + WAIT_MS;
    while ((n = fm_complete_list(r, 64)) < 5) {
        fm_serve();
        if (now_ms() > deadline) {
            fatal("the last 5 did not reach the mediator (%d)", n);
        }
        sleep_ms(1);
    }
    for (int i = 0; i < n; i++) {
        fm_answer(r[i]);
    }
    for (uint32_t i = 7; i < 12; i++) {
        c = wait_cqe();
        CHECK_EQ(c.tag, 100 + i);
        CHECK_EQ(c.flags & VGPU_CQE_PHASE, i < 8 ? 1 : 0); /* wrapped */
    }
    /* 3 more passes over the CQ, phase flipping each time */
    fm.hold = false;
    for (uint32_t i = 0; i < 24; i++) {
        uint32_t p = gr.phase;

        a = simple_req(i % 4, 200 + i, 8 + i, 64);
        sq_put(&a);
        sq_ring();
        c = wait_cqe();
        CHECK_EQ(c.tag, 200 + i);
        CHECK_EQ(c.flags & VGPU_CQE_PHASE, p);
        CHECK_EQ(c.sq_head, gr.sq_tail);
    }
    CHECK_EQ(fm.bad, 0);
}

/* A request of several MB through a pool of a few chunks. */
static void case_v2_stream_big(void)
{
    const uint32_t total = 3u << 20, sg_n = 3;
    const uint32_t rtotal = 1u << 20;
    uint8_t *data = malloc(total), *back = malloc(rtotal);
    uint64_t sa[3] = {G_BIG, G_BIG + (1u << 20) + 4096, G_BIG + (2u << 20) + 8192};
    uint32_t sl[3] = {1u << 20, (1u << 20) + 100, (1u << 20) - 100};
    struct fm_req *r[2];
    struct cqe c;

    for (uint32_t i = 0; i < total; i++) {
        data[i] = (uint8_t)(i * 2654435761u >> 24);
    }
    v2_start(TIMEOUT_PROP, &(struct fm_geom){16, 65536, 4, 2, 16, 8u << 20}, 8,
             8, false);
    fm.hold = true;
    for (uint32_t i = 0, off = 0; i < sg_n; off += sl[i], i++) {
        gmem_write(sa[i], data + off, sl[i]);
    }
    put_sg(G_SG, sa, sl, sg_n);
    put_sg(G_SG + 0x400, (uint64_t[]){G_BIGRESP}, &rtotal, 1);
    sq_put(&(struct sqe_args){.tag = 0xb16, .req_n = sg_n, .resp_n = 1,
                              .req_sg = G_SG, .resp_sg = G_SG + 0x400,
                              .req_len = total, .resp_cap = rtotal});
    sq_ring();
    uint64_t deadline = now_ms() + 4 * WAIT_MS;
    while (fm_complete_list(r, 2) < 1) {
        fm_serve();
        if (now_ms() > deadline) {
            fatal("the big request did not arrive");
        }
    }
    CHECK_EQ(r[0]->total, total);
    CHECK(memcmp(r[0]->buf, data, total) == 0);
    CHECK_EQ(fm.pieces, total / 65536);
    CHECK(fm.max_chunks_seen_lent <= 4);
    printf("    %u MB through %u request chunks of 64 KB: %u pieces\n",
           total >> 20, fm.o.req_chunks, fm.pieces);
    /* a 1 MB response through 2 response chunks */
    for (uint32_t i = 0; i < rtotal; i++) {
        data[i] ^= 0xa5;
    }
    fm_answer_data(r[0], 0, data, rtotal);
    c = wait_cqe();
    CHECK_EQ(c.tag, 0xb16);
    CHECK_EQ(c.status, VGPU_ERR_NONE);
    CHECK_EQ(c.resp_len, rtotal);
    gmem_read(G_BIGRESP, back, rtotal);
    CHECK(memcmp(back, data, rtotal) == 0);
    CHECK_EQ(fm.bad, 0);
    free(data);
    free(back);
}

/* The doorbell buffer: a busy guest submits and reaps with no MMIO. */
static void case_v2_dbbuf(void)
{
    struct fm_req *r[64];
    struct sqe_args a;
    struct cqe c;
    unsigned before, doorbells = 0;
    const uint32_t N = 64;

    v2_start(TIMEOUT_PROP, NULL, 64, 64, true);
    fm.hold = true;
    /* the first submission passes the event index: one doorbell */
    a = simple_req(0, 1000, 16, 64);
    before = mmio_count;
    uint32_t old = gr.sq_tail;
    sq_put(&a);
    sq_ring_if_needed(old);
    CHECK_EQ(mmio_count - before, 1);
    uint64_t deadline = now_ms() + WAIT_MS;
    while (fm_complete_list(r, 64) < 1) {
        fm_serve();
        if (now_ms() > deadline) {
            fatal("the first request did not arrive");
        }
        sleep_ms(1);
    }
    /* busy: the next N go in through the shadow tail alone */
    before = mmio_count;
    for (uint32_t i = 1; i <= N; i++) {
        old = gr.sq_tail;
        a = simple_req(i % 32, 1000 + i, 16, 64);
        sq_put(&a);
        unsigned m = mmio_count;
        sq_ring_if_needed(old);
        doorbells += mmio_count - m;
        if (i == N / 2) {
            /* a completion while busy: the device reads the shadow */
            fm_answer(r[0]);
        }
        if (i > N / 2) {
            /* reap on the side, via the shadow head */
            deadline = now_ms() + WAIT_MS;
            while (!cq_peek(&c)) {
                fm_serve();
                if (fm_complete_list(r, 64) > 0) {
                    fm_answer(r[0]);
                }
                if (now_ms() > deadline) {
                    fatal("no completion while busy");
                }
            }
            cq_pop(false);
        }
    }
    /* the rest complete without any MMIO */
    uint32_t got = N / 2;
    deadline = now_ms() + 2 * WAIT_MS;
    while (got < N + 1) {
        int n = fm_complete_list(r, 64);

        for (int i = 0; i < n; i++) {
            fm_answer(r[i]);
        }
        fm_serve();
        if (cq_peek(&c)) {
            CHECK_EQ(c.status, VGPU_ERR_NONE);
            cq_pop(false);
            got++;
        }
        if (now_ms() > deadline) {
            fatal("%u of %u completions", got, N + 1);
        }
    }
    printf("    doorbell buffer: %u MMIO accesses for %u requests while "
           "busy (%.3f per request)\n",
           mmio_count - before, N, (double)(mmio_count - before) / N);
    CHECK_EQ(mmio_count - before, 0);
    CHECK_EQ(doorbells, 0);
    CHECK_EQ(rd32(VGPU_REG_RING_INFLIGHT), 0);
    CHECK_EQ(RING_BAD(rd32(VGPU_REG_RING_STATUS)), 0);
    /* idle now: it asked for a doorbell past the tail it saw */
    CHECK_EQ(gr32(G_DBBUF + VGPU_DBBUF_OFF_SQ_EVENT_IDX), gr.sq_tail);
    old = gr.sq_tail;
    fm.hold = false;
    a = simple_req(0, 2000, 16, 64);
    sq_put(&a);
    before = mmio_count;
    sq_ring_if_needed(old);
    CHECK_EQ(mmio_count - before, 1);
    c = wait_cqe_db(false);
    CHECK_EQ(c.tag, 2000);
    /* a shadow tail outside the ring is ignored and counted */
    gw32(G_DBBUF + VGPU_DBBUF_OFF_SQ_TAIL, 64);
    sq_ring();
    CHECK(no_cqe_within(50));
    CHECK(RING_BAD(rd32(VGPU_REG_RING_STATUS)) >= 1);
    CHECK_EQ(rd32(VGPU_REG_SQ_HEAD), old + 1);
}

/* MSI-X: find the capability, map BAR1, aim vector v at G_MSI + 4 v. */
static uint32_t msix_cap;

static void msix_setup(void)
{
    uint32_t ptr = cfg_read(pci_dev, 0x34) & 0xff, tbl;

    msix_cap = 0;
    while (ptr) {
        uint32_t w = cfg_read(pci_dev, ptr);

        if ((w & 0xff) == 0x11) {
            msix_cap = ptr;
            break;
        }
        ptr = (w >> 8) & 0xff;
    }
    if (!msix_cap) {
        fatal("no MSI-X capability");
    }
    CHECK_EQ(((cfg_read(pci_dev, msix_cap) >> 16) & 0x7ff) + 1,
             VGPU_MSIX_VECTORS);
    tbl = cfg_read(pci_dev, msix_cap + 4);
    CHECK_EQ(tbl & 7, VGPU_MSIX_BAR);
    cfg_write(pci_dev, 0x14, BAR1_ADDR);
    for (uint32_t v = 0; v < VGPU_MSIX_VECTORS; v++) {
        uint64_t e = BAR1_ADDR + (tbl & ~7u) + 16 * v;

        gw32(e, G_MSI + 4 * v);
        gw32(e + 4, 0);
        gw32(e + 8, 0xc0de0000u + v);
        gw32(e + 12, 0); /* unmasked */
        gw32(G_MSI + 4 * v, 0);
    }
    cfg_write(pci_dev, msix_cap, cfg_read(pci_dev, msix_cap) | (1u << 31));
}

/* Did vector v fire since the last look? */
static bool msi_took(uint32_t v)
{
    uint32_t d = gr32(G_MSI + 4 * v);

    gw32(G_MSI + 4 * v, 0);
    return d == 0xc0de0000u + v;
}

static struct cqe one_request(uint32_t tag)
{
    struct sqe_args a = simple_req(tag % 8, tag, 16, 64);

    sq_put(&a);
    sq_ring();
    return wait_cqe();
}

/*
 * One random guest action on the v2 side: ring registers (plausible
 * values half of the time), SQ entries and SG lists of random bytes or
 * of a well-formed request, doorbells anywhere, the doorbell buffer, bus
 * mastering, interrupts, and virtual time; the fake mediator serves in
 * between.  Only the device's answers are judged (check_defined_v2).
 */
static void random_v2_step(void)
{
    static const uint64_t bases[] = {G_SQ, G_CQ, G_DBBUF, G_OUTSIDE, 0,
                                     G_SQ + 8};
    uint32_t r = rnd(), v = rnd();
    uint8_t junk[64];

    switch (r % 20) {
    case 0: /* any ring register, any value */
        wr32(VGPU_REG_RING_CTRL + 4 * (rnd() % 19), v);
        break;
    case 1: /* plausible geometry */
        wr32(rnd() % 2 ? VGPU_REG_SQ_SIZE : VGPU_REG_CQ_SIZE,
             1u << (rnd() % 14));
        wr32(rnd() % 2 ? VGPU_REG_SQ_BASE_LO : VGPU_REG_CQ_BASE_LO,
             (uint32_t)bases[rnd() % 6]);
        break;
    case 2: /* stop (all in flight dropped) or enable as it stands */
        wr32(VGPU_REG_RING_CTRL, rnd() % 4 ? VGPU_RING_CTRL_ENABLE : 0);
        break;
    case 3: /* a random SQ entry */
        for (unsigned k = 0; k < sizeof(junk); k++) {
            junk[k] = (uint8_t)rnd();
        }
        if (rnd() % 2) { /* small lengths and counts, real SG lists */
            vgpu_put_le32(junk + VGPU_SQE_OFF_REQ_SG_COUNT, rnd() % 3);
            vgpu_put_le32(junk + VGPU_SQE_OFF_RESP_SG_COUNT, rnd() % 3);
            vgpu_put_le64(junk + VGPU_SQE_OFF_REQ_SG_ADDR,
                          G_SG + 16 * (rnd() % 8));
            vgpu_put_le64(junk + VGPU_SQE_OFF_RESP_SG_ADDR,
                          G_SG + 0x400 + 16 * (rnd() % 8));
            vgpu_put_le64(junk + VGPU_SQE_OFF_REQ_LEN, rnd() % 64);
            vgpu_put_le64(junk + VGPU_SQE_OFF_RESP_CAP, rnd() % 128);
        }
        gmem_write(G_SQ + 64 * (rnd() % 32), junk, sizeof(junk));
        break;
    case 4: { /* a random SG entry: RAM, outside, wrapping, empty */
        static const uint64_t addrs[] = {G_DATA, G_RESP, G_OUTSIDE,
                                         ~0ull - 8, 0};
        uint8_t e[16] = {0};

        vgpu_put_le64(e, addrs[rnd() % 5] + rnd() % 64);
        vgpu_put_le32(e + 8, rnd() % 3 ? rnd() % 128 : v);
        gmem_write(G_SG + 16 * (rnd() % 8) + (rnd() % 2 ? 0x400 : 0), e,
                   sizeof(e));
        break;
    }
    case 5:
    case 6:
        wr32(VGPU_REG_SQ_TAIL_DB, rnd() % 3 ? rnd() % 32 : v);
        break;
    case 7:
        wr32(VGPU_REG_CQ_HEAD_DB, rnd() % 3 ? rnd() % 32 : v);
        break;
    case 8: /* the doorbell buffer's shadow doorbells and event indices */
        gw32(G_DBBUF + 4 * (rnd() % 4), rnd() % 3 ? rnd() % 32 : v);
        break;
    case 9:
        cfg_write(pci_dev, 0x04, rnd() % 4 ? 0x6 : 0x2);
        break;
    case 10:
        wr32(rnd() % 2 ? VGPU_REG_IRQ_CTRL : VGPU_REG_IRQ_COALESCE, v);
        break;
    case 11:
        clock_step_ns((uint64_t)(rnd() % 4000) * 1000000u);
        break;
    case 12: /* the ring's progress registers */
        (void)rd32(VGPU_REG_SQ_HEAD + 4 * (rnd() % 3));
        break;
    default: { /* a well-formed request at the test's idea of the tail */
        struct sqe_args a = simple_req(rnd() % 8, rnd(), 16 + rnd() % 48, 64);

        sq_put(&a);
        sq_ring();
        break;
    }
    }
    fm_serve();
}

static void check_defined_v2(void)
{
    uint32_t rs = rd32(VGPU_REG_RING_STATUS);

    CHECK(VGPU_RING_STATUS_CODE(rs) < VGPU_ERR_COUNT);
    CHECK((rs & 0xfcu) == 0); /* bits 7..2 are reserved */
    CHECK(rd32(VGPU_REG_RING_INFLIGHT) <= VGPU_RING_MAX_ENTRIES);
    CHECK(rd32(VGPU_REG_SQ_HEAD) < VGPU_RING_MAX_ENTRIES);
    CHECK(rd32(VGPU_REG_CQ_TAIL) < VGPU_RING_MAX_ENTRIES);
    CHECK(rd32(VGPU_REG_STATUS) <= VGPU_STATUS_ERROR);
    CHECK_EQ(rd32(VGPU_REG_CAPABILITIES), VGPU_CAPS_V2);
}

/* Random v2 sequences (issue 12's register and ring fuzzing): the device
 * survives them with a defined state and serves a clean ring after. */
static void case_v2_random(void)
{
    for (uint32_t seed = 1; seed <= 4; seed++) {
        struct cqe c;

        rnd_state = 0x85ebca6bu * seed;
        v2_start(TIMEOUT_PROP, NULL, 16, 16, seed % 2 == 0);
        for (int step = 0; step < 800; step++) {
            random_v2_step();
            if (step % 32 == 0) {
                check_defined_v2();
            }
        }
        check_defined_v2();
        /* Still a working device: rings off (in-flight dropped), bus
         * mastering on, clean rings, one request. */
        wr32(VGPU_REG_RING_CTRL, 0);
        clock_step_ns(4000 * 1000000ull);
        for (int i = 0; i < 50; i++) {
            fm_serve();
        }
        bus_master_on();
        wr32(VGPU_REG_IRQ_COALESCE, 0);
        CHECK_EQ(ring_enable(16, 16, G_SQ, G_CQ, 0) & 0xffff,
                 VGPU_RING_STATUS_READY);
        c = one_request(3);
        CHECK_EQ(c.status, VGPU_ERR_NONE);
        printf("    seed %u: 800 random steps; fake mediator saw %u pieces, "
               "%u bad; then a clean request\n",
               seed, fm.pieces, fm.bad);
        qemu_stop();
    }
}

static void case_v2_msix(void)
{
    struct cqe c;

    v2_start(TIMEOUT_PROP, NULL, 16, 16, false);
    msix_setup();
    CHECK(!msi_took(0));
    wr32(VGPU_REG_IRQ_STATUS, VGPU_IRQ_ALL);
    wr32(VGPU_REG_IRQ_CTRL, VGPU_IRQ_CQ | VGPU_IRQ_EVENT | VGPU_IRQ_V1_DONE);
    c = one_request(1);
    CHECK_EQ(c.status, VGPU_ERR_NONE);
    CHECK(msi_took(0));
    CHECK(!msi_took(1));
    CHECK_EQ(rd32(VGPU_REG_IRQ_STATUS), VGPU_IRQ_CQ);
    wr32(VGPU_REG_IRQ_STATUS, VGPU_IRQ_CQ);
    CHECK_EQ(rd32(VGPU_REG_IRQ_STATUS), 0);
    /* disabled: no message, the cause still shows */
    wr32(VGPU_REG_IRQ_CTRL, VGPU_IRQ_EVENT);
    c = one_request(2);
    CHECK(!msi_took(0));
    CHECK_EQ(rd32(VGPU_REG_IRQ_STATUS), VGPU_IRQ_CQ);
    wr32(VGPU_REG_IRQ_CTRL, VGPU_IRQ_CQ | VGPU_IRQ_EVENT | VGPU_IRQ_V1_DONE);
    /* coalescing by count: one message per 4 completions */
    wr32(VGPU_REG_IRQ_COALESCE, VGPU_IRQ_COALESCE_MAKE(4, 10000));
    unsigned msgs = 0;
    for (uint32_t i = 0; i < 8; i++) {
        one_request(10 + i);
        if (msi_took(0)) {
            msgs++;
            CHECK_EQ(i % 4, 3);
        }
    }
    CHECK_EQ(msgs, 2);
    /* by time: held until the virtual clock passes 500 us */
    wr32(VGPU_REG_IRQ_COALESCE, VGPU_IRQ_COALESCE_MAKE(100, 500));
    one_request(20);
    CHECK(!msi_took(0));
    clock_step_ns(400 * 1000);
    CHECK(!msi_took(0));
    clock_step_ns(200 * 1000);
    CHECK(msi_took(0));
    printf("    coalescing: 8 completions, %u messages at count 4; one held "
           "500 us of virtual time\n", msgs);
    /* a completion held back is flushed when the rings stop */
    one_request(21);
    CHECK(!msi_took(0));
    wr32(VGPU_REG_RING_CTRL, 0);
    CHECK(msi_took(0));
    CHECK_EQ(ring_enable(16, 16, G_SQ, G_CQ, 0) & 0xffff,
             VGPU_RING_STATUS_READY);
    wr32(VGPU_REG_IRQ_COALESCE, 0);
    /* v1 completions on the CQ vector */
    {
        struct msg req;
        uint8_t out[VGPU_BUF_SIZE];

        put_vector_add(1, 5);
        wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
        med_recv(&req, VGPU_MSG_REQUEST);
        CHECK(!msi_took(0));
        med_send(VGPU_MSG_RESPONSE, req.h.request_id, 0, out,
                 answer_vector_add(&req, out));
        CHECK_EQ(wait_not_busy(), VGPU_STATUS_DONE);
        CHECK(msi_took(0));
        CHECK(rd32(VGPU_REG_IRQ_STATUS) & VGPU_IRQ_V1_DONE);
    }
    /* the mediator lost: the event vector */
    CHECK(!msi_took(1));
    close(conn_fd);
    conn_fd = -1;
    uint64_t deadline = now_ms() + WAIT_MS;
    while (!(rd32(VGPU_REG_IRQ_STATUS) & VGPU_IRQ_EVENT)) {
        if (now_ms() > deadline) {
            fatal("no EVENT after the mediator went");
        }
        sleep_ms(1);
    }
    CHECK(msi_took(1));
}

/* Wait until n finished requests are at the fake mediator (held). */
static int wait_at_mediator(struct fm_req **r, int n)
{
    uint64_t deadline = now_ms() + WAIT_MS;
    int got;

    while ((got = fm_complete_list(r, 64)) < n) {
        fm_serve();
        if (now_ms() > deadline) {
            fatal("%d of %d requests at the mediator", got, n);
        }
        sleep_ms(1);
    }
    return got;
}

static void case_v2_ring_stop(void)
{
    struct fm_req *r[64];
    uint32_t epoch, seqs[3];
    struct cqe c;

    v2_start(TIMEOUT_PROP, NULL, 8, 8, false);
    fm.hold = true;
    for (uint32_t i = 0; i < 3; i++) {
        struct sqe_args a = simple_req(i, 300 + i, 16, 64);
        sq_put(&a);
    }
    sq_ring();
    wait_at_mediator(r, 3);
    epoch = r[0]->epoch;
    for (int i = 0; i < 3; i++) {
        seqs[i] = r[i]->seq;
    }
    wr32(VGPU_REG_RING_CTRL, 0);
    CHECK_EQ(rd32(VGPU_REG_RING_INFLIGHT), 0);
    CHECK_EQ(rd32(VGPU_REG_SQ_HEAD), 0);
    /* the device cancels them */
    uint64_t deadline = now_ms() + WAIT_MS;
    while (fm.cancels < 3) {
        fm_serve();
        if (now_ms() > deadline) {
            fatal("%u CANCELs", fm.cancels);
        }
        sleep_ms(1);
    }
    /* late answers of that epoch are dropped (chunks still come back) */
    memcpy(fm.map + fm.o.resp_pool_off, "late", 4);
    fm.resp_lent[0] = 1;
    fm_comp_put(&(struct vgpu_shm_ent){.kind = VGPU_SHM_RESP_DATA,
                                       .flags = VGPU_SHM_F_FIRST |
                                                VGPU_SHM_F_LAST,
                                       .epoch = epoch, .seq = seqs[0],
                                       .chunk = 0, .len = 4, .total = 4});
    fm_comp_put(&(struct vgpu_shm_ent){.kind = VGPU_SHM_RESP_ERROR,
                                       .epoch = epoch, .seq = seqs[1],
                                       .status = VGPU_ERR_BACKEND});
    fm_call();
    deadline = now_ms() + WAIT_MS;
    while (fm.resp_lent[0]) {
        fm_serve();
        if (now_ms() > deadline) {
            fatal("the stale RESP_DATA's chunk did not come back");
        }
        sleep_ms(1);
    }
    uint8_t cq[16 * 8], zero[16 * 8] = {0};
    gmem_read(G_CQ, cq, sizeof(cq));
    CHECK(memcmp(cq, zero, sizeof(cq)) == 0); /* nothing written */
    /* a new incarnation */
    CHECK_EQ(ring_enable(8, 8, G_SQ, G_CQ, 0) & 0xffff,
             VGPU_RING_STATUS_READY);
    fm.hold = false;
    c = one_request(7);
    CHECK_EQ(c.tag, 7);
    CHECK_EQ(c.status, VGPU_ERR_NONE);
    CHECK_EQ(c.sq_head, 1);
    CHECK_EQ(fm.bad, 0);
    CHECK(med_sees_eof(0) == false); /* the channel survived it all */
}

static void case_v2_timeout(void)
{
    struct fm_req *r[64];
    struct cqe c;

    v2_start(TIMEOUT_PROP, NULL, 8, 8, false);
    fm.hold = true;
    struct sqe_args a = simple_req(0, 0x71, 16, 64);
    sq_put(&a);
    sq_ring();
    wait_at_mediator(r, 1);
    clock_step_ns((TIMEOUT_MS - 1) * 1000000ull);
    CHECK(no_cqe_within(20));
    clock_step_ns(2 * 1000000ull);
    c = wait_cqe();
    CHECK_EQ(c.tag, 0x71);
    CHECK_EQ(c.status, VGPU_ERR_TIMEOUT);
    uint64_t deadline = now_ms() + WAIT_MS;
    while (fm.cancels < 1) {
        fm_serve();
        if (now_ms() > deadline) {
            fatal("no CANCEL after the timeout");
        }
        sleep_ms(1);
    }
    CHECK_EQ(rd32(VGPU_REG_RING_INFLIGHT), 0);
}

static void case_v2_mediator_lost(void)
{
    struct fm_req *r[64];
    struct cqe c;

    v2_start(TIMEOUT_PROP, NULL, 8, 8, false);
    fm.hold = true;
    for (uint32_t i = 0; i < 4; i++) {
        struct sqe_args a = simple_req(i, 0x400 + i, 16, 64);
        sq_put(&a);
    }
    sq_ring();
    wait_at_mediator(r, 4);
    /* the mediator dies: its socket and its fds go */
    close(conn_fd);
    conn_fd = -1;
    fm_reset();
    for (uint32_t i = 0; i < 4; i++) {
        c = wait_cqe(); /* no clock step: at once */
        CHECK_EQ(c.status, VGPU_ERR_MEDIATOR_LOST);
    }
    CHECK_EQ(rd32(VGPU_REG_RING_INFLIGHT), 0);
    CHECK_EQ(rd32(VGPU_REG_MAX_XFER_LO), (uint32_t)VGPU_XFER_DEFAULT);
    /* a later request reconnects and gets a new channel */
    struct sqe_args a = simple_req(5, 0x405, 16, 64);
    sq_put(&a);
    sq_ring();
    struct msg m;
    med_accept_hello("A", VGPU_PRIO_MEDIUM, 0);
    med_hello_ack("A", VGPU_PRIO_MEDIUM, 0);
    med_recv(&m, VGPU_MSG_SHM_REQ);
    fm_make(&FM_DEFAULT);
    fm_offer();
    c = wait_cqe();
    CHECK_EQ(c.tag, 0x405);
    CHECK_EQ(c.status, VGPU_ERR_NONE);
    check_resp(5, 0x405, 16);
    /* no mediator at all: NO_MEDIATOR at once */
    close(conn_fd);
    conn_fd = -1;
    fm_reset();
    med_unlisten();
    c = one_request(6);
    CHECK_EQ(c.status, VGPU_ERR_NO_MEDIATOR);
}

/* The fake mediator breaks a rule; how the request in flight ends. */
static void hostile_case(int variant)
{
    struct fm_req *r[64];
    struct vgpu_shm_ent e = {0};
    struct cqe c;
    uint32_t want = VGPU_ERR_PROTOCOL;

    v2_start(TIMEOUT_PROP, NULL, 8, 8, false);
    fm.hold = true;
    struct sqe_args a = simple_req(0, 0x99, 16, 64);
    sq_put(&a);
    sq_ring();
    wait_at_mediator(r, 1);
    e.epoch = r[0]->epoch;
    e.seq = r[0]->seq;
    switch (variant) {
    case 0: /* the producer index jumps past the ring */
        fm.comp_prod += fm.o.ring_entries + 1;
        fm_st(VGPU_SHM_OFF_COMP_PROD, fm.comp_prod);
        break;
    case 1:
        e.kind = 99;
        fm_comp_put(&e);
        break;
    case 2:
        e.kind = VGPU_SHM_REQ_CHUNK_DONE;
        e.chunk = fm.o.req_chunks;
        fm_comp_put(&e);
        break;
    case 3: /* all chunks came back already */
        e.kind = VGPU_SHM_REQ_CHUNK_DONE;
        e.chunk = 0;
        fm_comp_put(&e);
        break;
    case 4:
        e.kind = VGPU_SHM_RESP_DATA;
        e.flags = VGPU_SHM_F_FIRST | VGPU_SHM_F_LAST;
        e.len = fm.o.chunk_size + 1;
        e.total = e.len;
        fm_comp_put(&e);
        break;
    case 5:
        e.kind = VGPU_SHM_RESP_DATA;
        e.chunk = fm.o.resp_chunks + 3;
        e.flags = VGPU_SHM_F_FIRST | VGPU_SHM_F_LAST;
        e.len = 8;
        e.total = 8;
        fm_comp_put(&e);
        break;
    case 6: /* RESP total over the request's resp_cap */
        e.kind = VGPU_SHM_RESP_DATA;
        e.flags = VGPU_SHM_F_FIRST;
        e.len = 8;
        e.total = 65;
        fm_comp_put(&e);
        want = VGPU_ERR_RESPONSE_TOO_LARGE;
        break;
    case 7: /* a piece out of order */
        e.kind = VGPU_SHM_RESP_DATA;
        e.flags = VGPU_SHM_F_FIRST;
        e.len = 8;
        e.total = 32;
        fm_comp_put(&e);
        e.flags = 0;
        e.offset = 16;
        fm_comp_put(&e);
        break;
    case 8: /* the sub ring's consumer beyond its producer */
        fm.paused = true;
        fm_st(VGPU_SHM_OFF_SUB_CONS, fm.sub_cons + 5);
        e.kind = VGPU_SHM_RESP_ERROR;
        e.epoch += 1000; /* harmless itself */
        e.status = VGPU_ERR_BACKEND;
        fm_comp_put(&e);
        break;
    default: /* another epoch: dropped, the channel stays */
        e.kind = VGPU_SHM_RESP_ERROR;
        e.epoch += 1;
        e.status = VGPU_ERR_BACKEND;
        fm_comp_put(&e);
        fm_call();
        CHECK(no_cqe_within(100));
        CHECK(!med_sees_eof(0));
        fm_answer(r[0]);
        c = wait_cqe();
        CHECK_EQ(c.status, VGPU_ERR_NONE);
        return;
    }
    fm_call();
    c = wait_cqe();
    CHECK_EQ(c.tag, 0x99);
    CHECK_EQ(c.status, want);
    CHECK(med_sees_eof(WAIT_MS));
    CHECK(log_has("the mediator broke the shared region rules"));
}

static void case_v2_hostile(void)
{
    for (int v = 0; v <= 9 && !case_failed; v++) {
        hostile_case(v);
        if (case_failed) {
            fprintf(stderr, "    (variant %d)\n", v);
        }
        qemu_stop();
    }
}

static void case_v2_bad_offer(void)
{
    for (int v = 0; v < 5 && !case_failed; v++) {
        struct msg m;
        struct cqe c;
        uint8_t p[VGPU_SHM_OFFER_SIZE];

        qemu_start(TIMEOUT_PROP);
        med_listen();
        bus_master_on();
        CHECK_EQ(ring_enable(8, 8, G_SQ, G_CQ, 0) & 0xffff,
                 VGPU_RING_STATUS_READY);
        med_accept_hello("A", VGPU_PRIO_MEDIUM, 0);
        med_hello_ack("A", VGPU_PRIO_MEDIUM, 0);
        med_recv(&m, VGPU_MSG_SHM_REQ);
        /* a request waits for the channel */
        struct sqe_args a = simple_req(0, 0x50 + v, 16, 64);
        sq_put(&a);
        sq_ring();
        CHECK(no_cqe_within(30));
        fm_make(&FM_DEFAULT);
        vgpu_shm_offer_pack(p, &fm.o);
        int fds[5] = {fm.memfd, fm.kick, fm.call, fm.kick, fm.call};
        switch (v) {
        case 0: /* the mediator has no channel for us: its status */
            fm_send_offer(VGPU_ERR_NO_GPU, NULL, 0, NULL, 0);
            c = wait_cqe();
            CHECK_EQ(c.status, VGPU_ERR_NO_GPU);
            round_trip(1, 1); /* v1 still works on that connection */
            qemu_stop();
            fm_reset();
            continue;
        case 1:
            fm_send_offer(0, p, sizeof(p), fds, 2);
            break;
        case 2:
            fm_send_offer(0, p, sizeof(p), fds, 5);
            break;
        case 3: /* the memfd is smaller than the offer says */
            if (ftruncate(fm.memfd, fm.o.region_size / 2) < 0) {
                fatal("ftruncate");
            }
            fm_send_offer(0, p, sizeof(p), fds, 3);
            break;
        default: /* rings overlapping the control block */
            fm.o.sub_off = 64;
            vgpu_shm_offer_pack(p, &fm.o);
            fm_send_offer(0, p, sizeof(p), fds, 3);
            break;
        }
        c = wait_cqe();
        CHECK_EQ(c.status, VGPU_ERR_PROTOCOL);
        CHECK(med_sees_eof(WAIT_MS));
        if (case_failed) {
            fprintf(stderr, "    (variant %d)\n", v);
        }
        qemu_stop();
        fm_reset();
    }
}

/*
 * A v1 request in flight at migration: the source's mediator never
 * answers; the destination sends it to its own, and the guest sees DONE
 * with the answer and its REQUEST_ID tag, once.
 */
static void case_v1_migrate_inflight(void)
{
    char file[160];
    struct msg req;
    uint8_t out[VGPU_BUF_SIZE];
    uint32_t len;

    snprintf(file, sizeof(file), "%s/migrate-v1", tmpdir);
    qemu_start(TIMEOUT_PROP);
    med_listen();
    len = put_vector_add(3, 40);
    wr32(VGPU_REG_REQUEST_ID, 0xabc);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_accept_hello("A", VGPU_PRIO_MEDIUM, 0);
    med_recv(&req, VGPU_MSG_REQUEST);
    CHECK_EQ(rd32(VGPU_REG_STATUS), VGPU_STATUS_BUSY);
    migrate_through(file, TIMEOUT_PROP, true);
    med_accept_hello("A", VGPU_PRIO_MEDIUM, 0);
    med_recv(&req, VGPU_MSG_REQUEST);
    CHECK_EQ(req.h.length, len);
    med_send(VGPU_MSG_RESPONSE, req.h.request_id, 0, out,
             answer_vector_add(&req, out));
    map_bar0();
    CHECK_EQ(wait_not_busy(), VGPU_STATUS_DONE);
    CHECK_STATUS(VGPU_STATUS_DONE, VGPU_ERR_NONE);
    CHECK_EQ(rd32(VGPU_REG_REQUEST_ID), 0xabc);
    CHECK_EQ(rd32(VGPU_REG_RESPONSE_LEN), VGPU_VECTOR_ADD_RESP_LEN(3));
    CHECK_EQ(rd32(VGPU_RESP_BUF_OFFSET + 8), 40);
    CHECK_EQ(rd32(VGPU_RESP_BUF_OFFSET + 16), 2042);
    /* nothing more is sent: the request went once to this mediator */
    struct pollfd p = {.fd = conn_fd, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 50), 0);
    unlink(file);
}

/*
 * While the VM is stopped (QMP stop, as before a migration's or a
 * suspend's device state is saved) answers wait: neither the v1 registers
 * nor the guest's CQ change until cont.
 */
static void case_stopped_vm_waits(void)
{
    struct fm_req *r[64];
    struct msg req;
    uint8_t out[VGPU_BUF_SIZE];
    uint64_t deadline;

    v2_start(TIMEOUT_PROP, NULL, 8, 8, false);
    fm.hold = true;
    struct sqe_args a = simple_req(0, 0x700, 16, 64);
    sq_put(&a);
    sq_ring();
    wait_at_mediator(r, 1);
    put_vector_add(1, 7);
    wr32(VGPU_REG_DOORBELL, VGPU_DOORBELL_SUBMIT);
    med_recv(&req, VGPU_MSG_REQUEST);
    qmp_cmd("{\"execute\": \"qmp_capabilities\"}\n");
    qmp_cmd("{\"execute\": \"stop\"}\n");
    fm_answer(r[0]);
    med_send(VGPU_MSG_RESPONSE, req.h.request_id, 0, out,
             answer_vector_add(&req, out));
    CHECK(no_cqe_within(100));
    CHECK_EQ(rd32(VGPU_REG_STATUS), VGPU_STATUS_BUSY);
    qmp_cmd("{\"execute\": \"cont\"}\n");
    struct cqe c = wait_cqe();
    CHECK_EQ(c.tag, 0x700);
    CHECK_EQ(c.status, VGPU_ERR_NONE);
    check_resp(0, 0x700, 16);
    deadline = now_ms() + WAIT_MS;
    while (rd32(VGPU_REG_STATUS) == VGPU_STATUS_BUSY && now_ms() < deadline) {
        sleep_ms(1);
    }
    CHECK_STATUS(VGPU_STATUS_DONE, VGPU_ERR_NONE);
    CHECK_EQ(rd32(VGPU_RESP_BUF_OFFSET + 8), 7);
}

static void case_v2_migrate(void)
{
    char file[160];
    struct fm_req *r[64];

    snprintf(file, sizeof(file), "%s/migrate-v2", tmpdir);
    v2_start(TIMEOUT_PROP, NULL, 8, 8, false);
    fm.hold = true;
    for (uint32_t i = 0; i < 2; i++) {
        struct sqe_args a = simple_req(i, 0x600 + i, 16, 64);
        sq_put(&a);
    }
    sq_ring();
    wait_at_mediator(r, 2);
    wr32(VGPU_REG_IRQ_CTRL, VGPU_IRQ_CQ);
    migrate_through(file, TIMEOUT_PROP, true);
    fm_reset();
    /*
     * The destination sends both again, to its own mediator (the source's
     * never answered), and the guest gets each answer once.
     */
    struct msg m;
    bool seen[2] = {false, false};

    med_accept_hello("A", VGPU_PRIO_MEDIUM, 0);
    med_hello_ack("A", VGPU_PRIO_MEDIUM, 0);
    med_recv(&m, VGPU_MSG_SHM_REQ);
    fm_make(&FM_DEFAULT);
    fm_offer();
    for (uint32_t i = 0; i < 2; i++) {
        struct cqe c = wait_cqe_db(false);
        uint32_t slot = c.tag - 0x600;

        CHECK_EQ(c.status, VGPU_ERR_NONE);
        CHECK_EQ(c.resp_len, 16);
        CHECK(slot < 2 && !seen[slot]);
        if (slot < 2) {
            seen[slot] = true;
            check_resp(slot, c.tag, 16);
        }
    }
    CHECK(no_cqe_within(50));
    CHECK_EQ(fm.firsts, 2);
    map_bar0();
    CHECK_EQ(rd32(VGPU_REG_RING_CTRL), VGPU_RING_CTRL_ENABLE);
    CHECK_EQ(rd32(VGPU_REG_SQ_SIZE), 8);
    CHECK_EQ(rd32(VGPU_REG_SQ_HEAD), 2);
    CHECK_EQ(rd32(VGPU_REG_CQ_TAIL), 2);
    CHECK_EQ(rd32(VGPU_REG_RING_INFLIGHT), 0);
    CHECK_EQ(rd32(VGPU_REG_IRQ_CTRL), VGPU_IRQ_CQ);
    unlink(file);
}

/*
 * A stream from a source qemu-dm the guest may own: the first re-sent SQE
 * (the resend subsection's first entry) names a misaligned request SG
 * list.  The destination checks it as an SQE the guest wrote.
 */
static void tamper_first_resend_sqe(const char *file)
{
    static const char name[] = VGPU_DEVICE_TYPE "/resend";
    FILE *f = fopen(file, "r+b");
    static uint8_t buf[4 << 20];
    size_t n, at;
    uint8_t *p = NULL;

    if (!f) {
        fatal("open %s: %s", file, strerror(errno));
    }
    n = fread(buf, 1, sizeof(buf), f);
    for (at = 0; at + sizeof(name) < n; at++) {
        if (!memcmp(buf + at, name, sizeof(name) - 1)) {
            p = buf + at + sizeof(name) - 1 + 4; /* the name, version_id */
            break;
        }
    }
    if (!p || p + VGPU_SQE_SIZE > buf + n) {
        fatal("no %s subsection in the stream", name);
    }
    /* little-endian, as the device writes it: the low byte moves it 8 on */
    p[VGPU_SQE_OFF_REQ_SG_ADDR] ^= 0x8;
    if (fseek(f, (long)(p - buf + VGPU_SQE_OFF_REQ_SG_ADDR), SEEK_SET) ||
        fwrite(p + VGPU_SQE_OFF_REQ_SG_ADDR, 1, 1, f) != 1) {
        fatal("cannot rewrite %s", file);
    }
    fclose(f);
}

static void case_v2_migrate_tampered(void)
{
    char file[160];
    struct fm_req *r[64];
    struct msg m;
    struct cqe c[2];

    snprintf(file, sizeof(file), "%s/migrate-v2-bad", tmpdir);
    v2_start(TIMEOUT_PROP, NULL, 8, 8, false);
    fm.hold = true;
    for (uint32_t i = 0; i < 2; i++) {
        struct sqe_args a = simple_req(i, 0x700 + i, 16, 64);
        sq_put(&a);
    }
    sq_ring();
    wait_at_mediator(r, 2);
    mig_tamper = tamper_first_resend_sqe;
    migrate_through(file, TIMEOUT_PROP, true);
    mig_tamper = NULL;
    fm_reset();
    med_accept_hello("A", VGPU_PRIO_MEDIUM, 0);
    med_hello_ack("A", VGPU_PRIO_MEDIUM, 0);
    med_recv(&m, VGPU_MSG_SHM_REQ);
    fm_make(&FM_DEFAULT);
    fm_offer();
    c[0] = wait_cqe_db(false);
    c[1] = wait_cqe_db(false);
    if (c[0].tag != 0x700) {
        struct cqe t = c[0];

        c[0] = c[1];
        c[1] = t;
    }
    /* The tampered one: BAD_SG, and it never reached the mediator. */
    CHECK_EQ(c[0].tag, 0x700);
    CHECK_EQ(c[0].status, VGPU_ERR_BAD_SG);
    CHECK_EQ(c[0].resp_len, 0);
    /* The other: answered once, as sent. */
    CHECK_EQ(c[1].tag, 0x701);
    CHECK_EQ(c[1].status, VGPU_ERR_NONE);
    CHECK_EQ(c[1].resp_len, 16);
    check_resp(1, 0x701, 16);
    CHECK(no_cqe_within(50));
    CHECK_EQ(fm.firsts, 1);
    map_bar0();
    CHECK_EQ(rd32(VGPU_REG_RING_CTRL), VGPU_RING_CTRL_ENABLE);
    CHECK_EQ(rd32(VGPU_REG_RING_INFLIGHT), 0);
    /* and the device goes on serving */
    struct sqe_args a = simple_req(0, 0x702, 16, 64);
    sq_put(&a);
    sq_ring();
    c[0] = wait_cqe_db(false);
    CHECK_EQ(c[0].tag, 0x702);
    CHECK_EQ(c[0].status, VGPU_ERR_NONE);
    unlink(file);
}

struct test_case {
    const char *name;
    void (*fn)(void);
};

static const struct test_case cases[] = {
    {"register defaults from properties", case_defaults},
    {"property defaults (A, medium, 0)", case_default_props},
    {"VECTOR_ADD round trip", case_round_trip},
    {"x-stat-* counters: BAR0 accesses, completions, no IRQ on v1",
     case_stat_counters},
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
    {"v2: ring registers (defaults, RW, read-only, refused while running)",
     case_v2_registers},
    {"v2: bad ring geometry refused at enable (BAD_RING)", case_v2_bad_rings},
    {"v2: ring round trip through the shared region", case_v2_round_trip},
    {"v2: bad SQEs and SG lists, bad doorbells", case_v2_bad_sqes},
    {"v2: many in flight, out of order, CQ bound, phase over wraps",
     case_v2_out_of_order},
    {"v2: 3 MB request through 4 chunks, 1 MB response through 2",
     case_v2_stream_big},
    {"v2: doorbell buffer: no MMIO while busy, event index",
     case_v2_dbbuf},
    {"v2: MSI-X delivery, IRQ_CTRL/IRQ_STATUS, coalescing", case_v2_msix},
    {"v2: random ring, SG, doorbell and DMA sequences (4 seeds x 800)",
     case_v2_random},
    {"v2: ring stop drops in-flight completions (epoch), CANCEL",
     case_v2_ring_stop},
    {"v2: per-request timeout -> TIMEOUT + CANCEL", case_v2_timeout},
    {"v2: mediator killed -> MEDIATOR_LOST, new channel on reconnect",
     case_v2_mediator_lost},
    {"v2: hostile region contents -> PROTOCOL, channel dropped",
     case_v2_hostile},
    {"v2: refused and bad SHM_OFFERs", case_v2_bad_offer},
    {"v2: requests in flight at migration are sent again there, once",
     case_v2_migrate},
    {"v2: a re-sent SQE with a bad SG list from a tampered stream: BAD_SG, "
     "the other answered, the device serves on",
     case_v2_migrate_tampered},
    {"v1: the request in flight at migration is sent again there, once",
     case_v1_migrate_inflight},
    {"stopped VM: answers wait until cont (v1 and v2)",
     case_stopped_vm_waits},
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
