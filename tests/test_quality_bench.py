"""The quality harness bench/quality.py and its ledger: the path a measurement campaign takes over several sittings."""

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
    if str(QUALITY.parent) not in sys.path:
        sys.path.insert(0, str(QUALITY.parent))  # its sibling bench/ledger.py, as when run as a script
    spec = importlib.util.spec_from_file_location("quality_bench", QUALITY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_quality(out: Path, *args: str) -> subprocess.CompletedProcess:
    """The script with its models in ``out`` and its ledger at ``out/ledger.jsonl``; busy machines allowed for
    ``train``/``score`` (a test suite is never an idle machine), so rows are marked busy when it is."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(QUALITY), "--out", str(out), "--ledger", str(out / "ledger.jsonl"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.mark.slow
def test_train_then_score_the_same_samples_gives_the_same_metrics(tmp_path, shared_images):
    image = shared_images / "chelsea.png"
    trained = run_quality(
        tmp_path,
        "train",
        "--preset",
        "tiny",
        "--set",
        "train.iterations=2",
        "--name",
        "t",
        "--images",
        str(image),
        "--seeds",
        "0",
        "--samples",
        "3",
        "--allow-busy",
    )
    assert trained.returncode == 0, trained.stderr
    record = json.loads((tmp_path / "t" / "chelsea" / "seed0" / "record.json").read_text())
    assert record["config"]["train"]["iterations"] == 2 and record["config"]["train"]["seed"] == 0
    assert len(record["patch_swd_per_sample"]) == 3
    quality = load_quality()
    (row,) = quality.ledger.read(tmp_path / "ledger.jsonl")
    assert (row["name"], row["image"], row["seed"], row["implementation"]) == ("t", "chelsea", 0, "ours")
    assert row["overrides"] == ["train.iterations=2"] and row["preset"] == "tiny" and row["threads"] == 1
    assert row["patch_swd"] == quality.statistics.median(record["patch_swd_per_sample"])
    # 2 iterations of a tiny model: far from the image's patches, yet not noise (patch-SWD of noise is ~10x larger)
    noise = quality.torch.rand(1, 3, *record_size(tmp_path)) * 2 - 1
    real = quality.real_at(image, record_size(tmp_path))
    assert 0 < row["patch_swd"] < quality.patch_swd(noise, real)
    assert 0.0 <= row["bright_density"] <= 1.0 and abs(row["bright_density_real"] - 0.02) < 0.005
    assert row["train_cpu_seconds"] > 0 and len(row["loadavg_before"]) == 3 and isinstance(row["busy"], bool)

    # a second call finds the run in the ledger and trains nothing
    again_train = run_quality(
        tmp_path,
        "train",
        "--preset",
        "tiny",
        "--set",
        "train.iterations=2",
        "--name",
        "t",
        "--images",
        str(image),
        "--seeds",
        "0",
        "--samples",
        "3",
        "--allow-busy",
    )
    assert again_train.returncode == 0 and "0 of 1 run(s)" in again_train.stdout
    assert len(quality.ledger.read(tmp_path / "ledger.jsonl")) == 1

    # the scoring mode (used for the original release's PNGs) goes through the identical metric code
    scored = run_quality(tmp_path, "score", record["samples_dir"], "--real", str(image), "--name", "again")
    assert scored.returncode == 0, scored.stderr
    rows = {r["name"]: r for r in quality.ledger.read(tmp_path / "ledger.jsonl")}
    for metric in ("patch_swd", "diversity", "copy_score", "bright_density"):
        assert rows["again"][metric] == rows["t"][metric]

    # the grid: one row (one seed), the real image then the 3 samples, 4 px white gaps
    h, w = record_size(tmp_path)
    assert Image.open(tmp_path / "t" / "chelsea_grid.png").size == (4 * (w + 4), h + 4)
    assert set(quality.report(tmp_path / "ledger.jsonl", None, include_busy=True)) == {"t", "again"}


def record_size(out: Path) -> tuple[int, int]:
    return Image.open(out / "t" / "chelsea" / "seed0" / "samples" / "sample_seed0.png").size[::-1]


def test_a_busy_machine_is_refused_or_marked(monkeypatch):
    ledger = load_quality().ledger
    monkeypatch.setattr(ledger.os, "getloadavg", lambda: (1.8, 1.0, 0.5))
    with pytest.raises(SystemExit) as exc:
        ledger.load_gate(allow_busy=False)
    assert "1.80 is above 1.3" in str(exc.value) and "\n" not in str(exc.value)
    assert ledger.load_gate(allow_busy=True) == ([1.8, 1.0, 0.5], True)
    monkeypatch.setattr(ledger.os, "getloadavg", lambda: (0.4, 1.0, 0.5))
    assert ledger.load_gate(allow_busy=False) == ([0.4, 1.0, 0.5], False)


def test_the_ledger_survives_interruptions_and_feeds_the_preset_table(tmp_path):
    quality = load_quality()
    path = tmp_path / "quality.jsonl"
    base = {
        "implementation": "ours",
        "train_seconds": 10.0,
        "diversity": 0.5,
        "copy_score": 0.1,
        "bright_density": 0.02,
        "sifid": None,
    }
    for name, seed, swd, cpu, busy in (
        ("draft", 0, 0.004, 100.0, False),
        ("draft", 1, 0.006, 140.0, False),
        ("draft", 2, 0.005, 120.0, False),
        ("draft", 3, 0.5, 900.0, True),
    ):
        quality.ledger.append(
            path,
            {
                **base,
                "name": name,
                "image": "balloons",
                "seed": seed,
                "patch_swd": swd,
                "train_cpu_seconds": cpu,
                "busy": busy,
            },
        )
    with path.open("a") as f:
        f.write("\n")  # a blank line (an editor's, or a kill between lines) is not a row
    assert quality.ledger.done(path) == {("draft", "balloons", s) for s in range(4)}
    table = quality.preset_table(path, ["draft", "paper"])
    # medians over the three idle rows: the busy row's 0.5 / 900 would move both
    assert "| `draft` | 1 x 3 | 120 | 0.0050 | 0.500 |" in table
    assert "| `paper` | not measured yet |" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{quality.PRESET_TABLE_START}\nold\n{quality.PRESET_TABLE_END}\noutro\n")
    quality.cmd_table(quality.argparse.Namespace(ledger=path, names=["draft"], readme=readme))
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text and "| `draft` |" in text


def test_a_bad_override_is_one_line_naming_the_field():
    quality = load_quality()
    tiny = quality.preset("tiny")
    assert quality.apply_overrides(tiny, ["train.iterations=7", "pyramid.max_size=40"]).train.iterations == 7
    for bad, expected in (
        ("train.iterationz=2", "TrainConfig has no field 'iterationz'"),
        ("train.iterations=many", "train.iterations: expected int"),
        ("trian.iterations=2", "unknown section 'trian'"),
        ("iterations=2", "expected section.field=value"),
    ):
        with pytest.raises(SystemExit) as exc:
            quality.apply_overrides(tiny, [bad])
        assert expected in str(exc.value) and "\n" not in str(exc.value)
