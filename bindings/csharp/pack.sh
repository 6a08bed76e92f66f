#!/usr/bin/env bash
# Pack the C# binding as a NuGet package, with Mono's nuget (no .NET SDK needed):
#
#   bash bindings/csharp/pack.sh [--no-build] OUTDIR     ->  OUTDIR/CtrlChan.<version>.nupkg
#
# The package holds lib/netstandard2.0/CtrlChan.dll with its XML docs (CtrlChan.xml),
# runtimes/linux-x64/native/libctrlchan.so (the stripped release build), README.md
# (bindings/csharp/README.md, checked for links that would point outside the package) and
# the license texts. The version is Cargo.toml's. Debian's nuget is NuGet 2.8, which predates
# the <license> and <readme> manifest elements: they are added to the packed manifest afterwards.
# Installs mono-mcs/nuget through scripts/setup-mono.sh when missing. --no-build skips cargo.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CARGO_BUILD=1
OUT=""
for a in "$@"; do
    case "$a" in
        --no-build) CARGO_BUILD=0 ;;
        -*) echo "pack: unknown option $a" >&2; exit 2 ;;
        *) OUT="$a" ;;
    esac
done
[ -n "$OUT" ] || { echo "usage: bash bindings/csharp/pack.sh [--no-build] OUTDIR" >&2; exit 2; }
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
log() { echo "pack: $*"; }

if ! command -v mcs >/dev/null 2>&1 || ! command -v nuget >/dev/null 2>&1; then
    bash "$REPO/scripts/setup-mono.sh"
fi

VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n1)"
[ -n "$VERSION" ] || { log "no version in Cargo.toml"; exit 1; }
grep -q "AssemblyVersion(\"$VERSION.0\")" "$HERE/CtrlChan/AssemblyInfo.cs" || {
    log "CtrlChan/AssemblyInfo.cs: AssemblyVersion must be \"$VERSION.0\" (Cargo.toml says $VERSION)"; exit 1; }

if [ "$CARGO_BUILD" = 1 ]; then
    log "cargo build --release"
    (cd "$REPO" && cargo build --release --quiet)
fi
NATIVE="${CTRLCHAN_LIB_DIR:-$REPO/target/release}/libctrlchan.so"
[ -f "$NATIVE" ] || { log "$NATIVE missing: cargo build --release first"; exit 1; }

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/lib/netstandard2.0" "$STAGE/runtimes/linux-x64/native"

log "mcs CtrlChan.dll (optimised, XML docs)"
mcs -nologo -langversion:7 -warn:4 -warnaserror+ -nowarn:1591 -optimize+ -target:library -unsafe \
    -r:System.dll -r:System.Core.dll \
    -doc:"$STAGE/lib/netstandard2.0/CtrlChan.xml" -out:"$STAGE/lib/netstandard2.0/CtrlChan.dll" "$HERE"/CtrlChan/*.cs
cp "$NATIVE" "$STAGE/runtimes/linux-x64/native/libctrlchan.so"
strip --strip-unneeded "$STAGE/runtimes/linux-x64/native/libctrlchan.so" 2>/dev/null || true
cp "$HERE/README.md" "$STAGE/README.md"
cp "$REPO/LICENSE-MIT" "$STAGE/LICENSE-MIT.txt"
cp "$REPO/LICENSE-APACHE" "$STAGE/LICENSE-APACHE.txt"

# The README ships inside the package: every relative link must resolve inside it.
python3 - "$STAGE" <<'EOF'
import re, sys, pathlib
stage = pathlib.Path(sys.argv[1])
text = (stage / "README.md").read_text(encoding="utf-8")
bad = []
for target in re.findall(r"\]\(([^)\s]+)[^)]*\)", text):
    if re.match(r"^(https?:|mailto:|#)", target):
        continue
    p = (stage / target.split("#")[0]).resolve()
    if not str(p).startswith(str(stage.resolve()) + "/") or not p.exists():
        bad.append(target)
if bad:
    sys.exit("pack: README.md links outside the package: " + ", ".join(bad))
EOF

log "nuget pack (CtrlChan $VERSION)"
rm -f "$OUT/CtrlChan.$VERSION.nupkg"
# NuGet 2.8 warns that it does not know the netstandard2.0 folder name; the package is still right.
nuget pack "$HERE/CtrlChan.nuspec" -BasePath "$STAGE" -OutputDirectory "$OUT" -Properties "version=$VERSION" \
    -NoPackageAnalysis -NonInteractive >"$STAGE/nuget.log" 2>&1 || { cat "$STAGE/nuget.log"; exit 1; }
PKG="$OUT/CtrlChan.$VERSION.nupkg"
[ -f "$PKG" ] || { cat "$STAGE/nuget.log"; log "nuget produced no $PKG"; exit 1; }

python3 - "$PKG" <<'EOF'
import shutil, sys, zipfile
pkg = sys.argv[1]
tmp = pkg + ".tmp"
with zipfile.ZipFile(pkg) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
    for item in zin.infolist():
        data = zin.read(item.filename)
        if item.filename.endswith(".nuspec") and "/" not in item.filename:
            text = data.decode("utf-8")
            if "<license" not in text:
                text = text.replace(
                    "</description>",
                    "</description>\n    <license type=\"expression\">MIT OR Apache-2.0</license>"
                    "\n    <readme>README.md</readme>",
                    1,
                )
            data = text.encode("utf-8")
        zout.writestr(item, data)
shutil.move(tmp, pkg)
EOF
log "wrote $PKG ($(du -k "$PKG" | cut -f1) KiB)"
