/*
 * discovery.h - finds the qemu-dm chroot folders <qemu-root>/root-<domid>
 * present at start and created or removed later (inotify).
 *
 * The qemu root itself may be missing: on XCP-ng /var/xen/qemu appears with
 * the first HVM guest's start.  Discovery then waits for it (watching the
 * deepest folder of its path that exists) and reports the domains in it
 * once it appears; if it goes away, every domain it held is reported gone
 * and discovery waits for it again.
 */
#ifndef VGPU_DISCOVERY_H
#define VGPU_DISCOVERY_H

#include <stdbool.h>
#include <stdint.h>

#include "vgpu_protocol.h" /* VGPU_DOMID_MAX */

typedef void (*discovery_fn)(void *arg, uint32_t domid, bool present);

struct discovery {
    char root[256];
    int inotify_fd;
    int wd;       /* watch on root, or -1 while waiting for it */
    int wait_wd;  /* watch on the deepest existing ancestor, or -1 */
    bool waiting; /* the root does not exist (yet) */
    discovery_fn fn;
    void *arg;
    /* Domains reported present, so that losing the root reports them
     * gone (one bit per domid). */
    uint8_t present[(VGPU_DOMID_MAX + 8) / 8];
};

/*
 * Parse a folder name: "root-<domid>" with a canonical decimal domid in
 * 1..VGPU_DOMID_MAX.  Returns 0 and sets *domid, or -1.
 */
int discovery_parse_name(const char *name, uint32_t *domid);

/*
 * Start watching root (an absolute path); fn(arg, domid, present) reports
 * every change.  A root that does not exist yet is waited for; one that
 * exists but is not a directory is an error (-1).
 */
int discovery_open(struct discovery *d, const char *root, discovery_fn fn,
                   void *arg);
/* Report every root-<domid> folder that exists now (none while waiting). */
int discovery_scan(struct discovery *d);
/*
 * Read pending inotify events and report them.  Returns 0, or -1 when
 * inotify itself fails (the caller should stop).
 */
int discovery_handle_events(struct discovery *d);
/* Is the root there (false while waiting for it)? */
bool discovery_ready(const struct discovery *d);
void discovery_close(struct discovery *d);

#endif
