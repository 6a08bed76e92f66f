#!/usr/bin/env bash
# Installs and builds everything the benchmark needs; idempotent (a second run only checks).
#   - Debian packages: libwebsockets-dev (the C peer), gcc, pkg-config, openssl, nodejs/npm
#   - bench/node_modules: the node `ws` peer, pinned by bench/package-lock.json
#   - .venv: python-websockets (scripts/setup-venv.sh)
#   - bench/certs: a self-signed CA and a 127.0.0.1 server certificate it signed
#   - bench/build: the libwebsockets client, the tokio-tungstenite server, the Rust clients
# Not part of the test command.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
cd "$REPO"

need_apt=()
dpkg -s libwebsockets-dev >/dev/null 2>&1 || need_apt+=(libwebsockets-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -f "$HERE/node_modules/ws/package.json" ]; then
    echo "setup: npm ci (ws)"
    (cd "$HERE" && npm ci --no-audit --no-fund --silent)
fi

bash "$REPO/scripts/setup-venv.sh" >/dev/null

CERTS="$HERE/certs"
if [ ! -f "$CERTS/server.pem" ]; then
    echo "setup: self-signed CA and server certificate in bench/certs"
    mkdir -p "$CERTS"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj "/CN=ctrlchan bench CA" \
        -keyout "$CERTS/ca.key" -out "$CERTS/ca.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$CERTS/server.key" -out "$CERTS/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        > "$CERTS/ext.cnf"
    openssl x509 -req -in "$CERTS/server.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" -CAcreateserial \
        -days 3650 -extfile "$CERTS/ext.cnf" -out "$CERTS/server.pem" 2>/dev/null
fi

mkdir -p "$HERE/build"
if [ ! -x "$HERE/build/lws_client" ] || [ "$HERE/lws_client.c" -nt "$HERE/build/lws_client" ]; then
    echo "setup: building bench/build/lws_client"
    gcc -O2 -Wall -Wextra -Werror -o "$HERE/build/lws_client" "$HERE/lws_client.c" \
        $(pkg-config --cflags --libs libwebsockets)
fi
if [ ! -x "$HERE/build/floor_client" ] || [ "$HERE/floor_client.c" -nt "$HERE/build/floor_client" ]; then
    echo "setup: building bench/build/floor_client"
    gcc -O2 -Wall -Wextra -Werror -o "$HERE/build/floor_client" "$HERE/floor_client.c" -lssl -lcrypto
fi

echo "setup: cargo build --release (bench server, ctrlchan client)"
(cd "$HERE/server" && cargo build --release --quiet)
cargo build --release --quiet --example bench
echo "setup: done"
