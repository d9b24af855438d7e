#!/bin/bash
# build-qemu-dm-vgpu.sh - the one command that (re)builds our qemu-dm
# package, qemu-dm-vgpu, from a release of XCP-ng's qemu package, in
# XCP-ng's build environment (xcp-ng-build-env; README.md here).
#
# Usage: build-qemu-dm-vgpu.sh [--expect EVR] [--series DIR] [--spec-only]
#                              [-D 'MACRO VALUE']... QEMU_CHECKOUT
#
#   QEMU_CHECKOUT  a checkout of https://github.com/xcp-ng-rpms/qemu at the
#                  release to build from (SPECS/qemu.spec, SOURCES/ with its
#                  Git LFS tarballs: git lfs pull); it is rpmbuild's _topdir
#   --expect EVR   refuse unless its spec is XCP-ng's qemu EVR, as the
#                  qemu-dm wrapper, the plugin's status and vgpu-smi name it
#                  when the installed qemu is newer than ours, e.g.
#                  2:4.2.1-5.2.16.1.xcpng8.3 (rpm -q --qf
#                  '%{EPOCH}:%{VERSION}-%{RELEASE}' qemu on the host)
#   --series DIR   our patch series (make-series.sh --qemu 4.2.1 DIR);
#                  default: the series beside this script (build/rpm/
#                  xcpng-qemu of `make rpm`), else ../make-series.sh's
#   --spec-only    stop once SPECS/qemu-dm-vgpu.spec is written
#   -D 'M V'       a macro for rpmspec and rpmbuild (e.g. -D 'dist .xcpng8.3'
#                  where the build environment does not define it)
#
# It copies our patches into SOURCES/, writes SPECS/qemu-dm-vgpu.spec from
# SPECS/qemu.spec with xcpng-qemu-spec.sh (XCP-ng's spec is left as it is;
# a rerun writes ours again), runs `rpmbuild -ba` on it ($VGPU_RPMBUILD,
# default rpmbuild) and prints the binary RPM's path last.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "build-qemu-dm-vgpu.sh: $1" >&2; exit "${2:-1}"; }
usage() {
    die "usage: build-qemu-dm-vgpu.sh [--expect EVR] [--series DIR] [--spec-only] [-D 'MACRO VALUE']... QEMU_CHECKOUT" 2
}

EXPECT= SERIES= SPEC_ONLY=0
DEFS=()
while [ $# -gt 1 ]; do
    case $1 in
    --expect) EXPECT=$2; shift 2 ;;
    --series) SERIES=$2; shift 2 ;;
    --spec-only) SPEC_ONLY=1; shift ;;
    -D) DEFS+=(--define "$2"); shift 2 ;;
    *) usage ;;
    esac
done
[ $# = 1 ] || usage
CO=$(cd "$1" 2>/dev/null && pwd) || die "no folder $1" 2
SPEC=$CO/SPECS/qemu.spec
OUT=$CO/SPECS/qemu-dm-vgpu.spec
[ -r "$SPEC" ] || die "no SPECS/qemu.spec in $CO (a checkout of xcp-ng-rpms/qemu)" 2
mkdir -p "$CO/SOURCES"

evr=$(rpmspec -q --srpm "${DEFS[@]}" --qf '%{epoch}:%{version}-%{release}' "$SPEC" 2>/dev/null) ||
    die "rpmspec cannot read $SPEC"
evr=${evr#(none):}
if [ -n "$EXPECT" ] && [ "$evr" != "$EXPECT" ]; then
    die "$SPEC is XCP-ng's qemu $evr, not $EXPECT: check out the commit of $EXPECT" 2
fi

# our series
TMP=
trap '[ -z "$TMP" ] || rm -rf "$TMP"' EXIT
if [ -z "$SERIES" ]; then
    if [ -r "$HERE/series" ]; then
        SERIES=$HERE
    else
        TMP=$(mktemp -d)
        "$HERE/../make-series.sh" --qemu 4.2.1 "$TMP" >/dev/null 2>&1 ||
            die "make-series.sh --qemu 4.2.1 failed"
        SERIES=$TMP
    fi
fi
[ -r "$SERIES/series" ] || die "no series file in $SERIES" 2
while read -r p _; do
    [ -n "$p" ] || continue
    cp "$SERIES/$p" "$CO/SOURCES/$p"
done <"$SERIES/series"

"$HERE/xcpng-qemu-spec.sh" --series "$SERIES" "$SPEC" "$OUT"
echo "build-qemu-dm-vgpu.sh: qemu-dm-vgpu from XCP-ng's qemu $evr: $OUT" >&2
if [ "$SPEC_ONLY" = 1 ]; then
    echo "$OUT"
    exit 0
fi
"${VGPU_RPMBUILD:-rpmbuild}" -ba --define "_topdir $CO" "${DEFS[@]}" "$OUT" >&2 ||
    die "rpmbuild of $OUT failed"
nvr=$(rpmspec -q "${DEFS[@]}" --qf '%{name}-%{version}-%{release}.%{arch}' "$OUT" 2>/dev/null)
rpm=$CO/RPMS/${nvr##*.}/$nvr.rpm
[ -f "$rpm" ] || die "rpmbuild wrote no $rpm"
echo "$rpm"
