"""Run the original SinGAN code release (tamarott/SinGAN, upstream commit 1b4906b) on this machine.

    python bench/original_singan.py IMAGE --source GIT_DIR_OR_CHECKOUT --python ORIG_VENV_PYTHON \\
        --work SCRATCH/original-<image>-s<seed> [--seed 0] [--max-size 128] [--iterations 200]
    python bench/quality.py score SCRATCH/original-<image>-s<seed>/samples --real IMAGE --max-size 128

The faithfulness check: the original's own training at its own settings, scored with the
same metric code as ours (``bench/quality.py score``). Its code never enters this project: commit
1b4906b is exported with ``git archive`` into ``--work`` (outside the project tree), patched there
with the minimal string replacements below, and run as a subprocess in its own virtual environment.

Steps: export (``SinGAN/``, ``config.py``, ``main_train.py``, ``random_samples.py``; the release's
``Downloads/`` is skipped: its large blobs are absent from the mirror and unused; git still names
the first absent blob in an ``error: invalid object`` line, which is harmless), copy IMAGE into
its ``Input/Images/``, run ``main_train.py --input_name NAME --max_size M --niter I --manualSeed S
--not_cuda`` (timed, wall and CPU seconds: the training plus the 50 samples it draws at the end,
a few seconds at 128 px),
then ``random_samples.py --mode random_samples --gen_start_scale 0 --manualSeed S --out Samples``
(a fresh output folder: its default one already holds the training's samples, and it would skip),
and copy the first ``--samples`` of its PNGs (``0.png`` ..) to ``WORK/samples``. ``WORK/run.json``
records the command lines, wall seconds, threads and ``uptime`` before and after.

The original's environment (outside the project; any other torch spec downloads gigabytes)::

    python3.11 -m venv ORIG_VENV
    ORIG_VENV/bin/pip install torch==2.13.0
    ORIG_VENV/bin/pip install scikit-image scikit-learn scipy matplotlib imageio

Patches (each a string replacement that must match exactly once; see ``PATCHES``):

1. ``SinGAN/training.py``: recompute ``fake`` for the 2nd and 3rd G step. The original backpropagates
   G steps 2-3 through the graph of step 1, whose weights ``optimizerG.step()`` has since changed in
   place; torch >= 1.5 refuses ("modified by an inplace operation"). Old torch silently mixed old
   activations with new weights; recomputing is what the paper's algorithm means.
2-5. ``SinGAN/functions.py``: ``torch.load(..., weights_only=False)`` for its own pickles ``Gs``,
   ``Zs``, ``reals``, ``NoiseAmp`` (whole modules; torch >= 2.6 defaults to ``weights_only=True``).
6. ``SinGAN/functions.py``: scikit-image renamed ``binary_dilation``'s ``selem`` to ``footprint``
   (unused by random samples; patched so the module is the release's, only runnable).
7. ``SinGAN/manipulate.py``: drop its three unused ``torchvision`` imports (PyPI's torchvision does
   not load beside the torch 2.13 CPU build, and nothing in the file uses them).
8. ``SinGAN/imresize.py``: ``np.int`` -> ``int`` (removed in numpy 1.24).

Left as released, on purpose (candidate explanations of a gap): ``torch.full(..., 0)``
makes its zero noise maps int64 (harmless: they only ever enter float sums); its MATLAB-style
``imresize`` (cubic, antialiased, no uint8 round trip inside the pyramid); ``z_opt`` redrawn at the
coarsest scale in every iteration (its issue #43); its lr milestone fixed at iteration 1600
(``MultiStepLR(milestones=[1600])``), so at ``--niter 200`` the learning rate never drops.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

UPSTREAM_COMMIT = "1b4906b"
NEEDED = ("SinGAN", "config.py", "main_train.py", "random_samples.py", "LICENSE.txt")


class Patch(NamedTuple):
    path: str  # file inside the export
    old: str
    new: str
    why: str


PATCHES = (
    Patch(
        "SinGAN/training.py",
        "        for j in range(opt.Gsteps):\n            netG.zero_grad()\n            output = netD(fake)\n",
        "        for j in range(opt.Gsteps):\n            netG.zero_grad()\n"
        "            if j > 0:\n                fake = netG(noise.detach(),prev)\n            output = netD(fake)\n",
        "G steps 2-3 backpropagated through step 1's graph after optimizerG.step() changed its weights in place",
    ),
    *(
        Patch(
            "SinGAN/functions.py",
            f"torch.load('%s/{name}.pth' % dir)",
            f"torch.load('%s/{name}.pth' % dir, weights_only=False)",
            f"torch >= 2.6 loads only weights by default; {name}.pth is the original's own pickle",
        )
        for name in ("Gs", "Zs", "reals", "NoiseAmp")
    ),
    Patch(
        "SinGAN/functions.py",
        "binary_dilation(mask,selem=element)",
        "binary_dilation(mask,footprint=element)",
        "scikit-image renamed selem to footprint",
    ),
    Patch(
        "SinGAN/manipulate.py",
        "import torchvision.datasets as dset\nimport torchvision.transforms as transforms\nimport torchvision.utils as vutils\n",
        "",
        "unused torchvision imports; PyPI's torchvision does not load beside the torch 2.13 CPU build",
    ),
    Patch("SinGAN/imresize.py", "np.int(", "int(", "np.int was removed in numpy 1.24"),
)


def export(source: Path, dest: Path) -> None:
    """Write commit 1b4906b's files ``NEEDED`` into ``dest`` (created; must be empty or absent).

    ``source`` is the original's bare git dir (``git archive``) or a checkout of that commit (copied).
    Raises SystemExit with one line if ``dest`` is not empty or ``source`` is neither.
    """
    if dest.exists() and any(dest.iterdir()):
        raise SystemExit(f"--work: {dest} is not empty; give a fresh scratch folder")
    dest.mkdir(parents=True, exist_ok=True)
    if (source / "main_train.py").is_file():
        for name in NEEDED:
            src = source / name
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
        return
    if not (source / "objects").is_dir():
        raise SystemExit(f"--source: {source} is neither a git dir nor a checkout of the original (no main_train.py)")
    with tempfile.TemporaryFile() as tar:
        subprocess.run(
            ["git", "--git-dir", str(source), "archive", UPSTREAM_COMMIT, "--", *NEEDED], stdout=tar, check=True
        )
        tar.seek(0)
        with tarfile.open(fileobj=tar) as archive:
            archive.extractall(dest, filter="data")


def apply_patches(root: Path) -> None:
    """Apply ``PATCHES`` in ``root``; raises SystemExit naming the patch that does not match exactly once."""
    for patch in PATCHES:
        file = root / patch.path
        text = file.read_text()
        count = text.count(patch.old)
        if count != 1:
            raise SystemExit(f"patch {patch.path} ({patch.why}): expected 1 match, found {count}")
        file.write_text(text.replace(patch.old, patch.new))


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_timed(cmd: list[str], cwd: Path, log: Path) -> tuple[float, float]:
    """Run ``cmd`` in ``cwd`` with output to ``log``; (wall seconds, its CPU seconds). SystemExit on failure."""
    start, cpu_start = time.perf_counter(), children_cpu_seconds()
    with log.open("w") as out:
        result = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    seconds, cpu_seconds = time.perf_counter() - start, children_cpu_seconds() - cpu_start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[1:3])} failed with exit code {result.returncode}; see {log}")
    return seconds, cpu_seconds


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", type=Path)
    parser.add_argument(
        "--source",
        type=Path,
        required=True,
        help="the original's git dir (holding upstream commit 1b4906b) or a checkout of it",
    )
    parser.add_argument("--python", type=Path, required=True, help="python of the original's own venv")
    parser.add_argument("--work", type=Path, required=True, help="fresh scratch folder outside the project")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--samples", type=int, default=16, help="sample PNGs kept for scoring (the original draws 50)")
    args = parser.parse_args()
    if not args.image.is_file():
        raise SystemExit(f"image: no such file: {args.image}")
    if Path(__file__).resolve().parents[1] in args.work.resolve().parents:
        raise SystemExit(f"--work: {args.work} is inside the project; the original's code never goes there")

    export(args.source, args.work)
    apply_patches(args.work)
    name = args.image.stem + ".png"  # its dir names cut the last 4 characters; PNG keeps pixels exact
    (args.work / "Input" / "Images").mkdir(parents=True)
    if args.image.suffix.lower() == ".png":
        shutil.copy2(args.image, args.work / "Input" / "Images" / name)
    else:
        from PIL import Image

        Image.open(args.image).convert("RGB").save(args.work / "Input" / "Images" / name)

    py = str(args.python)
    train_cmd = [
        py,
        "main_train.py",
        "--input_name",
        name,
        "--max_size",
        str(args.max_size),
        "--niter",
        str(args.iterations),
        "--manualSeed",
        str(args.seed),
        "--not_cuda",
    ]
    sample_cmd = [
        py,
        "random_samples.py",
        "--input_name",
        name,
        "--mode",
        "random_samples",
        "--gen_start_scale",
        "0",
        "--max_size",
        str(args.max_size),
        "--manualSeed",
        str(args.seed),
        "--not_cuda",
        "--out",
        "Samples",
    ]
    record = {
        "image": str(args.image),
        "seed": args.seed,
        "max_size": args.max_size,
        "iterations": args.iterations,
        "commit": UPSTREAM_COMMIT,
        "patches": [p.why for p in PATCHES],
        "train_cmd": train_cmd,
        "sample_cmd": sample_cmd,
        "threads_env": os.environ.get("OMP_NUM_THREADS"),
        "uptime_before": uptime(),
        "loadavg_before": list(os.getloadavg()),  # what quality.py score puts in the ledger row
    }
    print(f"original {name} seed {args.seed}: training in {args.work}", flush=True)
    record["train_seconds"], record["train_cpu_seconds"] = run_timed(train_cmd, args.work, args.work / "train.log")
    record["uptime_after_train"] = uptime()
    record["sample_seconds"], _ = run_timed(sample_cmd, args.work, args.work / "samples.log")
    produced = args.work / "Samples" / "RandomSamples" / args.image.stem / "gen_start_scale=0"
    kept = args.work / "samples"
    kept.mkdir()
    for i in range(args.samples):
        shutil.copy2(produced / f"{i}.png", kept / f"{i}.png")
    record["samples_dir"] = str(kept)
    (args.work / "run.json").write_text(json.dumps(record, indent=2))
    print(f"trained in {record['train_seconds']:.0f} s; {args.samples} samples in {kept}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
