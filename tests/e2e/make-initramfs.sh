#!/bin/sh
# make-initramfs.sh - builds the initramfs the e2e tests boot.
#
# Usage: make-initramfs.sh OUT.cpio.gz [FILE...]
#
# Owns the guest image: a gzip'd newc cpio holding
#   /bin/busybox      static busybox (Debian busybox-static; $BUSYBOX
#                     overrides), with a symlink for every applet
#   /usr/bin/vgpu-client
#                     the static client ($VGPU_CLIENT, default
#                     build/guest-tools/vgpu-client, built with make when
#                     missing); VGPU_CLIENT=none leaves it out (the ISO
#                     test installs it from the guest-tools ISO instead)
#   /lib/modules/<name>.ko, /etc/vgpu-modules
#                     with VGPU_MODULES="name ...": those kernel modules of
#                     the kernel the tests boot (VGPU_KERNEL_VERSION,
#                     default: the newest /boot/vmlinuz-*) and every module
#                     they depend on (modinfo), decompressed; the list in
#                     /etc/vgpu-modules is in dependency order and init
#                     loads them with insmod at boot
#   /lib/modules/extra/<name>.ko
#                     with VGPU_KO="file.ko ...": those module files as
#                     they are (vgpu.ko built for the booted kernel), not
#                     loaded at boot: a test loads them with insmod
#   /usr/bin/<name>   each FILE given on the command line; one that is
#                     dynamically linked gets its loader and the host's
#                     libraries it needs (ldd) beside it, where Debian has
#                     them, except those VGPU_LIBS provides
#   /usr/lib/x86_64-linux-gnu/<name>
#                     with VGPU_LIBS="lib.so.N ...": those shared
#                     libraries (the guest's libcuda.so.1), where
#                     Debian's loader looks for them
#   /opt/vgpu/<name>  with VGPU_DATA="file ...": those files (a program's
#                     CUDA images)
#   /init             tests/e2e/guest-init: mounts proc/sysfs/devtmpfs,
#                     prints VGPU-GUEST-READY, shell on the console
#                     (prompt "vgpu-guest# "), or vgpu.autorun=NAME
#
# Boot it with e.g.:
#   qemu-system-x86_64 -nodefaults -machine pc -m 256 -no-reboot \
#     -kernel /boot/vmlinuz-<version> -initrd OUT.cpio.gz \
#     -append 'console=ttyS0 quiet' -serial stdio -display none \
#     -device vgpu-stub,...
set -eu

die() {
    echo "make-initramfs.sh: $*" >&2
    exit 1
}

[ $# -ge 1 ] || die "usage: make-initramfs.sh OUT.cpio.gz [FILE...]"
case "$1" in
-h | --help)
    sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
esac

OUT=$1
shift
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
BUSYBOX=${BUSYBOX:-/bin/busybox}
VGPU_CLIENT=${VGPU_CLIENT:-$TOP/build/guest-tools/vgpu-client}
VGPU_MODULES=${VGPU_MODULES:-}
VGPU_KO=${VGPU_KO:-}
VGPU_LIBS=${VGPU_LIBS:-}
VGPU_DATA=${VGPU_DATA:-}
INIT=$HERE/guest-init

# A binary that asks for a dynamic loader cannot run in this image.
is_static() {
    ! readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'
}

if [ ! -x "$VGPU_CLIENT" ] && [ "$VGPU_CLIENT" = "$TOP/build/guest-tools/vgpu-client" ]; then
    make -s -C "$TOP/guest-tools" O="$TOP/build/guest-tools" \
        "$TOP/build/guest-tools/vgpu-client" >&2
fi
[ -x "$BUSYBOX" ] || die "no busybox at $BUSYBOX (apt-get install busybox-static)"
if [ "$VGPU_CLIENT" != none ]; then
    [ -x "$VGPU_CLIENT" ] || die "no vgpu-client at $VGPU_CLIENT"
    is_static "$VGPU_CLIENT" || die "$VGPU_CLIENT is not static"
fi
[ -f "$INIT" ] || die "no init script at $INIT"
is_static "$BUSYBOX" || die "$BUSYBOX is not static"
for f in "$@"; do
    [ -f "$f" ] || die "no such file: $f"
done

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-initramfs.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT INT TERM

mkdir -p "$STAGE/bin" "$STAGE/sbin" "$STAGE/usr/bin" "$STAGE/usr/sbin" \
    "$STAGE/proc" "$STAGE/sys" "$STAGE/dev" "$STAGE/tmp" "$STAGE/root" \
    "$STAGE/etc"
cp "$BUSYBOX" "$STAGE/bin/busybox"
for applet in $("$BUSYBOX" --list-full); do
    [ -e "$STAGE/$applet" ] || ln -s /bin/busybox "$STAGE/$applet"
done
[ -e "$STAGE/bin/sh" ] || ln -s /bin/busybox "$STAGE/bin/sh"
if [ "$VGPU_CLIENT" != none ]; then
    cp "$VGPU_CLIENT" "$STAGE/usr/bin/vgpu-client"
    chmod 0755 "$STAGE/usr/bin/vgpu-client"
fi
# A host library into the image, at the path the loader resolves it to.
copy_lib() {
    mkdir -p "$STAGE$(dirname "$1")"
    [ -e "$STAGE$1" ] || cp -L "$1" "$STAGE$1"
}
provided() {
    for l in $VGPU_LIBS; do
        [ "$(basename "$l")" = "$1" ] && return 0
    done
    return 1
}
for f in "$@"; do
    cp "$f" "$STAGE/usr/bin/$(basename "$f")"
    chmod 0755 "$STAGE/usr/bin/$(basename "$f")"
    is_static "$f" && continue
    # "name => /path (addr)", or the loader's own "/path (addr)" line.
    ldd "$f" | while read -r name arrow path rest; do
        case "$name" in linux-vdso*) continue ;; esac
        if [ "$arrow" = "=>" ]; then
            provided "$name" && continue
            [ -f "$path" ] || die "$f needs $name, which the host lacks"
            copy_lib "$path"
        elif [ -f "$name" ]; then
            copy_lib "$name"
        fi
    done
done
for l in $VGPU_LIBS; do
    mkdir -p "$STAGE/usr/lib/x86_64-linux-gnu"
    cp -L "$l" "$STAGE/usr/lib/x86_64-linux-gnu/$(basename "$l")"
    # What the library itself needs (libc, for ours).
    ldd "$l" | while read -r name arrow path rest; do
        if [ "$arrow" = "=>" ] && [ -f "$path" ]; then
            copy_lib "$path"
        fi
    done
done
for f in $VGPU_DATA; do
    mkdir -p "$STAGE/opt/vgpu"
    cp "$f" "$STAGE/opt/vgpu/$(basename "$f")"
done
cp "$INIT" "$STAGE/init"
chmod 0755 "$STAGE/init" "$STAGE/bin/busybox"

# Kernel modules, dependencies first.
if [ -n "$VGPU_MODULES" ]; then
    if [ -z "${VGPU_KERNEL_VERSION:-}" ]; then
        k=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
        [ -n "$k" ] || die "no kernel in /boot: set VGPU_KERNEL_VERSION"
        VGPU_KERNEL_VERSION=${k#/boot/vmlinuz-}
    fi
    KVER=$VGPU_KERNEL_VERSION
    [ -d "/lib/modules/$KVER" ] || die "no /lib/modules/$KVER (modules of the kernel booted)"
    command -v modinfo >/dev/null || die "no modinfo (apt-get install kmod)"
    mkdir -p "$STAGE/lib/modules"
    MOD_ORDER=
    add_module() { # NAME: its dependencies, then itself (positional args
        # are per call, so recursion keeps "$1")
        case " $MOD_ORDER " in *" $1 "*) return 0 ;; esac
        f=$(modinfo -k "$KVER" -F filename "$1" 2>/dev/null) ||
            die "no module $1 for kernel $KVER"
        case $f in
        "" | "(builtin)") return 0 ;; # built into the kernel
        esac
        for d in $(modinfo -k "$KVER" -F depends "$1" | tr ',' ' '); do
            add_module "$d"
        done
        case " $MOD_ORDER " in *" $1 "*) return 0 ;; esac
        f=$(modinfo -k "$KVER" -F filename "$1")
        case $f in
        *.ko) cp "$f" "$STAGE/lib/modules/$1.ko" ;;
        *.ko.xz) xz -dc "$f" >"$STAGE/lib/modules/$1.ko" ;;
        *.ko.zst) zstd -qdc "$f" >"$STAGE/lib/modules/$1.ko" ;;
        *.ko.gz) gzip -dc "$f" >"$STAGE/lib/modules/$1.ko" ;;
        *) die "module $1: unknown file type $f" ;;
        esac || die "cannot copy module $1 from $f"
        MOD_ORDER="$MOD_ORDER $1"
    }
    for m in $VGPU_MODULES; do
        add_module "$m"
    done
    printf '%s\n' $MOD_ORDER >"$STAGE/etc/vgpu-modules"
    echo "make-initramfs.sh: kernel $KVER modules:$MOD_ORDER" >&2
fi
# Module files loaded by the tests themselves.
if [ -n "$VGPU_KO" ]; then
    mkdir -p "$STAGE/lib/modules/extra"
    for f in $VGPU_KO; do
        [ -f "$f" ] || die "no module file $f"
        cp "$f" "$STAGE/lib/modules/extra/$(basename "$f")"
    done
fi
# Console node for the kernel's first open (init also mounts devtmpfs, so
# an unprivileged build without mknod still boots).
mknod -m 600 "$STAGE/dev/console" c 5 1 2>/dev/null || true
echo "root:x:0:0:root:/root:/bin/sh" >"$STAGE/etc/passwd"

mkdir -p "$(dirname "$OUT")"
(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort |
    cpio --quiet -o -H newc --owner=0:0) | gzip -9 >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "make-initramfs.sh: wrote $OUT" >&2
