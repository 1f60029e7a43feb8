"""A tiny training's wall time when the machine is idle and when one other process keeps one core
busy (an artist's Krita or Blender), with the daemon's old and new thread policy.

    python bench/contention.py [--image shared/images/chelsea.png] [--iterations 80] [--json out.json]

Policies: ``old`` = torch threads = usable cores (:func:`singan_core.device.configure_threads`,
what the daemon's worker used before); ``new`` = usable cores - 1, at least 1
(:func:`singan_core.device.shared_machine_threads`, the daemon's policy now). Each training runs in
a fresh process (OMP_NUM_THREADS unset) so that OpenMP starts with the policy's pool; the
competitor is a Python busy loop. Prints a table: seconds, and busy / idle ratios per policy
(target for ``new``: at most 1.6). Timings on a shared machine are noisy: compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import dataclasses, sys, time, torch
from singan_core.config import preset
from singan_core.device import configure_threads, shared_machine_threads
from singan_core.imageio import load_image
from singan_core.training import new_pyramid, train
threads = configure_threads() if sys.argv[1] == "old" else shared_machine_threads()
torch.set_num_threads(threads)
config = preset("tiny")
config = dataclasses.replace(config, train=dataclasses.replace(config.train, iterations=int(sys.argv[3])))
pyramid = new_pyramid(load_image(sys.argv[2]), config, torch.device("cpu"))
start = time.perf_counter()
train(pyramid)
print(threads, time.perf_counter() - start)
"""


def run(policy: str, image: Path, iterations: int, busy: bool) -> tuple[int, float]:
    """(threads, seconds) of one tiny training in a fresh process, with a busy loop beside it if ``busy``."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, policy, str(image), str(iterations)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout.split()
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    return int(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", type=Path, default=REPO.parent / "shared" / "images" / "chelsea.png")
    parser.add_argument("--iterations", type=int, default=80, help="Iterations per scale (tiny: 80).")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally that stops a competitor
    rows = {}
    for policy in ("old", "new"):
        for busy in (False, True):
            threads, seconds = run(policy, args.image, args.iterations, busy)
            rows[f"{policy}-{'busy' if busy else 'idle'}"] = {"threads": threads, "seconds": round(seconds, 2)}
            print(
                f"{policy:4s} policy, {threads} thread(s), {'one busy competitor' if busy else 'idle':20s} {seconds:7.1f} s",
                flush=True,
            )
    for policy in ("old", "new"):
        ratio = rows[f"{policy}-busy"]["seconds"] / rows[f"{policy}-idle"]["seconds"]
        rows[f"{policy}-ratio"] = round(ratio, 2)
        print(f"{policy:4s} policy: busy / idle = {ratio:.2f}" + ("  (target <= 1.6)" if policy == "new" else ""))
    print(f"{os.cpu_count()} CPUs, load average at the end {os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d %H:%M')}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
