#!/usr/bin/env bash
# The NuGet package as a user gets it (run by run-tests.sh; also runnable alone):
#   1. bash pack.sh --no-build  -> CtrlChan.VERSION.nupkg; check what it holds;
#   2. `nuget install CtrlChan` from that local folder source into a scratch folder;
#   3. compile the README's QuickStart.cs against the installed lib/netstandard2.0/CtrlChan.dll
#      with mcs, lay it out as the README says (CtrlChan.dll + libctrlchan.so next to the exe)
#      and run it under Mono against the test peer (a push arrives);
#   4. the same program without libctrlchan.so anywhere fails with a DllNotFoundException that
#      names every path tried.
# Prints "csharp-package: N passed, N failed" last; exit status non-zero on any failure.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PY="${CTRLCHAN_PYTHON:-$REPO/.venv/bin/python}"
WORK="$(mktemp -d)"
SRV_PID=""
cleanup() {
    exec 7>&- 2>/dev/null || true
    [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
pass=0
fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n1)"

# 1. pack
if bash "$HERE/pack.sh" --no-build "$WORK/feed" >"$WORK/pack.log" 2>&1; then
    ok "pack.sh made CtrlChan.$VERSION.nupkg ($(du -k "$WORK/feed/CtrlChan.$VERSION.nupkg" | cut -f1) KiB)"
else
    bad "pack.sh"; sed 's/^/    /' "$WORK/pack.log"
    echo "csharp-package: $pass passed, $fail failed"; exit 1
fi
NUPKG="$WORK/feed/CtrlChan.$VERSION.nupkg"
if python3 - "$NUPKG" "$WORK/unpacked" <<'EOF'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = set(z.namelist())
want = {"lib/netstandard2.0/CtrlChan.dll", "lib/netstandard2.0/CtrlChan.xml",
        "runtimes/linux-x64/native/libctrlchan.so", "README.md", "LICENSE-MIT.txt",
        "LICENSE-APACHE.txt", "CtrlChan.nuspec"}
missing = want - names
nuspec = z.read("CtrlChan.nuspec").decode()
problems = [f"missing {m}" for m in sorted(missing)]
for needle in ('<license type="expression">MIT OR Apache-2.0</license>', "<readme>README.md</readme>"):
    if needle not in nuspec:
        problems.append(f"nuspec lacks {needle}")
if b"<member name=" not in z.read("lib/netstandard2.0/CtrlChan.xml"):
    problems.append("CtrlChan.xml has no documentation members")
z.extract("runtimes/linux-x64/native/libctrlchan.so", sys.argv[2])
if problems:
    sys.exit("; ".join(problems))
print("    " + ", ".join(sorted(names)))
EOF
then
    if readelf -S --wide "$WORK/unpacked/runtimes/linux-x64/native/libctrlchan.so" | grep -Eq '\.(symtab|debug_info) '; then
        bad "runtimes/linux-x64/native/libctrlchan.so is not stripped"
    else ok "package contents (DLL + XML docs, native library stripped, README, licenses, license/readme metadata)"; fi
else bad "package contents"; fi

# 2. install from the local folder source
if (cd "$WORK" && nuget install CtrlChan -Version "$VERSION" -Source "$WORK/feed" -OutputDirectory "$WORK/packages" \
        -NonInteractive >"$WORK/install.log" 2>&1) && [ -f "$WORK/packages/CtrlChan.$VERSION/lib/netstandard2.0/CtrlChan.dll" ]; then
    ok "nuget install CtrlChan -Source <folder>"
else
    bad "nuget install"; sed 's/^/    /' "$WORK/install.log"
    echo "csharp-package: $pass passed, $fail failed"; exit 1
fi
PKGDIR="$WORK/packages/CtrlChan.$VERSION"

# 3. the README's QuickStart.cs, compiled against the installed package
python3 - "$HERE/README.md" "$WORK/QuickStart.cs" <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r"^```csharp\n(// QuickStart\.cs\n.*?)^```", text, re.S | re.M)
if not m:
    sys.exit("README.md has no ```csharp block starting with // QuickStart.cs")
open(sys.argv[2], "w").write(m.group(1))
EOF
mkdir -p "$WORK/app" "$WORK/app-nolib"
if mcs -nologo -langversion:7 -r:"$PKGDIR/lib/netstandard2.0/CtrlChan.dll" -out:"$WORK/app/QuickStart.exe" \
        "$WORK/QuickStart.cs" >"$WORK/mcs.log" 2>&1; then
    ok "mcs QuickStart.cs -r:<package>/lib/netstandard2.0/CtrlChan.dll"
else
    bad "mcs QuickStart.cs"; sed 's/^/    /' "$WORK/mcs.log"
fi
cp "$PKGDIR/lib/netstandard2.0/CtrlChan.dll" "$PKGDIR/runtimes/linux-x64/native/libctrlchan.so" "$WORK/app/"
cp "$WORK/app/QuickStart.exe" "$PKGDIR/lib/netstandard2.0/CtrlChan.dll" "$WORK/app-nolib/" 2>/dev/null || true

mkfifo "$WORK/srv.in"
"$PY" "$REPO/tests/peer/server.py" --port 0 <"$WORK/srv.in" >"$WORK/srv.out" 2>&1 &
SRV_PID=$!
exec 7>"$WORK/srv.in"
for _ in $(seq 1 100); do grep -q '^PORT' "$WORK/srv.out" 2>/dev/null && break; sleep 0.1; done
PORT="$(awk '/^PORT/{print $2; exit}' "$WORK/srv.out")"
if [ -z "$PORT" ]; then
    bad "test peer did not start"; sed 's/^/    /' "$WORK/srv.out"
else
    (cd "$WORK/app" && env -u LD_LIBRARY_PATH -u CTRLCHAN_LIBRARY timeout 60 mono QuickStart.exe \
        "ws://127.0.0.1:$PORT/push?n=3&interval_ms=100" 2) >"$WORK/run.log" 2>&1 || true
    if grep -q "WaitForPushEnabled: SoftwareSlotAllocated" "$WORK/run.log" && grep -q "push: msg 2" "$WORK/run.log"; then
        ok "mono QuickStart.exe from the installed package: push enabled, pushes received"
    else
        bad "mono QuickStart.exe"; sed 's/^/    /' "$WORK/run.log"
    fi
fi

# 4. no native library anywhere: the error names the paths tried
(cd "$WORK/app-nolib" && env -u LD_LIBRARY_PATH -u CTRLCHAN_LIBRARY timeout 60 mono QuickStart.exe "ws://127.0.0.1:1/" 1) \
    >"$WORK/nolib.log" 2>&1 && rc=0 || rc=$?
if [ "$rc" -ne 0 ] && grep -q "DllNotFoundException: cannot load the ctrlchan native library libctrlchan.so; tried:" "$WORK/nolib.log" \
        && grep -q "$WORK/app-nolib/libctrlchan.so" "$WORK/nolib.log"; then
    ok "without libctrlchan.so: DllNotFoundException listing every path tried"
else
    bad "missing-library error (exit $rc)"; sed 's/^/    /' "$WORK/nolib.log" | head -20
fi

echo "csharp-package: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
