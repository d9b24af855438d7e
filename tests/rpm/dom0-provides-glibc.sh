#!/bin/bash
# dom0-provides-glibc.sh - print what glibc 2.17 provides to RPM, as rpm's
# elfdeps derives it, from the version definitions of the glibc 2.17
# sysroot's libraries (scripts/dom0-toolchain.sh): one capability a line,
#
#   libc.so.6()(64bit)
#   libc.so.6(GLIBC_2.2.5)(64bit)
#   ...
#
# for libc, libpthread, libdl, librt, libm, the loader and the rest of the
# glibc package, and libgcc_s (GCC 4.8.5, as CentOS 7's libgcc), sorted.
# The glibc block of tests/rpm/dom0-provides-8.2.txt and -8.3.txt is this
# output (test-rpm.sh checks that it still is).
#
# Usage: tests/rpm/dom0-provides-glibc.sh [SYSROOT]
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SYSROOT=${1:-$("$TOP/scripts/dom0-toolchain.sh" --sysroot)}
LIB=$SYSROOT/lib64

# The sonames of CentOS 7's glibc and libgcc packages (x86_64).
SONAMES=(ld-linux-x86-64.so.2 libc.so.6 libpthread.so.0 libdl.so.2 librt.so.1
    libm.so.6 libutil.so.1 libcrypt.so.1 libresolv.so.2 libnsl.so.1
    libanl.so.1 libBrokenLocale.so.1 libthread_db.so.1 libgcc_s.so.1)

for s in "${SONAMES[@]}"; do
    f=$LIB/$s
    [ -e "$f" ] || { echo "dom0-provides-glibc: no $f" >&2; exit 1; }
    echo "$s()(64bit)"
    # "Flags: BASE ... Name: libc.so.6" is the soname itself; the others
    # are the version definitions (GLIBC_2.2.5, ..., GCC_3.0, ...).
    readelf -V -W "$f" | sed -n '/Version definition section/,/^$/p' |
        { grep 'Name: ' || :; } | { grep -v 'Flags: BASE' || :; } |
        sed -n 's/.*Name: \([^ ]*\).*/\1/p' |
        { grep -v '^GLIBC_PRIVATE$' || :; } | sed "s/.*/$s(&)(64bit)/"
done | LC_ALL=C sort -u
