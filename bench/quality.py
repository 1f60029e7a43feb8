"""Quality harness: train a configuration on several images and seeds, score the samples, compare (issue 16).

    python bench/quality.py train --preset paper --set train.iterations=200 --set pyramid.max_size=128 \\
        [--name NAME] [--images balloons birds ...] [--seeds 0 1 2] [--samples 16] [--out DIR] [--inception W]
    python bench/quality.py score SAMPLES_DIR --real IMAGE --max-size 128 --name original --seed 0 \\
        [--run-json WORK/run.json] [--out DIR]
    python bench/quality.py report [--out DIR] [--names NAME ...]

``train`` trains ``--preset`` with ``--set section.field=value`` overrides (parsed into the typed
``SinGANConfig``; a wrong section, field or value is one clear line) on every image and seed (the
seed is ``train.seed``), saves each model directory, draws ``--samples`` random samples
(``gen_start_scale`` 0, sample seeds 0..S-1, the training size) and scores them. ``score`` scores an
existing folder of sample PNGs (the original release's ``random_samples`` output, see
``bench/original_singan.py``) with the same code. ``report`` prints and writes the table of every
run found under ``--out``.

Per run (``OUT/NAME/IMAGE/seed<S>/record.json``): the median over the samples of patch-SWD
(``singan_core.metrics.patch_swd``, each sample vs the real image), the pixel diversity of the
samples (``pixel_diversity``), the median copy score (``copy_score``, each sample vs the real
image), the mean SIFID when ``--inception`` is given, training wall seconds, torch threads and the
load average (and the training's CPU seconds, which contention on a shared machine
changes less than wall seconds). Per configuration and image, and overall: median, min and max over runs
(``OUT/NAME/summary.json``, and ``OUT/report.json`` from ``report``). One grid per configuration
and image (``OUT/NAME/IMAGE_grid.png``): per seed a row, the real image first, then 8 samples.

The real image every metric compares against is the input image resized once, with
``singan_core.pyramid.resize`` (bicubic, antialiased), to the samples' size: for our models that is
exactly the finest training image ``x_N`` (the pyramid resizes the input the same way), and both
implementations cap the longest side at ``max_size`` with the same ceil rule, so original and ours
are scored against the identical tensor. Scoring the original against its own MATLAB-style
``imresize`` output instead would mix a resize difference into the comparison.

SIFID needs the first block of Inception-v3 as a local ``.safetensors`` file (``--inception``; no
download is ever attempted; without it the column is skipped with one line). Make one on a machine
with network: ``from pytorch_fid.inception import fid_inception_v3``; ``m = fid_inception_v3()``;
``safetensors.torch.save_file({k: v for k, v in m.state_dict().items() if k.startswith(("Conv2d_1a",
"Conv2d_2a", "Conv2d_2b"))}, "inception_block0.safetensors")`` (keys listed in
``singan_core.metrics.sifid``).

Reduced matrix run for issue 16 on the shared 2-core CPU (one torch thread per run; load average
9-16 from the team's other work, so wall seconds are long and noisy): balloons, the original
(1b4906b, patched) vs ours ``paper`` at ``pyramid.max_size=128 train.iterations=200
train.lr_decay_at=8`` (the original's lr milestone is fixed at iteration 1600, so at 200 iterations
it never drops), the two of a seed started together; ``draft``, ``draft`` + ``train.gp_every=4`` and
``draft`` + ``train.d_steps=2`` (the ``sched`` branch's code). Only seed 0 (and ours' seed 1)
finished in the time there was: README "Presets" has the table.

The full matrix (8 images x 3 seeds) on a bigger machine::

    python bench/quality.py train --preset paper --set pyramid.max_size=128 --set train.iterations=200 \\
        --set train.lr_decay_at=8 --name ours-paper128-200
    python bench/quality.py train --preset draft --name draft
    python bench/quality.py train --preset draft --set train.gp_every=4 --name draft-gp4   # sched branch
    python bench/quality.py train --preset draft --set train.d_steps=2 --name draft-d2
    for img in balloons birds mountains3 cows starry_night trees3; do for s in 0 1 2; do
        python bench/original_singan.py ../shared/images/reference/$img.png --seed $s \\
            --python /tmp/quality-orig-venv/bin/python --work /tmp/quality-original-$img-s$s
        python bench/quality.py score /tmp/quality-original-$img-s$s/samples --name original-1b4906b --seed $s \\
            --real ../shared/images/reference/$img.png --max-size 128 --run-json /tmp/quality-original-$img-s$s/run.json
    done; done   # and coffee.png, rocket.jpg from ../shared/images
    python bench/quality.py report
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from singan_core.config import SinGANConfig, preset
from singan_core.device import configure_threads, select_device
from singan_core.imageio import load_image, save_image
from singan_core.metrics import MetricUnavailable, copy_score, patch_swd, pixel_diversity, sifid
from singan_core.pyramid import resize
from singan_core.sampling import sample
from singan_core.workflow import run_training, start_training, write_pngs

IMAGES_DIR = Path(__file__).resolve().parents[2] / "shared" / "images"
DEFAULT_IMAGES = {
    "balloons": IMAGES_DIR / "reference" / "balloons.png",
    "birds": IMAGES_DIR / "reference" / "birds.png",
    "mountains3": IMAGES_DIR / "reference" / "mountains3.png",
    "cows": IMAGES_DIR / "reference" / "cows.png",
    "starry_night": IMAGES_DIR / "reference" / "starry_night.png",
    "trees3": IMAGES_DIR / "reference" / "trees3.png",
    "coffee": IMAGES_DIR / "coffee.png",
    "rocket": IMAGES_DIR / "rocket.jpg",
}
METRICS = ("patch_swd", "diversity", "copy_score", "sifid", "train_seconds", "train_cpu_seconds")
GRID_SAMPLES = 8


# --------------------------------------------------------------------------- configuration


def parse_value(text: str, default: Any, where: str) -> Any:
    """``text`` converted to the type of the field's ``default`` (bool, int, float, str)."""
    if isinstance(default, bool):
        if text.lower() not in ("true", "false", "1", "0"):
            raise SystemExit(f"--set {where}: expected true or false, got {text!r}")
        return text.lower() in ("true", "1")
    for kind in (int, float):
        if isinstance(default, kind):
            try:
                return kind(text)
            except ValueError:
                raise SystemExit(f"--set {where}: expected {kind.__name__}, got {text!r}") from None
    return text


def apply_overrides(config: SinGANConfig, overrides: list[str]) -> SinGANConfig:
    """``config`` with each ``section.field=value`` replaced; SystemExit with one line on a bad one."""
    sections = {f.name for f in dataclasses.fields(config)}
    for item in overrides:
        match = re.fullmatch(r"(\w+)\.(\w+)=(.*)", item)
        if not match:
            raise SystemExit(f"--set {item!r}: expected section.field=value, e.g. train.iterations=200")
        section, name, text = match.groups()
        if section not in sections:
            raise SystemExit(f"--set {section}.{name}: unknown section {section!r}; one of {', '.join(sorted(sections))}")
        part = getattr(config, section)
        fields = {f.name for f in dataclasses.fields(part)}
        if name not in fields:
            raise SystemExit(f"--set {section}.{name}: {type(part).__name__} has no field {name!r}; one of {', '.join(sorted(fields))}")
        value = parse_value(text, getattr(part, name), f"{section}.{name}")
        try:
            config = dataclasses.replace(config, **{section: dataclasses.replace(part, **{name: value})})
        except ValueError as exc:  # the config's own validation (InvalidArgument)
            raise SystemExit(f"--set {section}.{name}: {exc}") from None
    return config


def resolve_images(names: list[str]) -> dict[str, Path]:
    """Image name -> path: a default image's name, or a path to any image file."""
    images = {}
    for name in names:
        path = DEFAULT_IMAGES.get(name, Path(name))
        if not path.is_file():
            raise SystemExit(f"--images: {name} is neither a default image ({', '.join(DEFAULT_IMAGES)}) nor a file")
        images[path.stem] = path
    return images


# --------------------------------------------------------------------------- scoring


def real_at(image_path: Path, size: tuple[int, int]) -> torch.Tensor:
    """The input image (1, 3, h, w) in [-1, 1] resized once to the samples' ``size`` (see module doc)."""
    return resize(load_image(image_path), size)


def score(samples: torch.Tensor, real: torch.Tensor, inception: Path | None) -> dict[str, Any]:
    """Metrics of ``samples`` (S, 3, h, w) in [-1, 1] against ``real`` (1, 3, h, w): per-sample lists and summaries."""
    swd = [patch_swd(s[None], real) for s in samples]
    copies = [copy_score(s[None], real) for s in samples]
    result = {
        "patch_swd": statistics.median(swd),
        "diversity": pixel_diversity(samples, real),
        "copy_score": statistics.median(copies),
        "patch_swd_per_sample": swd,
        "copy_score_per_sample": copies,
        "sifid": None,
    }
    if inception is not None:
        result["sifid"] = statistics.fmean(sifid(real, s[None], inception) for s in samples)
    return result


def load_samples(folder: Path) -> torch.Tensor:
    """Every PNG of ``folder``, ordered by the number in its name (``0.png``, ``1.png``, ...), as (S, 3, h, w)."""
    files = sorted(folder.glob("*.png"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    if len(files) < 2:
        raise SystemExit(f"samples: {folder} holds {len(files)} PNG files; diversity needs at least 2")
    images = [load_image(f) for f in files]
    sizes = {tuple(x.shape[-2:]) for x in images}
    if len(sizes) != 1:
        raise SystemExit(f"samples: {folder} mixes image sizes {sorted(sizes)}")
    return torch.cat(images)


def conditions() -> dict[str, Any]:
    return {"threads": torch.get_num_threads(), "loadavg": list(os.getloadavg()), "time": time.strftime("%H:%M:%S", time.gmtime())}


def write_record(out: Path, name: str, image: str, seed: int, record: dict[str, Any]) -> Path:
    path = out / name / image / f"seed{seed}" / "record.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"name": name, "image": image, "seed": seed, **record}, indent=2))
    return path


def print_run(record: dict[str, Any]) -> None:
    seconds = record.get("train_seconds")
    print(f"{record['name']} {record['image']} seed {record['seed']}: patch-SWD {record['patch_swd']:.5f}  "
          f"diversity {record['diversity']:.3f}  copy {record['copy_score']:.4f}"
          + (f"  SIFID {record['sifid']:.4f}" if record.get("sifid") is not None else "")
          + (f"  train {seconds:.0f} s" if seconds is not None else ""), flush=True)


# --------------------------------------------------------------------------- commands


def train_one(cfg: SinGANConfig, preset_name: str, image_path: Path, seed: int, args, device) -> dict[str, Any]:
    """Train, sample and score one (image, seed); returns the record (also written as record.json)."""
    run_dir = args.out / args.name / image_path.stem / f"seed{seed}"
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed))
    before = conditions()
    job = start_training(image_path, run_dir / "model", cfg, preset_name, device, overwrite=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    run_training(job)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    after = conditions()
    write_pngs(sample(job.pyramid, args.samples, seed=0), run_dir / "samples", "sample", 0)
    samples = load_samples(run_dir / "samples")  # scored as written (8-bit), like the original's PNGs
    real = real_at(image_path, tuple(samples.shape[-2:]))
    record = {"source": "ours", "preset": preset_name, "config": cfg.to_dict(), "image_path": str(image_path),
              "train_seconds": seconds, "train_cpu_seconds": cpu_seconds, "conditions_before": before, "conditions_after": after,
              "samples_dir": str(run_dir / "samples"), **score(samples, real, args.inception)}
    write_record(args.out, args.name, image_path.stem, seed, record)
    return {"name": args.name, "image": image_path.stem, "seed": seed, **record}


def cmd_train(args) -> None:
    cfg = apply_overrides(preset(args.preset), args.set)
    args.name = args.name or "_".join([args.preset, *[s.replace("=", "") for s in args.set]])
    images = resolve_images(args.images)
    threads = configure_threads()
    device = select_device(args.device)
    print(f"{args.name}: {len(images)} image(s) x {len(args.seeds)} seed(s) on {device}, {threads} thread(s)", flush=True)
    for image_path in images.values():
        for seed in args.seeds:
            print_run(train_one(cfg, args.preset, image_path, seed, args, device))
        write_grid(args.out, args.name, image_path.stem)
    report(args.out, [args.name])


def cmd_score(args) -> None:
    if not args.samples_dir.is_dir():
        raise SystemExit(f"samples_dir: no such folder: {args.samples_dir}")
    samples = load_samples(args.samples_dir)
    real = real_at(args.real, tuple(samples.shape[-2:]))
    run = json.loads(args.run_json.read_text()) if args.run_json else {}
    if args.max_size is not None and max(samples.shape[-2:]) != args.max_size:
        raise SystemExit(f"samples: {max(samples.shape[-2:])} px on the longer side, not --max-size {args.max_size}")
    record = {"source": args.name, "image_path": str(args.real), "max_size": args.max_size,
              "train_seconds": run.get("train_seconds"), "train_cpu_seconds": run.get("train_cpu_seconds"), "run": run, "samples_dir": str(args.samples_dir),
              "scored_size": list(samples.shape[-2:]), **score(samples, real, args.inception)}
    write_record(args.out, args.name, args.real.stem, args.seed, record)
    print_run({"name": args.name, "image": args.real.stem, "seed": args.seed, **record})
    write_grid(args.out, args.name, args.real.stem)


def write_grid(out: Path, name: str, image: str) -> Path:
    """``OUT/NAME/IMAGE_grid.png``: one row per seed, the real image then the first 8 samples."""
    rows = []
    for record_file in sorted((out / name / image).glob("seed*/record.json")):
        record = json.loads(record_file.read_text())
        samples = load_samples(Path(record["samples_dir"]))[:GRID_SAMPLES]
        real = real_at(Path(record["image_path"]), tuple(samples.shape[-2:]))
        pad = torch.ones(1, 3, samples.shape[-2], 4)  # a white gap between images
        rows.append(torch.cat([t for x in (real, *samples.split(1)) for t in (x, pad)], dim=3))
    width = max(r.shape[-1] for r in rows)
    grid = torch.cat([torch.nn.functional.pad(r, (0, width - r.shape[-1], 0, 4), value=1.0) for r in rows], dim=2)
    path = out / name / f"{image}_grid.png"
    save_image(grid[0], path)
    return path


def spread(values: list[float]) -> dict[str, float] | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def report(out: Path, names: list[str] | None) -> dict[str, Any]:
    """Median/min/max over runs per configuration and image, and over all its runs; printed and written."""
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*/*/seed*/record.json"))]
    records = [r for r in records if names is None or r["name"] in names]
    table: dict[str, Any] = {}
    for name in sorted({r["name"] for r in records}):
        mine = [r for r in records if r["name"] == name]
        entry = {"overall": {m: spread([r.get(m) for r in mine]) for m in METRICS}, "images": {}}
        for image in sorted({r["image"] for r in mine}):
            runs = [r for r in mine if r["image"] == image]
            entry["images"][image] = {"seeds": [r["seed"] for r in runs], **{m: spread([r.get(m) for r in runs]) for m in METRICS}}
        table[name] = entry
    print(f"{'config':<28} {'image':<13} {'n':>2} {'patch-SWD med [min,max]':>28} {'diversity med [min,max]':>24} "
          f"{'copy med':>9} {'train s med [min,max]':>22} {'CPU s med':>9}")
    for name, entry in table.items():
        for image, cell in [*entry["images"].items(), ("ALL", entry["overall"])]:
            print(f"{name:<28} {image:<13} {cell['patch_swd']['n']:>2} {fmt(cell['patch_swd'], '.5f'):>28} "
                  f"{fmt(cell['diversity'], '.3f'):>24} {cell['copy_score']['median']:>9.4f} {fmt(cell['train_seconds'], '.0f'):>22} {fmt_median(cell['train_cpu_seconds']):>9}")
    target = out / (f"{names[0]}/summary.json" if names and len(names) == 1 else "report.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                                  "table": table, "runs": records}, indent=2))
    print(f"wrote {target}")
    return table


def fmt_median(cell: dict[str, float] | None) -> str:
    return "-" if cell is None else f"{cell['median']:.0f}"


def fmt(cell: dict[str, float] | None, spec: str) -> str:
    if cell is None:
        return "-"
    return f"{cell['median']:{spec}} [{cell['min']:{spec}},{cell['max']:{spec}}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/quality-runs"), help="runs, models, grids, JSON")
    sub = parser.add_subparsers(dest="command", required=True)
    train_p = sub.add_parser("train", help="train and score a configuration")
    train_p.add_argument("--preset", default="paper")
    train_p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    train_p.add_argument("--name", default=None, help="label of the configuration (default: preset + overrides)")
    train_p.add_argument("--images", nargs="+", default=list(DEFAULT_IMAGES))
    train_p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    train_p.add_argument("--samples", type=int, default=16)
    train_p.add_argument("--device", default=None)
    score_p = sub.add_parser("score", help="score a folder of sample PNGs (e.g. the original's) with the same metrics")
    score_p.add_argument("samples_dir", type=Path)
    score_p.add_argument("--real", type=Path, required=True, help="the training image (full size; resized once)")
    score_p.add_argument("--max-size", type=int, default=None, help="check the samples' longer side is this")
    score_p.add_argument("--name", default="original")
    score_p.add_argument("--seed", type=int, default=0)
    score_p.add_argument("--run-json", type=Path, default=None, help="bench/original_singan.py's run.json (train seconds)")
    report_p = sub.add_parser("report", help="table of every run under --out")
    report_p.add_argument("--names", nargs="+", default=None)
    for p in (train_p, score_p):
        p.add_argument("--inception", type=Path, default=None, help="Inception-v3 block-0 .safetensors for SIFID")
    args = parser.parse_args()
    if getattr(args, "inception", None) is None and args.command != "report":
        print(f"SIFID: skipped ({MetricUnavailable.__name__}: no --inception weights file given)")
    elif getattr(args, "inception", None) is not None and not args.inception.is_file():
        raise SystemExit(f"--inception: no such file: {args.inception}")
    if Path(__file__).resolve().parents[1] in (args.out.resolve(), *args.out.resolve().parents):
        raise SystemExit(f"--out: {args.out} is inside the project; models and grids go outside it (default /tmp/quality-runs)")
    {"train": cmd_train, "score": cmd_score, "report": lambda a: report(a.out, a.names)}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
