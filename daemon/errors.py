"""The daemon's own error classes: a job's cancellation (with its reason) and a Ray training lost
too often. What a client sees of them is an ``error`` reply (:mod:`protocol.errors`, docs/protocol.md)."""

from __future__ import annotations

import enum


class CancelReason(enum.Enum):
    """Why a job was cancelled; the value is the reply's wording."""

    REQUEST = "cancelled on request"
    """A client's ``cancel``."""
    SHUTDOWN = "the daemon is shutting down"
    """A shutdown: a training is left to be resumed at the next start."""


class JobCancelled(Exception):
    """Raised inside a running job when it is cancelled (:attr:`reason`)."""

    def __init__(self, reason: CancelReason):
        super().__init__(reason.value)
        self.reason = reason


class RayTrainingLost(RuntimeError):
    """A training's tasks were lost ``max_attempts`` times in a row (message: the last reason)."""
