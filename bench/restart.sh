#!/usr/bin/env bash
# The restart scenario: 10 000 channels (default) with the default reconnect policy to bench-server,
# the server killed and started again on the same port. Prints time until all are back, the peak
# reconnects per second, and the idle app's wake-ups per keep-alive. Not part of the test command.
#   bench/restart.sh [--channels N] [--interval-ms MS] [--down-ms MS] [--idle-ms MS]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/.."
bash "$HERE/setup.sh" >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true
cargo build --release --quiet --example restart
exec target/release/examples/restart --server "$HERE/server/target/release/bench-server" "$@"
