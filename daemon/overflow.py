"""The daemon's overflow guard: past a memory limit, drop every client connection, which frees a
multipart message libzmq is still buffering.

The budget (:mod:`daemon.budget`) checks a message when ZeroMQ delivers it, and ZeroMQ delivers a
multipart message only whole: ``ZMQ_MAXMSGSIZE`` bounds each frame, not their number, so a peer
with the credential can make libzmq buffer any number of frames before the daemon sees the first
(docs/protocol.md, "Limits"). This guard bounds that case from outside ZeroMQ:

* a thread (:class:`OverflowGuard`) reads the process's resident memory (every 5 ms near the
  limit, less often the further below it is) and, when it exceeds the limit (the resident memory
  at start + the budget + the loaded models + :data:`SLACK`), wakes the socket loop through an
  inproc socket;
* the loop unbinds and re-binds its endpoint (:func:`drop_connections`). In libzmq the sessions of
  accepted connections are children of their listener, so unbinding ends them, and ending a
  session discards the incomplete message in its pipe (libzmq 4.3 ``socket_base.cpp``
  ``term_endpoint``, ``session_base.cpp`` ``clean_pipes``). The memory returns to the system
  (large frames are separate ``mmap`` allocations). Clients reconnect by themselves; requests in
  flight on a dropped connection get no reply, queued and running jobs continue.

Where resident memory cannot be read (no ``/proc/self/statm``: macOS, Windows) the guard is off
and says so once in the log; the budget's other checks still hold there.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

import zmq

log = logging.getLogger(__name__)

MiB = 1024**2
SLACK = 256 * MiB
"""Memory the guard allows beyond the process at start, the budget and the loaded models (bytes):
Python objects, freed memory the allocator keeps, libzmq's buffers of complete messages in flight."""
INTERVAL = 0.005
"""Seconds between two reads of the resident memory when it is near the limit; what arrives in
that time is the guard's overshoot (docs/benchmarks.md)."""
MAX_INTERVAL = 0.5
"""Seconds between two reads when memory is far below the limit (an idle daemon wakes twice a second)."""
MAX_RATE = 8 * 1024**3
"""The fastest growth the guard assumes (bytes per second): libzmq's one I/O thread receiving over
loopback. Far below the limit it sleeps until memory could have grown to it at this rate."""
STEP = 128 * MiB
"""After a drop the guard fires again only if memory grows this much more (bytes) while it stays
over the limit (memory the allocator keeps, a second message on its way)."""
BIND_RETRY_SECONDS = 2.0

_STATM = Path("/proc/self/statm")


def resident_bytes() -> int | None:
    """The process's resident memory (bytes) from ``/proc/self/statm``; None where there is none."""
    try:
        return int(_STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class OverflowGuard:
    """Watches resident memory in a thread of its own and sends one message on an inproc PUSH
    socket each time it passes the limit, ``floor`` bytes plus ``extra()`` (read only once the
    floor is passed: the loaded models' bytes are summed over their tensors); the socket loop,
    which owns the ROUTER, receives it on :attr:`signal` and calls :func:`drop_connections`.

    Use :meth:`start` (None where resident memory is unreadable) and :meth:`stop`."""

    def __init__(self, context: zmq.Context, floor: int, extra: Callable[[], int]):
        self._context, self._floor, self._extra = context, floor, extra
        self._address = f"inproc://singan-overflow-{id(self):x}"
        self.signal = context.socket(zmq.PULL)
        self.signal.bind(self._address)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="singan-overflow", daemon=True)

    @classmethod
    def start(cls, context: zmq.Context, headroom: int, extra: Callable[[], int]) -> OverflowGuard | None:
        """Start a guard whose floor is the resident memory now plus ``headroom`` bytes, or return
        None (with a log line) where resident memory is unreadable."""
        resident = resident_bytes()
        if resident is None:
            log.info("overflow guard off: this platform does not report resident memory (/proc/self/statm)")
            return None
        guard = cls(context, resident + headroom, extra)
        guard._thread.start()
        return guard

    def _run(self) -> None:
        wake = self._context.socket(zmq.PUSH)
        wake.connect(self._address)
        threshold = 0  # after a drop: fire again only STEP higher, until memory is back under the limit
        wait = INTERVAL
        try:
            while not self._stopped.wait(wait):
                resident = resident_bytes() or 0
                wait = min(MAX_INTERVAL, max(INTERVAL, (self._floor - resident) / MAX_RATE))
                if resident <= self._floor:
                    threshold = 0
                    continue
                limit = self._floor + self._extra()
                if resident > max(threshold, limit):
                    wake.send(resident.to_bytes(8, "little"))
                    threshold = resident + STEP
                elif resident < limit:
                    threshold = 0
        finally:
            wake.close(linger=0)

    def stop(self) -> None:
        """End the thread and close :attr:`signal` (call from the thread that polls it)."""
        self._stopped.set()
        self._thread.join()
        self.signal.close(linger=0)


def drop_connections(router: zmq.Socket, endpoint: str) -> None:
    """Unbind ``router`` from ``endpoint`` (as bound: ``LAST_ENDPOINT``) and bind it again, which
    ends every connection accepted on it and frees their unfinished messages (module docstring).
    The connections end when the socket next processes commands (the loop's poll).

    libzmq closes the old listener in its I/O thread, so a TCP port may still be in use for a few
    milliseconds: the bind is retried for up to 2 s. (An ``ipc://`` bind replaces the path's file.)

    Raises:
        zmq.ZMQError: the endpoint could not be bound again within 2 s.
    """
    router.unbind(endpoint)
    deadline = time.monotonic() + BIND_RETRY_SECONDS
    while True:
        try:
            router.bind(endpoint)
            return
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
