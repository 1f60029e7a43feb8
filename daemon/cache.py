"""Loaded pyramids, least recently used first out, within a memory budget."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

from singan_core.model import SinGANPyramid


def pyramid_bytes(pyramid: SinGANPyramid) -> int:
    """Memory held by a pyramid's tensors and nets (bytes, on whatever device they live)."""
    tensors = [*pyramid.reals, *pyramid.z_opts]
    for net in (*pyramid.generators, *pyramid.discriminators):
        tensors += [*net.parameters(), *net.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


class PyramidCache:
    """``get(model_id)`` loads through ``load`` on a miss and keeps the most recently used pyramids
    whose total size fits ``budget_bytes`` (the newest one is always kept, however large).
    Thread-safe: the worker loads, the socket loop discards deleted models."""

    def __init__(self, load: Callable[[str], SinGANPyramid], budget_bytes: int):
        self._load, self.budget_bytes = load, budget_bytes
        self._entries: OrderedDict[str, tuple[SinGANPyramid, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_id: str) -> SinGANPyramid:
        with self._lock:
            if model_id in self._entries:
                self._entries.move_to_end(model_id)
                return self._entries[model_id][0]
        pyramid = self._load(model_id)
        with self._lock:
            self._entries[model_id] = (pyramid, pyramid_bytes(pyramid))
            while len(self._entries) > 1 and sum(size for _, size in self._entries.values()) > self.budget_bytes:
                self._entries.popitem(last=False)
        return pyramid

    def discard(self, model_id: str) -> None:
        with self._lock:
            self._entries.pop(model_id, None)

    def __contains__(self, model_id: str) -> bool:
        with self._lock:
            return model_id in self._entries
