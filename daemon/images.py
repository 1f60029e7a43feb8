"""Wire images (:class:`protocol.wire.Image`) <-> the core's tensors.

Inputs may be GRAY, RGB, RGBA or BGRA (Krita), uint8 (0..255) or float32 (0..1, clipped); they
become (1, 3, H, W) float32 in [-1, 1] with alpha dropped (not composited), the same rule as
:func:`singan_core.imageio.load_image` for files. Masks follow :func:`singan_core.imageio.load_mask`.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from protocol.schema import MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE
from protocol.wire import CHANNEL_ORDERS, Image
from singan_core.imageio import from_uint8, mask_from_pil, to_rgb, to_uint8


def _array(image: Image) -> np.ndarray:
    """(H, W, C) uint8 in RGB(A) or grey order."""
    shape = (image.height, image.width, image.channels)
    if image.dtype == "float32":
        values = np.frombuffer(image.data, dtype="<f4").reshape(shape)
        array = (np.nan_to_num(values, nan=0.0).clip(0.0, 1.0) * 255.0).round().astype(np.uint8)
    else:
        array = np.frombuffer(image.data, dtype=np.uint8).reshape(shape)
    if image.order == "BGRA":
        array = array[..., [2, 1, 0, 3]]
    return array[..., 0] if image.channels == 1 else array


def compact(image: Image, rows: int = 256) -> Image:
    """``image`` as the daemon keeps a queued input: uint8 in the same channel order (a float32
    frame is converted, 0..1 -> 0..255 as :func:`to_tensor` would, a quarter of its bytes),
    ``rows`` rows at a time so that the conversion itself needs little more than the result."""
    if image.dtype == "uint8":
        return image
    values = np.frombuffer(image.data, dtype="<f4").reshape(image.height, image.width, image.channels)
    out = np.empty(values.shape, np.uint8)
    for top in range(0, image.height, rows):
        part = np.nan_to_num(values[top : top + rows], nan=0.0).clip(0.0, 1.0)
        out[top : top + rows] = (part * 255.0).round()
    return Image(image.name, image.width, image.height, image.order, memoryview(out.reshape(-1)))


def to_pil(image: Image) -> PILImage.Image:
    return PILImage.fromarray(np.ascontiguousarray(_array(image)))


def decode_file(data: bytes, name: str) -> torch.Tensor:
    """An image file's bytes as (1, 3, H, W) float32 in [-1, 1] (the rule of
    :func:`singan_core.imageio.load_image`, without reading the file a second time).
    Raises ValueError naming ``name`` if Pillow cannot read it."""
    try:
        with PILImage.open(io.BytesIO(data)) as im:
            return from_uint8(np.asarray(to_rgb(im)))
    except (UnidentifiedImageError, OSError, PILImage.DecompressionBombError) as exc:
        raise ValueError(f"{name}: not a readable image ({exc})") from None


def checked_image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of an image file's bytes, after checking that it is within the protocol's
    limits (:data:`~protocol.schema.MAX_IMAGE_SIDE`, :data:`~protocol.schema.MAX_IMAGE_PIXELS`,
    read from the header before any pixel is decoded: a decompression bomb stops there) and that
    its pixels decode (a truncated file fails here, not in the training).

    Raises:
        ValueError: one line: not an image, too large, or damaged.
    """
    try:
        with PILImage.open(io.BytesIO(data)) as im:
            width, height = im.size
            if max(width, height) > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
                raise ValueError(
                    f"{width}x{height} px is over the limit ({MAX_IMAGE_SIDE} px a side, {MAX_IMAGE_PIXELS} px in all)"
                )
            im.load()
    except ValueError:
        raise
    except Exception as exc:  # UnidentifiedImageError, OSError (truncated), DecompressionBombError, ...
        raise ValueError(f"not a readable image ({type(exc).__name__}: {exc})") from None
    return width, height


def to_tensor(image: Image) -> torch.Tensor:
    """(1, 3, H, W) float32 in [-1, 1]."""
    return from_uint8(np.asarray(to_rgb(to_pil(image))))


def to_mask(image: Image) -> torch.Tensor:
    """(1, 1, H, W) bool: alpha > 50 % if the image has transparent pixels, else luminance > 50 %."""
    return mask_from_pil(to_pil(image))


def from_tensor(x: torch.Tensor, name: str, order: str = "RGB", region: torch.Tensor | None = None) -> Image:
    """(1, 3, H, W) or (3, H, W) in [-1, 1] as a uint8 wire image in ``order``.

    The alpha of RGBA/BGRA is 255, or with ``region`` ((1, 1, H, W) bool) 255 inside it and 0 outside.
    """
    rgb = to_uint8(x)
    if CHANNEL_ORDERS[order] == 4:
        alpha = (
            np.full(rgb.shape[:2], 255, np.uint8)
            if region is None
            else region[0, 0].cpu().numpy().astype(np.uint8) * 255
        )
        rgb = np.concatenate([rgb, alpha[..., None]], axis=-1)
        if order == "BGRA":
            rgb = rgb[..., [2, 1, 0, 3]]
    height, width = rgb.shape[:2]
    return Image(name, width, height, order, np.ascontiguousarray(rgb).tobytes())


def image_sha256(image: Image) -> str:
    """SHA-256 (hex) of the image as 8-bit RGB: the same picture gives the same hash in any order."""
    return hashlib.sha256(to_rgb(to_pil(image)).tobytes()).hexdigest()
