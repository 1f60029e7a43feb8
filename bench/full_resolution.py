"""Full-resolution output: four ways to get W x H pixels from one image, side by side.

    python bench/full_resolution.py [--images brick chelsea ...] [--sizes 512 1024] [--big 2048 --big-image brick]
    python bench/full_resolution.py --textures [--quick] [--texture-big 2048]   # the texture cases

Per image (tiny-preset model, trained once and cached in ``--models``) and output size W x H, at
feature scale 1 (output px = source px):

    model    the model-scale sample at W x H pixels (features at the model's size)
    bicubic  a model-scale sample at the right feature scale, bicubic-upsampled to W x H
    lift     SinGAN's layout lifted with the source's patches (singan_core.full_resolution)
    instant  patch synthesis from noise, no model (singan_core.full_resolution.instant)

Per method: seconds per image, peak memory above the process's baseline (CPU: resident set sampled
every 5 ms; CUDA: max allocated), patch-SWD vs the source, feature-scale error (|period / source
period - 1|; correlation length for aperiodic textures), sharpness ratio (Laplacian variance vs
the source's), copied-region fraction (``copied_region_fraction``, as ``--textures``), pixel diversity of two seeds (`--seeds`, first size only). Prints a table,
writes JSON and, per image and size, a contact sheet (source | model | bicubic | lift | instant,
each a 512 x 512 crop at 100 %) to ``--out`` (default bench/results/full_resolution/).

``--textures``: no training. Cases brick, a rendered chainmail (bench/textures.py),
gravel, grass, a procedural plaster, procedural bark-like wood and the demo image, each as
``instant`` at the source's own size (1x), twice its size (2x), 1024 x 1024 and a 512 x 512 tile,
and ``lift`` at 1024 x 1024 from a stand-in layout (an instant of the source at a quarter of its
size, 256 x 256 px: the same engine path as a SinGAN sample's lift, without training a model). Per row:
copied-region fraction, period ratios along x and y, autocorrelation peak ratio and bond ratio
(metrics.bond_ratio: the 2-D lattice on horizontal and vertical edges; lattice cases), sharpness ratio, patch-SWD, pixel diversity of seeds 0 and 1 (1x only), CPU seconds of seed 0
(process time: run it with one torch thread) and its peak memory. ``--quick``: sources cut to
160 px, 1x and 2x only. ``--texture-big N`` adds an N x N instant of brick (memory target).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from singan_core.config import preset
from singan_core.device import configure_threads, select_device
from singan_core.full_resolution import LiftSource, instant, sample_full_resolution
from singan_core.imageio import load_image, to_uint8
from singan_core.metrics import (
    bond_ratio,
    copied_region_fraction,
    correlation_length,
    dominant_period,
    lattice_ratios,
    patch_swd,
    pixel_diversity,
    sharpness,
)
from singan_core.patch_synthesis import synthesize
from singan_core.pyramid import resize
from singan_core.sampling import sample
from singan_core.storage import load_pyramid, read_meta
from singan_core.workflow import is_model_dir, model_lift_source, run_training, start_training

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
DEFAULT_IMAGES = [
    "brick.png",
    "grass.png",
    "gravel.png",
    "coffee.png",
    "rocket.jpg",
    "chelsea.png",
    "hubble_deep_field.jpg",
    "reference/balloons.png",
    "reference/birds.png",
    "reference/mountains3.png",
    "reference/starry_night.png",
]
METHODS = ("model", "bicubic", "lift", "instant")
TARGETS = "instant 512 <= 5 s, 1024 <= 20 s; lift to 1024 <= 15 s; peak memory <= 2 GB at 2048 (2-core CPU)"
CROP = 512  # side of the 100 % crops on the contact sheets


class PeakMemory:
    """Peak memory (bytes) above the level at entry: CUDA max allocated, or the sampled CPU RSS."""

    def __init__(self, device: torch.device):
        self.device, self.peak = device, 0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            self.base = self.max_rss = _rss()
            self.running = True
            self.thread = threading.Thread(target=self._poll, daemon=True)
            self.thread.start()
        return self

    def _poll(self) -> None:
        while self.running:
            self.max_rss = max(self.max_rss, _rss())
            time.sleep(0.005)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self.base
        else:
            self.running = False
            self.thread.join()
            self.peak = max(self.max_rss, _rss()) - self.base


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def trained_model(image: Path, models: Path, device: torch.device):
    """The image's tiny-preset model (trained into ``models/<stem>`` the first time), its lift source."""
    path = models / image.stem
    if not (is_model_dir(path) and read_meta(path).is_complete):
        start = time.perf_counter()
        run_training(start_training(image, path, preset("tiny"), "tiny", device, overwrite=True))
        print(f"{image.name}: tiny model trained in {time.perf_counter() - start:.0f} s", flush=True)
    pyramid, meta = load_pyramid(path, device)
    return pyramid, model_lift_source(path, pyramid, meta)


def run_method(method: str, pyramid, source: LiftSource, size: int, n: int) -> torch.Tensor:
    """``n`` outputs (seeds 0..n-1) of one method at size x size pixels, feature scale 1."""
    if method == "model":
        return sample_full_resolution(pyramid, source, height=size, width=size, detail="model", n_samples=n)
    if method == "bicubic":
        (fh, fw), (mh, mw) = pyramid.sizes[-1], source.model_px_per_source_px
        small = sample(pyramid, n, size * mh / fh, size * mw / fw)
        return resize(small, (size, size)).clamp(-1, 1)
    if method == "lift":
        return sample_full_resolution(pyramid, source, height=size, width=size, n_samples=n)
    return instant(source.image, height=size, width=size, n_samples=n)


def feature_scale_error(out: torch.Tensor, src: torch.Tensor) -> tuple[float, str]:
    """|measure(out) / measure(src) - 1| with the period, or the correlation length if ``src`` has none."""
    period = dominant_period(src)
    if not math.isnan(period):
        return abs(dominant_period(out) / period - 1), "period"
    return abs(correlation_length(out) / correlation_length(src) - 1), "corr"


def measure(
    method: str, pyramid, source: LiftSource, size: int, n: int, device: torch.device
) -> tuple[dict, torch.Tensor]:
    with PeakMemory(device) as mem:
        start = time.perf_counter()
        out = run_method(method, pyramid, source, size, n)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = (time.perf_counter() - start) / n
    out, src = out.cpu(), source.image.cpu()
    first = out[:1]
    error, kind = feature_scale_error(first, src)
    row = {
        "seconds": seconds,
        "peak_mb": mem.peak / 2**20,
        "patch_swd": patch_swd(first, src),
        "feature_scale_error": error,
        "feature_measure": kind,
        "sharpness_ratio": sharpness(first) / sharpness(src),
        "copied": copied_region_fraction(first, src),
        "diversity": pixel_diversity(out, src) if n >= 2 else None,
    }
    return row, first


def contact_sheet(source: torch.Tensor, outputs: dict[str, torch.Tensor], title: str, path: Path) -> None:
    """source | model | bicubic | lift | instant, each the centre CROP x CROP at 100 % (smaller ones whole)."""
    tiles = [("source", source)] + list(outputs.items())
    sheet = Image.new("RGB", (len(tiles) * (CROP + 8), CROP + 40), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 2), title, fill="black")
    for i, (name, x) in enumerate(tiles):
        h, w = x.shape[-2:]
        top, left = max(0, (h - CROP) // 2), max(0, (w - CROP) // 2)
        tile = Image.fromarray(to_uint8(x[..., top : top + CROP, left : left + CROP]))
        sheet.paste(tile, (i * (CROP + 8), 24))
        draw.text((i * (CROP + 8) + 4, CROP + 26), f"{name} {w}x{h}", fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def print_table(rows: list[dict]) -> None:
    print(
        f"\n{'image':<22}{'size':>6} {'method':<8}{'s/img':>8}{'peak MB':>9}{'pSWD':>8}{'fs err':>8}{'sharp':>7}{'copied':>7}{'div':>6}"
    )
    for r in rows:
        div = "-" if r["diversity"] is None else f"{r['diversity']:.2f}"
        print(
            f"{r['image']:<22}{r['size']:>6} {r['method']:<8}{r['seconds']:>8.2f}{r['peak_mb']:>9.0f}{r['patch_swd']:>8.4f}"
            f"{r['feature_scale_error']:>8.2f}{r['sharpness_ratio']:>7.2f}{r['copied']:>7.3f}{div:>6}"
        )
    print(f"targets: {TARGETS}")


# --------------------------------------------------------------------------- texture cases

TEXTURE_TARGETS = (
    "copied <= 0.25; lattice: periods within 8 %, peak ratio >= 0.7, bond ratio >= 0.7; sharpness >= 0.85; "
    "1024 instant <= 12 CPU-s, lift <= 15 CPU-s; <= 1.5 GB at 2048"
)
TEXTURE_CASES = ("brick", "chainmail", "gravel", "grass", "plaster", "wood", "demo")
LATTICES = ("brick", "chainmail")
TEXTURE_MODES = ("1x", "2x", "1024", "tile", "lift")


def _textures_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_textures", Path(__file__).with_name("textures.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def texture_source(name: str) -> torch.Tensor:
    """The case's source image (1, 3, H, W) in [-1, 1]."""
    procedural = {"chainmail": "chainmail", "plaster": "plaster", "wood": "wood"}
    if name in procedural:
        return getattr(_textures_module(), procedural[name])(384)
    if name == "demo":
        return load_image(Path(__file__).resolve().parents[1] / "singan_core" / "data" / "demo.png")
    return load_image(IMAGES / f"{name}.png")


def texture_run(mode: str, source: torch.Tensor, seed: int) -> torch.Tensor:
    """One output of a case: mode is '1x', '2x', '1024', 'tile' (512, circular) or 'lift' (1024)."""
    h, w = source.shape[-2:]
    if mode == "1x":
        return synthesize(source, h, w, seed=seed)
    if mode == "2x":
        return synthesize(source, 2 * h, 2 * w, seed=seed)
    if mode == "tile":
        return synthesize(source, 512, 512, circular=True, seed=seed)
    if mode == "lift":  # a stand-in for a SinGAN layout: 256 px at a quarter of the feature scale
        quarter = resize(source, (max(16, h // 4), max(16, w // 4))).clamp(-1, 1)
        layout = synthesize(quarter, 256, 256, seed=seed + 100)
        return synthesize(source, 1024, 1024, init=layout, seed=seed)
    size = int(mode)
    return synthesize(source, size, size, seed=seed)


def texture_row(name: str, mode: str, source: torch.Tensor, seeds: int) -> tuple[dict, torch.Tensor]:
    with PeakMemory(torch.device("cpu")) as mem:
        start = time.process_time()
        first = texture_run(mode, source, 0)
        cpu = time.process_time() - start
    seeds = seeds if mode == "1x" else 1  # diversity at 1x only: the bench stays affordable on 2 cores
    outs = [first] + [texture_run(mode, source, s) for s in range(1, seeds)]
    rx, ry, peak = lattice_ratios(first, source) if name in LATTICES else (math.nan, math.nan, math.nan)
    row = {
        "image": name,
        "mode": mode,
        "size": f"{first.shape[-1]}x{first.shape[-2]}",
        "copied": copied_region_fraction(first, source),
        "period_x": rx,
        "period_y": ry,
        "peak": peak,
        "bond": bond_ratio(first, source) if name in LATTICES else math.nan,
        "sharpness_ratio": sharpness(first) / sharpness(source),
        "patch_swd": patch_swd(first, source),
        "diversity": pixel_diversity(torch.cat(outs), source) if seeds >= 2 else None,
        "cpu_seconds": cpu,
        "peak_mb": mem.peak / 2**20,
    }
    return row, first


def print_texture_rows(rows: list[dict]) -> None:
    print(
        f"{'image':<10}{'mode':<6}{'size':>10}{'copied':>8}{'per x':>7}{'per y':>7}{'peak':>6}{'bond':>6}{'sharp':>7}{'pSWD':>8}{'div':>6}{'CPU s':>7}{'MB':>6}"
    )
    for r in rows:
        div = "-" if r["diversity"] is None else f"{r['diversity']:.2f}"
        print(
            f"{r['image']:<10}{r['mode']:<6}{r['size']:>10}{r['copied']:>8.2f}{r['period_x']:>7.2f}{r['period_y']:>7.2f}"
            f"{r['peak']:>6.2f}{r['bond']:>6.2f}{r['sharpness_ratio']:>7.2f}{r['patch_swd']:>8.4f}{div:>6}{r['cpu_seconds']:>7.1f}{r['peak_mb']:>6.0f}",
            flush=True,
        )


def run_textures(args: argparse.Namespace) -> None:
    modes = args.modes or (("1x", "2x") if args.quick else TEXTURE_MODES)
    rows: list[dict] = []
    print(f"load average before: {os.getloadavg()}")
    for name in args.cases:
        source = texture_source(name)
        if args.quick:
            source = source[..., :160, :160].contiguous()
        outputs = {}
        for mode in modes:
            row, outputs[mode] = texture_row(name, mode, source, args.seeds)
            rows.append(row)
            print_texture_rows([row])
        sheet = args.out / f"texture_{name}_{'_'.join(modes)}.png"
        contact_sheet(source, outputs, f"{name}: source | " + " | ".join(modes), sheet)
    if args.texture_big:
        with PeakMemory(torch.device("cpu")) as mem:
            start = time.process_time()
            synthesize(texture_source("brick"), args.texture_big, args.texture_big, seed=0)
        print(
            f"brick instant {args.texture_big}x{args.texture_big}: {time.process_time() - start:.1f} CPU-s, peak {mem.peak / 2**20:.0f} MB"
        )
    print(f"load average after: {os.getloadavg()}")
    print_texture_rows(rows)
    print(f"targets: {TEXTURE_TARGETS}")
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "targets": TEXTURE_TARGETS,
        "rows": rows,
    }
    (args.out / "textures.json").write_text(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--textures", action="store_true", help="the texture cases (no training)")
    parser.add_argument("--quick", action="store_true", help="with --textures: 160 px sources, 1x and 2x only")
    parser.add_argument("--cases", nargs="+", default=list(TEXTURE_CASES), choices=TEXTURE_CASES)
    parser.add_argument("--modes", nargs="+", choices=TEXTURE_MODES, help="with --textures: only these modes")
    parser.add_argument("--texture-big", type=int, default=0, help="with --textures: one N x N brick instant (memory)")
    parser.add_argument("--images", nargs="+", default=DEFAULT_IMAGES, help="paths under shared/images")
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1024])
    parser.add_argument("--big", type=int, default=2048, help="one extra size (0: none) ...")
    parser.add_argument(
        "--big-image", default="hubble_deep_field.jpg", help="... for this image, lift and instant only"
    )
    parser.add_argument("--seeds", type=int, default=2, help="images per method at the first size (diversity needs 2)")
    parser.add_argument("--models", type=Path, default=Path(tempfile.gettempdir()) / "full-resolution-bench-models")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "full_resolution")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.textures:
        torch.set_num_threads(1)
        run_textures(args)
        return
    configure_threads()
    device = select_device(args.device)
    rows: list[dict] = []
    for name in args.images:
        pyramid, source = trained_model(IMAGES / name, args.models, device)
        jobs = [(size, METHODS) for size in args.sizes]
        if args.big and name == args.big_image:
            jobs.append((args.big, ("lift", "instant")))
        for size, methods in jobs:
            outputs = {}
            for method in methods:
                n = args.seeds if size == args.sizes[0] else 1
                row, outputs[method] = measure(method, pyramid, source, size, n, device)
                rows.append({"image": name, "size": size, "method": method, **row})
                print_table(rows[-1:])
                print(flush=True)
            sheet = args.out / f"{Path(name).stem}_{size}.png"
            contact_sheet(source.image.cpu(), outputs, f"{name} at {size}x{size}, feature scale 1", sheet)
            print(f"sheet: {sheet}", flush=True)
        del pyramid, source
        write_json(args.out / "results.json", device, rows)  # after every image: a stopped run keeps its rows
    print_table(rows)
    print(f"json: {args.out / 'results.json'}")


def write_json(path: Path, device: torch.device, rows: list[dict]) -> None:
    report = {
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "targets": TARGETS,
        "rows": rows,
    }
    path.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
