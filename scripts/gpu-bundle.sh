#!/bin/bash
# gpu-bundle.sh - build, on a machine that can (make deps: Debian 12 and
# its packages, the CUDA toolkit), what `make gpu-check` runs, and gather
# it into DIR for a GPU machine that cannot build it (no network for the
# packages: no libxenstore, no cmocka, no xenstore-write there):
#
#   DIR/build/{mediator,xs-server,cuda-tests,cuda-sim,guest-tools}
#                   the unsanitized build's parts gpu-check uses
#   DIR/lib/        libxenstore.so.4, libxentoolcore.so.1, libcmocka.so.0
#                   (the mediator loads libxenstore with dlopen; the
#                   mediator's unit tests link cmocka)
#   DIR/bin/        xenstore-write (the tests' stand-in for the plugin)
#   DIR/BUILT       the commit and the toolkit it was built from
#
# Then, there, from the same checkout:
#   VGPU_PREBUILT=DIR scripts/gpu-check.sh
#
# DIR should be a folder the checkout ignores (gpu-bundle/ is), so that it
# travels with the working tree to a lent GPU machine.  Usage:
#   scripts/gpu-bundle.sh [DIR]      (default: gpu-bundle)
set -eu
TOP=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$TOP/gpu-bundle}
TMP=$(mktemp -d /tmp/gpu-bundle-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

echo "gpu-bundle: building into $TMP"
make -s -C "$TOP" all BUILD="$TMP" -j"$(nproc)" >"$TMP.log" 2>&1 ||
    { tail -n 30 "$TMP.log"; echo "gpu-bundle: the build failed" >&2; exit 1; }
rm -f "$TMP.log"
[ -x "$TMP/cuda-tests/cuda-drv-test" ] ||
    { echo "gpu-bundle: no CUDA test programs (nvcc?): $(cat "$TMP/cuda-tests/NO-NVCC" 2>/dev/null)" >&2; exit 1; }

rm -rf "$DIR"
mkdir -p "$DIR/build" "$DIR/lib" "$DIR/bin"
for part in mediator xs-server cuda-tests cuda-sim guest-tools; do
    cp -a "$TMP/$part" "$DIR/build/"
done
# Objects are not needed to run.
find "$DIR/build" -name '*.o' -delete
for lib in libxenstore.so.4 libxentoolcore.so.1 libcmocka.so.0; do
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ {print $NF; exit}')
    [ -n "$path" ] || { echo "gpu-bundle: no $lib here" >&2; exit 1; }
    cp -L "$path" "$DIR/lib/$lib"
done
cp -L "$(command -v xenstore-write)" "$DIR/bin/"
echo "commit $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo '?'), $("$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)" --version | tail -n 1)" \
    >"$DIR/BUILT"
echo "gpu-bundle: $DIR ($(du -sh "$DIR" | cut -f1)); there: VGPU_PREBUILT=$DIR scripts/gpu-check.sh"
