/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * uapi/vgpu.h - owns the ioctl ABI of the guest's /dev/vgpuN, the
 * character device of the vgpu kernel driver (protocol v2), in the style of
 * a Linux uapi header: only <linux/types.h> and <linux/ioctl.h>, fixed
 * width __u8/__u32/__u64 fields, no pointers, no padding, so one layout
 * serves 32- and 64-bit user space and the kernel.
 *
 * INFO gives the identity and versions the device shows in its registers;
 * SUBMIT, WAIT and DRIVER_INFO (v2) queue requests on user buffers, reap
 * their completions and say which data path the driver uses.  Existing
 * numbers and structs never change, a struct that must grow gets a new
 * number.
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

/*
 * VGPU_IOCTL_SUBMIT: queue one request (v2).  The request is req_len
 * bytes at user address req_addr (exactly a request of vgpu/ops.h); the
 * response is written to resp_cap bytes at resp_addr.  Both buffers stay
 * the caller's: the driver pins their pages and, on a device with
 * VGPU_CAP_RINGS, hands them to the device as scatter-gather lists (no copy
 * in the guest); on a v1-only device it copies them through the 1 KB
 * register buffers itself (req_len and resp_cap then at most 1 KB).  The
 * buffers must stay mapped until the request is reaped.  tag is the
 * caller's, given back with the completion.  Returns 0 once the request is
 * queued; -EAGAIN when this file already has max_inflight requests
 * submitted and not reaped; -E2BIG over max_xfer or max_sg; -ENODEV once
 * the device is gone.
 */
struct vgpu_ioctl_submit {
    __u64 req_addr;  /* user address of the request bytes */
    __u64 req_len;   /* >= 8 (struct vgpu_req_hdr) */
    __u64 resp_addr; /* user address of the response room */
    __u64 resp_cap;  /* bytes of room there (may be 0) */
    __u32 tag;       /* the caller's, echoed in the completion */
    __u32 flags;     /* 0 */
    __u64 reserved;  /* 0 */
};

/* One finished request, as VGPU_IOCTL_WAIT hands it back. */
struct vgpu_ioctl_completion {
    __u32 tag;      /* the tag given at submit */
    __u32 status;   /* enum vgpu_error of the device: 0 (NONE) on success */
    __s32 error;    /* 0, or a negative errno of the driver: -ENODEV (the
                     * device went away), -ETIMEDOUT (no answer within the
                     * driver's bound), -EIO (the device broke the
                     * protocol), -EFAULT (response not written back);
                     * status is then VGPU_ERR_NONE */
    __u32 reserved; /* 0 */
    __u64 resp_len; /* response bytes written from resp_addr (0 unless
                     * status and error are both 0) */
};

/*
 * VGPU_IOCTL_WAIT: reap completions of this file, oldest first.  Waits
 * until at least min_count are there (0: do not wait), at most timeout_ms
 * (0: VGPU_GUEST_POLL_TIMEOUT_MS_DEFAULT), interruptibly; then copies up
 * to max_count of them to the array at comps_addr and sets count.  Returns
 * 0 (count may be below min_count when time ran out, or when fewer are in
 * flight than asked for), or -EINTR, -EFAULT.  poll()/epoll on the file
 * reports EPOLLIN while a completion waits to be reaped, and EPOLLHUP once
 * the device is gone and nothing is left to reap.
 */
struct vgpu_ioctl_wait {
    __u64 comps_addr; /* user address of vgpu_ioctl_completion[max_count] */
    __u32 max_count;
    __u32 min_count;
    __u32 timeout_ms;
    __u32 count;    /* out: completions written */
    __u32 inflight; /* out: this file's requests still not reaped */
    __u32 reserved; /* 0 */
};

/* The driver's data path (VGPU_IOCTL_DRIVER_INFO .path). */
#define VGPU_DRIVER_PATH_V1 1    /* v1 registers, one request at a time */
#define VGPU_DRIVER_PATH_RINGS 2 /* v2 rings, DMA from pinned user pages */

/* Interrupts (VGPU_IOCTL_DRIVER_INFO .irq). */
#define VGPU_DRIVER_IRQ_POLL 0 /* the driver polls, bounded */
#define VGPU_DRIVER_IRQ_MSIX 1 /* MSI-X completion interrupts */

/* VGPU_IOCTL_DRIVER_INFO: how the driver talks to this device. */
struct vgpu_ioctl_driver_info {
    __u32 path;         /* VGPU_DRIVER_PATH_* */
    __u32 irq;          /* VGPU_DRIVER_IRQ_* */
    __u64 max_xfer;     /* largest req_len / resp_cap of a submit */
    __u32 max_sg;       /* SG entries per buffer at most (rings), else 0 */
    __u32 max_inflight; /* requests per file submitted and not reaped */
    __u32 queue_depth;  /* ring entries (rings), else 1 */
    __u32 reserved[3];  /* 0 */
};

/*
 * VGPU_IOCTL_SESSION: this open file's session id, a number no other open
 * file of the device has had since the driver was loaded (random high
 * half, counter low half).  Asking for it marks the file: when the file is
 * released (closed, or its process ended), the driver queues one last
 * request for the device, a protocol v3 SESSION_END of that id
 * (vgpu/rpc.h), so that the host frees what was made under it.  The guest
 * libcuda.so.1 tags its CUDA contexts with it.  On a device without rings
 * the request cannot be sent and the id is still given (-ENODEV once the
 * device is gone).
 */
struct vgpu_ioctl_session {
    __u64 id;
    __u64 reserved[3]; /* 0 */
};

#define VGPU_IOCTL_SUBMIT                                                      \
    _IOWR(VGPU_IOCTL_MAGIC, 0x01, struct vgpu_ioctl_submit)
#define VGPU_IOCTL_WAIT _IOWR(VGPU_IOCTL_MAGIC, 0x02, struct vgpu_ioctl_wait)
#define VGPU_IOCTL_DRIVER_INFO                                                 \
    _IOWR(VGPU_IOCTL_MAGIC, 0x03, struct vgpu_ioctl_driver_info)
#define VGPU_IOCTL_SESSION                                                     \
    _IOR(VGPU_IOCTL_MAGIC, 0x04, struct vgpu_ioctl_session)

#endif /* _UAPI_VGPU_H */
