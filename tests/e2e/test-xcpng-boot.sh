#!/bin/bash
# test-xcpng-boot.sh - end to end: VMs start the way xenopsd starts them on
# XCP-ng, through OUR qemu-dm wrapper and then XCP-ng's REAL stock
# qemu-wrapper, deprivileged, and compute.
#
# The harness plays xenopsd: xenstore holds /local/domain/<domid>/vm for
# each domain (the xenstore server speaks the real wire protocol, with
# permissions), a test XenAPI server holds the VMs' other-config, and each
# VM is started as
#
#     vgpu-qemu-wrapper <domid> --syslog <xenopsd's argv>
#
# with the argument list xenopsd's xc/device.ml builds for an HVM guest of
# the default profile qemu-upstream-compat (BIOS: -trad-compat and its
# -global lines; -vnc on /var/run/xen; two QMP sockets; xen-platform at
# addr=3; one rtl8139 NIC at addr=4 on a tap fd that the harness opens;
# -S; no emulated disks: the guest boots the test kernel).  Our wrapper
# assigns the VM and execs the real stock wrapper from the fixtures
# ($VGPU_XCPNG_FIXTURES, default ../shared/fixtures/xcpng; 8.3's with
# python3 for dom1 and dom2, 8.2's with Python 2 for dom3 when a Python 2
# runs here, else 8.3's again and a NOTE says so) through
# tests/e2e/xcpng/stock-wrapper, which gives it, in a private mount
# namespace, the dom0 paths it hard-codes (nothing on the host changes: a
# missing mount point is made in an overlay, in the namespace only) and a
# xen.lowlevel.xs that speaks to the test xenstore server
# (tests/e2e/xcpng/pyxs).  The stock wrapper builds QEMU's argv (the VGA card
# at addr=2 after everything it got, -chroot, -runas, ...) and runs
# /usr/lib64/xen/bin/qemu-system-i386: there tests/e2e/xcpng/xen-qemu-tcg
# translates only the Xen-only options for TCG and execs $VGPU_QEMU.  The
# translations (xen-qemu-tcg's header has the details; this log shows each
# one applied, and a check fails on any other):
#   T1  -machine: accel=xen -> tcg, allow-unassigned= and trad_compat=
#       dropped, pc-0.10 -> pc-i440fx-2.10
#   T2  -xen-domid N, -xen-domid-restrict dropped
#   T3  -device xen-platform,addr=3,... -> -device pci-testdev,addr=3
#   T4  XCP-ng's subvendor_id=/subsystem_id=/revision_id= properties and
#       -global piix3-ide-xen.* dropped
#   T5  -netdev tap,id=X,fd=N -> -netdev hubport,id=X,hubid=0
#   T6  -vnc-clipboard-socket-fd N dropped
#   T7  -vnc dropped when $VGPU_QEMU has no VNC
#   T8  -sandbox dropped when $VGPU_QEMU has no seccomp
#   T9  LD_PRELOAD entries missing here (8.2's jemalloc 1) dropped
#   T10 romfile= added to the NIC when its iPXE ROM is not installed
# plus -L firmware, -no-reboot and -kernel/-initrd/-append for the boot.
# Then, as xenopsd: wait for qmp-event-<domid>, read the serial pty with
# query-chardev (xenstore serial/0/tty), `cont` the paused QEMU.
#
# Two qemu-dm binaries, as on a host with qemu-dm-vgpu (docs/xcp-ng.md):
# XCP-ng's at the stock wrapper's path (xen-qemu-tcg, which stock-wrapper
# grafts there) and ours ($VGPU_QEMU_DM: tests/e2e/xcpng/vgpu-qemu-dm, with
# its .xcpng-release naming XCP-ng 8.3's qemu release, the fixture spec's).
# Our wrapper bind-mounts ours over the stock path, in the VM's own mount
# namespace, for the VMs with a vgpu pool only; xen-qemu-tcg records which
# one the REAL stock wrapper ran (qemu-which<domid>).  An rpm database
# ($VGPU_RPM_DBPATH) holds XCP-ng's qemu at its next release
# (tests/lib/xcpng-qemu-rpm.sh, --justdb): the skew is logged at each vgpu
# VM's start, and the plugin's status and vgpu-smi show it.
#
# The PCI slots are checked in QEMU (query-pci, before `cont`) and in the
# guest: VGA card in slot 2, xen-platform (its stand-in) in 3, the NIC in 4,
# vgpu-stub in the slot our wrapper asked for (addr= of our -device) and in
# none of those.  A vgpu-stub without addr= takes slot 2 first and QEMU
# refuses the VGA card: the VMs then do not start and this test fails.
#
#   dom1 "gpu-high": vgpu-pool=A vgpu-priority=high -> 100 + 200 = 300 (cirrus)
#   dom2 "plain":    no vgpu-pool                   -> starts exactly as before
#   dom3 "gpu-low":  vgpu-pool=B vgpu-priority=low  -> 400 + 500 = 900 (std-vga)
#   dom4 "gpu-must": vgpu-pool=C vgpu-required=true -> refused; xenopsd's
#                    start sequence (xenopsd-qmp start) fails at once with
#                    "QMP failure", not after its 300 s timeout
#   dom5 "gpu-named": vgpu-pool=gpu-pool.1 (pools.conf lists it, for the
#                    plugin and the mediator alike) -> the guest's
#                    vgpu-client --info shows "gpu-pool.1"; 2 + 40 = 42
#   dom6 "gpu-nobin": vgpu-pool=A, our qemu-dm missing -> starts on XCP-ng's
#                    qemu-dm without the device, the wrapper says so
#   dom7 "gpu-must-plain": vgpu-pool=A vgpu-required=true, our qemu-dm lacks
#                    vgpu-stub -> refused at once (QMP failure), saying so
#   dom8 "gpu-high" resumed: dom1 suspended with a request in flight (its
#                    qemu-dm stopped and its state saved, the domain
#                    destroyed) and resumed as domain 8 through both
#                    wrappers with xenopsd's -loadvm, which the stock
#                    wrapper turns into -incoming fd:N: the same VM-ID, the
#                    request sent again, the guest's loop ends all right
#
# Needs, besides what lib.sh needs: QEMU built with cirrus-vga, VGA,
# piix3-usb-uhci, rtl8139, isa-debugcon, isa-parallel and pci-testdev
# (CONFIG_VGA_CIRRUS, VGA_PCI, USB_UHCI, RTL8139_PCI, ISA_DEBUG, PARALLEL,
# PCI_TESTDEV), unshare(1), overlayfs and root (mount namespaces).
set -u
. "$(dirname "$0")/lib.sh"

XCPNG=$E2E_DIR/xcpng
FIXTURES=${VGPU_XCPNG_FIXTURES:-$TOP/../shared/fixtures/xcpng}
UID_BASE=60000
TAP_FD=9 # each VM's NIC "tap": xenopsd passes fd=N (xcpng_start opens 9)
SESSION=OpaqueRef:e2e-session
U1=11111111-1111-4111-8111-111111111111
U2=22222222-2222-4222-8222-222222222222
U3=33333333-3333-4333-8333-333333333333
U4=44444444-4444-4444-8444-444444444444
U5=55555555-5555-4555-8555-555555555555
U6=66666666-6666-4666-8666-666666666666
U7=77777777-7777-4777-8777-777777777777
PY=$(command -v python3)
RUN_XEN=$W/run-xen # /var/run/xen in the stock wrapper's namespace
MMIO_HOLE=536870912 # vm-data/mmio-hole-size for dom1 and dom3 (xenguest's key)

# What xenopsd passes to the qemu-dm wrapper after "DOMID --syslog" for an
# HVM guest (xc/device.ml: Dm_Common.qemu_args, then Make_qemu_upstream's
# misc, disks, pv device and NICs; profile qemu-upstream-compat).
# xenopsd_args DOMID cirrus|std
xenopsd_args() {
    local d=$1 vga=$2 dev
    if [ "$vga" = std ]; then
        echo "-std-vga -videoram 8"
    else
        echo "-videoram 4"
    fi
    echo "-vnc unix:/var/run/xen/vnc-$d,lock-key-sync=off -acpi -monitor null"
    echo "-pidfile /var/run/xen/qemu-dm-$d.pid -xen-domid $d -m size=256"
    echo "-boot order=cdn -usb -device usb-tablet,port=2 -smp 1,maxcpus=1"
    echo "-serial pty -display none -nodefaults -trace enable=xen_platform_log"
    echo "-sandbox on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny"
    echo "-S -trad-compat -global PIIX4_PM.revision_id=0x1 -global ide-hd.ver=0.10.2"
    for dev in piix3-ide-xen piix3-usb-uhci rtl8139; do
        echo "-global $dev.subvendor_id=0x5853 -global $dev.subsystem_id=0x0001"
    done
    echo "-parallel null"
    echo "-qmp unix:/var/run/xen/qmp-libxl-$d,server,nowait"
    echo "-qmp unix:/var/run/xen/qmp-event-$d,server,nowait"
    echo "-device xen-platform,addr=3,device-id=0x0001,revision=0x2,class-id=0x0100,subvendor_id=0x5853,subsystem_id=0x0001"
    echo "-device rtl8139,netdev=tapnet0,mac=00:16:3e:00:00:0$d,addr=4"
    echo "-netdev tap,id=tapnet0,fd=$TAP_FD"
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

# plugin FN [k=v...]: call the plugin as xapi does and decode its answer as
# XenAPIPlugin.py writes it: {Status: "Success", Value: "<string>"} sets OUT
# to the string; {Status: "Failure", ErrorDescription: [...]} sets OUT to
# "FAILURE <code> <params...>"; an XML-RPC fault to "FAULT <code> <string>";
# anything else (a bare string included) to "BAD ANSWER: <raw>".  RC is the
# plugin's exit status, or 99 for a bad answer.
plugin() {
    local raw
    raw=$("$VGPU_BUILD/xapi-plugin/vgpu" "$(mcall "$@")" 2>/dev/null)
    RC=$?
    OUT=$("$PY" -c '
import sys, xmlrpc.client as x
try:
    (r,), _ = x.loads(sys.argv[1])
except x.Fault as f:
    print("FAULT", f.faultCode, f.faultString); sys.exit(0)
except Exception:
    sys.exit(1)
if isinstance(r, dict) and set(r) == {"Status", "Value"} \
        and r["Status"] == "Success" and isinstance(r["Value"], str):
    sys.stdout.write(r["Value"])
elif isinstance(r, dict) and set(r) == {"Status", "ErrorDescription"} \
        and r["Status"] == "Failure" and isinstance(r["ErrorDescription"], list) \
        and all(isinstance(s, str) for s in r["ErrorDescription"]):
    print("FAILURE", " ".join(r["ErrorDescription"]))
else:
    sys.exit(1)' "$raw") || {
        OUT="BAD ANSWER: $raw"
        RC=99
    }
}

# ------------------------------------------------------------ helpers

# pci_has DOMID "SS.F VVVV:DDDD": QEMU's query-pci listed that function.
pci_has() { grep -qx -- "$2" "$W/pci$1"; }
# pci_slot_of DOMID VVVV:DDDD: the slots holding that device.
pci_slot_of() { sed -n "s/^\([0-9a-f]*\)\.[0-9a-f] $2\$/\1/p" "$W/pci$1"; }
# argv_line DOMID REGEX: the first line number of qemu-argvD matching.
argv_line() { grep -n -m1 -- "$2" "$W/qemu-argv$1" | cut -d: -f1; }
# argv_pair DOMID OPT VALUE: the wrapper passed "OPT VALUE" to QEMU.
argv_pair() { grep -A1 -x -- "$2" "$W/qemu-argv$1" | grep -qx -- "$3"; }
# syslog_of DOMID: what QEMU of that domain printed (through logger).
syslog_of() { grep -a " qemu-dm-$1\[" "$W/syslog" 2>/dev/null; }
# hexslot S: a slot as two lowercase hex digits ("0x1f" -> 1f, "5" -> 05).
hexslot() { printf '%02x' "$((16#${1#0x}))"; }
# addrs FILE: the addr= of every -device in an argv file, sorted.
addrs() { grep -A1 -x -- -device "$1" | tr , '\n' | sed -n 's/^addr=//p' | sort; }
# deprivileged DOMID: QEMU got -chroot /var/xen/qemu/root-D -runas U:G.
deprivileged() {
    argv_pair "$1" -chroot "/var/xen/qemu/root-$1" &&
        argv_pair "$1" -runas "$((UID_BASE + $1)):$((UID_BASE + $1))"
}
# before LINE LINE: both set, the first one smaller.
before() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" -lt "$2" ]; }
# in_all_vms "SS.F VVVV:DDDD": query-pci listed it in dom1, dom2 and dom3.
in_all_vms() { pci_has 1 "$1" && pci_has 2 "$1" && pci_has 3 "$1"; }
# stub_slot_ok SLOT ASKED: the device has a slot, not 2, 3 or 4, and the
# one our wrapper asked for (addr= of its -device) when it asked.
stub_slot_ok() {
    [ -n "$1" ] && [ "$1" != 02 ] && [ "$1" != 03 ] && [ "$1" != 04 ] &&
        { [ -z "$2" ] || [ "$1" = "$(hexslot "$2")" ]; }
}

# xcpng_start DOMID STOCK PYTHON cirrus|std: start the VM as xenopsd does.
xcpng_start() {
    local d=$1 stock=$2 py=$3 vga=$4 fd
    mkfifo "$W/vm$d.in"
    exec {fd}<>"$W/vm$d.in"
    VM_FD[$d]=$fd
    : >"$W/vm$d.log"
    # shellcheck disable=SC2046 # one word per argument, as xenopsd passes
    VGPU_E2E_STOCK=$stock VGPU_E2E_PYTHON=$py VGPU_E2E_ARGS_LOG=$W/args$d \
        "$XCPNG/stock-wrapper" --xenopsd \
        "$VGPU_BUILD/xapi-plugin/vgpu-qemu-wrapper" "$d" --syslog \
        $(xenopsd_args "$d" "$vga") ${XENOPSD_EXTRA:-} \
        </dev/null >"$W/wrapper$d.log" 2>&1 9<>/dev/null &
    VM_PID[$d]=$!
}

# Stop what the stock wrapper started (QEMU is not our child: it is the
# wrapper's, which became logger), then lib.sh's clean-up.
xcpng_cleanup() {
    local f pid
    for f in "$RUN_XEN"/qemu-dm-*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f" 2>/dev/null)
        [ -n "$pid" ] && kill "$pid" 2>/dev/null
    done
    e2e_cleanup
}
trap xcpng_cleanup EXIT

# ------------------------------------------------------------ dom0 set-up
[ -f "$FIXTURES/xenopsd-8.3/qemu-wrapper" ] ||
    die "no stock wrapper in $FIXTURES (set VGPU_XCPNG_FIXTURES)"
OUT=$("$VGPU_QEMU" -device help 2>&1)
for dev in cirrus-vga VGA piix3-usb-uhci rtl8139 isa-debugcon isa-parallel pci-testdev; do
    grep -q "name \"$dev\"" <<<"$OUT" ||
        die "$VGPU_QEMU has no $dev device, which XCP-ng's argv needs (build QEMU with CONFIG_VGA_CIRRUS, VGA_PCI, USB_UHCI, RTL8139_PCI, ISA_DEBUG, PARALLEL, PCI_TESTDEV)"
done

# The 8.2 wrapper needs a Python 2.
PY2=
for c in ${VGPU_PYTHON2:-} python2.7 python2 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/2.7*/bin/python2.7; do
    if "$c" -c 'import sys, ctypes; sys.exit(sys.version_info[0] != 2)' 2>/dev/null; then
        PY2=$(command -v "$c")
        break
    fi
done
if [ -n "$PY2" ]; then
    STOCK3=8.2 PYSTOCK3=$PY2
    log "dom3 runs XCP-ng 8.2's stock wrapper with $PY2"
else
    STOCK3=8.3 PYSTOCK3=
    log "NOTE: no Python 2 here (python2.7, python2, pyenv 2.7; or set VGPU_PYTHON2):" \
        "dom3 runs 8.3's stock wrapper too, XCP-ng 8.2's is NOT tested"
fi

e2e_build_initramfs
xs_start 1 2 3
for d in 1 2 3 4 5 6 7 8; do
    u=U$d
    [ $d = 8 ] && u=U1 # dom1's VM again, resumed
    xenstore-write "/local/domain/$d/vm" "/vm/${!u}" ||
        die "xenstore-write /local/domain/$d/vm"
done
for d in 1 3 8; do
    xenstore-write "/local/domain/$d/vm-data/mmio-hole-size" "$MMIO_HOLE" ||
        die "xenstore-write mmio-hole-size"
done
cat >"$W/vms.json" <<EOF
{"$U1": {"name_label": "gpu-high", "domid": "1",
         "other_config": {"vgpu-pool": "A", "vgpu-priority": "high"}},
 "$U2": {"name_label": "plain", "domid": "2", "other_config": {}},
 "$U3": {"name_label": "gpu-low", "domid": "3",
         "other_config": {"vgpu-pool": "B", "vgpu-priority": "low"}},
 "$U4": {"name_label": "gpu-must", "domid": "4",
         "other_config": {"vgpu-pool": "C", "vgpu-required": "true"}},
 "$U5": {"name_label": "gpu-named", "domid": "5",
         "other_config": {"vgpu-pool": "gpu-pool.1"}},
 "$U6": {"name_label": "gpu-nobin", "domid": "6",
         "other_config": {"vgpu-pool": "A"}},
 "$U7": {"name_label": "gpu-must-plain", "domid": "7",
         "other_config": {"vgpu-pool": "A", "vgpu-required": "true"}}}
EOF
"$PY" "$VGPU_BUILD/xapi/xapi-server.py" --vms "$W/vms.json" \
    --state "$W/xapi-state.json" --unix "$W/xapi.sock" --session "$SESSION" \
    >"$W/xapi.out" 2>"$W/xapi.log" &
EXTRA_PIDS+=($!)
wait_until 10 grep -qs ready "$W/xapi.out" || die "XenAPI test server did not start"

# xen.lowlevel.xs, each call the wrapper makes, under each Python that
# runs a wrapper here (the wrapper's own use is checked further down).
for py in "$PY" $PY2; do
    OUT=$(PYTHONPATH=$XCPNG/pyxs PYTHONDONTWRITEBYTECODE=1 DOM1=$W/xenstored-dom1.sock "$py" -c '
from __future__ import print_function
import errno, os, sys
import xen.lowlevel.xs as xs
h = xs.xs()
h.write("", "/local/domain/1/xs-check/a", "12")
r = [h.read("", "/local/domain/1/xs-check/a"), h.read("", "/local/domain/1/xs-check/none"),
     h.ls("", "/local/domain/1/xs-check"), h.ls("", "/local/domain/1/none")]
os.environ["XENSTORED_PATH"] = os.environ["DOM1"]
try:
    xs.xs().write("", "/local/domain/1/xs-check/a", "13")
    r.append("written")
except xs.Error as e:
    r.append((isinstance(e, RuntimeError), e.args[0] == errno.EACCES))
h.close()
print(sys.version_info[0], repr(r).replace("u\x27", "\x27"))' 2>&1)
    RC=$?
    v=$("$py" -c 'import sys; print(sys.version_info[0])')
    if [ "$v" = 3 ]; then want="3 [b'12', None, ['a'], None, (True, True)]"; else want="2 ['12', None, ['a'], None, (True, True)]"; fi
    check "xen.lowlevel.xs (Python $v): read, missing node, ls, refused write" is "$want"
done
xenstore-rm /local/domain/1/xs-check

export VGPU_XAPI_URL=unix:$W/xapi.sock VGPU_CONF_DIR=$W/etc-vgpu \
    VGPU_STATE_DIR=$W/var-lib-vgpu VGPU_RUN_DIR=$W/run-vgpu \
    VGPU_STOCK_WRAPPER=$XCPNG/stock-wrapper VGPU_LOG_STDERR=1
export VGPU_XCPNG_FIXTURES=$FIXTURES VGPU_E2E_QROOT=$QROOT \
    VGPU_E2E_RUN_XEN=$RUN_XEN VGPU_E2E_NS_DIR=$W/ns VGPU_E2E_SYSLOG=$W/syslog \
    VGPU_E2E_UID_BASE=$UID_BASE VGPU_E2E_QEMU_LOGS=$W VGPU_QEMU \
    VGPU_E2E_KERNEL=$KERNEL VGPU_E2E_INITRD=$W/initrd.cpio.gz
mkdir -p "$VGPU_CONF_DIR" "$VGPU_RUN_DIR" "$RUN_XEN" "$W/ns"

# The two qemu-dm binaries and the rpm database (see the top).
STOCK_EVR=$(rpmspec -q --srpm --define 'dist .xcpng8.3' --qf '%{epoch}:%{version}-%{release}' \
    "$FIXTURES/qemu-rpm-8.3/SPECS/qemu.spec" 2>/dev/null)
NEWER_REL=5.2.16.1.xcpng8.3 # "XCP-ng's next build"
mkdir -p "$W/qemu-dm-vgpu" "$W/plain"
for dir in qemu-dm-vgpu plain; do
    cp "$XCPNG/vgpu-qemu-dm" "$W/$dir/qemu-system-i386"
    echo "xcpng-qemu=$STOCK_EVR" >"$W/$dir/qemu-system-i386.xcpng-release"
done
export VGPU_QEMU_DM=$W/qemu-dm-vgpu/qemu-system-i386 VGPU_E2E_TCG=$XCPNG/xen-qemu-tcg
SKEW=0
if command -v rpm >/dev/null && [ -n "$STOCK_EVR" ]; then
    qrpm=$("$TOP/tests/lib/xcpng-qemu-rpm.sh" "$FIXTURES/qemu-rpm-8.3/SPECS/qemu.spec" \
        .xcpng8.3 "$W/rpms" "$NEWER_REL" 2>"$W/rpms.log" | tail -n 1)
    if rpm --dbpath "$W/rpmdb" --initdb 2>/dev/null &&
        rpm --dbpath "$W/rpmdb" -i --justdb --nodeps "$qrpm" 2>>"$W/rpms.log"; then
        export VGPU_RPM_DBPATH=$W/rpmdb
        SKEW=1
    fi
    OUT=$(rpm --dbpath "$W/rpmdb" -q --qf '%{epoch}:%{version}-%{release}' qemu 2>/dev/null)
    check "the rpm database holds XCP-ng's qemu at its next release (ours: $STOCK_EVR)" \
        is "2:4.2.1-$NEWER_REL"
else
    log "NOTE: no rpm (or rpmspec) here: the skew between the two qemu-dm binaries is NOT tested"
fi
# One pools.conf for the plugin and the mediator, as on a host: A and B on
# every GPU, and a named pool (C stays unknown: dom4 is refused for it).
printf 'A\nB\ngpu-pool.1\n' >"$VGPU_CONF_DIR/pools.conf"
mediator_start --status-file "$VGPU_RUN_DIR/mediator.status" \
    --qemu-uid-base "$UID_BASE" --pools "$VGPU_CONF_DIR/pools.conf"

# ------------------------------------------------------------ VM start
xcpng_start 1 8.3 "" cirrus
xcpng_start 2 8.3 "" cirrus
xcpng_start 3 "$STOCK3" "$PYSTOCK3" std
log "three VMs started through vgpu-qemu-wrapper and the stock wrapper"

# As xenopsd's wait_event_socket: qemu-dm is up once qmp-event accepts.
started=1
for d in 1 2 3; do
    "$PY" "$XCPNG/xenopsd-qmp" wait "$RUN_XEN/qmp-event-$d" "$BOOT_TIMEOUT" "${VM_PID[$d]}"
    RC=$?
    OUT=$(syslog_of "$d" | tail -n 1)
    check "dom$d: QEMU runs the argv the stock wrapper built" rc_is 0
    [ "$RC" = 0 ] || started=0
    if [ -s "$W/qemu-translations$d" ]; then
        log "dom$d: translated for TCG (tests/e2e/xcpng/xen-qemu-tcg):"
        sed 's/^/    /' "$W/qemu-translations$d"
    fi
done
if [ "$started" = 0 ]; then
    for d in 1 2 3; do
        echo "--- dom$d: stock wrapper's output ---"
        cat "$W/wrapper$d.log"
        echo "--- dom$d: QEMU's output (syslog) ---"
        syslog_of "$d" | tail -n 10
    done
    die "a qemu-dm did not start"
fi

# What xenopsd does next: serial0's pty into xenstore, then `cont`.  The
# harness first hooks its console relay on the pty and reads the PCI
# layout while QEMU is still paused.
for d in 1 2 3; do
    pty=$("$PY" "$XCPNG/xenopsd-qmp" serial0 "$RUN_XEN/qmp-libxl-$d") ||
        die "dom$d: no serial pty"
    xenstore-write "/local/domain/$d/serial/0/tty" "$pty"
    "$PY" "$XCPNG/xenopsd-qmp" console "$pty" "$W/vm$d.in" "$W/vm$d.log" &
    EXTRA_PIDS+=($!)
    "$PY" "$XCPNG/xenopsd-qmp" pci "$RUN_XEN/qmp-libxl-$d" >"$W/pci$d" ||
        die "dom$d: query-pci failed"
    "$PY" "$XCPNG/xenopsd-qmp" cont "$RUN_XEN/qmp-event-$d" || die "dom$d: cont failed"
done
for d in 1 2 3; do
    vm_wait_ready "$d"
done

# What reached the stock wrapper: xenopsd's arguments untouched, plus our
# device for the vgpu VMs only.
{ echo "2 --syslog"; xenopsd_args 2 cirrus; } | tr ' ' '\n' >"$W/want2"
OUT=$(diff "$W/want2" "$W/args2")
RC=$?
check "plain VM: stock wrapper got xenopsd's argv exactly" rc_is 0
{ echo "1 --syslog"; xenopsd_args 1 cirrus; } | tr ' ' '\n' >"$W/want1"
OUT=$(diff "$W/want1" "$W/args1")
RC=$?
check "gpu VM: xenopsd's argv kept, one device appended" \
    grep -q '^> vgpu-stub,pool=A,priority=high,vm-id=[0-9]*,socket=/vgpu-mediator.sock\(,addr=[0-9a-fx.]*\)\?$' <<<"$OUT"
check "gpu VM: nothing else changed" \
    [ "$(grep -c '^[<>]' <<<"$OUT")" = 2 ]

# Which qemu-dm the REAL stock wrapper ran at its hard-coded path.
OUT=$(cat "$W/qemu-which1" "$W/qemu-which2" "$W/qemu-which3" 2>&1 | tr '\n' ' ')
check "the stock wrapper ran our qemu-dm for dom1 and dom3 (vgpu pools), XCP-ng's for dom2" \
    is "vgpu stock vgpu "
OUT=$(grep -h 'mounted over' "$W/wrapper1.log" "$W/wrapper3.log")
check "dom1, dom3: the wrapper says which qemu-dm it mounted, built from which release" \
    [ "$(grep -c "qemu-dm is $VGPU_QEMU_DM (built from XCP-ng's qemu $STOCK_EVR), mounted over /usr/lib64/xen/bin/qemu-system-i386 for this VM only" <<<"$OUT")" = 2 ]
if [ "$SKEW" = 1 ]; then
    for d in 1 3; do
        OUT=$(grep -c "qemu-dm skew: XCP-ng's qemu 2:4.2.1-$NEWER_REL is installed, newer than $STOCK_EVR that the vgpu qemu-dm $VGPU_QEMU_DM was built from" "$W/wrapper$d.log")
        check "dom$d: the wrapper logged the skew, once" is 1
    done
    OUT=$(cat "$W/wrapper1.log")
    check "... naming the command that rebuilds ours" \
        has "rebuild qemu-dm-vgpu in XCP-ng's build environment with \`qemu-dm-patch/xcpng/build-qemu-dm-vgpu.sh --expect 2:4.2.1-$NEWER_REL QEMU_CHECKOUT\`"
fi
OUT=$(grep -c 'skew\|mounted over' "$W/wrapper2.log")
check "dom2 (no pool): the wrapper says nothing of qemu-dm binaries" is 0

# What the stock wrapper made of it (the argv QEMU got, before translation).
for d in 1 3; do
    if [ "$d" = 1 ]; then vga=cirrus-vga,vgamem_mb=4; else vga=VGA,vgamem_mb=8; fi
    OUT=$(cat "$W/qemu-argv$d")
    stub=$(argv_line "$d" '^vgpu-stub,')
    card=$(argv_line "$d" "^$vga,addr=2,")
    check "dom$d: the stock wrapper appended ${vga%%,*} at addr=2 after our vgpu-stub" \
        before "$stub" "$card"
    check "dom$d: the stock wrapper added -chroot /var/xen/qemu/root-$d -runas $((UID_BASE + d)):$((UID_BASE + d))" \
        deprivileged "$d"
    check "dom$d: the stock wrapper read mmio-hole-size: max-ram-below-4g=$((4294967296 - MMIO_HOLE))" \
        grep -q "^pc-0.10,accel=xen,max-ram-below-4g=$((4294967296 - MMIO_HOLE))," <<<"$OUT"
done
for d in 1 2 3; do
    OUT=$(grep -v '^T\([1-9]\|10\) ' "$W/qemu-translations$d")
    check "dom$d: only the listed translations (T1..T10) were applied" is ""
    OUT=$(diff <(addrs "$W/qemu-argv$d") <(addrs "$W/qemu-tcg-argv$d"))
    check "dom$d: QEMU got every device at the addr= the stock wrapper gave" is ""
done
OUT=$(cat "$W/qemu-argv2")
check "plain VM: the stock wrapper appended cirrus-vga at addr=2, no vgpu-stub" \
    bash -c 'grep -q "^cirrus-vga,vgamem_mb=4,addr=2," <<<"$0" && ! grep -q vgpu-stub <<<"$0"' "$OUT"
OUT=$(for d in 1 2 3; do
    xenstore-read "/local/domain/$d/hvmloader/allow-memory-relocate" \
        "/local/domain/$d/platform/device-model" "/libxl/$d/dm-version"
done | tr '\n' ' ')
check "the stock wrappers wrote their xenstore keys (through xen.lowlevel.xs)" \
    is "0 qemu_xen qemu_xen 0 qemu_xen qemu_xen 0 qemu_xen qemu_xen "

# PCI slots, as QEMU placed the devices (query-pci, before cont).
for d in 1 2 3; do
    log "dom$d: bus 0: $(tr '\n' ' ' <"$W/pci$d")"
done
OUT=$(cat "$W/pci1" "$W/pci2")
check "dom1: cirrus-vga in slot 2" pci_has 1 "02.0 1013:00b8"
check "dom2: cirrus-vga in slot 2" pci_has 2 "02.0 1013:00b8"
OUT=$(cat "$W/pci3")
check "dom3 (-std-vga): VGA in slot 2" pci_has 3 "02.0 1234:1111"
OUT=$(cat "$W/pci1" "$W/pci2" "$W/pci3")
check "xen-platform (its stand-in pci-testdev) in slot 3 in every VM" \
    in_all_vms "03.0 1b36:0005"
check "the NIC (rtl8139) in slot 4 in every VM" in_all_vms "04.0 10ec:8139"
OUT=$(cat "$W/pci2")
check "plain VM: no vgpu-stub on the bus" [ -z "$(pci_slot_of 2 1234:7647)" ]
declare -A STUB_SLOT
for d in 1 3; do
    asked=$(grep '^vgpu-stub,' "$W/args$d" | tr , '\n' | sed -n 's/^addr=//p')
    STUB_SLOT[$d]=$(pci_slot_of "$d" 1234:7647)
    OUT="slot ${STUB_SLOT[$d]:-none}, asked ${asked:-none}"
    check "dom$d: vgpu-stub in the slot our wrapper asked for, not 2, 3 or 4" \
        stub_slot_ok "${STUB_SLOT[$d]}" "${asked%%.*}"
done

# QEMU really is deprivileged and chrooted.
for d in 1 3; do
    qpid=$(xenstore-read "/local/domain/$d/qemu-pid" 2>/dev/null)
    [ -n "$qpid" ] && EXTRA_PIDS+=("$qpid")
    OUT="uid=$(awk '/^Uid:/ {print $2}' "/proc/$qpid/status" 2>/dev/null) root=$(stat -L -c %d:%i "/proc/$qpid/root" 2>/dev/null)"
    check "dom$d: qemu runs as uid $((UID_BASE + d)) in root-$d" \
        is "uid=$((UID_BASE + d)) root=$(stat -c %d:%i "$QROOT/root-$d")"
    OUT=$(stat -c '%u %a' "$QROOT/root-$d/vgpu-mediator.sock")
    check "dom$d: socket owned by qemu's uid, mode 600" is "$((UID_BASE + d)) 600"
done
qpid=$(xenstore-read /local/domain/1/qemu-pid 2>/dev/null)
: "${qpid:=none}"
OUT=$(cat "$RUN_XEN/qemu-dm-1.pid")
check "dom1: qemu-pid in xenstore (written by the stock wrapper) is QEMU's pidfile" \
    is "$qpid"

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
check "dom1: the guest sees vgpu-stub at 0000:00:${STUB_SLOT[1]}.0" \
    has "^device: *0000:00:${STUB_SLOT[1]}\.0$"
vmid1=$(sed -n 's/^vm-id: *//p' <<<"$OUT")
vm_run 1 cat /sys/bus/pci/devices/0000:00:02.0/vendor /sys/bus/pci/devices/0000:00:02.0/device \
    /sys/bus/pci/devices/0000:00:03.0/vendor /sys/bus/pci/devices/0000:00:03.0/device
check "dom1: the guest sees the VGA card at 00:02.0, xen-platform's slot 00:03.0" \
    is "$(printf '0x1013\n0x00b8\n0x1b36\n0x0005')"
vm_run 3 vgpu-client --info
check "dom3 --info: pool B, priority low" \
    bash -c 'grep -q "^pool: *B$" <<<"$0" && grep -q "^priority: *low" <<<"$0"' "$OUT"
vmid3=$(sed -n 's/^vm-id: *//p' <<<"$OUT")
OUT="$vmid1 $vmid3"
check "VM-IDs are set and distinct" \
    bash -c '[ -n "$1" ] && [ -n "$2" ] && [ "$1" != "$2" ] && [ "$1" != 0 ]' _ $vmid1 $vmid3
OUT=$(xenstore-read "/local/domain/1/vgpu-mediator/vm-id")
check "VM-ID in xenstore is what the guest sees" is "$vmid1"
OUT=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["other_config"].get("vgpu-vm-id"))' \
    "$W/xapi-state.json" "$U1")
check "VM-ID persisted in other-config:vgpu-vm-id" is "$vmid1"

# ------------------------------------------------------------ trust
OUT=$(xenstore-ls -p /local/domain/1/vgpu-mediator)
check "vgpu keys: owner dom0, read-only for the domain" \
    grep -q 'priority = "high" .*(n0,r1)' <<<"$OUT"
OUT=$(XENSTORED_PATH=$W/xenstored-dom1.sock xenstore-read /local/domain/1/vgpu-mediator/priority 2>&1)
check "guest domain can read its priority" is high
OUT=$(XENSTORED_PATH=$W/xenstored-dom1.sock xenstore-write /local/domain/1/vgpu-mediator/priority low 2>&1)
RC=$?
check "guest domain cannot write its priority" rc_not 0
OUT=$(xenstore-read /local/domain/1/vgpu-mediator/priority)
check "priority unchanged after the guest's attempt" is high

# ------------------------------------------------------------ operator
plugin status
check "plugin status: dom1 served and connected" \
    has "domain 1 pool=A priority=high vm-id=$vmid1 device=connected"
if [ "$SKEW" = 1 ]; then
    check "plugin status: the qemu-dm skew, with the command that rebuilds ours" \
        has "^qemu-dm skew: XCP-ng's qemu 2:4.2.1-$NEWER_REL is installed, newer than $STOCK_EVR .*build-qemu-dm-vgpu.sh --expect 2:4.2.1-$NEWER_REL QEMU_CHECKOUT"
    OUT=$("$VGPU_BUILD/mediator/vgpu-smi" -s "$W/admin.sock" 2>&1)
    RC=$?
    check "vgpu-smi: the qemu-dm skew, with the command that rebuilds ours" \
        has "^QEMU-DM:  skew: XCP-ng's qemu 2:4.2.1-$NEWER_REL is installed, newer than $STOCK_EVR .*build-qemu-dm-vgpu.sh --expect"
fi
OUT=$(sort "$W/device-help-runs" 2>/dev/null | uniq -c | awk '{ print $1 }')
HELP_RUNS=$OUT
check "our qemu-dm's -device help ran at most once per concurrent start (cached by identity)" \
    bash -c '[ -n "$0" ] && [ "$0" -le 2 ]' "$OUT"
plugin set-priority "uuid=$U3" priority=high
check "plugin set-priority answers" has "priority high"
wait_until 10 grep -q "dom3: pool B priority high" "$W/mediator.log"
vm_run 3 vgpu-client --info
check "dom3 sees its new priority live" has "^priority: *high"
plugin assign domid=3 pool=C
check "plugin: unknown argument refused (fault or XenAPI Failure)" has "^FAULT \|^FAILURE "

# ------------------------------------------------------------ refused start
# A required device that cannot be set up (pool C is unknown): the wrapper
# refuses, and xenopsd must learn it at once, not after its
# qemu_dm_ready_timeout of 300 s (it does not watch the wrapper's pid).
xcpng_start 4 8.3 "" cirrus
OUT=$("$PY" "$XCPNG/xenopsd-qmp" start "$RUN_XEN/qmp-event-4" 60)
RC=$?
check "dom4 (required, bad pool): xenopsd's start fails with a QMP failure, not its timeout" rc_is 3
wait "${VM_PID[4]}"
RC=$?
OUT=$(cat "$W/wrapper4.log")
check "dom4: the wrapper exits non-zero" rc_not 0
check "dom4: the wrapper says why" has "vgpu required but not available: unknown pool 'C'"
check "dom4: the stock wrapper never ran (no qemu argv)" test ! -e "$W/qemu-argv4"
check "dom4: the QMP event socket is gone" test ! -e "$RUN_XEN/qmp-event-4"

# ------------------------------------------------------------ VM stops
# As xenopsd's Service.Qemu.stop: kill the pid the wrapper put in xenstore,
# then remove the chroot.
kill "$(xenstore-read /local/domain/3/qemu-pid)"
wait_until 10 bash -c '! kill -0 "$0" 2>/dev/null' "${VM_PID[3]}" # logger sees EOF
rm -rf "$QROOT/root-3" # xenopsd removes the chroot when qemu stops
wait_until 10 grep -q "dom3: chroot folder removed" "$W/mediator.log"
RC=$?
check "mediator forgets dom3 when its chroot goes" rc_is 0
vm_run 1 vgpu-client 20 22
check "dom1 still served after dom3 went away" is 42

# ------------------------------------------------------------ a named pool
# Pools are names: other-config:vgpu-pool=gpu-pool.1, which pools.conf
# lists, goes through the wrapper (-device ...,pool=gpu-pool.1), xenstore
# and the mediator to the guest, which reads the whole name.
xcpng_start 5 8.3 "" cirrus
"$PY" "$XCPNG/xenopsd-qmp" wait "$RUN_XEN/qmp-event-5" "$BOOT_TIMEOUT" "${VM_PID[5]}"
RC=$?
check "dom5 (pool gpu-pool.1): QEMU runs the argv the stock wrapper built" rc_is 0
[ "$RC" = 0 ] || { cat "$W/wrapper5.log"; die "dom5: qemu-dm did not start"; }
OUT=$(grep '^vgpu-stub,' "$W/args5")
check "dom5: the wrapper gave the device pool=gpu-pool.1" \
    has '^vgpu-stub,pool=gpu-pool\.1,priority=medium,vm-id=[0-9]*,'
OUT=$(xenstore-read /local/domain/5/vgpu-mediator/pool)
check "dom5: xenstore holds pool gpu-pool.1" is gpu-pool.1
pty=$("$PY" "$XCPNG/xenopsd-qmp" serial0 "$RUN_XEN/qmp-libxl-5") || die "dom5: no serial pty"
xenstore-write /local/domain/5/serial/0/tty "$pty"
"$PY" "$XCPNG/xenopsd-qmp" console "$pty" "$W/vm5.in" "$W/vm5.log" &
EXTRA_PIDS+=($!)
"$PY" "$XCPNG/xenopsd-qmp" cont "$RUN_XEN/qmp-event-5" || die "dom5: cont failed"
vm_wait_ready 5
vm_run 5 vgpu-client --info
check "dom5 --info: the guest sees the multi-character pool gpu-pool.1" \
    has "^pool: *gpu-pool\.1$"
check "dom5 --info: the device says it has POOL_NAME_1..3" has "^capabilities: .*POOL_NAME"
vm_run 5 vgpu-client 2 40
check "dom5 (pool gpu-pool.1): served, 2 + 40 = 42" is 42
wait_until 10 grep -q "dom5: pool gpu-pool.1 priority medium" "$W/mediator.log"
RC=$?
check "mediator: dom5 is served as pool gpu-pool.1" rc_is 0
OUT=$(sort "$W/device-help-runs" 2>/dev/null | uniq -c | awk '{ print $1 }')
check "dom5's start found the answer in the cache (-device help ran $OUT times, as before)" \
    is "$HELP_RUNS"
OUT=$(cat "$W/qemu-which5")
check "dom5 ran our qemu-dm" is vgpu

# ------------------------------------------------------------ our qemu-dm missing
# Not required: the VM starts on XCP-ng's qemu-dm, without the device.
VGPU_QEMU_DM=$W/none/qemu-system-i386 xcpng_start 6 8.3 "" cirrus
"$PY" "$XCPNG/xenopsd-qmp" wait "$RUN_XEN/qmp-event-6" "$BOOT_TIMEOUT" "${VM_PID[6]}"
RC=$?
check "dom6 (our qemu-dm missing, not required): its qemu-dm starts" rc_is 0
OUT=$(cat "$W/qemu-which6" 2>&1)
check "dom6: the stock wrapper ran XCP-ng's qemu-dm" is stock
OUT=$(grep -c vgpu-stub "$W/args6")
check "dom6: no vgpu-stub device" is 0
OUT=$(cat "$W/wrapper6.log")
check "dom6: the wrapper says so, and why" \
    has "starting the VM without the vgpu device: the vgpu qemu-dm $W/none/qemu-system-i386 is missing (install the qemu-dm-vgpu package"
kill "$(cat "$RUN_XEN/qemu-dm-6.pid")" 2>/dev/null
# Required, and ours lacks vgpu-stub: refused at once, saying why.
VGPU_QEMU_DM=$W/plain/qemu-system-i386 xcpng_start 7 8.3 "" cirrus
OUT=$("$PY" "$XCPNG/xenopsd-qmp" start "$RUN_XEN/qmp-event-7" 60)
RC=$?
check "dom7 (required, our qemu-dm lacks vgpu-stub): xenopsd's start fails with a QMP failure, not its timeout" rc_is 3
wait "${VM_PID[7]}"
RC=$?
OUT=$(cat "$W/wrapper7.log")
check "dom7: the wrapper exits non-zero" rc_not 0
check "dom7: the wrapper says why" \
    has "vgpu required but not available: the vgpu qemu-dm $W/plain/qemu-system-i386 lacks the vgpu-stub device"
check "dom7: the stock wrapper never ran (no qemu argv)" test ! -e "$W/qemu-argv7"

# ------------------------------------------------------------ suspend, resume
# xe vm-suspend of dom1 with a request in flight, then xe vm-resume, as
# xenopsd does it (xc/device.ml): stop dom1's qemu-dm and save its state,
# destroy the domain, start the VM's qemu-dm for a new domain with its
# argv plus -loadvm /var/run/xen/qemu-resume.<domid>, send cont.  Under TCG
# the state holds the RAM as well; QEMU runs chrooted, so it is sent to a
# unix socket in its chroot, and written to the resume file from there.
# The mediator is frozen first, so the loop's first request is surely in
# flight when the VM stops.
kill -STOP "$MED_PID"
vm_spawn 1 r1 "vgpu-client -t 600000 --stress 3000"
sleep 1
"$PY" - "$QROOT/root-1/save.sock" "$RUN_XEN/qemu-resume.8" >"$W/save.log" 2>&1 <<'PYEOF2' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
with open(sys.argv[2], "wb") as f:
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        f.write(b)
print("saved", flush=True)
PYEOF2
saver=$!
wait_until 10 grep -q listening "$W/save.log" || die "the state receiver did not start"
"$PY" "$XCPNG/xenopsd-qmp" cmd "$RUN_XEN/qmp-libxl-1" stop >/dev/null || die "dom1: stop failed"
"$PY" "$XCPNG/xenopsd-qmp" cmd "$RUN_XEN/qmp-libxl-1" migrate '{"uri": "unix:/save.sock"}' >/dev/null ||
    die "dom1: saving its state failed"
wait "$saver"
OUT=$(cat "$W/save.log")
check "dom1 suspended: its state saved ($(stat -c %s "$RUN_XEN/qemu-resume.8" 2>/dev/null) bytes)" has saved
kill "$(xenstore-read /local/domain/1/qemu-pid)"
wait_until 10 bash -c '! kill -0 "$0" 2>/dev/null' "${VM_PID[1]}"
rm -rf "$QROOT/root-1"
kill -CONT "$MED_PID"
XENOPSD_EXTRA="-loadvm /var/run/xen/qemu-resume.8" xcpng_start 8 8.3 "" cirrus
"$PY" "$XCPNG/xenopsd-qmp" wait "$RUN_XEN/qmp-event-8" "$BOOT_TIMEOUT" "${VM_PID[8]}"
RC=$?
check "dom8 (dom1's VM resumed): its qemu-dm starts through both wrappers" rc_is 0
[ "$RC" = 0 ] || { cat "$W/wrapper8.log"; syslog_of 8 | tail; die "dom8: qemu-dm did not start"; }
OUT=$(grep -A1 -x -- -incoming "$W/qemu-argv8" | tail -n 1)
check "dom8: the stock wrapper turned -loadvm into -incoming fd:N" grep -q '^fd:[0-9]*$' <<<"$OUT"
OUT=$(xenstore-read /local/domain/8/vgpu-mediator/vm-id)
check "dom8: the wrapper assigned the resumed VM its VM-ID again ($vmid1)" is "$vmid1"
pty=$("$PY" "$XCPNG/xenopsd-qmp" serial0 "$RUN_XEN/qmp-libxl-8") || die "dom8: no serial pty"
xenstore-write /local/domain/8/serial/0/tty "$pty"
"$PY" "$XCPNG/xenopsd-qmp" console "$pty" "$W/vm8.in" "$W/vm8.log" &
EXTRA_PIDS+=($!)
"$PY" "$XCPNG/xenopsd-qmp" cont "$RUN_XEN/qmp-event-8" || die "dom8: cont failed"
CMD_TIMEOUT=300 vm_collect 8 r1
check "dom8: the guest's loop across suspend and resume: 3000 requests, every result right" \
    has "^stress: 3000 requests, 3000 ok, 0 failed"
OUT=$(syslog_of 8)
check "dom8: the device sent the request in flight again, to this mediator" \
    has "the v1 request in flight came with the VM: sent to the mediator at /vgpu-mediator.sock"
OUT=$("$VGPU_BUILD/mediator/vgpu-smi" -s "$W/admin.sock" --json 2>&1 |
    grep -o '"domid": 8,[^}]*' | sed -n 's/.*"served": \([0-9]*\).*/\1/p')
check "dom8: the mediator served the whole loop as domain 8 ($OUT requests)" \
    bash -c '[ "${0:-0}" -ge 3000 ]' "$OUT"
vm_run 8 vgpu-client 5 6
check "dom8: served after the resume, 5 + 6 = 11" is 11

e2e_summary
