"""Byte-level pixel plumbing for Krita's 8-bit RGBA pixel data (B, G, R, A per pixel, rows top to
bottom, no padding). Only slicing, ``bytes.translate`` and big-integer operations, which run in C:
no per-pixel Python loops, so a 4K layer takes milliseconds."""

from __future__ import annotations

_ANY_TO_FULL = bytes([0] + [255] * 255)  # translate table: 0 stays 0, 1..255 become 255


def alpha(bgra: bytes) -> bytes:
    """The alpha channel of BGRA pixels: one byte per pixel, 0..255 (``len(bgra) // 4`` bytes)."""
    return bytes(bgra[3::4])


def with_alpha(bgra: bytes, mask: bytes) -> bytes:
    """BGRA pixels with their alpha replaced by ``mask`` (one byte per pixel).

    Raises:
        ValueError: ``mask`` does not have one byte per pixel of ``bgra``.
    """
    buffer = bytearray(bgra)
    buffer[3::4] = mask  # bytearray slice assignment checks the length
    return bytes(buffer)


def coverage(mask: bytes) -> bytes:
    """255 wherever ``mask`` is above 0, else 0 (same length): where a layer shows at all."""
    return mask.translate(_ANY_TO_FULL)


def union(a: bytes, b: bytes) -> bytes:
    """Bitwise OR of two equally long masks; for 0/255 masks that is their union (their maximum).

    Raises:
        ValueError: the lengths differ.
    """
    if len(a) != len(b):
        raise ValueError(f"masks of {len(a)} and {len(b)} bytes")
    return (int.from_bytes(a, "little") | int.from_bytes(b, "little")).to_bytes(len(a), "little")


def is_blank(mask: bytes, threshold: int = 127) -> bool:
    """True if no byte of ``mask`` is above ``threshold`` (the daemon reads masks as "inside" above 50 %)."""
    return not mask or max(mask) <= threshold


def crop(data: bytes, width: int, x: int, y: int, w: int, h: int, depth: int = 4) -> bytes:
    """The ``w`` x ``h`` pixels at (``x``, ``y``) of ``data`` (rows of ``width`` pixels of ``depth``
    bytes each).

    Raises:
        ValueError: the rectangle is not inside ``data``.
    """
    rows = len(data) // (width * depth)
    if x < 0 or y < 0 or w < 0 or h < 0 or x + w > width or y + h > rows:
        raise ValueError(f"{w} x {h} at ({x}, {y}) is not inside {width} x {rows} pixels")
    stride, start, size = width * depth, x * depth, w * depth
    return b"".join(data[(y + r) * stride + start : (y + r) * stride + start + size] for r in range(h))


def embed(mask: bytes | None, x: int, y: int, w: int, h: int, width: int, height: int) -> bytes:
    """A ``width`` x ``height`` mask (one byte per pixel), 0 everywhere but the ``w`` x ``h``
    rectangle at (``x``, ``y``), which holds ``mask`` (``None``: 255, a full rectangle).

    Raises:
        ValueError: the rectangle is not inside, or ``mask`` is not ``w * h`` bytes.
    """
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValueError(f"{w} x {h} at ({x}, {y}) is not inside {width} x {height} pixels")
    inner = bytes([255]) * (w * h) if mask is None else mask
    if len(inner) != w * h:
        raise ValueError(f"a {w} x {h} mask needs {w * h} bytes, got {len(inner)}")
    out = bytearray(width * height)
    for r in range(h):
        out[(y + r) * width + x : (y + r) * width + x + w] = inner[r * w : (r + 1) * w]
    return bytes(out)


_OVER_HALF = bytes([0] * 128 + [1] * 128)  # translate table: 1 where a mask is over 50 %, else 0
_NOT_OPAQUE = bytes([1] * 255 + [0])  # 1 where an alpha is below 255, else 0


def count_over_half(mask: bytes) -> int:
    """How many pixels of ``mask`` (one byte each) are over 50 % (what the daemon synthesises)."""
    return mask.translate(_OVER_HALF).count(1)


def transparent_outside(bgra: bytes, mask: bytes) -> bool:
    """Whether some pixel of ``bgra`` that ``mask`` leaves out (50 % or less) is not fully opaque.

    Raises:
        ValueError: ``mask`` does not have one byte per pixel of ``bgra``.
    """
    if len(mask) * 4 != len(bgra):
        raise ValueError(f"a mask of {len(mask)} bytes for {len(bgra) // 4} pixels")
    see_through = int.from_bytes(alpha(bgra).translate(_NOT_OPAQUE), "little")
    outside = int.from_bytes(mask.translate(_OVER_HALF).translate(bytes([1, 0]) + bytes(254)), "little")
    return bool(see_through & outside)


_ONE_TO_FULL = bytes([0, 255]) + bytes(254)  # translate table: 1 becomes 255, everything else 0


def band(mask: bytes, width: int, px: int) -> bytes:
    """The inner band of ``mask`` (one byte per pixel, rows of ``width``): 255 where the mask is
    over 50 % and a pixel within ``px`` px of it (a square around it) is not, else 0. Rows are
    integers with one byte per pixel, eroded by shifts and ANDs (no per-pixel Python loop)."""
    rows = [
        int.from_bytes(mask[r * width : (r + 1) * width].translate(_OVER_HALF), "little")
        for r in range(len(mask) // width)
    ]
    across = []
    for row in rows:  # erode along x: a pixel stays where its px neighbours either side are in too
        eroded = row
        for k in range(1, px + 1):
            eroded &= (row >> (8 * k)) & (row << (8 * k))
        across.append(eroded)
    out = bytearray()
    for r, row in enumerate(rows):  # along y, then the band is what the erosion took away
        eroded = across[r]
        for k in range(1, px + 1):
            eroded &= (across[r - k] if r >= k else 0) & (across[r + k] if r + k < len(rows) else 0)
        out += (row ^ eroded).to_bytes(width, "little").translate(_ONE_TO_FULL)
    return bytes(out)


def paste(base: bytes, width: int, patch: bytes, x: int, y: int, w: int, h: int, mask: bytes | None = None) -> bytes:
    """BGRA ``base`` (rows of ``width`` pixels) with the ``w`` x ``h`` BGRA ``patch`` put at
    (``x``, ``y``): where ``mask`` (one byte per patch pixel) is over 50 %, or everywhere if None.

    Raises:
        ValueError: the rectangle is not inside ``base``, or ``patch``/``mask`` have the wrong size.
    """
    rows = len(base) // (width * 4)
    if (
        x < 0
        or y < 0
        or x + w > width
        or y + h > rows
        or len(patch) != w * h * 4
        or (mask is not None and len(mask) != w * h)
    ):
        raise ValueError(f"a {w} x {h} patch at ({x}, {y}) does not fit {width} x {rows} pixels")
    out = bytearray(base)
    for r in range(h):
        start, row = ((y + r) * width + x) * 4, patch[r * w * 4 : (r + 1) * w * 4]
        if mask is not None:
            keep = bytearray(w * 4)  # 0xFF where the base stays
            inside = mask[r * w : (r + 1) * w].translate(_OVER_HALF).translate(bytes([255, 0]) + bytes(254))
            for c in range(4):
                keep[c::4] = inside
            old = int.from_bytes(out[start : start + w * 4], "little")
            new = int.from_bytes(row, "little")
            k = int.from_bytes(keep, "little")
            row = ((old & k) | (new & ~k & ((1 << (8 * w * 4)) - 1))).to_bytes(w * 4, "little")
        out[start : start + w * 4] = row
    return bytes(out)
