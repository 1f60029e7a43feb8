"""How long a cancel takes to land in a large ``generate`` (issue 29: "a cancel lands within 2 s at
any size"): a fresh daemon (one torch thread) trains a ``tiny`` model of ``shared/images/chelsea.png``,
then for each case asks for ``n`` model-scale samples (``detail: model``) at ``width`` x ``height``
px, cancels ``delay`` seconds after the finest scale began (the progress event of the scale before
it), and measures wall seconds and the daemon's CPU seconds (``/proc/PID/stat`` utime + stime)
from the cancel request to the ``cancelled`` reply.

    python bench/cancel_latency.py [--runs 2] [--delay 0.5]

Cases: the ``tiny`` model (48 x 32 px) at its largest output, 3072 x 2048 px, n = 1, 2, 4; a
``tiny`` model trained at ``max_size`` 128 (128 x 85 px) at the largest reply (64 Mi px): n = 2
at 8192 x 4096 and n = 4 at 4096 x 4096 px, with ``--memory-budget`` 16 GiB so that the budget
admits them. Prints one line per run and the load average before and after. Linux only. Measure
on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from daemon_memory import start  # also puts tests/ on sys.path
from test_watch import _cpu_seconds as cpu_seconds

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image as PILImage  # noqa: E402

from protocol.client import Client, DaemonError  # noqa: E402
from protocol.wire import Image  # noqa: E402

IMAGE = REPO.parent / "shared" / "images" / "chelsea.png"

CASES = (
    (None, 1, 3072, 2048),
    (None, 2, 3072, 2048),
    (None, 4, 3072, 2048),
    (128, 2, 8192, 4096),
    (128, 4, 4096, 4096),
)
"""(training ``max_size`` or None for the preset's, n, width, height)"""
BUDGET_MIB = 16384


def train_tiny(client: Client, max_size: int | None) -> dict:
    """The model (``get_model``'s dict) of a ``tiny`` training of :data:`IMAGE`."""
    with PILImage.open(IMAGE) as im:
        rgb = im.convert("RGB")
    image = Image("image", rgb.width, rgb.height, "RGB", rgb.tobytes())
    params = {"name": "chelsea", "preset": "tiny", "max_size": max_size}
    model = client.submit("train", params, [image]).wait(timeout=900)["model"]["id"]
    return client.get_model(model)


def one_run(
    client: Client, pid: int, model: dict, n: int, width: int, height: int, delay: float
) -> tuple[float, float]:
    """(wall s, daemon CPU s) from the cancel request to the ``cancelled`` reply."""
    finest: list[float] = []
    before_finest = (model["num_scales"] - 1) / model["num_scales"]  # one batch: n <= the batch size

    def on_progress(job, progress: dict) -> None:
        if not finest and progress["fraction"] >= before_finest - 1e-9:
            finest.append(time.monotonic())

    params = {"model": model["id"], "n": n, "width": width, "height": height, "detail": "model"}
    job = client.submit("generate", params, on_progress=on_progress)
    while not job.done and (not finest or time.monotonic() < finest[0] + delay):
        client.poll(0.01)
    if job.done:
        job.wait(timeout=0)  # raises its error
        raise RuntimeError("the job finished before its cancel was sent; lower --delay")
    cpu, wall = cpu_seconds(pid), time.monotonic()
    job.cancel()
    try:
        job.wait(timeout=120)
        raise RuntimeError("the job finished before its cancel landed; lower --delay")
    except DaemonError as error:
        if error.code != "cancelled":
            raise
    return time.monotonic() - wall, cpu_seconds(pid) - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--delay", type=float, default=0.5, help="seconds into the finest scale")
    args = parser.parse_args()
    print("load average before:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        proc, endpoint = start(Path(tmp) / "store", BUDGET_MIB)
        try:
            with Client(endpoint, timeout=30) as client:
                models: dict[int | None, dict] = {}
                for max_size, n, width, height in CASES:
                    if max_size not in models:
                        models[max_size] = train_tiny(client, max_size)
                    for run in range(args.runs):
                        wall, cpu = one_run(client, proc.pid, models[max_size], n, width, height, args.delay)
                        print(
                            f"n={n} {width}x{height} run {run}: {wall:.2f} s wall, {cpu:.2f} daemon CPU s", flush=True
                        )
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    print("load average after:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
