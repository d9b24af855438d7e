/*
 * qemudm.h - the two qemu-dm binaries of a vgpu host, as the qemu-dm
 * wrapper, the plugin's `status` and vgpu-smi see them (docs/xcp-ng.md):
 *
 *   XCP-ng's  /usr/lib64/xen/bin/qemu-system-i386   package qemu
 *   ours      /usr/libexec/vgpu/qemu-system-i386    package qemu-dm-vgpu
 *
 * Ours is XCP-ng's qemu source release plus the vgpu series, built by
 * qemu-dm-patch/xcpng/build-qemu-dm-vgpu.sh; the release it was built from
 * is in the file beside it, <binary>.xcpng-release, as the line
 * "xcpng-qemu=EPOCH:VERSION-RELEASE" (the EVR of XCP-ng's qemu package).
 *
 * qemudm_probe() says whether ours is usable (there, runs, and its
 * `-device help` lists vgpu-stub; that answer is cached by the binary's
 * identity: device, inode, size, mtime and ctime) and whether XCP-ng's
 * installed qemu (`rpm -q qemu`) is another release than ours was built
 * from.  Nothing here logs: the callers say what they found.
 */
#ifndef VGPU_COMMON_QEMUDM_H
#define VGPU_COMMON_QEMUDM_H

#include <limits.h>
#include <stddef.h>

/* The path the stock wrapper runs (it hard-codes it). */
#define QEMUDM_STOCK_PATH "/usr/lib64/xen/bin/qemu-system-i386"
/* Ours, as the qemu-dm-vgpu package installs it; $VGPU_QEMU_DM overrides. */
#define QEMUDM_VGPU_PATH "/usr/libexec/vgpu/qemu-system-i386"
#define QEMUDM_VGPU_ENV "VGPU_QEMU_DM"
/* Beside ours: <binary>.xcpng-release, key xcpng-qemu=. */
#define QEMUDM_RELEASE_SUFFIX ".xcpng-release"
#define QEMUDM_RELEASE_KEY "xcpng-qemu"
/* The package whose release is compared, and how rpm is run. */
#define QEMUDM_STOCK_PACKAGE "qemu"
#define QEMUDM_RPM_DEFAULT "/usr/bin/rpm"
#define QEMUDM_RPM_ENV "VGPU_RPM"               /* another rpm */
#define QEMUDM_RPM_DBPATH_ENV "VGPU_RPM_DBPATH" /* rpm --dbpath DIR */
/* The cache of `-device help` answers, in the run folder. */
#define QEMUDM_CACHE_NAME "qemu-dm.check"
/* What rebuilds ours (docs/install.md). */
#define QEMUDM_REBUILD_CMD "qemu-dm-patch/xcpng/build-qemu-dm-vgpu.sh"

enum qemudm_skew {
    QEMUDM_SKEW_UNKNOWN = 0, /* a release is unknown */
    QEMUDM_SKEW_NONE,        /* ours is built from the installed release */
    QEMUDM_SKEW_NEWER,       /* XCP-ng's installed qemu is newer than ours */
    QEMUDM_SKEW_OLDER,       /* ... older than ours */
};

struct qemudm_info {
    char path[PATH_MAX];
    int usable;               /* runs and lists vgpu-stub */
    int cached;               /* the vgpu-stub answer came from the cache */
    char why[PATH_MAX + 256]; /* why not usable */
    char built_from[128];     /* EVR ours was built from; "" unknown */
    char installed[128];      /* EVR of XCP-ng's installed qemu; "" unknown */
    enum qemudm_skew skew;
    char skew_msg[PATH_MAX + 768]; /* for NEWER and OLDER */
};

/* Our binary's path: $VGPU_QEMU_DM, else QEMUDM_VGPU_PATH. */
const char *qemudm_vgpu_path(void);

/*
 * Fills q for the binary at path (NULL: qemudm_vgpu_path()).  cache_dir
 * (NULL: no cache) holds QEMUDM_CACHE_NAME.  Returns q->usable.
 */
int qemudm_probe(struct qemudm_info *q, const char *path,
                 const char *cache_dir);

/* One line for an operator: usable or why not, then the skew if any. */
void qemudm_summary(const struct qemudm_info *q, char *buf, size_t len);

/* rpm's comparison (rpmvercmp) of two versions or releases: <0, 0, >0. */
int qemudm_vercmp(const char *a, const char *b);
/* Of two [EPOCH:]VERSION[-RELEASE] strings, as rpm compares packages. */
int qemudm_evrcmp(const char *a, const char *b);

#endif /* VGPU_COMMON_QEMUDM_H */
