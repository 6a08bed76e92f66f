"""Build hook: put libctrlchan.so inside the package, and tag the wheel py3-none-<platform>.

The package has no Python extension module: ``ctrlchan._ffi`` loads the plain C library
with ctypes, so one wheel serves every Python >= 3.8 on a platform. The wheel is tagged
``py3-none-linux_x86_64`` (``bdist_wheel_py3_none`` below); ``build-wheel.sh`` then has
auditwheel check it and retag it ``manylinux_*``.

Where the library comes from:

* ``CTRLCHAN_PREBUILT_LIBRARY=/path/to/libctrlchan.so`` (what ``build-wheel.sh`` does): that
  file is copied into the package; no cargo involved.
* otherwise setuptools-rust builds the crate two directories up (``Binding.NoBinding``: a plain
  C library, no module init) with cargo and installs it under its real name, ``libctrlchan.so``
  (setuptools-rust would otherwise add the CPython extension suffix). Cargo reuses the
  repository's ``target/`` directory, so a rebuild after a small change is incremental.
  ``CTRLCHAN_CARGO_PROFILE=debug`` builds without optimisations.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
CRATE = HERE.parent.parent / "Cargo.toml"
PREBUILT = os.environ.get("CTRLCHAN_PREBUILT_LIBRARY")

if sys.platform == "darwin":
    LIB_NAME = "libctrlchan.dylib"
elif sys.platform == "win32":
    LIB_NAME = "ctrlchan.dll"
else:
    LIB_NAME = "libctrlchan.so"


class bdist_wheel_py3_none(bdist_wheel):  # noqa: N801 - setuptools command naming
    """A platform wheel (it carries a native library) that is not tied to a CPython ABI."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> Tuple[str, str, str]:
        _, _, plat = super().get_tag()
        return "py3", "none", plat


class BinaryDistribution(Distribution):
    """Says it has native code, so the library lands in platlib and the wheel is not "pure"."""

    def has_ext_modules(self) -> bool:
        return True


class build_py_with_library(build_py):  # noqa: N801
    """Copies $CTRLCHAN_PREBUILT_LIBRARY into the built package."""

    def run(self) -> None:
        super().run()
        if PREBUILT:
            dest = Path(self.build_lib) / "ctrlchan" / LIB_NAME
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(PREBUILT, dest)
            os.chmod(dest, 0o755)


cmdclass: Dict[str, Any] = {"bdist_wheel": bdist_wheel_py3_none, "build_py": build_py_with_library}
extra: Dict[str, Any] = {}

if PREBUILT:
    if not Path(PREBUILT).is_file():
        sys.exit(f"ctrlchan: CTRLCHAN_PREBUILT_LIBRARY={PREBUILT} is not a file")
else:
    from setuptools_rust import Binding, RustExtension
    from setuptools_rust.build import build_rust

    class build_rust_cdylib(build_rust):  # noqa: N801 - setuptools command naming
        """``build_rust`` that names the installed C library as the loader expects."""

        def get_dylib_ext_path(self, ext: RustExtension, target_fname: str) -> str:
            default = super().get_dylib_ext_path(ext, target_fname)
            return os.path.join(os.path.dirname(default), LIB_NAME)

    if not CRATE.is_file():
        sys.exit(
            f"ctrlchan: the Rust crate is not at {CRATE}; install a wheel made by "
            "bindings/python/build-wheel.sh, install from a checkout of the repository "
            "(pip install ./bindings/python), or set CTRLCHAN_PREBUILT_LIBRARY to a built libctrlchan.so."
        )
    rust_extensions: List[RustExtension] = [
        RustExtension(
            "ctrlchan.libctrlchan",
            path=os.path.relpath(CRATE, HERE),
            binding=Binding.NoBinding,
            debug=os.environ.get("CTRLCHAN_CARGO_PROFILE") == "debug",
            py_limited_api=False,
        )
    ]
    extra["rust_extensions"] = rust_extensions
    cmdclass["build_rust"] = build_rust_cdylib

setup(cmdclass=cmdclass, distclass=BinaryDistribution, **extra)
