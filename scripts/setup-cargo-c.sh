#!/usr/bin/env bash
# Install cargo-c (cargo cbuild / cargo cinstall), pinned, when it is missing. Idempotent: a no-op
# when `cargo cinstall --version` works. Building it takes about 13 CPU-minutes (measured here:
# 12m44s user, 7-30 min wall on 2 shared cores), so the test command runs it only when asked
# (CTRLCHAN_INSTALL_CARGO_C=1, see scripts/test-packaging.sh); after that ~/.cargo/bin has it.
# 0.10.24 is the newest cargo-c that builds with Rust 1.95 (newer ones need Rust 1.97).
set -euo pipefail
VERSION="${CTRLCHAN_CARGO_C_VERSION:-0.10.24}"
if cargo cinstall --version >/dev/null 2>&1; then
    echo "setup-cargo-c: $(cargo cinstall --version 2>/dev/null | head -n1) present"
    exit 0
fi
# cargo-c links cargo itself: it builds openssl-sys and curl-sys against the system OpenSSL.
need=()
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
if [ "${#need[@]}" -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup-cargo-c: installing ${need[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
echo "setup-cargo-c: cargo install cargo-c --locked --version $VERSION (several minutes)"
start=$(date +%s)
cargo install cargo-c --locked --version "$VERSION"
echo "setup-cargo-c: installed in $(( $(date +%s) - start )) s"
