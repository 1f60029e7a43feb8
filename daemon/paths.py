"""Where the application keeps its files by default (platformdirs): the model store and the logs.

The library (:mod:`singan_core`) never chooses a location; the CLI and the daemon pass paths to it.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "singan-studio"


def default_store() -> Path:
    """The daemon's store when ``--store`` is not given: the user data directory
    (e.g. ``~/.local/share/singan-studio`` on Linux); models live in its ``models/``."""
    return platformdirs.user_data_path(APP_NAME)


def default_model_dir(name: str) -> Path:
    """``<user data dir>/models/<name>``, e.g. ``~/.local/share/singan-studio/models/<name>`` on Linux."""
    return default_store() / "models" / name


def default_log_file() -> Path:
    """The daemon's log file when ``--log-file`` is not given (e.g. ``~/.local/state/singan-studio/log/daemon.log``)."""
    return platformdirs.user_log_path(APP_NAME) / "daemon.log"
