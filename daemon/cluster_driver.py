"""The Ray driver of ``singan serve --ray``, in a child process that the daemon supervises.

Why a child. A Ray driver whose head (GCS) goes away blocks in every Ray call and, after
``gcs_rpc_server_reconnect_timeout_s`` (60 s), terminates its own process; a head restarted on
the same address is a new cluster that an old driver cannot rejoin. Were the daemon the driver, it
would die about a minute after its head. So the daemon never imports Ray: :class:`RayDriver`
starts :func:`driver_main` in a child process (``multiprocessing``, spawn), which connects, runs
the training tasks (:func:`daemon.cluster_task.train_remaining`) and forwards their items. When
the child stops answering (no heartbeat for :data:`HEARTBEAT_TIMEOUT` s: its head is lost) or
exits, the daemon kills it, reports the cluster ``unreachable`` (``hello``'s ``cluster``), tells
each running training (which waits, phase ``waiting``), and starts a new child every
:data:`RETRY` s until one connects; the trainings then resume from their last finished scale.
Ray ends the tasks of a driver that exits, so no task of an old child trains on.

Wire between the two (a ``multiprocessing`` pipe; standard pickle, tensors included):
the daemon sends ``("submit", job, PyramidState, threads, num_cpus, num_gpus)``,
``("cancel", job)`` and ``("stop",)``; the child sends ``("up", cpus, gpus)`` once connected,
``("heartbeat", cpus, gpus)`` every :data:`HEARTBEAT` s, ``("down", reason)`` when it cannot
connect, and per job ``("item", job, item)``, ``("end", job)``, ``("lost", job, reason)`` (its
worker or node died: resubmit) or ``("failed", job, reason)`` (the training itself raised).
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from protocol.wire import MAX_MESSAGE_CHARS, one_line

log = logging.getLogger(__name__)

HEARTBEAT = 1.0
"""Seconds between the child's heartbeats (each one a query of the cluster's resources)."""
HEARTBEAT_TIMEOUT = 15.0
"""Seconds without a heartbeat after which the cluster counts as unreachable (a query blocks while the head is gone)."""
CONNECT_TIMEOUT = 60.0
"""Seconds a child may take to connect before it is killed and retried."""
RETRY = 3.0
"""Seconds between a lost child and the next one."""


@dataclass(frozen=True)
class ClusterState:
    """What the daemon knows of its Ray cluster (``hello``'s ``cluster``).

    Attributes:
        connected: a driver is connected and answers.
        since: wall-clock time (Unix seconds) of the last change of ``connected``.
        message: why it is unreachable (one line); empty while connected.
        cpus, gpus: the cluster's total resources at the last heartbeat (0 while unreachable).
    """

    connected: bool
    since: float
    message: str = ""
    cpus: float = 0.0
    gpus: float = 0.0


class DriverDown(RuntimeError):
    """The driver process was lost (message: why); its tasks are gone, the cluster is unreachable."""


class RayDriver:
    """The daemon's side of the driver child (module docstring). ``start`` returns once the first
    child connected; trainings ``submit`` and read their items from the returned queue."""

    def __init__(self, address: str, context: Any = None):
        self.address = address
        self._mp = context or multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._jobs: dict[str, queue.Queue] = {}
        self._conn: Any = None
        self._state = ClusterState(False, time.time(), "not connected yet")
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._connects = 0  # children that connected so far
        self._first_failure: str | None = None  # why the first child could not connect
        self._supervisor: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float = CONNECT_TIMEOUT + 30) -> None:
        """Start the supervisor and wait for the first child to connect.

        Raises:
            ValueError: the first child could not connect (one line with Ray's reason).
        """
        self._supervisor = threading.Thread(target=self._supervise, args=(True,), name="singan-ray-driver")
        self._supervisor.start()
        with self._changed:
            self._changed.wait_for(lambda: self._connects or self._first_failure is not None, timeout)
            failure = self._first_failure or (None if self._connects else f"no connection within {timeout:g} s")
        if failure is not None:
            self.stop()
            raise ValueError(failure)

    def stop(self) -> None:
        """Stop the child (its tasks end) and the supervisor."""
        self._stopping.set()
        self._send(("stop",))
        if self._supervisor is not None:
            self._supervisor.join()

    @property
    def state(self) -> ClusterState:
        return self._state

    def wait_connected(self, timeout: float) -> bool:
        with self._changed:
            return (
                self._changed.wait_for(lambda: self._state.connected or self._stopping.is_set(), timeout)
                and self._state.connected
            )

    # -- trainings ----------------------------------------------------------------------------

    def submit(self, job: str, state: Any, threads: int, num_cpus: float, num_gpus: float) -> queue.Queue:
        """Start a training task for ``job``; its items arrive on the returned queue as
        ``(kind, payload)`` (module docstring; ``("down", reason)`` when the driver is lost).

        Raises:
            DriverDown: no driver is connected now.
        """
        items: queue.Queue = queue.Queue()
        with self._lock:
            if not self._state.connected:
                raise DriverDown(self._state.message or "the Ray cluster is unreachable")
            self._jobs[job] = items
        self._send(("submit", job, state, threads, num_cpus, num_gpus))
        return items

    def cancel(self, job: str) -> None:
        """End ``job``'s task (if any) and forget its queue."""
        with self._lock:
            known = self._jobs.pop(job, None) is not None
        if known:
            self._send(("cancel", job))

    def _send(self, message: tuple) -> None:
        conn = self._conn
        if conn is None:
            return
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            with self._lock:
                conn.send_bytes(data)
        except (OSError, ValueError):  # the child is gone: the supervisor notices
            pass

    # -- the supervisor -----------------------------------------------------------------------

    def _supervise(self, first: bool) -> None:
        while not self._stopping.is_set():
            parent, child = self._mp.Pipe()
            process = self._mp.Process(
                target=driver_main, args=(child, self.address), name="singan-ray-driver", daemon=True
            )
            process.start()
            child.close()
            self._conn = parent
            reason = self._serve(process, parent)
            self._conn = None
            _end(process, parent)
            if self._stopping.is_set():
                return
            if first and not self._connects:
                with self._changed:
                    self._first_failure = reason
                    self._changed.notify_all()
                return
            self._set_down(reason)
            self._stopping.wait(RETRY)

    def _serve(self, process: Any, conn: Any) -> str:
        """Relay the child's messages until it is lost; returns why (one line)."""
        started = last = time.monotonic()
        while True:
            if self._stopping.is_set():
                return "the daemon is stopping"
            try:
                ready = conn.poll(0.2)
                message = pickle.loads(conn.recv_bytes()) if ready else None
            except (EOFError, OSError):
                return (
                    f"lost the Ray cluster at {self.address} (its driver process exited, status {_exitcode(process)})"
                )
            now = time.monotonic()
            if message is None:
                if self._state.connected and now - last > HEARTBEAT_TIMEOUT:
                    return f"the Ray cluster at {self.address} does not answer (no reply for {HEARTBEAT_TIMEOUT:g} s)"
                if not self._state.connected and now - started > CONNECT_TIMEOUT:
                    return f"cannot connect to the Ray cluster at {self.address} within {CONNECT_TIMEOUT:g} s"
                continue
            kind = message[0]
            if kind in ("up", "heartbeat"):
                last = now
                self._set_up(*message[1:])
            elif kind == "down":
                return message[1]
            else:
                with self._lock:
                    items = self._jobs.get(message[1])
                    if kind in ("end", "lost", "failed"):
                        self._jobs.pop(message[1], None)
                if items is not None:
                    items.put((kind, message[2] if len(message) > 2 else None))

    def _set_up(self, cpus: float, gpus: float) -> None:
        with self._changed:
            if not self._state.connected:
                self._connects += 1
                log.info("connected to the Ray cluster at %s (%g CPU, %g GPU)", self.address, cpus, gpus)
                self._state = ClusterState(True, time.time(), "", cpus, gpus)
                self._changed.notify_all()
            elif (cpus, gpus) != (self._state.cpus, self._state.gpus):
                self._state = ClusterState(True, self._state.since, "", cpus, gpus)

    def _set_down(self, reason: str) -> None:
        with self._changed:
            was = self._state.connected
            if was or self._state.message != reason:
                self._state = ClusterState(False, time.time() if was else self._state.since, reason)
            jobs, self._jobs = self._jobs, {}
            self._changed.notify_all()
        if was:
            log.warning(
                "the Ray cluster is unreachable: %s; %d training(s) wait, retrying every %g s", reason, len(jobs), RETRY
            )
        for items in jobs.values():
            items.put(("down", reason))


def _exitcode(process: Any) -> Any:
    process.join(1)
    return process.exitcode


def _end(process: Any, conn: Any) -> None:
    """Let a stopping child exit by itself for a moment, then kill it."""
    process.join(5 if process.is_alive() else 0)
    if process.is_alive():
        process.kill()
        process.join(10)
    conn.close()


# -- the child ------------------------------------------------------------------------------------


def driver_main(conn: Any, address: str) -> None:
    """The child: connect to ``address``, then serve the daemon's commands until ``stop`` or until
    the daemon's end of the pipe closes (module docstring). Runs in its own process."""
    import os

    import torch

    torch.set_num_threads(1)
    send_lock = threading.Lock()

    def send(*message: Any) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with send_lock:
            conn.send_bytes(data)

    try:
        import ray

        from .cluster_task import train_remaining

        ray.init(address=address, log_to_driver=False, configure_logging=False)
        task = ray.remote(train_remaining)
        send("up", *_resources(ray))
    except Exception as exc:  # ConnectionError, RuntimeError (no auth token), ValueError, ImportError
        send("down", f"cannot connect to the Ray cluster at {address}: {one_line(str(exc))}")
        os._exit(1)
    streams: dict[str, Any] = {}
    threading.Thread(target=_heartbeat, args=(ray, send), daemon=True).start()
    try:
        while True:
            command = pickle.loads(conn.recv_bytes())
            if command[0] == "stop":
                break
            if command[0] == "submit":
                _, job, state, threads, cpus, gpus = command
                options = task.options(num_cpus=cpus, num_gpus=gpus, max_retries=0, num_returns="streaming")
                streams[job] = options.remote(state, threads)
                threading.Thread(target=_relay, args=(ray, job, streams, send), daemon=True).start()
            elif command[0] == "cancel" and (stream := streams.pop(command[1], None)) is not None:
                ray.cancel(stream, force=True)
    except (EOFError, OSError):
        pass  # the daemon is gone
    for stream in list(streams.values()):
        ray.cancel(stream, force=True)
    os._exit(0)  # ray.shutdown() may block on a lost head; Ray ends the tasks of a driver that exits


def _resources(ray: Any) -> tuple[float, float]:
    total = ray.cluster_resources()
    return float(total.get("CPU", 0)), float(total.get("GPU", 0))


def _heartbeat(ray: Any, send: Any) -> None:
    while True:
        send("heartbeat", *_resources(ray))  # blocks while the head is gone: the daemon notices
        time.sleep(HEARTBEAT)


def _relay(ray: Any, job: str, streams: dict, send: Any) -> None:
    """Forward one task's items until it ends, fails or is cancelled."""
    stream = streams[job]
    try:
        while streams.get(job) is stream:
            ready, _ = ray.wait([stream], timeout=0.2)
            if not ready:
                continue
            try:
                item = ray.get(next(stream))
            except StopIteration:
                send("end", job)
                return
            send("item", job, item)
    except Exception as exc:
        if streams.get(job) is stream:
            send("lost" if isinstance(exc, lost_errors()) else "failed", job, reason(exc))
    finally:
        if streams.get(job) is stream:
            streams.pop(job, None)


def lost_errors() -> tuple[type[BaseException], ...]:
    """Ray's errors for a task whose worker or node went away (not an error in the task itself)."""
    from ray import exceptions as e

    return (
        e.WorkerCrashedError,
        e.NodeDiedError,
        e.LocalRayletDiedError,
        e.ObjectLostError,
        e.RaySystemError,
        e.TaskUnschedulableError,
    )


def reason(exc: BaseException) -> str:
    """One line for a failure: a task's own exception without Ray's traceback wrapper."""
    cause = getattr(exc, "cause", None)
    exc = cause if isinstance(cause, BaseException) else exc
    text = str(exc).strip().splitlines()
    return one_line(f"{type(exc).__name__}: {text[-1] if text else ''}", MAX_MESSAGE_CHARS)
