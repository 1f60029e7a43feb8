"""Pack the Blender extension: ``python -m blender_addon.build [--out DIR]``.

Writes ``DIR/singan_studio-<version>.zip`` (default ``dist/``): the sources of
``blender_addon/singan_studio`` with ``blender_manifest.toml`` at the zip's root, the protocol client
as the subpackage ``protocol`` (:func:`protocol.bundle.copy_client`), and pyzmq and msgpack wheels
for CPython 3.11 on every platform of :data:`TARGETS` in ``wheels/``, listed in the manifest's
``wheels`` (Blender installs the ones for its platform). ``version`` is the project's. Needs
network access to PyPI (or pip's cache) for the wheels.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import zipfile
from importlib.metadata import version as installed_version
from pathlib import Path

from protocol.bundle import MSGPACK, PYZMQ, copy_client, download_wheel

SOURCE = Path(__file__).resolve().parent / "singan_studio"
EXTENSION_ID = "singan_studio"
PYTHON = "3.11"
"""The Python of Blender 4.2 to 5.0."""
TARGETS = {
    "linux-x64": ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64"),
    "windows-x64": ("win_amd64",),
    "macos-arm64": ("macosx_11_0_arm64",),
    "macos-x64": ("macosx_10_15_x86_64",),
}
"""Blender platform -> pip platform tags its wheels may have. pyzmq 27.3 ships one universal2
wheel for both macOS platforms and a manylinux_2_28 one for Linux; msgpack 1.2.4 one per platform."""


def fetch_wheels(dest: Path) -> list[str]:
    """Download the pyzmq and msgpack wheels of every target into ``dest``.

    Returns:
        Their file names, sorted, each once (a universal2 wheel serves two targets).

    Raises:
        RuntimeError: a wheel is missing for a target, or PyPI cannot be reached.
    """
    names = {
        download_wheel(requirement, PYTHON, tags, dest).name
        for requirement in (PYZMQ, MSGPACK)
        for tags in TARGETS.values()
    }
    return sorted(names)


def manifest(text: str, version: str, wheels: list[str]) -> str:
    """The source manifest with its ``version`` and ``wheels`` lines filled in.

    Raises:
        ValueError: the source lacks one of those lines (exactly one of each is expected).
    """
    wheel_list = "[\n" + "".join(f'  "./wheels/{name}",\n' for name in wheels) + "]"
    for key, value in (("version", f'"{version}"'), ("wheels", wheel_list)):
        text, count = re.subn(rf"^{key} = .*$", lambda _, line=f"{key} = {value}": line, text, flags=re.MULTILINE)
        if count != 1:
            raise ValueError(f"blender_manifest.toml: expected one '{key} = ' line, found {count}")
    return text


def build(out: Path) -> Path:
    """Make the extension zip in ``out`` (created).

    Returns:
        The zip's path, ``out/singan_studio-<version>.zip``.

    Raises:
        RuntimeError: the wheels cannot be fetched.
    """
    version = installed_version("singan-studio")
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / EXTENSION_ID
        shutil.copytree(SOURCE, stage, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        copy_client(stage)
        wheels = fetch_wheels(stage / "wheels")
        manifest_path = stage / "blender_manifest.toml"
        manifest_path.write_text(manifest(manifest_path.read_text(), version, wheels))
        out.mkdir(parents=True, exist_ok=True)
        archive = out / f"{EXTENSION_ID}-{version}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(stage.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(stage).as_posix())
    return archive


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m blender_addon.build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("dist"), help="folder for the zip (default: dist)")
    args = parser.parse_args(argv)
    print(build(args.out))


if __name__ == "__main__":
    main()
