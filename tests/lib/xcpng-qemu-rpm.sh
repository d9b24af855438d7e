#!/bin/bash
# xcpng-qemu-rpm.sh - a metadata-only stand-in for XCP-ng's `qemu` package,
# for the tests that need an rpm database holding it (tests/rpm/
# test-qemu-dm-rpm.sh, tests/e2e/test-xcpng-boot.sh).
#
# Usage: tests/lib/xcpng-qemu-rpm.sh SPEC DIST OUTDIR [RELEASE]
#
# Reads XCP-ng's real qemu.spec (the fixture's SPECS/qemu.spec) with rpmspec
# and builds, into OUTDIR, a package with its Name, Epoch, Version and
# Release (with DIST, e.g. .xcpng8.3; RELEASE, when given, replaces the
# Release: how the tests make "XCP-ng's next build"), its explicit
# Provides, Obsoletes and Conflicts (rpm adds qemu = E:V-R and
# qemu(x86-64) as for the real one), and a few of the files the real one
# owns, empty: the qemu-dm at /usr/lib64/xen/bin/qemu-system-i386, a keymap
# in /usr/share/qemu and /usr/libexec/qemu-bridge-helper.  No Requires: the
# scratch databases it goes into hold nothing else.
# The last line of stdout is the RPM's path.
set -euo pipefail

die() { echo "xcpng-qemu-rpm.sh: $*" >&2; exit 1; }
[ $# -ge 3 ] || die "usage: xcpng-qemu-rpm.sh SPEC DIST OUTDIR [RELEASE]"
SPEC=$1 DIST=$2 OUT=$3 REL=${4:-}
[ -r "$SPEC" ] || die "cannot read $SPEC"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

q() { rpmspec -q --srpm --define "dist $DIST" --qf "$1" "$SPEC" 2>/dev/null; }
name=$(q '%{name}')
epoch=$(q '%{epoch}')
version=$(q '%{version}')
release=${REL:-$(q '%{release}')}
[ -n "$name" ] && [ -n "$version" ] && [ -n "$release" ] ||
    die "rpmspec cannot read Name/Version/Release of $SPEC"
deps() { # deps TAG: the spec's own TAG lines, rpm's view (rich and versioned)
    rpmspec -q --define "dist $DIST" --qf "[%{$1NEVRS}\n]" "$SPEC" 2>/dev/null |
        grep -v "^$name\( \|(\|$\)" | sort -u | sed "s/^/$2: /" || :
}

T=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir -p "$T"/{BUILD,RPMS,SOURCES,SPECS,SRPMS}
{
    echo "Name: $name"
    [ "$epoch" = "(none)" ] || echo "Epoch: $epoch"
    echo "Version: $version"
    echo "Release: $release"
    echo "Summary: metadata-only stand-in for XCP-ng's $name package (tests)"
    echo "License: GPL"
    echo "AutoReqProv: no"
    deps PROVIDE Provides
    deps OBSOLETE Obsoletes
    deps CONFLICT Conflicts
    cat <<'EOF'
%global debug_package %{nil}
%global __os_install_post %{nil}
%description
Stand-in for XCP-ng's qemu package: its name, version and relations, and
some of its paths, for rpm transaction tests.  Not a qemu.
%install
mkdir -p %{buildroot}/usr/lib64/xen/bin %{buildroot}/usr/share/qemu/keymaps \
    %{buildroot}/usr/libexec
printf '#!/bin/sh\necho "stock %{version}-%{release}"\n' \
    >%{buildroot}/usr/lib64/xen/bin/qemu-system-i386
chmod 0755 %{buildroot}/usr/lib64/xen/bin/qemu-system-i386
echo "# en-us" >%{buildroot}/usr/share/qemu/keymaps/en-us
: >%{buildroot}/usr/libexec/qemu-bridge-helper
%files
/usr/lib64/xen/bin
/usr/share/qemu
/usr/libexec/qemu-bridge-helper
EOF
} >"$T/SPECS/$name.spec"
rpmbuild -bb --nodeps --target x86_64 --define "_topdir $T" \
    --define "_build_id_links none" --define "_binary_payload w9.gzdio" \
    "$T/SPECS/$name.spec" >"$T/log" 2>&1 || { cat "$T/log" >&2; die "rpmbuild failed"; }
rpm=$(find "$T/RPMS" -name '*.rpm' | head -n 1)
[ -f "$rpm" ] || die "no RPM built"
mv "$rpm" "$OUT/"
echo "$OUT/${rpm##*/}"
