#!/bin/bash
# test-cuda-sim.sh - protocol v3 from simulated VMs: the same unmodified
# CUDA programs as test-cuda.sh (the driver-API tests/cuda/drv-test.c and
# the runtime-API tests/cuda/rt-test.cu, plain nvcc), run on this machine
# against the simulated VM's libcuda.so.1 (tests/cuda-sim: the guest
# shim's own sources over the real device <-> mediator channel instead of
# a guest's /dev/vgpu0), to the real vgpu-mediator with its CUDA backend
# on the stand-in libcuda (mediator/tests/fakes/fake-libcuda.c, kernels on
# the CPU).  No QEMU: the path below the shim is the simulated device of
# tests/lib/shmdev.c, which the integration tests hold to the protocol.
#
# What it pins that the TCG test cannot reach cheaply: the shim itself
# (the same sources) under programs that a guest's initramfs could not
# hold, and the simulated VM that `make gpu-check` uses to measure the
# shim against native on one GPU machine.
#
#   dom1: pool A, high, the default quota (--quota-mb 64);
#   dom2: pool A, low, its own 32 MB (xenstore quota-mb).
#   Both at once: the driver-API program, the runtime-API program, our
#   rewrites of NVIDIA's vectorAddDrv and matrixMulDrv samples; a cuBLAS
#   SGEMM (as far as the stand-in can take it); then dom1's hostile calls while dom2 runs again; a program with no
#   simulated device gets CUDA_ERROR_NO_DEVICE.  (What a killed process
#   leaves is test-cuda.sh's: the guest driver ends its session; a killed
#   simulated process cannot.)
#
# VGPU_E2E_REAL_CUDA=1 (make gpu-check) runs the same on the host's real
# libcuda.so.1 and GPU; VGPU_SIM_NATIVE_SUMS ("vadd=X mm16=Y mm32=Z", the
# native runs' checksums) makes the samples' results compared bit for bit
# with them.  Needs nvcc (tests/cuda) and the CUDA backend;
# without them: exit 77, saying which.
set -u
. "$(dirname "$0")/lib.sh"

cuda_e2e_need
SIM=$VGPU_BUILD/cuda-sim
[ -f "$SIM/libcuda.so.1" ] || die "no simulated VM libcuda.so.1 at $SIM"

# Every driver call the library exports is what cuGetProcAddress answers
# for its base name (the per-thread flag for _ptsz/_ptds), and the calls
# whose signature changed answer an old caller with the old variant.
OUT=$(python3 - "$SIM/libcuda.so.1" <<'PY' 2>&1
import ctypes, re, subprocess, sys
path = sys.argv[1]
lib = ctypes.CDLL(path)
gpa = lib.cuGetProcAddress_v2
gpa.restype = ctypes.c_int
gpa.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                ctypes.c_uint64, ctypes.POINTER(ctypes.c_int)]
def lookup(name, version, flags=0):
    p, st = ctypes.c_void_p(), ctypes.c_int()
    r = gpa(name.encode(), ctypes.byref(p), version, flags, ctypes.byref(st))
    return p.value if r == 0 else None
def addr(sym):
    return ctypes.cast(getattr(lib, sym), ctypes.c_void_p).value
nm = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True,
                    text=True, check=True).stdout.split("\n")
names = [l.split()[-1] for l in nm if " T cu" in l]
lost = [n for n in names
        if not lookup(re.sub(r"(_v\d+)?(_pt(sz|ds))?$", "", n), 13000,
                      2 if re.search(r"_pt(sz|ds)$", n) else 0)]
print("exported: %d, not reachable by base name: %s" % (len(names), lost or "none"))
for ver, sym in ((10010, "cuStreamGetCaptureInfo"), (11030, "cuStreamGetCaptureInfo_v2"),
                 (12030, "cuStreamGetCaptureInfo_v3"), (13000, "cuStreamGetCaptureInfo_v3")):
    print("cuStreamGetCaptureInfo at %d: %s" % (ver, "ok" if lookup("cuStreamGetCaptureInfo", ver) == addr(sym) else "WRONG"))
PY
)
RC=$?
echo "$OUT"
check "the cuGetProcAddress check ran (python3 ctypes)" rc_is 0
check "every exported call is reachable through cuGetProcAddress" has 'not reachable by base name: none$'
check "cuStreamGetCaptureInfo: each caller version gets its signature" \
    bash -c '[ "$(grep -c "^cuStreamGetCaptureInfo at .*: ok$" <<<"$0")" = 4 ]' "$OUT"

xs_start 1 2
xs_assign 1 A high 1
xs_assign 2 A low 2
xenstore-write /local/domain/2/vgpu-mediator/quota-mb 32 || die "xenstore-write"
mkdir -p "$QROOT/root-1" "$QROOT/root-2"
cuda_mediator_start --quota-mb 64
for n in 1 2; do
    wait_until 10 test -S "$QROOT/root-$n/vgpu-mediator.sock" ||
        die "no mediator socket for dom$n"
done

# sim_run DOMID NAME CMD...: CMD as a process of the simulated VM DOMID,
# in the background; sim_wait NAME sets OUT and RC.  One process per
# simulated VM at a time: each is that VM's device connection, and a
# domain has one (its qemu-dm's); in a real guest the driver shares it.
declare -A SIM_PID
sim_run() {
    local n=$1 name=$2
    shift 2
    VGPU_CUDA_STATS=1 sim_exec "$n" timeout 300 "$@" >"$W/$name.out" 2>&1 &
    SIM_PID[$name]=$!
}
sim_wait() {
    wait "${SIM_PID[$1]}"
    RC=$?
    OUT=$(cat "$W/$1.out")
    echo "$OUT" | sed "s/^/  $1| /"
}

QUOTA1=67108864 QUOTA2=33554432
sim_run 1 drv1 "$CT/cuda-drv-test" run "$CT/kernels.fatbin" "$CT/kernels.ptx"
sim_run 2 drv2 "$CT/cuda-drv-test" run "$CT/kernels.fatbin" "$CT/kernels.ptx"
for n in 1 2; do
    q=QUOTA$n
    sim_wait drv$n
    check "dom$n: the driver-API program passes" rc_is 0
    check "dom$n: it says PASS" has '^PASS$'
    check "dom$n: its calls went through the simulated VM's library" \
        has '^vgpu libcuda: [0-9]* calls in [0-9]* batches'
    check "dom$n: the device is the host's ($DEVNAME)" has "device 0: $DEVNAME,"
    check "dom$n: the device's memory is the VM's quota (${!q} bytes)" \
        has ", ${!q} bytes\$"
    check "dom$n: kernel attributes, occupancy and cuLaunchKernelEx answer" \
        bash -c '[ "$(grep -c "^ok: \(function attribute\|dynamic shared\|setting a read-only\|occupancy\|the default stream is not\|cuLaunchKernelEx\)" <<<"$0")" = 6 ]' "$OUT"
done

sim_run 1 rt1 "$CT/cuda-rt-test"
sim_run 2 rt2 "$CT/cuda-rt-test"
for n in 1 2; do
    q=QUOTA$n
    sim_wait rt$n
    check "dom$n: the runtime-API program (plain nvcc, static cudart) passes" rc_is 0
    check "dom$n: it says PASS" has '^PASS$'
    check "dom$n: cudaMemGetInfo's total is the quota" has "free of ${!q}\$"
done

# Our rewrites of NVIDIA's vectorAddDrv and matrixMulDrv samples, one in
# each VM at once, then swapped: each checks its own result against the
# host's; the two VMs' results must be the same bits.
for round in 1 2; do
    for n in 1 2; do
        if [ $(((n + round) % 2)) = 0 ]; then
            sim_run $n s$n "$CT/cuda-vector-add-drv" "$CT/samples.fatbin"
        else
            sim_run $n s$n "$CT/cuda-matrix-mul-drv" "$CT/samples.ptx" $((round * 16))
        fi
    done
    for n in 1 2; do
        sim_wait s$n
        if [ $(((n + round) % 2)) = 0 ]; then
            check "dom$n: vectorAddDrv (kernelParams and a parameter buffer) passes" \
                has '^PASS$'
            printf -v "VADD$n" '%s' "$(sed -n 's/^checksum //p' <<<"$OUT")"
        else
            check "dom$n: matrixMulDrv (PTX through cuModuleLoadDataEx, block $((round * 16))) passes" \
                has '^PASS$'
            printf -v "MM$((round * 16))" '%s' "$(sed -n 's/^checksum //p' <<<"$OUT")"
        fi
    done
done
check "both VMs' vector sums are the same bits ($VADD1)" \
    bash -c '[ -n "$0" ] && [ "$0" = "$1" ]' "$VADD1" "$VADD2"
# make gpu-check passes the native run's checksums: the same bits.
for want in ${VGPU_SIM_NATIVE_SUMS:-}; do
    case ${want%%=*} in
    vadd) got=$VADD1 ;;
    mm16) got=$MM16 ;;
    mm32) got=$MM32 ;;
    *) continue ;;
    esac
    check "${want%%=*}: the remoted result is the native run's bits (${want#*=})" \
        bash -c '[ -n "$0" ] && [ "$0" = "$1" ]' "$got" "${want#*=}"
done

# A module image over the library's 4 MB batch goes in a request of its
# own (cuBLAS has three such fatbins).
sim_run 2 big "$CT/cuda-drv-test" big "$CT/big.fatbin"
sim_wait big
check "dom2: a 5 MiB module image (over one batch) loads and its kernel runs" \
    bash -c 'grep -q "^ok: a module image of [0-9]* bytes loaded" <<<"$0" ||
        { [ "$1" = 1 ] && grep -q "^SKIP: the big image" <<<"$0"; }' "$OUT" "${VGPU_E2E_REAL_CUDA:-0}"

sim_run 1 hostile "$CT/cuda-drv-test" hostile "$CT/kernels.fatbin"
sim_run 2 again "$CT/cuda-drv-test" run "$CT/kernels.fatbin" "$CT/kernels.ptx"
sim_wait hostile
check "dom1: every hostile call got its CUDA error" rc_is 0
check "dom1: a fault is reported as CUDA_ERROR_ILLEGAL_ADDRESS" \
    has 'cuCtxSynchronize() -> CUDA_ERROR_ILLEGAL_ADDRESS'
sim_wait again
check "dom2: runs again, unharmed, while dom1 misbehaves" has '^PASS$'

# cuBLAS (NVIDIA's libcublas and libcublasLt, each with its own static
# runtime, ~3000 fatbins registered as libraries).  On a GPU it must give
# the CPU's product; the stand-in cannot run cuBLAS's kernels (its fatbins
# are compressed, the stand-in reads plain cubins only), so here it pins
# how far cuBLAS gets: both runtimes start on this library (export
# tables, the integrity check, every library registered), its first
# kernel's image passes the mediator's own image check and reaches the
# driver, whose refusal comes back as cuBLAS's error, with no call
# unsupported on the way.
if [ -x "$CT/cuda-sgemm" ]; then
    mark=$(wc -l <"$W/mediator.log")
    sim_run 1 sgemm "$CT/cuda-sgemm" check 256
    sim_wait sgemm
    if [ "${VGPU_E2E_REAL_CUDA:-0}" = 1 ]; then
        check "dom1: cuBLAS SGEMM 256 equals the CPU's product" has '^PASS$'
    else
        check "dom1: cuBLAS: the program ends with cuBLAS's error" rc_not 0
        check "dom1: cuBLAS: cublasCreate reached the driver" \
            has 'cublasCreate(&h) -> CUBLAS_STATUS_INTERNAL_ERROR'
        check "dom1: cuBLAS: its first kernel image passed the mediator's check and reached the stand-in" \
            bash -c 'tail -n "+$1" "$0" | grep -q "dom1 gpu0: MODULE_LOAD: CUDA_ERROR_NO_BINARY_FOR_GPU"' \
            "$W/mediator.log" "$mark"
    fi
    check "dom1: cuBLAS: no call it made was unsupported" \
        bash -c '[ -n "$0" ] && ! grep -q "not supported by vgpu\|a table vgpu does not have" <<<"$0"' "$OUT"
else
    echo "not run: cuBLAS ($(cat "$CT/NO-CUBLAS" 2>/dev/null))"
fi

LD_LIBRARY_PATH=$SIM VGPU_SIM_SOCKET= "$CT/cuda-drv-test" run \
    "$CT/kernels.fatbin" "$CT/kernels.ptx" >"$W/nodev.out" 2>&1
RC=$?
OUT=$(cat "$W/nodev.out")
check "no device: the program fails" rc_not 0
check "no device: cuInit says CUDA_ERROR_NO_DEVICE" has CUDA_ERROR_NO_DEVICE

e2e_summary
