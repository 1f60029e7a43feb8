"""Loaded models (pyramid and, once a lift asks for it, the full-resolution source), least
recently used first out, within a memory budget."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

from singan_core.full_resolution import LiftSource
from singan_core.model import SinGANPyramid


def pyramid_bytes(pyramid: SinGANPyramid) -> int:
    """Memory held by a pyramid's tensors and nets (bytes, on whatever device they live)."""
    tensors = [*pyramid.reals, *pyramid.z_opts]
    for net in (*pyramid.generators, *pyramid.discriminators):
        tensors += [*net.parameters(), *net.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


class LoadedModel:
    """A loaded pyramid and its full-resolution :class:`~singan_core.full_resolution.LiftSource`,
    read on first use (``source``; only lifts need it: a missing or corrupt ``full_source.png``
    fails those, not harmonize or animate). ``has_full_source``: the model directory records a
    ``full_source.png`` (models of ``format_version`` 1 have none and lift from their training image)."""

    def __init__(
        self, pyramid: SinGANPyramid, has_full_source: bool, load_source: Callable[[SinGANPyramid], LiftSource]
    ):
        self.pyramid, self.has_full_source, self._load_source = pyramid, has_full_source, load_source
        self._source: LiftSource | None = None

    @property
    def source(self) -> LiftSource:
        """Raises :class:`singan_core.storage.ModelLoadError` (one line) for a damaged source file."""
        if self._source is None:
            self._source = self._load_source(self.pyramid)
        return self._source

    @property
    def nbytes(self) -> int:
        source = 0 if self._source is None else self._source.image.numel() * self._source.image.element_size()
        return pyramid_bytes(self.pyramid) + source


class PyramidCache:
    """``get(model_id)`` loads through ``load`` on a miss and keeps the most recently used models
    whose total size fits ``budget_bytes`` (the newest one is always kept, however large).
    Thread-safe: the worker loads, the socket loop discards deleted models."""

    def __init__(self, load: Callable[[str], LoadedModel], budget_bytes: int):
        self._load, self.budget_bytes = load, budget_bytes
        self._entries: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_id: str) -> LoadedModel:
        with self._lock:
            if model_id in self._entries:
                self._entries.move_to_end(model_id)
                return self._entries[model_id]
        model = self._load(model_id)
        with self._lock:
            self._entries[model_id] = model
        self.trim()
        return model

    def trim(self) -> None:
        """Drop the least recently used models until the rest fit the budget (after a source was read)."""
        with self._lock:
            while len(self._entries) > 1 and self._held() > self.budget_bytes:
                self._entries.popitem(last=False)

    def held_bytes(self) -> int:
        """Bytes of the models held now (their pyramids and any full-resolution source read)."""
        with self._lock:
            return self._held()

    def _held(self) -> int:
        return sum(m.nbytes for m in self._entries.values())

    def discard(self, model_id: str) -> None:
        with self._lock:
            self._entries.pop(model_id, None)

    def __contains__(self, model_id: str) -> bool:
        with self._lock:
            return model_id in self._entries
