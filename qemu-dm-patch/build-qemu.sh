#!/bin/bash
# build-qemu.sh - build a minimal x86_64 QEMU 7.2 (Debian's source package)
# with the vgpu-stub device, cached outside the checkout.
#
# Usage: qemu-dm-patch/build-qemu.sh
# The LAST line of stdout is the absolute path of qemu-system-x86_64; all
# progress goes to stderr and the full build log to $QDIR/build-<key>.log.
#
# Environment:
#   VGPU_CACHE     cache folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/vgpu)
#   VGPU_QEMU_SRC  an already unpacked Debian qemu 7.2 source tree to use
#                  instead of running `apt-get source qemu` (optional)
#   VGPU_JOBS      ninja parallelism (default: ninja's own)
#
# Cache layout ($VGPU_CACHE/qemu-7.2/):
#   src/qemu-7.2*/     pristine source from `apt-get source qemu`
#   build-<key>/       patched copy of the source, configured in build/
#   build-<key>.log    configure + ninja output
#   lock               flock(1) lock; one build at a time per cache
#
# <key> hashes what decides the configured tree: the glue patch series
# (qemu-7.2/series and its patches), the configure flags and RECIPE (bump
# it when the tree preparation below changes).  The device source
# (vgpu-stub.c) and the contract it includes (include/vgpu_protocol.h and
# include/vgpu/*.h) are NOT in <key>: each run copies them into the tree
# (hw/misc/, include/hw/misc/, include/hw/misc/vgpu/) when they differ and
# ninja rebuilds incrementally, so editing the device costs one object file
# and a link.  A stamp holding the hash of every input (key + those files)
# makes a run with nothing changed print the path at once, without calling
# ninja.
#
# Guests need firmware from Debian's seabios and qemu-system-data packages:
#   qemu-system-x86_64 -nodefaults -L /usr/share/seabios -L /usr/share/qemu ...
set -euo pipefail

RECIPE=1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
GLUE=$HERE/qemu-7.2
DEVICE_C=$HERE/vgpu-stub.c
PROTO_H=$TOP/include/vgpu_protocol.h
PROTO_PARTS=("$TOP"/include/vgpu/*.h) # what vgpu_protocol.h includes
CACHE=${VGPU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vgpu}
QDIR=$CACHE/qemu-7.2

CONFIGURE_FLAGS=(
    --target-list=x86_64-softmmu
    --without-default-devices
    --enable-tcg
    --disable-kvm
    --disable-xen
    --disable-docs
    --disable-install-blobs
    --disable-werror          # QEMU's own warnings must not fail the build
    --disable-debug-info
    --disable-tools
    --disable-guest-agent
    --disable-slirp
    --disable-gtk
    --disable-sdl
    --disable-vnc
    --disable-spice
    --disable-opengl
    --disable-curses
    --disable-capstone
    --disable-libudev
    --audio-drv-list=
)

# Devices the tests need besides ours, for the argument list XCP-ng's stock
# qemu-wrapper builds (tests/e2e/test-xcpng-boot.sh): the VGA cards it
# appends at addr=2, -usb, xenopsd's emulated NIC, 8.3's isa-debugcon,
# -parallel null, and pci-testdev standing in for xen-platform at addr=3.
# --without-default-devices leaves them out, so they are listed here, in
# the test build only (the product's series selects vgpu-stub alone).
TEST_DEVICES=(
    CONFIG_VGA_CIRRUS=y
    CONFIG_VGA_PCI=y
    CONFIG_USB_UHCI=y
    CONFIG_RTL8139_PCI=y
    CONFIG_ISA_DEBUG=y
    CONFIG_PARALLEL=y
    CONFIG_PCI_TESTDEV=y
)

log() { echo "build-qemu: $*" >&2; }
die() { echo "build-qemu: error: $*" >&2; exit 1; }

hash_stream() { sha256sum | cut -c1-16; }

[ -f "$DEVICE_C" ] || die "missing $DEVICE_C"
[ -f "$PROTO_H" ] || die "missing $PROTO_H"
[ -f "${PROTO_PARTS[0]}" ] || die "missing $TOP/include/vgpu/*.h"
[ -f "$GLUE/series" ] || die "missing $GLUE/series"

mkdir -p "$QDIR"
exec 9>"$QDIR/lock"
flock 9

# ---- keys --------------------------------------------------------------
tree_key=$(
    {
        echo "recipe $RECIPE"
        printf '%s\n' "${CONFIGURE_FLAGS[@]}" "${TEST_DEVICES[@]}"
        while read -r p; do
            [ -n "$p" ] || continue
            echo "patch $p"
            cat "$GLUE/$p"
        done <"$GLUE/series"
    } | hash_stream
)
full_key=$(
    {
        echo "$tree_key"
        cat "$DEVICE_C" "$PROTO_H"
        for h in "${PROTO_PARTS[@]}"; do echo "header ${h##*/}"; cat "$h"; done
    } | hash_stream
)
BT=$QDIR/build-$tree_key
BIN=$BT/build/qemu-system-x86_64
LOG=$QDIR/build-$tree_key.log

if [ -x "$BIN" ] && [ "$(cat "$BT/.vgpu-built" 2>/dev/null)" = "$full_key" ]; then
    touch "$BT/.vgpu-built"
    echo "$BIN"
    exit 0
fi

# ---- pristine source -----------------------------------------------------
# have_deb_src, ensure_deb_src
. "$TOP/scripts/lib/deb-src.sh"

fetch_source() {
    command -v apt-get >/dev/null || die "apt-get not found: set VGPU_QEMU_SRC"
    if ! command -v dpkg-source >/dev/null; then
        [ "$(id -u)" = 0 ] || die "dpkg-source missing: apt-get install dpkg-dev"
        apt-get install -y dpkg-dev xz-utils >&2
    fi
    ensure_deb_src
    local tmp=$QDIR/src.tmp
    rm -rf "$tmp"
    mkdir -p "$tmp"
    log "apt-get source qemu (into $QDIR/src)"
    (cd "$tmp" && apt-get source qemu) >&2 || die "apt-get source qemu failed"
    rm -rf "$QDIR/src"
    mv "$tmp" "$QDIR/src"
}

find_source() {
    local d
    for d in "$QDIR"/src/qemu-7.2*/; do
        [ -f "$d/VERSION" ] && { echo "${d%/}"; return 0; }
    done
    return 1
}

if [ -n "${VGPU_QEMU_SRC:-}" ]; then
    SRC=$(cd "$VGPU_QEMU_SRC" && pwd)
else
    SRC=$(find_source) || { fetch_source; SRC=$(find_source) || die "no qemu-7.2* source in $QDIR/src"; }
fi
case "$(cat "$SRC/VERSION")" in
7.2*) ;;
*) die "$SRC is QEMU $(cat "$SRC/VERSION"), expected 7.2" ;;
esac

# ---- patched, configured tree ---------------------------------------------
install_device() {
    # Copy only when different so that ninja sees unchanged mtimes.
    local h old
    mkdir -p "$1/include/hw/misc/vgpu"
    cmp -s "$DEVICE_C" "$1/hw/misc/vgpu-stub.c" || cp "$DEVICE_C" "$1/hw/misc/vgpu-stub.c"
    cmp -s "$PROTO_H" "$1/include/hw/misc/vgpu_protocol.h" ||
        cp "$PROTO_H" "$1/include/hw/misc/vgpu_protocol.h"
    for h in "${PROTO_PARTS[@]}"; do
        cmp -s "$h" "$1/include/hw/misc/vgpu/${h##*/}" || cp "$h" "$1/include/hw/misc/vgpu/"
    done
    # A header the contract no longer has must not be found by mistake.
    for old in "$1"/include/hw/misc/vgpu/*.h; do
        [ -e "$old" ] && [ ! -e "$TOP/include/vgpu/${old##*/}" ] && rm -f "$old"
    done
    return 0
}

start=$(date +%s)
if [ ! -f "$BT/.vgpu-configured" ]; then
    # meson records absolute paths, so the tree is prepared in place; the
    # stamp says it is complete, anything without it is redone.
    log "preparing $BT (log: $LOG)"
    rm -rf "$BT"
    cp -a "$SRC" "$BT"
    rm -rf "$BT/build"
    while read -r p; do
        [ -n "$p" ] || continue
        patch -p1 -s -d "$BT" <"$GLUE/$p" || die "patch $p does not apply"
    done <"$GLUE/series"
    printf '%s\n' "" "# vgpu tests (build-qemu.sh TEST_DEVICES)" "${TEST_DEVICES[@]}" \
        >>"$BT/configs/devices/x86_64-softmmu/default.mak"
    # The Debian tarball has no pc-bios blobs: never unpack the edk2 ones.
    sed -i 's/^\( *unpack_edk2_blobs = \)bzip2\.found()/\1false/' "$BT/meson.build"
    grep -q 'unpack_edk2_blobs = false$' "$BT/meson.build" || die "edk2 sed failed"
    install_device "$BT"
    mkdir "$BT/build"
    log "configure ${CONFIGURE_FLAGS[*]}"
    (cd "$BT/build" && ../configure "${CONFIGURE_FLAGS[@]}") >"$LOG" 2>&1 ||
        { tail -30 "$LOG" >&2; die "configure failed (see $LOG)"; }
    touch "$BT/.vgpu-configured"
fi

install_device "$BT"
log "ninja qemu-system-x86_64 (log: $LOG)"
mark=$(wc -l <"$LOG" 2>/dev/null || echo 0)
ninja -C "$BT/build" ${VGPU_JOBS:+-j "$VGPU_JOBS"} qemu-system-x86_64 >>"$LOG" 2>&1 ||
    { tail -40 "$LOG" >&2; die "build failed (see $LOG)"; }
# Our own files (the device and the contract's headers it includes) must
# build without warnings even though QEMU's may not.
if tail -n +"$((mark + 1))" "$LOG" |
    grep -E '(vgpu-stub\.c|vgpu_protocol\.h|misc/vgpu/[a-z]+\.h):[0-9]+:[0-9]+: warning' >&2; then
    rm -f "$BT/.vgpu-built"
    touch "$BT/hw/misc/vgpu-stub.c" # recompile (and warn) next time too
    die "warnings in vgpu-stub.c"
fi
[ -x "$BIN" ] || die "no $BIN after the build"
echo "$full_key" >"$BT/.vgpu-built"
log "built in $(($(date +%s) - start)) s"

# Keep the three most recently used build trees.
ls -1t "$QDIR"/build-*/.vgpu-built 2>/dev/null | tail -n +4 | while read -r old; do
    old=$(dirname "$old")
    log "pruning $old"
    rm -rf "$old" "$old.log"
done

echo "$BIN"
