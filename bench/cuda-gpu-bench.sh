#!/bin/bash
# cuda-gpu-bench.sh - the protocol v3 rows of `make bench` that need an
# NVIDIA GPU, each a ratio of two runs made here, one after the other, on
# the same GPU: the program through the guest libcuda.so.1 against the
# same program on NVIDIA's libcuda.so.1 (native).
#
#   1. a loop of 100000 small launches and one sync (the time of the loop
#      alone, which the program measures): shim / native, target <= 1.05;
#   2. 1 GiB host -> device and device -> host from pageable memory:
#      shim / native pageable, target >= 0.9 (and against native pinned,
#      reported);
#   3. cuBLAS SGEMM, n = 4096, 10 of them after a warm-up: GFLOP/s shim /
#      native, target >= 0.97.
#
# "Through the shim" is a simulated VM (tests/cuda-sim): the guest
# library's own sources with the device's channel to a real vgpu-mediator
# on this host, its CUDA backend on the real driver.  What a TCG guest
# would add is its emulated CPU, not the remoting, so it is not the
# baseline's peer here.
#
# Usage: bench/cuda-gpu-bench.sh  (VGPU_BUILD: a build holding mediator/,
#   xs-server/, cuda-tests/ and cuda-sim/, unsanitized for figures;
#   BENCH_CUDA_LAUNCHES, BENCH_CUDA_COPY_MB, BENCH_CUDA_SGEMM_N to change
#   the sizes).  Without a GPU it says so and exits 77.
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
: "${VGPU_QEMU:=unused}" # lib.sh's; no VM is booted here
export VGPU_QEMU
. "$BENCH_DIR/../tests/e2e/lib.sh"

N=${BENCH_CUDA_LAUNCHES:-100000}
MB=${BENCH_CUDA_COPY_MB:-1024}
SN=${BENCH_CUDA_SGEMM_N:-4096}
CT=$VGPU_BUILD/cuda-tests
SIM=$VGPU_BUILD/cuda-sim
skip() {
    echo "cuda-gpu-bench: not measured: $*"
    exit 77
}
ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 .*x86-64' ||
    skip "no NVIDIA driver (the loader finds no libcuda.so.1)"
nvidia-smi -L >/dev/null 2>&1 || skip "nvidia-smi sees no GPU"
[ -x "$CT/cuda-drv-test" ] || skip "no CUDA test programs in $CT (nvcc missing?)"
[ -f "$SIM/libcuda.so.1" ] || skip "no simulated VM library in $SIM"

xs_start 1
xs_assign 1 A high 1
mkdir -p "$QROOT/root-1"
mediator_start --backend cuda --quota-mb $((MB * 2 + 2048))
wait_until 10 test -S "$QROOT/root-1/vgpu-mediator.sock" || die "no mediator socket"

# native|shim CMD...: OUT is its output; a failure ends the benchmark.
native() {
    OUT=$("$@" 2>&1) || die "native $*: $(tail -n 3 <<<"$OUT")"
}
shim() {
    OUT=$(VGPU_CUDA_QUIET=1 sim_exec 1 "$@" 2>&1) || die "shim $*: $(tail -n 3 <<<"$OUT")"
}
# field SED: the figure the program printed, which must be a number (a
# missed pattern would otherwise compare as "met").
field() {
    local v
    v=$(sed -n "$1" <<<"$OUT" | head -n 1)
    [[ $v =~ ^[0-9]+(\.[0-9]+)?( [0-9]+(\.[0-9]+)?)*$ ]] ||
        die "no figure in the output ($1): $(tail -n 3 <<<"$OUT")"
    echo "$v"
}
row() { # row LABEL RATIO OP TARGET NOTE
    local v
    v=$(awk -v r="$2" -v t="$4" "BEGIN { print (r + 0 $3 t + 0) ? \"met\" : \"NOT met\" }")
    printf '%-58s %10s\n' "$1" "$2"
    echo "  ($5; target $3 $4: $v)"
}
ratio() { # ratio A B: A / B, B not zero
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) exit 1; printf "%.3f", a / b }' ||
        die "a zero baseline ($2)"
}

echo "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1)"

# Each figure and ratio is taken on its own line, so that a missing one
# ends the benchmark (die in $(...) leaves only the subshell).
LOOP='s/^launch loop: .* in \([0-9.]*\) s$/\1/p'
native "$CT/cuda-drv-test" launches "$N" "$CT/kernels.fatbin"
tn=$(field "$LOOP") || exit 1
shim "$CT/cuda-drv-test" launches "$N" "$CT/kernels.fatbin"
ts=$(field "$LOOP") || exit 1
r=$(ratio "$ts" "$tn") || exit 1
row "v3: $N launches + sync, shim / native time" "$r" '<=' 1.05 \
    "native $tn s, shim $ts s"

COPY="s/^copy $MB MiB: pageable H2D \([0-9.]*\) GiB\/s D2H \([0-9.]*\) GiB\/s; pinned H2D \([0-9.]*\) GiB\/s D2H \([0-9.]*\) GiB\/s$/\1 \2 \3 \4/p"
native "$CT/cuda-drv-test" copy "$MB"
v=$(field "$COPY") || exit 1
read -r nh nd ph pd <<<"$v"
shim "$CT/cuda-drv-test" copy "$MB"
v=$(field "$COPY") || exit 1
read -r sh sd _ _ <<<"$v"
r=$(ratio "$sh" "$nh") && rp=$(ratio "$sh" "$ph") || exit 1
row "v3: $MB MiB H2D, shim / native pageable" "$r" '>=' 0.9 \
    "native pageable $nh GiB/s, pinned $ph GiB/s (shim / pinned $rp), shim $sh GiB/s"
r=$(ratio "$sd" "$nd") && rp=$(ratio "$sd" "$pd") || exit 1
row "v3: $MB MiB D2H, shim / native pageable" "$r" '>=' 0.9 \
    "native pageable $nd GiB/s, pinned $pd GiB/s (shim / pinned $rp), shim $sd GiB/s"

if [ -x "$CT/cuda-sgemm" ]; then
    GF='s/^sgemm N=.* R=.*: \([0-9.]*\) GFLOP\/s.*/\1/p'
    native "$CT/cuda-sgemm" bench "$SN" 10
    gn=$(field "$GF") || exit 1
    shim "$CT/cuda-sgemm" bench "$SN" 10
    gs=$(field "$GF") || exit 1
    r=$(ratio "$gs" "$gn") || exit 1
    row "v3: cuBLAS SGEMM n=$SN, shim / native GFLOP/s" "$r" '>=' 0.97 \
        "native $gn GFLOP/s, shim $gs GFLOP/s"
else
    echo "v3: cuBLAS SGEMM: not measured: $(cat "$CT/NO-CUBLAS" 2>/dev/null)"
fi
