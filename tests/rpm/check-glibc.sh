#!/bin/bash
# check-glibc.sh - do ELF binaries run with glibc 2.17 (XCP-ng 8.2 and 8.3
# dom0, CentOS 7 based)?  For each FILE, the highest GLIBC_x.y symbol
# version it needs (readelf -V: its version needs, whichever library of
# glibc they are in), one line each:
#
#   check-glibc: vgpu-mediator: GLIBC_2.17 (at most 2.17: ok)
#
# Usage: tests/rpm/check-glibc.sh [--max X.Y] FILE...
# Exit status 1 when a file needs a version above X.Y (default 2.17) or
# GLIBC_PRIVATE (glibc's internals: tied to one build of it), or is not an
# ELF file; `make dom0` and the packaging test run it.
set -euo pipefail

max=2.17
if [ "${1:-}" = --max ]; then
    max=${2:?--max needs a version}
    shift 2
fi
[ $# -gt 0 ] || { echo "usage: check-glibc.sh [--max X.Y] FILE..." >&2; exit 2; }
command -v readelf >/dev/null || { echo "check-glibc: readelf not found (binutils)" >&2; exit 2; }

# Is version $1 above version $2?
above() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1)" = "$1" ]; }

bad=0
for f in "$@"; do
    n=$f
    if ! readelf -h "$f" >/dev/null 2>&1; then
        echo "check-glibc: $n: not an ELF file"
        bad=1
        continue
    fi
    # "Name: GLIBC_2.14  Flags: none  Version: 3" under .gnu.version_r
    vers=$(readelf -V -W "$f" | sed -n 's/.*Name: GLIBC_\([0-9.A-Z_]*\).*/\1/p' | sort -uV)
    if [ -z "$vers" ]; then
        echo "check-glibc: $n: no GLIBC symbol versions (at most $max: ok)"
        continue
    fi
    if grep -qx PRIVATE <<<"$vers"; then
        echo "check-glibc: $n: needs GLIBC_PRIVATE (glibc's internals): not portable"
        bad=1
    fi
    top=$(grep -v PRIVATE <<<"$vers" | tail -n 1)
    if above "$top" "$max"; then
        over=$(grep -v PRIVATE <<<"$vers" | while read -r v; do
            above "$v" "$max" && printf ' GLIBC_%s' "$v"
        done)
        echo "check-glibc: $n: GLIBC_$top (above $max:$over)"
        bad=1
    else
        echo "check-glibc: $n: GLIBC_$top (at most $max: ok)"
    fi
done
exit "$bad"
