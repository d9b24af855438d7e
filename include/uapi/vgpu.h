/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * uapi/vgpu.h - owns the ioctl ABI of the guest's /dev/vgpuN, the
 * character device of the vgpu kernel driver (protocol v2), in the style of
 * a Linux uapi header: only <linux/types.h> and <linux/ioctl.h>, fixed
 * width __u8/__u32/__u64 fields, no pointers, no padding, so one layout
 * serves 32- and 64-bit user space and the kernel.
 *
 * What exists now is what v1 can already answer honestly: INFO, the
 * identity and versions the device shows in its registers.  v2 adds
 * submit and wait (requests on the submission ring, completions by
 * interrupt) as new numbers after INFO; existing numbers and structs never
 * change, a struct that must grow gets a new number.
 *
 * Values (caps, priority, pool name rule) are the contract's:
 * include/vgpu/regs.h and include/vgpu/names.h.
 */
#ifndef _UAPI_VGPU_H
#define _UAPI_VGPU_H

#include <linux/ioctl.h>
#include <linux/types.h>

/*
 * The ioctl type byte.  Free in Documentation/userspace-api/ioctl/
 * ioctl-number.rst when chosen; to be registered there with the driver.
 */
#define VGPU_IOCTL_MAGIC 0xBE

/* Bytes of a pool name (VGPU_POOL_NAME_MAX of include/vgpu/names.h). */
#define VGPU_UAPI_POOL_NAME_LEN 16

/* VGPU_IOCTL_INFO: what the device says about itself and its VM. */
struct vgpu_ioctl_info {
    __u32 protocol_version; /* PROTOCOL_VER: major << 16 | minor */
    __u32 caps;             /* CAPABILITIES: VGPU_CAP_* */
    __u32 priority;         /* enum vgpu_priority: 0 low, 1 medium, 2 high */
    __u32 vm_id;            /* VM_ID: host-unique, 0 before assignment */
    /* The pool name, zero padded, not NUL-terminated when 16 bytes long;
     * all zero when the VM has no pool yet. */
    __u8 pool[VGPU_UAPI_POOL_NAME_LEN];
    __u64 reserved[2]; /* 0; room for v2 without a new number */
};

#define VGPU_IOCTL_INFO _IOR(VGPU_IOCTL_MAGIC, 0x00, struct vgpu_ioctl_info)

#endif /* _UAPI_VGPU_H */
