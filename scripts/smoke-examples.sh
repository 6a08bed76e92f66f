#!/usr/bin/env bash
# Runs every example as a user would and checks what it prints. Called by scripts/test-all.sh.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PY="${CTRLCHAN_PYTHON:-$REPO/.venv/bin/python}"
fails=0
pass=0

check() { # name, file, pattern...
    local name="$1" out="$2"; shift 2
    for pat in "$@"; do
        if ! grep -Eq "$pat" "$out"; then
            echo "FAIL $name: output lacks /$pat/"; sed 's/^/    /' "$out" | tail -30; fails=$((fails+1)); return
        fi
    done
    echo "ok   $name"; pass=$((pass+1))
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"; [ -n "${SRV_PID:-}" ] && kill "$SRV_PID" 2>/dev/null || true' EXIT

# 1. The demo (README's first command), shortened.
timeout 120 cargo run --quiet --release --example demo -- --channels 120 --seconds 6 --svg "$tmp/demo.svg" >"$tmp/demo.out" 2>&1 || true
check demo "$tmp/demo.out" "120/120 channels push-enabled" "blackholed 12, detected 12" "pong timeout" "timeline written to"
grep -q "<svg" "$tmp/demo.svg" && grep -q "blackhole: 12 detections" "$tmp/demo.svg" || { echo "demo: no timeline SVG"; exit 1; }

# 2. The C sample against the third-party peer.
make -s -C examples/c >/dev/null
mkfifo "$tmp/srv.in"
"$PY" tests/peer/server.py --port 0 <"$tmp/srv.in" >"$tmp/srv.out" 2>&1 &
SRV_PID=$!
exec 7>"$tmp/srv.in"
for _ in $(seq 1 100); do grep -q '^PORT' "$tmp/srv.out" 2>/dev/null && break; sleep 0.1; done
PORT="$(awk '/^PORT/{print $2; exit}' "$tmp/srv.out")"
timeout 60 examples/c/channel_sample "ws://127.0.0.1:$PORT/push?n=3&interval_ms=300" 3 >"$tmp/c.out" 2>&1 || true
check c-sample "$tmp/c.out" "push enabled" "push notification: msg 2" "keep-alive acknowledged" "event handler released"

# 3. Python and C# samples (they start the peer themselves).
for f in examples/python/*.py; do
    [ -e "$f" ] || continue
    timeout 120 "$PY" "$f" >"$tmp/py.out" 2>&1 || { echo "FAIL $f exited non-zero"; tail -30 "$tmp/py.out"; fails=$((fails+1)); continue; }
    check "$f" "$tmp/py.out" "[Pp]ush"
done
CS_BUILD="${CTRLCHAN_CSHARP_BUILD:-bindings/csharp/build}"
if [ -f "$CS_BUILD/ControlChannelTriggerSample.exe" ]; then
    (cd "$CS_BUILD" && timeout 120 mono ControlChannelTriggerSample.exe) >"$tmp/cs.out" 2>&1 || { echo "FAIL C# sample exited non-zero"; tail -30 "$tmp/cs.out"; fails=$((fails+1)); }
    check csharp-sample "$tmp/cs.out" "WaitForPushEnabled: (Hardware|Software)SlotAllocated" "PushNotifyTask \\[channelOne\\]: msg 4" "KeepAlive \\[channelOne\\]: pong"
else
    echo "FAIL csharp-sample: $CS_BUILD/ControlChannelTriggerSample.exe was not built"; fails=$((fails+1))
fi
exec 7>&-
echo "examples: $pass passed, $fails failed"
[ "$fails" -eq 0 ]
