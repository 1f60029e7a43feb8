"""The real ``singan`` command line, run as a subprocess: error reporting and a tiny end-to-end run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[1]


def singan(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "singan_cli.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_clean_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit status != 0, exactly one line on stderr naming the problem, no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def test_missing_image(tmp_path):
    result = singan("train", tmp_path / "nope.png", "--preset", "tiny", "--out", tmp_path / "m", cwd=tmp_path)
    assert_clean_error(result, "nope.png", "no such file")
    assert result.returncode == 2
    assert not (tmp_path / "m").exists()


def test_not_an_image(tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("hello, not a PNG")
    result = singan("train", fake, "--preset", "tiny", "--out", tmp_path / "m", cwd=tmp_path)
    assert_clean_error(result, "notes.png", "not a readable image")
    assert not (tmp_path / "m").exists()


def test_image_too_small(tmp_path):
    small = tmp_path / "small.png"
    Image.fromarray(np.full((10, 10, 3), 128, np.uint8)).save(small)
    result = singan("train", small, "--preset", "tiny", "--out", tmp_path / "m", cwd=tmp_path)
    assert_clean_error(result, "min_size")
    assert not (tmp_path / "m").exists()  # nothing half-written


def test_bad_option_value(tmp_path):
    result = singan("train", "x.png", "--preset", "huge", cwd=tmp_path)
    assert_clean_error(result, "--preset", "huge")
    assert result.returncode == 2


def test_sample_corrupt_model_dir(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.json").write_text("{ not json")
    result = singan("sample", model, cwd=tmp_path)
    assert_clean_error(result, "model.json", "not valid JSON")
    assert not (model / "samples").exists()


class Scores(NamedTuple):
    patch_swd: float  # the median over the samples
    diversity: float
    text: str  # all that ``singan eval`` printed


def evaluate(model: Path, cwd: Path) -> Scores:
    """``singan eval MODEL -n 4``, its numbers read from what it prints."""
    result = singan("eval", model, "-n", "4", cwd=cwd)
    assert result.returncode == 0, result.stderr
    swd = re.search(r"^patch-SWD: median ([0-9.]+)", result.stdout, re.M)
    diversity = re.search(r"^pixel diversity: ([0-9.]+)", result.stdout, re.M)
    assert swd and diversity, result.stdout
    return Scores(float(swd[1]), float(diversity[1]), result.stdout)


def without_noise(model: Path, dst: Path) -> Path:
    """A copy of ``model`` whose noise_amp are all 0: every sample is the same image (collapsed)."""
    shutil.copytree(model, dst)
    meta = json.loads((dst / "model.json").read_text())
    meta["noise_amp"] = [0.0] * len(meta["noise_amp"])
    (dst / "model.json").write_text(json.dumps(meta))
    return dst


def with_scrambled_finest_generator(model: Path, dst: Path) -> Path:
    """A copy of ``model`` whose finest generator has random weights: its samples are garbage."""
    shutil.copytree(model, dst)
    last = sorted(dst.glob("scale_*.safetensors"))[-1]
    tensors = load_file(str(last))
    gen = torch.Generator().manual_seed(0)
    for name, t in tensors.items():
        if name.startswith("G.") and t.is_floating_point() and t.dim() > 1:
            tensors[name] = torch.randn(t.shape, generator=gen) * t.std()
    save_file(tensors, str(last))
    return dst


BROKEN_MODELS = {"no noise": without_noise, "scrambled finest generator": with_scrambled_finest_generator}


@pytest.mark.slow
def test_train_sample_eval_end_to_end(tmp_path, shared_images):
    model = tmp_path / "model"
    result = singan(
        "train", shared_images / "chelsea.png", "--preset", "tiny", "--out", model, "--device", "cpu", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(model)
    assert (model / "model.json").is_file() and (model / "scale_02.safetensors").is_file()

    result = singan("sample", model, "-n", "2", "--scale-w", "2", "--seed", "5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    files = [model / "samples" / f"sample_seed{s}.png" for s in (5, 6)]
    assert result.stdout.split() == [str(f) for f in files]
    for f in files:
        with Image.open(f) as im:
            assert im.size == (96, 32) and im.mode == "RGB"  # tiny preset: 48x32, twice as wide

    good = evaluate(model, tmp_path)
    assert "SIFID: not computed" in good.text and "--sifid-weights" in good.text
    broken = {name: evaluate(make(model, tmp_path / name), tmp_path) for name, make in BROKEN_MODELS.items()}
    # measured (patch-SWD median, diversity): good (0.0089, 0.38), no noise (0.26, 0.0),
    # scrambled finest generator (0.031, 0.32)
    assert broken["no noise"].diversity < 0.2 * good.diversity
    assert broken["scrambled finest generator"].patch_swd > 2 * good.patch_swd

    result = singan("train", shared_images / "chelsea.png", "--preset", "tiny", "--out", model, cwd=tmp_path)
    assert_clean_error(result, "already holds a trained model", "--overwrite")
