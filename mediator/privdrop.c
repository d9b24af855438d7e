/*
 * privdrop.c - owns the daemon's privileges after start: which
 * capabilities it keeps, and nothing it could gain back.
 *
 * The mediator stays uid 0: the chroot folders, xenstored's socket and
 * /run/vgpu belong to root, and a uid change would lose them all.  What a
 * root process can do beyond its files comes from capabilities, so all
 * but a few go, from the effective, permitted, inheritable and ambient
 * sets and from the bounding set (so no exec, setuid binary included, can
 * bring one back), and no_new_privs is set.  Kept:
 *
 *   CAP_CHOWN             each VM's socket is given to its qemu-dm's uid
 *                         (domain.c), for domains that appear at any time;
 *   CAP_DAC_OVERRIDE      a chroot folder may belong to qemu-dm's uid
 *                         (the folder's owner is then its uid), and the
 *                         socket is made and removed in it;
 *   CAP_NET_BIND_SERVICE  only with --metrics-listen on a port below 1024.
 *
 * Capabilities are per thread, so this runs before any thread exists
 * (main, before mediator_open): every thread the daemon or libcuda starts
 * later inherits the reduced sets.  Hence the CUDA driver initialises
 * without the capabilities too: its device nodes must exist before the
 * daemon starts (the unit runs nvidia-modprobe first).
 */
#include "privdrop.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Older kernel headers (the dom0 sysroot's) may lack these. */
#ifndef PR_SET_NO_NEW_PRIVS
#define PR_SET_NO_NEW_PRIVS 38
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#endif
#ifndef PR_CAP_AMBIENT_CLEAR_ALL
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* The highest capability the running kernel knows (not the headers'). */
static int last_cap(void)
{
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
    int last = -1;

    if (f) {
        if (fscanf(f, "%d", &last) != 1) {
            last = -1;
        }
        fclose(f);
    }
    return last >= 0 && last < 64 ? last : CAP_LAST_CAP;
}

uint64_t privdrop_kept_mask(const struct privdrop_config *cfg)
{
    uint64_t keep = (1ull << CAP_CHOWN) | (1ull << CAP_DAC_OVERRIDE);

    if (cfg->bind_low_port) {
        keep |= 1ull << CAP_NET_BIND_SERVICE;
    }
    return keep;
}

static int set_caps(uint64_t eff, uint64_t prm, char *why, size_t why_len)
{
    struct __user_cap_header_struct h = {.version =
                                             _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2];

    memset(d, 0, sizeof(d));
    d[0].effective = (uint32_t)eff;
    d[1].effective = (uint32_t)(eff >> 32);
    d[0].permitted = (uint32_t)prm;
    d[1].permitted = (uint32_t)(prm >> 32);
    if (syscall(SYS_capset, &h, d)) {
        snprintf(why, why_len, "capset: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int get_caps(uint64_t *eff, uint64_t *prm, char *why, size_t why_len)
{
    struct __user_cap_header_struct h = {.version =
                                             _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2];

    memset(d, 0, sizeof(d));
    if (syscall(SYS_capget, &h, d)) {
        snprintf(why, why_len, "capget: %s", strerror(errno));
        return -1;
    }
    *eff = d[0].effective | (uint64_t)d[1].effective << 32;
    *prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
    return 0;
}

int privdrop_apply(const struct privdrop_config *cfg, uint64_t *kept, char *why,
                   size_t why_len)
{
    uint64_t keep = privdrop_kept_mask(cfg), eff, prm;
    int last = last_cap();

    *kept = 0;
    if (geteuid() != 0) {
        snprintf(why, why_len, "not running as root: nothing to drop");
        return 1;
    }
    if (get_caps(&eff, &prm, why, why_len)) {
        return -1;
    }
    /* What we keep is what we have of the list (a container may have
     * less); asking for more than the permitted set fails. */
    keep &= prm;
    /* The bounding set first: dropping from it needs CAP_SETPCAP, which
     * the capset below removes.  EINVAL: the kernel lacks that one. */
    for (int cap = 0; cap <= last; cap++) {
        if (!(keep & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) &&
            errno != EINVAL) {
            snprintf(why, why_len,
                     "dropping capability %d from the bounding "
                     "set: %s",
                     cap, strerror(errno));
            return -1;
        }
    }
    /* Kernels before 4.3 have no ambient set: EINVAL, nothing to clear. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) &&
        errno != EINVAL) {
        snprintf(why, why_len, "clearing the ambient set: %s", strerror(errno));
        return -1;
    }
    if (set_caps(keep, keep, why, why_len)) {
        return -1;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
        snprintf(why, why_len, "no_new_privs: %s", strerror(errno));
        return -1;
    }
    /* Believe the kernel, not the calls above. */
    if (get_caps(&eff, &prm, why, why_len)) {
        return -1;
    }
    if (eff != keep || prm != keep) {
        snprintf(why, why_len, "capabilities still 0x%llx after the drop",
                 (unsigned long long)prm);
        return -1;
    }
    *kept = keep;
    return 0;
}

void privdrop_describe(uint64_t mask, char *out, size_t len)
{
    static const struct {
        int cap;
        const char *name;
    } names[] = {
        {CAP_CHOWN, "CAP_CHOWN"},
        {CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE"},
        {CAP_NET_BIND_SERVICE, "CAP_NET_BIND_SERVICE"},
    };
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (mask & (1ull << names[i].cap)) {
            int n = snprintf(out + used, len - used, "%s%s", used ? " " : "",
                             names[i].name);

            if (n < 0 || (size_t)n >= len - used) {
                return;
            }
            used += (size_t)n;
        }
    }
    if (!used) {
        snprintf(out, len, "none");
    }
}
