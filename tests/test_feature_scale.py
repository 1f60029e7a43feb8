"""Feature scale on a stochastic texture and a non-square source (issue 30): ``instant`` at
``feature_scale`` 0.5, 1 and 2 on a 384 x 256 crop of gravel.png, measured by the correlation
length (gravel has no period, so :func:`dominant_period` cannot measure it) overall and per axis.
The lift's feature scale is checked on brick in test_full_resolution.py.

Measured while writing (one seed): the source's correlation length 2.81 px (2.82 down, 2.87
across); the outputs 2.74 px at 1, 1.53 px at 0.5 (ratio 0.54), 4.56 px at 2 (ratio 1.62);
down/across ratios 0.92-0.98 (0.75-1.2 at 2, over three seeds). The controls: the output of an ``instant`` that ignores
``feature_scale`` (ratio 0.97 at 0.5), and the source squashed to the swapped aspect (down/across
ratio 0.53).
"""

from __future__ import annotations

import pytest
import torch

from singan_core.full_resolution import instant
from singan_core.imageio import load_image
from singan_core.metrics import correlation_length
from singan_core.pyramid import resize

OUT_H, OUT_W = 128, 192


def axis_correlation_lengths(x: torch.Tensor) -> tuple[float, float]:
    """Correlation length down and across: where the luminance's normalised autocorrelation along
    that axis first falls below 0.5 (linear interpolation), in pixels. (N=1, 3, H, W) in [-1, 1]."""
    y = (0.299 * x[0, 0] + 0.587 * x[0, 1] + 0.114 * x[0, 2]).double()
    y = y - y.mean()
    spectrum = torch.fft.rfft2(y, s=(2 * y.shape[0], 2 * y.shape[1]))  # zero padded: no wrap-around
    ac = torch.fft.irfft2(spectrum.abs() ** 2)[: y.shape[0], : y.shape[1]]
    ac = ac / ac[0, 0]
    lengths = []
    for profile in (ac[:, 0], ac[0, :]):
        k = int(torch.nonzero(profile < 0.5)[0])
        a, b = float(profile[k - 1]), float(profile[k])
        lengths.append(k - 1 + (a - 0.5) / (a - b))
    return lengths[0], lengths[1]


def aspect(x: torch.Tensor) -> float:
    """Down/across ratio of the correlation lengths (about 1 for gravel, which has no direction)."""
    down, across = axis_correlation_lengths(x)
    return down / across


@pytest.fixture(scope="module")
def gravel(shared_images) -> torch.Tensor:
    """A 384 x 256 (wide) crop of gravel.png, (1, 3, 256, 384) in [-1, 1]."""
    return load_image(shared_images / "gravel.png")[..., :256, :384]


@pytest.fixture(scope="module")
def outputs(gravel) -> dict[float, torch.Tensor]:
    return {s: instant(gravel, height=OUT_H, width=OUT_W, feature_scale=s, seed=1) for s in (0.5, 1.0, 2.0)}


def test_instant_feature_scale_sets_the_gravel_size(gravel, outputs):
    source = correlation_length(gravel)
    ratios = {s: correlation_length(out) / source for s, out in outputs.items()}
    assert all(out.shape == (1, 3, OUT_H, OUT_W) for out in outputs.values())
    assert ratios[1.0] == pytest.approx(1.0, rel=0.15), ratios
    assert ratios[0.5] == pytest.approx(0.5, rel=0.2), ratios
    assert 1.4 <= ratios[2.0] <= 2.6, ratios  # the > 1 path: synthesised at half the size, then upsampled
    # the control: an instant that ignored feature_scale (its output at 1) fails both checks
    assert not ratios[1.0] == pytest.approx(0.5, rel=0.2) and not 1.4 <= ratios[1.0] <= 2.6


def test_instant_keeps_the_aspect_of_a_non_square_source(gravel, outputs):
    for s, out in outputs.items():
        # at 2 the synthesis is 96 x 64 px, few grains: one seed's ratio varies more (0.75-1.2 measured)
        tolerance = 0.3 if s > 1 else 0.2
        assert aspect(out) == pytest.approx(aspect(gravel), rel=tolerance), (s, aspect(out), aspect(gravel))
    # the control: the source resized to swapped proportions (a height/width mix-up) squashes the grains
    squashed = resize(gravel, (OUT_H, gravel.shape[-1]))
    assert not aspect(squashed) == pytest.approx(aspect(gravel), rel=0.3), aspect(squashed)
