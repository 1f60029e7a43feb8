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
* :func:`sifid` -- Single-Image FID (SinGAN sec. 3): Fréchet distance between the
  Gaussians fitted to the 64-channel Inception-v3 features (before the second
  max-pool) of the real and the fake image. It needs Inception-v3 weights, which
  are never downloaded: without a local ``.safetensors`` file it raises
  :class:`MetricUnavailable`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MetricUnavailable", "patch_swd", "pixel_diversity", "sifid"]


class MetricUnavailable(RuntimeError):
    """A metric cannot be computed here because a required resource is missing."""


# --------------------------------------------------------------------------- helpers


def _single_image(x: torch.Tensor, name: str, min_size: int = 1) -> torch.Tensor:
    """Check ``x`` is one RGB image, ``(1, 3, H, W)`` or ``(3, H, W)``; return it as CPU float32 ``(1, 3, H, W)``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (1, 3, H, W) or (3, H, W), got {tuple(x.shape)}")
    if min(x.shape[-2:]) < min_size:
        raise ValueError(f"{name} is {x.shape[-2]}x{x.shape[-1]} pixels, smaller than {min_size}x{min_size}")
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
            raise ValueError(f"{arg} must be >= 1, got {value}")
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
        raise ValueError(f"samples must have shape (S, 3, H, W), got {shape}")
    if samples.shape[0] < 2:
        raise ValueError(f"samples needs at least 2 images to measure diversity, got {samples.shape[0]}")
    samples = samples.detach().to(device="cpu", dtype=torch.float32)
    real = _single_image(real, "real")
    if real.shape[-2:] != samples.shape[-2:]:
        real = F.interpolate(real, size=samples.shape[-2:], mode="bicubic", antialias=True, align_corners=False)
    real_std = real.std(correction=0)
    if real_std == 0:
        raise ValueError("real is constant (std 0); diversity is undefined")
    return float(samples.std(dim=0, correction=0).mean() / real_std)


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
