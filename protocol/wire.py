"""Framing: one message = frame 0 (a msgpack map, the header) + one raw frame per image.

Needs only msgpack (no numpy, no pydantic), so both the daemon and the plugins use it.

A header lists its images under ``"images"``, in frame order: image i is frame i + 1. Each entry
describes the raw buffer (see :class:`Image`); the buffer's byte length must be exactly
``height * width * channels * itemsize``.

Decoding is strict: the header frame is at most :data:`MAX_HEADER_BYTES`, msgpack ext types are
refused (nothing executes code or builds objects), strings/arrays/maps are capped, and map keys
must be strings, each at most once per map. Every client string an error message quotes is
escaped to one line (:func:`one_line`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import msgpack

from .errors import MAX_MESSAGE_CHARS as MAX_MESSAGE_CHARS  # re-exported for the wire's importers
from .errors import ProtocolError
from .errors import one_line as one_line

MAX_HEADER_BYTES = 64 * 1024
"""Largest header frame (bytes) a decoder accepts."""

CHANNEL_ORDERS = {"GRAY": 1, "RGB": 3, "RGBA": 4, "BGRA": 4}
"""Channel orders and their channel counts. ``BGRA`` is Krita's 8-bit pixel layout."""

DTYPE_SIZES = {"uint8": 1, "float32": 4}
"""Sample types and their sizes in bytes. uint8 is 0..255; float32 is 0..1 with the same (sRGB)
encoding as uint8, clipped (reserved for HDR)."""


@dataclass(frozen=True)
class Image:
    """A raw image buffer as it travels on the wire: rows top to bottom, pixels interleaved.

    Attributes:
        name: role of the image in its message (``"image"``, ``"mask"``, ``"sample"``, ``"preview"``, ...).
        width, height: pixels.
        order: channel order, one of :data:`CHANNEL_ORDERS` (``"RGB"``, ``"RGBA"``, ``"BGRA"``, ``"GRAY"``).
        data: ``height * width * channels * itemsize`` bytes.
        dtype: ``"uint8"`` (0..255) or ``"float32"``.
    """

    name: str
    width: int
    height: int
    order: str
    data: bytes | memoryview
    dtype: str = "uint8"

    @property
    def channels(self) -> int:
        return CHANNEL_ORDERS[self.order]

    def spec(self) -> dict[str, Any]:
        """The header entry describing this image."""
        return {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "channels": self.channels,
            "order": self.order,
            "dtype": self.dtype,
        }


def encode(header: dict[str, Any], images: Sequence[Image] = ()) -> list[bytes | memoryview]:
    """The frames of one message: the msgpack header (with ``images`` filled in) and the buffers."""
    header = dict(header, images=[image.spec() for image in images])
    return [msgpack.packb(header, use_bin_type=True), *(image.data for image in images)]


def short_repr(value: Any, limit: int = 60) -> str:
    """The start of a value a client sent, for an error message. Never fails: msgpack nests up to
    1024 levels, deeper than ``repr`` can go."""
    try:
        return repr(value)[:limit]
    except RecursionError:
        return f"a {type(value).__name__} nested too deeply to show"


def _unique_keys(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """A msgpack map as a dict, refusing duplicate keys (with "last one wins", ``op: hello`` then
    ``op: shutdown`` in one map would run shutdown)."""
    bad = next((key for key, _ in pairs if not isinstance(key, str)), None)
    if bad is not None:  # msgpack bin keys decode as bytes and would never match a field name
        raise ProtocolError(
            f"header: map keys must be msgpack str, got {type(bad).__name__} {short_repr(bad)}", "header"
        )
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set = set()
        for key, _ in pairs:
            if key in seen:
                break
            seen.add(key)
        duplicate = key
        raise ProtocolError(f"header: duplicate map key {short_repr(duplicate)}", "header")
    return out


def _no_ext(code: int, data: bytes) -> Any:
    raise ProtocolError(f"header: msgpack extension type {code} is not allowed", "header")


def decode_header(frame: bytes) -> dict[str, Any]:
    """Parse a header frame with strict limits.

    Raises:
        ProtocolError: too large, not msgpack, not a map, ext types, non-string or duplicate keys
            (in any map of the header).
    """
    if len(frame) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header: {len(frame)} bytes, the limit is {MAX_HEADER_BYTES}", "header", "too_large")
    try:
        header = msgpack.unpackb(
            frame,
            raw=False,
            strict_map_key=True,
            ext_hook=_no_ext,
            object_pairs_hook=_unique_keys,
            max_str_len=MAX_HEADER_BYTES,
            max_bin_len=MAX_HEADER_BYTES,
            max_array_len=4096,
            max_map_len=256,
            max_ext_len=0,
        )
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types (ValueError, ExtraData, ...)
        raise ProtocolError(f"header: not a valid msgpack message ({type(exc).__name__}: {exc})", "header") from None
    if not isinstance(header, dict):
        raise ProtocolError(f"header: must be a msgpack map, got {type(header).__name__}", "header")
    return header


def decode(frames: Sequence[bytes | memoryview]) -> tuple[dict[str, Any], list[Image]]:
    """Header and images of a message (the frames after any routing envelope).

    Raises:
        ProtocolError: a malformed header, or image entries that do not match the buffer frames.
    """
    if not frames:
        raise ProtocolError("message: no frames", "header")
    header = decode_header(bytes(frames[0]))
    return header, decode_images(header, frames[1:])


def decode_images(header: dict[str, Any], buffers: Sequence[bytes | memoryview]) -> list[Image]:
    """The images a decoded header describes, checked against its buffer frames (frames 1..).

    Raises:
        ProtocolError: image entries that do not match the buffer frames.
    """
    specs = header.get("images", [])
    if not isinstance(specs, list):
        raise ProtocolError("images: must be a list of image descriptions", "images")
    if len(specs) != len(buffers):
        raise ProtocolError(f"images: {len(specs)} described but {len(buffers)} buffer frames sent", "images")
    return [_image(i, spec, buffer) for i, (spec, buffer) in enumerate(zip(specs, buffers))]


def _image(i: int, spec: Any, buffer: bytes | memoryview) -> Image:
    where = f"images[{i}]"
    if not isinstance(spec, dict):
        raise ProtocolError(f"{where}: must be a map", where)
    name = spec.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= 32:
        raise ProtocolError(f"{where}.name: must be a string of 1..32 characters", f"{where}.name")
    order, dtype = spec.get("order"), spec.get("dtype", "uint8")
    if not isinstance(order, str) or order not in CHANNEL_ORDERS:  # a list or map is not even hashable
        raise ProtocolError(
            f"{where}.order: must be one of {', '.join(CHANNEL_ORDERS)}, got {short_repr(order)}", f"{where}.order"
        )
    if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
        raise ProtocolError(
            f"{where}.dtype: must be one of {', '.join(DTYPE_SIZES)}, got {short_repr(dtype)}", f"{where}.dtype"
        )
    channels = spec.get("channels", CHANNEL_ORDERS[order])
    if channels != CHANNEL_ORDERS[order]:
        raise ProtocolError(
            f"{where}.channels: {order} has {CHANNEL_ORDERS[order]} channels, got {short_repr(channels)}",
            f"{where}.channels",
        )
    for key in ("width", "height"):
        value = spec.get(key)
        if type(value) is not int or value < 1:
            raise ProtocolError(
                f"{where}.{key}: must be a positive integer (pixels), got {short_repr(value)}", f"{where}.{key}"
            )
    expected = spec["width"] * spec["height"] * channels * DTYPE_SIZES[dtype]
    if len(buffer) != expected:
        raise ProtocolError(
            f"{where}: buffer has {len(buffer)} bytes, {spec['width']}x{spec['height']} {order} {dtype} needs {expected}",
            f"{where}",
        )
    return Image(name, spec["width"], spec["height"], order, buffer, dtype)
