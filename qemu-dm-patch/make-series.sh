#!/bin/bash
# make-series.sh OUTDIR - write a self-contained git-format patch series
# for packagers: the vgpu-stub device sources as new files, then the QEMU 7.2
# build glue from qemu-7.2/.  Applies with `patch -p1` (in `series` order)
# or `git am OUTDIR/*.patch` to Debian's qemu 7.2 source.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
OUT=$1
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

first=0001-hw-misc-add-the-vgpu-stub-device.patch
{
    echo "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001"
    echo "From: vgpu project <vgpu@localhost>"
    echo "Date: Tue, 24 Nov 2026 00:00:00 +0000"
    echo "Subject: [PATCH] hw/misc: add the vgpu-stub device"
    echo
    echo "The vgpu-stub PCI device (hw/misc/vgpu-stub.c) and the vgpu protocol"
    echo "contract it implements (include/hw/misc/vgpu_protocol.h)."
    echo "---"
    new_file_diff hw/misc/vgpu-stub.c "$HERE/vgpu-stub.c"
    new_file_diff include/hw/misc/vgpu_protocol.h "$TOP/include/vgpu_protocol.h"
    echo "-- "
    echo "vgpu"
} >"$OUT/$first"
echo "$first" >"$OUT/series"

i=1
while read -r p; do
    [ -n "$p" ] || continue
    i=$((i + 1))
    name=$(printf '%04d-%s' "$i" "${p#[0-9][0-9][0-9][0-9]-}")
    cp "$HERE/qemu-7.2/$p" "$OUT/$name"
    echo "$name" >>"$OUT/series"
done <"$HERE/qemu-7.2/series"

echo "wrote $i patches to $OUT" >&2
