#!/bin/bash
# build-qemu-xcpng.sh - build XCP-ng's qemu-dm (QEMU 4.2 + XCP-ng's patches
# + our vgpu series) for real, cached outside the checkout.
#
# Usage: qemu-dm-patch/build-qemu-xcpng.sh [--release 8.3|8.2]   (default 8.3)
# The LAST line of stdout is the absolute path of qemu-system-i386; progress
# goes to stderr, the full log to $QDIR/build-<key>.log, and what was done
# (patches applied and skipped with reasons, the configure line, the stubs,
# the compile command of vgpu-stub.o) to $BT/vgpu-xcpng-report.txt, where
# the binary is $BT/build/i386-softmmu/qemu-system-i386.
#
# This script owns the recipe; its inputs are read-only:
#   $VGPU_XCPNG_FIXTURES (default <repo>/../shared/fixtures/xcpng):
#     qemu-4.2.0.tar.xz         upstream QEMU 4.2.0 (XCP-ng ships 4.2.1,
#                               whose tarball is not available here)
#     qemu-rpm-<release>/       XCP-ng's package: SPECS/qemu.spec, SOURCES/
#   qemu-dm-patch/make-series.sh --qemu 4.2.1   our series (device + glue)
#
# What it does, in the order rpmbuild would:
#  1. unpacks the tarball into $BT (the cache; never into the checkout);
#  2. applies XCP-ng's patches in the order of the spec's PatchN: lines (the
#     order %autosetup -p1 uses; cross-checked against rpmspec's own
#     expansion of %prep) with rpm's command, patch -p1 --fuzz=0
#     --no-backup-if-mismatch -f.  A patch that does not apply to 4.2.0 is
#     skipped whole (a dry run first, so nothing is half applied) and
#     recorded; every such patch must be listed in KNOWN_4_2_0 below with the
#     reason (a file that differs between 4.2.0 and the 4.2.1 the patch was
#     made for), and every listed patch must still fail: anything else stops
#     the build;
#  3. applies our series; it must apply cleanly, or the build stops;
#  4. two changes for this test build only, outside XCP-ng's and our
#     patches (both in the report):
#     - CONFIG_PCSPK=y in default-configs/i386-softmmu.mak: under Xen,
#       hw/i386/pc.c creates no PIT and no PC speaker (!xen_enabled()), so
#       XCP-ng's device list leaves isa-pcspk out; the qtest-accelerated `pc`
#       machine of the device tests creates it and exits without it;
#     - XCP-ng's GVT-g display code is replaced by a stub: see GVT_WHY below;
#  5. configures with XCP-ng's line, parsed from the spec's %build as rpmspec
#     expands it: for 8.3 unchanged (--enable-werror included: the whole
#     build is -Werror), for 8.2 with --disable-werror (CONFIGURE_CHANGES
#     below says why); the build machine needs the Debian equivalents of the
#     spec's BuildRequires (DEB_PKGS below; checked first, named when missing);
#  6. `make all` as the spec does (8.2: without the option ROMs, see
#     MAKE_CHANGES), with hw/misc/vgpu-stub.o-cflags=-Werror on top, so our
#     file is -Werror whatever the configure line says; any warning in
#     vgpu-stub.c fails the build;
#  7. checks that `-device help` lists vgpu-stub.
#
# Environment:
#   VGPU_XCPNG_FIXTURES  the fixture folder (see above)
#   VGPU_CACHE           cache folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/vgpu)
#   VGPU_JOBS            make parallelism (default: nproc)
#
# Cache layout ($VGPU_CACHE/qemu-xcpng-<release>/, QDIR below):
#   build-<key>/          the patched tree; configured and built in build/
#   build-<key>.log       the log of everything above
#   lock                  flock(1) lock; one build at a time per release
# <key> hashes every input: the tarball, the spec and the patches it names,
# our series (make-series.sh's output: vgpu-stub.c, the contract headers, glue)
# and this script.  A tree whose .vgpu-built stamp holds the key is reused
# at once; the two most recently used trees per release are kept.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
SELF=$HERE/$(basename "${BASH_SOURCE[0]}")
FIX=${VGPU_XCPNG_FIXTURES:-$TOP/../shared/fixtures/xcpng}
CACHE=${VGPU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vgpu}
RELEASE=8.3

log() {
    echo "build-qemu-xcpng: $*" >&2
    if [ -n "${LOG:-}" ] && [ -f "$LOG" ]; then echo "build-qemu-xcpng: $*" >>"$LOG"; fi
}
die() { echo "build-qemu-xcpng: error: $*" >&2; exit 1; }
usage() { echo "usage: $0 [--release 8.3|8.2]" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
    --release) [ $# -ge 2 ] || usage; RELEASE=$2; shift 2 ;;
    --release=*) RELEASE=${1#--release=}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$SELF" | sed '$d' >&2; exit 0 ;;
    *) usage ;;
    esac
done
case $RELEASE in 8.3 | 8.2) ;; *) die "unknown release '$RELEASE' (8.3 or 8.2)" ;; esac

[ -d "$FIX" ] || die "no XCP-ng fixtures at $FIX (set VGPU_XCPNG_FIXTURES)"
FIX=$(cd "$FIX" && pwd)
TARBALL=$FIX/qemu-4.2.0.tar.xz
PKG=$FIX/qemu-rpm-$RELEASE
SPEC=$PKG/SPECS/qemu.spec
SOURCES=$PKG/SOURCES
[ -f "$TARBALL" ] || die "missing $TARBALL"
[ -f "$SPEC" ] || die "missing $SPEC"
grep -q '^%autosetup -p1' "$SPEC" || die "$SPEC has no '%autosetup -p1': not XCP-ng's qemu.spec"

# rpm's %autosetup -p1 / %autopatch command (rpm 4.x: %__patch -p1
# --fuzz=%_default_patch_fuzz %_default_patch_flags, fuzz 0, flags
# "--no-backup-if-mismatch -f").
RPM_PATCH=(patch -p1 --fuzz=0 --no-backup-if-mismatch -f)

# Debian packages for the spec's BuildRequires (and the tools used here):
#   gcc, python3-devel -> gcc make python3;  glib2-devel -> libglib2.0-dev;
#   pixman-devel -> libpixman-1-dev;  libaio-devel -> libaio-dev;
#   libjpeg-devel, libpng-devel -> libjpeg-dev libpng-dev (VNC JPEG/PNG);
#   xen-dom0-libs-devel, xen-libs-devel -> libxen-dev (Xen 4.17, as XCP-ng 8.3);
#   libusbx-devel -> libusb-1.0-0-dev;  libseccomp-devel -> libseccomp-dev;
#   jemalloc-devel -> libjemalloc-dev;  (zlib, pkg-config: QEMU's configure);
#   xenserver-libdrm-devel -> none: XenServer's libdrm has no Debian
#   counterpart, hence the stub (GVT_WHY below);  rpm: rpmspec expands the spec.
DEB_PKGS=(gcc make python3 pkg-config patch xz-utils rpm zlib1g-dev
    libglib2.0-dev libpixman-1-dev libaio-dev libjpeg-dev libpng-dev libxen-dev
    libusb-1.0-0-dev libseccomp-dev libjemalloc-dev)

# XCP-ng patches that do not apply to QEMU 4.2.0 (XCP-ng applies them to
# 4.2.1 with --fuzz=0, so what differs is 4.2.0 -> 4.2.1), with the reason.
# Keyed by file name, for every release whose spec lists it.
declare -A KNOWN_4_2_0=(
    [0002-tests-qemu-iotests-Explicit-usage-of-Python3-scripts.patch]="tests/qemu-iotests/283 does not exist in 4.2.0: the test came with 4.2.1 (the patch's index line names its 4.2.1 blob, 293e557bd9). The patch only changes the python shebang of iotests; nothing that is built."
    [qemu-4.2.1-CVE-2023-3354.backport.patch]="io/channel-tls.c, hunks 2 and 3 of 3 (include/io/channel-tls.h would apply): the backport's context is not 4.2.0's. Hunk 2 (qio_channel_tls_handshake_io) expects '}' right after the qio_channel_tls_handshake_task() call, where 4.2.0 goes on with 'if (context) { g_main_context_unref(context); }'; hunk 3 (qio_channel_tls_close) has a one-space line as its last context line where 4.2.0 has an empty one. Left out: this build lacks the CVE-2023-3354 fix (TLS handshake watch not removed on close; vgpu-stub does not use TLS channels)."
    [0006-hw-replace-most-qemu_bh_new-calls-with-qemu_bh_new_g.patch]="hw/virtio/virtio-balloon.c, its only hunk there (the 22 other files would apply): the context is 4.2.1's virtio_balloon_device_realize, where object_ref(s->iothread) and aio_bh_new() follow precopy_add_notifier() directly; 4.2.0 has them inside an 'if (s->iothread) {' block, which upstream removed in 'virtio-balloon: fix free page hinting without an iothread' (carried by 4.2.1, as the hunk's context shows). Left out whole, as rpm would fail on it: devices keep qemu_bh_new() without the DMA re-entrancy guard of the BH API added by the patches before it (vgpu-stub uses no bottom half)."
)

# Changes to XCP-ng's configure line, per release: "RELEASE FROM TO REASON".
CONFIGURE_CHANGES=(
    "8.2 --enable-werror --disable-werror 8.2 lacks 8.3's Patch21 0001-configure-Do-not-ignore-malloc-value.patch (part of XenServer's CP-46162 fixes for newer toolchains): configure's jemalloc probe 'malloc(1);' warns with Debian 12's glibc (malloc is warn_unused_result), and configure stops on a probe that passes only without -Werror. QEMU's own code is then built without -Werror (it warns 4 times: net/eth.c -Warray-bounds, block/qdict.c -Wmaybe-uninitialized, which 8.3's Patch31-37 and Patch42 fix); vgpu-stub.o still is -Werror (per-object flag)."
)

# Changes to the spec's `make all`, per release: "RELEASE MAKE-ARG REASON".
MAKE_CHANGES=(
    "8.2 ROMS= 8.2 lacks 8.3's Patch38 0001-build-no-pie-is-no-functional-linker-flag.patch (also CP-46162): Debian 12's ld (binutils 2.40) rejects the -nopie that configure puts in LDFLAGS_NOPIE for pc-bios/optionrom ('unable to disambiguate: -nopie'), so ROMS= leaves the option ROMs out. They are guest firmware (multiboot, linuxboot, pvh, kvmvapic; prebuilt copies ship in pc-bios/ and in Debian's qemu-system-data), not part of qemu-system-i386."
)

# XCP-ng's GVT-g display code that cannot be built here, and the stub.
GVT_MAKEFILE=hw/display/Makefile.objs
GVT_LINE='obj-$(CONFIG_VGT) += vgt_console.o intel-tools/'
GVT_STUB_LINE='obj-$(CONFIG_VGT) += vgt-console-stub.o'
GVT_SYMBOLS="xengt_is_enabled xengt_drm_init xengt_draw_primary"
GVT_WHY="hw/display/vgt_console.c (XCP-ng's gvt-g.patch) needs XenServer's libdrm (xenserver-libdrm-devel): struct drm_i915_gem_vgtbuffer, DRM_IOCTL_I915_GEM_VGTBUFFER and I915_VGT_PLANE_PRIMARY exist in no Debian libdrm; its helpers hw/display/intel-tools/intel_batchbuffer.c and intel_chipset.c include <libdrm/intel_bufmgr.h> and \"drm/i915_drm.h\" from that package. Not built. Generated hw/display/vgt-console-stub.c defines the three functions of vgt_console.c that the rest of QEMU calls: xengt_is_enabled() returns false (vga.c then never draws through GVT-g), xengt_drm_init() and xengt_draw_primary() abort (reached only by a GVT-g VGA device on an Intel GVT-g host). The intel-tools functions are called by vgt_console.c only: nothing stands in for them. XCP-ng's GVT-g VGA device itself (hw/display/vgt_vga.c) is built."

hash_stream() { sha256sum | cut -c1-16; }

# ---- the patch list, in spec order -------------------------------------
# "NUMBER FILE" per PatchN: line, in the order the spec lists them.
mapfile -t PATCHLIST < <(sed -n 's/^Patch\([0-9][0-9]*\):[[:space:]]*\([^[:space:]]*\)[[:space:]]*$/\1 \2/p' "$SPEC")
[ ${#PATCHLIST[@]} -gt 0 ] || die "no PatchN: lines in $SPEC"
for e in "${PATCHLIST[@]}"; do
    [ -f "$SOURCES/${e#* }" ] || die "$SPEC lists Patch${e%% *}: ${e#* }, not in $SOURCES"
done

# ---- keys ---------------------------------------------------------------
QDIR=$CACHE/qemu-xcpng-$RELEASE
mkdir -p "$QDIR"
exec 9>"$QDIR/lock"
flock 9

SERIES_TMP=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-xcpng-series-XXXXXX")
trap 'rm -rf "$SERIES_TMP"' EXIT
"$HERE/make-series.sh" --qemu 4.2.1 "$SERIES_TMP" 2>/dev/null ||
    die "make-series.sh --qemu 4.2.1 failed"
mapfile -t OURS < <(awk 'NF { print $1 }' "$SERIES_TMP/series")
[ ${#OURS[@]} -gt 0 ] || die "make-series.sh wrote an empty series"

key=$(
    {
        echo "release $RELEASE"
        sha256sum <"$TARBALL"
        cat "$SPEC"
        for e in "${PATCHLIST[@]}"; do echo "patch $e"; cat "$SOURCES/${e#* }"; done
        for p in "${OURS[@]}"; do echo "ours $p"; cat "$SERIES_TMP/$p"; done
        cat "$SELF"
    } | hash_stream
)
BT=$QDIR/build-$key
BIN=$BT/build/i386-softmmu/qemu-system-i386
LOG=$QDIR/build-$key.log
REPORT=$BT/vgpu-xcpng-report.txt

summary() { # the report's summary lines, to stderr
    sed -n 's/^\(patches\|skipped\|stubbed\|test-build\|configure-changes\|make-changes\): /\1: /p' "$REPORT" | cut -c1-200 |
        sed 's/^/build-qemu-xcpng: /' >&2
}

if [ -x "$BIN" ] && [ "$(cat "$BT/.vgpu-built" 2>/dev/null)" = "$key" ]; then
    touch "$BT/.vgpu-built"
    log "XCP-ng $RELEASE qemu-dm: cached ($BT)"
    summary
    echo "$BIN"
    exit 0
fi

# Trees left unfinished by an earlier recipe or input (not this key) go.
for d in "$QDIR"/build-*/; do
    d=${d%/}
    [ -d "$d" ] && [ "$d" != "$BT" ] && [ ! -f "$d/.vgpu-built" ] || continue
    log "removing the unfinished $d"
    rm -rf "$d" "$d.log"
done

# ---- build machine ------------------------------------------------------
missing=()
for p in "${DEB_PKGS[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
        missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] ||
    die "missing Debian packages for XCP-ng's qemu-dm build: ${missing[*]} (as root: apt-get install ${missing[*]})"

# ---- the spec, as rpm reads it ------------------------------------------
# rpmspec -P expands the macros (with XCP-ng's x86_64 paths) and %autosetup:
# the patch commands it prints give rpm's own order, to compare with ours.
EXPANDED=$(rpmspec -P --define "_sourcedir $SOURCES" --define '_prefix /usr' \
    --define '_libdir /usr/lib64' --define '_datarootdir /usr/share' \
    --define '_localstatedir /var' --define '_libexecdir /usr/libexec' \
    --define '_sysconfdir /etc' "$SPEC" 2>/dev/null) || die "rpmspec -P $SPEC failed"
rpm_order=$(grep -F "$SOURCES/" <<<"$EXPANDED" | grep ' |[[:space:]]*$' |
    grep -o "$SOURCES/[^[:space:]|]*" | sed "s|^$SOURCES/||")
[ -n "$rpm_order" ] || die "cannot find the patch commands in rpmspec's expansion of %prep"
[ "$rpm_order" = "$(printf '%s\n' "${PATCHLIST[@]}" | sed 's/^[0-9]* //')" ] ||
    die "the PatchN: order of $SPEC is not the order rpm's %autosetup applies"

# XCP-ng's configure line: the ./configure command of %build and its
# continuation lines; "${extra_configure_argument[@]}" becomes the values
# the expanded %build adds to that array (the non-ASan branch).
configure_text=$(awk '/^\.\/configure / { on = 1 } on { print; if ($0 !~ /\\$/) exit }' <<<"$EXPANDED")
[ -n "$configure_text" ] || die "no ./configure line in the %build of $SPEC"
mapfile -t extra < <(sed -n "s/^extra_configure_argument+=('\([^']*\)')[[:space:]]*$/\1/p" <<<"$EXPANDED")
CONFIGURE_ARGS=()
read -r -a words <<<"$(tr '\\\n' '  ' <<<"${configure_text#./configure}")"
for w in "${words[@]}"; do
    if [ "$w" = '"${extra_configure_argument[@]}"' ]; then
        CONFIGURE_ARGS+=("${extra[@]}")
    elif [[ $w =~ ^--[A-Za-z0-9_-]+(=[A-Za-z0-9_./,+:-]*)?$ ]]; then
        CONFIGURE_ARGS+=("$w")
    else
        die "unexpected word in XCP-ng's configure line: $w"
    fi
done
CHANGED=()
for c in "${CONFIGURE_CHANGES[@]}"; do
    read -r rel from to why <<<"$c"
    [ "$rel" = "$RELEASE" ] || continue
    found=0
    for i in "${!CONFIGURE_ARGS[@]}"; do
        [ "${CONFIGURE_ARGS[$i]}" = "$from" ] || continue
        CONFIGURE_ARGS[$i]=$to
        found=1
    done
    [ "$found" = 1 ] || die "XCP-ng $RELEASE's configure line has no $from: revisit CONFIGURE_CHANGES in $SELF"
    CHANGED+=("$from -> $to: $why")
done
MAKE_EXTRA=() MAKE_CHANGED=()
for c in "${MAKE_CHANGES[@]}"; do
    read -r rel arg why <<<"$c"
    [ "$rel" = "$RELEASE" ] || continue
    MAKE_EXTRA+=("$arg")
    MAKE_CHANGED+=("make all $arg: $why")
done
for want in --enable-xen --target-list=i386-softmmu --without-default-devices; do
    printf '%s\n' "${CONFIGURE_ARGS[@]}" | grep -qx -- "$want" ||
        die "XCP-ng's configure line has no $want: not the qemu-dm recipe this script knows"
done

# ---- the tree -----------------------------------------------------------
gvt_stub_c() {
    cat <<'EOF'
/*
 * vgt-console-stub.c - GENERATED by vgpu's qemu-dm-patch/build-qemu-xcpng.sh
 * for a test build only; not part of XCP-ng's qemu-dm nor of vgpu's series.
 *
 * XCP-ng's hw/display/vgt_console.c needs XenServer's libdrm (the i915
 * vgtbuffer ioctl), which this build machine does not have.  These are the
 * three functions of it that the rest of QEMU calls (see vgt_vga.h).
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "hw/pci/pci.h"
#include "ui/console.h"
#include "hw/display/vgt_vga.h"

bool xengt_is_enabled(void)
{
    return false;
}

void xengt_drm_init(void)
{
    error_report("vgt: GVT-g display (vgt_console.c) is stubbed in this test build");
    abort();
}

void xengt_draw_primary(QemuConsole *con, int full_update)
{
    error_report("vgt: GVT-g display (vgt_console.c) is stubbed in this test build");
    abort();
}
EOF
}

# the patch command's own account of a failure: "FILE: hunks N, M failed"
patch_failure() { # log
    awk '/^(checking|patching) file / { f = $3 }
         /^Hunk #[0-9]+ FAILED/ { h[f] = h[f] (h[f] ? "," : "") substr($2, 2) }
         /^can.t find file to patch/ { nf = 1 }
         nf && /^\|\+\+\+ b\// { m = m " " substr($2, 3); nf = 0 }
         END { s = ""; for (k in h) s = s (s ? "; " : "") k ": hunk " h[k] " FAILED"
               if (m) s = s (s ? "; " : "") "no such file:" m; print s }' "$1"
}

start=$(date +%s)
if [ ! -f "$BT/.vgpu-configured" ]; then
    log "preparing $BT (XCP-ng $RELEASE, log: $LOG)"
    rm -rf "$BT"
    mkdir -p "$BT"
    : >"$LOG"
    {
        echo "# build-qemu-xcpng.sh report, XCP-ng $RELEASE qemu-dm, key $key"
        echo "source: $(basename "$TARBALL") ($(cat "$FIX/qemu-rpm-$RELEASE/ORIGIN" 2>/dev/null | head -n 1))"
    } >"$REPORT.tmp"
    log "unpacking $(basename "$TARBALL")"
    tar -xJf "$TARBALL" -C "$BT" --strip-components=1 || die "cannot unpack $TARBALL"
    [ "$(cat "$BT/VERSION")" = 4.2.0 ] || die "$TARBALL is QEMU $(cat "$BT/VERSION"), expected 4.2.0"

    log "applying XCP-ng's ${#PATCHLIST[@]} patches (spec order, ${RPM_PATCH[*]})"
    applied=0 skipped=()
    for e in "${PATCHLIST[@]}"; do
        num=${e%% *} name=${e#* }
        plog=$BT/.patch.log
        if "${RPM_PATCH[@]}" --dry-run -d "$BT" -i "$SOURCES/$name" >"$plog" 2>&1 </dev/null; then
            "${RPM_PATCH[@]}" -s -d "$BT" -i "$SOURCES/$name" >>"$LOG" 2>&1 </dev/null ||
                die "Patch$num $name: the dry run passed but the patch failed"
            [ -z "${KNOWN_4_2_0[$name]:-}" ] ||
                die "Patch$num $name applies to 4.2.0 now: drop it from KNOWN_4_2_0 in $SELF"
            applied=$((applied + 1))
        else
            { echo "== Patch$num $name does not apply:"; cat "$plog"; } >>"$LOG"
            [ -n "${KNOWN_4_2_0[$name]:-}" ] || {
                sed 's/^/    /' "$plog" >&2
                die "Patch$num $name does not apply to 4.2.0 and KNOWN_4_2_0 in $SELF gives no reason"
            }
            echo "skipped: Patch$num $name: $(patch_failure "$plog"). ${KNOWN_4_2_0[$name]}" >>"$REPORT.tmp"
            skipped+=("Patch$num")
            log "skipped Patch$num $name ($(patch_failure "$plog"))"
        fi
    done
    rm -f "$BT/.patch.log"
    sed -i "2a patches: XCP-ng $RELEASE: $applied of ${#PATCHLIST[@]} applied to 4.2.0, ${#skipped[@]} skipped${skipped:+ (${skipped[*]})}" "$REPORT.tmp"

    log "applying our series (${#OURS[@]} patches)"
    for p in "${OURS[@]}"; do
        "${RPM_PATCH[@]}" -d "$BT" -i "$SERIES_TMP/$p" >>"$LOG" 2>&1 </dev/null ||
            { tail -n 20 "$LOG" >&2; die "our $p does not apply after XCP-ng's patches"; }
        echo "ours: $p applied" >>"$REPORT.tmp"
    done
    cmp -s "$BT/hw/misc/vgpu-stub.c" "$HERE/vgpu-stub.c" || die "hw/misc/vgpu-stub.c is not our device source"
    for h in "$TOP"/include/vgpu_protocol.h "$TOP"/include/vgpu/*.h; do
        hrel=include/hw/misc/${h#"$TOP"/include/}
        cmp -s "$BT/$hrel" "$h" || die "$hrel is not ${h#"$TOP"/}"
    done
    [ -z "$(find "$BT" -name '*.rej' -print -quit)" ] || die "a patch left .rej files in $BT"

    # Test-build changes (see the header).
    mak=$BT/default-configs/i386-softmmu.mak
    [ -f "$mak" ] || die "no $mak"
    { [ -z "$(tail -c1 "$mak")" ] || echo; echo '# vgpu test build only: the qtest "pc" machine creates isa-pcspk'; echo 'CONFIG_PCSPK=y'; } >>"$mak"
    echo "test-build: CONFIG_PCSPK=y appended to default-configs/i386-softmmu.mak: under Xen hw/i386/pc.c creates no PIT nor PC speaker (!xen_enabled()), so XCP-ng's device list has no isa-pcspk; the qtest-accelerated pc machine of the device tests creates one." >>"$REPORT.tmp"
    grep -qxF "$GVT_LINE" "$BT/$GVT_MAKEFILE" ||
        die "$GVT_MAKEFILE has no line '$GVT_LINE': XCP-ng's GVT-g build changed, revisit GVT_* in $SELF"
    sed -i "s|^$(sed 's/[][$.*^|]/\\&/g' <<<"$GVT_LINE")\$|$GVT_STUB_LINE|" "$BT/$GVT_MAKEFILE"
    grep -qxF "$GVT_STUB_LINE" "$BT/$GVT_MAKEFILE" || die "editing $GVT_MAKEFILE failed"
    gvt_stub_c >"$BT/hw/display/vgt-console-stub.c"
    echo "stubbed: $GVT_SYMBOLS ($GVT_WHY)" >>"$REPORT.tmp"
    log "stubbed XCP-ng's GVT-g display (vgt_console.c, intel-tools/): $GVT_SYMBOLS"

    mkdir "$BT/build"
    echo "configure: ${CONFIGURE_ARGS[*]}" >>"$REPORT.tmp"
    echo "configure-from: XCP-ng's %build line as rpmspec expands it (ASan off); --prefix and the other paths only matter for make install, which is not run" >>"$REPORT.tmp"
    if [ ${#CHANGED[@]} = 0 ]; then
        echo "configure-changes: none" >>"$REPORT.tmp"
    else
        for c in "${CHANGED[@]}"; do echo "configure-changes: $c" >>"$REPORT.tmp"; log "configure change: $c"; done
    fi
    log "configure (XCP-ng's %build line${CHANGED:+, changed as above}): ${CONFIGURE_ARGS[*]}"
    (cd "$BT/build" && ../configure "${CONFIGURE_ARGS[@]}") >>"$LOG" 2>&1 ||
        { tail -n 30 "$LOG" >&2; die "configure failed (see $LOG)"; }
    # Features XCP-ng's build has through its BuildRequires but configure
    # would drop silently if a library were missing.
    for feat in 'xen support' 'Linux AIO support' 'VNC JPEG support' 'VNC PNG support' \
        'seccomp support' 'jemalloc support' 'libusb'; do
        grep -Eq "^$feat +yes" "$LOG" || die "configure: '$feat' is not yes (see $LOG)"
    done
    if printf '%s\n' "${CONFIGURE_ARGS[@]}" | grep -qx -- --enable-werror; then
        grep -q '^QEMU_CFLAGS=.*-Werror' "$BT/build/config-host.mak" ||
            die "QEMU_CFLAGS has no -Werror although configured --enable-werror"
    fi
    if [ ${#MAKE_CHANGED[@]} = 0 ]; then
        echo "make-changes: none (make all, as the spec)" >>"$REPORT.tmp"
    else
        for c in "${MAKE_CHANGED[@]}"; do echo "make-changes: $c" >>"$REPORT.tmp"; log "make change: $c"; done
    fi
    mv "$REPORT.tmp" "$REPORT"
    touch "$BT/.vgpu-configured"
fi

JOBS=${VGPU_JOBS:-$(nproc)}
log "make -j$JOBS all ${MAKE_EXTRA[*]} (log: $LOG)"
mark=$(wc -l <"$LOG")
make -C "$BT/build" -j"$JOBS" all "${MAKE_EXTRA[@]}" 'hw/misc/vgpu-stub.o-cflags=-Werror' >>"$LOG" 2>&1 ||
    { tail -n 40 "$LOG" >&2; die "build failed (see $LOG)"; }
if tail -n +"$((mark + 1))" "$LOG" |
    grep -E '(vgpu-stub\.c|vgpu_protocol\.h|misc/vgpu/[a-z]+\.h):[0-9]+(:[0-9]+)?: (warning|error)' >&2; then
    rm -f "$BT/build/hw/misc/vgpu-stub.o"
    die "warnings in vgpu-stub.c"
fi
[ -f "$BT/build/hw/misc/vgpu-stub.o" ] || die "hw/misc/vgpu-stub.o was not built"
[ -x "$BIN" ] || die "no $BIN after the build"
# The exact command that compiles our file (make -n: nothing is run).
cc_line=$(make -C "$BT/build" -n -W "$BT/hw/misc/vgpu-stub.c" V=1 'hw/misc/vgpu-stub.o-cflags=-Werror' \
    hw/misc/vgpu-stub.o 2>/dev/null | grep -e '-o hw/misc/vgpu-stub\.o ' | head -n 1)
grep -q -e ' -Werror ' <<<"$cc_line " || die "the compile command of vgpu-stub.o has no -Werror: $cc_line"
sed -i '/^vgpu-stub-cc: /d' "$REPORT"
echo "vgpu-stub-cc: (cd $BT/build && $cc_line)" >>"$REPORT"
"$BIN" -device help 2>&1 | grep -q '^name "vgpu-stub", bus PCI' ||
    die "$BIN -device help does not list vgpu-stub"
echo "$key" >"$BT/.vgpu-built"
log "XCP-ng $RELEASE qemu-dm built in $(($(date +%s) - start)) s"
summary

# Keep the two most recently used trees of this release.
ls -1t "$QDIR"/build-*/.vgpu-built 2>/dev/null | tail -n +3 | while read -r old; do
    old=$(dirname "$old")
    log "pruning $old"
    rm -rf "$old" "$old.log"
done

echo "$BIN"
