#!/usr/bin/env bash
# Callgrind profile of one bench client's steady-state keep-alives; see bench/profile.py.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ulimit -n "$(ulimit -Hn)"
bash "$HERE/setup.sh" >/dev/null
command -v valgrind >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
PY="$HERE/../.venv/bin/python"
[ -x "$PY" ] || PY=python3
exec "$PY" "$HERE/profile.py" "$@"
