"""The ``singan`` command line, assembled in this one place: the model commands
(:mod:`singan_cli.model_commands`: train, sample, instant, eval, harmonize, edit, paint2image, sr,
animate), ``serve`` (the daemon), ``protocol schema`` and ``demo`` (the whole chain through a daemon).

Installed as ``singan`` and, for ``singan serve``, as ``singan-daemon``. Expected errors
(``ValueError`` and its subclasses, ``OSError``, a usage error) are printed as one line on stderr
with exit status 2 (:func:`main`); anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

try:  # typer carries its own copy of click (typer._click) in its recent releases
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:
    from click.exceptions import ClickException, NoArgsIsHelpError

from protocol import DEFAULT_ENDPOINT
from singan_core.device import configure_threads
from singan_core.errors import MetricUnavailable, OutputDirNotEmpty

from . import model_commands
from .model_commands import DEFAULT_PRESET, DeviceOpt, PresetName
from daemon.cluster import ClusterConfig, parse_preset_resources
from daemon.paths import default_log_file
from daemon.server import Daemon, DaemonConfig

app = typer.Typer(
    name="singan",
    help="SinGAN Studio: learn a generative model from a single image, then sample new variations of it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
model_commands.register(app)
protocol_app = typer.Typer(help="The daemon's wire protocol (docs/protocol.md).", no_args_is_help=True)
app.add_typer(protocol_app, name="protocol")


@protocol_app.command("schema")
def protocol_schema(
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Write to this file instead of stdout.", show_default=False)
    ] = None,
) -> None:
    """Print the JSON Schema of every request and reply."""
    from protocol.schema import json_schema

    text = json.dumps(json_schema(), indent=2)
    if out is None:
        print(text)
    else:
        out.write_text(text + "\n")


def _setup_logging(level: str, log_file: Path | None) -> Path:
    log_file = log_file or default_log_file()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=5 * 1024**2, backupCount=3)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr), file_handler]
    logging.basicConfig(
        level=level.upper(), handlers=handlers, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    return log_file


@app.command()
def serve(
    endpoint: Annotated[
        str, typer.Option(help="ZeroMQ endpoint to bind; tcp://127.0.0.1:* picks a free port.")
    ] = DEFAULT_ENDPOINT,
    store: Annotated[
        Optional[Path],
        typer.Option(
            help="Model store (default: the user data dir, e.g. ~/.local/share/singan-studio).", show_default=False
        ),
    ] = None,
    watch: Annotated[
        Optional[Path], typer.Option(help="Train every image that appears in this folder.", show_default=False)
    ] = None,
    watch_preset: Annotated[PresetName, typer.Option(help="Preset for the watched folder's trainings.")] = PresetName(
        DEFAULT_PRESET
    ),
    debounce: Annotated[
        float, typer.Option(min=0.1, max=600, help="Seconds a watched file must stay unchanged before training.")
    ] = 2.0,
    device: DeviceOpt = "auto",
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a non-loopback endpoint (needs --token).")
    ] = False,
    token: Annotated[
        Optional[str],
        typer.Option(
            envvar="SINGAN_TOKEN",
            help="Shared secret every request must carry (at least 16 characters besides white space).",
            show_default=False,
        ),
    ] = None,
    cache_mb: Annotated[int, typer.Option(min=1, help="Memory budget of loaded models, MiB.")] = 2048,
    memory_budget: Annotated[
        Optional[int],
        typer.Option(
            min=64,
            help="MiB the daemon's requests may hold: inputs in flight and queued, and the working memory of the op that runs (default: a quarter of the machine's memory). See docs/protocol.md, Memory.",
            show_default=False,
        ),
    ] = None,
    threads: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            help="Torch threads of the worker (default: usable cores - 1, or OMP_NUM_THREADS).",
            show_default=False,
        ),
    ] = None,
    ray: Annotated[
        Optional[str],
        typer.Option(
            "--ray",
            help='Run trainings on this Ray cluster: auto, HOST:PORT (as `ray start --head` prints it) or ray://HOST:PORT. Needs the extra: pip install "singan-studio\\[cluster]".',
            show_default=False,
        ),
    ] = None,
    ray_cpus: Annotated[
        float, typer.Option(min=0.01, help="CPUs each training declares on Ray (and its torch threads).")
    ] = 1.0,
    ray_gpus: Annotated[
        float, typer.Option(min=0, help="GPUs each training declares on Ray (1: one GPU per training).")
    ] = 0.0,
    ray_attempts: Annotated[
        int, typer.Option(min=1, help="Ray tasks lost in a row (worker or node died) before a training fails.")
    ] = 3,
    ray_preset: Annotated[
        Optional[list[str]],
        typer.Option(
            help="Other resources for one preset's trainings: PRESET=CPUS[,GPUS], e.g. paper=4,1 (repeatable).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    log_file: Annotated[
        Optional[Path],
        typer.Option(help="Log file (default: the user log dir's singan-studio/daemon.log).", show_default=False),
    ] = None,
) -> None:
    """Run the SinGAN Studio daemon: plugins and `singan demo` talk to it over ZeroMQ.

    Prints `listening on ENDPOINT` on stdout once ready. Stops on SIGINT/SIGTERM or a shutdown
    request; a running training keeps its finished scales and resumes at the next start.
    With --ray, trainings run as tasks on a Ray cluster (docs/daemon.md, "Studio scale: a Ray cluster").
    """
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"log-level: must be debug, info, warning or error, got {log_level!r}")
    log_path = _setup_logging(log_level, log_file)
    if ray is None and ray_preset:
        raise ValueError("ray-preset: only with --ray ADDRESS (trainings on a Ray cluster)")
    cluster = (
        None
        if ray is None
        else ClusterConfig(
            ray,
            num_cpus=ray_cpus,
            num_gpus=ray_gpus,
            max_attempts=ray_attempts,
            per_preset=parse_preset_resources(ray_preset or []),
        )
    )
    config = DaemonConfig(
        endpoint=endpoint,
        store=store,
        watch=watch,
        watch_preset=watch_preset.value,
        debounce=debounce,
        device=device,
        token=token,
        allow_remote=allow_remote,
        cache_bytes=cache_mb * 1024**2,
        threads=threads,
        cluster=cluster,
        memory_budget=None if memory_budget is None else memory_budget * 1024**2,
    )
    daemon = Daemon(config)
    logging.getLogger(__name__).info("log file %s", log_path)
    daemon.run(on_ready=lambda endpoint: print(f"listening on {endpoint}", flush=True))


@app.command()
def demo(
    preset: Annotated[PresetName, typer.Option(help="Training preset (tiny: a quick check).")] = PresetName(
        DEFAULT_PRESET
    ),
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("singan-demo"),
    device: DeviceOpt = "auto",
) -> None:
    """Through a temporary daemon: instant variations, a 3:1 panorama and a seamless tile of the
    bundled demo image (Hubble Deep Field) within seconds, then train it and write the trained
    model's variations, panorama and tile at the image's own size, a harmonization, a 2x
    super-resolution and a contact sheet to OUT. About 7 minutes with draft on a 2-core CPU;
    Ctrl-C stops it and its daemon."""
    from .demo import run_demo

    try:
        run_demo(preset.value, out, device)
    except KeyboardInterrupt:
        print("interrupted: the demo's daemon is stopped and its temporary store removed", file=sys.stderr)
        raise typer.Exit(130) from None


def _fail(message: str, code: int = 2, prog: str = "singan") -> None:
    print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """``singan`` console script: run the app, turning expected errors into one line on stderr."""
    configure_threads()
    try:
        code = app(args=argv, prog_name="singan", standalone_mode=False)
    except OutputDirNotEmpty as exc:
        _fail(f"{exc}; choose another --out, or add --overwrite to replace it")
    except (ValueError, OSError, MetricUnavailable) as exc:  # incl. ModelLoadError, ImageReadError
        _fail(str(exc))
    except typer.Abort:
        _fail("aborted", 1)
    except NoArgsIsHelpError as exc:  # a group called without a command: its help
        print(exc.format_message())
        sys.exit(0)
    except ClickException as exc:  # a usage error from the parser (unknown option, bad option value, ...)
        ctx = getattr(exc, "ctx", None)
        _fail(f"{exc.format_message()} (see --help)", exc.exit_code, ctx.command_path if ctx is not None else "singan")
    sys.exit(code if isinstance(code, int) else 0)


def daemon_main() -> None:
    """``singan-daemon`` console script: ``singan serve`` with the same options."""
    main(["serve", *sys.argv[1:]])


if __name__ == "__main__":
    main()
