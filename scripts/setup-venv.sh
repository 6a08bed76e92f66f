#!/usr/bin/env bash
# Create (or refresh) the repo's Python virtual environment at .venv and install the
# test/build tools listed in scripts/requirements-test.txt into it.
#
# Idempotent and fast when nothing changed: a stamp file inside .venv records the
# sha256 of the requirements file (and the interpreter version); when it matches, this
# script only checks the venv's python still runs and exits.
#
# Everything that needs Python in the test suite uses "$REPO/.venv/bin/python"
# (C tests spawn tests/peer/*.py with it; override with CTRLCHAN_PYTHON).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
REQ="$REPO/scripts/requirements-test.txt"
STAMP="$VENV/.ctrlchan-requirements.sha256"
PYTHON="${PYTHON:-python3}"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "setup-venv: $PYTHON not found" >&2
    exit 1
fi

want="$(sha256sum "$REQ" | cut -d' ' -f1) $("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
   && "$VENV/bin/python" -c 'import websockets, trustme, pytest' >/dev/null 2>&1; then
    echo "setup-venv: .venv up to date"
    exit 0
fi

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "setup-venv: creating $VENV"
    rm -rf "$VENV"
    if ! "$PYTHON" -m venv "$VENV"; then
        # Debian's own python3 ships venv/ensurepip separately.
        rm -rf "$VENV"
        SUDO=""
        [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
        if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; }; then
            echo "setup-venv: '$PYTHON -m venv' failed; installing python3-venv"
            $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
            $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
        fi
        if ! "$PYTHON" -m venv "$VENV"; then
            echo "setup-venv: '$PYTHON -m venv' failed; install python3-venv" >&2
            exit 1
        fi
    fi
fi

echo "setup-venv: installing $(grep -cvE '^\s*(#|$)' "$REQ") packages from scripts/requirements-test.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r "$REQ"
"$VENV/bin/python" -c 'import websockets, trustme, pytest; print("setup-venv: websockets", websockets.__version__, "pytest", pytest.__version__)'
echo "$want" > "$STAMP"
