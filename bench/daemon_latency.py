"""Round-trip latency of a ``generate`` through the daemon vs the same sampling in-process.

    python bench/daemon_latency.py [IMAGE] [--size 256] [--repeats 20] [--warmup 3] [--preset tiny]

Starts ``singan serve`` in a subprocess (free loopback port, temporary store), trains IMAGE
(default ../shared/images/brick.png) with the preset through the client, then times, one after
the other so they never compete for the CPU:

* daemon: ``client.submit("generate", {width, height, n=1, seed}).wait()`` — request, queue,
  sampling, conversion to uint8 RGB, transfer and decoding of the reply;
* in-process: :func:`singan_core.sampling.sample` of the same size under ``torch.no_grad`` on the
  model directory loaded from the daemon's store (same device, same thread count).

Each repetition uses another seed. Prints the median and p90 (ms) of both, the daemon's own
compute time (the result's ``seconds``) and the overhead (daemon median - in-process median).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

from singan_cli.demo import serve_subprocess
from daemon.store import ModelStore
from protocol.client import Client
from protocol.wire import Image
from singan_core.device import configure_threads, select_device
from singan_core.sampling import sample
from singan_core.storage import load_pyramid

DEFAULT_IMAGE = Path(__file__).resolve().parents[2] / "shared" / "images" / "brick.png"


def train(client: Client, image: Path, preset: str) -> dict:
    """Train ``image`` through the daemon; returns its ModelInfo (dict)."""
    with PILImage.open(image) as im:
        rgb = im.convert("RGB")
    print(f"training {image.name} ({preset}) through the daemon ...", flush=True)
    start = time.perf_counter()
    data = client.submit(
        "train", {"name": image.stem, "preset": preset}, [Image("image", rgb.width, rgb.height, "RGB", rgb.tobytes())]
    ).wait()
    print(f"  {time.perf_counter() - start:.1f} s", flush=True)
    return data["model"]


def time_daemon(client: Client, model: str, size: int, warmup: int, repeats: int) -> tuple[list[float], list[float]]:
    """(round-trip seconds, the daemon's reported compute seconds) of ``repeats`` generate calls."""
    round_trips, computes = [], []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        job = client.submit("generate", {"model": model, "width": size, "height": size, "n": 1, "seed": i})
        data = job.wait()
        elapsed = time.perf_counter() - start
        assert (job.images[0].width, job.images[0].height) == (size, size)
        if i >= warmup:
            round_trips.append(elapsed)
            computes.append(data["seconds"])
    return round_trips, computes


def time_in_process(model_dir: Path, device: torch.device, size: int, warmup: int, repeats: int) -> list[float]:
    """Seconds of ``repeats`` calls of ``sample`` at ``size`` x ``size`` on the loaded model."""
    pyramid, _ = load_pyramid(model_dir, device)
    h, w = pyramid.sizes[-1]
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            x = sample(pyramid, 1, size / h, size / w, seed=i)
            if device.type == "cuda":
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
            assert x.shape[-2:] == (size, size)
            if i >= warmup:
                times.append(elapsed)
    return times


def summary(seconds: list[float]) -> tuple[float, float]:
    """(median, p90) in milliseconds."""
    ms = np.asarray(seconds) * 1000
    return float(np.median(ms)), float(np.percentile(ms, 90))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", type=Path, nargs="?", default=DEFAULT_IMAGE)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--size", type=int, default=256, help="output width and height (px)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    threads = configure_threads()
    device = select_device(args.device)
    with (
        tempfile.TemporaryDirectory(prefix="singan-latency-") as tmp,
        serve_subprocess(Path(tmp), args.device) as client,
    ):
        model = train(client, args.image, args.preset)
        print(
            f"model {model['id']}: {model['width']}x{model['height']}, {model['num_scales']} scales; "
            f"generate {args.size}x{args.size}, {args.warmup} warm-up + {args.repeats} timed calls each, {device}, {threads} threads"
        )
        daemon_s, compute_s = time_daemon(client, model["id"], args.size, args.warmup, args.repeats)
        local_s = time_in_process(
            ModelStore(Path(tmp) / "store").path(model["id"]), device, args.size, args.warmup, args.repeats
        )
    rows = [
        ("daemon round trip", daemon_s),
        ("  of which compute (daemon)", compute_s),
        ("in-process sample()", local_s),
    ]
    print(f"{'':30} {'median ms':>10} {'p90 ms':>10}")
    for label, seconds in rows:
        median, p90 = summary(seconds)
        print(f"{label:30} {median:10.1f} {p90:10.1f}")
    overhead = statistics.median(daemon_s) - statistics.median(local_s)
    print(f"overhead (daemon - in-process, medians): {overhead * 1000:.1f} ms")


if __name__ == "__main__":
    main()
