"""Editing: make a rough edit (moved or copied regions) look natural (paper sec. 4, Fig. 12).

The model is trained on the unedited image. The edited image is injected at a scale k; the
generators from there on re-render it with the image's patch statistics. Two results, as the
original ``editing.py``: the re-rendered image everywhere (unmasked), and the same blended in only
inside the dilated, feathered edit mask (masked), both at the edited image's full resolution.

Methods (``method``): ``paper`` is the paper's and the original's exactly (the model's change,
upsampled bicubically, blended in by the dilated, feathered mask;
:func:`singan_core.compositing.masked_injection`). ``analogies`` (default) is the same, then the
masked result's finest frequency band inside the dilated mask is taken from the image's own
full-resolution patches outside the edited regions (faded out with the feathered mask), matched on the band-limited result (image
analogies, Hertzmann et al. 2001; :mod:`singan_core.harmonization_texture`, the step harmonization's
``analogies`` ends with), so the re-rendered regions get the image's grain at its full resolution
instead of the upsampled correction's softness. The guided filter of harmonization is not used
here: it keeps the guide's edges, and an edit's edges are the seams to remove.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, get_args

import torch

from .compositing import ORIGINAL_RESOLUTION_PX, MaskedResult, masked_injection
from .errors import InvalidArgument
from .harmonization_texture import AnalogyConfig, analogy_detail
from .model import SinGANPyramid

DILATION = 20 / ORIGINAL_RESOLUTION_PX  # mask dilation radius / longer side (original: disk of 20 px at 250 px)

Method = Literal["paper", "analogies"]
METHODS: tuple[str, ...] = get_args(Method)
DEFAULT_METHOD: Method = "analogies"


def default_scale(pyramid: SinGANPyramid) -> int:
    """The default injection scale k = K - 4, four scales below the finest (at least 1).

    Chosen by looking at ``stone_edit.png`` with a draft model (K = 6, k = 1 .. 5): from k = 3 on
    the pasted blocks keep their hard rectangular outlines; k = 1-2 blend them into the rock, and
    k = 2 keeps more of the edit's own detail.
    """
    return max(1, pyramid.num_scales - 4)


def edit(
    pyramid: SinGANPyramid,
    edited: torch.Tensor,
    mask: torch.Tensor,
    scale: int | None = None,
    *,
    method: Method = DEFAULT_METHOD,
    noise: bool = True,
    seed: int = 0,
) -> MaskedResult:
    """Re-render the edited regions of ``edited`` (inside ``mask``) with the model's image statistics.

    Args:
        pyramid: a completely trained pyramid of the unedited image.
        edited: (1, 3, H, W) in [-1, 1], the edited image, any size.
        mask: (1, 1, H, W) bool, True on the edited regions.
        scale: injection scale k, 1 .. K-1 (0 = coarsest); default :func:`default_scale`.
        method: one of :data:`METHODS` (see the module docstring); ``paper`` is the paper's exactly.
        noise: fresh noise at the scales from ``scale`` on (as the original); False: deterministic.
        seed: noise seed.

    Returns:
        :class:`MaskedResult` at the edited image's size: ``image`` (masked) and ``unmasked``.

    Raises:
        ValueError: the mask's size differs from the image's (naming both), an empty mask,
            ``scale`` or ``method`` out of range, or an incompletely trained pyramid.
    """
    if method not in METHODS:
        raise InvalidArgument("method", f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    k = default_scale(pyramid) if scale is None else scale
    result = masked_injection(pyramid, edited, mask, k, DILATION, noise=noise, seed=seed, image_name="edited image")
    if method == "paper":
        return result
    region = result.weight > 0
    # the key sample follows the seed only with noise: without it the result is deterministic
    config = replace(AnalogyConfig(), seed=seed if noise else 0)
    detailed = analogy_detail(result.image, region, config, exclude=mask.to(region.device))
    # the band change fades out with the feather, as the model's change does
    image = torch.where(region, result.image + result.weight * (detailed - result.image), result.image)
    return replace(result, image=image)
