"""The image pyramid: scale geometry (original ``adjust_scales2image`` rule) and resizing.

All image tensors are (N, 3, H, W) float in [-1, 1]; sizes are (height, width) in pixels.
Scale index k = 0 is the coarsest (see :mod:`singan_core.config`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import PaddingMode, PyramidConfig

Size = tuple[int, int]
SizeLike = Size | torch.Size  # (h, w), also a tensor's ``shape[-2:]``


@dataclass(frozen=True)
class PyramidGeometry:
    """Derived pyramid shape for one training image.

    Attributes:
        sizes: (height, width) of every scale, index 0 = coarsest, last = finest.
        scale_factor: the actual r (< 1) between consecutive scales.
        input_scale: factor applied to the input image to cap its longest side at ``max_size`` (<= 1).
    """

    sizes: tuple[Size, ...]
    scale_factor: float
    input_scale: float

    @property
    def num_scales(self) -> int:
        return len(self.sizes)


def pyramid_geometry(height: int, width: int, cfg: PyramidConfig) -> PyramidGeometry:
    """Number of scales, actual ``scale_factor`` r and per-scale sizes for an input image.

    Follows the original code's ``adjust_scales2image``: the finest scale has its longest side
    capped at ``max_size``; the number of scales comes from ``scale_factor_init`` and r is then
    adjusted so that the shortest side of the coarsest scale is ``min_size``. Each scale is the
    capped image resized by ``r ** (K - 1 - k)`` with output sides rounded up (MATLAB ``imresize``).
    With ``cfg.exact_scale_factor`` r is ``scale_factor_init`` as given and K is the largest number
    of scales whose coarsest shorter side is still >= ``min_size`` (for super-resolution).
    With ``cfg.scale_rule == "consingan"``: ConSinGAN's ``num_stages`` low-resolution-weighted
    stages instead (see :func:`_consingan_geometry`); ``scale_factor`` is then its base r, the ratio
    between the two finest scales only.

    Args:
        height, width: input image size in pixels.
        cfg: pyramid settings.

    Raises:
        ValueError: the image's shorter side is below ``min_size``, or ``max_size`` is so small that
            the finest scale's shorter side would be below ``min_size``.
    """
    short, long = min(height, width), max(height, width)
    if short < cfg.min_size:
        raise ValueError(
            f"image: {width}x{height} px is too small; its shorter side must be at least min_size={cfg.min_size} px"
        )
    if math.ceil(short * min(cfg.max_size / long, 1.0)) < cfg.min_size:
        raise ValueError(
            f"max_size: {cfg.max_size} px is too small for this {width}x{height} image; capping its "
            f"longer side there leaves the shorter side below min_size={cfg.min_size} px"
        )
    input_scale = min(cfg.max_size / long, 1.0)
    finest = (math.ceil(height * input_scale), math.ceil(width * input_scale))
    if cfg.scale_rule == "consingan":
        return _consingan_geometry(finest, cfg, input_scale)
    if cfg.exact_scale_factor:
        scale_factor = cfg.scale_factor_init
        stop_scale = math.floor(math.log(cfg.min_size / min(finest), scale_factor) + 1e-9)
    else:
        r0 = cfg.scale_factor_init
        num_scales = math.ceil(math.log(cfg.min_size / short, r0)) + 1
        scales_to_stop = math.ceil(math.log(min(cfg.max_size, long) / long, r0))
        stop_scale = max(num_scales - scales_to_stop, 1)
        scale_factor = (cfg.min_size / min(finest)) ** (1.0 / stop_scale)
    sizes = tuple(_scaled_size(finest, scale_factor ** (stop_scale - k)) for k in range(stop_scale + 1))
    return PyramidGeometry(sizes=sizes, scale_factor=scale_factor, input_scale=input_scale)


def _consingan_geometry(finest: Size, cfg: PyramidConfig, input_scale: float) -> PyramidGeometry:
    """ConSinGAN's stage sizes (Hinz et al., WACV 2021; the release's ``create_reals_pyramid``).

    K = ``cfg.num_stages`` scales; r = (min_size / finest shorter side) ** (1 / (K - 1)) so the
    coarsest shorter side is ``min_size``, as under the paper's rule; but scale k < K - 1 is the
    finest scaled by ``r ** e_k`` with ``e_k = (K - 2) / ln(K - 1) * ln(K - 1 - k) + 1`` instead of
    ``r ** (K - 1 - k)``: e_0 = K - 1 (the coarsest), e_{K-2} = 1 (one step of r below the finest),
    and the exponents in between are spaced logarithmically, so more stages sit at low resolution.
    """
    stop_scale = cfg.num_stages - 1
    scale_factor = (cfg.min_size / min(finest)) ** (1.0 / stop_scale)
    exponents = [
        (stop_scale - 1) / math.log(stop_scale) * math.log(stop_scale - k) + 1 if stop_scale > 1 else 1.0
        for k in range(stop_scale)
    ]
    sizes = tuple(_scaled_size(finest, scale_factor**e) for e in exponents) + (finest,)
    return PyramidGeometry(sizes=sizes, scale_factor=scale_factor, input_scale=input_scale)


def _scaled_size(size: Size, factor: float) -> Size:
    # round() first so that e.g. 186 * 0.75**0 does not become 187 through float error
    return tuple(math.ceil(round(s * factor, 6)) for s in size)  # type: ignore[return-value]


def build_real_pyramid(image: torch.Tensor, cfg: PyramidConfig) -> tuple[list[torch.Tensor], PyramidGeometry]:
    """The real images x_k of every scale (paper sec. 2, the "training pyramid").

    Args:
        image: (1, 3, H, W) in [-1, 1].
        cfg: pyramid settings.

    Returns:
        reals: list of (1, 3, h_k, w_k) tensors in [-1, 1], index 0 = coarsest; each is resized
            directly from the ``max_size``-capped image, as the original does.
        geometry: the derived :class:`PyramidGeometry`.
    """
    geometry = pyramid_geometry(image.shape[-2], image.shape[-1], cfg)
    return reals_from_finest(resize(image, geometry.sizes[-1]), geometry.sizes), geometry


def reals_from_finest(finest: torch.Tensor, sizes: tuple[Size, ...]) -> list[torch.Tensor]:
    """x_k for every scale: each coarser scale resized directly from the finest (capped) image.

    Args:
        finest: (1, 3, h, w) in [-1, 1], already of size ``sizes[-1]``.
        sizes: per-scale (h, w), coarsest first.
    """
    return [resize(finest, size) for size in sizes[:-1]] + [finest]


def resize(x: torch.Tensor, size: SizeLike, padding_mode: PaddingMode = "zeros") -> torch.Tensor:
    """Antialiased bicubic resize of (N, C, H, W) to ``size`` = (h, w) pixels.

    With ``padding_mode="circular"`` the image is treated as periodic (a tile): the result wraps
    around seamlessly, which keeps circular-padding samples tileable across scales.
    Values are not clamped (bicubic may overshoot [-1, 1] slightly, as in the original).
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if padding_mode == "zeros":
        return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
    rows = _circular_resize_matrix(x.shape[-2], size[0]).to(x)
    cols = _circular_resize_matrix(x.shape[-1], size[1]).to(x)
    return rows @ x @ cols.T


@functools.lru_cache(maxsize=64)
def _circular_resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) matrix of the 1-D antialiased bicubic resize of a periodic signal.

    Column j is the resize of a periodic unit impulse at j: three periods are resized (which keeps
    the exact n_out / n_in ratio) and the middle period is kept, far from any border effect.
    """
    impulses = torch.eye(n_in, dtype=torch.float64).repeat(1, 3)[:, None, None, :]
    out = F.interpolate(impulses, size=(1, 3 * n_out), mode="bicubic", align_corners=False, antialias=True)
    return out[:, 0, 0, n_out : 2 * n_out].T.contiguous().float()
