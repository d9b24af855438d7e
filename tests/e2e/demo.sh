#!/bin/bash
# demo.sh - `make demo`: two VMs share one mediator.
#
# Boots two guests under TCG at the same time, each with a vgpu-stub
# (VM1: pool A, priority high, VM-ID 1; VM2: pool A, priority medium,
# VM-ID 2), runs vgpu-client in both, and prints what each VM got, what
# the mediator logged, and how a guest mistake is reported.
set -u
. "$(dirname "$0")/lib.sh"

show() { # show VM CMD...
    local n=$1
    shift
    vm_run "$n" "$@"
    printf '  VM%s$ %s\n' "$n" "$*"
    sed 's/^/      /' <<<"$OUT"
    [ "$RC" = 0 ] || printf '      (exit status %s)\n' "$RC"
}

log "building the guest initramfs"
e2e_build_initramfs
log "starting the xenstore server and assigning the VMs (as the xapi plugin does)"
xs_start 1 2
xs_assign 1 A high 1
xs_assign 2 A medium 2
mkdir -p "$QROOT/root-1" "$QROOT/root-2"
log "starting vgpu-mediator on $QROOT"
mediator_start
log "booting VM1 and VM2 under TCG (this takes a little while)"
vm_start 1 A high 1
vm_start 2 A medium 2
vm_wait_ready 1
vm_wait_ready 2
log "both VMs are up; running requests in both at the same time"
echo
vm_send 1 vgpu-client 100 200
t1=$TAG
vm_send 2 vgpu-client 400 500
t2=$TAG
vm_wait 1 "$t1"
printf '  VM1$ vgpu-client 100 200\n      %s\n' "$OUT"
r1=$OUT
vm_wait 2 "$t2"
printf '  VM2$ vgpu-client 400 500\n      %s\n' "$OUT"
r2=$OUT
echo
show 1 vgpu-client --info
show 2 vgpu-client --info
show 2 vgpu-client --add 1,2,3,4 10,20,30,40
echo
echo "  A guest mistake gets a defined error and hurts no one else:"
show 1 vgpu-client --request-len 4096 1 2
show 2 vgpu-client 7 35
echo
echo "  What the operator sees (vgpu-smi):"
"$VGPU_BUILD/mediator/vgpu-smi" -s "$W/admin.sock" | sed 's/^/      /'
echo
echo "  What the mediator logged:"
grep -E 'listening|pool|served request|device (connected|hello)' "$W/mediator.log" |
    sed 's/^/      /' | head -n 20
echo
if [ "$r1" = 300 ] && [ "$r2" = 900 ]; then
    echo "demo: VM1 got $r1 and VM2 got $r2 through one mediator: OK"
else
    echo "demo: unexpected results: VM1 '$r1', VM2 '$r2'"
    exit 1
fi
