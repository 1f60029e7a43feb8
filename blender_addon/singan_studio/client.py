"""The add-on's one connection to the SinGAN Studio daemon (no bpy: plain Python).

Wraps the bundled protocol client (``.protocol.client``, copied in at build time) with the state
the preferences show: the daemon's ``hello`` (version, device) or the last connection error, and
the models it holds (for the model field's search). Blender runs everything on its main thread,
so one module-level :class:`Connection` is shared by every operator and panel.
"""

from __future__ import annotations

from .protocol.client import Client, DaemonError

HELLO_TIMEOUT_S = 0.6
"""Seconds to wait for each try of the connection check (``hello``): an unreachable daemon is
reported after ``HELLO_TIMEOUT_S * RETRIES`` = 1.8 s."""
TIMEOUT_S = 2.0
"""Seconds of silence before the client checks that the daemon is alive (and for other quick
requests). Generous because the daemon's socket thread answers nothing while it cuts a large
training image into its pyramid (measured: 0.7 s for 4096x2731, 2 s for 8192x4096 on 2 CPU cores)."""
RETRIES = 3
"""Tries before the daemon counts as unreachable: a job whose daemon died fails after about
``TIMEOUT_S * (RETRIES + 1)`` = 8 s."""


class Connection:
    """A client of the daemon at ``endpoint`` plus what is known about that daemon.

    Attributes:
        endpoint: ZeroMQ endpoint, e.g. ``tcp://127.0.0.1:5557``.
        client: the protocol client (one DEALER socket).
        info: the last ``hello`` result (``server_version``, ``device``, ...), or None while the
            daemon has not answered since the connection was made or lost.
        error: one line saying why the last attempt to reach the daemon failed, or None.
        models: ModelInfo dicts from the last ``list_models`` (ids, names, statuses, sizes).
    """

    def __init__(self, endpoint: str, token: str | None):
        self.endpoint, self.token = endpoint, token
        self.client = Client(endpoint, timeout=TIMEOUT_S, retries=RETRIES, token=token)
        self.info: dict | None = None
        self.error: str | None = None
        self.models: list[dict] = []

    def check(self) -> dict:
        """Ask the daemon for ``hello`` and its model list (blocks for 1.8 s if the daemon is down).

        Returns:
            The hello data.

        Raises:
            DaemonError: an error reply (e.g. ``unauthorized``), or :class:`DaemonUnavailable`.
        """
        try:
            self.info = self.client.call("hello", timeout=HELLO_TIMEOUT_S)[0]
            self.models = self.client.list_models()
        except DaemonError as error:
            self.lost(error)
            raise
        self.error = None
        return self.info

    def ensure(self) -> Client:
        """The client, after a ``hello`` if the daemon has not answered one since it was last lost.

        Raises:
            DaemonError: as :meth:`check`.
        """
        if self.info is None:
            self.check()
        return self.client

    def lost(self, error: DaemonError) -> None:
        """Record why the daemon could not be reached (or refused the client); it is asked
        ``hello`` again before the next job."""
        self.error, self.info = error.message, None

    def model(self, model_id: str) -> dict | None:
        """The cached ModelInfo of ``model_id``, or None."""
        return next((info for info in self.models if info["id"] == model_id), None)

    def close(self) -> None:
        self.client.close()


_current: Connection | None = None


def connect(endpoint: str, token: str | None = None) -> Connection:
    """The shared connection to ``endpoint``; a new one if the endpoint or the token changed. The
    old one stays open for the jobs still following it (its socket closes when the last of them
    lets go of it). Never blocks: nothing is sent until a request is made."""
    global _current
    if _current is None or (_current.endpoint, _current.token) != (endpoint, token):
        _current = Connection(endpoint, token)
    return _current


def current() -> Connection | None:
    """The shared connection, if one was made."""
    return _current


def disconnect() -> None:
    """Close the shared connection (jobs that are running go on in the daemon)."""
    global _current
    if _current is not None:
        _current.close()
        _current = None
