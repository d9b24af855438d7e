/*
 * libvgpu.c - the guest-side library of vgpu.
 *
 * This file owns device discovery in sysfs, the choice of the data path
 * (the kernel driver's /dev/vgpuN when it is bound, else BAR0 through
 * sysfs resource0), volatile aligned register access, the request/response
 * paths with bounded waits, and the checks on everything the device or the
 * driver returns: a buggy or hostile device gets an error code, never an
 * overrun or a hang.
 *
 * Every BAR access is one aligned 32-bit volatile load or store; buffers
 * are copied dword by dword (no memcpy on the BAR).
 */
#include "libvgpu.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "uapi/vgpu.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libvgpu assumes a little-endian guest (the protocol is little-endian)"
#endif

#define SYSFS_DEFAULT "/sys"
#define DEV_DEFAULT "/dev"
#define PCI_DEVICES_DIR "bus/pci/devices"
#define MAX_DEVICES 256
/* Polling: spin this many STATUS reads, then sleep 1 us doubling to 1 ms. */
#define POLL_SPIN_READS 200
#define POLL_SLEEP_MIN_NS 1000L
#define POLL_SLEEP_MAX_NS 1000000L

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static int
set_err(struct vgpu_ctx *ctx, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ctx->errmsg, sizeof(ctx->errmsg), fmt, ap);
    va_end(ap);
    return rc;
}

const char *vgpu_strerror(int rc)
{
    switch (rc) {
    case VGPU_OK:
        return "success";
    case VGPU_E_INVAL:
        return "invalid argument";
    case VGPU_E_NODEV:
        return "no vgpu device found";
    case VGPU_E_ACCESS:
        return "cannot access device";
    case VGPU_E_DEVICE:
        return "device error";
    case VGPU_E_TIMEOUT:
        return "timed out waiting for the device";
    case VGPU_E_BADRESP:
        return "invalid response from device";
    case VGPU_E_NOSPACE:
        return "response larger than buffer";
    case VGPU_E_VERSION:
        return "unsupported protocol version";
    case VGPU_E_NOTOPEN:
        return "device not open";
    case VGPU_E_NOTSUP:
        return "not possible on this path";
    default:
        return "unknown error";
    }
}

uint32_t vgpu_device_error(const struct vgpu_ctx *ctx)
{
    return ctx->dev_error;
}

const char *vgpu_errmsg(const struct vgpu_ctx *ctx)
{
    return ctx->errmsg;
}

/* ------------------------------------------------------------------ */
/* Register names                                                      */
/* ------------------------------------------------------------------ */

static const struct {
    const char *name;
    uint32_t offset;
} reg_names[] = {
    {"DOORBELL", VGPU_REG_DOORBELL},
    {"STATUS", VGPU_REG_STATUS},
    {"POOL_ID", VGPU_REG_POOL_ID},
    {"PRIORITY", VGPU_REG_PRIORITY},
    {"VM_ID", VGPU_REG_VM_ID},
    {"ERROR_CODE", VGPU_REG_ERROR_CODE},
    {"REQUEST_LEN", VGPU_REG_REQUEST_LEN},
    {"RESPONSE_LEN", VGPU_REG_RESPONSE_LEN},
    {"PROTOCOL_VER", VGPU_REG_PROTOCOL_VER},
    {"CAPABILITIES", VGPU_REG_CAPABILITIES},
    {"IRQ_CTRL", VGPU_REG_IRQ_CTRL},
    {"IRQ_STATUS", VGPU_REG_IRQ_STATUS},
    {"REQUEST_ID", VGPU_REG_REQUEST_ID},
    {"POOL_NAME_1", VGPU_REG_POOL_NAME_1},
    {"POOL_NAME_2", VGPU_REG_POOL_NAME_2},
    {"POOL_NAME_3", VGPU_REG_POOL_NAME_3},
};
#define N_REG_NAMES (sizeof(reg_names) / sizeof(reg_names[0]))

long vgpu_reg_offset(const char *name)
{
    size_t i;

    if (!name)
        return -1;
    if (strncasecmp(name, "VGPU_REG_", 9) == 0)
        name += 9;
    for (i = 0; i < N_REG_NAMES; i++)
        if (strcasecmp(name, reg_names[i].name) == 0)
            return (long)reg_names[i].offset;
    return -1;
}

const char *vgpu_reg_name(uint32_t offset)
{
    size_t i;

    for (i = 0; i < N_REG_NAMES; i++)
        if (reg_names[i].offset == offset)
            return reg_names[i].name;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Raw register and buffer access                                      */
/* ------------------------------------------------------------------ */

static inline uint32_t reg_rd(const struct vgpu_ctx *ctx, uint32_t off)
{
    return ctx->bar[off / VGPU_REG_WIDTH];
}

static inline void reg_wr(struct vgpu_ctx *ctx, uint32_t off, uint32_t val)
{
    ctx->bar[off / VGPU_REG_WIDTH] = val;
}

/* Copy len bytes into the request buffer, zero-padding the last dword. */
static void copy_to_req(struct vgpu_ctx *ctx, const void *src, size_t len)
{
    const unsigned char *p = src;
    size_t off;

    for (off = 0; off < len; off += VGPU_REG_WIDTH) {
        uint32_t v = 0;
        size_t n = len - off < VGPU_REG_WIDTH ? len - off : VGPU_REG_WIDTH;

        memcpy(&v, p + off, n);
        reg_wr(ctx, VGPU_REQ_BUF_OFFSET + (uint32_t)off, v);
    }
}

/* Copy len (<= VGPU_BUF_SIZE) bytes out of the response buffer. */
static void copy_from_resp(const struct vgpu_ctx *ctx, void *dst, size_t len)
{
    unsigned char *p = dst;
    size_t off;

    for (off = 0; off < len; off += VGPU_REG_WIDTH) {
        uint32_t v = reg_rd(ctx, VGPU_RESP_BUF_OFFSET + (uint32_t)off);
        size_t n = len - off < VGPU_REG_WIDTH ? len - off : VGPU_REG_WIDTH;

        memcpy(p + off, &v, n);
    }
}

static bool on_driver(const struct vgpu_ctx *ctx)
{
    return ctx->path != VGPU_PATH_SYSFS && ctx->devfd >= 0;
}

static int check_open(struct vgpu_ctx *ctx)
{
    if (!ctx)
        return VGPU_E_INVAL;
    if (!ctx->bar && !on_driver(ctx))
        return set_err(ctx, VGPU_E_NOTOPEN, "device not open");
    return VGPU_OK;
}

/* Open and on the sysfs path (registers mapped). */
static int check_regs(struct vgpu_ctx *ctx)
{
    int rc = check_open(ctx);

    if (rc)
        return rc;
    if (!ctx->bar)
        return set_err(ctx, VGPU_E_NOTSUP,
                       "register access needs the sysfs resource0 path: the "
                       "vgpu driver owns %s (%s)",
                       ctx->bdf, ctx->node);
    return VGPU_OK;
}

static int check_reg_offset(struct vgpu_ctx *ctx, uint32_t offset)
{
    if (offset % VGPU_REG_WIDTH || offset >= VGPU_BAR0_SIZE)
        return set_err(ctx, VGPU_E_INVAL,
                       "register offset 0x%x is not an aligned dword "
                       "inside BAR0 (0x%x bytes)",
                       offset, VGPU_BAR0_SIZE);
    return VGPU_OK;
}

int vgpu_read_reg(struct vgpu_ctx *ctx, uint32_t offset, uint32_t *value)
{
    int rc = check_regs(ctx);

    if (rc)
        return rc;
    if (!value)
        return set_err(ctx, VGPU_E_INVAL, "value pointer is NULL");
    rc = check_reg_offset(ctx, offset);
    if (rc)
        return rc;
    *value = reg_rd(ctx, offset);
    return VGPU_OK;
}

int vgpu_write_reg(struct vgpu_ctx *ctx, uint32_t offset, uint32_t value)
{
    int rc = check_regs(ctx);

    if (rc)
        return rc;
    rc = check_reg_offset(ctx, offset);
    if (rc)
        return rc;
    reg_wr(ctx, offset, value);
    return VGPU_OK;
}

/* ------------------------------------------------------------------ */
/* Discovery                                                           */
/* ------------------------------------------------------------------ */

/* out = a "/" b; false if that does not fit in PATH_MAX. */
static bool path_join(char out[PATH_MAX], const char *a, const char *b)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", a, b);

    return n > 0 && n < PATH_MAX;
}

/* Read a sysfs attribute holding one hex number ("0x1234\n"). */
static int read_hex_file(const char *path, uint32_t *val)
{
    char buf[32];
    char *end;
    unsigned long v;
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    errno = 0;
    v = strtoul(buf, &end, 16);
    if (errno || end == buf || v > UINT32_MAX)
        return -1;
    while (*end == '\n' || *end == ' ')
        end++;
    if (*end != '\0')
        return -1;
    *val = (uint32_t)v;
    return 0;
}

/* True if s is exactly "DDDD:BB:DD.F" in lower-case hex, F in 0..7. */
static bool bdf_is_canonical(const char *s)
{
    static const char pat[] = "hhhh:hh:hh.f";
    size_t i;

    if (strlen(s) != sizeof(pat) - 1)
        return false;
    for (i = 0; pat[i]; i++) {
        char c = s[i];

        if (pat[i] == 'h' &&
            !(isdigit((unsigned char)c) || (c >= 'a' && c <= 'f')))
            return false;
        if (pat[i] == 'f' && !(c >= '0' && c <= '7'))
            return false;
        if ((pat[i] == ':' || pat[i] == '.') && c != pat[i])
            return false;
    }
    return true;
}

/* Accept "DDDD:BB:DD.F" or "BB:DD.F", any case; write canonical form. */
static int bdf_normalize(const char *in, char out[VGPU_BDF_MAX])
{
    size_t len = strlen(in);
    size_t i;

    if (len == 7)
        snprintf(out, VGPU_BDF_MAX, "0000:%s", in);
    else if (len == 12)
        snprintf(out, VGPU_BDF_MAX, "%s", in);
    else
        return -1;
    for (i = 0; out[i]; i++)
        out[i] = (char)tolower((unsigned char)out[i]);
    return bdf_is_canonical(out) ? 0 : -1;
}

/* 1: vgpu device, 0: other device, -1: unreadable. ids gets vendor<<16|dev. */
static int probe_ids(const char *devdir, uint32_t *ids)
{
    char path[PATH_MAX];
    uint32_t vendor, device;

    if (!path_join(path, devdir, "vendor") || read_hex_file(path, &vendor))
        return -1;
    if (!path_join(path, devdir, "device") || read_hex_file(path, &device))
        return -1;
    *ids = (vendor & 0xffff) << 16 | (device & 0xffff);
    return vendor == VGPU_PCI_VENDOR_ID && device == VGPU_PCI_DEVICE_ID;
}

static const char *sysfs_root(const struct vgpu_open_opts *opts)
{
    const char *env;

    if (opts && opts->sysfs_root)
        return opts->sysfs_root;
    env = getenv(VGPU_SYSFS_ROOT_ENV);
    return env && *env ? env : SYSFS_DEFAULT;
}

static int cmp_bdf(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Collect the BDFs of all vgpu devices under devices/, sorted. */
static int scan_devices(struct vgpu_ctx *ctx, const char *devices,
                        char (*list)[VGPU_BDF_MAX], size_t *count)
{
    char path[PATH_MAX];
    struct dirent *de;
    uint32_t ids;
    DIR *dir;

    *count = 0;
    dir = opendir(devices);
    if (!dir)
        return set_err(ctx, VGPU_E_NODEV, "no vgpu device found (%s: %s)",
                       devices, strerror(errno));
    while ((de = readdir(dir)) && *count < MAX_DEVICES) {
        if (!bdf_is_canonical(de->d_name))
            continue;
        if (path_join(path, devices, de->d_name) && probe_ids(path, &ids) == 1)
            /* canonical: exactly 12 characters */
            memcpy(list[(*count)++], de->d_name, sizeof("0000:00:00.0"));
    }
    closedir(dir);
    qsort(list, *count, VGPU_BDF_MAX, cmp_bdf);
    return VGPU_OK;
}

static int select_by_index(struct vgpu_ctx *ctx, const char *devices,
                           unsigned int index)
{
    char(*list)[VGPU_BDF_MAX];
    size_t count;
    int rc;

    list = calloc(MAX_DEVICES, VGPU_BDF_MAX);
    if (!list)
        return set_err(ctx, VGPU_E_ACCESS, "out of memory");
    rc = scan_devices(ctx, devices, list, &count);
    if (rc)
        goto out_free_list;
    if (count == 0) {
        rc = set_err(ctx, VGPU_E_NODEV,
                     "no vgpu device found (no PCI device %04x:%04x in %s)",
                     VGPU_PCI_VENDOR_ID, VGPU_PCI_DEVICE_ID, devices);
        goto out_free_list;
    }
    if (index >= count) {
        rc = set_err(ctx, VGPU_E_NODEV,
                     "no vgpu device with index %u (%zu found)", index, count);
        goto out_free_list;
    }
    snprintf(ctx->bdf, sizeof(ctx->bdf), "%s", list[index]);
out_free_list:
    free(list);
    return rc;
}

static int select_by_bdf(struct vgpu_ctx *ctx, const char *devices,
                         const char *bdf)
{
    char path[PATH_MAX];
    uint32_t ids;
    int r;

    if (bdf_normalize(bdf, ctx->bdf))
        return set_err(ctx, VGPU_E_INVAL,
                       "bad PCI address '%s' (want DDDD:BB:DD.F or BB:DD.F)",
                       bdf);
    r = path_join(path, devices, ctx->bdf) ? probe_ids(path, &ids) : -1;
    if (r < 0)
        return set_err(ctx, VGPU_E_NODEV,
                       "no vgpu device found (no PCI "
                       "device %s in %s)",
                       ctx->bdf, devices);
    if (r == 0)
        return set_err(ctx, VGPU_E_NODEV,
                       "no vgpu device found (%s is %04x:%04x, not "
                       "%04x:%04x)",
                       ctx->bdf, ids >> 16, ids & 0xffff, VGPU_PCI_VENDOR_ID,
                       VGPU_PCI_DEVICE_ID);
    return VGPU_OK;
}

/* ------------------------------------------------------------------ */
/* Open / close                                                        */
/* ------------------------------------------------------------------ */

static int map_bar0(struct vgpu_ctx *ctx, const char *devices)
{
    char devdir[PATH_MAX], path[PATH_MAX];
    struct stat st;
    void *p;
    int rc;

    if (!path_join(devdir, devices, ctx->bdf) ||
        !path_join(path, devdir, "resource0"))
        return set_err(ctx, VGPU_E_ACCESS, "sysfs path too long");
    ctx->fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
    if (ctx->fd < 0)
        return set_err(ctx, VGPU_E_ACCESS,
                       "cannot open %s: %s (needs root, no kernel driver "
                       "bound, no kernel lockdown)",
                       path, strerror(errno));
    if (fstat(ctx->fd, &st)) {
        rc = set_err(ctx, VGPU_E_ACCESS, "cannot stat %s: %s", path,
                     strerror(errno));
        goto err_close_fd;
    }
    if (st.st_size < VGPU_BAR0_SIZE) {
        rc = set_err(ctx, VGPU_E_ACCESS, "%s is %lld bytes, BAR0 needs %u",
                     path, (long long)st.st_size, VGPU_BAR0_SIZE);
        goto err_close_fd;
    }
    p = mmap(NULL, VGPU_BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ctx->fd,
             0);
    if (p == MAP_FAILED) {
        rc = set_err(ctx, VGPU_E_ACCESS, "cannot map %s: %s", path,
                     strerror(errno));
        goto err_close_fd;
    }
    ctx->bar = p;
    return VGPU_OK;

err_close_fd:
    close(ctx->fd);
    ctx->fd = -1;
    return rc;
}

static int choose_of(struct vgpu_ctx *ctx, const struct vgpu_open_opts *opts,
                     int *choose)
{
    const char *env;

    *choose = opts ? opts->choose : VGPU_CHOOSE_DEFAULT;
    if (*choose == VGPU_CHOOSE_AUTO || *choose == VGPU_CHOOSE_DRIVER ||
        *choose == VGPU_CHOOSE_SYSFS)
        return VGPU_OK;
    if (*choose != VGPU_CHOOSE_DEFAULT)
        return set_err(ctx, VGPU_E_INVAL, "bad path choice %d", *choose);
    env = getenv(VGPU_PATH_ENV);
    *choose = VGPU_CHOOSE_AUTO;
    if (!env || !*env || strcmp(env, "auto") == 0)
        return VGPU_OK;
    if (strcmp(env, "driver") == 0)
        *choose = VGPU_CHOOSE_DRIVER;
    else if (strcmp(env, "sysfs") == 0)
        *choose = VGPU_CHOOSE_SYSFS;
    else
        return set_err(ctx, VGPU_E_INVAL, "%s='%s': want auto, driver or sysfs",
                       VGPU_PATH_ENV, env);
    return VGPU_OK;
}

/*
 * The driver's node for the selected device: <device>/misc/vgpuN in sysfs
 * names it; 1 when found (name in *node), 0 when no driver is bound.
 */
static int find_driver_node(struct vgpu_ctx *ctx, const char *devices,
                            const char *dev_root)
{
    char devdir[PATH_MAX], misc[PATH_MAX];
    struct dirent *de;
    DIR *dir;
    int found = 0;

    if (!path_join(devdir, devices, ctx->bdf) ||
        !path_join(misc, devdir, "misc"))
        return 0;
    dir = opendir(misc);
    if (!dir)
        return 0;
    while ((de = readdir(dir))) {
        int n;

        if (strncmp(de->d_name, "vgpu", 4) != 0)
            continue;
        n = snprintf(ctx->node, sizeof(ctx->node), "%s/%s", dev_root,
                     de->d_name);
        found = n > 0 && (size_t)n < sizeof(ctx->node);
        break;
    }
    closedir(dir);
    return found;
}

static int driver_errno(struct vgpu_ctx *ctx, const char *what, int err)
{
    int rc = err == ENODEV || err == ENXIO                    ? VGPU_E_NODEV
             : err == EINVAL || err == E2BIG || err == EAGAIN ? VGPU_E_INVAL
             : err == ETIMEDOUT                               ? VGPU_E_TIMEOUT
             : err == EIO                                     ? VGPU_E_BADRESP
                                                              : VGPU_E_ACCESS;

    return set_err(ctx, rc, "%s on %s: %s", what, ctx->node, strerror(err));
}

static int open_driver(struct vgpu_ctx *ctx)
{
    struct vgpu_ioctl_info info;
    struct vgpu_ioctl_driver_info di;
    int rc;

    ctx->devfd = open(ctx->node, O_RDWR | O_CLOEXEC);
    if (ctx->devfd < 0)
        return set_err(ctx, VGPU_E_ACCESS,
                       "the vgpu driver is bound to %s but %s cannot be "
                       "opened: %s",
                       ctx->bdf, ctx->node, strerror(errno));
    memset(&info, 0, sizeof(info));
    memset(&di, 0, sizeof(di));
    if (ioctl(ctx->devfd, VGPU_IOCTL_INFO, &info) < 0) {
        rc = driver_errno(ctx, "VGPU_IOCTL_INFO", errno);
        goto err_close;
    }
    if (ioctl(ctx->devfd, VGPU_IOCTL_DRIVER_INFO, &di) < 0) {
        rc = driver_errno(ctx, "VGPU_IOCTL_DRIVER_INFO", errno);
        goto err_close;
    }
    if (di.path != VGPU_DRIVER_PATH_V1 && di.path != VGPU_DRIVER_PATH_RINGS) {
        rc = set_err(ctx, VGPU_E_BADRESP, "%s: unknown driver path %u",
                     ctx->node, di.path);
        goto err_close;
    }
    ctx->path = di.path == VGPU_DRIVER_PATH_RINGS ? VGPU_PATH_DRIVER_RINGS
                                                  : VGPU_PATH_DRIVER_V1;
    ctx->max_xfer = di.max_xfer;
    ctx->max_inflight = di.max_inflight ? di.max_inflight : 1;
    ctx->version = info.protocol_version;
    ctx->caps = info.caps;
    return VGPU_OK;

err_close:
    close(ctx->devfd);
    ctx->devfd = -1;
    ctx->path = VGPU_PATH_SYSFS;
    return rc;
}

int vgpu_open(struct vgpu_ctx *ctx, const struct vgpu_open_opts *opts)
{
    char devices[PATH_MAX];
    const char *dev_root;
    int rc, choose, bound = 0;

    if (!ctx)
        return VGPU_E_INVAL;
    memset(ctx, 0, sizeof(*ctx));
    ctx->fd = -1;
    ctx->devfd = -1;
    ctx->path = VGPU_PATH_SYSFS;
    rc = choose_of(ctx, opts, &choose);
    if (rc)
        return rc;
    if (!path_join(devices, sysfs_root(opts), PCI_DEVICES_DIR))
        return set_err(ctx, VGPU_E_NODEV, "sysfs root path too long");
    if (opts && opts->bdf)
        rc = select_by_bdf(ctx, devices, opts->bdf);
    else
        rc = select_by_index(ctx, devices, opts ? opts->index : 0);
    if (rc)
        return rc;
    ctx->next_id = ((uint32_t)getpid() << 16) | 1u;
    dev_root =
        opts && opts->dev_root ? opts->dev_root : getenv(VGPU_DEV_ROOT_ENV);
    if (!dev_root || !*dev_root)
        dev_root = DEV_DEFAULT;
    if (choose != VGPU_CHOOSE_SYSFS)
        bound = find_driver_node(ctx, devices, dev_root);
    if (bound)
        return open_driver(ctx);
    ctx->node[0] = '\0';
    if (choose == VGPU_CHOOSE_DRIVER)
        return set_err(ctx, VGPU_E_NODEV,
                       "no vgpu driver bound to %s (load vgpu.ko, or use "
                       "%s=sysfs)",
                       ctx->bdf, VGPU_PATH_ENV);
    rc = map_bar0(ctx, devices);
    if (rc)
        return rc;
    ctx->version = reg_rd(ctx, VGPU_REG_PROTOCOL_VER);
    ctx->caps = reg_rd(ctx, VGPU_REG_CAPABILITIES);
    ctx->max_xfer = VGPU_BUF_SIZE;
    ctx->max_inflight = 1;
    return VGPU_OK;
}

int vgpu_path(const struct vgpu_ctx *ctx)
{
    return ctx ? ctx->path : VGPU_PATH_SYSFS;
}

const char *vgpu_path_describe(const struct vgpu_ctx *ctx, char *buf,
                               size_t len)
{
    if (!ctx || !on_driver(ctx))
        snprintf(buf, len, "sysfs resource0 (v1)");
    else
        snprintf(buf, len, "driver %s (%s)", ctx->node,
                 ctx->path == VGPU_PATH_DRIVER_RINGS ? "v2 rings"
                                                     : "v1 registers");
    return buf;
}

uint64_t vgpu_max_request(const struct vgpu_ctx *ctx)
{
    return ctx ? ctx->max_xfer : 0;
}

int vgpu_event_fd(const struct vgpu_ctx *ctx)
{
    return ctx && on_driver(ctx) ? ctx->devfd : -1;
}

int vgpu_session(struct vgpu_ctx *ctx, uint64_t *id)
{
    struct vgpu_ioctl_session s;
    int rc = check_open(ctx);

    if (rc != VGPU_OK)
        return rc;
    if (!on_driver(ctx))
        return set_err(ctx, VGPU_E_NOTSUP,
                       "sessions need the vgpu kernel driver (/dev/vgpuN)");
    memset(&s, 0, sizeof(s));
    if (ioctl(ctx->devfd, VGPU_IOCTL_SESSION, &s) < 0)
        return driver_errno(ctx, "VGPU_IOCTL_SESSION", errno);
    *id = s.id;
    return VGPU_OK;
}

void vgpu_close(struct vgpu_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->bar)
        munmap((void *)ctx->bar, VGPU_BAR0_SIZE);
    ctx->bar = NULL;
    if (ctx->fd >= 0)
        close(ctx->fd);
    ctx->fd = -1;
    if (on_driver(ctx))
        close(ctx->devfd);
    ctx->devfd = -1;
    ctx->path = VGPU_PATH_SYSFS;
}

/* INFO through the driver: the registers as it read them just now. */
static int driver_info(struct vgpu_ctx *ctx, struct vgpu_info *info)
{
    struct vgpu_ioctl_info di;
    uint8_t b[VGPU_POOL_NAME_MAX];

    memset(&di, 0, sizeof(di));
    if (ioctl(ctx->devfd, VGPU_IOCTL_INFO, &di) < 0)
        return driver_errno(ctx, "VGPU_IOCTL_INFO", errno);
    snprintf(info->node, sizeof(info->node), "%s", ctx->node);
    memcpy(b, di.pool, sizeof(b));
    for (unsigned i = 0; i < VGPU_POOL_NAME_REGS; i++)
        info->pool_regs[i] = vgpu_get_le32(b + 4 * i);
    info->pool_state = vgpu_pool_name_unpack(b, info->pool);
    info->priority = di.priority;
    info->vm_id = di.vm_id;
    info->version = di.protocol_version;
    info->caps = di.caps;
    return VGPU_OK;
}

int vgpu_info(struct vgpu_ctx *ctx, struct vgpu_info *info)
{
    int rc = check_open(ctx);

    if (rc)
        return rc;
    if (!info)
        return set_err(ctx, VGPU_E_INVAL, "info pointer is NULL");
    memset(info, 0, sizeof(*info));
    snprintf(info->bdf, sizeof(info->bdf), "%s", ctx->bdf);
    info->path = ctx->path;
    if (on_driver(ctx))
        return driver_info(ctx, info);
    /* Without VGPU_CAP_POOL_NAME the device has POOL_ID alone (a pool of
     * at most 4 bytes); POOL_NAME_1..3 would read as holes, 0. */
    for (unsigned i = 0; i < VGPU_POOL_NAME_REGS; i++)
        if (i == 0 || (ctx->caps & VGPU_CAP_POOL_NAME))
            info->pool_regs[i] = reg_rd(ctx, vgpu_pool_name_reg(i));
    info->pool_state = vgpu_pool_name_from_regs(info->pool_regs, info->pool);
    info->priority = reg_rd(ctx, VGPU_REG_PRIORITY);
    info->vm_id = reg_rd(ctx, VGPU_REG_VM_ID);
    info->version = reg_rd(ctx, VGPU_REG_PROTOCOL_VER);
    info->caps = reg_rd(ctx, VGPU_REG_CAPABILITIES);
    info->status = reg_rd(ctx, VGPU_REG_STATUS);
    info->error = reg_rd(ctx, VGPU_REG_ERROR_CODE);
    return VGPU_OK;
}

/* ------------------------------------------------------------------ */
/* Polling                                                             */
/* ------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/*
 * STATUS values that mean "not finished yet".  IDLE counts as pending for
 * a submission: a device that has not yet seen the doorbell still reads
 * IDLE (the polling bound covers a device that never does).
 */
static bool is_pending(uint32_t status, bool idle_pending)
{
    return status == VGPU_STATUS_BUSY ||
           (idle_pending && status == VGPU_STATUS_IDLE);
}

/* Spin briefly, then sleep with exponential backoff up to 1 ms. */
static int poll_status(struct vgpu_ctx *ctx, unsigned int timeout_ms,
                       bool idle_pending, uint32_t *status)
{
    uint64_t start = now_ns();
    uint64_t limit = (uint64_t)timeout_ms * 1000000ull;
    long sleep_ns = POLL_SLEEP_MIN_NS;
    uint64_t elapsed;
    int i;

    for (i = 0; i < POLL_SPIN_READS; i++) {
        *status = reg_rd(ctx, VGPU_REG_STATUS);
        if (!is_pending(*status, idle_pending))
            return VGPU_OK;
        cpu_relax();
    }
    for (;;) {
        struct timespec ts = {0, sleep_ns};

        *status = reg_rd(ctx, VGPU_REG_STATUS);
        if (!is_pending(*status, idle_pending))
            return VGPU_OK;
        elapsed = now_ns() - start;
        if (elapsed >= limit)
            break;
        if ((uint64_t)sleep_ns > limit - elapsed)
            ts.tv_nsec = (long)(limit - elapsed);
        nanosleep(&ts, NULL);
        if (sleep_ns < POLL_SLEEP_MAX_NS)
            sleep_ns *= 2;
        if (sleep_ns > POLL_SLEEP_MAX_NS)
            sleep_ns = POLL_SLEEP_MAX_NS;
    }
    return set_err(ctx, VGPU_E_TIMEOUT,
                   "no answer from the device within %u ms (STATUS %s)",
                   timeout_ms, vgpu_status_name(*status));
}

int vgpu_wait_idle(struct vgpu_ctx *ctx, unsigned int timeout_ms,
                   uint32_t *status)
{
    int rc = check_regs(ctx);

    if (rc)
        return rc;
    if (!status)
        return set_err(ctx, VGPU_E_INVAL, "status pointer is NULL");
    if (!timeout_ms)
        timeout_ms = VGPU_GUEST_POLL_TIMEOUT_MS_DEFAULT;
    return poll_status(ctx, timeout_ms, false, status);
}

/* ------------------------------------------------------------------ */
/* Submission                                                          */
/* ------------------------------------------------------------------ */

struct submission {
    const void *req;
    size_t len;
    uint32_t request_len;
    const uint32_t *doorbells;
    size_t n_doorbells;
    bool check_header;
};

static void ring(struct vgpu_ctx *ctx, const struct submission *s, uint32_t id)
{
    static const uint32_t submit = VGPU_DOORBELL_SUBMIT;
    const uint32_t *bells = s->n_doorbells ? s->doorbells : &submit;
    size_t n = s->n_doorbells ? s->n_doorbells : 1;
    size_t i;

    copy_to_req(ctx, s->req, s->len);
    reg_wr(ctx, VGPU_REG_REQUEST_LEN, s->request_len);
    reg_wr(ctx, VGPU_REG_REQUEST_ID, id);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (i = 0; i < n; i++)
        reg_wr(ctx, VGPU_REG_DOORBELL, bells[i]);
}

/* Turn a final STATUS into a result; fills resp (if not NULL) on DONE. */
static int finish(struct vgpu_ctx *ctx, uint32_t status, uint32_t id,
                  void *resp, size_t cap, size_t *resp_len)
{
    uint32_t rlen, echoed;

    if (status == VGPU_STATUS_ERROR) {
        ctx->dev_error = reg_rd(ctx, VGPU_REG_ERROR_CODE);
        return set_err(ctx, VGPU_E_DEVICE, "device error: %s (%u)",
                       vgpu_error_name(ctx->dev_error), ctx->dev_error);
    }
    if (status != VGPU_STATUS_DONE)
        return set_err(ctx, VGPU_E_BADRESP,
                       "device reported unknown "
                       "STATUS %u",
                       status);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (ctx->caps & VGPU_CAP_REQUEST_ID) {
        echoed = reg_rd(ctx, VGPU_REG_REQUEST_ID);
        if (echoed != id)
            return set_err(ctx, VGPU_E_BADRESP,
                           "device answered REQUEST_ID 0x%08x, expected "
                           "0x%08x",
                           echoed, id);
    }
    rlen = reg_rd(ctx, VGPU_REG_RESPONSE_LEN);
    if (rlen > VGPU_BUF_SIZE)
        return set_err(ctx, VGPU_E_BADRESP,
                       "device reported RESPONSE_LEN %u > %u", rlen,
                       VGPU_BUF_SIZE);
    if (resp && rlen > cap)
        return set_err(ctx, VGPU_E_NOSPACE,
                       "response of %u bytes does not fit in %zu", rlen, cap);
    if (resp)
        copy_from_resp(ctx, resp, rlen);
    *resp_len = rlen;
    return VGPU_OK;
}

/* Check the response header against the request header. */
static int check_resp_header(struct vgpu_ctx *ctx, const void *req,
                             const void *resp, size_t resp_len)
{
    struct vgpu_req_hdr rq;
    struct vgpu_resp_hdr rs;

    if (resp_len < sizeof(rs))
        return set_err(ctx, VGPU_E_BADRESP,
                       "response of %zu bytes is shorter than its header",
                       resp_len);
    memcpy(&rq, req, sizeof(rq));
    memcpy(&rs, resp, sizeof(rs));
    if (rs.opcode != rq.opcode)
        return set_err(ctx, VGPU_E_BADRESP,
                       "response opcode %u does not echo request opcode %u",
                       rs.opcode, rq.opcode);
    return VGPU_OK;
}

/* ------------------------------------------------------------------ */
/* The driver path                                                     */
/* ------------------------------------------------------------------ */

static int driver_submit(struct vgpu_ctx *ctx, const void *req, size_t len,
                         void *resp, size_t cap, uint32_t tag)
{
    struct vgpu_ioctl_submit s;

    memset(&s, 0, sizeof(s));
    s.req_addr = (uint64_t)(uintptr_t)req;
    s.req_len = len;
    s.resp_addr = (uint64_t)(uintptr_t)resp;
    s.resp_cap = cap;
    s.tag = tag;
    if (ioctl(ctx->devfd, VGPU_IOCTL_SUBMIT, &s) < 0) {
        int err = errno;

        if (err == E2BIG)
            return set_err(ctx, VGPU_E_INVAL,
                           "request of %zu bytes (response room %zu) is over "
                           "what %s carries (%llu bytes)",
                           len, cap, ctx->node,
                           (unsigned long long)ctx->max_xfer);
        if (err == EAGAIN)
            return set_err(ctx, VGPU_E_INVAL,
                           "%u requests in flight on %s already: reap first",
                           ctx->max_inflight, ctx->node);
        return driver_errno(ctx, "VGPU_IOCTL_SUBMIT", err);
    }
    return VGPU_OK;
}

int vgpu_submit_async(struct vgpu_ctx *ctx, const void *req, size_t len,
                      void *resp, size_t cap, uint32_t tag)
{
    int rc = check_open(ctx);

    if (rc)
        return rc;
    if (!on_driver(ctx))
        return set_err(ctx, VGPU_E_NOTSUP,
                       "requests in flight need the vgpu driver (%s is on "
                       "the sysfs path)",
                       ctx->bdf);
    if (!req || len < sizeof(struct vgpu_req_hdr) || (cap && !resp))
        return set_err(ctx, VGPU_E_INVAL, "bad request buffers");
    return driver_submit(ctx, req, len, resp, cap, tag);
}

int vgpu_reap(struct vgpu_ctx *ctx, struct vgpu_completion *c, unsigned int max,
              unsigned int min, unsigned int timeout_ms, unsigned int *count)
{
    struct vgpu_ioctl_completion kc[64];
    struct vgpu_ioctl_wait w;
    unsigned int got = 0;
    int rc = check_open(ctx);

    if (rc)
        return rc;
    if (count)
        *count = 0;
    if (!on_driver(ctx))
        return set_err(ctx, VGPU_E_NOTSUP, "reaping needs the vgpu driver");
    if (!c || !count || min > max)
        return set_err(ctx, VGPU_E_INVAL, "bad reap arguments");
    do {
        unsigned int want = max - got < 64 ? max - got : 64;

        memset(&w, 0, sizeof(w));
        w.comps_addr = (uint64_t)(uintptr_t)kc;
        w.max_count = want;
        w.min_count = min > got ? (min - got < want ? min - got : want) : 0;
        w.timeout_ms = timeout_ms;
        if (ioctl(ctx->devfd, VGPU_IOCTL_WAIT, &w) < 0)
            return driver_errno(ctx, "VGPU_IOCTL_WAIT", errno);
        if (w.count > want)
            return set_err(ctx, VGPU_E_BADRESP,
                           "%s returned %u completions for %u", ctx->node,
                           w.count, want);
        for (unsigned i = 0; i < w.count; i++) {
            c[got + i].tag = kc[i].tag;
            c[got + i].status = kc[i].status;
            c[got + i].error = kc[i].error;
            c[got + i].resp_len = (size_t)kc[i].resp_len;
        }
        got += w.count;
        *count = got;
        if (w.count < want)
            break;
    } while (got < max);
    if (got < min)
        return set_err(
            ctx, VGPU_E_TIMEOUT, "%u of %u completions within %u ms on %s", got,
            min, timeout_ms ? timeout_ms : VGPU_GUEST_POLL_TIMEOUT_MS_DEFAULT,
            ctx->node);
    return VGPU_OK;
}

/* A finished request's status and error as a result code. */
static int completion_rc(struct vgpu_ctx *ctx, const struct vgpu_completion *c,
                         size_t cap)
{
    if (c->error) {
        int err = -c->error;

        if (err == ENODEV)
            return set_err(ctx, VGPU_E_NODEV,
                           "the device went away (%s): request failed",
                           ctx->node);
        return driver_errno(ctx, "request", err > 0 ? err : EIO);
    }
    if (c->status != VGPU_ERR_NONE) {
        ctx->dev_error = c->status;
        return set_err(ctx, VGPU_E_DEVICE, "device error: %s (%u)",
                       vgpu_error_name(c->status), c->status);
    }
    if (c->resp_len > cap)
        return set_err(ctx, VGPU_E_BADRESP,
                       "driver reported a response of %zu bytes for %zu",
                       c->resp_len, cap);
    return VGPU_OK;
}

/* One request through the driver: submit, then reap until its tag. */
static int driver_exchange(struct vgpu_ctx *ctx, const void *req, size_t len,
                           void *resp, size_t cap, size_t *resp_len,
                           unsigned int timeout_ms)
{
    uint32_t tag = ctx->next_id++;
    struct vgpu_completion c;
    unsigned int n;
    int rc;

    if (len > ctx->max_xfer)
        return set_err(ctx, VGPU_E_INVAL,
                       "request of %zu bytes is over what %s carries (%llu "
                       "bytes)",
                       len, ctx->node, (unsigned long long)ctx->max_xfer);
    rc = driver_submit(ctx, req, len, resp, cap, tag);
    if (rc)
        return rc;
    for (;;) {
        rc = vgpu_reap(ctx, &c, 1, 1, timeout_ms, &n);
        if (rc)
            return rc;
        if (c.tag == tag)
            break;
        /* A request an earlier call gave up on: dropped. */
    }
    rc = completion_rc(ctx, &c, cap);
    if (rc)
        return rc;
    *resp_len = c.resp_len;
    return VGPU_OK;
}

static int submit_common(struct vgpu_ctx *ctx, const struct submission *s,
                         void *resp, size_t cap, size_t *resp_len,
                         unsigned int timeout_ms)
{
    uint32_t status, id;
    size_t rlen = 0;
    int rc;

    ctx->dev_error = VGPU_ERR_NONE;
    ctx->errmsg[0] = '\0';
    if (resp_len)
        *resp_len = 0;
    /* A 2.x device keeps every v1 register and behaviour: the v1 path
     * works on it unchanged.  The driver checks versions itself. */
    if (!on_driver(ctx) &&
        VGPU_VERSION_MAJOR(ctx->version) != VGPU_PROTOCOL_MAJOR &&
        VGPU_VERSION_MAJOR(ctx->version) != VGPU_PROTOCOL_V2_MAJOR)
        return set_err(
            ctx, VGPU_E_VERSION, "device speaks protocol %u.%u, library %u.%u",
            VGPU_VERSION_MAJOR(ctx->version), VGPU_VERSION_MINOR(ctx->version),
            VGPU_PROTOCOL_MAJOR, VGPU_PROTOCOL_MINOR);
    if (!timeout_ms)
        timeout_ms = VGPU_GUEST_POLL_TIMEOUT_MS_DEFAULT;
    if (on_driver(ctx)) {
        rc = driver_exchange(ctx, s->req, s->len, resp, cap, &rlen, timeout_ms);
        if (rc)
            return rc;
    } else {
        id = ctx->next_id++;
        ring(ctx, s, id);
        rc = poll_status(ctx, timeout_ms, true, &status);
        if (rc)
            return rc;
        rc = finish(ctx, status, id, resp, cap, &rlen);
        if (rc)
            return rc;
    }
    if (s->check_header) {
        rc = check_resp_header(ctx, s->req, resp, rlen);
        if (rc)
            return rc;
    }
    if (resp_len)
        *resp_len = rlen;
    return VGPU_OK;
}

int vgpu_submit(struct vgpu_ctx *ctx, const void *req, size_t len, void *resp,
                size_t cap, size_t *resp_len, unsigned int timeout_ms)
{
    struct submission s = {req, len, (uint32_t)len, NULL, 0, true};
    int rc = check_open(ctx);

    if (rc)
        return rc;
    if (!req || len < sizeof(struct vgpu_req_hdr) || len > ctx->max_xfer)
        return set_err(ctx, VGPU_E_INVAL,
                       "request must be %zu..%llu bytes, got %zu",
                       sizeof(struct vgpu_req_hdr),
                       (unsigned long long)ctx->max_xfer, len);
    if (!resp || !resp_len)
        return set_err(ctx, VGPU_E_INVAL, "response buffer is NULL");
    return submit_common(ctx, &s, resp, cap, resp_len, timeout_ms);
}

int vgpu_submit_raw(struct vgpu_ctx *ctx, const struct vgpu_raw_request *raw,
                    void *resp, size_t cap, size_t *resp_len,
                    unsigned int timeout_ms)
{
    struct submission s;
    int rc = check_open(ctx);

    if (rc)
        return rc;
    if (on_driver(ctx))
        return set_err(ctx, VGPU_E_NOTSUP,
                       "forged register writes need the sysfs resource0 "
                       "path: the vgpu driver owns %s",
                       ctx->bdf);
    if (!raw || raw->len > VGPU_BUF_SIZE || (raw->len && !raw->req) ||
        (raw->n_doorbells && !raw->doorbells))
        return set_err(ctx, VGPU_E_INVAL, "bad raw request");
    s = (struct submission){raw->req,       raw->len,         raw->request_len,
                            raw->doorbells, raw->n_doorbells, false};
    return submit_common(ctx, &s, resp, cap, resp_len, timeout_ms);
}

/* ------------------------------------------------------------------ */
/* Operations                                                          */
/* ------------------------------------------------------------------ */

#define HUGE_ALIGN (2u << 20)

void *vgpu_buffer_alloc(size_t size)
{
    size_t total = size + HUGE_ALIGN;
    uintptr_t base, aligned;
    void *p;

    if (!size || size > SIZE_MAX - 2 * HUGE_ALIGN)
        return NULL;
    p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    base = (uintptr_t)p;
    aligned = (base + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1);
    /* Keep the exact aligned run: size rounded up to the page. */
    if (aligned > base)
        munmap(p, aligned - base);
    total -= aligned - base;
    {
        size_t keep = (size + 4095) & ~(size_t)4095;

        if (total > keep)
            munmap((void *)(aligned + keep), total - keep);
    }
#ifdef MADV_HUGEPAGE
    madvise((void *)aligned, size, MADV_HUGEPAGE);
#endif
    return (void *)aligned;
}

void vgpu_buffer_free(void *p, size_t size)
{
    if (p)
        munmap(p, (size + 4095) & ~(size_t)4095);
}

/* Vector add through the driver's rings, more than one v1 buffer holds. */
static int vector_add_large(struct vgpu_ctx *ctx, const int32_t *a,
                            const int32_t *b, int32_t *c, size_t n,
                            unsigned int timeout_ms)
{
    size_t qlen = VGPU_VECTOR_ADD_REQ_LEN(n),
           plen = VGPU_VECTOR_ADD_RESP_LEN(n);
    struct vgpu_req_hdr hdr = {VGPU_OP_VECTOR_ADD, (uint32_t)n};
    struct vgpu_resp_hdr rh;
    char *req, *resp;
    size_t rlen;
    int rc;

    req = vgpu_buffer_alloc(qlen);
    resp = vgpu_buffer_alloc(plen);
    if (!req || !resp) {
        rc = set_err(ctx, VGPU_E_INVAL, "cannot allocate %zu + %zu bytes", qlen,
                     plen);
        goto out;
    }
    memcpy(req, &hdr, sizeof(hdr));
    memcpy(req + sizeof(hdr), a, n * sizeof(int32_t));
    memcpy(req + sizeof(hdr) + n * sizeof(int32_t), b, n * sizeof(int32_t));
    rc = vgpu_submit(ctx, req, qlen, resp, plen, &rlen, timeout_ms);
    if (rc)
        goto out;
    memcpy(&rh, resp, sizeof(rh));
    if (rh.count != n || rlen != plen) {
        rc = set_err(ctx, VGPU_E_BADRESP,
                     "vector add of %zu elements answered with count %u "
                     "in %zu bytes",
                     n, rh.count, rlen);
        goto out;
    }
    memcpy(c, resp + sizeof(rh), n * sizeof(int32_t));
out:
    vgpu_buffer_free(req, qlen);
    vgpu_buffer_free(resp, plen);
    return rc;
}

int vgpu_vector_add(struct vgpu_ctx *ctx, const int32_t *a, const int32_t *b,
                    int32_t *c, size_t n, unsigned int timeout_ms)
{
    uint32_t req[VGPU_BUF_SIZE / 4], resp[VGPU_BUF_SIZE / 4];
    struct vgpu_req_hdr hdr = {VGPU_OP_VECTOR_ADD, (uint32_t)n};
    struct vgpu_resp_hdr rh;
    size_t rlen;
    int rc = check_open(ctx);

    if (rc)
        return rc;
    if (a && b && c && n > VGPU_VECTOR_ADD_MAX_COUNT &&
        ctx->path == VGPU_PATH_DRIVER_RINGS && n <= UINT32_MAX &&
        VGPU_VECTOR_ADD_REQ_LEN(n) <= ctx->max_xfer)
        return vector_add_large(ctx, a, b, c, n, timeout_ms);
    if (!a || !b || !c || n < 1 || n > VGPU_VECTOR_ADD_MAX_COUNT)
        return set_err(ctx, VGPU_E_INVAL,
                       "vector add needs 1..%zu elements, got %zu",
                       (size_t)VGPU_VECTOR_ADD_MAX_COUNT, n);
    memcpy(req, &hdr, sizeof(hdr));
    memcpy((char *)req + sizeof(hdr), a, n * sizeof(int32_t));
    memcpy((char *)req + sizeof(hdr) + n * sizeof(int32_t), b,
           n * sizeof(int32_t));
    rc = vgpu_submit(ctx, req, VGPU_VECTOR_ADD_REQ_LEN(n), resp, sizeof(resp),
                     &rlen, timeout_ms);
    if (rc)
        return rc;
    memcpy(&rh, resp, sizeof(rh));
    if (rh.count != n || rlen != VGPU_VECTOR_ADD_RESP_LEN(n))
        return set_err(ctx, VGPU_E_BADRESP,
                       "vector add of %zu elements answered with count %u "
                       "in %zu bytes",
                       n, rh.count, rlen);
    memcpy(c, (char *)resp + sizeof(rh), n * sizeof(int32_t));
    return VGPU_OK;
}

int vgpu_saxpy(struct vgpu_ctx *ctx, float a, const float *x, const float *y,
               float *y_out, size_t n, unsigned int timeout_ms)
{
    uint32_t req[VGPU_BUF_SIZE / 4], resp[VGPU_BUF_SIZE / 4];
    struct vgpu_req_hdr hdr = {VGPU_OP_SAXPY, (uint32_t)n};
    struct vgpu_resp_hdr rh;
    char *p = (char *)req;
    size_t rlen;
    int rc = check_open(ctx);

    if (rc)
        return rc;
    if (!x || !y || !y_out || n < 1 || n > VGPU_SAXPY_MAX_COUNT)
        return set_err(ctx, VGPU_E_INVAL,
                       "saxpy needs 1..%zu elements, got %zu",
                       (size_t)VGPU_SAXPY_MAX_COUNT, n);
    memcpy(p, &hdr, sizeof(hdr));
    memcpy(p + sizeof(hdr), &a, sizeof(float));
    memcpy(p + sizeof(hdr) + sizeof(float), x, n * sizeof(float));
    memcpy(p + sizeof(hdr) + sizeof(float) + n * sizeof(float), y,
           n * sizeof(float));
    rc = vgpu_submit(ctx, req, VGPU_SAXPY_REQ_LEN(n), resp, sizeof(resp), &rlen,
                     timeout_ms);
    if (rc)
        return rc;
    memcpy(&rh, resp, sizeof(rh));
    if (rh.opcode != VGPU_OP_SAXPY || rh.count != n ||
        rlen != VGPU_SAXPY_RESP_LEN(n))
        return set_err(ctx, VGPU_E_BADRESP,
                       "saxpy of %zu elements answered with opcode %u count "
                       "%u in %zu bytes",
                       n, rh.opcode, rh.count, rlen);
    memcpy(y_out, (char *)resp + sizeof(rh), n * sizeof(float));
    return VGPU_OK;
}

int vgpu_sgemm(struct vgpu_ctx *ctx, uint32_t n, uint32_t seed,
               int64_t *checksum, unsigned int timeout_ms)
{
    uint32_t req[3], resp[VGPU_BUF_SIZE / 4];
    struct vgpu_req_hdr hdr = {VGPU_OP_SGEMM, n};
    struct vgpu_resp_hdr rh;
    uint64_t sum;
    size_t rlen;
    int rc = check_open(ctx);

    if (rc)
        return rc;
    if (!checksum || n < 1 || n > VGPU_SGEMM_MAX_N)
        return set_err(ctx, VGPU_E_INVAL, "sgemm needs n in 1..%u, got %u",
                       VGPU_SGEMM_MAX_N, n);
    memcpy(req, &hdr, sizeof(hdr));
    req[2] = seed;
    rc = vgpu_submit(ctx, req, VGPU_SGEMM_REQ_LEN, resp, sizeof(resp), &rlen,
                     timeout_ms);
    if (rc)
        return rc;
    memcpy(&rh, resp, sizeof(rh));
    if (rh.opcode != VGPU_OP_SGEMM || rh.count != n ||
        rlen != VGPU_SGEMM_RESP_LEN)
        return set_err(ctx, VGPU_E_BADRESP,
                       "sgemm of n=%u answered with opcode %u count %u in "
                       "%zu bytes",
                       n, rh.opcode, rh.count, rlen);
    sum = (uint64_t)resp[2] | (uint64_t)resp[3] << 32;
    *checksum = (int64_t)sum;
    return VGPU_OK;
}
