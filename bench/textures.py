"""Procedural test textures for the full-resolution bench and tests: a near-regular
lattice of interlocking rings (chainmail), a fine plaster and bark-like wood.

Each is a height field lit from the upper left (Lambert shading of its normals) with a little
jitter and pixel noise, so that none is exactly periodic or exactly smooth, like a photo. Returns
(1, 3, size, size) float32 in [-1, 1]; the same arguments give the same image.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

__all__ = ["RING_PERIOD", "chainmail", "plaster", "wood"]

RING_PERIOD = 24  # px between ring centres along x, and between every second row along y


def _shade(height: np.ndarray, albedo: np.ndarray, rng: np.random.Generator, noise: float) -> torch.Tensor:
    """Lambert shading of ``height`` (H, W) lit from the upper left, times ``albedo`` (H, W, 3) in
    [0, 1], plus Gaussian pixel noise of std ``noise`` (in [0, 1] units); as (1, 3, H, W) in [-1, 1]."""
    gy, gx = np.gradient(height)
    normal = np.stack([-gx, -gy, np.ones_like(height)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    light = np.array([-0.5, -0.6, 0.62])
    light /= np.linalg.norm(light)
    lit = 0.25 + 0.75 * np.clip(normal @ light, 0, 1)
    img = albedo * lit[..., None] + rng.normal(0, noise, albedo.shape)
    img = np.clip(img, 0, 1)
    return torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None] * 2 - 1


def chainmail(size: int = 384, seed: int = 0, period: int = RING_PERIOD) -> torch.Tensor:
    """Interlocking steel rings on a staggered grid (``period`` px along x and y),
    each ring's centre jittered by ~0.6 px and its brightness by ~8 %, rows alternately in front."""
    rng = np.random.default_rng(seed)
    s = period
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    height = np.zeros((size, size))
    albedo_gain = np.ones((size, size))
    radius, width = 0.52 * s, 0.13 * s
    for row in range(-1, 2 * size // s + 2):
        cy = row * s / 2
        for col in range(-1, size // s + 2):
            cx = col * s + (s / 2 if row % 2 else 0)
            jy, jx = rng.normal(0, 0.6, 2)
            r = np.hypot(yy - cy - jy, xx - cx - jx)
            t = 1 - ((r - radius) / width) ** 2
            ring = np.sqrt(np.clip(t, 0, None)) * width
            lift = ring + (0.3 * width if row % 2 else 0)  # odd rows lie on top where rings cross
            on = ring > 0
            take = on & (lift > height)
            height[take] = lift[take]
            albedo_gain[take] = 1 + rng.normal(0, 0.08)
    gap = height == 0
    height = ndimage.gaussian_filter(height, 0.6)
    albedo = np.empty((size, size, 3))
    albedo[...] = np.array([0.78, 0.78, 0.8]) * albedo_gain[..., None]
    albedo[gap] = np.array([0.12, 0.11, 0.1])
    return _shade(height * 1.5, np.clip(albedo, 0, 1), rng, 0.03)


def plaster(size: int = 384, seed: int = 0) -> torch.Tensor:
    """Fine-grained off-white plaster: octaves of blurred noise (1-8 px) as relief, grain of ~1-2 px."""
    rng = np.random.default_rng(seed)
    height = sum(
        ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), sigma) * sigma for sigma in (0.7, 1.5, 3.0, 8.0)
    )
    tint = 1 + 0.04 * ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), 20) * 20
    albedo = np.array([0.86, 0.83, 0.76]) * tint[..., None]
    return _shade(height * 0.6, np.clip(albedo, 0, 1), rng, 0.02)


def wood(size: int = 384, seed: int = 0) -> torch.Tensor:
    """Bark-like wood: long vertical ridges and deep fissures (noise stretched 12:1 along y, the
    low values cut into grooves), brown, with fine grain."""
    rng = np.random.default_rng(seed)
    ridges = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), (24, 2.0))
    ridges /= ridges.std()
    fissure = np.clip(-ridges - 0.6, 0, None)
    grain = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), (4, 0.6))
    height = 3 * ridges - 8 * fissure + 0.8 * grain / grain.std()
    dark = np.clip(1 - 0.9 * fissure, 0.15, 1)
    albedo = np.array([0.55, 0.38, 0.24]) * dark[..., None] * (1 + 0.05 * grain[..., None] / grain.std())
    return _shade(height, np.clip(albedo, 0, 1), rng, 0.02)
