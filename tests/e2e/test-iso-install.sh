#!/bin/bash
# test-iso-install.sh - end to end: the guest-tools ISO, as an administrator
# uses it.
#
# Builds the ISO with guest-tools/iso/build-iso.sh and checks its layout
# and label; runs its Linux/install.sh on this machine against scratch
# trees (--root) for what one guest cannot show (distribution families,
# not root, corrupt payload, upgrade from an older version); then boots
# ONE TCG guest whose initramfs has NO vgpu-client but has the kernel's
# CD-ROM modules, with a vgpu-stub and the ISO in its IDE CD drive.  In
# the guest: mount /dev/sr0, install.sh -n installs (and its device check
# passes through the real mediator), a second run changes nothing,
# vgpu-client 100 200 prints 300, the confirmation prompt cancels on "n",
# and --uninstall removes every path of the manifest.
set -u
. "$(dirname "$0")/lib.sh"

# Boolean helpers for check.
name_ok() { [[ $ISO_NAME == "vgpu-guest-tools-$VERSION.iso" ]]; }
name_not_xcpng() { [[ $ISO_NAME != guest-tools* && $ISO_NAME != xs-tools* ]]; }
on_iso() { grep -qx -- "'$1'" <<<"$ISO_FILES"; }
is_file() { [ -f "$1" ]; }
no_file() { [ ! -e "$1" ]; }
joliet() { # a supplementary volume descriptor (type 2) right after the primary one
    [ "$(dd if="$ISO" bs=2048 skip=17 count=1 2>/dev/null | head -c 6 | od -An -c | tr -d ' ')" = '002CD001' ]
}
rock_ridge() { grep -aq 'RRIP_1991A\|IEEE_P1282\|IEEE_1282' "$ISO"; }

# ------------------------------------------------------------ the ISO
log "building the ISO"
OUT=$("$TOP/guest-tools/iso/build-iso.sh" --guest-build "$VGPU_GUEST_BUILD" \
    --out "$W/iso" 2>&1)
RC=$?
check "build-iso.sh succeeds" rc_is 0
ISO=$(tail -n 1 <<<"$OUT")
[ -f "$ISO" ] || die "no ISO built: $OUT"
ISO_NAME=$(basename "$ISO")
ISO_FILES=$(xorriso -indev "$ISO" -find / -type f 2>/dev/null)
xorriso -osirrox on -indev "$ISO" -extract /Linux "$W/Linux" >/dev/null 2>&1 ||
    die "cannot extract /Linux from $ISO"
chmod -R u+w "$W/Linux"
VERSION=$(cat "$W/Linux/VERSION")
log "ISO $ISO_NAME, version $VERSION"

check "ISO named vgpu-guest-tools-<version>.iso" name_ok
check "ISO name does not start with guest-tools or xs-tools" name_not_xcpng
OUT=$(xorriso -indev "$ISO" -pvd_info 2>&1)
check "volume label names the product and version" \
    has "^Volume Id *: VGPU_TOOLS_$(tr '.a-z-' '_A-Z_' <<<"$VERSION")\$"
check "ISO has Rock Ridge" rock_ridge
check "ISO has Joliet" joliet
CONTRACT=$(cd "$TOP/include/vgpu" && ls -- *.h)
for f in /README.txt /Linux/install.sh /Linux/README.txt /Linux/VERSION \
    /Linux/SHA256SUMS /Linux/x86_64/vgpu-client /Linux/x86_64/libvgpu.a \
    /Linux/x86_64/libcuda.so.1 \
    /Linux/include/libvgpu.h /Linux/include/vgpu_protocol.h \
    $(printf '/Linux/include/vgpu/%s ' $CONTRACT) /Linux/kernel/vgpu.c \
    /Linux/kernel/Kbuild /Linux/kernel/Makefile /Linux/kernel/dkms.conf \
    /Linux/kernel/include/uapi/vgpu.h /Linux/kernel/include/vgpu/ring.h; do
    check "ISO holds $f" on_iso "$f"
done
check "the ISO's dkms.conf names version $VERSION" \
    grep -qx "PACKAGE_VERSION=\"$VERSION\"" "$W/Linux/kernel/dkms.conf"
# The kernel source on the ISO is self-contained: it builds on its own.
KH=/lib/modules/$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 | sed 's|.*/vmlinuz-||')/build
if [ -f "$KH/Makefile" ]; then
    cp -R "$W/Linux/kernel" "$W/kbuild" && chmod -R u+w "$W/kbuild"
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u O make -C "$KH" M="$W/kbuild" modules \
        >"$W/kbuild.log" 2>&1
    check "the ISO's kernel source builds with Kbuild on its own ($KH)" \
        [ -f "$W/kbuild/vgpu.ko" ]
else
    echo "note: no kernel headers: the build of the ISO's kernel source is left out"
fi
OUT=$(xorriso -indev "$ISO" -lsdl /Linux/install.sh /Linux/x86_64/vgpu-client 2>/dev/null)
check "install.sh and vgpu-client are executable on the ISO" \
    bash -c "[ \$(grep -c '^-r-xr-xr-x' <<<'$OUT') = 2 ]"
OUT=$(SOURCE_DATE_EPOCH=1700000000 "$TOP/guest-tools/iso/build-iso.sh" \
    --guest-build "$VGPU_GUEST_BUILD" --out "$W/iso-a" 2>/dev/null &&
    SOURCE_DATE_EPOCH=1700000000 "$TOP/guest-tools/iso/build-iso.sh" \
        --guest-build "$VGPU_GUEST_BUILD" --out "$W/iso-b" 2>/dev/null)
check "two builds of the same tree are identical" \
    cmp -s "$W/iso-a/$ISO_NAME" "$W/iso-b/$ISO_NAME"

# ------------------------------------------------------------ install.sh on this machine
INST=$W/Linux/install.sh
OUT=$(sh "$INST" --help 2>&1)
RC=$?
check "install.sh --help: exit 0" rc_is 0
check "install.sh --help documents the exit statuses" has "^Exit status:"
check "install.sh --help documents --uninstall" has "--uninstall"
OUT=$(sh "$INST" --version 2>&1)
check "install.sh --version prints $VERSION" is "$VERSION"
OUT=$(sh "$INST" --bogus 2>&1)
RC=$?
check "unknown option: exit 1" rc_is 1
OUT=$(sh "$INST" -n extra 2>&1)
RC=$?
check "stray argument: exit 1" rc_is 1
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    # The script on stdin: nobody cannot read the 0700 work folder.
    OUT=$(setpriv --reuid=65534 --regid=65534 --clear-groups sh -s -- -n <"$INST" 2>&1)
    RC=$?
    check "not root: exit 2" rc_is 2
    check "not root: says so" has "must run as root"
else
    echo "note: not root or no setpriv: the not-root check is left out"
fi
OUT=$(sh "$TOP/guest-tools/iso/Linux/install.sh" -n --root "$W" 2>&1)
RC=$?
check "the unfilled source copy refuses: exit 3" rc_is 3

# Distribution families, through --root scratch trees (dash runs it).
family() { # NAME OS-RELEASE LIBDIR
    local r=$W/root-$1
    mkdir -p "$r/etc"
    [ -n "$2" ] && printf '%s\n' "$2" >"$r/etc/os-release"
    OUT=$(sh "$INST" -n --root "$r" 2>&1)
    RC=$?
    check "$1: install exit 0" rc_is 0
    check "$1: libvgpu.a in $3" is_file "$r$3/libvgpu.a"
    check "$1: libcuda.so.1 in $3, where the loader finds libcuda" \
        is_file "$r$3/libcuda.so.1"
    check "$1: vgpu-client in /usr/bin" is_file "$r/usr/bin/vgpu-client"
    check "$1: headers in /usr/include/vgpu" is_file "$r/usr/include/vgpu/vgpu_protocol.h"
    check "$1: the contract's headers in /usr/include/vgpu/vgpu" \
        is_file "$r/usr/include/vgpu/vgpu/names.h"
}
family debian 'ID=debian' /usr/lib/x86_64-linux-gnu
family ubuntu-like $'ID=linuxmint\nID_LIKE="ubuntu debian"' /usr/lib/x86_64-linux-gnu
family rocky $'ID="rocky"\nID_LIKE="rhel centos fedora"' /usr/lib64
family opensuse $'ID="opensuse-leap"\nID_LIKE="suse opensuse"' /usr/lib64
family alpine 'ID=alpine' /usr/lib
family unknown 'ID=plan9' /usr/lib
family no-os-release '' /usr/lib
# What a guest program writes compiles against the installed headers.
printf '#include <vgpu/libvgpu.h>\nint main(void) { return VGPU_POOL_NAME_MAX - 16; }\n' \
    >"$W/uses-headers.c"
OUT=$(cc -Wall -Werror -I "$W/root-debian/usr/include" -o "$W/uses-headers" \
    "$W/uses-headers.c" 2>&1)
RC=$?
check "#include <vgpu/libvgpu.h> compiles against the installed headers" rc_is 0

# Upgrade over an older version: replaced, and its extra file removed.
R=$W/root-debian
M=$R/var/lib/vgpu-guest-tools/manifest
sed -i 's/^version .*/version 0.0.1/' "$M"
echo 'f /usr/share/doc/vgpu-guest-tools/OLD-NOTES' >>"$M"
echo old >"$R/usr/share/doc/vgpu-guest-tools/OLD-NOTES"
echo 'an old client' >"$R/usr/bin/vgpu-client"
OUT=$(sh "$INST" -n --root "$R" 2>&1)
RC=$?
check "upgrade from 0.0.1: exit 0" rc_is 0
check "upgrade from 0.0.1: says it replaces it" has "replacing vgpu guest tools 0.0.1 with $VERSION"
check "upgrade: the old version's extra file is removed" no_file "$R/usr/share/doc/vgpu-guest-tools/OLD-NOTES"
check "upgrade: the new client is in place" cmp -s "$R/usr/bin/vgpu-client" "$W/Linux/x86_64/vgpu-client"
check "upgrade: manifest names $VERSION" grep -qx "version $VERSION" "$M"
OUT=$(sh "$INST" -n --root "$R" 2>&1)
RC=$?
check "after the upgrade: already installed" has "already installed"
# A manifest that names a path outside the prefix removes nothing.
cp "$M" "$W/manifest.saved"
echo 'f /etc/passwd' >>"$M"
OUT=$(sh "$INST" -n --root "$R" --uninstall 2>&1)
RC=$?
check "damaged manifest: --uninstall refuses with exit 4" rc_is 4
check "damaged manifest: nothing removed" is_file "$R/usr/bin/vgpu-client"
cp "$W/manifest.saved" "$M"
OUT=$(sh "$INST" -n --root "$R" --uninstall 2>&1)
RC=$?
check "--root uninstall: exit 0" rc_is 0
check "--root uninstall: tree back to what it was" \
    bash -c "[ -z \"\$(cd '$R' && find . -mindepth 1 ! -path ./etc ! -path ./etc/os-release ! -path ./usr ! -path ./usr/bin ! -path ./var ! -path ./var/lib)\" ]"

# A damaged payload is refused before anything is touched.
cp -r "$W/Linux" "$W/Linux-bad"
echo garbage >>"$W/Linux-bad/x86_64/libvgpu.a"
OUT=$(sh "$W/Linux-bad/install.sh" -n --root "$W/root-alpine" 2>&1)
RC=$?
check "corrupt payload: exit 3" rc_is 3
check "corrupt payload: says so" has "payload corrupt"
rm "$W/Linux-bad/x86_64/vgpu-client"
OUT=$(sh "$W/Linux-bad/install.sh" -n --root "$W/root-alpine" 2>&1)
RC=$?
check "missing payload file: exit 3" rc_is 3

# ------------------------------------------------------------ in a guest
KERNEL=$(e2e_kernel)
KVER=${KERNEL#/boot/vmlinuz-}
log "building a guest initramfs without vgpu-client, with CD-ROM modules of $KVER"
VGPU_CLIENT=none VGPU_MODULES="ata_piix sr_mod isofs" VGPU_KERNEL_VERSION=$KVER \
    "$E2E_DIR/make-initramfs.sh" "$W/initrd.cpio.gz" >"$W/initramfs.log" 2>&1 ||
    die "initramfs build failed: $(tail -n 5 "$W/initramfs.log")"
OUT=$(zcat "$W/initrd.cpio.gz" | cpio -t 2>/dev/null)
check "initramfs has no vgpu-client" bash -c "! grep -q vgpu-client <<<'$OUT'"
check "initramfs has sr_mod" has "^lib/modules/sr_mod.ko$"

xs_start 1
xs_assign 1 A high 1
mkdir -p "$QROOT/root-1"
mediator_start
log "booting the guest with the ISO in its CD drive"
vm_launch 1 "$VGPU_QEMU" -nodefaults -machine pc -m 256 -no-reboot \
    -display none -L /usr/share/seabios -L /usr/share/qemu \
    -kernel "$KERNEL" -initrd "$W/initrd.cpio.gz" \
    -append "console=ttyS0 quiet panic=-1 vgpu.noecho" -serial stdio \
    -drive "file=$ISO,format=raw,media=cdrom,if=ide,index=2,readonly=on" \
    -device "vgpu-stub,pool=A,priority=high,vm-id=1,socket=$QROOT/root-1/vgpu-mediator.sock"
vm_wait_ready 1
log "guest up"

vm_run 1 'command -v vgpu-client || echo "no vgpu-client"'
check "guest: no vgpu-client before the install" is "no vgpu-client"
vm_run 1 'i=0; while [ ! -b /dev/sr0 ] && [ $i -lt 30 ]; do sleep 1; i=$((i+1)); done; mkdir -p /mnt && mount -t iso9660 -o ro /dev/sr0 /mnt && cat /mnt/Linux/VERSION'
check "guest: the ISO mounts from /dev/sr0" rc_is 0
check "guest: the mounted ISO is version $VERSION" is "$VERSION"

vm_run 1 sh /mnt/Linux/install.sh -n
check "guest install: exit 0" rc_is 0
check "guest install: no os-release, generic layout" has "generic layout"
check "guest install: installs /usr/bin/vgpu-client" has "installed /usr/bin/vgpu-client"
check "guest install: says the kernel module is not built, and why" \
    has "kernel module: not built: no dkms and no kernel headers"
check "guest install: device check passed" has "device check passed"
check "guest install: device check shows pool A" has "^ *pool: *A$"
vm_run 1 cat /var/lib/vgpu-guest-tools/manifest
MANIFEST=$OUT
check "guest manifest: version" has "^version $VERSION$"
INSTALLED=$(sed -n 's/^[fd] //p' <<<"$MANIFEST" | tr '\n' ' ')
for p in /usr/bin/vgpu-client /usr/lib/libvgpu.a /usr/include/vgpu/libvgpu.h \
    /usr/include/vgpu/vgpu_protocol.h /usr/share/doc/vgpu-guest-tools/README.txt \
    $(printf '/usr/include/vgpu/vgpu/%s ' $CONTRACT); do
    check "guest manifest lists $p" has "^f $p$"
done
vm_run 1 "ls -d $INSTALLED >/dev/null"
check "guest: every manifest path exists" rc_is 0

vm_run 1 sh /mnt/Linux/install.sh -n
check "guest second install: exit 0" rc_is 0
check "guest second install: already installed" has "already installed"
check "guest second install: nothing written" bash -c "! grep -q '^vgpu-guest-tools: installed' <<<'$OUT'"

vm_run 1 command -v vgpu-client
check "guest: vgpu-client is /usr/bin/vgpu-client" is /usr/bin/vgpu-client
vm_run 1 vgpu-client 100 200
check "guest: the ISO's vgpu-client 100 200 prints 300" is 300
check "guest: vgpu-client exit 0" rc_is 0

# The prompt (stdin is the serial console, a terminal): "n" cancels.
vm_send 1 sh /mnt/Linux/install.sh --uninstall
prompt_tag=$TAG
wait_until 20 grep -aq 'y/N' "$W/vm1.log" || die "no confirmation prompt"
echo n >&"${VM_FD[1]}"
vm_wait 1 "$prompt_tag"
check "guest prompt answered n: exit 5" rc_is 5
check "guest prompt answered n: cancelled" has "cancelled"
vm_run 1 test -x /usr/bin/vgpu-client
check "guest prompt answered n: still installed" rc_is 0

vm_run 1 sh /mnt/Linux/install.sh --uninstall -n
check "guest uninstall: exit 0" rc_is 0
NFILES=$(grep -c '^f ' <<<"$MANIFEST")
check "guest uninstall: the manifest's $NFILES files removed (6 + the contract's headers)" \
    has "uninstalled: $((6 + $(wc -w <<<"$CONTRACT"))) files removed"
vm_run 1 "for p in $INSTALLED /var/lib/vgpu-guest-tools; do [ -e \$p ] && echo \"left: \$p\"; done; true"
check "guest uninstall: every manifest path and the manifest are gone" is ""
vm_run 1 vgpu-client 100 200
check "guest uninstall: vgpu-client is gone (exit 127)" rc_is 127
vm_run 1 sh /mnt/Linux/install.sh --uninstall -n
check "guest uninstall again: exit 0" rc_is 0
check "guest uninstall again: not installed" has "not installed"

# A read-only /usr (image-based systems, with a writable /usr/local).
vm_run 1 'mkdir -p /usr/local && mount --bind /usr /usr && mount -o remount,bind,ro /usr && mount -t tmpfs tmpfs /usr/local && ! touch /usr/bin/probe 2>/dev/null'
check "guest: /usr made read-only, /usr/local writable" rc_is 0
vm_run 1 sh /mnt/Linux/install.sh -n
check "read-only /usr: install exit 0" rc_is 0
check "read-only /usr: says it uses /usr/local" has "/usr is read-only here: installing under /usr/local"
check "read-only /usr: notes PATH" has "/usr/local/bin is not in this shell's PATH"
vm_run 1 /usr/local/bin/vgpu-client 100 200
check "read-only /usr: /usr/local/bin/vgpu-client 100 200 prints 300" is 300
vm_run 1 'ls /usr/local/lib/libvgpu.a /usr/local/include/vgpu/libvgpu.h && grep -x "prefix /usr/local" /var/lib/vgpu-guest-tools/manifest'
check "read-only /usr: library, headers and manifest under /usr/local" rc_is 0
vm_run 1 'sh /mnt/Linux/install.sh -n --uninstall && [ -z "$(ls -A /usr/local)" ] && [ ! -e /var/lib/vgpu-guest-tools ]'
check "read-only /usr: uninstall leaves /usr/local empty" rc_is 0
vm_run 1 'umount /usr/local && umount /usr'

check "mediator served the guest" grep -q "dom1: served request" "$W/mediator.log"
check "no sanitizer report from the mediator" \
    bash -c "! grep -q 'Sanitizer' '$W/mediator.log'"

e2e_summary
