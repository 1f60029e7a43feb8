"""Jobs and the queue between the socket loop (which submits and cancels) and the worker (which runs).

Two lanes: interactive jobs (generate, harmonize, ...) always run before trainings, and the
worker also takes them *between training iterations* (see :mod:`daemon.worker`), so a variation
is answered in about its own compute time while a model trains.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from protocol.schema import TRAINING_OPS
from protocol.wire import Image

from .errors import CancelReason, JobCancelled

_job_ids = itertools.count(1)
_PROCESS = secrets.token_hex(3)  # job ids differ between daemon runs: a client can tell a restart


@dataclass
class Job:
    """A unit of work for the worker.

    Attributes:
        op: the protocol op. params: its validated parameters (a pydantic model).
        images: the request's input images by name. model: the model it trains or uses.
        client: ZeroMQ routing id of the requester, or None for the daemon's own jobs (resumes,
            watched folder). request_id: the request's id, echoed in replies.
        progress: the last progress event's fields (phase, fraction, eta_seconds, ...).
        cancel_reason: set when cancelled (by a client, or the daemon's shutdown).
        prepare: a new model's :class:`~daemon.prepare.Preparation`, until the worker has done it:
            the job waits in the interactive lane meanwhile, then in the training lane.
        placement: where a Ray training runs (:class:`daemon.cluster_task.Placement`), once its
            task has started; None for jobs of the daemon's own worker.
    """

    op: str
    params: Any
    model: str | None
    images: dict[str, Image] = field(default_factory=dict)
    client: bytes | None = None
    request_id: str | None = None
    id: str = field(default_factory=lambda: f"j{next(_job_ids)}-{_PROCESS}")
    created: float = field(default_factory=time.time)
    running: bool = False
    progress: dict[str, Any] = field(default_factory=lambda: {"phase": "queued", "fraction": 0.0, "eta_seconds": None})
    cancel_reason: CancelReason | None = None
    prepare: Any = None
    placement: Any = None

    @property
    def training(self) -> bool:
        return self.op in TRAINING_OPS

    @property
    def interactive_lane(self) -> bool:
        """Interactive ops, and trainings whose model is still to be prepared."""
        return not self.training or self.prepare is not None

    @property
    def held_bytes(self) -> int:
        """Bytes of input the job holds until it has run or been prepared: its images (a
        preparation's image is one of them) and a watched file's bytes."""
        file_bytes = self.prepare.file_bytes if self.prepare is not None else None
        return sum(len(image.data) for image in self.images.values()) + len(file_bytes or b"")

    def check_cancelled(self) -> None:
        """Raise :class:`JobCancelled` if the job was cancelled."""
        if self.cancel_reason is not None:
            raise JobCancelled(self.cancel_reason)


class JobQueue:
    """Thread-safe two-lane queue. The socket loop puts and cancels; the worker takes."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._interactive: deque[Job] = deque()
        self._training: deque[Job] = deque()
        self._running: list[Job] = []  # a training and, between its iterations, an interactive job
        self._closed = False

    def put(self, job: Job) -> int:
        """Queue a job; returns the number of jobs ahead of it."""
        with self._lock:
            lane = self._interactive if job.interactive_lane else self._training
            ahead = len(self._interactive) + (0 if job.interactive_lane else len(self._training))
            running = sum(1 for j in self._running if not j.interactive_lane or job.interactive_lane)
            lane.append(job)
            self._lock.notify_all()
            return ahead + running

    def take(
        self, timeout: float | None = None, interactive_only: bool = False, accept: Callable[[Job], bool] | None = None
    ) -> Job | None:
        """The next job (interactive first), marked running; None after ``timeout`` s or when closed.

        ``interactive_only``: only the interactive lane, without waiting. ``accept``: only jobs it
        accepts, in queue order (the worker and the Ray trainer of ``--ray`` share the lanes)."""
        lanes = (self._interactive,) if interactive_only else (self._interactive, self._training)
        with self._lock:
            if not interactive_only:
                self._lock.wait_for(lambda: self._closed or self._first(lanes, accept) is not None, timeout)
            found = None if self._closed else self._first(lanes, accept)
            if found is None:
                return None
            lane, job = found
            lane.remove(job)
            job.running = True
            self._running.append(job)
            return job

    def peek(self, accept: Callable[[Job], bool]) -> Job | None:
        """The job :meth:`take` with ``accept`` would return now, left in the queue (or None)."""
        with self._lock:
            found = self._first((self._interactive, self._training), accept)
            return None if found is None else found[1]

    @staticmethod
    def _first(lanes: tuple[deque[Job], ...], accept: Callable[[Job], bool] | None) -> tuple[deque[Job], Job] | None:
        """The first job of ``lanes`` (in order) that ``accept`` accepts (any, when None), with its lane."""
        for lane in lanes:
            for job in lane:
                if accept is None or accept(job):
                    return lane, job
        return None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (the daemon is shutting down)."""
        return self._closed

    def requeue(self, job: Job) -> None:
        """A running job goes back to the end of its lane (a prepared training: the training lane)."""
        with self._lock:
            if job in self._running:
                self._running.remove(job)
            job.running = False
            (self._interactive if job.interactive_lane else self._training).append(job)
            self._lock.notify_all()

    def finish(self, job: Job) -> None:
        with self._lock:
            if job in self._running:
                self._running.remove(job)

    def cancel(self, job_id: str, reason: CancelReason = CancelReason.REQUEST) -> Job | None:
        """Cancel a queued job (removed at once) or a running one (it stops at its next check).
        Returns the job, or None if no such job is queued or running."""
        with self._lock:
            for lane in (self._interactive, self._training):
                for job in lane:
                    if job.id == job_id:
                        lane.remove(job)
                        job.cancel_reason = reason
                        return job
            for job in self._running:
                if job.id == job_id:
                    job.cancel_reason = reason
                    return job
            return None

    def close(self) -> list[Job]:
        """Stop handing out jobs; cancel the running ones (reason shutdown); return the queued ones."""
        with self._lock:
            self._closed = True
            for job in self._running:
                job.cancel_reason = CancelReason.SHUTDOWN
            queued = [*self._interactive, *self._training]
            self._interactive.clear()
            self._training.clear()
            self._lock.notify_all()
            return queued

    def load(self) -> tuple[int, int]:
        """(queued jobs, input bytes held by queued and running jobs), for the memory budget."""
        with self._lock:
            queued = len(self._interactive) + len(self._training)
            return queued, sum(job.held_bytes for job in [*self._running, *self._interactive, *self._training])

    def snapshot(self) -> list[tuple[int, Job]]:
        """(position, job): running jobs at 0, then the queue in the order it will run."""
        with self._lock:
            running = [(0, job) for job in self._running]
            queued = [*self._interactive, *self._training]
            return running + [(i + 1, job) for i, job in enumerate(queued)]

    def find_model(self, model_id: str) -> Job | None:
        """The queued or running training job of ``model_id``, if any."""
        with self._lock:
            for job in [*self._running, *self._interactive, *self._training]:
                if job.training and job.model == model_id:
                    return job
            return None
