"""Build hook: compile the Rust crate (two directories up) and put libctrlchan.so in the package.

setuptools-rust builds the crate's cdylib with ``Binding.NoBinding`` (a plain C library,
no Python module init). Its default file name would carry the CPython extension suffix
(``libctrlchan.cpython-311-x86_64-linux-gnu.so``); the library is not a Python extension
module, so ``build_rust`` is told to install it under its real name, ``libctrlchan.so``,
which is what ``ctrlchan._ffi`` loads.

Cargo reuses the repository's ``target/`` directory, so a rebuild after a small change
is incremental. ``CTRLCHAN_CARGO_PROFILE=debug`` builds without optimisations.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools_rust import Binding, RustExtension
from setuptools_rust.build import build_rust

HERE = Path(__file__).resolve().parent
CRATE = HERE.parent.parent / "Cargo.toml"

if sys.platform == "darwin":
    LIB_NAME = "libctrlchan.dylib"
elif sys.platform == "win32":
    LIB_NAME = "ctrlchan.dll"
else:
    LIB_NAME = "libctrlchan.so"


class build_rust_cdylib(build_rust):  # noqa: N801 - setuptools command naming
    """``build_rust`` that names the installed C library as the loader expects."""

    def get_dylib_ext_path(self, ext: RustExtension, target_fname: str) -> str:
        default = super().get_dylib_ext_path(ext, target_fname)
        return os.path.join(os.path.dirname(default), LIB_NAME)


if not CRATE.is_file():
    sys.exit(
        f"ctrlchan: the Rust crate is not at {CRATE}; install from a checkout of the "
        "repository (pip install ./bindings/python), or set CTRLCHAN_LIBRARY at run time "
        "and use the pure-Python sources."
    )

setup(
    rust_extensions=[
        RustExtension(
            "ctrlchan.libctrlchan",
            path=os.path.relpath(CRATE, HERE),
            binding=Binding.NoBinding,
            debug=os.environ.get("CTRLCHAN_CARGO_PROFILE") == "debug",
            py_limited_api=False,
        )
    ],
    cmdclass={"build_rust": build_rust_cdylib},
)
