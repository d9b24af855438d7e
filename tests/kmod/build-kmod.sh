#!/bin/bash
# build-kmod.sh - builds vgpu.ko (guest-tools/kernel) out of tree with
# Kbuild, from a copy of its source (the checkout stays clean).
#
# Usage: build-kmod.sh OUT_DIR [KERNEL_VERSION] [make args, e.g. W=1]
#
# KERNEL_VERSION (default: the newest /boot/vmlinuz-*, the kernel the e2e
# tests boot; else `uname -r`) picks /lib/modules/<version>/build, or
# $VGPU_KDIR when set.  Writes OUT_DIR/vgpu.ko and OUT_DIR/kbuild.log.
# Exit 0: built; 1: the build failed; 77: no kernel headers for that
# version (Debian: linux-headers-amd64).
set -u
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
TOP=${VGPU_TOP:-$(cd "$HERE/../.." && pwd)}
OUT=${1:?usage: build-kmod.sh OUT_DIR [KERNEL_VERSION] [make args]}
shift
KVER=${1:-}
[ $# -gt 0 ] && shift
if [ -z "$KVER" ]; then
    k=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
    KVER=${k#/boot/vmlinuz-}
    [ -n "$KVER" ] || KVER=$(uname -r)
fi
KDIR=${VGPU_KDIR:-/lib/modules/$KVER/build}
if [ ! -f "$KDIR/Makefile" ]; then
    echo "SKIP: no kernel headers for $KVER at $KDIR (Debian: apt-get install linux-headers-amd64)"
    exit 77
fi
mkdir -p "$OUT"
SRC=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-kmod-XXXXXX")
trap 'rm -rf "$SRC"' EXIT
cp "$TOP"/guest-tools/kernel/{vgpu.c,Kbuild,Makefile} "$SRC/"
mkdir -p "$SRC/include/vgpu" "$SRC/include/uapi"
cp "$TOP"/include/vgpu/*.h "$SRC/include/vgpu/"
cp "$TOP"/include/uapi/vgpu.h "$SRC/include/uapi/"
cp "$TOP/VERSION" "$SRC/VERSION" 2>/dev/null
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u O make -C "$KDIR" M="$SRC" "$@" modules >"$OUT/kbuild.log" 2>&1
rc=$?
if [ $rc != 0 ] || [ ! -f "$SRC/vgpu.ko" ]; then
    echo "build-kmod.sh: the module did not build against $KDIR:" >&2
    tail -n 30 "$OUT/kbuild.log" >&2
    exit 1
fi
cp "$SRC/vgpu.ko" "$OUT/vgpu.ko.tmp" && mv "$OUT/vgpu.ko.tmp" "$OUT/vgpu.ko"
echo "build-kmod.sh: $OUT/vgpu.ko for $KVER"
