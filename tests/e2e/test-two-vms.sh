#!/bin/bash
# test-two-vms.sh - end to end: two TCG guests at the same time, each with
# its own vgpu-stub in a real QEMU, served by one real vgpu-mediator whose
# identity data comes from xenstore over the real wire protocol.
#
#   VM1: pool A, priority high,   VM-ID 1: vgpu-client 100 200 -> 300
#   VM2: pool A, priority medium, VM-ID 2: vgpu-client 400 500 -> 900
#
# then --info in each guest, the error paths a guest can reach (oversize
# REQUEST_LEN, bad doorbell value, unknown opcode), and the mediator
# stopped, crashed and restarted while the guests keep running.
set -u
. "$(dirname "$0")/lib.sh"


OUT=$("$VGPU_QEMU" -device vgpu-stub,help 2>&1)
RC=$?
for prop in pool priority vm-id socket timeout-ms; do
    check "-device vgpu-stub,help lists $prop" has "^ *$prop="
done
# Pools are names (any valid one: which exist is pools.conf's, checked by
# the plugin); what is no pool name is refused when QEMU starts.
OUT=$(timeout 30 "$VGPU_QEMU" -nodefaults -machine pc -display none -S \
    -L /usr/share/seabios -L /usr/share/qemu -device vgpu-stub,pool=-C 2>&1)
RC=$?
check "pool=-C (not a pool name) refused at start" rc_is 1
check "pool=-C refused with a message naming the pool" has "pool '-C' is not a pool name"

e2e_build_initramfs
xs_start 1 2
xs_assign 1 A high 1
xs_assign 2 A medium 2
mkdir -p "$QROOT/root-1" "$QROOT/root-2"
mediator_start
log "booting two guests under TCG ($KERNEL)"
vm_start 1 A high 1
vm_start 2 A medium 2
vm_wait_ready 1
vm_wait_ready 2
log "both guests up"

# Both requests in flight at the same time.
vm_send 1 vgpu-client 100 200
t1=$TAG
vm_send 2 vgpu-client 400 500
t2=$TAG
vm_wait 1 "$t1"
check "VM1: vgpu-client 100 200 prints 300" is 300
check "VM1: exit status 0" rc_is 0
vm_wait 2 "$t2"
check "VM2: vgpu-client 400 500 prints 900" is 900
check "VM2: exit status 0" rc_is 0

vm_run 1 vgpu-client --info
check "VM1 --info: pool A" has "^pool: *A$"
check "VM1 --info: priority high" has "^priority: *high"
check "VM1 --info: VM-ID 1" has "^vm-id: *1$"
check "VM1 --info: protocol 2.0 (the v1 path on a v2 device)" has "^protocol: *2\.0"
check "VM1 --info: capabilities" has "^capabilities: .*VECTOR_ADD"
vm_run 2 vgpu-client --info
check "VM2 --info: pool A" has "^pool: *A$"
check "VM2 --info: priority medium" has "^priority: *medium"
check "VM2 --info: VM-ID 2" has "^vm-id: *2$"
check "VM2 --info: protocol 2.0 (the v1 path on a v2 device)" has "^protocol: *2\.0"

vm_run 1 vgpu-client --add 1,2,3 10,20,30
check "VM1: vector of three" is "11,22,33"
vm_run 2 vgpu-client --sgemm 128:5
check "VM2: SGEMM 128x128 checksum matches the reference" \
    has "^sgemm n=128 seed=5 checksum=-\?[0-9]* (matches the reference)$"

# The operator's view while both VMs are served.
OUT=$("$VGPU_BUILD/mediator/vgpu-smi" -s "$W/admin.sock" 2>&1)
RC=$?
check "vgpu-smi: answers" rc_is 0
check "vgpu-smi: VM1 row (domid 1, VM-ID 1, pool A, high, connected)" \
    grep -Eq "^ *1 .* 1 +A +high +yes" <<<"$OUT"
check "vgpu-smi: VM2 row (domid 2, VM-ID 2, pool A, medium)" \
    grep -Eq "^ *2 .* 2 +A +medium +yes" <<<"$OUT"
OUT=$("$VGPU_BUILD/mediator/vgpu-smi" -s "$W/admin.sock" --prometheus 2>&1)
check "vgpu-smi --prometheus: served counter for VM2" \
    grep -Eq '^vgpu_vm_requests_served_total\{[^}]*domid="2"[^}]*\} [1-9]' <<<"$OUT"

# Guest mistakes, from inside the guest.
vm_run 1 vgpu-client --request-len 2048 100 200
check "REQUEST_LEN 2048: error named" has "REQUEST_TOO_LARGE"
check "REQUEST_LEN 2048: non-zero exit" rc_not 0
vm_run 1 vgpu-client --read-reg STATUS
check "REQUEST_LEN 2048: STATUS=ERROR" has "0x00000003"
vm_run 1 vgpu-client --doorbell 2
check "doorbell value 2: BAD_DOORBELL" has "BAD_DOORBELL"
check "doorbell value 2: non-zero exit" rc_not 0
vm_run 1 vgpu-client --opcode 99 1 2
check "unknown opcode: mediator answers BAD_OPCODE" has "BAD_OPCODE"
check "unknown opcode: non-zero exit" rc_not 0
vm_run 1 vgpu-client --write-reg VM_ID=77
vm_run 1 vgpu-client --read-reg VM_ID
check "write to read-only VM_ID ignored" has "= 0x00000001"
vm_run 1 vgpu-client 5 6
check "VM1 recovers after its mistakes" is 11
vm_run 2 vgpu-client 7 8
check "VM2 unaffected by VM1's mistakes" is 15

# Mediator stopped: a bounded error, then service again after a restart.
mediator_stop TERM
vm_run 1 vgpu-client 1 2
check "mediator stopped: NO_MEDIATOR" has "NO_MEDIATOR"
check "mediator stopped: non-zero exit" rc_not 0
mediator_start
vm_run 1 vgpu-client 1 2
check "mediator restarted: VM1 served again" is 3
vm_run 2 vgpu-client 2 2
check "mediator restarted: VM2 served again" is 4

# Mediator crash (SIGKILL leaves the socket files behind).
mediator_stop KILL
vm_run 2 vgpu-client 1 1
check "mediator crashed: VM2 gets an error" rc_not 0
check "mediator crashed: error is NO_MEDIATOR or MEDIATOR_LOST" \
    grep -Eq "NO_MEDIATOR|MEDIATOR_LOST" <<<"$OUT"
mediator_start
vm_run 2 vgpu-client 20 22
check "after the crash and restart: VM2 served" is 42
vm_run 1 vgpu-client 100 200
check "after the crash and restart: VM1 served" is 300

check "mediator served requests of dom1 and dom2" \
    grep -q "dom2: served request" "$W/mediator.log"
check "no sanitizer report from the mediator" \
    bash -c "! grep -q 'Sanitizer' '$W/mediator.log'"

e2e_summary
