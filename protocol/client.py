"""A small client of the SinGAN Studio daemon: pyzmq + msgpack only (no numpy, pydantic or torch),
so Krita's and Blender's Python can import it.

Single-threaded and never blocking longer than asked: a UI calls :meth:`Client.poll` with
``timeout=0`` from a timer and gets job progress through callbacks; scripts and tests call
:meth:`JobHandle.wait`. Like the zguide's Lazy Pirate, a request that gets no answer within ``timeout``
seconds is retried on a fresh socket (the daemon recognises a resent request by its id), and
after ``retries`` tries every waiting call and job fails with :class:`DaemonUnavailable` — a dead
daemon gives a clear error, never a hang.

Example::

    from protocol.client import Client, Image

    with Client() as client:
        print(client.hello()["device"])
        image = Image("image", width, height, "BGRA", pixel_bytes)
        job = client.submit("train", {"name": "bricks", "preset": "draft"}, [image],
                            on_progress=lambda job, p: print(p["fraction"]))
        model = job.wait()["model"]["id"]
        variations = client.submit("generate", {"model": model, "n": 4})
        variations.wait()
        samples = variations.images  # list[Image], uint8 RGB unless output_order says otherwise
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import zmq
from zmq.utils.monitor import recv_monitor_message

from . import DEFAULT_ENDPOINT, PROTOCOL_VERSION
from .auth import credentials_dir, is_loopback, read_token, secure_client
from .errors import DaemonError, DaemonUnavailable
from .wire import Image, decode, encode

__all__ = ["Client", "DaemonError", "DaemonUnavailable", "Image", "JobHandle"]


_AUTH_FAILURES = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
"""Socket events of a handshake the daemon refused (a wrong credential, or none: another mechanism)."""

ProgressCallback = Callable[["JobHandle", dict], None]
DoneCallback = Callable[["JobHandle"], None]


class JobHandle:
    """A submitted job op (train, generate, ...). Updated by :meth:`Client.poll`.

    Attributes:
        op, params: as submitted. request_id: this request's id.
        id: the daemon's job id once ``accepted`` arrived (else None). model: its model id, if any.
        progress: the last progress event (``phase``, ``fraction`` 0..1, ``eta_seconds``, ``scale``...).
        preview: the last preview image sent during training.
        result: the result's ``data`` once done; images: the result's images (list of :class:`Image`).
        error: the :class:`DaemonError` it failed with (code ``cancelled`` after a cancel).
    """

    def __init__(
        self,
        client: "Client",
        request_id: str,
        op: str,
        params: dict,
        images: Sequence[Image],
        on_progress: ProgressCallback | None,
        on_done: DoneCallback | None,
    ):
        self._client = client
        self._frames = encode(client._header(request_id, op, params), images)
        self.request_id, self.op, self.params = request_id, op, params
        self.on_progress, self.on_done = on_progress, on_done
        self.id: str | None = None
        self.model: str | None = None
        self.progress: dict | None = None
        self.preview: Image | None = None
        self.result: dict | None = None
        self.images: list[Image] = []
        self.error: DaemonError | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None

    def wait(self, timeout: float | None = None) -> dict:
        """Poll until the job ends; return its result data.

        Raises:
            DaemonError: the job failed or was cancelled (``code``), or the daemon stopped answering.
            TimeoutError: not done after ``timeout`` seconds (the job goes on).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if left <= 0:
                raise TimeoutError(f"job {self.id or self.request_id} ({self.op}) not done after {timeout} s")
            self._client.poll(left)
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def cancel(self) -> bool:
        """Ask the daemon to cancel this job (blocking up to the client's timeout). True if it was
        still queued or running; the job then ends with error code ``cancelled``."""
        if self.done:
            return False
        while self.id is None and not self.done:
            self._client.poll(0.05)
        return bool(self.id is not None and self._client.cancel(self.id)["cancelled"])

    def _handle(self, header: dict, images: list[Image]) -> None:
        kind = header.get("type")
        if kind == "accepted":
            self.id, self.model = header.get("job"), header.get("model")
        elif kind == "progress":
            self.progress = header
            if images:
                self.preview = images[0]
            if self.on_progress is not None:
                self.on_progress(self, header)
        elif kind in ("result", "error"):
            if kind == "result":
                self.result, self.images = header.get("data", {}), images
            else:
                self.error = _error(header)
            if self.on_done is not None:
                self.on_done(self)


def _error(header: dict) -> DaemonError:
    info = header.get("error") or {}
    return DaemonError(str(info.get("code", "internal")), str(info.get("message", "")), info.get("field"))


class Client:
    """A connection to the daemon (one DEALER socket; use it from one thread).

    Args:
        endpoint: the daemon's ZeroMQ endpoint.
        timeout: seconds to wait for any answer before retrying.
        retries: tries (each on a fresh socket) before :class:`DaemonUnavailable`.
        token: the daemon's ``--token``, if it was started with one: sent in every header and, on
            loopback, as the PLAIN password. None: the user's token file (:mod:`protocol.auth`),
            which the daemon makes on its first start, so nothing needs configuring.
        credentials: the folder of the token and CURVE keys (default: :func:`protocol.auth.credentials_dir`).
        curve: CURVE (encrypted, the daemon's ``--allow-remote``) instead of PLAIN; None: CURVE
            for an endpoint that is not loopback.

    A daemon that refuses the credential at the handshake fails every waiting call and job with
    code ``unauthorized`` (no message reaches it).
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        token: str | None = None,
        credentials: Path | None = None,
        curve: bool | None = None,
    ):
        self.endpoint, self.timeout, self.retries, self.token = endpoint, timeout, retries, token
        self.credentials, self.curve = credentials, (not is_loopback(endpoint)) if curve is None else curve
        self._monitor: zmq.Socket | None = None
        self._context: zmq.Context = zmq.Context.instance()
        self._identity = b"c" + os.urandom(8).hex().encode()
        self._ids = itertools.count(1)
        self._socket: zmq.Socket | None = None
        self._jobs: dict[str, JobHandle] = {}  # by request id, until done
        self._replies: dict[str, tuple[dict, list[Image]]] = {}  # answers to call(), by request id
        self._last_heard = time.monotonic()
        self._probe: tuple[str, float, int] | None = None  # (request id, sent at, tries) of a liveness check
        self._denied: DaemonError | None = None  # the daemon refused the handshake (until the next try)
        self._connect()

    # -- connection -------------------------------------------------------------------------

    def _connect(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
        socket = self._context.socket(zmq.DEALER)
        socket.setsockopt(zmq.ROUTING_ID, self._identity)  # the same identity after a reconnect
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.IPV6, 1)  # tcp://[::1]:PORT (IPv4 endpoints work as before)
        secure_client(socket, self.curve, self.token, self.credentials)
        self._close_monitor()
        self._monitor = socket.get_monitor_socket(_AUTH_FAILURES)
        # no ZMQ_IMMEDIATE: with it, replies already received are dropped when the daemon disconnects
        socket.connect(self.endpoint)
        self._socket = socket

    def _close_monitor(self) -> None:
        if self._monitor is not None:
            self._monitor.close(linger=0)
            self._monitor = None

    def _refused(self) -> DaemonError | None:
        """An ``unauthorized`` error if the daemon refused this socket's handshake since the last check."""
        failure = None
        while self._monitor is not None and self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)
            if event["event"] & _AUTH_FAILURES:
                folder = self.credentials or credentials_dir()
                if not self.curve and not (self.token or read_token(folder)):
                    why = f"this client has no token (none in {folder}; the daemon makes it on its first start)"
                else:
                    why = f"it refused this client's {'CURVE key' if self.curve else 'token'} (is {folder} the daemon's credentials folder?)"
                failure = DaemonError(
                    "unauthorized", f"the SinGAN daemon at {self.endpoint} did not let this client in: {why}"
                )
        return failure

    def close(self) -> None:
        """Close the socket; unfinished jobs go on in the daemon."""
        self._close_monitor()
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _header(self, request_id: str, op: str, params: dict | None) -> dict:
        header = {"v": PROTOCOL_VERSION, "id": request_id, "op": op, "params": params or {}}
        if self.token is not None:
            header["token"] = self.token
        return header

    def _send(self, frames: list) -> None:
        assert self._socket is not None, "client is closed"
        if not self._socket.poll(int(self.timeout * 1000), zmq.POLLOUT):
            raise DaemonUnavailable(
                f"cannot reach the SinGAN daemon at {self.endpoint} within {self.timeout} s; is it running? (singan serve)"
            )
        self._socket.send_multipart(frames, copy=False)

    def _new_id(self) -> str:
        return f"{self._identity.decode()}-{next(self._ids)}"

    # -- requests ---------------------------------------------------------------------------

    def call(
        self, op: str, params: dict | None = None, images: Sequence[Image] = (), timeout: float | None = None
    ) -> tuple[dict, list[Image]]:
        """Send a one-reply op and wait for its result (data, images), retrying like Lazy Pirate.

        Raises:
            DaemonError: an error reply. DaemonUnavailable: no reply after ``retries`` tries.
        """
        timeout = self.timeout if timeout is None else timeout
        request_id = self._new_id()
        frames = encode(self._header(request_id, op, params), images)
        for _ in range(self.retries):
            self._denied = None
            self._send(frames)
            deadline = time.monotonic() + timeout
            while request_id not in self._replies and time.monotonic() < deadline and self._denied is None:
                self.poll(deadline - time.monotonic())
            if self._denied is not None:
                raise self._denied
            if request_id in self._replies:
                header, reply_images = self._replies.pop(request_id)
                if header.get("type") == "error":
                    raise _error(header)
                return header.get("data", {}), reply_images
            self._connect()
        raise DaemonUnavailable(
            f"no reply from the SinGAN daemon at {self.endpoint} to {op} after {self.retries} tries of {timeout} s; is it running? (singan serve)"
        )

    def submit(
        self,
        op: str,
        params: dict | None = None,
        images: Sequence[Image] = (),
        *,
        on_progress: ProgressCallback | None = None,
        on_done: DoneCallback | None = None,
    ) -> JobHandle:
        """Send a job op without waiting; the returned :class:`JobHandle` is updated by :meth:`poll`.

        One-reply ops (``hello``, ``list_models``, ``jobs``, ``cancel``, ...) may be sent this way
        too, which is how a UI avoids :meth:`call`'s wait: ``on_done`` gets the job with its
        ``result`` (or ``error``), and the Lazy Pirate probe and resend apply to it like to a job.

        Raises:
            DaemonUnavailable: the daemon cannot be reached at all.
        """
        job = JobHandle(self, self._new_id(), op, params or {}, images, on_progress, on_done)
        self._send(job._frames)
        if not self._jobs:
            self._last_heard = time.monotonic()
        self._jobs[job.request_id] = job
        return job

    def hello(self) -> dict:
        """Protocol/server versions, device and its memory, ops, presets, limits."""
        return self.call("hello")[0]

    def list_models(self) -> list[dict]:
        return self.call("list_models")[0]["models"]

    def get_model(self, model: str) -> dict:
        return self.call("get_model", {"model": model})[0]["model"]

    def delete_model(self, model: str) -> None:
        self.call("delete_model", {"model": model})

    def jobs(self) -> list[dict]:
        return self.call("jobs")[0]["jobs"]

    def cancel(self, job_id: str) -> dict:
        return self.call("cancel", {"job": job_id})[0]

    def shutdown(self) -> None:
        self.call("shutdown")

    # -- receiving --------------------------------------------------------------------------

    def poll(self, timeout: float = 0.0) -> None:
        """Wait up to ``timeout`` seconds (0: not at all) for messages, handle all that are there:
        updates jobs and runs their callbacks; checks the daemon is alive while jobs are open."""
        assert self._socket is not None, "client is closed"
        end = time.monotonic() + max(0.0, timeout)
        while True:  # the socket, and its monitor for a refused handshake
            if self._socket.poll(max(0, min(100, int((end - time.monotonic()) * 1000))), zmq.POLLIN):
                while self._socket.poll(0, zmq.POLLIN):
                    self._dispatch(self._socket.recv_multipart(copy=False))
                break
            refused = self._refused()
            if refused is not None:
                self._denied = refused
                self._fail_all(refused)
                return
            if time.monotonic() >= end:
                break
        self._check_alive()

    def _dispatch(self, frames: list) -> None:
        try:
            header, images = decode([f.buffer for f in frames])
        except ValueError:
            return  # not a message of this protocol: nothing to match it to
        self._last_heard = time.monotonic()
        request_id = header.get("id")
        if self._probe is not None and request_id == self._probe[0]:
            self._probe = None
            self._reconcile(header)
        elif request_id in self._jobs:
            job = self._jobs[request_id]
            job._handle(header, images)
            if job.done:
                del self._jobs[request_id]
        elif isinstance(request_id, str):
            self._replies[request_id] = (header, images)

    def _check_alive(self) -> None:
        """Lazy Pirate for jobs: after ``timeout`` s of silence, ask for the job list; retry on a
        fresh socket; after ``retries`` unanswered tries, fail every open job."""
        if not self._jobs:
            self._probe = None
            return
        now = time.monotonic()
        if self._probe is None:
            if now - self._last_heard > self.timeout:
                self._send_probe(1)
        elif now - self._probe[1] > self.timeout:
            if self._probe[2] >= self.retries:
                self._fail_all(
                    DaemonUnavailable(
                        f"the SinGAN daemon at {self.endpoint} stopped answering ({self.retries} tries of {self.timeout} s)"
                    )
                )
            else:
                self._connect()
                self._send_probe(self._probe[2] + 1)

    def _send_probe(self, tries: int) -> None:
        request_id = self._new_id()
        self._probe = (request_id, time.monotonic(), tries)
        if self._socket is not None and self._socket.poll(0, zmq.POLLOUT):
            self._socket.send_multipart(encode(self._header(request_id, "jobs", None)))

    def _reconcile(self, header: dict) -> None:
        """After a probe's answer: resend requests never accepted, fail jobs the daemon forgot."""
        known = {job.get("job") for job in header.get("data", {}).get("jobs", [])}
        for request_id, job in list(self._jobs.items()):
            if job.id is None:
                self._send(job._frames)  # the daemon recognises the id if it did get it
            elif job.id not in known:
                del self._jobs[request_id]
                job._handle(
                    {
                        "type": "error",
                        "error": {
                            "code": "internal",
                            "message": f"job {job.id} is no longer known to the daemon (was it restarted?)",
                        },
                    },
                    [],
                )

    def _fail_all(self, error: DaemonError) -> None:
        jobs, self._jobs, self._probe = list(self._jobs.values()), {}, None
        for job in jobs:
            job._handle({"type": "error", "error": {"code": error.code, "message": error.message}}, [])
