/*
 * discovery.c - owns knowing which domains have a qemu-dm chroot folder.
 *
 * The stock qemu wrapper creates <qemu-root>/root-<domid> before qemu-dm
 * starts, and xenopsd removes it when qemu-dm stops, so the folder's life
 * is the domain's device-model life.  Only directories count: a file or a
 * symlink named root-N is ignored.
 */
#include "discovery.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "vgpu_protocol.h"

int discovery_parse_name(const char *name, uint32_t *domid)
{
    const size_t plen = strlen(VGPU_QEMU_ROOT_PREFIX);
    const char *p = name + plen;
    unsigned long v = 0;

    if (strncmp(name, VGPU_QEMU_ROOT_PREFIX, plen) != 0) {
        return -1;
    }
    /* Canonical decimal: 1-5 digits, no leading zero. */
    if (*p < '1' || *p > '9' || strlen(p) > 5) {
        return -1;
    }
    for (; *p; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > VGPU_DOMID_MAX) {
        return -1;
    }
    *domid = (uint32_t)v;
    return 0;
}

/* Is root/name a real directory (not a symlink to one)? */
static bool is_real_dir(const struct discovery *d, const char *name)
{
    char path[PATH_MAX];
    struct stat st;

    if (snprintf(path, sizeof(path), "%s/%s", d->root, name) >=
        (int)sizeof(path)) {
        return false;
    }
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int discovery_open(struct discovery *d, const char *root, discovery_fn fn,
                   void *arg)
{
    struct stat st;

    if (strlen(root) >= sizeof(d->root)) {
        log_err("qemu root %s: path too long", root);
        return -1;
    }
    if (stat(root, &st) || !S_ISDIR(st.st_mode)) {
        log_err("qemu root %s: not a directory", root);
        return -1;
    }
    snprintf(d->root, sizeof(d->root), "%s", root);
    d->fn = fn;
    d->arg = arg;
    d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (d->inotify_fd < 0) {
        log_err("inotify_init1: %s", strerror(errno));
        return -1;
    }
    d->wd = inotify_add_watch(d->inotify_fd, root,
                              IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                                  IN_MOVED_TO | IN_DELETE_SELF |
                                  IN_MOVE_SELF | IN_ONLYDIR);
    if (d->wd < 0) {
        log_err("inotify_add_watch %s: %s", root, strerror(errno));
        close(d->inotify_fd);
        d->inotify_fd = -1;
        return -1;
    }
    return 0;
}

int discovery_scan(struct discovery *d)
{
    DIR *dir = opendir(d->root);
    struct dirent *de;
    uint32_t domid;

    if (!dir) {
        log_err("opendir %s: %s", d->root, strerror(errno));
        return -1;
    }
    while ((de = readdir(dir))) {
        if (discovery_parse_name(de->d_name, &domid) == 0 &&
            is_real_dir(d, de->d_name)) {
            d->fn(d->arg, domid, true);
        }
    }
    closedir(dir);
    return 0;
}

static int handle_one(struct discovery *d, const struct inotify_event *ev)
{
    uint32_t domid;

    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
        log_err("qemu root %s went away", d->root);
        return -1;
    }
    if (ev->mask & IN_Q_OVERFLOW) {
        /* Events were lost: a full rescan re-reports what exists. */
        log_warn("inotify queue overflow, rescanning %s", d->root);
        return discovery_scan(d);
    }
    if (!ev->len || discovery_parse_name(ev->name, &domid)) {
        return 0;
    }
    if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
        if (is_real_dir(d, ev->name)) {
            d->fn(d->arg, domid, true);
        }
    } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
        d->fn(d->arg, domid, false);
    }
    return 0;
}

int discovery_handle_events(struct discovery *d)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

    for (;;) {
        ssize_t n = read(d->inotify_fd, buf, sizeof(buf));
        ssize_t off = 0;

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EAGAIN ? 0 : -1;
        }
        while (off < n) {
            const struct inotify_event *ev =
                (const struct inotify_event *)(buf + off);

            if (handle_one(d, ev)) {
                return -1;
            }
            off += (ssize_t)(sizeof(*ev) + ev->len);
        }
    }
}

void discovery_close(struct discovery *d)
{
    if (d->inotify_fd >= 0) {
        close(d->inotify_fd);
        d->inotify_fd = -1;
    }
}
