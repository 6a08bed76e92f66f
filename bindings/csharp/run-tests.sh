#!/usr/bin/env bash
# Build and test the C# binding under Mono, from a fresh machine:
#   1. install Mono + NUnit 2.6 if missing (scripts/setup-mono.sh), the Python peer's venv
#      if missing (scripts/setup-venv.sh);
#   2. cargo build --release (target/release/libctrlchan.so);
#   3. compile CtrlChan.dll, CtrlChan.Tests.dll and the example with mcs into
#      bindings/csharp/build/, next to a copy of libctrlchan.so;
#   4. run the example once as a smoke test (it starts its own peer), then nunit-console.
# Prints "csharp: N passed, N failed[, N skipped]" last and exits non-zero on any failure.
#
# Options: --no-build (skip cargo), --no-example, any other args go to nunit-console
# (e.g. -run=CtrlChan.Tests.MainFlowTests). CTRLCHAN_CSHARP_BUILD=DIR builds elsewhere
# (the directory is wiped first, so two runs must not share it).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD="${CTRLCHAN_CSHARP_BUILD:-$HERE/build}"   # override to keep concurrent runs apart
CARGO_BUILD=1
RUN_EXAMPLE=1
NUNIT_ARGS=()
for a in "$@"; do
    case "$a" in
        --no-build) CARGO_BUILD=0 ;;
        --no-example) RUN_EXAMPLE=0 ;;
        *) NUNIT_ARGS+=("$a") ;;
    esac
done

log() { echo "csharp: $*"; }

# ---- toolchain -------------------------------------------------------------------------
find_nunit_framework() {
    local c
    for c in /usr/lib/cli/nunit.framework-2.6*/nunit.framework.dll \
             /usr/lib/mono/nunit*/nunit.framework.dll \
             /usr/lib/nunit/nunit.framework.dll; do
        [ -e "$c" ] && { echo "$c"; return 0; }
    done
    return 1
}

if ! command -v mcs >/dev/null 2>&1 || ! command -v mono >/dev/null 2>&1 \
   || ! command -v nunit-console >/dev/null 2>&1 || ! find_nunit_framework >/dev/null; then
    if [ -x "$REPO/scripts/setup-mono.sh" ] || [ -f "$REPO/scripts/setup-mono.sh" ]; then
        bash "$REPO/scripts/setup-mono.sh" || log "setup-mono.sh reported a problem; checking the toolchain anyway"
    fi
fi
if ! command -v mcs >/dev/null 2>&1 || ! command -v nunit-console >/dev/null 2>&1 || ! find_nunit_framework >/dev/null; then
    log "installing mono-mcs mono-runtime nunit-console libnunit-cil-dev with apt-get"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends mono-mcs mono-runtime nunit-console libnunit-cil-dev \
        libmono-system-core4.0-cil libmono-system-net-http4.0-cil
fi
NUNIT_FW="$(find_nunit_framework)" || { log "nunit.framework.dll not found"; echo "csharp: 0 passed, 1 failed"; exit 1; }

PY="${CTRLCHAN_PYTHON:-$REPO/.venv/bin/python}"
if ! "$PY" -c 'import websockets' >/dev/null 2>&1; then
    if [ -f "$REPO/scripts/setup-venv.sh" ]; then
        bash "$REPO/scripts/setup-venv.sh"
    fi
fi
export CTRLCHAN_PYTHON="$PY"
export CTRLCHAN_REPO_ROOT="$REPO"

# ---- native library --------------------------------------------------------------------
if [ "$CARGO_BUILD" = 1 ]; then
    log "cargo build --release"
    (cd "$REPO" && cargo build --release --quiet)
fi
NATIVE="$REPO/target/release/libctrlchan.so"
[ -e "$NATIVE" ] || { log "$NATIVE missing"; echo "csharp: 0 passed, 1 failed"; exit 1; }

# ---- compile ---------------------------------------------------------------------------
rm -rf "$BUILD"
mkdir -p "$BUILD"
cp "$NATIVE" "$BUILD/libctrlchan.so"
cp "$NUNIT_FW" "$BUILD/"
MCS=(mcs -nologo -langversion:7 -warn:4 -warnaserror+ -debug -define:TRACE -r:System.dll -r:System.Core.dll)

log "mcs CtrlChan.dll"
"${MCS[@]}" -target:library -unsafe -out:"$BUILD/CtrlChan.dll" "$HERE"/CtrlChan/*.cs
log "mcs CtrlChan.Tests.dll"
"${MCS[@]}" -target:library -out:"$BUILD/CtrlChan.Tests.dll" -r:"$BUILD/CtrlChan.dll" -r:"$BUILD/nunit.framework.dll" \
    "$HERE"/CtrlChan.Tests/*.cs
"${MCS[@]}" -target:exe -out:"$BUILD/ExitHelper.exe" -r:"$BUILD/CtrlChan.dll" "$HERE"/CtrlChan.Tests/ExitHelper/*.cs
log "mcs ControlChannelTriggerSample.exe"
"${MCS[@]}" -target:exe -out:"$BUILD/ControlChannelTriggerSample.exe" -r:"$BUILD/CtrlChan.dll" \
    "$REPO"/examples/csharp/*.cs

export MONO_ENV_OPTIONS="${MONO_ENV_OPTIONS:-} --debug"
export LD_LIBRARY_PATH="$BUILD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ---- example smoke test ----------------------------------------------------------------
EXAMPLE_FAILED=0
if [ "$RUN_EXAMPLE" = 1 ]; then
    log "running examples/csharp (starts its own peer)"
    if timeout 120 mono --debug "$BUILD/ControlChannelTriggerSample.exe" --seconds 3 </dev/null > "$BUILD/example.log" 2>&1; then
        tail -n 5 "$BUILD/example.log"
    else
        EXAMPLE_FAILED=1
        log "example FAILED:"; tail -n 40 "$BUILD/example.log"
    fi
fi

# ---- NUnit -----------------------------------------------------------------------------
log "nunit-console"
set +e
(cd "$BUILD" && timeout 900 nunit-console -nologo -noshadow -labels \
    -xml="$BUILD/TestResult.xml" "${NUNIT_ARGS[@]}" "$BUILD/CtrlChan.Tests.dll" </dev/null)
NUNIT_RC=$?
set -e

# One plain closing line from the XML (nunit-console 2.6 prints "Tests run: ..." above).
if [ -s "$BUILD/TestResult.xml" ]; then
    read -r TOTAL ERRS FAILS INCONC SKIPPED < <(python3 - "$BUILD/TestResult.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
g = lambda k: int(r.get(k, "0"))
print(g("total"), g("errors"), g("failures"), g("inconclusive"), g("not-run"))
EOF
)
else
    TOTAL=0; ERRS=0; FAILS=1; INCONC=0; SKIPPED=0
fi
FAILED=$((ERRS + FAILS + EXAMPLE_FAILED))
PASSED=$((TOTAL - ERRS - FAILS - INCONC))
[ "$NUNIT_RC" -ne 0 ] && [ "$FAILED" -eq 0 ] && FAILED=1
echo "csharp: $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ] && [ "$TOTAL" -gt 0 ]
