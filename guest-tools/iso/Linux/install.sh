#!/bin/sh
# install.sh - installs the vgpu guest tools from the vgpu guest-tools ISO.
#
# This is the source copy: build-iso.sh fills in the @...@ values (the
# version and the PCI identity of the vgpu-stub device, both from the
# build) when it puts this script on the ISO as /Linux/install.sh.
#
# POSIX sh on purpose: it runs under bash, dash and busybox ash.  Run it
# from the mounted ISO as root:
#
#     mount -o ro /dev/sr0 /mnt && sh /mnt/Linux/install.sh
#
# `install.sh --help` documents options, locations and exit statuses.

VERSION='@VGPU_VERSION@'
PCI_VENDOR='@VGPU_PCI_VENDOR_ID@'
PCI_DEVICE='@VGPU_PCI_DEVICE_ID@'
# The contract's headers that vgpu_protocol.h includes, from include/vgpu/.
CONTRACT_HEADERS='@VGPU_CONTRACT_HEADERS@'

PROG=vgpu-guest-tools
ARCH=x86_64
MANIFEST_DIR=/var/lib/vgpu-guest-tools
MANIFEST=$MANIFEST_DIR/manifest
# What install.sh did with the kernel module (removed by --uninstall).
KMOD_RECORD=$MANIFEST_DIR/kmod

# Exit statuses (documented in --help).
E_OK=0
E_USAGE=1
E_NOTROOT=2
E_PLATFORM=3
E_FAILED=4
E_CANCELLED=5

say() { printf '%s: %s\n' "$PROG" "$*"; }
note() { printf '%s: note: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() {
    die_code=$1
    shift
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit "$die_code"
}

usage() {
    cat <<EOF
Usage: install.sh [-n] [--no-driver] [--prefix DIR] [--root DIR]
       install.sh --uninstall [-n] [--root DIR]
       install.sh -h | --help | -V | --version

Installs the vgpu guest tools $VERSION ($ARCH) from this ISO: the
vgpu-client command, the libvgpu static library and its headers.  They
talk to the vgpu-stub PCI device (${PCI_VENDOR#0x}:${PCI_DEVICE#0x}) that dom0 gives a
GPU-enabled VM.

Options:
  -n, --non-interactive  do not ask for confirmation
  -u, --uninstall        remove exactly the files listed in the manifest
                         ($MANIFEST), and the kernel module
                         install.sh built (dkms or /lib/modules)
      --no-driver        do not build or install the kernel module
      --prefix DIR       install under DIR (DIR/bin, DIR/include/vgpu,
                         DIR/lib, DIR/share/doc) instead of /usr
      --root DIR         act on the system tree at DIR instead of / (image
                         building, tests): no root needed, no device check
  -V, --version          print the version of these tools and exit
  -h, --help             show this help and exit

Without -n, install.sh asks before changing anything when its standard
input is a terminal; when it is not (a pipe, a script, cloud-init), it
goes on as with -n and says so.

Where the files go (prefix /usr):
  /usr/bin/vgpu-client
  /usr/include/vgpu/libvgpu.h, /usr/include/vgpu/vgpu_protocol.h and
    the headers it includes, /usr/include/vgpu/vgpu/*.h
  libvgpu.a in the library folder the distribution's compiler searches:
    Debian, Ubuntu                        /usr/lib/x86_64-linux-gnu
    RHEL, CentOS, Fedora, Rocky, Alma,
    Oracle, Amazon, XenServer; SUSE       /usr/lib64
    Alpine and anything else              /usr/lib
  libcuda.so.1, the CUDA driver API for unmodified CUDA programs, in the
    same folder, where the loader looks for NVIDIA's (it needs glibc)
  /usr/share/doc/vgpu-guest-tools/README.txt
The distribution comes from /etc/os-release (ID, then ID_LIKE).  When /usr
is read-only (image-based systems), the prefix becomes /usr/local and the
library goes to /usr/local/lib.  The manifest records every file and
folder installed; --uninstall removes those and nothing else.

The kernel driver vgpu.ko (GPL, source on this ISO in Linux/kernel/):
its source goes to /usr/src/vgpu-$VERSION; with dkms it is added, built and
installed there (and rebuilt by dkms for each new kernel); without dkms it
is built against the running kernel's headers (/lib/modules/<kernel>/build)
and installed in /lib/modules/<kernel>/updates/ (run install.sh again after
a kernel update); with neither, it is left out and the tools use the v1
sysfs path.  install.sh then loads it (modprobe vgpu) and says what
happened.  Under Secure Boot an unsigned module is refused: sign it with
your MOK (dkms can) or the tools keep the v1 path, which Secure Boot's
lockdown refuses too.  A kernel-module problem is a warning: the tools are
installed either way.  With --root the module is left out.

Installing again is safe: when the same version is installed and intact,
nothing changes; an older or damaged installation is replaced, and files
the old version had that this one lacks are removed.

After installing, when a vgpu device is present, install.sh runs
vgpu-client --info and shows the result (a failure there is reported as a
warning: the files are installed either way).  Without a device it only
says so.

Exit status:
  0  success (installed, already installed, uninstalled, nothing to do)
  1  usage error
  2  not running as root
  3  unsupported platform (not $ARCH) or incomplete/corrupt payload
  4  installation or removal failed (see the messages; --uninstall
     cleans up a partial installation)
  5  cancelled at the confirmation prompt
EOF
}

usage_error() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    echo "Try 'install.sh --help' for more information." >&2
    exit $E_USAGE
}

# ------------------------------------------------------------ arguments

MODE=install
ASK=1
DRIVER=1
ROOT=
PREFIX=
PREFIX_GIVEN=0
while [ $# -gt 0 ]; do
    case $1 in
    -n | --non-interactive) ASK=0 ;;
    -u | --uninstall) MODE=uninstall ;;
    --no-driver) DRIVER=0 ;;
    --prefix | --root)
        [ $# -ge 2 ] || usage_error "option $1 needs a folder"
        [ "$1" = --prefix ] && PREFIX=$2 && PREFIX_GIVEN=1
        [ "$1" = --root ] && ROOT=$2
        shift
        ;;
    --prefix=*) PREFIX=${1#--prefix=} && PREFIX_GIVEN=1 ;;
    --root=*) ROOT=${1#--root=} ;;
    -h | --help)
        usage
        exit $E_OK
        ;;
    -V | --version)
        echo "$VERSION"
        exit $E_OK
        ;;
    --) ;;
    -*) usage_error "unknown option: $1" ;;
    *) usage_error "unexpected argument: $1" ;;
    esac
    shift
done

# A path we write into the manifest: absolute, no whitespace or '..'.
sane_path() {
    case $1 in
    /*) ;;
    *) return 1 ;;
    esac
    case $1 in
    *' '* | *'	'* | *'*'* | *'?'* | *'['* | */../* | */.. | */./* | */.) return 1 ;;
    esac
    return 0
}

if [ "$PREFIX_GIVEN" = 1 ]; then
    [ "$MODE" = install ] || usage_error "--prefix is for installing only"
    PREFIX=${PREFIX%/}
    [ -n "$PREFIX" ] && sane_path "$PREFIX" ||
        usage_error "--prefix needs an absolute folder other than / (no spaces, no ..): '$PREFIX'"
fi
if [ -n "$ROOT" ]; then
    case $ROOT in
    /*) ;;
    *) ROOT=$(pwd)/$ROOT ;;
    esac
    [ -d "$ROOT" ] || usage_error "--root: no such folder: $ROOT"
    ROOT=$(cd "$ROOT" && pwd) || exit $E_USAGE
    [ "$ROOT" = / ] && ROOT=
fi

# The manifest and every path in it are relative to the target tree; R is
# what to put in front of them on this machine.
R=$ROOT

if [ -z "$ROOT" ]; then
    uid=$(id -u 2>/dev/null)
    [ "$uid" = 0 ] || die $E_NOTROOT "must run as root (try: sudo sh $0$([ "$MODE" = uninstall ] && echo ' --uninstall'))"
fi

# ------------------------------------------------------------ helpers

# Same contents?  sha256sum is in coreutils and busybox; cmp is not
# everywhere (diffutils).
same_file() {
    [ -f "$1" ] && [ -f "$2" ] || return 1
    sf_a=$(sha256sum <"$1" 2>/dev/null) || return 1
    sf_b=$(sha256sum <"$2" 2>/dev/null) || return 1
    [ "$sf_a" = "$sf_b" ]
}

# confirm QUESTION: yes when not asking; exits with E_CANCELLED on no.
confirm() {
    [ "$ASK" = 1 ] || return 0
    if [ ! -t 0 ]; then
        note "standard input is not a terminal: going on without confirmation (as with -n)"
        return 0
    fi
    printf '%s [y/N] ' "$1"
    read -r answer || answer=
    case $answer in
    y | Y | yes | YES | Yes) return 0 ;;
    esac
    say "cancelled; nothing was changed"
    exit $E_CANCELLED
}

# The manifest: "key value" lines.  version/family/prefix describe the
# installation; "d PATH" a folder it created, "f PATH" a file it wrote.
manifest_get() { # KEY: the values of KEY, one a line
    [ -f "$R$MANIFEST" ] || return 0
    sed -n "s/^$1 //p" "$R$MANIFEST"
}

# write_manifest VERSION FAMILY PREFIX DIRS FILES (DIRS, FILES: one a line)
write_manifest() {
    mkdir -p "$R$MANIFEST_DIR" || return 1
    {
        echo "# vgpu guest tools: what install.sh installed; install.sh --uninstall"
        echo "# removes exactly these files, then these folders when empty."
        echo "version $1"
        echo "family $2"
        echo "prefix $3"
        printf '%s\n' "$4" | sed -n 's/^\(\/.*\)/d \1/p' | sort -u
        printf '%s\n' "$5" | sed -n 's/^\(\/.*\)/f \1/p' | sort -u
    } >"$R$MANIFEST.new" && mv -f "$R$MANIFEST.new" "$R$MANIFEST"
}

# The vgpu devices present, as PCI addresses, one a line.
vgpu_devices() {
    for dev in /sys/bus/pci/devices/*; do
        [ -r "$dev/vendor" ] && [ -r "$dev/device" ] || continue
        [ "$(cat "$dev/vendor")" = "$PCI_VENDOR" ] &&
            [ "$(cat "$dev/device")" = "$PCI_DEVICE" ] &&
            echo "${dev##*/}"
    done
}

# After installing: ask the device through the installed client.
smoke_check() {
    if [ -n "$ROOT" ]; then
        note "device check skipped (--root: not this system's tree)"
        return 0
    fi
    devs=$(vgpu_devices)
    if [ -z "$devs" ]; then
        note "no vgpu device (PCI ${PCI_VENDOR#0x}:${PCI_DEVICE#0x}) in this VM: the tools are installed, but there is nothing to talk to yet; once dom0 gives this VM a vgpu device, check with: vgpu-client --info"
        return 0
    fi
    say "vgpu device found at $(echo $devs); checking it with: vgpu-client --info"
    sc_out=$("$BINDIR/vgpu-client" --info 2>&1)
    sc_rc=$?
    printf '%s\n' "$sc_out" | sed 's/^/    /'
    if [ "$sc_rc" = 0 ]; then
        say "device check passed"
    else
        warn "device check failed: vgpu-client --info exited with status $sc_rc; the tools are installed (see $DOCDIR/README.txt, Troubleshooting)"
    fi
    return 0
}

# ------------------------------------------------------------ kernel module

# Undo what install_kmod recorded: "dkms VERSION", "ko PATH", "src PATH".
uninstall_kmod() {
    [ -f "$R$KMOD_RECORD" ] || return 0
    while read -r uk_kind uk_arg; do
        case $uk_kind in
        dkms)
            if command -v dkms >/dev/null 2>&1; then
                dkms remove -m vgpu -v "$uk_arg" --all >/dev/null 2>&1 &&
                    say "removed the vgpu kernel module $uk_arg from dkms"
            fi
            ;;
        ko)
            case $uk_arg in
            /lib/modules/*/updates/vgpu.ko)
                rm -f "$uk_arg" && say "removed $uk_arg"
                depmod -a "$(echo "$uk_arg" | cut -d/ -f4)" 2>/dev/null
                ;;
            esac
            ;;
        src)
            case $uk_arg in
            /usr/src/vgpu-*) rm -rf "$uk_arg" && say "removed $uk_arg" ;;
            esac
            ;;
        esac
    done <"$R$KMOD_RECORD"
    rm -f "$R$KMOD_RECORD"
    if [ -z "$ROOT" ] && [ -d /sys/module/vgpu ]; then
        rmmod vgpu 2>/dev/null && say "unloaded the vgpu kernel module" ||
            note "the vgpu kernel module stays loaded until reboot (in use)"
    fi
}

# Load the module and say what came of it.
load_kmod() {
    if [ -d /sys/module/vgpu ]; then
        rmmod vgpu 2>/dev/null ||
            note "an older vgpu module is loaded and in use: the new one is used after a reboot"
    fi
    if lk_err=$(modprobe vgpu 2>&1); then
        lk_nodes=$(ls /sys/class/misc 2>/dev/null | grep '^vgpu' | tr '\n' ' ')
        if [ -n "$lk_nodes" ]; then
            say "vgpu kernel module loaded: /dev/${lk_nodes% } (vgpu-client uses it)"
        else
            say "vgpu kernel module loaded (no vgpu device in this VM yet)"
        fi
    else
        case $lk_err in
        *"Key was rejected"* | *"Required key not available"*)
            warn "the vgpu kernel module is not signed for this Secure Boot system and was not loaded ($lk_err); sign it with your MOK (dkms: mok_signing_key) to use it" ;;
        *) warn "modprobe vgpu failed: $lk_err" ;;
        esac
    fi
}

# Build and install vgpu.ko from Linux/kernel/ (dkms, else the running
# kernel's headers, else nothing), loud about which.
install_kmod() {
    [ "$DRIVER" = 1 ] || {
        say "kernel module: skipped (--no-driver)"
        return 0
    }
    if [ -n "$ROOT" ]; then
        note "kernel module: left out with --root (run install.sh in the VM to build vgpu.ko)"
        return 0
    fi
    ik_kver=$(uname -r)
    ik_src=/usr/src/vgpu-$VERSION
    ik_kdir=/lib/modules/$ik_kver/build
    if ! command -v dkms >/dev/null 2>&1 && [ ! -f "$ik_kdir/Makefile" ]; then
        note "kernel module: not built: no dkms and no kernel headers for $ik_kver ($ik_kdir); the tools use the v1 sysfs path (resource0). To get the driver: install dkms or the headers (Debian/Ubuntu: linux-headers-$ik_kver; RHEL family: kernel-devel-$ik_kver) and run install.sh again"
        return 0
    fi
    rm -rf "$ik_src" && mkdir -p "$ik_src" &&
        cp -R "$PAYLOAD/kernel/." "$ik_src/" ||
        {
            warn "kernel module: cannot copy its source to $ik_src"
            return 0
        }
    echo "src $ik_src" >>"$R$KMOD_RECORD"
    if command -v dkms >/dev/null 2>&1; then
        dkms remove -m vgpu -v "$VERSION" --all >/dev/null 2>&1
        if ik_log=$(dkms add -m vgpu -v "$VERSION" 2>&1 &&
            dkms build -m vgpu -v "$VERSION" -k "$ik_kver" 2>&1 &&
            dkms install -m vgpu -v "$VERSION" -k "$ik_kver" --force 2>&1); then
            echo "dkms $VERSION" >>"$R$KMOD_RECORD"
            say "kernel module: vgpu.ko $VERSION built and installed with dkms for $ik_kver (dkms rebuilds it for new kernels)"
            load_kmod
        else
            echo "dkms $VERSION" >>"$R$KMOD_RECORD"
            warn "kernel module: dkms could not build vgpu $VERSION for $ik_kver; the tools use the v1 sysfs path. dkms said: $(printf '%s\n' "$ik_log" | tail -n 5)"
        fi
        return 0
    fi
    ik_cc=0
    command -v cc >/dev/null 2>&1 && ik_cc=1
    command -v gcc >/dev/null 2>&1 && ik_cc=1
    if ! command -v make >/dev/null 2>&1 || [ "$ik_cc" = 0 ]; then
        note "kernel module: not built: headers for $ik_kver are there but make or a C compiler is missing; the tools use the v1 sysfs path"
        return 0
    fi
    ik_tmp=$(mktemp -d /tmp/vgpu-kmod.XXXXXX) || return 0
    cp -R "$ik_src/." "$ik_tmp/"
    if ik_log=$(make -C "$ik_kdir" M="$ik_tmp" modules 2>&1) && [ -f "$ik_tmp/vgpu.ko" ]; then
        mkdir -p "/lib/modules/$ik_kver/updates" &&
            cp "$ik_tmp/vgpu.ko" "/lib/modules/$ik_kver/updates/vgpu.ko" &&
            echo "ko /lib/modules/$ik_kver/updates/vgpu.ko" >>"$R$KMOD_RECORD"
        depmod -a "$ik_kver" 2>/dev/null
        say "kernel module: vgpu.ko built with the headers of the running kernel $ik_kver (no dkms) and installed in /lib/modules/$ik_kver/updates; after a kernel update run install.sh again"
        load_kmod
    else
        warn "kernel module: the build against $ik_kdir failed; the tools use the v1 sysfs path. The build said: $(printf '%s\n' "$ik_log" | tail -n 5)"
    fi
    rm -rf "$ik_tmp"
}

# ------------------------------------------------------------ uninstall

do_uninstall() {
    if [ ! -f "$R$MANIFEST" ]; then
        say "not installed (no manifest at $R$MANIFEST): nothing to do"
        exit $E_OK
    fi
    u_version=$(manifest_get version | head -n 1)
    u_prefix=$(manifest_get prefix | head -n 1)
    u_files=$(manifest_get f)
    u_dirs=$(manifest_get d)
    [ -n "$u_prefix" ] && sane_path "$u_prefix" ||
        die $E_FAILED "manifest $R$MANIFEST is damaged (prefix '$u_prefix'); nothing removed"
    # Every path must lie under the recorded prefix: a damaged manifest
    # must not make us delete anything else.
    for p in $u_files $u_dirs; do
        sane_path "$p" || die $E_FAILED "manifest lists a bad path '$p'; nothing removed"
        case $p in
        "$u_prefix" | "$u_prefix"/*) ;;
        *) die $E_FAILED "manifest lists '$p' outside $u_prefix; nothing removed" ;;
        esac
    done
    confirm "Remove the vgpu guest tools ${u_version:-?} (the files listed in $R$MANIFEST)?"
    say "removing vgpu guest tools ${u_version:-?}"
    u_failed=0
    u_count=0
    for p in $u_files; do
        if [ -d "$R$p" ] && [ ! -L "$R$p" ]; then
            warn "$R$p is a folder now, not the file installed: left alone"
        elif [ -e "$R$p" ] || [ -L "$R$p" ]; then
            if rm -f "$R$p"; then
                u_count=$((u_count + 1))
                say "removed $R$p"
            else
                warn "could not remove $R$p"
                u_failed=1
            fi
        else
            note "$R$p was already gone"
        fi
    done
    # Deepest folders first: reverse order puts a/b/c before a/b.
    for d in $(printf '%s\n' "$u_dirs" | sort -r -u); do
        [ -d "$R$d" ] || continue
        if rmdir "$R$d" 2>/dev/null; then
            say "removed folder $R$d"
        else
            note "kept folder $R$d (not empty)"
        fi
    done
    [ "$u_failed" = 0 ] ||
        die $E_FAILED "some files could not be removed; the manifest is kept: fix the cause and run install.sh --uninstall again"
    uninstall_kmod
    rm -f "$R$MANIFEST" "$R$MANIFEST.new" && rmdir "$R$MANIFEST_DIR" 2>/dev/null
    say "uninstalled: $u_count files removed"
    exit $E_OK
}

[ "$MODE" = uninstall ] && do_uninstall

# ------------------------------------------------------------ install

case $VERSION in
*@*) die $E_PLATFORM "this is the source copy of install.sh: run the one on the ISO (make iso builds it)" ;;
esac

machine=$(uname -m)
[ "$machine" = "$ARCH" ] ||
    die $E_PLATFORM "unsupported architecture $machine: these tools are for $ARCH only"

# The payload lies next to this script.
case $0 in
*/*) PAYLOAD=$(cd "${0%/*}" && pwd) ;;
*) PAYLOAD=$(pwd) ;;
esac
contract_payload=
for h in $CONTRACT_HEADERS; do
    contract_payload="$contract_payload include/vgpu/$h"
done
for f in "$ARCH/vgpu-client" "$ARCH/libvgpu.a" "$ARCH/libcuda.so.1" \
    include/libvgpu.h \
    include/vgpu_protocol.h $contract_payload kernel/vgpu.c kernel/Kbuild \
    kernel/dkms.conf README.txt SHA256SUMS; do
    [ -f "$PAYLOAD/$f" ] ||
        die $E_PLATFORM "payload incomplete: $PAYLOAD/$f is missing (is the whole ISO mounted?)"
done
if command -v sha256sum >/dev/null 2>&1; then
    (cd "$PAYLOAD" && sha256sum -c SHA256SUMS >/dev/null 2>&1) ||
        die $E_PLATFORM "payload corrupt: checksums in $PAYLOAD/SHA256SUMS do not match (bad ISO image or read error)"
else
    note "no sha256sum: payload checksums not verified"
fi

# Distribution family from os-release: ID first, then ID_LIKE in order.
os_release=
for f in "$R/etc/os-release" "$R/usr/lib/os-release"; do
    [ -f "$f" ] && os_release=$f && break
done
os_field() {
    [ -n "$os_release" ] || return 0
    sed -n "s/^$1=//p" "$os_release" | head -n 1 |
        sed "s/^\"\(.*\)\"\$/\1/; s/^'\(.*\)'\$/\1/"
}
family_of() {
    case $1 in
    debian | ubuntu | linuxmint | raspbian | devuan | pop | kali | elementary) echo debian ;;
    rhel | centos | fedora | rocky | almalinux | ol | amzn | xenenterprise | \
        cloudlinux | scientific | eurolinux | circle) echo rhel ;;
    sles | sled | suse | opensuse | opensuse-*) echo suse ;;
    alpine) echo alpine ;;
    esac
}
os_id=$(os_field ID | tr 'A-Z' 'a-z')
os_like=$(os_field ID_LIKE | tr 'A-Z' 'a-z')
os_name=$(os_field PRETTY_NAME)
FAMILY=
for w in $os_id $os_like; do
    FAMILY=$(family_of "$w")
    [ -n "$FAMILY" ] && break
done
[ -n "$FAMILY" ] || FAMILY=generic
if [ -z "$os_release" ]; then
    say "no /etc/os-release: unknown distribution, generic layout"
else
    say "distribution: ${os_name:-${os_id:-unknown}} (family: $FAMILY)"
fi

# Prefix: /usr unless it is read-only (or --prefix says otherwise).
usr_writable() {
    uw_dir=$R/usr/bin
    [ -d "$uw_dir" ] || mkdir -p "$uw_dir" 2>/dev/null || return 1
    uw_probe=$uw_dir/.vgpu-guest-tools-probe.$$
    (: >"$uw_probe") 2>/dev/null || return 1
    rm -f "$uw_probe"
}
if [ "$PREFIX_GIVEN" = 0 ]; then
    PREFIX=/usr
    if ! usr_writable; then
        PREFIX=/usr/local
        note "/usr is read-only here: installing under /usr/local"
    fi
fi
BINDIR=$PREFIX/bin
INCDIR=$PREFIX/include/vgpu
DOCDIR=$PREFIX/share/doc/vgpu-guest-tools
if [ "$PREFIX" = /usr ]; then
    case $FAMILY in
    debian) LIBDIR=/usr/lib/x86_64-linux-gnu ;;
    rhel | suse) LIBDIR=/usr/lib64 ;;
    *) LIBDIR=/usr/lib ;;
    esac
else
    LIBDIR=$PREFIX/lib
fi

# What goes where: payload file, target, mode.
FILES="$ARCH/vgpu-client:$BINDIR/vgpu-client:0755
$ARCH/libvgpu.a:$LIBDIR/libvgpu.a:0644
$ARCH/libcuda.so.1:$LIBDIR/libcuda.so.1:0755
include/libvgpu.h:$INCDIR/libvgpu.h:0644
include/vgpu_protocol.h:$INCDIR/vgpu_protocol.h:0644
README.txt:$DOCDIR/README.txt:0644"
for h in $CONTRACT_HEADERS; do
    FILES="$FILES
include/vgpu/$h:$INCDIR/vgpu/$h:0644"
done
new_files=$(printf '%s\n' "$FILES" | cut -d: -f2)

# The state of what is there now.
old_version=$(manifest_get version | head -n 1)
old_prefix=$(manifest_get prefix | head -n 1)
old_files=$(manifest_get f)
old_dirs=$(manifest_get d)
intact=1
for ent in $FILES; do
    src=${ent%%:*}
    rest=${ent#*:}
    dst=${rest%%:*}
    same_file "$PAYLOAD/$src" "$R$dst" || intact=0
done
[ -x "$R$BINDIR/vgpu-client" ] || intact=0
sorted_new=$(printf '%s\n' "$new_files" | sort -u)
sorted_old=$(printf '%s\n' "$old_files" | sort -u)
[ "$sorted_new" = "$sorted_old" ] || intact=0

if [ -f "$R$MANIFEST" ] && [ "$old_version" = "$VERSION" ] && [ "$intact" = 1 ]; then
    say "vgpu guest tools $VERSION are already installed (prefix $PREFIX): nothing to do"
    [ -f "$R$KMOD_RECORD" ] || install_kmod
    smoke_check
    exit $E_OK
fi

if [ ! -f "$R$MANIFEST" ]; then
    action="installing vgpu guest tools $VERSION"
    for ent in $new_files; do
        [ -e "$R$ent" ] && note "$R$ent exists but was not installed by this tool: it will be replaced"
    done
elif [ "$old_version" != "$VERSION" ]; then
    action="replacing vgpu guest tools ${old_version:-?} with $VERSION"
else
    action="repairing vgpu guest tools $VERSION (files missing or changed)"
fi

confirm "Install the vgpu guest tools $VERSION under $PREFIX (library in $LIBDIR)?"
say "$action (prefix $PREFIX)"

# Folders: the two that are ours are always recorded; any other we have
# to create is recorded too, so --uninstall can remove it when empty.
created_dirs=
make_dirs() { # PATH: create it and its missing parents, recording them
    md_path=$1
    md_missing=
    while [ -n "$md_path" ] && [ ! -d "$R$md_path" ]; do
        md_missing="$md_path
$md_missing"
        md_path=${md_path%/*}
    done
    for md_d in $md_missing; do
        mkdir "$R$md_d" || return 1
        # Only folders from the prefix down are ours to remove later.
        case $md_d in
        "$PREFIX" | "$PREFIX"/*) created_dirs="$created_dirs
$md_d" ;;
        esac
    done
}
for d in "$BINDIR" "$LIBDIR" "$INCDIR" "$INCDIR/vgpu" "$DOCDIR"; do
    make_dirs "$d" || {
        write_manifest "$VERSION" "$FAMILY" "$PREFIX" "$old_dirs$created_dirs" "$old_files"
        die $E_FAILED "cannot create $R$d"
    }
done
# Old folders still there stay recorded; ours are recorded in any case.
keep_dirs=
for d in $old_dirs; do
    [ -d "$R$d" ] && keep_dirs="$keep_dirs
$d"
done
all_dirs="$keep_dirs$created_dirs
$INCDIR
$INCDIR/vgpu
$DOCDIR"

# Record the union of old and new files before writing any: a failure in
# the middle leaves a manifest that --uninstall can clean up with.
write_manifest "$VERSION" "$FAMILY" "$PREFIX" "$all_dirs" "$old_files
$new_files" || die $E_FAILED "cannot write the manifest $R$MANIFEST"

for ent in $FILES; do
    src=${ent%%:*}
    rest=${ent#*:}
    dst=${rest%%:*}
    mode=${rest#*:}
    # Copy next to the target, then rename over it: atomic, and works
    # while the old binary is running.
    tmp=$R$dst.vgpu-new
    if cp "$PAYLOAD/$src" "$tmp" && chmod "$mode" "$tmp" && mv -f "$tmp" "$R$dst"; then
        say "installed $R$dst"
    else
        rm -f "$tmp"
        die $E_FAILED "could not install $R$dst (the manifest lists what may be there: install.sh --uninstall removes it)"
    fi
done
# SELinux systems: give the new files their default labels.
if [ -z "$ROOT" ] && command -v restorecon >/dev/null 2>&1; then
    for f in $new_files; do
        restorecon "$f" 2>/dev/null
    done
fi

# Files the old installation had and this one does not.
for p in $old_files; do
    case "
$new_files
" in
    *"
$p
"*) continue ;;
    esac
    if sane_path "$p" && case $p in "${old_prefix:-/nowhere}"/*) true ;; *) false ;; esac; then
        [ -e "$R$p" ] || [ -L "$R$p" ] || continue
        if rm -f "$R$p"; then
            say "removed $R$p (not part of $VERSION)"
        else
            warn "could not remove $R$p (from the old installation)"
        fi
    else
        warn "not removing '$p' from the old manifest: outside its prefix"
    fi
done
for d in $(printf '%s\n' "$old_dirs" | sort -r -u); do
    case "
$all_dirs
" in
    *"
$d
"*) ;;
    *) [ -d "$R$d" ] && rmdir "$R$d" 2>/dev/null ;;
    esac
done

write_manifest "$VERSION" "$FAMILY" "$PREFIX" "$all_dirs" "$new_files" ||
    die $E_FAILED "cannot write the manifest $R$MANIFEST"
say "done: vgpu-client in $BINDIR, libvgpu.a and libcuda.so.1 (CUDA programs, docs/cuda.md) in $LIBDIR, headers in $INCDIR (#include <vgpu/libvgpu.h>, link with -lvgpu); manifest $MANIFEST"
if [ -z "$ROOT" ]; then
    case ":$PATH:" in
    *":$BINDIR:"*) ;;
    *) note "$BINDIR is not in this shell's PATH: run $BINDIR/vgpu-client, or add it to PATH" ;;
    esac
fi
uninstall_kmod # what an earlier installation built
install_kmod
smoke_check
exit $E_OK
