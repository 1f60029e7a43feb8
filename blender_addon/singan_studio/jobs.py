"""The add-on's running tasks, one per *slot* (``"train"``, ``"plate"``, ...), so that panels can
show a task's progress and a Cancel button can reach it. A task is a session task
(``.protocol.session.Task``): sending, progress, cancelling and its words live there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .protocol.client import Image
from .protocol.session import Session, Task

Finish = Callable[[dict, list], str]
"""``finish(result data, result images) -> message``: applies a successful job's result (runs
inside a pump, on Blender's main thread)."""

TASKS: dict[str, Task] = {}
"""The last task started in each slot, finished or not."""


class Busy(Exception):
    """A task is already running in the slot."""


def start(
    slot: str, session: Session, title: str, op: str, params: dict, images: Sequence[Image], finish: Finish
) -> Task:
    """Start a one-job task and keep it as ``slot``'s task. Never waits: the job is sent as soon
    as the session is connected (at once if it is), and a daemon that cannot be reached fails the
    task at a later pump.

    Raises:
        Busy: the slot's last task has not finished.
    """
    if running(slot) is not None:
        raise Busy(f"{TASKS[slot].title}: a job is already running")
    task = Task(session, title)
    task.submit(op, params, images, finish, title)
    TASKS[slot] = task
    return task


def running(slot: str) -> Task | None:
    """The slot's task if it has not finished, else None."""
    task = TASKS.get(slot)
    return task if task is not None and not task.finished else None
