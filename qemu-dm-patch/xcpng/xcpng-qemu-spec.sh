#!/bin/bash
# xcpng-qemu-spec.sh - turn XCP-ng's qemu.spec (qemu-dm 4.2.1) into the spec
# of the same package rebuilt with the vgpu-stub device.
#
# Usage: xcpng-qemu-spec.sh XCPNG_SPEC SERIES_DIR OUT_SPEC
#
#   XCPNG_SPEC  SPECS/qemu.spec of XCP-ng's qemu package
#   SERIES_DIR  what `make-series.sh --qemu 4.2.1 DIR` wrote (its `series`
#               file names the patches, which go to the package's SOURCES)
#   OUT_SPEC    the spec to write
#
# It changes exactly three things and nothing else:
#   - our patches become PatchNNNN: lines after the last existing Patch
#     line, numbered after XCP-ng's own (from 1100, or above the highest
#     number there), under a "# vgpu patches" comment; %autosetup -p1
#     applies them after XCP-ng's;
#   - the Release gets our suffix, .vgpu<N> (N from vgpu's VERSION
#     file's release counter below), before %{?dist}: same Name, same
#     Epoch, so yum sees a newer build of XCP-ng's own package;
#   - a %changelog entry on top.
# A spec that already has our patches is refused (exit 3).
set -euo pipefail

VGPU_RELEASE=${VGPU_RELEASE:-1}
die() { echo "xcpng-qemu-spec.sh: $*" >&2; exit "${2:-1}"; }
[ $# -eq 3 ] || die "usage: xcpng-qemu-spec.sh XCPNG_SPEC SERIES_DIR OUT_SPEC" 2
SPEC=$1 SERIES=$2/series OUT=$3
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VERSION=$(cat "$HERE/../../VERSION" 2>/dev/null || echo unknown)

[ -r "$SPEC" ] || die "cannot read $SPEC" 2
[ -r "$SERIES" ] || die "no series file in $2 (run make-series.sh --qemu 4.2.1)" 2
grep -q '^# vgpu patches' "$SPEC" && die "$SPEC already carries the vgpu patches" 3
grep -q '^Name: *qemu$' "$SPEC" || die "$SPEC is not the qemu package's spec" 2
grep -q '^%autosetup -p1' "$SPEC" ||
    die "$SPEC does not apply its patches with %autosetup -p1" 2
grep -q '^Release:' "$SPEC" || die "$SPEC has no Release line" 2

last_line=$(grep -n '^Patch[0-9]*:' "$SPEC" | tail -n 1 | cut -d: -f1)
[ -n "$last_line" ] || die "$SPEC has no Patch lines" 2
highest=$(sed -n 's/^Patch\([0-9][0-9]*\):.*/\1/p' "$SPEC" | sort -n | tail -n 1)
first=$((highest < 1100 ? 1100 : highest + 1))

patches=$(awk -v n="$first" 'NF { printf "Patch%d: %s\n", n++, $1 }' "$SERIES")
entry=$(printf '* %s vgpu project <vgpu@localhost>\n- vgpu %s: add the vgpu-stub device (%s)\n' \
    "$(LC_ALL=C date -u +'%a %b %d %Y')" "$VERSION" \
    "$(awk 'NF' "$SERIES" | tr '\n' ' ' | sed 's/ $//')")

awk -v last="$last_line" -v patches="$patches" -v entry="$entry" \
    -v suffix=".vgpu$VGPU_RELEASE" '
    /^Release:/ && !done_release {
        if (index($0, "%{?dist}")) sub(/%\{\?dist\}/, suffix "%{?dist}")
        else $0 = $0 suffix
        done_release = 1
    }
    { print }
    NR == last { print ""; print "# vgpu patches"; print patches }
    /^%changelog/ && !done_log { print entry; print ""; done_log = 1 }
' "$SPEC" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "xcpng-qemu-spec.sh: wrote $OUT (patches from Patch$first, release suffix .vgpu$VGPU_RELEASE)" >&2
