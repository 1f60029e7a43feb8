"""A job's replies, as the daemon's worker and its Ray trainer both send them: the final error,
progress events (throttled to :data:`PROGRESS_INTERVAL`) and a training's preview images
(throttled to the daemon's ``preview_interval``, a sample of the finished scales).

Replies go to the socket loop over an inproc PUSH socket as ``[client id, header, *images]``
(an empty client id for the daemon's own jobs, whose replies are only logged); docs/protocol.md
describes the messages.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import zmq

from protocol.schema import Error, ErrorInfo, Progress
from protocol.errors import MAX_MESSAGE_CHARS, one_line
from protocol.wire import Image, encode
from singan_core.model import SinGANPyramid
from singan_core.sampling import preview

from .images import from_tensor
from .jobs import Job

PROGRESS_INTERVAL = 0.25
"""Seconds between progress events of a training (a scale's end is always reported)."""
PREVIEW_SIZE = 128
"""Longest side (pixels) of a training preview."""


class Throttle:
    """Lets an event through at most once every ``interval`` seconds (monotonic clock), and
    always when forced (a scale's last iteration, the last scale).

    Args:
        interval: least seconds between two events let through.
        wait_first: the first event also waits ``interval`` from now (previews); otherwise the
            first one passes (progress).
    """

    def __init__(self, interval: float, wait_first: bool = False) -> None:
        self.interval = interval
        self.last = time.monotonic() if wait_first else float("-inf")

    def __call__(self, force: bool = False) -> bool:
        """True when the event is to be sent now (and its time noted)."""
        now = time.monotonic()
        if force or now - self.last >= self.interval:
            self.last = now
            return True
        return False


def send_reply(out: zmq.Socket, job: Job, message: Any, images: list[Image] | tuple[Image, ...] = ()) -> None:
    """Send ``message`` (a pydantic reply) and its images to the job's client over ``out``."""
    out.send_multipart([job.client or b"", *encode(message.model_dump(mode="json"), list(images))], copy=False)


def error_reply(job: Job, code: str, message: str, field: str | None = None) -> Error:
    """The job's final error: ``code`` (docs/protocol.md), ``message`` as one line of at most
    MAX_MESSAGE_CHARS, the request ``field`` to blame, if any."""
    return Error(
        id=job.request_id,
        job=job.id,
        error=ErrorInfo(code=code, message=one_line(message, MAX_MESSAGE_CHARS), field=field),
    )


def progress_reply(job: Job) -> Progress:
    """A progress event with the job's last progress fields (``job.progress``)."""
    return Progress(id=job.request_id or "", job=job.id, **job.progress)


def training_preview(pyramid: SinGANPyramid) -> Image:
    """The preview image of a training's progress event: a sample of the finished scales
    (:func:`~singan_core.sampling.preview`, seed 0), at most PREVIEW_SIZE px on the longer side."""
    return from_tensor(_thumbnail(preview(pyramid, seed=0)), "preview")


def _thumbnail(x: torch.Tensor) -> torch.Tensor:
    """Shrink (1, 3, h, w) to at most PREVIEW_SIZE px on the longer side."""
    h, w = x.shape[-2:]
    if max(h, w) <= PREVIEW_SIZE:
        return x
    s = PREVIEW_SIZE / max(h, w)
    return torch.nn.functional.interpolate(x, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")
