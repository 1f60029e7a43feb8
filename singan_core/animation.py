"""Single-image animation: a random walk in noise space (paper sec. 4, "Single image animation").

Scales coarser than ``start_scale`` follow the reconstruction path (the training image's layout);
from ``start_scale`` on, each scale's noise performs the original ``animation.py`` random walk with
momentum, pulled back towards ``z_opt``:

    diff_t = beta * (z_{t-1} - z_{t-2}) + (1 - beta) * n_t,   n_t ~ N(0, 1)
    z_t    = alpha * z_opt + (1 - alpha) * (z_{t-1} + diff_t)

so consecutive frames differ by small, smooth changes and the video keeps the image's layout.
Frames are (F, 3, H, W) in [-1, 1] at the training size.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import InvalidArgument
from .imageio import to_uint8
from .model import SinGANPyramid
from .sampling import draw_noise, generate

ALPHA = 0.1  # pull towards z_opt (original default)
BETA = 0.9  # momentum (original default; its script tries 0.80 .. 0.95)
ANIMATION_FORMATS = {".gif": "GIF", ".webp": "WEBP"}


def default_start_scale(pyramid: SinGANPyramid) -> int:
    """The default start scale k = 0: the coarsest scale walks around ``z_opt``, so the objects of
    the image move gently. From k = 1 on the walk only drives noise scaled by the fine scales'
    ``noise_amp`` (about 0.01-0.02): on draft models frames then differ by about 0.3 % of the
    value range, an almost still picture."""
    return 0


def noise_walk(
    z_opt: torch.Tensor, n_frames: int, k: int, alpha: float, beta: float, gen: torch.Generator
) -> torch.Tensor:
    """``n_frames`` noise maps (F, 3, h, w) of the random walk around ``z_opt`` (1, 3, h, w) at scale k."""
    size = z_opt.shape[-2:]
    z_prev2 = z_opt
    z_prev1 = 0.95 * z_opt + 0.05 * draw_noise(1, size, k, gen, z_opt.device)
    frames = []
    for _ in range(n_frames):
        diff = beta * (z_prev1 - z_prev2) + (1 - beta) * draw_noise(1, size, k, gen, z_opt.device)
        z = alpha * z_opt + (1 - alpha) * (z_prev1 + diff)
        z_prev2, z_prev1 = z_prev1, z
        frames.append(z)
    return torch.cat(frames)


@torch.no_grad()
def animate(
    pyramid: SinGANPyramid,
    n_frames: int = 60,
    start_scale: int | None = None,
    *,
    alpha: float = ALPHA,
    beta: float = BETA,
    seed: int = 0,
    batch_size: int = 8,
    on_step: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Frames of a short video of the training image (paper sec. 4; original ``animation.py``).

    Args:
        pyramid: a completely trained pyramid.
        n_frames: number of frames (1 .. 10000).
        start_scale: first scale k whose noise moves (0 = coarsest: the whole layout moves; finer:
            only details move); default :func:`default_start_scale`.
        alpha: pull of the walk towards ``z_opt``, in [0, 1] (0 = free walk, 1 = still image).
        beta: momentum of the walk, in [0, 1) (higher = smoother, slower changes).
        seed: seed of the walk.
        batch_size: frames generated together (memory vs speed).
        on_step: called as ``on_step(frames_done, n_frames)`` after each batch; it may raise to
            stop between batches (the daemon cancels jobs this way).

    Returns:
        (n_frames, 3, H, W) in [-1, 1], H x W the training size.

    Raises:
        ValueError: naming the argument out of range, or an incompletely trained pyramid.
    """
    k0 = default_start_scale(pyramid) if start_scale is None else start_scale
    _check_args(pyramid, n_frames, k0, alpha, beta)
    gen = torch.Generator().manual_seed(seed)
    walks = [
        pyramid.z_opts[k].expand(n_frames, -1, -1, -1)
        if k < k0
        else noise_walk(pyramid.z_opts[k], n_frames, k, alpha, beta, gen)
        for k in range(pyramid.num_scales)
    ]
    frames = []
    for first in range(0, n_frames, batch_size):
        frames.append(generate(pyramid, [z[first : first + batch_size] for z in walks]).clamp(-1, 1))
        if on_step is not None:
            on_step(first + frames[-1].shape[0], n_frames)
    return torch.cat(frames)


def animation_bytes(frames: torch.Tensor, fmt: str, fps: float = 10.0) -> bytes:
    """Encode frames (F, 3, H, W) in [-1, 1] as a looping animated ``"GIF"`` or ``"WEBP"`` file.

    ``fps`` is frames per second (> 0); GIF stores frame times in 10 ms steps.
    """
    if not fps > 0:
        raise InvalidArgument("fps", f"must be > 0, got {fps}")
    images = [Image.fromarray(np.ascontiguousarray(to_uint8(f))) for f in frames]
    buffer = io.BytesIO()
    extra = {"lossless": False, "quality": 90} if fmt == "WEBP" else {}
    images[0].save(
        buffer, format=fmt, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0, **extra
    )
    return buffer.getvalue()


def animation_format(path: str | os.PathLike) -> str:
    """The Pillow format for an output path: ``.gif`` or ``.webp``; ``ValueError`` otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in ANIMATION_FORMATS:
        raise InvalidArgument("out", f"{path} must end in {' or '.join(ANIMATION_FORMATS)}")
    return ANIMATION_FORMATS[suffix]


def _check_args(pyramid: SinGANPyramid, n_frames: int, start_scale: int, alpha: float, beta: float) -> None:
    pyramid.require_complete()
    if not 1 <= n_frames <= 10000:
        raise InvalidArgument("n_frames", f"must be in 1..10000, got {n_frames}")
    if not 0 <= start_scale < pyramid.num_scales:
        raise InvalidArgument(
            "start_scale", f"must be in 0..{pyramid.num_scales - 1} (0 = coarsest), got {start_scale}"
        )
    if not 0 <= alpha <= 1:
        raise InvalidArgument("alpha", f"must be in [0, 1], got {alpha}")
    if not 0 <= beta < 1:
        raise InvalidArgument("beta", f"must be in [0, 1), got {beta}")
