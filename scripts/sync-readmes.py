#!/usr/bin/env python3
"""The Python package's README is a section of the main README, never a copy that drifts.

    python3 scripts/sync-readmes.py           write bindings/python/README.md from README.md
    python3 scripts/sync-readmes.py --check   exit 1 if bindings/python/README.md differs

The section is what README.md has between the `python-package-readme: begin` and `... end`
comments, under the title below. Edit README.md, never bindings/python/README.md; the Python
tests (tests/test_packaging.py) run --check.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAIN = REPO / "README.md"
PACKAGE = REPO / "bindings" / "python" / "README.md"
TITLE = "# ctrlchan for Python\n\n"
BEGIN = "<!-- python-package-readme: begin"
END = "<!-- python-package-readme: end -->"


def package_readme() -> str:
    text = MAIN.read_text(encoding="utf-8")
    start = text.index(BEGIN)
    start = text.index("\n", start) + 1
    end = text.index(END, start)
    return TITLE + text[start:end].strip("\n") + "\n"


def main() -> int:
    want = package_readme()
    if "--check" in sys.argv[1:]:
        have = PACKAGE.read_text(encoding="utf-8") if PACKAGE.exists() else ""
        if have != want:
            print(
                f"{PACKAGE.relative_to(REPO)} differs from the Python section of README.md: edit README.md, "
                "then run python3 scripts/sync-readmes.py",
                file=sys.stderr,
            )
            return 1
        print(f"{PACKAGE.relative_to(REPO)} matches README.md")
        return 0
    PACKAGE.write_text(want, encoding="utf-8")
    print(f"wrote {PACKAGE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
