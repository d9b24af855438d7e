#!/bin/bash
# xcpng-qemu-spec.sh - turn XCP-ng's qemu.spec (package qemu: qemu-dm, QEMU
# 4.2.1) into the spec of OUR package, qemu-dm-vgpu: the same source, the
# same patches and the same build, then the vgpu series, installing one
# binary beside XCP-ng's, never in place of it (README.md here).
#
# Usage: xcpng-qemu-spec.sh [--series DIR] XCPNG_SPEC OUT_SPEC
#        xcpng-qemu-spec.sh XCPNG_SPEC SERIES_DIR OUT_SPEC
#
#   XCPNG_SPEC  SPECS/qemu.spec of XCP-ng's qemu package (xcp-ng-rpms/qemu)
#   SERIES_DIR  what `make-series.sh --qemu 4.2.1 DIR` wrote: its `series`
#               file names our patches (they go to the package's SOURCES),
#               its `vgpu-version` file gives vgpu's version.  Default: this
#               script's folder when it holds a `series` file (as in the
#               build/rpm/xcpng-qemu folder that `make rpm` writes), else a
#               series made on the fly with ../make-series.sh.
#   OUT_SPEC    the spec to write, e.g. SPECS/qemu-dm-vgpu.spec (not
#               XCPNG_SPEC itself: XCP-ng's spec stays as it is)
#
# What it keeps, as XCP-ng wrote it: the %global/%define lines, Version,
# License, Source and Patch lines, Requires, BuildRequires, the Conflicts
# that do not name qemu, %prep and %build (so the binary is XCP-ng's build,
# configure line included), and XCP-ng's %changelog below ours.  What it
# changes:
#   - Name: qemu -> qemu-dm-vgpu, a Summary and %description of ours; no
#     Epoch (ours starts at none); Provides: and Obsoletes: lines, and
#     Conflicts: naming qemu, are dropped: ours never replaces, obsoletes or
#     conflicts with XCP-ng's qemu;
#   - Release: XCP-ng's, then .vgpu<VERSION>.<R> before %{?dist}, e.g.
#     5.2.15.2.vgpu0.1.0.1.xcpng8.3: a build from XCP-ng's next release
#     sorts above one from this (R = $VGPU_QEMU_REBUILD, default 1);
#   - after the Release: the XCP-ng release it is built from,
#     %{xcpng_qemu_evr} = XCP-ng's EPOCH:VERSION-RELEASE (with %{?dist}),
#     as `Provides: qemu-dm-vgpu(xcpng-qemu) = <that>`, and
#     `Requires: qemu` (unversioned: XCP-ng's package brings the firmware,
#     keymaps and the stock wrapper's path that ours is mounted over, and
#     any release of it may be installed: ours never holds its updates);
#     no debuginfo subpackage (it would ship /usr/src/debug/qemu-4.2.1/,
#     which XCP-ng's qemu-debuginfo ships too);
#   - our patches as PatchNNNN: lines under a "# vgpu patches" comment
#     after XCP-ng's last Patch line, numbered from 1100 (or one above
#     XCP-ng's highest); `%autosetup -p1` applies them after XCP-ng's, in
#     the tarball's folder (-n qemu-%{version}: the Name changed);
#   - %install, %check and %files are ours: the binary as
#     /usr/libexec/vgpu/qemu-system-i386 and, beside it,
#     qemu-system-i386.xcpng-release (xcpng-qemu=<EVR>, package=<our NVR>,
#     vgpu=<VERSION>); %check runs `-device help` and wants vgpu-stub.
#     Nothing of what XCP-ng's package installs is installed again;
#   - a %changelog entry on top, `* <date> <packager> - <version>-<release
#     without dist>` (VGPU_PACKAGER, SOURCE_DATE_EPOCH).
# vgpu's version: $VGPU_VERSION, else SERIES_DIR/vgpu-version, else the
# VERSION file of the vgpu tree this script is in; without any of them the
# suffix is .vgpu.<R> and a warning says so.
#
# Exit status: 0 written; 2 usage or a spec this script does not recognise;
# 3 the spec already is a converted one (nothing written).
set -euo pipefail

die() { echo "xcpng-qemu-spec.sh: $1" >&2; exit "${2:-1}"; }
usage() { die "usage: xcpng-qemu-spec.sh [--series DIR] XCPNG_SPEC OUT_SPEC" 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VGPU_QEMU_DIR=/usr/libexec/vgpu # common/qemudm.h: QEMUDM_VGPU_PATH

SERIES_DIR=
if [ "${1:-}" = --series ]; then
    [ $# -ge 2 ] || usage
    SERIES_DIR=$2
    shift 2
fi
case $# in
2) SPEC=$1 OUT=$2 ;;
3) [ -z "$SERIES_DIR" ] || usage; SPEC=$1 SERIES_DIR=$2 OUT=$3 ;;
*) usage ;;
esac

[ -r "$SPEC" ] || die "cannot read $SPEC" 2
if grep -q '^# vgpu patches$' "$SPEC" ||
    grep -Eq '^Name:[[:space:]]*qemu-dm-vgpu[[:space:]]*$' "$SPEC"; then
    die "$SPEC already is the spec of qemu-dm-vgpu: nothing done" 3
fi
grep -Eq '^Name:[[:space:]]*qemu[[:space:]]*$' "$SPEC" ||
    die "$SPEC is not the spec of XCP-ng's qemu package (Name: qemu)" 2
grep -Eq '^%autosetup([[:space:]].*)?[[:space:]]-p1([[:space:]]|$)' "$SPEC" ||
    die "$SPEC does not apply its patches with %autosetup -p1" 2
for tag in Release Version; do
    [ "$(grep -c "^$tag:" "$SPEC")" = 1 ] ||
        die "$SPEC must have exactly one $tag: line" 2
done
for sect in %description %prep %build %install %files %changelog; do
    [ "$(grep -Ec "^$sect([[:space:]]|\$)" "$SPEC")" = 1 ] ||
        die "$SPEC must have exactly one $sect section" 2
done
# Sections other than these would be XCP-ng's (subpackages, scriptlets):
# ours has none of them.
other=$(grep -Eo '^%(package|pre|post|preun|postun|pretrans|posttrans|trigger[a-z]*|filetrigger[a-z]*|verifyscript)([[:space:]]|$)' "$SPEC" | head -n 1 || :)
[ -z "$other" ] || die "$SPEC has a ${other% } section, which this script does not know how to convert" 2
last_line=$(grep -n '^Patch[0-9][0-9]*:' "$SPEC" | tail -n 1 | cut -d: -f1)
[ -n "$last_line" ] || die "$SPEC has no PatchNNNN: lines" 2
[ "$(cd "$(dirname "$OUT")" 2>/dev/null && pwd)/$(basename "$OUT")" != \
    "$(cd "$(dirname "$SPEC")" && pwd)/$(basename "$SPEC")" ] ||
    die "OUT_SPEC must not be XCPNG_SPEC: write SPECS/qemu-dm-vgpu.spec beside it" 2

# --- our patches
TMP=
trap '[ -z "$TMP" ] || rm -rf "$TMP"' EXIT
if [ -z "$SERIES_DIR" ]; then
    if [ -r "$HERE/series" ]; then
        SERIES_DIR=$HERE
    elif [ -x "$HERE/../make-series.sh" ]; then
        TMP=$(mktemp -d)
        "$HERE/../make-series.sh" --qemu 4.2.1 "$TMP" 2>/dev/null ||
            die "make-series.sh --qemu 4.2.1 failed"
        SERIES_DIR=$TMP
    else
        die "no series: pass --series DIR (what make-series.sh --qemu 4.2.1 DIR wrote)" 2
    fi
fi
[ -r "$SERIES_DIR/series" ] ||
    die "no series file in $SERIES_DIR (run make-series.sh --qemu 4.2.1 DIR)" 2
mapfile -t patches < <(awk 'NF { print $1 }' "$SERIES_DIR/series")
[ ${#patches[@]} -gt 0 ] || die "$SERIES_DIR/series is empty" 2
for p in "${patches[@]}"; do
    [[ $p =~ ^vgpu-[0-9]{4}-[A-Za-z0-9._-]+\.patch$ ]] ||
        die "unexpected patch name '$p' in $SERIES_DIR/series" 2
    [ -r "$SERIES_DIR/$p" ] || die "$SERIES_DIR/$p is missing" 2
done

# --- numbers: after XCP-ng's own
highest=$(sed -n 's/^Patch\([0-9][0-9]*\):.*/\1/p' "$SPEC" | sort -n | tail -n 1)
first=$((10#$highest < 1100 ? 1100 : 10#$highest + 1))

# --- release suffix
REBUILD=${VGPU_QEMU_REBUILD:-1}
[[ $REBUILD =~ ^[0-9]+$ ]] || die "VGPU_QEMU_REBUILD must be a number, not '$REBUILD'" 2
version=${VGPU_VERSION:-}
from="VGPU_VERSION"
if [ -z "$version" ] && [ -r "$SERIES_DIR/vgpu-version" ]; then
    version=$(head -n 1 "$SERIES_DIR/vgpu-version" | tr -d '[:space:]')
    from="$SERIES_DIR/vgpu-version"
fi
if [ -z "$version" ] && [ -r "$HERE/../../VERSION" ]; then
    version=$(head -n 1 "$HERE/../../VERSION" | tr -d '[:space:]')
    from="$(cd "$HERE/../.." && pwd)/VERSION"
fi
if [ -z "$version" ]; then
    echo "xcpng-qemu-spec.sh: warning: vgpu's version is unknown (no VGPU_VERSION," \
        "no vgpu-version in $SERIES_DIR, no VERSION file above $HERE):" \
        "the Release suffix is .vgpu.$REBUILD without it" >&2
else
    [[ $version =~ ^[0-9][0-9A-Za-z.+~]*$ ]] ||
        die "bad vgpu version '$version' (from $from)" 2
fi
suffix=".vgpu$version.$REBUILD"

# --- XCP-ng's Epoch, Version and Release, as the spec writes them
epoch=$(sed -n 's/^Epoch:[[:space:]]*\([^[:space:]]*\).*/\1/p' "$SPEC" | head -n 1)
ver_txt=$(sed -n 's/^Version:[[:space:]]*//p' "$SPEC" | sed 's/[[:space:]]*$//')
rel_txt=$(sed -n 's/^Release:[[:space:]]*//p' "$SPEC" | sed 's/[[:space:]]*$//')
case $rel_txt in
*%{?dist}*) ;;
*) rel_txt="$rel_txt%{?dist}" ;;
esac
xcpng_evr="${epoch:+$epoch:}$ver_txt-$rel_txt"

# --- changelog entry: XCP-ng's top entry gives <version>-<release>
top_evr=$(awk '/^%changelog/ { on = 1; next }
    on && /^\*/ { n = split($0, w, " "); print w[n]; exit }' "$SPEC")
if [[ $top_evr =~ ^[0-9][^-]*-[^-]+$ ]]; then
    evr=" - $top_evr$suffix"
else
    evr=
    top_evr=
    echo "xcpng-qemu-spec.sh: warning: XCP-ng's newest changelog entry has no" \
        "version-release: ours has none either" >&2
fi
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    day=$(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" +'%a %b %d %Y')
else
    day=$(LC_ALL=C date -u +'%a %b %d %Y')
fi
packager=${VGPU_PACKAGER:-vgpu project <vgpu@localhost>}
last_no=$((first + ${#patches[@]} - 1))
entry="* $day $packager$evr
- qemu-dm-vgpu: XCP-ng's qemu ${top_evr:-(release unknown)} with the vgpu-stub
  device${version:+ (vgpu $version)}: Patch$first-$last_no; installs
  $VGPU_QEMU_DIR/qemu-system-i386 beside XCP-ng's qemu-dm"

# --- write (values go through the environment: awk -v would expand \)
tmp_out="$OUT.tmp.$$"
X_LAST=$last_line X_FIRST=$first X_LIST="${patches[*]}" X_ENTRY=$entry \
X_SUFFIX=$suffix X_EVR=$xcpng_evr X_DIR=$VGPU_QEMU_DIR X_VERSION=${version:-unknown} awk '
    BEGIN {
        suffix = ENVIRON["X_SUFFIX"]; last = ENVIRON["X_LAST"] + 0
        sect = "preamble"
    }
    # sections
    /^%(description|prep|build|install|check|files|changelog)([ \t]|$)/ {
        split($0, w, /[ \t]+/)
        sect = substr(w[1], 2)
        if (sect == "description") {
            print "%description"
            print "XCP-ng'"'"'s qemu-dm (its qemu package: the same source, patches and"
            print "build) with the vgpu-stub device of vgpu added, installed beside"
            print "XCP-ng'"'"'s as " ENVIRON["X_DIR"] "/qemu-system-i386.  The vgpu qemu-dm"
            print "wrapper runs it for the VMs that have a vgpu pool only; every other"
            print "VM runs XCP-ng'"'"'s.  XCP-ng'"'"'s qemu release it was built from is in"
            print "qemu-system-i386.xcpng-release beside it and in this package'"'"'s"
            print "Provides: qemu-dm-vgpu(xcpng-qemu) = %{xcpng_qemu_evr}."
            print ""
            next
        }
        if (sect == "install") {
            print "%install"
            print "# vgpu: our binary and the record of its source release, in our own"
            print "# folder; nothing that XCP-ng'"'"'s qemu package installs."
            print "install -D -m 0755 i386-softmmu/qemu-system-i386 \\"
            print "    %{buildroot}%{vgpu_qemu_dir}/qemu-system-i386"
            print "printf '"'"'xcpng-qemu=%s\\npackage=%s\\nvgpu=%s\\n'"'"' '"'"'%{xcpng_qemu_evr}'"'"' \\"
            print "    '"'"'%{name}-%{version}-%{release}'"'"' '"'"'%{vgpu_version}'"'"' \\"
            print "    >%{buildroot}%{vgpu_qemu_dir}/qemu-system-i386.xcpng-release"
            print ""
            print "%check"
            print "# the device is in: what the qemu-dm wrapper checks before it uses it"
            print "i386-softmmu/qemu-system-i386 -device help 2>&1 | grep -q '"'"'^name \"vgpu-stub\"'"'"'"
            print ""
            print "%files"
            print "%dir %{vgpu_qemu_dir}"
            print "%{vgpu_qemu_dir}/qemu-system-i386"
            print "%{vgpu_qemu_dir}/qemu-system-i386.xcpng-release"
            print ""
            next
        }
        if (sect == "changelog") {
            print "%changelog"
            print ENVIRON["X_ENTRY"]
            print ""
            next
        }
    }
    sect == "description" || sect == "install" || sect == "check" || sect == "files" { next }
    sect == "prep" && /^%autosetup/ && !/[ \t]-n[ \t]/ { $0 = $0 " -n qemu-%{version}" }
    sect == "preamble" && /^Name:/ { print "Name: qemu-dm-vgpu"; next }
    sect == "preamble" && /^Summary:/ {
        print "Summary: XCP-ng'"'"'s qemu-dm with the vgpu-stub device, beside XCP-ng'"'"'s own"
        next
    }
    sect == "preamble" && /^Epoch:/ { next }
    sect == "preamble" && /^(Provides|Obsoletes):/ { next }
    sect == "preamble" && /^Conflicts:/ && /(^Conflicts:|[ \t,])qemu([ \t,<>=]|$)/ { next }
    sect == "preamble" && /^Release:/ {
        i = index($0, "%{?dist}")
        if (i)
            rel = substr($0, 1, i - 1) suffix substr($0, i)
        else {
            rel = $0
            sub(/[ \t]*$/, "", rel)
            rel = rel suffix
        }
        print rel
        print "# vgpu: XCP-ng'"'"'s qemu release this is built from (its Epoch:Version-Release)"
        print "%global xcpng_qemu_evr " ENVIRON["X_EVR"]
        print "%global vgpu_version " ENVIRON["X_VERSION"]
        print "%global vgpu_qemu_dir " ENVIRON["X_DIR"]
        print "# no debuginfo: it would ship the sources under /usr/src/debug/ where\n# qemu-debuginfo has them (the same folder name, qemu-VERSION)"
        print "%global debug_package %{nil}"
        print "Provides: qemu-dm-vgpu(xcpng-qemu) = %{xcpng_qemu_evr}"
        print "# XCP-ng'"'"'s qemu, any release: its firmware, keymaps and the path ours is"
        print "# mounted over; never a version, so that it always updates freely"
        print "Requires: qemu"
        next
    }
    { print }
    NR == last {
        n = split(ENVIRON["X_LIST"], p, " ")
        print ""
        print "# vgpu patches"
        for (i = 1; i <= n; i++)
            printf "Patch%d: %s\n", ENVIRON["X_FIRST"] + i - 1, p[i]
    }
' "$SPEC" >"$tmp_out"
mv "$tmp_out" "$OUT"
echo "xcpng-qemu-spec.sh: wrote $OUT: qemu-dm-vgpu from XCP-ng's qemu $xcpng_evr," \
    "Patch$first-$last_no, release suffix $suffix" >&2
