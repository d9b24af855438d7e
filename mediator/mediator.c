/*
 * mediator.c - owns the mediator's run time state: the domains it serves,
 * their listening sockets and device connections, the request queue, the
 * xenstore connection, and the event loop that drives them.
 *
 * Identity and trust: a connection belongs to the domain whose chroot
 * folder holds the socket it came in on, and only a peer running as root
 * or as the folder's owner (the uid qemu-dm runs as) is accepted.  Pool,
 * priority and VM-ID come from xenstore; whatever the device claims in
 * HELLO is logged and otherwise ignored.
 *
 * Everything a device sends is checked; a broken or hostile peer loses its
 * own connection (after an ERROR message where one can be sent) and
 * nothing else: other domains keep being served.
 *
 * Objects that an event in the current epoll batch may still point at
 * (connections, domains) are only marked dead while the batch runs and
 * are freed by reap() once it is over.
 */
#include "mediator.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <xenstore.h>

#include "backend.h"
#include "discovery.h"
#include "identity.h"
#include "log.h"
#include "payload.h"
#include "sched.h"
#include "vgpu_protocol.h"
#include "wire.h"

/* Replies that may wait for a slow reader before it is cut off. */
#define CONN_OUT_MAX (4 * VGPU_MSG_MAX_SIZE)
#define XS_TOKEN_PREFIX "vgpu-dom"
#define XS_TOKEN_RELEASE "vgpu-release"

struct mediator;

struct handler {
    int fd;
    void (*fn)(struct mediator *m, struct handler *h, uint32_t events);
};

struct vm;

struct conn {
    struct handler h;
    struct vm *vm;
    bool hello_done;
    bool dead;
    bool want_write;
    size_t in_len;
    size_t out_len;
    uint8_t in[VGPU_MSG_MAX_SIZE];
    uint8_t out[CONN_OUT_MAX];
};

struct vm {
    struct vm *next;
    uint32_t domid;
    bool dead;
    bool xs_watching;
    uid_t uid; /* owner of root-<domid>: the uid qemu-dm runs as */
    gid_t gid;
    char dir[PATH_MAX];
    struct handler listen;
    struct conn *conn;
    struct vgpu_identity id;
    const char *id_problem; /* last reason identity_read gave, for logs */
    uint64_t served;
    uint64_t failed;
};

struct job {
    struct sched_entry entry; /* first: a queue entry is its job */
    struct mediator *m;
    uint32_t domid;
    uint32_t request_id;
    uint32_t len;
    uint8_t payload[VGPU_BUF_SIZE];
};

struct mediator {
    long qemu_uid_base; /* -1: the chroot folder's owner */
    long qemu_gid_base;
    int epfd;
    bool stop;
    bool failed;
    bool status_dirty; /* the status file is behind */
    bool status_warned;
    const char *status_file;
    struct discovery disc;
    struct handler disc_h;
    struct handler signal_h;
    struct xs_handle *xs;
    struct handler xs_h;
    struct vm *vms;
    struct sched sched;
    size_t queued;
    const struct vgpu_backend_ops *backend;
    void *backend_state;
};

/* ---------------------------------------------------------------------- */
/* epoll helpers                                                           */
/* ---------------------------------------------------------------------- */

static int watch_fd(struct mediator *m, struct handler *h, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = h};

    if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, h->fd, &ev)) {
        log_err("epoll_ctl add fd %d: %s", h->fd, strerror(errno));
        return -1;
    }
    return 0;
}

static void rewatch_fd(struct mediator *m, struct handler *h, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = h};

    epoll_ctl(m->epfd, EPOLL_CTL_MOD, h->fd, &ev);
}

static void close_handler(struct mediator *m, struct handler *h)
{
    if (h->fd >= 0) {
        epoll_ctl(m->epfd, EPOLL_CTL_DEL, h->fd, NULL);
        close(h->fd);
        h->fd = -1;
    }
}

static struct vm *find_vm(struct mediator *m, uint32_t domid)
{
    for (struct vm *vm = m->vms; vm; vm = vm->next) {
        if (vm->domid == domid && !vm->dead) {
            return vm;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* the request queue                                                       */
/* ---------------------------------------------------------------------- */

static void free_job(struct sched_entry *e, void *arg)
{
    struct mediator *m = arg;

    m->queued--;
    free((struct job *)e);
}

/* Forget every queued request of a domain (its device went away). */
static void drop_queued(struct mediator *m, struct vm *vm)
{
    sched_drop_owner(&m->sched, vm->domid, free_job, m);
}

/* ---------------------------------------------------------------------- */
/* device connections                                                      */
/* ---------------------------------------------------------------------- */

static void conn_kill(struct conn *c, const char *why)
{
    if (!c->dead) {
        log_info("dom%u: closing device connection: %s", c->vm->domid, why);
        c->dead = true;
    }
}

static void conn_flush(struct mediator *m, struct conn *c)
{
    size_t off = 0;

    while (off < c->out_len) {
        ssize_t n = send(c->h.fd, c->out + off, c->out_len - off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                conn_kill(c, strerror(errno));
                return;
            }
            break;
        }
        off += (size_t)n;
    }
    memmove(c->out, c->out + off, c->out_len - off);
    c->out_len -= off;
    if ((c->out_len > 0) != c->want_write) {
        c->want_write = c->out_len > 0;
        rewatch_fd(m, &c->h, EPOLLIN | (c->want_write ? EPOLLOUT : 0));
    }
}

static void conn_send(struct mediator *m, struct conn *c, uint16_t type,
                      uint32_t request_id, uint32_t status,
                      const void *payload, uint32_t len)
{
    struct vgpu_msg_hdr hdr = {
        .type = type,
        .request_id = request_id,
        .vm_id = c->vm->id.vm_id,
        .status = status,
        .length = len,
    };
    size_t n;

    if (c->dead) {
        return;
    }
    n = wire_encode(c->out + c->out_len, sizeof(c->out) - c->out_len, &hdr,
                    payload);
    if (n == 0) {
        conn_kill(c, "device is not reading its replies");
        return;
    }
    c->out_len += n;
    conn_flush(m, c);
}

/* Tell the peer why it is being cut off, then cut it off. */
static void conn_fail(struct mediator *m, struct conn *c, uint32_t error,
                      const char *why)
{
    log_warn("dom%u: protocol error from device: %s", c->vm->domid, why);
    conn_send(m, c, VGPU_MSG_ERROR, 0, error, NULL, 0);
    conn_kill(c, why);
}

static void send_hello_ack(struct mediator *m, struct conn *c)
{
    struct vgpu_msg_hello ack;
    uint8_t buf[sizeof(ack)];

    wire_put_le32(buf, c->vm->id.pool);
    wire_put_le32(buf + 4, c->vm->id.priority);
    wire_put_le32(buf + 8, c->vm->id.vm_id);
    wire_put_le32(buf + 12, VGPU_CAPS_V1);
    conn_send(m, c, VGPU_MSG_HELLO_ACK, 0, VGPU_ERR_NONE, buf, sizeof(buf));
}

static void refresh_identity(struct mediator *m, struct vm *vm);

static void handle_hello(struct mediator *m, struct conn *c,
                         const struct vgpu_msg_hdr *hdr, const uint8_t *body)
{
    struct vm *vm = c->vm;
    uint32_t claimed_pool;

    if (hdr->length != sizeof(struct vgpu_msg_hello)) {
        conn_fail(m, c, VGPU_ERR_PROTOCOL, "HELLO of the wrong size");
        return;
    }
    if (!vm->id.assigned) {
        refresh_identity(m, vm);
    }
    /* The device's word is only logged: xenstore is the authority. */
    claimed_pool = wire_get_le32(body);
    log_info("dom%u: device hello (claims pool %c priority %u vm-id %u); "
             "serving as pool %c priority %s vm-id %u%s",
             vm->domid,
             claimed_pool == VGPU_POOL_A || claimed_pool == VGPU_POOL_B
                 ? (char)claimed_pool
                 : '?',
             wire_get_le32(body + 4),
             wire_get_le32(body + 8), vm->id.assigned ? (char)vm->id.pool : '-',
             vm->id.assigned ? vgpu_priority_name(vm->id.priority) : "-",
             vm->id.vm_id, vm->id.assigned ? "" : " (not assigned)");
    c->hello_done = true;
    send_hello_ack(m, c);
}

static void reply_error(struct mediator *m, struct conn *c, uint32_t request_id,
                        uint32_t error)
{
    c->vm->failed++;
    log_debug("dom%u: request %u refused: %s", c->vm->domid, request_id,
              vgpu_error_name(error));
    conn_send(m, c, VGPU_MSG_RESPONSE, request_id, error, NULL, 0);
}

static uint32_t admit_request(struct mediator *m, struct vm *vm,
                              const struct vgpu_msg_hdr *hdr,
                              const uint8_t *body)
{
    struct vgpu_request req;
    uint32_t err;
    struct job *job;

    if (!vm->id.assigned) {
        return VGPU_ERR_NOT_ASSIGNED;
    }
    err = payload_parse_request(body, hdr->length, &req);
    if (err) {
        return err;
    }
    if (sched_count_owner(&m->sched, vm->domid) >=
            MEDIATOR_MAX_QUEUED_PER_VM ||
        m->queued >= MEDIATOR_MAX_QUEUED_TOTAL) {
        return VGPU_ERR_QUEUE_FULL;
    }
    job = malloc(sizeof(*job));
    if (!job) {
        return VGPU_ERR_QUEUE_FULL;
    }
    job->m = m;
    job->domid = vm->domid;
    job->request_id = hdr->request_id;
    job->len = hdr->length;
    memcpy(job->payload, body, hdr->length);
    sched_push(&m->sched, &job->entry, vm->domid, vm->id.priority);
    m->queued++;
    return VGPU_ERR_NONE;
}

static void handle_msg(struct mediator *m, struct conn *c,
                       const struct vgpu_msg_hdr *hdr, const uint8_t *body)
{
    uint32_t err;

    switch (hdr->type) {
    case VGPU_MSG_HELLO:
        handle_hello(m, c, hdr, body);
        return;
    case VGPU_MSG_REQUEST:
        if (!c->hello_done) {
            conn_fail(m, c, VGPU_ERR_PROTOCOL, "REQUEST before HELLO");
            return;
        }
        err = admit_request(m, c->vm, hdr, body);
        if (err) {
            reply_error(m, c, hdr->request_id, err);
        }
        return;
    default:
        conn_fail(m, c, VGPU_ERR_PROTOCOL, "message type not for the mediator");
        return;
    }
}

/* Handle every whole message in the receive buffer. */
static void conn_parse(struct mediator *m, struct conn *c)
{
    size_t off = 0;

    while (!c->dead) {
        struct vgpu_msg_hdr hdr;
        size_t frame_len;
        const char *why = NULL;
        enum wire_result r =
            wire_frame(c->in + off, c->in_len - off, &hdr, &frame_len, &why);

        if (r == WIRE_NEED_MORE) {
            break;
        }
        if (r == WIRE_BAD) {
            conn_fail(m, c, VGPU_ERR_PROTOCOL, why);
            return;
        }
        handle_msg(m, c, &hdr, c->in + off + VGPU_MSG_HDR_SIZE);
        off += frame_len;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
}

static void conn_read(struct mediator *m, struct conn *c)
{
    while (!c->dead) {
        ssize_t n = recv(c->h.fd, c->in + c->in_len, sizeof(c->in) - c->in_len,
                         MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                conn_kill(c, strerror(errno));
            }
            return;
        }
        if (n == 0) {
            conn_kill(c, c->in_len ? "peer closed mid-message (truncated)"
                                   : "peer closed the connection");
            return;
        }
        c->in_len += (size_t)n;
        conn_parse(m, c);
    }
}

static void on_conn(struct mediator *m, struct handler *h, uint32_t events)
{
    struct conn *c = (struct conn *)h;

    if (c->dead) {
        return;
    }
    if (events & EPOLLIN) {
        conn_read(m, c);
    }
    if (!c->dead && (events & EPOLLOUT)) {
        conn_flush(m, c);
    }
    if (!c->dead && (events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN)) {
        conn_kill(c, "connection hung up");
    }
}

static void conn_free(struct mediator *m, struct conn *c)
{
    drop_queued(m, c->vm);
    close_handler(m, &c->h);
    free(c);
}

/* Is the peer root or the uid qemu-dm runs as for this domain? */
static bool peer_allowed(struct vm *vm, int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
        log_warn("dom%u: SO_PEERCRED: %s", vm->domid, strerror(errno));
        return false;
    }
    if (cred.uid != 0 && cred.uid != vm->uid) {
        log_warn("dom%u: refusing connection from uid %u pid %d "
                 "(expected uid 0 or %u)",
                 vm->domid, (unsigned)cred.uid, (int)cred.pid,
                 (unsigned)vm->uid);
        return false;
    }
    return true;
}

static void accept_one(struct mediator *m, struct vm *vm, int fd)
{
    struct conn *c;

    if (!peer_allowed(vm, fd)) {
        close(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        log_err("dom%u: out of memory for a connection", vm->domid);
        close(fd);
        return;
    }
    /* One device per domain: a new connection means qemu reconnected. */
    if (vm->conn) {
        conn_kill(vm->conn, "replaced by a new connection");
        conn_free(m, vm->conn);
    }
    c->h.fd = fd;
    c->h.fn = on_conn;
    c->vm = vm;
    if (watch_fd(m, &c->h, EPOLLIN)) {
        close(fd);
        free(c);
        vm->conn = NULL;
        return;
    }
    vm->conn = c;
    m->status_dirty = true;
    log_info("dom%u: device connected", vm->domid);
}

static void on_listen(struct mediator *m, struct handler *h, uint32_t events)
{
    struct vm *vm = (struct vm *)((char *)h - offsetof(struct vm, listen));

    (void)events;
    while (!vm->dead) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                log_warn("dom%u: accept: %s", vm->domid, strerror(errno));
            }
            return;
        }
        accept_one(m, vm, fd);
    }
}

/* ---------------------------------------------------------------------- */
/* xenstore                                                                */
/* ---------------------------------------------------------------------- */

static void on_xs(struct mediator *m, struct handler *h, uint32_t events);

static void xs_watch_vm(struct mediator *m, struct vm *vm)
{
    char path[64], token[32];

    if (!m->xs || vm->xs_watching) {
        return;
    }
    snprintf(path, sizeof(path), VGPU_XS_DOMAIN_FMT, vm->domid);
    snprintf(token, sizeof(token), XS_TOKEN_PREFIX "%u", vm->domid);
    vm->xs_watching = xs_watch(m->xs, path, token);
    if (!vm->xs_watching) {
        log_warn("dom%u: xenstore watch on %s failed: %s", vm->domid, path,
                 strerror(errno));
    }
}

static void xs_unwatch_vm(struct mediator *m, struct vm *vm)
{
    char path[64], token[32];

    if (!m->xs || !vm->xs_watching) {
        return;
    }
    snprintf(path, sizeof(path), VGPU_XS_DOMAIN_FMT, vm->domid);
    snprintf(token, sizeof(token), XS_TOKEN_PREFIX "%u", vm->domid);
    xs_unwatch(m->xs, path, token);
    vm->xs_watching = false;
}

/* Connect to xenstored if not connected; 0 when a connection is up. */
static int xs_ensure(struct mediator *m)
{
    if (m->xs) {
        return 0;
    }
    m->xs = xs_open(0);
    if (!m->xs) {
        return -1;
    }
    m->xs_h.fd = xs_fileno(m->xs);
    m->xs_h.fn = on_xs;
    if (m->xs_h.fd < 0 || watch_fd(m, &m->xs_h, EPOLLIN)) {
        xs_close(m->xs);
        m->xs = NULL;
        return -1;
    }
    /* A domain that dies is forgotten even if its folder lingers. */
    if (!xs_watch(m->xs, "@releaseDomain", XS_TOKEN_RELEASE)) {
        log_warn("xenstore watch on @releaseDomain failed: %s",
                 strerror(errno));
    }
    log_info("connected to xenstore");
    for (struct vm *vm = m->vms; vm; vm = vm->next) {
        if (!vm->dead) {
            xs_watch_vm(m, vm);
        }
    }
    return 0;
}

static void xs_lost(struct mediator *m)
{
    log_err("lost the xenstore connection; will reconnect on demand");
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->xs_h.fd, NULL);
    xs_close(m->xs); /* closes the fd as well */
    m->xs = NULL;
    m->xs_h.fd = -1;
    for (struct vm *vm = m->vms; vm; vm = vm->next) {
        vm->xs_watching = false;
    }
}

static bool identity_equal(const struct vgpu_identity *a,
                           const struct vgpu_identity *b)
{
    return a->assigned == b->assigned && a->pool == b->pool &&
           a->priority == b->priority && a->vm_id == b->vm_id;
}

static void refresh_identity(struct mediator *m, struct vm *vm)
{
    struct vgpu_identity id = {0};
    const char *why = "xenstore unreachable";

    if (xs_ensure(m) == 0) {
        identity_read(m->xs, vm->domid, &id, &why);
    }
    if (identity_equal(&id, &vm->id) &&
        (id.assigned || vm->id_problem == why)) {
        return;
    }
    if (id.assigned) {
        log_info("dom%u: pool %c priority %s vm-id %u", vm->domid, id.pool,
                 vgpu_priority_name(id.priority), id.vm_id);
        vm->id_problem = NULL;
    } else {
        log_warn("dom%u: not assigned: %s", vm->domid, why);
        vm->id_problem = why;
    }
    if (id.assigned && vm->id.assigned && id.priority != vm->id.priority) {
        sched_set_owner_priority(&m->sched, vm->domid, id.priority);
    }
    if (!id.assigned) {
        drop_queued(m, vm);
    }
    vm->id = id;
    m->status_dirty = true;
    if (vm->conn && vm->conn->hello_done) {
        send_hello_ack(m, vm->conn);
    }
}

static void vm_remove(struct mediator *m, struct vm *vm, bool unlink_socket);

/*
 * @releaseDomain names no domain: check every domain served.  A domain
 * xenstored no longer knows is gone; free everything it held.
 */
static void check_released(struct mediator *m)
{
    for (struct vm *vm = m->vms; vm; vm = vm->next) {
        if (!vm->dead && !xs_is_domain_introduced(m->xs, vm->domid)) {
            log_info("dom%u: domain released", vm->domid);
            vm_remove(m, vm, true);
        }
    }
}

static void on_xs(struct mediator *m, struct handler *h, uint32_t events)
{
    char **vec;
    unsigned int domid;

    (void)h;
    if (events & (EPOLLHUP | EPOLLERR)) {
        xs_lost(m);
        return;
    }
    while (m->xs && (vec = xs_check_watch(m->xs))) {
        struct vm *vm = NULL;
        bool released = strcmp(vec[XS_WATCH_TOKEN], XS_TOKEN_RELEASE) == 0;

        if (sscanf(vec[XS_WATCH_TOKEN], XS_TOKEN_PREFIX "%u", &domid) == 1) {
            vm = find_vm(m, domid);
        }
        free(vec);
        if (released) {
            check_released(m);
            continue;
        }
        if (vm) {
            refresh_identity(m, vm);
        }
    }
    if (m->xs && errno != EAGAIN) {
        xs_lost(m);
    }
}

/* ---------------------------------------------------------------------- */
/* domains                                                                 */
/* ---------------------------------------------------------------------- */

/*
 * Create the domain's listening socket inside its chroot folder.  The
 * folder may be writable by qemu-dm's uid, so nothing here follows a
 * symlink: the folder is opened O_NOFOLLOW, the mode comes from the umask
 * at bind() time (never a chmod by name), and the owner is set with
 * AT_SYMLINK_NOFOLLOW.
 */
static int vm_listen(struct mediator *m, struct vm *vm)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    mode_t old_umask;
    int dirfd, fd = -1;

    dirfd = open(vm->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dirfd < 0 || fstat(dirfd, &st)) {
        log_err("dom%u: %s: %s", vm->domid, vm->dir, strerror(errno));
        goto err_close_dir;
    }
    vm->uid = m->qemu_uid_base < 0 ? st.st_uid
                                   : (uid_t)(m->qemu_uid_base + vm->domid);
    vm->gid = m->qemu_gid_base < 0 ? st.st_gid
                                   : (gid_t)(m->qemu_gid_base + vm->domid);
    if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", vm->dir,
                 VGPU_SOCKET_NAME) >= (int)sizeof(sa.sun_path)) {
        log_err("dom%u: socket path too long under %s", vm->domid, vm->dir);
        goto err_close_dir;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_err("dom%u: socket: %s", vm->domid, strerror(errno));
        goto err_close_dir;
    }
    if (unlinkat(dirfd, VGPU_SOCKET_NAME, 0) && errno != ENOENT) {
        log_err("dom%u: removing stale %s: %s", vm->domid, sa.sun_path,
                strerror(errno));
        goto err_close_sock;
    }
    old_umask = umask(0177);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        umask(old_umask);
        log_err("dom%u: bind %s: %s", vm->domid, sa.sun_path,
                strerror(errno));
        goto err_close_sock;
    }
    umask(old_umask);
    if (fchownat(dirfd, VGPU_SOCKET_NAME, vm->uid, vm->gid,
                 AT_SYMLINK_NOFOLLOW)) {
        log_err("dom%u: chown %s: %s", vm->domid, sa.sun_path,
                strerror(errno));
        goto err_unlink;
    }
    if (listen(fd, 4)) {
        log_err("dom%u: listen: %s", vm->domid, strerror(errno));
        goto err_unlink;
    }
    close(dirfd);
    vm->listen.fd = fd;
    log_info("dom%u: listening on %s (uid %u, mode 0600)", vm->domid,
             sa.sun_path, (unsigned)vm->uid);
    return 0;

err_unlink:
    unlinkat(dirfd, VGPU_SOCKET_NAME, 0);
err_close_sock:
    close(fd);
err_close_dir:
    if (dirfd >= 0) {
        close(dirfd);
    }
    return -1;
}

static void vm_add(struct mediator *m, uint32_t domid)
{
    struct vm *vm;

    if (find_vm(m, domid)) {
        return;
    }
    vm = calloc(1, sizeof(*vm));
    if (!vm) {
        log_err("dom%u: out of memory", domid);
        return;
    }
    vm->domid = domid;
    vm->listen.fd = -1;
    vm->listen.fn = on_listen;
    snprintf(vm->dir, sizeof(vm->dir), "%s/" VGPU_QEMU_ROOT_PREFIX "%u",
             m->disc.root, domid);
    if (vm_listen(m, vm) || watch_fd(m, &vm->listen, EPOLLIN)) {
        close_handler(m, &vm->listen);
        free(vm);
        return;
    }
    vm->next = m->vms;
    m->vms = vm;
    if (xs_ensure(m) == 0) {
        xs_watch_vm(m, vm);
    }
    refresh_identity(m, vm);
}

/* Mark a domain gone; reap() frees it once no event can point at it. */
static void vm_remove(struct mediator *m, struct vm *vm, bool unlink_socket)
{
    char path[PATH_MAX];

    log_info("dom%u: %s (served %llu, refused %llu)", vm->domid,
             unlink_socket ? "closing" : "chroot folder removed, forgetting",
             (unsigned long long)vm->served, (unsigned long long)vm->failed);
    vm->dead = true;
    if (vm->conn) {
        conn_kill(vm->conn, "domain going away");
    }
    drop_queued(m, vm);
    xs_unwatch_vm(m, vm);
    close_handler(m, &vm->listen);
    if (unlink_socket &&
        snprintf(path, sizeof(path), "%s/%s", vm->dir, VGPU_SOCKET_NAME) <
            (int)sizeof(path)) {
        unlink(path);
    }
}

static void on_domain(void *arg, uint32_t domid, bool present)
{
    struct mediator *m = arg;
    struct vm *vm;

    if (present) {
        vm_add(m, domid);
    } else if ((vm = find_vm(m, domid))) {
        vm_remove(m, vm, false);
    }
}

static void on_discovery(struct mediator *m, struct handler *h,
                         uint32_t events)
{
    (void)h;
    (void)events;
    if (discovery_handle_events(&m->disc)) {
        log_err("stopping: cannot watch %s any more", m->disc.root);
        m->stop = true;
        m->failed = true;
    }
}

/* ---------------------------------------------------------------------- */
/* status file                                                             */
/* ---------------------------------------------------------------------- */

static void write_status_lines(struct mediator *m, FILE *f)
{
    fprintf(f, "mediator pid=%d backend=%s qemu-root=%s\n", (int)getpid(),
            m->backend->name, m->disc.root);
    for (struct vm *vm = m->vms; vm; vm = vm->next) {
        if (vm->dead) {
            continue;
        }
        fprintf(f, "domain %u pool=%c priority=%s vm-id=%u device=%s\n",
                vm->domid, vm->id.assigned ? (char)vm->id.pool : '-',
                vm->id.assigned ? vgpu_priority_name(vm->id.priority) : "-",
                vm->id.vm_id, vm->conn && !vm->conn->dead ? "connected"
                                                          : "waiting");
    }
}

/* Create the folder of path if it is missing (one level, as /run/vgpu). */
static void make_parent_dir(const char *path)
{
    char dir[PATH_MAX];
    char *slash;

    if (!path || snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
        return;
    }
    slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        mkdir(dir, 0755);
    }
}

/*
 * Publish the domains served and their state, replacing the file
 * atomically so that a reader never sees half of it.
 */
static void write_status(struct mediator *m)
{
    char tmp[PATH_MAX];
    FILE *f;

    if (!m->status_file || !m->status_dirty) {
        return;
    }
    m->status_dirty = false;
    snprintf(tmp, sizeof(tmp), "%s.tmp", m->status_file);
    f = fopen(tmp, "w");
    if (f) {
        write_status_lines(m, f);
        if (fclose(f) == 0 && rename(tmp, m->status_file) == 0) {
            m->status_warned = false;
            return;
        }
        unlink(tmp);
    }
    if (!m->status_warned) {
        log_warn("cannot write status file %s: %s", m->status_file,
                 strerror(errno));
        m->status_warned = true;
    }
}

/* Free what the last epoll batch marked dead. */
static void reap(struct mediator *m)
{
    struct vm **pp = &m->vms;

    while (*pp) {
        struct vm *vm = *pp;

        if (vm->conn && vm->conn->dead) {
            conn_free(m, vm->conn);
            vm->conn = NULL;
            m->status_dirty = true;
        }
        if (vm->dead) {
            m->status_dirty = true;
            *pp = vm->next;
            free(vm);
        } else {
            pp = &vm->next;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* dispatch                                                                */
/* ---------------------------------------------------------------------- */

static void on_job_done(void *arg, uint32_t error, const uint8_t *resp,
                        uint32_t resp_len)
{
    struct job *job = arg;
    struct vm *vm = find_vm(job->m, job->domid);

    if (!vm || !vm->conn || vm->conn->dead) {
        log_debug("dom%u: request %u finished after its device left",
                  job->domid, job->request_id);
    } else {
        if (error) {
            vm->failed++;
        } else {
            vm->served++;
        }
        log_debug("dom%u: served request %u prio %s: %s", vm->domid,
                  job->request_id, vgpu_priority_name(job->entry.prio),
                  vgpu_error_name(error));
        conn_send(job->m, vm->conn, VGPU_MSG_RESPONSE, job->request_id, error,
                  resp, error ? 0 : resp_len);
    }
    free(job);
}

/* Run queued requests, highest priority first, while the backend has room. */
static void dispatch(struct mediator *m)
{
    struct sched_entry *e;

    while (m->backend->can_submit(m->backend_state) &&
           (e = sched_pop(&m->sched))) {
        struct job *job = (struct job *)e;
        struct vgpu_request req;

        m->queued--;
        /* Checked at admission; parsed again to point into this buffer. */
        payload_parse_request(job->payload, job->len, &req);
        m->backend->submit(m->backend_state, &req, on_job_done, job);
    }
}

/* ---------------------------------------------------------------------- */
/* life cycle                                                              */
/* ---------------------------------------------------------------------- */

static void on_signal(struct mediator *m, struct handler *h, uint32_t events)
{
    struct signalfd_siginfo si;

    (void)events;
    while (read(h->fd, &si, sizeof(si)) == sizeof(si)) {
        log_info("caught signal %u, stopping", si.ssi_signo);
        m->stop = true;
    }
}

static int setup_signals(struct mediator *m)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL)) {
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    m->signal_h.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    m->signal_h.fn = on_signal;
    if (m->signal_h.fd < 0) {
        log_err("signalfd: %s", strerror(errno));
        return -1;
    }
    return watch_fd(m, &m->signal_h, EPOLLIN);
}

int mediator_open(struct mediator **mp, const struct mediator_config *cfg)
{
    struct mediator *m = calloc(1, sizeof(*m));

    if (!m) {
        return -1;
    }
    sched_init(&m->sched);
    m->qemu_uid_base = cfg->qemu_uid_base;
    m->qemu_gid_base = cfg->qemu_gid_base;
    m->signal_h.fd = m->disc_h.fd = m->xs_h.fd = -1;
    m->disc.inotify_fd = -1;
    m->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (m->epfd < 0) {
        log_err("epoll_create1: %s", strerror(errno));
        goto err_free;
    }
    if (setup_signals(m)) {
        goto err_close;
    }
    m->backend = &vgpu_backend_cpu;
    if (m->backend->open(&m->backend_state)) {
        log_err("backend %s failed to start", m->backend->name);
        goto err_close;
    }
    log_info("backend: %s (reference implementation on the host CPU)",
             m->backend->name);
    if (xs_ensure(m)) {
        log_warn("xenstore unreachable (%s); domains stay unassigned until "
                 "it answers",
                 strerror(errno));
    }
    if (discovery_open(&m->disc, cfg->qemu_root, on_domain, m)) {
        goto err_close;
    }
    m->disc_h.fd = m->disc.inotify_fd;
    m->disc_h.fn = on_discovery;
    if (watch_fd(m, &m->disc_h, EPOLLIN) || discovery_scan(&m->disc)) {
        goto err_close;
    }
    log_info("watching %s for %s<domid> folders", cfg->qemu_root,
             VGPU_QEMU_ROOT_PREFIX);
    m->status_file = cfg->status_file;
    m->status_dirty = true;
    make_parent_dir(m->status_file);
    write_status(m);
    *mp = m;
    return 0;

err_close:
    mediator_close(m);
    return -1;
err_free:
    free(m);
    return -1;
}

int mediator_run(struct mediator *m)
{
    struct epoll_event evs[64];

    while (!m->stop) {
        int n = epoll_wait(m->epfd, evs, 64, -1);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            log_err("epoll_wait: %s", strerror(errno));
            return -1;
        }
        for (int i = 0; i < n; i++) {
            struct handler *h = evs[i].data.ptr;

            h->fn(m, h, evs[i].events);
        }
        /* All input of this batch is queued: now priority decides. */
        dispatch(m);
        reap(m);
        write_status(m);
    }
    return m->failed ? -1 : 0;
}

void mediator_close(struct mediator *m)
{
    if (!m) {
        return;
    }
    for (struct vm *vm = m->vms; vm; vm = vm->next) {
        if (!vm->dead) {
            vm_remove(m, vm, true);
        }
    }
    reap(m);
    if (m->status_file) {
        unlink(m->status_file);
    }
    m->disc_h.fd = -1; /* owned by the discovery module */
    discovery_close(&m->disc);
    if (m->xs) {
        xs_close(m->xs);
    }
    if (m->backend_state) {
        m->backend->close(m->backend_state);
    }
    if (m->signal_h.fd >= 0) {
        close(m->signal_h.fd);
    }
    if (m->epfd >= 0) {
        close(m->epfd);
    }
    free(m);
}
