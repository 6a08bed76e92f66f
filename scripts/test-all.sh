#!/usr/bin/env bash
# The one test command: `bash scripts/test-all.sh` (`bash scripts/test-all.sh rust c` runs only
# the stages named, in the usual order).
#
# Works on a fresh Debian machine with Rust, python3 and gcc: it installs what else it
# needs (scripts/setup-venv.sh -> .venv, scripts/setup-mono.sh -> mono + nunit), then
# runs the stages in order and stops at the first failure (CTRLCHAN_KEEP_GOING=1 runs
# them all). Each stage prints a banner; the run ends with a summary and the line
# "N passed, N failed" counting stages. Exit status is non-zero if any stage failed.
#
#   setup    scripts/setup-tools.sh (make, g++), scripts/setup-venv.sh
#   rust     cargo build --release && cargo test --release (incl. header freshness and the
#            fault matrix, tests/faults)
#   fuzz     scripts/fuzz.sh: every fuzz target for CTRLCHAN_FUZZ_SECONDS (default 12) each,
#            seeded with fuzz/corpus/; installs cargo-fuzz first if missing (about 2 min)
#   soak     scripts/soak.sh 2: CTRLCHAN_SOAK_CHANNELS (default 10 000) channels for
#            CTRLCHAN_SOAK_MINUTES (default 2) minutes with faults; fails on a lost or duplicated
#            message, a channel that gives up, RSS/fds/threads drifting > 5 %, or a ramp-up
#            longer than 150 s (about 3 min in all here)
#   c        make -C tests/c test           (C tests under ASan; SKIPPED without a Makefile)
#   python   pytest tests/peer, then bindings/python/run-tests.sh if present
#   csharp   bindings/csharp/run-tests.sh   (installs Mono/NUnit via scripts/setup-mono.sh)
#   examples scripts/smoke-examples.sh      (SKIPPED if absent)
#   packaging scripts/test-packaging.sh     (ABI symbol list, README snippets, C quick start,
#                                           cargo cinstall when cargo-c is installed)
#
# Environment for the stages: .venv/bin first on PATH, CTRLCHAN_PYTHON = the venv's
# python (what C/C# tests use to spawn tests/peer/server.py and proxy.py),
# CTRLCHAN_PEER_DIR = tests/peer, CTRLCHAN_LIB_DIR = target/release.
# Per-stage time limit: CTRLCHAN_STAGE_TIMEOUT seconds (default 1500).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

export CTRLCHAN_PYTHON="$REPO/.venv/bin/python"
export CTRLCHAN_PEER_DIR="$REPO/tests/peer"
export CTRLCHAN_LIB_DIR="$REPO/target/release"
export VIRTUAL_ENV="$REPO/.venv"
export PATH="$REPO/.venv/bin:$PATH"
export PYTHONDONTWRITEBYTECODE=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

STAGE_TIMEOUT="${CTRLCHAN_STAGE_TIMEOUT:-1500}"
KEEP_GOING="${CTRLCHAN_KEEP_GOING:-0}"

STAGES=(setup rust fuzz soak c python csharp examples packaging)
if [ "$#" -gt 0 ]; then
    for want in "$@"; do
        case " ${STAGES[*]} " in
            *" $want "*) ;;
            *) echo "unknown stage '$want' (stages: ${STAGES[*]})" >&2; exit 2 ;;
        esac
    done
    selected=()
    for stage in "${STAGES[@]}"; do
        case " $* " in *" $stage "*) selected+=("$stage") ;; esac
    done
    STAGES=("${selected[@]}")
fi
declare -A RESULT=()
declare -A SECONDS_TAKEN=()
passed=0
failed=0
stop=0

banner() {
    printf '\n==============================================================================\n'
    printf '== %s\n' "$*"
    printf '==============================================================================\n'
}

# --- stage bodies (each runs in a subshell with errexit) -----------------------------

stage_setup() {
    bash scripts/setup-tools.sh
    bash scripts/setup-venv.sh
    # Mono + NUnit are installed by the csharp stage (bindings/csharp/run-tests.sh calls
    # scripts/setup-mono.sh), so a machine without them still runs every other stage.
}

stage_rust() {
    cargo build --release
    cargo test --release
}

stage_fuzz() {
    bash scripts/fuzz.sh "${CTRLCHAN_FUZZ_SECONDS:-12}"
}

stage_soak() {
    SOAK_CHANNELS="${CTRLCHAN_SOAK_CHANNELS:-10000}" SOAK_RAMP_SECONDS=150 \
        bash scripts/soak.sh "${CTRLCHAN_SOAK_MINUTES:-2}"
}

stage_c() {
    if [ ! -f tests/c/Makefile ]; then
        echo "tests/c/Makefile not found"
        return 200
    fi
    make -C tests/c test
}

stage_python() {
    echo "--- pytest tests/peer (test peer self-tests)"
    "$CTRLCHAN_PYTHON" -m pytest -p no:cacheprovider -q tests/peer
    if [ -f bindings/python/run-tests.sh ]; then
        echo "--- bindings/python/run-tests.sh"
        bash bindings/python/run-tests.sh
    else
        echo "--- bindings/python/run-tests.sh not found: binding tests SKIPPED"
    fi
}

stage_csharp() {
    if [ ! -f bindings/csharp/run-tests.sh ]; then
        echo "bindings/csharp/run-tests.sh not found"
        return 200
    fi
    bash bindings/csharp/run-tests.sh
}

stage_examples() {
    if [ ! -f scripts/smoke-examples.sh ]; then
        echo "scripts/smoke-examples.sh not found"
        return 200
    fi
    bash scripts/smoke-examples.sh
}

stage_packaging() {
    bash scripts/test-packaging.sh
}

# --- runner --------------------------------------------------------------------------

run_stage() {
    local name="$1" start rc
    if [ "$stop" -eq 1 ]; then
        RESULT[$name]="NOT RUN"
        return
    fi
    banner "STAGE $name"
    start=$(date +%s)
    # A subshell with errexit so any failing command fails the stage; `timeout`
    # bounds a hung stage (it runs the stage body in its own bash).
    timeout --kill-after=30 "$STAGE_TIMEOUT" \
        bash -c "set -euo pipefail; $(declare -f "stage_$name"); stage_$name" </dev/null
    rc=$?
    SECONDS_TAKEN[$name]=$(( $(date +%s) - start ))
    if [ "$rc" -eq 0 ]; then
        RESULT[$name]="PASSED"
        passed=$((passed + 1))
        banner "STAGE $name: PASSED (${SECONDS_TAKEN[$name]} s)"
    elif [ "$rc" -eq 200 ]; then
        RESULT[$name]="SKIPPED"
        banner "STAGE $name: SKIPPED"
    else
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            RESULT[$name]="FAILED (timed out after ${STAGE_TIMEOUT} s)"
        else
            RESULT[$name]="FAILED (exit $rc)"
        fi
        failed=$((failed + 1))
        banner "STAGE $name: ${RESULT[$name]}"
        if [ "$KEEP_GOING" != "1" ]; then
            stop=1
        fi
    fi
}

for stage in "${STAGES[@]}"; do
    run_stage "$stage"
done

banner "SUMMARY"
for stage in "${STAGES[@]}"; do
    extra=""
    if [ -n "${SECONDS_TAKEN[$stage]:-}" ]; then
        extra=" (${SECONDS_TAKEN[$stage]} s)"
    fi
    printf '  %-9s %s%s\n' "$stage" "${RESULT[$stage]}" "$extra"
done
echo
echo "$passed passed, $failed failed"

[ "$failed" -eq 0 ]
