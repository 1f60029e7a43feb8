"""Membrane (harmonic) interpolation into a hole, and membrane cloning.

* :func:`membrane_fill`: the known pixels around a hole carried into it smoothly: push-pull
  (normalised convolution growing until every hole pixel is reached) then Jacobi steps of the
  Laplace equation with the known pixels as the boundary. The first guess of
  :func:`singan_core.patch_synthesis.inpaint`.
* :func:`membrane_clone`: a synthesised region's colour offset against its surroundings, measured
  along its border and spread over it as a membrane, added to it: the seamless cloning of Pérez et
  al. ("Poisson Image Editing", SIGGRAPH 2003) in the membrane form of Farbman et al.
  ("Coordinates for Instant Image Cloning", SIGGRAPH 2009), with the border's differences
  smoothed along it so that only the colour offset moves, not the texture of the pixels beside it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["membrane_clone", "membrane_fill"]

BORDER_WINDOW = 9
"""Side (px) of the window the border's colour differences are averaged over."""


def membrane_fill(x: torch.Tensor, hole: torch.Tensor, relax: int = 50) -> torch.Tensor:
    """``x`` with its ``hole`` filled from the known pixels around it: each hole pixel first takes
    the mean of the known ones within the smallest square that reaches some (growing 1 px a step),
    then ``relax`` Jacobi steps of the Laplace equation smooth it (the known pixels fixed).

    Args:
        x: (1, C, H, W) float. hole: (1, 1, H, W) bool, True where to fill; some pixel must be known.

    Returns:
        (1, C, H, W), equal to ``x`` outside the hole.
    """
    known = (~hole).float()
    out, filled = x.clone(), ~hole
    acc_x, acc_w = x * known, known
    while not bool(filled.all()):
        acc_x = F.avg_pool2d(acc_x, 3, 1, 1, count_include_pad=False)
        acc_w = F.avg_pool2d(acc_w, 3, 1, 1, count_include_pad=False)
        new = (acc_w > 1e-6) & ~filled
        out = torch.where(new, acc_x / acc_w.clamp_min(1e-6), out)
        filled = filled | new
    for _ in range(relax):
        out = torch.where(hole, F.avg_pool2d(F.pad(out, (1, 1, 1, 1), mode="replicate"), 3, 1), out)
    return out


def membrane_clone(image: torch.Tensor, hole: torch.Tensor, relax: int = 200) -> torch.Tensor:
    """``image`` whose ``hole`` holds synthesised pixels, with their colour offset against the
    known pixels around it removed: along the hole's inner border, the difference between the
    mean of each pixel's known 3 x 3 neighbours and the pixel, averaged over
    :data:`BORDER_WINDOW` px of border, is spread over the hole as a membrane
    (:func:`membrane_fill`) and added.

    Args:
        image: (1, C, H, W) float in [-1, 1]. hole: (1, 1, H, W) bool, True where synthesised.

    Returns:
        (1, C, H, W) clamped to [-1, 1], equal to ``image`` outside the hole (unchanged when the
        hole has no known neighbour).
    """
    outside = (~hole).float()
    border = hole & (F.max_pool2d(outside, 3, 1, 1) > 0)
    if not bool(border.any()):
        return image
    ys, xs = torch.nonzero(hole[0, 0], as_tuple=True)  # work on the hole's box and a margin only
    pad = BORDER_WINDOW
    top, left = max(0, int(ys.min()) - pad), max(0, int(xs.min()) - pad)
    bottom, right = int(ys.max()) + pad + 1, int(xs.max()) + pad + 1
    x, h, o, b = (t[..., top:bottom, left:right] for t in (image, hole, outside, border))
    mean_known = F.avg_pool2d(x * o, 3, 1, 1, count_include_pad=False) / F.avg_pool2d(
        o, 3, 1, 1, count_include_pad=False
    ).clamp_min(1e-6)
    diff = torch.where(b, mean_known - x, torch.zeros_like(x))
    w = b.float()
    smooth = F.avg_pool2d(diff * w, BORDER_WINDOW, 1, BORDER_WINDOW // 2, count_include_pad=False)
    smooth = smooth / F.avg_pool2d(w, BORDER_WINDOW, 1, BORDER_WINDOW // 2, count_include_pad=False).clamp_min(1e-6)
    offset = membrane_fill(torch.where(b, smooth, torch.zeros_like(x)), h & ~b, relax)
    out = image.clone()
    out[..., top:bottom, left:right] = torch.where(h, (x + offset).clamp(-1, 1), x)
    return out
