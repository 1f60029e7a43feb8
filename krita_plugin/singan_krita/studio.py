"""The plugin's state for a Krita session: the daemon session (connection, heartbeat, models,
presets and limits from ``hello``, tasks and their words: the shared :mod:`protocol.session`),
the artist's options, the tasks started from Krita and the message line. The extension creates it
once (:func:`create`); every docker (one per window) shows it (:func:`instance`). Actions report
through :meth:`Studio.report`.

No ``krita`` or Qt import: tested in the project's environment.
"""

from __future__ import annotations

from .daemon_client import Session, Signal, Task, describe_error
from .errors import PluginError
from .options import Options


def describe(error: BaseException) -> str:
    """The docker's words for why an action or a task failed: a :class:`~.errors.PluginError`'s
    own message (it says what to do), else the session's words."""
    return str(error) if isinstance(error, PluginError) else describe_error(error)


class Studio:
    """Signals:
        task_changed(task): a task started, progressed or ended.
        message_changed(): ``message`` changed.

    Attributes:
        session: the daemon. options: the docker's choices.
        pyzmq: which pyzmq the plugin uses and from where (for the docker's tooltip).
        tasks: every task of the session, oldest first. message / message_is_error: the docker's message line.
    """

    def __init__(self, endpoint: str):
        self.session = Session(endpoint)
        self.options = Options()
        self.pyzmq = ""
        self.tasks: list[Task] = []
        self.message = ""
        self.message_is_error = False
        self.task_changed = Signal()
        self.message_changed = Signal()

    def start(self, title: str) -> Task:
        """A new task, shown by the docker (its jobs are sent with :meth:`Task.submit`)."""
        task = Task(self.session, title)
        task.changed.connect(self._on_task)
        self.tasks.append(task)
        self.report(f"{title}…", is_error=False)
        return task

    @property
    def current_task(self) -> Task | None:
        """The newest unfinished task, else the newest task, else None: what the progress bar shows
        and Cancel cancels."""
        running = [task for task in self.tasks if not task.finished]
        return (running or self.tasks or [None])[-1]

    def report(self, what: str | BaseException, is_error: bool = True) -> None:
        """Show ``what`` (a text, or an exception described in the artist's words) in the message line."""
        self.message = what if isinstance(what, str) else describe(what)
        self.message_is_error = is_error
        self.message_changed.emit()

    def _on_task(self, task: Task) -> None:
        if task.finished:
            words = describe(task.error) if task.error is not None and not task.cancelled else task.message
            self.report(f"{task.title}: {words}", is_error=task.failed)
        self.task_changed.emit(task)


_instance: Studio | None = None


def create(endpoint: str) -> Studio:
    """Make the session's studio (replacing any earlier one, whose session is closed)."""
    global _instance
    if _instance is not None:
        _instance.session.close()
    _instance = Studio(endpoint)
    return _instance


def instance() -> Studio:
    """The session's studio.

    Raises:
        RuntimeError: :func:`create` was not called (the extension's ``setup`` calls it).
    """
    if _instance is None:
        raise RuntimeError("the SinGAN Studio extension has not been set up")
    return _instance
