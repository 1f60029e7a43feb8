"""Helpers for the Blender harness scripts (run with the bpy venv's python, see
tests/test_blender_addon.py). Each script installs the built extension zip the way a user does,
drives the add-on, and writes what it saw to a JSON file for the test to check."""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from pathlib import Path

import bpy

EXTENSION = "bl_ext.user_default.singan_studio"


def install(zip_path: str):
    """Install and enable the extension zip into the user repository (a throw-away user dir set
    up by the test's environment variables) and return the add-on's package."""
    result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    if result != {"FINISHED"}:
        raise RuntimeError(f"package_install_files returned {result}")
    return importlib.import_module(EXTENSION)


def enable():
    """Enable the extension installed by install.py (in this fresh process) and return its package."""
    result = bpy.ops.preferences.addon_enable(module=EXTENSION)
    if result != {"FINISHED"}:
        raise RuntimeError(f"addon_enable returned {result}")
    return importlib.import_module(EXTENSION)


def wire_modules() -> dict:
    """Where pyzmq and msgpack were imported from, and the extensions' wheel folder."""
    import msgpack
    import zmq

    site_packages = Path(bpy.utils.user_resource("EXTENSIONS"), ".local", "lib", "python3.11", "site-packages")
    return {"zmq": zmq.__file__, "msgpack": msgpack.__file__, "wheels_site_packages": str(site_packages)}


def preferences():
    return bpy.context.preferences.addons[EXTENSION].preferences


def call_operator(operator, **kwargs) -> dict:
    """Run an operator (EXEC), timing it; its ERROR report comes back as the RuntimeError bpy.ops raises."""
    started = time.monotonic()
    try:
        result, error = sorted(operator(**kwargs)), None
    except RuntimeError as exc:
        result, error = None, str(exc)
    return {"result": result, "error": error, "seconds": time.monotonic() - started}


def main(body) -> None:
    """Run ``body(args, out)`` with ``out`` a dict written as JSON to the last argument, also when
    it raises (``out["traceback"]``); exit 0 either way (the test reads the JSON)."""
    args, out_path = sys.argv[1:-1], Path(sys.argv[-1])
    out: dict = {}
    try:
        body(args, out)
    except BaseException:
        out["traceback"] = traceback.format_exc()
    out_path.write_text(json.dumps(out, indent=1, default=str))
