"""Internal super-resolution: upscale an image with a SinGAN trained on that image alone (paper sec. 4.1).

The model is trained on the low-resolution image with a scale factor r such that k steps of 1/r
give the requested factor (r^-k = factor, r near 2^(-1/3)) and with the reconstruction weight
alpha = 100 (paper). Then, k times: upsample by 1/r and apply the finest generator G_{K-1} (the
paper's G_0) with zero noise, which adds detail with the image's own patch statistics at the
finer scale (original ``SR.py``). Finally, unlike the original, the result is made consistent with
the input by iterative back-projection (Irani & Peleg 1991): the generator steps add detail but
also drift in colour and contrast, so the low-frequency difference between the downscaled output
and the input is upsampled and added back until the output downscales to the input; the added
detail stays.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from .config import PaddingMode, SinGANConfig
from .model import SinGANPyramid
from .pyramid import Size, resize

BASE_SCALE_FACTOR = 2 ** (-1 / 3)  # the paper's r for SR: three steps per octave
SR_ALPHA = 100.0  # reconstruction weight for SR training (paper sec. 4.1: alpha = 100)
MIN_FACTOR, MAX_FACTOR = 1.25, 16.0
BACK_PROJECTION_STEPS = 10


def sr_steps(factor: float) -> tuple[int, float]:
    """(k, r): the number of 1/r steps and the scale factor r < 1 with r ** -k == ``factor``.

    k is the number of steps of ``BASE_SCALE_FACTOR`` nearest to ``factor`` (at least 1), as the
    original ``calc_init_scale``; e.g. factor 2 -> (3, 0.794), 4 -> (6, 0.794), 3 -> (5, 0.803).

    Raises:
        ValueError: ``factor`` outside [1.25, 16].
    """
    if not MIN_FACTOR <= factor <= MAX_FACTOR:
        raise ValueError(f"factor: must be in [{MIN_FACTOR}, {MAX_FACTOR}], got {factor}")
    k = max(1, round(math.log(factor) / -math.log(BASE_SCALE_FACTOR)))
    return k, factor ** (-1.0 / k)


def sr_config(base: SinGANConfig, factor: float, height: int, width: int) -> SinGANConfig:
    """The training configuration for super-resolving a ``height`` x ``width`` image by ``factor``.

    ``base`` (a preset) gives the nets, iterations and ``min_size``; the pyramid uses r from
    :func:`sr_steps` exactly (the paper's geometric scale rule whatever the preset's), its finest scale is the image at its own size (no ``max_size`` cap),
    and alpha is ``SR_ALPHA``.

    Raises:
        ValueError: ``factor`` out of range.
    """
    _, r = sr_steps(factor)
    pyramid = dataclasses.replace(
        base.pyramid, max_size=max(height, width), scale_factor_init=r, exact_scale_factor=True, scale_rule="paper"
    )
    train = dataclasses.replace(base.train, alpha=SR_ALPHA)
    return dataclasses.replace(base, pyramid=pyramid, train=train)


def output_size(height: int, width: int, factor: float) -> Size:
    """The super-resolved size: ``round(factor * height)`` x ``round(factor * width)`` pixels."""
    return round(factor * height), round(factor * width)


@torch.no_grad()
def super_resolve(pyramid: SinGANPyramid, factor: float, *, consistent: bool = True) -> torch.Tensor:
    """Upscale the model's training image (its finest scale) by ``factor``.

    Step j of k resizes to ``round(size * factor ** (j / k))`` (a step of 1/r) and applies the finest
    generator with zero noise. The original rounds each step up and crops the result to the factor;
    resizing to exact sizes instead gives exactly ``factor`` x the input without losing the
    right/bottom edge to the crop.

    Args:
        pyramid: a completely trained pyramid from :func:`sr_config` for this ``factor`` (or any
            factor with the same r, e.g. 2 and 4).
        factor: upscaling factor in [1.25, 16].
        consistent: back-project so the output downscales to the input (default); False gives
            the paper's method unchanged.

    Returns:
        (1, 3, round(factor * H), round(factor * W)) in [-1, 1], where (H, W) is the finest scale.

    Raises:
        ValueError: ``factor`` out of range, the model's r does not divide it (naming both), or an
            incompletely trained pyramid.
    """
    k, r = sr_steps(factor)
    pyramid.require_complete()
    if abs(pyramid.geometry.scale_factor - r) > 1e-4:
        raise ValueError(
            f"factor: this model was trained with scale factor r={pyramid.geometry.scale_factor:.4f}, "
            f"but factor {factor} needs r={r:.4f}; train a super-resolution model for this factor"
        )
    generator = pyramid.generators[-1]
    mode = pyramid.config.net.padding_mode
    low = pyramid.reals[-1]
    h, w = low.shape[-2:]
    x = low
    for j in range(1, k + 1):
        x = resize(x, output_size(h, w, factor ** (j / k)), mode)
        x = generator(torch.zeros_like(x), x)  # zero noise
    if consistent:
        x = back_project(x, low, mode)
    return x.clamp(-1, 1)


def back_project(
    high: torch.Tensor, low: torch.Tensor, mode: PaddingMode = "zeros", steps: int = BACK_PROJECTION_STEPS
) -> torch.Tensor:
    """Iterative back-projection: ``high += up(low - down(high))``, ``steps`` times.

    Args:
        high: (1, 3, H, W) an upscaled estimate; low: (1, 3, h, w) the image it must downscale to.
        mode: padding mode of the resizes ("circular" for tileable images).

    Returns:
        (1, 3, H, W), unclamped, whose antialiased downscale is (nearly) ``low``.
    """
    for _ in range(steps):
        high = high + resize(low - resize(high, low.shape[-2:], mode), high.shape[-2:], mode)
    return high
