"""Options of the ``singan`` and ``singan-daemon`` console scripts that no other test uses (issue 30),
each run as a subprocess through the installed script, with a check that fails if the option
stopped reaching the library: ``protocol schema``, ``singan-daemon`` with ``--device`` and
``--cache-mb``, ``sample --detail/--scale-h/--gen-start-scale``, ``--no-noise`` on harmonize, edit
and paint2image, ``harmonize --scale``, ``animate --start-scale/--alpha/--beta`` and ``train
--max-size/--padding/--seed/--precision/--resume``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from protocol.client import Client

BIN = Path(sys.executable).parent


def script(name: str, *args: str | Path, cwd: Path, timeout: float = 300, **popen) -> subprocess.CompletedProcess:
    """Run the console script ``name`` (beside this Python) with the repository first on the path."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [str(BIN / name), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **popen
    )


def singan(*args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    result = script("singan", *args, cwd=cwd, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result


def read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def test_protocol_schema_prints_every_request_and_reply(tmp_path):
    schema = json.loads(singan("protocol", "schema", cwd=tmp_path).stdout)
    text = json.dumps(schema)
    for name in ("GenerateParams", "InstantParams", "HarmonizeParams", "Paint2ImageParams", "AnimateParams"):
        assert name in text, name


def test_singan_daemon_entry_point_serves_with_device_and_cache_options(tmp_path, tiny_model):
    store = tmp_path / "store"
    shutil.copytree(tiny_model, store / "models" / "chelsea")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [
            str(BIN / "singan-daemon"),
            "--endpoint",
            "tcp://127.0.0.1:*",
            "--store",
            str(store),
            "--log-file",
            str(tmp_path / "daemon.log"),
            "--device",
            "cpu",
            "--cache-mb",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        with Client(line.split()[-1], timeout=30) as client:
            assert client.hello()["device"] == "cpu"
            for seed in (1, 2):  # a 1 MiB cache cannot keep the model: it is loaded again, and served
                job = client.submit("generate", {"model": "chelsea", "seed": seed})
                job.wait(timeout=120)
                assert (job.images[0].width, job.images[0].height) == (48, 32)
    finally:
        proc.terminate()
        proc.wait(60)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def test_sample_start_scale_and_scale_h(tmp_path, tiny_trained):
    """``--gen-start-scale`` at the finest scale keeps the photo (paper sec. 4); at 0 it does not
    (the control); ``--scale-h 2`` doubles the height."""
    model = tiny_trained.path
    real = np.asarray(Image.fromarray(read(tiny_trained.image).astype(np.uint8)).resize((48, 32), Image.BOX)).astype(
        int
    )
    finest = tiny_trained.pyramid.num_scales - 1
    outs = {}
    for start in (0, finest):
        singan(
            "sample",
            model,
            "-n",
            "1",
            "--seed",
            "4",
            "--gen-start-scale",
            start,
            "--out",
            tmp_path / f"s{start}",
            cwd=tmp_path,
        )
        [outs[start]] = [read(p) for p in (tmp_path / f"s{start}").glob("*.png")]
    assert distance(outs[finest], real) < 15 < distance(outs[0], real), (
        distance(outs[finest], real),
        distance(outs[0], real),
    )
    singan("sample", model, "-n", "1", "--scale-h", "2", "--out", tmp_path / "tall", cwd=tmp_path)
    [tall] = [read(p) for p in (tmp_path / "tall").glob("*.png")]
    assert tall.shape == (64, 48, 3)


def test_sample_detail_source_and_model(tmp_path, brick_model_dir):
    """``--detail source`` gives the source's brick size at 128 x 128; ``--detail model`` (the
    control) bricks about ten times smaller."""
    from singan_core.imageio import load_image
    from singan_core.metrics import dominant_period

    period = dominant_period(load_image(brick_model_dir / "full_source.png"))
    found = {}
    for detail in ("source", "model"):
        singan(
            "sample",
            brick_model_dir,
            "--width",
            "128",
            "--height",
            "128",
            "--detail",
            detail,
            "--seed",
            "1",
            "--out",
            tmp_path / detail,
            cwd=tmp_path,
        )
        [path] = (tmp_path / detail).glob("*.png")
        found[detail] = dominant_period(load_image(path))
    assert found["source"] == pytest.approx(period, rel=0.15), (found, period)
    assert not found["model"] == pytest.approx(period, rel=0.15), (found, period)


def cat_with_a_square(tiny_trained, tmp_path) -> tuple[Path, Path]:
    cat = read(tiny_trained.image).astype(np.uint8).copy()
    cat[100:160, 200:260] = (250, 200, 40)
    mask = np.zeros(cat.shape[:2], np.uint8)
    mask[100:160, 200:260] = 255
    Image.fromarray(cat).save(tmp_path / "composite.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path / "composite.png", tmp_path / "mask.png"


@pytest.mark.timeout(900)  # eight commands, each a fresh Python with torch (seconds idle, a minute on a busy machine)
def test_no_noise_makes_the_injection_commands_deterministic_and_harmonize_takes_its_scale(tmp_path, tiny_trained):
    """With ``--no-noise`` two seeds give the same picture (harmonize, edit, paint2image); without
    it (the control) they differ. ``harmonize --scale`` 1 and 2 differ."""
    model = tiny_trained.path
    composite, mask = cat_with_a_square(tiny_trained, tmp_path)
    commands = {
        "harmonize": ("--composite", composite, "--mask", mask, "--method", "paper", "--scale", "1"),
        "edit": ("--edited", composite, "--mask", mask, "--scale", "1"),
        "paint2image": ("--paint", composite),
    }

    def run(op: str, *extra) -> np.ndarray:
        out = tmp_path / f"{op}-{'-'.join(map(str, extra))}.png"
        singan(op, model, *commands[op], *extra, "--out", out, cwd=tmp_path)
        return read(out)

    first = {op: run(op, "--no-noise", "--seed", "1") for op in commands}
    for op in commands:
        assert np.array_equal(first[op], run(op, "--no-noise", "--seed", "2")), op
    assert not np.array_equal(first["paint2image"], run("paint2image", "--seed", "2"))  # noise on by default
    harmonized = first["harmonize"]
    commands["harmonize"] = commands["harmonize"][:-1] + ("2",)
    assert not np.array_equal(run("harmonize", "--no-noise", "--seed", "1"), harmonized)


def test_animate_start_scale_alpha_and_beta(tmp_path, tiny_model):
    """Moving only from the finest scale (``--start-scale 2``) with no pull and little momentum
    makes small steps between frames; the defaults (the control) move the objects."""

    def steps(*extra) -> float:
        out = tmp_path / f"anim{len(extra)}.gif"
        singan("animate", tiny_model, "--frames", "5", "--seed", "1", *extra, "--out", out, cwd=tmp_path)
        with Image.open(out) as im:
            frames = []
            for i in range(im.n_frames):
                im.seek(i)
                frames.append(np.asarray(im.convert("RGB")).astype(int))
        return float(np.mean([distance(a, b) for a, b in zip(frames, frames[1:])]))

    fine = steps("--start-scale", "2", "--alpha", "0", "--beta", "0.5")
    default = steps()
    assert 0 < fine < default, (fine, default)


@pytest.mark.slow
def test_train_options_reach_the_model_and_resume_finishes_it(tmp_path, shared_images):
    model = tmp_path / "m"
    singan(
        "train",
        shared_images / "chelsea.png",
        "--preset",
        "tiny",
        "--max-size",
        "40",
        "--padding",
        "circular",
        "--seed",
        "3",
        "--precision",
        "bf16",
        "--out",
        model,
        "--device",
        "cpu",
        cwd=tmp_path,
    )
    meta = json.loads((model / "model.json").read_text())
    config = meta["config"]
    assert config["pyramid"]["max_size"] == 40 and max(meta["sizes"][-1]) == 40
    assert config["net"]["padding_mode"] == "circular"
    assert (config["train"]["seed"], config["train"]["precision"]) == (3, "bf16")
    # interrupted before its finest scale: resume trains that scale only
    last = sorted(model.glob("scale_*.safetensors"))[-1]
    last.unlink()
    meta.update(scales_done=meta["num_scales"] - 1, status="training", noise_amp=meta["noise_amp"][:-1])
    (model / "model.json").write_text(json.dumps(meta))
    singan("train", "--resume", model, "--device", "cpu", cwd=tmp_path)
    resumed = json.loads((model / "model.json").read_text())
    assert resumed["scales_done"] == resumed["num_scales"] and resumed["status"] == "ready" and last.is_file()
    assert resumed["config"] == config  # the options kept
