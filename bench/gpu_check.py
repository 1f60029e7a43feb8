"""One run on a CUDA machine: is CUDA correct against the CPU, and how fast does training go.

    python bench/gpu_check.py                 # on the GPU machine (about 6 minutes on an H200)
    python bench/gpu_check.py --quick         # a few-second smoke of every part (also on a CPU)

Uses whatever torch is installed and prints its version, the device and the settings first.

(a) Correctness, CUDA against the CPU (TF32 off for the comparisons, so both run true fp32):
  1. forward: one model (tiny preset, trained on the CPU) sampled on both devices, same seeds:
     max |difference| <= 1e-4 ([-1, 1] pixel units);
  2. training step: 3 iterations of one scale from the same nets, noise and GP mixing on both
     devices (noise is drawn on the CPU, nets initialised there): parameters within 1e-4;
  3. a whole tiny training on each device from the same seed: both reconstruct their finest real
     image at >= 20 dB PSNR, and patch-SWD of their samples within 2x of each other. Samples of the
     two models are not compared pixel by pixel: a GAN's training trajectory amplifies fp32
     rounding differences (the figure is printed, not judged);
  4. the full-resolution lift (singan_core.full_resolution.sample_full_resolution) of the
     CPU-trained model on both devices: PSNR between them >= 30 dB (the patch engine's nearest-
     neighbour choices may flip on near-ties, so not bit-exact).
  On a machine without CUDA these print one "skipped: no CUDA" line and only the CPU side runs
  (``--twin-device cpu`` runs them CPU against CPU, to try the script itself).

(b) Speed (bench/train_speed.py's per-scale timing, median of the timed iterations) for `paper` and
  `draft` on balloons.png: fp32, bf16 (autocast), channels_last, and torch.compile of the
  finest scale's generator (where the time goes; it compiles in the warm-up iterations; one
  scale only, to keep compile time inside the budget). Only G_k is compiled: D_k stays eager because WGAN-GP's gradient penalty needs
  the double backward through D_k, which torch.compile does not support. Per configuration:
  seconds per iteration of every scale and the training time they add up to at the preset's
  iterations; then one real `draft`-settings training at max_size 250 px with its wall time,
  patch-SWD, diversity and a sample grid.

Writes gpu_check.json (and the grid PNGs) to --out, default $OUT if set, else bench/results/.
Exit status 1 if a correctness check fails.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_speed, original_step beside this file

from singan_core.config import preset  # noqa: E402
from singan_core.full_resolution import lift_source, sample_full_resolution  # noqa: E402
from singan_core.imageio import load_image, save_image  # noqa: E402
from singan_core.metrics import patch_swd, pixel_diversity  # noqa: E402
from singan_core.sampling import reconstruct, sample  # noqa: E402
from singan_core.training import _init_nets, new_pyramid, train, train_scale  # noqa: E402
from train_speed import time_sample, time_scales  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
IMAGES = [REPO / "shared" / "images", REPO.parent / "shared" / "images", REPO / "singan_core" / "data"]
CPU = torch.device("cpu")


def find_image(name: str) -> Path:
    """``name`` as given, else under shared/images (inside or beside the repo) or the demo image."""
    for candidate in [Path(name)] + [d / name for d in IMAGES] + [d / "reference" / name for d in IMAGES]:
        if candidate.is_file():
            return candidate
    return REPO / "singan_core" / "data" / "demo.png"


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two images in [-1, 1] (peak-to-peak 2)."""
    mse = F.mse_loss(a.float().cpu().clamp(-1, 1), b.float().cpu().clamp(-1, 1)).item()
    return math.inf if mse == 0 else 10 * math.log10(4 / mse)


def check(results: list[dict], name: str, value: float, ok: bool, limit: str) -> None:
    results.append({"check": name, "value": value, "ok": ok, "limit": limit})
    print(f"  {'ok  ' if ok else 'FAIL'} {name}: {value:.6g} ({limit})", flush=True)


# --------------------------------------------------------------------------- (a) correctness


def correctness(image: torch.Tensor, cuda: torch.device, quick: bool, out: Path) -> list[dict]:
    torch.backends.cudnn.allow_tf32 = False  # true fp32 on both sides for the comparisons
    torch.backends.cuda.matmul.allow_tf32 = False
    results: list[dict] = []
    twin = "CUDA" if cuda.type == "cuda" else f"{cuda} (a CPU twin: trying the script)"
    cfg = preset("tiny")
    if quick:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, iterations=20))
    cpu_model = train(new_pyramid(image, cfg, CPU))

    # 1. forward
    on_cuda = new_pyramid(image, cfg, cuda)
    for g, d, amp, z in zip(cpu_model.generators, cpu_model.discriminators, cpu_model.noise_amps, cpu_model.z_opts):
        on_cuda.add_scale(copy.deepcopy(g).to(cuda), copy.deepcopy(d).to(cuda), amp, z.to(cuda))
    diff = (sample(cpu_model, 4, seed=3) - sample(on_cuda, 4, seed=3).cpu()).abs().max().item()
    print(f"  twin device: {twin}")
    check(results, "sample, same model and seeds: max |CPU - twin|", diff, diff <= 1e-4, "<= 1e-4")

    # 2. a training step
    params = []
    for device in (CPU, cuda):
        pyramid = new_pyramid(
            image, dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, iterations=3)), device
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            g, d = _init_nets(pyramid, 0)
        train_scale(pyramid, g, d, torch.Generator().manual_seed(0))
        params.append(torch.cat([p.detach().cpu().flatten() for p in (*g.parameters(), *d.parameters())]))
    diff = (params[0] - params[1]).abs().max().item()
    check(results, "3 training iterations of scale 0: max |parameter CPU - twin|", diff, diff <= 1e-4, "<= 1e-4")

    # 3. a whole training
    cuda_model = train(new_pyramid(image, cfg, cuda))
    real = cpu_model.reals[-1]
    for name, model in (("CPU", cpu_model), (twin, cuda_model)):
        value = psnr(reconstruct(model), model.reals[-1])
        check(results, f"tiny training on {name}: reconstruction PSNR (dB)", value, value >= 20, ">= 20 dB")
    swd = [
        statistics.median(patch_swd(s[None], real) for s in sample(m, 8, seed=0).cpu()) for m in (cpu_model, cuda_model)
    ]
    ratio = max(swd) / max(min(swd), 1e-12)
    check(
        results,
        f"patch-SWD of samples, twin-trained / CPU-trained ({swd[1]:.4f} / {swd[0]:.4f}), larger over smaller",
        ratio,
        ratio <= 2.0,
        "<= 2",
    )
    value = psnr(sample(cpu_model, 4, seed=0), sample(cuda_model, 4, seed=0))
    results.append(
        {
            "check": "samples of the two trainings, same seeds: PSNR (dB), not judged",
            "value": value,
            "ok": True,
            "limit": "info",
        }
    )
    print(
        f"  info samples of the CPU- and the twin-trained model, same seeds: {value:.1f} dB PSNR (training trajectories may diverge on another device; not judged)"
    )
    save_image(
        torch.cat(
            [real, *sample(cpu_model, 3, seed=0).split(1), real, *sample(cuda_model, 3, seed=0).cpu().split(1)], dim=3
        ),
        out / "gpu_check_cpu_vs_cuda_training.png",
    )

    # 4. the full-resolution lift
    lifts = []
    for model in (cpu_model, on_cuda):
        source = lift_source(model, None)
        h, w = source.image.shape[-2:]
        lifts.append(
            sample_full_resolution(model, source, height=min(h, 256), width=min(w, 256), n_samples=1, seed=1).cpu()
        )
    value = psnr(lifts[0], lifts[1])
    check(results, "full-resolution lift, same model and seed: PSNR CPU vs twin (dB)", value, value >= 30, ">= 30 dB")
    save_image(torch.cat(lifts, dim=3), out / "gpu_check_lift_cpu_vs_cuda.png")
    torch.backends.cudnn.allow_tf32 = True  # torch's defaults again for the speed runs
    return results


# --------------------------------------------------------------------------- (b) speed


def speed(image: torch.Tensor, device: torch.device, quick: bool, out: Path) -> dict:
    presets = ["tiny"] if quick else ["paper", "draft"]
    warmup, timed = (2, 2) if quick else (3, 10)
    variants = [
        ("fp32", {}),
        ("bf16", {"precision": "bf16"}),
        ("fp32 channels_last", {"channels_last": True}),
        ("bf16 channels_last", {"precision": "bf16", "channels_last": True}),
        ("fp32 compile G (finest)", {"compile": True}),
        ("bf16 compile G (finest)", {"precision": "bf16", "compile": True}),
    ]
    table: dict = {}
    for name in presets:
        for label, opts in variants:
            cfg = preset(name).with_overrides(precision=opts.get("precision", "fp32"))
            pyramid = new_pyramid(image, cfg, device)
            print(f"{name} {label}:", flush=True)
            start = time.perf_counter()
            try:
                per_scale = time_scales(
                    pyramid,
                    warmup,
                    timed,
                    baseline=False,
                    channels_last=opts.get("channels_last", False),
                    compile_from=pyramid.num_scales - 1 if opts.get("compile") else None,
                )
            except Exception as exc:  # e.g. torch.compile unavailable (no C compiler): report, go on
                print(f"  failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", flush=True)
                table[f"{name} {label}"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
                continue
            table[f"{name} {label}"] = {
                "sizes": [list(s) for s in pyramid.sizes],
                "s_per_iter": per_scale,
                "estimated_train_seconds": cfg.train.iterations * sum(per_scale),
                "sample_seconds": time_sample(pyramid),
                "bench_seconds": time.perf_counter() - start,
            }
    return table


def real_training(image: torch.Tensor, device: torch.device, quick: bool, out: Path) -> dict:
    """`draft`'s nets and iterations at max_size 250 px (tiny with --quick), trained for real."""
    cfg = preset("tiny") if quick else preset("draft").with_overrides(max_size=250)
    pyramid = new_pyramid(image, cfg, device)
    _sync(device)
    start = time.perf_counter()
    train(pyramid)
    _sync(device)
    seconds = time.perf_counter() - start
    samples, real = sample(pyramid, 16, seed=0).cpu(), pyramid.reals[-1].cpu()
    png = out / f"gpu_check_{'tiny' if quick else 'draft250'}_samples.png"
    save_image(torch.cat([torch.cat([real[0], *samples[:3]], dim=2), torch.cat(list(samples[3:7]), dim=2)], dim=1), png)
    result = {
        "config": "tiny" if quick else "draft at max_size 250",
        "train_seconds": seconds,
        "patch_swd_median": statistics.median(patch_swd(s[None], real) for s in samples),
        "pixel_diversity": pixel_diversity(samples, real),
        "samples_png": png.name,
    }
    print(
        f"real training ({result['config']}) on {device}: {seconds:.1f} s, patch-SWD {result['patch_swd_median']:.4f}, "
        f"diversity {result['pixel_diversity']:.3f}",
        flush=True,
    )
    return result


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def print_table(table: dict) -> None:
    print(
        f"\n{'configuration':<34} {'scales':>6} {'finest s/it':>11} {'sum s/it':>9} {'est. train s':>12} {'sample s':>9}"
    )
    for label, row in table.items():
        if "error" in row:
            print(f"{label:<34} failed: {row['error'][:60]}")
            continue
        per = row["s_per_iter"]
        print(
            f"{label:<34} {len(per):>6} {per[-1]:>11.4f} {sum(per):>9.4f} {row['estimated_train_seconds']:>12.1f} {row['sample_seconds']:>9.4f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny preset, few iterations: a smoke of every part")
    parser.add_argument("--image", default="balloons.png", help="training image (looked up in shared/images)")
    parser.add_argument(
        "--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else REPO / "bench" / "results"
    )
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument(
        "--twin-device", default="cuda", help="device compared with the CPU in (a); cpu: try the script without a GPU"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    has_cuda = torch.cuda.is_available()
    device = torch.device("cuda") if has_cuda else CPU
    image_path = find_image(args.image)
    image = load_image(image_path)
    info = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if has_cuda else None,
        "device": torch.cuda.get_device_name(0) if has_cuda else f"CPU ({platform.processor() or platform.machine()})",
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "image": image_path.name,
        "quick": args.quick,
    }
    print(" ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    report: dict = {"info": info}
    failed = False
    start = time.perf_counter()

    print("\n(a) correctness, CUDA against the CPU", flush=True)
    if has_cuda or args.twin_device == "cpu":
        report["correctness"] = correctness(image, torch.device(args.twin_device), args.quick, args.out)
        failed = not all(r["ok"] for r in report["correctness"])
    else:
        print("  skipped: no CUDA device (torch.cuda.is_available() is False); the speed part runs on the CPU")
    print(f"  ({time.perf_counter() - start:.0f} s so far)", flush=True)

    if not args.skip_speed:
        print(f"\n(b) speed on {info['device']}", flush=True)
        report["speed"] = speed(image, device, args.quick, args.out)
        print_table(report["speed"])
        report["real_training"] = real_training(image, device, args.quick, args.out)
    report["total_seconds"] = time.perf_counter() - start
    path = args.out / "gpu_check.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\ntotal {report['total_seconds']:.0f} s; wrote {path}" + ("; A CORRECTNESS CHECK FAILED" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
