#!/bin/bash
# test-xcpng-qemu.sh - builds XCP-ng's qemu-dm for real and runs the
# device's qtest suite against it.  Exit 0: all passed; 1: a failure (a
# build that fails is a failure, not a skip: the fixtures are always there).
#
# For each XCP-ng release (VGPU_XCPNG_RELEASES, default "8.3 8.2"):
#  - qemu-dm-patch/build-qemu-xcpng.sh --release R: QEMU 4.2.0 (the 4.2.1
#    tarball XCP-ng uses cannot be had) + XCP-ng's patches in spec order
#    with rpm's patch -p1 --fuzz=0, the ones that do not apply to 4.2.0
#    skipped with a stated reason, then our series, configured with the
#    spec's own configure line and built with `make all` (cached in
#    ~/.cache/vgpu/qemu-xcpng-R; a warm run takes a second);
#  - checks the report it writes: the patches skipped are the expected ones
#    (printed with their reasons), ours applied, the configure line is
#    XCP-ng's (and what was changed, with why), vgpu-stub.c is our file,
#    compiled with -Werror (re-run here, with a control that a warning
#    fails it);
#  - runs the binary: `-device help` lists vgpu-stub (and XCP-ng's own
#    devices), `-device vgpu-stub,help` its properties;
#  - runs the device's qtest suite ($VGPU_BUILD/device/test-vgpu-stub, the
#    same one that drives QEMU 7.2) against qemu-system-i386 and prints its
#    summary.
# Stubbed, and said so below: XCP-ng's GVT-g display code
# (hw/display/vgt_console.c and its intel-tools/), which needs XenServer's
# libdrm; the rest of XCP-ng's code is compiled and linked as it is.
# Finally a control: a patch that fails to apply without a known reason
# stops the build.
#
# Environment: VGPU_BUILD (where `make check` built tests/device),
# VGPU_XCPNG_FIXTURES, VGPU_CACHE, VGPU_JOBS (passed to the build script).
set -u
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
TOP=${VGPU_TOP:-$(cd "$HERE/../.." && pwd)}
BUILD_SH=$TOP/qemu-dm-patch/build-qemu-xcpng.sh
FIX=${VGPU_XCPNG_FIXTURES:-$TOP/../shared/fixtures/xcpng}
RELEASES=${VGPU_XCPNG_RELEASES:-8.3 8.2}
T=$(mktemp -d /tmp/vgpu-xcpng-qemu-XXXXXX)
trap 'rm -rf "$T"' EXIT
# ok, nok, check, show (and the counters passed, failed)
. "$HERE/../lib/check.sh"

# XCP-ng patches expected not to apply to 4.2.0 (the reasons are in the
# build script and printed from its report); a second opinion on its table.
declare -A EXPECT_SKIPPED=(
    [8.3]="Patch9 Patch1000 Patch1006"
    [8.2]="Patch1000"
)

[ -d "$FIX" ] || { echo "FAILED: no XCP-ng fixtures at $FIX (VGPU_XCPNG_FIXTURES)"; exit 1; }
FIX=$(cd "$FIX" && pwd)
export VGPU_XCPNG_FIXTURES=$FIX

# The device's qtest suite: built by `make check` into $VGPU_BUILD/device.
if [ -n "${VGPU_BUILD:-}" ]; then
    QTEST=$VGPU_BUILD/device/test-vgpu-stub
else
    QTEST=$TOP/build/san/device/test-vgpu-stub
    [ -x "$QTEST" ] || QTEST=$TOP/build/device/test-vgpu-stub
    if [ ! -x "$QTEST" ]; then
        echo "(VGPU_BUILD unset and no built test-vgpu-stub: building one in $T/device)"
        make -s -C "$TOP/tests/device" O="$T/device" SAN=0 >"$T/device.log" 2>&1 || show "$T/device.log"
        QTEST=$T/device/test-vgpu-stub
    fi
fi
check "the device's qtest suite is built ($QTEST)" [ -x "$QTEST" ]

summary=()
for rel in $RELEASES; do
    echo "== XCP-ng $rel: QEMU 4.2.0 + XCP-ng's patches + ours, built with XCP-ng's configure line"
    start=$(date +%s)
    "$BUILD_SH" --release "$rel" >"$T/out" 2>"$T/err"
    rc=$?
    secs=$(($(date +%s) - start))
    grep -q ': cached (' "$T/err" && how="cached" || how="cold build"
    check "build-qemu-xcpng.sh --release $rel exits 0 ($how, ${secs}s)" [ "$rc" = 0 ] ||
        { show "$T/err" 40; summary+=("XCP-ng $rel: BUILD FAILED"); continue; }
    BIN=$(tail -n 1 "$T/out")
    check "its last line is an executable qemu-system-i386 ($BIN)" \
        bash -c '[ -x "$0" ] && [ "${0##*/}" = qemu-system-i386 ]' "$BIN" || continue
    BT=${BIN%/build/i386-softmmu/qemu-system-i386}
    R=$BT/vgpu-xcpng-report.txt
    check "the build report is there ($R)" [ -s "$R" ] || continue
    SPEC=$FIX/qemu-rpm-$rel/SPECS/qemu.spec

    # -- XCP-ng's patches
    sed -n 's/^patches: /    /p' "$R"
    echo "    XCP-ng patches that do not apply to QEMU 4.2.0, and why:"
    sed -n 's/^skipped: /    - /p' "$R" | fold -s -w 100 | sed '2,$s/^\([^ ]\)/      \1/'
    got=$(sed -n 's/^skipped: \(Patch[0-9]*\) .*/\1/p' "$R" | tr '\n' ' ' | sed 's/ $//')
    check "skipped: exactly ${EXPECT_SKIPPED[$rel]:-?} (got: ${got:-none})" \
        [ "$got" = "${EXPECT_SKIPPED[$rel]:-?}" ]
    n_spec=$(grep -c '^Patch[0-9]*:' "$SPEC")
    n_skip=$(wc -w <<<"$got")
    check "every one of the spec's $n_spec patches is applied or skipped with a reason" \
        grep -q "^patches: XCP-ng $rel: $((n_spec - n_skip)) of $n_spec applied to 4.2.0, $n_skip skipped" "$R"
    check "each skipped patch names the file that failed and a reason" \
        bash -c '! grep "^skipped: " "$0" | grep -Ev "^skipped: Patch[0-9]+ [^ ]+: .*(FAILED|no such file).*\. .{40,}"' "$R"

    # -- ours
    n_ours=$(grep -c '^ours: .* applied$' "$R")
    check "our series applied after XCP-ng's ($n_ours patches)" [ "$n_ours" = 3 ]
    check "hw/misc/vgpu-stub.c in the tree is qemu-dm-patch/vgpu-stub.c, byte for byte" \
        cmp -s "$BT/hw/misc/vgpu-stub.c" "$TOP/qemu-dm-patch/vgpu-stub.c"
    check "include/hw/misc/vgpu_protocol.h is include/vgpu_protocol.h, byte for byte" \
        cmp -s "$BT/include/hw/misc/vgpu_protocol.h" "$TOP/include/vgpu_protocol.h"
    for h in "$TOP"/include/vgpu/*.h; do
        check "include/hw/misc/vgpu/${h##*/} is include/vgpu/${h##*/}, byte for byte" \
            cmp -s "$BT/include/hw/misc/vgpu/${h##*/}" "$h"
    done

    # -- configure
    conf=" $(sed -n 's/^configure: //p' "$R") "
    echo "    configure:${conf% }"
    sed -n 's/^configure-changes: /    configure change: /p; s/^make-changes: /    make change: /p' "$R" |
        fold -s -w 100 | sed '2,$s/^\([^ ]\)/      \1/'
    missing=
    for o in --enable-xen --target-list=i386-softmmu --without-default-devices --disable-tcg \
        --disable-kvm --enable-seccomp --enable-jemalloc --enable-libusb --enable-trace-backend=log; do
        [[ $conf == *" $o "* ]] || missing+=" $o"
    done
    check "configure: XCP-ng's qemu-dm options are there${missing:+ (missing:$missing)}" [ -z "$missing" ]
    # the spec's own words, in order, but for the changes the report states
    spec_words=$(sed -n '/^\.\/configure /,/[^\\]$/p' "$SPEC" | tr '\\\n' '  ' | tr -s ' ')
    mine=$conf
    while read -r from _ to _; do
        [ -n "$from" ] && mine=${mine// $to / $from }
    done < <(sed -n 's/^configure-changes: \(--[^ ]*\) -> \(--[^ :]*\):.*/\1 x \2 x/p' "$R")
    strip_macros() { tr ' ' '\n' | grep -v -e '^--[a-z]*dir=' -e '^--prefix=' -e extra_configure -e '^$' -e '^--enable-jemalloc$' -e '^\./configure$'; }
    check "configure: the spec's %build line word for word (paths, macros and the stated changes aside)" \
        [ "$(strip_macros <<<"$mine")" = "$(strip_macros <<<"$spec_words")" ]
    if [ "$rel" = 8.3 ]; then
        check "8.3: XCP-ng's --enable-werror is kept (all of QEMU is -Werror)" \
            bash -c '[[ $0 == *" --enable-werror "* ]] && grep -q "^QEMU_CFLAGS=.*-Werror" "$1"' \
            "$conf" "$BT/build/config-host.mak"
    fi

    # -- -Werror for our file: the recorded compile command, run again
    cc=$(sed -n 's/^vgpu-stub-cc: //p' "$R")
    check "vgpu-stub.o's compile command has -Werror" grep -q -e ' -Werror ' <<<"$cc"
    probe=${cc// -o hw\/misc\/vgpu-stub.o / -o $T/probe.o }
    probe=${probe// -MF hw\/misc\/vgpu-stub.d / -MF $T/probe.d }
    probe=${probe// $BT\/hw\/misc\/vgpu-stub.c/ $T/probe.c}
    cp "$TOP/qemu-dm-patch/vgpu-stub.c" "$T/probe.c"
    bash -c "$probe" >"$T/cc.log" 2>&1
    crc=$?
    check "that command compiles vgpu-stub.c again, without a diagnostic" \
        bash -c '[ "$0" = 0 ] && [ ! -s "$1" ] && [ -s "$2" ]' "$crc" "$T/cc.log" "$T/probe.o" ||
        show "$T/cc.log"
    printf '\nstatic int vgpu_probe_unused_variable;\n' >>"$T/probe.c"
    rm -f "$T/probe.o"
    bash -c "$probe" >"$T/cc.log" 2>&1
    check "control: with an unused variable added it fails (-Werror=unused-variable)" \
        grep -q 'vgpu_probe_unused_variable.*defined but not used \[-Werror=unused-variable\]' "$T/cc.log" ||
        show "$T/cc.log"

    # -- the binary
    "$BIN" -device help >"$T/devices" 2>&1
    check "-device help lists vgpu-stub" \
        grep -q '^name "vgpu-stub", bus PCI, desc "vgpu paravirtual GPU-sharing device' "$T/devices"
    check "... and the devices of XCP-ng's patches (NVIDIA's vgpu, GVT-g's vgt-isa), xen-platform" \
        bash -c 'grep -q "^name \"xen-platform\"" "$0" && grep -q "^name \"vgpu\", bus System" "$0" &&
                 grep -q "^name \"vgt-isa\"" "$0"' "$T/devices"
    "$BIN" -device vgpu-stub,help >"$T/props" 2>&1
    missing=
    for p in pool priority vm-id socket timeout-ms; do grep -q "^  $p=" "$T/props" || missing+=" $p"; done
    check "-device vgpu-stub,help lists pool, priority, vm-id, socket, timeout-ms${missing:+ (missing:$missing)}" \
        [ -z "$missing" ]
    stub=$(sed -n 's/^stubbed: \([^(]*\) (.*/\1/p' "$R" | sed 's/ *$//')
    echo "    note: stubbed in this build (XCP-ng's GVT-g display code needs XenServer's libdrm): $stub"
    sed -n 's/^stubbed: [^(]*(\(.*\))$/\1/p' "$R" | fold -s -w 96 | sed 's/^/      /'
    nm "$BIN" >"$T/nm" 2>/dev/null
    check "the GVT-g stub is linked, vgt_console.c is not ($stub from vgt-console-stub.c; no xengt_new_fb)" \
        bash -c 'for s in $1; do grep -q " T $s\$" "$0" || exit 1; done; ! grep -q " xengt_new_fb\$" "$0" &&
                 grep -q " T vgt_vga_init\$" "$0"' "$T/nm" "$stub"

    # -- the device's qtest suite against it
    qstart=$(date +%s)
    VGPU_QEMU=$BIN "$QTEST" >"$T/qtest.log" 2>&1
    qrc=$?
    qsecs=$(($(date +%s) - qstart))
    sed 's/^/    /' "$T/qtest.log"
    qsum=$(tail -n 1 "$T/qtest.log")
    check "the device's qtest suite passes on XCP-ng $rel's qemu-system-i386 ($qsum, ${qsecs}s)" \
        bash -c '[ "$0" = 0 ] && [[ $1 =~ ^[0-9]+\ passed,\ 0\ failed$ ]] && [ "${1%% *}" -ge 21 ]' "$qrc" "$qsum"
    summary+=("XCP-ng $rel: $(sed -n 's/^patches: XCP-ng [^:]*: //p' "$R"); qtest on qemu-system-i386 4.2: $qsum; build ${secs}s ($how)")
done

echo "== control: a patch that does not apply, without a known reason, stops the build"
# A copy of the 8.3 fixtures (links) whose spec lists one more, failing patch
# first; the build must stop at it, naming it, before configure.
F=$T/fixtures
mkdir -p "$F/qemu-rpm-8.3/SPECS" "$F/qemu-rpm-8.3/SOURCES"
ln -s "$FIX/qemu-4.2.0.tar.xz" "$F/"
for f in "$FIX"/qemu-rpm-8.3/SOURCES/*; do ln -s "$f" "$F/qemu-rpm-8.3/SOURCES/"; done
printf -- '--- a/VERSION\n+++ b/VERSION\n@@ -1 +1 @@\n-4.2.1\n+4.2.1-not-4.2.0\n' \
    >"$F/qemu-rpm-8.3/SOURCES/zz-control-not-for-4.2.0.patch"
awk '!done && /^Patch[0-9]+:/ { print "Patch999999: zz-control-not-for-4.2.0.patch"; done = 1 } { print }' \
    "$FIX/qemu-rpm-8.3/SPECS/qemu.spec" >"$F/qemu-rpm-8.3/SPECS/qemu.spec"
VGPU_XCPNG_FIXTURES=$F VGPU_CACHE=$T/cache "$BUILD_SH" --release 8.3 >"$T/out" 2>"$T/err"
rc=$?
check "the build fails (exit $rc), names the patch and says no reason is known" \
    bash -c '[ "$0" != 0 ] && grep -q "Patch999999 zz-control-not-for-4.2.0.patch does not apply to 4.2.0 and KNOWN_4_2_0" "$1"' \
    "$rc" "$T/err" || show "$T/err"
check "... before configure ran" bash -c '! grep -q "^build-qemu-xcpng: configure" "$0"' "$T/err"

echo "== summary"
for s in "${summary[@]}"; do echo "$s"; done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
