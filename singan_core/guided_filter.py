"""Edge-aware upsampling of a low-resolution change with the guided filter, inside a mask only.

He, Sun and Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013: in every window the output
is an affine function of the guide, q = a * I + b, with (a, b) the least-squares fit of the
target p regularized by eps; He and Sun, "Fast Guided Filter", arXiv 2015: fit (a, b) at low
resolution, upsample them bilinearly, apply them to the full-resolution guide. So the output
follows the full-resolution guide's edges and detail while taking the low-resolution target's
colours.

Two changes for masked compositing: the fit uses only pixels inside the mask (box statistics
weighted by the low-resolution coverage, a normalized convolution), so the object's mapping never
mixes in the background's change; and it fits the *change* p - I with eps pulling a towards 1,
so where the model's change is not explained by the guide the object keeps its own detail plus a
smooth offset (instead of losing its detail). Windows with little coverage fall back to the
fit over the whole mask.

Images are (1, C, H, W) float; masks (1, 1, H, W); radius and sizes in pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over (2 * radius + 1)^2 windows, zero padding counted as zeros: (N, C, H, W) -> same shape."""
    k = 2 * radius + 1
    return F.avg_pool2d(F.pad(x, (radius,) * 4), k, stride=1, count_include_pad=True)


def masked_affine_fit(
    guide: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    radius: int,
    eps: float,
    fallback: float = 0.05,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel local fit ``target - guide ~ (a - 1) * guide + b`` weighted by ``weight``.

    Args:
        guide, target: (1, C, h, w), same size.
        weight: (1, 1, h, w) in [0, 1]: how far each pixel belongs to the region fitted.
        radius: window radius in pixels of this resolution.
        eps: regularization of (a - 1) (units: guide value squared); larger = closer to a pure offset.
        fallback: window coverage (mean weight) at which the local and the whole-region fits count equally.

    Returns:
        (a, b), each (1, C, h, w), smoothed by a second weighted box mean as in He et al.

    Raises:
        ValueError: ``weight`` is zero everywhere.
    """
    total = weight.sum()
    if float(total) <= 0:
        raise ValueError("mask: no pixel is inside the mask at the model's resolution")
    change = target - guide

    def fit(mean):
        n = mean(weight).clamp_min(1e-12)
        mi, md = mean(weight * guide) / n, mean(weight * change) / n
        var = mean(weight * guide * guide) / n - mi * mi
        cov = mean(weight * guide * change) / n - mi * md
        slope = cov / (var.clamp_min(0) + eps)
        return slope, md - slope * mi, n

    slope_g, off_g, _ = fit(lambda x: x.sum(dim=(-2, -1), keepdim=True))
    slope, off, n = fit(lambda x: box_mean(x, radius))
    trust = n / (n + fallback)
    slope = trust * slope + (1 - trust) * slope_g
    off = trust * off + (1 - trust) * off_g
    # the second average of He et al., over the same windows, weighted alike
    n2 = box_mean(weight, radius) + 1e-12
    near = box_mean(torch.ones_like(weight), radius)

    def smooth(x: torch.Tensor) -> torch.Tensor:  # mostly the region's values, the rest where it has none
        return (box_mean(weight * x, radius) + 1e-3 * box_mean(x, radius)) / (n2 + 1e-3 * near)

    return 1 + smooth(slope), smooth(off)


Box = tuple[int, int, int, int]
"""(top, left, bottom, right) in pixels, bottom/right exclusive."""


def upsample_region(x: torch.Tensor, size: tuple[int, int], box: Box) -> torch.Tensor:
    """``F.interpolate(x, size, mode="bilinear", align_corners=False)`` evaluated on ``box`` only.

    Args:
        x: (1, C, h, w) low-resolution field.
        size: (H, W), the full upsampled size.
        box: the region of the (H, W) grid to evaluate.

    Returns:
        (1, C, bottom - top, right - left); equal to the matching crop of the full upsampling.
    """
    (h, w), (big_h, big_w) = x.shape[-2:], size
    top, left, bottom, right = box

    def coords(start: int, stop: int, big: int, small: int) -> torch.Tensor:
        src = ((torch.arange(start, stop, dtype=x.dtype, device=x.device) + 0.5) * small / big - 0.5).clamp(
            0, small - 1
        )
        return (2 * src + 1) / small - 1  # grid_sample's align_corners=False coordinates

    gy, gx = torch.meshgrid(coords(top, bottom, big_h, h), coords(left, right, big_w, w), indexing="ij")
    grid = torch.stack([gx, gy], -1)[None]
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def guided_upsample(
    full: torch.Tensor,
    low_in: torch.Tensor,
    low_out: torch.Tensor,
    mask: torch.Tensor,
    box: Box | None = None,
    radius: int = 2,
    eps: float = 0.02,
    slope_range: tuple[float, float] = (0.25, 2.0),
) -> torch.Tensor:
    """Bring the model's low-resolution change to ``full``'s size inside ``mask``, edge-aware.

    Fits ``low_out ~ a * low_in + b`` per channel inside the mask at low resolution
    (:func:`masked_affine_fit`), upsamples (a, b) bilinearly and applies them to ``full``.

    Args:
        full: (1, 3, H, W) the full-resolution guide (the composite), values in [-1, 1].
        low_in: (1, 3, h, w) ``full`` downsampled to the model's working size.
        low_out: (1, 3, h, w) the model's output for ``low_in``.
        mask: (1, 1, H, W) bool, True inside the object.
        box: the region to return (default: the whole image); it must contain the mask.
        radius: window radius in low-resolution pixels.
        eps: regularization (guide units squared, [-1, 1] scale).
        slope_range: clamp of a, so the object's detail is neither erased nor blown up.

    Returns:
        (1, 3, bottom - top, right - left): ``a * full + b`` inside ``mask``, ``full``
        (bit-identical) outside, on ``box``.
    """
    size = (full.shape[-2], full.shape[-1])
    top, left, bottom, right = box or (0, 0, *size)
    coverage = F.interpolate(mask.to(full.dtype), size=low_in.shape[-2:], mode="area")
    weight = coverage**4  # pixels straddling the edge mix the object with the background
    if float(weight.sum()) < 1e-6:
        weight = coverage
    a, b = masked_affine_fit(low_in, low_out, weight, radius, eps)
    a = upsample_region(a.clamp(*slope_range), size, (top, left, bottom, right))
    b = upsample_region(b, size, (top, left, bottom, right))
    guide, inside = full[..., top:bottom, left:right], mask[..., top:bottom, left:right]
    return torch.where(inside, (a * guide + b).clamp(-1, 1), guide)
