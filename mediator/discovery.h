/*
 * discovery.h - finds the qemu-dm chroot folders <qemu-root>/root-<domid>
 * present at start and created or removed later (inotify).
 */
#ifndef VGPU_DISCOVERY_H
#define VGPU_DISCOVERY_H

#include <stdbool.h>
#include <stdint.h>

/* Largest domid of a real domain (Xen's DOMID_FIRST_RESERVED - 1). */
#define VGPU_DOMID_MAX 0x7fefu

typedef void (*discovery_fn)(void *arg, uint32_t domid, bool present);

struct discovery {
    char root[256];
    int inotify_fd;
    int wd;
    discovery_fn fn;
    void *arg;
};

/*
 * Parse a folder name: "root-<domid>" with a canonical decimal domid in
 * 1..VGPU_DOMID_MAX.  Returns 0 and sets *domid, or -1.
 */
int discovery_parse_name(const char *name, uint32_t *domid);

/* Start watching root; fn(arg, domid, present) reports every change. */
int discovery_open(struct discovery *d, const char *root, discovery_fn fn,
                   void *arg);
/* Report every root-<domid> folder that exists now. */
int discovery_scan(struct discovery *d);
/*
 * Read pending inotify events and report them.  Returns 0, or -1 if the
 * root folder itself went away (the caller should stop).
 */
int discovery_handle_events(struct discovery *d);
void discovery_close(struct discovery *d);

#endif
