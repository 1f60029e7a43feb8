"""What a host's UI feels of the client session (protocol.session): pump times while a training
runs, and how long a stopped daemon takes to show as unreachable.

    python bench/session_pump.py [IMAGE] [--seconds 20] [--preset draft] [--tick 0.05]

Starts ``singan serve`` in a subprocess (free loopback port, temporary store), starts a training
of IMAGE (default ../shared/images/chelsea.png) through a :class:`protocol.session.Task`, pumps
the session every ``tick`` s for ``seconds`` (as Krita's QTimer or Blender's modal timer does),
then cancels it and pumps until it has ended. Prints the median, p99 and longest pump (ms) and the
number of progress updates; then, for a port nobody listens on, the seconds from asking to the
``unreachable`` state (3 tries). The bpy tests assert only honest bounds (a step under 0.25 s,
unreachable within 3 s); these are the numbers.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image as PILImage

from singan_cli.demo import serve_subprocess
from protocol.session import ConnectionState, Session, Task
from protocol.wire import Image

DEFAULT_IMAGE = Path(__file__).resolve().parents[2] / "shared" / "images" / "chelsea.png"


def pump_times(endpoint: str, image: Path, preset: str, seconds: float, tick: float) -> tuple[list[float], int, float]:
    """(each pump's seconds, progress updates seen, seconds from cancel to the task's end)."""
    with PILImage.open(image) as im:
        rgb = im.convert("RGB")
    session = Session(endpoint)
    task = Task(session, "Training")
    updates = []
    task.changed.connect(lambda t: updates.append(t.phase))
    task.submit(
        "train",
        {"name": image.stem, "preset": preset},
        [Image("image", rgb.width, rgb.height, "RGB", rgb.tobytes())],
        lambda data, images: "trained",
        "training",
    )
    durations, cancelled_at = [], None
    end = time.monotonic() + seconds
    while not task.finished:
        if cancelled_at is None and time.monotonic() > end:
            task.cancel()
            cancelled_at = time.monotonic()
        started = time.perf_counter()
        session.pump()
        durations.append(time.perf_counter() - started)
        time.sleep(tick)
    session.close()
    return durations, len(updates), time.monotonic() - (cancelled_at or time.monotonic())


def unreachable_seconds(tick: float) -> float:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    session = Session(endpoint)
    started = time.monotonic()
    session.connect()
    while session.state is not ConnectionState.unreachable:
        session.pump()
        time.sleep(tick)
    session.close()
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", nargs="?", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--preset", default="draft")
    parser.add_argument("--tick", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="session-pump-") as tmp, serve_subprocess(Path(tmp), "cpu") as client:
        durations, updates, cancel_s = pump_times(client.endpoint, args.image, args.preset, args.seconds, args.tick)
    ms = sorted(d * 1000 for d in durations)
    print(
        f"pumps while training: {len(ms)}, median {statistics.median(ms):.2f} ms, "
        f"p99 {ms[int(0.99 * (len(ms) - 1))]:.2f} ms, longest {ms[-1]:.2f} ms; {updates} task updates; "
        f"cancel to end {cancel_s:.2f} s"
    )
    tries = [unreachable_seconds(args.tick) for _ in range(3)]
    print("stopped daemon shown unreachable after: " + ", ".join(f"{s:.2f} s" for s in tries))


if __name__ == "__main__":
    main()
