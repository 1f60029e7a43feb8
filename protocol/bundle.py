"""Build time only: put the protocol client and its dependencies into a plugin package.

The Krita plugin and the Blender add-on carry their own copy of the client (``protocol/__init__.py``,
``errors.py``, ``wire.py``, ``auth.py``, ``client.py``, ``session.py``, ``requests.py``, ``advice.py``: pyzmq + msgpack only) because the host applications' Pythons have no
access to this project's environment. Their build commands (``python -m krita_plugin.build``,
``python -m blender_addon.build``) call these helpers; nothing here is imported by a plugin at run
time. Wheels are fetched with ``pip download`` (network access to PyPI or a mirror needed).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

CLIENT_MODULES = (
    "__init__.py",
    "errors.py",
    "wire.py",
    "auth.py",
    "client.py",
    "session.py",
    "requests.py",
    "advice.py",
)
"""The modules of this package that make up the client (no pydantic, numpy or torch)."""

PYZMQ = "pyzmq==27.3.0"
"""The pyzmq release the plugins ship for each host Python (binary wheels)."""
MSGPACK = "msgpack==1.2.4"
"""The msgpack release the plugins ship: binary wheels, or its pure-Python fallback modules."""

_MSGPACK_PURE_MODULES = ("__init__.py", "exceptions.py", "ext.py", "fallback.py")


_MSGPACK_IMPORT = "import msgpack\n"
_PRIVATE_MSGPACK_IMPORT = "from .. import msgpack  # the plugin's own copy, beside this package (protocol.bundle)\n"


def copy_client(dest: Path, private_msgpack: bool = False) -> Path:
    """Copy the client modules into ``dest/protocol`` (created; replaced if present).

    Args:
        private_msgpack: import msgpack as ``dest``'s sibling package (``from .. import msgpack``,
            see :func:`copy_pure_msgpack`) instead of a top-level ``msgpack``, so that neither the
            client nor msgpack becomes a top-level module of the host's shared interpreter (the
            Krita plugin's ``singan_krita.vendor``). ``dest`` must then be a package.

    Returns:
        The new package folder, importable as ``<dest package>.protocol`` or, with ``dest`` on
        ``sys.path`` (and ``private_msgpack`` False), as ``protocol``.

    """
    package = dest / "protocol"
    shutil.rmtree(package, ignore_errors=True)
    package.mkdir(parents=True)
    source = Path(__file__).resolve().parent
    for name in CLIENT_MODULES:
        text = (source / name).read_text(encoding="utf-8")
        if private_msgpack:
            text = text.replace(_MSGPACK_IMPORT, _PRIVATE_MSGPACK_IMPORT)
        (package / name).write_text(text, encoding="utf-8")
    return package


def copy_pure_msgpack(dest: Path) -> Path:
    """Copy the installed msgpack's pure-Python modules (its ``fallback`` implementation) into
    ``dest/msgpack``: importable on any Python >= 3.8 without a compiled extension (msgpack falls
    back to them when ``_cmsgpack`` is missing).

    Raises:
        FileNotFoundError: the installed msgpack lacks one of the modules.
    """
    import msgpack

    source = Path(msgpack.__file__).resolve().parent
    package = dest / "msgpack"
    shutil.rmtree(package, ignore_errors=True)
    package.mkdir(parents=True)
    for name in _MSGPACK_PURE_MODULES:
        shutil.copy2(source / name, package / name)
    return package


def download_wheel(requirement: str, python: str, platforms: Sequence[str], dest: Path) -> Path:
    """Fetch the one binary wheel of ``requirement`` for CPython ``python`` (``"3.11"``) on any of
    ``platforms`` (pip platform tags, e.g. ``win_amd64``, ``manylinux_2_28_x86_64``) into ``dest``.

    Returns:
        The wheel's path in ``dest``.

    Raises:
        RuntimeError: pip found no such wheel or could not reach the index (pip's last line).
    """
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            python,
            "--dest",
            tmp,
            *(arg for platform in platforms for arg in ("--platform", platform)),
            requirement,
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            why = (done.stderr.strip().splitlines() or [f"{len(wheels)} wheels downloaded"])[-1]
            raise RuntimeError(f"no {requirement} wheel for Python {python} on {', '.join(platforms)}: {why}")
        return Path(shutil.copy2(wheels[0], dest / wheels[0].name))
