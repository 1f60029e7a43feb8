"""One client session with the daemon, shared by the Krita plugin and the Blender add-on (and any
UI): pyzmq + msgpack only, no host import, nothing that blocks.

The host calls :meth:`Session.pump` from its UI timer (Krita: a ``QTimer``; Blender:
``bpy.app.timers`` or a modal operator's timer events), every 50-100 ms. ``pump`` reads the replies
that have arrived (a zero-timeout poll), runs their callbacks, and sends what is due: ``hello``
while not connected, a heartbeat while connected. Nothing else talks to the network, so no call
here ever waits.

Connection states (:class:`ConnectionState`)::

    disconnected --pump()/connect()--> connecting --hello answered--> connected
    connecting  --no answer in TIMEOUT * (RETRIES + 1) s--> unreachable --RECONNECT s--> connecting
    connecting  --hello refused (token, protocol version) or a bad endpoint--> refused
    connected   --any request unanswered (heartbeat, job)--> unreachable

Heartbeat (one policy for both hosts, :data:`POLICY`): while connected, ``list_models`` and
``jobs`` every ``heartbeat`` s (1 s); they refresh :attr:`Session.models` and :attr:`Session.jobs`.
Every request is covered by the client's Lazy Pirate probe (``timeout`` 0.6 s of silence, then a
fresh socket, ``retries`` 3 tries), so a dead or never-started daemon is reported as
``unreachable`` within ``timeout * (retries + 1)`` = 2.4 s of asking, and a daemon that dies while
the host is idle within ``heartbeat`` + 2.4 s = 3.4 s.

API:

* ``Session(endpoint, token=None)`` (token: the daemon's ``--token``, if any; the user's own
  credential is read by :class:`~protocol.client.Client` from :mod:`protocol.auth`'s folder, so a
  host needs no setting; a daemon that refuses it puts the session in ``refused`` with the
  reason); ``state``, ``error``, ``status`` (one line for a UI),
  ``info`` (the ``hello`` data), ``limits``, ``presets`` (:class:`PresetInfo` from ``hello``),
  ``models`` and ``jobs`` (the last heartbeat's ``list_models`` / ``jobs``), ``model(id)``.
* Listeners: ``session.state_changed.connect(callback)`` (state, error or info changed),
  ``session.models_changed.connect(callback)`` (models or jobs changed); callbacks take no argument.
* ``connect()``: try now (e.g. a Connect button); ``set_endpoint(endpoint, token)``; ``close()``.
* ``request(op, params, images, on_done=..., on_progress=...)``: one job or quick op, now
  (raises :class:`NotConnected` unless connected).
* ``Task(session, title)``: what the artist asked for, made of one or more jobs run one after
  another (a *task chain*: ``submit(op, params, images, then, step)``, where ``then(data, images)``
  may submit the next job). A task submitted while the session is still connecting waits for the
  connection (and fails with the reason if it cannot be made). ``cancel()`` never waits;
  ``detach()`` stops following it (the job goes on in the daemon); ``fail(error)`` ends it.
  Attributes ``phase`` (words), ``fraction``, ``finished``, ``failed``, ``cancelled``, ``message``,
  ``error``, ``job``, ``waiting_for_daemon``; listener ``task.changed.connect(callback(task))``.
  A training (``train``, ``resume``) whose daemon stops (shut down or killed) does not fail: the
  daemon resumes it when it starts again, so the task says :data:`DAEMON_STOPPED` and, once the
  session is connected again, follows the resumed training through the heartbeat (``jobs``,
  ``models``) until the model is ready, then runs its ``then`` with ``{"model": ModelInfo}``.
* Words for any UI or CLI: :func:`describe_progress`, :func:`describe_error`, :func:`eta_text`,
  :func:`preset_text`.

Example (a script; a UI calls ``pump`` from its timer instead of looping)::

    session = Session("tcp://127.0.0.1:5557")
    task = Task(session, "Variations")
    task.submit("generate", {"model": "chelsea", "n": 4}, [], lambda data, images: "4 variations", "generating")
    while not task.finished:
        session.pump()
        time.sleep(0.05)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, NamedTuple, Sequence

import zmq

from .client import Client, DaemonError, DaemonUnavailable, Image, JobHandle

__all__ = [
    "DAEMON_STOPPED",
    "POLICY",
    "ConnectionState",
    "NotConnected",
    "Policy",
    "PresetInfo",
    "Session",
    "Signal",
    "Task",
    "describe_error",
    "describe_progress",
    "eta_text",
    "preset_text",
]


@dataclass(frozen=True)
class Policy:
    """How a session watches the daemon (seconds)."""

    timeout: float = 0.6  # silence before the client probes the daemon, and between its tries
    retries: int = 3  # unanswered tries before every open request fails: unreachable after 2.4 s
    heartbeat: float = 1.0  # list_models + jobs this often while connected
    reconnect: float = 2.0  # hello this often while unreachable


POLICY = Policy()
"""The one policy of both plugins. ``timeout`` is short so that a stopped daemon is reported
within 3 s; the daemon answers quick ops from its socket thread within milliseconds while it
trains (its poll loop does no compute)."""


class ConnectionState(Enum):
    disconnected = "not connected"  # nothing asked yet, or closed
    connecting = "connecting"
    connected = "connected"
    unreachable = "unreachable"  # no answer; hello is tried again every Policy.reconnect s
    refused = "refused"  # a bad endpoint, or a daemon that will not serve us (token, protocol version)


class NotConnected(DaemonUnavailable):
    """A request was made while the session is not connected; the message is :attr:`Session.status`."""


class PresetInfo(NamedTuple):
    """A training preset from ``hello`` (``preset_details``): name, longest side of the finest scale
    (pixels) and training iterations per scale (None from a daemon that does not send them)."""

    name: str
    max_size: int | None = None
    iterations: int | None = None


class Signal:
    """Listeners run in connection order by :meth:`emit` (on the host's UI thread, from ``pump``)."""

    def __init__(self) -> None:
        self._slots: list[Callable[..., Any]] = []

    def connect(self, slot: Callable[..., Any]) -> None:
        self._slots.append(slot)

    def disconnect(self, slot: Callable[..., Any]) -> None:
        """Remove ``slot``. Raises ``ValueError`` if it was not connected."""
        self._slots.remove(slot)

    def emit(self, *args: Any) -> None:
        for slot in list(self._slots):
            slot(*args)


DoneCallback = Callable[[JobHandle], None]
ProgressCallback = Callable[[JobHandle, dict], None]
_HEARTBEAT_OPS = {"list_models": "models", "jobs": "jobs"}  # op -> the attribute its answer refreshes
_ENDPOINT_CHANGED = "the daemon endpoint was changed to "  # why set_endpoint ends the open requests


class Session:
    """The daemon at one endpoint, as seen from a host's UI thread.

    Args:
        endpoint: ZeroMQ endpoint, e.g. ``tcp://127.0.0.1:5557``.
        token: the daemon's token, if it has one.
        policy: timeouts and intervals (:data:`POLICY`).
        clock: seconds, monotonic (injectable for tests).

    Attributes:
        state, error: the :class:`ConnectionState` and why it is not ``connected`` (one line), or None.
        info: the last ``hello`` data ({} until one arrives). models: ModelInfo dicts. jobs: JobInfo dicts.
    """

    def __init__(
        self,
        endpoint: str,
        token: str | None = None,
        *,
        policy: Policy = POLICY,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.state_changed = Signal()
        self.models_changed = Signal()
        self.policy, self._clock = policy, clock
        self._client: Client | None = None
        self.endpoint, self.state = "", ConnectionState.disconnected
        self.token: str | None = None
        self.error: str | None = None
        self.info: dict = {}
        self.models: list[dict] = []
        self.jobs: list[dict] = []
        self._next_attempt = 0.0
        self._next_heartbeat = 0.0
        self._hello_open = False
        self._pending: set[str] = set()  # heartbeat ops without an answer yet
        self._open: dict[str, tuple[JobHandle, DoneCallback]] = {}  # by request id, until done
        self._waiting: list[Callable[[DaemonError | None], None]] = []  # run once connected (None) or failed
        self.set_endpoint(endpoint, token)

    # -- what a UI shows --------------------------------------------------------------------

    @property
    def status(self) -> str:
        """One line, e.g. ``connected: SinGAN daemon 0.1.0 on cpu`` or ``unreachable: no answer ...``."""
        if self.state is ConnectionState.connected:
            return f"connected: SinGAN daemon {self.info.get('server_version', '?')} on {self.info.get('device', '?')}"
        if self.error:
            return f"{self.state.value}: {self.error}"
        return f"{self.state.value} ({self.endpoint})"

    @property
    def limits(self) -> dict[str, int]:
        """The daemon's limits from ``hello`` (``max_image_side``, ``max_output_pixels``, ...; docs/protocol.md 8)."""
        return dict(self.info.get("limits") or {})

    @property
    def presets(self) -> list[PresetInfo]:
        """The daemon's training presets from ``hello``, in its order ([] until connected)."""
        details = {item["name"]: item for item in self.info.get("preset_details") or []}
        return [
            PresetInfo(name, details.get(name, {}).get("max_size"), details.get(name, {}).get("iterations"))
            for name in self.info.get("presets") or []
        ]

    def model(self, model_id: str | None) -> dict | None:
        """The ModelInfo of ``model_id`` from the last refresh, or None."""
        return next((m for m in self.models if m.get("id") == model_id), None)

    # -- control ----------------------------------------------------------------------------

    def set_endpoint(self, endpoint: str, token: str | None = None) -> None:
        """Drop the current connection and use ``endpoint`` (connecting at the next :meth:`pump`).
        Open requests end at once with code ``unavailable`` (their jobs go on in the old daemon)."""
        self.close()
        abandoned, self._open = list(self._open.values()), {}
        for job, on_done in abandoned:
            job.error = DaemonError("unavailable", f"{_ENDPOINT_CHANGED}{endpoint}")
            on_done(job)
        self.endpoint, self.token = endpoint.strip(), token
        self.info, self.models, self.jobs = {}, [], []
        self._pending.clear()
        self._hello_open = False
        self._next_attempt = 0.0
        try:
            self._client = Client(self.endpoint, timeout=self.policy.timeout, retries=self.policy.retries, token=token)
        except zmq.ZMQError as error:
            self._set_state(
                ConnectionState.refused,
                f"'{self.endpoint}' is not a ZeroMQ endpoint like tcp://127.0.0.1:5557 ({error})",
            )
            self._flush_waiting()
            return
        self._set_state(ConnectionState.disconnected, None)

    def connect(self) -> None:
        """Ask ``hello`` now (unless one is on its way), e.g. for a Connect / Refresh button; the
        answer arrives through :meth:`pump`. While connected this refreshes ``info``, the models
        and the jobs without leaving the connected state."""
        self._next_attempt = self._next_heartbeat = 0.0
        if self._client is not None and not self._hello_open:
            self._hello(asked=True)

    def pump(self) -> None:
        """Handle every reply that has arrived and send what is due (hello, heartbeat). Returns at once."""
        if self._client is None:
            return
        try:
            self._client.poll(0)
        except DaemonError as error:  # resending after a probe could not queue the message
            self._lost(error)
        now = self._clock()
        if self.state is not ConnectionState.connected:
            if not self._hello_open and now >= self._next_attempt:
                self._hello()
        elif now >= self._next_heartbeat and not self._pending:
            self._heartbeat()

    def request(
        self,
        op: str,
        params: dict | None = None,
        images: Sequence[Image] = (),
        *,
        on_done: DoneCallback,
        on_progress: ProgressCallback | None = None,
    ) -> JobHandle:
        """Send ``op`` without waiting; ``on_done(job)`` runs from :meth:`pump` when its result or
        error arrives (``job.error`` code ``unavailable`` if the daemon stopped answering).

        Raises:
            NotConnected: not connected now (the message is :attr:`status`).
        """
        if self.state is not ConnectionState.connected:
            raise NotConnected(self.status)
        return self._submit(op, params, images, on_done, on_progress)

    def when_connected(self, callback: Callable[[DaemonError | None], None]) -> None:
        """Run ``callback(None)`` once connected (now, if connected), or ``callback(error)`` when the
        next connection attempt fails (:class:`NotConnected` with :attr:`status`). Starts an attempt
        at once if the session is not connecting."""
        if self.state is ConnectionState.connected:
            callback(None)
            return
        self._waiting.append(callback)
        if self.state is ConnectionState.refused and self._client is None:
            self._flush_waiting()
        elif not self._hello_open:
            self.connect()

    def close(self) -> None:
        """Close the socket (jobs go on in the daemon)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- internals --------------------------------------------------------------------------

    def _submit(
        self,
        op: str,
        params: dict | None,
        images: Sequence[Image],
        on_done: DoneCallback,
        on_progress: ProgressCallback | None,
    ) -> JobHandle:
        def done(job: JobHandle) -> None:
            if self._open.pop(job.request_id, None) is None:
                return  # abandoned by set_endpoint
            if job.error is not None and job.error.code == "unavailable":
                self._lost(job.error)
            elif op not in _HEARTBEAT_OPS:
                self._next_heartbeat = 0.0  # a job ended: show the models' new state at once
            on_done(job)

        assert self._client is not None
        try:
            job = self._client.submit(op, params, images, on_progress=on_progress, on_done=done)
        except DaemonError as error:  # the message could not even be queued
            self._lost(error)
            raise NotConnected(self.status) from None
        self._open[job.request_id] = (job, on_done)
        return job

    def _hello(self, asked: bool = False) -> None:
        self._next_attempt = self._clock() + self.policy.reconnect
        if self.state is not ConnectionState.connected and (asked or self.state is not ConnectionState.unreachable):
            self._set_state(ConnectionState.connecting, None)  # a retry while unreachable keeps saying why
        try:
            self._submit("hello", None, (), self._on_hello, None)
            self._hello_open = True
        except NotConnected:  # could not even be queued: _lost said why
            self._flush_waiting()

    def _on_hello(self, job: JobHandle) -> None:
        self._hello_open = False
        if job.error is None:
            self.info = job.result or {}
            self._next_heartbeat = 0.0
            self._set_state(ConnectionState.connected, None)
        elif job.error.code != "unavailable":  # unavailable was handled by _lost
            self._set_state(ConnectionState.refused, job.error.message)
        self._flush_waiting()

    def _flush_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        error = None if self.state is ConnectionState.connected else NotConnected(self.status)
        for callback in waiting:
            callback(error)

    def _heartbeat(self) -> None:
        self._next_heartbeat = self._clock() + self.policy.heartbeat
        for op, key in _HEARTBEAT_OPS.items():
            self._pending.add(op)
            try:
                self._submit(op, None, (), self._on_refresh(op, key), None)
            except NotConnected:
                return

    def _on_refresh(self, op: str, key: str) -> DoneCallback:
        def done(job: JobHandle) -> None:
            self._pending.discard(op)
            result = job.result or {}
            if job.error is None and result.get(key) != getattr(self, key):
                setattr(self, key, result[key])
                self.models_changed.emit()

        return done

    def _lost(self, error: DaemonError) -> None:
        self._pending.clear()
        # a failed hello was sent Policy.reconnect s ago or more: the next one goes out at once
        self._next_attempt = min(self._next_attempt, self._clock() + self.policy.reconnect)
        self._set_state(
            ConnectionState.unreachable,
            f"no answer from the SinGAN daemon at {self.endpoint}; start it with: singan serve",
        )

    def _set_state(self, state: ConnectionState, error: str | None) -> None:
        if (state, error) != (self.state, self.error):
            self.state, self.error = state, error
            self.state_changed.emit()


# ------------------------------------------------------------------------------------------ tasks

DAEMON_STOPPED = "the daemon stopped; the training continues when it restarts"
"""A training task's phase while its daemon is stopped (it resumes unfinished trainings at start-up)."""

_FOLLOWED_OPS = ("train", "resume")
"""Job ops whose model the daemon trains on after a restart: their tasks follow it there."""

Step = Callable[[dict, list], "str | None"]
"""Runs when a job's result arrives: ``step(result_data, images)``; may submit the next job with
:meth:`Task.submit` and returns the task's summary (ignored if it submitted another job)."""


class Task:
    """One thing the artist asked for ("Harmonize Pasted"), made of one or more daemon jobs run one
    after another (harmonizing without a model first trains one).

    Listener: ``changed(task)``: phase, fraction, message or state changed.

    Attributes:
        title: e.g. ``Variations of chelsea``. phase: what runs now, in words: the step and its
            progress, e.g. ``training the background model: scale 2 of 5, 40 %, 12 s left``.
        step: the current job's words (``training the background model``); progress: its
            progress in words (``scale 2 of 5, 40 %, 12 s left``), ``""`` until the first event.
        fraction: 0..1 of the current job, None while unknown.
        finished: done, failed or cancelled. failed: it ended with an error or was cancelled.
        cancelled: it ended because :meth:`cancel` was called. message: the summary or the error's words.
        error: the exception it failed with (a :class:`DaemonError`, or what a step raised), or None.
        job: the job running now (or last), None before the first is sent.
        waiting_for_daemon: a training whose daemon stopped: True until the daemon answers again
            (the phase is :data:`DAEMON_STOPPED`); the task then follows the resumed training.
    """

    def __init__(self, session: Session, title: str):
        self.changed = Signal()
        self.title = title
        self.phase = "waiting for the daemon"
        self.fraction: float | None = None
        self.finished = self.failed = self.cancelled = False
        self.message = ""
        self.error: Exception | None = None
        self.job: JobHandle | None = None
        self._session = session
        self.step = self.progress = ""
        self._cancelling = False
        self._cancel_sent = False
        self.waiting_for_daemon = False
        self._followed: tuple[str, Step] | None = None  # (model, then) of a training resumed by a restarted daemon
        self._followed_job: str | None = None  # the daemon's job id of that resumed training, once seen
        self._asked = False  # a get_model about the followed model is on its way

    def submit(self, op: str, params: dict, images: Sequence[Image], then: Step, step: str) -> None:
        """Send the next job as soon as the session is connected; ``then(result_data, images)``
        runs when it succeeds. Never raises: a failure to connect fails the task."""
        self.step, self.phase, self.fraction, self.progress = step, step, None, ""

        def send(error: DaemonError | None) -> None:
            if self.finished:
                return
            if error is None and self._cancelling:
                self._finish(None)
                return
            if error is None:
                try:
                    self.job = self._session.request(
                        op, params, images, on_progress=self._on_progress, on_done=lambda job: self._on_done(job, then)
                    )
                except DaemonError as failed:
                    error = failed
            if error is not None:
                self._finish(error)

        self._session.when_connected(send)
        self.changed.emit(self)

    def cancel(self) -> None:
        """Ask the daemon to cancel the running job (never waits); its result, if it still comes,
        is not applied. A task still waiting for the connection ends at once."""
        if self.finished or self._cancelling:
            return
        self._cancelling = True
        self.phase = "cancelling"
        if self.job is None or (self.waiting_for_daemon and self._followed_job is None):
            # not sent yet, or its daemon is stopped: it ends here (a restarted daemon trains on, listed as training)
            self._finish(None)
            return
        self._send_cancel()
        self.changed.emit(self)

    def detach(self) -> None:
        """Stop following the task (e.g. the host closed the document it was for): it counts as
        finished and failed here, its job goes on in the daemon, and its result is not applied."""
        self._unfollow()
        if not self.finished:
            self.finished, self.failed, self.message, self.phase, self.fraction = (
                True,
                True,
                "detached",
                "detached",
                None,
            )
            self.changed.emit(self)

    def fail(self, error: Exception) -> None:
        """End the task with ``error`` (e.g. a host's check failed between two jobs)."""
        self._finish(error)

    def _send_cancel(self) -> None:
        job_id = self._followed_job if self._followed is not None else (self.job.id if self.job is not None else None)
        if job_id is not None and not self._cancel_sent:  # else: at its next event (or once the resumed job is seen)
            self._cancel_sent = True
            try:
                self._session.request("cancel", {"job": job_id}, on_done=lambda job: None)
            except DaemonError:
                self._cancel_sent = False  # not connected: sent when the followed training is seen again

    def _on_progress(self, job: JobHandle, event: dict) -> None:
        if self._cancelling:
            self._send_cancel()
            return
        self.progress = describe_progress(event)
        self.phase = f"{self.step}: {self.progress}"
        self.fraction = event.get("fraction")
        self.changed.emit(self)

    def _on_done(self, job: JobHandle, then: Step) -> None:
        if job is not self.job or self.finished:
            return
        if not self._cancelling and job.model is not None and _daemon_stopped(job):
            self._follow(job.model, then)
            return
        if self._cancelling or job.error is not None:
            self._finish(job.error if not self._cancelling else None)
            return
        try:
            summary = then(job.result or {}, job.images)
        except Exception as error:  # a host's result handler must never raise into the pump
            self._finish(error)
            return
        if self.job is job and not self.finished:  # no further job was submitted
            self.finished, self.message, self.phase, self.fraction = True, summary or "done", "done", 1.0
            self.changed.emit(self)

    # -- a training the daemon resumes after a restart

    def _follow(self, model: str, then: Step) -> None:
        """The daemon stopped while it trained ``model``: wait for it, then follow the resumed training."""
        self._followed, self._followed_job, self._cancel_sent = (model, then), None, False
        self.waiting_for_daemon, self.phase, self.fraction = True, DAEMON_STOPPED, None
        self._session.state_changed.connect(self._on_session)
        self._session.models_changed.connect(self._on_session)
        self.changed.emit(self)
        self._on_session()

    def _on_session(self) -> None:
        """The session's state, models or jobs changed: where is the followed training now?"""
        if self.finished or self._followed is None:
            return
        if self._session.state is not ConnectionState.connected:
            self._asked = False
            if not self.waiting_for_daemon:
                self.waiting_for_daemon, self.phase, self.fraction, self._followed_job = (
                    True,
                    DAEMON_STOPPED,
                    None,
                    None,
                )
                self.changed.emit(self)
            return
        if self.waiting_for_daemon:  # the daemon is back: its model list may still be the old daemon's, so ask
            if not self._asked:
                self._asked = True
                try:
                    self._session.request("get_model", {"model": self._followed[0]}, on_done=self._on_model)
                except DaemonError:
                    self._asked = False
            return
        entry = next((j for j in self._session.jobs if j.get("model") == self._followed[0]), None)
        self._track(self._session.model(self._followed[0]), entry, entry.get("job") if entry else None)

    def _on_model(self, job: JobHandle) -> None:
        self._asked = False
        if self.finished or self._followed is None:
            return
        if job.error is not None and job.error.code != "not_found":
            return  # unavailable: _on_session hears of it; another error: ask again at the next change
        self.waiting_for_daemon = False
        info = None if job.error is not None else (job.result or {}).get("model")
        self._track(info, None, info.get("job") if info else None)

    def _track(self, info: dict | None, entry: dict | None, job_id: str | None) -> None:
        """Follow the model's ModelInfo ``info`` (None: gone), its ``jobs`` entry and training job
        id, if known (from this daemon: the session's model list may still be the stopped one's)."""
        model, then = self._followed  # type: ignore[misc]
        status = None if info is None else info.get("status")
        if status in ("queued", "training"):
            self._followed_job = job_id or self._followed_job
            if self._cancelling:
                self._send_cancel()
                return
            if status == "queued":
                self.progress, self.fraction = "queued (resumed by the restarted daemon)", None
            elif entry is None:  # not in this daemon's jobs list yet
                self.progress, self.fraction = "resumed by the restarted daemon", None
            else:
                self.progress, self.fraction = describe_progress(entry), entry.get("fraction")
            self.phase = f"{self.step}: {self.progress}"
            self.changed.emit(self)
        elif status == "ready":
            self._unfollow()
            if self._cancelling:
                self._finish(None)
                return
            try:
                summary = then({"model": info}, [])
            except Exception as error:  # a host's result handler must never raise into the pump
                self._finish(error)
                return
            if not self.finished:
                self.finished, self.message, self.phase, self.fraction = True, summary or "done", "done", 1.0
                self.changed.emit(self)
        else:  # interrupted, failed or gone: not trained on
            self._unfollow()
            if self._cancelling or status == "interrupted":
                self._finish(None)
            elif status == "failed":
                self._finish(DaemonError("internal", f"the training of {model} failed: {(info or {}).get('error')}"))
            else:
                self._finish(
                    DaemonError(
                        "not_found",
                        f"{model} is no longer in the daemon (deleted, or it "
                        "stopped before the training started); train again",
                    )
                )

    def _unfollow(self) -> None:
        if self._followed is not None:
            self._followed = None
            self._session.state_changed.disconnect(self._on_session)
            self._session.models_changed.disconnect(self._on_session)

    def _finish(self, error: Exception | None) -> None:
        """End as failed with ``error``, or as cancelled when ``error`` is None or a ``cancelled`` reply."""
        self._unfollow()
        if self.finished:
            return
        cancelled = error is None or (isinstance(error, DaemonError) and error.code == "cancelled")
        self.finished, self.failed, self.cancelled = True, True, cancelled
        self.error = error
        self.message = "cancelled" if cancelled or error is None else describe_error(error)
        self.phase, self.fraction = ("cancelled" if cancelled else "failed"), None
        self.changed.emit(self)


def _daemon_stopped(job: JobHandle) -> bool:
    """A training job that failed because its daemon stopped (shut down, or no longer answering):
    the daemon resumes it when it starts again."""
    error = job.error
    return (
        job.op in _FOLLOWED_OPS
        and job.model is not None
        and error is not None
        and (
            (error.code == "unavailable" and not error.message.startswith(_ENDPOINT_CHANGED))
            or (error.code == "cancelled" and "the daemon is shutting down" in error.message)
        )
    )


# ------------------------------------------------------------------------------------------ words

_PHASES = {
    "queued": "queued",
    "loading": "loading the model",
    "sampling": "generating",
    "training": "training",
    "waiting": "waiting for the Ray cluster",
}


def eta_text(seconds: float | None) -> str:
    """``12 s left``, ``4 min left``, ``1 h 05 min left``; '' when unknown."""
    if seconds is None:
        return ""
    if seconds < 90:
        return f"{max(0, round(seconds))} s left"
    minutes = round(seconds / 60)
    return f"{minutes} min left" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min left"


def describe_progress(event: dict) -> str:
    """A progress event in words: ``scale 2 of 5, 40 %, 12 s left`` while training (scales
    counted from 1 = coarsest, as ``singan train`` does), else the phase (``loading the model``,
    ``generating``, ``queued``), with the share done and the time left when the daemon sent one
    (``generating: 40 %, 12 s left``)."""
    phase = event.get("phase")
    if phase != "training":
        word = _PHASES.get(str(phase), str(phase or "working"))
        if event.get("eta_seconds") is None or event.get("fraction") is None:
            return word
        return f"{word}: {100 * event['fraction']:.0f} %, {eta_text(event['eta_seconds'])}"
    parts = []
    if event.get("scale") is not None and event.get("num_scales"):
        parts.append(f"scale {event['scale'] + 1} of {event['num_scales']}")
    if event.get("fraction") is not None:
        parts.append(f"{100 * event['fraction']:.0f} %")
    if event.get("eta_seconds") is not None:
        parts.append(eta_text(event["eta_seconds"]))
    return ", ".join(parts) or "training"


def describe_error(error: BaseException) -> str:
    """Why a task failed, in an artist's words (one line)."""
    if isinstance(error, NotConnected):
        return str(error.message)
    if isinstance(error, DaemonError):
        if error.code == "unavailable":
            return f"not connected: {error.message}"
        if error.code == "cancelled":
            return "cancelled"
        return f"the daemon refused: {error.message}"
    return f"internal error: {type(error).__name__}: {error}"


def preset_text(preset: PresetInfo) -> str:
    """E.g. ``draft: 128 px, 60 iterations per scale`` (just the name if the daemon sent no details)."""
    if preset.max_size is None or preset.iterations is None:
        return preset.name
    return f"{preset.name}: {preset.max_size} px, {preset.iterations} iterations per scale"
