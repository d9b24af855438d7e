#!/bin/bash
# guest-bench.sh - the guest-side figures of `make bench` (issue 10): what
# one request costs the device in BAR0 accesses (each one an ioreq round
# trip into qemu-dm on Xen: the figure that decides speed there) and in
# interrupts, v1 against v2, counted by the device itself.
#
# Usage: bench/guest-bench.sh
#   VGPU_QEMU         qemu-system-x86_64 with vgpu-stub (make qemu)
#   VGPU_BUILD        a build folder with mediator/, xs-server/, kmod/vgpu.ko
#   VGPU_GUEST_BUILD  its guest-tools/ (vgpu-client; default $VGPU_BUILD/...)
#   BENCH_GUEST_N     requests per row (default 2000)
#
# One TCG guest (Debian's kernel, our initramfs) runs vgpu-client against
# the real mediator: v1 through the sysfs registers (one request at a
# time: v1 has no more), then vgpu.ko on the v2 rings at queue depth 1 and
# 32, and at depth 32 with interrupt coalescing.  The device's read-only
# QOM counters x-stat-mmio, x-stat-irqs and x-stat-done (vgpu-stub.c) are
# read over QMP before and after each row; a row's figure is the
# difference divided by the requests the device completed.  Counts, not
# times: TCG's speed does not enter them.  Exit 77 (with a line saying
# why) when something it needs is missing; 1 when a row fails to run.
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$BENCH_DIR/../tests/e2e/lib.sh"

N=${BENCH_GUEST_N:-2000}
KO=$VGPU_BUILD/kmod/vgpu.ko
skip() {
    echo "guest-bench: not measured: $*"
    exit 77
}
[ -f "$KO" ] || skip "no $KO (make all builds it where kernel headers are)"
command -v python3 >/dev/null || skip "python3 (the QMP client) is missing"

# qom_get PROPERTY: one device counter over QMP (one connection per call).
qom_get() {
    python3 - "$W/qmp.sock" "$1" <<'EOF'
import json, socket, sys

s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())  # greeting
for cmd in ({"execute": "qmp_capabilities"},
            {"execute": "qom-get",
             "arguments": {"path": "/machine/peripheral/vgpu0",
                           "property": sys.argv[2]}}):
    f.write(json.dumps(cmd) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "event" not in r:
            break
    if "error" in r:
        sys.exit("qmp: " + r["error"]["desc"])
print(r["return"])
EOF
}

# counters: "mmio irqs done" now.
counters() {
    local m i d
    m=$(qom_get x-stat-mmio) && i=$(qom_get x-stat-irqs) &&
        d=$(qom_get x-stat-done) || return 1
    echo "$m $i $d"
}

# row NAME TARGET CMD: run CMD in the guest and print its figures; they
# stay in RM/RI/RD (MMIO accesses, interrupts, completed requests).
declare -A RM RI RD
row() {
    local name=$1 target=$2 b a
    shift 2
    b=($(counters)) || die "QMP: cannot read the device's counters"
    vm_run 1 "$@"
    [ "$RC" = 0 ] || die "$name: '$*' failed ($RC): $OUT"
    a=($(counters)) || die "QMP: cannot read the device's counters"
    RM[$name]=$((a[0] - b[0]))
    RI[$name]=$((a[1] - b[1]))
    RD[$name]=$((a[2] - b[2]))
    [ "${RD[$name]}" -gt 0 ] || die "$name: the device completed no request"
    awk -v n="$name" -v m="${RM[$name]}" -v i="${RI[$name]}" \
        -v d="${RD[$name]}" -v t="$target" 'BEGIN {
        printf "  %-34s %8d %12.3f %12.3f   %s\n", n, d, m / d, i / d, t }'
}

# per NAME mmio|irqs: that row's figure per request.
per() {
    local n
    [ "$2" = mmio ] && n=${RM[$1]} || n=${RI[$1]}
    awk -v n="$n" -v d="${RD[$1]}" 'BEGIN { printf "%.4f", n / d }'
}
# ratio A B mmio|irqs: A's figure over B's.
ratio() {
    awk -v a="$(per "$1" "$3")" -v b="$(per "$2" "$3")" \
        'BEGIN { if (b > 0) printf "%.3g", a / b; else print "(B is 0)" }'
}
# report TEXT ROW mmio|irqs LIMIT: met when the row's figure <= LIMIT.
report() {
    if awk -v v="$(per "$2" "$3")" -v l="$4" 'BEGIN { exit !(v <= l) }'; then
        echo "guest-bench: target met: $1 ($(per "$2" "$3"))"
    else
        echo "guest-bench: target NOT met: $1 ($(per "$2" "$3"))"
    fi
}

VGPU_KO=$KO e2e_build_initramfs
xs_start 1
xs_assign 1 A high 1
mkdir -p "$QROOT/root-1"
mediator_start
vm_launch 1 "$VGPU_QEMU" -nodefaults -machine pc -m 256 -no-reboot \
    -display none -L /usr/share/seabios -L /usr/share/qemu \
    -kernel "$KERNEL" -initrd "$W/initrd.cpio.gz" \
    -append "console=ttyS0 quiet panic=-1 vgpu.noecho" -serial stdio \
    -qmp "unix:$W/qmp.sock,server=on,wait=off" \
    -device "vgpu-stub,id=vgpu0,pool=A,priority=high,vm-id=1,socket=$QROOT/root-1/vgpu-mediator.sock"
vm_wait_ready 1
CMD_TIMEOUT=${VGPU_CMD_TIMEOUT:-600}
MOD=/lib/modules/extra/vgpu.ko

echo "guest-bench: one TCG guest ($(basename "$KERNEL")), $N null requests (1-element VECTOR_ADD) per row"
echo "guest-bench: counted by the device (QOM x-stat-*), per completed request"
printf "  %-34s %8s %12s %12s   %s\n" row requests "MMIO/req" "IRQs/req" target
# v1's count includes its STATUS polls while the request runs: it grows
# with the mediator's service time, so it is a floor of what v1 costs.
row "v1 sysfs registers, depth 1" "(baseline)" \
    "VGPU_PATH=sysfs vgpu-client --stress $N"
vm_run 1 "insmod $MOD"
[ "$RC" = 0 ] || die "insmod vgpu.ko: $OUT"
vm_run 1 "vgpu-client --info 2>&1 | grep -i path"
echo "guest-bench: vgpu.ko loaded: ${OUT:-(no path line)}"
row "v2 rings (vgpu.ko), depth 1" "IRQs <= 1" \
    "vgpu-client --stress $N:1"
row "v2 rings (vgpu.ko), depth 32" "MMIO <= 0.1, IRQs <= 1" \
    "vgpu-client --stress $((N * 2)):32"
vm_run 1 "rmmod vgpu && insmod $MOD irq_coalesce=$(((200 << 16) | 16))"
[ "$RC" = 0 ] || die "reload vgpu.ko with coalescing: $OUT"
row "v2 depth 32, coalesce 16 / 200 us" "IRQs < uncoalesced" \
    "vgpu-client --stress $((N * 2)):32"

V1="v1 sysfs registers, depth 1"
D1="v2 rings (vgpu.ko), depth 1"
D32="v2 rings (vgpu.ko), depth 32"
CO="v2 depth 32, coalesce 16 / 200 us"
echo "guest-bench: MMIO accesses per request, v2 / v1: depth 1 $(ratio "$D1" "$V1" mmio)x, depth 32 $(ratio "$D32" "$V1" mmio)x"
report "v2 at depth 32: <= 0.1 MMIO accesses per request" "$D32" mmio 0.1
report "v2 at depth 1: <= 1 interrupt per request" "$D1" irqs 1
report "v2 at depth 32: <= 1 interrupt per request" "$D32" irqs 1
echo "guest-bench: interrupts per request at depth 32, coalesced / not: $(ratio "$CO" "$D32" irqs)x"
vm_run 1 "dmesg | grep -E 'BUG|Oops|WARNING' | head -3"
[ -z "$OUT" ] || echo "guest-bench: the guest's kernel log has: $OUT"
echo "guest-bench: done"
