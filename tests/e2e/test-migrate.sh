#!/bin/bash
# test-migrate.sh - end to end: live migration, and save/restore to a file,
# of a TCG guest with the device, between two "hosts" on this machine, with
# requests in flight at the moment the VM moves.
#
# Each host is what one XCP-ng host's dom0 has: its own xenstore (the
# xs-server stand-in), its own qemu root with one root-<domid> chroot per
# VM, its own vgpu-mediator.  A migration is what xenopsd does with the
# VM's qemu-dm (xc/device.ml): the source is stopped and its device state
# sent, the destination qemu-dm is started for a new domid with
# `-incoming` (the stock qemu-wrapper turns xenopsd's `-loadvm FILE` into
# `-incoming fd:N`, fixtures/xcpng/xenopsd-8.3/qemu-wrapper), and the
# destination's wrapper has written the VM's pool, priority and VM-ID
# under the new domid in that host's xenstore (here: xs_assign, as the
# plugin writes them).  Under TCG QEMU moves the guest's memory as well.
#
#   1. v1 (sysfs path, no driver): host A (domid 3) -> host B (domid 8),
#      live, while the guest runs one-element adds in a loop and checks
#      each; host A's mediator is frozen (SIGSTOP) before the move, so a
#      request is surely in flight.  The destination re-sends it to host
#      B's mediator: the loop ends with every request ok.
#   2. v2 (vgpu.ko, rings): host B (8) -> host A (domid 4), live, 16
#      requests in flight per client, host B's mediator frozen first: every
#      ring request in flight is re-sent, each result checked, no stray
#      completion (a doubled CQE) in the driver.
#   3. save/restore of the v2 VM to a file on host A (domid 4 -> 5), as
#      `xe vm-suspend` / `xe vm-resume`: stopped, saved with a request in
#      flight, its qemu-dm gone, restored from `-incoming fd:N`.
#
# A host's mediator serves the VM with that host's identity for it: the
# mediator of the destination shows the VM (its VM-ID, the new domid) as
# served; the source's counts stay where they were at the stop.
set -u
. "$(dirname "$0")/lib.sh"

e2e_need_kmod
export VGPU_KO=$KO
QMP_TOOL=$E2E_DIR/xcpng/xenopsd-qmp
SMI=$VGPU_BUILD/mediator/vgpu-smi
# The guest's memory moves with it under TCG: a small guest moves fast.
export VGPU_VM_MEM=${VGPU_VM_MEM:-384}
# Long enough that a request waiting for a frozen mediator does not time
# out on the device; the test unfreezes or moves well before.
export VM_DEV_PROPS=,timeout-ms=600000
VMID=7

# ------------------------------------------------------------ two hosts

# host_start NAME DOMID...: a xenstore and a mediator for host NAME, its
# qemu root $W/NAME/qemu; H_XS[NAME], H_MED[NAME], H_ROOT[NAME].
declare -A H_XS H_MED H_ROOT
host_start() {
    local h=$1 d args=()
    shift
    mkdir -p "$W/$h/qemu"
    H_ROOT[$h]=$W/$h/qemu
    for d in "$@"; do
        args+=(--domain-socket "$d:$W/$h/xenstored-dom$d.sock")
    done
    "$VGPU_BUILD/xs-server/xs-server" --socket "$W/$h/xenstored.sock" "${args[@]}" \
        >"$W/$h/xs.out" 2>"$W/xs-$h.log" &
    H_XS[$h]=$!
    EXTRA_PIDS+=($!)
    wait_until 10 grep -q ready "$W/$h/xs.out" || die "host $h: xs-server did not start"
    XENSTORED_PATH=$W/$h/xenstored.sock \
        "$VGPU_BUILD/mediator/vgpu-mediator" --qemu-root "$W/$h/qemu" --log stderr \
        --verbose --status-file "$W/$h/mediator.status" \
        --admin-socket "$W/$h/admin.sock" --pools "$W/$h/pools.conf" \
        2>>"$W/mediator-$h.log" &
    H_MED[$h]=$!
    EXTRA_PIDS+=($!)
    wait_until 10 grep -qs "^mediator pid=${H_MED[$h]} " "$W/$h/mediator.status" ||
        die "host $h: mediator did not get ready"
}

# host_assign HOST DOMID: the VM's keys under DOMID in HOST's xenstore
# (what the plugin, run by that host's wrapper, writes).
host_assign() {
    XENSTORED_PATH=$W/$1/xenstored.sock xs_assign "$2" A high $VMID
}

# host_vm HOST DOMID FIELD: FIELD of DOMID's row in HOST's `vgpu-smi --json`.
host_vm() {
    "$SMI" -s "$W/$1/admin.sock" --json 2>/dev/null | python3 -c '
import json, sys
for v in json.load(sys.stdin)["vms"]:
    if v["domid"] == int(sys.argv[1]):
        print(v[sys.argv[2]])' "$2" "$3"
}

# host_sock_ready HOST DOMID: the mediator made the VM's socket.
host_sock_ready() { [ -S "$W/$1/qemu/root-$2/vgpu-mediator.sock" ]; }

qmp() { "$QMP_TOOL" cmd "$@"; }
qmp_status() { qmp "$W/qmp-$1.sock" query-status | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }
migrate_status() {
    qmp "$W/qmp-$1.sock" query-migrate | python3 -c 'import json,sys; print(json.load(sys.stdin).get("status", "none"))'
}
vm_is() { [ "$(qmp_status "$1" 2>/dev/null)" = "$2" ]; }
# served_at_least HOST DOMID N: HOST's mediator has served N of its requests.
served_at_least() { [ "$(host_vm "$1" "$2" served 2>/dev/null)" -ge "$3" ] 2>/dev/null; }
migrate_done() {
    local st
    st=$(migrate_status "$1") || return 1
    [ "$st" = completed ] || [ "$st" = failed ] || [ "$st" = cancelled ]
}

# vm_boot_on HOST DOMID [QEMU-ARG...]: the VM's qemu-dm for DOMID on HOST
# (the chroot folder made, the keys written), with a QMP socket.
vm_boot_on() {
    local h=$1 d=$2
    shift 2
    host_assign "$h" "$d"
    mkdir -p "$W/$h/qemu/root-$d"
    wait_until 10 host_sock_ready "$h" "$d" || die "host $h: no socket for domain $d"
    VM_QROOT=$W/$h/qemu vm_start "$d" A high $VMID \
        -qmp "unix:$W/qmp-$d.sock,server=on,wait=off" "$@"
    wait_until 20 test -S "$W/qmp-$d.sock" || die "QEMU of domain $d has no QMP socket"
}

# vm_gone DOMID: the source qemu-dm ends, as when xenopsd destroys the
# domain after the move (its chroot goes with it).
vm_gone() {
    qmp "$W/qmp-$1.sock" quit >/dev/null 2>&1
    wait "${VM_PID[$1]}" 2>/dev/null
    unset "VM_PID[$1]"
}

# live_migrate FROM TO HOST: move the running VM of domid FROM to a new
# qemu-dm for domid TO on HOST.
live_migrate() {
    local from=$1 to=$2 h=$3
    vm_boot_on "$h" "$to" -incoming "unix:$W/mig-$to.sock"
    wait_until 20 test -S "$W/mig-$to.sock" || die "domain $to does not listen for the migration"
    qmp "$W/qmp-$from.sock" migrate "{\"uri\": \"unix:$W/mig-$to.sock\"}" >/dev/null ||
        die "migrate $from -> $to refused"
    wait_until 120 migrate_done "$from" || die "migration $from -> $to did not end"
    OUT=$(migrate_status "$from")
    RC=0
    check "migration of domain $from to domain $to (host $h): completed" is completed
    wait_until 30 vm_is "$to" running || die "domain $to does not run after the migration"
    OUT=$(qmp_status "$from")
    check "the source (domain $from) stays stopped: $OUT" is postmigrate
}

e2e_build_initramfs
host_start a 3 4 5
host_start b 8
log "two hosts up: a (mediator ${H_MED[a]}), b (mediator ${H_MED[b]})"

# ------------------------------------------------------------ 1. v1, A -> B
vm_boot_on a 3
vm_wait_ready 3
log "guest up on host a, domain 3"
vm_run 3 vgpu-client --info
check "domain 3 (host a): the v1 sysfs path" has "^path: *sysfs resource0 (v1)$"
vm_run 3 vgpu-client 100 200
check "domain 3 (host a): served, 100 + 200 = 300" is 300

N1=${VGPU_MIGRATE_N1:-10000}
vm_spawn 3 v1 "vgpu-client -t 600000 --stress $N1"
wait_until 60 served_at_least a 3 100 || die "the v1 loop does not run on host a"
kill -STOP "${H_MED[a]}"
sleep 1
live_migrate 3 8 b
kill -CONT "${H_MED[a]}"
vm_gone 3
CMD_TIMEOUT=600 vm_collect 8 v1
check "v1 loop across the move: $N1 requests, every result right" \
    has "^stress: $N1 requests, $N1 ok, 0 failed"
check "the destination re-sent the v1 request in flight to host b's mediator" \
    grep -q "the v1 request in flight came with the VM: sent to the mediator at $W/b/qemu/root-8/" \
    "$W/vm8.qemu.log"
OUT=$(host_vm b 8 served)
RC=$?
check "host b's mediator served the VM as domain 8 ($OUT requests)" grep -Eq '^[1-9][0-9]*$' <<<"$OUT"
OUT=$(host_vm b 8 vm_id)
check "host b's mediator has the VM's identity from host b's xenstore: VM-ID $VMID" is $VMID
OUT=$(host_vm b 8 errors)
check "host b: no request of the VM failed" is 0
vm_run 8 vgpu-client 7 8
check "domain 8 (host b): served after the move, 7 + 8 = 15" is 15

# ------------------------------------------------------------ 2. v2, B -> A
vm_run 8 insmod /lib/modules/extra/vgpu.ko
check "domain 8: insmod vgpu.ko" rc_is 0
SYS=/sys/class/misc/vgpu0
vm_run 8 "cat $SYS/path"
RINGS=0
grep -q '^rings' <<<"$OUT" && RINGS=1
if [ $RINGS = 0 ]; then
    echo "skip: the v2 parts: the driver runs on the v1 registers ($OUT): the device has no rings"
else
    N2=${VGPU_MIGRATE_N2:-10000}
    served_b=$(host_vm b 8 served)
    vm_spawn 8 v2 "vgpu-client -t 600000 --stress $N2:16 & vgpu-client -t 600000 --stress $N2:16; wait"
    wait_until 60 served_at_least b 8 $((served_b + 100)) || die "the v2 loop does not run on host b"
    kill -STOP "${H_MED[b]}"
    sleep 1
    live_migrate 8 4 a
    kill -CONT "${H_MED[b]}"
    vm_gone 8
    CMD_TIMEOUT=600 vm_collect 4 v2
    check "v2 loop across the move: 2 x $N2 requests, 16 in flight each, every result right" \
        bash -c '[ "$(grep -c "^stress: '$N2' requests, '$N2' ok, 0 failed" <<<"$0")" = 2 ]' "$OUT"
    check "the destination re-sent the ring requests in flight to host a's mediator" \
        grep -Eq "[1-9][0-9]* ring requests in flight came with the VM: sent to this mediator" \
        "$W/vm4.qemu.log"
    vm_run 4 "cat $SYS/stray_completions"
    check "no completion the driver did not wait for (none doubled)" is 0
    OUT=$(host_vm a 4 served)
    check "host a's mediator served the VM as domain 4 ($OUT requests)" grep -Eq '^[1-9][0-9]*$' <<<"$OUT"
    OUT=$(host_vm a 4 errors)
    check "host a: no request of the VM failed" is 0

    # -------------------------------------------------------- 3. save/restore
    served_a=$(host_vm a 4 served)
    vm_spawn 4 v3 "vgpu-client -t 600000 --stress $N2:16"
    wait_until 60 served_at_least a 4 $((served_a + 100)) || die "the v2 loop does not run on host a"
    kill -STOP "${H_MED[a]}"
    sleep 1
    qmp "$W/qmp-4.sock" stop >/dev/null || die "stop refused"
    kill -CONT "${H_MED[a]}"
    sleep 1 # the mediator answers; the stopped VM must not take it
    qmp "$W/qmp-4.sock" migrate "{\"uri\": \"exec:cat > $W/vm4.state\"}" >/dev/null ||
        die "save to a file refused"
    wait_until 120 migrate_done 4 || die "save to a file did not end"
    OUT=$(migrate_status 4)
    check "save of domain 4 to a file: completed" is completed
    vm_gone 4
    log "saved: $(stat -c %s "$W/vm4.state") bytes; restoring as domain 5"
    exec {state_fd}<"$W/vm4.state"
    vm_boot_on a 5 -incoming "fd:$state_fd"
    exec {state_fd}<&-
    # Saved while stopped, it loads stopped: xenopsd then sends cont.
    wait_until 60 vm_is 5 paused || die "domain 5 did not load the saved state"
    qmp "$W/qmp-5.sock" cont >/dev/null || die "cont refused"
    wait_until 10 vm_is 5 running || die "domain 5 does not run after the restore"
    CMD_TIMEOUT=600 vm_collect 5 v3
    check "v2 loop across save/restore: $N2 requests, every result right" \
        has "^stress: $N2 requests, $N2 ok, 0 failed"
    check "the restored device re-sent the ring requests in flight" \
        grep -Eq "[1-9][0-9]* ring requests in flight came with the VM: sent to this mediator" \
        "$W/vm5.qemu.log"
    vm_run 5 "cat $SYS/stray_completions"
    check "after the restore: no doubled completion" is 0
    vm_run 5 vgpu-client --bulk 4096
    check "after the restore: a 4096-element vector add through the rings" has "every element matches"
fi

for h in a b; do
    check "no sanitizer report from host $h's mediator" \
        bash -c "! grep -q 'Sanitizer' '$W/mediator-$h.log'"
done
e2e_summary
