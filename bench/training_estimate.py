"""Calibrate and check the daemon's training cost model (:mod:`daemon.estimate`), issue 28 item 4.

Trains a preset on one image with a progress report every iteration and records the CPU seconds
of each iteration (``time.process_time``: one torch thread, so the other engineers' load changes
the wall time but hardly the CPU time). Prints, per scale, the CPU seconds per iteration beside
the scale's cost unit (pixels x nfc^2), the least-squares fit ``seconds = a + b * unit`` that
:data:`daemon.estimate.OVERHEAD_PIXELS` (= a / b / nfc_base^2) comes from, and what the ETA shown at 5, 10, 25
and 50 % of the training would have said against the time that was really left, with the old
pixel-weighted fraction and with the calibrated one (the ETA extrapolates the speed measured so
far in both).

Usage::

    OMP_NUM_THREADS=1 python -m bench.training_estimate --preset draft --image IMAGE [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from daemon.estimate import CalibratedEstimate
from singan_core.imageio import load_image
from singan_core.nets import nfc_at
from singan_core.config import preset
from singan_core.training import TrainingEstimate, TrainProgress, new_pyramid, train

CHECKPOINTS = (0.05, 0.10, 0.25, 0.50)


def record(preset_name: str, image: Path, iterations: int | None = None) -> tuple[list[tuple[int, int, float]], object]:
    """Train (``iterations`` per scale instead of the preset's, if given); [(scale, iteration, CPU
    seconds since the start)] and the trained pyramid."""
    config = preset(preset_name)
    if iterations is not None:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, iterations=iterations))
    pyramid = new_pyramid(load_image(image), config, torch.device("cpu"))
    timeline: list[tuple[int, int, float]] = []
    start = time.process_time()

    def on_progress(p: TrainProgress) -> None:
        timeline.append((p.scale, p.iteration, time.process_time() - start))

    train(pyramid, on_progress, report_every=1)
    return timeline, pyramid


def per_scale(timeline, pyramid) -> list[dict]:
    """CPU seconds per iteration of each scale (median of its iterations) and its cost unit."""
    rows, previous = [], 0.0
    for k, (h, w) in enumerate(pyramid.sizes):
        times = [t for scale, _, t in timeline if scale == k]
        steps = np.diff([previous, *times])
        previous = times[-1]
        rows.append(
            {
                "scale": k,
                "size": f"{w}x{h}",
                "unit": h * w * nfc_at(k, pyramid.config.net) ** 2,
                "cpu_s_per_iteration": float(np.median(steps)),
                "cpu_s": float(steps.sum()),
            }
        )
    return rows


def full_timeline(rows: list[dict], iterations: int) -> list[tuple[int, int, float]]:
    """The timeline of a training of ``iterations`` per scale at the measured CPU seconds per
    iteration of each scale (a shortened calibration run stands for the full training)."""
    timeline, t = [], 0.0
    for row in rows:
        for i in range(1, iterations + 1):
            t += row["cpu_s_per_iteration"]
            timeline.append((row["scale"], i, t))
    return timeline


def etas(timeline, estimate) -> dict:
    """ETA / real time left at each checkpoint fraction (1.0 = exact), replaying the timeline: the
    calibrated estimate's own rule (:meth:`CalibratedEstimate.eta_at`), or for the old pixel
    weights the old one (speed since the start)."""
    total = timeline[-1][2]
    out, i = {}, 0
    for scale, iteration, t in timeline:
        p = TrainProgress(scale, len(estimate._cost), iteration, estimate.iterations, 0.0, 0.0, 0.0, 0.0)
        fraction = estimate.fraction(p)
        eta = (
            estimate.eta_at(fraction, t) if isinstance(estimate, CalibratedEstimate) else t * (1 - fraction) / fraction
        )
        while i < len(CHECKPOINTS) and fraction >= CHECKPOINTS[i]:
            out[f"{CHECKPOINTS[i]:.2f}"] = None if eta is None else round(eta / (total - t), 2)
            i += 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="draft")
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument(
        "--iterations",
        type=int,
        help="iterations per scale of the calibration run (default: the preset's); "
        "the ETA replay then uses the preset's count at the measured per-iteration costs",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    timeline, pyramid = record(args.preset, args.image, args.iterations)
    rows = per_scale(timeline, pyramid)
    if args.iterations is not None:
        timeline = full_timeline(rows, preset(args.preset).train.iterations)
    units = np.array([r["unit"] for r in rows], float)
    seconds = np.array([r["cpu_s_per_iteration"] for r in rows])
    b, a = np.polyfit(units, seconds, 1)
    fresh = new_pyramid(load_image(args.image), preset(args.preset), torch.device("cpu"))  # the full iteration count
    result = {
        "preset": args.preset,
        "image": args.image.name,
        "calibration_iterations": args.iterations,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "total_cpu_s": round(timeline[-1][2], 1),
        "scales": rows,
        "fit": {
            "a_s": a,
            "b_s_per_unit": b,
            "overhead_units": a / b,
            "overhead_pixels": a / b / pyramid.config.net.nfc_base**2,
        },
        "eta_over_real_pixels": etas(timeline, TrainingEstimate(fresh)),
        "eta_over_real_calibrated": etas(timeline, CalibratedEstimate(fresh)),
    }
    for row in rows:
        print(
            f"scale {row['scale']} {row['size']:>8} unit {row['unit']:>12.0f}  {row['cpu_s_per_iteration'] * 1000:7.1f} ms/it"
        )
    print(json.dumps({k: v for k, v in result.items() if k != "scales"}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
