"""The plugin's state for a Krita session: the daemon session (connection, heartbeat, models,
presets and limits from ``hello``, tasks and their words: the shared :mod:`protocol.session`),
the artist's options, the tasks started from Krita, the message line and the question the
docker is asking. The extension creates it once (:func:`create`); every docker (one per window)
shows it (:func:`instance`). Actions report through :meth:`Studio.report` and ask through
:meth:`Studio.ask`.

No ``krita`` or Qt import: tested in the project's environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .daemon_client import DaemonError, Session, Signal, Task, explain
from .errors import PluginError
from .options import Options


def describe(error: BaseException) -> str:
    """The docker's words for why an action or a task failed: a :class:`~.errors.PluginError`'s
    own message (it says what to do), else the shared sentence for a daemon error
    (:func:`protocol.advice.explain`), never the daemon's raw text."""
    if isinstance(error, PluginError):
        return str(error)
    if isinstance(error, DaemonError):
        return explain(error)[0]
    return f"internal error: {type(error).__name__}: {error}"


def details(error: BaseException) -> str:
    """The daemon's own words for ``error`` (code, field, text) for the tooltip, or ``""``."""
    return "" if isinstance(error, PluginError) else explain(error)[1]


@dataclass(frozen=True)
class Question:
    """What the docker asks before an action queues something long: ``text`` (one paragraph),
    the answers' button texts, and what a yes runs."""

    text: str
    yes: str
    no: str
    on_yes: Callable[[], None]
    on_no_message: str


class Studio:
    """Signals:
        task_changed(task): a task started, progressed or ended.
        message_changed(): ``message`` changed, or was reported again (``message_count`` grew).
        question_changed(): ``question`` was asked or answered.
        options_changed(): an action changed ``options`` (the seed it advanced past the ones it used).

    Attributes:
        session: the daemon. options: the docker's choices.
        pyzmq: which pyzmq the plugin uses and from where (for the docker's tooltip).
        tasks: every task of the session, oldest first. message / message_is_error: the docker's
            message line; message_details: the daemon's own words behind it (tooltip), or "".
        message_count: reports so far (a repeated refusal shows as new). question: the open
            :class:`Question`, or None.
    """

    def __init__(self, endpoint: str):
        self.session = Session(endpoint)
        self.options = Options()
        self.pyzmq = ""
        self.tasks: list[Task] = []
        self.message = ""
        self.message_details = ""
        self.message_is_error = False
        self.message_count = 0
        self.question: Question | None = None
        self.task_changed = Signal()
        self.message_changed = Signal()
        self.question_changed = Signal()
        self.options_changed = Signal()
        self._discard: set[int] = set()  # ids of tasks whose cancelled training's model is deleted

    def start(self, title: str) -> Task:
        """A new task, shown by the docker (its jobs are sent with :meth:`Task.submit`)."""
        task = Task(self.session, title)
        task.changed.connect(self._on_task)
        self.tasks.append(task)
        self.report(f"{title}…", is_error=False)
        return task

    def advance_seed(self, used: int) -> None:
        """After an action sent a job with seeds ``options.seed`` .. ``options.seed + used - 1``: the
        next one starts after them, so a second click gives new results (the docker shows the new
        seed; set it back to repeat a result)."""
        self.options.seed = (self.options.seed + used) % 2**31
        self.options_changed.emit()

    def discard_if_cancelled(self, task: Task) -> None:
        """A training ``task`` runs for an action, not because the artist asked for a model (the
        background model of Harmonize): if it is cancelled, its partly trained model is deleted
        from the daemon, so no model the artist never asked for is left in the list."""
        self._discard.add(id(task))

    @property
    def current_task(self) -> Task | None:
        """The newest unfinished task, else the newest task, else None: what the progress bar shows
        and Cancel cancels."""
        running = [task for task in self.tasks if not task.finished]
        return (running or self.tasks or [None])[-1]

    def report(self, what: str | BaseException, is_error: bool = True) -> None:
        """Show ``what`` (a text, or an exception described in the artist's words) in the message
        line; the same text reported again counts as a new message (``message_count``)."""
        self.message = what if isinstance(what, str) else describe(what)
        self.message_details = "" if isinstance(what, str) else details(what)
        self.message_is_error = is_error
        self.message_count += 1
        self.message_changed.emit()

    def ask(self, question: Question) -> None:
        """Show ``question`` in the docker instead of queuing at once (replacing an open one)."""
        self.question = question
        self.report("answer the question above: nothing is queued until then", is_error=False)
        self.question_changed.emit()

    def answer(self, yes: bool) -> None:
        """Answer the open question: yes runs its action (errors go to the message line), no
        queues nothing and says so."""
        question, self.question = self.question, None
        self.question_changed.emit()
        if question is None:
            return
        if not yes:
            self.report(question.on_no_message, is_error=False)
            return
        try:
            question.on_yes()
        except Exception as error:  # shown, never a traceback dialog
            self.report(error)

    def _on_task(self, task: Task) -> None:
        if task.finished:
            if task.error is not None and not task.cancelled:
                self.message = f"{task.title}: {describe(task.error)}"
                self.message_details = details(task.error)
                self.message_is_error, self.message_count = True, self.message_count + 1
                self.message_changed.emit()
            else:
                self.report(f"{task.title}: {task.message}{self._discarded(task)}", is_error=task.failed)
        self.task_changed.emit(task)

    def _discarded(self, task: Task) -> str:
        """Delete a cancelled implicit training's model (see :meth:`discard_if_cancelled`); the words for it."""
        job = task.job
        if not task.cancelled or id(task) not in self._discard or job is None or job.op != "train" or not job.model:
            return ""
        self._discard.discard(id(task))
        try:
            self.session.request("delete_model", {"model": job.model}, on_done=lambda done: None)
        except Exception:  # not connected any more: the model stays, marked interrupted in the list
            return f"; the partly trained model '{job.model}' is left (interrupted): delete it when connected"
        return f"; its partly trained model '{job.model}' was deleted"


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
