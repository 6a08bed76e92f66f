#!/usr/bin/env bash
# Install the Mono toolchain the C# binding and its tests need (Debian/Ubuntu).
# Idempotent: a no-op when mcs, mono and nunit-console are already on PATH
# and the reference assemblies the tests compile against are present.
set -euo pipefail

# Packages: the compiler, the runtime, NUnit 2.6 (console runner + nunit.framework.dll,
# referenced with `mcs -pkg:nunit`), and the class libraries beyond mscorlib/System.dll
# that the binding and tests reference (System.Core for LINQ/Tasks helpers,
# System.Net.Http, Microsoft.CSharp for `dynamic`). System.Net.Sockets, Process,
# SafeHandle, DllImport and GCHandle live in mscorlib/System.dll (mono-runtime). nuget (NuGet
# 2.8 on Mono) packs and installs the CtrlChan package (bindings/csharp/pack.sh, test-package.sh).
# Checked on Debian 12: a SafeHandle/DllImport/async library plus NUnit fixture builds
# with `mcs -r:System.Core.dll -pkg:nunit` and runs under `nunit-console`.
PACKAGES=(
    mono-mcs
    mono-runtime
    nunit-console
    libnunit-cil-dev
    libmono-system-core4.0-cil
    libmono-system-net-http4.0-cil
    libmono-microsoft-csharp4.0-cil
    pkg-config
    nuget
)

have_all() {
    command -v mcs >/dev/null 2>&1 &&
    command -v mono >/dev/null 2>&1 &&
    command -v nunit-console >/dev/null 2>&1 &&
    command -v nuget >/dev/null 2>&1 &&
    [ -e /usr/lib/mono/4.5/System.Core.dll ] &&
    [ -e /usr/lib/mono/4.5/System.Net.Http.dll ] &&
    command -v pkg-config >/dev/null 2>&1 &&
    pkg-config --exists nunit
}

if have_all; then
    echo "setup-mono: mcs, mono and nunit-console present"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-mono: mono toolchain missing and apt-get not available;" >&2
    echo "            install mono (mcs, mono) and nunit-console 2.6 by hand" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
echo "setup-mono: installing ${PACKAGES[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"

if ! have_all; then
    echo "setup-mono: install finished but the toolchain is still incomplete" >&2
    exit 1
fi
echo "setup-mono: installed $(mono --version | head -n1)"
