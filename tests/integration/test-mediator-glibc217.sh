#!/bin/bash
# test-mediator-glibc217.sh - the mediator as XCP-ng's dom0 runs it: built
# for glibc 2.17 (mk/common.mk's DOM0=1, the toolchain of
# scripts/dom0-toolchain.sh) and run with glibc 2.17's loader and libraries
# (tests/lib/run-glibc217.sh), loading the real libxenstore built for 2.17.
#
#   1. builds BUILD/dom0/mediator/vgpu-mediator (CPU backend) and checks
#      that it needs nothing above GLIBC_2.17 (tests/rpm/check-glibc.sh);
#   2. runs it under glibc 2.17 as 8.3 (libxenstore.so.4, versioned), as
#      8.2 (libxenstore.so.3.0, unversioned) and with no libxenstore: it
#      must load the one there from the 2.17 sysroot, or say clearly that
#      none loads (common/xs-dl.c);
#   3. runs the whole integration suite (BUILD/integration/test-mediator,
#      VGPU_MEDIATOR_BIN) against it, once with each libxenstore.
#
# Usage: test-mediator-glibc217.sh BUILD_DIR   (tests/integration/Makefile
# installs BUILD_DIR/integration/test-mediator-glibc217, which runs this
# with its BUILD_DIR).  Prints one line per check, each suite's summary
# and "N passed, N failed"; exit 0 pass, 1 fail, 77 skip (no toolchain and
# no npm to fetch it, or the suite not built).
set -u

HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:?usage: test-mediator-glibc217.sh BUILD_DIR}" && pwd)
RUN=$TOP/tests/lib/run-glibc217.sh
SUITE=$BUILD/integration/test-mediator
MED=$BUILD/dom0/mediator/vgpu-mediator
VERSION=$(head -n 1 "$TOP/VERSION" | tr -d '[:space:]')
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}

if [ ! -x "$SUITE" ] || [ ! -x "$BUILD/xs-server/xs-server" ]; then
    echo "SKIP: $SUITE or $BUILD/xs-server/xs-server not built"
    exit 77
fi
if ! "$TOP/scripts/dom0-toolchain.sh" >/dev/null 2>"$BUILD/dom0-toolchain.log"; then
    cat "$BUILD/dom0-toolchain.log"
    if ! command -v npm >/dev/null; then
        echo "SKIP: no dom0 toolchain and no npm to fetch it (Debian package npm)"
        exit 77
    fi
    bad "scripts/dom0-toolchain.sh failed"
    finish
fi

T=$(mktemp -d /tmp/vgpu-test-glibc217.XXXXXX)
pids=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    [ -n "${VGPU_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

# --- 1. the build ------------------------------------------------------
start=$(date +%s)
if make --no-print-directory -C "$TOP/mediator" DOM0=1 NVCC=/nonexistent \
        O="$BUILD/dom0/mediator" DOM0_XS_INC="$BUILD/dom0/xs-include" \
        "$MED" >"$T/build.log" 2>&1; then
    ok "vgpu-mediator built for glibc 2.17 ($(($(date +%s) - start))s)"
else
    bad "the glibc 2.17 build of vgpu-mediator failed:"
    tail -n 30 "$T/build.log"
    finish
fi
if out=$("$TOP/tests/rpm/check-glibc.sh" "$MED"); then
    ok "${out#check-glibc: }"
else
    bad "${out#check-glibc: }"
fi

start=$(date +%s)
if "$RUN" --prepare >"$T/prepare.log" 2>&1; then
    ok "glibc 2.17 runner ready: sysroot loader, libxenstore built for 2.17 ($(($(date +%s) - start))s)"
else
    bad "tests/lib/run-glibc217.sh --prepare failed:"
    tail -n 30 "$T/prepare.log"
    finish
fi
# (the sysroot's lib64 is a link to lib: /proc/PID/maps names lib)
SYSROOT_REAL=$(readlink -f "$("$TOP/scripts/dom0-toolchain.sh" --sysroot)")
XSDIR=$("$TOP/tests/integration/libxenstore-glibc217.sh" 2>/dev/null | tail -n 1)

# --- 2. under glibc 2.17, each libxenstore --------------------------------
v=$("$RUN" "$MED" --version 2>&1 | head -n 1)
if grep -q " $VERSION " <<<"$v "; then
    ok "under glibc 2.17: $v"
else
    bad "under glibc 2.17, --version says: $v"
fi

# A mediator that must reach for xenstore at once (a domain's folder is
# there), its xenstore socket missing: the library is loaded all the same.
start_probe() { # start_probe NAME XENSTORE (then $! is its pid)
    local d=$T/$1
    mkdir -p "$d/qemu/root-7" "$d/run"
    XENSTORED_PATH=$d/no-xenstored VGPU_GLIBC217_XENSTORE=$2 "$RUN" "$MED" \
        --qemu-root "$d/qemu" --log stderr --verbose \
        --status-file "$d/run/status" --admin-socket "$d/run/admin.sock" \
        --pools "$d/no-pools.conf" >"$d/out" 2>"$d/log" &
}
wait_for() { # wait_for SECONDS COMMAND...
    local end=$(($(date +%s) + $1))
    shift
    until "$@"; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.1
    done
}
maps_have() { grep -q -- "$2" "/proc/$1/maps" 2>/dev/null; }

for xs in 4 3.0; do
    start_probe "probe-$xs" "$xs"
    pid=$!
    pids+=("$pid")
    lib=$XSDIR/$xs/libxenstore.so.$xs
    if wait_for 5 maps_have "$pid" "$lib"; then
        ok "libxenstore.so.$xs (XCP-ng $([ "$xs" = 4 ] && echo 8.3 || echo 8.2)'s) loaded at run time from the 2.17 build"
    else
        bad "libxenstore.so.$xs not loaded (log: $(tail -n 3 "$T/probe-$xs/log" | tr '\n' ' '))"
    fi
    if maps_have "$pid" "$SYSROOT_REAL/.*/libc-2.17.so" &&
        ! grep -q '/lib/x86_64-linux-gnu/' "/proc/$pid/maps" 2>/dev/null; then
        ok "libxenstore.so.$xs: the process runs on the sysroot's glibc 2.17, no host library mapped"
    else
        bad "libxenstore.so.$xs: not the sysroot's libc alone: $(grep -o '/[^ ]*\.so[^ ]*' "/proc/$pid/maps" 2>/dev/null | sort -u | tr '\n' ' ')"
    fi
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
done

start_probe probe-none none
pid=$!
pids+=("$pid")
if wait_for 5 grep -q 'libxenstore not loaded (libxenstore.so.4: .*; libxenstore.so.3.0: .*; libxenstore.so: ' "$T/probe-none/log"; then
    ok "no libxenstore: said once, naming each library tried ($(grep -c 'libxenstore not loaded' "$T/probe-none/log") line)"
else
    bad "no libxenstore: no clear message (log: $(tail -n 3 "$T/probe-none/log" | tr '\n' ' '))"
fi
if kill -0 "$pid" 2>/dev/null; then
    ok "no libxenstore: the mediator keeps running (xs_open fails, as with xenstored down)"
else
    bad "no libxenstore: the mediator exited"
fi
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null

# --- 3. the integration suite ----------------------------------------------
# The suite execs VGPU_MEDIATOR_BIN with the mediator's arguments.
for xs in 4 3.0; do
    w=$T/vgpu-mediator-glibc217-$xs
    printf '#!/bin/sh\nVGPU_GLIBC217_XENSTORE=%s exec %s %s "$@"\n' "$xs" "$RUN" "$MED" >"$w"
    chmod 0755 "$w"
    echo "--- integration suite, glibc 2.17, libxenstore.so.$xs ---"
    start=$(date +%s)
    VGPU_MEDIATOR_BIN=$w "$SUITE" "$BUILD" >"$T/suite-$xs.log" 2>&1
    rc=$?
    summary=$(tail -n 1 "$T/suite-$xs.log")
    if [ $rc = 0 ]; then
        ok "integration suite under glibc 2.17, libxenstore.so.$xs: $summary ($(($(date +%s) - start))s)"
    else
        bad "integration suite under glibc 2.17, libxenstore.so.$xs (exit $rc): $summary"
        grep -A1 'FAILED' "$T/suite-$xs.log" | head -n 20
        grep -q -- '--- mediator log' "$T/suite-$xs.log" &&
            sed -n '/--- mediator log/,$p' "$T/suite-$xs.log" | tail -n 15
    fi
done

finish
