"""``singan demo``: the whole chain through a daemon, on the bundled demo image.

Starts ``singan serve`` in a subprocess on a free loopback port with a temporary store, trains one
model on the Hubble Deep Field (``singan_core/data/demo.png``, 300x262) with circular padding (the
deep field is a texture, and circular padding makes every sample tileable), then asks the daemon
for 4 variations, a 3:1 panorama, a seamless tile, a harmonization of a tinted galaxy pasted onto
the demo image and a 2x super-resolution of a small crop (which trains its own small pyramid).
Only :mod:`protocol.client` talks to the daemon, as a plugin would. The PNGs and a labelled
contact sheet go to the output folder; the daemon is always stopped and its store removed, also
after an error or Ctrl-C.
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
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from protocol.client import Client, DaemonError
from protocol.wire import Image
from singan_core.device import select_device
from singan_core.storage import atomic_write_bytes
from singan_core.workflow import demo_image

N_VARIATIONS = 4
PANORAMA_ASPECT = 3
"""Panorama width / height; its height is the training height."""
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
    with tempfile.TemporaryDirectory(prefix="singan-demo-") as tmp, serve_subprocess(Path(tmp), device) as client:
        hello = client.hello()
        _err.print(f"daemon {hello['server_version']} on {hello['device']}, temporary store {tmp}")
        try:
            results = _run_steps(client, preset, demo)
        except DaemonError as exc:
            log = _keep_log(Path(tmp), out)
            raise ValueError(f"demo: {exc.message} (daemon log: {log})") from None
    paths = [_write_png(out / f"{name}.png", image) for name, image in results]
    paths.append(_write_png(out / "contact_sheet.png", _contact_sheet(_sheet_rows(demo, dict(results)))))
    for path in paths:
        print(path)
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
def serve_subprocess(workdir: Path, device: str) -> Iterator[Client]:
    """``singan serve`` in a subprocess on a free loopback port, its store and log in ``workdir``.

    Yields a connected client. On exit the daemon is stopped: a shutdown request (SIGTERM instead
    after Ctrl-C, which the daemon got from the terminal too, or if the request is not answered),
    then SIGKILL after ``STOP_TIMEOUT`` seconds.
    """
    stderr_path = workdir / "daemon.stderr"
    command = [
        sys.executable, "-m", "daemon.cli", "serve", "--endpoint", "tcp://127.0.0.1:*", "--store", str(workdir / "store"),
        "--log-file", str(workdir / "daemon.log"), "--device", device, "--log-level", "warning",
    ]
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
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


def _run_steps(client: Client, preset: str, demo: PILImage.Image) -> Named:
    """Train the demo model and run every application on it, with a progress bar on stderr.

    Returns the outputs as (file stem, picture) pairs. Raises :class:`DaemonError` naming the step.
    """
    columns = (
        TextColumn("{task.description:<34}"), BarColumn(bar_width=24), TaskProgressColumn(),
        TextColumn("{task.fields[scale]:<11}"), TextColumn("{task.fields[time]}"),
    )
    with Progress(*columns, console=_err) as progress:
        run = _runner(client, progress)
        data, _ = run(f"train {preset} (circular padding)", "train",
                      {"name": "Hubble Deep Field", "preset": preset, "padding": "circular"}, [_wire("image", demo)])
        model, height = data["model"]["id"], data["model"]["height"]
        _, samples = run(f"{N_VARIATIONS} variations", "generate", {"model": model, "n": N_VARIATIONS})
        _, panorama = run(f"{PANORAMA_ASPECT}:1 panorama", "generate",
                          {"model": model, "width": PANORAMA_ASPECT * height, "height": height})
        _, tile = run("seamless tile", "generate", {"model": model, "seed": N_VARIATIONS, "padding": "circular"})
        composite, mask = paste_object(demo)
        _, harmonized = run("harmonize a pasted galaxy", "harmonize", {"model": model},
                            [_wire("image", composite), _wire("mask", mask)])
        crop = demo.crop(_brightest_box(demo, SR_CROP))
        _, sr = run(f"{SR_FACTOR}x super-resolution (trains)", "super_resolve",
                    {"factor": SR_FACTOR, "preset": preset, "name": "deep field crop"}, [_wire("image", crop)])
    variations = [(f"variation_{i + 1}", image) for i, image in enumerate(samples)]
    tile_image = tile[0]
    return [
        *variations, (f"panorama_{PANORAMA_ASPECT}x1", panorama[0]), ("tile", tile_image), ("tile_2x2", tiled(tile_image)),
        ("composite", composite), ("mask", mask), ("harmonized", harmonized[0]),
        ("sr_input", crop), (f"sr_bicubic_{SR_FACTOR}x", crop.resize((SR_FACTOR * crop.width, SR_FACTOR * crop.height), PILImage.BICUBIC)),
        (f"sr_{SR_FACTOR}x", sr[0]),
    ]


Runner = Callable[..., tuple[dict, list[PILImage.Image]]]


def _runner(client: Client, progress: Progress) -> Runner:
    """``run(label, op, params, images=())`` -> (result data, output pictures): submit a job op,
    show its progress as a row of ``progress`` labelled ``label``, and wait for it.
    A failure is raised as :class:`DaemonError` whose message starts with ``label``."""

    def run(label: str, op: str, params: dict, images: Sequence[Image] = ()) -> tuple[dict, list[PILImage.Image]]:
        task = progress.add_task(label, total=1.0, scale="", time="")
        start = time.monotonic()

        def on_progress(job, event: dict) -> None:
            progress.update(task, completed=event["fraction"], scale=_scale_text(event), time=_eta_text(event.get("eta_seconds")))

        job = client.submit(op, params, images, on_progress=on_progress)
        try:
            data = job.wait()
        except DaemonError as exc:
            raise DaemonError(exc.code, f"{label}: {exc.message}", exc.field) from None
        progress.update(task, completed=1.0, time=f"done in {time.monotonic() - start:.0f} s")
        return data, [_pil(image) for image in job.images]

    return run


def _scale_text(event: dict) -> str:
    """``scale k/N`` of a training progress event (k counted from 1 = coarsest, as ``singan train``), else ''."""
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
    cy, cx = np.unravel_index(np.argmax(_window_means(luma, core)), (luma.shape[0] - core + 1, luma.shape[1] - core + 1))
    x0 = int(np.clip(cx + core // 2 - side // 2, 0, demo.width - side))
    y0 = int(np.clip(cy + core // 2 - side // 2, 0, demo.height - side))
    means = _window_means(luma, side)
    means[max(0, y0 - side + 1):y0 + side, max(0, x0 - side + 1):x0 + side] = np.inf  # windows overlapping the crop
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

SheetRow = tuple[int, list[tuple[str, PILImage.Image]]]
"""(row height in pixels, [(label, picture), ...])."""


def _sheet_rows(demo: PILImage.Image, results: dict[str, PILImage.Image]) -> list[SheetRow]:
    """The contact sheet's layout: the training image and variations; panorama and tile; harmonization; super-resolution."""
    variations = [(f"variation {i + 1}", results[f"variation_{i + 1}"]) for i in range(N_VARIATIONS)]
    return [
        (ROW_HEIGHT, [("demo image", demo), *variations]),
        (ROW_HEIGHT, [(f"{PANORAMA_ASPECT}:1 panorama", results[f"panorama_{PANORAMA_ASPECT}x1"]), ("tile", results["tile"]),
                      ("tile repeated 2x2", results["tile_2x2"])]),
        (ROW_HEIGHT, [("naive composite", results["composite"]), ("mask", results["mask"]), ("harmonized", results["harmonized"])]),
        (4 * SR_CROP, [("crop", results["sr_input"]), (f"bicubic {SR_FACTOR}x", results[f"sr_bicubic_{SR_FACTOR}x"]),
                       (f"SinGAN {SR_FACTOR}x", results[f"sr_{SR_FACTOR}x"])]),
    ]


def _contact_sheet(rows: list[SheetRow]) -> PILImage.Image:
    """All pictures in labelled rows on a dark background. Each picture is scaled to its row's
    height: pixel-exact (nearest) when enlarged, Lanczos when reduced. Labels give the original size."""
    font = ImageFont.load_default(size=14)
    fitted = [[(f"{label} ({im.width}x{im.height})", _fit_height(im, height)) for label, im in row] for height, row in rows]
    width = max(GAP + sum(im.width + GAP for _, im in row) for row in fitted)
    height = GAP + sum(h + LABEL_HEIGHT + GAP for h, _ in rows)
    sheet = PILImage.new("RGB", (width, height), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    y = GAP
    for (row_height, _), row in zip(rows, fitted):
        x = GAP
        for label, im in row:
            sheet.paste(im.convert("RGB"), (x, y))
            draw.text((x, y + row_height + 3), label, fill=(230, 230, 230), font=font)
            x += im.width + GAP
        y += row_height + LABEL_HEIGHT + GAP
    return sheet


def _fit_height(image: PILImage.Image, height: int) -> PILImage.Image:
    width = max(1, round(image.width * height / image.height))
    resample = PILImage.NEAREST if height >= image.height else PILImage.LANCZOS
    return image.resize((width, height), resample)
