#!/bin/bash
# dom0-toolchain.sh - fetch, once, the GCC 4.8.5 / glibc 2.17 toolchain
# that builds vgpu's dom0 binaries for XCP-ng 8.2 and 8.3 (CentOS 7 based:
# nothing above GLIBC_2.17), and print where it is.
#
# Usage: scripts/dom0-toolchain.sh [--prefix|--cc|--sysroot|--triplet]
#   --prefix   (the default) the toolchain's root: bin/<triplet>-gcc,
#              <triplet>/sysroot
#   --cc       the compiler, with the --sysroot it needs
#   --sysroot  the glibc 2.17 sysroot (lib64/ld-linux-x86-64.so.2, ...)
#   --triplet  x86_64-unknown-linux-gnu
# One line on stdout; progress and errors on stderr.
#
# The toolchain is crosstool-NG's, as the npm registry serves it:
# @napi-rs/cross-toolchain-x64-target-x86_64@1.0.0, whose tarball holds
# x86_64-unknown-linux-gnu.tar.xz (relocatable: the compiler finds its
# sysroot next to itself).  `npm pack` fetches it into a temporary folder;
# the integrity npm reports and the tarball's own sha512 must both be the
# one pinned here, then it is unpacked into
#   $VGPU_CACHE/dom0-toolchain-1.0.0/   (VGPU_CACHE default
#                                        ${XDG_CACHE_HOME:-$HOME/.cache}/vgpu)
# under a lock, made complete before it is renamed into place.  Once there,
# a run only checks a stamp and prints: no npm, no network.
#
# Environment: VGPU_CACHE; VGPU_DOM0_TOOLCHAIN_TGZ, the package tarball
# already downloaded (its sha512 still checked), for machines without the
# npm registry.
set -euo pipefail

PKG=@napi-rs/cross-toolchain-x64-target-x86_64
VER=1.0.0
# What `npm view $PKG@$VER dist.integrity` says; a different tarball is
# refused.
INTEGRITY=sha512-lecoghCfoTAX9MLFcIx9/nL9M8xdkZ9n8Pki8qjKUNzjiq1zbECdEbzIZAMMHRtrXxifK9dAyYuh8gSxNbr2og==
TRIPLET=x86_64-unknown-linux-gnu
CACHE=${VGPU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vgpu}
DIR=$CACHE/dom0-toolchain-$VER
STAMP=$DIR/.vgpu-toolchain

log() { echo "dom0-toolchain: $*" >&2; }
die() { echo "dom0-toolchain: error: $*" >&2; exit 1; }

what=${1:---prefix}
case $what in
--prefix | --cc | --sysroot | --triplet) ;;
-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
*) die "unknown option '$what' (--prefix, --cc, --sysroot, --triplet)" ;;
esac

report() {
    case $what in
    --prefix) echo "$DIR" ;;
    --cc) echo "$DIR/bin/$TRIPLET-gcc --sysroot=$DIR/$TRIPLET/sysroot" ;;
    --sysroot) echo "$DIR/$TRIPLET/sysroot" ;;
    --triplet) echo "$TRIPLET" ;;
    esac
    exit 0
}
ready() {
    [ "$(cat "$STAMP" 2>/dev/null)" = "$INTEGRITY" ] &&
        [ -x "$DIR/bin/$TRIPLET-gcc" ] &&
        [ -f "$DIR/$TRIPLET/sysroot/lib64/ld-linux-x86-64.so.2" ]
}

ready && report

mkdir -p "$CACHE"
exec 9>"$CACHE/dom0-toolchain.lock"
flock 9
ready && report # another run unpacked it while this one waited

# sha512 of a file in npm's integrity form (sha512-<base64>).
integrity_of() {
    echo "sha512-$(openssl dgst -sha512 -binary "$1" 2>/dev/null | base64 -w0)"
}
command -v openssl >/dev/null || die "openssl not found (Debian package openssl)"
command -v xz >/dev/null || die "xz not found (Debian package xz-utils)"

tmp=$(mktemp -d "$CACHE/dom0-toolchain.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if [ -n "${VGPU_DOM0_TOOLCHAIN_TGZ:-}" ]; then
    tgz=$VGPU_DOM0_TOOLCHAIN_TGZ
    [ -f "$tgz" ] || die "VGPU_DOM0_TOOLCHAIN_TGZ=$tgz: no such file"
    log "using $tgz"
else
    command -v npm >/dev/null || die "npm not found (Debian package npm)"
    log "npm pack $PKG@$VER (about 49 MB)"
    (cd "$tmp" && npm pack --json --loglevel=error "$PKG@$VER") >"$tmp/pack.json" ||
        die "npm pack $PKG@$VER failed"
    # npm's report: the file it wrote and the integrity it checked it with.
    tgz=$tmp/$(sed -n 's/^ *"filename": *"\([^"]*\)".*/\1/p' "$tmp/pack.json" | head -n 1)
    reported=$(sed -n 's/^ *"integrity": *"\([^"]*\)".*/\1/p' "$tmp/pack.json" | head -n 1)
    [ -f "$tgz" ] || die "npm pack wrote no tarball (its report: $tmp/pack.json)"
    [ "$reported" = "$INTEGRITY" ] ||
        die "npm reports integrity '$reported' for $PKG@$VER, not the pinned $INTEGRITY"
fi
got=$(integrity_of "$tgz")
[ "$got" = "$INTEGRITY" ] ||
    die "$(basename "$tgz"): sha512 is $got, not the pinned $INTEGRITY"
log "integrity checked ($INTEGRITY)"

log "unpacking into $DIR"
tar -xzf "$tgz" -C "$tmp" package/$TRIPLET.tar.xz ||
    die "$(basename "$tgz") has no package/$TRIPLET.tar.xz"
mkdir -p "$tmp/tree"
tar -xJf "$tmp/package/$TRIPLET.tar.xz" -C "$tmp/tree"
rm -f "$tmp/package/$TRIPLET.tar.xz"
[ -x "$tmp/tree/bin/$TRIPLET-gcc" ] || die "no bin/$TRIPLET-gcc in the toolchain"
# A compile and link check before it counts as there.
printf '#include <stdio.h>\nint main(void) { puts("ok"); return 0; }\n' >"$tmp/t.c"
"$tmp/tree/bin/$TRIPLET-gcc" --sysroot="$tmp/tree/$TRIPLET/sysroot" \
    -o "$tmp/t" "$tmp/t.c" || die "the toolchain cannot compile a test program"
echo "$INTEGRITY" >"$tmp/tree/.vgpu-toolchain"
rm -rf "$DIR"
mv "$tmp/tree" "$DIR"
log "ready: $("$DIR/bin/$TRIPLET-gcc" --version | head -n 1)"
report
