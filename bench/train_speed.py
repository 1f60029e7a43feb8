"""Training and sampling speed (and, for a full training, sample quality) of a preset on one image.

    python bench/train_speed.py IMAGE [--preset paper] [--timed 5] [--warmup 2] [--precision fp32]
    python bench/train_speed.py IMAGE --preset draft --full      # also: total training time + metrics
    python bench/train_speed.py IMAGE --preset draft --set train.gp_every=4   # any config field

Per scale: seconds per training iteration (median of ``--timed`` iterations after ``--warmup``),
measured on nets with the scale's real shapes (per-iteration cost does not depend on what the nets
have learnt, so coarser scales are freshly initialised, not trained). Then the time of one
full-size sample. With ``--full``: a complete training, its wall time, and on 16 samples the median
patch-SWD against the real image and the pixel diversity (singan_core.metrics).
Prints a table and writes JSON (``--json``, default bench/results/<image>_<preset>_<precision>.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from singan_core.config import preset
from singan_core.device import configure_threads, select_device
from singan_core.imageio import load_image, save_image
from singan_core.metrics import patch_swd, pixel_diversity
from singan_core.sampling import sample
from singan_core.training import _init_nets, _optimizers, new_pyramid, train, train_scale

from original_step import original_iteration, upsampled_reconstruction
from quality import apply_overrides

# The original code release on a 2-core CPU, torch 2.13, balloons.png, paper preset.
ORIGINAL_S_PER_ITER = [0.053, 0.075, 0.103, 0.150, 0.517, 0.881, 1.445, 2.421, 17.0]
ORIGINAL_SAMPLE_S = 0.25


def time_scales(
    pyramid, warmup: int, timed: int, baseline: bool, *, channels_last: bool = False, compile_from: int | None = None
) -> list[float]:
    """Median seconds per iteration of every scale, coarsest first (ours, or the original's work).

    ``channels_last``: nets in channels-last memory format (activations follow them). ``compile_from``:
    from that scale on, G_k's training forward and backward run through ``torch.compile`` (D_k stays
    eager: WGAN-GP's double backward cannot be compiled); warm-up iterations absorb the compile time.
    """
    medians = []
    for k in range(pyramid.num_scales):
        generator, critic = _init_nets(pyramid, k)
        if channels_last:
            generator, critic = (
                generator.to(memory_format=torch.channels_last),
                critic.to(memory_format=torch.channels_last),
            )
        if baseline:
            medians.append(time_original_scale(pyramid, generator, critic, warmup, timed))
        else:
            compiled = compile_from is not None and k >= compile_from
            medians.append(
                time_our_scale(pyramid, torch.compile(generator) if compiled else generator, critic, warmup, timed)
            )
        pyramid.add_scale(generator, critic, 1.0 if k == 0 else 0.1, torch.zeros_like(pyramid.reals[k]))
        print(f"  scale {k}: {pyramid.sizes[k][0]}x{pyramid.sizes[k][1]} {medians[-1]:.3f} s/iter", flush=True)
    return medians


def time_our_scale(pyramid, generator, critic, warmup: int, timed: int) -> float:
    cfg = pyramid.config
    pyramid.config = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, iterations=warmup + timed))
    stamps: list[float] = [0.0]
    train_scale(
        pyramid,
        generator,
        critic,
        torch.Generator().manual_seed(0),
        on_progress=lambda p: stamps.append(p.seconds),
        report_every=1,
    )  # .item() in each report syncs CUDA
    pyramid.config = cfg
    return statistics.median(b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :]))


def time_original_scale(pyramid, generator, critic, warmup: int, timed: int) -> float:
    k = pyramid.scales_done
    opt_d, opt_g, _ = _optimizers(generator, critic, pyramid.config.train)
    rng = torch.Generator().manual_seed(0)
    rec_prev = upsampled_reconstruction(pyramid, k)
    z_opt = torch.zeros_like(rec_prev)
    times = []
    for _ in range(warmup + timed):
        start = time.perf_counter()
        original_iteration(pyramid, generator, critic, opt_d, opt_g, rng, 0.1, z_opt, rec_prev)
        times.append(time.perf_counter() - start)
    return statistics.median(times[warmup:])


def time_sample(pyramid, repeats: int = 5) -> float:
    sample(pyramid, 1, seed=0)
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        sample(pyramid, 1, seed=i).cpu()  # .cpu() waits for a GPU to finish
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def full_training(image: torch.Tensor, cfg, device, out_png: Path) -> dict:
    pyramid = new_pyramid(image, cfg, device)
    start = time.perf_counter()
    train(pyramid)
    seconds = time.perf_counter() - start
    samples = sample(pyramid, 16, seed=0)
    real = pyramid.reals[-1]
    swd = [patch_swd(s, real) for s in samples]
    top = torch.cat([real[0], *samples[:3]], dim=2)
    bottom = torch.cat(list(samples[3:7]), dim=2)
    save_image(torch.cat([top, bottom], dim=1), out_png)
    return {
        "train_seconds": seconds,
        "patch_swd_median": statistics.median(swd),
        "pixel_diversity": pixel_diversity(samples, real),
        "samples_png": str(out_png),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", type=Path)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--max-size", type=int, default=None, help="override the preset's max_size (px)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--timed", type=int, default=5)
    parser.add_argument("--device", default=None)
    parser.add_argument("--full", action="store_true", help="also train completely and measure quality")
    parser.add_argument("--skip-scales", action="store_true", help="only the --full part")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also time the original code's per-iteration work on this machine (bench/original_step.py)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override any config field, e.g. --set train.concurrent_stages=3 --set pyramid.scale_rule=consingan",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    configure_threads()
    device = select_device(args.device)
    cfg = apply_overrides(
        preset(args.preset).with_overrides(precision=args.precision, max_size=args.max_size), args.set
    )
    image = load_image(args.image)
    tag = f"{args.image.stem}_{args.preset}_{args.precision}" + (f"_max{args.max_size}" if args.max_size else "")
    tag += "".join(f"_{item.partition('.')[2].replace('=', '')}" for item in args.set)
    results: dict = {
        "image": str(args.image),
        "preset": args.preset,
        "settings": args.set,
        "precision": args.precision,
        "max_size": cfg.pyramid.max_size,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }
    print(f"{tag} on {device}, {torch.get_num_threads()} threads")

    if not args.skip_scales:
        pyramid = new_pyramid(image, cfg, device)
        results["sizes"] = [list(s) for s in pyramid.sizes]
        results["iterations"] = cfg.train.iterations
        results["s_per_iter"] = time_scales(pyramid, args.warmup, args.timed, baseline=False)
        results["sample_seconds"] = time_sample(pyramid)
        if args.baseline:
            print("original code's work per iteration, same machine:")
            results["baseline_s_per_iter"] = time_scales(
                new_pyramid(image, cfg, device), args.warmup, args.timed, baseline=True
            )
    if args.full:
        out_dir = Path("bench/results")
        out_dir.mkdir(parents=True, exist_ok=True)
        results["full"] = full_training(image, cfg, device, out_dir / f"{tag}_samples.png")
        f = results["full"]
        print(
            f"full training: {f['train_seconds']:.1f} s, median patch-SWD {f['patch_swd_median']:.5f}, "
            f"diversity {f['pixel_diversity']:.3f}  (samples: {f['samples_png']})"
        )

    if not args.skip_scales:
        print_table(results)
    path = args.json or Path("bench/results") / f"{tag}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    print(f"wrote {path}")


def print_table(results: dict) -> None:
    reference = (
        ORIGINAL_S_PER_ITER
        if results["preset"] == "paper" and results["max_size"] == 250 and not results.get("settings")
        else None
    )
    baseline = results.get("baseline_s_per_iter")
    header = f"{'scale':>5} {'size':>9} {'s/iter':>8}"
    header += f" {'orig here':>9} {'ratio':>6}" if baseline else ""
    header += f" {'orig ref':>9} {'ratio':>6}" if reference else ""
    print(header)
    for k, (size, t) in enumerate(zip(results["sizes"], results["s_per_iter"])):
        line = f"{k:>5} {size[0]:>4}x{size[1]:<4} {t:>8.3f}"
        for ref in (baseline, reference):
            if ref:
                line += f" {ref[k]:>9.3f} {t / ref[k]:>6.2f}"
        print(line)
    print(
        f"one full-size sample: {results['sample_seconds']:.3f} s"
        + (f" (reference {ORIGINAL_SAMPLE_S} s)" if reference else "")
    )
    iterations = results["iterations"]
    total = iterations * sum(results["s_per_iter"])
    line = f"estimated training time at {iterations} iterations per scale: {total:.0f} s"
    if baseline:
        line += f"; the original's work: {iterations * sum(baseline):.0f} s"
    print(line)


if __name__ == "__main__":
    main()
