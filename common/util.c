/*
 * util.c - owns the small system helpers of util.h (the monotonic clock,
 * epoll registration, eventfd wakeups, peer credentials, making folders) that
 * the mediator, vgpu-smi, the xapi plugin and the tests would otherwise each
 * copy.
 */
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t now_ms(void)
{
    return now_ns() / 1000000u;
}

static int ep_ctl(int epfd, int op, int fd, void *ptr, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = ptr};

    return epoll_ctl(epfd, op, fd, &ev);
}

int ep_add(int epfd, int fd, void *ptr, uint32_t events)
{
    return ep_ctl(epfd, EPOLL_CTL_ADD, fd, ptr, events);
}

int ep_mod(int epfd, int fd, void *ptr, uint32_t events)
{
    return ep_ctl(epfd, EPOLL_CTL_MOD, fd, ptr, events);
}

void efd_signal(int fd)
{
    const uint64_t one = 1;

    if (write(fd, &one, sizeof(one)) < 0) {
        /* saturated: a wakeup is pending anyway */
    }
}

void efd_drain(int fd)
{
    uint64_t count;

    if (read(fd, &count, sizeof(count)) < 0) {
        /* nothing counted */
    }
}

int peer_cred(int fd, uid_t *uid, pid_t *pid)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
        return -1;
    }
    *uid = cred.uid;
    *pid = cred.pid;
    return 0;
}

/* An existing folder is what mkdir -p wants, not a failure. */
static int mkdir_one(const char *dir)
{
    return mkdir(dir, 0755) && errno != EEXIST ? -1 : 0;
}

int mkdir_p(const char *dir)
{
    char tmp[PATH_MAX];

    if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir_one(tmp)) {
            return -1;
        }
        *p = '/';
    }
    return mkdir_one(tmp);
}

int make_parent_dir(const char *path)
{
    char dir[PATH_MAX];
    char *slash;

    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
        return 0;
    }
    *slash = '\0';
    return mkdir_p(dir);
}
