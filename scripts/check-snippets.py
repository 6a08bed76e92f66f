#!/usr/bin/env python3
"""Every code snippet in the READMEs builds.

    python3 scripts/check-snippets.py [--lib-dir DIR] [--keep DIR] [FILE.md ...]

Default files: README.md, bindings/*/README.md, examples/*/README.md. Each fenced block is
checked by its info string (the word after the opening fence):

  c            a complete program: compiled and linked as C99 and again as C++
               (cc -std=c99 / c++ -std=c++17, both -Wall -Wextra -Werror -pedantic)
  cpp, c++     a complete program: compiled and linked as C++17 with the same warnings
  python       byte-compiled (py_compile)
  csharp, cs   a complete program: compiled with Mono's mcs against CtrlChan.dll (built from
               bindings/csharp/CtrlChan into a scratch folder)
  sh, text, …  not code to build: counted as not checked

A snippet that is deliberately not standalone says so with the word `fragment` in its info
string (```c fragment); it is reported as skipped. The run ends with the line
"snippets: N passed, N failed, N skipped" and exits non-zero if anything failed.
--keep DIR keeps the extracted sources and the built programs (named FILE-L<line>.<ext>).
"""

from __future__ import annotations

import argparse
import glob
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

REPO = Path(__file__).resolve().parent.parent
WARN = ["-Wall", "-Wextra", "-Werror", "-pedantic"]
FENCE = re.compile(r"^(```+|~~~+)\s*([^\s`]*)\s*(.*)$")

Snippet = Tuple[Path, int, str, List[str], str]  # file, first line, language, flags, code


def snippets(path: Path) -> List[Snippet]:
    out: List[Snippet] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, rest = m.group(1), m.group(2).lower(), m.group(3)
        start = i + 1
        j = start
        while j < len(lines) and not lines[j].startswith(fence):
            j += 1
        out.append((path, start + 1, lang, rest.split(), "\n".join(lines[start:j]) + "\n"))
        i = j + 1
    return out


def run(cmd: List[str], cwd: Optional[Path] = None) -> Tuple[bool, str]:
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode == 0, p.stdout


class Checker:
    def __init__(self, lib_dir: Path, work: Path) -> None:
        self.lib_dir = lib_dir
        self.work = work
        self.passed = self.failed = self.skipped = 0
        self.ctrlchan_dll: Optional[Path] = None
        self.dll_error = ""

    def report(self, ok: Optional[bool], where: str, what: str, output: str = "") -> None:
        if ok is None:
            self.skipped += 1
            print(f"skip {where} {what}")
        elif ok:
            self.passed += 1
            print(f"ok   {where} {what}")
        else:
            self.failed += 1
            print(f"FAIL {where} {what}")
            for line in output.rstrip().splitlines()[-40:]:
                print(f"    {line}")

    def link_flags(self) -> List[str]:
        return [f"-I{REPO / 'include'}", f"-L{self.lib_dir}", "-lctrlchan", f"-Wl,-rpath,{self.lib_dir}"]

    def c_family(self, src: Path, as_c: bool, as_cpp: bool, where: str) -> None:
        cc = os.environ.get("CC", "cc")
        cxx = os.environ.get("CXX", "c++")
        if as_c:
            ok, out = run([cc, "-std=c99", *WARN, "-o", str(src.with_suffix(".c99")), str(src), *self.link_flags()])
            self.report(ok, where, "C99 program", out)
        if as_cpp:
            ok, out = run(
                [cxx, "-x", "c++", "-std=c++17", *WARN, "-o", str(src.with_suffix(".cxx")), str(src), *self.link_flags()]
            )
            self.report(ok, where, "C++17 program", out)

    def build_ctrlchan_dll(self) -> Optional[Path]:
        if self.ctrlchan_dll or self.dll_error:
            return self.ctrlchan_dll
        if not shutil.which("mcs"):
            self.dll_error = "mcs not found (bash scripts/setup-mono.sh installs it)"
            return None
        dll = self.work / "CtrlChan.dll"
        sources = sorted(glob.glob(str(REPO / "bindings/csharp/CtrlChan/*.cs")))
        ok, out = run(["mcs", "-nologo", "-langversion:7", "-target:library", "-unsafe", "-r:System.Core.dll",
                       f"-out:{dll}", *sources])
        if not ok:
            self.dll_error = "CtrlChan.dll does not build:\n" + out
            return None
        self.ctrlchan_dll = dll
        return dll

    def csharp(self, src: Path, where: str) -> None:
        dll = self.build_ctrlchan_dll()
        if dll is None:
            self.report(False, where, "C# program", self.dll_error)
            return
        ok, out = run(["mcs", "-nologo", "-langversion:7", "-warnaserror+", "-target:exe", "-r:System.Core.dll",
                       f"-r:{dll}", f"-out:{src.with_suffix('.exe')}", str(src)])
        self.report(ok, where, "C# program (mcs)", out)

    def python(self, src: Path, where: str) -> None:
        try:
            py_compile.compile(str(src), cfile=str(src.with_suffix(".pyc")), doraise=True)
            self.report(True, where, "Python (py_compile)")
        except py_compile.PyCompileError as exc:
            self.report(False, where, "Python (py_compile)", str(exc))

    def check(self, snip: Snippet) -> None:
        path, line, lang, flags, code = snip
        rel = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        where = f"{rel}:{line}"
        stem = f"{str(rel).replace('/', '_').removesuffix('.md')}-L{line}"
        if "fragment" in flags:
            self.report(None, where, f"{lang} (marked fragment: not standalone, not built)")
            return
        if lang == "c":
            src = self.work / f"{stem}.c"
            src.write_text(code)
            self.c_family(src, True, True, where)
        elif lang in ("cpp", "c++", "cxx"):
            src = self.work / f"{stem}.cpp"
            src.write_text(code)
            self.c_family(src, False, True, where)
        elif lang in ("python", "py", "python3"):
            src = self.work / f"{stem}.py"
            src.write_text(code)
            self.python(src, where)
        elif lang in ("csharp", "cs", "c#"):
            src = self.work / f"{stem}.cs"
            src.write_text(code)
            self.csharp(src, where)
        else:
            print(f"--   {where} {lang or 'plain'} block: not code to build")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--lib-dir", type=Path,
                    default=Path(os.environ.get("CTRLCHAN_LIB_DIR", REPO / "target" / "release")))
    ap.add_argument("--keep", type=Path, help="keep sources and programs in this directory")
    args = ap.parse_args()
    files = [p.resolve() for p in args.files] or [
        REPO / "README.md",
        *sorted(Path(p) for p in glob.glob(str(REPO / "bindings/*/README.md"))),
        *sorted(Path(p) for p in glob.glob(str(REPO / "examples/*/README.md"))),
    ]
    lib = args.lib_dir / "libctrlchan.so"
    if not lib.exists():
        print(f"snippets: {lib} not found: run cargo build --release first")
        print("snippets: 0 passed, 1 failed")
        return 1
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        work = args.keep.resolve()
        cleanup = None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="ctrlchan-snippets-")
        work = Path(cleanup.name)
    checker = Checker(args.lib_dir.resolve(), work)
    for f in files:
        for snip in snippets(f):
            checker.check(snip)
    if cleanup:
        cleanup.cleanup()
    print(f"snippets: {checker.passed} passed, {checker.failed} failed, {checker.skipped} skipped")
    return 1 if checker.failed or checker.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
