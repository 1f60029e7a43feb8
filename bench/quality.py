"""Quality harness: train a configuration on several images and seeds, score the samples, keep a ledger.

    python bench/quality.py train --preset paper --set train.iterations=200 --set pyramid.max_size=128 \\
        [--name NAME] [--images balloons birds ...] [--seeds 0 1 2] [--samples 16] [--commit] [--inception W]
    python bench/quality.py score SAMPLES_DIR --real IMAGE --max-size 128 --name original-1b4906b --seed 0 \\
        [--run-json WORK/run.json] [--commit]
    python bench/quality.py report [--names NAME ...]
    python bench/quality.py table --names draft paper ... [--readme README.md]

``train`` trains ``--preset`` with ``--set section.field=value`` overrides (parsed into the typed
``SinGANConfig``; a wrong section, field or value is one clear line) on every image and seed the
ledger does not hold yet (the seed is ``train.seed``), draws ``--samples`` random samples
(``gen_start_scale`` 0, sample seeds 0..S-1, the training size) and scores them. ``score`` scores an
existing folder of sample PNGs (the original release's ``random_samples`` output, see
``bench/original_singan.py``) with the same code. Both append one row per finished run to the ledger
``bench/results/quality.jsonl`` (``bench/ledger.py``: commit, configuration, image, seed, metrics,
CPU and wall seconds, threads, load average before and after) and, with ``--commit``, commit it
after every run, so a matrix spreads over as many sittings as it needs. A run refuses to start when
the 1-minute load average is above ``ledger.IDLE_LOAD`` (``--allow-busy`` runs it and marks the row
busy; busy rows are left out of ``report`` and ``table`` unless asked for). ``report`` and ``table``
read the ledger alone; ``table --readme`` rewrites README's generated preset table.

Per run: the median over the samples of patch-SWD (``singan_core.metrics.patch_swd``, each sample vs
the real image), the pixel diversity of the samples (``pixel_diversity``), the median copy score
(``copy_score``), the median density of bright features (``bright_density``: pixels above the real
image's 98th luminance percentile; the real image's own value beside it), the mean SIFID when
``--inception`` is given, training wall and CPU seconds. Models, samples and one grid per
configuration and image (per seed a row: the real image, then 8 samples) go to ``--out`` (the
system's temporary folder by default), never into the project.

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

The faithfulness matrix, one run at a time on an idle machine::

    python bench/quality.py train --preset paper --set pyramid.max_size=128 --set train.iterations=200 \\
        --set train.lr_decay_at=8 --name ours-paper128-200 --images balloons birds --commit
    for img in balloons birds; do for s in 0 1 2; do
        python bench/original_singan.py ../shared/images/reference/$img.png --seed $s \\
            --python ORIG_VENV/bin/python --work SCRATCH/original-$img-s$s
        python bench/quality.py score SCRATCH/original-$img-s$s/samples --name original-1b4906b --seed $s \\
            --real ../shared/images/reference/$img.png --max-size 128 --run-json SCRATCH/original-$img-s$s/run.json --commit
    done; done
    python bench/quality.py train --preset draft --images balloons --commit    # and each draft candidate
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
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from singan_core.config import SinGANConfig, preset
from singan_core.device import configure_threads, select_device
from singan_core.imageio import load_image, save_image
from singan_core.metrics import MetricUnavailable, bright_density, copy_score, patch_swd, pixel_diversity, sifid
from singan_core.pyramid import resize
from singan_core.sampling import sample
from singan_core.workflow import run_training, start_training, write_pngs

import ledger

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
METRICS = ("patch_swd", "diversity", "copy_score", "bright_density", "sifid", "train_seconds", "train_cpu_seconds")
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
            raise SystemExit(
                f"--set {section}.{name}: unknown section {section!r}; one of {', '.join(sorted(sections))}"
            )
        part = getattr(config, section)
        fields = {f.name for f in dataclasses.fields(part)}
        if name not in fields:
            raise SystemExit(
                f"--set {section}.{name}: {type(part).__name__} has no field {name!r}; one of {', '.join(sorted(fields))}"
            )
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
        "bright_density": statistics.median(bright_density(s[None], real) for s in samples),
        "bright_density_real": bright_density(real, real),
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
    return {
        "threads": torch.get_num_threads(),
        "loadavg": list(os.getloadavg()),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def ledger_row(
    name: str,
    implementation: str,
    image: str,
    seed: int,
    scored: dict[str, Any],
    *,
    preset_name: str | None,
    overrides: list[str],
    train_seconds: float | None,
    train_cpu_seconds: float | None,
    before: dict[str, Any],
    after: dict[str, Any],
    busy: bool,
) -> dict[str, Any]:
    """One ledger line: what ran, where, under which load, and the summary metrics (no per-sample lists)."""
    summary = {
        k: scored[k] for k in ("patch_swd", "diversity", "copy_score", "bright_density", "bright_density_real", "sifid")
    }
    return {
        "name": name,
        "implementation": implementation,
        "commit": ledger.project_commit(),
        "preset": preset_name,
        "overrides": overrides,
        "image": image,
        "seed": seed,
        "train_seconds": train_seconds,
        "train_cpu_seconds": train_cpu_seconds,
        "threads": before["threads"],
        "loadavg_before": before["loadavg"],
        "loadavg_after": after["loadavg"],
        "busy": busy,
        "time": before["time"],
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        **summary,
    }


def record_run(args, row: dict[str, Any]) -> None:
    """Append ``row`` to the ledger (and commit it with ``--commit``), then print it."""
    ledger.append(args.ledger, row)
    if args.commit:
        ledger.commit(args.ledger, f"quality ledger: {row['name']} {row['image']} seed {row['seed']}")
    print_run(row)


def print_run(record: dict[str, Any]) -> None:
    seconds = record.get("train_cpu_seconds")
    print(
        f"{record['name']} {record['image']} seed {record['seed']}: patch-SWD {record['patch_swd']:.5f}  "
        f"diversity {record['diversity']:.3f}  copy {record['copy_score']:.4f}  bright {record['bright_density']:.4f}"
        + (f"  SIFID {record['sifid']:.4f}" if record.get("sifid") is not None else "")
        + (f"  train {seconds:.0f} CPU s" if seconds is not None else "")
        + ("  (busy machine)" if record.get("busy") else ""),
        flush=True,
    )


# --------------------------------------------------------------------------- commands


def train_one(cfg: SinGANConfig, image_path: Path, seed: int, args, device) -> dict[str, Any]:
    """Train, sample and score one (image, seed) into ``--out``; returns the ledger row."""
    _, busy = ledger.load_gate(args.allow_busy)
    run_dir = args.out / args.name / image_path.stem / f"seed{seed}"
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed))
    before = conditions()
    job = start_training(image_path, run_dir / "model", cfg, args.preset, device, overwrite=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    run_training(job)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    after = conditions()
    write_pngs(sample(job.pyramid, args.samples, seed=0), run_dir / "samples", "sample", 0)
    samples = load_samples(run_dir / "samples")  # scored as written (8-bit), like the original's PNGs
    real = real_at(image_path, tuple(samples.shape[-2:]))
    scored = score(samples, real, args.inception)
    (run_dir / "record.json").write_text(
        json.dumps(
            {"config": cfg.to_dict(), "image_path": str(image_path), "samples_dir": str(run_dir / "samples"), **scored},
            indent=2,
        )
    )
    return ledger_row(
        args.name,
        "ours",
        image_path.stem,
        seed,
        scored,
        preset_name=args.preset,
        overrides=args.set,
        train_seconds=seconds,
        train_cpu_seconds=cpu_seconds,
        before=before,
        after=after,
        busy=busy,
    )


def cmd_train(args) -> None:
    cfg = apply_overrides(preset(args.preset), args.set)
    args.name = args.name or "_".join([args.preset, *[s.replace("=", "") for s in args.set]])
    images = resolve_images(args.images)
    threads = configure_threads()
    device = select_device(args.device)
    have = ledger.done(args.ledger)
    todo = [(path, seed) for path in images.values() for seed in args.seeds if (args.name, path.stem, seed) not in have]
    print(
        f"{args.name}: {len(todo)} of {len(images) * len(args.seeds)} run(s) not yet in the ledger, "
        f"on {device}, {threads} thread(s)",
        flush=True,
    )
    for image_path, seed in todo:
        record_run(args, train_one(cfg, image_path, seed, args, device))
        write_grid(args.out, args.name, image_path.stem)
    report(args.ledger, [args.name], args.include_busy)


def cmd_score(args) -> None:
    if not args.samples_dir.is_dir():
        raise SystemExit(f"samples_dir: no such folder: {args.samples_dir}")
    if (args.name, args.real.stem, args.seed) in ledger.done(args.ledger):
        print(f"{args.name} {args.real.stem} seed {args.seed}: already in the ledger")
        return
    samples = load_samples(args.samples_dir)
    real = real_at(args.real, tuple(samples.shape[-2:]))
    run = json.loads(args.run_json.read_text()) if args.run_json else {}
    if args.max_size is not None and max(samples.shape[-2:]) != args.max_size:
        raise SystemExit(f"samples: {max(samples.shape[-2:])} px on the longer side, not --max-size {args.max_size}")
    scored = score(samples, real, args.inception)
    run_dir = args.out / args.name / args.real.stem / f"seed{args.seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "record.json").write_text(
        json.dumps(
            {
                "image_path": str(args.real),
                "samples_dir": str(args.samples_dir),
                "scored_size": list(samples.shape[-2:]),
                "run": run,
                **scored,
            },
            indent=2,
        )
    )
    now = conditions()
    before = {**now, "loadavg": run.get("loadavg_before", now["loadavg"])}
    row = ledger_row(
        args.name,
        args.name,
        args.real.stem,
        args.seed,
        scored,
        preset_name=None,
        overrides=run.get("train_cmd", []),
        train_seconds=run.get("train_seconds"),
        train_cpu_seconds=run.get("train_cpu_seconds"),
        before=before,
        after=now,
        busy=bool(run.get("busy")),
    )
    record_run(args, row)
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


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per configuration name: per image and overall, median/min/max of every metric over the rows."""
    table: dict[str, Any] = {}
    for name in sorted({r["name"] for r in rows}):
        mine = [r for r in rows if r["name"] == name]
        entry = {"overall": {m: spread([r.get(m) for r in mine]) for m in METRICS}, "images": {}}
        for image in sorted({r["image"] for r in mine}):
            runs = [r for r in mine if r["image"] == image]
            entry["images"][image] = {
                "seeds": [r["seed"] for r in runs],
                **{m: spread([r.get(m) for r in runs]) for m in METRICS},
            }
        table[name] = entry
    return table


def report(path: Path, names: list[str] | None, include_busy: bool = False) -> dict[str, Any]:
    """The ledger's table (median/min/max over runs per configuration and image, and overall), printed."""
    table = summarize(ledger.select(ledger.read(path), names, include_busy))
    print(
        f"{'config':<28} {'image':<13} {'n':>2} {'patch-SWD med [min,max]':>28} {'diversity med [min,max]':>24} "
        f"{'copy med':>9} {'bright med':>10} {'CPU s med [min,max]':>22}"
    )
    for name, entry in table.items():
        for image, cell in [*entry["images"].items(), ("ALL", entry["overall"])]:
            print(
                f"{name:<28} {image:<13} {cell['patch_swd']['n']:>2} {fmt(cell['patch_swd'], '.5f'):>28} "
                f"{fmt(cell['diversity'], '.3f'):>24} {cell['copy_score']['median']:>9.4f} "
                f"{fmt_median(cell['bright_density'], '.4f'):>10} {fmt(cell['train_cpu_seconds'], '.0f'):>22}"
            )
    return table


PRESET_TABLE_START = "<!-- preset-table: generated by bench/quality.py table; do not edit by hand -->"
PRESET_TABLE_END = "<!-- /preset-table -->"


def preset_table(path: Path, names: list[str]) -> str:
    """A Markdown table of the configurations ``names`` from the ledger (idle-machine rows only)."""
    table = summarize(ledger.select(ledger.read(path), names, include_busy=False))
    lines = [
        "| configuration | images x seeds | training CPU s (median) | patch-SWD (median) | diversity (median) |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        if name not in table:
            lines.append(f"| `{name}` | not measured yet | - | - | - |")
            continue
        cell = table[name]["overall"]
        images = len(table[name]["images"])
        lines.append(
            f"| `{name}` | {images} x {cell['patch_swd']['n'] // max(images, 1)} | "
            f"{fmt_median(cell['train_cpu_seconds'], '.0f')} | {fmt_median(cell['patch_swd'], '.4f')} | "
            f"{fmt_median(cell['diversity'], '.3f')} |"
        )
    return "\n".join(lines)


def cmd_table(args) -> None:
    text = preset_table(args.ledger, args.names)
    if args.readme is None:
        print(text)
        return
    readme = args.readme.read_text()
    if readme.count(PRESET_TABLE_START) != 1 or readme.count(PRESET_TABLE_END) != 1:
        raise SystemExit(
            f"--readme: {args.readme} needs one {PRESET_TABLE_START!r} line and one {PRESET_TABLE_END!r} line"
        )
    head, rest = readme.split(PRESET_TABLE_START)
    _, tail = rest.split(PRESET_TABLE_END)
    args.readme.write_text(f"{head}{PRESET_TABLE_START}\n{text}\n{PRESET_TABLE_END}{tail}")
    print(f"wrote the table of {len(args.names)} configuration(s) into {args.readme}")


def fmt_median(cell: dict[str, float] | None, spec: str = ".0f") -> str:
    return "-" if cell is None else f"{cell['median']:{spec}}"


def fmt(cell: dict[str, float] | None, spec: str) -> str:
    if cell is None:
        return "-"
    return f"{cell['median']:{spec}} [{cell['min']:{spec}},{cell['max']:{spec}}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "quality-runs",
        help="models, samples and grids (outside the project)",
    )
    parser.add_argument(
        "--ledger", type=Path, default=ledger.DEFAULT_LEDGER, help="the JSON-lines ledger of finished runs"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train_p = sub.add_parser("train", help="train and score a configuration (runs the ledger lacks)")
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
    score_p.add_argument(
        "--run-json", type=Path, default=None, help="bench/original_singan.py's run.json (train seconds)"
    )
    for p in (train_p, score_p):
        p.add_argument("--inception", type=Path, default=None, help="Inception-v3 block-0 .safetensors for SIFID")
        p.add_argument("--commit", action="store_true", help="git-commit the ledger after every run")
        p.add_argument(
            "--allow-busy",
            action="store_true",
            help=f"run even when the load average is above {ledger.IDLE_LOAD} (the row is marked busy)",
        )
    report_p = sub.add_parser("report", help="table of the ledger's runs")
    report_p.add_argument("--names", nargs="+", default=None)
    table_p = sub.add_parser("table", help="README's preset table from the ledger")
    table_p.add_argument("--names", nargs="+", required=True)
    table_p.add_argument("--readme", type=Path, default=None, help="replace the generated block of this README")
    for p in (train_p, report_p):
        p.add_argument("--include-busy", action="store_true", help="report rows measured on a busy machine too")
    args = parser.parse_args()
    if getattr(args, "inception", None) is None and args.command in ("train", "score"):
        print(f"SIFID: skipped ({MetricUnavailable.__name__}: no --inception weights file given)")
    elif getattr(args, "inception", None) is not None and not args.inception.is_file():
        raise SystemExit(f"--inception: no such file: {args.inception}")
    if ledger.REPO in (args.out.resolve(), *args.out.resolve().parents):
        raise SystemExit(f"--out: {args.out} is inside the project; models and grids go outside it")
    commands = {
        "train": cmd_train,
        "score": cmd_score,
        "table": cmd_table,
        "report": lambda a: report(a.ledger, a.names, a.include_busy),
    }
    commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
