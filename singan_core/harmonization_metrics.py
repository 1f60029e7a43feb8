"""Measures of a harmonization against the naive composite and the known background.

Used by ``bench/harmonize.py`` and the tests (the acceptance figures of a harmonization):

- colour: CIE Delta E (1976, L*a*b*) between the object's mean colour and the ring around it;
- halo: mean absolute difference from the true background in a band just outside the object;
- shape: correlation of the object's luminance gradients with the pasted object's;
- texture: patch sliced-Wasserstein distance (GPDM, Granot et al. CVPR 2022) of the patches
  inside the object against the background's patches; on the images themselves, on patches minus
  their mean colour, or on the images' finest band (image minus its Gaussian blur: the grain,
  weave or stroke edges at the canvas's scale, which a blur removes and white noise does not have).

Images are (1, 3, H, W) float in [-1, 1]; masks (1, 1, H, W) bool; distances in pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .colour_transfer import rgb_to_lab
from .harmonization_texture import gaussian_blur


def distance_outside(mask: torch.Tensor) -> np.ndarray:
    """(H, W) Euclidean distance in pixels of each pixel to the mask (0 inside)."""
    return ndimage.distance_transform_edt(~mask[0, 0].cpu().numpy())


def ring_delta_e(image: torch.Tensor, mask: torch.Tensor, inner_px: float, outer_px: float) -> float:
    """Delta E 1976 between the mean L*a*b* inside ``mask`` and in the ring ``inner_px`` < d <= ``outer_px``.

    Raises ``ValueError`` if the ring is empty.
    """
    dist = distance_outside(mask)
    ring = torch.from_numpy((dist > inner_px) & (dist <= outer_px))
    if not bool(ring.any()):
        raise ValueError(f"outer_px: no pixel lies {inner_px}-{outer_px} px outside the mask")
    lab = rgb_to_lab(image.cpu())[0]
    return float((lab[:, mask[0, 0].cpu()].mean(1) - lab[:, ring].mean(1)).norm())


def halo(result: torch.Tensor, background: torch.Tensor, mask: torch.Tensor, band_px: float) -> float:
    """Mean absolute difference (8-bit units, 0..255) from ``background`` over the band 0 < d <= ``band_px``."""
    dist = distance_outside(mask)
    band = torch.from_numpy((dist > 0) & (dist <= band_px))
    diff = (result.cpu() - background.cpu()).abs()[0][:, band]
    return float(diff.mean() * 127.5)


def gradient_correlation(result: torch.Tensor, pasted: torch.Tensor, mask: torch.Tensor) -> float:
    """Correlation of the luminance gradients (x and y differences) of two images inside ``mask``:
    about 1 where ``result`` keeps ``pasted``'s structure, about 0 for a flat fill or noise."""

    def gradients(x: torch.Tensor) -> torch.Tensor:
        lum = x.cpu().mean(1, keepdim=True)
        dy, dx = lum[..., 1:, :-1] - lum[..., :-1, :-1], lum[..., :-1, 1:] - lum[..., :-1, :-1]
        inner = mask.cpu()[..., :-1, :-1] & mask.cpu()[..., 1:, :-1] & mask.cpu()[..., :-1, 1:]
        return torch.cat([dy[inner], dx[inner]]).double()

    ga, gb = gradients(result), gradients(pasted)
    ga, gb = ga - ga.mean(), gb - gb.mean()
    norm = float(ga.norm() * gb.norm())
    return 0.0 if norm == 0 else float(ga @ gb) / norm


def _patches(x: torch.Tensor, valid: torch.Tensor, p: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """Up to ``n`` random p x p patches (as rows of 3 p^2) whose top-left corner is ``valid``."""
    ys, xs = torch.nonzero(valid, as_tuple=True)
    if ys.numel() == 0:
        raise ValueError(f"mask: no {p}x{p} patch fits inside the region")
    pick = torch.randperm(ys.numel(), generator=gen)[:n]
    offsets = torch.arange(p)
    rows = (ys[pick, None] + offsets)[:, :, None].expand(-1, p, p)
    cols = (xs[pick, None] + offsets)[:, None, :].expand(-1, p, p)
    return x.cpu()[0][:, rows, cols].permute(1, 0, 2, 3).reshape(pick.numel(), -1)


def texture_swd(
    image: torch.Tensor,
    background: torch.Tensor,
    mask: torch.Tensor,
    patch_size: int = 7,
    max_patches: int = 20000,
    n_directions: int = 128,
    seed: int = 0,
    detail: bool = False,
    band_sigma: float | None = None,
) -> float:
    """Patch sliced-Wasserstein distance between the p x p patches lying wholly inside ``mask`` in
    ``image`` and all patches of ``background`` (lower = the object's texture is the background's).

    Same construction as :func:`singan_core.metrics.patch_swd` (random unit directions, sorted
    projections resampled to a common count, mean squared difference); deterministic for a seed.
    ``detail``: each patch minus its own mean colour first, so the distance measures texture
    (grain, strokes, sharpness) and not colour: a colour shift of the object leaves it unchanged.
    ``band_sigma``: both images replaced by their finest band, ``x - G_sigma * x`` (sigma in
    pixels), first: the texture at the canvas's scale alone (a blur of the object loses it).
    Raises ``ValueError`` if no patch fits inside the mask.
    """
    p = patch_size
    if band_sigma is not None:
        image, background = (x.cpu() - gaussian_blur(x.cpu().float(), band_sigma) for x in (image, background))
    inside = -F.max_pool2d(-mask.float().cpu(), p, stride=1)[0, 0] > 0.5  # top-left corners of inside patches
    gens = [torch.Generator().manual_seed(seed + i) for i in range(3)]
    dirs = torch.randn(3 * p * p, n_directions, generator=gens[0])
    dirs /= dirs.norm(dim=0, keepdim=True)
    everywhere = torch.ones(background.shape[-2] - p + 1, background.shape[-1] - p + 1, dtype=torch.bool)
    pa, pb = _patches(image, inside, p, max_patches, gens[1]), _patches(background, everywhere, p, max_patches, gens[2])
    if detail:
        pa, pb = (x.view(x.shape[0], 3, -1) for x in (pa, pb))
        pa, pb = ((x - x.mean(2, keepdim=True)).flatten(1) for x in (pa, pb))
    sa, sb = (pa @ dirs).sort(0).values, (pb @ dirs).sort(0).values
    n = max(sa.shape[0], sb.shape[0])
    sa, sb = (F.interpolate(s.T[None], size=n, mode="linear", align_corners=True)[0].T for s in (sa, sb))
    return float((sa - sb).pow(2).mean())
