#!/bin/bash
# test-cuda.sh - end to end, protocol v3: unmodified CUDA programs, a
# driver-API one (tests/cuda/drv-test.c, built by the CUDA toolkit's nvcc
# and linked against its stub libcuda.so) and a runtime-API one
# (tests/cuda/rt-test.cu, built by plain nvcc: NVIDIA's runtime linked
# statically, which finds the driver by dlopen and cuGetProcAddress and
# asks for its private export tables), run in two TCG guests at once
# against the guest's libcuda.so.1 (guest-tools/cuda-shim), installed
# where Debian's loader finds libcuda, through vgpu.ko's rings to the real
# vgpu-mediator with its CUDA backend.  No GPU here: the backend runs on
# the stand-in libcuda (the test double mediator/tests/fakes/
# fake-libcuda.c), which loads the program's own nvcc-built images and
# runs their kernels on the CPU.
#
#   VM1: pool A, high, the mediator's default quota (--quota-mb 64);
#   VM2: pool A, low, its own quota of 32 MB (xenstore quota-mb, as the
#   plugin writes it from other-config:vgpu-quota-mb).
#   Both: device query (the stand-in's name, memory cut to the quota),
#   vector add from a fatbin file, matrix multiply from PTX in memory,
#   10000 launches then one sync (batched: the library's own count of
#   round trips is checked), streams and events; every result checked by
#   the program.  VM1 then runs the hostile calls (made-up handles,
#   out-of-range copies, huge sizes, a truncated image, a kernel that
#   faults) while VM2 runs again, unharmed.  Then both run the runtime-API
#   program at once: device properties, cudaMemGetInfo (the quota), a
#   vector add with <<<>>>, a stream with a memset, 100 launches and
#   events.
#
# VGPU_E2E_REAL_CUDA=1 (make gpu-check) runs the same on the host's real
# libcuda.so.1 and GPU instead of the stand-in.
#
# Needs nvcc (tests/cuda), the CUDA backend (the mediator built with nvcc)
# and vgpu.ko for the booted kernel; without them: exit 77, saying which.
set -u
. "$(dirname "$0")/lib.sh"

cuda_e2e_need
PROG=$CT/cuda-drv-test
RTPROG=$CT/cuda-rt-test
SHIM=$VGPU_GUEST_BUILD/cuda/libcuda.so.1
[ -f "$SHIM" ] || die "no guest libcuda.so.1 at $SHIM"

KERNEL=$(e2e_kernel)
KVER=${KERNEL#/boot/vmlinuz-}
KO=${VGPU_KMOD:-$VGPU_BUILD/kmod/vgpu.ko}
if [ ! -f "$KO" ]; then
    echo "SKIP: no vgpu.ko for $KVER at $KO"
    exit 77
fi

export VGPU_KO=$KO VGPU_LIBS=$SHIM
export VGPU_DATA="$CT/kernels.fatbin $CT/kernels.ptx $CT/big.fatbin"
VGPU_CLIENT=$VGPU_GUEST_BUILD/vgpu-client \
    "$E2E_DIR/make-initramfs.sh" "$W/initrd.cpio.gz" "$PROG" "$RTPROG" \
    >"$W/initramfs.log" 2>&1 ||
    die "initramfs build failed: $(tail -n 5 "$W/initramfs.log")"

xs_start 1 2
xs_assign 1 A high 1
xs_assign 2 A low 2
xenstore-write /local/domain/2/vgpu-mediator/quota-mb 32 || die "xenstore-write"
cuda_mediator_start --quota-mb 64
log "booting two guests under TCG ($KERNEL)"
VGPU_VM_MEM=512 vm_start 1 A high 1
VGPU_VM_MEM=512 vm_start 2 A low 2
vm_wait_ready 1
vm_wait_ready 2
for n in 1 2; do
    vm_run $n insmod /lib/modules/extra/vgpu.ko
    check "VM$n: insmod vgpu.ko" rc_is 0
done

vm_run 1 "ls -l /usr/lib/x86_64-linux-gnu/libcuda.so.1"
check "the guest's libcuda.so.1 is where Debian's loader looks" rc_is 0

RUN="VGPU_CUDA_STATS=1 cuda-drv-test run /opt/vgpu/kernels.fatbin /opt/vgpu/kernels.ptx"
export VGPU_CMD_TIMEOUT=${VGPU_CMD_TIMEOUT:-300}
CMD_TIMEOUT=$VGPU_CMD_TIMEOUT
vm_send 1 "$RUN 2>&1"
T1=$TAG
vm_send 2 "$RUN 2>&1"
T2=$TAG
QUOTA1=67108864 QUOTA2=33554432
for n in 1 2; do
    t=T$n q=QUOTA$n
    vm_wait $n "${!t}"
    echo "$OUT" | sed "s/^/  vm$n| /"
    check "VM$n: the driver-API program passes" rc_is 0
    check "VM$n: it says PASS" has '^PASS$'
    check "VM$n: the device is the host's ($DEVNAME)" \
        has "device 0: $DEVNAME,"
    check "VM$n: the device's memory is the VM's quota (${!q} bytes)" \
        has ", ${!q} bytes\$"
    check "VM$n: cuMemGetInfo's total is the quota" has "free of ${!q}\$"
    check "VM$n: vector add, matrix multiply, launches, streams all ok" \
        bash -c '[ "$(grep -c "^ok: " <<<"$0")" -ge 5 ]' "$OUT"
    # The library's own count: 10000 launches in few round trips.
    BATCHES=$(sed -n 's/^vgpu libcuda: .* calls in \([0-9]*\) batches.*/\1/p' <<<"$OUT")
    check "VM$n: 10000 launches took well under 100 round trips in all ($BATCHES batches)" \
        bash -c '[ -n "$0" ] && [ "$0" -lt 100 ]' "$BATCHES"
done

vm_send 1 "cuda-drv-test hostile /opt/vgpu/kernels.fatbin 2>&1"
T1=$TAG
vm_send 2 "$RUN 2>&1"
T2=$TAG
vm_wait 1 "$T1"
echo "$OUT" | sed 's/^/  vm1| /'
check "VM1: every hostile call got its CUDA error" rc_is 0
check "VM1: hostile run says PASS" has '^PASS$'
check "VM1: a fault is reported as CUDA_ERROR_ILLEGAL_ADDRESS" \
    has 'cuCtxSynchronize() -> CUDA_ERROR_ILLEGAL_ADDRESS'
vm_wait 2 "$T2"
check "VM2: runs again, unharmed, while VM1 misbehaves" has '^PASS$'

# A module image over the library's 4 MB batch, in a request of its own
# through the driver's scatter-gather lists.
vm_run 2 "cuda-drv-test big /opt/vgpu/big.fatbin 2>&1"
echo "$OUT" | sed 's/^/  vm2| /'
check "VM2: a 5 MiB module image (over one batch) loads and runs" \
    bash -c 'grep -q "^ok: a module image of [0-9]* bytes loaded" <<<"$0" ||
        { [ "$1" = 1 ] && grep -q "^SKIP: the big image" <<<"$0"; }' "$OUT" "${VGPU_E2E_REAL_CUDA:-0}"

vm_send 1 "VGPU_CUDA_STATS=1 cuda-rt-test 2>&1"
T1=$TAG
vm_send 2 "VGPU_CUDA_STATS=1 cuda-rt-test 2>&1"
T2=$TAG
for n in 1 2; do
    t=T$n q=QUOTA$n
    vm_wait $n "${!t}"
    echo "$OUT" | sed "s/^/  vm$n| /"
    check "VM$n: the runtime-API program (plain nvcc, static cudart) passes" rc_is 0
    check "VM$n: it says PASS" has '^PASS$'
    check "VM$n: cudaGetDeviceProperties names the host's device" \
        has "device 0: $DEVNAME,"
    check "VM$n: cudaMemGetInfo's total is the VM's quota" has "free of ${!q}\$"
    check "VM$n: the kernel launched with <<<>>> computed the vector add" \
        has '^ok: vector add through the runtime API$'
done

# A process that dies holding device memory: the driver ends its session
# when its file is released, and the host frees what it made.
vm_run 2 "cuda-drv-test hold 16 >/tmp/hold.out 2>&1 & sleep 3; cat /tmp/hold.out; echo pid \$!"
check "VM2: a process holds 16 MB of device memory" has 'holding 16 MB'
HOLD_PID=$(sed -n 's/^pid //p' <<<"$OUT")
vm_run 2 "cuda-rt-test 2>&1 | grep '^memory:'"
check "VM2: while it lives, the memory is taken" has "free of ${QUOTA2}\$"
HELD_FREE=$(sed -n 's/^memory: \([0-9]*\) free.*/\1/p' <<<"$OUT")
check "VM2: ... at least 16 MB of it (free $HELD_FREE of $QUOTA2)" \
    bash -c '[ -n "$0" ] && [ "$0" -le $(( $1 - 16777216 )) ]' "$HELD_FREE" "$QUOTA2"
OUT=$("$VGPU_BUILD/mediator/vgpu-smi" -s "$W/admin.sock" --json 2>&1)
RC=$?
check "vgpu-smi: VM2 has its holding process's CUDA context" \
    grep -q '"domid": 2,[^}]*"cuda_contexts": 1,' <<<"$OUT"
check "vgpu-smi: VM1's remoted calls are counted" \
    bash -c '[ "$(grep -o "\"domid\": 1,[^}]*" <<<"$0" | sed -n "s/.*\"cuda_calls\": \([0-9]*\).*/\1/p")" -gt 10000 ]' "$OUT"
# The status file says so too (within its 1 s refresh): vgpu-publish blocks
# the migration of such a VM in xapi from it (hostcap.c).
status_cuda() { grep -q "^domain 2 .* cuda=$1\$" "$MED_STATUS"; }
wait_until 5 status_cuda 1
RC=$?
OUT=$(cat "$MED_STATUS")
check "the status file: domain 2 holds 1 CUDA context (cuda=1)" rc_is 0
vm_run 2 "kill -9 $HOLD_PID; sleep 1; cuda-rt-test 2>&1 | grep '^memory:'"
check "VM2: killed, its session ends and all the memory is back" \
    has "^memory: ${QUOTA2} free of ${QUOTA2}\$"
wait_until 5 status_cuda 0
RC=$?
OUT=$(cat "$MED_STATUS")
check "the status file: domain 2 holds no CUDA context any more (cuda=0)" rc_is 0

grep -q 'a CUDA error spoiled the context' "$W/mediator.log"
RC=$?
check "the mediator logged the spoiled context of VM1" rc_is 0
kill -0 "$MED_PID" 2>/dev/null
RC=$?
check "the mediator is still running" rc_is 0
for n in 1 2; do
    vm_run $n "dmesg | grep -E 'BUG|Oops|WARNING|general protection' | head -3"
    check "VM$n: no kernel trouble" is ""
done
e2e_summary
