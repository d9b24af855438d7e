/*
 * Stand-in for <linux/types.h> (tests/contract): not the kernel's header.
 * It gives only the fixed-width types a kernel module or a uapi header has,
 * so that a contract header that reaches for anything else (uint32_t,
 * size_t, bool, NULL, a libc function) fails to compile in the check.
 */
#ifndef _LINUX_TYPES_H
#define _LINUX_TYPES_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;

#endif
