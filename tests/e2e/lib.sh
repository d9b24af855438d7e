# lib.sh - the end-to-end harness, sourced by tests/e2e/test-*.sh and
# tests/e2e/demo.sh.
#
# It plays dom0 on this machine: a xenstore server speaking the real wire
# protocol (tests/xs-server), the qemu root folder with one root-<domid>
# chroot folder per VM (as the stock qemu wrapper makes them), the real
# vgpu-mediator, and one real QEMU with a vgpu-stub per VM booting Debian's
# kernel and our initramfs under TCG.  Each guest's serial console is a
# FIFO (input) and a log file (output); vm_send types a command and
# vm_wait reads its output and exit status back, within a time limit.
#
# Needs: VGPU_QEMU (qemu-system-x86_64 with vgpu-stub), VGPU_BUILD (holds
# mediator/ and xs-server/), VGPU_GUEST_BUILD (holds vgpu-client).
# VGPU_KEEP=1 keeps the work folder for inspection; VGPU_VM_MEM sets the
# guests' memory in MB (default 256).

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$E2E_DIR/../.." && pwd)

: "${VGPU_QEMU:?VGPU_QEMU must name a qemu-system-x86_64 with vgpu-stub}"
: "${VGPU_BUILD:?VGPU_BUILD must name the build folder}"
: "${VGPU_GUEST_BUILD:=$VGPU_BUILD/guest-tools}"
BOOT_TIMEOUT=${VGPU_BOOT_TIMEOUT:-240}
CMD_TIMEOUT=${VGPU_CMD_TIMEOUT:-60}

W=$(mktemp -d /tmp/vgpu-e2e-XXXXXX)
QROOT=$W/qemu
mkdir -p "$QROOT"
declare -A VM_FD VM_PID
EXTRA_PIDS=() # other helpers a test starts; killed at exit
MED_PID=
XS_PID=
SEQ=0
OUT=
RC=

log() { echo "[$(date +%T)] $*"; }
die() {
    echo "e2e: FATAL: $*" >&2
    e2e_dump_logs >&2
    exit 1
}

e2e_dump_logs() {
    local f
    for f in "$W"/mediator*.log "$W"/vm*.log "$W"/xs*.log; do
        [ -f "$f" ] || continue
        echo "--- last lines of $f ---"
        tail -n 40 "$f" | tr -d '\r'
    done
}

e2e_cleanup() {
    local pid
    for pid in "${VM_PID[@]}" "${EXTRA_PIDS[@]}" $MED_PID $XS_PID; do
        # CONT first, for one a test froze: a CONT that came after the
        # TERM could land in LeakSanitizer's exit check, whose tracer then
        # spins.
        kill -CONT "$pid" 2>/dev/null
        kill "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    if [ -n "${VGPU_KEEP:-}" ]; then
        echo "e2e: work folder kept: $W"
    else
        rm -rf "$W"
    fi
}
trap e2e_cleanup EXIT

# wait_until SECONDS CMD...: poll CMD every 0.1 s; 1 when time runs out.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.1
    done
}

e2e_kernel() {
    local k
    k=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
    [ -r "$k" ] || die "no kernel in /boot (install linux-image-amd64)"
    echo "$k"
}

# e2e_need_kmod: KO names vgpu.ko for the booted kernel ($VGPU_KMOD, else
# $VGPU_BUILD/kmod/vgpu.ko, else built here); exit 77 without kernel
# headers.
e2e_need_kmod() {
    local kver rc
    kver=$(e2e_kernel)
    kver=${kver#/boot/vmlinuz-}
    KO=${VGPU_KMOD:-$VGPU_BUILD/kmod/vgpu.ko}
    [ -f "$KO" ] && return 0
    "$TOP/tests/kmod/build-kmod.sh" "$W/kmod" "$kver" >"$W/kmod.log" 2>&1
    rc=$?
    if [ $rc = 77 ]; then
        echo "SKIP: $(grep -m1 SKIP "$W/kmod.log")"
        exit 77
    fi
    [ $rc = 0 ] || die "vgpu.ko did not build: $(tail -n 20 "$W/kmod.log")"
    KO=$W/kmod/vgpu.ko
}

e2e_build_initramfs() {
    VGPU_CLIENT=$VGPU_GUEST_BUILD/vgpu-client \
        "$E2E_DIR/make-initramfs.sh" "$W/initrd.cpio.gz" >"$W/initramfs.log" 2>&1 ||
        die "initramfs build failed: $(tail -n 5 "$W/initramfs.log")"
    KERNEL=$(e2e_kernel)
}

# ---------------------------------------------------------------- checks

passed=0
failed=0
# check NAME TEST...: one assertion; TEST usually looks at OUT and RC.
check() {
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok: $name"
    else
        failed=$((failed + 1))
        echo "FAILED: $name (rc=$RC, output: $(echo "$OUT" | tr '\n' '|'))"
    fi
}
has() { grep -q -- "$1" <<<"$OUT"; }
is() { [ "$OUT" = "$1" ]; }
rc_is() { [ "$RC" = "$1" ]; }
rc_not() { [ "$RC" != "$1" ]; }

# e2e_summary: the closing line; exit status 1 when anything failed.
e2e_summary() {
    [ "$failed" -eq 0 ] || e2e_dump_logs
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# ---------------------------------------------------------------- xenstore

# xs_spawn DIR LOG DOMID...: start xenstored's stand-in, its sockets in
# DIR (xenstored.sock), with those domains introduced (each gets a socket
# of its own, xenstored-dom<domid>.sock: a client there acts as that
# domain, unprivileged), its log in LOG; SPAWNED is its pid.
xs_spawn() {
    local dir=$1 log=$2 d args=()
    shift 2
    for d in "$@"; do
        args+=(--domain-socket "$d:$dir/xenstored-dom$d.sock")
    done
    "$VGPU_BUILD/xs-server/xs-server" --socket "$dir/xenstored.sock" "${args[@]}" \
        >"$dir/xs.out" 2>"$log" &
    SPAWNED=$!
    wait_until 10 grep -q ready "$dir/xs.out" || die "xs-server in $dir did not start"
}

# xs_start DOMID...: this host's xenstore, in $W, for the tools and the
# mediator started after it.
xs_start() {
    xs_spawn "$W" "$W/xs.log" "$@"
    XS_PID=$SPAWNED
    export XENSTORED_PATH=$W/xenstored.sock
}

# xs_assign DOMID POOL PRIORITY VM_ID: what the xapi plugin writes at boot.
xs_assign() {
    local base=/local/domain/$1/vgpu-mediator
    xenstore-write "$base/pool" "$2" "$base/priority" "$3" "$base/vm-id" "$4" ||
        die "xenstore-write failed"
}

# ---------------------------------------------------------------- mediator

# mediator_start [--status-file F] [OPTION...]: options go to
# vgpu-mediator (a later option wins over the default one here; the
# default pools file is $W/pools.conf, absent unless a test writes it, so
# the host's /etc/vgpu never leaks in).  Ready once the status
# file names the new process: it is written after every socket is bound
# (waiting for the sockets alone would race with stale ones a crash left).
mediator_start() {
    mediator_spawn "$W" "$QROOT" "$W/mediator.log" "$@"
    MED_PID=$SPAWNED
    MED_STATUS=$SPAWNED_STATUS
}

# mediator_spawn DIR QROOT LOG [--status-file F] [OPTION...]: the same for
# a mediator whose status file, admin socket and pools file are in DIR,
# serving QROOT, logging to LOG (XENSTORED_PATH from the environment);
# SPAWNED is its pid, SPAWNED_STATUS its status file.
mediator_spawn() {
    local dir=$1 root=$2 log=$3 status
    shift 3
    status=$dir/mediator.status
    [ "${1:-}" = --status-file ] && status=$2
    "$VGPU_BUILD/mediator/vgpu-mediator" --qemu-root "$root" --log stderr \
        --verbose --status-file "$dir/mediator.status" \
        --admin-socket "$dir/admin.sock" --pools "$dir/pools.conf" "$@" \
        2>>"$log" &
    SPAWNED=$!
    SPAWNED_STATUS=$status
    wait_until 10 grep -qs "^mediator pid=$SPAWNED " "$SPAWNED_STATUS" ||
        die "mediator for $root did not get ready"
}

# mediator_stop [SIGNAL]: TERM (default) removes the sockets, KILL leaves
# them behind as a crash would.
mediator_stop() {
    [ -n "$MED_PID" ] || return 0
    kill -"${1:-TERM}" "$MED_PID"
    wait "$MED_PID" 2>/dev/null
    MED_PID=
}

# ---------------------------------------------------------------- CUDA

# cuda_e2e_need: CT (the nvcc-built programs) and STANDIN (the test
# double libcuda) set; exit 77, saying which, without the programs or,
# unless VGPU_E2E_REAL_CUDA=1 (the host's driver), without the mediator's
# CUDA backend.
cuda_e2e_need() {
    CT=$VGPU_BUILD/cuda-tests
    STANDIN=$VGPU_BUILD/mediator/fake-cuda/libcuda-fake.so
    if [ ! -x "$CT/cuda-drv-test" ]; then
        echo "SKIP: no CUDA test program ($(cat "$CT/NO-NVCC" 2>/dev/null || echo "$CT/cuda-drv-test not built"))"
        exit 77
    fi
    if [ "${VGPU_E2E_REAL_CUDA:-0}" != 1 ] && [ ! -f "$STANDIN" ]; then
        echo "SKIP: the mediator was built without the CUDA backend (no $STANDIN)"
        exit 77
    fi
}

# cuda_mediator_start OPTION...: the mediator with its CUDA backend, on the
# host's driver and GPU with VGPU_E2E_REAL_CUDA=1, else on the stand-in;
# DEVNAME is the device's name as programs must see it.
cuda_mediator_start() {
    if [ "${VGPU_E2E_REAL_CUDA:-0}" = 1 ]; then
        DEVNAME=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
        log "the real driver and GPU: $DEVNAME"
        mediator_start --backend cuda "$@"
    else
        DEVNAME="vgpu fake CUDA device 0"
        VGPU_LIBCUDA=$STANDIN mediator_start --backend cuda "$@"
    fi
}

# sim_exec DOMID CMD...: CMD as a process of simulated VM DOMID: the
# simulated VM's libcuda.so.1 (tests/cuda-sim) on DOMID's mediator socket.
sim_exec() {
    local n=$1
    shift
    LD_LIBRARY_PATH=$VGPU_BUILD/cuda-sim \
        VGPU_SIM_SOCKET=$QROOT/root-$n/vgpu-mediator.sock "$@"
}

# ---------------------------------------------------------------- VMs

# vm_launch DOMID CMD...: run CMD (a QEMU, or a wrapper that execs one)
# with its stdin on the guest console's FIFO and its stdout in the log.
vm_launch() {
    local n=$1 fd
    shift
    mkfifo "$W/vm$n.in"
    exec {fd}<>"$W/vm$n.in"
    VM_FD[$n]=$fd
    "$@" <"$W/vm$n.in" >"$W/vm$n.log" 2>"$W/vm$n.qemu.log" &
    VM_PID[$n]=$!
}

# vm_start DOMID POOL PRIORITY VM_ID [QEMU-ARG...]: make the chroot folder
# as the stock wrapper does (under VM_QROOT, default QROOT: another host's
# qemu root), then boot a guest whose vgpu-stub has those properties (and
# VM_DEV_PROPS, ",name=value..." more of them).
vm_start() {
    local n=$1 pool=$2 prio=$3 vmid=$4 root=${VM_QROOT:-$QROOT}
    shift 4
    mkdir -p "$root/root-$n"
    vm_launch "$n" "$VGPU_QEMU" -nodefaults -machine pc -m "${VGPU_VM_MEM:-256}" -no-reboot \
        -display none -L /usr/share/seabios -L /usr/share/qemu \
        -kernel "$KERNEL" -initrd "$W/initrd.cpio.gz" \
        -append "console=ttyS0 quiet panic=-1 vgpu.noecho" -serial stdio \
        -device "vgpu-stub,pool=$pool,priority=$prio,vm-id=$vmid,socket=$root/root-$n/vgpu-mediator.sock${VM_DEV_PROPS:-}" \
        "$@"
}

vm_ready() { grep -aq 'VGPU-GUEST-READY' "$W/vm$1.log"; }

vm_wait_ready() {
    wait_until "$BOOT_TIMEOUT" vm_ready "$1" ||
        die "VM $1 did not boot within ${BOOT_TIMEOUT}s"
    kill -0 "${VM_PID[$1]}" 2>/dev/null || die "QEMU of VM $1 exited"
}

# vm_send DOMID CMD: type CMD on the guest's console; sets TAG.  The
# markers are split with "" so that the echo of the typed line never
# matches what the guest prints.
vm_send() {
    local n=$1
    shift
    SEQ=$((SEQ + 1))
    TAG=T$SEQ
    printf 'echo @@B""EGIN-%s; %s; echo @@E""ND-%s:$?\n' "$TAG" "$*" "$TAG" \
        >&"${VM_FD[$n]}"
}

vm_done() { tr -d '\r' <"$W/vm$1.log" | grep -aq "^@@END-$2:[0-9]"; }

# vm_wait DOMID TAG: wait for the command's end; sets OUT and RC.
vm_wait() {
    local n=$1 tag=$2
    wait_until "$CMD_TIMEOUT" vm_done "$n" "$tag" ||
        die "VM $n: command $tag did not finish within ${CMD_TIMEOUT}s"
    OUT=$(tr -d '\r' <"$W/vm$n.log" |
        sed -n "/@@BEGIN-$tag\$/,/^@@END-$tag:/p" | sed '1d;$d')
    RC=$(tr -d '\r' <"$W/vm$n.log" | grep -a "^@@END-$tag:" | tail -n 1 |
        cut -d: -f2)
}

# vm_spawn DOMID NAME CMD: start CMD in the guest in the background, its
# output going to /tmp/NAME.out and its exit status to /tmp/NAME.rc when it
# ends; vm_collect waits for it.  Not a job of the console's shell: with
# echo off busybox ash reads the console with fgets, which a finished
# job's SIGCHLD interrupts, and ash takes that for the end of its input and
# exits (the guest powers off).  Here the job's parent is PID 1.
vm_spawn() {
    local n=$1 name=$2
    shift 2
    vm_run "$n" "rm -f /tmp/$name.rc; sh -c '{ ($*) >/tmp/$name.out 2>&1; echo \$? >/tmp/$name.rc; } </dev/null >/dev/null 2>&1 &'"
    [ "$RC" = 0 ] || die "VM $n: could not start $name"
}

# vm_collect DOMID NAME: wait (CMD_TIMEOUT) for what vm_spawn started; OUT
# is its output, RC its exit status.
vm_collect() {
    vm_run "$1" "while [ ! -e /tmp/$2.rc ]; do sleep 1; done; cat /tmp/$2.out; (exit \$(cat /tmp/$2.rc))"
}

# vm_run DOMID CMD: send and wait.
vm_run() {
    local n=$1
    shift
    vm_send "$n" "$@"
    vm_wait "$n" "$TAG"
}
