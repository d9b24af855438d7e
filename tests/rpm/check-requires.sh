#!/bin/bash
# check-requires.sh - does a dom0 provide everything an RPM requires?  Each
# requirement of RPM (`rpm -qp --requires`) that the RPM does not meet
# itself (its own provides and files, e.g. config(vgpu-mediator)) must be
# met by a line of LIST (tests/rpm/dom0-provides-8.2.txt, -8.3.txt):
#
#   NAME              met by a line "NAME" or "NAME = P"
#   NAME OP V         (OP one of < <= = >= >) met by a line "NAME = P"
#                     with P OP V, compared as rpm compares versions
#
# Usage: tests/rpm/check-requires.sh LIST RPM...
# Prints, per RPM, one line (how many requirements, all met) or each one
# missing from LIST; exit status 1 when any is.
set -euo pipefail

list=${1:?usage: check-requires.sh LIST RPM...}
shift
[ $# -gt 0 ] || { echo "usage: check-requires.sh LIST RPM..." >&2; exit 2; }
[ -f "$list" ] || { echo "check-requires: no $list" >&2; exit 2; }

# rpm's own version comparison (-1, 0, 1), through its Lua.
vercmp() {
    rpm --eval "%{lua: print(rpm.vercmp(\"$1\", \"$2\"))}"
}

# Is "OP V" met by a provided version P?
version_meets() { # P OP V
    local c
    c=$(vercmp "$1" "$3")
    case $2 in
    '<') [ "$c" -lt 0 ] ;;
    '<=') [ "$c" -le 0 ] ;;
    '=') [ "$c" -eq 0 ] ;;
    '>=') [ "$c" -ge 0 ] ;;
    '>') [ "$c" -gt 0 ] ;;
    *) return 1 ;;
    esac
}

# Capabilities of LIST: "NAME" or "NAME = P", comments and blanks out.
caps=$(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$list")

met_by_list() { # NAME [OP V]
    local name=$1 op=${2:-} v=${3:-} line p
    while IFS= read -r line; do
        case $line in
        "$name") [ -z "$op" ] && return 0 ;;
        "$name = "*)
            p=${line#"$name = "}
            [ -z "$op" ] && return 0
            version_meets "$p" "$op" "$v" && return 0
            ;;
        esac
    done <<<"$caps"
    return 1
}

bad=0
for r in "$@"; do
    n=$(rpm -qp --qf '%{NAME}.%{ARCH}' "$r" 2>/dev/null)
    own=$( (rpm -qp --provides "$r"; rpm -qp --list "$r") 2>/dev/null | awk '{ print $1 }' | sort -u)
    missing=() count=0
    while read -r name op v; do
        [ -n "$name" ] || continue
        count=$((count + 1))
        grep -qxF -- "$name" <<<"$own" && continue
        met_by_list "$name" "$op" "$v" || missing+=("$name${op:+ $op $v}")
    done < <(rpm -qp --requires "$r" 2>/dev/null | sort -u)
    if [ ${#missing[@]} -eq 0 ]; then
        echo "check-requires: $n: all $count requirements met by $(basename "$list")"
    else
        bad=1
        echo "check-requires: $n: not in $(basename "$list"):"
        printf '    %s\n' "${missing[@]}"
    fi
done
exit "$bad"
