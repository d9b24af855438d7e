#!/bin/bash
# test-xapi.sh - the vgpu xapi plugin and qemu-dm wrapper, for real, against
# the XenAPI test server (xapi-server.py, XML-RPC over HTTP) and the xenstore
# wire-protocol server (xs-server, permissions enforced), through the real
# libxenstore and libcurl.
#
# Pins: assign (three keys, perms n0 + r<domid>, VM-ID stable across
# reboots, unique across VMs, persisted in other-config), set-priority
# (other-config and the running domain's key), status (with and without
# the mediator's status file), a clear XML-RPC fault for every bad input,
# a guest that cannot write its own vgpu keys, and the wrapper: argv
# untouched for a VM without pool, + -device for a VM with one, xapi down ->
# VM starts without the device, unless vgpu-required=true.
#
# Installed as $BUILD/xapi/test-xapi; finds $BUILD/xapi-plugin/{vgpu,
# vgpu-qemu-wrapper} and $BUILD/xs-server/xs-server.  Prints one line per
# check and "N passed, N failed"; exit 0 pass, 1 fail, 77 skip.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=$(dirname "$HERE")
PLUGIN=$BUILD/xapi-plugin/vgpu
WRAPPER=$BUILD/xapi-plugin/vgpu-qemu-wrapper
XS_SERVER=$BUILD/xs-server/xs-server
XAPI_SERVER=$HERE/xapi-server.py
PY=$(command -v python3)
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

for f in "$PLUGIN" "$WRAPPER" "$XS_SERVER"; do
    if [ ! -x "$f" ]; then
        echo "SKIP: $f is not built (build xapi-plugin and tests/xs-server" \
             "into $BUILD first)"
        exit 77
    fi
done
for t in xenstore-read xenstore-write xenstore-ls; do
    command -v $t >/dev/null || { echo "SKIP: $t missing (xenstore-utils)"; exit 77; }
done
[ -n "$PY" ] || { echo "SKIP: python3 missing"; exit 77; }

T=$(mktemp -d /tmp/vgpu-xapi-test.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok: $1"; }
nok() { fail=$((fail + 1)); echo "FAIL: $1"; [ $# -gt 1 ] && echo "    $2"; }
expect() { # expect DESC COND-CMD...
    local d=$1; shift
    if "$@"; then ok "$d"; else nok "$d"; fi
}

# ---------------------------------------------------------------- fixtures
U1=11111111-1111-4111-8111-111111111111 # pool A, high, running as 5
U2=22222222-2222-4222-8222-222222222222 # pool B, carries U1's vm-id, as 6
U3=33333333-3333-4333-8333-333333333333 # no pool, as 7
U4=44444444-4444-4444-8444-444444444444 # pool C, as 10
U5=55555555-5555-4555-8555-555555555555 # priority urgent, as 11
U6=66666666-6666-4666-8666-666666666666 # pool A, vgpu-required, as 12
U7=77777777-7777-4777-8777-777777777777 # pool C, vgpu-required, as 14
UX=99999999-9999-4999-8999-999999999999 # not known to xapi, as 9
SESSION=OpaqueRef:plugin-session

cat >"$T/vms.json" <<EOF
{
 "$U1": {"name_label": "vm1", "domid": "5",
         "other_config": {"vgpu-pool": "A", "vgpu-priority": "high"}},
 "$U2": {"name_label": "vm2", "domid": "6",
         "other_config": {"vgpu-pool": "B", "vgpu-vm-id": "1"}},
 "$U3": {"name_label": "vm3", "domid": "7", "other_config": {}},
 "$U4": {"name_label": "vm4", "domid": "10",
         "other_config": {"vgpu-pool": "C"}},
 "$U5": {"name_label": "vm5", "domid": "11",
         "other_config": {"vgpu-pool": "A", "vgpu-priority": "urgent"}},
 "$U6": {"name_label": "vm6", "domid": "12",
         "other_config": {"vgpu-pool": "A", "vgpu-required": "true"}},
 "$U7": {"name_label": "vm7", "domid": "14",
         "other_config": {"vgpu-pool": "C", "vgpu-required": "true"}}
}
EOF

# start NAME CMD...: runs CMD with stdout to $T/NAME.out; waits for "ready"
start() {
    local name=$1; shift
    "$@" >"$T/$name.out" 2>"$T/$name.err" &
    PIDS+=($!)
    for _ in $(seq 100); do
        grep -q ready "$T/$name.out" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "cannot start $name:"; cat "$T/$name.err"
    exit 1
}

start xs "$XS_SERVER" --socket "$T/xs.sock" --domain-socket "5:$T/xs-d5.sock"
start xapi "$PY" "$XAPI_SERVER" --vms "$T/vms.json" --state "$T/state.json" \
    --unix "$T/xapi.sock" --session "$SESSION"
XAPI_PID=${PIDS[-1]}

export XENSTORED_PATH=$T/xs.sock
export VGPU_XAPI_URL=unix:$T/xapi.sock
export VGPU_STATE_DIR=$T/state
export VGPU_RUN_DIR=$T/run
export VGPU_CONF_DIR=$T/conf
mkdir -p "$T/conf" "$T/run"

xenstore-write /local/domain/5/vm /vm/$U1 /local/domain/6/vm /vm/$U2 \
    /local/domain/7/vm /vm/$U3 /local/domain/9/vm /vm/$UX \
    /local/domain/10/vm /vm/$U4 /local/domain/11/vm /vm/$U5 \
    /local/domain/12/vm /vm/$U6 /local/domain/14/vm /vm/$U7 \
    /local/domain/8/name no-vm-key

# ----------------------------------------------------------------- helpers
# mcall FN [k=v...]: a methodCall as xapi builds it for host.call_plugin
mcall() {
    local fn=$1 m="" kv; shift
    for kv in "$@"; do
        m+="<member><name>${kv%%=*}</name><value>${kv#*=}</value></member>"
    done
    printf '<?xml version="1.0"?><methodCall><methodName>%s</methodName>' "$fn"
    printf '<params><param><value>%s</value></param>' "$SESSION"
    printf '<param><value><struct>%s</struct></value></param></params>' "$m"
    printf '</methodCall>'
}

# decode: methodResponse on stdin -> "OK <string>" or "FAULT <code> <text>"
decode() {
    "$PY" -c '
import sys, xmlrpc.client
try:
    (v,), _ = xmlrpc.client.loads(sys.stdin.read())
    print("OK", v)
except xmlrpc.client.Fault as f:
    print("FAULT", f.faultCode, f.faultString)
except Exception as e:
    print("BAD", e)
'
}

# plugin_raw XML: runs the plugin and decodes its answer ("EXIT n" when it
# did not exit 0: a plugin always answers, faults included)
plugin_raw() {
    local out rc
    out=$("$PLUGIN" "$@" 2>>"$T/plugin.err")
    rc=$?
    if [ $rc -ne 0 ]; then echo "EXIT $rc"; return; fi
    printf '%s' "$out" | decode
}
plugin() { plugin_raw "$(mcall "$@")"; }

# want DESC PATTERN OUTPUT: grep -E PATTERN in OUTPUT
want() {
    if printf '%s\n' "$3" | grep -Eq -- "$2"; then
        ok "$1"
    else
        nok "$1" "got: $3"
    fi
}

xsr() { xenstore-read "$@" 2>/dev/null; }
oc() { # oc UUID KEY: other-config value in the XenAPI server's state
    "$PY" -c 'import json,sys
print(json.load(open(sys.argv[1]))[sys.argv[2]]["other_config"].get(sys.argv[3], "<none>"))' \
        "$T/state.json" "$1" "$2"
}
perms() { # perms PATH: the permission list xenstore-ls -p shows
    xenstore-ls -p "$(dirname "$1")" 2>/dev/null |
        sed -n "s/^$(basename "$1") = .*(\(.*\))\$/\1/p"
}

# ------------------------------------------------------------------ assign
r=$(plugin assign domid=5)
want "assign domid=5 answers the assignment" \
    "^OK domain 5 VM $U1 \(vm1\): pool=A priority=high vm-id=1\$" "$r"
expect "xenstore pool=A" test "$(xsr /local/domain/5/vgpu/pool)" = A
expect "xenstore priority=high" test "$(xsr /local/domain/5/vgpu/priority)" = high
expect "xenstore vm-id=1" test "$(xsr /local/domain/5/vgpu/vm-id)" = 1
for k in vgpu vgpu/pool vgpu/priority vgpu/vm-id; do
    p=$(perms /local/domain/5/$k)
    expect "perms of $k are n0,r5 (got '$p')" test "$p" = "n0,r5"
done
expect "vm-id persisted in other-config" test "$(oc $U1 vgpu-vm-id)" = 1

r=$(plugin assign domid=6)
want "VM carrying another VM's vgpu-vm-id gets a new one" \
    "pool=B priority=medium vm-id=2\$" "$r"
expect "new vm-id written back to other-config" test "$(oc $U2 vgpu-vm-id)" = 2
expect "xenstore vm-id=2 for domain 6" test "$(xsr /local/domain/6/vgpu/vm-id)" = 2

# a reboot: same VM, new domid
xenstore-write /local/domain/13/vm /vm/$U1
r=$(plugin assign domid=13)
want "VM-ID stable across a reboot (new domid 13)" "vm-id=1\$" "$r"
r=$(plugin assign domid=6)
want "VM-ID stable on a second assign" "vm-id=2\$" "$r"
expect "registry holds both VMs" \
    grep -qx "1 $U1" "$T/state/vm-ids"
expect "registry holds vm2 once" test "$(grep -c "$U2" "$T/state/vm-ids")" = 1

r=$(plugin assign domid=7)
want "VM without vgpu-pool: nothing to do" "not a vgpu VM" "$r"
expect "no vgpu keys for a VM without pool" \
    test -z "$(xsr /local/domain/7/vgpu/pool)"

# ------------------------------------------------------------------ faults
r=$(plugin assign domid=10)
want "unknown pool fault" "^FAULT 1 unknown pool 'C' \(known: A, B\)\$" "$r"
r=$(plugin assign domid=11)
want "bad priority fault" "^FAULT 1 bad priority 'urgent' \(low\|medium\|high\)\$" "$r"
r=$(plugin assign domid=9)
want "missing VM fault" "^FAULT 2 VM not found: no VM with uuid $UX" "$r"
r=$(plugin assign domid=8)
want "domid without /vm key fault" "^FAULT 2 domain 8: cannot read /local/domain/8/vm" "$r"
r=$(plugin assign domid=4000)
want "domid of no domain fault" "^FAULT 2 domain 4000" "$r"
r=$(plugin assign domid=abc)
want "invalid domid fault" "^FAULT 1 invalid domid 'abc'" "$r"
r=$(plugin assign domid=0)
want "domid 0 refused" "^FAULT 1 invalid domid '0'" "$r"
r=$(plugin assign)
want "missing domid fault" "^FAULT -32602 missing argument domid" "$r"
r=$(plugin assign domid=5 pool=B)
want "unknown argument fault" "^FAULT -32602 assign: unknown argument 'pool'" "$r"
r=$(plugin frobnicate)
want "unknown function fault" "^FAULT -32601 unknown function 'frobnicate'" "$r"
r=$(plugin_raw '<methodCall><methodName>assign</methodName><params>')
want "malformed XML fault" "^FAULT -32700 malformed XML" "$r"
r=$(plugin_raw 'garbage')
want "non-XML fault" "^FAULT -32700 malformed XML" "$r"
r=$(plugin_raw '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><methodCall><methodName>status</methodName></methodCall>')
want "DOCTYPE refused" "^FAULT -32700 a DOCTYPE is not allowed" "$r"
r=$(plugin_raw "$(head -c 70000 /dev/zero | tr '\0' a)")
want "input above 64 KB refused" "^FAULT -32700 document is 70000 bytes" "$r"
r=$(plugin_raw '<methodCall><methodName>assign</methodName><params><param><value>s</value></param></params></methodCall>')
want "one param only: shape fault" "^FAULT -32602 params must be \(session_ref string, struct" "$r"
r=$(plugin_raw '<methodCall><methodName>assign</methodName><params><param><value>s</value></param><param><value>domid=5</value></param></params></methodCall>')
want "args not a struct: shape fault" "^FAULT -32602 params must be" "$r"
r=$(plugin_raw "<methodCall><methodName>assign</methodName><params><param><value>s</value></param><param><value><struct><member><name>domid</name><value><int>5</int></value></member></struct></value></param></params></methodCall>")
want "non-string argument fault" "^FAULT -32602 argument 'domid' is not a string" "$r"
r=$(plugin_raw)
want "no argument at all: fault" "^FAULT -32600 expected one argument" "$r"
r=$(SESSION=OpaqueRef:bogus plugin assign domid=5)
want "invalid session: XenAPI error surfaced" "^FAULT 3 .*SESSION_INVALID" "$r"
r=$(VGPU_XAPI_URL=unix:$T/nowhere.sock plugin assign domid=5)
want "xapi unreachable: fault" "^FAULT 3 xapi unreachable" "$r"
r=$(XENSTORED_PATH=$T/no-xs.sock plugin assign domid=5)
want "xenstore unreachable: fault" "^FAULT 4 cannot reach xenstore" "$r"

# pools.conf replaces the built-in A, B
printf '# our pools\nA\nC   # the new one\n\n' >"$T/conf/pools.conf"
r=$(plugin assign domid=10)
want "pools.conf pool C accepted" "pool=C priority=medium vm-id=3\$" "$r"
r=$(plugin assign domid=6)
want "pools.conf without B: B refused" "^FAULT 1 unknown pool 'B' \(known: A, C\)\$" "$r"
# the mediator's syntax: pools with their GPUs
printf 'A = 0\nB = 1, GPU-8f6e3c2a-1b2c-4d5e-9f00-aabbccddeeff\n' >"$T/conf/pools.conf"
r=$(plugin assign domid=6)
want "pools.conf with GPU lists: pool B accepted" "pool=B " "$r"
printf 'A = 0\nB = nine\n' >"$T/conf/pools.conf"
r=$(plugin assign domid=6)
want "invalid pools.conf: fault naming the file and line" \
    "^FAULT 5 .*pools.conf: line 2: a GPU is an index" "$r"
rm "$T/conf/pools.conf"

# ------------------------------------------------------------ set-priority
r=$(plugin set-priority uuid=$U1 priority=low)
want "set-priority by uuid updates the running domain" \
    "^OK VM $U1: priority low; running domain 5 updated\$" "$r"
expect "other-config vgpu-priority=low" test "$(oc $U1 vgpu-priority)" = low
expect "xenstore priority=low" test "$(xsr /local/domain/5/vgpu/priority)" = low
p=$(perms /local/domain/5/vgpu/priority)
expect "priority perms still n0,r5 (got '$p')" test "$p" = "n0,r5"
r=$(plugin set-priority domid=6 priority=high)
want "set-priority by domid" "running domain 6 updated\$" "$r"
expect "other-config of vm2 high" test "$(oc $U2 vgpu-priority)" = high
expect "xenstore of domain 6 high" test "$(xsr /local/domain/6/vgpu/priority)" = high
r=$(plugin set-priority uuid=$U3 priority=low)
want "set-priority on an unassigned domain: next start" "takes effect at its next start\$" "$r"
expect "no vgpu keys created by set-priority" test -z "$(xsr /local/domain/7/vgpu/priority)"
r=$(plugin set-priority uuid=$U1 priority=urgent)
want "set-priority bad priority fault" "^FAULT 1 bad priority 'urgent' \(low\|medium\|high\)" "$r"
expect "bad priority left other-config alone" test "$(oc $U1 vgpu-priority)" = low
r=$(plugin set-priority uuid=$UX priority=low)
want "set-priority missing VM fault" "^FAULT 2 VM not found" "$r"
r=$(plugin set-priority uuid=not-a-uuid priority=low)
want "set-priority bad uuid fault" "^FAULT 1 bad VM uuid 'not-a-uuid'" "$r"
r=$(plugin set-priority priority=low)
want "set-priority without a VM fault" "^FAULT -32602 name the VM" "$r"
r=$(plugin set-priority uuid=$U1 domid=5 priority=low)
want "set-priority with both uuid and domid fault" "^FAULT -32602 name the VM" "$r"

# ------------------------------------------------------------------ status
r=$(plugin status)
want "status without the status file" "^OK mediator not running \(no $T/run/mediator.status\)" "$r"
printf 'mediator pid=%d backend=cpu qemu-root=/var/xen/qemu\ndomain 5 pool=A priority=low vm-id=1 device=connected\n' $$ \
    >"$T/run/mediator.status"
r=$(plugin status)
want "status returns the mediator's status" "^OK mediator pid=$$ backend=cpu" "$r"
want "status lists the domains" "^domain 5 pool=A priority=low vm-id=1 device=connected\$" "$r"

# ------------------------------------------------ the guest cannot write
GUEST="env XENSTORED_PATH=$T/xs-d5.sock $HERE/xs-try"
v=$($GUEST read /local/domain/5/vgpu/priority 2>&1)
expect "guest domain 5 reads its priority (got '$v')" test "$v" = low
v=$(XENSTORED_PATH=$T/xs-d5.sock xenstore-read /local/domain/5/vgpu/vm-id 2>&1)
expect "guest domain 5 reads its vm-id with xenstore-read (got '$v')" test "$v" = 1
e=$($GUEST write /local/domain/5/vgpu/priority high 2>&1)
expect "guest domain 5 cannot write its priority: EACCES (got '$e')" \
    test "$e" = "error: Permission denied (EACCES)"
e=$($GUEST write /local/domain/5/vgpu/vm-id 7 2>&1)
expect "guest domain 5 cannot write its vm-id: EACCES (got '$e')" \
    test "$e" = "error: Permission denied (EACCES)"
e=$($GUEST write /local/domain/5/vgpu/pool-extra A 2>&1)
expect "guest domain 5 cannot add a key to its vgpu folder (got '$e')" \
    test "$e" = "error: Permission denied (EACCES)"
XENSTORED_PATH=$T/xs-d5.sock xenstore-write /local/domain/5/vgpu/priority high 2>/dev/null
expect "xenstore-write as the guest fails too" test $? -ne 0
e=$($GUEST rm /local/domain/5/vgpu 2>&1)
expect "guest domain 5 cannot remove its vgpu folder (got '$e')" \
    test "$e" = "error: Permission denied (EACCES)"
expect "priority unchanged after the guest's tries" \
    test "$(xsr /local/domain/5/vgpu/priority)" = low
expect "vm-id unchanged after the guest's tries" \
    test "$(xsr /local/domain/5/vgpu/vm-id)" = 1

# ----------------------------------------------------------------- wrapper
cat >"$T/stock-wrapper" <<'EOF'
#!/bin/bash
# stand-in for /usr/lib64/xen/bin/qemu-wrapper: records its argv
printf '%s\n' "$@" >"$ARGV_OUT"
exit 0
EOF
chmod +x "$T/stock-wrapper"
export VGPU_STOCK_WRAPPER=$T/stock-wrapper
QARGS=(-d 0 -machine xenfv,max-ram-below-4g=4026531840 -m 2048 -boot order=cd
       -smp 2,maxcpus=2 -serial pty -display none -nodefaults -trace enable=xen_platform_log
       -sandbox on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny
       -S -global PIIX4_PM.revision_id=0x3 -net none -vnc unix:/var/run/xen/vnc-DOMID,lock-key-sync=off
       -monitor null -pidfile /var/run/xen/qemu-dm-DOMID.pid -chardev socket,id=chrpcimon,path=x,server,nowait)

run_wrapper() { # run_wrapper DOMID: argv dumped to $T/argv, stderr to $T/wrapper.err
    local d=$1
    rm -f "$T/argv"
    ARGV_OUT=$T/argv VGPU_LOG_STDERR=1 "$WRAPPER" "$d" --syslog \
        "${QARGS[@]//DOMID/$d}" 2>"$T/wrapper.err"
}
expected_argv() { # expected_argv DOMID [extra...]
    local d=$1; shift
    printf '%s\n' "$d" --syslog "${QARGS[@]//DOMID/$d}" "$@"
}
same_argv() { diff -u <(expected_argv "$@") "$T/argv" >"$T/argv.diff" 2>&1; }

run_wrapper 7; rc=$?
expect "wrapper: VM without pool exits like the stock wrapper" test $rc = 0
expect "wrapper: VM without pool gets identical argv" same_argv 7
run_wrapper 5; rc=$?
expect "wrapper: VM with pool runs the stock wrapper" test $rc = 0
expect "wrapper: VM with pool gets argv + -device" same_argv 5 -device \
    vgpu-stub,pool=A,priority=low,vm-id=1,socket=/vgpu-mediator.sock
[ -f "$T/argv.diff" ] && [ -s "$T/argv.diff" ] && cat "$T/argv.diff"
expect "wrapper: xenstore rewritten for domain 5" \
    test "$(xsr /local/domain/5/vgpu/vm-id)" = 1

# xapi over http:// with <string>-typed values
start xapi-http "$PY" "$XAPI_SERVER" --vms "$T/state.json" --port 0 --typed-strings
URL=$(sed -n 's/^ready //p' "$T/xapi-http.out")
VGPU_XAPI_URL=$URL run_wrapper 6; rc=$?
expect "wrapper over http:// (typed strings) adds the device" same_argv 6 \
    -device vgpu-stub,pool=B,priority=high,vm-id=2,socket=/vgpu-mediator.sock

run_wrapper 12; rc=$?
expect "wrapper: vgpu-required VM with xapi up gets the device" same_argv 12 \
    -device vgpu-stub,pool=A,priority=medium,vm-id=4,socket=/vgpu-mediator.sock
run_wrapper 14; rc=$?
expect "wrapper: vgpu-required VM with a bad pool exits non-zero" test $rc -ne 0
expect "wrapper: ... and does not run the stock wrapper" test ! -e "$T/argv"
expect "wrapper: ... and says why" grep -q "vgpu required but not available: unknown pool 'C'" "$T/wrapper.err"
run_wrapper 10; rc=$?
expect "wrapper: bad pool, not required: VM starts without device" same_argv 10

# xapi down
kill "$XAPI_PID"; wait "$XAPI_PID" 2>/dev/null
run_wrapper 5; rc=$?
expect "wrapper: xapi down: VM still starts" test $rc = 0
expect "wrapper: xapi down: argv without the device" same_argv 5
expect "wrapper: xapi down: logged" grep -q "starting the VM without the vgpu device: cannot log in to xapi" "$T/wrapper.err"
run_wrapper 12; rc=$?
expect "wrapper: xapi down + vgpu-required=true: non-zero exit" test $rc -ne 0
expect "wrapper: xapi down + vgpu-required: stock wrapper not run" test ! -e "$T/argv"
VGPU_XAPI_URL=$URL XENSTORED_PATH=$T/no-xs.sock run_wrapper 6; rc=$?
expect "wrapper: xenstore down: VM starts without device" same_argv 6
run_wrapper not-a-domid; rc=$?
expect "wrapper: unparsable domid: argv passed through" same_argv not-a-domid
VGPU_STOCK_WRAPPER=$WRAPPER run_wrapper 7; rc=$?
expect "wrapper: refuses to exec itself" test $rc -ne 0

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
