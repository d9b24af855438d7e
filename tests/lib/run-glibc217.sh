#!/bin/bash
# run-glibc217.sh - run a program built for XCP-ng's dom0 (make dom0: GCC
# 4.8.5, glibc 2.17) here, with glibc 2.17 rather than the host's: the
# sysroot's loader, started explicitly, loads the sysroot's libc and the
# glibc 2.17 build of the real libxenstore
# (tests/integration/libxenstore-glibc217.sh), so the program meets what
# a CentOS 7 based dom0 gives it.
#
# Usage: tests/lib/run-glibc217.sh [--prepare] PROGRAM [ARGS...]
#   --prepare  only fetch/build what is needed (toolchain, libxenstore) and
#              return; the first run can take seconds, the next ones not
#
# The program keeps this script's pid (every step execs), so a caller can
# signal and wait for it as if started directly.
#
#   ld-linux-x86-64.so.2 --inhibit-cache --library-path L PROGRAM ARGS
#
# L: the libxenstore folder, then the sysroot's lib64 and usr/lib64.
# --inhibit-cache: the host's /etc/ld.so.cache would hand glibc 2.17 the
# host's libraries for anything the sysroot lacks; without it such a
# library is simply not found.  The same danger comes from the Name Service
# Switch: the host's nsswitch.conf names "systemd", and glibc 2.17 loading
# the host's libnss_systemd aborts; so, as root where unshare(1) works, the
# program runs in a private mount namespace whose /etc/nsswitch.conf says
# "files" only (bind-mounted; nothing changes outside).  Elsewhere, the
# cache being inhibited, libnss_systemd is not found and only "files" is
# used anyway.
#
# Environment:
#   VGPU_GLIBC217_XENSTORE=4|3.0|none  which libxenstore the program finds:
#       libxenstore.so.4 (XCP-ng 8.3's; the default), libxenstore.so.3.0
#       (8.2's: unversioned symbols) or none at all
#   VGPU_GLIBC217_NS=0  no private mount namespace even when possible
#   VGPU_CACHE  the cache (see scripts/dom0-toolchain.sh)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${VGPU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vgpu}

die() { echo "run-glibc217: error: $*" >&2; exit 127; }

prepare=0
if [ "${1:-}" = --prepare ]; then
    prepare=1
    shift
fi
[ $prepare = 1 ] || [ $# -gt 0 ] || die "usage: run-glibc217.sh [--prepare] PROGRAM [ARGS...]"

SYSROOT=$("$TOP/scripts/dom0-toolchain.sh" --sysroot) || die "no dom0 toolchain"
XS=$("$TOP/tests/integration/libxenstore-glibc217.sh" | tail -n 1) ||
    die "no glibc 2.17 libxenstore"
LOADER=$SYSROOT/lib64/ld-linux-x86-64.so.2
[ -x "$LOADER" ] || [ -f "$LOADER" ] || die "no $LOADER"

# The nsswitch.conf of the private namespace, made once.
NSS=$CACHE/glibc217-nsswitch.conf
if [ ! -f "$NSS" ]; then
    printf '%s\n' "# run-glibc217.sh: glibc 2.17 loads no NSS module of the host" \
        "passwd: files" "group: files" "shadow: files" "hosts: files dns" \
        "networks: files" "protocols: files" "services: files" \
        "ethers: files" "rpc: files" "netgroup: files" >"$NSS.$$"
    mv "$NSS.$$" "$NSS"
fi
[ $prepare = 0 ] || exit 0

case ${VGPU_GLIBC217_XENSTORE:-4} in
4 | 3.0) libpath=$XS/${VGPU_GLIBC217_XENSTORE:-4}: ;;
none) libpath= ;;
*) die "VGPU_GLIBC217_XENSTORE=${VGPU_GLIBC217_XENSTORE}: 4, 3.0 or none" ;;
esac
libpath+=$SYSROOT/lib64:$SYSROOT/usr/lib64
prog=$1
shift
[ -f "$prog" ] || die "$prog: no such file"

run=("$LOADER" --inhibit-cache --library-path "$libpath" "$prog" "$@")
if [ "${VGPU_GLIBC217_NS:-1}" != 0 ] && [ "$(id -u)" = 0 ] &&
    unshare -m --propagation private true 2>/dev/null; then
    # shellcheck disable=SC2016 # $0 and $@ are the inner shell's
    exec unshare -m --propagation private /bin/sh -c \
        'mount --bind "$0" /etc/nsswitch.conf && exec "$@"' "$NSS" "${run[@]}"
fi
exec "${run[@]}"
