"""The daemon's memory budget: what a request may make the daemon hold, checked before it is held.

The budget (``--memory-budget``, default a quarter of the machine's memory) is split in two:

* **inputs** (half): the image frames of one message and the inputs of every queued or running
  job. ZeroMQ delivers a multipart message whole, so what it may buffer is bounded at the socket
  (the ROUTER's options, :mod:`daemon.server`): each frame by ``ZMQ_MAXMSGSIZE`` (larger frames drop the connection
  before they are read), each peer by ``ZMQ_RCVHWM`` messages, and only peers with the
  credential get a connection at all (:mod:`daemon.auth`, ZAP). A message is then refused before
  any pixel is decoded when it has more than :data:`MAX_MESSAGE_FRAMES` frames or its images (as
  declared, checked against the frames' lengths) exceed the input half (``too_large``) or what is
  left of it now (``busy``); a job op is refused with ``busy`` when :data:`MAX_QUEUED_JOBS` jobs
  wait. Queued inputs are kept as uint8.
* **work** (the other half): the working memory of the one op that runs. Every output request is
  costed before it runs (:func:`output_cost`: pixels x n, plus the patch-synthesis working set)
  and refused with ``too_large`` naming the field that sets the size.

Not counted (the documented constant, docs/protocol.md "Memory"): the process itself (Python,
torch, libzmq), the loaded-model cache (``--cache-mb``) and :data:`daemon.overflow.SLACK`. What the
socket limits cannot bound, one message of many frames, the overflow guard bounds
(:mod:`daemon.overflow`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from protocol.schema import MAX_MESSAGE_BYTES
from protocol.errors import ProtocolError

MiB = 1024**2
MAX_MESSAGE_FRAMES = 4
"""Frames of one request: the header and at most 3 images (ops take at most 2: image and mask)."""
MAX_QUEUED_JOBS = 1024
"""Job ops queued (not yet running) at once; more are answered ``busy``. Their inputs are bounded by
bytes (the input half); this bounds the bookkeeping of jobs without inputs (a few KB each)."""
RECEIVE_HWM = 2
"""``ZMQ_RCVHWM``: complete messages ZeroMQ buffers per peer before it stops reading that peer's
connection (TCP back-pressure) until the daemon has taken them."""
WORK_BYTES_PER_PIXEL = 160
"""Working memory (bytes) of an op per output pixel of one image at a time: float32 tensors of the
image, its patch features, queries and nearest-neighbour fields. The issue's measurement: a
5792 x 5792 px ``instant`` peaked at 4,124 MiB, 129 bytes per output pixel."""
RESULT_BYTES_PER_PIXEL = 3 * 4 + 4
"""Bytes each finished output pixel holds until the reply is sent (float32 RGB + uint8 RGBA)."""
MIN_BUDGET = 64 * MiB


def default_budget() -> int:
    """A quarter of the machine's physical memory (bytes); 2 GiB where it cannot be read."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (ValueError, OSError, AttributeError):
        return 2 * 1024**3


@dataclass(frozen=True)
class MemoryBudget:
    """The budget in bytes and its two halves (see the module docstring)."""

    total: int

    def __post_init__(self) -> None:
        if self.total < MIN_BUDGET:
            raise ValueError(f"memory-budget: must be at least {MIN_BUDGET // MiB} MiB, got {self.total // MiB} MiB")

    @property
    def inputs(self) -> int:
        return self.total // 2

    @property
    def work(self) -> int:
        return self.total - self.inputs

    @property
    def frame_bytes(self) -> int:
        """``ZMQ_MAXMSGSIZE``: the protocol's largest frame, or the input half if smaller."""
        return min(MAX_MESSAGE_BYTES, self.inputs)

    @staticmethod
    def check_frames(header: dict[str, Any], frames: int) -> None:
        """Refuse a message of more than MAX_MESSAGE_FRAMES frames (header included) before its
        image frames are looked at.

        Raises:
            ProtocolError: ``too_large`` (field ``images``), or ``invalid_request`` if the header
                describes another number of images (what :func:`protocol.wire.decode_images` says).
        """
        if frames <= MAX_MESSAGE_FRAMES:
            return
        specs = header.get("images")
        described = len(specs) if isinstance(specs, list) else 0
        if described != frames - 1:
            raise ProtocolError(f"images: {described} described but {frames - 1} buffer frames sent", "images")
        raise ProtocolError(
            f"images: {frames} frames in one message; at most {MAX_MESSAGE_FRAMES} (a header and 3 images)",
            "images",
            "too_large",
        )

    def check_inputs(self, size: int, held: int) -> None:
        """Refuse a message's images (``size`` bytes, their specs checked against their frames'
        lengths, no pixel decoded) when they exceed the input half (``too_large``) or what the
        queued and running jobs' inputs (``held`` bytes) leave of it now (``busy``); field ``images``."""
        if size > self.inputs:
            raise ProtocolError(
                f"images: {size // MiB} MiB of images; the daemon's memory budget takes at most {self.inputs // MiB} MiB of inputs "
                f"(--memory-budget {self.total // MiB})",
                "images",
                "too_large",
            )
        if size + held > self.inputs:
            raise ProtocolError(
                f"images: {size // MiB} MiB of images, but queued jobs hold {held // MiB} of the {self.inputs // MiB} MiB "
                "the memory budget allows for inputs; try again when they finish",
                "images",
                "busy",
            )

    def check_work(self, cost: int, field: str) -> None:
        """Raise ``too_large`` blaming ``field`` if an op's working memory ``cost`` (bytes) exceeds the work half."""
        if cost > self.work:
            raise ProtocolError(
                f"{field}: this output needs about {cost // MiB} MiB of working memory; the daemon's memory budget allows "
                f"{self.work // MiB} MiB (--memory-budget {self.total // MiB}); ask for fewer or smaller images",
                field,
                "too_large",
            )


def output_cost(n: int, height: int, width: int) -> int:
    """Working memory (bytes) of an op that makes ``n`` images of ``height`` x ``width`` px, one
    at a time: one image's working set plus the finished images held for the reply."""
    pixels = height * width
    return pixels * WORK_BYTES_PER_PIXEL + n * pixels * RESULT_BYTES_PER_PIXEL
