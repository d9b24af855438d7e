#!/bin/bash
# xcpng-qemu-spec.sh - turn XCP-ng's qemu.spec (qemu-dm, QEMU 4.2.1) into the
# spec of the same package rebuilt with the vgpu-stub device.
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
#   OUT_SPEC    the spec to write (may be XCPNG_SPEC itself)
#
# It changes exactly three things; every other line stays as it was:
#   - our patches become PatchNNNN: lines under a "# vgpu patches" comment
#     after the last existing Patch line, numbered after XCP-ng's own: from
#     1100, or from one above the highest number there if that is higher.
#     %autosetup -p1 applies them after XCP-ng's.
#   - the Release gets our suffix before %{?dist} (at the end without it):
#     .<R>.vgpu<VERSION>, R = $VGPU_QEMU_REBUILD (default 1), VERSION =
#     vgpu's version.  The leading number matters: RPM compares the
#     Release segment by segment and a number beats letters, so
#     4.6.4.2.1.vgpu0.1.0.xcpng8.3 is newer than XCP-ng's 4.6.4.2.xcpng8.3
#     (".vgpu0.1.0" alone would lose to ".xcpng": v < x), and older than
#     XCP-ng's next update 4.6.4.3.  Name and Epoch stay: yum sees a newer
#     build of XCP-ng's own package.
#   - a %changelog entry on top, for <version>-<release without dist>.
# vgpu's version: $VGPU_VERSION, else SERIES_DIR/vgpu-version, else the
# VERSION file of the vgpu tree this script is in; without any of them the
# suffix is .<R>.vgpu and a warning says so.
#
# Exit status: 0 written; 2 usage or a spec this script does not recognise;
# 3 the spec already carries the vgpu patches (nothing written: converting
# twice would add the patches and the suffix twice).
set -euo pipefail

die() { echo "xcpng-qemu-spec.sh: $1" >&2; exit "${2:-1}"; }
usage() { die "usage: xcpng-qemu-spec.sh [--series DIR] XCPNG_SPEC OUT_SPEC" 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

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
if grep -q '^# vgpu patches$' "$SPEC"; then
    die "$SPEC already carries the vgpu patches: nothing done" 3
fi
grep -Eq '^Name:[[:space:]]*qemu[[:space:]]*$' "$SPEC" ||
    die "$SPEC is not the spec of XCP-ng's qemu package (Name: qemu)" 2
grep -Eq '^%autosetup([[:space:]].*)?[[:space:]]-p1([[:space:]]|$)' "$SPEC" ||
    die "$SPEC does not apply its patches with %autosetup -p1" 2
[ "$(grep -c '^Release:' "$SPEC")" = 1 ] ||
    die "$SPEC must have exactly one Release: line" 2
[ "$(grep -c '^%changelog' "$SPEC")" = 1 ] ||
    die "$SPEC must have exactly one %changelog section" 2
last_line=$(grep -n '^Patch[0-9][0-9]*:' "$SPEC" | tail -n 1 | cut -d: -f1)
[ -n "$last_line" ] || die "$SPEC has no PatchNNNN: lines" 2

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
        "the Release suffix is .$REBUILD.vgpu without it" >&2
else
    [[ $version =~ ^[0-9][0-9A-Za-z.+~]*$ ]] ||
        die "bad vgpu version '$version' (from $from)" 2
fi
suffix=".$REBUILD.vgpu$version"

# --- changelog entry: XCP-ng's top entry gives <version>-<release>
top_evr=$(awk '/^%changelog/ { on = 1; next }
    on && /^\*/ { n = split($0, w, " "); print w[n]; exit }' "$SPEC")
if [[ $top_evr =~ ^[0-9][^-]*-[^-]+$ ]]; then
    evr=" - $top_evr$suffix"
else
    evr=
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
- Add the vgpu-stub device${version:+ (vgpu $version)}: Patch$first-$last_no"

# --- write (values go through the environment: awk -v would expand \)
tmp_out="$OUT.tmp.$$"
X_LAST=$last_line X_FIRST=$first X_LIST="${patches[*]}" X_ENTRY=$entry \
X_SUFFIX=$suffix awk '
    BEGIN { suffix = ENVIRON["X_SUFFIX"]; last = ENVIRON["X_LAST"] + 0 }
    /^Release:/ {
        i = index($0, "%{?dist}")
        if (i)
            $0 = substr($0, 1, i - 1) suffix substr($0, i)
        else {
            sub(/[ \t]*$/, "")
            $0 = $0 suffix
        }
    }
    { print }
    NR == last {
        n = split(ENVIRON["X_LIST"], p, " ")
        print ""
        print "# vgpu patches"
        for (i = 1; i <= n; i++)
            printf "Patch%d: %s\n", ENVIRON["X_FIRST"] + i - 1, p[i]
    }
    /^%changelog/ { print ENVIRON["X_ENTRY"]; print "" }
' "$SPEC" >"$tmp_out"
mv "$tmp_out" "$OUT"
echo "xcpng-qemu-spec.sh: wrote $OUT: Patch$first-$last_no, release suffix $suffix" >&2
