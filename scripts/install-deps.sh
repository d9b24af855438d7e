#!/bin/bash
# install-deps.sh - make sure the Debian packages vgpu's build, tests and
# demo need are installed; `make check` and `make demo` run it first.
#
# As root it installs what is missing with apt-get; otherwise it prints
# the command to run.  With nothing missing it does nothing, quickly.
set -euo pipefail

PKGS=(
    build-essential pkg-config python3 dpkg-dev
    libcmocka-dev libxen-dev xenstore-utils
    ninja-build meson libglib2.0-dev libpixman-1-dev libfdt-dev zlib1g-dev
    seabios qemu-system-data
    linux-image-amd64 linux-headers-amd64 busybox-static cpio gzip
    rpm rpm2cpio rpmlint
    xorriso kmod
    # tests/fuzz: libFuzzer targets (clang's -fsanitize=fuzzer)
    clang libclang-rt-14-dev
    # scripts/dom0-toolchain.sh: checks the toolchain's sha512, unpacks .tar.xz
    openssl xz-utils
    # tests/e2e: XCP-ng 8.3's stock qemu-dm wrapper preloads libjemalloc.so.2
    libjemalloc2
    # qemu-dm-patch/build-qemu-xcpng.sh: XCP-ng's configure line enables
    # Linux AIO, VNC JPEG/PNG, libusb, seccomp and jemalloc
    libaio-dev libjpeg-dev libpng-dev libusb-1.0-0-dev libseccomp-dev
    libjemalloc-dev
)
# scripts/dom0-toolchain.sh fetches the toolchain with npm.  Debian's npm
# only when there is no npm at all: one installed another way (nodejs from
# NodeSource, nvm) does as well, and Debian's would conflict with it.
command -v npm >/dev/null 2>&1 || PKGS+=(npm)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
        missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: missing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: run as root: apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
