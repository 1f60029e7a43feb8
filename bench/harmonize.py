"""Harmonization at the canvas's resolution: the paper's method against the new ones.

    python bench/harmonize.py [--preset draft] [--models DIR] [--out DIR] [--cases night daylight ...]

Four composites from ``shared/images``, object and background known separately: an elliptical
cut-out of one photo pasted onto another image upscaled (bicubic) to a canvas of ``--canvas`` px
on its longer side (night photo: rocket.jpg; daylight photo: balloons.png; painting:
starry_night.png; texture: brick.png). Each background's model (``--preset``) is trained once on
the background image itself and cached in ``--models``.

Per case and method (naive = the composite unchanged; ``paper``; ``guided``; ``reinhard``;
``reinhard_guided``, the default; ``analogies``), default scale, seed 0:

    dE before/after  CIE Delta E between the object's mean L*a*b* and the ring 60-100 px around it
    halo             mean |result - true background| (0..255) 0-40 px outside the object
    grad             correlation of the object's luminance gradients with the pasted object's
    tSWD             patch-SWD (7x7) of the object's patches against the background's (x 1000)
    dSWD             the same on patches minus their own mean colour: texture alone, not colour
    bSWD             the same on the images' finest band (image minus its Gaussian blur, sigma 1 px):
                     the grain / weave / stroke edges at the canvas's scale (x 1000)

Then CPU seconds (this process's CPU time, torch threads as set by ``--threads``) and peak resident
memory above the loaded model for one harmonization of a ``--big`` px canvas with each of
``--timed`` (the first case's model). Writes a contact sheet per case (before | paper |
reinhard_guided | analogies, crops at 1:1 around the object) and ``table.json`` to ``--out``
(default: bench/results/harmonize/).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from singan_core.config import preset
from singan_core.harmonization import METHODS, harmonize
from singan_core.harmonization_metrics import gradient_correlation, halo, ring_delta_e, texture_swd
from singan_core.imageio import from_uint8, to_uint8
from singan_core.storage import load_pyramid, read_meta
from singan_core.workflow import is_model_dir, run_training, start_training

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
RING_PX, BAND_PX = (60, 100), 40
CROP = 640  # side of the 1:1 crops on the contact sheets
TARGETS = (
    "dE reduced >= 40 %, never increased; halo <= 25 % of paper's; grad >= 0.6; tSWD < naive's; 2048 px <= 2 s, <= 2 GB"
)


@dataclass(frozen=True)
class Case:
    """A composite: ``obj``'s ellipse (centre and radii as fractions of its width/height) pasted at
    ``at`` (centre, fractions of the canvas) with a height of ``height`` x the canvas's height."""

    name: str
    background: str
    obj: str
    ellipse: tuple[float, float, float, float]
    at: tuple[float, float]
    height: float


CASES = {
    "night": Case("night", "rocket.jpg", "coffee.png", (0.43, 0.5, 0.36, 0.46), (0.25, 0.35), 0.35),
    "daylight": Case("daylight", "reference/balloons.png", "astronaut.png", (0.5, 0.42, 0.3, 0.36), (0.3, 0.4), 0.4),
    "painting": Case(
        "painting", "reference/starry_night.png", "chelsea.png", (0.55, 0.45, 0.32, 0.45), (0.3, 0.35), 0.35
    ),
    "texture": Case("texture", "brick.png", "coffee.png", (0.43, 0.5, 0.36, 0.46), (0.5, 0.5), 0.35),
}


def rgb(path: Path) -> Image.Image:
    return Image.open(path).convert("RGB")


def composite(case: Case, canvas: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(background, naive composite, pasted object on the canvas, mask) at ``canvas`` px longer side."""
    bg = rgb(IMAGES / case.background)
    s = canvas / max(bg.size)
    bg = bg.resize((round(bg.width * s), round(bg.height * s)), Image.BICUBIC)
    obj = rgb(IMAGES / case.obj)
    cx, cy, rx, ry = case.ellipse
    box = (
        round((cx - rx) * obj.width),
        round((cy - ry) * obj.height),
        round((cx + rx) * obj.width),
        round((cy + ry) * obj.height),
    )
    obj = obj.crop(box)
    h = round(case.height * bg.height)
    obj = obj.resize((round(obj.width * h / obj.height), h), Image.LANCZOS)
    left, top = round(case.at[0] * bg.width - obj.width / 2), round(case.at[1] * bg.height - obj.height / 2)
    shape = Image.new("L", obj.size, 0)
    ImageDraw.Draw(shape).ellipse((0, 0, obj.width - 1, obj.height - 1), fill=255)
    mask_img = Image.new("L", bg.size, 0)
    mask_img.paste(shape, (left, top))
    pasted = bg.copy()
    pasted.paste(obj, (left, top))
    naive = bg.copy()
    naive.paste(obj, (left, top), shape)

    def tensor(im):
        return from_uint8(np.asarray(im))

    mask = torch.from_numpy(np.asarray(mask_img) > 127)[None, None]
    return tensor(bg), tensor(naive), tensor(pasted), mask


def model(case: Case, preset_name: str, models: Path):
    """The background's model (trained into ``models/<stem>-<preset>`` the first time)."""
    image = IMAGES / case.background
    path = models / f"{image.stem}-{preset_name}"
    if not (is_model_dir(path) and read_meta(path).is_complete):
        start = time.process_time()
        run_training(start_training(image, path, preset(preset_name), preset_name, torch.device("cpu"), overwrite=True))
        print(f"{image.name}: {preset_name} model trained in {time.process_time() - start:.0f} CPU s", flush=True)
    return load_pyramid(path, "cpu")[0]


def measure(result, bg, naive, pasted, mask) -> dict:
    return {
        "dE": ring_delta_e(result, mask, *RING_PX),
        "halo": halo(result, bg, mask, BAND_PX),
        "grad": gradient_correlation(result, pasted, mask),
        "tswd": 1000 * texture_swd(result, bg, mask),
        "dswd": 1000 * texture_swd(result, bg, mask, detail=True),
        "bswd": 1000 * texture_swd(result, bg, mask, band_sigma=1.0),
    }


def crop_box(mask: torch.Tensor) -> tuple[int, int, int, int]:
    """A CROP x CROP box centred on the mask (clipped to the canvas)."""
    ys, xs = torch.nonzero(mask[0, 0], as_tuple=True)
    h, w = mask.shape[-2:]
    cy, cx = int(ys.float().mean()), int(xs.float().mean())
    top, left = min(max(0, cy - CROP // 2), max(0, h - CROP)), min(max(0, cx - CROP // 2), max(0, w - CROP))
    return left, top, min(w, left + CROP), min(h, top + CROP)


def contact_sheet(images: list[tuple[str, torch.Tensor]], mask: torch.Tensor, path: Path) -> None:
    box = crop_box(mask)
    crops = [(label, Image.fromarray(to_uint8(x)).crop(box)) for label, x in images]
    w, h = crops[0][1].size
    sheet = Image.new("RGB", (len(crops) * (w + 8), h + 24), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, crop) in enumerate(crops):
        sheet.paste(crop, (i * (w + 8), 24))
        draw.text((i * (w + 8) + 4, 6), label, fill="black")
    sheet.save(path)


def time_big(case: Case, pyramid, big: int, method: str, base: int) -> dict:
    """CPU seconds and peak RSS growth (MiB) over ``base`` (ru_maxrss, KiB, taken with the models
    loaded) of one harmonization of a ``big`` px canvas. The peak is the process's: a timing after
    a costlier one reports the costlier one's peak."""
    _, naive, _, mask = composite(case, big)
    start = time.process_time()
    harmonize(pyramid, naive, mask, method=method)
    seconds = time.process_time() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    return {"canvas": list(naive.shape[-2:]), "cpu_seconds": seconds, "peak_rss_mib": peak / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="draft")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--methods", nargs="+", default=[m for m in METHODS], choices=list(METHODS))
    ap.add_argument("--canvas", type=int, default=1280)
    ap.add_argument("--big", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timed", nargs="+", default=["reinhard_guided", "analogies"], choices=list(METHODS))
    ap.add_argument("--models", type=Path, default=Path("bench/results/harmonize/models"))
    ap.add_argument("--out", type=Path, default=Path("bench/results/harmonize"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()}", flush=True)
    pyramids = {name: model(CASES[name], args.preset, args.models) for name in args.cases}
    first = args.cases[0]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    timing = {m: time_big(CASES[first], pyramids[first], args.big, m, base) for m in args.timed}
    table = {"preset": args.preset, "targets": TARGETS, "timing": timing}
    for m, t in timing.items():
        print(f"{args.big} px ({first}), {m}: {t}", flush=True)
    for name in args.cases:
        bg, naive, pasted, mask = composite(CASES[name], args.canvas)
        pyramid = pyramids[name]
        rows = {"naive": measure(naive, bg, naive, pasted, mask)}
        outputs = [("before", naive)]
        for method in args.methods:
            result = harmonize(pyramid, naive, mask, method=method).image
            rows[method] = measure(result, bg, naive, pasted, mask)
            if method in ("paper", "reinhard_guided", "analogies"):
                outputs.append((method, result))
        contact_sheet(outputs, mask, args.out / f"{name}_sheet.png")
        table[name] = {"canvas": list(naive.shape[-2:]), "num_scales": pyramid.num_scales, "rows": rows}
        print(f"\n{name} ({naive.shape[-1]}x{naive.shape[-2]} px, {args.preset}, K={pyramid.num_scales})")
        print(f"  {'method':<16}{'dE':>7}{'dE %':>7}{'halo':>7}{'grad':>7}{'tSWD':>8}{'dSWD':>8}{'bSWD':>8}")
        for method, r in rows.items():
            change = 100 * (r["dE"] / rows["naive"]["dE"] - 1)
            print(
                f"  {method:<16}{r['dE']:7.1f}{change:+7.0f}{r['halo']:7.2f}{r['grad']:7.3f}{r['tswd']:8.2f}{r['dswd']:8.3f}{r['bswd']:8.3f}",
                flush=True,
            )
    print(f"\nload average after: {os.getloadavg()}")
    (args.out / "table.json").write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
