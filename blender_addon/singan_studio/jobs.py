"""Daemon jobs followed without blocking (no bpy: plain Python).

A :class:`Task` is one job op (train, generate, super_resolve) sent to the daemon. Its
:meth:`Task.poll` is the polling step: it reads whatever replies have arrived (zero timeout), and
when the job has ended it runs the task's ``finish`` callback once with the result. Operators call
it from a window-manager timer; scripts and tests call it in a loop. The last task of each *slot*
(``"train"``, ``"plate"``, ...) is kept in :data:`TASKS`, so panels can show its progress and a
Cancel button can reach it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .client import Connection
from .protocol.client import DaemonError, DaemonUnavailable, Image

Finish = Callable[[dict, list], str]
"""``finish(result data, result images) -> message``: applies a successful job's result."""

TASKS: dict[str, Task] = {}
"""The last task started in each slot, finished or not."""


class Busy(Exception):
    """A task is already running in the slot."""


class Task:
    """One daemon job and what to do with its result.

    Args:
        connection: the shared connection; its client sends the request.
        title: what the job makes, for messages (``"Background plate"``).
        op, params, images: the request (see docs/protocol.md).
        finish: applies the result when the job succeeds (runs inside :meth:`poll`); its return
            value becomes :attr:`message`. An exception it raises becomes :attr:`error`.

    Attributes:
        finished: the job ended and ``finish`` ran (or the job failed).
        message: ``finish``'s message after a success.
        error: the :class:`DaemonError` the job failed with (code ``cancelled`` after a cancel,
            ``unavailable`` when the daemon stopped answering), or ``finish``'s exception.

    Raises:
        DaemonUnavailable: the request could not even be sent.
    """

    def __init__(self, connection: Connection, title: str, op: str, params: dict,
                 images: Sequence[Image], finish: Finish):
        self.title = title
        self._connection, self._finish = connection, finish
        self.job = connection.client.submit(op, params, images)
        self.finished = False
        self.cancelling = False
        self.message: str | None = None
        self.error: Exception | None = None

    def poll(self) -> bool:
        """The polling step: handle the replies that have arrived, without waiting for any.

        Takes about a millisecond or less while the job runs (the socket is polled with a zero
        timeout); when the result arrives it also runs ``finish``.

        Returns:
            True once the job has ended (see :attr:`message` / :attr:`error`).
        """
        if self.finished:
            return True
        try:
            self._connection.client.poll(0)
        except DaemonError as error:  # a resend to a daemon that vanished
            self._fail(error)
            return True
        if self.job.done:
            self._end()
        return self.finished

    def _end(self) -> None:
        if self.job.error is not None:
            self._fail(self.job.error)
            return
        try:
            self.message = self._finish(self.job.result or {}, self.job.images)
        except Exception as error:  # reported to the user by the operator
            self.error = error
        self.finished = True

    def _fail(self, error: DaemonError) -> None:
        if isinstance(error, DaemonUnavailable):
            self._connection.lost(error)
        self.error, self.finished = error, True

    def cancel(self) -> None:
        """Ask the daemon to cancel the job (blocks for the round trip; 6 s if the daemon is gone); the job
        then ends with error code ``cancelled`` at a later :meth:`poll`."""
        if self.finished:
            return
        self.cancelling = True
        try:
            self.job.cancel()
        except DaemonError as error:
            self._fail(error)

    def detach(self) -> None:
        """Stop following the job: it counts as finished here, goes on in the daemon, and its
        result is not applied."""
        self.finished = True

    @property
    def cancelled(self) -> bool:
        """The job ended because it was cancelled."""
        return isinstance(self.error, DaemonError) and self.error.code == "cancelled"

    @property
    def fraction(self) -> float:
        """Share of the job done, 0..1 (by compute, as the daemon reports it)."""
        progress = self.job.progress or {}
        return float(progress.get("fraction") or 0.0)

    def status(self) -> str:
        """One line for the panel, e.g. ``Training scale 2/5, 43 %, 12 s left``."""
        if self.cancelling:
            return "Cancelling"
        if self.job.id is None:
            return "Waiting for the daemon"
        progress = self.job.progress
        if progress is None:
            return "Queued"
        phase = progress.get("phase")
        if phase != "training":
            return {"loading": "Loading the model", "sampling": "Generating"}.get(phase, str(phase).capitalize())
        text = "Training"
        if progress.get("scale") is not None and progress.get("num_scales"):
            text += f" scale {progress['scale'] + 1}/{progress['num_scales']}"
        text += f", {100 * self.fraction:.0f} %"
        if progress.get("eta_seconds") is not None:
            text += f", {progress['eta_seconds']:.0f} s left"
        return text


def start(slot: str, connection: Connection, title: str, op: str, params: dict,
          images: Sequence[Image], finish: Finish) -> Task:
    """Send a job and keep it as ``slot``'s task.

    Raises:
        Busy: the slot's last task has not finished.
        DaemonUnavailable: the request could not be sent.
    """
    if running(slot) is not None:
        raise Busy(f"{TASKS[slot].title}: a job is already running")
    task = Task(connection, title, op, params, images, finish)
    TASKS[slot] = task
    return task


def running(slot: str) -> Task | None:
    """The slot's task if it has not finished, else None."""
    task = TASKS.get(slot)
    return task if task is not None and not task.finished else None
