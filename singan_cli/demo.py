"""``singan demo``: the whole chain through a daemon, on the bundled demo image.

Starts ``singan serve`` in a subprocess on a free loopback port with a temporary store. First,
with no model (the ``instant`` op: GPNN patch synthesis, seconds), 4 variations of the Hubble Deep
Field (``singan_core/data/demo.png``, 300x262), a 3:1 panorama and a seamless tile at the demo
image's own feature scale: these PNGs are written at once. Then it trains one model on the demo
image with circular padding (the deep field is a texture, and circular padding makes every sample
tileable) and asks for the same three at full resolution (``generate`` with the source's detail:
SinGAN's layout lifted to the output size), a harmonization (the daemon's default method,
:data:`singan_core.harmonization.DEFAULT_METHOD`, chosen by ``bench/harmonize.py``) of a tinted galaxy pasted onto the
demo image and a 2x super-resolution of a small crop (which trains its own small pyramid). Only
:mod:`protocol.client` talks to the daemon, as a plugin would. The PNGs and a labelled contact
sheet (instant beside trained, with sizes and seconds) go to the output folder; the daemon is
always stopped and its store removed, also after an error or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import io
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from protocol.client import Client
from protocol.errors import DaemonError
from protocol.wire import Image
from singan_core.device import select_device
from singan_core.imageio import from_uint8
from singan_core.sample_figures import compare_to_instant, set_figures
from singan_core.storage import atomic_write_bytes
from singan_core.workflow import demo_image

N_VARIATIONS = 4
PANORAMA_ASPECT = 3
"""Panorama width / height; its height is the demo image's height (feature scale 1)."""
OBJECT_FRACTION = 1 / 5
"""Side of the pasted object's square crop, relative to the demo image's shorter side."""
OBJECT_GAINS = (1.8, 0.75, 0.3)
"""RGB gains that tint the pasted object strongly orange and brighter (its black sky stays black)."""
SR_CROP = 64
"""Side (pixels) of the square crop that is super-resolved."""
SR_FACTOR = 2
START_TIMEOUT = 120.0
"""Seconds to wait for the daemon's ``listening on`` line (importing torch can be slow)."""
STOP_TIMEOUT = 60.0
"""Seconds to wait for the daemon to exit before killing it."""
CLIENT_TIMEOUT = 10.0
"""Seconds without any answer before the client retries (see :class:`protocol.client.Client`)."""
ROW_HEIGHT = 224
"""Height (pixels) of the contact sheet's picture rows; the super-resolution row is 4 x SR_CROP."""
LABEL_HEIGHT, GAP = 22, 8
"""Contact sheet: pixels for a label line under each picture; pixels between and around pictures."""

_err = Console(stderr=True)

Named = list[tuple[str, PILImage.Image]]
"""(file stem, picture) pairs, in output order."""


# --------------------------------------------------------------------------- entry point


def run_demo(preset: str, out: Path, device: str) -> None:
    """Train the demo image through a temporary daemon and write the results to ``out``.

    Args:
        preset: training preset of both models (``tiny``, ``draft`` or ``paper``).
        out: output folder (created if missing; files of the same names are replaced).
        device: the daemon's ``--device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        ValueError: an unknown or missing device, the daemon did not start, or a request failed
            (one line, naming the step).
        OSError: ``out`` cannot be created or written.
    """
    start = time.monotonic()
    select_device(device)  # an unknown or missing device fails here, before the daemon starts
    out.mkdir(parents=True, exist_ok=True)  # and an unusable output folder before the training
    with demo_image() as path, PILImage.open(path) as im:
        demo = im.convert("RGB")
    paths: list[Path] = []

    def write(results: Named) -> None:
        for name, image in results:
            paths.append(_write_png(out / f"{name}.png", image))
            print(paths[-1], flush=True)

    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="singan-demo-") as tmp, serve_subprocess(Path(tmp), device) as client:
        hello = client.hello()
        _err.print(f"daemon {hello['server_version']} on {hello['device']}, temporary store {tmp}")
        try:
            with _progress() as progress:
                run = _runner(client, progress, seconds)
                instant = _instant_steps(run, demo)
                write(instant)  # something to look at before the training starts
                _err.print(f"instant results written {time.monotonic() - start:.0f} s after the start")
                trained = _trained_steps(run, preset, demo)
        except DaemonError as exc:
            log = _keep_log(Path(tmp), out)
            raise ValueError(f"demo: {exc.message} (daemon log: {log})") from None
    write(trained)
    figures = _trained_figures(demo, dict(instant + trained))
    for lines in figures.values():
        _err.print("\n".join(lines))
    write([("contact_sheet", _contact_sheet(_sheet_rows(demo, dict(instant + trained), seconds, figures)))])
    minutes, seconds = divmod(round(time.monotonic() - start), 60)
    print(f"{len(paths)} images in {out.resolve()} ({minutes}:{seconds:02d} in all)")


def _keep_log(workdir: Path, out: Path) -> Path:
    """Copy the daemon's log out of the temporary folder (it is removed) into ``out``."""
    target = out / "daemon.log"
    shutil.copyfile(workdir / "daemon.log", target)
    return target


def _write_png(path: Path, image: PILImage.Image) -> Path:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return path


# --------------------------------------------------------------------------- the daemon


@contextlib.contextmanager
def serve_subprocess(
    workdir: Path, device: str, args: Sequence[str] = (), env: dict[str, str] | None = None
) -> Iterator[Client]:
    """``singan serve`` in a subprocess on a free loopback port, its store and log in ``workdir``;
    ``args``: more ``serve`` options, ``env``: its environment (default: this process's).

    Yields a connected client. On exit the daemon is stopped: a shutdown request (SIGTERM instead
    after Ctrl-C, which the daemon got from the terminal too, or if the request is not answered),
    then SIGKILL after ``STOP_TIMEOUT`` seconds.
    """
    stderr_path = workdir / "daemon.stderr"
    command = [
        sys.executable,
        "-m",
        "singan_cli.cli",
        "serve",
        "--endpoint",
        "tcp://127.0.0.1:*",
        "--store",
        str(workdir / "store"),
        "--log-file",
        str(workdir / "daemon.log"),
        "--device",
        device,
        "--log-level",
        "warning",
        *args,
    ]
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    client, interrupted = None, False
    try:
        client = Client(_wait_listening(proc, stderr_path), timeout=CLIENT_TIMEOUT)
        yield client
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if proc.poll() is None and (interrupted or not _request_shutdown(client)):
            proc.terminate()
        if client is not None:
            client.close()
        _wait_or_kill(proc)


def _wait_listening(proc: subprocess.Popen, stderr_path: Path) -> str:
    """The endpoint from the daemon's first stdout line, ``listening on ENDPOINT``.

    Raises:
        ValueError: the daemon exited or printed something else, or nothing came within ``START_TIMEOUT`` s.
    """
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=START_TIMEOUT)
    except queue.Empty:
        line = f"no answer within {START_TIMEOUT:.0f} s"
    if not line.startswith("listening on "):
        why = stderr_path.read_text(errors="replace").strip().splitlines() or [line.strip() or "it exited"]
        raise ValueError(f"demo: the daemon did not start: {why[-1].removeprefix('singan: error: ')}")
    return line.split()[-1]


def _request_shutdown(client: Client | None) -> bool:
    """Send a shutdown request; False if there is no client or no answer."""
    if client is None:
        return False
    try:
        client.shutdown()
    except DaemonError:
        return False
    return True


def _wait_or_kill(proc: subprocess.Popen) -> None:
    """Wait up to ``STOP_TIMEOUT`` s for the daemon to exit, then kill it."""
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()


# --------------------------------------------------------------------------- the requests


def _progress() -> Progress:
    """The demo's progress bars on stderr, one row per step."""
    columns = (
        TextColumn("{task.description:<34}"),
        BarColumn(bar_width=24),
        TaskProgressColumn(),
        TextColumn("{task.fields[scale]:<11}"),
        TextColumn("{task.fields[time]}"),
    )
    return Progress(*columns, console=_err)


def _instant_steps(run: Runner, demo: PILImage.Image) -> Named:
    """Variations, a 3:1 panorama and a seamless tile of the demo image with no model (``instant``),
    all at its own feature scale. Raises :class:`DaemonError` naming the step."""
    image, (width, height) = _wire("image", demo), demo.size
    _, samples = run(
        f"instant: {N_VARIATIONS} variations", "instant", {"n": N_VARIATIONS, "width": width, "height": height}, [image]
    )
    _, panorama = run(
        f"instant: {PANORAMA_ASPECT}:1 panorama",
        "instant",
        {"width": PANORAMA_ASPECT * height, "height": height},
        [image],
    )
    side = min(width, height)
    _, tile = run("instant: seamless tile", "instant", {"width": side, "height": side, "tile": True}, [image])
    return [
        *[(f"instant_variation_{i + 1}", x) for i, x in enumerate(samples)],
        (f"instant_panorama_{PANORAMA_ASPECT}x1", panorama[0]),
        ("instant_tile", tile[0]),
        ("instant_tile_2x2", tiled(tile[0])),
    ]


def _trained_steps(run: Runner, preset: str, demo: PILImage.Image) -> Named:
    """Train the demo model and run every application on it, the samples at the demo image's own
    size and feature scale. Raises :class:`DaemonError` naming the step."""
    (width, height), side = demo.size, min(demo.size)
    data, _ = run(
        f"train {preset} (circular padding)",
        "train",
        {"name": "Hubble Deep Field", "preset": preset, "padding": "circular"},
        [_wire("image", demo)],
    )
    model = data["model"]["id"]
    _, samples = run(
        f"{N_VARIATIONS} variations", "generate", {"model": model, "n": N_VARIATIONS, "width": width, "height": height}
    )
    _, panorama = run(
        f"{PANORAMA_ASPECT}:1 panorama",
        "generate",
        {"model": model, "width": PANORAMA_ASPECT * height, "height": height},
    )
    _, tile = run(
        "seamless tile",
        "generate",
        {"model": model, "seed": N_VARIATIONS, "width": side, "height": side, "padding": "circular"},
    )
    composite, mask = paste_object(demo)
    _, harmonized = run(
        "harmonize a pasted galaxy", "harmonize", {"model": model}, [_wire("image", composite), _wire("mask", mask)]
    )
    crop = demo.crop(_brightest_box(demo, SR_CROP))
    _, sr = run(
        f"{SR_FACTOR}x super-resolution (trains)",
        "super_resolve",
        {"factor": SR_FACTOR, "preset": preset, "name": "deep field crop"},
        [_wire("image", crop)],
    )
    variations = [(f"variation_{i + 1}", image) for i, image in enumerate(samples)]
    tile_image = tile[0]
    return [
        *variations,
        (f"panorama_{PANORAMA_ASPECT}x1", panorama[0]),
        ("tile", tile_image),
        ("tile_2x2", tiled(tile_image)),
        ("composite", composite),
        ("mask", mask),
        ("harmonized", harmonized[0]),
        ("sr_input", crop),
        (f"sr_bicubic_{SR_FACTOR}x", crop.resize((SR_FACTOR * crop.width, SR_FACTOR * crop.height), PILImage.BICUBIC)),
        (f"sr_{SR_FACTOR}x", sr[0]),
    ]


Runner = Callable[..., tuple[dict, list[PILImage.Image]]]


def _runner(client: Client, progress: Progress, seconds: dict[str, float]) -> Runner:
    """``run(label, op, params, images=())`` -> (result data, output pictures): submit a job op,
    show its progress as a row of ``progress`` labelled ``label``, and wait for it; its wall-clock
    seconds go to ``seconds[label]``. A failure is raised as :class:`DaemonError` whose message
    starts with ``label``."""

    def run(label: str, op: str, params: dict, images: Sequence[Image] = ()) -> tuple[dict, list[PILImage.Image]]:
        task = progress.add_task(label, total=1.0, scale="", time="")
        start = time.monotonic()

        def on_progress(job, event: dict) -> None:
            progress.update(
                task, completed=event["fraction"], scale=_scale_text(event), time=_eta_text(event.get("eta_seconds"))
            )

        job = client.submit(op, params, images, on_progress=on_progress)
        try:
            data = job.wait()
        except DaemonError as exc:
            raise DaemonError(exc.code, f"{label}: {exc.message}", exc.field) from None
        seconds[label] = time.monotonic() - start
        progress.update(task, completed=1.0, time=f"done in {seconds[label]:.0f} s")
        return data, [_pil(image) for image in job.images]

    return run


def _scale_text(event: dict) -> str:
    """``scale k/N`` of a training progress event (k counted from 1 = coarsest, as ``singan train``),
    ``level k/K`` of a patch-synthesis one, else ''."""
    if event.get("level") is not None and event.get("levels"):
        return f"level {event['level']}/{event['levels']}"
    if event.get("scale") is None or not event.get("num_scales"):
        return ""
    return f"scale {event['scale'] + 1}/{event['num_scales']}"


def _eta_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, seconds = divmod(round(seconds), 60)
    return f"ETA {minutes}:{seconds:02d}"


def _wire(name: str, image: PILImage.Image) -> Image:
    """A Pillow RGB or L picture as a uint8 wire image (RGB or GRAY) named ``name``."""
    order = "GRAY" if image.mode == "L" else "RGB"
    return Image(name, image.width, image.height, order, image.tobytes())


def _pil(image: Image) -> PILImage.Image:
    """A uint8 RGB wire image (the daemon's default output order) as a Pillow picture."""
    return PILImage.frombytes("RGB", (image.width, image.height), bytes(image.data))


# --------------------------------------------------------------------------- pictures made here


def paste_object(demo: PILImage.Image) -> tuple[PILImage.Image, PILImage.Image]:
    """A naive composite for harmonization and its mask, without shipping another image.

    The object is a square crop (``OBJECT_FRACTION`` of the shorter side) centred on the demo
    image's brightest galaxy, tinted by ``OBJECT_GAINS``, pasted through a soft-edged disk onto
    the darkest square of the same size that does not overlap the crop.

    Returns:
        (composite RGB, mask L: 255 inside the disk, 0 outside, soft edge), both of the demo's size.
    """
    side = round(min(demo.size) * OBJECT_FRACTION)
    luma = np.asarray(demo.convert("L"), np.float64)
    core = max(1, side // 3)
    cy, cx = np.unravel_index(
        np.argmax(_window_means(luma, core)), (luma.shape[0] - core + 1, luma.shape[1] - core + 1)
    )
    x0 = int(np.clip(cx + core // 2 - side // 2, 0, demo.width - side))
    y0 = int(np.clip(cy + core // 2 - side // 2, 0, demo.height - side))
    means = _window_means(luma, side)
    means[max(0, y0 - side + 1) : y0 + side, max(0, x0 - side + 1) : x0 + side] = np.inf  # windows overlapping the crop
    ty, tx = np.unravel_index(np.argmin(means), means.shape)
    crop = np.asarray(demo.crop((x0, y0, x0 + side, y0 + side)), np.float32)
    tinted = PILImage.fromarray((crop * np.float32(OBJECT_GAINS)).clip(0, 255).astype(np.uint8))
    disk = _soft_disk(side)
    composite = demo.copy()
    composite.paste(tinted, (int(tx), int(ty)), disk)
    mask = PILImage.new("L", demo.size, 0)
    mask.paste(disk, (int(tx), int(ty)))
    return composite, mask


def _window_means(luma: np.ndarray, side: int) -> np.ndarray:
    """Mean of every ``side`` x ``side`` window of (H, W) ``luma``, indexed [top, left]: (H - side + 1, W - side + 1)."""
    c = np.pad(luma.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return (c[side:, side:] - c[:-side, side:] - c[side:, :-side] + c[:-side, :-side]) / side**2


def _brightest_box(image: PILImage.Image, side: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the ``side`` x ``side`` square with the highest mean luminance
    (in the deep field: the most galaxies)."""
    means = _window_means(np.asarray(image.convert("L"), np.float64), side)
    top, left = (int(v) for v in np.unravel_index(np.argmax(means), means.shape))
    return left, top, left + side, top + side


def _soft_disk(side: int) -> PILImage.Image:
    """A ``side`` x ``side`` L picture: a disk of radius 0.45 side, 255 inside, falling linearly to 0
    over the outer 0.15 side of its radius."""
    r = np.hypot(*np.meshgrid(np.arange(side) - (side - 1) / 2, np.arange(side) - (side - 1) / 2))
    alpha = np.clip((0.45 * side - r) / (0.15 * side), 0, 1)
    return PILImage.fromarray((alpha * 255).round().astype(np.uint8))


def tiled(tile: PILImage.Image, n: int = 2) -> PILImage.Image:
    """``tile`` repeated n x n times (a seamless tile shows no seams)."""
    sheet = PILImage.new(tile.mode, (n * tile.width, n * tile.height))
    for i in range(n):
        for j in range(n):
            sheet.paste(tile, (i * tile.width, j * tile.height))
    return sheet


# --------------------------------------------------------------------------- contact sheet

SheetRow = tuple[int, list[tuple[str, PILImage.Image]], list[str]]
"""(row height in pixels, [(label, picture), ...], lines of text to the right of the pictures)."""


def _trained_figures(demo: PILImage.Image, results: dict[str, PILImage.Image]) -> dict[str, list[str]]:
    """Per contact-sheet row (``variations``, ``panorama``, ``tile``): the instant and the trained
    results' figures against the demo image (:func:`singan_core.sample_figures.set_figures`) and
    whether the trained ones are at least as good
    (:func:`~singan_core.sample_figures.compare_to_instant`), as lines of text."""
    source = _tensor(demo)
    names = {
        "variations": [f"variation_{i + 1}" for i in range(N_VARIATIONS)],
        "panorama": [f"panorama_{PANORAMA_ASPECT}x1"],
        "tile": ["tile"],
    }
    rows = {}
    for row, stems in names.items():
        instant, trained = (
            set_figures(torch.cat([_tensor(results[prefix + stem]) for stem in stems]), source)
            for prefix in ("instant_", "")
        )
        failures = compare_to_instant(trained, instant)
        rows[row] = [
            f"{row} against the demo image (bright {100 * instant.bright_density_source:.1f} %):",
            f"instant: {instant.text()}",
            f"trained: {trained.text()}",
            *(["trained at least as good as instant"] if not failures else ["trained worse than instant:", *failures]),
        ]
    return rows


def _tensor(image: PILImage.Image) -> torch.Tensor:
    return from_uint8(np.asarray(image.convert("RGB")))


def _sheet_rows(
    demo: PILImage.Image, results: dict[str, PILImage.Image], seconds: dict[str, float], figures: dict[str, list[str]]
) -> list[SheetRow]:
    """The contact sheet's layout: the demo image, instant variations, trained variations; instant
    vs trained panorama; instant vs trained tile (2x2) (the trained rows with their ``figures``
    beside them, :func:`_trained_figures`); harmonization; super-resolution. Captions give what
    it is and the seconds of the request that made it (a batch of variations: its total)."""

    def took(label: str) -> str:
        return f"{seconds[label]:.1f} s" if label in seconds else ""

    n, p = N_VARIATIONS, PANORAMA_ASPECT
    return [
        (
            ROW_HEIGHT,
            [
                ("demo image", demo),
                *[
                    (
                        f"instant {i + 1}, {n} in {took(f'instant: {n} variations')}",
                        results[f"instant_variation_{i + 1}"],
                    )
                    for i in range(n)
                ],
            ],
            [],
        ),
        (
            ROW_HEIGHT,
            [(f"trained {i + 1}, {n} in {took(f'{n} variations')}", results[f"variation_{i + 1}"]) for i in range(n)],
            figures["variations"],
        ),
        (
            ROW_HEIGHT,
            [
                (f"instant {p}:1, {took(f'instant: {p}:1 panorama')}", results[f"instant_panorama_{p}x1"]),
                (f"trained {p}:1, {took(f'{p}:1 panorama')}", results[f"panorama_{p}x1"]),
            ],
            figures["panorama"],
        ),
        (
            ROW_HEIGHT,
            [
                (f"instant tile 2x2, {took('instant: seamless tile')}", results["instant_tile_2x2"]),
                (f"trained tile 2x2, {took('seamless tile')}", results["tile_2x2"]),
            ],
            figures["tile"],
        ),
        (
            ROW_HEIGHT,
            [
                ("naive composite", results["composite"]),
                ("mask", results["mask"]),
                (f"harmonized, {took('harmonize a pasted galaxy')}", results["harmonized"]),
            ],
            [],
        ),
        (
            4 * SR_CROP,
            [
                ("crop", results["sr_input"]),
                (f"bicubic {SR_FACTOR}x", results[f"sr_bicubic_{SR_FACTOR}x"]),
                (f"SinGAN {SR_FACTOR}x", results[f"sr_{SR_FACTOR}x"]),
            ],
            [],
        ),
    ]


def _contact_sheet(rows: list[SheetRow]) -> PILImage.Image:
    """All pictures in labelled rows on a dark background, each row's text lines to the right of
    its pictures. Each picture is scaled to its row's height: pixel-exact (nearest) when enlarged,
    Lanczos when reduced. Labels give the original size."""
    font = ImageFont.load_default(size=14)
    fitted = [
        [(f"{label} ({im.width}x{im.height})", _fit_height(im, height)) for label, im in row] for height, row, _ in rows
    ]
    ends = [GAP + sum(im.width + GAP for _, im in row) for row in fitted]
    notes = [max((round(font.getlength(line)) for line in lines), default=0) for _, _, lines in rows]
    width = max(end + note + (GAP if note else 0) for end, note in zip(ends, notes))
    height = GAP + sum(h + LABEL_HEIGHT + GAP for h, _, _ in rows)
    sheet = PILImage.new("RGB", (width, height), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    y = GAP
    for (row_height, _, lines), row, end in zip(rows, fitted, ends):
        x = GAP
        for label, im in row:
            sheet.paste(im.convert("RGB"), (x, y))
            draw.text((x, y + row_height + 3), label, fill=(230, 230, 230), font=font)
            x += im.width + GAP
        for i, line in enumerate(lines):
            draw.text((end, y + i * LABEL_HEIGHT), line, fill=(230, 230, 230), font=font)
        y += row_height + LABEL_HEIGHT + GAP
    return sheet


def _fit_height(image: PILImage.Image, height: int) -> PILImage.Image:
    width = max(1, round(image.width * height / image.height))
    resample = PILImage.NEAREST if height >= image.height else PILImage.LANCZOS
    return image.resize((width, height), resample)
