#!/bin/bash
# build-rpms.sh - build vgpu's RPMs with rpmbuild from a clean copy of the tree.
#
# Usage: rpm/build-rpms.sh [TOPDIR]        (`make rpm` runs it)
#
# TOPDIR is rpmbuild's private _topdir (default build/rpm).  It makes
# TOPDIR/SOURCES/vgpu-<version>.tar.gz from the files of the tree (the
# git-tracked ones plus new files git does not ignore, as they are in the
# working tree, so uncommitted changes are in; without git: everything but
# build/ and .git), and builds from it, with the version from the top-level
# VERSION file:
#
#   TOPDIR/RPMS/x86_64/vgpu-mediator-<version>-<release>.x86_64.rpm
#   TOPDIR/RPMS/noarch/vgpu-guest-tools-<version>-<release>.noarch.rpm
#   TOPDIR/SRPMS/*.src.rpm
#
# The dom0 binaries are built with the GCC 4.8.5 / glibc 2.17 toolchain of
# scripts/dom0-toolchain.sh (fetched once with npm, then cached), as
# XCP-ng's CentOS 7 based dom0 needs them: the spec gets
# `--define "vgpu_make_args DOM0=1 DOM0_TOOLCHAIN=DIR"` (mk/common.mk) and
# otherwise builds as in XCP-ng's own build environment, with plain make.
#
# The guest tools RPM carries the ISO of `make iso`, which it runs first
# when the tree has it (BUILD/iso/vgpu-guest-tools-<version>.iso), or the
# file named by VGPU_ISO.  Without an ISO the guest tools RPM is left out,
# saying so.
#
# Then rpmlint (when installed) checks the RPMs with rpm/rpmlintrc; an
# rpmlint error fails the build.
#
# Environment: VGPU_RPM_DOM0=0|1 (build the dom0 binaries with the host's
# compiler and libraries, or with the toolchain; default: the toolchain
# unless the host's glibc is 2.17 or older),
# VGPU_BUILD (the build folder, default build/ of the tree),
# VGPU_ISO, VGPU_PACKAGER (the RPMs' Packager; default: git's user),
# VGPU_RPM_CHECK_DEPS=1 (let rpmbuild check BuildRequires: on a CentOS/XCP-ng
# build machine; elsewhere --nodeps, as on Debian, whose package names
# differ),
# VGPU_RPM_CUDA=0|1 (leave the CUDA backend out, or insist on it; default:
# in when nvcc and cuda.h are found), VGPU_RPMLINT=0 (skip rpmlint).
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${VGPU_BUILD:-$TOP/build}
TOPDIR=${1:-$BUILD/rpm}
mkdir -p "$TOPDIR"
TOPDIR=$(cd "$TOPDIR" && pwd)

say() { echo "build-rpms: $*"; }
die() { echo "build-rpms: $*" >&2; exit 1; }

command -v rpmbuild >/dev/null || die "rpmbuild not found (Debian package rpm)"
VERSION=$(head -n 1 "$TOP/VERSION" 2>/dev/null | tr -d '[:space:]')
[[ $VERSION =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "bad version '$VERSION' in $TOP/VERSION"

rm -rf "$TOPDIR"/{BUILD,BUILDROOT,RPMS,SRPMS,SOURCES,SPECS,stage}
mkdir -p "$TOPDIR"/{BUILD,RPMS,SRPMS,SOURCES,SPECS,stage}

# --- the source tarball --------------------------------------------------
stage=$TOPDIR/stage/vgpu-$VERSION
mkdir -p "$stage"
if git -C "$TOP" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked files (minus deleted ones) and new files git does not ignore.
    (cd "$TOP" && git ls-files -z -c -o --exclude-standard |
        while IFS= read -r -d '' f; do
            [[ $f == build/* ]] && continue
            [ -e "$f" ] || [ -L "$f" ] || continue
            printf '%s\0' "$f"
        done | tar -c --null -T - -f -) | tar -x -C "$stage"
else
    (cd "$TOP" && tar -c --exclude=./build --exclude=./.git -f - .) |
        tar -x -C "$stage"
fi
tar -C "$TOPDIR/stage" --sort=name --owner=0 --group=0 --numeric-owner \
    -czf "$TOPDIR/SOURCES/vgpu-$VERSION.tar.gz" "vgpu-$VERSION"
rm -rf "$TOPDIR/stage"
cp "$TOP/VERSION" "$TOPDIR/SOURCES/VERSION"
# The specs with the version written in, so that the source RPMs carry
# self-contained specs (what XCP-ng's build environment rebuilds).
for spec in vgpu-mediator vgpu-guest-tools; do
    sed "s|^%{!?vgpu_version:.*|%global vgpu_version $VERSION|" \
        "$TOP/specs/$spec.spec" >"$TOPDIR/SPECS/$spec.spec"
    grep -qx "%global vgpu_version $VERSION" "$TOPDIR/SPECS/$spec.spec" ||
        die "specs/$spec.spec: no vgpu_version line to set"
done
say "source: $TOPDIR/SOURCES/vgpu-$VERSION.tar.gz"

# Who built it (rpmbuild's Packager): VGPU_PACKAGER, else git's user.
packager=${VGPU_PACKAGER:-}
if [ -z "$packager" ]; then
    name=$(git -C "$TOP" config user.name 2>/dev/null || :)
    email=$(git -C "$TOP" config user.email 2>/dev/null || :)
    packager="${name:-vgpu local build} <${email:-root@localhost}>"
fi
RPMBUILD=(rpmbuild --define "_topdir $TOPDIR"
    --define "packager $packager"
    # no /usr/lib/.build-id links in the package (rpm >= 4.14 makes them; the
    # rpm of XCP-ng's CentOS 7 build environment does not)
    --define "_build_id_links none")
[ "${VGPU_RPM_CHECK_DEPS:-0}" = 1 ] || RPMBUILD+=(--nodeps)
# The CUDA backend needs nvcc and cuda.h (found as mediator/cuda/cuda.mk
# finds them); without them, say so and build --without cuda.
# VGPU_RPM_CUDA=1 insists on it, 0 leaves it out.
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
cuda=${VGPU_RPM_CUDA:-}
if [ -z "$cuda" ]; then
    cuda=0
    if [ -x "$nvcc" ]; then
        for h in "$(dirname "$(readlink -f "$nvcc")")/../include/cuda.h" \
            /usr/local/cuda/include/cuda.h /usr/include/cuda.h; do
            [ -f "$h" ] && cuda=1 && break
        done
    fi
    [ "$cuda" = 1 ] ||
        say "WARNING: no nvcc/cuda.h here: vgpu-mediator without the CUDA backend"
fi
[ "$cuda" = 1 ] || RPMBUILD+=(--without cuda)
# The dom0 binaries for glibc 2.17 (XCP-ng 8.2/8.3), unless VGPU_RPM_DOM0=0
# or this host's glibc is 2.17 or older (CentOS 7, xcp-ng-build-env: its
# own compiler builds them as they must be).
dom0=${VGPU_RPM_DOM0:-}
if [ -z "$dom0" ]; then
    dom0=1
    glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ print $2 }')
    if [ -n "$glibc" ] && [ "$(printf '%s\n' "$glibc" 2.17 | sort -V | tail -n 1)" = 2.17 ]; then
        dom0=0
        say "host glibc $glibc: dom0 binaries with the host's compiler"
    fi
fi
if [ "$dom0" != 0 ]; then
    tc=$("$TOP/scripts/dom0-toolchain.sh" --prefix) ||
        die "no dom0 toolchain (scripts/dom0-toolchain.sh); VGPU_RPM_DOM0=0 builds with the host's compiler"
    # The compiler flags of XCP-ng's CentOS 7 build (its %optflags and
    # %__global_ldflags), not this host's, which may name options GCC 4.8.5
    # lacks; -fstack-protector for -strong, which only Red Hat's 4.8.5 has.
    RPMBUILD+=(--define "vgpu_make_args DOM0=1 DOM0_TOOLCHAIN=$tc"
        --define "optflags -O2 -g -pipe -Wall -Wp,-D_FORTIFY_SOURCE=2 -fexceptions -fstack-protector --param=ssp-buffer-size=4 -grecord-gcc-switches -m64 -mtune=generic"
        --define "__global_ldflags -Wl,-z,relro")
    say "dom0 binaries: GCC 4.8.5 / glibc 2.17 ($tc)"
elif [ -n "${VGPU_RPM_DOM0:-}" ]; then
    say "WARNING: VGPU_RPM_DOM0=0: dom0 binaries built for this host's glibc"
fi
# XCP-ng's rpm (4.11, CentOS 7) reads gzip and xz payloads, not zstd.
RPMBUILD+=(--define "_binary_payload w9.gzdio" --define "_source_payload w9.gzdio")
# systemd's rpm macros (CentOS: package systemd) are missing on Debian.
[ -n "$(rpm --eval '%{?_unitdir}')" ] ||
    RPMBUILD+=(--define "_unitdir /usr/lib/systemd/system")
[ -n "$(rpm --eval '%{?_tmpfilesdir}')" ] ||
    RPMBUILD+=(--define "_tmpfilesdir /usr/lib/tmpfiles.d")

# --- vgpu-mediator -------------------------------------------------------
say "rpmbuild vgpu-mediator $VERSION (log: $TOPDIR/vgpu-mediator.log)"
if ! "${RPMBUILD[@]}" -ba "$TOPDIR/SPECS/vgpu-mediator.spec" \
        >"$TOPDIR/vgpu-mediator.log" 2>&1; then
    tail -n 40 "$TOPDIR/vgpu-mediator.log" >&2
    die "rpmbuild of vgpu-mediator failed (log: $TOPDIR/vgpu-mediator.log)"
fi

# --- vgpu-guest-tools ----------------------------------------------------
iso=${VGPU_ISO:-$BUILD/iso/vgpu-guest-tools-$VERSION.iso}
if [ -z "${VGPU_ISO:-}" ] && [ -f "$TOP/guest-tools/iso/build-iso.sh" ] &&
        make -C "$TOP" -n iso >/dev/null 2>&1; then
    say "make iso (log: $TOPDIR/iso.log)"
    make -C "$TOP" --no-print-directory iso BUILD="$BUILD" >"$TOPDIR/iso.log" 2>&1 ||
        { tail -n 20 "$TOPDIR/iso.log" >&2; die "make iso failed (log: $TOPDIR/iso.log)"; }
fi
if [ -f "$iso" ]; then
    cp "$iso" "$TOPDIR/SOURCES/vgpu-guest-tools-$VERSION.iso"
    say "rpmbuild vgpu-guest-tools $VERSION from $iso"
    if ! "${RPMBUILD[@]}" -ba "$TOPDIR/SPECS/vgpu-guest-tools.spec" \
            >"$TOPDIR/vgpu-guest-tools.log" 2>&1; then
        tail -n 40 "$TOPDIR/vgpu-guest-tools.log" >&2
        die "rpmbuild of vgpu-guest-tools failed (log: $TOPDIR/vgpu-guest-tools.log)"
    fi
else
    say "WARNING: no guest tools ISO ($iso; build it with make iso):" \
        "vgpu-guest-tools RPM not built"
fi

mapfile -t rpms < <(find "$TOPDIR/RPMS" "$TOPDIR/SRPMS" -name '*.rpm' | sort)
for r in "${rpms[@]}"; do say "built ${r#"$TOPDIR"/}"; done

# --- rpmlint -------------------------------------------------------------
if [ "${VGPU_RPMLINT:-1}" = 0 ]; then
    say "rpmlint skipped (VGPU_RPMLINT=0)"
elif ! command -v rpmlint >/dev/null; then
    say "rpmlint not installed (Debian package rpmlint): RPMs not linted"
else
    # The binary and the source RPMs (their specs); non-zero on errors.
    if rpmlint -r "$TOP/rpm/rpmlintrc" "${rpms[@]}" >"$TOPDIR/rpmlint.log" 2>&1; then
        say "rpmlint: $(tail -n 1 "$TOPDIR/rpmlint.log")"
    else
        cat "$TOPDIR/rpmlint.log" >&2
        die "rpmlint found errors (log: $TOPDIR/rpmlint.log)"
    fi
fi

# --- qemu-dm for XCP-ng --------------------------------------------------
# qemu-dm-vgpu is built from XCP-ng's qemu package (its spec and
# qemu-4.2.1 tarball), which is not here: what we ship for it is the patch
# series for its SOURCES, the script that converts its spec into ours and
# the one command that builds it (build-qemu-dm-vgpu.sh; README.md there).
QOUT=$TOPDIR/xcpng-qemu
rm -rf "$QOUT"
"$TOP/qemu-dm-patch/make-series.sh" --qemu 4.2.1 "$QOUT" 2>/dev/null ||
    die "make-series.sh --qemu 4.2.1 failed"
cp "$TOP/qemu-dm-patch/xcpng/xcpng-qemu-spec.sh" "$TOP/qemu-dm-patch/xcpng/build-qemu-dm-vgpu.sh" \
    "$TOP/qemu-dm-patch/xcpng/README.md" "$QOUT/"
say "qemu-dm-vgpu for XCP-ng: patch series, spec converter and build-qemu-dm-vgpu.sh" \
    "in ${QOUT#"$TOP"/} (build it in XCP-ng's build environment: README.md there)"
