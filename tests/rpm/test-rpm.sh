#!/bin/bash
# test-rpm.sh - the RPMs of `make rpm`: built from the tree with
# rpm/build-rpms.sh into a temporary _topdir, inspected with rpm -qp (files,
# owners, modes, %config(noreplace), version = VERSION, scriptlets,
# requires/provides; every requirement in the lists of what XCP-ng 8.2 and
# 8.3 dom0 provide, tests/rpm/dom0-provides-*.txt; the packaged binaries
# need no glibc above 2.17), linted with rpmlint, rebuilt from the source RPM as
# XCP-ng's build environment would (no --define of the version), installed
# into scratch roots with `rpm --root` (their scriptlets run chrooted there,
# with busybox as /bin/sh), upgraded in place and erased:
#
#   root 82:    XCP-ng 8.2 layout (only /etc/xenopsd.conf), systemd
#               "running", xenopsd-xc stopped; installed, upgraded, erased
#   root 83:    XCP-ng 8.3 layout from xapi 25.6.0-1.11 (/etc/xenopsd.conf.d/
#               with another fragment; another package's vm-pre-start
#               hook), xenopsd-xc running (so the scriptlets restart it)
#   root 010:   8.2 layout whose xenopsd.conf has the block vgpu-mediator
#               0.1.0 appended (and the key line it commented out); no
#               systemctl at all
#   root 82key: 8.2 layout whose xenopsd.conf sets the wrapper key itself
#               and has no final newline
#
# xenopsd reads /etc/xenopsd.conf, then the files of one folder, sorted,
# the last value winning: /etc/xenopsd-xc.conf.d/ (8.2; 8.3 before xapi
# 25.6.0-1.11) or /etc/xenopsd.conf.d/ (8.3 from then).  rpm/xenopsd-config
# puts our fragment vgpu.conf in both and never edits /etc/xenopsd.conf.
# After install, the wrapper a xenopsd reading either folder uses must be
# vgpu-qemu-wrapper; after erase, every xenopsd file and folder (and the
# hook folders) must be exactly what it was: same tree, same bytes.  The
# hook links /etc/xapi.d/vm-pre-{start,resume}/50-vgpu must resolve, in the
# installed root, to the executable vgpu-pre-start (xenopsd runs every
# entry there: a dangling one would fail every VM start).
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
/etc/xapi.d/vm-pre-migrate 0755 -
/etc/xapi.d/vm-pre-migrate/50-vgpu 0777 -
/etc/xapi.d/vm-pre-resume 0755 -
/etc/xapi.d/vm-pre-resume/50-vgpu 0777 -
/etc/xapi.d/vm-pre-start 0755 -
/etc/xapi.d/vm-pre-start/50-vgpu 0777 -
/etc/xapi.d/vm-pre-suspend 0755 -
/etc/xapi.d/vm-pre-suspend/50-vgpu 0777 -
/run/vgpu 0755 g
/usr/bin/vgpu-pool 0755 -
/usr/bin/vgpu-smi 0755 -
/usr/lib/systemd/system/vgpu-mediator.service 0644 -
/usr/lib/systemd/system/vgpu-publish.path 0644 -
/usr/lib/systemd/system/vgpu-publish.service 0644 -
/usr/lib/systemd/system/vgpu-publish.timer 0644 -
/usr/lib/tmpfiles.d/vgpu-mediator.conf 0644 -
/usr/lib64/xen/bin/vgpu-qemu-wrapper 0755 -
/usr/libexec/vgpu 0755 -
/usr/libexec/vgpu/vgpu-pre-move 0755 -
/usr/libexec/vgpu/vgpu-pre-start 0755 -
/usr/libexec/vgpu/vgpu-publish 0755 -
/usr/libexec/vgpu/xenopsd-config 0755 -
/usr/sbin/vgpu-mediator 0755 -
/usr/share/doc/vgpu-mediator 0755 -
/usr/share/doc/vgpu-mediator/README.md 0644 d
/usr/share/doc/vgpu-mediator/install.md 0644 d
/usr/share/doc/vgpu-mediator/pool.md 0644 d
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
# The hook links (mode 0777 above: symlinks), relative so that they resolve
# in any root.
links=$(q --qf '[%{FILENAMES} %{FILELINKTOS}\n]' "$MED" | awk '$2 != ""')
check "vgpu-mediator: its only links are the hooks, to ../../../usr/libexec/vgpu/vgpu-pre-start and vgpu-pre-move" \
    test "$links" = "/etc/xapi.d/vm-pre-migrate/50-vgpu ../../../usr/libexec/vgpu/vgpu-pre-move
/etc/xapi.d/vm-pre-resume/50-vgpu ../../../usr/libexec/vgpu/vgpu-pre-start
/etc/xapi.d/vm-pre-start/50-vgpu ../../../usr/libexec/vgpu/vgpu-pre-start
/etc/xapi.d/vm-pre-suspend/50-vgpu ../../../usr/libexec/vgpu/vgpu-pre-move"
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
# libxenstore is dlopened (common/xs-dl.c): no soname requirement, but the
# package that has it on 8.2 and 8.3 by name.
check "vgpu-mediator requires xen-libs >= 4.13 (libxenstore, loaded at run time)" \
    grep -qx 'xen-libs >= 4.13' <<<"$reqs"
check "vgpu-mediator requires no libxenstore soname (one RPM for .so.3.0 and .so.4)" \
    test -z "$(grep '^libxenstore' <<<"$reqs")"
check "vgpu-mediator requires systemd for its scriptlets" grep -qx 'systemd' <<<"$reqs"
check "vgpu-mediator provides vgpu-mediator = $VERSION-*" \
    grep -q "^vgpu-mediator = $VERSION-" <<<"$(q --provides "$MED")"
check "vgpu-mediator requires nothing under /usr/local" \
    test -z "$(grep /usr/local <<<"$reqs")"

mkdir -p "$T/x"
(cd "$T/x" && rpm2cpio "$MED" | cpio -idm --quiet)
v=$("$T/x/usr/sbin/vgpu-mediator" --version 2>&1 | head -n 1)
check "the packaged vgpu-mediator --version says $VERSION ($v)" grep -q " $VERSION " <<<"$v "
# Built for XCP-ng's glibc 2.17 (rpm/build-rpms.sh: the dom0 toolchain).
for b in usr/sbin/vgpu-mediator usr/bin/vgpu-smi usr/bin/vgpu-pool etc/xapi.d/plugins/vgpu \
    usr/lib64/xen/bin/vgpu-qemu-wrapper usr/libexec/vgpu/vgpu-pre-start \
    usr/libexec/vgpu/vgpu-pre-move; do
    if out=$("$TOP/tests/rpm/check-glibc.sh" "$T/x/$b"); then
        ok "packaged ${out#check-glibc: "$T"/x/}"
    else
        bad "packaged ${out#check-glibc: "$T"/x/}"
    fi
done
unit=$T/x/usr/lib/systemd/system/vgpu-mediator.service
check "the packaged unit: After= xenopsd-xc, Restart=on-failure, EnvironmentFile=-" \
    all_in "$unit" '^After=.*xenopsd-xc\.service' '^Restart=on-failure$' \
    '^EnvironmentFile=-/etc/sysconfig/vgpu-mediator$'

# --- what XCP-ng 8.2 and 8.3 dom0 provide ---------------------------------
# Every requirement of each RPM is in the lists of what each dom0 provides.
for rel in 8.2 8.3; do
    list=$TOP/tests/rpm/dom0-provides-$rel.txt
    if out=$("$TOP/tests/rpm/check-requires.sh" "$list" "$MED" "$GT"); then
        ok "XCP-ng $rel dom0 provides all the RPMs require (tests/rpm/dom0-provides-$rel.txt)"
    else
        bad "XCP-ng $rel dom0 lacks what an RPM requires:"
        sed 's/^/    /' <<<"$out"
    fi
    # The lists' glibc block is what the glibc 2.17 sysroot defines.
    if sysroot=$("$TOP/scripts/dom0-toolchain.sh" --sysroot 2>/dev/null); then
        if diff <("$TOP/tests/rpm/dom0-provides-glibc.sh" "$sysroot") \
            <(sed -n '/^# --- glibc 2.17 (generated/,/^# --- end of glibc/p' "$list" |
                sed '1d;$d') >"$T/glibc.diff"; then
            ok "dom0-provides-$rel.txt: glibc block = the sysroot's version definitions"
        else
            bad "dom0-provides-$rel.txt: glibc block differs from tests/rpm/dom0-provides-glibc.sh (- script, + list):"
            sed 's/^/    /' "$T/glibc.diff"
        fi
    fi
done

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
KEY=upstream-compat-qemu-dm-wrapper
WRAP=/usr/lib64/xen/bin/vgpu-qemu-wrapper
# The two folders xenopsd may read after /etc/xenopsd.conf (one of them,
# by release) and the hook folders.
XC_D=etc/xenopsd-xc.conf.d   # 8.2, and 8.3 before xapi 25.6.0-1.11
NEW_D=etc/xenopsd.conf.d     # 8.3 from xapi 25.6.0-1.11
HOOKS="vm-pre-start vm-pre-resume vm-pre-migrate vm-pre-suspend"

make_root() { # make_root DIR systemctl:none|stopped|running
    local R=$1 mode=$2
    mkdir -p "$R"/{bin,usr/bin,etc,var/lib/rpm,var/log,tmp,run,dev}
    mknod -m 0666 "$R/dev/null" c 1 3
    cp "$BUSYBOX" "$R/bin/busybox"
    for c in sh awk sed grep cat cp mv rm rmdir mkdir chmod cmp tail head \
        printf echo test [ tr ls; do
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
active_key_lines() { grep -E "^[[:space:]]*${KEY}[[:space:]]*=" "$1"; }

# Every xenopsd file and folder of ROOT/etc, and the hook folders: type,
# mode, content (sha256) or link target, one a line.
etc_tree() { # ROOT
    (cd "$1/etc" && find . -mindepth 1 \( -path './xenopsd*' -o -path './xapi.d/vm-pre-*' \) |
        LC_ALL=C sort | while IFS= read -r p; do
            if [ -L "$p" ]; then
                echo "l $p -> $(readlink "$p")"
            elif [ -d "$p" ]; then
                echo "d $(stat -c %a "$p") $p"
            else
                echo "f $(stat -c %a "$p") $(sha256sum <"$p" | cut -d' ' -f1) $p"
            fi
        done)
}
# The wrapper a xenopsd reading /etc/xenopsd.conf, then the files of ROOT/DIR
# in sorted order (xcp-idl's Xcp_service), uses: the last value of the key;
# empty for none (the stock wrapper).
wrapper_read_by() { # ROOT DIR
    local R=$1 d=$2 files=() f
    [ -f "$R/etc/xenopsd.conf" ] && files+=("$R/etc/xenopsd.conf")
    if [ -d "$R/$d" ]; then
        while IFS= read -r f; do
            [ -f "$R/$d/$f" ] && files+=("$R/$d/$f")
        done < <(ls -A "$R/$d" | LC_ALL=C sort)
    fi
    [ ${#files[@]} -gt 0 ] || return 0
    # awk ends a record at the end of each file, final newline or not.
    awk -v key="$KEY" '
        $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
            v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); sub(/[[:space:]]+$/, "", v)
        }
        END { print v }' "${files[@]}"
}
check_wrapper() { # ROOT NAME WANT: what both kinds of xenopsd use
    local R=$1 n=$2 want=$3 a b got_a="" got_b=""
    a=$(wrapper_read_by "$R" "$XC_D") b=$(wrapper_read_by "$R" "$NEW_D")
    [ "$a" = "$want" ] || got_a=" (got ${a:-none})"
    [ "$b" = "$want" ] || got_b=" (got ${b:-none})"
    check "$n: xenopsd reading /$XC_D (8.2, 8.3 before xapi 25.6.0-1.11) uses ${want:-the stock wrapper (no key)}${got_a:-}" \
        test "$a" = "$want"
    check "$n: xenopsd reading /$NEW_D (8.3 from xapi 25.6.0-1.11) uses ${want:-the stock wrapper (no key)}${got_b:-}" \
        test "$b" = "$want"
}

check_installed_files() { # ROOT NAME
    local R=$1 n=$2 bad_modes=
    for f in usr/sbin/vgpu-mediator usr/bin/vgpu-smi usr/bin/vgpu-pool etc/xapi.d/plugins/vgpu \
        usr/lib64/xen/bin/vgpu-qemu-wrapper usr/libexec/vgpu/xenopsd-config \
        usr/libexec/vgpu/vgpu-pre-start usr/libexec/vgpu/vgpu-publish \
        usr/libexec/vgpu/vgpu-pre-move; do
        [ "$(mode_of "$R/$f")" = 755 ] || bad_modes+=" $f"
    done
    for f in etc/vgpu/pools.conf etc/vgpu/vgpu.conf etc/sysconfig/vgpu-mediator \
        usr/lib/systemd/system/vgpu-mediator.service; do
        [ "$(mode_of "$R/$f")" = 644 ] || bad_modes+=" $f"
    done
    check "$n: installed files in place with their modes${bad_modes:+ (wrong:$bad_modes)}" \
        test -z "$bad_modes"
    check "$n: /var/lib/vgpu and /run/vgpu exist" test -d "$R/var/lib/vgpu" -a -d "$R/run/vgpu"
    # xenopsd runs every entry of the hook folders: one that does not
    # resolve to an executable would fail every VM start.  Resolved inside
    # the root (chroot), as xenopsd would.
    local h bad_hooks=
    for h in $HOOKS; do
        local exe=vgpu-pre-start
        case $h in vm-pre-migrate | vm-pre-suspend) exe=vgpu-pre-move ;; esac
        [ -L "$R/etc/xapi.d/$h/50-vgpu" ] &&
            chroot "$R" /bin/test -f "/etc/xapi.d/$h/50-vgpu" -a -x "/etc/xapi.d/$h/50-vgpu" &&
            chroot "$R" /bin/test "/etc/xapi.d/$h/50-vgpu" -ef "/usr/libexec/vgpu/$exe" ||
            bad_hooks+=" $h"
    done
    check "$n: /etc/xapi.d/{vm-pre-start,vm-pre-resume}/50-vgpu link to vgpu-pre-start, {vm-pre-migrate,vm-pre-suspend}/50-vgpu to vgpu-pre-move, executables${bad_hooks:+ (wrong:$bad_hooks)}" \
        test -z "$bad_hooks"
}
# Our fragment, the template as it is, mode 0644, in both folders.
check_fragments() { # ROOT NAME
    local R=$1 n=$2 d bad=
    for d in $XC_D $NEW_D; do
        cmp -s "$R/$d/vgpu.conf" "$R/usr/share/vgpu/xenopsd-vgpu.conf" &&
            [ "$(mode_of "$R/$d/vgpu.conf")" = 644 ] &&
            [ "$(active_key_lines "$R/$d/vgpu.conf")" = "$KEY=$WRAP" ] || bad+=" /$d/vgpu.conf"
    done
    check "$n: fragment vgpu.conf (our wrapper, mode 0644) in /$XC_D and /$NEW_D${bad:+ (wrong:$bad)}" \
        test -z "$bad"
    check "$n: no temporary files left in /etc" \
        test -z "$(find "$R/etc" -name '*.vgpu-tmp.*')"
}
check_status() { # ROOT NAME: xenopsd-config status lists both fragments, nothing else
    local out
    out=$(chroot "$1" /bin/sh /usr/libexec/vgpu/xenopsd-config status 2>&1)
    check "$2: xenopsd-config status lists both fragments ($(tr '\n' ';' <<<"$out"))" \
        test "$out" = "enabled: /$XC_D/vgpu.conf
enabled: /$NEW_D/vgpu.conf"
}
check_erased() { # ROOT NAME BEFORE-TREE
    local R=$1 n=$2
    check "$n: every xenopsd file and folder, and the hook folders, as before the install" \
        test "$(etc_tree "$R")" = "$(cat "$3")"
    if [ "$(etc_tree "$R")" != "$(cat "$3")" ]; then
        diff "$3" <(etc_tree "$R") | sed 's/^/    /'
    fi
    check "$n: program files and hook links gone" \
        test ! -e "$R/usr/sbin/vgpu-mediator" -a ! -e "$R$WRAP" -a ! -e "$R/etc/xapi.d/plugins/vgpu" \
        -a ! -e "$R/usr/libexec/vgpu/vgpu-pre-start" -a ! -L "$R/etc/xapi.d/vm-pre-start/50-vgpu" \
        -a ! -L "$R/etc/xapi.d/vm-pre-resume/50-vgpu" -a ! -L "$R/etc/xapi.d/vm-pre-migrate/50-vgpu" \
        -a ! -L "$R/etc/xapi.d/vm-pre-suspend/50-vgpu"
    check "$n: the record of the folders made for xenopsd is gone" \
        test ! -e "$R/var/lib/vgpu/xenopsd-made-dirs"
}

# The packaged hook runs here (glibc 2.17 binary) and never refuses a start
# it cannot judge: exit 1 (xenopsd logs and goes on) without -vmuuid.
hook=$T/x/usr/libexec/vgpu/vgpu-pre-start
"$hook" --help >/dev/null 2>&1
rc_help=$?
"$hook" >/dev/null 2>&1
rc_none=$?
check "the packaged vgpu-pre-start: --help exits 0 ($rc_help), no -vmuuid exits 1 ($rc_none)" \
    test "$rc_help" = 0 -a "$rc_none" = 1
VGPU_RUN_DIR=$T/no-such-run "$T/x/usr/libexec/vgpu/vgpu-pre-move" -vmuuid x -reason source \
    -vmdomid 5 >/dev/null 2>&1
rc_none=$?
check "the packaged vgpu-pre-move: no mediator, nothing to refuse: exit 0 ($rc_none)" \
    test "$rc_none" = 0

# root 82: 8.2 layout (only /etc/xenopsd.conf), systemd running, xenopsd-xc
# stopped; installed, upgraded in place, erased.
R82=$T/root82
make_root "$R82" stopped
printf '%s' "$XENOPSD_CONF_82" >"$R82/etc/xenopsd.conf"
cp -p "$R82/etc/xenopsd.conf" "$T/82.conf"
etc_tree "$R82" >"$T/82.before"
if rpmr "$R82" -i "$MED" >"$T/82.install" 2>&1; then
    ok "8.2 root: rpm -i vgpu-mediator (scriptlets ran)"
else
    bad "8.2 root: rpm -i failed:"; sed 's/^/    /' "$T/82.install"
fi
check_installed_files "$R82" "8.2 root"
check_fragments "$R82" "8.2 root"
check "8.2 root: /etc/xenopsd.conf untouched (sha256 identical)" \
    test "$(sha256sum <"$R82/etc/xenopsd.conf")" = "$(sha256sum <"$T/82.conf")"
check_wrapper "$R82" "8.2 root" "$WRAP"
check "8.2 root: both folders it made recorded in /var/lib/vgpu/xenopsd-made-dirs" \
    test "$(sort "$R82/var/lib/vgpu/xenopsd-made-dirs" 2>/dev/null)" = \
    "$(printf '/%s\n' "$XC_D" "$NEW_D" | sort)"
check "8.2 root: %post enabled and started the mediator, vgpu-publish.timer and .path" \
    all_in "$R82/var/log/systemctl.log" '^enable vgpu-mediator.service' '^start vgpu-mediator.service' \
        '^enable .*vgpu-publish\.timer' '^start vgpu-publish\.timer' \
        '^enable .*vgpu-publish\.path' '^start .*vgpu-publish\.path'
check "8.2 root: xenopsd-xc stopped, so not restarted" \
    none_in "$R82/var/log/systemctl.log" '^restart'
check "8.2 root: %post said xenopsd-xc is not running" \
    all_in "$T/82.install" 'xenopsd-xc is not running'
check_status "$R82" "8.2 root"
etc_tree "$R82" >"$T/82.installed"

# upgrade in place (same package again): %post with $1 = 2, old %preun with 1
if rpmr "$R82" -U --replacepkgs "$MED" >"$T/82.upgrade" 2>&1; then
    ok "8.2 root: rpm -U --replacepkgs (upgrade path)"
else
    bad "8.2 root: rpm -U failed:"; sed 's/^/    /' "$T/82.upgrade"
fi
check "8.2 root: the upgrade keeps one fragment each, xenopsd's files as after the install" \
    test "$(etc_tree "$R82")" = "$(cat "$T/82.installed")" -a \
    "$(ls -A "$R82/$XC_D")" = vgpu.conf -a "$(ls -A "$R82/$NEW_D")" = vgpu.conf
check "8.2 root: the upgrade recorded no folder twice" \
    test "$(sort -u "$R82/var/lib/vgpu/xenopsd-made-dirs" 2>/dev/null | wc -l)" = \
    "$(wc -l <"$R82/var/lib/vgpu/xenopsd-made-dirs" 2>/dev/null)"

# host state and an edited config file, then erase
echo "1 0d6c0000-0000-4000-8000-000000000001" >"$R82/var/lib/vgpu/vm-ids"
echo "A = 0" >>"$R82/etc/vgpu/pools.conf"
: >"$R82/var/log/systemctl.log"
if rpmr "$R82" -e vgpu-mediator >"$T/82.erase" 2>&1; then
    ok "8.2 root: rpm -e vgpu-mediator"
else
    bad "8.2 root: rpm -e failed:"; sed 's/^/    /' "$T/82.erase"
fi
check_erased "$R82" "8.2 root" "$T/82.before"
check "8.2 root: no /etc/xenopsd-xc.conf.d, /etc/xenopsd.conf.d or hook folder left behind" \
    test ! -e "$R82/$XC_D" -a ! -e "$R82/$NEW_D" -a ! -e "$R82/etc/xapi.d/vm-pre-start" \
    -a ! -e "$R82/etc/xapi.d/vm-pre-resume" -a ! -e "$R82/etc/xapi.d/vm-pre-migrate" \
    -a ! -e "$R82/etc/xapi.d/vm-pre-suspend"
check "8.2 root: xenopsd.conf byte-identical to before the install" \
    cmp -s "$R82/etc/xenopsd.conf" "$T/82.conf"
check_wrapper "$R82" "8.2 root, erased" ""
check "8.2 root: %preun disabled and stopped the mediator, vgpu-publish.timer and .path" \
    all_in "$R82/var/log/systemctl.log" 'disable vgpu-mediator.service' '^stop vgpu-mediator.service' \
        'disable .*vgpu-publish\.timer' '^stop vgpu-publish\.timer' \
        'disable .*vgpu-publish\.path' '^stop .*vgpu-publish\.path'
check "8.2 root: xenopsd-xc stopped, so not restarted on erase" \
    none_in "$R82/var/log/systemctl.log" '^restart'
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

# root 83: 8.3 layout from xapi 25.6.0-1.11 (/etc/xenopsd.conf.d with
# another fragment; another package's hook), systemd running, xenopsd-xc
# running (so the scriptlets restart it when they change something).
R83=$T/root83
make_root "$R83" running
mkdir -p "$R83/$NEW_D" "$R83/etc/xapi.d/vm-pre-start"
printf '%s' "$XENOPSD_CONF_82" >"$R83/etc/xenopsd.conf"
echo "some-other-setting=1" >"$R83/$NEW_D/other.conf"
printf '#!/bin/sh\nexit 0\n' >"$R83/etc/xapi.d/vm-pre-start/10-other"
chmod 0755 "$R83/etc/xapi.d/vm-pre-start/10-other"
cp -p "$R83/$NEW_D/other.conf" "$T/83.other"
etc_tree "$R83" >"$T/83.before"
if rpmr "$R83" -i "$MED" >"$T/83.install" 2>&1; then
    ok "8.3 root: rpm -i vgpu-mediator (scriptlets ran)"
else
    bad "8.3 root: rpm -i failed:"; sed 's/^/    /' "$T/83.install"
fi
check_installed_files "$R83" "8.3 root"
check_fragments "$R83" "8.3 root"
check "8.3 root: ours beside the other fragment, which is untouched" \
    test "$(ls -A "$R83/$NEW_D" | LC_ALL=C sort | tr '\n' ' ')" = "other.conf vgpu.conf " -a \
    "$(sha256sum <"$R83/$NEW_D/other.conf")" = "$(sha256sum <"$T/83.other")"
check "8.3 root: /etc/xenopsd.conf untouched" cmp -s "$R83/etc/xenopsd.conf" "$T/82.conf"
check "8.3 root: only /$XC_D recorded as made (/$NEW_D was there)" \
    test "$(cat "$R83/var/lib/vgpu/xenopsd-made-dirs" 2>/dev/null)" = "/$XC_D"
check "8.3 root: the other package's hook kept beside ours" \
    test -x "$R83/etc/xapi.d/vm-pre-start/10-other"
check_wrapper "$R83" "8.3 root" "$WRAP"
check_status "$R83" "8.3 root"
check "8.3 root: xenopsd-xc running, so restarted" \
    all_in "$R83/var/log/systemctl.log" '^restart xenopsd-xc.service'
check "8.3 root: %post said it restarted xenopsd-xc" all_in "$T/83.install" 'restarted xenopsd-xc'
etc_tree "$R83" >"$T/83.installed"
: >"$R83/var/log/systemctl.log"
if rpmr "$R83" -U --replacepkgs "$MED" >"$T/83.upgrade" 2>&1; then
    ok "8.3 root: rpm -U --replacepkgs (upgrade path)"
else
    bad "8.3 root: rpm -U failed:"; sed 's/^/    /' "$T/83.upgrade"
fi
check "8.3 root: the upgrade keeps one fragment each, xenopsd's files as after the install" \
    test "$(etc_tree "$R83")" = "$(cat "$T/83.installed")"
check "8.3 root: the upgrade changed nothing for xenopsd, so did not restart xenopsd-xc" \
    none_in "$R83/var/log/systemctl.log" 'restart xenopsd-xc'
: >"$R83/var/log/systemctl.log"
if rpmr "$R83" -e vgpu-mediator >"$T/83.erase" 2>&1; then
    ok "8.3 root: rpm -e vgpu-mediator"
else
    bad "8.3 root: rpm -e failed:"; sed 's/^/    /' "$T/83.erase"
fi
check_erased "$R83" "8.3 root" "$T/83.before"
check "8.3 root: erase removed only ours and the /$XC_D it made" \
    test ! -e "$R83/$XC_D" -a "$(ls -A "$R83/$NEW_D")" = other.conf -a \
    "$(ls -A "$R83/etc/xapi.d/vm-pre-start")" = 10-other
check_wrapper "$R83" "8.3 root, erased" ""
check "8.3 root: xenopsd-xc restarted after the removal" \
    all_in "$R83/var/log/systemctl.log" '^restart xenopsd-xc.service'
check "8.3 root: %preun said it restarted xenopsd-xc" all_in "$T/83.erase" 'restarted xenopsd-xc'

# root 010: upgrade from vgpu-mediator 0.1.0 on 8.2, which appended a block
# to /etc/xenopsd.conf and commented out the key line that was there; no
# systemctl at all.
R010=$T/root010
make_root "$R010" none
printf '%s%s\n' "$XENOPSD_CONF_82" "$KEY=/old" >"$T/010.pristine"
{
    printf '%s' "$XENOPSD_CONF_82"
    echo "#vgpu-mediator-saved# $KEY=/old"
    echo '# vgpu-mediator: begin (added by the vgpu-mediator package; removed when it is erased)'
    echo "$KEY=$WRAP"
    echo '# vgpu-mediator: end'
} >"$R010/etc/xenopsd.conf"
if rpmr "$R010" -U "$MED" >"$T/010.install" 2>&1; then
    ok "0.1.0's block in xenopsd.conf, no systemctl: rpm -U (scriptlets tolerate no systemd)"
else
    bad "0.1.0's block in xenopsd.conf: rpm -U failed:"; sed 's/^/    /' "$T/010.install"
fi
check "0.1.0's block: gone from xenopsd.conf, the saved line restored (byte-identical to before 0.1.0)" \
    cmp -s "$R010/etc/xenopsd.conf" "$T/010.pristine"
check "0.1.0's block: %post said it removed it" all_in "$T/010.install" 'removed the .* block'
check_fragments "$R010" "0.1.0's block"
check_wrapper "$R010" "0.1.0's block" "$WRAP"
check_status "$R010" "0.1.0's block"
check "0.1.0's block: no systemd, so no restart (and said so)" \
    all_in "$T/010.install" 'xenopsd-xc is not running (or systemd is not)'
rpmr "$R010" -e vgpu-mediator >"$T/010.erase" 2>&1 ||
    { bad "0.1.0's block: rpm -e failed:"; sed 's/^/    /' "$T/010.erase"; }
check "0.1.0's block: after erase xenopsd.conf as before 0.1.0" \
    cmp -s "$R010/etc/xenopsd.conf" "$T/010.pristine"
check "0.1.0's block: after erase no /$XC_D or /$NEW_D left, no record of them" \
    test ! -e "$R010/$XC_D" -a ! -e "$R010/$NEW_D" -a ! -e "$R010/var/lib/vgpu/xenopsd-made-dirs"
check_wrapper "$R010" "0.1.0's block, erased" /old

# root 82key: 8.2 layout whose xenopsd.conf sets the key itself (and has
# no final newline): the fragments, read after the file, win; the file is
# left as it is.
R82K=$T/root82key
make_root "$R82K" stopped
printf '%s%s = /usr/lib64/xen/bin/someone-elses-wrapper' "$XENOPSD_CONF_82" "$KEY" \
    >"$R82K/etc/xenopsd.conf"
cp -p "$R82K/etc/xenopsd.conf" "$T/82key.conf"
etc_tree "$R82K" >"$T/82key.before"
if rpmr "$R82K" -i "$MED" >"$T/82key.install" 2>&1; then
    ok "8.2 root, key set in xenopsd.conf: rpm -i"
else
    bad "8.2 root, key set in xenopsd.conf: rpm -i failed:"; sed 's/^/    /' "$T/82key.install"
fi
check_fragments "$R82K" "8.2 root, key set in xenopsd.conf"
check "8.2 root, key set in xenopsd.conf: the file untouched" \
    cmp -s "$R82K/etc/xenopsd.conf" "$T/82key.conf"
check_wrapper "$R82K" "8.2 root, key set in xenopsd.conf" "$WRAP"
rpmr "$R82K" -e vgpu-mediator >"$T/82key.erase" 2>&1 ||
    { bad "8.2 root, key set in xenopsd.conf: rpm -e failed:"; sed 's/^/    /' "$T/82key.erase"; }
check_erased "$R82K" "8.2 root, key set in xenopsd.conf" "$T/82key.before"
check_wrapper "$R82K" "8.2 root, key set in xenopsd.conf, erased" \
    /usr/lib64/xen/bin/someone-elses-wrapper

finish
