#!/bin/bash
# make-series.sh [--qemu 7.2|4.2.1] OUTDIR - write a self-contained
# git-format patch series for packagers: the vgpu-stub device sources as
# new files, then the build glue of that QEMU version (qemu-<version>/).
# Applies with `patch -p1` (in `series` order) or `git am OUTDIR/*.patch`:
#   7.2    to Debian's qemu 7.2 source (the tests build this one);
#   4.2.1  to XCP-ng's qemu 4.2.1 after XCP-ng's own patches; the files
#          are named vgpu-NNNN-*.patch (a prefix no XCP-ng patch uses) for
#          the SOURCES folder of XCP-ng's qemu package, and OUTDIR also gets
#          `vgpu-version` (vgpu's VERSION, which xcpng/xcpng-qemu-spec.sh
#          puts in the Release); see xcpng/README.md.
set -euo pipefail

usage() { echo "usage: $0 [--qemu 7.2|4.2.1] OUTDIR" >&2; exit 2; }
QEMU=7.2
if [ "${1:-}" = --qemu ]; then
    [ $# -ge 2 ] || usage
    QEMU=$2
    shift 2
fi
[ $# -eq 1 ] || usage
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
OUT=$1
case $QEMU in
7.2) PREFIX= ;;
4.2.1) PREFIX=vgpu- ;;
*) echo "make-series.sh: no glue for QEMU $QEMU (7.2 or 4.2.1)" >&2; exit 2 ;;
esac
GLUE=$HERE/qemu-$QEMU
mkdir -p "$OUT"

new_file_diff() { # path-in-qemu-tree source-file
    local n
    [ -z "$(tail -c1 "$2")" ] || { echo "$2 must end with a newline" >&2; exit 1; }
    n=$(wc -l <"$2")
    echo "diff --git a/$1 b/$1"
    echo "new file mode 100644"
    echo "--- /dev/null"
    echo "+++ b/$1"
    echo "@@ -0,0 +1,$n @@"
    sed 's/^/+/' "$2"
}

first=${PREFIX}0001-hw-misc-add-the-vgpu-stub-device.patch
{
    echo "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001"
    echo "From: vgpu project <vgpu@localhost>"
    echo "Date: Tue, 24 Nov 2026 00:00:00 +0000"
    echo "Subject: [PATCH] hw/misc: add the vgpu-stub device"
    echo
    echo "The vgpu-stub PCI device (hw/misc/vgpu-stub.c) and the vgpu protocol"
    echo "contract it implements (include/hw/misc/vgpu_protocol.h and the"
    echo "headers under include/hw/misc/vgpu/ that it includes)."
    echo "---"
    new_file_diff hw/misc/vgpu-stub.c "$HERE/vgpu-stub.c"
    new_file_diff include/hw/misc/vgpu_protocol.h "$TOP/include/vgpu_protocol.h"
    for h in "$TOP"/include/vgpu/*.h; do
        new_file_diff "include/hw/misc/vgpu/${h##*/}" "$h"
    done
    echo "-- "
    echo "vgpu"
} >"$OUT/$first"
echo "$first" >"$OUT/series"

i=1
while read -r p; do
    [ -n "$p" ] || continue
    i=$((i + 1))
    name=$(printf '%s%04d-%s' "$PREFIX" "$i" "${p#[0-9][0-9][0-9][0-9]-}")
    cp "$GLUE/$p" "$OUT/$name"
    echo "$name" >>"$OUT/series"
done <"$GLUE/series"

if [ "$QEMU" = 4.2.1 ]; then
    if [ -r "$TOP/VERSION" ]; then
        head -n 1 "$TOP/VERSION" | tr -d '[:space:]' >"$OUT/vgpu-version"
        echo >>"$OUT/vgpu-version"
    else
        echo "make-series.sh: no $TOP/VERSION: vgpu-version not written" >&2
    fi
fi

echo "wrote $i patches for QEMU $QEMU to $OUT" >&2
