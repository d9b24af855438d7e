#!/bin/bash
# test-xapi.sh - the vgpu xapi plugin and qemu-dm wrapper, for real, against
# the XenAPI test server (xapi-server.py, XML-RPC over HTTP) and the xenstore
# wire-protocol server (xs-server, permissions enforced), through the real
# libxenstore and our own HTTP/1.1 client.
#
# The plugin is called the way `xe host-call-plugin` calls it: through the
# server's host.call_plugin, which runs it with the methodCall xapi builds
# and judges its stdout by xapi's rules (xapi_plugins.ml call_plugin,
# xMLRPC.ml From.methodResponse), so an answer xapi would refuse fails
# here too.  Calls xapi could never make (raw XML, a bogus session, a
# per-call environment) run the plugin directly with the server's
# run-plugin, judged by the same rules.
#
# Pins: assign (three keys, perms n0 + r<domid>, VM-ID stable across
# reboots, unique across VMs, persisted in other-config, xenopsd's own
# vgpu/ keys left alone), set-priority (other-config and the running
# domain's key), status (with and without the mediator's status file), a
# clear XenAPI Failure for every bad input, the answer shapes xapi takes
# and refuses, a guest that cannot write its own vgpu keys, and the
# wrapper: argv
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
# shellcheck source=lib.sh
. "$HERE/xapi-lib.sh"

# ---------------------------------------------------------------- fixtures
U1=11111111-1111-4111-8111-111111111111 # pool A, high, running as 5
U2=22222222-2222-4222-8222-222222222222 # pool B, carries U1's vm-id, as 6
U3=33333333-3333-4333-8333-333333333333 # no pool, as 7
U4=44444444-4444-4444-8444-444444444444 # pool C, as 10
U5=55555555-5555-4555-8555-555555555555 # priority urgent, as 11
U6=66666666-6666-4666-8666-666666666666 # pool A, vgpu-required, as 12
U7=77777777-7777-4777-8777-777777777777 # pool C, vgpu-required, as 14
U8=88888888-8888-4888-8888-888888888888 # pool A, required, PCI passthrough, as 15
U9=aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa # pool A, required, a PV guest, as 16
UA=bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb # pool gpu-pool.1 (named), as 17
UB=cccccccc-cccc-4ccc-8ccc-cccccccccccc # a quota that is no number, as 18
UX=99999999-9999-4999-8999-999999999999 # not known to xapi, as 9
SESSION=OpaqueRef:plugin-session

cat >"$T/vms.json" <<EOF
{
 "$U1": {"name_label": "vm1", "domid": "5",
         "other_config": {"vgpu-pool": "A", "vgpu-priority": "high",
                          "vgpu-quota-mb": "64"}},
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
         "other_config": {"vgpu-pool": "C", "vgpu-required": "true"}},
 "$U8": {"name_label": "vm8", "domid": "15",
         "other_config": {"vgpu-pool": "A", "vgpu-required": "true",
                          "pci": "0/0000:04:00.0"}},
 "$U9": {"name_label": "vm9", "domid": "16", "domain_type": "pv",
         "other_config": {"vgpu-pool": "A", "vgpu-required": "true"}},
 "$UA": {"name_label": "vm10", "domid": "17",
         "other_config": {"vgpu-pool": "gpu-pool.1"}},
 "$UB": {"name_label": "vm11", "domid": "18",
         "other_config": {"vgpu-pool": "A", "vgpu-quota-mb": "12MB"}}
}
EOF

# The plugin folder host.call_plugin runs plugins from (xapi's
# /etc/xapi.d/plugins): ours, and stand-ins answering in shapes xapi takes
# or refuses.
mkdir -p "$T/plugins"
ln -s "$PLUGIN" "$T/plugins/vgpu"
fake_plugin() { # fake_plugin NAME ANSWER [EXIT]: prints ANSWER, exits EXIT
    printf '#!/bin/sh\nprintf "%%s" '\''%s'\''\necho oops >&2\nexit %s\n' \
        "$2" "${3:-0}" >"$T/plugins/$1"
    chmod +x "$T/plugins/$1"
}
R='<methodResponse><params><param><value>' E='</value></param></params></methodResponse>'
fake_plugin bare-string "<?xml version=\"1.0\"?>$R<string>hello</string>$E"
fake_plugin not-xml "hello"
fake_plugin xml-fault "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>2</int></value></member><member><name>faultString</name><value>VM not found</value></member></struct></value></fault></methodResponse>"
fake_plugin struct-value "$R<struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value><struct/></value></member></struct>$E"
fake_plugin int-param "$R<struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name><value><array><data><value>CODE</value><value><int>1</int></value></data></array></value></member></struct>$E"
fake_plugin exit-3 "partial" 3
# what XenAPIPlugin.py's success_message prints
printf '#!%s\n%s\n' "$PY" 'import sys, xmlrpc.client
params, fn = xmlrpc.client.loads(sys.argv[1])
print(xmlrpc.client.dumps(({"Status": "Success",
                            "Value": fn + " " + params[1]["k"]},), "", True))' \
    >"$T/plugins/python-style"
chmod +x "$T/plugins/python-style"

export XENSTORED_PATH=$T/xs.sock
export VGPU_XAPI_URL=unix:$T/xapi.sock
export VGPU_STATE_DIR=$T/state
export VGPU_RUN_DIR=$T/run
export VGPU_CONF_DIR=$T/conf
mkdir -p "$T/conf" "$T/run"

# The XenAPI server runs plugins in its own environment: started after the
# exports above.
start xs "$XS_SERVER" --socket "$T/xs.sock" --domain-socket "5:$T/xs-d5.sock"
start xapi "$PY" "$XAPI_SERVER" --vms "$T/vms.json" --state "$T/state.json" \
    --pool-state "$T/pool.json" --unix "$T/xapi.sock" --session "$SESSION" --plugin-dir "$T/plugins"
XAPI_PID=${PIDS[-1]}

xenstore-write /local/domain/5/vm /vm/$U1 /local/domain/6/vm /vm/$U2 \
    /local/domain/7/vm /vm/$U3 /local/domain/9/vm /vm/$UX \
    /local/domain/10/vm /vm/$U4 /local/domain/11/vm /vm/$U5 \
    /local/domain/12/vm /vm/$U6 /local/domain/14/vm /vm/$U7 \
    /local/domain/15/vm /vm/$U8 /local/domain/16/vm /vm/$U9 \
    /local/domain/17/vm /vm/$UA /local/domain/18/vm /vm/$UB \
    /local/domain/8/name no-vm-key

# ----------------------------------------------------------------- helpers
# plugin FN [k=v...]: as `xe host-call-plugin plugin=vgpu fn=FN args:k=v`
plugin() { call_plugin vgpu "$@"; }
# call_plugin NAME FN [k=v...]: the same for any plugin of the folder
call_plugin() {
    "$PY" "$XAPI_SERVER" call-plugin "unix:$T/xapi.sock" "$SESSION" "$@" |
        decode
}
# plugin_env FN [k=v...]: the methodCall xapi builds (session $SESSION),
# the plugin run directly in this shell's environment, judged as xapi does
plugin_env() {
    "$PY" "$XAPI_SERVER" run-plugin "$PLUGIN" call "$SESSION" "$@" | decode
}
# plugin_raw [ARG...]: the plugin run with exactly these arguments
plugin_raw() {
    "$PY" "$XAPI_SERVER" run-plugin "$PLUGIN" argv "$@" | decode
}

xsr() { xenstore-read "$@" 2>/dev/null; }
oc() { # oc UUID KEY: other-config value in the XenAPI server's state
    "$PY" -c 'import json,sys
print(json.load(open(sys.argv[1]))[sys.argv[2]]["other_config"].get(sys.argv[3], "<none>"))' \
        "$T/state.json" "$1" "$2"
}
claims() { # claims: the pool's VM-ID claims, "key=uuid ..." sorted
    "$PY" -c 'import json,sys
oc = json.load(open(sys.argv[1]))["pool"]["other_config"]
print(" ".join("%s=%s" % kv for kv in sorted(oc.items())
               if kv[0].startswith("vgpu-vm-id-")))' "$T/pool.json"
}
perms() { # perms PATH: the permission list xenstore-ls -p shows
    xenstore-ls -p "$(dirname "$1")" 2>/dev/null |
        sed -n "s/^$(basename "$1") = .*(\(.*\))\$/\1/p"
}

# ------------------------------------------------------------------ assign
# xenopsd keeps its own /local/domain/<domid>/vgpu/ (its vGPU state); our
# folder is vgpu-mediator/ and the plugin must never touch xenopsd's
xenstore-write /local/domain/5/vgpu/state xenopsd-was-here
r=$(plugin assign domid=5)
want "assign domid=5 answers the assignment" \
    "^OK domain 5 VM $U1 \(vm1\): pool=A priority=high vm-id=1\$" "$r"
expect "xenstore pool=A" test "$(xsr /local/domain/5/vgpu-mediator/pool)" = A
expect "xenstore priority=high" test "$(xsr /local/domain/5/vgpu-mediator/priority)" = high
expect "xenstore vm-id=1" test "$(xsr /local/domain/5/vgpu-mediator/vm-id)" = 1
expect "xenstore quota-mb=64 (other-config:vgpu-quota-mb)" \
    test "$(xsr /local/domain/5/vgpu-mediator/quota-mb)" = 64
for k in vgpu-mediator vgpu-mediator/pool vgpu-mediator/priority \
    vgpu-mediator/vm-id; do
    p=$(perms /local/domain/5/$k)
    expect "perms of $k are n0,r5 (got '$p')" test "$p" = "n0,r5"
done
expect "vm-id persisted in other-config" test "$(oc $U1 vgpu-vm-id)" = 1
expect "xenopsd's /local/domain/5/vgpu/state survives the assignment" \
    test "$(xsr /local/domain/5/vgpu/state)" = xenopsd-was-here

r=$(plugin assign domid=6)
want "VM carrying another VM's vgpu-vm-id gets a new one" \
    "pool=B priority=medium vm-id=2\$" "$r"
expect "new vm-id written back to other-config" test "$(oc $U2 vgpu-vm-id)" = 2
expect "xenstore vm-id=2 for domain 6" test "$(xsr /local/domain/6/vgpu-mediator/vm-id)" = 2
expect "no quota-mb for a VM without vgpu-quota-mb (the default applies)" \
    test -z "$(xsr /local/domain/6/vgpu-mediator/quota-mb)"

# a reboot: same VM, new domid
xenstore-write /local/domain/13/vm /vm/$U1
r=$(plugin assign domid=13)
want "VM-ID stable across a reboot (new domid 13)" "vm-id=1\$" "$r"
r=$(plugin assign domid=6)
want "VM-ID stable on a second assign" "vm-id=2\$" "$r"
expect "the pool's claims hold both VMs (vgpu-vm-id-1.1=vm1, -2.1=vm2)" \
    test "$(claims)" = "vgpu-vm-id-1.1=$U1 vgpu-vm-id-2.1=$U2"
expect "no host-local VM-ID registry any more" test ! -e "$T/state/vm-ids"

r=$(plugin assign domid=7)
want "VM without vgpu-pool: nothing to do" "not a vgpu VM" "$r"
expect "no vgpu keys for a VM without pool" \
    test -z "$(xsr /local/domain/7/vgpu-mediator/pool)"

# ------------------------------------------------- what xapi makes of answers
# The same calls as xe host-call-plugin, to stand-in plugins: only the
# XenAPI envelope gets through xapi as the plugin meant it.
r=$(call_plugin python-style echo k=v)
want "XenAPIPlugin.py-style Success: the Value string" "^OK echo v\$" "$r"
r=$(call_plugin bare-string f)
want "bare-string answer refused as xapi does (INTERNAL_ERROR)" \
    "^XAPI INTERNAL_ERROR XMLRPC.RunTimeTypeError\(\"unbox: Element=string should contain 'struct'\", _\)\$" "$r"
r=$(call_plugin struct-value f)
want "Success with a non-string Value refused (INTERNAL_ERROR)" \
    "^XAPI INTERNAL_ERROR XMLRPC.RunTimeTypeError" "$r"
r=$(call_plugin int-param f)
want "Failure with a non-string parameter refused (INTERNAL_ERROR)" \
    "^XAPI INTERNAL_ERROR XMLRPC.RunTimeTypeError" "$r"
r=$(call_plugin xml-fault f)
want "XML-RPC fault answer: XENAPI_PLUGIN_FAILURE fault" \
    "^XAPI XENAPI_PLUGIN_FAILURE fault \| 2 \| VM not found\$" "$r"
r=$(call_plugin not-xml f)
want "non-XML answer: XENAPI_PLUGIN_FAILURE failed to parse" \
    "^XAPI XENAPI_PLUGIN_FAILURE failed to parse plugin output \| hello \|" "$r"
r=$(call_plugin exit-3 f)
want "non-zero exit: XENAPI_PLUGIN_FAILURE with stdout and stderr" \
    "^XAPI XENAPI_PLUGIN_FAILURE non-zero exit \| partial \| oops\$" "$r"
r=$(call_plugin no-such-plugin f)
want "unknown plugin: XENAPI_MISSING_PLUGIN" \
    "^XAPI XENAPI_MISSING_PLUGIN no-such-plugin\$" "$r"
r=$(call_plugin ../vgpu/vgpu status)
want "a path is not a plugin name" "^XAPI XENAPI_MISSING_PLUGIN" "$r"
# our plugin's answers as documents: the envelope, nothing else
out=$("$PLUGIN" '<methodCall><methodName>status</methodName><params><param><value>s</value></param><param><value><struct/></value></param></params></methodCall>' 2>/dev/null)
want "plugin answers {Status: Success, Value: <string>}" \
    "<methodResponse><params><param><value><struct><member><name>Status</name><value><string>Success</string></value></member><member><name>Value</name><value><string>mediator not running" "$out"
out=$("$PLUGIN" garbage 2>/dev/null)
want "plugin failures are {Status: Failure, ErrorDescription: [...]}" \
    "<member><name>Status</name><value><string>Failure</string></value></member><member><name>ErrorDescription</name><value><array><data><value><string>VGPU_MALFORMED_CALL</string></value><value><string>malformed XML" "$out"
expect "plugin never answers with an XML-RPC <fault>" \
    test -z "$(printf '%s' "$out" | grep -F '<fault>')"

# ------------------------------------------------------------------ faults
r=$(plugin assign domid=10)
want "unknown pool fault" "^FAULT 1 unknown pool 'C' \(known: A, B\)\$" "$r"
# The pool is checked before anything is claimed or written.
untouched() { # untouched UUID DOMID: no VM-ID claimed, nothing written
    ! claims | grep -q "$1" &&
        [ "$(oc "$1" vgpu-vm-id)" = "<none>" ] &&
        [ -z "$(xsr "/local/domain/$2/vgpu-mediator/pool")" ] &&
        [ -z "$(xsr "/local/domain/$2/vgpu-mediator/vm-id")" ]
}
expect "unknown pool: no VM-ID claimed in the pool, none in other-config, no xenstore keys" \
    untouched "$U4" 10
r=$(plugin assign domid=11)
want "bad priority fault" "^FAULT 1 bad priority 'urgent' \(low\|medium\|high\)\$" "$r"
r=$(plugin assign domid=18)
want "bad quota fault" "^FAULT 1 bad vgpu-quota-mb '12MB' \(MiB, 1\.\.1073741824\)\$" "$r"
expect "nothing written for the bad quota" \
    test -z "$(xsr /local/domain/18/vgpu-mediator/pool)"
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
r=$("$PY" "$XAPI_SERVER" call-plugin "unix:$T/xapi.sock" "$SESSION" vgpu frobnicate)
want "unknown function: XenAPIPlugin.py's UNKNOWN_XENAPI_PLUGIN_FUNCTION [fn, ...]" \
    '^FAILURE \["UNKNOWN_XENAPI_PLUGIN_FUNCTION", "frobnicate", "unknown function' "$r"
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
r=$(SESSION=OpaqueRef:bogus plugin_env assign domid=5)
want "invalid session: XenAPI error surfaced" "^FAULT 3 .*SESSION_INVALID" "$r"
r=$(VGPU_XAPI_URL=unix:$T/nowhere.sock plugin_env assign domid=5)
want "xapi unreachable: fault" "^FAULT 3 xapi unreachable" "$r"
r=$(XENSTORED_PATH=$T/no-xs.sock plugin_env assign domid=5)
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
expect "xenstore priority=low" test "$(xsr /local/domain/5/vgpu-mediator/priority)" = low
p=$(perms /local/domain/5/vgpu-mediator/priority)
expect "priority perms still n0,r5 (got '$p')" test "$p" = "n0,r5"
r=$(plugin set-priority domid=6 priority=high)
want "set-priority by domid" "running domain 6 updated\$" "$r"
expect "other-config of vm2 high" test "$(oc $U2 vgpu-priority)" = high
expect "xenstore of domain 6 high" test "$(xsr /local/domain/6/vgpu-mediator/priority)" = high
r=$(plugin set-priority uuid=$U3 priority=low)
want "set-priority on an unassigned domain: next start" "takes effect at its next start\$" "$r"
expect "no vgpu keys created by set-priority" test -z "$(xsr /local/domain/7/vgpu-mediator/priority)"
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
v=$($GUEST read /local/domain/5/vgpu-mediator/priority 2>&1)
expect "guest domain 5 reads its priority (got '$v')" test "$v" = low
v=$(XENSTORED_PATH=$T/xs-d5.sock xenstore-read /local/domain/5/vgpu-mediator/vm-id 2>&1)
expect "guest domain 5 reads its vm-id with xenstore-read (got '$v')" test "$v" = 1
e=$($GUEST write /local/domain/5/vgpu-mediator/priority high 2>&1)
expect "guest domain 5 cannot write its priority: EACCES (got '$e')" \
    test "$e" = "error: Permission denied (EACCES)"
e=$($GUEST write /local/domain/5/vgpu-mediator/vm-id 7 2>&1)
expect "guest domain 5 cannot write its vm-id: EACCES (got '$e')" \
    test "$e" = "error: Permission denied (EACCES)"
e=$($GUEST write /local/domain/5/vgpu-mediator/pool-extra A 2>&1)
expect "guest domain 5 cannot add a key to its vgpu folder (got '$e')" \
    test "$e" = "error: Permission denied (EACCES)"
XENSTORED_PATH=$T/xs-d5.sock xenstore-write /local/domain/5/vgpu-mediator/priority high 2>/dev/null
expect "xenstore-write as the guest fails too" test $? -ne 0
e=$($GUEST rm /local/domain/5/vgpu-mediator 2>&1)
expect "guest domain 5 cannot remove its vgpu folder (got '$e')" \
    test "$e" = "error: Permission denied (EACCES)"
expect "priority unchanged after the guest's tries" \
    test "$(xsr /local/domain/5/vgpu-mediator/priority)" = low
expect "vm-id unchanged after the guest's tries" \
    test "$(xsr /local/domain/5/vgpu-mediator/vm-id)" = 1

# ----------------------------------------------------------------- wrapper
cat >"$T/stock-wrapper" <<'EOF'
#!/bin/bash
# stand-in for /usr/lib64/xen/bin/qemu-wrapper: records its argv and what
# the path of XCP-ng's qemu-dm holds for it
printf '%s\n' "$@" >"$ARGV_OUT"
sed -n 2p "$VGPU_QEMU_DM_STOCK_PATH" >"$ARGV_OUT.qemu"
exit 0
EOF
chmod +x "$T/stock-wrapper"
export VGPU_STOCK_WRAPPER=$T/stock-wrapper
# The two qemu-dm binaries (common/qemudm.h): XCP-ng's at the path the
# stock wrapper runs (moved here by VGPU_QEMU_DM_STOCK_PATH), and ours,
# whose `-device help` lists vgpu-stub.  The wrapper bind-mounts ours over
# the stock path, in its own mount namespace (it runs as root, as on dom0).
printf '#!/bin/sh\n# stock\n' >"$T/stock-qemu"
printf '#!/bin/sh\n# vgpu\necho "name \\"vgpu-stub\\", bus PCI"\n' >"$T/vgpu-qemu"
chmod +x "$T/stock-qemu" "$T/vgpu-qemu"
export VGPU_QEMU_DM_STOCK_PATH=$T/stock-qemu VGPU_QEMU_DM=$T/vgpu-qemu
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
    vgpu-stub,pool=A,priority=low,vm-id=1,socket=/vgpu-mediator.sock,addr=0x1f
[ -f "$T/argv.diff" ] && [ -s "$T/argv.diff" ] && cat "$T/argv.diff"
expect "wrapper: VM with pool: the stock wrapper finds our qemu-dm at XCP-ng's path" \
    test "$(cat "$T/argv.qemu")" = "# vgpu"
expect "wrapper: ... mounted in the wrapper's namespace only (the path holds XCP-ng's here)" \
    test "$(sed -n 2p "$T/stock-qemu")" = "# stock"
run_wrapper 7
expect "wrapper: VM without pool: the stock wrapper finds XCP-ng's qemu-dm" \
    test "$(cat "$T/argv.qemu")" = "# stock"
# Where the host's mounts are shared (systemd makes / shared on dom0), a
# namespace copied from it shares them too: only a slave namespace keeps
# our bind mount from reaching the host.  Here the "host" is a namespace
# with every mount shared.
v=$(unshare -m --propagation shared -- sh -c 'ARGV_OUT=$1/argv-shared "$2" 5 --syslog \
        2>/dev/null; echo "$(cat "$1/argv-shared.qemu") / $(sed -n 2p "$1/stock-qemu")"' \
    sh "$T" "$WRAPPER")
expect "wrapper: from a host whose mounts are shared, ours still reaches the VM only ($v)" \
    test "$v" = "# vgpu / # stock"
# Our qemu-dm unusable: missing, or its -device help lacks vgpu-stub.
printf '#!/bin/sh\necho "name \\"VGA\\", bus PCI"\n' >"$T/plain-qemu"
chmod +x "$T/plain-qemu"
VGPU_QEMU_DM=$T/no-qemu run_wrapper 5; rc=$?
expect "wrapper: our qemu-dm missing, not required: VM starts without the device" \
    test $rc = 0 -a "$(cat "$T/argv.qemu")" = "# stock"
expect "wrapper: ... argv unchanged" same_argv 5
expect "wrapper: ... saying so" grep -q "starting the VM without the vgpu device: the vgpu qemu-dm $T/no-qemu is missing (install the qemu-dm-vgpu package" "$T/wrapper.err"
VGPU_QEMU_DM=$T/plain-qemu run_wrapper 5; rc=$?
expect "wrapper: our qemu-dm lacks vgpu-stub, not required: VM starts without the device" \
    same_argv 5
expect "wrapper: ... saying so" grep -q "starting the VM without the vgpu device: the vgpu qemu-dm $T/plain-qemu lacks the vgpu-stub device" "$T/wrapper.err"
VGPU_QEMU_DM=$T/no-qemu run_wrapper 12; rc=$?
expect "wrapper: our qemu-dm missing, vgpu-required: refused, stock wrapper not run" \
    test $rc -ne 0 -a ! -e "$T/argv"
expect "wrapper: ... saying why" grep -q "vgpu required but not available: the vgpu qemu-dm $T/no-qemu is missing" "$T/wrapper.err"
VGPU_QEMU_DM=$T/plain-qemu run_wrapper 12; rc=$?
expect "wrapper: our qemu-dm lacks vgpu-stub, vgpu-required: refused" \
    test $rc -ne 0 -a ! -e "$T/argv"
expect "wrapper: ... saying why" grep -q "vgpu required but not available: the vgpu qemu-dm $T/plain-qemu lacks the vgpu-stub device" "$T/wrapper.err"
expect "wrapper: xenstore rewritten for domain 5" \
    test "$(xsr /local/domain/5/vgpu-mediator/vm-id)" = 1
expect "xenopsd's vgpu/state still untouched after set-priority and the wrapper" \
    test "$(xsr /local/domain/5/vgpu/state)" = xenopsd-was-here

# xapi over http:// with <string>-typed values
start xapi-http "$PY" "$XAPI_SERVER" --vms "$T/state.json" --port 0 --typed-strings
URL=$(sed -n 's/^ready //p' "$T/xapi-http.out")
VGPU_XAPI_URL=$URL run_wrapper 6; rc=$?
expect "wrapper over http:// (typed strings) adds the device" same_argv 6 \
    -device vgpu-stub,pool=B,priority=high,vm-id=2,socket=/vgpu-mediator.sock,addr=0x1f

# how xapi frames its HTTP answers must not matter; bad framing is refused
for style in chunked close continue huge garbage; do
    start "xapi-$style" "$PY" "$XAPI_SERVER" --vms "$T/state.json" \
        --unix "$T/xapi-$style.sock" --session "$SESSION" --answer-style $style
done
for style in chunked close continue; do
    r=$(VGPU_XAPI_URL=unix:$T/xapi-$style.sock plugin_env assign domid=6)
    want "HTTP answer framed '$style' read" \
        "^OK domain 6 VM $U2 \(vm2\): pool=B priority=high vm-id=2\$" "$r"
done
r=$(VGPU_XAPI_URL=unix:$T/xapi-huge.sock plugin_env assign domid=6)
want "HTTP answer over the size limit refused" \
    "^FAULT 3 .*answer too large \(over 1048576 bytes\)" "$r"
r=$(VGPU_XAPI_URL=unix:$T/xapi-garbage.sock plugin_env assign domid=6)
want "non-HTTP answer refused" "^FAULT 3 .*not an HTTP answer: 'SPDY/9 what'" "$r"
r=$(VGPU_XAPI_URL=https://127.0.0.1/ plugin_env assign domid=6)
want "https:// refused at run time, saying why" \
    "^FAULT 3 xapi URL 'https://127.0.0.1/': https:// is not supported \(no TLS\)" "$r"
r=$(VGPU_XAPI_URL=http://[::1 plugin_env assign domid=6)
want "bad http:// URL refused" "^FAULT 3 bad xapi URL 'http://\[::1'" "$r"

run_wrapper 12; rc=$?
expect "wrapper: vgpu-required VM with xapi up gets the device" same_argv 12 \
    -device vgpu-stub,pool=A,priority=medium,vm-id=4,socket=/vgpu-mediator.sock,addr=0x1f
run_wrapper 14; rc=$?
expect "wrapper: vgpu-required VM with a bad pool exits non-zero" test $rc -ne 0
expect "wrapper: ... and does not run the stock wrapper" test ! -e "$T/argv"
expect "wrapper: ... and says why" grep -q "vgpu required but not available: unknown pool 'C'" "$T/wrapper.err"
run_wrapper 10; rc=$?
expect "wrapper: bad pool, not required: VM starts without device" same_argv 10

# Named pools: any valid name that pools.conf lists reaches the device as
# it is; one it does not list is refused before a VM-ID is claimed.
run_wrapper 17; rc=$?
expect "wrapper: pool gpu-pool.1 without pools.conf: VM starts without device" \
    same_argv 17
expect "wrapper: ... says why" grep -q "unknown pool 'gpu-pool.1' (known: A, B)" "$T/wrapper.err"
expect "wrapper: ... before claiming anything (pool claims, other-config, xenstore)" \
    untouched "$UA" 17
printf 'A\nB\nC\ngpu-pool.1 = 0\n' >"$T/conf/pools.conf"
run_wrapper 10; rc=$?
expect "wrapper: pool C that pools.conf lists: the device gets pool=C" same_argv 10 \
    -device vgpu-stub,pool=C,priority=medium,vm-id=3,socket=/vgpu-mediator.sock,addr=0x1f
run_wrapper 17; rc=$?
vmid=$(claims | tr ' ' '\n' | sed -n "s/^vgpu-vm-id-\([0-9]*\)\.[0-9]*=$UA\$/\1/p")
expect "wrapper: pool gpu-pool.1 that pools.conf lists: claimed a VM-ID ($vmid)" \
    test -n "$vmid"
expect "wrapper: ... and the device gets pool=gpu-pool.1" same_argv 17 \
    -device "vgpu-stub,pool=gpu-pool.1,priority=medium,vm-id=$vmid,socket=/vgpu-mediator.sock,addr=0x1f"
expect "wrapper: ... and xenstore holds pool gpu-pool.1" \
    test "$(xsr /local/domain/17/vgpu-mediator/pool)" = gpu-pool.1
rm "$T/conf/pools.conf"

# The device's PCI slot is always explicit (the stock wrapper appends the
# VGA card at addr=2 after everything): vgpu.conf may move it within
# 0x10..0x1f, a slot another -device holds or a bad value means no device.
echo "pci-slot=0x10" >"$T/conf/vgpu.conf"
run_wrapper 5; rc=$?
expect "wrapper: pci-slot=0x10 in vgpu.conf places the device there" same_argv 5 \
    -device vgpu-stub,pool=A,priority=low,vm-id=1,socket=/vgpu-mediator.sock,addr=0x10
for bad in 0x3 2 0x20 1f.1 x; do
    echo "pci-slot=$bad" >"$T/conf/vgpu.conf"
    run_wrapper 5; rc=$?
    expect "wrapper: pci-slot=$bad refused: VM starts without the device" same_argv 5
    expect "wrapper: ... saying why" grep -q "pci-slot=$bad in vgpu.conf is not a PCI slot in 0x10..0x1f" "$T/wrapper.err"
done
rm -f "$T/conf/vgpu.conf"
QARGS_SAVED=("${QARGS[@]}")
QARGS+=(-device "rtl8139,netdev=tapnet0,mac=00:16:3e:00:00:01,addr=1f")
run_wrapper 5; rc=$?
expect "wrapper: slot 0x1f taken by another -device: no device" same_argv 5
expect "wrapper: ... naming the device that holds it" \
    grep -q "PCI slot 0x1f is taken by -device rtl8139,netdev=tapnet0,mac=00:16:3e:00:00:01,addr=1f" "$T/wrapper.err"
QARGS=("${QARGS_SAVED[@]}" -priv)
run_wrapper 5; rc=$?
expect "wrapper: PCI passthrough (-priv): VM starts without the device" same_argv 5
expect "wrapper: ... saying why" grep -q "the VM has PCI passthrough (-priv)" "$T/wrapper.err"
run_wrapper 12; rc=$?
expect "wrapper: -priv and vgpu-required=true: refused, stock wrapper not run" \
    test $rc -ne 0 -a ! -e "$T/argv"
QARGS=("${QARGS_SAVED[@]}")

# A refusal makes xenopsd's wait end at once: the wrapper answers its probe
# of qemu's QMP event socket and removes it (xenopsd xc/device.ml:
# wait_event_socket, then QMP_Event.add fails: FAILED_TO_START_EMULATOR).
QARGS+=(-qmp "unix:$T/qmp-event-14,server,nowait")
( run_wrapper 14; echo $? >"$T/ff.rc" ) &
ffpid=$!
"$PY" - "$T/qmp-event-14" <<'PYEOF'
import os, socket, sys, time
path = sys.argv[1]
deadline = time.time() + 20
while time.time() < deadline:
    if os.path.exists(path):
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
            s.close()
            break
        except OSError:
            pass
    time.sleep(0.05)
else:
    print("never listened"); sys.exit(1)
time.sleep(0.2)
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(path)
    r = s.recv(100)
    print("negotiation got", r)  # xenopsd would now wait on QMP
    sys.exit(2 if r else 0)
except OSError as e:
    print("negotiation failed:", e)
    sys.exit(0)
PYEOF
rc=$?
wait $ffpid
expect "wrapper: refusal answers xenopsd's QMP probe, then the socket is gone" test $rc = 0
expect "wrapper: ... and it exits non-zero" test "$(cat "$T/ff.rc")" != 0
expect "wrapper: ... leaving no socket behind" test ! -e "$T/qmp-event-14"
QARGS=("${QARGS_SAVED[@]}")

# The vm-pre-start / vm-pre-resume hook.  xenopsd (lib/xenops_hooks.ml,
# execute_vm_hook) runs it as "-vmuuid U -reason R" before the domain
# exists: exit 0 goes on, 1 is logged and goes on, anything else fails the
# start with XAPI_HOOK_FAILED showing the hook's stdout.
HOOK=$BUILD/xapi-plugin/vgpu-pre-start
hook() { # hook UUID: HOOK_OUT, HOOK_RC
    HOOK_OUT=$("$HOOK" -vmuuid "$1" -reason none 2>"$T/hook.err")
    HOOK_RC=$?
}
hook "$U3"
expect "hook: VM without pool: exit 0, nothing said" test "$HOOK_RC:$HOOK_OUT" = 0:
hook "$U1"
expect "hook: pool A, not required: exit 0" test "$HOOK_RC:$HOOK_OUT" = 0:
hook "$U4"
expect "hook: bad pool, not required: exit 0 (starts without the device)" test "$HOOK_RC" = 0
hook "$U6"
expect "hook: required and fine: exit 0" test "$HOOK_RC:$HOOK_OUT" = 0:
hook "$U7"
expect "hook: required, bad pool: exit 2 (XAPI_HOOK_FAILED)" test "$HOOK_RC" = 2
expect "hook: ... its stdout says why in one line" test \
    "$HOOK_OUT" = "vgpu: VM $U7 has other-config:vgpu-required=true and its vgpu device cannot be set up: unknown pool 'C' (known: A, B)"
hook "$U8"
expect "hook: required with PCI passthrough: exit 2" test "$HOOK_RC" = 2
expect "hook: ... saying so" grep -q "PCI passthrough (other-config:pci=0/0000:04:00.0)" <<<"$HOOK_OUT"
hook "$U9"
expect "hook: required PV guest: exit 2, saying so" \
    test "$HOOK_RC:$(grep -c 'the VM is a pv guest' <<<"$HOOK_OUT")" = 2:1
VGPU_QEMU_DM=$T/no-qemu hook "$U6"
expect "hook: required, our qemu-dm missing: exit 2, saying so (what xe shows)" \
    test "$HOOK_RC:$HOOK_OUT" = "2:vgpu: VM $U6 has other-config:vgpu-required=true and its vgpu device cannot be set up: the vgpu qemu-dm $T/no-qemu is missing (install the qemu-dm-vgpu package: docs/install.md)"
VGPU_QEMU_DM=$T/plain-qemu hook "$U1"
expect "hook: pool A, not required, our qemu-dm without vgpu-stub: exit 0" test "$HOOK_RC" = 0
echo "pci-slot=0x3" >"$T/conf/vgpu.conf"
hook "$U6"
rm -f "$T/conf/vgpu.conf"
expect "hook: required, bad pci-slot: exit 2" test "$HOOK_RC" = 2
hook "$UX"
expect "hook: VM unknown to xapi: exit 1 (logged, the start goes on)" test "$HOOK_RC" = 1
HOOK_OUT=$("$HOOK" -reason none 2>/dev/null); HOOK_RC=$?
expect "hook: no -vmuuid: exit 1" test "$HOOK_RC" = 1
expect "hook: --help exits 0" "$HOOK" --help
hook "$U6"
expect "hook: changes nothing (no xenstore keys for a VM not yet started)" \
    test -z "$(xsr /local/domain/15/vgpu-mediator/pool)"

# xapi down
kill "$XAPI_PID"; wait "$XAPI_PID" 2>/dev/null
hook "$U7"
expect "hook: xapi down: exit 1 (never blocks a start on its own trouble)" test "$HOOK_RC" = 1
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
