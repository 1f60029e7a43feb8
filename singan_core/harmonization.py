"""Harmonization: blend a pasted object into a painting or photo (paper sec. 4, Fig. 13).

The model is trained on the background. The naive composite (background with the object pasted
in) is injected at a scale k and the generators from there on re-render it with the background's
patch statistics. Methods (``method``):

- ``paper``: the paper's and the original ``harmonization.py``'s: the model's change, upsampled
  bicubically to the composite's resolution, replaces the composite inside the dilated, feathered
  mask (:func:`singan_core.compositing.masked_injection`).
- ``guided``: the model's change reaches the canvas through the masked guided filter (He et al.,
  ECCV 2010 / TPAMI 2013; :mod:`singan_core.guided_filter`) fitted on the object alone, and only
  the object's pixels change: no halo, the object's full-resolution edges and detail kept. A
  shift of the object's mean colour away from the ring around it is taken back
  (:func:`singan_core.colour_transfer.restrain_drift`): the repaint may only move it towards the scene.
- ``reinhard``: no model pass; Reinhard et al. 2001 colour transfer of the object towards the ring
  of background around it, in L*a*b* (:mod:`singan_core.colour_transfer`).
- ``reinhard_guided`` (default): the colour transfer, then ``guided`` on the colour-corrected
  composite (the model repaints an object already in the scene's colours).
- ``analogies``: ``reinhard_guided``, then the object's finest frequency band taken from the
  background's own full-resolution patches, matched on the band-limited result (image analogies,
  Hertzmann et al. 2001; :mod:`singan_core.harmonization_texture`). Not the default: it costs
  several times ``reinhard_guided`` at 2048 px (docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .colour_transfer import TransferConfig, reinhard_transfer, restrain_drift
from .compositing import ORIGINAL_RESOLUTION_PX, MaskedResult, check_mask, masked_injection
from .errors import InvalidArgument
from .guided_filter import Box, guided_upsample
from .harmonization_texture import AnalogyConfig, analogy_detail
from .injection import check_injection_scale, inject
from .model import SinGANPyramid
from .pyramid import resize

DILATION = 7 / ORIGINAL_RESOLUTION_PX  # mask dilation radius / longer side (original: disk of 7 px at 250 px)
RING_WIDTH = 0.08
"""Width of the ring of background whose colour statistics the object takes, / the longer side."""
RING_GRID_PX = 512
"""The ring is found on the mask downsampled to at most this many pixels a side (cheap at 4K)."""

Method = Literal["paper", "guided", "reinhard", "reinhard_guided", "analogies"]
METHODS: tuple[str, ...] = get_args(Method)
DEFAULT_METHOD: Method = "reinhard_guided"
DEFAULT_STRENGTH = TransferConfig().strength


def default_scale(pyramid: SinGANPyramid) -> int:
    """The default injection scale k = K - 3, three scales below the finest (at least 1).

    Chosen by looking at ``starry_night_naive.png`` with a draft model (K = 7, k = 1 .. 6): k <= 3
    dissolves the object into brush strokes, k = 5-6 leaves it grey and photographic; k = 4 keeps
    its shape and paints it in the background's colours and strokes.
    """
    return max(1, pyramid.num_scales - 3)


def ring_around(mask: torch.Tensor, width_px: float) -> torch.Tensor:
    """The background pixels within ``width_px`` of the object: (1, 1, H, W) bool, disjoint from ``mask``.

    The distance is measured on the mask downsampled to at most :data:`RING_GRID_PX` a side (so
    the ring's outer edge is accurate to a few pixels at 4K). Falls back to all pixels outside the
    mask if the ring is empty; raises ``ValueError`` (``mask``) if the mask covers the whole image.
    """
    h, w = mask.shape[-2:]
    step = max(1, -(-max(h, w) // RING_GRID_PX))
    coarse = F.max_pool2d(mask.float(), step, ceil_mode=True)[0, 0].cpu().numpy() > 0
    near = ndimage.distance_transform_edt(~coarse) <= width_px / step
    near = torch.from_numpy(np.repeat(np.repeat(near, step, 0), step, 1)[:h, :w])[None, None].to(mask.device)
    ring = near & ~mask
    if not bool(ring.any()):
        ring = ~mask
    if not bool(ring.any()):
        raise InvalidArgument("mask", "covers the whole image: no background is left to harmonize with")
    return ring


def bounding_box(region: torch.Tensor) -> Box:
    """(top, left, bottom, right) of the True pixels of (1, 1, H, W) bool ``region`` (non-empty)."""
    rows, cols = region[0, 0].any(1).nonzero(), region[0, 0].any(0).nonzero()
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _guided(
    pyramid: SinGANPyramid, image: torch.Tensor, mask: torch.Tensor, box: Box, scale: int, noise: bool, seed: int
) -> torch.Tensor:
    """The model's change at ``scale``, brought to ``image``'s size by :func:`guided_upsample`
    inside ``mask``; the ``box`` crop of the result."""
    low_out = inject(pyramid, image, scale, noise=noise, seed=seed)
    low_in = resize(image, low_out.shape[-2:], pyramid.config.net.padding_mode)
    return guided_upsample(image, low_in, low_out, mask, box)


def harmonize(
    pyramid: SinGANPyramid,
    composite: torch.Tensor,
    mask: torch.Tensor,
    scale: int | None = None,
    *,
    method: Method = DEFAULT_METHOD,
    strength: float = DEFAULT_STRENGTH,
    noise: bool = True,
    seed: int = 0,
) -> MaskedResult:
    """Harmonize the pasted object of ``composite`` (inside ``mask``) with the model's background.

    Args:
        pyramid: a completely trained pyramid of the background (unused by ``reinhard``).
        composite: (1, 3, H, W) in [-1, 1], the naive composite, any size (e.g. the full-resolution
            background the model was trained on, with the object pasted in).
        mask: (1, 1, H, W) bool, True on the pasted object.
        scale: injection scale k, 1 .. K-1 (0 = coarsest); default :func:`default_scale`. Finer
            scales keep more of the object and change colour and texture; coarser ones repaint it.
        method: one of :data:`METHODS` (see the module docstring); ``paper`` is the paper's exactly.
        strength: colour transfer strength in [0, 1] (``reinhard`` and ``reinhard_guided``):
            0 keeps the object's colours, 1 gives it the ring's mean L*a*b*.
        noise: fresh noise at the scales from ``scale`` on (as the original); False: deterministic.
        seed: noise seed.

    Returns:
        :class:`MaskedResult` at the composite's size; ``image`` is the harmonized composite, equal
        to the input wherever ``weight`` is 0 (``paper``: the dilated, feathered mask; the other
        methods: the mask itself).

    Raises:
        ValueError: the mask's size differs from the composite's (naming both), an empty mask or
            one covering the whole image, ``scale``, ``method`` or ``strength`` out of range, or an
            incompletely trained pyramid.
    """
    if method not in METHODS:
        raise InvalidArgument("method", f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not 0.0 <= strength <= 1.0:
        raise InvalidArgument("strength", f"must be in [0, 1], got {strength}")
    k = default_scale(pyramid) if scale is None else scale
    if method == "paper":
        return masked_injection(pyramid, composite, mask, k, DILATION, noise=noise, seed=seed, image_name="composite")
    check_mask(composite, mask, "composite")
    if method != "reinhard":
        check_injection_scale(pyramid, k)
    image = composite.to(pyramid.device, torch.float32).clone()
    mask = mask.to(image.device)
    ring = ring_around(mask, RING_WIDTH * max(image.shape[-2:]))
    box = bounding_box(ring | mask)  # all the per-pixel work happens on this crop
    top, left, bottom, right = box
    crop = (..., slice(top, bottom), slice(left, right))
    sub, sub_mask, sub_ring = image[crop], mask[crop], ring[crop]
    if method in ("reinhard", "reinhard_guided", "analogies"):
        sub = reinhard_transfer(sub, sub_mask, sub_ring, TransferConfig(strength=strength))
        image[crop] = sub
    if method in ("guided", "reinhard_guided", "analogies"):
        repainted = _guided(pyramid, image, mask, box, k, noise, seed)
        image[crop] = restrain_drift(repainted, sub, sub_mask, sub_ring)
    if method == "analogies":
        # the key sample follows the seed only with noise: without it the result is deterministic
        image = analogy_detail(image, mask, AnalogyConfig(seed=seed if noise else 0))
    return MaskedResult(image=image, unmasked=image, weight=mask.to(image.dtype), scale=k)
