"""Tests of the full-resolution measures of issue 12 (singan_core.metrics): period, sharpness, copy score.

On real photographs from shared/images; each test runs in well under a second.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import missing_input
from singan_core.imageio import load_image
from singan_core.metrics import copy_score, correlation_length, dominant_period, sharpness

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "images"


def photo(name: str) -> torch.Tensor:
    path = IMAGES / name
    if not path.is_file():
        missing_input(f"test image not found: {path}")
    return load_image(path)


def resized(x: torch.Tensor, factor: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bicubic", antialias=True, align_corners=False).clamp(-1, 1)


def test_period_of_a_synthetic_grating_is_its_wavelength():
    y = torch.arange(200, dtype=torch.float32)
    grating = torch.sin(2 * math.pi * y / 17.0)[:, None].expand(200, 160)  # horizontal stripes, 17 px
    x = (0.8 * grating).expand(1, 3, 200, 160)
    assert dominant_period(x) == pytest.approx(17.0, rel=0.03)


def test_brick_period_follows_its_scale():
    brick = photo("brick.png")
    p = dominant_period(brick)
    assert 25 < p < 60  # brick columns of the photo, ~37 px apart
    assert dominant_period(resized(brick, 0.5)) == pytest.approx(p / 2, rel=0.1)
    assert dominant_period(resized(brick, 0.25)) == pytest.approx(p / 4, rel=0.15)


def test_noise_has_no_period_and_a_short_correlation_length():
    g = torch.Generator().manual_seed(0)
    noise = (0.5 * torch.randn(1, 3, 128, 128, generator=g)).clamp(-1, 1)
    assert math.isnan(dominant_period(noise))
    assert correlation_length(noise) < 1.0


def test_correlation_length_follows_the_scale_of_gravel():
    gravel = photo("gravel.png")
    small = correlation_length(resized(gravel, 0.5))
    assert correlation_length(resized(gravel, 0.25)) == pytest.approx(small / 2, rel=0.2)


def test_blur_lowers_sharpness():
    cat = photo("chelsea.png")
    blurred = F.avg_pool2d(cat, 3, stride=1, padding=1, count_include_pad=False)
    assert sharpness(blurred) < 0.3 * sharpness(cat)
    assert sharpness(torch.zeros(1, 3, 16, 16)) == 0.0


def test_a_crop_of_the_source_scores_one_and_noise_zero():
    cat = photo("chelsea.png")
    assert copy_score(cat[..., 40:240, 60:380], cat) == pytest.approx(1.0)
    g = torch.Generator().manual_seed(1)
    noise = (0.5 * torch.randn(1, 3, 200, 200, generator=g)).clamp(-1, 1)
    assert copy_score(noise, cat) < 0.01


def test_copy_score_measures_the_pasted_part():
    brick, cat = photo("brick.png"), photo("chelsea.png")
    out = brick[..., :256, :256].clone()  # not in the source at all
    out[..., 64:192, :128] = cat[..., 100:228, 150:278]  # a quarter of the output pasted from the source
    assert copy_score(out, cat) == pytest.approx(0.25, abs=0.01)


def test_metrics_reject_a_non_image():
    with pytest.raises(ValueError, match="x must have shape"):
        sharpness(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="output"):
        copy_score(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 16, 16))
