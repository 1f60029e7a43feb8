"""Image-quality metrics for single-image generative models.

All images are float tensors with values in ``[-1, 1]``, shaped ``(N, C, H, W)``
(or ``(C, H, W)`` where a single image is expected), ``C = 3`` (RGB). Every
metric runs on the CPU in float32 (float64 for the matrix algebra of SIFID), so
results do not depend on the device the images were generated on.

Metrics
-------
* :func:`patch_swd` -- patch sliced-Wasserstein distance (GPDM, Granot et al.,
  "Drop the GAN", CVPR 2022). Both images are turned into point clouds of
  ``7x7x3`` patch vectors; the clouds are projected on random unit directions and
  the 1-D Wasserstein-2 distance is computed per direction from the sorted
  projections. Lower means the two images have more similar internal patch
  statistics. It needs no trained network.
* :func:`pixel_diversity` -- the SinGAN diversity score (Shaham et al., SinGAN,
  ICCV 2019, sec. 3): per-pixel standard deviation across generated samples,
  averaged over pixels, divided by the standard deviation of the real image.
* :func:`dominant_period` -- the texture's dominant spatial period in pixels: the
  nearest strong off-centre peak of the 2-D autocorrelation of the luminance (the
  feature-scale check of full-resolution output).
* :func:`correlation_length` -- the feature size of an aperiodic texture (gravel, grass):
  where the radially averaged autocorrelation falls below 0.5.
* :func:`sharpness` -- high-frequency energy: variance of the Laplacian of the luminance.
* :func:`bright_density` -- the fraction of pixels brighter than the source's 98th luminance
  percentile: whether sparse bright features (stars, galaxies, highlights) keep their density.
* :func:`copy_score` -- the largest region of an output that equals the source under one
  constant offset, as a fraction of the output's area (GPNN's known failure is pasting
  large regions verbatim; a crop of the source scores 1.0).
* :func:`copied_region_fraction` -- the share of an output's 32 x 32 blocks that are found in the
  source (normalised cross-correlation, so brightness and contrast changes do not hide a copy)
  at the same offset as a neighbouring block: a copy check.
* :func:`axis_periods` / :func:`lattice_ratios` -- a lattice's period along x and y and the
  autocorrelation's height there; an output's periods and peak height relative to its source's.
* :func:`lattice_vectors` / :func:`bond_ratio` -- a lattice's two primitive vectors (a brick bond's
  step to the next column included) and how well an output keeps the source's 2-D lattice, read on
  the horizontal and the vertical edges apart (columns that meander and bricks merged into strips
  fail it while the axis periods still pass).
* :func:`copied_fraction` -- the share of an output covered by (textured) verbatim copies of
  the source under any offset: a tiling of the source scores its whole area.
* :func:`horizon_edge`, :func:`row_profile_correlation` -- a plate's vertical layout: the
  relative height of the strongest horizontal edge, and the correlation of the row-mean colour
  profiles of two images fitted to one height.
* :func:`seam_ratio` -- how visible the border of a synthesised region is: the mean luminance
  step across the border over the mean step across the parallel lines just beside it (about 1:
  the border is as invisible as the image's own lines; a pasted patch scores far higher).
* :func:`sifid` -- Single-Image FID (SinGAN sec. 3): Fréchet distance between the
  Gaussians fitted to the 64-channel Inception-v3 features (before the second
  max-pool) of the real and the fake image. It needs Inception-v3 weights, which
  are never downloaded: without a local ``.safetensors`` file it raises
  :class:`MetricUnavailable`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from .errors import InvalidArgument, MetricUnavailable

__all__ = [
    "MetricUnavailable",
    "axis_periods",
    "bond_ratio",
    "bright_density",
    "copied_region_fraction",
    "copy_score",
    "correlation_length",
    "dominant_period",
    "lattice_ratios",
    "lattice_vectors",
    "patch_swd",
    "pixel_diversity",
    "seam_ratio",
    "sharpness",
    "sifid",
]


# --------------------------------------------------------------------------- helpers


def _single_image(x: torch.Tensor, name: str, min_size: int = 1) -> torch.Tensor:
    """Check ``x`` is one RGB image, ``(1, 3, H, W)`` or ``(3, H, W)``; return it as CPU float32 ``(1, 3, H, W)``."""
    if not isinstance(x, torch.Tensor):
        raise InvalidArgument(name, f"must be a torch.Tensor, got {type(x).__name__}", sentence=True)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise InvalidArgument(name, f"must have shape (1, 3, H, W) or (3, H, W), got {tuple(x.shape)}", sentence=True)
    if min(x.shape[-2:]) < min_size:
        raise InvalidArgument(
            name, f"is {x.shape[-2]}x{x.shape[-1]} pixels, smaller than {min_size}x{min_size}", sentence=True
        )
    return x.detach().to(device="cpu", dtype=torch.float32)


# --------------------------------------------------------------------------- patch SWD


def _patches_at(x: torch.Tensor, idx: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Patch vectors of ``x`` (1, C, H, W) at patch indices ``idx`` (row-major over top-left corners).

    Returns ``(len(idx), C * patch_size**2)`` laid out exactly like the columns of
    ``F.unfold(x, patch_size)`` (channel, then row, then column), but gathers only
    the requested patches instead of materialising all of them.
    """
    _, c, h, w = x.shape
    n_cols = w - patch_size + 1
    top, left = idx // n_cols, idx % n_cols
    offs = torch.arange(patch_size)
    rows = top[:, None, None] + offs[None, :, None]  # (N, p, 1)
    cols = left[:, None, None] + offs[None, None, :]  # (N, 1, p)
    flat = (rows * w + cols).reshape(len(idx), -1)  # (N, p*p) indices into H*W
    vals = x[0].reshape(c, h * w)[:, flat]  # (C, N, p*p)
    return vals.permute(1, 0, 2).reshape(len(idx), c * patch_size * patch_size)


def _sample_patches(x: torch.Tensor, patch_size: int, max_patches: int, gen: torch.Generator) -> torch.Tensor:
    """All patch vectors of ``x``, or ``max_patches`` of them drawn without replacement using ``gen``."""
    n_total = (x.shape[-2] - patch_size + 1) * (x.shape[-1] - patch_size + 1)
    if n_total > max_patches:
        idx = torch.randperm(n_total, generator=gen)[:max_patches]
    else:
        idx = torch.arange(n_total)
    return _patches_at(x, idx, patch_size)


def _resample_sorted(s: torch.Tensor, n: int) -> torch.Tensor:
    """Linearly interpolate sorted columns ``s`` (m, D) -- empirical quantile functions -- to ``n`` quantiles.

    Quantile positions are the cell centres ``(i + 0.5) / n``, i.e. ``F.interpolate`` with
    ``align_corners=False``; ``n == m`` returns ``s`` unchanged.
    """
    if s.shape[0] == n:
        return s
    return F.interpolate(s.T.unsqueeze(0), size=n, mode="linear", align_corners=False)[0].T


def patch_swd(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    patch_size: int = 7,
    max_patches: int = 20000,
    n_directions: int = 256,
    seed: int = 0,
) -> float:
    """Patch sliced-Wasserstein distance between two images (GPDM, Granot et al., CVPR 2022).

    Every ``patch_size x patch_size`` patch of an image (stride 1, no padding) is a
    vector of length ``3 * patch_size**2``. If an image has more than ``max_patches``
    patches, ``max_patches`` of them are drawn at random without replacement. The
    patch clouds are projected on ``n_directions`` random unit directions (the same
    for both images), each projection is sorted, and the result is the mean over
    directions and quantiles of the squared difference of the sorted projections,
    i.e. the mean squared 1-D Wasserstein-2 distance. When the images have different
    patch counts, both sorted projections are linearly resampled (as quantile
    functions) to the larger count first.

    Randomness comes only from ``torch.Generator`` objects seeded from ``seed``
    (directions: ``seed``; patch draws of ``a`` and ``b``: ``seed + 1`` and
    ``seed + 2``, i.e. independent draws per image), so equal inputs and seed give
    exactly the same value. Without subsampling ``patch_swd(x, x) == 0``; with it, the
    independent draws leave a small positive value.

    Args:
        a, b: images ``(1, 3, H, W)`` or ``(3, H, W)``, values in ``[-1, 1]``; sizes may
            differ. Computed on the CPU in float32.
        patch_size: side of the square patches (7 as in GPDM).
        max_patches: cap on the number of patches used per image.
        n_directions: number of random projection directions.
        seed: seed of the generators.

    Returns:
        The distance as a Python float (>= 0; 0 for identical patch distributions).

    Raises:
        ValueError: naming ``a`` or ``b`` if it is not a single 3-channel image or is
            smaller than ``patch_size`` in height or width; or if ``patch_size``,
            ``max_patches`` or ``n_directions`` is not positive.
    """
    for arg, value in (("patch_size", patch_size), ("max_patches", max_patches), ("n_directions", n_directions)):
        if value < 1:
            raise InvalidArgument(arg, f"must be >= 1, got {value}", sentence=True)
    a = _single_image(a, "a", patch_size)
    b = _single_image(b, "b", patch_size)
    gens = [torch.Generator().manual_seed(seed + i) for i in range(3)]
    dirs = torch.randn(3 * patch_size * patch_size, n_directions, generator=gens[0])
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    sa = (_sample_patches(a, patch_size, max_patches, gens[1]) @ dirs).sort(dim=0).values
    sb = (_sample_patches(b, patch_size, max_patches, gens[2]) @ dirs).sort(dim=0).values
    n = max(sa.shape[0], sb.shape[0])
    return float((_resample_sorted(sa, n) - _resample_sorted(sb, n)).pow(2).mean())


# --------------------------------------------------------------------------- diversity


def pixel_diversity(samples: torch.Tensor, real: torch.Tensor) -> float:
    """SinGAN diversity score (Shaham et al., SinGAN, ICCV 2019, sec. 3).

    The standard deviation of each pixel value across the generated samples,
    averaged over channels and pixels, divided by the standard deviation of all
    values of the real image. Both standard deviations are population ones
    (``correction=0``, like ``numpy.std``). If ``real`` has a different size than the
    samples it is first resized to their size (bicubic, antialiased,
    ``align_corners=False``).

    Args:
        samples: generated images ``(S, 3, H, W)``, ``S >= 2``, values in ``[-1, 1]``.
        real: the training image ``(1, 3, H', W')`` or ``(3, H', W')``, values in ``[-1, 1]``.

    Returns:
        The diversity as a Python float (0 when all samples are identical).

    Raises:
        ValueError: if ``samples`` is not ``(S, 3, H, W)`` with ``S >= 2``, if ``real`` is
            not a single 3-channel image, or if ``real`` is constant (zero std).
    """
    if not isinstance(samples, torch.Tensor) or samples.dim() != 4 or samples.shape[1] != 3:
        shape = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
        raise InvalidArgument("samples", f"must have shape (S, 3, H, W), got {shape}", sentence=True)
    if samples.shape[0] < 2:
        raise InvalidArgument(
            "samples", f"needs at least 2 images to measure diversity, got {samples.shape[0]}", sentence=True
        )
    samples = samples.detach().to(device="cpu", dtype=torch.float32)
    real = _single_image(real, "real")
    if real.shape[-2:] != samples.shape[-2:]:
        real = F.interpolate(real, size=samples.shape[-2:], mode="bicubic", antialias=True, align_corners=False)
    real_std = real.std(correction=0)
    if real_std == 0:
        raise InvalidArgument("real", "is constant (std 0); diversity is undefined", sentence=True)
    return float(samples.std(dim=0, correction=0).mean() / real_std)


# --------------------------------------------------------------------------- luminance measures

_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B
PERIOD_MIN_PEAK = 0.1  # an autocorrelation peak below this (of the zero-lag value) is not a period
_PERIOD_PEAK_RELATIVE = 0.5  # ... nor one below half of the strongest off-centre peak
_PERIOD_ANGLES = 360  # rays over a half-turn along which the autocorrelation is read
_PERIOD_STEP = 0.25  # pixels between samples along a ray


def _luminance(x: torch.Tensor) -> torch.Tensor:
    """Luminance ``(H, W)`` float64 of one RGB image ``(1, 3, H, W)`` in [-1, 1] (BT.601 weights)."""
    w = torch.tensor(_LUMA, dtype=torch.float64).view(3, 1, 1)
    return (x[0].to(torch.float64) * w).sum(dim=0)


def _autocorrelation(y: torch.Tensor) -> torch.Tensor:
    """Normalised linear autocorrelation of ``y`` (H, W) for lags up to half the size, origin centred.

    The mean is removed; each lag's sum is divided by its overlap count (unbiased), then by
    the zero-lag value, so the result is 1 at the centre. Shape ``(2 * (H // 2) + 1, 2 * (W // 2) + 1)``.
    """
    h, w = y.shape
    y = y - y.mean()
    spec = torch.fft.rfft2(y, s=(2 * h, 2 * w))  # zero padding: linear, not circular, correlation
    ac = torch.fft.irfft2(spec * spec.conj(), s=(2 * h, 2 * w))
    ac = torch.fft.fftshift(ac)[h - h // 2 : h + h // 2 + 1, w - w // 2 : w + w // 2 + 1]
    dy = torch.arange(-(h // 2), h // 2 + 1, dtype=torch.float64).abs()
    dx = torch.arange(-(w // 2), w // 2 + 1, dtype=torch.float64).abs()
    ac = ac / ((h - dy)[:, None] * (w - dx)[None, :])
    return ac / ac[h // 2, w // 2]


def _polar(ac: torch.Tensor, n_angles: int, step: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``ac`` (origin centred) sampled bilinearly on rays from the origin over a half-turn.

    Returns (profiles (n_angles, n_radii), radii (n_radii,)) with radii ``0, step, ...`` up to half
    the smaller side (the autocorrelation is point-symmetric, so a half-turn sees every lag).
    """
    h, w = ac.shape
    radii = torch.arange(0, min(h, w) // 2, step, dtype=torch.float64)
    theta = torch.arange(n_angles, dtype=torch.float64) * (math.pi / n_angles)
    ys = radii[None, :] * torch.sin(theta)[:, None]
    xs = radii[None, :] * torch.cos(theta)[:, None]
    grid = torch.stack([xs / (w // 2), ys / (h // 2)], dim=-1)  # normalised to [-1, 1], align_corners=True
    out = F.grid_sample(ac[None, None], grid[None], mode="bilinear", align_corners=True)[0, 0]
    return out, radii


def dominant_period(x: torch.Tensor) -> float:
    """Dominant spatial period of a texture, in pixels (the feature-scale check of the full-resolution output).

    The luminance's mean is removed and its linear 2-D autocorrelation is computed for lags up
    to half the image size in each direction (zero-padded FFT, each lag divided by its overlap
    count, normalised to 1 at zero lag). It is read along 360 rays from the origin over a
    half-turn (bilinear samples every 0.25 px). On each ray the *central lobe* is the stretch
    from the origin to the first value below 0.1 (a pixel's correlation with its own
    neighbourhood); a *peak* is a local maximum along the ray beyond it, of at least 0.1 and at
    least half of the strongest such maximum of all rays (weak ripples of noise fall under the
    two thresholds). The period is the distance from the origin of the nearest peak.

    Reading along rays, not as 2-D maxima, makes the result stable for lattices: the
    autocorrelation of a brick wall has ridges (every column offset by the brick width), whose
    2-D maxima sit at varying heights along the ridge; the nearest radial peak is the ridge's
    distance, the column spacing, for the photo and for generated walls alike. Scaling a
    texture by ``k`` scales the result by ``k``. A stripe pattern gives its wavelength (along the
    stripes the correlation never falls below 0.1, so that ray has no peak).

    Args:
        x: one image ``(1, 3, H, W)`` or ``(3, H, W)``, values in ``[-1, 1]``, at least 8 x 8
            pixels. Computed on the CPU in float64.

    Returns:
        The period in pixels (a float > 1), or ``nan`` when the image has no periodic
        structure (no peak passes the thresholds, e.g. white noise, gravel or a constant image).

    Raises:
        ValueError: if ``x`` is not a single 3-channel image of at least 8 x 8 pixels.
    """
    y = _luminance(_single_image(x, "x", 8))
    if float(y.std()) == 0.0:
        return float("nan")
    profiles, radii = _polar(_autocorrelation(y), _PERIOD_ANGLES, _PERIOD_STEP)
    below = profiles < PERIOD_MIN_PEAK
    past_lobe = below.cumsum(dim=1) > 0  # from the first value under the threshold outwards
    inner = profiles[:, 1:-1]
    is_max = (inner > profiles[:, :-2]) & (inner >= profiles[:, 2:]) & past_lobe[:, 1:-1]
    if not bool(is_max.any()):
        return float("nan")
    floor = max(PERIOD_MIN_PEAK, _PERIOD_PEAK_RELATIVE * float(inner[is_max].max()))
    peaks = is_max & (inner >= floor)
    if not bool(peaks.any()):
        return float("nan")
    first = torch.nonzero(peaks)[:, 1].min()
    return float(radii[1 + first])


def correlation_length(x: torch.Tensor) -> float:
    """Feature size of an aperiodic texture (gravel, grass), in pixels.

    The radius at which the radially averaged, normalised autocorrelation of the luminance (as
    in :func:`dominant_period`) first falls below 0.5 (linear interpolation between the two
    integer radii around the crossing). Scaling a texture by ``k`` scales the result by ``k``;
    use it where :func:`dominant_period` finds no period.

    Args:
        x: one image ``(1, 3, H, W)`` or ``(3, H, W)``, values in ``[-1, 1]``, at least 8 x 8 pixels.

    Returns:
        The radius in pixels, or ``nan`` for a constant image or one whose autocorrelation never
        falls below 0.5 within half its size.

    Raises:
        ValueError: if ``x`` is not a single 3-channel image of at least 8 x 8 pixels.
    """
    y = _luminance(_single_image(x, "x", 8))
    if float(y.std()) == 0.0:
        return float("nan")
    ac = _autocorrelation(y)
    c = (ac.shape[0] // 2, ac.shape[1] // 2)
    iy, ix = torch.meshgrid(torch.arange(ac.shape[0]) - c[0], torch.arange(ac.shape[1]) - c[1], indexing="ij")
    r = (iy.pow(2) + ix.pow(2)).double().sqrt().round().long().flatten()
    n = min(c) + 1
    keep = r < n
    profile = torch.bincount(r[keep], weights=ac.flatten()[keep], minlength=n) / torch.bincount(r[keep], minlength=n)
    below = torch.nonzero(profile < 0.5)
    if len(below) == 0:
        return float("nan")
    k = int(below[0])
    a, b = float(profile[k - 1]), float(profile[k])
    return (k - 1) + (a - 0.5) / (a - b)


def sharpness(x: torch.Tensor) -> float:
    """High-frequency energy: the variance of the Laplacian of the luminance.

    The luminance (BT.601 weights, values in [-1, 1]) is convolved with the 4-neighbour
    Laplacian ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]`` (valid positions only, no padding) and the
    population variance of the result is returned. Compare images at the same feature scale:
    blur lowers it, upsampling a low-resolution image lowers it by roughly the fourth power of
    the factor.

    Args:
        x: one image ``(1, 3, H, W)`` or ``(3, H, W)``, values in ``[-1, 1]``, at least 3 x 3 pixels.

    Returns:
        The variance as a Python float (>= 0; 0 for a constant or linear-ramp image).

    Raises:
        ValueError: if ``x`` is not a single 3-channel image of at least 3 x 3 pixels.
    """
    y = _luminance(_single_image(x, "x", 3))
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    lap = F.conv2d(y[None, None], k[None, None])
    return float(lap.var(correction=0))


BRIGHT_PERCENTILE = 98.0  # the source's luminance percentile above which a pixel counts as "bright"


def bright_density(x: torch.Tensor, source: torch.Tensor, percentile: float = BRIGHT_PERCENTILE) -> float:
    """The fraction of ``x``'s pixels brighter than the ``percentile``-th luminance percentile of ``source``.

    The source itself scores ``1 - percentile / 100`` (0.02 at the default, up to ties); a sample
    whose sparse bright features (stars, galaxies, highlights) are missing or dimmed scores lower,
    one with too many scores higher. Sizes may differ: only the distribution counts.

    Args:
        x: one image ``(1, 3, H, W)`` or ``(3, H, W)``, values in ``[-1, 1]``.
        source: the reference image, same layout, any size.
        percentile: in ``(0, 100)``.

    Returns:
        A fraction in ``[0, 1]``.

    Raises:
        ValueError: if either is not a single 3-channel image, or ``percentile`` is outside ``(0, 100)``.
    """
    if not 0.0 < percentile < 100.0:
        raise InvalidArgument("percentile", f"must be in (0, 100), got {percentile}", sentence=True)
    threshold = float(np.percentile(_luminance(_single_image(source, "source")).numpy(), percentile))
    return float((_luminance(_single_image(x, "x")) > threshold).to(torch.float64).mean())


# --------------------------------------------------------------------------- copy score

COPY_TOLERANCE = 0.05  # per-channel |difference| (in [-1, 1] units, ~6 of 255) counted as "equal"
_COPY_PATCH = 7  # side of the luminance patches that find candidate offsets (pixels)
_COPY_QUERIES = 400  # about this many query patches on a regular grid over the larger image
_COPY_MAX_OFFSETS = 32  # the most frequent candidate offsets that are checked pixel by pixel


def _candidate_offsets(out_y: torch.Tensor, src_y: torch.Tensor) -> list[tuple[int, int]]:
    """Offsets ``(dy, dx)`` (source position - output position) under which some query patch repeats.

    Queries are patches on a grid over the larger of the two luminance images, keys are all
    (stride-1) patches of the smaller one; a query whose nearest key (L2) differs by at most
    :data:`COPY_TOLERANCE` in mean absolute value gives a candidate. The most frequent
    :data:`_COPY_MAX_OFFSETS` candidates are returned.
    """
    p = _COPY_PATCH
    out_is_query = out_y.numel() >= src_y.numel()
    qimg, kimg = (out_y, src_y) if out_is_query else (src_y, out_y)
    qh, qw = qimg.shape
    step = max(1, int(np.sqrt((qh - p + 1) * (qw - p + 1) / _COPY_QUERIES)))
    qy, qx = torch.meshgrid(torch.arange(0, qh - p + 1, step), torch.arange(0, qw - p + 1, step), indexing="ij")
    qy, qx = qy.flatten(), qx.flatten()
    queries = _patches_at(qimg[None, None].float(), qy * (qw - p + 1) + qx, p)  # (Q, p*p)
    keys = F.unfold(kimg[None, None].float(), p)[0].T  # (Lk, p*p)
    kw = kimg.shape[1] - p + 1
    best_d = torch.full((len(queries),), float("inf"))
    best_i = torch.zeros(len(queries), dtype=torch.long)
    q2 = queries.pow(2).sum(1, keepdim=True)
    for start in range(0, len(keys), 65536):
        k = keys[start : start + 65536]
        d = q2 - 2 * queries @ k.T + k.pow(2).sum(1)[None]
        m, i = d.min(dim=1)
        better = m < best_d
        best_d[better], best_i[better] = m[better], i[better] + start
    close = (queries - keys[best_i]).abs().mean(dim=1) <= COPY_TOLERANCE
    ky, kx = best_i // kw, best_i % kw
    # offset = source position - output position
    dy = (ky - qy) if out_is_query else (qy - ky)
    dx = (kx - qx) if out_is_query else (qx - kx)
    pairs = torch.stack([dy[close], dx[close]], dim=1)
    if len(pairs) == 0:
        return []
    uniq, counts = torch.unique(pairs, dim=0, return_counts=True)
    order = counts.argsort(descending=True)[:_COPY_MAX_OFFSETS]
    return [(int(uniq[i][0]), int(uniq[i][1])) for i in order]


def _largest_equal_region(out: torch.Tensor, src: torch.Tensor, dy: int, dx: int) -> int:
    """Pixels in the largest 4-connected region where ``out[y, x] == src[y + dy, x + dx]`` within tolerance."""
    _, _, ho, wo = out.shape
    _, _, hs, ws = src.shape
    y0, y1 = max(0, -dy), min(ho, hs - dy)
    x0, x1 = max(0, -dx), min(wo, ws - dx)
    if y1 <= y0 or x1 <= x0:
        return 0
    diff = (out[0, :, y0:y1, x0:x1] - src[0, :, y0 + dy : y1 + dy, x0 + dx : x1 + dx]).abs().amax(dim=0)
    labels, n = ndimage.label((diff <= COPY_TOLERANCE).numpy())
    if n == 0:
        return 0
    return int(np.bincount(labels.ravel())[1:].max())


def copy_score(output: torch.Tensor, source: torch.Tensor) -> float:
    """Largest verbatim copy of the source in an output, as a fraction of the output's area.

    A pixel of ``output`` *equals* the source under the offset ``(dy, dx)`` when every channel
    of ``output[y, x]`` is within :data:`COPY_TOLERANCE` (0.05 in [-1, 1] units, about 6 of 255
    levels) of ``source[y + dy, x + dx]``. The score is the area of the largest 4-connected
    region of equal pixels under one constant offset, divided by ``H * W`` of the output. A crop
    of the source scores 1.0; a synthesis that rearranges small patches scores near 0.

    Offsets are not searched exhaustively: about 400 7 x 7 luminance patches on a grid over the
    larger image are matched (exact L2 nearest neighbour) against every patch of the smaller
    one; each match within the tolerance proposes its offset, and the 32 most frequent offsets
    are checked pixel by pixel (``scipy.ndimage.label``). A copied region therefore has to
    contain a grid point to be found: regions smaller than the grid step (about 1/20 of the
    larger image's side) can be missed, which only matters for scores below ~0.003. Flat areas
    (a uniform sky) equal the source under many offsets and count as copies. Cost: about
    ``400 x (smaller image's pixels) x 49`` multiply-adds, under a second at 1024 x 1024.

    Args:
        output: the generated image ``(1, 3, H, W)`` or ``(3, H, W)``, values in ``[-1, 1]``.
        source: the image it was made from, same layout; any size of at least 7 x 7 pixels.
            Both are compared at their own pixel scale (no resizing).

    Returns:
        The fraction in ``[0, 1]``.

    Raises:
        ValueError: if ``output`` or ``source`` is not a single 3-channel image of at least
            7 x 7 pixels.
    """
    output = _single_image(output, "output", _COPY_PATCH)
    source = _single_image(source, "source", _COPY_PATCH)
    offsets = _candidate_offsets(_luminance(output), _luminance(source))
    best = max((_largest_equal_region(output, source, dy, dx) for dy, dx in offsets), default=0)
    return best / (output.shape[-2] * output.shape[-1])


# --------------------------------------------------------------------------- copied regions

COPY_BLOCK = 32  # side of the output blocks searched for in the source (pixels)
COPY_MIN_NCC = 0.9  # normalised cross-correlation at which a block counts as found in the source
_COPY_MIN_STD = 0.02  # blocks flatter than this (luminance std, [-1, 1] units) are left out
_COPY_OFFSET_TOLERANCE = 2  # neighbouring blocks found at offsets this close (px) belong to one copy


def _window_norms(src: torch.Tensor, b: int) -> torch.Tensor:
    """sqrt(sum (S - mean)^2) over every b x b window of ``src`` (H, W), shape (H - b + 1, W - b + 1)."""
    s1 = F.avg_pool2d(src[None, None], b, stride=1)[0, 0] * (b * b)
    s2 = F.avg_pool2d(src[None, None].square(), b, stride=1)[0, 0] * (b * b)
    return (s2 - s1.square() / (b * b)).clamp_min(0).sqrt()


def _best_matches(blocks: torch.Tensor, src: torch.Tensor, norms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each zero-mean unit-norm block (n, b, b): the best normalised cross-correlation with a
    window of ``src`` (H, W) and that window's top-left (n, 2). FFT correlation, in chunks."""
    h, w = src.shape
    b = blocks.shape[-1]
    vh, vw = h - b + 1, w - b + 1
    spec = torch.fft.rfft2(src)
    best, where = [], []
    for chunk in blocks.split(max(1, 2**24 // (h * w))):
        corr = torch.fft.irfft2(spec[None] * torch.fft.rfft2(chunk, s=(h, w)).conj(), s=(h, w))[:, :vh, :vw]
        ncc = (corr / norms.clamp_min(1e-6)).reshape(len(chunk), -1)
        m, i = ncc.max(dim=1)
        best.append(m)
        where.append(torch.stack([i // vw, i % vw], dim=1))
    return torch.cat(best), torch.cat(where)


def copied_region_fraction(output: torch.Tensor, source: torch.Tensor, *, min_ncc: float = COPY_MIN_NCC) -> float:
    """Share of an output that is a copied region of the source, up to brightness and contrast.

    The output's luminance is cut into a grid of 32 x 32 blocks; blocks flatter than a luminance
    standard deviation of 0.02 are left out. Each block, mean removed and normalised, is searched
    in every 32 x 32 window of the source's luminance by normalised cross-correlation (FFT), which
    is unchanged by any brightness offset and contrast gain. A block is *found* when its best
    correlation is at least ``min_ncc``; it is *copied* when it is found and at least one of its
    four grid neighbours is found at the same offset (source position - output position, within
    2 px): the two come from one region of the source at least 64 x 32 px, translated. Patch
    synthesis reuses regions smaller than that all the time; a crop, a shifted copy or a mosaic of
    crops of the source are copied almost everywhere.

    Args:
        output: the generated image ``(1, 3, H, W)`` or ``(3, H, W)`` in ``[-1, 1]``, at least 64 px
            on each side (two blocks).
        source: the image it was made from, same layout, at least 32 x 32 pixels; compared at its
            own pixel scale (no resizing).
        min_ncc: correlation in (0, 1] from which a block counts as found.

    Returns:
        The fraction of the textured blocks that are copied, in ``[0, 1]`` (0 when no block is
        textured).

    Raises:
        ValueError: ``output`` or ``source`` not a single 3-channel image of the minimum size, or
            ``min_ncc`` outside (0, 1].
    """
    b = COPY_BLOCK
    out_y = _luminance(_single_image(output, "output", 2 * b)).float()
    src_y = _luminance(_single_image(source, "source", b)).float()
    if not 0 < min_ncc <= 1:
        raise InvalidArgument("min_ncc", f"must be in (0, 1], got {min_ncc}", sentence=True)
    gh, gw = out_y.shape[0] // b, out_y.shape[1] // b
    blocks = out_y[: gh * b, : gw * b].reshape(gh, b, gw, b).permute(0, 2, 1, 3).reshape(gh * gw, b, b)
    blocks = blocks - blocks.mean(dim=(1, 2), keepdim=True)
    std = blocks.square().mean(dim=(1, 2)).sqrt()
    textured = std >= _COPY_MIN_STD
    if not bool(textured.any()):
        return 0.0
    unit = blocks / blocks.square().sum(dim=(1, 2), keepdim=True).sqrt().clamp_min(1e-12)
    ncc = torch.full((gh * gw,), -1.0)
    offset = torch.zeros(gh * gw, 2, dtype=torch.long)
    m, where = _best_matches(unit[textured], src_y, _window_norms(src_y, b))
    ncc[textured], offset[textured] = m, where
    grid_pos = torch.stack(torch.meshgrid(torch.arange(gh) * b, torch.arange(gw) * b, indexing="ij"), dim=-1)
    offset = (offset - grid_pos.reshape(-1, 2)).reshape(gh, gw, 2)
    found = ((ncc >= min_ncc) & textured).reshape(gh, gw)
    copied = torch.zeros(gh, gw, dtype=torch.bool)
    for dy, dx in ((0, 1), (1, 0)):  # each pair of grid neighbours once
        a, c = found[: gh - dy, : gw - dx], found[dy:, dx:]
        same = (offset[: gh - dy, : gw - dx] - offset[dy:, dx:]).abs().amax(dim=-1) <= _COPY_OFFSET_TOLERANCE
        pair = a & c & same
        copied[: gh - dy, : gw - dx] |= pair
        copied[dy:, dx:] |= pair
    return float(copied.sum()) / float(textured.sum())


# --------------------------------------------------------------------------- lattice along the axes

_AXIS_BAND = 2  # rows (columns) either side of the axis whose autocorrelation maximum is read


def _axis_profiles(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Autocorrelation of the luminance along +x and +y from lag 0 (max over a +-2 px band)."""
    ac = _autocorrelation(_luminance(_single_image(x, "x", 16)))
    cy, cx = ac.shape[0] // 2, ac.shape[1] // 2
    k = _AXIS_BAND
    along_x = ac[cy - k : cy + k + 1, cx:].amax(dim=0)
    along_y = ac[cy:, cx - k : cx + k + 1].amax(dim=1)
    return along_x, along_y


def _first_peak(profile: torch.Tensor) -> tuple[float, float]:
    """(lag, height) of the first local maximum past the central lobe that reaches 0.1 and half of the
    strongest such maximum; (nan, nan) when there is none. The lag is refined by a parabola."""
    below = torch.nonzero(profile < PERIOD_MIN_PEAK)
    if len(below) == 0:
        return float("nan"), float("nan")
    start = int(below[0])
    inner = profile[1:-1]
    is_max = (inner > profile[:-2]) & (inner >= profile[2:])
    is_max[: max(0, start - 1)] = False
    if not bool(is_max.any()):
        return float("nan"), float("nan")
    floor = max(PERIOD_MIN_PEAK, _PERIOD_PEAK_RELATIVE * float(inner[is_max].max()))
    peaks = torch.nonzero(is_max & (inner >= floor))
    if len(peaks) == 0:
        return float("nan"), float("nan")
    i = int(peaks[0]) + 1
    a, c, e = float(profile[i - 1]), float(profile[i]), float(profile[i + 1])
    shift = 0.5 * (a - e) / (a - 2 * c + e) if a - 2 * c + e != 0 else 0.0
    return i + shift, c


def axis_periods(x: torch.Tensor) -> tuple[tuple[float, float], tuple[float, float]]:
    """A lattice's period along x and along y, with the autocorrelation's height there.

    The luminance's normalised linear autocorrelation (as in :func:`dominant_period`) is read along
    the horizontal and the vertical lag axes (the maximum over a band of +-2 px, so a slightly
    rotated lattice keeps its peak); on each, the period is the first local maximum past the
    central lobe that reaches 0.1 and half of that axis's strongest maximum (sub-pixel by a
    parabola). A running-bond brick wall gives the brick length along x and two courses along y.

    Args:
        x: one image ``(1, 3, H, W)`` or ``(3, H, W)`` in ``[-1, 1]``, at least 16 x 16 pixels.

    Returns:
        ``((period_x, height_x), (period_y, height_y))``: periods in pixels, heights in [-1, 1];
        ``nan`` for an axis without a period (gravel, grass, noise).

    Raises:
        ValueError: ``x`` not a single 3-channel image of at least 16 x 16 pixels.
    """
    along_x, along_y = _axis_profiles(x)
    return _first_peak(along_x), _first_peak(along_y)


def lattice_ratios(output: torch.Tensor, source: torch.Tensor) -> tuple[float, float, float]:
    """How well an output keeps its source's lattice: period ratios along x and y, and peak ratio.

    The periods are :func:`axis_periods` of each image. The peak ratio is, per axis with a source
    period, the output's highest autocorrelation within 8 % of the source's period divided by the
    source's height there; the smaller of the two axes is returned. A shuffled grid of blocks
    smaller than the period keeps the pixels but loses the peak.

    Args:
        output, source: one image each, ``(1, 3, H, W)`` or ``(3, H, W)`` in ``[-1, 1]``, at least 16 x 16
            pixels; the output's half-size must exceed the source's period to measure it.

    Returns:
        ``(period_x ratio, period_y ratio, peak ratio)``; ``nan`` where the source has no period on
        that axis (all ``nan`` for a stochastic texture), a period ratio ``nan`` where the output has
        none.

    Raises:
        ValueError: as :func:`axis_periods`.
    """
    out_profiles, src_profiles = _axis_profiles(output), _axis_profiles(source)
    ratios, peaks = [], []
    for out_p, src_p in zip(out_profiles, src_profiles):
        period, height = _first_peak(src_p)
        if math.isnan(period):
            ratios.append(float("nan"))
            continue
        ratios.append(_first_peak(out_p)[0] / period)
        lo, hi = max(1, math.floor(0.92 * period)), min(len(out_p) - 1, math.ceil(1.08 * period))
        near = float(out_p[lo : hi + 1].max()) if hi >= lo else float("nan")
        peaks.append(near / height)
    peak = min(peaks) if peaks else float("nan")
    return ratios[0], ratios[1], peak


# --------------------------------------------------------------------------- 2-D lattice and bond

_LATTICE_MIN_RADIUS = 6  # px: autocorrelation maxima nearer the origin belong to the central lobe
_LATTICE_PEAK_WINDOW = 9  # px: side of the window in which a lattice peak is a local maximum
_LATTICE_CANDIDATES = 6  # strongest peaks among which lattice_vectors picks its pair
_LATTICE_TOLERANCE = 0.08  # an output's peak counts within this fraction of the vector's length (at least 2 px)


def _edge_maps(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """|central difference| of the luminance along y and along x, (H - 2, W - 2) each: the horizontal
    and the vertical edges (a brick wall's bed joints and its head joints) apart."""
    y = _luminance(x)
    along_y = (y[2:, 1:-1] - y[:-2, 1:-1]).abs()
    along_x = (y[1:-1, 2:] - y[1:-1, :-2]).abs()
    return along_y, along_x


def _lattice_peaks(ac: torch.Tensor, n: int = 2) -> list[tuple[float, int, int]]:
    """Up to ``n`` lattice peaks (height, dy, dx) of an origin-centred autocorrelation: local maxima
    (9 x 9 px) past its central lobe (6 px), in the half-plane dy > 0 (or dy = 0, dx > 0), within a
    quarter of the image's smaller side (far lags overlap little and are noisy), at least
    :data:`PERIOD_MIN_PEAK` / 2 high. Ranked by height x (1 - r / (2 r_max)), r the lag's length,
    so that of equally strong peaks (a lattice's multiples) the shortest comes first; no two
    within 17 degrees of one direction."""
    h, w = ac.shape
    cy, cx = h // 2, w // 2
    k = _LATTICE_PEAK_WINDOW
    local_max = ac == F.max_pool2d(ac[None, None], k, 1, k // 2)[0, 0]
    yy, xx = torch.meshgrid(torch.arange(h) - cy, torch.arange(w) - cx, indexing="ij")
    r = (yy.square() + xx.square()).double().sqrt()
    r_max = min(cy, cx) / 2
    half = (yy > 0) | ((yy == 0) & (xx > 0))
    ok = local_max & half & (r > _LATTICE_MIN_RADIUS) & (r <= r_max) & (ac >= PERIOD_MIN_PEAK / 2)
    ys, xs = torch.nonzero(ok, as_tuple=True)
    score = ac[ys, xs] * (1 - r[ys, xs] / (2 * r_max))
    peaks: list[tuple[float, int, int]] = []
    for i in score.argsort(descending=True).tolist():
        v, dy, dx = float(ac[ys[i], xs[i]]), int(ys[i]) - cy, int(xs[i]) - cx
        if all(abs(dy * ox - dx * oy) > 0.3 * math.hypot(dy, dx) * math.hypot(oy, ox) for _, oy, ox in peaks):
            peaks.append((v, dy, dx))
        if len(peaks) == n:
            break
    return peaks


def lattice_vectors(x: torch.Tensor) -> list[tuple[float, float, float]]:
    """A lattice's two primitive translation vectors, from the luminance's 2-D autocorrelation.

    Of the six strongest local maxima (9 x 9 px windows) of the normalised autocorrelation (as in
    :func:`dominant_period`) beyond 6 px from the origin, in different directions (17 degrees
    apart), the pair whose lattice points n1 a1 + n2 a2 carry the highest mean autocorrelation
    (:func:`_lattice_score`). A running-bond brick wall gives the two diagonal vectors to the next
    column's bricks (one column across, half a brick along): the bond's half-period offset.

    Args:
        x: one image ``(1, 3, H, W)`` or ``(3, H, W)`` in ``[-1, 1]``, at least 16 x 16 pixels.

    Returns:
        Up to two ``(dy, dx, height)``: the vector in pixels (dy > 0, or dy = 0 and dx > 0) and the
        autocorrelation there (of 1 at lag 0); empty for a flat image, fewer for stripes or noise.

    Raises:
        ValueError: ``x`` not a single 3-channel image of at least 16 x 16 pixels.
    """
    along_y, along_x = _edge_maps(_single_image(x, "x", 16))
    if float(along_y.std()) == 0.0 or float(along_x.std()) == 0.0:
        return []
    ac = torch.minimum(_autocorrelation(along_y), _autocorrelation(along_x))
    peaks = _lattice_peaks(ac, _LATTICE_CANDIDATES)
    if len(peaks) < 2:
        return [(float(dy), float(dx), v) for v, dy, dx in peaks]
    best = max(
        ((a, b) for i, a in enumerate(peaks) for b in peaks[i + 1 :]),
        key=lambda pair: _lattice_score(ac, pair[0][1:], pair[1][1:]),
    )
    return [(float(dy), float(dx), v) for v, dy, dx in best]


def _lattice_score(ac: torch.Tensor, a: tuple[int, int], b: tuple[int, int]) -> float:
    """Mean autocorrelation at the lattice points n1 a + n2 b (|n| <= 2, not 0) within reach (the
    highest of 3 x 3 px there), less 0.02 per cell area in units of the smallest possible: a pair of
    true vectors sees peaks at all of them; a ridge (a running bond's head joints) does not."""
    cy, cx = ac.shape[0] // 2, ac.shape[1] // 2
    area = abs(a[0] * b[1] - a[1] * b[0])
    if area == 0:
        return -math.inf
    values = []
    for n1 in range(-2, 3):
        for n2 in range(-2, 3):
            dy, dx = n1 * a[0] + n2 * b[0], n1 * a[1] + n2 * b[1]
            if (n1, n2) != (0, 0) and abs(dy) < cy - 1 and abs(dx) < cx - 1:
                values.append(float(ac[cy + dy - 1 : cy + dy + 2, cx + dx - 1 : cx + dx + 2].max()))
    smallest = math.hypot(*a) * math.hypot(*b) * 0.5
    return sum(values) / max(1, len(values)) - 0.02 * area / max(1.0, smallest)


def bond_ratio(output: torch.Tensor, source: torch.Tensor) -> float:
    """How well an output keeps its source's 2-D lattice, bond included: the least peak ratio.

    The luminance's horizontal and vertical edges are taken apart (:func:`_edge_maps`: a brick
    wall's bed joints and head joints) and each map's 2-D autocorrelation is read at its source's
    two lattice vectors (:func:`_lattice_peaks` of the source's map: for a running bond, the
    next column's joint half a brick along and the joint two columns across). The output's
    highest value within 8 % of the vector's length (at least 2 px) is divided by the source's
    height there; the least of the (up to four) ratios is returned. Columns that meander, joints
    that vanish (bricks merged into strips) or are placed out of bond lose their peaks, although
    the period along each axis (:func:`lattice_ratios`) may stay right.

    Args:
        output, source: one image each, ``(1, 3, H, W)`` or ``(3, H, W)`` in ``[-1, 1]``, at least
            16 x 16 pixels; the output's half-size must exceed the source's lattice vectors.

    Returns:
        The least ratio (about 1 for a good output, 1.0 for the source itself); ``nan`` when the
        source has no lattice peak.

    Raises:
        ValueError: ``output`` or ``source`` not a single 3-channel image of at least 16 x 16 pixels.
    """
    out_maps = _edge_maps(_single_image(output, "output", 16))
    src_maps = _edge_maps(_single_image(source, "source", 16))
    ratios = []
    for out_map, src_map in zip(out_maps, src_maps):
        peaks = _lattice_peaks(_autocorrelation(src_map))
        if not peaks:
            continue
        ac = _autocorrelation(out_map)
        cy, cx = ac.shape[0] // 2, ac.shape[1] // 2
        for height, dy, dx in peaks:
            r = max(2, round(_LATTICE_TOLERANCE * math.hypot(dy, dx)))
            y0, y1, x0, x1 = cy + dy - r, cy + dy + r + 1, cx + dx - r, cx + dx + r + 1
            if y0 < 0 or x0 < 0 or y1 > ac.shape[0] or x1 > ac.shape[1]:
                ratios.append(0.0)  # the output is too small to show the source's lattice
                continue
            ratios.append(float(ac[y0:y1, x0:x1].max()) / height)
    return min(ratios) if ratios else float("nan")


def copied_fraction(output: torch.Tensor, source: torch.Tensor, min_region: int = 256) -> float:
    """Share of an output covered by textured regions that equal the source under some offset.

    Where :func:`copy_score` measures the *largest* verbatim region (one offset), this sums every
    region of at least ``min_region`` pixels over the candidate offsets (the
    :data:`_COPY_MAX_OFFSETS` most frequent, as :func:`copy_score` finds them), so that a source
    pasted many times (a tiling, shifted copies side by side) scores its whole area. Pixels equal
    under an offset only where the source is textured (7 x 7 luminance standard deviation above
    :data:`COPY_FLAT_STD`): flat sky equals the source under many offsets and is not a copy.

    Args:
        output: the generated image ``(1, 3, H, W)`` or ``(3, H, W)``, values in ``[-1, 1]``.
        source: the image it was made from, same layout, at least 7 x 7 pixels; compared at its
            own pixel scale (no resizing).
        min_region: smallest 4-connected region counted, in output pixels.

    Returns:
        The fraction in ``[0, 1]`` of the output's pixels.

    Raises:
        ValueError: if ``output`` or ``source`` is not a single 3-channel image of at least 7 x 7 px.
    """
    output = _single_image(output, "output", _COPY_PATCH)
    source = _single_image(source, "source", _COPY_PATCH)
    src_y = _luminance(source)
    mean = F.avg_pool2d(src_y[None, None], _COPY_PATCH, 1, _COPY_PATCH // 2, count_include_pad=False)[0, 0]
    sq = F.avg_pool2d(src_y[None, None] ** 2, _COPY_PATCH, 1, _COPY_PATCH // 2, count_include_pad=False)[0, 0]
    textured = (sq - mean**2).clamp_min(0).sqrt() > COPY_FLAT_STD
    covered = np.zeros(output.shape[-2:], dtype=bool)
    _, _, ho, wo = output.shape
    _, _, hs, ws = source.shape
    for dy, dx in _candidate_offsets(_luminance(output), src_y):
        y0, y1, x0, x1 = max(0, -dy), min(ho, hs - dy), max(0, -dx), min(wo, ws - dx)
        if y1 <= y0 or x1 <= x0:
            continue
        diff = (output[0, :, y0:y1, x0:x1] - source[0, :, y0 + dy : y1 + dy, x0 + dx : x1 + dx]).abs().amax(dim=0)
        equal = ((diff <= COPY_TOLERANCE) & textured[y0 + dy : y1 + dy, x0 + dx : x1 + dx]).numpy()
        labels, n = ndimage.label(equal)
        if n == 0:
            continue
        sizes = np.bincount(labels.ravel())
        keep = sizes >= min_region
        keep[0] = False
        covered[y0:y1, x0:x1] |= keep[labels]
    return float(covered.mean())


COPY_FLAT_STD = 0.02  # 7 x 7 luminance std ([-1, 1] units) at or below which a source pixel is flat (copied_fraction)


# --------------------------------------------------------------------------- plate layout

_PROFILE_HEIGHT = 256  # rows the row profiles are resampled to (antialiased) before they are compared
_HORIZON_SMOOTH = 0.01  # Gaussian sigma of the row profile, as a fraction of the height
_HORIZON_MARGIN = 0.04  # edges this close to the top or bottom (a painting's frame, a vignette) are not horizons


def _row_profile(x: torch.Tensor, rows: int = _PROFILE_HEIGHT) -> torch.Tensor:
    """(3, rows) float64: the mean colour of each row (mean over columns), resampled to ``rows``."""
    profile = x[0].to(torch.float64).mean(dim=2)  # (3, H)
    return F.interpolate(profile[None], size=rows, mode="linear", align_corners=False)[0]


def horizon_edge(x: torch.Tensor, sign: int = 0) -> tuple[float, int]:
    """The strongest horizontal edge: its relative height (0 = top row, 1 = bottom row) and sign.

    The luminance's row-mean profile (mean over columns, resampled to 256 rows, smoothed by a
    Gaussian of sigma 1 % of the height) is differentiated along the height; the horizon is the
    row of the largest absolute difference (between rows i and i + 1: at ``(i + 1) / 256``; rows
    within 4 % of the top or bottom, where a painting's frame or a vignette sits, do not count), its
    sign -1 where the image gets darker below it (a bright sky over dark ground), +1 brighter.
    With ``sign`` = -1 or +1 only edges of that sign count: a plate's horizon is compared with the
    photo's of the same polarity (a dark band has two edges of nearly equal strength, opposite signs).
    A horizontal band (sky above, ground or water below) gives its boundary; a texture without
    layout gives some weak, arbitrary row.

    Args:
        x: one image ``(1, 3, H, W)`` or ``(3, H, W)``, values in ``[-1, 1]``, at least 3 x 3 px.
        sign: 0 (any edge), -1 or +1.

    Returns:
        (height as a fraction in ``(0, 1)``, sign of the edge: -1 or +1).

    Raises:
        ValueError: if ``x`` is not a single 3-channel image of at least 3 x 3 pixels, or ``sign``
            is not -1, 0 or 1.
    """
    if sign not in (-1, 0, 1):
        raise InvalidArgument("sign", f"must be -1, 0 or 1, got {sign!r}", sentence=True)
    x = _single_image(x, "x", 3)
    w = torch.tensor(_LUMA, dtype=torch.float64)[:, None]
    y = (_row_profile(x) * w).sum(0)
    sigma = _HORIZON_SMOOTH * _PROFILE_HEIGHT
    t = torch.arange(-3 * math.ceil(sigma), 3 * math.ceil(sigma) + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    y = F.conv1d(F.pad(y[None, None], (len(t) // 2,) * 2, mode="replicate"), (kernel / kernel.sum())[None, None])[0, 0]
    d = y.diff()
    margin = round(_HORIZON_MARGIN * _PROFILE_HEIGHT)
    d[:margin], d[-margin:] = 0, 0
    i = int(d.abs().argmax() if sign == 0 else (d * sign).argmax())
    return (i + 1) / _PROFILE_HEIGHT, 1 if d[i] >= 0 else -1


def row_profile_correlation(output: torch.Tensor, reference: torch.Tensor) -> float:
    """Pearson correlation of two images' row-mean colour profiles along the height.

    Each image's mean colour per row (mean over all columns: a (3, H) profile) is resampled to 256
    rows, so images of any size compare as if fitted to the same height; each channel's profile is
    centred on its own mean, and the three centred profiles are correlated as one 768-vector. 1.0:
    the same vertical layout of colours (sky on top, horizon, ground), whatever happens along the
    width; a layout-free texture or a flipped image scores near 0 or below.

    Args:
        output, reference: single images ``(1, 3, H, W)`` or ``(3, H, W)`` in ``[-1, 1]``.

    Returns:
        The correlation in ``[-1, 1]`` (0 when either profile is constant).

    Raises:
        ValueError: if either is not a single 3-channel image.
    """
    a = _row_profile(_single_image(output, "output"))
    b = _row_profile(_single_image(reference, "reference"))
    a, b = (a - a.mean(dim=1, keepdim=True)).flatten(), (b - b.mean(dim=1, keepdim=True)).flatten()
    denom = float(a.norm() * b.norm())
    return float(a @ b) / denom if denom > 0 else 0.0


# --------------------------------------------------------------------------- SIFID

_SIFID_MIN_SIZE = 15  # smallest side giving a 2x2 feature map


class _BasicConv2d(nn.Module):
    """Inception-v3 conv unit: conv (no bias) + BatchNorm(eps=0.001) + ReLU."""

    def __init__(self, cin: int, cout: int, **conv_kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **conv_kwargs)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class _InceptionBlock0(nn.Module):
    """First block of pytorch-fid's InceptionV3: 64-channel features at 1/4 resolution (used by SIFID)."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = _BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = _BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = _BasicConv2d(32, 64, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        return F.max_pool2d(x, kernel_size=3, stride=2)


def _load_inception_block0(weights_path: str | os.PathLike) -> _InceptionBlock0:
    """Build :class:`_InceptionBlock0` from a safetensors file (extra keys are ignored)."""
    from safetensors.torch import load_file  # never torch.load: no pickle

    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"SIFID Inception-v3 weights file not found: {path}")
    tensors = load_file(str(path), device="cpu")
    model = _InceptionBlock0()
    wanted = model.state_dict()
    missing = [k for k in wanted if k not in tensors and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"{path} lacks Inception-v3 weights: {', '.join(missing)}")
    state = {k: tensors[k].to(torch.float32) if k in tensors else v for k, v in wanted.items()}
    model.load_state_dict(state)
    return model.eval()


def _feature_stats(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (64,) and covariance (64, 64), float64, of the features of ``x`` over spatial positions."""
    with torch.no_grad():
        feats = model(x)
    feats = feats[0].flatten(1).T.to(torch.float64)  # (positions, 64); >= 4 for 15x15 inputs
    return feats.mean(dim=0), torch.cov(feats.T)


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix by eigen-decomposition."""
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def _frechet_distance(mu1: torch.Tensor, s1: torch.Tensor, mu2: torch.Tensor, s2: torch.Tensor) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr(sqrt(sqrt(S1) S2 sqrt(S1)))."""
    r1 = _sqrtm_psd(s1)
    inner = r1 @ s2 @ r1
    tr_sqrt = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    d = (mu1 - mu2).pow(2).sum() + s1.trace() + s2.trace() - 2 * tr_sqrt
    return max(float(d), 0.0)


def sifid(real: torch.Tensor, fake: torch.Tensor, weights_path: str | os.PathLike | None) -> float:
    """Single-Image Fréchet Inception Distance (Shaham et al., SinGAN, ICCV 2019, sec. 3).

    Both images go through the first block of pytorch-fid's Inception-v3 (``Conv2d_1a_3x3``,
    ``Conv2d_2a_3x3``, ``Conv2d_2b_3x3``, then 3x3 max-pool with stride 2), giving a
    64-channel map; every spatial position is one 64-d sample. The result is the
    Fréchet distance between the Gaussians (mean, unbiased covariance) fitted to
    the two sets. Inputs in ``[-1, 1]`` are fed as they are, which is what pytorch-fid
    feeds after normalising its ``[0, 1]`` input; no resizing is done.

    The weights are read with ``safetensors.torch.load_file`` only (no pickle, no
    download). The file must hold, for each ``B`` in ``Conv2d_1a_3x3``,
    ``Conv2d_2a_3x3``, ``Conv2d_2b_3x3``, the tensors ``B.conv.weight``,
    ``B.bn.weight``, ``B.bn.bias``, ``B.bn.running_mean`` and ``B.bn.running_var``
    (the key names of pytorch-fid's ``FIDInceptionA`` state dict without a prefix,
    i.e. of ``pt_inception-2015-12-05``); other keys are ignored.

    Args:
        real, fake: images ``(1, 3, H, W)`` or ``(3, H, W)``, values in ``[-1, 1]``, at
            least 15x15 pixels; sizes may differ. Computed on the CPU.
        weights_path: path of the ``.safetensors`` weights file, or ``None``.

    Returns:
        The SIFID as a Python float (>= 0; 0 for identical images).

    Raises:
        MetricUnavailable: if ``weights_path`` is ``None``.
        FileNotFoundError: if ``weights_path`` does not name an existing file.
        ValueError: if the file lacks one of the keys above, or if ``real`` / ``fake`` is
            not a single 3-channel image of at least 15x15 pixels.
    """
    if weights_path is None:
        raise MetricUnavailable(
            "SIFID needs Inception-v3 weights; pass a local weights file (no download is attempted)"
        )
    real = _single_image(real, "real", _SIFID_MIN_SIZE)
    fake = _single_image(fake, "fake", _SIFID_MIN_SIZE)
    model = _load_inception_block0(weights_path)
    mu1, s1 = _feature_stats(model, real)
    mu2, s2 = _feature_stats(model, fake)
    return _frechet_distance(mu1, s1, mu2, s2)


SEAM_BAND = 6
"""Pixels either side of a region's border whose own lines are the seam measure's reference."""


def seam_ratio(x: torch.Tensor, mask: torch.Tensor, band: int = SEAM_BAND) -> float:
    """How visible the border of the region ``mask`` is in ``x``: the mean absolute luminance step
    between horizontal and vertical neighbours of which exactly one lies in the region (the
    seam), over the mean step between the neighbours that lie on one side, in the same direction,
    within ``band`` px of a seam pair (the parallel lines beside it: the image's own interior
    there). About 1 when the border is as invisible as the lines beside it; a patch pasted in
    without continuing its surroundings scores well above (1.5-4 on photos and textures).

    Args:
        x: ``(1, 3, H, W)`` or ``(3, H, W)`` in ``[-1, 1]``.
        mask: ``(H, W)``, ``(1, H, W)`` or ``(1, 1, H, W)``; the region is where it is over 0.5.
        band: the reference lines' distance from the seam, in pixels (>= 1).

    Returns:
        The ratio (>= 0); ``nan`` when the region has no border inside the image.

    Raises:
        ValueError: ``x`` not one 3-channel image, ``mask`` not of its size, or ``band`` < 1.
    """
    y = _luminance(_single_image(x, "x", 2)).float()
    m = mask.reshape(mask.shape[-2:]) if mask.numel() == mask.shape[-2] * mask.shape[-1] else None
    if m is None or tuple(m.shape) != tuple(y.shape):
        raise ValueError(f"mask must have the image's {tuple(y.shape)} pixels, got {tuple(mask.shape)}")
    if band < 1:
        raise ValueError(f"band must be >= 1, got {band}")
    inside = m.float() > 0.5
    seam_steps, near_steps = [], []
    for dim in (1, 0):  # horizontal pairs (along x), then vertical pairs
        step = (y.narrow(dim, 1, y.shape[dim] - 1) - y.narrow(dim, 0, y.shape[dim] - 1)).abs()
        seam = inside.narrow(dim, 1, inside.shape[dim] - 1) != inside.narrow(dim, 0, inside.shape[dim] - 1)
        kernel = (1, 2 * band + 1) if dim == 1 else (2 * band + 1, 1)
        padding = (0, band) if dim == 1 else (band, 0)
        near = F.max_pool2d(seam.float()[None, None], kernel, stride=1, padding=padding)[0, 0] > 0
        seam_steps.append(step[seam])
        near_steps.append(step[near & ~seam])
    seams, nears = torch.cat(seam_steps), torch.cat(near_steps)
    if seams.numel() == 0 or nears.numel() == 0:
        return float("nan")
    return float(seams.mean() / nears.mean().clamp_min(1e-8))
