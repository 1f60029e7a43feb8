"""Model directories: save/load round trip, resuming, error messages, atomic writes; device selection."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from singan_core import (
    ModelLoadError,
    OutputDirNotEmpty,
    create_model_dir,
    file_sha256,
    load_pyramid,
    new_pyramid,
    preset,
    read_meta,
    reconstruct,
    sample,
    save_scale,
    train,
)
from singan_core import storage
from singan_core.device import select_device
from singan_core.imageio import load_image

CPU = torch.device("cpu")
REPO = Path(__file__).resolve().parents[1]


def copy_model(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(src, dst)
    return dst


def edit_meta(path: Path, **changes) -> None:
    meta = json.loads((path / "model.json").read_text())
    for key, value in changes.items():
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                meta[key][sub].update(subvalue)
        else:
            meta[key] = value
    (path / "model.json").write_text(json.dumps(meta))


def load_error(path: Path) -> str:
    with pytest.raises(ModelLoadError) as info:
        load_pyramid(path, CPU)
    message = str(info.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- round trip


@pytest.mark.slow
def test_save_load_sample_is_bit_identical(tiny_trained):
    pyramid, meta = load_pyramid(tiny_trained.path, CPU)
    original = tiny_trained.pyramid
    assert meta.status == "ready" and meta.scales_done == meta.num_scales == original.num_scales
    assert meta.source_sha256 == file_sha256(tiny_trained.image)
    assert meta.source_name == "chelsea.png" and meta.preset == "tiny"
    assert meta.config == preset("tiny").to_dict() and pyramid.config == original.config
    assert [tuple(s) for s in meta.sizes] == list(original.sizes)
    assert meta.created_at.tzinfo is not None and meta.updated_at >= meta.created_at
    assert pyramid.noise_amps == original.noise_amps
    for a, b in zip(pyramid.reals, original.reals, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(reconstruct(pyramid), reconstruct(original))
    for kwargs in ({}, {"scale_w": 1.5, "gen_start_scale": 1}):
        assert torch.equal(sample(pyramid, 3, seed=7, **kwargs), sample(original, 3, seed=7, **kwargs))


class Interrupt(Exception):
    pass


@pytest.mark.slow
def test_interrupted_training_resumes_to_the_same_model(tiny_trained, tmp_path):
    path = tmp_path / "model"
    pyramid = new_pyramid(load_image(tiny_trained.image), preset("tiny"), CPU)
    create_model_dir(path, pyramid, file_sha256(tiny_trained.image), tiny_trained.image.name, "tiny")

    def save_then_stop(p, k):
        save_scale(path, p, k)
        if k == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(pyramid, on_scale_done=save_then_stop)
    meta = read_meta(path)
    assert (meta.scales_done, meta.status, len(meta.noise_amp)) == (2, "training", 2)
    assert not (path / storage.scale_file_name(2)).exists()

    resumed, meta = load_pyramid(path, CPU)
    assert resumed.scales_done == 2 and not resumed.is_complete
    with pytest.raises(ValueError, match="only 2 of 3 scales"):
        sample(resumed, 1)
    train(resumed, on_scale_done=lambda p, k: save_scale(path, p, k))

    meta = read_meta(path)
    assert meta.status == "ready" and meta.scales_done == meta.num_scales == 3
    assert meta.config == preset("tiny").to_dict()
    reloaded, _ = load_pyramid(path, CPU)
    # each scale is seeded by (seed, k): the resumed model equals the uninterrupted one
    assert reloaded.noise_amps == tiny_trained.pyramid.noise_amps
    assert torch.equal(sample(reloaded, 2, seed=3), sample(tiny_trained.pyramid, 2, seed=3))


# --------------------------------------------------------------------------- errors


def test_missing_directory(tmp_path):
    assert "no such model directory" in load_error(tmp_path / "nope")


def test_directory_without_model_json(tmp_path):
    assert "model.json is missing" in load_error(tmp_path)


@pytest.mark.slow
def test_invalid_json(tiny_model, tmp_path):
    path = copy_model(tiny_model, tmp_path)
    (path / "model.json").write_text('{"format_version": 1, "sizes": ')
    message = load_error(path)
    assert "model.json" in message and "not valid JSON" in message


@pytest.mark.slow
def test_invalid_field_is_named(tiny_model, tmp_path):
    path = copy_model(tiny_model, tmp_path)
    edit_meta(path, sizes="big")
    message = load_error(path)
    assert "model.json" in message and "'sizes'" in message


@pytest.mark.slow
def test_unsupported_format_version(tiny_model, tmp_path):
    path = copy_model(tiny_model, tmp_path)
    edit_meta(path, format_version=99)
    message = load_error(path)
    assert "unsupported format_version 99" in message


@pytest.mark.slow
def test_missing_scale_file(tiny_model, tmp_path):
    path = copy_model(tiny_model, tmp_path)
    (path / "scale_01.safetensors").unlink()
    message = load_error(path)
    assert "scale_01.safetensors" in message and "missing" in message


@pytest.mark.slow
def test_truncated_scale_file(tiny_model, tmp_path):
    path = copy_model(tiny_model, tmp_path)
    file = path / "scale_02.safetensors"
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
    message = load_error(path)
    assert "scale_02.safetensors" in message and "truncated" in message


@pytest.mark.slow
def test_corrupt_source_file(tiny_model, tmp_path):
    path = copy_model(tiny_model, tmp_path)
    (path / "source.safetensors").write_bytes(b"\x89PNG this is not a tensor file at all")
    message = load_error(path)
    assert "source.safetensors" in message and ("corrupt" in message or "not a safetensors" in message)


@pytest.mark.slow
def test_shape_mismatch_with_config(tiny_model, tmp_path):
    path = copy_model(tiny_model, tmp_path)
    edit_meta(path, config={"net": {"nfc_base": 8, "nfc_max": 8}})
    message = load_error(path)
    assert "scale_00.safetensors" in message and "shape mismatch" in message


@pytest.mark.slow
def test_key_mismatch_with_config(tiny_model, tmp_path):
    path = copy_model(tiny_model, tmp_path)
    edit_meta(path, config={"net": {"num_layers": 4}})
    message = load_error(path)
    assert "key mismatch" in message


# --------------------------------------------------------------------------- writing


@pytest.mark.slow
def test_written_directory_has_no_temp_files(tiny_model):
    names = sorted(p.name for p in tiny_model.iterdir())
    assert names == [
        "model.json",
        "scale_00.safetensors",
        "scale_01.safetensors",
        "scale_02.safetensors",
        "source.safetensors",
    ]


def test_failed_write_leaves_target_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "x.safetensors"
    storage._save_tensors(target, {"a": torch.ones(3)}, {})
    before = target.read_bytes()

    def broken_save(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(storage, "save_file", broken_save)
    with pytest.raises(OSError, match="disk full"):
        storage._save_tensors(target, {"a": torch.zeros(3)}, {})
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]


@pytest.fixture
def untrained(shared_images):
    image = shared_images / "chelsea.png"
    return new_pyramid(load_image(image), preset("tiny"), CPU), file_sha256(image)


def test_create_refuses_foreign_directory(untrained, tmp_path):
    pyramid, sha = untrained
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirNotEmpty, match="holds no model"):
        create_model_dir(tmp_path, pyramid, sha, "chelsea.png", "tiny")
    assert not (tmp_path / "model.json").exists()
    create_model_dir(tmp_path, pyramid, sha, "chelsea.png", "tiny", overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"  # only model files are ever removed
    assert read_meta(tmp_path).scales_done == 0


def test_create_restarts_unfinished_model_of_same_image_only(untrained, tmp_path):
    pyramid, sha = untrained
    create_model_dir(tmp_path, pyramid, sha, "chelsea.png", "tiny")
    (tmp_path / "scale_00.safetensors").write_bytes(b"stale")
    create_model_dir(tmp_path, pyramid, sha, "chelsea.png", "tiny")  # same image, unfinished: started over
    assert not (tmp_path / "scale_00.safetensors").exists()
    with pytest.raises(OutputDirNotEmpty, match="another image"):
        create_model_dir(tmp_path, pyramid, "0" * 64, "other.png", "tiny")


@pytest.mark.slow
def test_create_refuses_finished_model(untrained, tiny_model, tmp_path):
    pyramid, sha = untrained
    path = copy_model(tiny_model, tmp_path)
    with pytest.raises(OutputDirNotEmpty, match="already holds a trained model"):
        create_model_dir(path, pyramid, sha, "chelsea.png", "tiny")


def test_save_scale_rejects_out_of_order(untrained, tmp_path):
    pyramid, sha = untrained
    create_model_dir(tmp_path, pyramid, sha, "chelsea.png", "tiny")
    with pytest.raises(ValueError, match="not finished"):
        save_scale(tmp_path, pyramid, 0)


# --------------------------------------------------------------------------- device


def python_with(env: dict[str, str | None], *args: str) -> subprocess.CompletedProcess:
    """``python *args`` in a fresh interpreter, the repository importable, with ``env`` changed
    in the environment (None: removed)."""
    full = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    full.update({k: v for k, v in env.items() if v is not None})
    for k in [k for k, v in env.items() if v is None]:
        full.pop(k, None)
    return subprocess.run([sys.executable, *args], env=full, capture_output=True, text=True, timeout=120)


def test_select_device_without_a_gpu_is_the_cpu_and_forced_cuda_is_a_one_line_error(tmp_path, shared_images):
    hidden = {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    run = python_with(
        hidden, "-c", "from singan_core.device import select_device as s; print(s(None), s('auto'), s('cpu'))"
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["cpu", "cpu", "cpu"]
    model = tmp_path / "model"
    run = python_with(
        hidden,
        "-m",
        "singan_cli.cli",
        "train",
        str(shared_images / "chelsea.png"),
        "--preset",
        "tiny",
        "--out",
        str(model),
        "--device",
        "cuda",
    )
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        "singan: error: device: cuda requested but CUDA is not available (no GPU or a CPU-only torch build)"
    ]
    assert not model.exists()  # refused before anything is written
    with pytest.raises(ValueError, match="device: unknown device 'tpu'; use auto, cpu, cuda or cuda:N"):
        select_device("tpu")


def test_configure_threads_honours_omp_num_threads_and_the_affinity_mask():
    """In a fresh process torch ends up with OMP_NUM_THREADS threads (whatever it had before), and
    without it with the number of CPUs this process may run on."""
    code = "import torch; torch.set_num_threads(3); from singan_core.device import configure_threads as c; print(c(), torch.get_num_threads())"
    for threads in ("1", "2"):
        run = python_with({"OMP_NUM_THREADS": threads}, "-c", code)
        assert run.returncode == 0, run.stderr
        assert run.stdout.split() == [threads, threads]
    if hasattr(os, "sched_getaffinity"):
        one_cpu = f"import os; os.sched_setaffinity(0, {{{min(os.sched_getaffinity(0))}}}); " + code
        run = python_with({"OMP_NUM_THREADS": None}, "-c", one_cpu)
        assert run.returncode == 0, run.stderr
        assert run.stdout.split() == ["1", "1"]
