"""Patch nearest-neighbour synthesis: GPNN (Granot, Feinstein, Shocher, Bagon, Irani, "Drop the GAN:
In Defense of Patches Nearest Neighbors as Single Image Generative Models", CVPR 2022).

No training. Coarse to fine over a pyramid (ratio r = 0.75): the current output is upsampled to the
next level; each of its p x p patches (a *query*) is replaced by the *value* (the sharp source patch)
of its nearest *key* (a source patch at that level: blurred by the same down-then-up resize as the
query on a level's first iteration, sharp afterwards); overlapping value patches are folded back by
averaging. GPNN's normalised distance ``D(q, k) / (alpha + min_q D(q, k))`` (paper sec. 3.2) favours
keys that no query is close to yet, so every source patch tends to be used (*completeness*) and no
patch floods the output.

Two uses of one engine (:func:`synthesize`):

* *instant*: from the source's coarsest level plus noise (GPNN's random generation), any output size
  at the source's pixel scale, optionally ``circular`` (wrap-around patches: seamless tiles);
* *lift*: from a given small image (e.g. a SinGAN sample) up to the output size, the detail coming
  from the source's own patches.

Distances are mean squared differences per patch element on [-1, 1] values (D = SSD / (3 p^2)),
computed on PCA-reduced patch features (``feature_dims``, basis fitted per level on a sample of the
source's patches): projecting on a basis is a convolution, so neither the queries nor the keys are
ever unfolded into 3 p^2-vectors (features are computed in bands of rows, and key sets over a
million patches are kept in float16: a 256 -> 2048 px lift peaks at 1.2 GB). ``alpha`` is in these
units: on brick GPNN's 5e-3 let the joints vanish into long strips, 1e-3 blurred the bricks, 2e-3 is
the default.

Search back-ends, chosen per level by measured cost (2-core AVX2 CPU, one torch thread):

* exact, with alpha (tiled ``addmm``; two passes: min over queries per key, then the normalised
  argmin) when queries x keys <= ``exact_max_pairs`` (20 M pairs, ~0.15 s per iteration), with
  queries at every pixel or, failing that, every ``query_stride`` pixels. These are the coarse
  levels, where the layout is decided: with PatchMatch there (``exact_max_pairs=0``) brick's joints
  broke up and its period drifted (41 vs 37.5 px); exact search keeps it (36-38 px over seeds).
* PatchMatch (Barnes et al., SIGGRAPH 2009) above that, plain D: vectorised over all queries at
  once (Jacobi-style), each round proposes the 4 neighbours' matches shifted by one query step, then
  random candidates at halving radii; warm-started from the previous iteration or level (a lift's
  first level: exact search on a sparse query grid; random starts lost Hubble's rare galaxies).
  Queries every ``query_stride`` px above ``dense_max_pixels`` (each output pixel still gets
  ~(p / stride)^2 value patches). No alpha here: estimating min_q D from the pairs PatchMatch
  happens to evaluate made neighbouring queries' scores inconsistent and the averaged patches
  blurry (gravel 512 px: sharpness 0.40 of the source's with it, 0.88 without), and the layout is
  already set by the exact levels.
* Not used, from the feasibility notes: exact search at every level of a 512 px output ~5,000 s,
  faiss IVF rebuilt per iteration 77 s, HNSW ~16 s to build per level; no faiss index searches the
  normalised distance.

Deviations from GPNN's code, each measured: 5 iterations on exact levels (10 cost twice as much
for the same period), 3 on PatchMatch levels, 1 at the coarsest (more pulled gravel back into a
verbatim copy of the source: copy score 0.59 vs 0.13), noise sigma 1.0 instead of 0.75 (gravel's copy
score 0.48 vs 0.04-0.05 over three seeds; brick and chelsea unchanged), coarsest level 40 px instead of 14 on the
source's smaller side (brick's bond needs a few courses there).

CPU seconds (one torch thread; process time, since the shared 2-core machine's wall time ran 2-4x
that; bench/full_resolution.py has the full table): instant 512 x 512 ~2.7 s, 1024 x 1024 ~8 s,
lift 128 -> 1024 x 1174 ~10 s; 2048 x 2048 from a 2048 px source ~57 s (instant) and ~53 s (lift
from 256 px), peak memory 1.2 GB. Deterministic for a seed on the CPU, also across torch thread
counts (every random number comes from one CPU ``torch.Generator``); on CUDA ``index_add_`` sums
in any order.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import InvalidArgument

_interrupt = threading.local()


@contextmanager
def interruptible(check: Callable[[], None]) -> Iterator[None]:
    """Within the block, :func:`synthesize` in this thread calls ``check()`` at short intervals
    *inside* a level (between bands of feature rows, fold passes, search tiles and rounds), not only
    between levels (``on_step``), so that a caller can stop a large level promptly: ``check`` may
    raise, and the exception propagates out of :func:`synthesize`."""
    previous = getattr(_interrupt, "check", None)
    _interrupt.check = check
    try:
        yield
    finally:
        _interrupt.check = previous


def _cancel_point() -> None:
    check = getattr(_interrupt, "check", None)
    if check is not None:
        check()

__all__ = ["PatchSynthesisConfig", "level_sizes", "synthesize"]

Size = tuple[int, int]


@dataclass(frozen=True)
class PatchSynthesisConfig:
    """GPNN's settings plus the search back-end's. Defaults from the paper and its code unless noted."""

    patch_size: int = 7  # p: patches are p x p pixels (GPNN: 7)
    ratio: float = 0.75  # size of a level relative to the next finer one (GPNN: 0.75)
    coarsest_size: int = 40  # smaller side of the source's coarsest level in pixels, instant mode (ours:
    # GPNN uses 14 on 256 px images; 40 keeps brick bond at 512 px)
    iterations: int = 5  # NN + fold iterations per level where exact search is used (GPNN: 10; 5 kept
    # brick's period and bond at half the cost)
    coarsest_iterations: int = 1  # iterations at the coarsest level of instant generation (GPNN: 1; more
    # iterations pull the noisy guess back to the source's own layout: verbatim copies)
    iterations_approx: int = 3  # iterations per PatchMatch level (ours: measured, later ones change little)
    alpha: float = 2e-3  # completeness weight in D / (alpha + min_q D) on the exact levels, D = per-element
    # MSE on [-1, 1]; smaller = stronger push to use every source patch (GPNN: 5e-3; on brick 5e-3 let
    # the joints vanish into long strips, 1e-3 blurred bricks: 2e-3 measured best)
    use_alpha: bool = True  # False: plain nearest neighbour (GPNN's alpha = infinity)
    noise_sigma: float = 1.0  # std of the Gaussian noise added to the coarsest level (instant), [-1, 1] units
    # (GPNN: 0.75; with it gravel at 512 px from its own 512 px photo came back 48 % verbatim, 4-5 % at 1.0)
    feature_dims: int = 24  # PCA dimensions of the patch features (of 3 p^2)
    pca_samples: int = 8192  # patches sampled from the source level to fit the PCA basis
    exact_max_pairs: int = 20_000_000  # exact search where queries x keys <= this (~0.15 s per iteration)
    dense_max_pixels: int = 192 * 192  # levels with more output pixels take queries every query_stride px
    query_stride: int = 2  # query step on large levels (pixels)
    half_keys_above: int = 1_000_000  # key sets larger than this are stored as float16 (memory at 2K-4K)
    patchmatch_rounds: int = 2  # propagation + random-search rounds per PatchMatch iteration
    random_samples: int = 1  # random candidates per radius per round


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


def _check_arguments(source, height, width, init, seed, config: PatchSynthesisConfig) -> None:
    if not isinstance(config, PatchSynthesisConfig):
        raise InvalidArgument("config", f"must be a PatchSynthesisConfig, got {type(config).__name__}")
    p = config.patch_size
    if p < 1 or p % 2 == 0:
        raise InvalidArgument("config.patch_size", f"must be an odd number >= 1, got {p}")
    if not 0.1 <= config.ratio < 1.0:
        raise InvalidArgument("config.ratio", f"must be in [0.1, 1), got {config.ratio}")
    if config.coarsest_size < p:
        raise InvalidArgument("config.coarsest_size", f"must be >= patch_size {p}, got {config.coarsest_size}")
    if config.alpha <= 0:
        raise InvalidArgument("config.alpha", f"must be > 0, got {config.alpha}")
    if min(config.iterations, config.iterations_approx, config.coarsest_iterations) < 1:
        raise InvalidArgument("config.iterations", "iterations, iterations_approx and coarsest_iterations must be >= 1")
    if not 1 <= config.feature_dims <= 3 * p * p:
        raise InvalidArgument("config.feature_dims", f"must be in [1, {3 * p * p}], got {config.feature_dims}")
    if config.query_stride < 1 or config.query_stride > p:
        raise InvalidArgument("config.query_stride", f"must be in [1, patch_size {p}], got {config.query_stride}")
    _check_image(source, "source", p)
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


def _query_features(image: torch.Tensor, basis: torch.Tensor, grid: _Grid) -> torch.Tensor:
    """(Q, d) float32 features of the queries of ``grid`` (row-major)."""
    return _grid_features(image, basis, grid.ys, grid.xs, grid.circular, torch.float32)


def _fold(values: torch.Tensor, keys_w: int, nnf: torch.Tensor, grid: _Grid, p: int) -> torch.Tensor:
    """Average the value patches of the matched keys back into a (1, 3, h, w) image.

    ``values`` is the sharp source level (1, 3, Hk, Wk); ``nnf`` (Q,) holds each query's key index
    (top-left ky * keys_w + kx). Each output pixel is the mean of the value pixels that cover it.
    """
    src = values[0].reshape(3, -1)
    src_w = values.shape[-1]
    ky, kx = nnf // keys_w, nnf % keys_w
    key_base = ky * src_w + kx  # (Q,) flat index of each value patch's top-left pixel
    out = torch.zeros(3, grid.h * grid.w, dtype=values.dtype, device=values.device)
    count = torch.zeros(grid.h * grid.w, dtype=values.dtype, device=values.device)
    ones = torch.ones_like(key_base, dtype=values.dtype)
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
            out.index_add_(1, target, src[:, key_base + (dy * src_w + dx)])
            count.index_add_(0, target, ones)
    return (out / count.clamp_min(1)).reshape(1, 3, grid.h, grid.w)


# --------------------------------------------------------------------------- search back-ends


def _sqdist(q: torch.Tensor, k: torch.Tensor, k_norm: torch.Tensor) -> torch.Tensor:
    """(nq, nk) squared distances from (nq, d) and (nk, d) features (||q||^2 + ||k||^2 - 2 q.k)."""
    d = torch.addmm(k_norm[None, :], q, k.T, alpha=-2.0)
    return d.add_((q * q).sum(1, keepdim=True))


def _exact_search(queries: torch.Tensor, keys: torch.Tensor, scale: float, alpha: float | None) -> torch.Tensor:
    """Exact argmin_k of D(q, k) / (alpha + min_q D(q, k)) (or of D without alpha) for each query.

    D = squared feature distance * ``scale`` (per-element MSE). Tiled over queries so the
    (Q, K) matrix never exists whole (tiles of ~1M entries stay in cache); two passes when alpha
    is used. Returns (Q,) key indices.
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


def _gathered_sqdist(queries: torch.Tensor, keys: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """(Q,) squared feature distance of each query to its key ``idx``; index_select is 2x faster
    than ``keys[idx]`` on the CPU."""
    diff = torch.index_select(keys, 0, idx).float().sub_(queries)
    return diff.mul_(diff).sum(1)


def _sparse_exact_start(image, basis, keys, key_hw: Size, grid: _Grid, max_pairs: int) -> torch.Tensor:
    """A first NN field for a PatchMatch level with no previous one (a lift's first level): exact
    search (plain D) for queries on a sparse grid, spread to ``grid`` by offset. Random starts lost
    rare content: Hubble's galaxies went black on a 128 -> 1000 px lift of its own thumbnail."""
    n_keys = keys.shape[0]
    step = grid.ys[1].item() - grid.ys[0].item() if grid.ys.numel() > 1 else 1
    while math.ceil(grid.h / step) * math.ceil(grid.w / step) * n_keys > max_pairs and step < min(grid.h, grid.w):
        step += 1
    sparse = _query_grid((grid.h, grid.w), basis.shape[-1], step, grid.circular, keys.device)
    nnf = _exact_search(_query_features(image, basis, sparse), keys, 1.0, None)
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
    levels = []
    for f in factors:
        out = (max(p, round(out_hw[0] * f)), max(p, round(out_hw[1] * f)))
        src = (max(p, round(source_hw[0] * f)), max(p, round(source_hw[1] * f)))
        if levels and levels[-1].out == out:
            continue
        levels.append(_Level(out, src))
    if levels[-1].out != tuple(out_hw):
        levels.append(_Level(tuple(out_hw), tuple(source_hw)))
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
    cfg, p = config, config.patch_size
    gen = torch.Generator().manual_seed(seed)
    dev = source.device
    source = source.float()
    alpha = cfg.alpha if cfg.use_alpha else None
    scale = 1.0 / (3 * p * p)  # squared feature distance -> per-element MSE
    levels = _plan(tuple(source.shape[-2:]), (height, width), None if init is None else tuple(init.shape[-2:]), cfg)

    if init is None:
        coarse = _resize(_resize(source, levels[0].src), levels[0].out, circular)  # GPNN: resized to the output
        noise = torch.randn(coarse.shape, generator=gen).to(dev)
        x = coarse + cfg.noise_sigma * noise
        prev_size = levels[0].out  # no blur of the coarsest keys: the noisy guess is not a blurred image
    else:
        x = init.float()
        prev_size = tuple(init.shape[-2:])

    nnf, grid_prev, kw_prev = None, None, None
    for li, level in enumerate(levels):
        x = _resize(x, level.out, circular)
        values = source if level.src == tuple(source.shape[-2:]) else _resize(source, level.src)
        blurred = _resize(_resize(values, _blur_size(level, prev_size)), level.src)
        basis = _pca_basis(values, p, cfg.feature_dims, cfg.pca_samples, gen).to(dev)
        key_hw = (level.src[0] - p + 1, level.src[1] - p + 1)
        grid, step, exact = _search_plan(level.out, key_hw[0] * key_hw[1], circular, cfg, dev)
        n_queries = grid.ys.numel() * grid.xs.numel()
        iterations = cfg.iterations if exact else cfg.iterations_approx
        if li == 0 and init is None:
            iterations = cfg.coarsest_iterations
        pm = None
        for it in range(iterations):
            _cancel_point()
            if it <= 1:  # blurred keys for the first iteration, sharp ones (computed once) after
                keys = _key_features(blurred if it == 0 else values, basis, cfg.half_keys_above)
            queries = _query_features(x, basis, grid)
            if exact:
                nnf = _exact_search(queries, keys, scale, alpha)
            else:
                if pm is None:
                    pm = _PatchMatch(key_hw, grid, step)
                    nnf = (
                        _upsample_nnf(nnf, grid_prev, kw_prev, grid, key_hw)
                        if nnf is not None
                        else _sparse_exact_start(x, basis, keys, key_hw, grid, cfg.exact_max_pairs)
                    )
                nnf = pm.search(queries, keys, nnf, cfg.patchmatch_rounds, cfg.random_samples, gen)
            del queries
            x = _fold(values, key_hw[1], nnf, grid, p)
        grid_prev, kw_prev, prev_size = grid, key_hw[1], level.out
        del pm, keys, blurred, values
        if on_step is not None:
            on_step(li + 1, len(levels))
    return x.clamp(-1, 1)


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
