#!/usr/bin/env bash
# The C library as users get it (the "packaging" stage of scripts/test-all.sh):
#
#   1. abi       the exported symbols equal abi/ctrlchan.symbols (scripts/check-abi.sh)
#   2. snippets  every README snippet builds: C as C99 and C++17, Python, C# (scripts/check-snippets.py)
#   3. quick start, as the README says to build it: against target/release (rpath) and statically
#      against libctrlchan.a, run against the test peer
#   4. the C++17 wrapper include/ctrlchan.hpp: tests/cpp/test_wrapper.cpp under ASan against the peer
#   5. cargo cinstall into a scratch DESTDIR: libctrlchan.so.MAJOR.MINOR.PATCH + symlinks, SONAME
#      libctrlchan.so.MAJOR, stripped, same symbols; libctrlchan.a; ctrlchan.pc; include/ctrlchan.h;
#      the quick start built with `pkg-config --cflags --libs ctrlchan` (and --static) and run.
#      Needs cargo-c: when `cargo cinstall` is missing this part is SKIPPED, unless
#      CTRLCHAN_INSTALL_CARGO_C=1, which installs it first (scripts/setup-cargo-c.sh, ~13 CPU-minutes).
#
# Ends with "packaging: N passed, N failed, N skipped"; exit status non-zero on any failure.
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PY="${CTRLCHAN_PYTHON:-$REPO/.venv/bin/python}"
LIBDIR="${CTRLCHAN_LIB_DIR:-$REPO/target/release}"
WORK="$(mktemp -d)"
SRV_PID=""
cleanup() {
    exec 7>&- 2>/dev/null || true
    [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
pass=0; fail=0; skip=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
skipped() { echo "SKIP $*"; skip=$((skip + 1)); }
show() { sed 's/^/    /' "$1" | tail -n "${2:-30}"; }
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
MAJOR="${VERSION%%.*}"

[ -f "$LIBDIR/libctrlchan.so" ] || cargo build --release

echo "== 1. exported symbols"
if bash scripts/check-abi.sh "$LIBDIR/libctrlchan.so" >"$WORK/abi.log" 2>&1; then ok "$(tail -n1 "$WORK/abi.log")"
else bad "ABI symbol list"; show "$WORK/abi.log"; fi

echo "== 2. README snippets"
if command -v mcs >/dev/null 2>&1 || bash scripts/setup-mono.sh >"$WORK/mono.log" 2>&1; then :; fi
if python3 scripts/check-snippets.py --lib-dir "$LIBDIR" --keep "$WORK/snippets" >"$WORK/snippets.log" 2>&1; then
    ok "$(tail -n1 "$WORK/snippets.log")"; grep -E '^(ok|skip|FAIL) ' "$WORK/snippets.log" | sed 's/^/    /'
else bad "README snippets"; show "$WORK/snippets.log" 60; fi

echo "== 3. the C quick start"
python3 - "$REPO/README.md" "$WORK/quickstart.c" <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r"^```c\n(/\* quickstart\.c.*?)^```", text, re.S | re.M)
if not m:
    sys.exit("README.md has no ```c block starting with /* quickstart.c")
open(sys.argv[2], "w").write(m.group(1))
EOF
python3 - "$REPO/README.md" "$WORK/quickstart.cpp" <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r"^```cpp\n(// quickstart\.cpp.*?)^```", text, re.S | re.M)
if not m:
    sys.exit("README.md has no ```cpp block starting with // quickstart.cpp")
open(sys.argv[2], "w").write(m.group(1))
EOF
mkfifo "$WORK/srv.in"
"$PY" tests/peer/server.py --port 0 <"$WORK/srv.in" >"$WORK/srv.out" 2>&1 &
SRV_PID=$!
exec 7>"$WORK/srv.in"
for _ in $(seq 1 100); do grep -q '^PORT' "$WORK/srv.out" 2>/dev/null && break; sleep 0.1; done
PORT="$(awk '/^PORT/{print $2; exit}' "$WORK/srv.out")"
[ -n "$PORT" ] || { bad "test peer did not start"; show "$WORK/srv.out"; }
PUSH_URL="ws://127.0.0.1:$PORT/push?n=3&interval_ms=100"
CLOSE_URL="ws://127.0.0.1:$PORT/close?code=1000&reason=bye&after_ms=300"

QS_ENV=()
run_quickstart() { # name, binary, url, patterns...; runs with LD_LIBRARY_PATH unset plus "${QS_ENV[@]}"
    local name="$1" bin="$2" url="$3"; shift 3
    env -u LD_LIBRARY_PATH "${QS_ENV[@]}" timeout 60 "$bin" "$url" >"$WORK/out.log" 2>&1
    local rc=$?
    for pat in "$@"; do
        grep -Eq "$pat" "$WORK/out.log" || { bad "$name: exit $rc, output lacks /$pat/"; show "$WORK/out.log"; return; }
    done
    [ "$rc" -eq 0 ] || { bad "$name: exit $rc"; show "$WORK/out.log"; return; }
    ok "$name"
}
CC="${CC:-cc}"
if (cd "$REPO" && $CC -std=c99 -Wall -Iinclude "$WORK/quickstart.c" -Ltarget/release -lctrlchan \
        -Wl,-rpath,"$PWD/target/release" -o "$WORK/quickstart") >"$WORK/cc.log" 2>&1; then
    run_quickstart "quick start (build tree, rpath): pushes" "$WORK/quickstart" "$PUSH_URL" \
        "push enabled" "push notification: msg 2" "^3 push notifications"
else bad "quick start: cc as in the README"; show "$WORK/cc.log"; fi
if $CC -std=c99 -Wall -I"$REPO/include" "$WORK/quickstart.c" "$LIBDIR/libctrlchan.a" -lpthread -ldl -lm -lrt -lutil \
        -o "$WORK/quickstart-static" >"$WORK/cc-static.log" 2>&1; then
    if ldd "$WORK/quickstart-static" | grep -q libctrlchan; then bad "static quick start still needs libctrlchan.so"
    else run_quickstart "quick start (libctrlchan.a, as the README lists): close" "$WORK/quickstart-static" "$CLOSE_URL" \
        "push enabled" "channel ended: bye"; fi
else bad "quick start: static link"; show "$WORK/cc-static.log"; fi

echo "== 4. the C++17 wrapper (include/ctrlchan.hpp)"
CXX="${CXX:-c++}"
if $CXX -std=c++17 -Wall -Wextra -Werror -pedantic -fsanitize=address,undefined -fno-omit-frame-pointer \
        -fno-sanitize-recover=undefined -g -I"$REPO/include" tests/cpp/test_wrapper.cpp -L"$LIBDIR" -lctrlchan \
        -Wl,-rpath,"$LIBDIR" -o "$WORK/test_wrapper" >"$WORK/cxx.log" 2>&1; then
    if env -u LD_LIBRARY_PATH timeout 120 "$WORK/test_wrapper" "ws://127.0.0.1:$PORT" >"$WORK/cpp.log" 2>&1; then
        ok "tests/cpp under ASan: $(tail -n1 "$WORK/cpp.log")"
    else bad "tests/cpp"; show "$WORK/cpp.log" 40; fi
else bad "tests/cpp/test_wrapper.cpp does not build"; show "$WORK/cxx.log" 40; fi

echo "== 5. cargo cinstall"
if ! cargo cinstall --version >/dev/null 2>&1 && [ "${CTRLCHAN_INSTALL_CARGO_C:-0}" = 1 ]; then
    bash scripts/setup-cargo-c.sh
fi
if ! cargo cinstall --version >/dev/null 2>&1; then
    skipped "cargo cinstall: cargo-c is not installed (CTRLCHAN_INSTALL_CARGO_C=1 or bash scripts/setup-cargo-c.sh installs it)"
else
    STAGE="$WORK/stage"
    start=$(date +%s)
    if cargo cinstall --release --destdir "$STAGE" --prefix /usr --libdir /usr/lib >"$WORK/cinstall.log" 2>&1; then
        ok "cargo cinstall --release --destdir ... --prefix /usr ($(( $(date +%s) - start )) s)"
        L="$STAGE/usr/lib"
        problems=""
        [ -f "$L/libctrlchan.so.$VERSION" ] || problems+=" no libctrlchan.so.$VERSION;"
        [ "$(readlink "$L/libctrlchan.so.$MAJOR")" = "libctrlchan.so.$VERSION" ] || problems+=" libctrlchan.so.$MAJOR is not a link to it;"
        [ "$(readlink "$L/libctrlchan.so")" = "libctrlchan.so.$VERSION" ] || problems+=" libctrlchan.so is not a link to it;"
        readelf -d "$L/libctrlchan.so.$VERSION" 2>/dev/null | grep -q "Library soname: \[libctrlchan.so.$MAJOR\]" \
            || problems+=" SONAME is not libctrlchan.so.$MAJOR;"
        readelf -S --wide "$L/libctrlchan.so.$VERSION" 2>/dev/null | grep -Eq '\.(symtab|debug_[a-z]+) ' && problems+=" not stripped;"
        [ -f "$L/libctrlchan.a" ] || problems+=" no libctrlchan.a;"
        [ -f "$L/pkgconfig/ctrlchan.pc" ] || problems+=" no pkgconfig/ctrlchan.pc;"
        cmp -s "$STAGE/usr/include/ctrlchan.h" include/ctrlchan.h || problems+=" include/ctrlchan.h missing or different;"
        cmp -s "$STAGE/usr/include/ctrlchan.hpp" include/ctrlchan.hpp || problems+=" include/ctrlchan.hpp missing or different;"
        bash scripts/check-abi.sh "$L/libctrlchan.so.$VERSION" >"$WORK/abi-installed.log" 2>&1 || problems+=" installed symbols differ;"
        if [ -z "$problems" ]; then
            ok "installed: libctrlchan.so.$VERSION (SONAME libctrlchan.so.$MAJOR, $(du -k "$L/libctrlchan.so.$VERSION" | cut -f1) KiB, stripped) + links, libctrlchan.a ($(du -k "$L/libctrlchan.a" | cut -f1) KiB), ctrlchan.pc, include/ctrlchan.h + ctrlchan.hpp"
        else bad "installed files:$problems"; find "$STAGE" | sed 's/^/    /'; fi

        export PKG_CONFIG_SYSROOT_DIR="$STAGE" PKG_CONFIG_LIBDIR="$L/pkgconfig"
        if [ "$(pkg-config --modversion ctrlchan 2>/dev/null)" = "$VERSION" ] \
           && $CC -std=c99 -Wall "$WORK/quickstart.c" $(pkg-config --cflags --libs ctrlchan) -o "$WORK/qs-pc" >"$WORK/cc-pc.log" 2>&1; then
            QS_ENV=("LD_LIBRARY_PATH=$L")
            run_quickstart "quick start via pkg-config, installed libctrlchan.so.$MAJOR" "$WORK/qs-pc" "$PUSH_URL" \
                "push enabled" "push notification: msg 2"
            QS_ENV=()
            readelf -d "$WORK/qs-pc" | grep -q "Shared library: \[libctrlchan.so.$MAJOR\]" \
                && ok "the program records NEEDED libctrlchan.so.$MAJOR" || bad "the program does not need libctrlchan.so.$MAJOR"
        else bad "pkg-config ctrlchan ($(pkg-config --modversion ctrlchan 2>&1))"; show "$WORK/cc-pc.log"; fi
        if ${CXX:-c++} -std=c++17 -Wall -Wextra -Werror "$WORK/quickstart.cpp" $(pkg-config --cflags --libs ctrlchan) \
                -o "$WORK/qs-cpp" >"$WORK/cxx-pc.log" 2>&1; then
            QS_ENV=("LD_LIBRARY_PATH=$L")
            run_quickstart "C++ quick start via pkg-config, installed ctrlchan.hpp" "$WORK/qs-cpp" "$PUSH_URL" \
                "push enabled" "push notification: msg 2"
            QS_ENV=()
        else bad "C++ quick start with the installed headers"; show "$WORK/cxx-pc.log"; fi
        # -lctrlchan from the static archive, the rest (Libs.private) as pkg-config --static lists it
        if $CC -std=c99 -Wall "$WORK/quickstart.c" $(pkg-config --cflags ctrlchan) \
                $(pkg-config --static --libs ctrlchan | sed 's/-lctrlchan/-Wl,-Bstatic -lctrlchan -Wl,-Bdynamic/') \
                -o "$WORK/qs-pc-static" >"$WORK/cc-pc-static.log" 2>&1 && ! ldd "$WORK/qs-pc-static" | grep -q libctrlchan; then
            run_quickstart "quick start via pkg-config --static, installed libctrlchan.a" "$WORK/qs-pc-static" "$CLOSE_URL" \
                "push enabled" "channel ended: bye"
        else bad "static link with pkg-config --static"; show "$WORK/cc-pc-static.log"; fi
        unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR
    else
        bad "cargo cinstall"; show "$WORK/cinstall.log" 40
    fi
fi

echo "packaging: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
