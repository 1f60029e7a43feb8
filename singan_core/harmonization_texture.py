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
  structure (hair, print, edges' exact place); the default keeps half.

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
        gain_range: clamp of the per-channel energy gain.
        seed: seed of the key sample.
    """

    sigma: float = 1.5
    patch: int = 7
    stride: int = 2
    window: float = 1.0
    keys: int = 8000
    dims: int = 16
    reach: float = 0.2
    amount: float = 0.5
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
        q = queries[i:i + chunk]
        out[i:i + chunk] = (k_norm[None] - 2 * q @ keys.T).argmin(1)
    return out


def analogy_detail(image: torch.Tensor, mask: torch.Tensor, config: AnalogyConfig = AnalogyConfig(),
                   exclude: torch.Tensor | None = None) -> torch.Tensor:
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
    size = tuple(image.shape[-2:])
    rows, cols = mask[0, 0].any(1).nonzero(), mask[0, 0].any(0).nonzero()
    obj_box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    top, left, bottom, right = _expand(obj_box, round(cfg.reach * max(size)) + p, size)
    x = image[..., top:bottom, left:right].float()
    inside = mask[..., top:bottom, left:right]
    banned = inside if exclude is None else exclude[..., top:bottom, left:right]
    low = gaussian_blur(x, cfg.sigma)
    high = x - low
    # keys: patches wholly outside the object (and not touching it through the blur)
    margin = p + 2 * int(3 * cfg.sigma + 0.5)
    clear = F.max_pool2d(banned.float(), 2 * margin + 1, stride=1, padding=margin)[0, 0] == 0
    ky, kx = torch.nonzero(clear[: clear.shape[0] - p + 1, : clear.shape[1] - p + 1], as_tuple=True)
    if ky.numel() == 0:
        return image
    gen = torch.Generator().manual_seed(cfg.seed)
    pick = torch.randperm(ky.numel(), generator=gen)[: cfg.keys].to(ky.device)
    ky, kx = ky[pick], kx[pick]
    key_feat = _centred(_unfold_at(low, ky, kx, p), 3)
    values = _unfold_at(high, ky, kx, p)
    # queries: a grid over the object's box (relative to the crop), patches touching the object
    oy, ox = obj_box[0] - top, obj_box[1] - left
    h_obj, w_obj = obj_box[2] - obj_box[0], obj_box[3] - obj_box[1]
    qy = torch.arange(oy - p // 2, oy + h_obj - p // 2 + cfg.stride, cfg.stride).clamp(0, x.shape[-2] - p)
    qx = torch.arange(ox - p // 2, ox + w_obj - p // 2 + cfg.stride, cfg.stride).clamp(0, x.shape[-1] - p)
    qy, qx = torch.meshgrid(qy.unique(), qx.unique(), indexing="ij")
    qy, qx = qy.flatten().to(x.device), qx.flatten().to(x.device)
    touches = F.max_pool2d(inside.float(), p, stride=1)[0, 0][qy, qx] > 0
    qy, qx = qy[touches], qx[touches]
    query_feat = _centred(_unfold_at(low, qy, qx, p), 3)
    # PCA of the keys' features (exact search in dims dimensions)
    mean = key_feat.mean(0, keepdim=True)
    _, _, v = torch.linalg.svd(key_feat - mean, full_matrices=False)
    basis = v[: cfg.dims].T
    nn_idx = _nearest((query_feat - mean) @ basis, (key_feat - mean) @ basis)
    # blend the chosen values with a Gaussian window centred on each patch
    t = torch.arange(p, dtype=x.dtype, device=x.device) - (p - 1) / 2
    w1 = torch.exp(-0.5 * (t / cfg.window) ** 2)
    win = (w1[:, None] * w1[None, :]).flatten().repeat(3)
    acc = torch.zeros_like(x)
    wsum = torch.zeros_like(x[:, :1])
    offsets = torch.arange(p, device=x.device)
    r_idx = (qy[:, None] + offsets)[:, :, None].expand(-1, p, p).flatten()
    c_idx = (qx[:, None] + offsets)[:, None, :].expand(-1, p, p).flatten()
    flat = r_idx * x.shape[-1] + c_idx
    contrib = (values[nn_idx] * win).view(-1, 3, p * p).permute(1, 0, 2).reshape(3, -1)
    acc.view(3, -1).index_add_(1, flat, contrib)
    wsum.view(1, -1).index_add_(1, flat, win[: p * p].repeat(qy.numel())[None])
    band = acc / wsum.clamp_min(1e-8)
    # the energy the blend of overlapping values took away, given back per channel
    target = values[nn_idx].view(-1, 3, p * p).permute(1, 0, 2).reshape(3, -1).std(1)
    current = band[0][:, inside[0, 0]].std(1).clamp_min(1e-6)
    gain = (target / current).clamp(*cfg.gain_range)[None, :, None, None]
    out = (low + cfg.amount * gain * band + (1 - cfg.amount) * high).clamp(-1, 1).to(image.dtype)
    result = image.clone()
    result[..., top:bottom, left:right] = torch.where(inside, out, image[..., top:bottom, left:right])
    return result
