#!/bin/bash
# test-kmod.sh - end to end: the guest kernel driver vgpu.ko in a TCG guest
# (Debian's own kernel), next to a guest without it, both served by the
# real vgpu-mediator.
#
#   VM1: pool A, high, VM-ID 1: insmod vgpu.ko; /dev/vgpu0 and its sysfs
#        attributes; vgpu-client through the driver (100 200 -> 300,
#        --info names the driver path), many requests in flight (poll +
#        WAIT), register access refused while the driver owns BAR0; then
#        rmmod while requests are in flight (refused cleanly: the file is
#        open), unbind with requests in flight (they fail with ENODEV, the
#        client ends), rmmod, insmod again and served again; no BUG, Oops
#        or WARNING in the guest's kernel log.
#   VM2: pool A, medium, VM-ID 2: no driver, the v1 sysfs path side by side.
#   v2: when the device offers VGPU_CAP_RINGS, a vector add of 8M elements
#        (a 64 MB request, a 32 MB response) through the rings, checked
#        element by element, while VM2 is served over v1.  A v1-only
#        device gets a "skip:" line for that part, never a pass.
#
# Needs vgpu.ko for the booted kernel: $VGPU_BUILD/kmod/vgpu.ko (make
# check-build makes it), else built here; without kernel headers: exit 77.
set -u
. "$(dirname "$0")/lib.sh"

KERNEL=$(e2e_kernel)
KVER=${KERNEL#/boot/vmlinuz-}
e2e_need_kmod
OUT=$(modinfo -F vermagic "$KO")
RC=$?
check "vgpu.ko is built for the booted kernel $KVER" has "^$KVER "

export VGPU_KO=$KO
e2e_build_initramfs
xs_start 1 2
xs_assign 1 A high 1
xs_assign 2 A medium 2
mkdir -p "$QROOT/root-1" "$QROOT/root-2"
mediator_start
log "booting two guests under TCG ($KERNEL)"
# 1 GB for VM1: the kernel turns transparent huge pages off below 512 MB,
# and the 64 MB request must fit the device's MAX_SG (4096) pieces.
VGPU_VM_MEM=1024 vm_start 1 A high 1
vm_start 2 A medium 2
vm_wait_ready 1
vm_wait_ready 2
log "both guests up"

MOD=/lib/modules/extra/vgpu.ko
SYS=/sys/class/misc/vgpu0
BAD_LOG='BUG|Oops|WARNING|cut here|general protection|refcount_t|use-after-free'

# ------------------------------------------------------------ before
vm_run 1 vgpu-client --info
check "VM1 without the driver: sysfs path" has "^path: *sysfs resource0 (v1)$"

# ------------------------------------------------------------ load
vm_run 1 insmod $MOD
check "insmod vgpu.ko" rc_is 0
vm_run 1 "ls -l /dev/vgpu0"
check "/dev/vgpu0 exists, a character device" has "^c"
vm_run 1 "basename \$(readlink /sys/bus/pci/drivers/vgpu/*:*)"
BDF=$OUT
check "the vgpu driver is bound to the device ($BDF)" \
    grep -Eq '^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$' <<<"$BDF"
vm_run 1 "cat $SYS/pool"
check "sysfs pool: A" is A
vm_run 1 "cat $SYS/priority"
check "sysfs priority: high" is high
vm_run 1 "cat $SYS/vm_id"
check "sysfs vm_id: 1" is 1
vm_run 1 "cat $SYS/protocol_version"
PROTO=$OUT
check "sysfs protocol_version: 1.x or 2.x ($PROTO)" grep -Eq '^[12]\.[0-9]+$' <<<"$PROTO"
vm_run 1 "cat $SYS/caps"
CAPS=$OUT
check "sysfs caps: a 32-bit hex value ($CAPS)" grep -Eq '^0x[0-9a-f]{8}$' <<<"$CAPS"
vm_run 1 "cat $SYS/path"
DPATH=$OUT
RINGS=0
[ $((CAPS & 0x8)) != 0 ] && RINGS=1
if [ $RINGS = 1 ]; then
    check "sysfs path: rings (the device has VGPU_CAP_RINGS)" has "^rings"
    WANT_PATH="driver /dev/vgpu0 (v2 rings)"
else
    check "sysfs path: v1 (the device has no VGPU_CAP_RINGS)" is v1
    WANT_PATH="driver /dev/vgpu0 (v1 registers)"
fi
vm_run 1 "dmesg | grep vgpu"
check "the driver says what it found in the kernel log" has "/dev/vgpu0: protocol"

# ------------------------------------------------------------ serve
vm_run 1 vgpu-client 100 200
check "VM1 through the driver: vgpu-client 100 200 prints 300" is 300
check "VM1 through the driver: exit 0" rc_is 0
vm_run 1 vgpu-client --info
check "VM1 --info names the driver path" has "^path: *$WANT_PATH$"
check "VM1 --info through the driver: pool A" has "^pool: *A$"
check "VM1 --info through the driver: priority high" has "^priority: *high"
check "VM1 --info through the driver: VM-ID 1" has "^vm-id: *1$"
vm_run 1 vgpu-client --add 1,2,3 10,20,30
check "VM1 through the driver: vector of three" is "11,22,33"
vm_run 1 vgpu-client --sgemm 64:3
check "VM1 through the driver: SGEMM checksum matches" has "(matches the reference)"
vm_run 1 vgpu-client --bulk 127
check "VM1 through the driver: 127 generated elements, all match" has "every element matches"
vm_run 1 vgpu-client --opcode 99 1 2
check "VM1 through the driver: forged opcode needs the sysfs path (exit 3)" rc_is 3
vm_run 1 vgpu-client --read-reg VM_ID
check "VM1: register access refused while the driver owns BAR0 (exit 3)" rc_is 3
check "VM1: ... with a message saying why" has "needs the sysfs resource0 path"

# Many requests in flight from two processes, VM2 over v1 at the same time.
vm_send 2 "vgpu-client --stress 100"
t2=$TAG
vm_send 1 "vgpu-client --stress 300:16 & vgpu-client --stress 300:16; wait"
t1=$TAG
vm_wait 1 "$t1"
check "VM1: 2 x 300 requests, 16 in flight each, all ok" \
    bash -c '[ "$(grep -c "^stress: 300 requests, 300 ok, 0 failed" <<<"$0")" = 2 ]' "$OUT"
vm_wait 2 "$t2"
check "VM2 (no driver) side by side: 100 requests over sysfs, all ok" \
    has "^stress: 100 requests, 100 ok, 0 failed"
vm_run 2 vgpu-client --info
check "VM2 --info: sysfs path" has "^path: *sysfs resource0 (v1)$"
vm_run 2 vgpu-client 400 500
check "VM2: vgpu-client 400 500 prints 900" is 900

# ------------------------------------------------------------ v2: 64 MB
if [ $RINGS = 1 ]; then
    vm_run 1 "cat $SYS/max_xfer"
    MAXX=$OUT
    # 8M elements: 64 MiB of operands plus the 8-byte header; when MAX_XFER
    # is exactly 64 MiB, one element less (still 64 MiB on the wire).
    N=8388608
    [ "$MAXX" -lt $((8 * N + 8)) ] 2>/dev/null && N=$(((MAXX - 8) / 8))
    log "v2: vector add of $N elements (MAX_XFER $MAXX)"
    vm_send 2 "vgpu-client --stress 50"
    t2=$TAG
    CMD_TIMEOUT=600 vm_run 1 "vgpu-client -t 600000 --bulk $N"
    check "v2: a vector add of $N elements ($((8 * N + 8)) bytes in, $((4 * N + 8)) out) through the rings, every element matches" \
        has "^bulk: $N elements, .*every element matches$"
    vm_wait 2 "$t2"
    check "v2: VM2's v1 client served side by side" has "^stress: 50 requests, 50 ok, 0 failed"
else
    echo "skip: v2 ring part (64 MB through DMA): the booted device offers protocol $PROTO, caps $CAPS, no VGPU_CAP_RINGS"
    vm_run 1 vgpu-client --bulk 128
    check "v1 path: a request over 1 KB is refused, not truncated" rc_not 0
fi

# ------------------------------------------------------------ unload
vm_spawn 1 stress "vgpu-client --stress 100000000:16"
sleep 3
vm_run 1 "cat $SYS/inflight"
log "in flight before rmmod: $OUT"
vm_run 1 rmmod vgpu
check "rmmod while /dev/vgpu0 is open and busy: refused cleanly" rc_not 0
vm_run 1 "ls /dev/vgpu0"
check "... and the device still there" rc_is 0
vm_run 1 "echo $BDF > /sys/bus/pci/drivers/vgpu/unbind"
check "unbind with requests in flight" rc_is 0
vm_collect 1 stress
check "the busy client ends: its requests fail, device gone" \
    grep -Eq "went away|No such device" <<<"$OUT"
check "... after it had been served" grep -Eq "^stress: [0-9]+ requests, [1-9][0-9]* ok" <<<"$OUT"
vm_run 1 "ls /dev/vgpu0"
check "/dev/vgpu0 is gone after unbind" rc_not 0
vm_run 1 rmmod vgpu
check "rmmod after unbind" rc_is 0
vm_run 1 insmod $MOD
check "insmod again" rc_is 0
vm_run 1 vgpu-client 100 200
check "served again after reload" is 300
vm_spawn 1 stress2 "vgpu-client --stress 100000000:16"
sleep 3
vm_run 1 "echo 1 > /sys/bus/pci/devices/$BDF/remove"
check "hot-remove of the PCI device with requests in flight" rc_is 0
vm_collect 1 stress2
check "the busy client ends after the device's removal" \
    grep -Eq "went away|No such device" <<<"$OUT"
vm_run 1 "echo 1 > /sys/bus/pci/rescan; sleep 1; ls /dev/vgpu0 && vgpu-client 7 8"
check "rescan: the device comes back to the driver and is served" has "^15$"
vm_run 1 rmmod vgpu
check "rmmod with the device bound and idle" rc_is 0
vm_run 1 vgpu-client --info
check "after rmmod: back on the sysfs path" has "^path: *sysfs resource0 (v1)$"
vm_run 1 vgpu-client 1 2
check "after rmmod: the v1 sysfs path still serves" is 3
vm_run 1 "dmesg | grep -E '$BAD_LOG'"
check "no BUG, Oops or WARNING in the guest's kernel log" rc_not 0
[ "$RC" = 0 ] && echo "$OUT" | head -n 20

check "no sanitizer report from the mediator" \
    bash -c "! grep -q 'Sanitizer' '$W/mediator.log'"
e2e_summary
