#!/bin/bash
# run-bench.sh - runs vgpu-bench for `make bench`.
#
# Usage: bench/run-bench.sh BUILD_DIR
#
# BUILD_DIR must hold mediator/vgpu-mediator, xs-server/xs-server and
# bench/vgpu-bench (bench/Makefile builds them).  Prints a table of
# per-request latency (median, p99) and throughput through the mediator and
# directly in-process, with the ratio mediator/direct, for the CPU backend
# and, where a GPU and libcuda.so.1 are usable, the CUDA backend; ends with
# "bench: done" (plus "(cuda: skipped: <why>)" when CUDA cannot run);
# then vgpu-bench-v2's rows (round trips against their floors, bulk
# against memcpy, 1/8/64 VMs, a high-priority VM under load), ending with
# "bench-v2: done".
# Exit status 0 unless something failed to run.
#
# Environment: BENCH_ITERS (default 2000), BENCH_SGEMM_ITERS, BENCH_BACKENDS
# ("cpu cuda"), VGPU_LIBCUDA (another driver library), VGPU_KEEP=1 keeps
# the temporary folder with the mediator's log.
set -u
BUILD=${1:?usage: run-bench.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd) || exit 1

for f in mediator/vgpu-mediator xs-server/xs-server bench/vgpu-bench bench/vgpu-bench-v2; do
    if [ ! -x "$BUILD/$f" ]; then
        echo "bench: $BUILD/$f is missing (run: make -C bench bench BUILD=$BUILD)" >&2
        exit 1
    fi
done
# The mediator must know --backend (auto|cpu|cuda) and --cpu-gpus.
if ! "$BUILD/mediator/vgpu-mediator" --help | grep -q -- '--backend'; then
    echo "bench: this vgpu-mediator has no --backend option; cannot pick a backend" >&2
    exit 1
fi
echo "bench: $(nproc) CPU(s); $(uname -r)"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null |
        sed 's/^/bench: GPU: /'
fi
"$BUILD/bench/vgpu-bench" "$BUILD" || exit 1
# The host-side figures of protocol v2 (bench-v2.c).
exec "$BUILD/bench/vgpu-bench-v2" "$BUILD"
