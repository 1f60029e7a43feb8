"""Build the Krita plugin's release zip: ``python -m krita_plugin.build [--out DIR]`` writes
``DIR/singan_krita-<version>.zip`` (default ``dist/``) and prints its path.

The zip is what Tools > Scripts > Import Python Plugin from File expects (Krita's
``plugin_importer``: a ``.desktop`` naming the module, the module's folder with its
``__init__.py``, and an optional ``<module>.action``)::

    singan_krita.desktop
    singan_krita.action            the actions, for Settings > Configure Krita > Keyboard Shortcuts
    singan_krita/                  the package (krita_plugin/singan_krita)
    singan_krita/vendor/__init__.py
    singan_krita/vendor/protocol/  the protocol client (protocol.bundle.copy_client), msgpack from ..
    singan_krita/vendor/msgpack/   pure-Python msgpack (protocol.bundle.copy_pure_msgpack)
    singan_krita/vendor/wheels/    pyzmq wheels for Krita's Pythons (WHEELS), unpacked on first load

Needs ``pip download`` access to PyPI for the wheels the first time; they are kept in
``build/krita-wheels/`` (``--wheel-cache``) and reused.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from protocol.bundle import PYZMQ, copy_client, copy_pure_msgpack, download_wheel

from .singan_krita.actions import action_file

PACKAGE = "singan_krita"
SOURCE = Path(__file__).resolve().parent
REPO = SOURCE.parent

_MANYLINUX_X86_64 = ("manylinux_2_28_x86_64", "manylinux_2_26_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
WHEELS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("3.10", ("win_amd64",), "Krita 5.2 for Windows"),
    ("3.10", ("macosx_10_15_universal2", "macosx_11_0_universal2"), "Krita 5.2 for macOS"),
    ("3.10", _MANYLINUX_X86_64, "Krita 5.2 AppImage"),
    ("3.11", _MANYLINUX_X86_64, "Debian 12 Krita 5.1 (system Python 3.11)"),
    ("3.12", _MANYLINUX_X86_64, "Ubuntu 24.04 Krita (system Python 3.12; abi3, also later Pythons)"),
)
"""(Python version, pip platform tags, for whom) of each pyzmq wheel the zip carries."""


def project_version() -> str:
    """The installed ``singan-studio`` version, else the one in pyproject.toml."""
    try:
        return version("singan-studio")
    except PackageNotFoundError:
        import tomllib

        return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def cached_wheel(python: str, platforms: tuple[str, ...], cache: Path) -> Path:
    """The pinned pyzmq wheel for ``python`` on ``platforms``, from ``cache`` or downloaded into it.

    Raises:
        RuntimeError: pip could not fetch it (see :func:`protocol.bundle.download_wheel`).
    """
    folder = cache / f"{PYZMQ.replace('==', '-')}-py{python}-{platforms[0]}"
    found = sorted(folder.glob("*.whl"))
    if len(found) == 1:
        return found[0]
    shutil.rmtree(folder, ignore_errors=True)
    return download_wheel(PYZMQ, python, platforms, folder)


def stage(dest: Path, wheel_cache: Path) -> Path:
    """Lay out the zip's contents in ``dest`` (see the module docstring); returns ``dest``."""
    package = dest / PACKAGE
    shutil.copytree(SOURCE / PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "vendor"))
    shutil.copy2(SOURCE / f"{PACKAGE}.desktop", dest / f"{PACKAGE}.desktop")
    (dest / f"{PACKAGE}.action").write_text(action_file(), encoding="utf-8")
    vendor = package / "vendor"
    copy_client(vendor, private_msgpack=True)
    (vendor / "__init__.py").write_text(
        '"""The plugin\'s private copies of its dependencies (krita_plugin.build)."""\n'
    )
    copy_pure_msgpack(vendor)
    wheels = vendor / "wheels"
    wheels.mkdir()
    for python, platforms, _ in WHEELS:
        shutil.copy2(cached_wheel(python, platforms, wheel_cache), wheels)
    return dest


def write_zip(folder: Path, archive: Path) -> Path:
    """Zip ``folder``'s contents with an entry for every directory too (Krita's importer finds the
    package by its ``singan_krita/`` entry)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder).as_posix())
    return archive


def build(out: Path, wheel_cache: Path) -> Path:
    """Build ``out/singan_krita-<version>.zip``; returns its path."""
    with tempfile.TemporaryDirectory() as tmp:
        contents = stage(Path(tmp), wheel_cache)
        return write_zip(contents, out / f"{PACKAGE}-{project_version()}.zip")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m krita_plugin.build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="folder for the zip (default: dist/)")
    parser.add_argument(
        "--wheel-cache",
        type=Path,
        default=REPO / "build" / "krita-wheels",
        help="where downloaded pyzmq wheels are kept (default: build/krita-wheels/)",
    )
    args = parser.parse_args(argv)
    try:
        print(build(args.out, args.wheel_cache))
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
