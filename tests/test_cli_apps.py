"""The application commands of the real ``singan`` CLI, run as subprocesses on real images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_cli import assert_clean_error, singan


def read(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def cat_rocket_files(tmp_path_factory, tiny_trained, shared_images):
    """A naive composite (a piece of rocket.jpg pasted on chelsea.png) and its mask, as files."""
    d = tmp_path_factory.mktemp("inputs")
    cat = read(tiny_trained.image).copy()
    rocket = read(shared_images / "rocket.jpg")
    cat[60:170, 250:330] = rocket[150:260, 300:380]
    mask = np.zeros(cat.shape[:2], np.uint8)
    mask[60:170, 250:330] = 255
    Image.fromarray(cat).save(d / "composite.png")
    Image.fromarray(mask).save(d / "mask.png")
    return d / "composite.png", d / "mask.png"


def test_harmonize(tmp_path, tiny_model, cat_rocket_files):
    composite, mask = cat_rocket_files
    out = tmp_path / "out" / "harmonized.png"
    result = singan("harmonize", tiny_model, "--composite", composite, "--mask", mask, "--out", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    before, after = read(composite), read(out)
    assert after.shape == before.shape == (300, 451, 3)
    assert (after[:20] == before[:20]).all()  # far from the object: untouched
    assert (after[60:170, 250:330] != before[60:170, 250:330]).any()


def test_harmonize_mask_size_mismatch(tmp_path, tiny_model, cat_rocket_files):
    composite, _ = cat_rocket_files
    small = tmp_path / "small_mask.png"
    Image.fromarray(np.full((50, 100), 255, np.uint8)).save(small)
    out = tmp_path / "h.png"
    result = singan("harmonize", tiny_model, "--composite", composite, "--mask", small, "--out", out, cwd=tmp_path)
    assert_clean_error(result, "mask: 100x50 px", "451x300 px")
    assert not out.exists()


def test_edit_writes_masked_and_unmasked(tmp_path, tiny_model, tiny_trained):
    cat = read(tiny_trained.image).copy()
    cat[200:260, 40:120] = cat[20:80, 300:380]  # a region copied elsewhere
    mask = np.zeros(cat.shape[:2], np.uint8)
    mask[200:260, 40:120] = 255
    Image.fromarray(cat).save(tmp_path / "edited.jpg", quality=95)
    Image.fromarray(mask).convert("RGBA").save(tmp_path / "mask.png")
    out = tmp_path / "result.png"
    result = singan(
        "edit",
        tiny_model,
        "--edited",
        tmp_path / "edited.jpg",
        "--mask",
        tmp_path / "mask.png",
        "--out",
        out,
        "--scale",
        "1",
        "--seed",
        "3",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    unmasked = tmp_path / "result_unmasked.png"
    assert result.stdout.split() == [str(out), str(unmasked)]
    assert read(out).shape == read(unmasked).shape == cat.shape


def test_paint2image(tmp_path, tiny_model, shared_images):
    out = tmp_path / "painted.webp"
    paint = shared_images / "reference" / "paint" / "cows.png"
    result = singan(
        "paint2image", tiny_model, "--paint", paint, "--quantize", "--colors", "4", "--out", out, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    with Image.open(out) as im:
        assert im.format == "WEBP"
        w, h = im.size
    assert w / h == pytest.approx(300 / 200, rel=0.05)  # the paint's aspect, at the model's resolution
    assert w * h == pytest.approx(48 * 32, rel=0.1)


def test_paint2image_scale_out_of_range(tmp_path, tiny_model, shared_images):
    paint = shared_images / "reference" / "paint" / "cows.png"
    result = singan(
        "paint2image", tiny_model, "--paint", paint, "--scale", "9", "--out", tmp_path / "p.png", cwd=tmp_path
    )
    assert_clean_error(result, "scale: must be in 1..2")


@pytest.mark.slow
def test_sr_trains_then_reuses_the_model(tmp_path, shared_images):
    low = read(shared_images / "reference" / "33039_LR.png")[:40, :40]
    Image.fromarray(low).save(tmp_path / "low.png")
    model, out = tmp_path / "srmodel", tmp_path / "high.png"
    args = ("sr", tmp_path / "low.png", "--factor", "2", "--preset", "tiny", "--model", model, "--out", out)
    result = singan(*args, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "training the super-resolution model" in result.stderr
    assert read(out).shape == (80, 80, 3)
    assert (model / "model.json").is_file()
    result = singan(*args[:-1], tmp_path / "again.png", cwd=tmp_path)  # factor 2 again: no training
    assert result.returncode == 0, result.stderr
    assert "training" not in result.stderr
    np.testing.assert_array_equal(read(tmp_path / "again.png"), read(out))
    result = singan(
        "sr", tmp_path / "low.png", "--factor", "3", "--preset", "tiny", "--model", model, "--out", out, cwd=tmp_path
    )
    assert_clean_error(result, "r=0.7937", "factor 3.0")


def test_animate_gif_and_webp(tmp_path, tiny_model):
    for name in ("anim.gif", "anim.webp"):
        out = tmp_path / name
        result = singan("animate", tiny_model, "--frames", "6", "--fps", "12", "--out", out, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        with Image.open(out) as im:
            assert im.n_frames == 6 and im.size == (48, 32)
            assert im.info.get("loop") == 0
    result = singan("animate", tiny_model, "--out", tmp_path / "anim.mp4", cwd=tmp_path)
    assert_clean_error(result, "anim.mp4", ".gif or .webp")
