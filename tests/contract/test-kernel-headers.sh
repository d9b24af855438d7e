#!/bin/bash
# test-kernel-headers.sh - the contract's headers are includable from a
# Linux kernel module: uapi/vgpu.h and every include/vgpu header (through
# vgpu_protocol.h) compiled as a module compiles them, -D__KERNEL__ with no
# libc and no floating point.
#
#  1. kernel-check.c against kernel-api/, stand-ins for <linux/types.h> and
#     <linux/ioctl.h> that define only the __u8..__s64 types and the _IO*
#     macros, with -nostdinc (no libc header, not even the compiler's own,
#     can be reached), -ffreestanding and -mgeneral-regs-only (any use of
#     float fails); controls show that a libc include, a libc type and a
#     float each fail under exactly those flags;
#  2. uapi/vgpu.h in user space, against the system's <linux/*.h>
#     (linux-libc-dev), as a program calling the ioctl would include it;
#  3. when Debian's linux-headers are installed (/usr/src/linux-headers-*),
#     a real out-of-tree module built with kbuild around kernel-check.c,
#     with no warning from the contract's headers; without them this part
#     is left out and said so.
# Exit 0: all passed; 1: a failure; 77: no gcc.
set -u
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
TOP=${VGPU_TOP:-$(cd "$HERE/../.." && pwd)}
T=$(mktemp -d /tmp/vgpu-kernel-headers-XXXXXX)
trap 'rm -rf "$T"' EXIT
# ok, nok, check, show (and the counters passed, failed)
. "$HERE/../lib/check.sh"

command -v gcc >/dev/null || { echo "SKIP: gcc is not installed"; exit 77; }

# What kbuild gives every file (the warnings among them that C99 allows but
# the kernel does not), plus what keeps libc and the FPU out of reach.
KFLAGS=(-std=gnu11 -D__KERNEL__ -nostdinc -ffreestanding -fno-builtin
    -mgeneral-regs-only -Wall -Wextra -Werror -Wdeclaration-after-statement
    -Wvla -Wmissing-prototypes -Wstrict-prototypes -Wundef
    -I "$HERE/kernel-api" -I "$TOP/include")
kcc() { gcc "${KFLAGS[@]}" -c -o "$T/out.o" "$1" >"$T/cc.log" 2>&1; }

echo "== 1. against stand-ins for <linux/types.h> and <linux/ioctl.h>, no libc"
kcc "$HERE/kernel-check.c"
check "uapi/vgpu.h and vgpu_protocol.h (every include/vgpu header) compile as kernel code" \
    [ $? = 0 ] || show "$T/cc.log" 20
for h in "$TOP"/include/vgpu/*.h; do
    printf '#include "vgpu/%s"\n' "${h##*/}" >"$T/one.c"
    kcc "$T/one.c"
    check "include/vgpu/${h##*/} alone compiles as kernel code" [ $? = 0 ] ||
        show "$T/cc.log" 20
done
{ echo '#include <stdint.h>'; cat "$HERE/kernel-check.c"; } >"$T/control1.c"
kcc "$T/control1.c"
check "control: a libc header is not found under these flags" \
    grep -q 'stdint.h: No such file' "$T/cc.log"
printf 'uint32_t vgpu_control(void);\n' >"$T/control2.c"
kcc "$T/control2.c"
check "control: a libc type is unknown under these flags" grep -q 'uint32_t' "$T/cc.log"
printf 'float vgpu_control(float x);\nfloat vgpu_control(float x) { return x * 2; }\n' \
    >"$T/control3.c"
kcc "$T/control3.c"
check "control: floating point is refused under these flags" \
    grep -qi 'general.regs\|SSE' "$T/cc.log"

echo "== 2. uapi/vgpu.h in user space (the system's <linux/ioctl.h>)"
cat >"$T/user.c" <<'C'
#include <stdio.h>
#include <sys/ioctl.h>
#include "uapi/vgpu.h"

int main(void)
{
    struct vgpu_ioctl_info info = {0};

    printf("%lx %zu\n", (unsigned long)VGPU_IOCTL_INFO, sizeof(info));
    return info.vm_id;
}
C
gcc -std=c99 -Wall -Wextra -Werror -pedantic -I "$TOP/include" -o "$T/user" "$T/user.c" \
    >"$T/cc.log" 2>&1
check "a user-space program includes uapi/vgpu.h (-std=c99 -pedantic)" [ $? = 0 ] ||
    show "$T/cc.log" 20
OUT=$("$T/user" 2>&1)
check "VGPU_IOCTL_INFO is _IOR(0xBE, 0, 48 bytes) = 8030be00 ($OUT)" [ "$OUT" = "8030be00 48" ]

echo "== 3. a real kernel module (kbuild), when linux-headers are installed"
KDIR=
for d in /lib/modules/"$(uname -r)"/build /usr/src/linux-headers-*-amd64; do
    [ -f "$d/Makefile" ] && { KDIR=$d; break; }
done
if [ -z "$KDIR" ] || ! command -v make >/dev/null; then
    echo "note: no kernel headers (Debian: linux-headers-amd64): the kbuild part is left out"
else
    M=$T/module
    mkdir -p "$M"
    cp "$HERE/kernel-check.c" "$M/"
    cat >"$M/vgpu_kcheck.c" <<'C'
// SPDX-License-Identifier: GPL-2.0
/* A module that includes the vgpu contract (tests/contract). */
#include <linux/module.h>
#include "kernel-check.c"

static int __init vgpu_kcheck_init(void)
{
	return 0;
}
module_init(vgpu_kcheck_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vgpu contract include check");
C
    printf 'obj-m := vgpu_kcheck.o\nccflags-y := -I%s\n' "$TOP/include" >"$M/Kbuild"
    make -C "$KDIR" M="$M" modules >"$T/kbuild.log" 2>&1
    rc=$?
    check "kbuild builds a module including the contract ($KDIR)" \
        [ $rc = 0 ] && [ -f "$M/vgpu_kcheck.ko" ] || show "$T/kbuild.log" 20
    check "no warning from the contract's headers in the kbuild log" \
        bash -c '! grep -E "(include/vgpu/|uapi/vgpu\.h|vgpu_protocol\.h|kernel-check\.c).*warning" "$0"' \
        "$T/kbuild.log" || show "$T/kbuild.log" 20
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
