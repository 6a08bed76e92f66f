#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 10) and prints the execs per target.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Uses cargo-fuzz (installed if missing: `cargo install cargo-fuzz --locked`, ~2 min) on stable
# with `-s none` (no sanitizer: coverage-guided only). CTRLCHAN_FUZZ_SANITIZER=address uses
# the nightly toolchain with ASan instead. New corpus entries go to target/fuzz-corpus/<target>
# (the checked-in seeds in fuzz/corpus/<target> are read, never written); crashes go to
# fuzz/artifacts/<target>/. Exit status is non-zero if any target found a crash.
# CTRLCHAN_FUZZ_RUNS=N also stops a target after N execs (long runs: `CTRLCHAN_FUZZ_RUNS=10000000
# nice -n 19 bash scripts/fuzz.sh 3600 reframe`).
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS="${1:-10}"
shift || true
TARGETS=("$@")
if [ "${#TARGETS[@]}" -eq 0 ]; then
    TARGETS=(handshake uri proxy adaptive_store reframe connection reactor ffi_calls)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "--- installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
SAN="${CTRLCHAN_FUZZ_SANITIZER:-none}"
TOOLCHAIN=()
if [ "$SAN" != "none" ]; then TOOLCHAIN=(+nightly); fi
cd "$REPO/fuzz"
cargo "${TOOLCHAIN[@]}" fuzz build -s "$SAN" --release || exit 1
fail=0
RUNS=()
if [ -n "${CTRLCHAN_FUZZ_RUNS:-}" ]; then RUNS=(-runs="$CTRLCHAN_FUZZ_RUNS"); fi
printf '%-16s %12s %8s %10s %s\n' target execs seconds exec/s result
for t in "${TARGETS[@]}"; do
    work="$REPO/target/fuzz-corpus/$t"
    mkdir -p "$work"
    log="$REPO/target/fuzz-$t.log"
    start=$(date +%s)
    cargo "${TOOLCHAIN[@]}" fuzz run -s "$SAN" --release "$t" "$work" "corpus/$t" -- \
        -max_total_time="$SECS" "${RUNS[@]}" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    execs=$(grep -aEo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
    rate=$(grep -aEo 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
    if [ "$rc" -eq 0 ]; then res=ok; else res="CRASH (see $log)"; fail=1; fi
    printf '%-16s %12s %8s %10s %s\n' "$t" "${execs:-?}" "$took" "${rate:-?}" "$res"
done
exit "$fail"
