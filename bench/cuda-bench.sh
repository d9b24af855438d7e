#!/bin/bash
# cuda-bench.sh - the protocol v3 row of `make bench` that needs no GPU:
# round trips per launch for a loop of small kernel launches ended by one
# synchronize, through the guest libcuda.so.1 in a TCG guest (target
# < 0.01: launches are queued and batched, never one round trip each).
#
# Usage: bench/cuda-bench.sh   (VGPU_QEMU, VGPU_BUILD, VGPU_GUEST_BUILD as
#   for the e2e tests; BENCH_CUDA_LAUNCHES, default 100000)
#
# The program (tests/cuda/drv-test.c, "launches N") runs twice in the same
# guest, with 0 launches and with N; the guest library counts the batches
# it sent (VGPU_CUDA_STATS=1), and the figure is the difference over N, so
# the set-up's own round trips are the baseline taken out.  The mediator
# runs the CUDA backend on the stand-in libcuda (a test double: kernels on
# the CPU); round trips are a count, so the stand-in does not change them.
# The rows that need a GPU (launch loop time, 1 GB copies, SGEMM against
# native) are bench/cuda-gpu-bench.sh's.
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/../tests/e2e/lib.sh"

N=${BENCH_CUDA_LAUNCHES:-100000}
CT=$VGPU_BUILD/cuda-tests
KO=$VGPU_BUILD/kmod/vgpu.ko
STANDIN=$VGPU_BUILD/mediator/fake-cuda/libcuda-fake.so
SHIM=$VGPU_GUEST_BUILD/cuda/libcuda.so.1
skip() {
    echo "cuda-bench: not measured: $*"
    exit 77
}
[ -x "$CT/cuda-drv-test" ] || skip "no CUDA test program (nvcc missing?)"
[ -f "$STANDIN" ] || skip "the mediator has no CUDA backend (nvcc missing)"
[ -f "$KO" ] || skip "no $KO"
[ -f "$SHIM" ] || skip "no $SHIM"

export VGPU_KO=$KO VGPU_LIBS=$SHIM VGPU_DATA=$CT/kernels.fatbin
VGPU_CLIENT=$VGPU_GUEST_BUILD/vgpu-client \
    "$E2E_DIR/make-initramfs.sh" "$W/initrd.cpio.gz" "$CT/cuda-drv-test" \
    >"$W/initramfs.log" 2>&1 || die "initramfs: $(tail -n 3 "$W/initramfs.log")"
KERNEL=$(e2e_kernel)
xs_start 1
xs_assign 1 A high 1
VGPU_LIBCUDA=$STANDIN mediator_start --backend cuda
VGPU_VM_MEM=512 vm_start 1 A high 1
vm_wait_ready 1
vm_run 1 insmod /lib/modules/extra/vgpu.ko
[ "$RC" = 0 ] || die "insmod failed: $OUT"
CMD_TIMEOUT=600

# batches LAUNCHES: sets BATCHES, the library's batch count for the
# program (not in a subshell: vm_run keeps the console's sequence).
batches() {
    vm_run 1 "VGPU_CUDA_STATS=1 cuda-drv-test launches $1 /opt/vgpu/kernels.fatbin 2>&1"
    [ "$RC" = 0 ] || die "cuda-drv-test launches $1 failed: $OUT"
    BATCHES=$(sed -n 's/^vgpu libcuda: \([0-9]*\) calls in \([0-9]*\) batches$/\2/p' <<<"$OUT")
}
batches 0
base=$BATCHES
batches "$N"
full=$BATCHES
[ -n "$base" ] && [ -n "$full" ] || die "no batch counts (VGPU_CUDA_STATS)"
ratio=$(awk -v a="$full" -v b="$base" -v n="$N" 'BEGIN { printf "%.5f", (a - b) / n }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r < 0.01) ? "met" : "NOT met" }')
printf '%-58s %10s\n' "v3: round trips per launch ($N launches, one sync)" "$ratio"
echo "  ($full batches with the loop, $base without; target < 0.01: $verdict)"
echo "  (the launch loop's time, 1 GB copies and SGEMM against native need a GPU: bench/cuda-gpu-bench.sh)"
