"""Image files <-> tensors (Pillow). Tensors are (1, 3, H, W) float32 in [-1, 1]; arrays (H, W, 3) uint8.

RGBA, LA, P, L, I;16 and other modes are converted to RGB: alpha is dropped (not composited),
grey is repeated over the three channels.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import ImageReadError


def load_image(path: str | os.PathLike) -> torch.Tensor:
    """Read an image file as (1, 3, H, W) float32 in [-1, 1]. Raises :class:`ImageReadError`."""
    return from_uint8(np.asarray(_read(path, "image", to_rgb)))


def _read(path: str | os.PathLike, what: str, convert):
    """``convert(opened Pillow image)``; a missing or unreadable file raises :class:`ImageReadError`
    whose message starts with ``what`` (the argument's name)."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{what}: no such file: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            return convert(im)
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageReadError(f"{what}: {path} is not a readable image ({exc})") from None


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow image as mode RGB: alpha dropped, grey repeated, 16-bit grey scaled to 8 bits."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = Image.fromarray((np.asarray(im, dtype=np.float64) / 257.0).clip(0, 255).astype(np.uint8))
    return im.convert("RGB")


def load_mask(path: str | os.PathLike) -> torch.Tensor:
    """Read a mask image as (1, 1, H, W) bool, True inside.

    Any single-channel, RGB or RGBA image: if it has an alpha channel with transparent pixels
    (alpha <= 50 %), inside is alpha > 50 % (a cut-out); otherwise inside is luminance > 50 %
    (white on black).
    Raises :class:`ImageReadError`.
    """
    return mask_from_pil(_read(path, "mask", lambda im: im.copy()))


def mask_from_pil(im: Image.Image) -> torch.Tensor:
    """A Pillow image as a mask, (1, 1, H, W) bool, with the rule of :func:`load_mask`."""
    return torch.from_numpy(_mask_level(im) > 127)[None, None]


def _mask_level(im: Image.Image) -> np.ndarray:
    """(H, W) uint8: the alpha channel if it has transparent pixels, else the luminance."""
    if "A" in im.getbands():
        alpha = np.asarray(im.getchannel("A"))
        if alpha.min() <= 127:
            return alpha
    return np.asarray(to_rgb(im).convert("L"))


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [-1, 1]."""
    x = torch.from_numpy(np.array(array, dtype=np.uint8, copy=True)).permute(2, 0, 1)[None].float()
    return x / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) in [-1, 1] -> (H, W, 3) uint8 (clamped, rounded)."""
    x = x.detach().float().cpu()
    if x.dim() == 4:
        x = x[0]
    return ((x.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


def save_image(x: torch.Tensor, path: str | os.PathLike) -> None:
    """Write (1, 3, H, W) or (3, H, W) in [-1, 1] as an 8-bit RGB image (format from the suffix)."""
    Image.fromarray(to_uint8(x)).save(path)


def png_bytes(x: torch.Tensor) -> bytes:
    """(1, 3, H, W) or (3, H, W) in [-1, 1] encoded as an 8-bit RGB PNG file's bytes."""
    return image_bytes(x, "PNG")


def image_bytes(x: torch.Tensor, fmt: str) -> bytes:
    """(1, 3, H, W) or (3, H, W) in [-1, 1] encoded as an 8-bit RGB file in Pillow format ``fmt``."""
    buffer = io.BytesIO()
    extra = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    Image.fromarray(to_uint8(x)).save(buffer, format=fmt, **extra)
    return buffer.getvalue()


def image_format(path: str | os.PathLike) -> str:
    """Pillow's format name for an output path's suffix (``.png`` -> ``"PNG"``).

    Raises:
        ValueError: naming the path when its suffix is not an image format Pillow writes.
    """
    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(f"out: {path} has no image suffix Pillow can write (e.g. .png, .jpg, .webp, .tif)")
    return fmt
