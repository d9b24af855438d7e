#!/bin/bash
# libxenstore-glibc217.sh - build the real libxenstore for glibc 2.17, so
# that the dom0 binaries built for it (make dom0) can be run here with the
# glibc 2.17 loader (tests/lib/run-glibc217.sh): Debian's own libxenstore
# needs GLIBC_2.34.  Cached; prints the cache folder (its last line on
# stdout), which holds
#
#   4/libxenstore.so.4      as XCP-ng 8.3 (Xen 4.17) has it: symbols
#   4/libxentoolcore.so.1   versioned VERS_4.0.. (the source's own map)
#   3.0/libxenstore.so.3.0  as XCP-ng 8.2 (Xen 4.13) has it: the same
#   3.0/libxentoolcore.so.1 code, unversioned symbols
#
# Usage: tests/integration/libxenstore-glibc217.sh
#
# The source is Debian's xen source package (`apt-get source xen`, patches
# applied; the first version apt lists that the archive still serves),
# of which only tools/libs/store (with tools/xenstore/xs_lib.c) and
# tools/libs/toolcore are compiled, directly, with the dom0 toolchain
# (scripts/dom0-toolchain.sh): Xen's configure and build system are not
# needed.  Each library's highest GLIBC version must be at most 2.17
# (tests/rpm/check-glibc.sh).
#
# Cache: $VGPU_CACHE/libxenstore-glibc217/<key>/ (VGPU_CACHE default
# ${XDG_CACHE_HOME:-$HOME/.cache}/vgpu), <key> hashing this script (the
# recipe), the toolchain's stamp and VGPU_XEN_SRC; the xen version used is
# in its file `source`.  A run with the libraries there only prints.  The
# unpacked source is removed once built (the downloaded source package
# stays in $VGPU_CACHE/xen-src).
#
# Environment: VGPU_CACHE; VGPU_XEN_SRC, an unpacked xen source tree (4.10
# or later) to use instead of apt-get source.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${VGPU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vgpu}

log() { echo "libxenstore-glibc217: $*" >&2; }
die() { echo "libxenstore-glibc217: error: $*" >&2; exit 1; }

TC=$("$TOP/scripts/dom0-toolchain.sh" --prefix) || die "no dom0 toolchain"
TRIPLET=$("$TOP/scripts/dom0-toolchain.sh" --triplet)
SYSROOT=$TC/$TRIPLET/sysroot
CC=("$TC/bin/$TRIPLET-gcc" "--sysroot=$SYSROOT")

key=$({ cat "${BASH_SOURCE[0]}" "$TC/.vgpu-toolchain"; echo "${VGPU_XEN_SRC:-}"; } |
    sha256sum | cut -c1-16)
BASE=$CACHE/libxenstore-glibc217
OUT=$BASE/$key
done_ok() {
    [ -f "$OUT/.built" ] && [ -f "$OUT/4/libxenstore.so.4" ] &&
        [ -f "$OUT/3.0/libxenstore.so.3.0" ]
}
if done_ok; then
    echo "$OUT"
    exit 0
fi

mkdir -p "$BASE"
exec 9>"$BASE/lock"
flock 9
if done_ok; then
    echo "$OUT"
    exit 0
fi

# ---- the source -------------------------------------------------------
# have_deb_src, ensure_deb_src
. "$TOP/scripts/lib/deb-src.sh"

# Download the newest xen source package the archive serves into $1
# (apt can list a version the mirror no longer has: try each, newest first).
fetch_xen() {
    local dir=$1 v
    command -v apt-get >/dev/null || die "apt-get not found: set VGPU_XEN_SRC"
    command -v dpkg-source >/dev/null ||
        die "dpkg-source not found (Debian package dpkg-dev), or set VGPU_XEN_SRC"
    ensure_deb_src
    mkdir -p "$dir"
    for v in $(apt-cache showsrc xen 2>/dev/null | sed -n 's/^Version: //p' | sort -urV); do
        if ls "$dir"/xen_"${v#*:}".dsc >/dev/null 2>&1; then
            echo "$dir/xen_${v#*:}.dsc"
            return 0
        fi
        log "apt-get source --download-only xen=$v"
        if (cd "$dir" && apt-get source --download-only "xen=$v") >"$dir/fetch.log" 2>&1; then
            echo "$dir/xen_${v#*:}.dsc"
            return 0
        fi
        log "xen $v: not served ($(grep -m1 '^E:' "$dir/fetch.log" || echo 'apt-get failed'))"
    done
    die "no xen source package could be downloaded (apt-cache showsrc xen; log: $dir/fetch.log)"
}

tmp=$(mktemp -d "$BASE/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if [ -n "${VGPU_XEN_SRC:-}" ]; then
    SRC=$(cd "$VGPU_XEN_SRC" && pwd)
    version="$SRC (VGPU_XEN_SRC)"
else
    dsc=$(fetch_xen "$CACHE/xen-src")
    log "unpacking $(basename "$dsc")"
    dpkg-source -x "$dsc" "$tmp/src" >"$tmp/unpack.log" 2>&1 ||
        { cat "$tmp/unpack.log" >&2; die "dpkg-source -x $dsc failed"; }
    SRC=$tmp/src
    version=$(basename "$dsc" .dsc)
fi
for f in tools/libs/store/xs.c tools/libs/store/libxenstore.map \
    tools/xenstore/xs_lib.c tools/libs/toolcore/handlereg.c \
    tools/libs/toolcore/libxentoolcore.map tools/include/xenstore.h \
    xen/include/public/io/xs_wire.h; do
    [ -f "$SRC/$f" ] || die "$SRC has no $f (xen 4.17's layout expected)"
done

# ---- the build ----------------------------------------------------------
# tools/include/xen is a link the Xen build makes; so here.
mkdir -p "$tmp/inc"
ln -s "$SRC/xen/include/public" "$tmp/inc/xen"
CFLAGS=(-O2 -g -fPIC -D__XEN_TOOLS__ -I"$tmp/inc" -I"$SRC/tools/include"
    -iquote "$SRC/tools/xenstore" -DXEN_RUN_STORED='"/var/run/xenstored"')
# As tools/libs/store/Makefile: xs.c with pthreads and dlsym (for Linux).
"${CC[@]}" "${CFLAGS[@]}" -c -o "$tmp/handlereg.o" "$SRC/tools/libs/toolcore/handlereg.c"
"${CC[@]}" "${CFLAGS[@]}" -DUSE_PTHREAD -DUSE_DLSYM -c -o "$tmp/xs.o" "$SRC/tools/libs/store/xs.c"
"${CC[@]}" "${CFLAGS[@]}" -c -o "$tmp/xs_lib.o" "$SRC/tools/xenstore/xs_lib.c"

mkdir -p "$tmp/out/4" "$tmp/out/3.0"
for d in 4 3.0; do
    "${CC[@]}" -shared -Wl,-soname,libxentoolcore.so.1 \
        -Wl,--version-script="$SRC/tools/libs/toolcore/libxentoolcore.map" \
        -o "$tmp/out/$d/libxentoolcore.so.1" "$tmp/handlereg.o" -lpthread
done
# 8.3's: the source's version map.
"${CC[@]}" -shared -Wl,-soname,libxenstore.so.4 \
    -Wl,--version-script="$SRC/tools/libs/store/libxenstore.map" \
    -o "$tmp/out/4/libxenstore.so.4" "$tmp/xs.o" "$tmp/xs_lib.o" \
    "$tmp/out/4/libxentoolcore.so.1" -ldl -lpthread
# 8.2's: no map, so every symbol unversioned, as Xen 4.13 built it.
"${CC[@]}" -shared -Wl,-soname,libxenstore.so.3.0 \
    -o "$tmp/out/3.0/libxenstore.so.3.0" "$tmp/xs.o" "$tmp/xs_lib.o" \
    "$tmp/out/3.0/libxentoolcore.so.1" -ldl -lpthread

"$TOP/tests/rpm/check-glibc.sh" "$tmp"/out/*/*.so.* >&2 ||
    die "a library needs more than glibc 2.17"
readelf -V -W "$tmp/out/4/libxenstore.so.4" | grep -q 'VERS_4\.0' ||
    die "libxenstore.so.4 has no VERS_4.0 symbols"
readelf -V -W "$tmp/out/3.0/libxenstore.so.3.0" | grep -q 'VERS_4' &&
    die "libxenstore.so.3.0 has versioned symbols"

echo "$version" >"$tmp/out/source"
touch "$tmp/out/.built"
rm -rf "$OUT"
mv "$tmp/out" "$OUT"
# Builds of older recipes are not needed any more.
find "$BASE" -mindepth 1 -maxdepth 1 -type d ! -name "$key" ! -name 'build.*' \
    -exec rm -rf {} +
log "built from $version into $OUT"
echo "$OUT"
