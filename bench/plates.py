"""Background plates: the photo's composition at the render's size, checked per plate.

    python bench/plates.py [--photos mountains3 seascape tree] [--size 1920 1080] [--preset tiny]
                           [--seeds 2] [--out DIR]

Per photo (from ../shared/images/reference) and method, at W x H (default 1920 x 1080):

    instant   singan_core.plates.instant_plate: GPNN retargeting + self-example upscaling, no model
    trained   singan_core.plates.trained_plate: SinGAN retargeting (gen_start_scale 1) of a ``--preset``
              model (trained here, one torch thread), the lift, self-example upscaling
    controls  stretched: the photo bicubic-stretched to W x H; coarse7.5: a SinGAN sample from the
              coarsest scale (gen_start_scale 0) 7.5 x the model's size, bicubic to W x H (the old
              lift's canvas); tiled: the photo repeated at its own scale

Checks (:func:`checks`; thresholds from the issue's acceptance list):

    horizon   |plate's - photo's strongest horizontal edge| <= 0.05 (relative heights, 0 = top; the plate's
              edge of the photo's polarity, metrics.horizon_edge)
    profile   row_profile_correlation(plate, photo) >= 0.8: the row-mean colour profiles (mean colour
              of each row, along the height) of the plate and of the photo fitted to the plate's height
    sharp     sharpness(plate) / sharpness(photo bicubic-enlarged to the plate's height) >= 1.5
    copy      copy_score(plate, photo) (largest verbatim region, at the photo's scale) and
              copied_fraction(plate, photo) (all textured verbatim regions >= 256 px) <= 0.2

plus the pixel diversity of the seeds (SinGAN's score) and CPU seconds per plate (process time, one
torch thread: the shared machine's wall time is not comparable). Writes a contact sheet per photo
(photo fitted | instant seeds | trained seeds | controls, each scaled to 480 px wide) and every plate
at full size to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from PIL import Image

from singan_core.config import preset
from singan_core.full_resolution import lift_source
from singan_core.imageio import load_image, save_image, to_uint8
from singan_core.metrics import (
    copied_fraction,
    copy_score,
    horizon_edge,
    pixel_diversity,
    row_profile_correlation,
    sharpness,
)
from singan_core.model import SinGANPyramid
from singan_core.plates import instant_plate, trained_plate
from singan_core.pyramid import resize
from singan_core.sampling import sample
from singan_core.training import new_pyramid, train

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "images" / "reference"
MAX_HORIZON_ERROR = 0.05
MIN_PROFILE_CORRELATION = 0.8
MIN_SHARPNESS_RATIO = 1.5
MAX_COPIED = 0.2
COARSE_CANVAS = 7.5  # the old plate lift's SinGAN canvas, x the model's size


def bicubic_fit(photo: torch.Tensor, height: int) -> torch.Tensor:
    """The photo bicubic-enlarged (or reduced) to ``height`` px, aspect kept: the sharpness reference."""
    hs, ws = photo.shape[-2:]
    return resize(photo, (height, round(ws * height / hs))).clamp(-1, 1)


def checks(plate: torch.Tensor, photo: torch.Tensor) -> dict[str, float | bool]:
    """The plate checks of one (1, 3, H, W) plate against its (1, 3, Hs, Ws) photo, in [-1, 1]."""
    photo_horizon, polarity = horizon_edge(photo)
    horizon, _ = horizon_edge(plate, polarity)
    result: dict[str, float | bool] = {
        "horizon": horizon,
        "photo_horizon": photo_horizon,
        "profile": row_profile_correlation(plate, photo),
        "sharp": sharpness(plate) / max(sharpness(bicubic_fit(photo, plate.shape[-2])), 1e-12),
        "copy": copy_score(plate, photo),
        "copied": copied_fraction(plate, photo),
    }
    result["horizon_ok"] = abs(horizon - photo_horizon) <= MAX_HORIZON_ERROR
    result["profile_ok"] = result["profile"] >= MIN_PROFILE_CORRELATION
    result["sharp_ok"] = result["sharp"] >= MIN_SHARPNESS_RATIO
    result["copy_ok"] = max(result["copy"], result["copied"]) <= MAX_COPIED
    return result


def controls(photo: torch.Tensor, pyramid: SinGANPyramid | None, width: int, height: int) -> dict[str, torch.Tensor]:
    """The negative controls at width x height (see the module docstring)."""
    hs, ws = photo.shape[-2:]
    reps = (-(-height // hs), -(-width // ws))
    out = {
        "stretched": resize(photo, (height, width)).clamp(-1, 1),
        "tiled": photo.repeat(1, 1, *reps)[..., :height, :width],
    }
    if pyramid is not None:
        fh, fw = pyramid.sizes[-1]
        coarse = sample(pyramid, 1, COARSE_CANVAS, COARSE_CANVAS * (width / height) / (fw / fh), 0, seed=0)
        out["coarse7.5"] = resize(coarse, (height, width)).clamp(-1, 1)
    return out


def _timed(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` and its CPU seconds (process time)."""
    start = time.process_time()
    x = fn(*args, **kwargs)
    return x, time.process_time() - start


def _row(name: str, method: str, c: dict, seconds: float | None) -> str:
    flags = "".join("." if c[k] else "X" for k in ("horizon_ok", "profile_ok", "sharp_ok", "copy_ok"))
    cpu = f"{seconds:7.1f}" if seconds is not None else "      -"
    return (
        f"{name:11s} {method:10s} {c['horizon']:.3f}/{c['photo_horizon']:.3f} {c['profile']:7.3f} {c['sharp']:6.2f} "
        f"{c['copy']:6.3f} {c['copied']:6.3f} {cpu} {flags}"
    )


def _sheet(tiles: list[torch.Tensor], path: Path, width: int = 480) -> None:
    images = []
    for t in tiles:
        h = round(t.shape[-2] * width / t.shape[-1])
        images.append(Image.fromarray(to_uint8(resize(t, (h, width)).clamp(-1, 1))))
    sheet = Image.new("RGB", (width * len(images) + 4 * (len(images) - 1), max(i.height for i in images)), "white")
    for i, im in enumerate(images):
        sheet.paste(im, (i * (width + 4), 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", nargs="+", default=["mountains3", "seascape", "tree"])
    parser.add_argument("--size", nargs=2, type=int, default=[1920, 1080], metavar=("W", "H"))
    parser.add_argument("--preset", default="tiny", help="model preset of the trained plates ('none': instant only)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "plates")
    args = parser.parse_args()
    torch.set_num_threads(1)
    width, height = args.size
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()}")
    print(
        "photo       method     horizon(plate/photo) profile sharp  copy  copied  cpu_s  flags(horizon,profile,sharp,copy)"
    )
    for name in args.photos:
        photo = load_image(REFERENCE / f"{name}.png")
        tiles = [bicubic_fit(photo, height)]
        pyramid = None
        if args.preset != "none":
            pyramid, seconds = _timed(train, new_pyramid(photo, preset(args.preset), torch.device("cpu")))
            print(
                f"{name:11s} train-{args.preset:4s} {seconds:.1f} CPU s, {pyramid.num_scales} scales, finest {pyramid.sizes[-1]}"
            )
        makers = {"instant": (instant_plate, (photo, width, height))}
        if pyramid is not None:
            makers["trained"] = (trained_plate, (pyramid, lift_source(pyramid, photo), width, height))
        for method, (make, make_args) in makers.items():
            plates = []
            for s in range(args.seeds):
                plate, seconds = _timed(make, *make_args, seed=s)
                plates.append(plate)
                tiles.append(plate)
                save_image(plate, args.out / f"{name}_{method}{s}.png")
                print(_row(name, f"{method}{s}", checks(plate, photo), seconds), flush=True)
            if len(plates) > 1:
                print(
                    f"{name:11s} {method:10s} pixel diversity of {len(plates)} seeds: {pixel_diversity(torch.cat(plates), photo):.3f}"
                )
        for method, x in controls(photo, pyramid, width, height).items():
            tiles.append(x)
            print(_row(name, method, checks(x, photo), None), flush=True)
        _sheet(tiles, args.out / f"{name}_{width}x{height}.png")
    print(f"load average after: {os.getloadavg()}")
    print(f"contact sheets: {args.out}")


if __name__ == "__main__":
    main()
