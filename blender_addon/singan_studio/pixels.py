"""Pixels between the wire and Blender images, with numpy (no per-pixel Python).

The wire (docs/protocol.md) carries uint8 rows top to bottom, channels interleaved. Blender's
``Image.pixels`` is a flat float array of RGBA rows **bottom to top**, 0..1; for 8-bit images the
values are the stored (sRGB-encoded) bytes / 255, for float images they are scene-linear.
"""

from __future__ import annotations

import bpy
import numpy as np
from bpy.app.handlers import persistent

from .protocol.client import Image


def wire_to_blender(image: Image) -> np.ndarray:
    """Blender pixels of a uint8 ``RGB``/``RGBA``/``BGRA`` wire image.

    Returns:
        float32, shape ``(height * width * 4,)``, RGBA, bottom row first, values k/255 (exact
        for an 8-bit Blender image); alpha 1 where the wire has none. One float32 array is
        written (no intermediate copies: a 4K image is 133 MB of floats).

    Raises:
        ValueError: another order or dtype.
    """
    if image.dtype != "uint8" or image.order not in ("RGB", "RGBA", "BGRA"):
        raise ValueError(f"cannot show a {image.order} {image.dtype} image")
    rows = np.frombuffer(image.data, np.uint8).reshape(image.height, image.width, image.channels)[::-1]
    out = np.empty((image.height, image.width, 4), np.float32)
    if image.order == "RGBA":  # whole rows at once: a channel-strided copy took ~10x longer (4K: 0.4 s of CPU)
        out[...] = rows
    else:
        out[..., :3] = rows[..., 2::-1] if image.order == "BGRA" else rows[..., :3]
        out[..., 3] = rows[..., 3] if image.channels == 4 else 255.0
    out *= np.float32(1 / 255)
    return out.reshape(-1)


def blender_to_wire(pixels: np.ndarray, width: int, height: int, name: str = "image") -> Image:
    """A wire image (uint8 ``RGBA``, top row first) of Blender pixels.

    Args:
        pixels: flat float array of ``height * width * 4`` RGBA values, bottom row first, 0..1
            in the sRGB encoding (values outside are clipped).
        width, height: the image's size in pixels.
        name: the image's role in the request (``"image"``).
    """
    rows = np.asarray(pixels, np.float32).reshape(height, width, 4)[::-1]
    data = np.clip(np.rint(rows * 255.0), 0, 255).astype(np.uint8)
    return Image(name, width, height, "RGBA", data.tobytes())


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """The sRGB transfer function (IEC 61966-2-1) of linear values, clipped to 0..1."""
    values = np.clip(values, 0.0, 1.0)
    return np.where(values <= 0.0031308, values * 12.92, 1.055 * np.power(values, 1 / 2.4) - 0.055)


def read_image(image: bpy.types.Image, name: str = "image") -> Image:
    """The pixels of a Blender image as a wire image (uint8 RGBA, top row first).

    Float images (EXR, HDR) are converted from scene-linear to sRGB and clipped to 0..1, since
    the daemon reads values as sRGB.

    Raises:
        ValueError: the image has no pixels (e.g. its file is missing) or not 4 channels.
    """
    width, height = image.size
    if width == 0 or height == 0 or image.channels != 4:
        raise ValueError(f"image '{image.name}' has no readable RGBA pixels (is its file missing?)")
    pixels = np.empty(width * height * 4, np.float32)
    image.pixels.foreach_get(pixels)
    if image.is_float:
        pixels.reshape(-1, 4)[:, :3] = linear_to_srgb(pixels.reshape(-1, 4)[:, :3])
    return blender_to_wire(pixels, width, height, name)


def new_image(name: str, image: Image, tags: dict) -> bpy.types.Image:
    """A new 8-bit Blender image with a wire image's pixels (bulk ``foreach_set``).

    Packed into the .blend when it is saved (:func:`pack_results`), not here: packing encodes a PNG
    (seconds for a 4K plate), which would freeze Blender when the result arrives.

    Args:
        name: the datablock name (Blender appends ``.001`` if it is taken).
        image: a uint8 RGB/RGBA/BGRA wire image.
        tags: custom properties to set on the datablock (``singan_kind``, ``singan_model``...).
    """
    result = bpy.data.images.new(name, image.width, image.height, alpha=image.order != "RGB")
    result.pixels.foreach_set(wire_to_blender(image))
    for key, value in tags.items():
        result[key] = value
    result[PACK_ON_SAVE] = True
    return result


PACK_ON_SAVE = "singan_pack_on_save"
"""Custom property of the images :func:`new_image` made that are not packed yet."""


@persistent
def pack_results(*_args) -> None:
    """``save_pre`` handler: pack the add-on's new images into the .blend being saved."""
    for image in bpy.data.images:
        if image.get(PACK_ON_SAVE):
            if image.packed_file is None:
                image.pack()
            del image[PACK_ON_SAVE]


def register() -> None:
    bpy.app.handlers.save_pre.append(pack_results)


def unregister() -> None:
    if pack_results in bpy.app.handlers.save_pre:
        bpy.app.handlers.save_pre.remove(pack_results)


def remove_if_unused(image: bpy.types.Image | None) -> None:
    """Delete an image datablock (one this add-on replaced) once nothing uses it any more."""
    if image is not None and image.users == 0:
        bpy.data.images.remove(image)
