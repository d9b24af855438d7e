/*
 * discovery.c - owns knowing which domains have a qemu-dm chroot folder.
 *
 * The stock qemu wrapper creates <qemu-root>/root-<domid> before qemu-dm
 * starts, and xenopsd removes it when qemu-dm stops, so the folder's life
 * is the domain's device-model life.  Only directories count: a file or a
 * symlink named root-N is ignored.
 *
 * The root may not exist: XCP-ng creates /var/xen/qemu at the first HVM
 * start, and the mediator is up before that.  Exiting would make systemd
 * give up on the daemon after a few restarts, so discovery waits: it
 * watches the deepest directory of the root's path that exists and moves
 * down the path as folders appear (mkdir -p creates them one by one,
 * possibly before the watch is in place, hence the re-check in arm()).
 * Domains are reported once per change: a bitmap remembers which are
 * present, so a lost root or an inotify overflow reports the ones gone.
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

static bool is_present(const struct discovery *d, uint32_t domid)
{
    return d->present[domid / 8] & (1u << (domid % 8));
}

/* Reports a change of one domain's folder; repeats are not reported. */
static void report(struct discovery *d, uint32_t domid, bool present)
{
    if (is_present(d, domid) == present) {
        return;
    }
    if (present) {
        d->present[domid / 8] |= (uint8_t)(1u << (domid % 8));
    } else {
        d->present[domid / 8] &= (uint8_t) ~(1u << (domid % 8));
    }
    d->fn(d->arg, domid, present);
}

/* Reports every domain present so far as gone whose folder is not there. */
static void report_gone(struct discovery *d)
{
    char name[32];

    for (uint32_t domid = 1; domid <= VGPU_DOMID_MAX; domid++) {
        if (!is_present(d, domid)) {
            continue;
        }
        snprintf(name, sizeof(name), VGPU_QEMU_ROOT_PREFIX "%u", domid);
        if (d->waiting || !is_real_dir(d, name)) {
            report(d, domid, false);
        }
    }
}

static void drop_watch(struct discovery *d, int *wd)
{
    if (*wd >= 0) {
        inotify_rm_watch(d->inotify_fd, *wd);
        *wd = -1;
    }
}

/*
 * Puts the watch where it belongs now: on the root when it exists, else on
 * the deepest existing directory above it.  Returns 0, or -1 on an error
 * that waiting cannot mend (the root is not a directory, inotify fails).
 */
static int arm(struct discovery *d)
{
    const uint32_t root_mask = IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                               IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
                               IN_ONLYDIR;
    const uint32_t wait_mask =
        IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
    bool was_waiting = d->waiting;

    /* Each pass either settles or saw the path change under it; a path
     * of N components settles in at most N + 1 passes per change. */
    for (int pass = 0; pass < 64; pass++) {
        char up[sizeof(d->root)];
        struct stat st;
        int wd;

        if (stat(d->root, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                log_err("qemu root %s: not a directory", d->root);
                return -1;
            }
            wd = inotify_add_watch(d->inotify_fd, d->root, root_mask);
            if (wd < 0 && (errno == ENOENT || errno == ENOTDIR)) {
                continue; /* gone again: look once more */
            }
            if (wd < 0) {
                log_err("inotify_add_watch %s: %s", d->root, strerror(errno));
                return -1;
            }
            d->wd = wd;
            drop_watch(d, &d->wait_wd);
            d->waiting = false;
            if (was_waiting) {
                log_info("qemu root %s is there now", d->root);
            }
            return 0;
        }
        /* Deepest existing directory above the root ("/" at worst). */
        snprintf(up, sizeof(up), "%s", d->root);
        do {
            char *slash = strrchr(up, '/');

            slash[slash == up] = '\0'; /* "/a/b" -> "/a", "/a" -> "/" */
        } while (strcmp(up, "/") && (stat(up, &st) || !S_ISDIR(st.st_mode)));
        wd = inotify_add_watch(d->inotify_fd, up, wait_mask);
        if (wd < 0 && (errno == ENOENT || errno == ENOTDIR)) {
            continue;
        }
        if (wd < 0) {
            log_err("inotify_add_watch %s: %s", up, strerror(errno));
            return -1;
        }
        if (d->wait_wd >= 0 && d->wait_wd != wd) {
            drop_watch(d, &d->wait_wd);
        }
        d->wait_wd = wd;
        /* The next folder may have been made before the watch was set. */
        if (stat(d->root, &st) == 0) {
            continue;
        }
        if (!d->waiting) {
            log_warn("qemu root %s does not exist (yet): waiting for it "
                     "(watching %s)",
                     d->root, up);
        }
        d->waiting = true;
        return 0;
    }
    log_err("qemu root %s keeps changing; giving up", d->root);
    return -1;
}

int discovery_open(struct discovery *d, const char *root, discovery_fn fn,
                   void *arg)
{
    memset(d, 0, sizeof(*d));
    d->inotify_fd = d->wd = d->wait_wd = -1;
    if (root[0] != '/' || strlen(root) >= sizeof(d->root)) {
        log_err("qemu root %s: not an absolute path of at most %zu bytes", root,
                sizeof(d->root) - 1);
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
    if (arm(d)) {
        discovery_close(d);
        return -1;
    }
    return 0;
}

bool discovery_ready(const struct discovery *d)
{
    return !d->waiting;
}

int discovery_scan(struct discovery *d)
{
    DIR *dir;
    struct dirent *de;
    uint32_t domid;

    report_gone(d);
    if (d->waiting) {
        return 0;
    }
    dir = opendir(d->root);
    if (!dir) {
        /* Removed under us: the inotify event that follows re-arms. */
        log_warn("opendir %s: %s", d->root, strerror(errno));
        return 0;
    }
    while ((de = readdir(dir))) {
        if (discovery_parse_name(de->d_name, &domid) == 0 &&
            is_real_dir(d, de->d_name)) {
            report(d, domid, true);
        }
    }
    closedir(dir);
    return 0;
}

/* The root or a folder above it changed: watch again, report what is. */
static int rearm(struct discovery *d)
{
    if (arm(d)) {
        return -1;
    }
    return discovery_scan(d);
}

static int handle_one(struct discovery *d, const struct inotify_event *ev)
{
    uint32_t domid;

    if (ev->mask & IN_Q_OVERFLOW) {
        /* Events were lost: a full rescan reports what changed. */
        log_warn("inotify queue overflow, rescanning %s", d->root);
        return rearm(d);
    }
    if (d->waiting || ev->wd != d->wd) {
        if (ev->wd == d->wait_wd && d->waiting) {
            return rearm(d);
        }
        return 0; /* an event of a watch dropped earlier */
    }
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
        log_warn("qemu root %s went away: its domains are gone; waiting "
                 "for it again",
                 d->root);
        if (!(ev->mask & IN_IGNORED)) {
            drop_watch(d, &d->wd); /* a moved root keeps its watch */
        }
        d->wd = -1;
        d->waiting = true;
        report_gone(d);
        return rearm(d);
    }
    if (!ev->len || discovery_parse_name(ev->name, &domid)) {
        return 0;
    }
    if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
        if (is_real_dir(d, ev->name)) {
            report(d, domid, true);
        }
    } else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
        report(d, domid, false);
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
    d->wd = d->wait_wd = -1;
}
