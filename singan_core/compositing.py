"""Masked injection at the user's full resolution (harmonization and editing).

The model works at its own small resolution; the user's image may be any size. The result is
brought back to full resolution as a *correction*: the change the model made at its resolution
(output minus the downsampled input) is upsampled and added to the full-resolution image, inside a
feathered mask. Pixels where the feathered mask is 0 are returned bit-identical.

Images are (1, 3, H, W) float in [-1, 1]; masks (1, 1, H, W); sizes in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .config import PaddingMode
from .injection import inject
from .model import SinGANPyramid
from .pyramid import resize

# The original dilates and feathers masks at its working resolution, max_size 250 px; here both are
# fractions of the image's longer side, so the blend region is the same whatever the resolution.
ORIGINAL_RESOLUTION_PX = 250.0
FEATHER_SIGMA = 5.0 / ORIGINAL_RESOLUTION_PX  # Gaussian feathering (original: sigma 5 px)


@dataclass(frozen=True)
class MaskedResult:
    """A masked injection at full resolution.

    Attributes:
        image: (1, 3, H, W) in [-1, 1]: the input where ``weight`` is 0, the model's change blended
            in by ``weight`` elsewhere (the paper's ``mask * out + (1 - mask) * input``).
        unmasked: (1, 3, H, W) in [-1, 1]: the model's change applied everywhere.
        weight: (1, 1, H, W) in [0, 1]: the dilated, feathered mask used for the blend.
        scale: the injection scale k used.
    """

    image: torch.Tensor
    unmasked: torch.Tensor
    weight: torch.Tensor
    scale: int


def check_mask(image: torch.Tensor, mask: torch.Tensor, image_name: str = "composite") -> None:
    """Raise ``ValueError`` unless ``mask`` (1, 1, H, W) bool matches ``image`` and is not empty."""
    (h, w), (mh, mw) = image.shape[-2:], mask.shape[-2:]
    if (h, w) != (mh, mw):
        raise ValueError(f"mask: {mw}x{mh} px does not match the {image_name}'s {w}x{h} px")
    if not bool(mask.any()):
        raise ValueError("mask: no pixel is inside the mask (inside = brighter than 50 %, or alpha above 50 %)")


def feathered_mask(mask: torch.Tensor, dilation_px: float, sigma_px: float) -> torch.Tensor:
    """Dilate a binary mask by a disk and feather it with a Gaussian (original ``dilate_mask``).

    Args:
        mask: (1, 1, H, W) bool.
        dilation_px: disk radius in pixels (of this mask's resolution).
        sigma_px: Gaussian standard deviation in pixels; the filter is cut at 4 sigma, so the
            result is exactly 0 farther than ``dilation_px + 4 * sigma_px`` from the mask.

    Returns:
        (1, 1, H, W) float32 in [0, 1], rescaled so its maximum is 1.
    """
    inside = mask[0, 0].cpu().numpy()
    dilated = ndimage.distance_transform_edt(~inside) <= dilation_px
    soft = ndimage.gaussian_filter(dilated.astype(np.float32), sigma_px, mode="nearest", truncate=4.0)
    soft[soft < 1e-6] = 0.0  # float residue of the filter, not part of the feather
    soft /= soft.max()
    return torch.from_numpy(soft)[None, None].to(mask.device)


def upsampled_correction(full: torch.Tensor, low_out: torch.Tensor, mode: PaddingMode = "zeros") -> torch.Tensor:
    """``full`` + the model's change at low resolution, upsampled: ``full + up(low_out - down(full))``.

    Args:
        full: (1, 3, H, W) the full-resolution input.
        low_out: (1, 3, h, w) the model's output for ``full`` at its working resolution.
        mode: the model's padding mode (for the downsampling).

    Returns:
        (1, 3, H, W), unclamped.
    """
    low_in = resize(full, low_out.shape[-2:], mode)
    change = F.interpolate(low_out - low_in, size=full.shape[-2:], mode="bicubic", align_corners=False)
    return full + change


def masked_injection(
    pyramid: SinGANPyramid,
    image: torch.Tensor,
    mask: torch.Tensor,
    scale: int,
    dilation: float,
    *,
    noise: bool = True,
    seed: int = 0,
    image_name: str = "composite",
) -> MaskedResult:
    """Inject ``image`` at ``scale`` and bring the result back to full resolution inside ``mask``.

    Args:
        pyramid: a completely trained pyramid (of the background / the unedited image).
        image: (1, 3, H, W) in [-1, 1], any size.
        mask: (1, 1, H, W) bool, True inside.
        scale: injection scale k, 1 .. K-1.
        dilation: mask dilation radius as a fraction of the image's longer side; the mask is then
            feathered by a Gaussian of ``FEATHER_SIGMA`` x the longer side.
        noise, seed: see :func:`singan_core.injection.inject`.
        image_name: how errors name ``image``.

    Raises:
        ValueError: mask size differs from the image's (naming both), an empty mask, ``scale`` out
            of range or an incompletely trained pyramid.
    """
    check_mask(image, mask, image_name)
    image = image.to(pyramid.device, torch.float32)
    low_out = inject(pyramid, image, scale, noise=noise, seed=seed)
    unmasked = upsampled_correction(image, low_out, pyramid.config.net.padding_mode).clamp(-1, 1)
    long_side = max(image.shape[-2:])
    weight = feathered_mask(mask, dilation * long_side, FEATHER_SIGMA * long_side).to(image.device)
    blended = torch.where(weight > 0, image + weight * (unmasked - image), image)
    return MaskedResult(image=blended, unmasked=unmasked, weight=weight, scale=scale)
