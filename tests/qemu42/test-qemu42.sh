#!/bin/bash
# test-qemu42.sh - checks the vgpu-stub series for XCP-ng's qemu-dm (QEMU
# 4.2.1) and the spec conversion, as far as this machine allows.
#
# No QEMU 4.2.1 source can be had here (Debian 12 has 7.2 only), so the
# series is applied to a FIXTURE: a tree holding the first line of each
# glued file as QEMU 4.2.1 has it (the only lines the glue's context uses),
# after a stand-in for XCP-ng's own patches changed the end of every file.
# The spec conversion runs on a fixture qemu.spec written here with the
# structure of XCP-ng's.  The device is compiled and tested for real on
# QEMU 7.2 elsewhere (tests/device, tests/e2e); here an audit checks it
# uses no QEMU API that 4.2 lacks outside its compat block.
set -u
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
TOP=${VGPU_TOP:-$(cd "$HERE/../.." && pwd)}
QDIR=$TOP/qemu-dm-patch
T=$(mktemp -d /tmp/vgpu-qemu42-XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $1"; }
nok() { failed=$((failed + 1)); echo "FAILED: $1${2:+ ($2)}"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else nok "$name"; fi; }

for tool in patch rpmspec; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done

# ---------------------------------------------------------------- series
"$QDIR/make-series.sh" --qemu 4.2.1 "$T/series" 2>"$T/series.log"
check "make-series.sh --qemu 4.2.1 writes three patches" \
    [ "$(grep -c . "$T/series/series" 2>/dev/null)" = 3 ]
check "the patches are named for XCP-ng's SOURCES (vgpu-NNNN-)" \
    bash -c '! grep -qv "^vgpu-[0-9]\{4\}-.*\.patch$" "$0"' "$T/series/series"

# The fixture: first lines of QEMU 4.2.1's files, and a tail that a
# stand-in for XCP-ng's patches changed.
F=$T/qemu-4.2.1-fixture
mkdir -p "$F/hw/misc" "$F/default-configs" "$F/include/hw/misc"
printf 'config APPLESMC\n    bool\n    depends on ISA_BUS\n' >"$F/hw/misc/Kconfig"
printf 'common-obj-$(CONFIG_APPLESMC) += applesmc.o\n' >"$F/hw/misc/Makefile.objs"
printf '# See docs/devel/tracing.txt for syntax documentation.\n\n' >"$F/hw/misc/trace-events"
printf '# Default configuration for i386-softmmu\n' >"$F/default-configs/i386-softmmu.mak"
for f in hw/misc/Kconfig hw/misc/Makefile.objs hw/misc/trace-events \
    default-configs/i386-softmmu.mak; do
    printf '# changed by a stand-in for XCP-ng patch %s\nCONFIG_XEN=y\n' "$f" >>"$F/$f"
done
cp -r "$F" "$T/pristine"

applied=0
while read -r p; do
    if (cd "$F" && patch -p1 --dry-run -s <"$T/series/$p" >/dev/null &&
        patch -p1 -s <"$T/series/$p"); then
        applied=$((applied + 1))
    else
        nok "$p applies with patch -p1"
    fi
done <"$T/series/series"
check "every patch applies after the stand-in XCP-ng changes" [ "$applied" = 3 ]
check "hw/misc/vgpu-stub.c in the series is the device source, byte for byte" \
    cmp -s "$F/hw/misc/vgpu-stub.c" "$QDIR/vgpu-stub.c"
check "include/hw/misc/vgpu_protocol.h is the contract, byte for byte" \
    cmp -s "$F/include/hw/misc/vgpu_protocol.h" "$TOP/include/vgpu_protocol.h"
check "Kconfig declares VGPU_STUB depending on PCI" \
    grep -Pzq 'config VGPU_STUB\n    bool\n    depends on PCI\n' "$F/hw/misc/Kconfig"
check "Makefile.objs builds vgpu-stub.o" \
    grep -qx 'common-obj-$(CONFIG_VGPU_STUB) += vgpu-stub.o' "$F/hw/misc/Makefile.objs"
check "i386-softmmu.mak selects the device (--without-default-devices)" \
    grep -qx 'CONFIG_VGPU_STUB=y' "$F/default-configs/i386-softmmu.mak"
for f in hw/misc/Kconfig hw/misc/Makefile.objs hw/misc/trace-events \
    default-configs/i386-softmmu.mak; do
    check "$f: the glue only adds lines on top, the rest is as it was" \
        bash -c '[ "$(tail -n "$(wc -l <"$0")" "$1")" = "$(cat "$0")" ]' \
        "$T/pristine/$f" "$F/$f"
done
# Every trace event the device calls is declared.
missing=
for ev in $(grep -o 'trace_vgpu_stub_[a-z_]*' "$QDIR/vgpu-stub.c" | sort -u); do
    grep -q "^${ev#trace_}(" "$F/hw/misc/trace-events" || missing+=" $ev"
done
check "trace-events declares every trace point the device calls" [ -z "$missing" ]

# ---------------------------------------------------------------- spec
cat >"$T/qemu.spec" <<'SPEC'
%global usver 4.2.1
%global xsver 4.6.4
%global xsrel %{xsver}%{?xscount}%{?xshash}

Summary: qemu-dm device model
Name: qemu
Epoch: 2
Version: 4.2.1
Release: %{?xsrel}.2%{?dist}
License: GPL
Source0: qemu-4.2.1.tar.gz
Patch0: 0001-first-upstream-fix.patch
Patch1: 0002-second-upstream-fix.patch
Patch2: build-configuration.patch

# XCP-ng patches
Patch1000: qemu-4.2.1-CVE-backport.patch

%description
This package contains Qemu.

%prep
%autosetup -p1

%build
./configure --enable-xen --target-list=i386-softmmu --without-default-devices

%install
make install DESTDIR=%{buildroot}

%files
%{_libdir}/xen/bin

%changelog
* Tue Feb 11 2025 Someone <someone@example.org> - 4.2.1-4.6.4.2
- an XCP-ng change
SPEC
cp "$T/qemu.spec" "$T/qemu.spec.orig"
"$QDIR/xcpng/xcpng-qemu-spec.sh" "$T/qemu.spec" "$T/series" "$T/vgpu.spec" 2>"$T/conv.log"
check "xcpng-qemu-spec.sh converts the spec" [ -s "$T/vgpu.spec" ]
rpmspec -P "$T/vgpu.spec" >"$T/parsed" 2>"$T/rpmspec.log"
check "rpmspec parses the converted spec" [ -s "$T/parsed" ]
check "Name stays qemu" grep -qx 'Name: qemu' "$T/parsed"
check "Epoch stays 2" grep -qx 'Epoch: 2' "$T/parsed"
check "Release ends with our suffix before the dist tag" \
    grep -Eq '^Release: 4\.6\.4\.2\.vgpu[0-9]+$' "$T/parsed"
check "our patches are Patch1100..1102, after XCP-ng's Patch1000" \
    bash -c 'grep -q "^Patch1100: vgpu-0001-" "$0" && grep -q "^Patch1102: vgpu-0003-" "$0"' \
    "$T/parsed"
check "XCP-ng's own patches are untouched" \
    bash -c 'grep "^Patch[0-9]*:" "$0" | head -n 4 | diff - <(grep "^Patch[0-9]*:" "$1") >/dev/null' \
    "$T/vgpu.spec" "$T/qemu.spec.orig"
check "a changelog entry of ours comes first" \
    bash -c 'grep -A1 "^%changelog" "$0" | tail -n 1 | grep -q "vgpu project"' "$T/vgpu.spec"
check "only our lines were added (nothing else changed)" \
    bash -c '[ "$(diff "$0" "$1" | grep -c "^<")" = 1 ]' "$T/qemu.spec.orig" "$T/vgpu.spec"
sed -i 's/^Patch1000:/Patch1150:/' "$T/qemu.spec"
"$QDIR/xcpng/xcpng-qemu-spec.sh" "$T/qemu.spec" "$T/series" "$T/high.spec" 2>/dev/null
check "when XCP-ng's patches reach 1150, ours start at 1151" \
    grep -q '^Patch1151: vgpu-0001-' "$T/high.spec"
"$QDIR/xcpng/xcpng-qemu-spec.sh" "$T/vgpu.spec" "$T/series" "$T/again.spec" 2>/dev/null
rc=$?
check "converting an already converted spec is refused (exit 3)" [ "$rc" = 3 ]

# ---------------------------------------------------------------- API audit
# The QEMU API the device may use on 4.2.1: every call below exists there
# (checked against 4.2's headers when the device was written).  A new call
# fails this test until someone checks it on 4.2 and adds it here, or puts
# it behind the compat block.
known_42='qemu_log_mask stl_le_p ldl_le_p stw_le_p error_setg error_report
timer_del timer_new_ms timer_mod timer_free qemu_clock_get_ms
qemu_set_fd_handler g_strdup g_malloc g_malloc0 g_free type_register_static
type_init pci_register_bar memory_region_init_io'
compat_only='device_class_set_props object_class_property_set_description'
used=$(sed '/QEMU version differences/,/^\/\* ---*- \*\/$/d' "$QDIR/vgpu-stub.c" |
    grep -oE '\b(qemu_[a-z_]+|pci_[a-z_]+|timer_[a-z_]+|memory_region_[a-z_]+|error_(setg|report|propagate)[a-z_]*|object_[a-z_]+|device_class_[a-z_]+|g_[a-z0-9_]+|st[bwlq]_le_p|ld[bwlq]_le_p|type_[a-z_]+)\(' |
    tr -d '(' | sort -u)
unknown=
for f in $used; do
    case " $(echo $known_42) " in *" $f "*) ;; *) unknown+=" $f" ;; esac
done
check "the device calls no QEMU function outside the 4.2 list (found:${unknown:- none})" \
    [ -z "$unknown" ]
for f in $compat_only; do
    n=$(grep -c "\b$f\b" "$QDIR/vgpu-stub.c")
    check "$f is used only inside the compat block" \
        [ "$(sed -n '/QEMU version differences/,/^\/\* ---*- \*\/$/p' "$QDIR/vgpu-stub.c" | grep -c "\b$f\b")" = "$n" ]
done
check "the compat block keys on QEMU_VERSION_MAJOR (config-host.h in 4.2 and 7.2)" \
    grep -q '^#if QEMU_VERSION_MAJOR < 5' "$QDIR/vgpu-stub.c"

echo "note: QEMU 4.2.1 itself is not available here; the series was applied to a fixture, not compiled"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
