"""Harmonization: blend a pasted object into a painting or photo (paper sec. 4, Fig. 13).

The model is trained on the background. The naive composite (background with the object pasted
in) is injected at a scale k; the generators from there on re-render it with the background's
patch statistics, and the result replaces the composite inside the dilated, feathered mask
(original ``harmonization.py``), at the composite's full resolution.
"""

from __future__ import annotations

import torch

from .compositing import ORIGINAL_RESOLUTION_PX, MaskedResult, masked_injection
from .model import SinGANPyramid

DILATION = 7 / ORIGINAL_RESOLUTION_PX  # mask dilation radius / longer side (original: disk of 7 px at 250 px)


def default_scale(pyramid: SinGANPyramid) -> int:
    """The default injection scale k = K - 3, three scales below the finest (at least 1).

    Chosen by looking at ``starry_night_naive.png`` with a draft model (K = 7, k = 1 .. 6): k <= 3
    dissolves the object into brush strokes, k = 5-6 leaves it grey and photographic; k = 4 keeps
    its shape and paints it in the background's colours and strokes.
    """
    return max(1, pyramid.num_scales - 3)


def harmonize(
    pyramid: SinGANPyramid,
    composite: torch.Tensor,
    mask: torch.Tensor,
    scale: int | None = None,
    *,
    noise: bool = True,
    seed: int = 0,
) -> MaskedResult:
    """Harmonize the pasted object of ``composite`` (inside ``mask``) with the model's background.

    Args:
        pyramid: a completely trained pyramid of the background.
        composite: (1, 3, H, W) in [-1, 1], the naive composite, any size (e.g. the full-resolution
            background the model was trained on, with the object pasted in).
        mask: (1, 1, H, W) bool, True on the pasted object.
        scale: injection scale k, 1 .. K-1 (0 = coarsest); default :func:`default_scale`. Finer
            scales keep more of the object and change colour and texture; coarser ones repaint it.
        noise: fresh noise at the scales from ``scale`` on (as the original); False: deterministic.
        seed: noise seed.

    Returns:
        :class:`MaskedResult` at the composite's size; ``image`` is the harmonized composite, equal
        to the input wherever ``weight`` is 0.

    Raises:
        ValueError: the mask's size differs from the composite's (naming both), an empty mask,
            ``scale`` out of range, or an incompletely trained pyramid.
    """
    k = default_scale(pyramid) if scale is None else scale
    return masked_injection(pyramid, composite, mask, k, DILATION, noise=noise, seed=seed, image_name="composite")
