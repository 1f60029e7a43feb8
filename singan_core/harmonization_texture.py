"""The scene's fine texture inside a pasted object, from the canvas's own background patches.

A frequency split in the manner of image analogies (Hertzmann, Jacobs, Oliver, Curless and
Salesin, "Image Analogies", SIGGRAPH 2001: A is a band-limited image, A' its full-band original,
B the object's band-limited image, B' what is synthesized) and of Freedman and Fattal
("Image and Video Upscaling from Local Self-Examples", ACM TOG 2011: high frequencies found by
matching the low-frequency patches of the image itself):

- the object keeps its own low and middle frequencies (its shape and shading, already repainted
  and colour-moved by the harmonization before this step): ``low = G_sigma * image``;
- its high-frequency band is replaced by the background's: queries are the object's band-limited
  patches, keys the background's band-limited patches at the same blur (each minus its own mean,
  so they match on structure, not colour), values the background's high-pass ``image - low`` at
  the key's place; each query takes its nearest key's value (exact nearest neighbour in a PCA
  space of the keys), overlapping values are blended with a Gaussian window;
- the blend lowers the band's energy; it is given back per channel (up to the chosen values'
  own energy);
- the object's band becomes ``(1 - amount) * its own + amount * the background's``: with
  ``amount`` 1 its finest gradients are all the scene's, which loses the object's own fine
  structure (hair, print, edges' exact place); the default keeps 30 %.

So a pasted object in a photo gets the photo's grain and sharpness, and its edges the sharpness of
the scene's edges; in a painting, the painting's finest texture (the strokes themselves are
coarser than the band: they come from the model's repaint). Everything happens at the canvas's
resolution on a crop around the object; only the masked pixels change.

Images are (1, 3, H, W) float in [-1, 1]; masks (1, 1, H, W) bool; sizes in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .guided_filter import Box


@dataclass(frozen=True)
class AnalogyConfig:
    """Attributes:
    sigma: Gaussian sigma (canvas pixels) of the split: frequencies above about 1 / (2 pi sigma)
        cycles per pixel come from the background.
    patch: patch side p (canvas pixels) of the queries and keys.
    stride: query grid step (pixels).
    window: Gaussian sigma (pixels) of the blend of overlapping values.
    keys: number of background patches sampled as keys.
    dims: PCA dimensions of the patch features.
    reach: keys are taken from the background within this fraction of the canvas's longer side
        around the object's bounding box.
    amount: 0 keeps the object's own band, 1 replaces it wholly (linear in between).
    kappa: image analogies' coherence weight: a neighbour's source continued is taken when
        its distance is within (1 + kappa) x the best sampled key's.
    rounds: sweeps of the coherence pass.
    gain_range: clamp of the per-channel gain giving back the energy the blend took.
    seed: seed of the key sample.
    """

    sigma: float = 1.0
    patch: int = 5
    stride: int = 2
    window: float = 0.8
    keys: int = 4000
    dims: int = 8
    reach: float = 0.2
    amount: float = 0.7
    kappa: float = 1.0
    rounds: int = 2
    gain_range: tuple[float, float] = (1.0, 2.0)
    seed: int = 0


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W), cut at 3 sigma, replicate padding."""
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).repeat(x.shape[1], 1, 1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k[:, :, None, :], groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k[:, :, :, None], groups=x.shape[1])


def _expand(box: Box, by: int, size: tuple[int, int]) -> Box:
    top, left, bottom, right = box
    return max(0, top - by), max(0, left - by), min(size[0], bottom + by), min(size[1], right + by)


def _unfold_at(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, p: int) -> torch.Tensor:
    """(n, C p^2) patches of (1, C, H, W) with top-left corners (ys, xs)."""
    offsets = torch.arange(p, device=x.device)
    rows = (ys[:, None] + offsets)[:, :, None].expand(-1, p, p)
    cols = (xs[:, None] + offsets)[:, None, :].expand(-1, p, p)
    return x[0][:, rows, cols].permute(1, 0, 2, 3).flatten(1)


def _centred(patches: torch.Tensor, channels: int) -> torch.Tensor:
    """Each patch (row of C p^2) minus its own per-channel mean."""
    v = patches.view(patches.shape[0], channels, -1)
    return (v - v.mean(2, keepdim=True)).flatten(1)


def _nearest(queries: torch.Tensor, keys: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Index (n,) of the Euclidean nearest key of each query."""
    k_norm = keys.pow(2).sum(1)
    out = torch.empty(queries.shape[0], dtype=torch.long, device=queries.device)
    for i in range(0, queries.shape[0], chunk):
        q = queries[i : i + chunk]
        out[i : i + chunk] = (k_norm[None] - 2 * q @ keys.T).argmin(1)
    return out


def _pca(features: torch.Tensor, dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (1, F), basis (F, dims)) of the rows of ``features``."""
    mean = features.mean(0, keepdim=True)
    _, _, v = torch.linalg.svd(features - mean, full_matrices=False)
    return mean, v[:dims].T


def _grid(box: Box, crop: tuple[int, int], p: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(Gh, Gw) top-left corners of query patches every ``stride`` px covering ``box`` (crop coordinates)."""
    (top, left, bottom, right), (h, w) = box, crop
    ys = torch.arange(top - p // 2, bottom - p // 2 + stride, stride).clamp(0, h - p).unique()
    xs = torch.arange(left - p // 2, right - p // 2 + stride, stride).clamp(0, w - p).unique()
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return gy, gx


def _coherence(
    pos: torch.Tensor,
    dist: torch.Tensor,
    grid: torch.Tensor,
    query: torch.Tensor,
    feature,
    clear: torch.Tensor,
    cfg: AnalogyConfig,
) -> torch.Tensor:
    """Image analogies' coherence (Hertzmann et al. 2001 sec. 3.2; Ashikhmin 2001), on the query grid.

    Scanning the grid column by column (left to right) and then row by row (top to bottom), a
    cell takes its predecessor's source shifted by their grid offset (the background continued
    coherently) when that patch's distance is within ``(1 + kappa)`` of the cell's best sampled
    key's (plus a small tolerance for flat patches). Because the scan is sequential, runs of
    cells copy one connected piece of the background; the row scan continues the column scan's
    runs, so the pieces are two-dimensional.

    Args:
        pos: (2, Gh, Gw) long, the source top-left corner of each cell (from the key search).
        dist: (Gh, Gw) squared feature distance of those matches.
        grid: (2, Gh, Gw) long, each cell's own top-left corner.
        query: (Gh, Gw, D) the cells' projected features.
        feature: positions (ys, xs) -> (n, D) projected features of the band-limited image.
        clear: (h, w) bool, the top-left corners a source patch may have.

    Returns:
        (2, Gh, Gw) the new sources.
    """
    limit = (1 + cfg.kappa) * dist + 0.02 * query.pow(2).sum(-1).mean()
    h, w = clear.shape
    pos = pos.clone()
    for _ in range(cfg.rounds):
        for axis in (2, 1):  # columns, then rows
            for k in range(1, pos.shape[axis]):
                prev: list[slice | int] = [slice(None)] * 3
                here: list[slice | int] = [slice(None)] * 3
                prev[axis], here[axis] = k - 1, k
                cand = pos[tuple(prev)] + (grid[tuple(here)] - grid[tuple(prev)])
                ok = (cand[0] >= 0) & (cand[0] < h) & (cand[1] >= 0) & (cand[1] < w)
                ok &= clear[cand[0].clamp(0, h - 1), cand[1].clamp(0, w - 1)]
                ok &= (cand != pos[tuple(here)]).any(0)
                if not bool(ok.any()):
                    continue
                cy, cx = cand[0][ok], cand[1][ok]
                q = query[:, k][ok] if axis == 2 else query[k][ok]
                lim = (limit[:, k] if axis == 2 else limit[k])[ok]
                take = (feature(cy, cx) - q).pow(2).sum(-1) <= lim
                idx = ok.nonzero(as_tuple=True)[0][take]
                target = pos[tuple(here)]
                target[0, idx], target[1, idx] = cy[take], cx[take]
    return pos


def _fold(
    high: torch.Tensor, pos: torch.Tensor, grid: torch.Tensor, use: torch.Tensor, p: int, window: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each used cell's source patch of ``high`` laid at the cell, blended with a Gaussian window.

    Returns (band (1, 3, h, w), per-channel std (3,) of the patches laid)."""
    src_y, src_x, dst_y, dst_x = pos[0][use], pos[1][use], grid[0][use], grid[1][use]
    values = _unfold_at(high, src_y, src_x, p).view(-1, 3, p * p)
    t = torch.arange(p, dtype=high.dtype, device=high.device) - (p - 1) / 2
    w1 = torch.exp(-0.5 * (t / window) ** 2)
    win = (w1[:, None] * w1[None, :]).flatten()
    offsets = torch.arange(p, device=high.device)
    rows = (dst_y[:, None] + offsets)[:, :, None].expand(-1, p, p).flatten()
    cols = (dst_x[:, None] + offsets)[:, None, :].expand(-1, p, p).flatten()
    flat = rows * high.shape[-1] + cols
    acc, wsum = torch.zeros_like(high), torch.zeros_like(high[:, :1])
    acc.view(3, -1).index_add_(1, flat, (values * win).permute(1, 0, 2).reshape(3, -1))
    wsum.view(1, -1).index_add_(1, flat, win.repeat(src_y.numel())[None])
    return acc / wsum.clamp_min(1e-8), values.permute(1, 0, 2).reshape(3, -1).std(1)


def analogy_detail(
    image: torch.Tensor,
    mask: torch.Tensor,
    config: AnalogyConfig = AnalogyConfig(),
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """Replace the object's high-frequency band by ``amount`` with the background's (see the module docstring).

    Args:
        image: (1, 3, H, W) in [-1, 1], the (harmonized) composite; outside ``mask`` it is the
            background the keys and values come from.
        mask: (1, 1, H, W) bool, the pixels whose band is replaced (the object; non-empty).
        config: see :class:`AnalogyConfig`.
        exclude: (1, 1, H, W) bool, where no key may come from (default: ``mask``).

    Returns:
        (1, 3, H, W) in [-1, 1]; ``image`` bit-identical outside ``mask``. Unchanged if no
        background patch lies wholly outside the object within the reach.
    """
    cfg, p = config, config.patch
    size = (int(image.shape[-2]), int(image.shape[-1]))
    rows, cols = mask[0, 0].any(1).nonzero(), mask[0, 0].any(0).nonzero()
    obj_box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    top, left, bottom, right = _expand(obj_box, round(cfg.reach * max(size)) + p, size)
    x = image[..., top:bottom, left:right].float()
    inside = mask[..., top:bottom, left:right]
    banned = inside if exclude is None else exclude[..., top:bottom, left:right]
    low = gaussian_blur(x, cfg.sigma)
    high = x - low
    # sources: patches wholly outside the object (and not touching it through the blur)
    margin = p + 2 * int(3 * cfg.sigma + 0.5)
    grown = F.max_pool2d(banned.float(), (2 * margin + 1, 1), stride=1, padding=(margin, 0))
    clear = F.max_pool2d(grown, (1, 2 * margin + 1), stride=1, padding=(0, margin))[0, 0] == 0
    r = int(3 * cfg.sigma + 0.5)  # the blur's padding makes the crop's border band unlike the image
    clear[:r], clear[:, :r] = False, False
    clear[clear.shape[0] - p - r + 1 :], clear[:, clear.shape[1] - p - r + 1 :] = False, False
    ky, kx = torch.nonzero(clear, as_tuple=True)
    if ky.numel() == 0:
        return image
    gen = torch.Generator().manual_seed(cfg.seed)
    pick = torch.randperm(ky.numel(), generator=gen)[: cfg.keys].to(ky.device)
    ky, kx = ky[pick], kx[pick]
    mean, basis = _pca(_centred(_unfold_at(low, ky, kx, p), 3), cfg.dims)

    def feature(ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        return (_centred(_unfold_at(low, ys, xs, p), 3) - mean) @ basis

    keys = feature(ky, kx)
    gy, gx = _grid(
        (obj_box[0] - top, obj_box[1] - left, obj_box[2] - top, obj_box[3] - left),
        (int(x.shape[-2]), int(x.shape[-1])),
        p,
        cfg.stride,
    )
    grid = torch.stack([gy, gx]).to(x.device)
    query = feature(gy.flatten(), gx.flatten())
    nn = _nearest(query, keys)
    dist = (query - keys[nn]).pow(2).sum(1).view(gy.shape)
    pos = torch.stack([ky[nn], kx[nn]]).view(2, *gy.shape)
    pos = _coherence(pos, dist, grid, query.view(*gy.shape, -1), feature, clear, cfg)
    use = F.max_pool2d(inside.float(), p, stride=1)[0, 0][gy, gx] > 0  # cells touching the object
    band, target = _fold(high, pos, grid, use, p, cfg.window)
    # the energy the blend of overlapping values took away, given back per channel
    current = band[0][:, inside[0, 0]].std(1).clamp_min(1e-6)
    gain = (target / current).clamp(*cfg.gain_range)[None, :, None, None]
    out = (low + cfg.amount * gain * band + (1 - cfg.amount) * high).clamp(-1, 1).to(image.dtype)
    result = image.clone()
    result[..., top:bottom, left:right] = torch.where(inside, out, image[..., top:bottom, left:right])
    return result
