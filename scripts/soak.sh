#!/usr/bin/env bash
# Soak: `bash scripts/soak.sh MINUTES` (default 2). SOAK_CHANNELS (default 10000) channels in one
# runtime against tests/peer/server.py, with churn (/drop every 2-10 s), numbered traffic through
# tests/peer/proxy.py (reset or 2 s blackhole every 3-7 s), keep-alives and a reconnect policy.
# Prints RSS, fds and threads every minute; fails on a lost or duplicated message, a channel
# that gives up, or a drift of more than 5 % after the first minute (see tests/soak.rs).
# SOAK_RAMP_SECONDS (default 600) bounds the ramp-up; SOAK_REPORT_SECONDS (default 60) the
# report period. scripts/test-all.sh runs a 2-minute version as its stage `soak`.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export SOAK_MINUTES="${1:-2}"
export CTRLCHAN_PYTHON="${CTRLCHAN_PYTHON:-$REPO/.venv/bin/python}"
export CTRLCHAN_PEER_DIR="${CTRLCHAN_PEER_DIR:-$REPO/tests/peer}"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo test --release --test soak -- --ignored --nocapture --test-threads=1
