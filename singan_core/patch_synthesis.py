"""Patch nearest-neighbour synthesis: GPNN (Granot, Feinstein, Shocher, Bagon, Irani, "Drop the GAN:
In Defense of Patches Nearest Neighbors as Single Image Generative Models", CVPR 2022).

No training. Coarse to fine over a pyramid (ratio r = 0.75): the current output is upsampled to the
next level; each of its p x p patches (a *query*) is replaced by the *value* (the sharp source patch)
of its nearest *key* (a source patch at that level: blurred by the same down-then-up resize as the
query on a level's first iteration, sharp afterwards); overlapping value patches are folded back by
averaging. GPNN's normalised distance ``D(q, k) / (alpha + min_q D(q, k))`` (paper sec. 3.2) favours
keys that no query is close to yet (*completeness*).

Two uses of one engine (:func:`synthesize`):

* *instant*: from a first guess made of the source's patches plus noise (GPNN's random generation),
  any output size at the source's pixel scale, optionally ``circular`` (wrap-around patches:
  seamless tiles). The first guess follows the source (``coarsest_start``): GPNN's resized coarsest
  level for a weakly periodic source, a mosaic of random tiles for a stochastic one (so that at the
  source's own size the search does not fall back into the source), and for a lattice (an
  autocorrelation peak along x or y, :func:`singan_core.metrics.axis_periods`) a mosaic of tiles
  each taken a whole number of periods away from its place, started at the level where the period
  spans a few patches: a coarse layout from the source's own lattice, in the spirit of image
  quilting (Efros & Freeman, SIGGRAPH 2001).
* *lift*: from a given small image (e.g. a SinGAN sample) up to the output size, the detail coming
  from the source's own patches.

At the finest level the last iteration queries every pixel and weights each value pixel by its
distance from its patch's centre: a pixel comes from the patch that fits around it, not from the
mean of the overlapping votes, which washes detail out.

Distances are mean squared differences per patch element on [-1, 1] values, computed on
PCA-reduced patch features (``feature_dims``, a basis fitted per level on a sample of the source's
patches; projecting is a convolution, so patches are never unfolded; large key sets in float16).
Search: exact with alpha (tiled ``addmm``) where queries x keys is small (the coarse levels, where
the layout is decided), vectorised PatchMatch (Barnes et al., SIGGRAPH 2009) without alpha above,
warm-started from the previous iteration or level. Deterministic for a seed on the CPU (one CPU
``torch.Generator``); on CUDA ``index_add_`` sums in any order. The measurements behind the
defaults are in docs/benchmarks.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .cancel import cancel_point as _cancel_point
from .cancel import interruptible
from .errors import InvalidArgument
from .membrane import membrane_fill
from .metrics import axis_periods
from .pyramid import Size

__all__ = ["PatchSynthesisConfig", "inpaint", "interruptible", "level_sizes", "synthesize"]


@dataclass(frozen=True)
class PatchSynthesisConfig:
    """GPNN's settings plus the search back-end's. Defaults from the paper and its code unless noted."""

    patch_size: int = 7  # p: patches are p x p pixels (GPNN: 7)
    ratio: float = 0.75  # size of a level relative to the next finer one (GPNN: 0.75)
    coarsest_size: int = 40  # smaller side of the source's coarsest level in pixels, instant mode (GPNN: 14
    # on 256 px images; ours keeps a few brick courses there)
    iterations: int = 5  # NN + fold iterations per level where exact search is used (GPNN: 10)
    coarsest_iterations: int = 1  # iterations at the coarsest level of instant generation (GPNN: 1; more
    # pull the noisy guess back to the source's own layout)
    iterations_approx: int = 3  # iterations per PatchMatch level (ours)
    alpha: float = 2e-3  # completeness weight in D / (alpha + min_q D) on the exact levels, D = per-element
    # MSE on [-1, 1]; smaller = stronger push to use every source patch (GPNN: 5e-3 in its own units)
    use_alpha: bool = True  # False: plain nearest neighbour (GPNN's alpha = infinity)
    noise_sigma: float = 1.0  # std of the Gaussian noise added to the first guess (instant), [-1, 1] units
    # (GPNN: 0.75)
    coarsest_start: str = "auto"  # instant's first guess (ours): "resized" (GPNN: the source's coarsest
    # level resized to the output's), "mosaic" (random coarsest_tile-px tiles of it), "lattice" (tiles
    # taken a whole number of periods away, see _lattice_mosaic) or "auto": "lattice" where the
    # source's autocorrelation along x or y peaks at least lattice_min_peak high, "resized" where it
    # peaks at least period_min_peak high (a lattice with perspective or irregular joints, whose tiles
    # would not be in phase), else "mosaic"
    coarsest_tile: int = 6  # side of the mosaic's tiles at the coarsest level (pixels)
    lattice_min_peak: float = 0.4  # autocorrelation height (of 1 at lag 0) from which a source is a lattice
    period_min_peak: float = 0.15  # ... and from which it has a weak period
    lattice_start_period: float = 16.0  # a lattice's instant starts at the level where its period is this (px)
    finest_vote_sigma: float | None = 0.3  # ours: the finest level's last iteration queries every pixel
    # and each value pixel votes with weight exp(-d^2 / (2 sigma^2)), d its distance (px) from its
    # patch's centre. None: the plain mean of the votes in every iteration (GPNN)
    feature_dims: int = 24  # PCA dimensions of the patch features (of 3 p^2)
    pca_samples: int = 8192  # patches sampled from the source level to fit the PCA basis
    exact_max_pairs: int = 20_000_000  # exact search where queries x keys <= this (~0.15 s per iteration)
    dense_max_pixels: int = 192 * 192  # levels with more output pixels take queries every query_stride px
    query_stride: int = 2  # query step on large levels (pixels)
    half_keys_above: int = 1_000_000  # key sets larger than this are stored as float16 (memory at 2K-4K)
    half_queries_above: int = 2_000_000  # PatchMatch query sets larger than this too (a 2K level's dense pass)
    patchmatch_rounds: int = 2  # propagation + random-search rounds per PatchMatch iteration
    random_samples: int = 1  # random candidates per radius per round


def _hw(x: torch.Tensor) -> Size:
    """(height, width) of an (N, C, H, W) tensor."""
    return int(x.shape[-2]), int(x.shape[-1])


def level_sizes(start: Size, stop: Size, ratio: float) -> list[Size]:
    """Output sizes from just above ``start`` up to ``stop`` (inclusive), each ``ratio`` times the next.

    Sizes are ``round(stop * ratio^k)`` for k = n..0 with n the largest level still larger than
    ``start`` on its smaller side. (h, w) in pixels, coarsest first.
    """
    sizes = [stop]
    k = 1
    while True:
        f = ratio**k
        size = (max(1, round(stop[0] * f)), max(1, round(stop[1] * f)))
        if min(size) <= min(start) or size == sizes[-1]:
            break
        sizes.append(size)
        k += 1
    return sizes[::-1]


# --------------------------------------------------------------------------- argument checks


def _check_image(x: object, field: str, min_size: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise InvalidArgument(field, f"must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise InvalidArgument(field, f"must have shape (1, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InvalidArgument(field, f"must be a float tensor in [-1, 1], got {x.dtype}")
    if min(x.shape[-2:]) < min_size:
        raise InvalidArgument(field, f"is {x.shape[-2]}x{x.shape[-1]} pixels, smaller than {min_size}x{min_size}")
    if not torch.isfinite(x).all():
        raise InvalidArgument(field, "contains NaN or infinite values")
    return x


def _check_arguments(
    source, height, width, init, seed, config: PatchSynthesisConfig, source_field: str = "source"
) -> None:
    if not isinstance(config, PatchSynthesisConfig):
        raise InvalidArgument("config", f"must be a PatchSynthesisConfig, got {type(config).__name__}")
    p = config.patch_size
    if p < 1 or p % 2 == 0:
        raise InvalidArgument("config.patch_size", f"must be an odd number >= 1, got {p}")
    if not 0.1 <= config.ratio < 1.0:
        raise InvalidArgument("config.ratio", f"must be in [0.1, 1), got {config.ratio}")
    if config.coarsest_size < p:
        raise InvalidArgument("config.coarsest_size", f"must be >= patch_size {p}, got {config.coarsest_size}")
    if config.coarsest_start not in ("auto", "resized", "mosaic", "lattice"):
        raise InvalidArgument(
            "config.coarsest_start", f"must be 'auto', 'resized', 'mosaic' or 'lattice', got {config.coarsest_start!r}"
        )
    if config.finest_vote_sigma is not None and not config.finest_vote_sigma > 0:
        raise InvalidArgument("config.finest_vote_sigma", f"must be None or > 0 pixels, got {config.finest_vote_sigma}")
    if config.coarsest_tile < 1 or not config.lattice_start_period > 0:
        raise InvalidArgument("config.coarsest_tile", "coarsest_tile must be >= 1 and lattice_start_period > 0")
    if config.alpha <= 0:
        raise InvalidArgument("config.alpha", f"must be > 0, got {config.alpha}")
    if min(config.iterations, config.iterations_approx, config.coarsest_iterations) < 1:
        raise InvalidArgument("config.iterations", "iterations, iterations_approx and coarsest_iterations must be >= 1")
    if not 1 <= config.feature_dims <= 3 * p * p:
        raise InvalidArgument("config.feature_dims", f"must be in [1, {3 * p * p}], got {config.feature_dims}")
    if config.query_stride < 1 or config.query_stride > p:
        raise InvalidArgument("config.query_stride", f"must be in [1, patch_size {p}], got {config.query_stride}")
    _check_image(source, source_field, p)
    for field, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(field, f"must be an integer number of pixels, got {value!r}")
        if not p <= value <= 16384:
            raise InvalidArgument(field, f"must be between {p} and 16384 pixels, got {value}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise InvalidArgument("seed", f"must be an integer in [0, 2**63), got {seed!r}")
    if init is not None:
        _check_image(init, "init", p)
        if init.device != source.device:
            raise InvalidArgument("init", f"is on {init.device}, source on {source.device}")
        if init.shape[-2] > height or init.shape[-1] > width:
            size = f"{init.shape[-2]}x{init.shape[-1]}"
            raise InvalidArgument("init", f"is {size}, larger than the output {height}x{width}")


# --------------------------------------------------------------------------- images and features


def _resize(x: torch.Tensor, size: Size, circular: bool = False) -> torch.Tensor:
    """Antialiased bicubic resize of (1, 3, h, w); wrap-around edges when ``circular``."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if not circular:
        return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
    pad_h, pad_w = x.shape[-2] // 4 + 2, x.shape[-1] // 4 + 2
    padded = F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="circular")
    sy, sx = size[0] / x.shape[-2], size[1] / x.shape[-1]
    big = (round(padded.shape[-2] * sy), round(padded.shape[-1] * sx))
    out = F.interpolate(padded, size=big, mode="bicubic", align_corners=False, antialias=True)
    top, left = round(pad_h * sy), round(pad_w * sx)
    return out[..., top : top + size[0], left : left + size[1]]


def _pca_basis(image: torch.Tensor, p: int, dims: int, samples: int, generator: torch.Generator) -> torch.Tensor:
    """A (dims, 3, p, p) orthonormal basis of the image's p x p patches (top principal directions)."""
    h, w = image.shape[-2] - p + 1, image.shape[-1] - p + 1
    n = min(samples, h * w)
    pick = torch.randperm(h * w, generator=generator)[:n].to(image.device)
    ys, xs = pick // w, pick % w
    dy = torch.arange(p, device=image.device)
    rows = (ys[:, None, None] + dy[None, :, None]).expand(n, p, p)
    cols = (xs[:, None, None] + dy[None, None, :]).expand(n, p, p)
    patches = image[0][:, rows, cols].permute(1, 0, 2, 3).reshape(n, -1).double()  # (n, 3 p^2)
    patches = patches - patches.mean(0, keepdim=True)
    _, vectors = torch.linalg.eigh(patches.T @ patches)  # ascending eigenvalues
    return vectors[:, -dims:].T.float().reshape(dims, 3, p, p).contiguous()


def _grid_features(
    image: torch.Tensor, basis: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, circular: bool, dtype: torch.dtype
) -> torch.Tensor:
    """(len(ys) * len(xs), d) features of the p x p patches whose top-left pixels are ys x xs
    (row-major), projected on ``basis`` (d, 3, p, p) by convolution.

    Computed in bands of rows so that the stride-1 convolution of a 2K-4K image never exists
    whole (it alone was 0.46 GB at 2048 px); stored as ``dtype``.
    """
    p, d = basis.shape[-1], basis.shape[0]
    if circular:
        image = F.pad(image, (0, p - 1, 0, p - 1), mode="circular")
    out = torch.empty(ys.numel() * xs.numel(), d, dtype=dtype, device=image.device)
    band = max(1, 2_000_000 // (image.shape[-1] * d))  # rows of positions per band (~8 MB of conv output)
    for i in range(0, ys.numel(), band):
        _cancel_point()
        rows = ys[i : i + band]
        top, bottom = int(rows[0]), int(rows[-1]) + p
        feats = F.conv2d(image[..., top:bottom, :], basis)[0]  # (d, bottom - top - p + 1, W')
        feats = feats[:, rows - top][:, :, xs]
        out[i * xs.numel() : (i + rows.numel()) * xs.numel()] = feats.reshape(d, -1).T
    return out


def _key_features(image: torch.Tensor, basis: torch.Tensor, half_above: int) -> torch.Tensor:
    """(K, d) features of every p x p patch of the source level (row-major top-left positions);
    float16 when there are more than ``half_above`` keys (halves the largest memory of the search)."""
    p = basis.shape[-1]
    h, w = image.shape[-2] - p + 1, image.shape[-1] - p + 1
    dtype = torch.float16 if h * w > half_above else torch.float32
    ys, xs = torch.arange(h, device=image.device), torch.arange(w, device=image.device)
    return _grid_features(image, basis, ys, xs, False, dtype)


def _positions(size: int, p: int, stride: int, circular: bool, device) -> torch.Tensor:
    """Query positions (top-left pixel) along one axis: every ``stride`` px, the last valid one included."""
    last = size - 1 if circular else size - p
    pos = torch.arange(0, last + 1, stride, device=device)
    if not circular and pos[-1] != last:
        pos = torch.cat([pos, torch.tensor([last], device=device)])
    return pos


@dataclass(frozen=True)
class _Grid:
    """Where a level's queries sit: top-left pixels ``ys`` x ``xs`` on an (h, w) output."""

    ys: torch.Tensor
    xs: torch.Tensor
    h: int
    w: int
    circular: bool


def _query_grid(out: Size, p: int, step: int, circular: bool, device) -> _Grid:
    """Queries every ``step`` pixels of an ``out`` = (h, w) output (see :func:`_positions`)."""
    ys, xs = (_positions(n, p, step, circular, device) for n in out)
    return _Grid(ys, xs, out[0], out[1], circular)


def _query_features(
    image: torch.Tensor, basis: torch.Tensor, grid: _Grid, half_above: int | None = None
) -> torch.Tensor:
    """(Q, d) features of the queries of ``grid`` (row-major): float32, or float16 where there are
    more than ``half_above`` queries (PatchMatch only: its distances are taken in float32)."""
    half = half_above is not None and grid.ys.numel() * grid.xs.numel() > half_above
    return _grid_features(image, basis, grid.ys, grid.xs, grid.circular, torch.float16 if half else torch.float32)


_EXCLUDED_KEY = 1e3  # feature value of keys that may not be matched (real features are within ~+-25)
_MIN_VOTE_WEIGHT = 1e-8  # the least weight of a value pixel in the centre-weighted fold


def _fold(
    values: torch.Tensor, keys_w: int, nnf: torch.Tensor, grid: _Grid, p: int, sigma: float | None = None
) -> torch.Tensor:
    """Fold the value patches of the matched keys back into a (1, 3, h, w) image.

    ``values`` is the sharp source level (1, 3, Hk, Wk); ``nnf`` (Q,) holds each query's key index
    (top-left ky * keys_w + kx). Each output pixel is the mean of the value pixels that cover it
    (``sigma`` None, GPNN), or their mean weighted by exp(-d^2 / (2 sigma^2)), d the pixel's
    distance from the centre of its patch (at least 1e-8: pixels by a non-circular edge get the mean).
    """
    src = values[0].reshape(3, -1)
    src_w = values.shape[-1]
    ky, kx = nnf // keys_w, nnf % keys_w
    key_base = ky * src_w + kx  # (Q,) flat index of each value patch's top-left pixel
    out = torch.zeros(3, grid.h * grid.w, dtype=values.dtype, device=values.device)
    count = torch.zeros(grid.h * grid.w, dtype=values.dtype, device=values.device)
    ones = torch.ones_like(key_base, dtype=values.dtype)
    c = (p - 1) / 2
    for dy in range(p):
        _cancel_point()
        oy = grid.ys + dy
        if grid.circular:
            oy = oy % grid.h
        for dx in range(p):
            ox = grid.xs + dx
            if grid.circular:
                ox = ox % grid.w
            target = (oy[:, None] * grid.w + ox[None, :]).reshape(-1)
            vote = src[:, key_base + (dy * src_w + dx)]
            if sigma is None:
                out.index_add_(1, target, vote)
                count.index_add_(0, target, ones)
            else:
                # floored: a pixel by a non-circular edge, which no patch centre reaches, gets the mean
                weight = max(math.exp(-((dy - c) ** 2 + (dx - c) ** 2) / (2 * sigma**2)), _MIN_VOTE_WEIGHT)
                out.index_add_(1, target, vote * weight)
                count.index_add_(0, target, ones * weight)
    return (out / count.clamp_min(1e-12)).reshape(1, 3, grid.h, grid.w)


# --------------------------------------------------------------------------- search back-ends


def _sqdist(q: torch.Tensor, k: torch.Tensor, k_norm: torch.Tensor) -> torch.Tensor:
    """(nq, nk) squared distances from (nq, d) and (nk, d) features (||q||^2 + ||k||^2 - 2 q.k)."""
    d = torch.addmm(k_norm[None, :], q, k.T, alpha=-2.0)
    return d.add_((q * q).sum(1, keepdim=True))


def _exact_search(
    queries: torch.Tensor, keys: torch.Tensor, scale: float, alpha: float | None, excluded: torch.Tensor | None = None
) -> torch.Tensor:
    """Exact argmin_k of D(q, k) / (alpha + min_q D(q, k)) (or of D without alpha) for each query.

    D = squared feature distance * ``scale`` (per-element MSE). Tiled over queries so the
    (Q, K) matrix never exists whole (tiles of ~1M entries stay in cache); two passes when alpha
    is used; ``excluded`` (K,) keys count as already matched (min_q D = 0), so their far features
    keep them out. Returns (Q,) key indices.
    """
    keys = keys.float()  # a float16 key set (over half_keys_above keys) meets few queries here
    k_norm = (keys * keys).sum(1)
    chunk = max(1, 1_000_000 // keys.shape[0])
    inv_denom = None
    if alpha is not None:
        key_min = torch.full((keys.shape[0],), float("inf"), device=keys.device)
        for i in range(0, queries.shape[0], chunk):
            if i % (64 * chunk) == 0:
                _cancel_point()
            key_min = torch.minimum(key_min, _sqdist(queries[i : i + chunk], keys, k_norm).amin(0))
        if excluded is not None:
            key_min[excluded] = 0.0
        inv_denom = 1.0 / (alpha + key_min.clamp_min(0) * scale)
    out = torch.empty(queries.shape[0], dtype=torch.long, device=queries.device)
    for i in range(0, queries.shape[0], chunk):
        if i % (64 * chunk) == 0:
            _cancel_point()
        d = _sqdist(queries[i : i + chunk], keys, k_norm)
        # min(1).indices: 3x faster than argmin(1) on the CPU (torch 2.x), the same first index
        out[i : i + chunk] = (d.mul_(inv_denom[None, :]) if inv_denom is not None else d).min(1).indices
    return out


class _PatchMatch:
    """Approximate nearest-neighbour field by vectorised PatchMatch on one level (plain D, no alpha).

    Keys are a (Kh, Kw) grid of source patches (stride 1), queries the ``grid`` of the output,
    one query every ``step`` pixels.
    """

    def __init__(self, key_hw: Size, grid: _Grid, step: int):
        (self.kh, self.kw), self.grid, self.step = key_hw, grid, step

    def search(self, queries, keys, nnf, rounds: int, samples: int, gen: torch.Generator) -> torch.Tensor:
        """Improve ``nnf`` (Q,) of ``queries`` (Q, d) among ``keys`` (K, d); returns new (Q,) key indices."""
        qh, qw = self.grid.ys.numel(), self.grid.xs.numel()
        best = _gathered_sqdist(queries, keys, nnf)
        for _ in range(rounds):
            for cand in self._candidates(nnf, qh, qw, samples, gen, nnf.device):
                _cancel_point()
                d = _gathered_sqdist(queries, keys, cand)
                better = d < best
                nnf = torch.where(better, cand, nnf)
                best = torch.where(better, d, best)
        return nnf

    def _candidates(self, nnf, qh, qw, samples, gen, dev):
        """Propagation (the 4 neighbours' matches shifted by one query step), then random search."""
        ky, kx = (nnf // self.kw).view(qh, qw), (nnf % self.kw).view(qh, qw)
        s = self.step
        for axis, shift in ((0, 1), (0, -1), (1, 1), (1, -1)):
            ny = torch.roll(ky, shift, dims=axis)
            nx = torch.roll(kx, shift, dims=axis)
            if axis == 0:
                ny = ny + s * shift
            else:
                nx = nx + s * shift
            yield self._flat(ny, nx)
        radius = max(self.kh, self.kw)
        while radius >= 1:
            for _ in range(samples):
                oy = torch.randint(-radius, radius + 1, (qh, qw), generator=gen).to(dev)
                ox = torch.randint(-radius, radius + 1, (qh, qw), generator=gen).to(dev)
                yield self._flat(ky + oy, kx + ox)
            radius //= 2

    def _flat(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return (y.clamp(0, self.kh - 1) * self.kw + x.clamp(0, self.kw - 1)).reshape(-1)


_GATHER_CHUNK = 262_144  # queries per chunk of a gathered distance (a 2K level's 4M queries in 16 pieces)


def _gathered_sqdist(queries: torch.Tensor, keys: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """(Q,) squared feature distance of each query to its key ``idx``; index_select is 2x faster
    than ``keys[idx]`` on the CPU. In chunks of :data:`_GATHER_CHUNK` queries, so that the gathered
    (Q, d) features of a 2K-4K level never exist whole (they were the peak's largest part)."""
    out = torch.empty(queries.shape[0], dtype=torch.float32, device=queries.device)
    for i in range(0, queries.shape[0], _GATHER_CHUNK):
        q = queries[i : i + _GATHER_CHUNK]
        diff = torch.index_select(keys, 0, idx[i : i + _GATHER_CHUNK]).float().sub_(q.float())
        out[i : i + _GATHER_CHUNK] = diff.mul_(diff).sum(1)
    return out


def _sparse_exact_start(image, basis, keys, key_hw: Size, grid: _Grid, max_pairs: int, excluded=None) -> torch.Tensor:
    """A first NN field for a PatchMatch level with no previous one (a lift's first level): exact
    search (plain D) for queries on a sparse grid, spread to ``grid`` by offset. Random starts lost
    rare content: Hubble's galaxies went black on a 128 -> 1000 px lift of its own thumbnail."""
    n_keys = keys.shape[0]
    step = int(grid.ys[1].item() - grid.ys[0].item()) if grid.ys.numel() > 1 else 1
    while math.ceil(grid.h / step) * math.ceil(grid.w / step) * n_keys > max_pairs and step < min(grid.h, grid.w):
        step += 1
    sparse = _query_grid((grid.h, grid.w), basis.shape[-1], int(step), grid.circular, keys.device)
    nnf = _exact_search(_query_features(image, basis, sparse), keys, 1.0, None, excluded)
    return _upsample_nnf(nnf, sparse, key_hw[1], grid, key_hw)


def _upsample_nnf(nnf: torch.Tensor, old: _Grid, old_kw: int, new: _Grid, key_hw: Size) -> torch.Tensor:
    """Warm start: the previous level's matches, nearest query, coordinates scaled to the new level."""
    fy, fx = new.h / old.h, new.w / old.w
    iy = ((new.ys.float() / fy) / max(1, old.ys[-1].item()) * (old.ys.numel() - 1)).round().long()
    ix = ((new.xs.float() / fx) / max(1, old.xs[-1].item()) * (old.xs.numel() - 1)).round().long()
    iy, ix = iy.clamp(0, old.ys.numel() - 1), ix.clamp(0, old.xs.numel() - 1)
    prev = nnf.view(old.ys.numel(), old.xs.numel())[iy][:, ix]
    ky = (prev // old_kw).float() * fy + (new.ys.float() - old.ys[iy].float() * fy)[:, None]
    kx = (prev % old_kw).float() * fx + (new.xs.float() - old.xs[ix].float() * fx)[None, :]
    ky = ky.round().long().clamp(0, key_hw[0] - 1)
    kx = kx.round().long().clamp(0, key_hw[1] - 1)
    return (ky * key_hw[1] + kx).reshape(-1)


# --------------------------------------------------------------------------- the synthesis


@dataclass(frozen=True)
class _Level:
    out: Size  # output size at this level (pixels)
    src: Size  # source size at this level (pixels): same pixel scale as the output


def _plan(source_hw: Size, out_hw: Size, start_hw: Size | None, cfg: PatchSynthesisConfig) -> list[_Level]:
    """The levels, coarsest first. Instant: the source's coarsest level has ``coarsest_size`` on its
    smaller side; lift: every level finer than ``start_hw``. Each level's source is scaled by the
    same factor as its output relative to the finest (one source px = one output px at the finest)."""
    p = cfg.patch_size
    if start_hw is None:
        n = max(0, math.floor(math.log(cfg.coarsest_size / min(source_hw)) / math.log(cfg.ratio)))
        factors = [cfg.ratio**k for k in range(n, -1, -1)]
    else:
        sizes = level_sizes(start_hw, out_hw, cfg.ratio)
        factors = [s[0] / out_hw[0] for s in sizes]
    levels: list[_Level] = []
    for f in factors:
        out = (max(p, round(out_hw[0] * f)), max(p, round(out_hw[1] * f)))
        src = (max(p, round(source_hw[0] * f)), max(p, round(source_hw[1] * f)))
        if levels and levels[-1].out == out:
            continue
        levels.append(_Level(out, src))
    if levels[-1].out != out_hw:
        levels.append(_Level(out_hw, source_hw))
    return levels


@torch.no_grad()
def synthesize(
    source: torch.Tensor,
    height: int,
    width: int,
    *,
    init: torch.Tensor | None = None,
    circular: bool = False,
    seed: int = 0,
    config: PatchSynthesisConfig = PatchSynthesisConfig(),
    on_step: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """GPNN synthesis of a ``height`` x ``width`` image from the patches of ``source`` (paper sec. 3).

    Args:
        source: (1, 3, Hs, Ws) float in [-1, 1]; its pixel scale is the output's at the finest level
            (resize it beforehand for another feature scale).
        height, width: output size in pixels (``patch_size`` to 16384).
        init: None for *instant* generation: the source's coarsest level (``coarsest_size``) resized
            to the output's coarsest size plus N(0, noise_sigma^2) noise (GPNN's random generation).
            Otherwise (1, 3, h0, w0) in [-1, 1], no larger than the output: *lift*, the levels run
            from just above (h0, w0) up to (height, width), the first guess is ``init`` resized.
        circular: wrap-around queries and fold on the output side: the result tiles seamlessly.
        seed: seeds the noise, the PCA sample and PatchMatch's random search (CPU generator: the
            same seed gives a bit-identical result on the CPU; different seeds differ).
        config: :class:`PatchSynthesisConfig`.
        on_step: called as ``on_step(level_done, levels_total)`` after each level; may raise to stop.

    Returns:
        (1, 3, height, width) float32 in [-1, 1] on ``source``'s device.

    Raises:
        InvalidArgument: a wrong shape, type, size, non-finite value or config field.
    """
    _check_arguments(source, height, width, init, seed, config)
    cfg = config
    gen = torch.Generator().manual_seed(seed)
    dev = source.device
    source = source.float()
    levels = _plan(_hw(source), (height, width), None if init is None else _hw(init), cfg)

    start = _start_mode(source, cfg) if init is None else None
    if isinstance(start, tuple):  # a lattice: its mosaic is lifted like a given init
        init = _lattice_mosaic(source, (height, width), start, cfg, gen)
        levels = _plan(_hw(source), (height, width), _hw(init), cfg)
    if init is None:
        mode = start if isinstance(start, str) else "resized"
        coarse = _first_guess(_resize(source, levels[0].src), levels[0].out, circular, mode, cfg.coarsest_tile, gen)
        noise = torch.randn(coarse.shape, generator=gen).to(dev)
        x = coarse + cfg.noise_sigma * noise
        prev_size = levels[0].out  # no blur of the coarsest keys: the noisy guess is not a blurred image
    else:
        x = init.float()
        prev_size = _hw(init)

    return _run_levels(source, levels, x, prev_size, circular, cfg, gen, on_step, init is None)


@torch.no_grad()
def inpaint(
    image: torch.Tensor,
    mask: torch.Tensor,
    *,
    seed: int = 0,
    config: PatchSynthesisConfig = PatchSynthesisConfig(),
    on_step: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Conditional synthesis with a fixed boundary (GPNN's inpainting, paper sec. 4): the pixels of
    ``image`` where ``mask`` is 0 stay as they are; where it is 1 new content is synthesised from the
    patches of the rest of the image, continuing what surrounds the hole (content-aware fill; a
    variation inside a selection that meets the canvas without a seam).

    Coarse to fine as :func:`synthesize` at the image's own size: at each level the known pixels
    (the image resized) are put back after every fold, keys whose p x p patch touches the hole are
    never matched, and the hole starts as the known pixels diffused into it (:func:`~.membrane.membrane_fill`: the colours around it,
    not the image's mean: a mean-coloured start drew the image's busiest texture into a hole in a
    smooth background) plus N(0, noise_sigma^2).

    Args:
        image: (1, 3, H, W) float in [-1, 1], both sides at least ``patch_size`` (and large enough
            that some key patch lies wholly outside the hole).
        mask: (1, 1, H, W) or (H, W), 1 (or True) where to synthesise, 0 where the image is kept;
            values in between count as to synthesise at coarse levels and as kept (< 0.5) at the finest.
        seed: seeds the noise, PCA sample and PatchMatch (bit-identical on the CPU for a seed).
        config: :class:`PatchSynthesisConfig` (``coarsest_start`` is not used).
        on_step: ``on_step(level_done, levels_total)`` after each level; may raise to stop.

    Returns:
        (1, 3, H, W) float32 in [-1, 1] on ``image``'s device, equal to ``image`` where ``mask`` < 0.5.

    Raises:
        InvalidArgument: a wrong shape, type or value of ``image``, ``mask``, ``seed`` or ``config``;
            a mask that is empty or leaves no whole patch outside the hole.
    """
    if not isinstance(image, torch.Tensor) or image.dim() != 4:
        raise InvalidArgument(
            "image", f"must be a (1, 3, H, W) torch.Tensor, got {getattr(image, 'shape', type(image).__name__)}"
        )
    _check_arguments(image, image.shape[-2], image.shape[-1], None, seed, config, source_field="image")
    hole = _check_mask(mask, image)
    cfg, gen, p = config, torch.Generator().manual_seed(seed), config.patch_size
    image = image.float()
    known = _Known(image, hole)
    size = (int(image.shape[-2]), int(image.shape[-1]))
    if bool(known.excluded_keys(size, p).all()):
        raise InvalidArgument("mask", f"leaves no {p}x{p} patch of the image outside the hole")
    levels = _plan(size, size, None, cfg)
    fixed, coarse_hole = known.at(levels[0].out)
    noise = torch.randn(fixed.shape, generator=gen).to(image.device)
    x = torch.where(coarse_hole, membrane_fill(fixed, coarse_hole) + cfg.noise_sigma * noise, fixed)
    out = _run_levels(image, levels, x, levels[0].out, False, cfg, gen, on_step, False, known)
    return torch.where(hole >= 0.5, out, image)


def _check_mask(mask: object, image: torch.Tensor) -> torch.Tensor:
    """``mask`` as a (1, 1, H, W) float tensor in [0, 1] on the image's device, or InvalidArgument."""
    if not isinstance(mask, torch.Tensor):
        raise InvalidArgument("mask", f"must be a torch.Tensor, got {type(mask).__name__}")
    m = (
        mask.reshape(1, 1, *mask.shape[-2:])
        if mask.dim() in (2, 3, 4) and mask.numel() == mask.shape[-2] * mask.shape[-1]
        else None
    )
    if m is None or tuple(m.shape[-2:]) != tuple(image.shape[-2:]):
        raise InvalidArgument(
            "mask",
            f"must be (1, 1, H, W) or (H, W) with the image's {image.shape[-2]}x{image.shape[-1]} pixels, got {tuple(mask.shape)}",
        )
    m = m.to(device=image.device, dtype=torch.float32)
    if not torch.isfinite(m).all() or m.min() < 0 or m.max() > 1:
        raise InvalidArgument("mask", "values must be in [0, 1]")
    if not bool((m >= 0.5).any()):
        raise InvalidArgument("mask", "is empty: nothing to synthesise")
    return m


@dataclass(frozen=True)
class _Known:
    """Conditional synthesis: the pixels of ``image`` (1, 3, H, W) outside ``hole`` (1, 1, H, W),
    1 = to synthesise) stay fixed, and no key patch overlaps the hole."""

    image: torch.Tensor
    hole: torch.Tensor

    def at(self, size: Size) -> tuple[torch.Tensor, torch.Tensor]:
        """The known image resized to ``size`` and its hole there (bool (1, 1, h, w), any coverage)."""
        hole = (
            self.hole
            if tuple(self.hole.shape[-2:]) == tuple(size)
            else F.interpolate(self.hole, size=size, mode="area")
        )
        return _resize(self.image, size), hole > 0.01

    def excluded_keys(self, size: Size, p: int) -> torch.Tensor:
        """(K,) True for the keys (top-left positions, row-major) whose p x p patch touches the hole."""
        _, hole = self.at(size)
        return (F.max_pool2d(hole.float(), p, stride=1) > 0).reshape(-1)


def _run_levels(
    source,
    levels,
    x,
    prev_size,
    circular,
    cfg: PatchSynthesisConfig,
    gen,
    on_step,
    noisy_start: bool,
    known: _Known | None = None,
) -> torch.Tensor:
    """The coarse-to-fine NN + fold iterations from the first guess ``x`` over ``levels``."""
    p, dev = cfg.patch_size, source.device
    alpha = cfg.alpha if cfg.use_alpha else None
    scale = 1.0 / (3 * p * p)  # squared feature distance -> per-element MSE

    nnf: torch.Tensor | None = None
    grid_prev: _Grid | None = None
    kw_prev = 0
    keys = torch.empty(0)
    for li, level in enumerate(levels):
        x = _resize(x, level.out, circular)
        excluded = None
        if known is not None:
            fixed, hole = known.at(level.out)
            x = torch.where(hole, x, fixed)
            excluded = known.excluded_keys(level.src, p)
        values = source if level.src == tuple(source.shape[-2:]) else _resize(source, level.src)
        blurred = _resize(_resize(values, _blur_size(level, prev_size)), level.src)
        basis = _pca_basis(values, p, cfg.feature_dims, cfg.pca_samples, gen).to(dev)
        key_hw = (level.src[0] - p + 1, level.src[1] - p + 1)
        grid, step, exact = _search_plan(level.out, key_hw[0] * key_hw[1], circular, cfg, dev)
        iterations = cfg.iterations if exact else cfg.iterations_approx
        if li == 0 and noisy_start:
            iterations = cfg.coarsest_iterations
        pm, rounds = None, cfg.patchmatch_rounds
        for it in range(iterations):
            _cancel_point()
            if it <= 1:  # blurred keys for the first iteration, sharp ones (computed once) after
                keys = torch.empty(0)  # the blurred set goes before the sharp one is made (not both at the peak)
                keys = _key_features(blurred if it == 0 else values, basis, cfg.half_keys_above)
                if excluded is not None:
                    keys[excluded] = _EXCLUDED_KEY
            final = li == len(levels) - 1 and it == iterations - 1 and cfg.finest_vote_sigma is not None
            if final and step > 1 and it > 0:  # the last pass queries every pixel: each one's best patch
                dense = _query_grid(level.out, p, 1, circular, dev)
                assert nnf is not None  # it > 0: the previous iteration's field
                nnf = _upsample_nnf(nnf, grid, key_hw[1], dense, key_hw)
                grid, step, exact = dense, 1, False
                pm = _PatchMatch(key_hw, grid, step)
                rounds = 1  # refines a converged strided field
            queries = _query_features(x, basis, grid, None if exact else cfg.half_queries_above)
            if exact:
                nnf = _exact_search(queries, keys, scale, alpha, excluded)
            else:
                if pm is None:
                    pm = _PatchMatch(key_hw, grid, step)
                    nnf = (
                        _upsample_nnf(nnf, grid_prev, kw_prev, grid, key_hw)
                        if nnf is not None and grid_prev is not None
                        else _sparse_exact_start(x, basis, keys, key_hw, grid, cfg.exact_max_pairs, excluded)
                    )
                nnf = pm.search(queries, keys, nnf, rounds, cfg.random_samples, gen)
            del queries
            x = _fold(values, key_hw[1], nnf, grid, p, cfg.finest_vote_sigma if final else None)
            if known is not None:
                x = torch.where(hole, x, fixed)
        grid_prev, kw_prev, prev_size = grid, key_hw[1], level.out
        del pm, keys, blurred, values
        if on_step is not None:
            on_step(li + 1, len(levels))
    return x.clamp(-1, 1)


def _start_mode(source: torch.Tensor, cfg: PatchSynthesisConfig) -> str | tuple[float | None, float | None]:
    """``cfg.coarsest_start`` resolved: "resized", "mosaic", or for a lattice its periods (px) along
    y and x (None along an axis without one), from :func:`singan_core.metrics.axis_periods` of the
    source (on at most 512 px)."""
    if cfg.coarsest_start in ("resized", "mosaic"):
        return cfg.coarsest_start
    f = min(1.0, 512 / max(source.shape[-2:]))
    small = source if f == 1.0 else _resize(source, (round(source.shape[-2] * f), round(source.shape[-1] * f)))
    if min(small.shape[-2:]) < 16:
        return "mosaic"
    (px, hx), (py, hy) = axis_periods(small.cpu())
    peaks = [(p / f, h) for p, h in ((py, hy), (px, hx)) if not math.isnan(p) and p / f >= 2 * cfg.patch_size]
    lattice_floor = 0.0 if cfg.coarsest_start == "lattice" else cfg.lattice_min_peak
    periods = [
        p / f if not math.isnan(p) and p / f >= 2 * cfg.patch_size and h >= lattice_floor else None
        for p, h in ((py, hy), (px, hx))
    ]
    if periods != [None, None] and (
        cfg.coarsest_start == "lattice" or max(h for _, h in peaks) >= cfg.lattice_min_peak
    ):
        return periods[0], periods[1]
    if cfg.coarsest_start == "lattice":
        return "mosaic"
    return "resized" if peaks and max(h for _, h in peaks) >= cfg.period_min_peak else "mosaic"


_LATTICE_TILE = 32  # px: the largest tile of a lattice mosaic along a periodic axis (twice that along the other)


def _lattice_mosaic(source, out: Size, periods, cfg: PatchSynthesisConfig, gen: torch.Generator) -> torch.Tensor:
    """A first guess for a lattice: the output cut into tiles one period (at most 32 px) on a side
    (64 px along an axis without a period), each copied from a random place of the source whose offset from
    the tile is a whole number of periods along each periodic axis; resized down so that the
    period is ``lattice_start_period`` px. Returns (1, 3, h0, w0)."""
    hs, ws = source.shape[-2:]
    tiles, axes = [], []
    for n, ns, period in zip(out, (hs, ws), periods):
        t = min(round(period), _LATTICE_TILE) if period is not None else 2 * _LATTICE_TILE
        tiles.append((max(1, min(t, ns)), math.ceil(n / max(1, min(t, ns)))))
    shape = (tiles[0][1], tiles[1][1])  # tiles along y, along x
    for axis, (n, ns, period, (t, count)) in enumerate(zip(out, (hs, ws), periods, tiles)):
        start = (torch.arange(count) * t).float()
        start = start[:, None] if axis == 0 else start[None, :]
        if period is not None:  # in phase: start + k * period, k random per tile, kept inside the source
            k_max = torch.floor((ns - t - (start % period)) / period).clamp_min(0)
            pick = (start % period) + torch.floor(torch.rand(shape, generator=gen) * (k_max + 1)) * period
        else:
            pick = torch.randint(0, ns - t + 1, shape, generator=gen).float()
        axes.append((pick.round().long(), t))
    (pick_y, ty), (pick_x, tx) = axes
    ys, xs = torch.arange(out[0])[:, None], torch.arange(out[1])[None, :]
    rows = (pick_y[ys // ty, xs // tx] + ys % ty).clamp(0, hs - 1)
    cols = (pick_x[ys // ty, xs // tx] + xs % tx).clamp(0, ws - 1)
    mosaic = source[0][:, rows.to(source.device), cols.to(source.device)].unsqueeze(0)
    smallest = min(p for p in periods if p is not None)
    f = min(1.0, cfg.lattice_start_period / smallest)
    size = (max(cfg.patch_size, round(out[0] * f)), max(cfg.patch_size, round(out[1] * f)))
    return _resize(mosaic, size)


def _first_guess(
    coarse: torch.Tensor, out: Size, circular: bool, mode: str, tile: int, gen: torch.Generator
) -> torch.Tensor:
    """Instant's coarsest guess before noise: the source's coarsest level resized to ``out``
    (``"resized"``, GPNN) or a grid of ``tile``-px tiles taken from random places of it (``"mosaic"``)."""
    if mode == "resized":
        return _resize(coarse, out, circular)
    t = min(tile, *coarse.shape[-2:])
    (h, w), (hs, ws) = out, coarse.shape[-2:]
    th, tw = math.ceil(h / t), math.ceil(w / t)
    sy = torch.randint(0, hs - t + 1, (th, tw), generator=gen)
    sx = torch.randint(0, ws - t + 1, (th, tw), generator=gen)
    ys, xs = torch.arange(h), torch.arange(w)
    rows = sy[ys // t][:, xs // t] + (ys % t)[:, None]  # (h, w) source row of each output pixel
    cols = sx[ys // t][:, xs // t] + (xs % t)[None, :]
    flat = (rows * ws + cols).to(coarse.device)
    return coarse[0].reshape(3, -1)[:, flat].unsqueeze(0)


def _search_plan(out: Size, n_keys: int, circular: bool, cfg: PatchSynthesisConfig, device) -> tuple[_Grid, int, bool]:
    """A level's query grid, its step (pixels) and whether its search is exact.

    Exact search with queries at every pixel, else at every ``query_stride`` pixels, when
    queries x keys fits ``exact_max_pairs``; otherwise PatchMatch, dense up to ``dense_max_pixels``.
    The strided exact option keeps brick's coarse levels exact at 1024 px output (with only the
    dense one, 1024 px from a 512 px source had one exact level and lost the bond).
    """
    for step in (1, cfg.query_stride):
        grid = _query_grid(out, cfg.patch_size, step, circular, device)
        if grid.ys.numel() * grid.xs.numel() * n_keys <= cfg.exact_max_pairs:
            return grid, step, True
    step = 1 if out[0] * out[1] <= cfg.dense_max_pixels else cfg.query_stride
    return _query_grid(out, cfg.patch_size, step, circular, device), step, False


def _blur_size(level: _Level, prev_out: Size) -> Size:
    """The size the level's source is taken down to for the blurred keys: the same factor as
    the previous level's output relative to this one's."""
    f = prev_out[0] / level.out[0]
    return (max(1, round(level.src[0] * f)), max(1, round(level.src[1] * f)))
