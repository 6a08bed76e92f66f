#!/usr/bin/env bash
# Runs the C test suite under valgrind memcheck against the release libctrlchan.so (the C tests
# are built without ASan for this; ASan and valgrind do not mix). Slow: several minutes.
#
#   bash scripts/valgrind-c.sh [TEST...]      (TEST: runtime websocket channel keepalive events bad_input)
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$REPO/target/valgrind-c"
LIBDIR="$REPO/target/release"
export CTRLCHAN_PYTHON="${CTRLCHAN_PYTHON:-$REPO/.venv/bin/python}"
export CTRLCHAN_PEER_DIR="${CTRLCHAN_PEER_DIR:-$REPO/tests/peer}"
export CTRLCHAN_LIB_DIR="$LIBDIR"
TESTS=("$@")
[ "${#TESTS[@]}" -eq 0 ] && TESTS=(runtime websocket channel keepalive events bad_input)
mkdir -p "$BUILD"
(cd "$REPO" && cargo build --release) || exit 1
fail=0
for t in "${TESTS[@]}"; do
    cc -std=c99 -g -O1 -o "$BUILD/test_$t" "$REPO/tests/c/test_$t.c" -I"$REPO/include" -I"$REPO/tests/c" -DCTRLCHAN_REPO_DIR="\"$REPO\"" \
        -pthread -L"$LIBDIR" -Wl,-rpath,"$LIBDIR" -lctrlchan || exit 1
    log="$BUILD/test_$t.valgrind.log"
    start=$(date +%s)
    timeout 1200 valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite --track-origins=yes --suppressions="$REPO/scripts/valgrind.supp" --trace-children=no --log-file="$log" "$BUILD/test_$t" \
        >"$BUILD/test_$t.out" 2>&1
    rc=$?
    errs=$(grep -Eo 'ERROR SUMMARY: [0-9]+' "$log" | tail -1)
    def=$(grep -Eo 'definitely lost: [0-9,]+ bytes' "$log" | tail -1)
    printf '%-12s exit %-3s %s; %s (%ss) %s\n' "$t" "$rc" "${errs:-?}" "${def:-definitely lost: 0 bytes}" \
        "$(( $(date +%s) - start ))" "$log"
    [ "$rc" -eq 0 ] || fail=1
done
exit "$fail"
