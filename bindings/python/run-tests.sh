#!/usr/bin/env bash
# Build the wheel, install it, type-check and test the Python binding against the installed package.
#
#   bash bindings/python/run-tests.sh [extra pytest args]
#
# 1. uses <repo>/.venv (made by scripts/setup-venv.sh when missing or incomplete);
# 2. build-wheel.sh: cargo build --release, pip wheel, auditwheel ->
#    ctrlchan-VERSION-py3-none-manylinux_*_x86_64.whl in a scratch folder;
# 3. installs that wheel into a fresh venv for every CPython >= 3.8 found on the machine
#    (python3.8 ... python3.13 on PATH or under ~/.pyenv/versions), with no cargo on PATH, and
#    runs a runtime there from an unrelated directory;
# 4. installs the wheel into .venv (replacing any earlier install);
# 5. mypy --strict on the package (and the example);
# 6. pytest (with pytest-timeout) on bindings/python/tests against the *installed* package,
#    asserting that it loads its bundled library (CTRLCHAN_TEST_EXPECT_BUNDLED=1).
# The exit status is non-zero if any step fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="$REPO/.venv"
PY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONDONTWRITEBYTECODE=1

step() { printf '\n== python: %s\n' "$*"; }

if [ ! -x "$PY" ] || ! "$PY" -c 'import websockets, pytest, pytest_timeout, mypy, setuptools_rust, wheel' >/dev/null 2>&1; then
    step "setting up $VENV"
    bash "$REPO/scripts/setup-venv.sh"
fi

step "building the wheel (build-wheel.sh)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
WHEEL="$(bash "$HERE/build-wheel.sh" "$WORK/dist" | tail -n1)"
[ -f "$WHEEL" ] || { echo "python: build-wheel.sh produced no wheel"; exit 1; }
echo "python: $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"

step "installing the wheel into fresh venvs (no cargo on PATH)"
interpreters=()
for v in 3.8 3.9 3.10 3.11 3.12 3.13 3.14; do
    cand=""
    for c in "$HOME"/.pyenv/versions/"$v".*/bin/python"$v" "$(command -v "python$v" 2>/dev/null || true)"; do
        # (a pyenv shim for a version that is not selected exists but fails: try to run it)
        if [ -z "$cand" ] && [ -n "$c" ] && [ -x "$c" ] && "$c" -c 'import sys' >/dev/null 2>&1; then cand="$c"; fi
    done
    if [ -n "$cand" ]; then interpreters+=("$cand"); fi
done
[ "${#interpreters[@]}" -gt 0 ] || interpreters=("$(command -v python3)")
fresh_ok=0
for interp in "${interpreters[@]}"; do
    ver="$("$interp" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    venv="$WORK/fresh-$ver"
    if ! "$interp" -m venv "$venv" >"$WORK/venv-$ver.log" 2>&1; then
        echo "python: $ver: no venv module here, skipped"; continue
    fi
    "$venv/bin/python" -m pip install --quiet --no-index --no-deps "$WHEEL"
    (cd "$WORK" && env -i PATH=/usr/bin:/bin HOME="$WORK" "$venv/bin/python" -c '
import sys, ctrlchan
from pathlib import Path
p = Path(ctrlchan.library_path())
assert p.parent == Path(ctrlchan.__file__).resolve().parent, p
with ctrlchan.Runtime() as rt:
    pass
print("python: %d.%d: installed and imported ctrlchan %s, library %s" % (sys.version_info[:2] + (ctrlchan.library_version(), p)))
')
    fresh_ok=$((fresh_ok + 1))
done
[ "$fresh_ok" -gt 0 ] || { echo "python: the wheel was installed into no fresh venv"; exit 1; }

step "installing the wheel into $VENV"
"$PY" -m pip install --quiet --no-deps --force-reinstall "$WHEEL"

step "mypy --strict"
(cd "$HERE" && "$PY" -m mypy --strict --no-incremental ctrlchan "$REPO/examples/python")

step "pytest"
# Run from a directory without a `ctrlchan/` folder so the installed package is imported.
cd "$REPO"
CTRLCHAN_TEST_EXPECT_BUNDLED=1 "$PY" -m pytest \
    -p no:cacheprovider \
    --timeout=180 \
    -ra \
    "$HERE/tests" "$@"
