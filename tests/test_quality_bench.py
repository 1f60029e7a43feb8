"""A tiny smoke of the quality harness bench/quality.py (issue 16): the path a rerun on a bigger machine takes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

QUALITY = Path(__file__).resolve().parents[1] / "bench" / "quality.py"


def load_quality():
    """bench/quality.py as a module (bench/ is scripts, not a package; importing it runs nothing)."""
    spec = importlib.util.spec_from_file_location("quality_bench", QUALITY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_quality(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(QUALITY), "--out", str(out), *args],
                          capture_output=True, text=True, env=env, timeout=600)


def test_train_then_score_the_same_samples_gives_the_same_metrics(tmp_path, shared_images):
    image = shared_images / "chelsea.png"
    trained = run_quality(tmp_path, "train", "--preset", "tiny", "--set", "train.iterations=2", "--name", "t",
                          "--images", str(image), "--seeds", "0", "--samples", "3")
    assert trained.returncode == 0, trained.stderr
    record = json.loads((tmp_path / "t" / "chelsea" / "seed0" / "record.json").read_text())
    assert record["config"]["train"]["iterations"] == 2 and record["config"]["train"]["seed"] == 0
    assert record["patch_swd"] > 0 and 0 < record["diversity"] and 0 <= record["copy_score"] <= 1
    assert len(record["patch_swd_per_sample"]) == 3 and record["train_seconds"] > 0

    # the scoring mode (used for the original release's PNGs) goes through the identical metric code
    scored = run_quality(tmp_path, "score", record["samples_dir"], "--real", str(image), "--name", "again")
    assert scored.returncode == 0, scored.stderr
    again = json.loads((tmp_path / "again" / "chelsea" / "seed0" / "record.json").read_text())
    for metric in ("patch_swd_per_sample", "diversity", "copy_score_per_sample"):
        assert again[metric] == record[metric]

    # the grid: one row (one seed), the real image then the 3 samples, 4 px white gaps
    h, w = again["scored_size"]
    assert Image.open(tmp_path / "t" / "chelsea_grid.png").size == (4 * (w + 4), h + 4)
    assert set(load_quality().report(tmp_path, None)) == {"t", "again"}
    assert set(json.loads((tmp_path / "report.json").read_text())["table"]) == {"t", "again"}


def test_a_bad_override_is_one_line_naming_the_field():
    quality = load_quality()
    tiny = quality.preset("tiny")
    assert quality.apply_overrides(tiny, ["train.iterations=7", "pyramid.max_size=40"]).train.iterations == 7
    for bad, expected in (("train.iterationz=2", "TrainConfig has no field 'iterationz'"),
                          ("train.iterations=many", "train.iterations: expected int"),
                          ("trian.iterations=2", "unknown section 'trian'"),
                          ("iterations=2", "expected section.field=value")):
        with pytest.raises(SystemExit) as exc:
            quality.apply_overrides(tiny, [bad])
        assert expected in str(exc.value) and "\n" not in str(exc.value)
