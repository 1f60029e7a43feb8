"""The full ``singan`` command: the core's commands (:mod:`singan_core.cli`) plus ``serve``
(the daemon), ``protocol schema`` and ``demo`` (the whole chain through a daemon).

Installed as ``singan`` and, for ``singan serve``, as ``singan-daemon``.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from pathlib import Path
from typing import Annotated, Optional

import platformdirs
import typer

from protocol import DEFAULT_ENDPOINT
from singan_core.cli import DEFAULT_PRESET, DeviceOpt, PresetName, app
from singan_core.cli import main as _core_main
from singan_core.workflow import APP_NAME

from .server import Daemon, DaemonConfig

protocol_app = typer.Typer(help="The daemon's wire protocol (docs/protocol.md).", no_args_is_help=True)
app.add_typer(protocol_app, name="protocol")


@protocol_app.command("schema")
def protocol_schema(
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write to this file instead of stdout.", show_default=False)] = None,
) -> None:
    """Print the JSON Schema of every request and reply."""
    from protocol.schema import json_schema

    text = json.dumps(json_schema(), indent=2)
    if out is None:
        print(text)
    else:
        out.write_text(text + "\n")


def _setup_logging(level: str, log_file: Path | None) -> Path:
    log_file = log_file or platformdirs.user_log_path(APP_NAME) / "daemon.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=5 * 1024**2, backupCount=3)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr), file_handler]
    logging.basicConfig(level=level.upper(), handlers=handlers, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    return log_file


@app.command()
def serve(
    endpoint: Annotated[str, typer.Option(help="ZeroMQ endpoint to bind; tcp://127.0.0.1:* picks a free port.")] = DEFAULT_ENDPOINT,
    store: Annotated[Optional[Path], typer.Option(help="Model store (default: the user data dir, e.g. ~/.local/share/singan-studio).", show_default=False)] = None,
    watch: Annotated[Optional[Path], typer.Option(help="Train every image that appears in this folder.", show_default=False)] = None,
    watch_preset: Annotated[PresetName, typer.Option(help="Preset for the watched folder's trainings.")] = PresetName(DEFAULT_PRESET),
    debounce: Annotated[float, typer.Option(min=0.1, max=600, help="Seconds a watched file must stay unchanged before training.")] = 2.0,
    device: DeviceOpt = "auto",
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a non-loopback endpoint (needs --token).")] = False,
    token: Annotated[Optional[str], typer.Option(envvar="SINGAN_TOKEN", help="Shared secret every request must carry (at least 16 characters besides white space).", show_default=False)] = None,
    cache_mb: Annotated[int, typer.Option(min=1, help="Memory budget of loaded models, MiB.")] = 2048,
    threads: Annotated[Optional[int], typer.Option(min=1, help="Torch threads of the worker (default: usable cores - 1, or OMP_NUM_THREADS).", show_default=False)] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    log_file: Annotated[Optional[Path], typer.Option(help="Log file (default: the user log dir's singan-studio/daemon.log).", show_default=False)] = None,
) -> None:
    """Run the SinGAN Studio daemon: plugins and `singan demo` talk to it over ZeroMQ.

    Prints `listening on ENDPOINT` on stdout once ready. Stops on SIGINT/SIGTERM or a shutdown
    request; a running training keeps its finished scales and resumes at the next start.
    """
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"log-level: must be debug, info, warning or error, got {log_level!r}")
    log_path = _setup_logging(log_level, log_file)
    config = DaemonConfig(
        endpoint=endpoint, store=store, watch=watch, watch_preset=watch_preset.value, debounce=debounce,
        device=device, token=token, allow_remote=allow_remote, cache_bytes=cache_mb * 1024**2, threads=threads,
    )
    daemon = Daemon(config)
    logging.getLogger(__name__).info("log file %s", log_path)
    daemon.run(on_ready=lambda endpoint: print(f"listening on {endpoint}", flush=True))


@app.command()
def demo(
    preset: Annotated[PresetName, typer.Option(help="Training preset (tiny: a quick check).")] = PresetName(DEFAULT_PRESET),
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("singan-demo"),
    device: DeviceOpt = "auto",
) -> None:
    """Train the bundled demo image (Hubble Deep Field) through a temporary daemon and write
    variations, a panorama, a seamless tile, a harmonization, a 2x super-resolution and a contact
    sheet to OUT. About 7-8 minutes with draft on a 2-core CPU; Ctrl-C stops it and its daemon."""
    from .demo import run_demo

    try:
        run_demo(preset.value, out, device)
    except KeyboardInterrupt:
        print("interrupted: the demo's daemon is stopped and its temporary store removed", file=sys.stderr)
        raise typer.Exit(130) from None


def main(argv: list[str] | None = None) -> None:
    """``singan`` console script."""
    _core_main(argv)


def daemon_main() -> None:
    """``singan-daemon`` console script: ``singan serve`` with the same options."""
    _core_main(["serve", *sys.argv[1:]])


if __name__ == "__main__":
    main()
