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
