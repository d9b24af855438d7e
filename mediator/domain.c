/*
 * domain.c - owns the domains' list, their listening sockets (one in each
 * root-<domid> chroot folder), the peer credential check on accept, and
 * discovery of the folders.  It reports upward through struct domain_ops
 * and never calls the parts that serve a domain.
 *
 * Identity and trust: a connection belongs to the domain whose chroot
 * folder holds the socket it came in on, and only a peer running as root
 * or as the folder's owner (the uid qemu-dm runs as) is accepted.
 */
#include "domain.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "vgpu_protocol.h"

struct domains {
    struct loop *loop;
    long qemu_uid_base; /* -1: the chroot folder's owner */
    long qemu_gid_base;
    struct discovery disc;
    struct loop_handler disc_h;
    const struct domain_ops *ops;
    void *arg;
    struct vm *vms;
};

struct vm *domains_find(struct domains *d, uint32_t domid)
{
    for (struct vm *vm = d->vms; vm; vm = vm->next) {
        if (vm->domid == domid && !vm->dead) {
            return vm;
        }
    }
    return NULL;
}

struct vm *domains_first(struct domains *d)
{
    return d ? d->vms : NULL;
}

const char *domains_root(const struct domains *d)
{
    return d->disc.root;
}

/* Is the peer root or the uid qemu-dm runs as for this domain? */
static bool peer_allowed(struct vm *vm, int fd)
{
    uid_t uid;
    pid_t pid;

    if (peer_cred(fd, &uid, &pid)) {
        log_warn("dom%u: SO_PEERCRED: %s", vm->domid, strerror(errno));
        return false;
    }
    if (uid != 0 && uid != vm->uid) {
        if (vm_peer_log_ok(vm)) {
            log_warn("dom%u: refusing connection from uid %u pid %d "
                     "(expected uid 0 or %u)",
                     vm->domid, (unsigned)uid, (int)pid, (unsigned)vm->uid);
        }
        return false;
    }
    return true;
}

/*
 * Work a peer causes without a GPU, per domain: HELLOs and refused
 * requests (each far cheaper than a millisecond; a device sends one HELLO
 * per connection and a guest waits for each refusal, so real peers stay
 * far below), and log lines (a flood must not fill the journal).
 */
const struct rate_limit domain_cheap_limit = {.per_s = 2000, .burst = 4000};
static const struct rate_limit peer_log_limit = {.per_s = 10, .burst = 50};

bool vm_peer_log_ok(struct vm *vm)
{
    if (!rate_take(&vm->log_rate, &peer_log_limit, now_ns())) {
        vm->logs_dropped++;
        return false;
    }
    if (vm->logs_dropped) {
        log_warn("dom%u: %llu log lines of this domain dropped (more than "
                 "%u a second)",
                 vm->domid, (unsigned long long)vm->logs_dropped,
                 peer_log_limit.per_s);
        vm->logs_dropped = 0;
    }
    return true;
}

/* Connections taken per domain and turn: a peer that connects in a loop
 * waits for the next turn (level-triggered epoll) like everyone else. */
#define ACCEPTS_PER_TURN 4
/* Bound here, renamed to VGPU_SOCKET_NAME once listening (vm_listen). */
#define SOCKET_TMP_NAME VGPU_SOCKET_NAME ".new"

static void on_listen(struct loop_handler *h, uint32_t events)
{
    struct vm *vm = h->arg;
    struct domains *d = vm->owner;

    (void)events;
    for (int n = 0; n < ACCEPTS_PER_TURN && !vm->dead; n++) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                log_warn("dom%u: accept: %s", vm->domid, strerror(errno));
            }
            return;
        }
        if (!peer_allowed(vm, fd)) {
            close(fd);
            continue;
        }
        d->ops->connected(d->arg, vm, fd);
    }
}

/*
 * Create the domain's listening socket inside its chroot folder.  The
 * folder may be writable by qemu-dm's uid, so nothing here follows a
 * symlink: the folder is opened O_NOFOLLOW, the mode comes from the umask
 * at bind() time (never a chmod by name), and the owner is set with
 * AT_SYMLINK_NOFOLLOW.  The socket is bound under a temporary name and
 * renamed into place after listen(): a qemu-dm that connects as soon as
 * the path appears is never refused.
 */
static int vm_listen(struct domains *d, struct vm *vm)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct sockaddr_un tmp = {.sun_family = AF_UNIX};
    struct stat st;
    mode_t old_umask;
    int dirfd, fd = -1;

    dirfd = open(vm->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dirfd < 0 || fstat(dirfd, &st)) {
        log_err("dom%u: %s: %s", vm->domid, vm->dir, strerror(errno));
        goto err_close_dir;
    }
    vm->uid = d->qemu_uid_base < 0 ? st.st_uid
                                   : (uid_t)(d->qemu_uid_base + vm->domid);
    vm->gid = d->qemu_gid_base < 0 ? st.st_gid
                                   : (gid_t)(d->qemu_gid_base + vm->domid);
    if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", vm->dir,
                 VGPU_SOCKET_NAME) >= (int)sizeof(sa.sun_path) ||
        snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s/%s", vm->dir,
                 SOCKET_TMP_NAME) >= (int)sizeof(tmp.sun_path)) {
        log_err("dom%u: socket path too long under %s", vm->domid, vm->dir);
        goto err_close_dir;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_err("dom%u: socket: %s", vm->domid, strerror(errno));
        goto err_close_dir;
    }
    if (unlinkat(dirfd, SOCKET_TMP_NAME, 0) && errno != ENOENT) {
        log_err("dom%u: removing stale %s/%s: %s", vm->domid, vm->dir,
                SOCKET_TMP_NAME, strerror(errno));
        goto err_close_sock;
    }
    old_umask = umask(0177);
    if (bind(fd, (struct sockaddr *)&tmp, sizeof(tmp))) {
        umask(old_umask);
        log_err("dom%u: bind %s: %s", vm->domid, tmp.sun_path, strerror(errno));
        goto err_close_sock;
    }
    umask(old_umask);
    if (fchownat(dirfd, SOCKET_TMP_NAME, vm->uid, vm->gid,
                 AT_SYMLINK_NOFOLLOW)) {
        log_err("dom%u: chown %s: %s", vm->domid, tmp.sun_path,
                strerror(errno));
        goto err_unlink;
    }
    if (listen(fd, 4)) {
        log_err("dom%u: listen: %s", vm->domid, strerror(errno));
        goto err_unlink;
    }
    /* Replaces a stale socket of an earlier run in one step. */
    if (renameat(dirfd, SOCKET_TMP_NAME, dirfd, VGPU_SOCKET_NAME)) {
        log_err("dom%u: rename to %s: %s", vm->domid, sa.sun_path,
                strerror(errno));
        goto err_unlink;
    }
    close(dirfd);
    vm->listen.fd = fd;
    log_info("dom%u: listening on %s (uid %u, mode 0600)", vm->domid,
             sa.sun_path, (unsigned)vm->uid);
    return 0;

err_unlink:
    unlinkat(dirfd, SOCKET_TMP_NAME, 0);
err_close_sock:
    close(fd);
err_close_dir:
    if (dirfd >= 0) {
        close(dirfd);
    }
    return -1;
}

static void vm_add(struct domains *d, uint32_t domid)
{
    struct vm *vm;

    if (domains_find(d, domid)) {
        return;
    }
    vm = calloc(1, sizeof(*vm));
    if (!vm) {
        log_err("dom%u: out of memory", domid);
        return;
    }
    vm->owner = d;
    vm->domid = domid;
    vm->listen.fd = -1;
    vm->listen.fn = on_listen;
    vm->listen.arg = vm;
    snprintf(vm->dir, sizeof(vm->dir), "%s/" VGPU_QEMU_ROOT_PREFIX "%u",
             d->disc.root, domid);
    if (vm_listen(d, vm) || loop_add(d->loop, &vm->listen, EPOLLIN)) {
        loop_close_fd(d->loop, &vm->listen);
        free(vm);
        return;
    }
    vm->next = d->vms;
    d->vms = vm;
    d->ops->added(d->arg, vm);
}

/* After the batch: unlink the domain from the list and free it. */
static void vm_free(void *arg)
{
    struct vm *vm = arg;
    struct vm **pp = &vm->owner->vms;

    while (*pp != vm) {
        pp = &(*pp)->next;
    }
    *pp = vm->next;
    free(vm);
}

void domain_remove(struct vm *vm, bool unlink_socket)
{
    struct domains *d = vm->owner;
    char path[PATH_MAX];

    log_info("dom%u: %s (served %llu, refused %llu)", vm->domid,
             unlink_socket ? "closing" : "chroot folder removed, forgetting",
             (unsigned long long)vm->served, (unsigned long long)vm->failed);
    vm->dead = true;
    d->ops->removing(d->arg, vm);
    loop_close_fd(d->loop, &vm->listen);
    if (unlink_socket && snprintf(path, sizeof(path), "%s/%s", vm->dir,
                                  VGPU_SOCKET_NAME) < (int)sizeof(path)) {
        unlink(path);
    }
    loop_defer(d->loop, &vm->free_later, vm_free, vm);
}

static void on_domain(void *arg, uint32_t domid, bool present)
{
    struct domains *d = arg;
    struct vm *vm;

    if (present) {
        vm_add(d, domid);
    } else if ((vm = domains_find(d, domid))) {
        domain_remove(vm, false);
    }
}

static void on_discovery(struct loop_handler *h, uint32_t events)
{
    struct domains *d = h->arg;

    (void)events;
    if (discovery_handle_events(&d->disc)) {
        log_err("stopping: cannot watch %s any more", d->disc.root);
        loop_stop(d->loop, true);
    }
}

int domains_open(struct domains **dp, struct loop *loop,
                 const struct domains_config *cfg, const struct domain_ops *ops,
                 void *arg)
{
    struct domains *d = calloc(1, sizeof(*d));

    if (!d) {
        return -1;
    }
    d->loop = loop;
    d->qemu_uid_base = cfg->qemu_uid_base;
    d->qemu_gid_base = cfg->qemu_gid_base;
    d->ops = ops;
    d->arg = arg;
    d->disc.inotify_fd = -1;
    d->disc_h.fd = -1;
    /* Handed out before anything can fail: domains_close frees it. */
    *dp = d;
    if (discovery_open(&d->disc, cfg->qemu_root, on_domain, d)) {
        return -1;
    }
    d->disc_h.fd = d->disc.inotify_fd;
    d->disc_h.fn = on_discovery;
    d->disc_h.arg = d;
    return loop_add(loop, &d->disc_h, EPOLLIN);
}

int domains_scan(struct domains *d)
{
    return discovery_scan(&d->disc);
}

void domains_close(struct domains *d)
{
    if (!d) {
        return;
    }
    for (struct vm *vm = d->vms; vm; vm = vm->next) {
        if (!vm->dead) {
            domain_remove(vm, true);
        }
    }
    /* The structs are freed by the loop (their deferred frees name d):
     * run them now, while d is still there. */
    loop_reap(d->loop);
    loop_del(d->loop, &d->disc_h); /* the fd is the discovery module's */
    discovery_close(&d->disc);
    free(d);
}
