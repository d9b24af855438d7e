#!/bin/bash
# test-qemu-dm-rpm.sh - our qemu-dm package, qemu-dm-vgpu, lives beside
# XCP-ng's qemu: an rpm transaction test against an rpm database that holds
# XCP-ng's qemu package.
#
#  1. The one command of docs/install.md, qemu-dm-patch/xcpng/
#     build-qemu-dm-vgpu.sh, writes SPECS/qemu-dm-vgpu.spec from XCP-ng's
#     real 8.3 and 8.2 qemu.spec (the fixtures; --expect holds it to the
#     release it names, and refuses another).
#  2. Ours is built from that spec with rpmbuild: its %install, %check and
#     %files as written, %prep and %build replaced by the qemu-system-i386
#     that qemu-dm-patch/build-qemu-xcpng.sh built from XCP-ng 8.3's qemu
#     package and our series (cached; the fixtures lack XCP-ng's LFS
#     tarball, so rpmbuild cannot run XCP-ng's %build here).  Its metadata:
#     its own Name, no Epoch, XCP-ng's release in its Release and in
#     Provides: qemu-dm-vgpu(xcpng-qemu) = EVR, `Requires: qemu` with no
#     version, nothing that provides, obsoletes or conflicts with qemu, and
#     only /usr/libexec/vgpu/qemu-system-i386 and the .xcpng-release file
#     beside it (which names XCP-ng's EVR).
#  3. A scratch root whose rpm database holds XCP-ng's qemu (a
#     metadata-only package with the fixture spec's Name, Epoch, Version,
#     Release and relations and some of its paths: tests/lib/
#     xcpng-qemu-rpm.sh) and a package providing the rest of what ours
#     requires.  `rpm -i --test` of ours, then `rpm -i`: it removes and
#     replaces nothing (same packages plus ours, `rpm -V qemu` clean,
#     XCP-ng's qemu-dm byte for byte).  Then XCP-ng's next qemu (a higher
#     release) with `rpm -U`: ours stays installed and intact, and the
#     plugin's status, reading that database, names the skew.
#  4. Controls: the same package with `Obsoletes: qemu`, or with a file at
#     XCP-ng's path, fails these checks.
# Skips (77) when rpm/rpmbuild are missing or not root (rpm --root).
set -u
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
FIX=${VGPU_XCPNG_FIXTURES:-$TOP/../shared/fixtures/xcpng}
. "$TOP/tests/lib/check.sh"

for tool in rpm rpmbuild rpmspec; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (Debian: rpm)"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: rpm --root into scratch roots needs root"; exit 77; }
[ -d "$FIX" ] || { echo "FAILED: no XCP-ng fixtures at $FIX"; exit 1; }
T=$(mktemp -d /tmp/vgpu-test-qemu-dm-rpm.XXXXXX)
[ -n "${VGPU_KEEP:-}" ] || trap 'rm -rf "$T"' EXIT
DIST=.xcpng8.3
V=$(head -n 1 "$TOP/VERSION" | tr -d '[:space:]')
BUILD_CMD=$TOP/qemu-dm-patch/xcpng/build-qemu-dm-vgpu.sh
NEWER=5.2.16.1$DIST # "XCP-ng's next build" of 8.3's qemu
# rpm of Debian says its "use alien" note on stderr; the database is the
# root's /var/lib/rpm, as on XCP-ng.
R() { local root=$1; shift; rpm --root "$root" --dbpath /var/lib/rpm "$@" 2> >(grep -v -e 'should not be used directly' -e 'assuming you know' >&2); }

# --- 1. the spec, by the one command --------------------------------------
for rel in 8.3 8.2; do
    CO=$T/qemu-$rel # a checkout of xcp-ng-rpms/qemu: the fixture, linked
    mkdir -p "$CO/SPECS" "$CO/SOURCES"
    cp "$FIX/qemu-rpm-$rel/SPECS/qemu.spec" "$CO/SPECS/"
    for f in "$FIX/qemu-rpm-$rel/SOURCES"/*; do ln -s "$f" "$CO/SOURCES/"; done
    stock_evr=$(rpmspec -q --srpm --define "dist $DIST" --qf '%{epoch}:%{version}-%{release}' \
        "$CO/SPECS/qemu.spec" 2>/dev/null)
    "$BUILD_CMD" --spec-only --expect "$stock_evr" -D "dist $DIST" "$CO" >"$T/cmd.out" 2>"$T/cmd.err"
    check "XCP-ng $rel: build-qemu-dm-vgpu.sh --expect $stock_evr writes SPECS/qemu-dm-vgpu.spec" \
        [ "$(tail -n 1 "$T/cmd.out")" = "$CO/SPECS/qemu-dm-vgpu.spec" ] || show "$T/cmd.err"
    check "XCP-ng $rel: ... leaving XCP-ng's spec as it was, our patches in SOURCES/" \
        bash -c 'cmp -s "$0" "$1/SPECS/qemu.spec" && ls "$1"/SOURCES/vgpu-000[123]-*.patch >/dev/null' \
        "$FIX/qemu-rpm-$rel/SPECS/qemu.spec" "$CO"
    "$BUILD_CMD" --spec-only --expect "2:4.2.1-0.0$DIST" -D "dist $DIST" "$CO" >/dev/null 2>"$T/cmd.err"
    rc=$?
    check "XCP-ng $rel: --expect of another release is refused, saying which it is" \
        bash -c '[ "$0" = 2 ] && grep -q "is XCP-ng.s qemu $1, not 2:4.2.1-0.0" "$2"' "$rc" "$stock_evr" "$T/cmd.err"
    S=$CO/SPECS/qemu-dm-vgpu.spec
    qs() { rpmspec -q --define "dist $DIST" --qf "$1" "$S" 2>/dev/null; }
    check "XCP-ng $rel: Name qemu-dm-vgpu, no Epoch, Version 4.2.1" \
        [ "$(qs '%{name} %{epoch} %{version}')" = "qemu-dm-vgpu (none) 4.2.1" ]
    want_rel="${stock_evr#2:4.2.1-}"
    want_rel="${want_rel%"$DIST"}.vgpu$V.1$DIST"
    check "XCP-ng $rel: Release is $want_rel" [ "$(qs '%{release}')" = "$want_rel" ]
    check "XCP-ng $rel: Provides: qemu-dm-vgpu(xcpng-qemu) = $stock_evr" \
        grep -qx "qemu-dm-vgpu(xcpng-qemu) = $stock_evr" <<<"$(qs '[%{PROVIDENEVRS}\n]')"
    check "XCP-ng $rel: provides, obsoletes and conflicts name no qemu" \
        bash -c '! grep -E "^qemu( |\(|$)" <<<"$0"' "$(qs '[%{PROVIDENEVRS}\n][%{OBSOLETENEVRS}\n][%{CONFLICTNEVRS}\n]')"
    check "XCP-ng $rel: Requires: qemu, with no version" \
        bash -c 'grep -qx qemu <<<"$0" && ! grep -q "^qemu " <<<"$0"' "$(qs '[%{REQUIRENEVRS}\n]')"
done

# --- 2. ours, built ---------------------------------------------------------
BIN=$("$TOP/qemu-dm-patch/build-qemu-xcpng.sh" --release 8.3 2>"$T/qemu-build.err" | tail -n 1)
check "XCP-ng 8.3's qemu-dm with our series is built (build-qemu-xcpng.sh, cached)" [ -x "$BIN" ] ||
    { show "$T/qemu-build.err"; echo "$passed passed, $failed failed"; exit 1; }
CO=$T/qemu-8.3
# build_ours SPEC OUTDIR: rpmbuild -bb of SPEC with %prep/%build taking
# the built binary (everything from %install on is the spec's own).
build_ours() {
    local spec=$1 out=$2 tb=$T/tb.$RANDOM
    mkdir -p "$tb/SPECS" "$out"
    awk -v bin="$BIN" '
        /^%prep([ \t]|$)/ { skip = 1
            print "%prep"; print "%setup -q -c -T -n qemu-%{version}"
            print "mkdir -p i386-softmmu && cp " bin " i386-softmmu/qemu-system-i386"
            print "%build"; print ""; next }
        /^%install([ \t]|$)/ { skip = 0 }
        /^(Source|Patch)[0-9]*:/ { next }
        !skip { print }' "$spec" >"$tb/SPECS/qemu-dm-vgpu.spec"
    rpmbuild -bb --nodeps --define "_topdir $tb" --define "dist $DIST" \
        --define "_build_id_links none" --define "_binary_payload w1.gzdio" \
        "$tb/SPECS/qemu-dm-vgpu.spec" >"$tb/log" 2>&1 || { cat "$tb/log"; return 1; }
    mv "$tb"/RPMS/*/*.rpm "$out/" && rm -rf "$tb"
}
build_ours "$CO/SPECS/qemu-dm-vgpu.spec" "$T/ours" >"$T/ours.log" 2>&1
check "rpmbuild of qemu-dm-vgpu.spec (its %install, %check: -device help lists vgpu-stub)" [ $? = 0 ] ||
    show "$T/ours.log" 30
OURS=$(ls "$T"/ours/qemu-dm-vgpu-*.rpm 2>/dev/null | head -n 1)
check "qemu-dm-vgpu-4.2.1-5.2.15.2.vgpu$V.1$DIST.x86_64.rpm built" \
    [ "${OURS##*/}" = "qemu-dm-vgpu-4.2.1-5.2.15.2.vgpu$V.1$DIST.x86_64.rpm" ] ||
    { echo "$passed passed, $failed failed"; exit 1; }
qp() { rpm -qp "$@" "$OURS" 2>/dev/null; }
check "ours holds /usr/libexec/vgpu/qemu-system-i386 and its .xcpng-release, nothing else" \
    [ "$(qp -l | tr '\n' ' ')" = "/usr/libexec/vgpu /usr/libexec/vgpu/qemu-system-i386 /usr/libexec/vgpu/qemu-system-i386.xcpng-release " ]
check "ours provides, obsoletes and conflicts with no qemu" \
    bash -c '! grep -E "^qemu( |\(|$)" <<<"$0"' "$(qp --provides --obsoletes --conflicts)"
check "ours records XCP-ng's release in its metadata" \
    grep -qx "qemu-dm-vgpu(xcpng-qemu) = 2:4.2.1-5.2.15.2$DIST" <<<"$(qp --provides)"
mkdir -p "$T/x" && (cd "$T/x" && rpm2cpio "$OURS" | cpio -idm --quiet)
check "... and beside the binary: xcpng-qemu=2:4.2.1-5.2.15.2$DIST" \
    grep -qx "xcpng-qemu=2:4.2.1-5.2.15.2$DIST" "$T/x/usr/libexec/vgpu/qemu-system-i386.xcpng-release"
check "the packaged binary (rpm strips it) lists vgpu-stub" \
    bash -c '"$0" -device help 2>&1 | grep -q "^name \"vgpu-stub\""' \
    "$T/x/usr/libexec/vgpu/qemu-system-i386"

# --- 3. the transaction -----------------------------------------------------
STOCK=$("$TOP/tests/lib/xcpng-qemu-rpm.sh" "$FIX/qemu-rpm-8.3/SPECS/qemu.spec" "$DIST" "$T/stock" | tail -n 1)
NEXT=$("$TOP/tests/lib/xcpng-qemu-rpm.sh" "$FIX/qemu-rpm-8.3/SPECS/qemu.spec" "$DIST" "$T/next" "$NEWER" | tail -n 1)
check "XCP-ng's qemu stand-ins: ${STOCK##*/}, ${NEXT##*/}" [ -f "$STOCK" ] && [ -f "$NEXT" ]
# What else ours needs (the libraries its binary links, XCP-ng's other
# packages), provided by one package, as dom0 has them.
mkdir -p "$T/deps/SPECS"
{
    echo "Name: dom0-rest"; echo "Version: 1"; echo "Release: 1"; echo "License: GPL"
    echo "Summary: what dom0 has besides qemu (test)"; echo "AutoReqProv: no"
    qp --requires | grep -v -e '^qemu$' -e '^rpmlib(' | sed 's/^/Provides: /'
    printf '%%description\ntest\n%%files\n'
} >"$T/deps/SPECS/dom0-rest.spec"
rpmbuild -bb --define "_topdir $T/deps" "$T/deps/SPECS/dom0-rest.spec" >"$T/deps.log" 2>&1
DEPS=$(ls "$T"/deps/RPMS/*/dom0-rest-*.rpm 2>/dev/null | head -n 1)
check "a package providing the rest of what ours requires" [ -f "$DEPS" ] || show "$T/deps.log"

# replaces_nothing ROOT RPM: `rpm -i --test`, `rpm -U --test` (a yum
# install is an upgrade transaction: it acts on Obsoletes) and `rpm -U` of
# RPM in ROOT leave every package and XCP-ng's files as they were, plus
# RPM's.  What rpm said is in $T/test.log and $T/i.log.
replaces_nothing() {
    local root=$1 rpm=$2 name before after
    name=$(rpm -qp --qf '%{name}' "$rpm" 2>/dev/null)
    before=$(R "$root" -qa --qf '%{nevra}\n' | sort)
    sum=$(sha256sum "$root/usr/lib64/xen/bin/qemu-system-i386" | cut -d' ' -f1)
    : >"$T/i.log"
    R "$root" -i --test "$rpm" >"$T/test.log" 2>&1 || return 1
    R "$root" -U --test "$rpm" >"$T/test.log" 2>&1 || return 1
    R "$root" -U -vv "$rpm" >"$T/i.log" 2>&1 || return 1
    after=$(R "$root" -qa --qf '%{nevra}\n' | grep -v "^$name-" | sort)
    [ "$before" = "$after" ] && R "$root" -q "$name" >/dev/null &&
        R "$root" -V qemu >"$T/V.log" 2>&1 &&
        [ "$(sha256sum "$root/usr/lib64/xen/bin/qemu-system-i386" | cut -d' ' -f1)" = "$sum" ]
}
# new_root NAME: a root with XCP-ng's qemu and the rest installed.
new_root() {
    local root=$T/$1
    mkdir -p "$root"
    R "$root" --initdb && R "$root" -i "$STOCK" "$DEPS" >"$T/root.log" 2>&1 || { cat "$T/root.log"; return 1; }
    echo "$root"
}
ROOT=$(new_root root)
check "the scratch root's database holds XCP-ng's qemu $(R "$ROOT" -q qemu)" \
    [ "$(R "$ROOT" -q --qf '%{epoch}:%{version}-%{release}' qemu)" = "2:4.2.1-5.2.15.2$DIST" ]
R "$ROOT" -i --test "$OURS" >"$T/test.log" 2>&1
check "rpm -i --test of ours: no dependency, conflict or obsoletes problem" \
    bash -c '[ "$0" = 0 ] && [ ! -s "$1" ]' $? "$T/test.log" || show "$T/test.log"
check "rpm -i --test, -U --test and -U of ours remove and replace nothing (packages, rpm -V qemu, XCP-ng's qemu-dm)" \
    replaces_nothing "$ROOT" "$OURS" || show "$T/i.log"
check "the root now has both qemu-dm binaries" \
    bash -c '[ -x "$0/usr/libexec/vgpu/qemu-system-i386" ] && grep -q "^echo \"stock " "$0/usr/lib64/xen/bin/qemu-system-i386"' "$ROOT"
check "only XCP-ng's qemu provides qemu" \
    [ "$(R "$ROOT" -q --whatprovides qemu --qf '%{name}\n')" = qemu ]
R "$ROOT" -U --test "$NEXT" >"$T/up.log" 2>&1
check "rpm -U --test of XCP-ng's next qemu ($NEWER): no problem" \
    bash -c '[ "$0" = 0 ] && [ ! -s "$1" ]' $? "$T/up.log" || show "$T/up.log"
R "$ROOT" -U "$NEXT" >"$T/up.log" 2>&1
check "rpm -U of XCP-ng's next qemu updates it" \
    [ "$(R "$ROOT" -q --qf '%{release}' qemu)" = "$NEWER" ] || show "$T/up.log"
check "... and ours stays installed, intact (rpm -V)" \
    bash -c 'rpm --root "$0" --dbpath /var/lib/rpm -q qemu-dm-vgpu >/dev/null 2>&1 &&
             rpm --root "$0" --dbpath /var/lib/rpm -V qemu-dm-vgpu >/dev/null 2>&1' "$ROOT"
if [ -x "${VGPU_BUILD:-$TOP/build}/xapi-plugin/vgpu" ]; then
    mkdir -p "$T/run"
    st=$(VGPU_RUN_DIR=$T/run VGPU_QEMU_DM=$ROOT/usr/libexec/vgpu/qemu-system-i386 \
        VGPU_RPM_DBPATH=$ROOT/var/lib/rpm "${VGPU_BUILD:-$TOP/build}/xapi-plugin/vgpu" \
        '<?xml version="1.0"?><methodCall><methodName>status</methodName><params><param><value>s</value></param><param><value><struct></struct></value></param></params></methodCall>' 2>/dev/null)
    check "the plugin's status, on that database: XCP-ng's qemu 2:4.2.1-$NEWER is newer than ours' 2:4.2.1-5.2.15.2$DIST" \
        grep -q "qemu-dm skew: XCP-ng's qemu 2:4.2.1-$NEWER is installed, newer than 2:4.2.1-5.2.15.2$DIST that the vgpu qemu-dm $ROOT/usr/libexec/vgpu/qemu-system-i386 was built from" <<<"$st"
    check "... naming the command that rebuilds ours" \
        grep -qF "qemu-dm-patch/xcpng/build-qemu-dm-vgpu.sh --expect 2:4.2.1-$NEWER QEMU_CHECKOUT" <<<"$st"
else
    echo "note: no built plugin (VGPU_BUILD): its status on this database is not checked"
fi

# --- 4. controls --------------------------------------------------------------
# (without its Requires: qemu, or rpm would refuse it for that)
sed 's/^Requires: qemu$/Obsoletes: qemu < 3:0/' "$CO/SPECS/qemu-dm-vgpu.spec" >"$T/obs.spec"
build_ours "$T/obs.spec" "$T/obs" >"$T/obs.log" 2>&1
C1=$(ls "$T"/obs/*.rpm 2>/dev/null | head -n 1)
ROOT1=$(new_root root-obs)
if [ -f "$C1" ] && ! replaces_nothing "$ROOT1" "$C1"; then
    ok "control: the same package with Obsoletes: qemu fails the check ($(grep -m1 -o 'qemu < 3:0 is obsoleted by qemu-dm-vgpu' "$T/test.log"))"
    R "$ROOT1" -U "$C1" >/dev/null 2>&1
    check "control: ... and yum's kind of transaction (rpm -U) would remove XCP-ng's qemu" \
        bash -c '! rpm --root "$0" --dbpath /var/lib/rpm -q qemu >/dev/null 2>&1' "$ROOT1"
else
    nok "control: the package with Obsoletes: qemu passed the check"
fi
awk '{ print } /^%{vgpu_qemu_dir}\/qemu-system-i386$/ { print "/usr/lib64/xen/bin/qemu-system-i386" }
    /^install -D -m 0755 i386-softmmu/ { inst = 1 }
    inst && /%{buildroot}%{vgpu_qemu_dir}\/qemu-system-i386$/ {
        print "install -D -m 0755 i386-softmmu/qemu-system-i386 %{buildroot}/usr/lib64/xen/bin/qemu-system-i386"; inst = 0 }' \
    "$CO/SPECS/qemu-dm-vgpu.spec" >"$T/clash.spec"
build_ours "$T/clash.spec" "$T/clash" >"$T/clash.log" 2>&1
C2=$(ls "$T"/clash/*.rpm 2>/dev/null | head -n 1)
ROOT2=$(new_root root-clash)
check "control: the same package with a file at XCP-ng's path fails it (a file conflict)" \
    bash -c '[ -f "$0" ] && rpm -qpl "$0" 2>/dev/null | grep -qx /usr/lib64/xen/bin/qemu-system-i386' "$C2"
if [ -f "$C2" ] && ! replaces_nothing "$ROOT2" "$C2"; then
    ok "control: ... rpm -i --test refuses it: $(grep -o 'conflicts with file from package [^ ]*' "$T/test.log" | head -n 1)"
else
    nok "control: the package with a file at XCP-ng's path passed the check"
fi

# A package that required the very release it was built from would hold
# XCP-ng's next qemu back.
sed 's/^Requires: qemu$/Requires: qemu = %{xcpng_qemu_evr}/' "$CO/SPECS/qemu-dm-vgpu.spec" >"$T/pin.spec"
build_ours "$T/pin.spec" "$T/pin" >"$T/pin.log" 2>&1
C3=$(ls "$T"/pin/*.rpm 2>/dev/null | head -n 1)
ROOT3=$(new_root root-pin)
R "$ROOT3" -U "$C3" >/dev/null 2>&1
R "$ROOT3" -U --test "$NEXT" >"$T/up.log" 2>&1
check "control: with Requires: qemu = its release, XCP-ng's next qemu would not install" \
    bash -c '[ "$0" != 0 ] && grep -q "qemu = 2:4.2.1-5.2.15.2.xcpng8.3 is needed by (installed) qemu-dm-vgpu" "$1"' $? "$T/up.log" ||
    show "$T/up.log"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
