#!/bin/bash
# test-pool.sh - VM-IDs unique in a pool of XCP-ng hosts.
#
# Three hosts of one pool, each with its own xenstore (xs-server), state
# and run folders, run the real plugin, as `xe host-call-plugin
# host-uuid=...` runs it, against one pool database: the XenAPI test
# server modelling the pool (the master's xapi, which every host's calls
# reach; map fields by xapi's rules: add_to_other_config refuses a key that
# exists, atomically).  The plugin claims VM-IDs in the pool object's
# other-config (xapi-plugin/poolids.c).
#
# Pins: 18 VMs assigned at the same moment on three hosts (the same domids
# on each) get 18 different VM-IDs, packed from 1, a stale claim of a VM
# gone from xapi taken over; every VM's other-config and its host's
# xenstore agree with the pool's claim; a VM started on another host keeps
# its ID; two clones carrying their parent's ID, assigned at once on two
# hosts, get two new IDs and the parent keeps its own; a destroyed VM's ID
# is reused; an imported VM keeps its ID when it is free and gets a new one
# when a live VM holds it; a VM whose vgpu-vm-id was changed by hand moves
# and frees its old ID; keys that are not claims are left alone; a claim
# that cannot be proved stale (its holder is no uuid) is never taken.
#
# Hosts say what they serve (item 2): each host's real mediator (CPU
# backend) writes its status file, vgpu-publish puts its pools and
# capacity in the host's other-config and withdraws them when the mediator
# is gone; the vm-pre-start hook refuses at once a VM whose pool this host
# does not serve, naming the hosts that do.
#
# v3 VMs (item 4): a VM whose domain holds CUDA contexts in its host's
# mediator (cuda=N in the status file) gets pool_migrate, migrate_send,
# suspend and checkpoint blocked by vgpu-publish, with the reason, so
# VM.pool_migrate and host.evacuate fail with OPERATION_BLOCKED before
# anything moves (the server follows xapi's checks, xapi-rules.md 4); the
# blocks are lifted when it holds none or the mediator stops, and an
# admin's own block is never touched.
#
# Installed as $BUILD/xapi/test-pool; finds $BUILD/xapi-plugin/{vgpu,
# vgpu-publish,vgpu-pre-start}, $BUILD/mediator/vgpu-mediator and
# $BUILD/xs-server/xs-server.  Prints one line per check and "N passed, N
# failed"; exit 0 pass, 1 fail, 77 skip.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=$(dirname "$HERE")
PLUGIN=$BUILD/xapi-plugin/vgpu
PUBLISH=$BUILD/xapi-plugin/vgpu-publish
PRE_START=$BUILD/xapi-plugin/vgpu-pre-start
PRE_MOVE=$BUILD/xapi-plugin/vgpu-pre-move
MEDIATOR=$BUILD/mediator/vgpu-mediator
XS_SERVER=$BUILD/xs-server/xs-server
XAPI_SERVER=$HERE/xapi-server.py
PY=$(command -v python3)
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

for f in "$PLUGIN" "$PUBLISH" "$PRE_START" "$PRE_MOVE" "$MEDIATOR" "$XS_SERVER"; do
    if [ ! -x "$f" ]; then
        echo "SKIP: $f is not built (build mediator, xapi-plugin and tests/xs-server" \
             "into $BUILD first)"
        exit 77
    fi
done
command -v xenstore-write >/dev/null ||
    { echo "SKIP: xenstore-write missing (xenstore-utils)"; exit 77; }
command -v xenstore-read >/dev/null ||
    { echo "SKIP: xenstore-read missing (xenstore-utils)"; exit 77; }
[ -n "$PY" ] || { echo "SKIP: python3 missing"; exit 77; }

T=$(mktemp -d /tmp/vgpu-pool-test.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
# shellcheck source=lib.sh
. "$HERE/xapi-lib.sh"

SESSION=OpaqueRef:plugin-session
URL=unix:$T/xapi.sock
uuid() { printf '%08x-0000-4000-8000-%012x' "$1" "$1"; } # VM number n
GONE=dead0000-0000-4000-8000-00000000dead # gone from xapi, holds VM-ID 2
HOSTS="h1 h2 h3"

# --------------------------------------------------------------- fixtures
# V1..V18: new VMs of pool A, six per host.  C1, C2 (21, 22): clones of V1.
# D (30): destroyed later.  N (31), M (32): new.  I1, I2 (40, 41): imported.
{
    echo "{"
    for n in $(seq 1 18) 21 22 30 31 32 40 41; do
        oc='"vgpu-pool": "A"'
        [ "$n" = 40 ] && oc="$oc, \"vgpu-vm-id\": \"500\""
        [ "$n" = 41 ] && oc="$oc, \"vgpu-vm-id\": \"3\""
        echo " \"$(uuid "$n")\": {\"name_label\": \"vm$n\", \"domid\": \"-1\","
        echo "   \"other_config\": {$oc}},"
    done
    # running: 50, 51 and 53 on h1 (domains 12, 13, 14), 52 on h2 (domain
    # 12 there); 53 has a block of its admin's
    for n in 50 51 52 53; do
        d=$((n - 38)) on=h1 bo=""
        [ $n = 52 ] && d=12 on=h2
        [ $n = 53 ] && bo=', "blocked_operations": {"suspend": "maintenance"}'
        echo " \"$(uuid "$n")\": {\"name_label\": \"vm$n\", \"domid\": \"$d\","
        echo "   \"resident_on\": \"$on\", \"other_config\": {\"vgpu-pool\": \"A\"}$bo},"
    done
    # for vgpu-pool: halted 60 (pool A), 61 (C), 62 (Q, served nowhere),
    # 63 (no vgpu-pool); running on h3: 64 (pool C), 65 (no vgpu-pool)
    for n in 60 61 62 63 64 65; do
        oc='"vgpu-pool": "A"' d=-1
        case $n in 61 | 64) oc='"vgpu-pool": "C"' ;; 62) oc='"vgpu-pool": "Q"' ;; 63 | 65) oc= ;; esac
        case $n in 64) d=20 ;; 65) d=21 ;; esac
        echo " \"$(uuid "$n")\": {\"name_label\": \"vm$n\", \"domid\": \"$d\","
        echo "   \"resident_on\": \"h3\", \"other_config\": {$oc}},"
    done
    echo ' "ffffffff-0000-4000-8000-ffffffffffff": {"name_label": "last"}'
    echo "}"
} >"$T/vms.json"
host_uuid() { printf 'f0000000-0000-4000-8000-%012d' "$1"; }
hosts_json() {
    local i=0 sep=""
    echo "["
    for h in $HOSTS; do
        i=$((i + 1))
        mkdir -p "$T/$h/conf" "$T/$h/run"
        printf "INSTALLATION_UUID='%s'\nPRODUCT_BRAND='XCP-ng'\n" \
            "$(host_uuid $i)" >"$T/$h/inventory"
        printf '%s {"name_label": "%s", "uuid": "%s", "env": {"XENSTORED_PATH": "%s", "VGPU_STATE_DIR": "%s", "VGPU_RUN_DIR": "%s", "VGPU_CONF_DIR": "%s", "VGPU_XAPI_URL": "%s", "VGPU_INVENTORY": "%s"}}\n' \
            "$sep" "$h" "$(host_uuid $i)" \
            "$T/$h/xs.sock" "$T/$h/state" "$T/$h/run" "$T/$h/conf" "$URL" \
            "$T/$h/inventory"
        sep=,
    done
    echo "]"
}
hosts_json >"$T/hosts.json"

mkdir -p "$T/plugins"
ln -s "$PLUGIN" "$T/plugins/vgpu"
for h in $HOSTS; do
    start "xs-$h" "$XS_SERVER" --socket "$T/$h/xs.sock"
done
start xapi "$PY" "$XAPI_SERVER" --vms "$T/vms.json" --state "$T/state.json" \
    --pool-state "$T/pool.json" --hosts "$T/hosts.json" --unix "$T/xapi.sock" \
    --session "$SESSION" --plugin-dir "$T/plugins"

xapi() { "$PY" "$XAPI_SERVER" call "$URL" "$SESSION" "$@"; }
POOL=$(xapi pool.get_all | sed -n 's/^OK \["\(.*\)"\]$/\1/p')
# what the pool held before vgpu: a stale claim, a key of someone else, a
# key that looks like a claim but is not one, a claim held by no uuid
xapi pool.add_to_other_config "$POOL" vgpu-vm-id-2.1 "$GONE" >/dev/null
xapi pool.add_to_other_config "$POOL" other-tool-key kept >/dev/null
xapi pool.add_to_other_config "$POOL" vgpu-vm-id-x.1 "$GONE" >/dev/null
xapi pool.add_to_other_config "$POOL" vgpu-vm-id-700.1 hand-written >/dev/null

# on HOST DOMID N: the domain DOMID of HOST runs VM N
on() { XENSTORED_PATH=$T/$1/xs.sock xenstore-write "/local/domain/$2/vm" "/vm/$(uuid "$3")"; }
# assign HOST DOMID: xe host-call-plugin host-uuid=<HOST> plugin=vgpu fn=assign
assign() {
    "$PY" "$XAPI_SERVER" call-plugin --host="$1" "$URL" "$SESSION" vgpu \
        assign "domid=$2" | decode
}
vmid_of() { sed -n 's/.* vm-id=\([0-9]*\)$/\1/p'; }
xs_vmid() { XENSTORED_PATH=$T/$1/xs.sock xenstore-read "/local/domain/$2/vgpu-mediator/vm-id" 2>/dev/null; }
oc() { # oc N KEY: the VM's other-config value in the server's state
    "$PY" -c 'import json,sys
print(json.load(open(sys.argv[1]))[sys.argv[2]]["other_config"].get(sys.argv[3], "<none>"))' \
        "$T/state.json" "$(uuid "$1")" "$2"
}
# pool_q WHAT [ARG]: the pool's claims, read from the server's state
#   current            "id=uuid" of each ID's highest generation, by id
#   keys               every claim key, sorted
#   id UUID            the IDs whose current claim UUID holds
#   other              the pool's keys that are no claims, "k=v"
pool_q() {
    "$PY" - "$T/pool.json" "$@" <<'EOF'
import json, re, sys
oc = json.load(open(sys.argv[1]))["pool"]["other_config"]
what = sys.argv[2]
cur = {}
for k, v in oc.items():
    m = re.fullmatch(r"vgpu-vm-id-([1-9][0-9]*)\.([1-9][0-9]*)", k)
    if m:
        i, g = int(m.group(1)), int(m.group(2))
        if i not in cur or cur[i][0] < g:
            cur[i] = (g, v)
if what == "current":
    print(" ".join("%d=%s" % (i, cur[i][1]) for i in sorted(cur)))
elif what == "keys":
    print(" ".join(sorted(k for k in oc if k.startswith("vgpu-vm-id-"))))
elif what == "id":
    print(" ".join(str(i) for i in sorted(cur) if cur[i][1] == sys.argv[3]))
elif what == "other":
    print(" ".join("%s=%s" % kv for kv in sorted(oc.items())
                   if not re.fullmatch(r"vgpu-vm-id-[1-9][0-9]*\.[1-9][0-9]*",
                                       kv[0])))
EOF
}

# ------------------------------------------ 18 VMs at once on three hosts
n=0
for h in $HOSTS; do
    for d in 5 6 7 8 9 10; do
        n=$((n + 1))
        on "$h" "$d" "$n"
    done
done
n=0
for h in $HOSTS; do
    for d in 5 6 7 8 9 10; do
        n=$((n + 1))
        assign "$h" "$d" >"$T/assign-$n.out" &
    done
done
wait_assigns() { # the plugin runs of this phase (the servers keep running)
    for p in $(jobs -p); do
        case " ${PIDS[*]} " in *" $p "*) ;; *) wait "$p" ;; esac
    done
}
wait_assigns

ids=() bad=0
for n in $(seq 1 18); do
    r=$(cat "$T/assign-$n.out")
    case $r in "OK domain "*) ;; *) bad=$((bad + 1)); echo "    vm$n: $r" ;; esac
    ids+=("$(printf '%s\n' "$r" | vmid_of)")
done
expect "18 assigns at once on three hosts all succeed" test $bad = 0
sorted=$(printf '%s\n' "${ids[@]}" | sort -n | tr '\n' ' ')
expect "18 different VM-IDs, packed from 1 (got $sorted)" \
    test "$sorted" = "$(seq 1 18 | tr '\n' ' ')"
mism=0
n=0
for h in $HOSTS; do
    for d in 5 6 7 8 9 10; do
        n=$((n + 1))
        u=$(uuid $n)
        [ "$(pool_q id "$u")" = "${ids[$((n - 1))]}" ] || { mism=$((mism + 1)); echo "    vm$n: pool claims $(pool_q id "$u"), answer ${ids[$((n - 1))]}"; }
        [ "$(oc $n vgpu-vm-id)" = "${ids[$((n - 1))]}" ] || { mism=$((mism + 1)); echo "    vm$n: other-config $(oc $n vgpu-vm-id)"; }
        [ "$(xs_vmid "$h" "$d")" = "${ids[$((n - 1))]}" ] || { mism=$((mism + 1)); echo "    vm$n: $h xenstore $(xs_vmid "$h" "$d")"; }
    done
done
expect "each VM's pool claim, other-config and host xenstore agree" test $mism = 0
holder2=$(pool_q current | tr ' ' '\n' | sed -n 's/^2=//p')
expect "the stale claim of VM-ID 2 (VM gone from xapi) was taken over" \
    test -n "$holder2" -a "$holder2" != "$GONE"
keys=$(pool_q keys)
want "... as generation 2, generation 1 dropped" \
    '(^| )vgpu-vm-id-2\.2( |$)' "$keys"
expect "... no vgpu-vm-id-2.1 left" \
    eval '! printf "%s\n" "$keys" | grep -Eq "(^| )vgpu-vm-id-2\.1( |$)"'
expect "keys that are no claims are left alone" \
    test "$(pool_q other)" = "other-tool-key=kept vgpu-vm-id-x.1=$GONE"
expect "a claim held by no uuid is never taken over" \
    test "$(pool_q current | tr ' ' '\n' | grep '^700=')" = "700=hand-written"

# ------------------------------------------------- the same VM elsewhere
v1=${ids[0]}
on h3 11 1
r=$(assign h3 11)
want "V1 started on another host (h3, domid 11) keeps its VM-ID $v1" \
    "vm-id=$v1\$" "$r"
on h1 12 1
r=$(assign h1 12)
want "... and back on h1 (domid 12): still $v1" "vm-id=$v1\$" "$r"
expect "... one claim for V1 in the pool" test "$(pool_q id "$(uuid 1)")" = "$v1"

# ------------------------------------------ two clones of V1, at once
ref_of() { xapi VM.get_by_uuid "$(uuid "$1")" | sed -n 's/^OK //p'; }
for n in 21 22; do
    xapi VM.remove_from_other_config "$(ref_of $n)" vgpu-vm-id >/dev/null
    xapi VM.add_to_other_config "$(ref_of $n)" vgpu-vm-id "$v1" >/dev/null
done
expect "clones carry their parent's vgpu-vm-id $v1" \
    test "$(oc 21 vgpu-vm-id) $(oc 22 vgpu-vm-id)" = "$v1 $v1"
on h2 11 21
on h3 12 22
assign h2 11 >"$T/c1.out" &
assign h3 12 >"$T/c2.out" &
wait_assigns
c1=$(vmid_of <"$T/c1.out") c2=$(vmid_of <"$T/c2.out")
expect "clones assigned at once on h2 and h3 get two new IDs ($c1 $c2)" \
    test "$(printf '%s\n%s\n' "$c1" "$c2" | sort -n | tr '\n' ' ')" = "19 20 "
expect "... written back to their other-config" \
    test "$(oc 21 vgpu-vm-id) $(oc 22 vgpu-vm-id)" = "$c1 $c2"
expect "... and the parent keeps $v1" test "$(pool_q id "$(uuid 1)")" = "$v1"

# --------------------------------------------------- a destroyed VM's ID
on h1 13 30
r=$(assign h1 13)
want "D gets the next ID, 21" "vm-id=21\$" "$r"
r=$(xapi VM.destroy "$(ref_of 30)")
expect "VM D destroyed in xapi ($r)" test "$r" = "OK "
on h2 12 31
r=$(assign h2 12)
want "a new VM gets the destroyed VM's ID 21" "vm-id=21\$" "$r"
keys=$(pool_q keys)
want "... claimed as vgpu-vm-id-21.2" '(^| )vgpu-vm-id-21\.2( |$)' "$keys"
expect "... vgpu-vm-id-21.1 dropped" \
    eval '! printf "%s\n" "$keys" | grep -Eq "(^| )vgpu-vm-id-21\.1( |$)"'

# ------------------------------------------------------------- imports
on h3 13 40
r=$(assign h3 13)
want "an imported VM keeps its VM-ID 500 when it is free" "vm-id=500\$" "$r"
on h3 14 41
r=$(assign h3 14)
want "an imported VM whose VM-ID 3 a live VM holds gets a new one, 22" \
    "vm-id=22\$" "$r"
expect "... and VM-ID 3 keeps its holder" \
    test "$(pool_q current | tr ' ' '\n' | grep -c "^3=")" = 1 -a \
    "$(pool_q id "$(uuid 41)")" = 22

# -------------------------------------- vgpu-vm-id changed by hand
v2=${ids[1]}
xapi VM.remove_from_other_config "$(ref_of 2)" vgpu-vm-id >/dev/null
xapi VM.add_to_other_config "$(ref_of 2)" vgpu-vm-id 600 >/dev/null
on h1 14 2
r=$(assign h1 14)
want "a VM whose vgpu-vm-id was set by hand to a free 600 gets it" \
    "vm-id=600\$" "$r"
expect "... and holds only 600 in the pool" test "$(pool_q id "$(uuid 2)")" = 600
on h2 13 32
r=$(assign h2 13)
want "its old ID $v2 is free for the next new VM" "vm-id=$v2\$" "$r"

# ------------------------------------------------------------- overall
dups=$(pool_q current | tr ' ' '\n' | sed 's/^[0-9]*=//' | sort | uniq -d)
expect "no VM holds two IDs, no ID two VMs (dups: '$dups')" test -z "$dups"
expect "no host keeps a host-local VM-ID registry" \
    test ! -e "$T/h1/state/vm-ids" -a ! -e "$T/h2/state/vm-ids" -a \
    ! -e "$T/h3/state/vm-ids"

# ------------------------------------- hosts publish what they serve
# h1 serves A (GPU 0) and B (GPU 1); h2 serves A; h3 serves C only.
printf 'A = 0\nB = 1\n' >"$T/h1/conf/pools.conf"
printf 'A\n' >"$T/h2/conf/pools.conf"
printf 'C\n' >"$T/h3/conf/pools.conf"
declare -A MED
for h in $HOSTS; do
    mkdir -p "$T/$h/qroot"
    gpus=1
    [ "$h" = h1 ] && gpus=2
    XENSTORED_PATH=$T/$h/xs.sock "$MEDIATOR" --qemu-root "$T/$h/qroot" \
        --log stderr --pools "$T/$h/conf/pools.conf" --backend cpu \
        --cpu-gpus $gpus --status-file "$T/$h/run/mediator.status" \
        --admin-socket none 2>"$T/med-$h.log" &
    MED[$h]=$!
    PIDS+=($!)
done
for h in $HOSTS; do
    for _ in $(seq 100); do
        grep -q "^pool " "$T/$h/run/mediator.status" 2>/dev/null && break
        sleep 0.1
    done
done
# publish HOST [ARG]: vgpu-publish as HOST's timer runs it (PUB_RUN: the
# run folder with the mediator's status file, default HOST's run)
publish() {
    env XENSTORED_PATH="$T/$1/xs.sock" VGPU_RUN_DIR="${PUB_RUN:-$T/$1/run}" \
        VGPU_CONF_DIR="$T/$1/conf" VGPU_STATE_DIR="$T/$1/state" \
        VGPU_INVENTORY="$T/$1/inventory" VGPU_XAPI_URL="$URL" \
        "$PUBLISH" "${@:2}"
}
host_oc() { # host_oc HOST: the host's vgpu keys, "k=v;..." sorted
    "$PY" -c 'import json,sys
h = [h for h in json.load(open(sys.argv[1]))["hosts"] if h["name_label"] == sys.argv[2]][0]
print(";".join("%s=%s" % kv for kv in sorted(h["other_config"].items())
               if kv[0].startswith("vgpu-")))' "$T/pool.json" "$1"
}
for h in $HOSTS; do
    r=$(publish $h 2>&1)
    expect "vgpu-publish on $h: $r" test $? = 0
done
v=$(host_oc h1)
expect "h1 publishes pools A and B with one GPU each, and its mediator ($v)" \
    test "$v" = "vgpu-mediator=backend=cpu;vgpu-pool-A=gpus=1 mem-mb=$(
        sed -n 's/^pool A gpus=1 mem-mb=\([0-9]*\) .*/\1/p' "$T/h1/run/mediator.status"
    ) vms=0;vgpu-pool-B=gpus=1 mem-mb=$(
        sed -n 's/^pool B gpus=1 mem-mb=\([0-9]*\) .*/\1/p' "$T/h1/run/mediator.status"
    ) vms=0"
want "h2 publishes pool A only" '^vgpu-mediator=backend=cpu;vgpu-pool-A=gpus=1 mem-mb=[0-9]+ vms=0$' "$(host_oc h2)"
want "h3 publishes pool C only" '^vgpu-mediator=backend=cpu;vgpu-pool-C=gpus=1 ' "$(host_oc h3)"
r=$(publish h1)
want "publishing again changes nothing" "\(0 key\(s\) changed\)" "$r"

# placement: the vm-pre-start hook, as xenopsd runs it on the host where
# the VM is to start
pre_start() { # pre_start HOST N: prints the hook's stdout, then its exit
    local out rc
    out=$(env XENSTORED_PATH="$T/$1/xs.sock" VGPU_RUN_DIR="$T/$1/run" \
        VGPU_CONF_DIR="$T/$1/conf" VGPU_STATE_DIR="$T/$1/state" \
        VGPU_INVENTORY="$T/$1/inventory" VGPU_XAPI_URL="$URL" \
        "$PRE_START" -vmuuid "$(uuid "$2")" -reason none 2>/dev/null)
    rc=$?
    printf '%s\nexit %s\n' "$out" "$rc"
}
xapi VM.remove_from_other_config "$(ref_of 32)" vgpu-pool >/dev/null
xapi VM.add_to_other_config "$(ref_of 32)" vgpu-pool B >/dev/null
r=$(pre_start h3 32)
want "a VM of pool B started on h3 is refused at once (exit 2)" "^exit 2$" "$r"
want "... naming the host that serves pool B" \
    "this host does not serve vgpu pool 'B' .*; h1 of the pool serves it: start the VM there" "$r"
r=$(pre_start h3 3)
want "a VM of pool A on h3: refused, naming h1 and h2" \
    "h1, h2 of the pool serve it" "$r"
xapi VM.remove_from_other_config "$(ref_of 32)" vgpu-pool >/dev/null
xapi VM.add_to_other_config "$(ref_of 32)" vgpu-pool Z >/dev/null
r=$(pre_start h3 32)
want "a pool no host serves: the old rule (not required: starts without the device)" \
    "^exit 0$" "$r"

# the mediator stops: its keys go
kill "${MED[h2]}"
wait "${MED[h2]}" 2>/dev/null
r=$(publish h2)
want "h2's mediator gone: vgpu-publish withdraws ($r)" "withdrawn" "$r"
expect "... h2 has no vgpu keys left" test -z "$(host_oc h2)"
r=$(pre_start h3 3)
want "... and pool A is now named as served by h1 only" "; h1 of the pool serves it" "$r"
r=$(publish h1 --withdraw)
expect "vgpu-publish --withdraw (the unit's ExecStopPost) removes h1's keys" \
    test -z "$(host_oc h1)"
expect "other hosts' keys are not touched by a withdraw" test -n "$(host_oc h3)"
r=$(publish h1 --bogus 2>&1); rc=$?
expect "vgpu-publish: a bad argument exits 2" test $rc = 2

# ------------------------------------- v3 VMs are kept from moving
# The status file as the mediator writes it (mediator.c; its cuda=N is
# pinned by e2e test-cuda) for a CUDA backend on h1: domain 12 (VM 50)
# holds two CUDA contexts, domain 13 (VM 51) none.  pid=$$: a live process.
mkdir -p "$T/h1/run-cuda"
cuda_status() { # cuda_status N: domain 12 holds N contexts
    printf 'mediator pid=%d backend=cuda qemu-root=/var/xen/qemu\ndomain 12 pool=A priority=high vm-id=1 device=connected cuda=%d\ndomain 13 pool=A priority=high vm-id=2 device=connected cuda=0\ndomain 14 pool=A priority=low vm-id=3 device=waiting cuda=0\npool A gpus=1 mem-mb=81559 vms=3\n' \
        $$ "$1" >"$T/h1/run-cuda/mediator.status"
}
publish_cuda() { PUB_RUN=$T/h1/run-cuda publish h1 "$@"; }
bo() { # bo N: VM N's blocked operations, "op=reason;..." sorted
    "$PY" -c 'import json,sys
v = json.load(open(sys.argv[1]))[sys.argv[2]].get("blocked_operations", {})
print(";".join("%s=%s" % kv for kv in sorted(v.items())))' "$T/state.json" "$(uuid "$1")"
}
resident() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]].get("resident_on"))' "$T/state.json" "$(uuid "$1")"; }
H1=$(xapi host.get_by_uuid "$(host_uuid 1)" | sed -n 's/^OK //p')
H2=$(xapi host.get_by_uuid "$(host_uuid 2)" | sed -n 's/^OK //p')
REASON="vgpu: the VM holds CUDA state (contexts, device memory, modules) on the GPU of host h1, which cannot move with it: end the VM's CUDA programs, then retry"
cuda_status 2
r=$(publish_cuda)
want "vgpu-publish on h1: one VM with CUDA state kept from moving ($r)" \
    "1 VM\(s\) with CUDA state kept from moving \(4 block\(s\) changed\)" "$r"
expect "VM 50 (domain 12, 2 CUDA contexts): pool_migrate, migrate_send, suspend, checkpoint blocked, with the reason ($(bo 50))" \
    test "$(bo 50)" = "checkpoint=$REASON;migrate_send=$REASON;pool_migrate=$REASON;suspend=$REASON"
expect "VM 51 (no CUDA context): nothing blocked" test -z "$(bo 51)"
expect "VM 52 (domain 12 of h2, not h1's): nothing blocked" test -z "$(bo 52)"
expect "VM 53: its admin's block alone" test "$(bo 53)" = "suspend=maintenance"
# vgpu-pre-move, xenopsd's vm-pre-migrate / vm-pre-suspend hook
# (xenops_hooks.ml: -vmuuid U -reason R -vmdomid D; exit 2 refuses), for
# the second before the blocks land: it reads the status file alone.
pre_move() { # pre_move DOMID [RUN_DIR]: the hook's stdout, then its exit
    local out rc
    out=$(env VGPU_RUN_DIR="${2:-$T/h1/run-cuda}" "$BUILD/xapi-plugin/vgpu-pre-move" \
        -vmuuid "$(uuid 50)" -reason source -vmdomid "$1" 2>/dev/null)
    rc=$?
    printf '%s\nexit %s\n' "$out" "$rc"
}
r=$(pre_move 12)
want "vgpu-pre-move: domain 12 holds 2 CUDA contexts: refused (exit 2), saying why" \
    "^vgpu: VM $(uuid 50): domain 12 holds CUDA state \(2 context\(s\).*exit 2$" "$(tr '\n' ' ' <<<"$r" | sed 's/ $//')"
r=$(pre_move 13)
want "vgpu-pre-move: domain 13 holds none: goes ahead (exit 0)" "^exit 0$" "$r"
mkdir -p "$T/h1/run-stale"
sh -c 'exit 0' &
dead=$!
wait $dead
sed "s/^mediator pid=[0-9]*/mediator pid=$dead/" "$T/h1/run-cuda/mediator.status" \
    >"$T/h1/run-stale/mediator.status"
r=$(pre_move 12 "$T/h1/run-stale")
want "vgpu-pre-move: the status file of a mediator that died (cuda=2 in it): goes ahead" "^exit 0$" "$r"
r=$(env VGPU_RUN_DIR="$T/h1/run-cuda" "$BUILD/xapi-plugin/vgpu-pre-move" -vmuuid x -reason source 2>/dev/null; echo "exit $?")
want "vgpu-pre-move: no -vmdomid: goes ahead" "^exit 0$" "$r"
for bad in abc 12x -12 0 ""; do
    r=$(env VGPU_RUN_DIR="$T/h1/run-cuda" "$BUILD/xapi-plugin/vgpu-pre-move" -vmuuid x -reason source -vmdomid "$bad" 2>/dev/null; echo "exit $?")
    want "vgpu-pre-move: -vmdomid '$bad' is no domid to judge: goes ahead, refuses nothing" "^exit 0$" "$r"
done
r=$(xapi VM.pool_migrate "$(ref_of 50)" "$H2" 'json:{"live": "true"}')
want "xe vm-migrate of VM 50: OPERATION_BLOCKED with the reason, before anything moves" \
    "^FAILURE \[\"OPERATION_BLOCKED\", \"$(ref_of 50)\", \"vgpu: the VM holds CUDA state" "$r"
r=$(xapi host.evacuate "$H1")
want "xe host-evacuate of h1: says which VM blocks and why" \
    "^FAILURE \[\"OPERATION_BLOCKED\", \"$(ref_of 50)\", \"vgpu: " "$r"
expect "... and no VM of h1 moved" test "$(resident 51)" = h1 -a "$(resident 53)" = h1
r=$(publish_cuda)
want "publishing again changes no block" "\(0 block\(s\) changed\)" "$r"
r=$(publish_cuda --withdraw)
want "the mediator stops (--withdraw): the blocks are lifted ($r)" "4 block\(s\) lifted" "$r"
expect "... VM 50 may move again; VM 53 keeps its admin's block" \
    test -z "$(bo 50)" -a "$(bo 53)" = "suspend=maintenance"
cuda_status 1
publish_cuda >/dev/null
expect "CUDA state again: blocked again" test -n "$(bo 50)"
cuda_status 0
r=$(publish_cuda)
want "the VM's CUDA programs end (cuda=0): its blocks are lifted ($r)" \
    "0 VM\(s\) with CUDA state kept from moving \(4 block\(s\) changed\)" "$r"
r=$(xapi VM.pool_migrate "$(ref_of 50)" "$H2" 'json:{"live": "true"}')
want "... and xe vm-migrate goes ahead" "^OK" "$r"
expect "... VM 50 is resident on h2" test "$(resident 50)" = h2
r=$(xapi host.evacuate "$H1")
want "xe host-evacuate of h1 goes ahead (a suspend block does not stop it)" "^OK" "$r"
expect "... VMs 51 and 53 left h1" test "$(resident 51)" != h1 -a "$(resident 53)" != h1

# ------------------------------------- vgpu-pool: the pool's view and moves
VGPU_POOL=$BUILD/xapi-plugin/vgpu-pool
vpool() { VGPU_XAPI_URL="$URL" "$VGPU_POOL" "$@"; }
# h2 serves pool A again (a status as its mediator writes it, pid alive)
mkdir -p "$T/h2/run-again"
printf 'mediator pid=%d backend=cpu qemu-root=/var/xen/qemu\npool A gpus=1 mem-mb=0 vms=0\n' $$ \
    >"$T/h2/run-again/mediator.status"
PUB_RUN=$T/h2/run-again publish h2 >/dev/null
cuda_status 0
publish_cuda >/dev/null
r=$(vpool status 2>&1); rc=$?
expect "vgpu-pool status: exit 0" test $rc = 0
want "... h1 serves pool A (its published capacity)" "^host h1: pool A \(gpus=1 mem-mb=81559 vms=3\)$" "$r"
want "... h3 serves pool C" "^host h3: pool C \(gpus=1 " "$r"
want "... each host's mediator status, through host.call_plugin fn=status" \
    "^    mediator pid=${MED[h3]} backend=cpu" "$r"
want "... the vgpu VMs: VM 64 of pool C running on h3" \
    "^  vm64 \($(uuid 64)\): pool C, VM-ID none yet, Running on h3$" "$r"
want "... a halted one" "^  vm60 \($(uuid 60)\): pool A, VM-ID none yet, Halted$" "$r"
expect "... and no VM without vgpu-pool" bash -c '! grep -q "vm63\|vm65" <<<"$0"' "$r"
r=$(vpool start "$(uuid 60)" 2>&1); rc=$?
want "vgpu-pool start: VM 60 of pool A goes to h2, of the two serving A the one with fewer VMs" \
    "^VM $(uuid 60): started on h2, which serves vgpu pool A$" "$r"
expect "... exit 0, and xapi has it running on h2" test $rc = 0 -a "$(resident 60)" = h2
r=$(vpool start "$(uuid 61)" 2>&1)
want "vgpu-pool start: VM 61 of pool C goes to h3" "started on h3" "$r"
r=$(vpool start "$(uuid 62)" 2>&1); rc=$?
want "vgpu-pool start: a pool no host publishes is refused, saying so (exit 1)" \
    "no host of the pool publishes vgpu pool 'Q'" "$r"
expect "... exit 1" test $rc = 1
r=$(vpool start "$(uuid 63)" 2>&1); rc=$?
want "vgpu-pool start: a VM without vgpu-pool is not ours to place (exit 1)" "not a vgpu VM" "$r"
r=$(vpool start "$(uuid 60)" 2>&1); rc=$?
want "vgpu-pool start of a running VM: xapi's VM_BAD_POWER_STATE (exit $rc)" "VM_BAD_POWER_STATE" "$r"
r=$(vpool evacuate h3 2>&1); rc=$?
want "vgpu-pool evacuate h3: VM 64's pool C has no other host: it blocks, named" \
    "VM vm64 blocks: no host but h3 serves its vgpu pool 'C'" "$r"
want "... nothing moved (exit $rc)" "nothing was moved" "$r"
expect "... VM 65 (no vgpu) still on h3 too" test "$(resident 65)" = h3 -a $rc = 1
r=$(vpool evacuate h2 2>&1); rc=$?
want "vgpu-pool evacuate h2: each vgpu VM moves to h1, which serves pool A" \
    "^VM vm60: moved to h1$" "$r"
want "... then host.evacuate for the rest" "^host h2: evacuated \(5 vgpu VM\(s\) moved" "$r"
expect "... exit 0; VMs 50 to 53 and 60 on h1" \
    test $rc = 0 -a "$(resident 50)$(resident 51)$(resident 52)$(resident 53)$(resident 60)" = h1h1h1h1h1
cuda_status 2
publish_cuda >/dev/null
r=$(vpool evacuate "$(host_uuid 1)" 2>&1); rc=$?
want "vgpu-pool evacuate h1 (by uuid): VM 50 holds CUDA state: it blocks, with the reason" \
    "VM vm50 blocks: vgpu: the VM holds CUDA state" "$r"
expect "... nothing moved (exit 1)" test $rc = 1 -a "$(resident 51)" = h1
r=$(vpool status 2>&1)
want "vgpu-pool status shows it" "^  vm50 .*Running on h1, holds CUDA state: kept on its host$" "$r"
r=$(vpool start 00000000-0000-4000-8000-00000000beef 2>&1); rc=$?
want "vgpu-pool start of a VM xapi does not know: UUID_INVALID, exit $rc" "no VM .*UUID_INVALID" "$r"
expect "... exit 1" test $rc = 1
r=$(vpool evacuate no-such-host 2>&1); rc=$?
want "vgpu-pool evacuate of a host the pool does not have: said, exit $rc" \
    "no host of the pool has uuid or name 'no-such-host'" "$r"
expect "... exit 1" test $rc = 1
r=$(vpool start 2>&1); rc=$?
expect "vgpu-pool start without a VM: usage, exit 2" test $rc = 2
r=$(vpool --help); rc=$?
expect "vgpu-pool --help: exit 0, usage" test $rc = 0 -a -n "$(grep '^usage: vgpu-pool status' <<<"$r")"
vpool bogus >/dev/null 2>&1; rc=$?
expect "vgpu-pool with a bad command: exit 2" test $rc = 2

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
