#!/bin/bash
# test-qemu42.sh - checks the vgpu-stub series for XCP-ng's qemu-dm (QEMU
# 4.2.1) and the conversion of XCP-ng's qemu.spec, in seconds and without
# building QEMU.  Exit 0: all passed; 77: a tool is missing (skipped); 1:
# failures.
#
# The real build is test-xcpng-qemu.sh next to this file: QEMU 4.2.0 from
# ../shared/fixtures/xcpng (XCP-ng ships 4.2.1, whose tarball cannot be had
# here; 4.2.0 -> 4.2.1 changes a few files) with XCP-ng's own patches, then
# ours, configured with XCP-ng's configure line, compiled (vgpu-stub.c with
# -Werror), and the device's qtest suite run against that qemu-system-i386.
# This script keeps the checks that need no build:
#  A. the series itself (names, vgpu-version, the device source byte for
#     byte, the trace events) and its anchoring, on a FIXTURE tree (written
#     below; it is not QEMU): the four glued files hold the first lines QEMU
#     4.2.1 has (the only lines the glue's context uses) and filler that
#     stand-in "XCP-ng patches" change below line 1.  The glue must only add
#     lines on top, and must fail loudly when a first line changes (the real
#     build shows it applies after today's XCP-ng patches; this shows what
#     happens when they change);
#  B. rpmbuild -bp runs the converted fixture spec on a tarball of that
#     fixture: %autosetup -p1 applies the stand-in XCP-ng patches, then ours
#     (XCP-ng's real package lacks its LFS tarballs, so rpmbuild cannot run
#     its spec here);
#  C. the spec conversion on a fixture qemu.spec with the structure of
#     XCP-ng's into the spec of our package qemu-dm-vgpu (rpmspec parses
#     it; XCP-ng's %prep and %build kept; our %install and %files only;
#     releases compare with rpm's own rules);
#  D. the device source compiled (-fsyntax-only) against stand-ins for the
#     QEMU 4.2 headers (qemu-4.2-api/, written for this test from 4.2's API)
#     that declare only what 4.2 has, with negative controls: a call to an
#     API 4.2 lacks outside the compat block fails to compile.  The real
#     compile against QEMU 4.2's own headers is test-xcpng-qemu.sh's;
#  E. XCP-ng's real qemu.spec (8.3 and 8.2, from ../shared/fixtures/xcpng,
#     or $VGPU_XCPNG_FIXTURES) converted: rpmspec parses it, Name
#     qemu-dm-vgpu, no Epoch, XCP-ng's Release with our suffix, its %prep
#     and %build kept, and rpm's %autosetup applies XCP-ng's patches in
#     their order, then ours.
# The rpm transaction test of the package (beside XCP-ng's qemu in an rpm
# database) is tests/rpm/test-qemu-dm-rpm.sh.
# The device's behaviour is tested on QEMU 7.2 (tests/device, tests/e2e)
# and on XCP-ng's 4.2 (test-xcpng-qemu.sh runs tests/device's suite).
set -u
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
TOP=${VGPU_TOP:-$(cd "$HERE/../.." && pwd)}
QDIR=$TOP/qemu-dm-patch
API=$HERE/qemu-4.2-api
T=$(mktemp -d /tmp/vgpu-qemu42-XXXXXX)
trap 'rm -rf "$T"' EXIT
unset VGPU_VERSION VGPU_QEMU_REBUILD VGPU_PACKAGER SOURCE_DATE_EPOCH
# ok, nok, check, show (and the counters passed, failed)
. "$HERE/../lib/check.sh"

for tool in patch diff cmp rpmspec rpmbuild gcc tar gzip; do
    command -v "$tool" >/dev/null ||
        { echo "SKIP: $tool is not installed (Debian: rpm, patch, gcc, diffutils)"; exit 77; }
done
FILES="hw/misc/Kconfig hw/misc/Makefile.objs hw/misc/trace-events default-configs/i386-softmmu.mak"

echo "== A. the 4.2.1 series on a fixture tree (not QEMU 4.2.1: see the top of this script)"
S=$T/series
"$QDIR/make-series.sh" --qemu 4.2.1 "$S" 2>"$T/series.log" || { nok "make-series.sh --qemu 4.2.1"; show "$T/series.log"; }
mapfile -t PATCHES < <(awk 'NF { print $1 }' "$S/series" 2>/dev/null)
check "make-series.sh --qemu 4.2.1 writes three patches and a series file" [ ${#PATCHES[@]} = 3 ]
check "they are named vgpu-NNNN-*.patch (no XCP-ng patch uses that prefix)" \
    bash -c '! grep -qv "^vgpu-[0-9]\{4\}-[a-z0-9-]*\.patch$" "$0"' "$S/series"
check "vgpu-version holds vgpu's VERSION" \
    [ "$(cat "$S/vgpu-version" 2>/dev/null)" = "$(head -n 1 "$TOP/VERSION" | tr -d '[:space:]')" ]
# The device source, read back from the patch text itself (no patch tool).
sed -n '/^+++ b\/hw\/misc\/vgpu-stub.c$/,/^diff --git/p' "$S/${PATCHES[0]}" |
    sed '1,2d;/^diff --git/,$d' | sed 's/^+//' >"$T/device-from-patch.c"
check "patch 0001 carries hw/misc/vgpu-stub.c byte for byte (read from the patch)" \
    cmp -s "$T/device-from-patch.c" "$QDIR/vgpu-stub.c"
# The 7.2 series (make-series.sh's default) is still the 7.2 glue.
"$QDIR/make-series.sh" "$T/series72" 2>/dev/null
check "make-series.sh without --qemu still writes the 7.2 series" \
    bash -c 'cmp -s "$0/0002-hw-misc-build-the-vgpu-stub-device.patch" "$1/0001-hw-misc-build-the-vgpu-stub-device.patch" &&
             [ ! -e "$0/vgpu-version" ]' "$T/series72" "$QDIR/qemu-7.2"

# The fixture: known first lines of QEMU 4.2.1's files, then filler that
# stands for the unknown rest.
F=$T/a
mkdir -p "$F/hw/misc" "$F/default-configs"
cat >"$F/hw/misc/Kconfig" <<'EOF'
config APPLESMC
    bool
    depends on ISA_BUS

# [fixture] stands for the rest of QEMU 4.2.1's hw/misc/Kconfig
config FIXTURE_DEVICE
    bool
EOF
cat >"$F/hw/misc/Makefile.objs" <<'EOF'
common-obj-$(CONFIG_APPLESMC) += applesmc.o
# [fixture] stands for the rest of QEMU 4.2.1's hw/misc/Makefile.objs
common-obj-$(CONFIG_FIXTURE_DEVICE) += fixture.o
EOF
cat >"$F/hw/misc/trace-events" <<'EOF'
# See docs/devel/tracing.txt for syntax documentation.

# [fixture] stands for the rest of QEMU 4.2.1's hw/misc/trace-events
fixture_event(int x) "x %d"
EOF
cat >"$F/default-configs/i386-softmmu.mak" <<'EOF'
# Default configuration for i386-softmmu
# [fixture] stands for the rest of QEMU 4.2.1's default-configs/i386-softmmu.mak
CONFIG_FIXTURE_DEVICE=y
EOF
cp -r "$F" "$T/pristine"

# Stand-ins for XCP-ng's patches: Patch0..3 (3 like build-configuration.patch
# rewrites the device list) change lines after line 1, Patch1000 appends.
xcpng_patch() { # name sed-script-per-file...: edit a copy, diff it
    local name=$1 f
    shift
    rm -rf "$T/b" && cp -r "$T/a" "$T/b"
    for f in $FILES; do sed -i "$1" "$T/b/$f"; done
    (cd "$T" && diff -ru a b) >"$T/$name"
    (cd "$T/a" && patch -p1 -s --fuzz=0 <"$T/$name")
}
XCPNG=(xcpng-0000-upstream-fix.patch xcpng-0001-upstream-fix.patch
       xcpng-0002-upstream-fix.patch build-configuration.patch
       qemu-4.2.1-CVE-backport.patch)
xcpng_patch "${XCPNG[0]}" '$a # [stand-in XCP-ng patch 0] appended at the end'
xcpng_patch "${XCPNG[1]}" 's/^\(.*\[fixture\].*\)$/\1 (changed by stand-in patch 1)/'
xcpng_patch "${XCPNG[2]}" '$a junk from stand-in patch 2'
xcpng_patch "${XCPNG[3]}" 's/FIXTURE_DEVICE/XEN_FIXTURE_DEVICE/'
xcpng_patch "${XCPNG[4]}" '$a # [stand-in XCP-ng patch 1000] appended at the end'
check "the stand-in XCP-ng patches changed every file below line 1" \
    bash -c 'for f in $2; do [ "$(head -n 1 "$0/$f")" = "$(head -n 1 "$1/$f")" ] &&
             ! cmp -s "$0/$f" "$1/$f" || exit 1; done' "$F" "$T/pristine" "$FILES"
cp -r "$F" "$T/xcpng-patched"

applied=0
for p in "${PATCHES[@]}"; do
    if command -v git >/dev/null &&
        ! (cd "$F" && git apply --check "$S/$p") >"$T/git.log" 2>&1; then
        nok "$p: git apply --check accepts it (a second, strict parser)"
        show "$T/git.log"
    fi
    if (cd "$F" && patch -p1 --fuzz=0 --dry-run <"$S/$p" >"$T/p.log" 2>&1 &&
        patch -p1 --fuzz=0 -s <"$S/$p" >>"$T/p.log" 2>&1); then
        applied=$((applied + 1))
    else
        nok "$p applies with patch -p1 --fuzz=0"
        show "$T/p.log"
    fi
done
check "all three apply with patch -p1 --fuzz=0 (rpm's default), after the stand-in XCP-ng patches" \
    [ "$applied" = 3 ]
check "no .rej or .orig files were left" \
    [ -z "$(find "$F" -name '*.rej' -o -name '*.orig')" ]
check "hw/misc/vgpu-stub.c in the patched tree is the device source, byte for byte" \
    cmp -s "$F/hw/misc/vgpu-stub.c" "$QDIR/vgpu-stub.c"
check "include/hw/misc/vgpu_protocol.h is include/vgpu_protocol.h, byte for byte" \
    cmp -s "$F/include/hw/misc/vgpu_protocol.h" "$TOP/include/vgpu_protocol.h"
for h in "$TOP"/include/vgpu/*.h; do
    check "include/hw/misc/vgpu/${h##*/} is include/vgpu/${h##*/}, byte for byte" \
        cmp -s "$F/include/hw/misc/vgpu/${h##*/}" "$h"
done
check "the series carries every header of include/vgpu/ and no other" \
    bash -c 'diff <(cd "$0" && ls) <(cd "$1" && ls)' "$TOP/include/vgpu" "$F/include/hw/misc/vgpu"
for f in $FILES; do
    check "$f: the glue only adds lines on top; XCP-ng's version follows unchanged" \
        bash -c 'n=$(wc -l <"$0"); [ "$(tail -n "$n" "$1")" = "$(cat "$0")" ] &&
                 [ "$(wc -l <"$1")" -gt "$n" ]' "$T/xcpng-patched/$f" "$F/$f"
done
check "Kconfig: config VGPU_STUB, bool, depends on PCI" \
    grep -Pzq '(^|\n)config VGPU_STUB\n    bool\n    depends on PCI\n' "$F/hw/misc/Kconfig"
check "Makefile.objs: common-obj-\$(CONFIG_VGPU_STUB) += vgpu-stub.o" \
    grep -qx 'common-obj-$(CONFIG_VGPU_STUB) += vgpu-stub.o' "$F/hw/misc/Makefile.objs"
check "default-configs/i386-softmmu.mak: CONFIG_VGPU_STUB=y (--without-default-devices)" \
    grep -qx 'CONFIG_VGPU_STUB=y' "$F/default-configs/i386-softmmu.mak"
missing=
for ev in $(grep -o '\btrace_vgpu_stub_[a-z_]*' "$QDIR/vgpu-stub.c" | sort -u); do
    grep -q "^${ev#trace_}(" "$F/hw/misc/trace-events" || missing+=" $ev"
done
check "trace-events declares every trace point the device calls${missing:+ (missing:$missing)}" \
    [ -z "$missing" ]
check "the 4.2.1 trace events are the 7.2 glue's, line for line" \
    bash -c 'diff <(grep "^vgpu_stub_" "$0") <(sed -n "s/^+\(vgpu_stub_\)/\1/p" "$1"/*.patch)' \
    "$F/hw/misc/trace-events" "$QDIR/qemu-7.2"
# Fail-safe: if XCP-ng ever changes line 1 of one of these files, the series
# must fail loudly at %prep, not apply somewhere else.
mkdir -p "$T/moved/hw/misc"
{ echo "# a line someone put on top"; cat "$T/xcpng-patched/hw/misc/Makefile.objs"; } \
    >"$T/moved/hw/misc/Makefile.objs"
sed -n '/^diff --git a\/hw\/misc\/Makefile.objs/,/^diff --git a\/hw\/misc\/trace-events/p' \
    "$S/${PATCHES[1]}" | sed '$d' >"$T/objs.patch"
check "a file whose first line changed makes the hunk fail (anchored at line 1, no fuzz)" \
    bash -c '! (cd "$0" && patch -p1 --fuzz=0 --dry-run <"$1" >/dev/null 2>&1)' \
    "$T/moved" "$T/objs.patch"

echo "== B. rpmbuild -bp: %autosetup -p1 applies the stand-in XCP-ng patches, then ours"
SPEC_IN=$T/qemu.spec
cat >"$SPEC_IN" <<'EOF'
# Fixture written by tests/qemu42 with the structure of XCP-ng's qemu.spec
# (it is not XCP-ng's spec).
%global package_speccommit 0000000000000000000000000000000000000000
%global usver 4.2.1
%global xsver 4.6.4
%global xsrel %{xsver}%{?xscount}%{?xshash}
%global package_srccommit v4.2.1

Summary: qemu-dm device model
Name: qemu
Epoch: 2
Version: 4.2.1
Release: %{?xsrel}.2%{?dist}
License: GPL
Source0: qemu-4.2.1.tar.gz
Patch0: xcpng-0000-upstream-fix.patch
Patch1: xcpng-0001-upstream-fix.patch
Patch2: xcpng-0002-upstream-fix.patch
Patch3: build-configuration.patch

# XCP-ng patches
Patch1000: qemu-4.2.1-CVE-backport.patch

BuildRequires: xen-dom0-libs-devel

%description
This package contains Qemu.

%prep
%autosetup -p1

%build
./configure --cc=gcc --cxx=/dev/null --enable-xen --target-list=i386-softmmu \
    --disable-tcg --without-default-devices

%install
make install DESTDIR=%{buildroot}

%files
%{_libdir}/xen/bin

%changelog
* Tue Feb 11 2025 Someone <someone@example.org> - 4.2.1-4.6.4.2
- An XCP-ng change

* Mon Jan 13 2025 Someone <someone@example.org> - 4.2.1-4.6.4.1
- An older XCP-ng change
EOF
cp "$SPEC_IN" "$T/qemu.spec.orig"
R=$T/rpmbuild
mkdir -p "$R/SOURCES" "$R/SPECS"
(cd "$T" && mv pristine qemu-4.2.1 && tar -czf "$R/SOURCES/qemu-4.2.1.tar.gz" qemu-4.2.1 &&
    mv qemu-4.2.1 pristine)
for p in "${XCPNG[@]}"; do cp "$T/$p" "$R/SOURCES/"; done
for p in "${PATCHES[@]}"; do cp "$S/$p" "$R/SOURCES/"; done
"$QDIR/xcpng/xcpng-qemu-spec.sh" --series "$S" "$SPEC_IN" "$R/SPECS/qemu.spec" 2>"$T/conv.log"
check "xcpng-qemu-spec.sh converts the fixture spec (exit 0)" [ $? = 0 ] || show "$T/conv.log"
rpmbuild -bp --nodeps --define "_topdir $R" --define 'dist .xcpng8.3' \
    "$R/SPECS/qemu.spec" >"$T/rpmbuild.log" 2>&1
check "rpmbuild -bp runs %prep to the end" [ $? = 0 ] || show "$T/rpmbuild.log"
B=$(find "$R/BUILD" -path '*/hw/misc/vgpu-stub.c' | head -n 1)
B=${B%/hw/misc/vgpu-stub.c}
check "the unpacked and patched tree has the device, byte for byte" \
    cmp -s "$B/hw/misc/vgpu-stub.c" "$QDIR/vgpu-stub.c"
check "it is the tree of section A: XCP-ng's patches, then ours" \
    bash -c 'for f in $2; do cmp -s "$0/$f" "$1/$f" || exit 1; done' "$B" "$F" "$FILES"

echo "== C. the spec conversion (fixture spec above; rpmspec parses the result)"
V=$(head -n 1 "$TOP/VERSION" | tr -d '[:space:]')
OUT=$R/SPECS/qemu.spec
rpmspec -P --define 'dist .xcpng8.3' "$OUT" >"$T/parsed" 2>"$T/rpmspec.log"
check "rpmspec -P parses the converted spec" [ -s "$T/parsed" ] || show "$T/rpmspec.log"
check "Name: qemu-dm-vgpu" grep -qx 'Name: qemu-dm-vgpu' "$T/parsed"
check "no Epoch (XCP-ng's is in xcpng_qemu_evr)" bash -c '! grep -q "^Epoch:" "$0"' "$T/parsed"
check "Release ends with our suffix .vgpu$V.1 before the dist tag" \
    grep -qx "Release: 4\.6\.4\.2\.vgpu${V//./\\.}\.1\.xcpng8\.3" "$T/parsed"
check "Provides: qemu-dm-vgpu(xcpng-qemu) = XCP-ng's Epoch:Version-Release" \
    grep -qx 'Provides: qemu-dm-vgpu(xcpng-qemu) = 2:4.2.1-4.6.4.2.xcpng8.3' "$T/parsed"
check "our patches are Patch1100..1102 after XCP-ng's Patch1000, in series order" \
    bash -c 'diff <(sed -n "s/^Patch\(11[0-9][0-9]\): //p" "$0") "$1/series"' "$T/parsed" "$S"
check "every Patch number of ours is > 1000, each number used once" \
    bash -c '[ -z "$(sed -n "s/^Patch\([0-9]*\):.*/\1/p" "$0" | sort | uniq -d)" ] &&
             [ "$(grep -c "^Patch1[1-9][0-9][0-9]: vgpu-" "$0")" = 3 ]' "$T/parsed"
# section SPEC NAME: the lines of a section, without its header
section() { awk -v s="%$2" '$1 ~ /^%(description|prep|build|install|check|files|changelog)$/ { on = ($1 == s); next } on' "$1"; }
export -f section
check "section() reads a section (XCP-ng's %build has its configure line)" \
    bash -c 'section "$0" build | grep -q "^\./configure "' "$T/qemu.spec.orig"
check "XCP-ng's %build is kept word for word" \
    bash -c 'diff <(section "$0" build) <(section "$1" build)' "$T/qemu.spec.orig" "$OUT"
check "XCP-ng's %prep too, but for -n qemu-%{version} (the tarball's folder)" \
    bash -c 'diff <(section "$0" prep | sed "s/^%autosetup -p1$/& -n qemu-%{version}/") <(section "$1" prep)' \
    "$T/qemu.spec.orig" "$OUT"
check "its Source, Patch, BuildRequires and License lines are all kept" \
    bash -c 'diff <(grep -E "^(Source|Patch|BuildRequires|License)" "$0") <(grep -E "^(Source|Patch|BuildRequires|License)" "$1" | grep -v "^Patch11[0-9][0-9]: vgpu-")' \
    "$T/qemu.spec.orig" "$OUT"
check "%files: our binary and its .xcpng-release beside it, in /usr/libexec/vgpu, only" \
    [ "$(rpmspec -q --define 'dist .xcpng8.3' --qf '' "$OUT" >/dev/null 2>&1; section "$OUT" files | grep . | tr '\n' ' ')" = \
      "%dir %{vgpu_qemu_dir} %{vgpu_qemu_dir}/qemu-system-i386 %{vgpu_qemu_dir}/qemu-system-i386.xcpng-release " ]
check "%install installs those two, nothing of XCP-ng's make install" \
    bash -c '! section "$0" install | grep -q "make.*install" && [ "$(section "$0" install | grep -c "%{buildroot}%{vgpu_qemu_dir}/qemu-system-i386")" = 2 ]' "$OUT"
check "%check wants vgpu-stub in -device help" \
    bash -c 'section "$0" check | grep -q "qemu-system-i386 -device help.*vgpu-stub"' "$OUT"
evr=$(rpmspec -q --srpm --qf '%{version}-%{release}' --define 'dist %{nil}' "$OUT" 2>/dev/null)
check "the changelog's first entry is ours, for $evr" \
    bash -c 'sed -n "/^%changelog/{n;p;q}" "$0" | grep -q "^\* .* vgpu project <vgpu@localhost> - $1\$"' \
    "$OUT" "$evr"
# rpm's own comparison (rpmvercmp), among our own builds (the Name is ours:
# XCP-ng's qemu is never compared with it).
ours=$(rpmspec -q --srpm --qf '%{release}' --define 'dist .xcpng8.3' "$OUT" 2>/dev/null)
vercmp() { rpm --eval "%{lua: print(rpm.vercmp('$1', '$2'))}" 2>/dev/null; }
export -f vercmp
check "a build from XCP-ng's next release (4.6.4.3) sorts above ours ($ours)" \
    [ "$(vercmp "4.6.4.3.vgpu$V.1.xcpng8.3" "$ours")" = 1 ]
check "so does a later vgpu on the same XCP-ng release, and a rebuild (.2)" \
    bash -c '[ "$(vercmp "4.6.4.2.vgpu9.9.9.1.xcpng8.3" "$0")" = 1 ] && [ "$(vercmp "4.6.4.2.vgpu$1.2.xcpng8.3" "$0")" = 1 ]' \
    "$ours" "$V"
"$QDIR/xcpng/xcpng-qemu-spec.sh" --series "$S" "$OUT" "$T/again.spec" 2>"$T/again.log"
rc=$?
check "converting a converted spec is refused (exit 3) and writes nothing" \
    bash -c '[ "$0" = 3 ] && [ ! -e "$1" ]' "$rc" "$T/again.spec"
cp "$OUT" "$T/inplace.spec"
"$QDIR/xcpng/xcpng-qemu-spec.sh" --series "$S" "$T/inplace.spec" "$T/inplace.spec" 2>/dev/null
check "in place, a second run leaves the spec as it was" cmp -s "$OUT" "$T/inplace.spec"
sed 's/^Patch1000:/Patch1150:/' "$T/qemu.spec.orig" >"$T/high.spec"
"$QDIR/xcpng/xcpng-qemu-spec.sh" --series "$S" "$T/high.spec" "$T/high.out" 2>/dev/null
check "when XCP-ng's patches reach 1150, ours start at 1151" \
    grep -q '^Patch1151: vgpu-0001-' "$T/high.out"
"$QDIR/xcpng/xcpng-qemu-spec.sh" "$T/qemu.spec.orig" "$T/two-args.spec" 2>/dev/null
check "the two-argument form (series made on the fly) gives the same spec" \
    cmp -s "$OUT" "$T/two-args.spec"
VGPU_VERSION=9.8.7 VGPU_QEMU_REBUILD=2 "$QDIR/xcpng/xcpng-qemu-spec.sh" --series "$S" \
    "$T/qemu.spec.orig" "$T/v.spec" 2>/dev/null
check "VGPU_VERSION and VGPU_QEMU_REBUILD set the suffix (.vgpu9.8.7.2)" \
    grep -qx 'Release: %{?xsrel}.2.vgpu9.8.7.2%{?dist}' "$T/v.spec"
# The script next to a series without vgpu-version (and two levels down,
# so no VERSION file above it either): it uses that series by default.
A1=$T/x/y/alone
mkdir -p "$A1" && cp "$QDIR/xcpng/xcpng-qemu-spec.sh" "$S/series" "$A1/" &&
    for p in "${PATCHES[@]}"; do cp "$S/$p" "$A1/"; done
"$A1/xcpng-qemu-spec.sh" "$T/qemu.spec.orig" "$T/nover.spec" 2>"$T/nover.log"
check "without any vgpu version: suffix .vgpu.1 and a warning" \
    bash -c 'grep -qx "Release: %{?xsrel}.2.vgpu.1%{?dist}" "$0" && grep -q "warning" "$1"' \
    "$T/nover.spec" "$T/nover.log"
sed 's/^Name: qemu$/Name: qemu-other/' "$T/qemu.spec.orig" >"$T/other.spec"
"$QDIR/xcpng/xcpng-qemu-spec.sh" --series "$S" "$T/other.spec" "$T/other.out" 2>/dev/null
rc=$?
check "a spec that is not XCP-ng's qemu is refused (exit 2)" \
    bash -c '[ "$0" = 2 ] && [ ! -e "$1" ]' "$rc" "$T/other.out"

echo "== D. API audit: the device against stand-ins for the QEMU 4.2 headers"
# trace.h from the 4.2.1 glue's trace-events: one function per event whose
# body hands the event's format and arguments to a printf-checked call, so
# argument types and formats are checked too.
awk '
BEGIN { print "void vgpu_trace_printf(const char *fmt, ...) GCC_FMT_ATTR(1, 2);" }
/^vgpu_stub_[a-z_]*\(/ {
    name = substr($0, 1, index($0, "(") - 1)
    rest = substr($0, index($0, "(") + 1)
    args = substr(rest, 1, index(rest, ")") - 1)
    fmt = substr(rest, index(rest, ")") + 1)
    sub(/^[ \t]+/, "", fmt)
    names = ""
    if (args != "void") {
        n = split(args, a, ",")
        for (i = 1; i <= n; i++) { m = split(a[i], w, /[ *]+/); names = names ", " w[m] }
    }
    printf "static inline void trace_%s(%s)\n{\n    vgpu_trace_printf(%s \"\\n\"%s);\n}\n",
        name, args, fmt, names
}' "$F/hw/misc/trace-events" >"$F/hw/misc/trace.h"
CFLAGS42="-std=gnu99 -fsyntax-only -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Wall -Wundef
 -Wwrite-strings -Wmissing-prototypes -Wstrict-prototypes -Wold-style-definition
 -Wformat=2 -Werror"
cc42() { # extra-include-dirs... -- source
    local inc=()
    while [ "$1" != -- ]; do inc+=(-I "$1"); shift; done
    gcc $CFLAGS42 "${inc[@]}" -I "$API" -I "$F/include" "$2" >"$T/cc.log" 2>&1
}
cc42 -- "$F/hw/misc/vgpu-stub.c"
check "the device compiles against the 4.2 API stand-ins (QEMU_VERSION 4.2.1)" [ $? = 0 ] ||
    show "$T/cc.log"
# Negative controls: the audit must catch what 4.2 lacks.
mkdir -p "$T/v72"
printf '#define QEMU_VERSION_MAJOR 7\n#define QEMU_VERSION_MINOR 2\n' >"$T/v72/config-host.h"
cc42 "$T/v72" -- "$F/hw/misc/vgpu-stub.c"
check "control: its 5.0+ branch (as on 7.2) does NOT compile against them" \
    grep -q 'device_class_set_props' "$T/cc.log"
sed 's/^\( *\)vgpu_set_props(dc, vgpu_properties);/\1device_class_set_props(dc, vgpu_properties);/' \
    "$F/hw/misc/vgpu-stub.c" >"$F/hw/misc/control1.c"
cc42 -- "$F/hw/misc/control1.c"
check "control: device_class_set_props outside the compat block is caught" \
    bash -c '! cmp -s "$0" "$1" && grep -q "implicit declaration of function .device_class_set_props" "$2"' \
    "$F/hw/misc/vgpu-stub.c" "$F/hw/misc/control1.c" "$T/cc.log"
sed 's/^\( *\)vgpu_reset_regs(s);/\1(void)qatomic_read(\&s->status);\n&/' \
    "$F/hw/misc/vgpu-stub.c" >"$F/hw/misc/control2.c"
cc42 -- "$F/hw/misc/control2.c"
check "control: a qatomic_read (5.2+) is caught" \
    grep -q "implicit declaration of function .qatomic_read" "$T/cc.log"
mkdir -p "$T/nover"
printf '#define QEMU_VERSION "4.2.1"\n' >"$T/nover/config-host.h"
cc42 "$T/nover" -- "$F/hw/misc/vgpu-stub.c"
check "control: without QEMU_VERSION_MAJOR/MINOR the device stops with #error" \
    grep -q 'error: #error "vgpu-stub: QEMU_VERSION_MAJOR' "$T/cc.log"
compat_only='device_class_set_props object_class_property_set_description
props qatomic_[a-z_]* ERRP_GUARD OBJECT_DECLARE_[A-Z_]* DECLARE_INSTANCE_CHECKER'
body=$(sed '/^\/\* ---- QEMU version differences/,/^\/\* ---- end of QEMU version differences/d' \
    "$QDIR/vgpu-stub.c")
outside=
for w in $compat_only; do
    grep -Eq "(\b|->)$w\b" <<<"$body" && outside+=" $w"
done
check "version-specific names appear only inside the compat block${outside:+ (found:$outside)}" \
    [ -z "$outside" ]

echo "== E. XCP-ng's real qemu.spec (8.3, 8.2) converted"
FIX=${VGPU_XCPNG_FIXTURES:-$TOP/../shared/fixtures/xcpng}
for rel in 8.3 8.2; do
    RS=$FIX/qemu-rpm-$rel/SPECS/qemu.spec
    check "XCP-ng $rel: its qemu.spec is at $RS" [ -f "$RS" ] || continue
    RO=$T/real-$rel.spec
    "$QDIR/xcpng/xcpng-qemu-spec.sh" --series "$S" "$RS" "$RO" 2>"$T/real.log"
    check "XCP-ng $rel: xcpng-qemu-spec.sh converts it (exit 0)" [ $? = 0 ] || show "$T/real.log"
    # SOURCES as the packager has it: XCP-ng's patches and ours (links)
    SRC=$T/real-sources-$rel
    mkdir -p "$SRC"
    for f in "$FIX/qemu-rpm-$rel/SOURCES"/* "$S"/vgpu-*.patch; do ln -sf "$f" "$SRC/"; done
    rpmspec -P --define 'dist .xcpng8.3' --define "_sourcedir $SRC" \
        "$RO" >"$T/real.parsed" 2>"$T/real.log"
    check "XCP-ng $rel: rpmspec -P parses the converted spec" [ -s "$T/real.parsed" ] ||
        show "$T/real.log"
    check "XCP-ng $rel: Name: qemu-dm-vgpu, no Epoch" \
        bash -c 'grep -qx "Name: qemu-dm-vgpu" "$0" && ! grep -q "^Epoch:" "$0"' "$T/real.parsed"
    check "XCP-ng $rel: its %build kept word for word, its %prep but for -n" \
        bash -c 'diff <(section "$0" build) <(section "$1" build) &&
                 diff <(section "$0" prep | sed "s/^%autosetup -p1$/& -n qemu-%{version}/") <(section "$1" prep)' "$RS" "$RO"
    last=$(sed -n 's/^Patch\([0-9]*\):.*/\1/p' "$RS" | sort -n | tail -n 1)
    check "XCP-ng $rel: ours are Patch1100..1102, above XCP-ng's highest (Patch$last), in series order" \
        bash -c '[ "$2" -lt 1100 ] && diff <(sed -n "s/^Patch\(110[0-2]\): \(vgpu-.*\)/\2/p" "$0") "$1/series"' \
        "$T/real.parsed" "$S" "$last"
    # rpm's own %autosetup expansion: XCP-ng's patches in spec order, then ours
    sed -n 's/^Patch[0-9]*:[[:space:]]*//p' "$RS" >"$T/real.order"
    cat "$S/series" >>"$T/real.order"
    grep ' |[[:space:]]*$' "$T/real.parsed" | grep -o '[^/[:space:]]*\.patch' >"$T/real.applied"
    check "XCP-ng $rel: rpm's %autosetup applies XCP-ng's $(grep -c '^Patch[0-9]*:' "$RS") patches in spec order, then ours" \
        cmp -s "$T/real.order" "$T/real.applied"
    stock=$(rpmspec -q --srpm --qf '%{release}' --define 'dist .xcpng8.3' "$RS" 2>/dev/null)
    ours=$(rpmspec -q --srpm --qf '%{release}' --define 'dist .xcpng8.3' "$RO" 2>/dev/null)
    check "XCP-ng $rel: Release $ours is XCP-ng's with .vgpu$V.1 before the dist tag" \
        [ "$ours" = "${stock%.xcpng8.3}.vgpu$V.1.xcpng8.3" ]
    check "XCP-ng $rel: Provides: qemu-dm-vgpu(xcpng-qemu) = XCP-ng's 2:4.2.1-$stock" \
        grep -qx "Provides: qemu-dm-vgpu(xcpng-qemu) = 2:4.2.1-$stock" "$T/real.parsed"
done

echo "note: no QEMU is built here; test-xcpng-qemu.sh builds XCP-ng's qemu-dm (QEMU 4.2.0"
echo "note: + XCP-ng's patches + ours) and runs the device's qtest suite against it"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
