# lib.sh - what the XenAPI tests (test-xapi, test-pool) share: the check
# counters and reporters, starting a test server, and decoding what the
# XenAPI test server's client modes print.  Sourced; expects $T (the
# test's scratch folder), $PIDS (an array) and $PY.

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok: $1"; }
nok() { fail=$((fail + 1)); echo "FAIL: $1"; [ $# -gt 1 ] && echo "    $2"; }
expect() { # expect DESC COND-CMD...
    local d=$1; shift
    if "$@"; then ok "$d"; else nok "$d"; fi
}

# start NAME CMD...: runs CMD with stdout to $T/NAME.out; waits for "ready"
start() {
    local name=$1; shift
    "$@" >"$T/$name.out" 2>"$T/$name.err" &
    PIDS+=($!)
    for _ in $(seq 100); do
        grep -q ready "$T/$name.out" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "cannot start $name:"; cat "$T/$name.err"
    exit 1
}

# decode: the server's "OK <value>" / "FAILURE <ErrorDescription JSON>" on
# stdin -> "OK <string>"; "FAULT <n> <reason>" for one of the plugin's own
# error codes, n being the plugin's fault number (core.h, xr.h) that
# vgpu-plugin.c error_code() names; "XAPI <code> <params>" for any other
# XenAPI error (one xapi made: an answer it refused, a crashed plugin).
decode() {
    "$PY" -c '
import json, sys
CODES = {"VGPU_BAD_ARGUMENT": 1, "VGPU_NOT_FOUND": 2, "VGPU_XAPI_ERROR": 3,
         "VGPU_XENSTORE_ERROR": 4, "VGPU_STATE_ERROR": 5,
         "VGPU_INTERNAL_ERROR": 6, "VGPU_BAD_PARAMS": -32602,
         "VGPU_MALFORMED_CALL": -32700, "VGPU_INVALID_CALL": -32600,
         "UNKNOWN_XENAPI_PLUGIN_FUNCTION": -32601}
out = sys.stdin.read()
if out.startswith("OK "):
    print(out.rstrip("\n"))
elif out.startswith("FAILURE "):
    code, *params = json.loads(out[8:])
    # [code, reason]; UNKNOWN_XENAPI_PLUGIN_FUNCTION: [code, fn, reason]
    n = 2 if code == "UNKNOWN_XENAPI_PLUGIN_FUNCTION" else 1
    if code in CODES and len(params) == n:
        print("FAULT", CODES[code], params[-1])
    else:
        print("XAPI", code, " | ".join(params))
else:
    print("BAD", out)
'
}

# want DESC PATTERN OUTPUT: grep -E PATTERN in OUTPUT
want() {
    if printf '%s\n' "$3" | grep -Eq -- "$2"; then
        ok "$1"
    else
        nok "$1" "got: $3"
    fi
}

