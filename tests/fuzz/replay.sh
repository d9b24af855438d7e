#!/bin/sh
# replay.sh - `make check`'s run of the fuzz corpus: every input of
# tests/fuzz/corpus/<target>/ once through its libFuzzer target, built
# with ASan and UBSan (any report, crash or leak fails).
#
# Usage: replay.sh BUILD_DIR TARGET...
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
O=$1
shift
pass=0 fail=0
for t in "$@"; do
    dir=$HERE/corpus/$t
    n=$(ls "$dir" 2>/dev/null | wc -l)
    if [ "$n" -eq 0 ]; then
        echo "FAIL: $t: no corpus in $dir"
        fail=$((fail + 1))
        continue
    fi
    if "$O/fuzz-$t" -runs=0 "$dir" >"$O/replay-$t.log" 2>&1; then
        echo "ok: $t: $n inputs replayed, no report"
        pass=$((pass + 1))
    else
        echo "FAIL: $t: replaying $dir"
        tail -n 30 "$O/replay-$t.log" | sed 's/^/    | /'
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
