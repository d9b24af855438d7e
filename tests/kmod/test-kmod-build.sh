#!/bin/bash
# test-kmod-build.sh - vgpu.ko builds with Kbuild against the installed
# kernel headers (the kernel the e2e tests boot), with W=1 and without a
# single warning, and is the module it should be (license, PCI alias,
# vermagic, parameters).  Exit 77 with a SKIP line where no headers are.
set -u
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
. "$HERE/../lib/check.sh"
T=$(mktemp -d /tmp/vgpu-kmod-test-XXXXXX)
trap 'rm -rf "$T"' EXIT

k=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
KVER=${VGPU_KERNEL_VERSION:-${k#/boot/vmlinuz-}}
[ -n "$KVER" ] || KVER=$(uname -r)
"$HERE/build-kmod.sh" "$T" "$KVER" W=1 >"$T/out.log" 2>&1
rc=$?
if [ $rc = 77 ]; then
    cat "$T/out.log"
    exit 77
fi
check "vgpu.ko builds with Kbuild W=1 against $KVER" [ $rc = 0 ] || show "$T/out.log" 30
check "no warning in the Kbuild log (W=1)" \
    bash -c '! grep -Ei "warning|error" "$0"' "$T/kbuild.log" || show "$T/kbuild.log" 30
if [ -f "$T/vgpu.ko" ]; then
    mi() { modinfo -F "$1" "$T/vgpu.ko" 2>/dev/null; }
    check "license GPL" [ "$(mi license)" = GPL ]
    check "binds 1234:7647 (alias pci:v00001234d00007647)" \
        bash -c 'grep -q "^pci:v00001234d00007647" <<<"$0"' "$(mi alias)"
    check "vermagic names $KVER" bash -c 'grep -q "^$1 " <<<"$0"' "$(mi vermagic)" "$KVER"
    for p in max_inflight queue_depth use_rings use_msix timeout_ms; do
        check "parameter $p" bash -c 'grep -q "^$1:" <<<"$0"' "$(mi parm)" "$p"
    done
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
