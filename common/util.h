/*
 * util.h - small system helpers that the dom0 programs (vgpu-mediator,
 * vgpu-smi, the xapi plugin and wrapper) and their tests share, so that
 * each is written once: the monotonic clock, epoll registration, a unix
 * socket peer's credentials, and making folders.
 *
 * None of them logs or decides anything: a failure is -1 with errno, and
 * the message and the policy (who may connect, whether a missing folder
 * matters) stay with the caller.  They call nothing of vgpu, so any part
 * can use them without a circle.
 */
#ifndef VGPU_COMMON_UTIL_H
#define VGPU_COMMON_UTIL_H

#include <stdint.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC, in nanoseconds and in milliseconds. */
uint64_t now_ns(void);
uint64_t now_ms(void);

/* epoll_ctl ADD / MOD of fd with data.ptr = ptr: 0, or -1 with errno. */
int ep_add(int epfd, int fd, void *ptr, uint32_t events);
int ep_mod(int epfd, int fd, void *ptr, uint32_t events);

/*
 * Wake whoever polls the eventfd fd (add 1), and take what it counted
 * (reset it to 0).  Neither fails in a way the caller could act on: a
 * counter at its maximum already has a wakeup pending, an empty one has
 * nothing to take (the fd is non-blocking).
 */
void efd_signal(int fd);
void efd_drain(int fd);

/* The uid and pid of the process at the other end of the unix socket fd
 * (SO_PEERCRED, as it was when it connected): 0, or -1 with errno. */
int peer_cred(int fd, uid_t *uid, pid_t *pid);

/* mkdir -p of dir, 0755 for what it creates: 0 when dir is there, or -1
 * with errno (ENAMETOOLONG past PATH_MAX). */
int mkdir_p(const char *dir);
/* mkdir -p of the folder holding path; 0 when path has none but "/". */
int make_parent_dir(const char *path);

#endif /* VGPU_COMMON_UTIL_H */
