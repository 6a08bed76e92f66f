#!/usr/bin/env bash
# Installs the build tools the test stages use when a fresh machine lacks them: make (C tests,
# examples) and g++ (the header's C++ compile check). Idempotent; a no-op when both exist.
set -euo pipefail
missing=()
command -v make >/dev/null 2>&1 || missing+=(make)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup-tools: make, g++ and cc present"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup-tools: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
fi
command -v apt-get >/dev/null 2>&1 || { echo "setup-tools: no apt-get; please install: ${missing[*]}" >&2; exit 1; }
echo "setup-tools: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
