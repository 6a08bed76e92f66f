#!/usr/bin/env bash
# The benchmark in one command: setup (idempotent), then every client against one server.
#   bench/run.sh                       # full table: N = 1000,10000; ws and wss; all clients
#   bench/run.sh --channels 200 --schemes ws --window-ms 3000     # a quick look
#   bench/run.sh --wakeups             # idle scenario: 10 000 channels, 30 s interval, random phases
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt 10100 ]; then
    ulimit -n 20000 2>/dev/null || { echo "run.sh: ulimit -n $(ulimit -n) is too low for 10 000 channels" >&2; exit 1; }
fi
bash "$HERE/setup.sh"
PY="$HERE/../.venv/bin/python"
[ -x "$PY" ] || PY=python3
if [ "${1:-}" = "--wakeups" ]; then
    shift
    exec "$PY" "$HERE/driver.py" --clients ctrlchan:callback,ctrlchan:queue --schemes ws --channels 10000 \
        --interval-ms 30000 --spread-ms 30000 --warmup-ms 5000 --window-ms 60000 \
        --out "$HERE/results/wakeups" --title "ctrlchan idle wake-ups (30 s interval, random phases)" "$@"
fi
exec "$PY" "$HERE/driver.py" "$@"
