#!/usr/bin/env bash
# Installs the tools the test stages use when a fresh machine lacks them: make (C tests,
# examples), g++ (the header's C++ compile check), and the real proxies of the proxy tests,
# tinyproxy (HTTP CONNECT) and dante-server's danted (SOCKS5), which tests/peer/proxies.py
# starts on loopback ports of its own. Idempotent; a no-op when everything is there.
set -euo pipefail
missing=()
command -v make >/dev/null 2>&1 || missing+=(make)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
# `ip` builds the network-namespace hosts of the network-change test.
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
proxies=()
command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || proxies+=(tinyproxy)
command -v danted >/dev/null 2>&1 || [ -x /usr/sbin/danted ] || proxies+=(dante-server)
missing+=("${proxies[@]}")
if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup-tools: make, g++, cc, ip, tinyproxy and danted present"
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
# The packages may start system-wide instances (tinyproxy on :8888); the tests run their own.
if [ "${#proxies[@]}" -gt 0 ] && command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now tinyproxy.service danted.service >/dev/null 2>&1 || true
fi
