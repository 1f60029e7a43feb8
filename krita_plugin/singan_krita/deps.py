"""The plugin's own dependencies, shipped inside it: the protocol client, a pure-Python msgpack and
pyzmq wheels (built by ``python -m krita_plugin.build``). Krita's bundled Python on Windows, macOS
and the AppImage has no pyzmq, and Linux distributions' Kritas may lack it, so on first load the
wheel that fits the running interpreter is unpacked (zipfile) into the plugin's folder and put at
the front of ``sys.path``: the shipped pyzmq is used even where another one is installed. The
client and msgpack are not put on ``sys.path``: they are the subpackages
``singan_krita.vendor.protocol`` and ``singan_krita.vendor.msgpack`` (:mod:`.daemon_client`), private
to the plugin, so another plugin's ``protocol`` or ``msgpack`` cannot clash with them.

Layout of the built package (``vendor/`` inside ``singan_krita/``)::

    vendor/__init__.py  makes vendor/ a subpackage
    vendor/protocol/    the client (protocol/__init__.py, errors.py, wire.py, client.py; msgpack imported from ..)
    vendor/msgpack/     msgpack's pure-Python fallback modules
    vendor/wheels/      pyzmq-<version>-<python>-<abi>-<platform>.whl for each supported Krita Python
    vendor/unpacked/    <wheel name>/: the wheel unpacked on first load (created at run time)
    vendor/site/        where the user installs pyzmq by hand if no wheel fits (see :class:`Deps`)

No ``krita`` or Qt import: tested in the project's environment.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_WINDOWS_PLATFORMS = {"amd64": "win_amd64", "x86_64": "win_amd64", "arm64": "win_arm64", "x86": "win32"}


@dataclass(frozen=True)
class Host:
    """What decides which wheel fits: the interpreter and the platform.

    Attributes:
        python: (major, minor) of the running CPython, e.g. (3, 11).
        implementation: ``sys.implementation.name`` (wheels here are for ``cpython`` only).
        system: ``linux``, ``windows`` or ``darwin``.
        machine: lower-case architecture, e.g. ``x86_64``, ``amd64``, ``arm64``, ``aarch64``.
        glibc: (major, minor) of the C library on glibc Linux, else None.
        macos: (major, minor) of macOS, else None.
    """

    python: tuple[int, int]
    implementation: str
    system: str
    machine: str
    glibc: tuple[int, int] | None = None
    macos: tuple[int, int] | None = None

    @classmethod
    def current(cls) -> Host:
        """The running interpreter and machine."""
        system = {"win32": "windows", "darwin": "darwin"}.get(sys.platform, sys.platform)
        macos = _version_pair(platform.mac_ver()[0]) if system == "darwin" else None
        return cls(sys.version_info[:2], sys.implementation.name, system, platform.machine().lower(), _glibc(), macos)

    def describe(self) -> str:
        """E.g. ``CPython 3.11 on linux x86_64``."""
        return f"{'CPython' if self.implementation == 'cpython' else self.implementation} {self.python[0]}.{self.python[1]} on {self.system} {self.machine}"


def _version_pair(text: str) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2])) if match else None


def _glibc() -> tuple[int, int] | None:
    try:
        name, _, version = (os.confstr("CS_GNU_LIBC_VERSION") or "").partition(" ")
    except (AttributeError, ValueError, OSError):  # not a glibc system (Windows, macOS, musl)
        return None
    return _version_pair(version) if name == "glibc" else None


def _cpython_version(tag: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"cp(\d)(\d+)", tag)
    return (int(match[1]), int(match[2])) if match else None


def _python_fits(python_tag: str, abi_tag: str, host: Host) -> bool:
    version = _cpython_version(python_tag)
    if version is None or host.implementation != "cpython":
        return False
    if abi_tag == "abi3":  # the stable ABI: this CPython version and every later one
        return version <= host.python
    return version == host.python and abi_tag in (python_tag, "none")


def _platform_fits(tag: str, host: Host) -> bool:
    if host.system == "windows":
        return tag == _WINDOWS_PLATFORMS.get(host.machine)
    if host.system == "linux":
        match = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", tag)
        if match:
            needed, arch = (int(match[1]), int(match[2])), match[3]
        else:
            legacy, _, arch = tag.partition("_")
            if legacy not in _LEGACY_MANYLINUX:
                return False
            needed = _LEGACY_MANYLINUX[legacy]
        return host.glibc is not None and host.glibc >= needed and arch == host.machine
    if host.system == "darwin":
        match = re.fullmatch(r"macosx_(\d+)_(\d+)_(\w+)", tag)
        return bool(
            match
            and host.macos is not None
            and (int(match[1]), int(match[2])) <= host.macos
            and match[3] in (host.machine, "universal2")
        )
    return False


def wheel_fits(filename: str, host: Host) -> bool:
    """Whether a wheel named ``filename`` (PEP 427: ``name-version[-build]-python-abi-platform.whl``,
    each tag possibly dotted, e.g. ``manylinux_2_26_x86_64.manylinux_2_28_x86_64``) installs on ``host``."""
    parts = filename[: -len(".whl")].split("-") if filename.endswith(".whl") else []
    if len(parts) not in (5, 6):
        return False
    pythons, abis, platforms = (tags.split(".") for tags in parts[-3:])
    return any(_python_fits(p, a, host) for p in pythons for a in abis) and any(
        _platform_fits(p, host) for p in platforms
    )


def pick_wheel(wheels: Iterable[Path], host: Host) -> Path | None:
    """The first wheel (by name) that fits ``host``, or None."""
    return next((wheel for wheel in sorted(wheels) if wheel_fits(wheel.name, host)), None)


def unpack(wheel: Path, root: Path) -> Path:
    """``root/<wheel name without .whl>``, unpacked from ``wheel`` unless it already is. Atomic: the
    wheel is extracted beside it and renamed, so a half-unpacked folder is never used.

    Raises:
        OSError: ``root`` is not writable. zipfile.BadZipFile: a damaged wheel.
    """
    target = root / wheel.name[: -len(".whl")]
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f".{target.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(partial)
    try:
        partial.rename(target)
    except OSError:  # another Krita unpacked it meanwhile
        shutil.rmtree(partial, ignore_errors=True)
        if not target.is_dir():
            raise
    return target


@dataclass(frozen=True)
class Deps:
    """What :func:`activate` found.

    Attributes:
        zmq: ``pyzmq <version> (<where it was imported from>)``, or None if it cannot be imported.
        problem: None, or what the user must do: exactly what to install and where.
    """

    zmq: str | None
    problem: str | None = None


def install_hint(host: Host, site: Path, requirement: str) -> str:
    """The message shown when no bundled wheel fits and ``import zmq`` fails: a pip command that
    installs ``requirement`` (e.g. ``pyzmq==27.3.0``) for this Krita's Python into ``site``."""
    version = f"{host.python[0]}.{host.python[1]}"
    return (
        f"SinGAN Studio needs pyzmq, and none of the pyzmq builds inside the plugin fits this Krita's "
        f"Python ({host.describe()}). Install it into the plugin's folder with any Python 3 that has pip, "
        f"on this computer:\n"
        f'python3 -m pip install --target "{site}" --only-binary=:all: --python-version {version} {requirement}\n'
        f"then restart Krita."
    )


def _requirement(wheels: Iterable[Path]) -> str:
    versions = {wheel.name.split("-")[1] for wheel in wheels}
    return f"pyzmq=={versions.pop()}" if len(versions) == 1 else "pyzmq"


def activate(package_dir: Path, host: Host | None = None) -> Deps:
    """Make ``import zmq`` use the pyzmq in ``package_dir/vendor`` (first on ``sys.path``: the
    fitting wheel, unpacked if needed, else ``vendor/site``).

    Returns:
        :class:`Deps`; ``problem`` is set (never raised) when pyzmq cannot be imported.
    """
    host = host or Host.current()
    vendor = package_dir / "vendor"
    wheels = list((vendor / "wheels").glob("pyzmq-*.whl"))
    paths = [vendor / "site"]
    wheel = pick_wheel(wheels, host)
    problem = None
    if wheel is not None:
        try:
            paths.insert(0, unpack(wheel, vendor / "unpacked"))
        except (OSError, zipfile.BadZipFile) as exc:
            problem = f"SinGAN Studio could not unpack its pyzmq ({wheel.name}) into {vendor / 'unpacked'}: {exc}"
    for path in reversed(paths):
        if str(path) in sys.path:
            sys.path.remove(str(path))
        sys.path.insert(0, str(path))
    try:
        import zmq
    except ImportError:
        return Deps(None, problem or install_hint(host, vendor / "site", _requirement(wheels)))
    return Deps(f"pyzmq {zmq.__version__} ({Path(zmq.__file__).parent})", problem)
