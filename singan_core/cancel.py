"""Cancel points inside long core computations.

A caller that wants to stop a long computation of this thread (the daemon's cancel) wraps it in
:func:`interruptible`; the core calls :func:`cancel_point` at short intervals inside its loops
(patch-synthesis bands, tiles and rounds; the row bands of a large generator pass), where the
caller's ``check`` may raise. Outside such a block a cancel point does nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_interrupt = threading.local()


@contextmanager
def interruptible(check: Callable[[], None]) -> Iterator[None]:
    """Within the block, every :func:`cancel_point` reached in this thread calls ``check()``;
    ``check`` may raise, and the exception propagates out of the core call that reached it."""
    previous = getattr(_interrupt, "check", None)
    _interrupt.check = check
    try:
        yield
    finally:
        _interrupt.check = previous


def cancel_point() -> None:
    """Call the check of the enclosing :func:`interruptible` block of this thread, if any."""
    check = getattr(_interrupt, "check", None)
    if check is not None:
        check()
