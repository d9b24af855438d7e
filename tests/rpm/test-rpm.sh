#!/bin/bash
# test-rpm.sh - the RPMs of `make rpm`: built from the tree with
# rpm/build-rpms.sh into a temporary _topdir, inspected with rpm -qp (files,
# owners, modes, %config(noreplace), version = VERSION, scriptlets,
# requires/provides), linted with rpmlint, rebuilt from the source RPM as
# XCP-ng's build environment would (no --define of the version), installed
# into scratch roots with `rpm --root` (their scriptlets run chrooted there,
# with busybox as /bin/sh), upgraded in place and erased:
#
#   root 82:    XCP-ng 8.2 layout (/etc/xenopsd.conf), systemd "running",
#               xenopsd-xc stopped
#   root 83:    XCP-ng 8.3 layout (/etc/xenopsd.conf.d/), systemd "running",
#               xenopsd-xc running (so the scriptlets restart it)
#   root 82old: 8.2 layout whose xenopsd.conf already sets the wrapper key
#               and has no final newline; no systemctl at all
#
# After install, xenopsd must be pointed at vgpu-qemu-wrapper; after erase,
# xenopsd's configuration must be exactly what it was (byte for byte).
# systemctl in the roots is a fake that logs its arguments.
#
# Skips (77) only when rpmbuild is missing.  Prints `N passed, N failed`.
set -u

TOP=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { # check DESCRIPTION COMMAND...
    local d=$1; shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}

if ! command -v rpmbuild >/dev/null || ! command -v rpm >/dev/null; then
    echo "SKIP: rpmbuild not installed (Debian package rpm)"
    exit 77
fi
if [ "$(id -u)" != 0 ]; then
    # rpm --root chroots to run the scriptlets.
    echo "SKIP: installing into scratch roots needs root"
    exit 77
fi
# The scratch roots' /bin/sh and tools: a static busybox (busybox-static).
BUSYBOX=$(command -v busybox || :)

T=$(mktemp -d /tmp/vgpu-test-rpm.XXXXXX)
[ -n "${VGPU_KEEP:-}" ] || trap 'rm -rf "$T"' EXIT

VERSION=$(head -n 1 "$TOP/VERSION" | tr -d '[:space:]')

# --- build --------------------------------------------------------------
iso=${VGPU_ISO:-$TOP/build/iso/vgpu-guest-tools-$VERSION.iso}
if [ -f "$iso" ]; then
    echo "guest tools ISO: $iso"
else
    iso=$T/vgpu-guest-tools-$VERSION.iso
    mkdir -p "$T/isotree/Linux"
    echo "placeholder: the packaging test does not need the real tools" \
        >"$T/isotree/Linux/README"
    if command -v xorriso >/dev/null; then
        xorriso -as mkisofs -quiet -V VGPU_TOOLS -R -J -o "$iso" "$T/isotree" 2>/dev/null
    fi
    [ -s "$iso" ] || tar -C "$T/isotree" -cf "$iso" .
    echo "guest tools ISO: none built (make iso); using a placeholder ISO"
fi

echo "building the RPMs into $T/rpm"
if VGPU_ISO=$iso "$TOP/rpm/build-rpms.sh" "$T/rpm" >"$T/build.log" 2>&1; then
    ok "rpm/build-rpms.sh builds the RPMs (rpmlint: $(grep -o '[0-9]* errors, [0-9]* warnings' "$T/rpm/rpmlint.log" 2>/dev/null || echo 'not run'))"
else
    bad "rpm/build-rpms.sh failed:"
    tail -n 40 "$T/build.log"
    finish
fi

MED=$(ls "$T"/rpm/RPMS/x86_64/vgpu-mediator-"$VERSION"-*.x86_64.rpm 2>/dev/null | head -n 1)
GT=$(ls "$T"/rpm/RPMS/noarch/vgpu-guest-tools-"$VERSION"-*.noarch.rpm 2>/dev/null | head -n 1)
SRPM=$(ls "$T"/rpm/SRPMS/vgpu-mediator-"$VERSION"-*.src.rpm 2>/dev/null | head -n 1)
GT_SRPM=$(ls "$T"/rpm/SRPMS/vgpu-guest-tools-"$VERSION"-*.src.rpm 2>/dev/null | head -n 1)
check "vgpu-mediator-$VERSION-*.x86_64.rpm built" test -f "$MED"
check "vgpu-guest-tools-$VERSION-*.noarch.rpm built" test -f "$GT"
check "vgpu-mediator source RPM built" test -f "$SRPM"
check "vgpu-guest-tools source RPM built" test -f "$GT_SRPM"
[ -f "$MED" ] && [ -f "$GT" ] || finish

q() { rpm -qp "$@" 2>/dev/null; }
all_in() { # all_in FILE REGEX...: every regex matches a line of FILE
    local f=$1 r; shift
    for r in "$@"; do grep -q -- "$r" "$f" 2>/dev/null || return 1; done
}
none_in() { # none_in FILE REGEX...: no regex matches a line of FILE
    local f=$1 r; shift
    for r in "$@"; do ! grep -q -- "$r" "$f" 2>/dev/null || return 1; done
}

# --- what is in them ----------------------------------------------------
for r in "$MED" "$GT"; do
    n=$(q --qf '%{NAME}' "$r")
    check "$n: version $(q --qf '%{VERSION}' "$r") is VERSION ($VERSION)" \
        test "$(q --qf '%{VERSION}' "$r")" = "$VERSION"
    check "$n: release $(q --qf '%{RELEASE}' "$r") has our suffix (N.vgpu)" \
        grep -qE '^[0-9]+\.vgpu' <<<"$(q --qf '%{RELEASE}' "$r")"
done

# path mode flags (flags: c = %config, n = noreplace, d = %doc, g = %ghost)
expected_med="\
/etc/sysconfig/vgpu-mediator 0644 cn
/etc/vgpu 0755 -
/etc/vgpu/pools.conf 0644 cn
/etc/vgpu/vgpu.conf 0644 cn
/etc/xapi.d/plugins/vgpu 0755 -
/run/vgpu 0755 g
/usr/bin/vgpu-smi 0755 -
/usr/lib/systemd/system/vgpu-mediator.service 0644 -
/usr/lib/tmpfiles.d/vgpu-mediator.conf 0644 -
/usr/lib64/xen/bin/vgpu-qemu-wrapper 0755 -
/usr/libexec/vgpu 0755 -
/usr/libexec/vgpu/xenopsd-config 0755 -
/usr/sbin/vgpu-mediator 0755 -
/usr/share/doc/vgpu-mediator 0755 -
/usr/share/doc/vgpu-mediator/README.md 0644 d
/usr/share/doc/vgpu-mediator/install.md 0644 d
/usr/share/doc/vgpu-mediator/xcp-ng.md 0644 d
/usr/share/vgpu 0755 -
/usr/share/vgpu/xenopsd-vgpu.conf 0644 -
/var/lib/vgpu 0755 -"
expected_gt="/opt/xensource/packages/iso/vgpu-guest-tools-$VERSION.iso 0644 -"

files_of() { # path mode flags owner group, one file a line
    q --qf '[%{FILENAMES}|%{FILEMODES:octal}|%{FILEFLAGS:fflags}|%{FILEUSERNAME}|%{FILEGROUPNAME}\n]' "$1" |
        awk -F'|' '{ print $1, substr($2, length($2) - 3), ($3 == "" ? "-" : $3), $4, $5 }' | sort
}
for pair in "MED:$MED" "GT:$GT"; do
    r=${pair#*:}
    n=$(q --qf '%{NAME}' "$r")
    want=$expected_med
    [ "${pair%%:*}" = GT ] && want=$expected_gt
    got=$(files_of "$r")
    if diff <(sort <<<"$want") <(awk '{ print $1, $2, $3 }' <<<"$got") >"$T/diff"; then
        ok "$n: file list, modes and %config/%doc/%ghost flags as intended"
    else
        bad "$n: file list, modes or flags differ (- wanted, + got):"
        sed 's/^/    /' "$T/diff"
    fi
    check "$n: every file owned by root:root" \
        test -z "$(awk '$4 != "root" || $5 != "root"' <<<"$got")"
done
check "guest tools ISO name does not start with guest-tools or xs-tools" \
    test -z "$(q --list "$GT" | grep -E '/(guest-tools|xs-tools)[^/]*$')"
check "vgpu-guest-tools is noarch" test "$(q --qf '%{ARCH}' "$GT")" = noarch

scripts=$(q --scripts "$MED")
for s in postinstall preuninstall postuninstall; do
    check "vgpu-mediator has a $s scriptlet" grep -q "^$s scriptlet" <<<"$scripts"
done
check "%preun acts only on the final erase (\$1 = 0)" \
    grep -q 'if \[ "$1" -eq 0 \]' <<<"$(sed -n '/^preuninstall/,/^postuninstall/p' <<<"$scripts")"
reqs=$(q --requires "$MED")
check "vgpu-mediator requires libxenstore (found by rpm)" grep -q '^libxenstore\.so' <<<"$reqs"
check "vgpu-mediator requires systemd for its scriptlets" grep -qx 'systemd' <<<"$reqs"
check "vgpu-mediator provides vgpu-mediator = $VERSION-*" \
    grep -q "^vgpu-mediator = $VERSION-" <<<"$(q --provides "$MED")"
check "vgpu-mediator requires nothing under /usr/local" \
    test -z "$(grep /usr/local <<<"$reqs")"

mkdir -p "$T/x"
(cd "$T/x" && rpm2cpio "$MED" | cpio -idm --quiet)
v=$("$T/x/usr/sbin/vgpu-mediator" --version 2>&1 | head -n 1)
check "the packaged vgpu-mediator --version says $VERSION ($v)" grep -q " $VERSION " <<<"$v "
unit=$T/x/usr/lib/systemd/system/vgpu-mediator.service
check "the packaged unit: After= xenopsd-xc, Restart=on-failure, EnvironmentFile=-" \
    all_in "$unit" '^After=.*xenopsd-xc\.service' '^Restart=on-failure$' \
    '^EnvironmentFile=-/etc/sysconfig/vgpu-mediator$'

# --- rpmlint --------------------------------------------------------------
if command -v rpmlint >/dev/null; then
    if rpmlint -r "$TOP/rpm/rpmlintrc" "$MED" "$GT" "$SRPM" "$GT_SRPM" >"$T/lint" 2>&1; then
        ok "rpmlint: $(grep -o '[0-9]* errors, [0-9]* warnings' "$T/lint")"
    else
        bad "rpmlint reports errors:"
        grep ': E: ' "$T/lint" | sed 's/^/    /'
    fi
else
    echo "note: rpmlint not installed (Debian package rpmlint): lint not checked"
fi

# --- the source RPMs: one spec each, self-contained ----------------------
for r in "$SRPM" "$GT_SRPM"; do
    n=$(q --qf '%{NAME}' "$r")
    check "$n source RPM: one spec, version written in ($VERSION)" \
        test "$(q --list "$r" | grep -c '\.spec$')" = 1 -a \
        -n "$(rpm2cpio "$r" | cpio -i --quiet --to-stdout '*.spec' |
            grep -x "%global vgpu_version $VERSION")"
done
# Rebuilt as XCP-ng's build environment does, with no define of ours (but
# systemd's macros, which Debian's rpm lacks; and without the CUDA backend,
# which the build above covers, to be quick and not need nvcc twice).
defs=()
[ -n "$(rpm --eval '%{?_unitdir}')" ] || defs+=(--define "_unitdir /usr/lib/systemd/system")
[ -n "$(rpm --eval '%{?_tmpfilesdir}')" ] || defs+=(--define "_tmpfilesdir /usr/lib/tmpfiles.d")
if rpmbuild --rebuild --nodeps --without cuda --define "_topdir $T/rebuild" "${defs[@]}" \
        --define "_build_id_links none" "$SRPM" >"$T/rebuild.log" 2>&1; then
    rv=$(q --qf '%{VERSION}-%{RELEASE}' "$T"/rebuild/RPMS/x86_64/vgpu-mediator-*.rpm)
    check "vgpu-mediator rebuilt from its source RPM alone: $rv" \
        test "$rv" = "$(q --qf '%{VERSION}-%{RELEASE}' "$MED")"
else
    bad "rpmbuild --rebuild of the source RPM failed:"
    tail -n 20 "$T/rebuild.log"
fi

# --- scratch roots --------------------------------------------------------
XENOPSD_CONF_82='# xenopsd configuration (test copy of an 8.2 layout)
# Comments and unknown keys must survive untouched.
inventory=/etc/xensource-inventory
sockets-group=admin

# upstream-compat-qemu-dm-wrapper=/commented/out/example
disable-logging-for=http
'

make_root() { # make_root DIR systemctl:none|stopped|running
    local R=$1 mode=$2
    mkdir -p "$R"/{bin,usr/bin,etc,var/lib/rpm,var/log,tmp,run,dev}
    mknod -m 0666 "$R/dev/null" c 1 3
    cp "$BUSYBOX" "$R/bin/busybox"
    for c in sh awk sed grep cat cp mv rm mkdir chmod cmp tail head printf \
        echo test [ tr ls; do
        ln -sf busybox "$R/bin/$c"
    done
    if [ "$mode" != none ]; then
        mkdir -p "$R/run/systemd/system"
        cat >"$R/usr/bin/systemctl" <<EOF
#!/bin/sh
# fake systemctl: logs its arguments; xenopsd-xc is $mode
echo "\$*" >>/var/log/systemctl.log
case "\$*" in
*is-active*xenopsd-xc*) [ $mode = running ] ;;
*is-active*) exit 3 ;;
*) exit 0 ;;
esac
EOF
        chmod 0755 "$R/usr/bin/systemctl"
    fi
    rpm --root "$R" --dbpath /var/lib/rpm --initdb
}
rpmr() { local R=$1; shift; rpm --root "$R" --dbpath /var/lib/rpm --nodeps "$@"; }
mode_of() { stat -c '%a' "$1" 2>/dev/null; }
active_key_lines() { grep -E '^[[:space:]]*upstream-compat-qemu-dm-wrapper[[:space:]]*=' "$1"; }

WRAP=/usr/lib64/xen/bin/vgpu-qemu-wrapper

check_installed_files() { # ROOT NAME
    local R=$1 n=$2 bad_modes=
    for f in usr/sbin/vgpu-mediator usr/bin/vgpu-smi etc/xapi.d/plugins/vgpu \
        usr/lib64/xen/bin/vgpu-qemu-wrapper usr/libexec/vgpu/xenopsd-config; do
        [ "$(mode_of "$R/$f")" = 755 ] || bad_modes+=" $f"
    done
    for f in etc/vgpu/pools.conf etc/vgpu/vgpu.conf etc/sysconfig/vgpu-mediator \
        usr/lib/systemd/system/vgpu-mediator.service; do
        [ "$(mode_of "$R/$f")" = 644 ] || bad_modes+=" $f"
    done
    check "$n: installed files in place with their modes${bad_modes:+ (wrong:$bad_modes)}" \
        test -z "$bad_modes"
    check "$n: /var/lib/vgpu and /run/vgpu exist" test -d "$R/var/lib/vgpu" -a -d "$R/run/vgpu"
}

# root 82: 8.2 layout, systemd running, xenopsd-xc stopped
R82=$T/root82
make_root "$R82" stopped
printf '%s' "$XENOPSD_CONF_82" >"$R82/etc/xenopsd.conf"
cp -p "$R82/etc/xenopsd.conf" "$T/82.before"
if rpmr "$R82" -i "$MED" >"$T/82.install" 2>&1; then
    ok "8.2 root: rpm -i vgpu-mediator (scriptlets ran)"
else
    bad "8.2 root: rpm -i failed:"; sed 's/^/    /' "$T/82.install"
fi
check_installed_files "$R82" "8.2 root"
check "8.2 root: xenopsd.conf has exactly one active wrapper key, ours" \
    test "$(active_key_lines "$R82/etc/xenopsd.conf")" = "upstream-compat-qemu-dm-wrapper=$WRAP"
check "8.2 root: the rest of xenopsd.conf is unchanged" \
    test "$(grep -v '^# vgpu-mediator: \|^upstream-compat-qemu-dm-wrapper=' "$R82/etc/xenopsd.conf")" = \
    "$(cat "$T/82.before")"
check "8.2 root: no /etc/xenopsd.conf.d made" test ! -e "$R82/etc/xenopsd.conf.d"
check "8.2 root: %post enabled and started the mediator" \
    all_in "$R82/var/log/systemctl.log" '^enable vgpu-mediator.service' '^start vgpu-mediator.service'
check "8.2 root: xenopsd-xc stopped, so not restarted (and said so)" \
    none_in "$R82/var/log/systemctl.log" '^restart'
check "8.2 root: %post said xenopsd-xc is not running" \
    all_in "$T/82.install" 'xenopsd-xc is not running'
check "8.2 root: xenopsd-config status says enabled" \
    grep -q '^enabled: /etc/xenopsd.conf' <<<"$(chroot "$R82" /bin/sh /usr/libexec/vgpu/xenopsd-config status)"
cp "$R82/etc/xenopsd.conf" "$T/82.installed"

# upgrade in place (same package again): %post with $1 = 2, old %preun with 1
if rpmr "$R82" -U --replacepkgs "$MED" >"$T/82.upgrade" 2>&1; then
    ok "8.2 root: rpm -U --replacepkgs (upgrade path)"
else
    bad "8.2 root: rpm -U failed:"; sed 's/^/    /' "$T/82.upgrade"
fi
check "8.2 root: the upgrade keeps one vgpu block in xenopsd.conf" \
    cmp -s "$R82/etc/xenopsd.conf" "$T/82.installed"

# host state and an edited config file, then erase
echo "1 0d6c0000-0000-4000-8000-000000000001" >"$R82/var/lib/vgpu/vm-ids"
echo "A = 0" >>"$R82/etc/vgpu/pools.conf"
: >"$R82/var/log/systemctl.log"
if rpmr "$R82" -e vgpu-mediator >"$T/82.erase" 2>&1; then
    ok "8.2 root: rpm -e vgpu-mediator"
else
    bad "8.2 root: rpm -e failed:"; sed 's/^/    /' "$T/82.erase"
fi
check "8.2 root: xenopsd.conf byte-identical to before the install" \
    cmp -s "$R82/etc/xenopsd.conf" "$T/82.before"
check "8.2 root: %preun disabled and stopped the mediator" \
    all_in "$R82/var/log/systemctl.log" 'disable vgpu-mediator.service' '^stop vgpu-mediator.service'
check "8.2 root: program files gone" \
    test ! -e "$R82/usr/sbin/vgpu-mediator" -a ! -e "$R82$WRAP" -a ! -e "$R82/etc/xapi.d/plugins/vgpu"
check "8.2 root: host state /var/lib/vgpu/vm-ids kept" test -s "$R82/var/lib/vgpu/vm-ids"
check "8.2 root: the edited pools.conf kept as pools.conf.rpmsave" \
    test -f "$R82/etc/vgpu/pools.conf.rpmsave"

# guest tools into the same root
if rpmr "$R82" -i "$GT" >"$T/gt.install" 2>&1; then
    ok "vgpu-guest-tools: rpm -i"
else
    bad "vgpu-guest-tools: rpm -i failed:"; sed 's/^/    /' "$T/gt.install"
fi
isofile=$R82/opt/xensource/packages/iso/vgpu-guest-tools-$VERSION.iso
check "vgpu-guest-tools: the ISO is in /opt/xensource/packages/iso, mode 0644" \
    test "$(mode_of "$isofile")" = 644
check "vgpu-guest-tools: the installed ISO is the one built" cmp -s "$isofile" "$iso"
rpmr "$R82" -e vgpu-guest-tools >"$T/gt.erase" 2>&1
check "vgpu-guest-tools: rpm -e removes the ISO" test ! -e "$isofile"

# root 83: 8.3 layout, systemd running, xenopsd-xc running
R83=$T/root83
make_root "$R83" running
mkdir -p "$R83/etc/xenopsd.conf.d"
printf '%s' "$XENOPSD_CONF_82" >"$R83/etc/xenopsd.conf"
echo "some-other-setting=1" >"$R83/etc/xenopsd.conf.d/other.conf"
(cd "$R83/etc" && find xenopsd.conf xenopsd.conf.d -type f -exec sha256sum {} + | sort) >"$T/83.before"
if rpmr "$R83" -i "$MED" >"$T/83.install" 2>&1; then
    ok "8.3 root: rpm -i vgpu-mediator (scriptlets ran)"
else
    bad "8.3 root: rpm -i failed:"; sed 's/^/    /' "$T/83.install"
fi
check_installed_files "$R83" "8.3 root"
check "8.3 root: drop-in /etc/xenopsd.conf.d/vgpu.conf sets our wrapper, mode 0644" \
    test "$(active_key_lines "$R83/etc/xenopsd.conf.d/vgpu.conf" 2>/dev/null)" = \
    "upstream-compat-qemu-dm-wrapper=$WRAP" -a "$(mode_of "$R83/etc/xenopsd.conf.d/vgpu.conf")" = 644
check "8.3 root: /etc/xenopsd.conf untouched" cmp -s "$R83/etc/xenopsd.conf" "$T/82.before"
check "8.3 root: xenopsd-xc running, so restarted (and said so)" \
    all_in "$R83/var/log/systemctl.log" '^restart xenopsd-xc.service'
check "8.3 root: %post said it restarted xenopsd-xc" all_in "$T/83.install" 'restarted xenopsd-xc'
: >"$R83/var/log/systemctl.log"
if rpmr "$R83" -e vgpu-mediator >"$T/83.erase" 2>&1; then
    ok "8.3 root: rpm -e vgpu-mediator"
else
    bad "8.3 root: rpm -e failed:"; sed 's/^/    /' "$T/83.erase"
fi
check "8.3 root: xenopsd's configuration exactly as before (drop-in gone, others kept)" \
    test "$(cd "$R83/etc" && find xenopsd.conf xenopsd.conf.d -type f -exec sha256sum {} + | sort)" = \
    "$(cat "$T/83.before")"
check "8.3 root: xenopsd-xc restarted after the removal (and said so)" \
    all_in "$R83/var/log/systemctl.log" '^restart xenopsd-xc.service'
check "8.3 root: %preun said it restarted xenopsd-xc" all_in "$T/83.erase" 'restarted xenopsd-xc'

# root 82old: the key already set, no final newline, no systemctl
R82O=$T/root82old
make_root "$R82O" none
printf '%supstream-compat-qemu-dm-wrapper = /usr/lib64/xen/bin/someone-elses-wrapper' \
    "$XENOPSD_CONF_82" >"$R82O/etc/xenopsd.conf"
cp -p "$R82O/etc/xenopsd.conf" "$T/82old.before"
if rpmr "$R82O" -i "$MED" >"$T/82old.install" 2>&1; then
    ok "8.2 root without systemctl, key already set: rpm -i (scriptlets tolerate no systemd)"
else
    bad "8.2 root without systemctl: rpm -i failed:"; sed 's/^/    /' "$T/82old.install"
fi
check "8.2 root, key already set: ours is the one active key line" \
    test "$(active_key_lines "$R82O/etc/xenopsd.conf")" = "upstream-compat-qemu-dm-wrapper=$WRAP"
check "8.2 root, key already set: the old line kept, commented out with a marker" \
    grep -qx '#vgpu-mediator-saved# upstream-compat-qemu-dm-wrapper = /usr/lib64/xen/bin/someone-elses-wrapper' \
    "$R82O/etc/xenopsd.conf"
rpmr "$R82O" -e vgpu-mediator >"$T/82old.erase" 2>&1 ||
    { bad "8.2 root without systemctl: rpm -e failed:"; sed 's/^/    /' "$T/82old.erase"; }
check "8.2 root, key already set: xenopsd.conf byte-identical after erase (old key back, no final newline)" \
    cmp -s "$R82O/etc/xenopsd.conf" "$T/82old.before"

finish
