#!/bin/bash
# gpu-check.sh - `make gpu-check`: the checks of protocol v3 (CUDA
# remoting) that need an NVIDIA GPU, in one script for a machine with the
# NVIDIA driver and the CUDA toolkit (/usr/local/cuda).  It builds what it
# needs, then runs, each with its own verdict line:
#
#   1. native: the driver-API and runtime-API test programs (tests/cuda/) on the
#      real libcuda.so.1, as the baseline every remoted result must equal;
#   2. the CUDA backend's tests on the real driver (mediator
#      test-backend-cuda, stage 3) and the remoted batches of test-remote
#      on it (foreign handles, ranges, quota, bad images, a fault in one
#      VM's context beside another's: on a GPU the MMU, not the stand-in,
#      catches the foreign pointer);
#   3. the same program in two TCG guests through the guest libcuda.so.1,
#      the rings and the mediator on the real GPU (e2e test-cuda with
#      VGPU_E2E_REAL_CUDA=1), when QEMU and a guest kernel can be had.
#
# What it does not run yet, said at run time: cuBLAS programs, NVIDIA's
# own samples, and the GPU rows of `make bench`.
#
# Where it cannot run (no driver, no GPU, no nvcc) it says why and exits
# 77.  Exit 0 when every check that ran passed, else 1.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-$TOP/build}/gpu-check
START=$(date +%s)
fail=0

say() { echo "gpu-check: $*"; }
cannot() {
    say "cannot run here: $*"
    exit 77
}
verdict() { # verdict NAME RC
    case $2 in
    0) say "PASS: $1" ;;
    77) say "SKIP: $1" ;;
    *) say "FAIL: $1 (exit $2)"; fail=1 ;;
    esac
}

LIBCUDA=$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 .*x86-64/ {print $NF; exit}')
[ -n "$LIBCUDA" ] || cannot "no NVIDIA driver: the loader finds no libcuda.so.1"
command -v nvidia-smi >/dev/null || cannot "no nvidia-smi (the NVIDIA driver is not installed)"
GPU=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -n 1)
nvidia-smi -L >/dev/null 2>&1 || cannot "nvidia-smi sees no GPU: $GPU"
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[ -x "$NVCC" ] || cannot "no nvcc (the CUDA toolkit, /usr/local/cuda)"
say "GPU: $GPU; driver library $LIBCUDA; $("$NVCC" --version | tail -n 1)"

say "building into $B"
make -s -C "$TOP" check-build BUILD="$B" -j"$(nproc)" >"$B.build.log" 2>&1 ||
    { tail -n 30 "$B.build.log"; say "FAIL: the build"; exit 1; }
S=$B/san
CT=$S/cuda-tests

# 1. native
out=$("$CT/cuda-drv-test" run "$CT/kernels.fatbin" "$CT/kernels.ptx" 2>&1)
rc=$?
echo "$out" | sed 's/^/  native| /'
verdict "native driver-API program" $rc
out=$("$CT/cuda-rt-test" 2>&1)
rc=$?
echo "$out" | sed 's/^/  native| /'
verdict "native runtime-API program (plain nvcc)" $rc

# 2. the backend and the remoted batches on the real driver
for t in test-backend-cuda test-remote; do
    "$S/mediator/$t" >"$B/$t.log" 2>&1
    rc=$?
    grep -E 'real driver|FAILED|PASSED|SKIP' "$B/$t.log" | sed "s/^/  $t| /"
    verdict "mediator $t on the real driver" $rc
done

# 3. TCG guests through the rings to the real GPU
if make -s -C "$TOP" qemu BUILD="$S/.." >"$B.qemu.log" 2>&1; then
    VGPU_QEMU=$(cat "$S/../qemu-path") VGPU_BUILD=$S \
        VGPU_GUEST_BUILD=$S/guest-tools VGPU_E2E_REAL_CUDA=1 \
        bash "$TOP/tests/e2e/test-cuda.sh" >"$B/e2e-test-cuda.log" 2>&1
    rc=$?
    grep -E '^(ok|FAILED|SKIP)|passed' "$B/e2e-test-cuda.log" | sed 's/^/  e2e| /'
    verdict "two TCG guests on the real GPU (e2e test-cuda)" $rc
else
    say "SKIP: TCG guests: QEMU could not be built here ($(tail -n 1 "$B.qemu.log"))"
fi

say "NOT RUN: cuBLAS programs, NVIDIA's vectorAddDrv and matrixMulDrv samples, the GPU rows of make bench: not written yet (docs/cuda.md, \"Not yet\")"
say "took $(($(date +%s) - START)) s"
exit $fail
