#!/bin/bash
# gpu-check.sh - `make gpu-check`: the checks of protocol v3 (CUDA
# remoting) that need an NVIDIA GPU, in one script for a machine with the
# NVIDIA driver and the CUDA toolkit (/usr/local/cuda).  It builds what it
# needs, then runs, each with its own verdict line:
#
#   1. native: the driver-API and runtime-API test programs (tests/cuda/),
#      our rewrites of NVIDIA's vectorAddDrv and matrixMulDrv samples and
#      a cuBLAS SGEMM program, on the real libcuda.so.1: the baseline every
#      remoted result must equal (the samples' checksums bit for bit);
#   2. the CUDA backend's tests on the real driver (mediator
#      test-backend-cuda, stage 3) and the remoted batches of test-remote
#      on it (foreign handles, ranges, quota, bad images, a fault in one
#      VM's context beside another's: on a GPU the MMU, not the stand-in,
#      catches the foreign pointer);
#   3. two simulated VMs (tests/cuda-sim: the guest libcuda.so.1's sources
#      over the real device channel) on the real GPU: every program of 1
#      through the shim, hostile calls, and the samples' checksums against
#      the native ones (e2e test-cuda-sim with VGPU_E2E_REAL_CUDA=1);
#   4. the GPU rows of make bench (bench/cuda-gpu-bench.sh, an unsanitized
#      build): launch loop, 1 GiB copies and SGEMM n=4096 against native;
#   5. the same programs in two TCG guests through vgpu.ko's rings (e2e
#      test-cuda with VGPU_E2E_REAL_CUDA=1), when QEMU and a guest kernel
#      can be had.
#
# Everything runs from one unsanitized build (AddressSanitizer and the
# CUDA driver do not share an address space well; the sanitized runs are
# make check's, on the stand-in).  It builds with `make all`, or, on a
# GPU machine that cannot build (no network for the build's packages: no
# libxenstore, no cmocka), it runs a bundle made on a machine that can:
#
#   scripts/gpu-bundle.sh DIR          (here: builds, gathers what runs)
#   VGPU_PREBUILT=DIR scripts/gpu-check.sh   (there)
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

mkdir -p "$B" || cannot "cannot make $B"
if [ -n "${VGPU_PREBUILT:-}" ]; then
    VGPU_PREBUILT=$(cd "$VGPU_PREBUILT" 2>/dev/null && pwd) ||
        cannot "VGPU_PREBUILT names no folder"
    P=$VGPU_PREBUILT/build
    [ -x "$P/mediator/vgpu-mediator" ] ||
        cannot "VGPU_PREBUILT=$VGPU_PREBUILT holds no build (scripts/gpu-bundle.sh makes one)"
    # What the bundle brought along: xenstore-write, libxenstore, cmocka.
    export PATH=$VGPU_PREBUILT/bin:$PATH
    export LD_LIBRARY_PATH=$VGPU_PREBUILT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    say "running the bundle $VGPU_PREBUILT ($(cat "$VGPU_PREBUILT/BUILT" 2>/dev/null))"
else
    P=$B/plain
    say "building into $P"
    make -s -C "$TOP" all BUILD="$P" -j"$(nproc)" >"$B/build.log" 2>&1 ||
        { tail -n 30 "$B/build.log"; say "FAIL: the build"; exit 1; }
fi
command -v xenstore-write >/dev/null ||
    cannot "no xenstore-write (Debian's xen-utils; a bundle brings it)"
CT=$P/cuda-tests
# Should a sanitized binary still run here: CUDA maps the shadow gap.
export ASAN_OPTIONS=protect_shadow_gap=0:detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}

# 1. native
native() { # native NAME CMD...: OUT, and the verdict
    local name=$1
    shift
    OUT=$("$@" 2>&1)
    local rc=$?
    echo "$OUT" | sed 's/^/  native| /'
    verdict "native $name" $rc
}
sum_of() { sed -n 's/^checksum //p' <<<"$OUT"; }
native "driver-API program" "$CT/cuda-drv-test" run "$CT/kernels.fatbin" "$CT/kernels.ptx"
native "runtime-API program (plain nvcc)" "$CT/cuda-rt-test"
native "vectorAddDrv (our rewrite)" "$CT/cuda-vector-add-drv" "$CT/samples.fatbin"
SUM_VADD=$(sum_of)
native "matrixMulDrv block 16 (our rewrite)" "$CT/cuda-matrix-mul-drv" "$CT/samples.ptx" 16
SUM_MM16=$(sum_of)
native "matrixMulDrv block 32 (our rewrite)" "$CT/cuda-matrix-mul-drv" "$CT/samples.ptx" 32
SUM_MM32=$(sum_of)
if [ -x "$CT/cuda-sgemm" ]; then
    native "cuBLAS SGEMM 1024 against the CPU" "$CT/cuda-sgemm" check 1024
else
    say "SKIP: cuBLAS: $(cat "$CT/NO-CUBLAS" 2>/dev/null)"
fi

# 2. the backend and the remoted batches on the real driver
for t in test-backend-cuda test-remote; do
    "$P/mediator/$t" >"$B/$t.log" 2>&1
    rc=$?
    grep -E 'real driver|FAILED|PASSED|SKIP' "$B/$t.log" | sed "s/^/  $t| /"
    verdict "mediator $t on the real driver" $rc
done

# 3. simulated VMs on the real GPU, the samples' bits against native
VGPU_QEMU=unused VGPU_BUILD=$P VGPU_GUEST_BUILD=$P/guest-tools \
    VGPU_E2E_REAL_CUDA=1 VGPU_SIM_NATIVE_SUMS="vadd=$SUM_VADD mm16=$SUM_MM16 mm32=$SUM_MM32" \
    bash "$TOP/tests/e2e/test-cuda-sim.sh" >"$B/e2e-test-cuda-sim.log" 2>&1
rc=$?
grep -E '^(ok|FAILED|SKIP|not run)|passed' "$B/e2e-test-cuda-sim.log" | sed 's/^/  sim| /'
verdict "two simulated VMs on the real GPU (e2e test-cuda-sim)" $rc

# 4. make bench's GPU rows
VGPU_BUILD=$P bash "$TOP/bench/cuda-gpu-bench.sh" 2>&1 | sed 's/^/  bench| /'
verdict "make bench's GPU rows ran (the figures are ratios, not verdicts)" "${PIPESTATUS[0]}"

# 5. TCG guests through the rings to the real GPU
if [ -n "${VGPU_PREBUILT:-}" ]; then
    say "SKIP: TCG guests: not in a bundle (they need QEMU built and a guest kernel)"
elif make -s -C "$TOP" qemu BUILD="$P" >"$B/qemu.log" 2>&1; then
    VGPU_QEMU=$(cat "$P/qemu-path") VGPU_BUILD=$P \
        VGPU_GUEST_BUILD=$P/guest-tools VGPU_E2E_REAL_CUDA=1 \
        bash "$TOP/tests/e2e/test-cuda.sh" >"$B/e2e-test-cuda.log" 2>&1
    rc=$?
    grep -E '^(ok|FAILED|SKIP)|passed' "$B/e2e-test-cuda.log" | sed 's/^/  e2e| /'
    verdict "two TCG guests on the real GPU (e2e test-cuda)" $rc
else
    say "SKIP: TCG guests: QEMU could not be built here ($(tail -n 1 "$B/qemu.log"))"
fi

say "took $(($(date +%s) - START)) s"
exit $fail
