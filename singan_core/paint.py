"""Paint-to-image: turn a rough paint or clip-art into an image of the model's world (paper sec. 4, Fig. 11).

The model is trained on an image (e.g. cows in a field); the paint is injected at a coarse scale, so
only its layout of colour blobs survives and the finer generators fill in the training image's
objects and textures (original ``paint2image.py``).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.cluster.vq import kmeans2

from .injection import check_injection_scale, inject
from .model import SinGANPyramid

N_COLORS = 5  # palette size of the optional quantisation (original ``quant``: k-means, 5 clusters)


def default_scale(pyramid: SinGANPyramid) -> int:
    """The default injection scale k: 1, one below the coarsest (the paint's layout, nothing finer)."""
    return 1


def paint_to_image(
    pyramid: SinGANPyramid,
    paint: torch.Tensor,
    scale: int | None = None,
    *,
    quantize: bool = False,
    n_colors: int = N_COLORS,
    noise: bool = True,
    seed: int = 0,
) -> torch.Tensor:
    """An image with the layout of ``paint`` and the patch statistics of the training image.

    Args:
        pyramid: a completely trained pyramid.
        paint: (1, 3, H, W) in [-1, 1], any size; processed at the model's resolution with the
            paint's aspect ratio (:func:`singan_core.injection.working_sizes`).
        scale: injection scale k, 1 .. K-1 (0 = coarsest); default :func:`default_scale`. Coarser
            scales follow the paint more loosely.
        quantize: first map every paint colour to the nearest of ``n_colors`` k-means colours of the
            training image at the injection scale (the original's ``quantization_flag``; the
            original also fine-tunes the scales from k on the quantised image, which this does not).
        n_colors: palette size for ``quantize`` (>= 1).
        noise: fresh noise at the scales from ``scale`` on (as the original); False: deterministic.
        seed: noise (and k-means) seed.

    Returns:
        (1, 3, h, w) in [-1, 1] at the finest working size (the model's resolution).

    Raises:
        ValueError: ``scale`` out of range, ``n_colors`` < 1, or an incompletely trained pyramid.
    """
    k = default_scale(pyramid) if scale is None else scale
    check_injection_scale(pyramid, k)
    if quantize:
        if n_colors < 1:
            raise ValueError(f"n_colors: must be >= 1, got {n_colors}")
        paint = to_palette(paint, palette(pyramid.reals[k], n_colors, seed))
    return inject(pyramid, paint, k, noise=noise, seed=seed)


def palette(image: torch.Tensor, n_colors: int, seed: int = 0) -> torch.Tensor:
    """(n_colors, 3) k-means cluster centres of the colours of ``image`` (1, 3, H, W) in [-1, 1]."""
    pixels = image[0].flatten(1).T.double().cpu().numpy()
    centres, _ = kmeans2(pixels, n_colors, minit="++", seed=seed)
    return torch.from_numpy(np.asarray(centres)).float()


def to_palette(image: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
    """``image`` (1, 3, H, W) with every pixel replaced by the nearest of ``colors`` (n, 3)."""
    pixels = image[0].flatten(1).T.float().cpu()
    nearest = torch.cdist(pixels, colors).argmin(dim=1)
    return colors[nearest].T.reshape(image.shape).to(image.device)
