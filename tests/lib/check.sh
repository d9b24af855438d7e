# tests/lib/check.sh - the pass/fail bookkeeping of the shell tests that
# count their own checks (tests/qemu42, tests/contract); sourced.
#
#   ok NAME / nok NAME    count a pass / a failure and say so
#   check NAME CMD...     run CMD: ok or nok; returns 0 when it passed, 1
#                         when not (for `check ... || show LOG`)
#   show LOG [N]          the last N (default 15) lines of LOG, indented
#
# The caller prints "$passed passed, $failed failed" at the end.
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $1"; }
nok() { failed=$((failed + 1)); echo "FAILED: $1"; }
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; return 0; fi
    nok "$name"
    return 1
}
show() { [ -s "$1" ] && tail -n "${2:-15}" "$1" | sed 's/^/    | /'; return 0; }
