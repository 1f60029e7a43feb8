"""Editing: make a rough edit (moved or copied regions) look natural (paper sec. 4, Fig. 12).

The model is trained on the unedited image. The edited image is injected at a scale k; the
generators from there on re-render it with the image's patch statistics. Two results, as the
original ``editing.py``: the re-rendered image everywhere (unmasked), and the same blended in only
inside the dilated, feathered edit mask (masked), both at the edited image's full resolution.
"""

from __future__ import annotations

import torch

from .compositing import ORIGINAL_RESOLUTION_PX, MaskedResult, masked_injection
from .model import SinGANPyramid

DILATION = 20 / ORIGINAL_RESOLUTION_PX  # mask dilation radius / longer side (original: disk of 20 px at 250 px)


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
    noise: bool = True,
    seed: int = 0,
) -> MaskedResult:
    """Re-render the edited regions of ``edited`` (inside ``mask``) with the model's image statistics.

    Args:
        pyramid: a completely trained pyramid of the unedited image.
        edited: (1, 3, H, W) in [-1, 1], the edited image, any size.
        mask: (1, 1, H, W) bool, True on the edited regions.
        scale: injection scale k, 1 .. K-1 (0 = coarsest); default :func:`default_scale`.
        noise: fresh noise at the scales from ``scale`` on (as the original); False: deterministic.
        seed: noise seed.

    Returns:
        :class:`MaskedResult` at the edited image's size: ``image`` (masked) and ``unmasked``.

    Raises:
        ValueError: the mask's size differs from the image's (naming both), an empty mask,
            ``scale`` out of range, or an incompletely trained pyramid.
    """
    k = default_scale(pyramid) if scale is None else scale
    return masked_injection(pyramid, edited, mask, k, DILATION, noise=noise, seed=seed, image_name="edited image")
