"""Issue 28: background plates (singan_core.plates) and the lift's init canvas over feature scales.

The feature-scale tests use *untrained* complete pyramids (random G_n with few channels): the bug
they guard (the SinGAN canvas larger than the output, "init: is 1086x1920, larger than the output
1080x1920") depends only on the pyramid's geometry, not on what the generators learnt.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from singan_core.config import NetConfig, preset
from singan_core.full_resolution import lift_source, sample_full_resolution
from singan_core.imageio import load_image
from singan_core.model import SinGANPyramid
from singan_core.models import Discriminator, Generator
from singan_core.patch_synthesis import PatchSynthesisConfig
from singan_core.pyramid import resize
from singan_core.training import new_pyramid

CHEAP = PatchSynthesisConfig(iterations=1, iterations_approx=1, patchmatch_rounds=1)
"""The lift with one iteration per level: these tests check sizes, not quality."""


def random_pyramid(image: torch.Tensor, preset_name: str) -> SinGANPyramid:
    """A complete pyramid of ``image`` with the preset's geometry and untrained 4-channel nets."""
    base = preset(preset_name)
    config = dataclasses.replace(base, net=NetConfig(nfc_base=4, nfc_max=4, num_layers=3))
    pyramid = new_pyramid(image, config, torch.device("cpu"))
    torch.manual_seed(0)
    for k, (h, w) in enumerate(pyramid.sizes):
        pyramid.add_scale(Generator(4, config.net), Discriminator(4, config.net), 0.1, torch.randn(1, 3, h, w) if k == 0 else torch.zeros(1, 3, h, w))
    return pyramid


@pytest.fixture(scope="module")
def photos(shared_images):
    """mountains3 (256 x 171, the issue's photo) and brick (512 x 512)."""
    return {name: load_image(shared_images / "reference" / f"{name}.png") if name != "brick" else load_image(shared_images / "brick.png")
            for name in ("mountains3", "brick")}


# (photo, preset, output (h, w), feature scales): tiny = 48 px, draft = 128 px, paper = 250 px models;
# draft of mountains3 has 86 / 171 = 0.503 model px per source px: s <= 0.5 gave a canvas over the output.
RANGE = [
    ("mountains3", "tiny", (108, 192), (0.1, 0.25, 0.5, 1.0, 2.0)),
    ("mountains3", "draft", (108, 192), (0.1, 0.25, 0.45, 0.5, 0.55, 1.0, 3.0)),
    ("mountains3", "paper", (90, 160), (0.1, 0.5, 0.98, 1.0)),
    ("brick", "draft", (64, 64), (0.05, 0.1, 0.25, 0.5, 1.0)),
    ("brick", "tiny", (64, 96), (0.05, 0.1, 0.5, 1.0)),
]


@pytest.mark.parametrize("photo, preset_name, size, scales", RANGE, ids=[f"{r[0]}-{r[1]}" for r in RANGE])
def test_every_feature_scale_lifts_to_the_output_size(photos, photo, preset_name, size, scales):
    image = photos[photo]
    pyramid = random_pyramid(image, preset_name)
    source = lift_source(pyramid, image)
    for s in scales:
        out = sample_full_resolution(pyramid, source, size[1], size[0], feature_scale=s, config=CHEAP)
        assert out.shape == (1, 3, *size), (photo, preset_name, s)
        assert torch.isfinite(out).all()


def test_the_issues_draft_plate_at_half_feature_scale_starts_at_the_output_size(photos, monkeypatch):
    """The issue's case: draft model of mountains3, 1920 x 1080, s = 0.5: the 1086 x 1920 SinGAN canvas
    is taken down to 1080 x 1920 (the lift's init), not refused."""
    from singan_core import full_resolution

    pyramid = random_pyramid(photos["mountains3"], "draft")
    inits = []
    monkeypatch.setattr(full_resolution, "synthesize", lambda values, h, w, init, **kw: inits.append(init.shape[-2:]) or resize(init, (h, w)))
    out = sample_full_resolution(pyramid, lift_source(pyramid, photos["mountains3"]), 1920, 1080, feature_scale=0.5)
    assert out.shape[-2:] == (1080, 1920)
    assert tuple(inits[0]) == (1080, 1920)  # the canvas (1086 x 1920 before) fits the output
