"""The plugin's connection to the daemon: a state, the daemon's ``hello``, its models and jobs.

Nothing here blocks: requests go out through :meth:`protocol.client.Client.submit` (ZeroMQ queues
them) and replies are read by :meth:`Connection.pump`, which a Qt timer calls every ~50 ms with a
zero poll timeout. One-reply ops (``hello``, ``list_models``, ``jobs``, ``cancel``) use ``submit``
too: the client then handles them like jobs, with its Lazy Pirate liveness probe (``jobs`` after
:data:`TIMEOUT` s of silence, a fresh socket and the same request resent, up to :data:`RETRIES`
tries), so a dead daemon fails every open request within ``TIMEOUT * (RETRIES + 1)`` s. While
connected, :meth:`Connection.pump` sends a heartbeat (``list_models`` + ``jobs``) every
:data:`HEARTBEAT` s, which keeps the model list live and notices a daemon that died while idle.

No ``krita`` or Qt import: tested in the project's environment against a real daemon.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from enum import Enum

import zmq

from .daemon_client import Client, DaemonError, Image, Job

from .errors import NotConnected
from .events import Signal

TIMEOUT = 0.5
"""Seconds of silence before the client probes the daemon, and between its tries."""
RETRIES = 3
"""Unanswered tries before every open request fails as unavailable (2 s in all)."""
HEARTBEAT = 0.5
"""Seconds between heartbeats (model list + job list) while connected: a daemon that dies while
the plugin is idle is noticed within ``HEARTBEAT + TIMEOUT * (RETRIES + 1)`` = 2.5 s."""
RECONNECT = 2.0
"""Seconds between ``hello`` attempts while not connected."""
_HEARTBEAT_OPS = {"list_models": "models", "jobs": "jobs"}  # op -> the attribute its answer refreshes


class ConnectionState(Enum):
    disconnected = "not connected"
    connecting = "connecting"
    connected = "connected"
    refused = "refused"  # a bad endpoint, or a daemon that will not serve us (token, protocol version)


DoneCallback = Callable[[Job], None]


class Connection:
    """The daemon at one endpoint, as seen from Krita's GUI thread.

    Signals:
        state_changed(): ``state``, ``error`` or ``info`` changed.
        models_changed(): ``models`` or ``jobs`` changed.

    Args:
        endpoint: ZeroMQ endpoint, e.g. ``tcp://127.0.0.1:5557``.
        clock: seconds, monotonic (injectable for tests).
    """

    def __init__(self, endpoint: str, clock: Callable[[], float] = time.monotonic):
        self.state_changed = Signal()
        self.models_changed = Signal()
        self._clock = clock
        self._client: Client | None = None
        self.endpoint = ""
        self.state = ConnectionState.disconnected
        self.error: str | None = None
        self.info: dict = {}  # the daemon's hello data once connected
        self.models: list[dict] = []  # list_models' ModelInfo dicts
        self.jobs: list[dict] = []  # the daemon's running and queued jobs (JobInfo dicts)
        self._next_attempt = 0.0
        self._next_heartbeat = 0.0
        self._pending: set[str] = set()  # heartbeat ops without an answer yet
        self._open: dict[str, tuple[Job, DoneCallback]] = {}  # by request id, until done
        self.set_endpoint(endpoint)

    # -- public -----------------------------------------------------------------------------

    def set_endpoint(self, endpoint: str) -> None:
        """Drop the current connection and connect to ``endpoint``. Open requests end at once
        with error code ``unavailable`` (their jobs go on in the old daemon)."""
        self.close()
        abandoned, self._open = list(self._open.values()), {}
        for job, on_done in abandoned:
            job.error = DaemonError("unavailable", f"the daemon endpoint was changed to {endpoint}")
            on_done(job)
        self.endpoint = endpoint.strip()
        self._pending.clear()
        self._next_attempt = 0.0
        try:
            self._client = Client(self.endpoint, timeout=TIMEOUT, retries=RETRIES)
        except zmq.ZMQError as error:
            self._set_state(ConnectionState.refused, f"'{self.endpoint}' is not a ZeroMQ endpoint like "
                                                     f"tcp://127.0.0.1:5557 ({error})")
            return
        self._set_state(ConnectionState.disconnected, None)

    @property
    def status(self) -> str:
        """One line for the docker, e.g. ``connected: SinGAN daemon 0.1.0 on cpu`` or
        ``not connected: no answer from tcp://127.0.0.1:5557 ...``."""
        if self.state is ConnectionState.connected:
            return f"connected: SinGAN daemon {self.info.get('server_version', '?')} on {self.info.get('device', '?')}"
        if self.error:
            return f"{self.state.value}: {self.error}"
        return f"{self.state.value} ({self.endpoint})"

    def model(self, model_id: str | None) -> dict | None:
        """The ModelInfo of ``model_id`` from the last refresh, or None."""
        return next((m for m in self.models if m.get("id") == model_id), None)

    def request(self, op: str, params: dict | None = None, images: Sequence[Image] = (), *,
                on_done: DoneCallback, on_progress: Callable[[Job, dict], None] | None = None) -> Job:
        """Send ``op`` without waiting; ``on_done(job)`` runs from :meth:`pump` when its result or
        error arrives (``job.error`` code ``unavailable`` if the daemon stopped answering).

        Raises:
            NotConnected: not connected now (the message is :attr:`status`).
        """
        if self.state is not ConnectionState.connected:
            raise NotConnected(self.status)
        return self._submit(op, params, images, on_done, on_progress)

    def pump(self) -> None:
        """Handle every reply that has arrived and send what is due (hello, heartbeat). Returns at once."""
        if self._client is None:
            return
        try:
            self._client.poll(0)
        except DaemonError as error:  # resending after a probe could not queue the message
            self._lost(error)
        now = self._clock()
        if self.state in (ConnectionState.disconnected, ConnectionState.refused) and now >= self._next_attempt:
            self._hello()
        elif self.state is ConnectionState.connected and now >= self._next_heartbeat and not self._pending:
            self._heartbeat()

    def close(self) -> None:
        """Close the socket (jobs go on in the daemon)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- internals --------------------------------------------------------------------------

    def _submit(self, op: str, params: dict | None, images: Sequence[Image], on_done: DoneCallback,
                on_progress: Callable[[Job, dict], None] | None) -> Job:
        def done(job: Job) -> None:
            if self._open.pop(job.request_id, None) is None:
                return  # abandoned by set_endpoint
            if job.error is not None and job.error.code == "unavailable":
                self._lost(job.error)
            elif op not in _HEARTBEAT_OPS:
                self._next_heartbeat = 0.0  # a job ended: show the models' new state at once
            on_done(job)

        try:
            job = self._client.submit(op, params, images, on_progress=on_progress, on_done=done)
        except DaemonError as error:  # the message could not even be queued
            self._lost(error)
            raise NotConnected(self.status) from None
        self._open[job.request_id] = (job, on_done)
        return job

    def _hello(self) -> None:
        self._next_attempt = self._clock() + RECONNECT
        if self.error is None:  # the first try; later ones keep showing why the last one failed
            self._set_state(ConnectionState.connecting, None)
        try:
            self._submit("hello", None, (), self._on_hello, None)
        except NotConnected:
            pass

    def _on_hello(self, job: Job) -> None:
        if job.error is None:
            self.info = job.result or {}
            self._next_heartbeat = 0.0
            self._set_state(ConnectionState.connected, None)
        elif job.error.code != "unavailable":  # unavailable was handled by _lost
            self._set_state(ConnectionState.refused, job.error.message)

    def _heartbeat(self) -> None:
        self._next_heartbeat = self._clock() + HEARTBEAT
        for op, key in _HEARTBEAT_OPS.items():
            self._pending.add(op)
            try:
                self._submit(op, None, (), self._on_refresh(op, key), None)
            except NotConnected:
                return

    def _on_refresh(self, op: str, key: str) -> DoneCallback:
        def done(job: Job) -> None:
            self._pending.discard(op)
            if job.error is None and (job.result or {}).get(key) != getattr(self, key):
                setattr(self, key, job.result[key])
                self.models_changed.emit()
        return done

    def _lost(self, error: DaemonError) -> None:
        self._pending.clear()
        # a failed hello was sent RECONNECT s ago or more: the next one goes out at once
        self._next_attempt = min(self._next_attempt, self._clock() + RECONNECT)
        if self.state is not ConnectionState.disconnected:
            self._set_state(ConnectionState.disconnected,
                            f"no answer from the SinGAN daemon at {self.endpoint}; start it with: singan serve")

    def _set_state(self, state: ConnectionState, error: str | None) -> None:
        if (state, error) != (self.state, self.error):
            self.state, self.error = state, error
            self.state_changed.emit()
