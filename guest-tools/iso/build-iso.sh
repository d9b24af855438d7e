#!/bin/bash
# build-iso.sh - builds the vgpu guest-tools ISO.
#
# Usage: build-iso.sh [--guest-build DIR] [--out DIR] [--version V]
#
# Writes OUT/vgpu-guest-tools-<version>.iso (default OUT: build/iso) and
# prints its path as the last line.  The ISO (ISO 9660 with Rock Ridge and
# Joliet, made by xorriso) holds, in the XCP-ng tools tradition:
#
#   README.txt                  a pointer to Linux/
#   Linux/install.sh            the installer (guest-tools/iso/Linux/install.sh
#                               with the version and the PCI identity filled in)
#   Linux/README.txt            what the tools are, how to install and use them
#   Linux/VERSION               the version
#   Linux/SHA256SUMS            checksums of the payload, checked by install.sh
#   Linux/x86_64/vgpu-client    the static client
#   Linux/x86_64/libvgpu.a      the guest library
#   Linux/x86_64/libcuda.so.1   the CUDA driver API for unmodified CUDA
#                               programs (protocol v3, docs/cuda.md);
#                               install.sh puts it where the distribution's
#                               loader finds libcuda
#   Linux/include/libvgpu.h, Linux/include/vgpu_protocol.h
#   Linux/include/vgpu/*.h      the contract's headers vgpu_protocol.h
#                               includes (installed next to it, in vgpu/)
#   Linux/kernel/               the kernel driver's source (GPL): vgpu.c,
#                               Kbuild, Makefile, dkms.conf (the version
#                               filled in), VERSION, and the contract's
#                               headers it includes (include/vgpu/*.h,
#                               include/uapi/vgpu.h); install.sh builds it
#                               with dkms or the running kernel's headers
#
# The version comes from the file VERSION at the top of the tree (0.1.0
# when there is none).  The guest binaries come from DIR (default
# build/guest-tools, built with make when missing); they are never
# sanitized.  The volume label is VGPU_TOOLS_<version> and the file name
# does not start with guest-tools or xs-tools, which XCP-ng's ISO SR
# relabels as its own tools.  All timestamps are SOURCE_DATE_EPOCH (from
# the environment, else the last commit's time), so the same tree gives
# the same ISO, byte for byte.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
GUEST_BUILD=
OUT_DIR=$TOP/build/iso
VERSION=

die() {
    echo "build-iso.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
    --guest-build) GUEST_BUILD=${2:?--guest-build needs a folder}; shift ;;
    --out) OUT_DIR=${2:?--out needs a folder}; shift ;;
    --version) VERSION=${2:?--version needs a value}; shift ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

if [ -z "$VERSION" ]; then
    if [ -r "$TOP/VERSION" ]; then
        VERSION=$(tr -d ' \t\r\n' <"$TOP/VERSION")
    else
        VERSION=0.1.0
        echo "build-iso.sh: no $TOP/VERSION: using version $VERSION" >&2
    fi
fi
[[ $VERSION =~ ^[0-9A-Za-z][0-9A-Za-z.+~_-]*$ ]] || die "bad version '$VERSION'"

command -v xorriso >/dev/null || die "xorriso not found (apt-get install xorriso)"

# The guest binaries.
if [ -z "$GUEST_BUILD" ]; then
    GUEST_BUILD=$TOP/build/guest-tools
    make -s -C "$TOP/guest-tools" O="$GUEST_BUILD" SAN=0 \
        "$GUEST_BUILD/libvgpu.a" "$GUEST_BUILD/vgpu-client" \
        "$GUEST_BUILD/cuda/libcuda.so.1" >&2
fi
CLIENT=$GUEST_BUILD/vgpu-client
LIB=$GUEST_BUILD/libvgpu.a
CUDA_LIB=$GUEST_BUILD/cuda/libcuda.so.1
[ -f "$CUDA_LIB" ] || die "no cuda/libcuda.so.1 in $GUEST_BUILD"
[ -x "$CLIENT" ] || die "no vgpu-client in $GUEST_BUILD"
[ -f "$LIB" ] || die "no libvgpu.a in $GUEST_BUILD"
readelf -h "$CLIENT" | grep -q 'Machine:.*X86-64' || die "$CLIENT is not an x86_64 binary"
! readelf -l "$CLIENT" | grep -q 'Requesting program interpreter' ||
    die "$CLIENT is not static: it would not run on every distribution"

# PCI identity of the device, from the contract (install.sh looks for it).
PROTO=$TOP/include/vgpu/regs.h
pci_id() {
    local v
    v=$(sed -n "s/^#define $1 \(0x[0-9a-fA-F]*\).*/\1/p" "$PROTO")
    [ -n "$v" ] || die "no $1 in $PROTO"
    printf '0x%04x' "$v"
}
PCI_VENDOR=$(pci_id VGPU_PCI_VENDOR_ID)
PCI_DEVICE=$(pci_id VGPU_PCI_DEVICE_ID)

# Volume label: d-characters only, at most 32.
# The contract's headers, by name (install.sh installs each).
CONTRACT=$(cd "$TOP/include/vgpu" && ls -- *.h | tr '\n' ' ')
CONTRACT=${CONTRACT% }
[ -n "$CONTRACT" ] || die "no headers in $TOP/include/vgpu"

LABEL=$(echo "VGPU_TOOLS_$VERSION" | tr 'a-z' 'A-Z' | tr -c 'A-Z0-9_\n' '_' | cut -c1-32)
NAME=vgpu-guest-tools-$VERSION.iso

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$TOP" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-iso.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
L=$STAGE/Linux
mkdir -p "$L/x86_64" "$L/include/vgpu" "$L/kernel/include/vgpu" "$L/kernel/include/uapi"

fill() { # SRC DST: copy with the @...@ values filled in
    sed -e "s/@VGPU_VERSION@/$VERSION/g" \
        -e "s/@VGPU_PCI_VENDOR_ID@/$PCI_VENDOR/g" \
        -e "s/@VGPU_PCI_DEVICE_ID@/$PCI_DEVICE/g" \
        -e "s/@VGPU_PCI_ID@/${PCI_VENDOR#0x}:${PCI_DEVICE#0x}/g" \
        -e "s/@VGPU_CONTRACT_HEADERS@/$CONTRACT/g" "$1" >"$2"
    ! grep -q '@VGPU_[A-Z_]*@' "$2" || die "unfilled @VGPU_...@ left in $2"
}
fill "$HERE/Linux/install.sh" "$L/install.sh"
fill "$HERE/Linux/README.txt" "$L/README.txt"
sh -n "$L/install.sh" || die "install.sh does not parse"
cp "$CLIENT" "$L/x86_64/vgpu-client"
cp "$LIB" "$L/x86_64/libvgpu.a"
cp "$CUDA_LIB" "$L/x86_64/libcuda.so.1"
cp "$TOP/guest-tools/include/libvgpu.h" "$TOP/include/vgpu_protocol.h" "$L/include/"
for h in $CONTRACT; do cp "$TOP/include/vgpu/$h" "$L/include/vgpu/"; done
echo "$VERSION" >"$L/VERSION"
# The kernel driver's source, self-contained (its Kbuild prefers include/
# next to it).
KSRC=$TOP/guest-tools/kernel
for f in vgpu.c Kbuild Makefile; do cp "$KSRC/$f" "$L/kernel/"; done
fill "$KSRC/dkms.conf" "$L/kernel/dkms.conf"
for h in $CONTRACT; do cp "$TOP/include/vgpu/$h" "$L/kernel/include/vgpu/"; done
cp "$TOP/include/uapi/vgpu.h" "$L/kernel/include/uapi/"
echo "$VERSION" >"$L/kernel/VERSION"
KFILES=$(cd "$L" && find kernel -type f | LC_ALL=C sort | tr '\n' ' ')
# shellcheck disable=SC2046 # one word per header
(cd "$L" && sha256sum x86_64/vgpu-client x86_64/libvgpu.a x86_64/libcuda.so.1 \
    include/libvgpu.h \
    include/vgpu_protocol.h $(printf 'include/vgpu/%s ' $CONTRACT) $KFILES README.txt >SHA256SUMS)
cat >"$STAGE/README.txt" <<EOF
vgpu guest tools $VERSION

Linux VMs: as root, mount this disc and run its installer:
    mount -o ro /dev/sr0 /mnt && sh /mnt/Linux/install.sh
Linux/README.txt says what is installed where; install.sh --help lists
its options and exit statuses.
EOF

chmod 0755 "$L/install.sh" "$L/x86_64/vgpu-client"
find "$STAGE" -type d -exec chmod 0755 {} +
find "$STAGE" -type f ! -name install.sh ! -name vgpu-client -exec chmod 0644 {} +
find "$STAGE" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$OUT_DIR"
OUT=$OUT_DIR/$NAME
rm -f "$OUT.tmp"
xorriso -as mkisofs -quiet -o "$OUT.tmp" \
    -V "$LABEL" -volset "vgpu guest tools" -publisher "vgpu" \
    -appid "vgpu guest tools $VERSION" -sysid LINUX \
    -r -J -joliet-long \
    "$STAGE" 2>"$STAGE.log" || {
    cat "$STAGE.log" >&2
    rm -f "$STAGE.log" "$OUT.tmp"
    die "xorriso failed"
}
rm -f "$STAGE.log"
mv -f "$OUT.tmp" "$OUT"
echo "build-iso.sh: wrote $NAME (label $LABEL, $(stat -c %s "$OUT") bytes)" >&2
echo "$OUT"
