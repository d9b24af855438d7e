/*
 * vgpu/types.h - owns the integer types and the little-endian byte access
 * of the contract's headers.
 *
 * The contract is included by QEMU (4.2 and 7.2), the dom0 programs, the
 * guest tools and, in v2, a Linux kernel module.  A kernel build has no
 * <stdint.h>, so the headers under include/vgpu/ spell their types vgpu_u32
 * and the like, taken from <linux/types.h> under __KERNEL__ and from
 * <stdint.h> otherwise; nothing else of libc is used by them.  In user space
 * vgpu_u32 is uint32_t itself, so code passing uint32_t pointers is
 * unaffected.
 */
#ifndef VGPU_TYPES_H
#define VGPU_TYPES_H

#ifdef __KERNEL__
#include <linux/types.h>
typedef __u8 vgpu_u8;
typedef __u16 vgpu_u16;
typedef __u32 vgpu_u32;
typedef __u64 vgpu_u64;
typedef __s32 vgpu_s32;
typedef __s64 vgpu_s64;
#else
#include <stdint.h>
typedef uint8_t vgpu_u8;
typedef uint16_t vgpu_u16;
typedef uint32_t vgpu_u32;
typedef uint64_t vgpu_u64;
typedef int32_t vgpu_s32;
typedef int64_t vgpu_s64;
#endif

/*
 * Every multi-byte field of the contract (registers, payloads, socket
 * messages) is little-endian.  These read and write one byte at a time, so
 * they are right on any host and at any alignment.
 */
static inline vgpu_u16 vgpu_get_le16(const vgpu_u8 *p)
{
    return (vgpu_u16)(p[0] | p[1] << 8);
}

static inline void vgpu_put_le16(vgpu_u8 *p, vgpu_u16 v)
{
    p[0] = (vgpu_u8)(v & 0xff);
    p[1] = (vgpu_u8)(v >> 8);
}

static inline vgpu_u32 vgpu_get_le32(const vgpu_u8 *p)
{
    return (vgpu_u32)p[0] | (vgpu_u32)p[1] << 8 | (vgpu_u32)p[2] << 16 |
           (vgpu_u32)p[3] << 24;
}

static inline void vgpu_put_le32(vgpu_u8 *p, vgpu_u32 v)
{
    p[0] = (vgpu_u8)(v & 0xff);
    p[1] = (vgpu_u8)((v >> 8) & 0xff);
    p[2] = (vgpu_u8)((v >> 16) & 0xff);
    p[3] = (vgpu_u8)(v >> 24);
}

static inline vgpu_u64 vgpu_get_le64(const vgpu_u8 *p)
{
    return (vgpu_u64)vgpu_get_le32(p) | (vgpu_u64)vgpu_get_le32(p + 4) << 32;
}

static inline void vgpu_put_le64(vgpu_u8 *p, vgpu_u64 v)
{
    vgpu_put_le32(p, (vgpu_u32)(v & 0xffffffffu));
    vgpu_put_le32(p + 4, (vgpu_u32)(v >> 32));
}

#endif /* VGPU_TYPES_H */
