#!/bin/bash
# test-xcpng-boot.sh - end to end: VMs start the way xenopsd starts them on
# XCP-ng, through OUR qemu-dm wrapper, deprivileged, and compute.
#
# The harness plays xenopsd: xenstore holds /local/domain/<domid>/vm for
# each domain (the xenstore server speaks the real wire protocol, with
# permissions), a test XenAPI server holds the VMs' other-config, and each
# VM is started as `vgpu-qemu-wrapper <domid> --syslog <xenopsd's qemu
# args>`.  Our wrapper assigns the VM and execs the stand-in stock wrapper
# (tests/e2e/stock-qemu-wrapper), which makes the chroot folder and runs
# QEMU with -chroot and -runas <base+domid> as the real one does.
#
#   dom1 "gpu-high": vgpu-pool=A vgpu-priority=high -> 100 + 200 = 300
#   dom2 "plain":    no vgpu-pool                   -> starts exactly as before
#   dom3 "gpu-low":  vgpu-pool=B vgpu-priority=low  -> 400 + 500 = 900
set -u
. "$(dirname "$0")/lib.sh"

UID_BASE=60000
SESSION=OpaqueRef:e2e-session
U1=11111111-1111-4111-8111-111111111111
U2=22222222-2222-4222-8222-222222222222
U3=33333333-3333-4333-8333-333333333333
PY=$(command -v python3)

# What xenopsd passes to the qemu-dm wrapper for an HVM guest (qemu 4.2).
xenopsd_args() {
    local d=$1
    echo "-machine pc-i440fx-2.10,accel=xen,max-ram-below-4g=4026531840,suppress-vmdesc=on,allow-unassigned=true,trad_compat=False"
    echo "-vnc unix:/var/run/xen/vnc-$d,lock-key-sync=off -monitor null"
    echo "-pidfile /var/run/xen/qemu-dm-$d.pid -xen-domid $d -m size=256"
    echo "-boot order=cdn -usb -device usb-tablet,port=2 -smp 1,maxcpus=1"
    echo "-serial pty -display none -nodefaults -S -parallel null"
    echo "-qmp unix:/var/run/xen/qmp-libxl-$d,server,nowait"
    echo "-device xen-platform,addr=3,device-id=0x0001,revision=0x2,class-id=0x0100,subvendor_id=0x5853,subsystem_id=0x0001"
}

# mcall FN [k=v...]: the methodCall xapi hands the plugin in its one argv.
mcall() {
    local fn=$1 m="" kv
    shift
    for kv in "$@"; do
        m+="<member><name>${kv%%=*}</name><value>${kv#*=}</value></member>"
    done
    printf '<?xml version="1.0"?><methodCall><methodName>%s</methodName>' "$fn"
    printf '<params><param><value>%s</value></param>' "$SESSION"
    printf '<param><value><struct>%s</struct></value></param></params>' "$m"
    printf '</methodCall>'
}

# plugin FN [k=v...]: call the plugin as xapi does; OUT is the answer.
plugin() {
    OUT=$("$VGPU_BUILD/xapi-plugin/vgpu" "$(mcall "$@")" 2>/dev/null)
    RC=$?
}

# ------------------------------------------------------------ dom0 set-up
e2e_build_initramfs
xs_start 1 2 3
for d in 1 2 3; do
    u=U$d
    xenstore-write "/local/domain/$d/vm" "/vm/${!u}" ||
        die "xenstore-write /local/domain/$d/vm"
done
cat >"$W/vms.json" <<EOF
{"$U1": {"name_label": "gpu-high", "domid": "1",
         "other_config": {"vgpu-pool": "A", "vgpu-priority": "high"}},
 "$U2": {"name_label": "plain", "domid": "2", "other_config": {}},
 "$U3": {"name_label": "gpu-low", "domid": "3",
         "other_config": {"vgpu-pool": "B", "vgpu-priority": "low"}}}
EOF
"$PY" "$VGPU_BUILD/xapi/xapi-server.py" --vms "$W/vms.json" \
    --state "$W/xapi-state.json" --unix "$W/xapi.sock" --session "$SESSION" \
    >"$W/xapi.out" 2>"$W/xapi.log" &
EXTRA_PIDS+=($!)
wait_until 10 grep -q ready "$W/xapi.out" || die "XenAPI test server did not start"

export VGPU_XAPI_URL=unix:$W/xapi.sock VGPU_CONF_DIR=$W/etc-vgpu \
    VGPU_STATE_DIR=$W/var-lib-vgpu VGPU_RUN_DIR=$W/run-vgpu \
    VGPU_STOCK_WRAPPER=$E2E_DIR/stock-qemu-wrapper VGPU_LOG_STDERR=1
export VGPU_E2E_QROOT=$QROOT VGPU_E2E_UID_BASE=$UID_BASE VGPU_QEMU \
    VGPU_E2E_KERNEL=$KERNEL VGPU_E2E_INITRD=$W/initrd.cpio.gz
mkdir -p "$VGPU_CONF_DIR" "$VGPU_RUN_DIR"
mediator_start --status-file "$VGPU_RUN_DIR/mediator.status" \
    --qemu-uid-base "$UID_BASE"

# ------------------------------------------------------------ VM start
for d in 1 2 3; do
    # shellcheck disable=SC2046 # one word per argument, as xenopsd passes
    VGPU_E2E_ARGS_LOG=$W/args$d vm_launch "$d" \
        "$VGPU_BUILD/xapi-plugin/vgpu-qemu-wrapper" "$d" --syslog \
        $(xenopsd_args "$d")
done
log "three VMs started through vgpu-qemu-wrapper"
for d in 1 2 3; do
    vm_wait_ready "$d"
done

# What reached the stock wrapper: xenopsd's arguments untouched, plus our
# device for the vgpu VMs only.
xenopsd_args 2 | tr ' ' '\n' >"$W/want2"
OUT=$(diff "$W/want2" "$W/args2")
RC=$?
check "plain VM: stock wrapper got xenopsd's argv exactly" rc_is 0
xenopsd_args 1 | tr ' ' '\n' >"$W/want1"
OUT=$(diff "$W/want1" "$W/args1")
RC=$?
check "gpu VM: xenopsd's argv kept, one device appended" \
    grep -q '^> vgpu-stub,pool=A,priority=high,vm-id=[0-9]*,socket=/vgpu-mediator.sock$' <<<"$OUT"
check "gpu VM: nothing else changed" \
    [ "$(grep -c '^[<>]' <<<"$OUT")" = 2 ]

# QEMU really is deprivileged and chrooted.
for d in 1 3; do
    qpid=$(pgrep -f "chroot $QROOT/root-$d " | head -n 1)
    OUT="uid=$(awk '/^Uid:/ {print $2}' "/proc/$qpid/status" 2>/dev/null) root=$(readlink "/proc/$qpid/root")"
    check "dom$d: qemu runs as uid $((UID_BASE + d)) in root-$d" \
        is "uid=$((UID_BASE + d)) root=$QROOT/root-$d"
    OUT=$(stat -c '%u %a' "$QROOT/root-$d/vgpu-mediator.sock")
    check "dom$d: socket owned by qemu's uid, mode 600" is "$((UID_BASE + d)) 600"
done

# ------------------------------------------------------------ in the guests
vm_send 1 vgpu-client 100 200
t1=$TAG
vm_send 3 vgpu-client 400 500
t3=$TAG
vm_wait 1 "$t1"
check "dom1 (pool A, high): 100 + 200 = 300" is 300
vm_wait 3 "$t3"
check "dom3 (pool B, low): 400 + 500 = 900" is 900
vm_run 2 vgpu-client 1 2
check "plain VM has no vgpu device" has "no vgpu device found"
check "plain VM: exit status 3 (no device)" rc_is 3

vm_run 1 vgpu-client --info
check "dom1 --info: pool A" has "^pool: *A$"
check "dom1 --info: priority high" has "^priority: *high"
vmid1=$(sed -n 's/^vm-id: *//p' <<<"$OUT")
vm_run 3 vgpu-client --info
check "dom3 --info: pool B, priority low" \
    bash -c 'grep -q "^pool: *B$" <<<"$0" && grep -q "^priority: *low" <<<"$0"' "$OUT"
vmid3=$(sed -n 's/^vm-id: *//p' <<<"$OUT")
OUT="$vmid1 $vmid3"
check "VM-IDs are set and distinct" \
    bash -c '[ -n "$1" ] && [ -n "$2" ] && [ "$1" != "$2" ] && [ "$1" != 0 ]' _ $vmid1 $vmid3
OUT=$(xenstore-read "/local/domain/1/vgpu/vm-id")
check "VM-ID in xenstore is what the guest sees" is "$vmid1"
OUT=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["other_config"].get("vgpu-vm-id"))' \
    "$W/xapi-state.json" "$U1")
check "VM-ID persisted in other-config:vgpu-vm-id" is "$vmid1"

# ------------------------------------------------------------ trust
OUT=$(xenstore-ls -p /local/domain/1/vgpu)
check "vgpu keys: owner dom0, read-only for the domain" \
    grep -q 'priority = "high" .*(n0,r1)' <<<"$OUT"
OUT=$(XENSTORED_PATH=$W/xenstored-dom1.sock xenstore-read /local/domain/1/vgpu/priority 2>&1)
check "guest domain can read its priority" is high
OUT=$(XENSTORED_PATH=$W/xenstored-dom1.sock xenstore-write /local/domain/1/vgpu/priority low 2>&1)
RC=$?
check "guest domain cannot write its priority" rc_not 0
OUT=$(xenstore-read /local/domain/1/vgpu/priority)
check "priority unchanged after the guest's attempt" is high

# ------------------------------------------------------------ operator
plugin status
check "plugin status: dom1 served and connected" \
    has "domain 1 pool=A priority=high vm-id=$vmid1 device=connected"
plugin set-priority "uuid=$U3" priority=high
check "plugin set-priority answers" has "priority high"
wait_until 10 grep -q "dom3: pool B priority high" "$W/mediator.log"
vm_run 3 vgpu-client --info
check "dom3 sees its new priority live" has "^priority: *high"
plugin assign domid=3 pool=C
check "plugin: unknown argument refused with a fault" has "<fault>"

# ------------------------------------------------------------ VM stops
kill "${VM_PID[3]}"
rm -rf "$QROOT/root-3" # xenopsd removes the chroot when qemu stops
wait_until 10 grep -q "dom3: chroot folder removed" "$W/mediator.log"
RC=$?
check "mediator forgets dom3 when its chroot goes" rc_is 0
vm_run 1 vgpu-client 20 22
check "dom1 still served after dom3 went away" is 42

e2e_summary
