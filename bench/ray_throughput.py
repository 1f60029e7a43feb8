"""Training throughput of the daemon alone vs on a local Ray cluster (``singan serve --ray``).

    python bench/ray_throughput.py [--preset tiny] [--max-size PX] [--out FILE.json]

Eight trainings (the eight images of ../shared/images, preset tiny by default), submitted at once
through the protocol client, three ways, one after the other on a fresh store each:

* local: ``singan serve --threads 1`` without ``--ray`` (its worker trains one after another);
* ray-1: a local Ray head with 1 CPU (``local_head`` of tests/cluster_local.py), the daemon with
  ``--ray ADDRESS --ray-cpus 1``: one training at a time, in a Ray worker;
* ray-2: the same with a 2-CPU head: two trainings at a time.

Every torch pool has one thread (``OMP_NUM_THREADS=1``, ``--threads 1``, ``--ray-cpus 1``), so
the runs differ only in where and how many trainings run at once. Prints the wall seconds from
the first submit to the last result, trainings per hour, and the mean seconds per training as the
daemon's log reports them; writes the same as JSON to ``--out``. The machine should be otherwise
idle: every figure is wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from protocol.wire import Image
from singan_cli.demo import serve_subprocess

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' Ray head, shared with this bench
from cluster_local import local_head  # noqa: E402

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
_DONE = re.compile(r"job \S+ \(train \S+\) done(?: on Ray)? in ([0-9.]+) s")


def wire_image(path: Path) -> Image:
    with PILImage.open(path) as im:
        array = np.ascontiguousarray(np.asarray(im.convert("RGB")))
    return Image("image", array.shape[1], array.shape[0], "RGB", array.tobytes())


def run(images: list[Path], params: dict, workdir: Path, args: list[str], env: dict[str, str]) -> dict:
    """Train ``images`` at once through one daemon; wall seconds and per-training seconds."""
    with serve_subprocess(workdir, "cpu", ["--log-level", "info", *args], env) as client:
        start = time.perf_counter()
        jobs = [client.submit("train", {"name": path.stem, **params}, [wire_image(path)]) for path in images]
        for job in jobs:
            job.wait(timeout=3600)
        wall = time.perf_counter() - start
    each = [float(m) for m in _DONE.findall((workdir / "daemon.log").read_text())]
    return {
        "wall_s": wall,
        "per_hour": len(images) * 3600 / wall,
        "mean_training_s": statistics.fmean(each) if each else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument(
        "--max-size", type=int, default=None, help="longest side of the finest scale (default: the preset's)"
    )
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "ray-throughput.json")
    opts = parser.parse_args()
    images = sorted(p for p in IMAGES.iterdir() if p.suffix in (".png", ".jpg"))[:8]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    params = {"preset": opts.preset, **({"max_size": opts.max_size} if opts.max_size else {})}
    results = {}
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp:
        root = Path(tmp)
        (root / "local").mkdir()
        results["local"] = run(images, params, root / "local", ["--threads", "1"], env)
        for cpus in (1, 2):
            name = f"ray-{cpus}"
            (root / name).mkdir()
            with local_head(cpus, root / f"{name}-head.log") as head:
                results[name] = run(
                    images, params, root / name, ["--ray", head.address, "--ray-cpus", "1"], {**env, **head.env}
                )
    print(
        f"{len(images)} trainings {params}, one torch thread each, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'run':<8} {'wall s':>8} {'trainings/h':>12} {'s/training':>11} {'speed-up':>9}")
    for name, r in results.items():
        mean = f"{r['mean_training_s']:.1f}" if r["mean_training_s"] else "-"
        print(
            f"{name:<8} {r['wall_s']:>8.1f} {r['per_hour']:>12.0f} {mean:>11} {results['local']['wall_s'] / r['wall_s']:>8.2f}x"
        )
    opts.out.write_text(
        json.dumps(
            {
                "params": params,
                "load_average": os.getloadavg()[0],
                "trainings": len(images),
                "cpus": os.cpu_count(),
                "runs": results,
            },
            indent=2,
        )
    )
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
