#!/usr/bin/env bash
# The C ABI changes only on purpose: the dynamic symbols that libctrlchan.so exports must equal
# the checked-in list abi/ctrlchan.symbols, and each must be declared in include/ctrlchan.h.
#
#   bash scripts/check-abi.sh [LIB]           check (LIB defaults to target/release/libctrlchan.so)
#   bash scripts/check-abi.sh --bless [LIB]   rewrite abi/ctrlchan.symbols from LIB, then review the diff
#                                             (CTRLCHAN_BLESS=1 does the same)
#
# Adding a function: bless and commit the list with it. Removing or changing one breaks every
# program linked against libctrlchan.so.MAJOR: that needs a new major version (a new SONAME).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIST="$REPO/abi/ctrlchan.symbols"
BLESS="${CTRLCHAN_BLESS:-}"
if [ "${1:-}" = "--bless" ]; then BLESS=1; shift; fi
LIB="${1:-${CTRLCHAN_LIB_DIR:-$REPO/target/release}/libctrlchan.so}"
[ -f "$LIB" ] || { echo "check-abi: $LIB not found (cargo build --release first)" >&2; exit 1; }
command -v nm >/dev/null || { echo "check-abi: nm not found (apt-get install binutils)" >&2; exit 1; }

actual="$(nm -D --defined-only "$LIB" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | LC_ALL=C sort -u)"

if [ -n "$BLESS" ]; then
    {
        echo "# Dynamic symbols exported by libctrlchan.so (nm -D --defined-only), one per line, sorted."
        echo "# Checked by scripts/check-abi.sh; regenerate with: bash scripts/check-abi.sh --bless"
        echo "$actual"
    } > "$LIST"
    echo "check-abi: wrote $(echo "$actual" | wc -l) symbols to abi/ctrlchan.symbols"
    git -C "$REPO" --no-pager diff --stat -- abi/ctrlchan.symbols 2>/dev/null || true
    exit 0
fi

[ -f "$LIST" ] || { echo "check-abi: $LIST missing: run bash scripts/check-abi.sh --bless" >&2; exit 1; }
expected="$(grep -vE '^\s*(#|$)' "$LIST" | LC_ALL=C sort -u)"
fail=0
added="$(LC_ALL=C comm -13 <(echo "$expected") <(echo "$actual"))"
removed="$(LC_ALL=C comm -23 <(echo "$expected") <(echo "$actual"))"
if [ -n "$added" ]; then
    echo "check-abi: FAIL: exported but not in abi/ctrlchan.symbols (new API? bless the list):"
    echo "$added" | sed 's/^/    + /'
    fail=1
fi
if [ -n "$removed" ]; then
    echo "check-abi: FAIL: in abi/ctrlchan.symbols but no longer exported (an ABI break: new major version):"
    echo "$removed" | sed 's/^/    - /'
    fail=1
fi
undeclared=""
for s in $actual; do
    grep -Eq "\\b$s\\(" "$REPO/include/ctrlchan.h" || undeclared+="$s"$'\n'
done
if [ -n "$undeclared" ]; then
    echo "check-abi: FAIL: exported but not declared in include/ctrlchan.h:"
    printf '%s' "$undeclared" | sed 's/^/    /'
    fail=1
fi
if [ "$fail" -ne 0 ]; then
    echo "check-abi: to accept the change: bash scripts/check-abi.sh --bless   (and commit abi/ctrlchan.symbols)"
    exit 1
fi
echo "check-abi: $(echo "$actual" | wc -l) exported symbols match abi/ctrlchan.symbols and include/ctrlchan.h"
