#!/usr/bin/env bash
# Build, install, type-check and test the Python binding.
#
#   bash bindings/python/run-tests.sh [extra pytest args]
#
# 1. uses <repo>/.venv (made by scripts/setup-venv.sh when missing or incomplete);
# 2. `pip install ./bindings/python` into it: setuptools-rust builds the crate and puts
#    libctrlchan.so inside the installed package. No build isolation and the repo's own
#    target/ directory, so a rebuild is incremental (seconds);
# 3. mypy --strict on the package (and the example);
# 4. pytest (with pytest-timeout) on bindings/python/tests against the *installed* package,
#    asserting that it loads its bundled library.
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

step "building and installing the package (cargo + setuptools-rust)"
# --no-build-isolation: the venv already has setuptools-rust; no fresh build env per run.
# --no-deps: the package has no Python dependencies.
# The in-tree build/ directory is removed first so a stale copy of a deleted module
# cannot end up in the wheel.
rm -rf "$HERE/build"
"$PY" -m pip install --quiet --no-build-isolation --no-deps --force-reinstall "$HERE"
rm -rf "$HERE/build" "$HERE"/*.egg-info

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
