#!/bin/bash
# run-tests.sh - the test runner of `make check`.
#
# Usage: tests/run-tests.sh BUILD_DIR
#
# Runs every unit and integration test program BUILD_DIR/*/test-* and every
# end-to-end script tests/e2e/test-*.sh, each under a time limit, and prints
# one line per test and the summary line `N passed, N failed, N skipped`.
# A test passes with exit status 0 and is skipped with 77 (it must print
# why); anything else, a timeout included, is a failure.  Each test's
# output is kept in BUILD_DIR/test-logs/<name>.log; a failure shows its tail.
set -u

BUILD=${1:?usage: run-tests.sh BUILD_DIR}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOGS=$BUILD/test-logs
LIMIT=${VGPU_TEST_TIMEOUT:-900}
mkdir -p "$LOGS"

pass=0 fail=0 skip=0
failed=()

run_one() {
    local name=$1; shift
    local log=$LOGS/$name.log start rc
    start=$(date +%s)
    timeout --kill-after=10 "$LIMIT" "$@" >"$log" 2>&1 </dev/null
    rc=$?
    local secs=$(( $(date +%s) - start ))
    case $rc in
    0)  pass=$((pass + 1)); echo "PASS: $name (${secs}s)" ;;
    77) skip=$((skip + 1))
        echo "SKIP: $name: $(grep -m1 -i 'skip' "$log" || echo 'no reason given')" ;;
    *)  fail=$((fail + 1)); failed+=("$name")
        [ $rc = 124 ] && echo "FAIL: $name (timed out after ${LIMIT}s)" \
                      || echo "FAIL: $name (exit $rc, ${secs}s)"
        tail -n 30 "$log" | sed 's/^/    | /' ;;
    esac
}

for t in "$BUILD"/*/test-*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    run_one "$(basename "$(dirname "$t")")-$(basename "$t")" "$t"
done
for t in "$HERE"/e2e/test-*.sh; do
    [ -f "$t" ] || continue
    run_one "e2e-$(basename "$t" .sh)" bash "$t"
done

[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
