"""A minimal signal for the plugin's pure modules, which cannot use Qt's (they are tested outside
Krita). Everything runs on Krita's GUI thread (the client is pumped by a timer there), so a plain
list of callbacks is enough."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Signal:
    """Callbacks run in connection order by :meth:`emit`."""

    def __init__(self) -> None:
        self._slots: list[Callable[..., Any]] = []

    def connect(self, slot: Callable[..., Any]) -> None:
        self._slots.append(slot)

    def disconnect(self, slot: Callable[..., Any]) -> None:
        """Remove ``slot`` (compared with ``==``, so a bound method can be passed again).

        Raises:
            ValueError: it was not connected.
        """
        self._slots.remove(slot)

    def emit(self, *args: Any) -> None:
        for slot in list(self._slots):
            slot(*args)
