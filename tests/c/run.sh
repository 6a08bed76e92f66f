#!/usr/bin/env bash
# Runs the C test programs given as arguments, in sequence, each under `timeout 120`,
# after the header compile checks; prints "N passed, N failed" and exits non-zero on failure.
# Called by `make test` (which sets CC, CXX, REPO, LIBDIR, BUILD and CTRLCHAN_PYTHON).
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${REPO:=$(cd "$HERE/../.." && pwd)}"
: "${LIBDIR:=$REPO/target/release}"
: "${BUILD:=$HERE/build}"
: "${CC:=cc}"
: "${CXX:=c++}"
export CTRLCHAN_PYTHON="${CTRLCHAN_PYTHON:-$REPO/.venv/bin/python}"

# Leak detection on; stop at the first error; UBSan findings are fatal too.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_odr_violation=2:strict_string_checks=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
if [ -s "$HERE/lsan.supp" ]; then
    export LSAN_OPTIONS="suppressions=$HERE/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
fi

passed=0
failed=0
failures=()

record() { # name status
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS $1"
    else
        failed=$((failed + 1))
        failures+=("$1")
        echo "FAIL $1 (status $2)"
    fi
}

mkdir -p "$BUILD"
WARN=(-Wall -Wextra -Werror -pedantic)

echo "=== header_c99: the header compiles and links as C99"
"$CC" -std=c99 "${WARN[@]}" -I"$REPO/include" -o "$BUILD/header_c99" "$HERE/header_check.c" \
    -L"$LIBDIR" -Wl,-rpath,"$LIBDIR" -lctrlchan && "$BUILD/header_c99"
record header_c99 $?

echo "=== header_cxx: the header compiles and links as C++11 (extern \"C\")"
"$CXX" -std=c++11 "${WARN[@]}" -I"$REPO/include" -o "$BUILD/header_cxx" "$HERE/header_check.cpp" \
    -L"$LIBDIR" -Wl,-rpath,"$LIBDIR" -lctrlchan && "$BUILD/header_cxx"
record header_cxx $?

for bin in "$@"; do
    name="$(basename "$bin")"
    echo "=== $name"
    start=$(date +%s)
    timeout --kill-after=10 120 "$bin"
    status=$?
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        echo "$name: timed out after 120 s"
    fi
    echo "    ($(( $(date +%s) - start )) s)"
    record "$name" "$status"
done

echo
if [ "$failed" -gt 0 ]; then
    echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
