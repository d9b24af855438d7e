/*
 * test-mediator.c - integration test of vgpu-mediator with simulated
 * vgpu-stub devices.
 *
 * It runs the real daemon against a real qemu-root folder and the test
 * xenstore server (real wire protocol; this test and the mediator both
 * use the real libxenstore through XENSTORED_PATH), and plays qemu-dm's
 * device on each domain's socket: good requests, every malformed message,
 * domains appearing and going away, identity changes in xenstore, peer
 * credentials, and the order in which queued requests of different
 * priorities run.
 *
 * Usage: test-mediator [BUILD_DIR]   (default: the folder above this
 * program's own, which holds mediator/ and xs-server/)
 * VGPU_MEDIATOR_BIN=PROGRAM drives another mediator than BUILD_DIR's
 * (test-mediator-glibc217: the glibc 2.17 build, through its loader).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <xenstore.h>

#include "harness.h"
#include "mediator.h"
#include "vgpu_protocol.h"

/* The per-VM queue limit the mediator is started with (--max-queued),
 * not its default, and the requests sent at once to overflow it. */
#define TEST_MAX_QUEUED (MEDIATOR_MAX_QUEUED_PER_VM - 2)
#define TEST_MAX_QUEUED_STR "6"
#define MEDIATOR_QUEUE_PROBE (TEST_MAX_QUEUED + 3)
_Static_assert(TEST_MAX_QUEUED == 6, "TEST_MAX_QUEUED_STR says 6");

static int passed, failed;
/* The binaries and the scratch folder. */
static struct harness ctx;
static char qroot[PATH_MAX], mlog[PATH_MAX];
static char status_file[PATH_MAX], admin_sock[PATH_MAX];
/* A pools file that does not exist: the defaults, whatever /etc holds. */
static char no_pools[PATH_MAX];
static pid_t xs_pid = -1, med_pid = -1;
static struct xs_handle *xs;


/* ---------------------------------------------------------------------- */
/* processes                                                               */
/* ---------------------------------------------------------------------- */

/* Start the mediator with the common options plus extra (NULL-ended). */
static pid_t start_mediator_with(const char *const *extra)
{
    const char *argv[32] = {
        ctx.mediator_bin, "--qemu-root",      qroot,           "--log",
        "stderr",         "--verbose",        "--status-file", status_file,
        "--admin-socket", admin_sock,         "--pools",       no_pools,
        "--max-queued",   TEST_MAX_QUEUED_STR};
    size_t n = 14;
    pid_t pid;

    while (extra && *extra && n < 31) {
        argv[n++] = *extra++;
    }
    argv[n] = NULL;
    pid = fork();
    if (pid == 0) {
        int fd = open(mlog, O_WRONLY | O_CREAT | O_APPEND, 0644);

        dup2(fd, 2);
        execv(ctx.mediator_bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static pid_t start_mediator(void)
{
    return start_mediator_with(NULL);
}

/*
 * Freeze the mediator and wait until it really is stopped (kill() returns
 * before the signal is delivered), so that everything sent next waits for
 * one epoll batch.
 */
static void freeze_mediator(void)
{
    char path[64], buf[256];
    long end = harness_now_ms() + 5000;

    kill(med_pid, SIGSTOP);
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)med_pid);
    while (harness_now_ms() < end) {
        FILE *f = fopen(path, "r");
        char *p = NULL;

        if (f && fgets(buf, sizeof(buf), f)) {
            p = strrchr(buf, ')');
        }
        if (f) {
            fclose(f);
        }
        if (p && p[1] == ' ' && p[2] == 'T') {
            return;
        }
        harness_sleep_ms(1);
    }
    fprintf(stderr, "mediator did not stop\n");
}

static void sock_path(char *out, size_t cap, uint32_t domid)
{
    harness_sock_path(out, cap, qroot, domid);
}

/* Does the mediator's log contain text (appearing within timeout_ms)? */
static bool log_has(const char *text, int timeout_ms)
{
    return harness_file_has(mlog, text, timeout_ms);
}

/* Does a line with `first` come before any line with `second`? */
static bool log_line_before(const char *first, const char *second)
{
    FILE *f = fopen(mlog, "r");
    char line[1024];
    long a = -1, b = -1;

    for (long ln = 0; f && fgets(line, sizeof(line), f); ln++) {
        if (a < 0 && strstr(line, first)) {
            a = ln;
        }
        if (b < 0 && strstr(line, second)) {
            b = ln;
        }
    }
    if (f) {
        fclose(f);
    }
    return a >= 0 && b >= 0 && a < b;
}

/* ---------------------------------------------------------------------- */
/* xenstore                                                                */
/* ---------------------------------------------------------------------- */

static void xs_set(uint32_t domid, const char *key, const char *val)
{
    harness_xs_set(&ctx, xs, domid, key, val);
}

static void assign(uint32_t domid, const char *pool, const char *prio,
                   const char *vm_id)
{
    xs_set(domid, VGPU_XS_KEY_POOL, pool);
    xs_set(domid, VGPU_XS_KEY_PRIORITY, prio);
    xs_set(domid, VGPU_XS_KEY_VM_ID, vm_id);
}

/* A domain starts: xenstored learns of it, then its chroot folder. */
static void make_domain_dir(uint32_t domid)
{
    char path[PATH_MAX];

    if (!xs_introduce_domain(xs, domid, 0, 0)) {
        fprintf(stderr, "xs_introduce_domain %u: %s\n", domid, strerror(errno));
    }
    snprintf(path, sizeof(path), "%s/root-%u", qroot, domid);
    mkdir(path, 0755);
}

/* ---------------------------------------------------------------------- */
/* a simulated device                                                      */
/* ---------------------------------------------------------------------- */

static int dev_connect(uint32_t domid)
{
    char path[PATH_MAX];

    sock_path(path, sizeof(path), domid);
    return harness_dev_connect(path);
}

/* 0: got a message; -1: EOF/timeout. */
static int read_reply(int fd, struct harness_reply *r)
{
    return harness_read_reply(fd, r, 5000);
}

/* Is the connection closed by the peer (EOF within 5 s)?  Messages sent
 * before the close (an identity pushed just then) are read past. */
static bool closed_by_peer(int fd)
{
    long deadline = harness_now_ms() + 5000;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c[256];
    long left;

    while ((left = deadline - harness_now_ms()) > 0) {
        ssize_t n;

        if (poll(&p, 1, (int)left) != 1) {
            return false;
        }
        n = recv(fd, c, sizeof(c), MSG_DONTWAIT);
        if (n == 0) {
            return true;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return errno == ECONNRESET;
        }
    }
    return false;
}

static int dev_open(uint32_t domid, struct harness_reply *ack)
{
    int fd = dev_connect(domid);

    /* The device claims pool B, priority high, VM-ID 999: all ignored. */
    if (fd < 0 || !harness_send_hello(fd, "B", VGPU_PRIO_HIGH, 999) ||
        read_reply(fd, ack) || ack->type != VGPU_MSG_HELLO_ACK) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

static size_t make_sgemm(uint8_t *buf, uint32_t req_id, uint32_t n,
                         uint32_t seed)
{
    size_t len = harness_make_hdr(buf, VGPU_MSG_REQUEST, req_id, 12);

    harness_put32(buf + len, VGPU_OP_SGEMM);
    harness_put32(buf + len + 4, n);
    harness_put32(buf + len + 8, seed);
    return len + 12;
}

/* Run a + b on domid's open connection; the reply lands in *r. */
static int dev_add(int fd, uint32_t req_id, int32_t a, int32_t b,
                   struct harness_reply *r)
{
    uint8_t buf[64];
    size_t n = harness_make_add(buf, req_id, VGPU_OP_VECTOR_ADD, a, b);

    if (!harness_send_all(fd, buf, n)) {
        return -1;
    }
    return read_reply(fd, r);
}

static int32_t reply_sum(const struct harness_reply *r)
{
    return (int32_t)harness_get32(r->payload + 8);
}

/* The fields of a HELLO_ACK (vgpu/msg.h); a pool that is no name is "?". */
static const char *ack_pool(const struct harness_reply *r)
{
    static char pool[VGPU_POOL_NAME_SIZE];

    if (harness_hello_pool(r, pool)) {
        snprintf(pool, sizeof(pool), "?");
    }
    return pool;
}

static uint32_t ack_prio(const struct harness_reply *r)
{
    return harness_get32(r->payload + VGPU_HELLO_OFF_PRIORITY);
}

static uint32_t ack_vm_id(const struct harness_reply *r)
{
    return harness_get32(r->payload + VGPU_HELLO_OFF_VM_ID);
}

/* ---------------------------------------------------------------------- */
/* cases                                                                   */
/* ---------------------------------------------------------------------- */

/* A "Name:\tHEX" line of /proc/PID/task/TID/status, or ~0 when absent. */
static unsigned long long task_status_hex(const char *task, const char *name)
{
    char path[PATH_MAX], line[256];
    unsigned long long v = ~0ull;
    size_t n = strlen(name);
    FILE *f;

    snprintf(path, sizeof(path), "%s/status", task);
    f = fopen(path, "re");
    if (!f) {
        return v;
    }
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, name, n) && line[n] == ':') {
            v = strtoull(line + n + 1, NULL, 16);
            break;
        }
    }
    fclose(f);
    return v;
}

/*
 * privdrop.c: after start every thread of the daemon (xenstore's, the
 * backend's workers) has only CAP_CHOWN and CAP_DAC_OVERRIDE, in every
 * set and the bounding set, and no_new_privs; the other cases show it
 * still does its work with that (dom2's folder belongs to uid 4242).
 */
static void case_privileges_dropped(void)
{
    const unsigned long long keep = (1ull << 0) | (1ull << 1);
    char dir[64], task[PATH_MAX];
    struct dirent *e;
    int tasks = 0;
    DIR *d;

    printf("case: privileges dropped in every thread: CAP_CHOWN and "
           "CAP_DAC_OVERRIDE kept, bounding set emptied, no_new_privs\n");
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)med_pid);
    d = opendir(dir);
    if (!d) {
        CHECK(0, "%s: %s", dir, strerror(errno));
        return;
    }
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(task, sizeof(task), "%s/%s", dir, e->d_name);
        tasks++;
        CHECK(task_status_hex(task, "CapEff") == keep &&
                  task_status_hex(task, "CapPrm") == keep &&
                  task_status_hex(task, "CapBnd") == keep &&
                  task_status_hex(task, "CapInh") == 0 &&
                  task_status_hex(task, "NoNewPrivs") == 1,
              "thread %s: CapEff %llx CapPrm %llx CapBnd %llx NoNewPrivs %llx",
              e->d_name, task_status_hex(task, "CapEff"),
              task_status_hex(task, "CapPrm"), task_status_hex(task, "CapBnd"),
              task_status_hex(task, "NoNewPrivs"));
    }
    closedir(d);
    CHECK(tasks >= 2, "only %d thread(s) seen", tasks);
    CHECK(log_has("privileges dropped: uid 0 with only CAP_CHOWN "
                  "CAP_DAC_OVERRIDE",
                  2000),
          "the drop is not logged");
}

static void case_sockets_created(void)
{
    char path[PATH_MAX];
    struct stat st;

    printf("case: sockets in each root-<domid>, mode 0600, folder's owner\n");
    sock_path(path, sizeof(path), 1);
    CHECK(harness_wait_path(path, true, 5000), "%s missing", path);
    CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode), "not a socket");
    CHECK((st.st_mode & 0777) == 0600, "mode %o", st.st_mode & 0777);
    sock_path(path, sizeof(path), 2);
    CHECK(harness_wait_path(path, true, 5000), "%s missing", path);
    CHECK(lstat(path, &st) == 0 && st.st_uid == 4242,
          "owner %u (folder owner is 4242)", (unsigned)st.st_uid);
}

static void case_identity_from_xenstore(void)
{
    struct harness_reply ack;
    int fd = dev_open(1, &ack);

    printf("case: HELLO_ACK carries xenstore's identity, not the device's\n");
    CHECK(fd >= 0, "no HELLO_ACK");
    if (fd < 0) {
        return;
    }
    CHECK(ack.length == VGPU_MSG_HELLO_SIZE, "ack length %u", ack.length);
    CHECK(strcmp(ack_pool(&ack), "A") == 0, "pool %s", ack_pool(&ack));
    CHECK(ack_prio(&ack) == VGPU_PRIO_HIGH, "prio %u", ack_prio(&ack));
    CHECK(ack_vm_id(&ack) == 1, "vm-id %u", ack_vm_id(&ack));
    CHECK(ack.vm_id == 1, "header vm_id %u", ack.vm_id);
    close(fd);
}

static void case_vector_add_two_vms(void)
{
    struct harness_reply ack, r1, r2;
    int fd1 = dev_open(1, &ack), fd2 = dev_open(2, &ack);

    printf("case: VECTOR_ADD for two domains: 300 and 900\n");
    CHECK(fd1 >= 0 && fd2 >= 0, "connect");
    CHECK(dev_add(fd1, 11, 100, 200, &r1) == 0, "no reply dom1");
    CHECK(dev_add(fd2, 12, 400, 500, &r2) == 0, "no reply dom2");
    CHECK(r1.type == VGPU_MSG_RESPONSE && r1.status == 0 &&
              r1.request_id == 11 && reply_sum(&r1) == 300,
          "dom1 got type %u status %u id %u sum %d", r1.type, r1.status,
          r1.request_id, reply_sum(&r1));
    CHECK(r2.status == 0 && r2.request_id == 12 && reply_sum(&r2) == 900 &&
              r2.vm_id == 2,
          "dom2 got status %u sum %d vm %u", r2.status, reply_sum(&r2),
          r2.vm_id);
    CHECK(r1.length == VGPU_VECTOR_ADD_RESP_LEN(1), "len %u", r1.length);
    close(fd1);
    close(fd2);
}

static void case_request_errors_keep_connection(void)
{
    struct harness_reply ack, r;
    uint8_t buf[64];
    int fd = dev_open(1, &ack);
    size_t n;

    printf("case: bad opcode / bad payload get an error reply, "
           "connection kept\n");
    n = harness_make_add(buf, 21, 0xdead, 1, 2);
    CHECK(harness_send_all(fd, buf, n) && read_reply(fd, &r) == 0 &&
              r.type == VGPU_MSG_RESPONSE && r.status == VGPU_ERR_BAD_OPCODE &&
              r.request_id == 21 && r.length == 0,
          "status %u", r.status);
    n = harness_make_add(buf, 22, VGPU_OP_VECTOR_ADD, 1, 2);
    harness_put32(buf + VGPU_MSG_HDR_SIZE + 4, 5); /* count 5, one pair given */
    CHECK(harness_send_all(fd, buf, n) && read_reply(fd, &r) == 0 &&
              r.status == VGPU_ERR_BAD_REQUEST,
          "status %u", r.status);
    /* A payload shorter than a request header. */
    n = harness_make_hdr(buf, VGPU_MSG_REQUEST, 23, 4);
    memset(buf + n, 0, 4);
    CHECK(harness_send_all(fd, buf, n + 4) && read_reply(fd, &r) == 0 &&
              r.status == VGPU_ERR_BAD_REQUEST,
          "status %u", r.status);
    CHECK(dev_add(fd, 24, 5, 6, &r) == 0 && r.status == 0 &&
              reply_sum(&r) == 11,
          "still served after errors");
    close(fd);
}

/* Send a broken message on a fresh connection; expect ERROR + close. */
static void expect_protocol_error(const char *what, const uint8_t *msg,
                                  size_t len, bool hello_first)
{
    struct harness_reply ack, r = {0}, ok;
    int fd = hello_first ? dev_open(1, &ack) : dev_connect(1);
    int other;

    printf("case: %s -> ERROR(PROTOCOL), connection closed, others served\n",
           what);
    CHECK(fd >= 0, "connect");
    CHECK(harness_send_all(fd, msg, len), "send");
    CHECK(read_reply(fd, &r) == 0 && r.type == VGPU_MSG_ERROR &&
              r.status == VGPU_ERR_PROTOCOL,
          "got type %u status %u", r.type, r.status);
    CHECK(closed_by_peer(fd), "connection still open");
    close(fd);
    other = dev_open(2, &ack);
    CHECK(other >= 0 && dev_add(other, 1, 2, 3, &ok) == 0 &&
              reply_sum(&ok) == 5,
          "other domain not served");
    close(other);
}

static void case_protocol_errors(void)
{
    uint8_t buf[VGPU_MSG_MAX_SIZE + 64];
    size_t n;

    n = harness_make_add(buf, 1, VGPU_OP_VECTOR_ADD, 1, 2);
    buf[0] ^= 0x5a;
    expect_protocol_error("bad magic", buf, n, true);

    n = harness_make_add(buf, 1, VGPU_OP_VECTOR_ADD, 1, 2);
    buf[4] = 9;
    expect_protocol_error("bad version", buf, n, true);

    /* A device of the letter-pool protocol (version 1): its HELLO is
     * refused, and the log says which versions met. */
    {
        struct vgpu_msg_hdr h = vgpu_msg_hdr_make(VGPU_MSG_HELLO, 0, 1, 0, 16);

        h.version = 1;
        vgpu_msg_hdr_pack(buf, &h);
        memset(buf + VGPU_MSG_HDR_SIZE, 0, 16);
        buf[VGPU_MSG_HDR_SIZE] = 'A';
        expect_protocol_error("a version 1 device's HELLO", buf,
                              VGPU_MSG_HDR_SIZE + 16, false);
        char want[96];

        snprintf(want, sizeof(want),
                 "speaks socket protocol version 1, this mediator %u",
                 VGPU_MSG_VERSION);
        CHECK(log_has(want, 3000),
              "the version mismatch is not logged as such");
    }

    n = harness_make_hdr(buf, 77, 1, 0);
    expect_protocol_error("unknown type", buf, n, true);

    n = harness_make_hdr(buf, VGPU_MSG_RESPONSE, 1, 0);
    expect_protocol_error("type meant for the device", buf, n, true);

    n = harness_make_hdr(buf, VGPU_MSG_REQUEST, 1, VGPU_MSG_MAX_PAYLOAD + 1);
    expect_protocol_error("oversize length", buf, n, true);

    n = harness_make_hdr(buf, VGPU_MSG_REQUEST, 1, 0xffffffffu);
    expect_protocol_error("length 4 GB", buf, n, true);

    n = harness_make_add(buf, 1, VGPU_OP_VECTOR_ADD, 1, 2);
    expect_protocol_error("REQUEST before HELLO", buf, n, false);

    n = harness_make_hdr(buf, VGPU_MSG_HELLO, 0, 3);
    memset(buf + n, 0, 3);
    expect_protocol_error("HELLO of the wrong size", buf, n + 3, false);
}

static void case_truncated_then_closed(void)
{
    struct harness_reply ack, r;
    uint8_t buf[64];
    int fd = dev_open(1, &ack), other;
    size_t n = harness_make_add(buf, 5, VGPU_OP_VECTOR_ADD, 1, 2);

    printf("case: payload truncated by a close: mediator keeps serving\n");
    CHECK(harness_send_all(fd, buf, n - 6), "send");
    close(fd);
    CHECK(log_has("truncated", 3000), "truncation not logged");
    other = dev_open(1, &ack);
    CHECK(other >= 0 && dev_add(other, 6, 7, 8, &r) == 0 && reply_sum(&r) == 15,
          "domain not served after truncation");
    close(other);
}

static void case_new_connection_replaces_old(void)
{
    struct harness_reply ack, r;
    int a = dev_open(2, &ack), b = dev_open(2, &ack);

    printf("case: a second connection replaces the first (qemu "
           "reconnected)\n");
    CHECK(a >= 0 && b >= 0, "connect");
    CHECK(closed_by_peer(a), "old connection not closed");
    CHECK(dev_add(b, 1, 1, 1, &r) == 0 && reply_sum(&r) == 2, "new served");
    close(a);
    close(b);
}

/*
 * A new connection replaces the old one while an event of the old one
 * waits in the same epoll batch: the daemon stopped (SIGSTOP) between a
 * connect and a request on the first connection, so one batch holds both.
 * Before the fix the old connection was freed at the accept and its event
 * then ran through freed memory (ASan: heap-use-after-free).
 */
static void case_replaced_in_one_batch(void)
{
    struct harness_reply ack, r;
    uint8_t buf[64];
    int a, b;
    int status;

    printf("case: a connection replaced while its event waits in the same "
           "epoll batch (no use after free)\n");
    a = dev_open(1, &ack);
    CHECK(a >= 0, "connect");
    /* Idle in epoll_wait first: nothing of the first connection left on
     * epoll's ready list, so the listener's event comes first. */
    harness_sleep_ms(50);
    freeze_mediator();
    b = dev_connect(1);
    harness_sleep_ms(20); /* the listener ready first, then the old one */
    harness_send_all(a, buf,
                     harness_make_add(buf, 5, VGPU_OP_VECTOR_ADD, 1, 2));
    harness_sleep_ms(50); /* both in the listen and the conn queue */
    kill(med_pid, SIGCONT);
    CHECK(b >= 0 && harness_send_hello(b, "A", VGPU_PRIO_LOW, 1) &&
              read_reply(b, &ack) == 0 && ack.type == VGPU_MSG_HELLO_ACK,
          "the new connection got no HELLO_ACK");
    /* The batch's order decides whether request 5 was answered before
     * the old connection closed: either is right, a close must follow. */
    if (harness_read_reply(a, &r, 2000) == 0) {
        CHECK(r.type == VGPU_MSG_RESPONSE && reply_sum(&r) == 3,
              "the old connection got something else (type %u)", r.type);
    }
    CHECK(closed_by_peer(a), "old connection not closed");
    CHECK(dev_add(b, 1, 20, 22, &r) == 0 && reply_sum(&r) == 42,
          "new connection not served");
    CHECK(waitpid(med_pid, &status, WNOHANG) == 0, "the mediator died");
    close(a);
    close(b);
}

/*
 * A job belongs to the connection that sent it.  A qemu-dm that restarts
 * while its SGEMM runs connects again and restarts its request ids at 1:
 * the new connection's first answer must be its own VECTOR_ADD, never the
 * old SGEMM's result under the same id (the device would hand it to the
 * guest as its own).
 */
static void case_completion_of_gone_connection(void)
{
    struct harness_reply ack, r;
    uint8_t buf[64];
    int a, b;

    printf("case: a completion for a replaced connection is dropped, never "
           "delivered to the new one\n");
    a = dev_open(1, &ack);
    CHECK(a >= 0, "connect");
    /* Id 77 on both connections: a log line of this case only. */
    harness_send_all(a, buf, make_sgemm(buf, 77, 1024, 9));
    CHECK(log_has("dom1: started request 77 on GPU", 5000),
          "the SGEMM did not start");
    b = dev_open(1, &ack);
    CHECK(b >= 0, "reconnect");
    CHECK(dev_add(b, 77, 100, 200, &r) == 0, "no answer on the new one");
    CHECK(r.type == VGPU_MSG_RESPONSE && r.status == 0 &&
              r.length == VGPU_VECTOR_ADD_RESP_LEN(1) &&
              harness_get32(r.payload) == VGPU_OP_VECTOR_ADD &&
              reply_sum(&r) == 300,
          "the new connection's request 77 got another answer (opcode %u, "
          "length %u)",
          harness_get32(r.payload), r.length);
    CHECK(log_has("dom1: request 77 finished after the connection that sent "
                  "it left: dropped",
                  10000),
          "the old SGEMM's completion was not dropped");
    CHECK(harness_read_reply(b, &r, 500) != 0,
          "a second answer reached the new connection");
    close(a);
    close(b);
}

static void case_unassigned_then_assigned(void)
{
    char path[PATH_MAX];
    struct harness_reply ack, r;
    int fd;

    printf("case: domain without xenstore keys gets NOT_ASSIGNED, then is "
           "served once dom0 writes them\n");
    make_domain_dir(3);
    sock_path(path, sizeof(path), 3);
    CHECK(harness_wait_path(path, true, 5000), "socket for a new folder");
    fd = dev_open(3, &ack);
    CHECK(fd >= 0 && strcmp(ack_pool(&ack), "") == 0, "ack pool %s",
          ack_pool(&ack));
    CHECK(dev_add(fd, 1, 1, 2, &r) == 0 && r.status == VGPU_ERR_NOT_ASSIGNED,
          "status %u", r.status);
    assign(3, "B", "low", "3");
    /* The xenstore watch pushes a fresh HELLO_ACK. */
    CHECK(read_reply(fd, &ack) == 0 && ack.type == VGPU_MSG_HELLO_ACK &&
              strcmp(ack_pool(&ack), "B") == 0 &&
              ack_prio(&ack) == VGPU_PRIO_LOW && ack_vm_id(&ack) == 3,
          "no updated HELLO_ACK");
    CHECK(dev_add(fd, 2, 1, 2, &r) == 0 && r.status == 0 && reply_sum(&r) == 3,
          "status %u", r.status);
    /* Invalid values make it unassigned again. */
    xs_set(3, VGPU_XS_KEY_PRIORITY, "urgent");
    CHECK(read_reply(fd, &ack) == 0 && strcmp(ack_pool(&ack), "") == 0,
          "invalid priority accepted");
    CHECK(log_has("dom3: not assigned: invalid priority in xenstore", 3000),
          "not logged");
    xs_set(3, VGPU_XS_KEY_PRIORITY, "low");
    CHECK(read_reply(fd, &ack) == 0 && strcmp(ack_pool(&ack), "B") == 0,
          "not re-assigned");
    close(fd);
}

static void case_priority_change_followed(void)
{
    struct harness_reply ack;
    int fd = dev_open(3, &ack);

    printf("case: a priority change in xenstore reaches the device\n");
    xs_set(3, VGPU_XS_KEY_PRIORITY, "high");
    CHECK(fd >= 0 && read_reply(fd, &ack) == 0 &&
              ack_prio(&ack) == VGPU_PRIO_HIGH,
          "prio %u", ack_prio(&ack));
    xs_set(3, VGPU_XS_KEY_PRIORITY, "low");
    CHECK(read_reply(fd, &ack) == 0 && ack_prio(&ack) == VGPU_PRIO_LOW,
          "prio %u", ack_prio(&ack));
    close(fd);
}

static void case_priority_order(void)
{
    /* dom1 high, dom2 medium, dom3 low; all arrive while stopped. */
    const uint32_t order[] = {3, 2, 1};
    struct harness_reply ack, r;
    uint8_t buf[64];
    int fd[4];
    char text[128];
    long pos[4];

    printf("case: requests queued together run high, medium, low\n");
    for (int i = 0; i < 3; i++) {
        fd[order[i]] = dev_open(order[i], &ack);
    }
    freeze_mediator();
    for (int i = 0; i < 3; i++) {
        size_t n =
            harness_make_add(buf, 500 + order[i], VGPU_OP_VECTOR_ADD, 1, 1);

        harness_send_all(fd[order[i]], buf, n);
    }
    kill(med_pid, SIGCONT);
    for (uint32_t d = 1; d <= 3; d++) {
        CHECK(read_reply(fd[d], &r) == 0 && r.status == 0, "dom%u", d);
        close(fd[d]);
    }
    /* The debug log records the order in which they were served. */
    for (uint32_t d = 1; d <= 3; d++) {
        FILE *f = fopen(mlog, "r");
        char line[512];

        snprintf(text, sizeof(text), "dom%u: served request %u ", d, 500 + d);
        pos[d] = -1;
        for (long ln = 0; f && fgets(line, sizeof(line), f); ln++) {
            if (strstr(line, text)) {
                pos[d] = ln;
            }
        }
        if (f) {
            fclose(f);
        }
    }
    CHECK(pos[1] >= 0 && pos[2] >= 0 && pos[3] >= 0, "served lines missing");
    CHECK(pos[1] < pos[2] && pos[2] < pos[3],
          "order high@%ld medium@%ld low@%ld", pos[1], pos[2], pos[3]);
}

static void case_queue_limit(void)
{
    struct harness_reply ack, r;
    uint8_t buf[64 * (MEDIATOR_QUEUE_PROBE + 1)];
    size_t n = 0;
    int fd = dev_open(2, &ack), ok = 0, full = 0;

    printf("case: more than the per-VM queue limit "
           "(--max-queued " TEST_MAX_QUEUED_STR ") -> QUEUE_FULL\n");
    for (uint32_t i = 0; i < MEDIATOR_QUEUE_PROBE; i++) {
        n += harness_make_add(buf + n, 900 + i, VGPU_OP_VECTOR_ADD, 1, 1);
    }
    freeze_mediator();
    harness_send_all(fd, buf, n);
    kill(med_pid, SIGCONT);
    for (int i = 0; i < MEDIATOR_QUEUE_PROBE; i++) {
        if (read_reply(fd, &r)) {
            break;
        }
        ok += r.status == 0;
        full += r.status == VGPU_ERR_QUEUE_FULL;
    }
    CHECK(ok == TEST_MAX_QUEUED &&
              full == MEDIATOR_QUEUE_PROBE - TEST_MAX_QUEUED,
          "ok %d full %d (--max-queued " TEST_MAX_QUEUED_STR ")", ok, full);
    close(fd);
}

/* Keep only CAP_DAC_OVERRIDE, effective, after a setuid away from root. */
static int keep_dac_override_only(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {{0}};

    data[0].effective = data[0].permitted = 1u << CAP_DAC_OVERRIDE;
    return (int)syscall(SYS_capset, &hdr, data);
}

static void case_peer_uid_refused(void)
{
    pid_t pid;
    int status;

    printf("case: a peer that is neither root nor the folder owner is "
           "refused (file mode and SO_PEERCRED)\n");
    if (geteuid() != 0) {
        printf("  skipped: needs root to switch uid\n");
        return;
    }
    pid = fork();
    if (pid == 0) {
        int fd;

        if (prctl(PR_SET_KEEPCAPS, 1) || setgid(4343) || setuid(4343)) {
            _exit(2);
        }
        /* The socket is 0600 and owned by 4242: the kernel says no. */
        fd = dev_connect(2);
        if (fd >= 0 || errno != EACCES) {
            _exit(3);
        }
        /* With the file check bypassed, the mediator's uid check bites. */
        if (keep_dac_override_only()) {
            _exit(4);
        }
        fd = dev_connect(2);
        if (fd < 0) {
            _exit(5);
        }
        _exit(closed_by_peer(fd) ? 0 : 6);
    }
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "uid 4343 was not refused (step %d)", WEXITSTATUS(status));
    CHECK(log_has("refusing connection from uid 4343", 3000), "not logged");
}

static void case_domain_released(void)
{
    char path[PATH_MAX];
    struct harness_reply ack, r;
    int fd, other;

    printf("case: domain released in xenstore -> forgotten, its socket and "
           "connection closed, others served\n");
    make_domain_dir(5);
    assign(5, "A", "low", "5");
    sock_path(path, sizeof(path), 5);
    CHECK(harness_wait_path(path, true, 5000), "socket");
    fd = dev_open(5, &ack);
    CHECK(fd >= 0, "connect");
    CHECK(xs_release_domain(xs, 5), "xs_release_domain: %s", strerror(errno));
    CHECK(closed_by_peer(fd), "connection kept");
    CHECK(harness_wait_path(path, false, 3000), "socket kept");
    CHECK(log_has("dom5: domain released", 3000), "not logged");
    close(fd);
    other = dev_open(1, &ack);
    CHECK(other >= 0 && dev_add(other, 1, 20, 22, &r) == 0 &&
              reply_sum(&r) == 42,
          "dom1 not served after dom5's release");
    close(other);
}

static void case_folder_removed(void)
{
    char dir[PATH_MAX], path[PATH_MAX];
    struct harness_reply ack;
    int fd;

    printf("case: folder removed -> domain forgotten, its connection "
           "closed\n");
    make_domain_dir(4);
    assign(4, "A", "medium", "4");
    sock_path(path, sizeof(path), 4);
    CHECK(harness_wait_path(path, true, 5000), "socket");
    fd = dev_open(4, &ack);
    CHECK(fd >= 0, "connect");
    snprintf(dir, sizeof(dir), "%s/root-4", qroot);
    unlink(path);
    CHECK(rmdir(dir) == 0, "rmdir: %s", strerror(errno));
    CHECK(closed_by_peer(fd), "connection kept");
    CHECK(log_has("dom4: chroot folder removed", 3000), "not logged");
    close(fd);
}

/* Does the status file hold a line containing text (within timeout)? */
static bool status_has(const char *text, int timeout_ms)
{
    return harness_file_has(status_file, text, timeout_ms);
}

static void case_status_file(void)
{
    struct harness_reply ack;
    int fd;

    printf("case: the status file tells who is served and connected\n");
    CHECK(status_has("mediator pid=", 3000), "no mediator line");
    CHECK(status_has("backend=cpu", 0), "no backend");
    CHECK(status_has("domain 1 pool=A priority=high vm-id=1 device=waiting",
                     3000),
          "dom1 line");
    fd = dev_open(2, &ack);
    CHECK(status_has("domain 2 pool=A priority=medium vm-id=2 "
                     "device=connected",
                     3000),
          "dom2 connected");
    close(fd);
    CHECK(status_has("domain 2 pool=A priority=medium vm-id=2 device=waiting",
                     3000),
          "dom2 back to waiting");
}

static void case_stop_removes_sockets(void)
{
    char path[PATH_MAX];

    printf("case: SIGTERM stops cleanly and removes the sockets\n");
    sock_path(path, sizeof(path), 1);
    kill(med_pid, SIGTERM);
    {
        int status;

        waitpid(med_pid, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit %d",
              WEXITSTATUS(status));
    }
    med_pid = -1;
    CHECK(!harness_wait_path(path, true, 0), "socket left behind");
    CHECK(access(status_file, F_OK) != 0, "status file left behind");
}

/* ---------------------------------------------------------------------- */
/* pools, quota, asynchronous execution                                    */
/* ---------------------------------------------------------------------- */

static int64_t reply_checksum(const struct harness_reply *r)
{
    return (int64_t)((uint64_t)harness_get32(r->payload + 8) |
                     (uint64_t)harness_get32(r->payload + 12) << 32);
}

static void case_quota(void)
{
    struct harness_reply ack, r;
    uint8_t buf[64];
    int fd = dev_open(1, &ack);

    printf("case: quota 4 MiB: SGEMM n=64 runs, n=1024 (12 MiB) gets "
           "QUOTA_EXCEEDED\n");
    harness_send_all(fd, buf, make_sgemm(buf, 1, 64, 9));
    CHECK(read_reply(fd, &r) == 0 && r.status == 0 &&
              reply_checksum(&r) == vgpu_sgemm_checksum_ref(9, 64),
          "status %u checksum %lld", r.status, (long long)reply_checksum(&r));
    harness_send_all(fd, buf, make_sgemm(buf, 2, 1024, 9));
    CHECK(read_reply(fd, &r) == 0 && r.status == VGPU_ERR_QUOTA_EXCEEDED,
          "status %u", r.status);
    CHECK(log_has("over the quota", 3000), "not logged");
    close(fd);
}

static void case_pool_without_gpu(void)
{
    struct harness_reply ack, r;
    int fd;

    printf("case: a pool whose GPU is not on the host: NO_GPU for its VM "
           "only\n");
    xs_set(3, VGPU_XS_KEY_POOL, "B");
    fd = dev_open(3, &ack);
    CHECK(fd >= 0 && dev_add(fd, 1, 1, 2, &r) == 0 &&
              r.status == VGPU_ERR_NO_GPU,
          "status %u", r.status);
    CHECK(log_has("pool B has no GPU", 3000), "not logged");
    close(fd);
    fd = dev_open(1, &ack);
    CHECK(fd >= 0 && dev_add(fd, 2, 1, 2, &r) == 0 && r.status == 0 &&
              reply_sum(&r) == 3,
          "pool A not served");
    close(fd);
}

/*
 * Pools are names: one that pools.conf lists is served on its GPUs; a
 * valid name it does not list is a pool without a GPU (NO_GPU), never "not
 * assigned"; only a value that is no pool name is not an assignment.
 */
static void case_named_pools(void)
{
    struct harness_reply ack, r;
    int fd;

    printf("case: pool \"gpu-pool.1\" from pools.conf is served on its GPU\n");
    xs_set(3, VGPU_XS_KEY_POOL, "gpu-pool.1");
    /* The watch reaches the daemon's xenstore thread, then its loop: a
     * device that connects before is answered the old pool first. */
    CHECK(log_has("dom3: pool gpu-pool.1 priority", 3000),
          "the new pool not seen");
    fd = dev_open(3, &ack);
    CHECK(fd >= 0 && strcmp(ack_pool(&ack), "gpu-pool.1") == 0,
          "HELLO_ACK pool %s", ack_pool(&ack));
    CHECK(fd >= 0 && dev_add(fd, 1, 30, 12, &r) == 0 && r.status == 0 &&
              reply_sum(&r) == 42,
          "status %u", r.status);
    CHECK(log_has("dom3: started request 1 on GPU 1", 3000),
          "not run on the pool's GPU 1");
    CHECK(status_has("domain 3 pool=gpu-pool.1 priority=", 3000),
          "status file without the pool name");

    printf("case: a valid pool name that pools.conf lacks gets NO_GPU, "
           "not NOT_ASSIGNED\n");
    xs_set(3, VGPU_XS_KEY_POOL, "C");
    CHECK(fd >= 0 && read_reply(fd, &ack) == 0 &&
              strcmp(ack_pool(&ack), "C") == 0,
          "HELLO_ACK pool %s", ack_pool(&ack));
    CHECK(fd >= 0 && dev_add(fd, 2, 1, 2, &r) == 0 &&
              r.status == VGPU_ERR_NO_GPU,
          "status %u (%s)", r.status, vgpu_error_name(r.status));
    CHECK(log_has("pool C is not one the pools file defines", 3000),
          "not logged");

    printf("case: a pool value that is no pool name is not an "
           "assignment\n");
    xs_set(3, VGPU_XS_KEY_POOL, "gpu pool");
    CHECK(fd >= 0 && read_reply(fd, &ack) == 0 &&
              strcmp(ack_pool(&ack), "") == 0,
          "HELLO_ACK pool %s", ack_pool(&ack));
    CHECK(fd >= 0 && dev_add(fd, 3, 1, 2, &r) == 0 &&
              r.status == VGPU_ERR_NOT_ASSIGNED,
          "status %u", r.status);
    CHECK(log_has("dom3: not assigned: invalid pool in xenstore", 3000),
          "not logged");
    xs_set(3, VGPU_XS_KEY_POOL, "B");
    if (fd >= 0) {
        close(fd);
    }
}

static void case_long_job_does_not_block(void)
{
    struct harness_reply ack, r1, r2;
    uint8_t buf[64];
    int fd1 = dev_open(1, &ack), fd2 = dev_open(2, &ack);
    long t0, t_small;

    printf("case: a long SGEMM of one VM does not hold up another VM's "
           "requests\n");
    t0 = harness_now_ms();
    harness_send_all(fd1, buf, make_sgemm(buf, 7, 512, 3));
    /* Once it runs on one GPU (a fixed sleep lost the race when the
     * SGEMM of an optimised build was done within it). */
    CHECK(log_has("dom1: started request 7 on GPU", 5000),
          "the SGEMM did not start");
    CHECK(dev_add(fd2, 8, 40, 2, &r2) == 0 && r2.status == 0 &&
              reply_sum(&r2) == 42,
          "small request status %u", r2.status);
    t_small = harness_now_ms() - t0;
    CHECK(read_reply(fd1, &r1) == 0 && r1.status == 0 &&
              reply_checksum(&r1) == vgpu_sgemm_checksum_ref(3, 512),
          "sgemm status %u", r1.status);
    /* Order, not time: the small one was answered while the SGEMM ran. */
    CHECK(log_line_before("dom2: served request 8 ", "dom1: served request 7 "),
          "the small request waited for the long one (%ld ms)", t_small);
    close(fd1);
    close(fd2);
}

static void phase_pools_and_quota(void)
{
    char pools[PATH_MAX];
    FILE *f;
    const char *extra[] = {"--cpu-gpus", "2", "--pools", pools,
                           "--quota-mb", "4", NULL};

    snprintf(pools, sizeof(pools), "%s/pools.conf", ctx.workdir);
    f = fopen(pools, "w");
    fputs("# test pools\nA = 0, 1\nB = 7\ngpu-pool.1 = 1\n", f);
    fclose(f);
    med_pid = start_mediator_with(extra);
    CHECK(log_has("pool B has no GPU on this host", 5000),
          "pool without GPU not reported at start");
    {
        char p[PATH_MAX];

        sock_path(p, sizeof(p), 1);
        harness_wait_path(p, true, 5000);
    }
    case_quota();
    case_long_job_does_not_block();
    case_pool_without_gpu();
    case_named_pools();
}

/*
 * XCP-ng makes /var/xen/qemu at the first HVM start, after the mediator
 * is up: the daemon waits for its qemu root instead of exiting, serves
 * the domains once it is there, and waits again when it goes away.
 */
static void phase_qemu_root_appears(void)
{
    char gone[PATH_MAX + 8], p[PATH_MAX];
    struct harness_reply ack, r;
    int status, fd;

    printf("case: a qemu root that does not exist yet is waited for\n");
    kill(med_pid, SIGTERM);
    waitpid(med_pid, &status, 0);
    snprintf(gone, sizeof(gone), "%s.gone", qroot);
    if (rename(qroot, gone)) {
        CHECK(0, "rename %s: %s", qroot, strerror(errno));
        return;
    }
    med_pid = start_mediator();
    CHECK(log_has("does not exist (yet): waiting for it", 5000),
          "no word of waiting for the qemu root");
    CHECK(waitpid(med_pid, &status, WNOHANG) == 0,
          "the mediator exited without its qemu root");
    CHECK(rename(gone, qroot) == 0, "rename back: %s", strerror(errno));
    sock_path(p, sizeof(p), 1);
    CHECK(harness_wait_path(p, true, 5000), "no socket once the root appeared");
    /* At once: the path appears only when the socket listens. */
    fd = dev_open(1, &ack);
    CHECK(fd >= 0 && dev_add(fd, 1, 20, 22, &r) == 0 && r.status == 0 &&
              reply_sum(&r) == 42,
          "not served once the root appeared");
    if (fd >= 0) {
        close(fd);
    }

    printf("case: a qemu root that goes away is waited for again\n");
    CHECK(rename(qroot, gone) == 0, "rename: %s", strerror(errno));
    CHECK(log_has("went away: its domains are gone; waiting", 5000),
          "the root's going not noticed");
    CHECK(log_has("dom1: chroot folder removed", 5000),
          "dom1 not forgotten with the root");
    CHECK(waitpid(med_pid, &status, WNOHANG) == 0,
          "the mediator exited when its qemu root went away");
    CHECK(rename(gone, qroot) == 0, "rename back: %s", strerror(errno));
    /* The old socket file came back with the folder: connect until the
     * mediator listens on a new one. */
    for (long end = harness_now_ms() + 5000;
         (fd = dev_open(1, &ack)) < 0 && harness_now_ms() < end;) {
        harness_sleep_ms(10);
    }
    CHECK(fd >= 0 && dev_add(fd, 2, 1, 2, &r) == 0 && r.status == 0 &&
              reply_sum(&r) == 3,
          "not served once the root came back");
    if (fd >= 0) {
        close(fd);
    }
}

/* ---------------------------------------------------------------------- */

static void cleanup(void)
{
    harness_teardown(&ctx, &med_pid, &xs_pid, xs);
}

/* Are the binaries under build (default: the folder above argv0's) built? */
static bool find_binaries(const char *argv0, const char *build)
{
    char self[PATH_MAX], dir[PATH_MAX];

    if (build) {
        snprintf(dir, sizeof(dir), "%s", build);
    } else {
        snprintf(self, sizeof(self), "%s", argv0);
        if (!realpath(argv0, self)) {
            snprintf(self, sizeof(self), "%s", argv0);
        }
        snprintf(dir, sizeof(dir), "%s", self);
        *strrchr(dir, '/') = '\0';
        *strrchr(dir, '/') = '\0';
    }
    return harness_init(&ctx, "", dir);
}

int main(int argc, char **argv)
{
    char xs_sock[PATH_MAX], dir[PATH_MAX];

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!find_binaries(argv[0], argc > 1 ? argv[1] : NULL)) {
        printf("SKIP: %s or %s not built\n", ctx.mediator_bin, ctx.xs_bin);
        return 77;
    }
    if (!harness_make_workdir(&ctx, "/tmp/vgpu-itest-XXXXXX")) {
        return 1;
    }
    atexit(cleanup);
    snprintf(qroot, sizeof(qroot), "%s/qemu", ctx.workdir);
    snprintf(mlog, sizeof(mlog), "%s/mediator.log", ctx.workdir);
    snprintf(xs_sock, sizeof(xs_sock), "%s/xenstored.sock", ctx.workdir);
    snprintf(status_file, sizeof(status_file), "%s/run/mediator.status",
             ctx.workdir);
    snprintf(admin_sock, sizeof(admin_sock), "%s/run/admin.sock", ctx.workdir);
    snprintf(no_pools, sizeof(no_pools), "%s/no-pools.conf", ctx.workdir);
    mkdir(qroot, 0755);
    xs = harness_open_xenstore(&ctx, xs_sock, &xs_pid);
    if (!xs) {
        return 1;
    }
    make_domain_dir(1);
    make_domain_dir(2);
    snprintf(dir, sizeof(dir), "%s/root-2", qroot);
    if (geteuid() == 0 && chown(dir, 4242, 4242)) {
        perror("chown");
    }
    assign(1, "A", "high", "1");
    assign(2, "A", "medium", "2");
    med_pid = start_mediator();

    if (geteuid() == 0) {
        case_sockets_created();
        case_privileges_dropped();
    } else {
        char p[PATH_MAX];

        sock_path(p, sizeof(p), 1);
        harness_wait_path(p, true, 5000);
        sock_path(p, sizeof(p), 2);
        harness_wait_path(p, true, 5000);
    }
    case_identity_from_xenstore();
    case_vector_add_two_vms();
    case_request_errors_keep_connection();
    case_protocol_errors();
    case_truncated_then_closed();
    case_new_connection_replaces_old();
    case_replaced_in_one_batch();
    case_completion_of_gone_connection();
    case_unassigned_then_assigned();
    case_priority_change_followed();
    case_priority_order();
    case_queue_limit();
    case_peer_uid_refused();
    case_domain_released();
    case_folder_removed();
    case_status_file();
    case_stop_removes_sockets();

    /* Second life: two GPUs, pools, a quota. */
    phase_pools_and_quota();
    phase_qemu_root_appears();

    if (failed) {
        printf("--- mediator log (%s) ---\n", mlog);
        harness_print_file(mlog);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
