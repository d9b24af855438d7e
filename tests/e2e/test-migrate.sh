#!/bin/bash
# test-migrate.sh - end to end: two hosts of one pool assign VMs at the
# same moment, then live migration, and save/restore to a file, of a TCG
# guest with the device between the two hosts, with requests in flight at
# the moment the VM moves.
#
# Each host is what one XCP-ng host's dom0 has: its own xenstore (the
# xs-server stand-in), its own qemu root with one root-<domid> chroot per
# VM, its own vgpu-mediator, its own plugin state.  The pool's database is
# the XenAPI test server (tests/xapi/xapi-server.py: xapi's rules for map
# fields, errors and host.call_plugin, tests/xapi/xapi-rules.md); every
# assignment is the real plugin's `fn=assign`, run as `xe host-call-plugin
# host-uuid=<that host>` runs it, writing that host's xenstore.  A
# migration is what xenopsd does with the VM's qemu-dm (xc/device.ml): the
# source is stopped and its device state sent, the destination qemu-dm is
# started for a new domid with `-incoming` (the stock qemu-wrapper turns
# xenopsd's `-loadvm FILE` into `-incoming fd:N`,
# fixtures/xcpng/xenopsd-8.3/qemu-wrapper) after the destination's wrapper
# assigned the VM there.  Under TCG QEMU moves the guest's memory as well.
#
#   0. VM X on host a and VM Y on host b are assigned at the same moment:
#      two different pool-wide VM-IDs, claimed in the pool's other-config.
#      Y runs on host b from then on.
#   1. v1 (sysfs path, no driver): X from host a (domid 3) to host b
#      (domid 8), live, while the guest runs one-element adds in a loop and
#      checks each; host a's mediator is frozen (SIGSTOP) before the move,
#      so a request is surely in flight.  The destination re-sends it to
#      host b's mediator: the loop ends with every request right.  X keeps
#      its VM-ID on host b; host b's mediator serves X and Y (whose own v1
#      loop runs meanwhile), each with its own VM-ID.
#   2. v2 (vgpu.ko, rings): X from host b (8) to host a (domid 4), live, two
#      clients with 16 requests in flight each, host b's mediator frozen
#      first: every ring request in flight is re-sent, each result checked,
#      no stray completion (a doubled CQE) in the driver.
#   3. save/restore of X to a file on host a (domid 4 -> 5), as `xe
#      vm-suspend` / `xe vm-resume`: stopped, its mediator answering into
#      the stopped VM, saved with requests in flight, its qemu-dm gone,
#      restored from `-incoming fd:N` and sent `cont`.
set -u
. "$(dirname "$0")/lib.sh"

e2e_need_kmod
export VGPU_KO=$KO
QMP_TOOL=$E2E_DIR/xcpng/xenopsd-qmp
SMI=$VGPU_BUILD/mediator/vgpu-smi
PLUGIN=$VGPU_BUILD/xapi-plugin/vgpu
XAPI_SERVER=$TOP/tests/xapi/xapi-server.py
[ -x "$PLUGIN" ] || die "$PLUGIN is not built"
command -v xenstore-read >/dev/null || die "xenstore-read missing (xenstore-utils)"
# The guest's memory moves with it under TCG: a small guest moves fast.
export VGPU_VM_MEM=${VGPU_VM_MEM:-384}
# Long enough that a request waiting for a frozen mediator does not time
# out on the device; the test unfreezes or moves well before.
export VM_DEV_PROPS=,timeout-ms=600000
SESSION=OpaqueRef:plugin-session
XAPI_URL=unix:$W/xapi.sock
VM_X=6f0c0000-0000-4000-8000-000000000001
VM_Y=6f0c0000-0000-4000-8000-000000000002

# ------------------------------------------------------------ the pool

# pool_start HOST...: the pool's xapi (the test server) with those hosts,
# each with its own xenstore socket, state, run and conf folders and
# inventory, as the plugin finds them on a host; VMs X and Y of vgpu pool A.
declare -A H_UUID
pool_start() {
    local h i=0 sep=""
    mkdir -p "$W/plugins"
    ln -s "$PLUGIN" "$W/plugins/vgpu"
    {
        echo "["
        for h in "$@"; do
            i=$((i + 1))
            H_UUID[$h]=$(printf 'f0000000-0000-4000-8000-%012d' $i)
            mkdir -p "$W/$h/conf" "$W/$h/run" "$W/$h/state"
            printf "INSTALLATION_UUID='%s'\nPRODUCT_BRAND='XCP-ng'\n" "${H_UUID[$h]}" \
                >"$W/$h/inventory"
            printf '%s {"name_label": "%s", "uuid": "%s", "env": {"XENSTORED_PATH": "%s", "VGPU_STATE_DIR": "%s", "VGPU_RUN_DIR": "%s", "VGPU_CONF_DIR": "%s", "VGPU_XAPI_URL": "%s", "VGPU_INVENTORY": "%s"}}\n' \
                "$sep" "$h" "${H_UUID[$h]}" "$W/$h/xenstored.sock" "$W/$h/state" \
                "$W/$h/run" "$W/$h/conf" "$XAPI_URL" "$W/$h/inventory"
            sep=,
        done
        echo "]"
    } >"$W/hosts.json"
    printf '{"%s": {"name_label": "X", "domid": "-1", "other_config": {"vgpu-pool": "A", "vgpu-priority": "high"}},\n "%s": {"name_label": "Y", "domid": "-1", "other_config": {"vgpu-pool": "A", "vgpu-priority": "medium"}}}\n' \
        "$VM_X" "$VM_Y" >"$W/vms.json"
    python3 "$XAPI_SERVER" --vms "$W/vms.json" --state "$W/xapi-state.json" \
        --pool-state "$W/pool.json" --hosts "$W/hosts.json" --unix "$W/xapi.sock" \
        --session "$SESSION" --plugin-dir "$W/plugins" >"$W/xapi.out" 2>"$W/xs-xapi.log" &
    EXTRA_PIDS+=($!)
    wait_until 10 grep -q ready "$W/xapi.out" || die "the XenAPI test server did not start"
}

# host_start NAME DOMID...: a xenstore and a mediator for host NAME, its
# qemu root $W/NAME/qemu; H_MED[NAME] is the mediator's pid.
declare -A H_MED
host_start() {
    local h=$1
    shift
    mkdir -p "$W/$h/qemu"
    xs_spawn "$W/$h" "$W/xs-$h.log" "$@"
    EXTRA_PIDS+=("$SPAWNED")
    XENSTORED_PATH=$W/$h/xenstored.sock mediator_spawn "$W/$h" "$W/$h/qemu" \
        "$W/mediator-$h.log"
    H_MED[$h]=$SPAWNED
    EXTRA_PIDS+=("$SPAWNED")
}

# host_assign HOST DOMID VM: what xenopsd and our wrapper do on HOST before
# the VM's qemu-dm runs: the domain DOMID runs VM (xenstore
# /local/domain/DOMID/vm), then `xe host-call-plugin host-uuid=<HOST>
# plugin=vgpu fn=assign args:domid=DOMID` writes the VM's pool, priority
# and VM-ID there.  Prints the answer.
host_assign() {
    XENSTORED_PATH=$W/$1/xenstored.sock xenstore-write "/local/domain/$2/vm" "/vm/$3" ||
        die "xenstore-write on host $1 failed"
    python3 "$XAPI_SERVER" call-plugin --host="$1" "$XAPI_URL" "$SESSION" vgpu \
        assign "domid=$2"
}
# assigned_id ANSWER: the VM-ID of an assign answer ("OK "domain ... vm-id=N"").
assigned_id() { sed -n 's/^OK .* vm-id=\([0-9]*\)"\{0,1\}$/\1/p' <<<"$1"; }
xs_key() { XENSTORED_PATH=$W/$1/xenstored.sock xenstore-read "/local/domain/$2/vgpu-mediator/$3"; }

# host_vm HOST DOMID FIELD: FIELD of DOMID's row in HOST's `vgpu-smi --json`.
host_vm() {
    "$SMI" -s "$W/$1/admin.sock" --json 2>/dev/null | python3 -c '
import json, sys
for v in json.load(sys.stdin)["vms"]:
    if v["domid"] == int(sys.argv[1]):
        print(v[sys.argv[2]])' "$2" "$3"
}
# served_at_least HOST DOMID N: HOST's mediator has served N of its requests.
served_at_least() { [ "$(host_vm "$1" "$2" served 2>/dev/null)" -ge "$3" ] 2>/dev/null; }
# host_sock_ready HOST DOMID: the mediator made the VM's socket.
host_sock_ready() { [ -S "$W/$1/qemu/root-$2/vgpu-mediator.sock" ]; }

# ------------------------------------------------------------ QMP

qmp() { "$QMP_TOOL" cmd "$@"; }
qmp_status() { qmp "$W/qmp-$1.sock" query-status | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }
vm_is() { [ "$(qmp_status "$1" 2>/dev/null)" = "$2" ]; }
migrate_status() {
    qmp "$W/qmp-$1.sock" query-migrate | python3 -c 'import json,sys; print(json.load(sys.stdin).get("status", "none"))'
}
migrate_done() {
    local st
    st=$(migrate_status "$1") || return 1
    [ "$st" = completed ] || [ "$st" = failed ] || [ "$st" = cancelled ]
}

# vm_boot_on HOST DOMID VM [QEMU-ARG...]: VM's qemu-dm for DOMID on HOST,
# assigned there first (ASSIGNED: its VM-ID), its chroot folder made, with
# a QMP socket; the device gets the assignment's pool, priority and VM-ID,
# as our wrapper gives them.
vm_boot_on() {
    local h=$1 d=$2 vm=$3 ans
    shift 3
    ans=$(host_assign "$h" "$d" "$vm")
    ASSIGNED=$(assigned_id "$ans")
    [ -n "$ASSIGNED" ] || die "host $h: assign of domain $d failed: $ans"
    mkdir -p "$W/$h/qemu/root-$d"
    wait_until 10 host_sock_ready "$h" "$d" || die "host $h: no socket for domain $d"
    VM_QROOT=$W/$h/qemu vm_start "$d" "$(xs_key "$h" "$d" pool)" \
        "$(xs_key "$h" "$d" priority)" "$ASSIGNED" \
        -qmp "unix:$W/qmp-$d.sock,server=on,wait=off" "$@"
    wait_until 20 test -S "$W/qmp-$d.sock" || die "QEMU of domain $d has no QMP socket"
}

# vm_gone DOMID: the source qemu-dm ends, as when xenopsd destroys the
# domain after the move.
vm_gone() {
    qmp "$W/qmp-$1.sock" quit >/dev/null 2>&1
    wait "${VM_PID[$1]}" 2>/dev/null
    unset "VM_PID[$1]"
}

# live_migrate FROM TO HOST: move X, running as domid FROM, to a new
# qemu-dm for domid TO on HOST.
live_migrate() {
    local from=$1 to=$2 h=$3
    vm_boot_on "$h" "$to" $VM_X -incoming "unix:$W/mig-$to.sock"
    OUT=$ASSIGNED
    RC=0
    check "X assigned on host $h for domain $to keeps its VM-ID $IDX" is "$IDX"
    wait_until 20 test -S "$W/mig-$to.sock" || die "domain $to does not listen for the migration"
    qmp "$W/qmp-$from.sock" migrate "{\"uri\": \"unix:$W/mig-$to.sock\"}" >/dev/null ||
        die "migrate $from -> $to refused"
    wait_until 120 migrate_done "$from" || die "migration $from -> $to did not end"
    OUT=$(migrate_status "$from")
    check "migration of domain $from to domain $to (host $h): completed" is completed
    wait_until 30 vm_is "$to" running || die "domain $to does not run after the migration"
    OUT=$(qmp_status "$from")
    check "the source (domain $from) stays stopped: $OUT" is postmigrate
}

e2e_build_initramfs
pool_start a b
host_start a 3 4 5
host_start b 2 8
log "two hosts of one pool: a (mediator ${H_MED[a]}), b (mediator ${H_MED[b]})"

# ------------------------------------------------------------ 0. at once
host_assign a 3 $VM_X >"$W/assign-x.out" &
ax=$!
host_assign b 2 $VM_Y >"$W/assign-y.out" &
wait $ax $!
IDX=$(assigned_id "$(cat "$W/assign-x.out")")
IDY=$(assigned_id "$(cat "$W/assign-y.out")")
OUT="X: $(cat "$W/assign-x.out") Y: $(cat "$W/assign-y.out")"
RC=0
check "X on host a and Y on host b assigned at the same moment: two VM-IDs ($IDX, $IDY)" \
    test -n "$IDX" -a -n "$IDY" -a "$IDX" != "$IDY"
OUT=$(python3 -c '
import json, sys
oc = json.load(open(sys.argv[1]))["pool"]["other_config"]
print(" ".join(sorted("%s=%s" % kv for kv in oc.items() if kv[0].startswith("vgpu-vm-id-"))))
' "$W/pool.json")
check "... each claimed in the pool's other-config ($OUT)" \
    bash -c '[[ " $0 " =~ \ vgpu-vm-id-$1\.[0-9]+=$2\  ]] && [[ " $0 " =~ \ vgpu-vm-id-$3\.[0-9]+=$4\  ]]' \
    "$OUT" "$IDX" "$VM_X" "$IDY" "$VM_Y"

# Y runs on host b from now on, as its wrapper assigned it.
mkdir -p "$W/b/qemu/root-2"
wait_until 10 host_sock_ready b 2 || die "host b: no socket for domain 2"
VM_QROOT=$W/b/qemu vm_start 2 A medium "$IDY"

# ------------------------------------------------------------ 1. v1, a -> b
vm_boot_on a 3 $VM_X
vm_wait_ready 3
vm_wait_ready 2
log "X up on host a (domain 3), Y on host b (domain 2)"
vm_run 3 vgpu-client --info
check "X on host a: the v1 sysfs path" has "^path: *sysfs resource0 (v1)$"
check "X on host a: the device shows its VM-ID $IDX" has "^vm-id: *$IDX$"
vm_run 3 vgpu-client 100 200
check "X on host a: served, 100 + 200 = 300" is 300

N1=${VGPU_MIGRATE_N1:-10000}
vm_spawn 3 v1 "vgpu-client -t 600000 --stress $N1"
wait_until 60 served_at_least a 3 100 || die "X's v1 loop does not run on host a"
vm_spawn 2 y1 "vgpu-client -t 600000 --stress 3000"
kill -STOP "${H_MED[a]}"
sleep 1
live_migrate 3 8 b
kill -CONT "${H_MED[a]}"
vm_gone 3
CMD_TIMEOUT=600 vm_collect 8 v1
check "X's v1 loop across the move: $N1 requests, every result right" \
    has "^stress: $N1 requests, $N1 ok, 0 failed"
check "the destination re-sent the v1 request in flight to host b's mediator" \
    grep -q "the v1 request in flight came with the VM: sent to the mediator at $W/b/qemu/root-8/" \
    "$W/vm8.qemu.log"
OUT=$(host_vm b 8 served)
check "host b's mediator served X as domain 8 ($OUT requests)" grep -Eq '^[1-9][0-9]*$' <<<"$OUT"
OUT=$(host_vm b 8 vm_id)
check "host b's mediator has X's identity from host b's xenstore: VM-ID $IDX" is "$IDX"
OUT=$(host_vm b 2 vm_id)
check "... and Y's beside it: VM-ID $IDY" is "$IDY"
OUT=$(host_vm b 8 errors)
check "host b: no request of X failed" is 0
CMD_TIMEOUT=600 vm_collect 2 y1
check "Y's v1 loop on host b while X arrived: 3000 requests, every result right" \
    has "^stress: 3000 requests, 3000 ok, 0 failed"
OUT=$(host_vm b 2 errors)
check "host b: no request of Y failed" is 0
vm_run 8 vgpu-client 7 8
check "X on host b: served after the move, 7 + 8 = 15" is 15

# ------------------------------------------------------------ 2. v2, b -> a
vm_run 8 insmod /lib/modules/extra/vgpu.ko
check "X: insmod vgpu.ko" rc_is 0
SYS=/sys/class/misc/vgpu0
vm_run 8 "cat $SYS/path"
if ! grep -q '^rings' <<<"$OUT"; then
    echo "skip: the v2 parts: the driver runs on the v1 registers ($OUT): the device has no rings"
else
    N2=${VGPU_MIGRATE_N2:-10000}
    served_b=$(host_vm b 8 served)
    vm_spawn 8 v2 "vgpu-client -t 600000 --stress $N2:16 & vgpu-client -t 600000 --stress $N2:16; wait"
    wait_until 60 served_at_least b 8 $((served_b + 100)) || die "X's v2 loop does not run on host b"
    kill -STOP "${H_MED[b]}"
    sleep 1
    live_migrate 8 4 a
    kill -CONT "${H_MED[b]}"
    vm_gone 8
    CMD_TIMEOUT=600 vm_collect 4 v2
    check "X's v2 loop across the move: 2 x $N2 requests, 16 in flight each, every result right" \
        bash -c '[ "$(grep -c "^stress: $1 requests, $1 ok, 0 failed" <<<"$0")" = 2 ]' "$OUT" "$N2"
    check "the destination re-sent the ring requests in flight to host a's mediator" \
        grep -Eq "[1-9][0-9]* ring requests in flight came with the VM: sent to this mediator" \
        "$W/vm4.qemu.log"
    vm_run 4 "cat $SYS/stray_completions"
    check "no completion the driver did not wait for (none doubled)" is 0
    OUT=$(host_vm a 4 served)
    check "host a's mediator served X as domain 4 ($OUT requests)" grep -Eq '^[1-9][0-9]*$' <<<"$OUT"
    OUT=$(host_vm a 4 errors)
    check "host a: no request of X failed" is 0

    # -------------------------------------------------------- 3. save/restore
    served_a=$(host_vm a 4 served)
    vm_spawn 4 v3 "vgpu-client -t 600000 --stress $N2:16"
    wait_until 60 served_at_least a 4 $((served_a + 100)) || die "X's v2 loop does not run on host a"
    kill -STOP "${H_MED[a]}"
    sleep 1
    qmp "$W/qmp-4.sock" stop >/dev/null || die "stop refused"
    kill -CONT "${H_MED[a]}"
    sleep 1 # the mediator answers; the stopped VM must not take it
    qmp "$W/qmp-4.sock" migrate "{\"uri\": \"exec:cat > $W/vm4.state\"}" >/dev/null ||
        die "save to a file refused"
    wait_until 120 migrate_done 4 || die "save to a file did not end"
    OUT=$(migrate_status 4)
    check "save of X (domain 4) to a file: completed" is completed
    vm_gone 4
    log "saved: $(stat -c %s "$W/vm4.state") bytes; restoring as domain 5"
    exec {state_fd}<"$W/vm4.state"
    vm_boot_on a 5 $VM_X -incoming "fd:$state_fd"
    exec {state_fd}<&-
    # Saved while stopped, it loads stopped: xenopsd then sends cont.
    wait_until 60 vm_is 5 paused || die "domain 5 did not load the saved state"
    qmp "$W/qmp-5.sock" cont >/dev/null || die "cont refused"
    wait_until 10 vm_is 5 running || die "domain 5 does not run after the restore"
    CMD_TIMEOUT=600 vm_collect 5 v3
    check "X's v2 loop across save/restore: $N2 requests, every result right" \
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
