"""A task: one thing the artist asked for ("Harmonize Pasted"), made of one or more daemon jobs run
one after another (harmonizing without a model first trains one). It turns the jobs' progress
events into a phase text and a fraction for the docker, can be cancelled, and ends with a summary
or an error message.

No ``krita`` or Qt import: tested in the project's environment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .daemon_client import DaemonError, Image, Job

from .connection import Connection
from .errors import PluginError
from .events import Signal

Step = Callable[[dict, list], "str | None"]
"""Runs when a job's result arrives: ``step(result_data, images)``; may submit the next job with
:meth:`Task.submit` and returns the task's summary (ignored if it submitted another job)."""


def describe_error(error: Exception) -> str:
    """The docker's words for why a task or action failed."""
    if isinstance(error, PluginError):
        return str(error)
    if isinstance(error, DaemonError):
        if error.code == "unavailable":
            return f"not connected: {error.message}"
        if error.code == "cancelled":
            return "cancelled"
        return f"the daemon refused: {error.message}"
    return f"internal error in the SinGAN plugin: {type(error).__name__}: {error}"


def describe_progress(event: dict) -> str:
    """E.g. ``scale 3 of 5`` (training) or ``sampling`` from a progress event."""
    if event.get("phase") == "training" and event.get("scale") is not None and event.get("num_scales"):
        return f"scale {event['scale'] + 1} of {event['num_scales']}"
    return event.get("phase") or "working"


class Task:
    """Signals:
        changed(task): phase, fraction, message or state changed.

    Attributes:
        title: e.g. ``Variations of chelsea``. phase: what runs now, in words (the step, e.g.
            ``training the background model``, and its progress, e.g. ``scale 2 of 5``).
        fraction: 0..1 of the current job, None while unknown.
        finished: True once done, failed or cancelled. message: the summary or error, once finished.
        failed: True if it ended with an error (or was cancelled).
    """

    def __init__(self, connection: Connection, title: str):
        self.changed = Signal()
        self.title = title
        self.phase = "sending"
        self.fraction: float | None = None
        self.finished = False
        self.failed = False
        self.message = ""
        self._connection = connection
        self._job: Job | None = None
        self._step = ""
        self._cancelling = False
        self._cancel_sent = False

    def submit(self, op: str, params: dict, images: Sequence[Image], then: Step, phase: str) -> None:
        """Send the next job; ``then(result_data, images)`` runs when it succeeds.

        Raises:
            NotConnected: no daemon (the task is then failed too).
        """
        self._step, self.phase, self.fraction = phase, phase, None
        try:
            self._job = self._connection.request(
                op, params, images, on_progress=self._on_progress, on_done=lambda job: self._on_done(job, then))
        except PluginError as error:
            self.fail(describe_error(error))
            raise
        self.changed.emit(self)

    def cancel(self) -> None:
        """Ask the daemon to cancel the running job; its result, if it still comes, is not applied."""
        if self.finished or self._cancelling:
            return
        self._cancelling = True
        self.phase = "cancelling"
        self._send_cancel()
        self.changed.emit(self)

    def fail(self, message: str) -> None:
        self._finish(message, failed=True)

    def _send_cancel(self) -> None:
        if self._job is not None and self._job.id is not None and not self._cancel_sent:  # else: at the next progress
            self._cancel_sent = True
            try:
                self._connection.request("cancel", {"job": self._job.id}, on_done=lambda job: None)
            except PluginError:
                pass  # not connected: the job's own failure ends the task

    def _on_progress(self, job: Job, event: dict) -> None:
        if self._cancelling:
            self._send_cancel()
            return
        self.phase = f"{self._step}: {describe_progress(event)}"
        self.fraction = event.get("fraction")
        self.changed.emit(self)

    def _on_done(self, job: Job, then: Step) -> None:
        if job is not self._job or self.finished:
            return
        if job.error is not None:
            self.fail(describe_error(job.error))
        elif self._cancelling:
            self.fail("cancelled")
        else:
            try:
                summary = then(job.result or {}, job.images)
            except Exception as error:  # an action's result handler must never raise into the pump
                self.fail(describe_error(error))
                return
            if self._job is job:  # no further job was submitted
                self._finish(summary or "done", failed=False)

    def _finish(self, message: str, failed: bool) -> None:
        if not self.finished:
            self.finished, self.failed, self.message = True, failed, message
            self.phase, self.fraction = ("failed" if failed else "done"), (None if failed else 1.0)
            self.changed.emit(self)
