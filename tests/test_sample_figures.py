"""Sample-set figures and the trained-vs-instant rule (issue 25, item 4), on synthetic star fields.

A star field (random bright dots of several sizes and brightnesses on a dark sky) is the case where
a GAN's samples go sparser and dimmer than the image they learned (the demo's deep field): the
bright-feature density is the figure that sees it. Each check has the wrong answers it must catch
beside it: a dimmed set, one image repeated, noise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from singan_core.full_resolution import lift_source, sample_full_resolution
from singan_core.imageio import from_uint8, save_image
from singan_core.metrics import bright_density
from singan_core.sample_figures import BRIGHT_TOLERANCE, compare_to_instant, set_figures

SIDE = 160  # pixels: star fields for the figures (fast) and the tiny model's source
LIFT_TOLERANCE = 0.25  # the lift's dot density within +-25 % of the source's (issue 25's acceptance)


def star_field(seed: int, side: int = SIDE, stars: int = 60) -> torch.Tensor:
    """(1, 3, side, side) in [-1, 1]: Gaussian dots of radius 0.6-3 px and peak 90-255 on a faint
    noisy dark sky, some of them tinted; about 2-4 % of the pixels bright."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    sky = rng.normal(8, 2, (side, side, 3)).astype(np.float32)
    for _ in range(stars):
        cy, cx = rng.uniform(0, side, 2)
        radius, peak = rng.uniform(0.6, 3.0), rng.uniform(90, 255)
        tint = rng.uniform(0.75, 1.0, 3)
        dot = peak * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
        sky += dot[..., None] * tint
    return from_uint8(np.clip(sky, 0, 255).round().astype(np.uint8))


def dimmed(x: torch.Tensor, gain: float = 0.6) -> torch.Tensor:
    """``x`` with every level multiplied by ``gain`` (0 stays 0): the sparser, dimmer GAN sample."""
    return (x + 1) * gain - 1


@pytest.fixture(scope="module")
def source() -> torch.Tensor:
    return star_field(0)


@pytest.fixture(scope="module")
def good_set() -> torch.Tensor:
    return torch.cat([star_field(seed) for seed in range(1, 5)])


def test_set_figures_of_other_star_fields_match_the_source(source, good_set):
    figures = set_figures(good_set, source)
    assert 0.015 <= figures.bright_density_source <= 0.025  # the 98th percentile: ~2 % of the source
    ratio = figures.bright_density / figures.bright_density_source
    assert 1 - BRIGHT_TOLERANCE <= ratio <= 1 + BRIGHT_TOLERANCE, figures
    assert figures.diversity > 0.3, figures  # independent fields: measured 0.47
    assert set_figures(good_set[:1].repeat(4, 1, 1, 1), source).diversity == 0  # one field four times
    assert set_figures(dimmed(good_set), source).bright_density < 0.5 * figures.bright_density


def test_compare_to_instant_passes_an_equal_set_and_names_each_failure(source, good_set):
    instant = set_figures(good_set, source)
    assert compare_to_instant(instant, instant) == []

    dim = compare_to_instant(set_figures(dimmed(good_set), source), instant)
    assert len(dim) >= 1 and any("bright density" in line for line in dim), dim
    repeated = compare_to_instant(set_figures(good_set[:1].repeat(4, 1, 1, 1), source), instant)
    assert any("diversity" in line for line in repeated), repeated  # one sample four times
    noise = torch.rand(4, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert any("patch-SWD" in line for line in compare_to_instant(set_figures(noise, source), instant))


def test_one_image_has_no_diversity_and_is_compared_without_it(source, good_set):
    one = set_figures(good_set[:1], source)
    assert one.diversity is None and "diversity" not in one.text()
    assert compare_to_instant(one, set_figures(good_set, source)) == []
    assert any("bright density" in line for line in compare_to_instant(set_figures(dimmed(good_set[:1]), source), one))
    with pytest.raises(ValueError, match="S >= 1"):
        set_figures(source[:0], source)


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="known, open (issue 25, item 4): the lift of a tiny star-field model keeps 69-88 % of the "
    "source's bright pixels (limit +-25 %); noise on SinGAN's canvas fixed the demo but doubled the "
    "stars here (docs/benchmarks.md)",
)
def test_lift_of_a_tiny_star_field_model_keeps_the_dot_density(tmp_path, tiny_model_of, source):
    """A ``tiny`` model of a star field lifted to the source's size: the dot density of every
    sample stays within +-25 % of the source's; the same lifts dimmed (a GAN's sparser, dimmer
    sample) fail it."""
    path = tmp_path / "stars.png"
    save_image(source, path)
    pyramid = tiny_model_of(path)
    lifted = sample_full_resolution(pyramid, lift_source(pyramid, source), height=SIDE, width=SIDE, n_samples=4, seed=0)

    def density_kept(samples: torch.Tensor) -> bool:
        real = bright_density(source, source)
        return all(abs(bright_density(s[None], source) / real - 1) <= LIFT_TOLERANCE for s in samples)

    assert not density_kept(dimmed(lifted, 0.8))
    assert density_kept(lifted), [bright_density(s[None], source) for s in lifted]
