"""A throwaway single-machine Ray cluster for the tests and benches of ``singan serve --ray``.

:func:`local_head` runs ``ray start --head --block`` in its own session (so that the head and
every process Ray starts under it can be killed as one group, leaving any other Ray on the
machine alone), with token authentication and a fresh random token, no dashboard, free ports,
and its workers at nice 0 (Ray's default is 15); it yields the GCS address (``127.0.0.1:PORT``) and the environment a daemon needs to
connect (``RAY_AUTH_MODE``, ``RAY_AUTH_TOKEN``).

:class:`LocalCluster` simulates more than one machine: a head and worker nodes, each its own
``ray start --block`` process group with its own ports, temp folder and CPUs, that a test can kill
(a node lost) and, for the head, start again on the same address and token (a head that returns).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

START_TIMEOUT = 60.0
"""Seconds ``ray start`` may take to open its GCS port."""

_PORT_OPTIONS = (
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
)


@dataclass(frozen=True)
class LocalHead:
    """A running local head: ``address`` for ``--ray``, ``env`` for the daemon's environment
    (Ray's auth variables), ``log`` the output of ``ray start``."""

    address: str
    env: dict[str, str]
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_head(num_cpus: int, log: Path) -> Iterator[LocalHead]:
    """Start a Ray head with ``num_cpus`` CPUs (no GPUs) on 127.0.0.1 and stop it on exit
    (SIGTERM to its process group, then SIGKILL), whatever happened.

    Raises:
        RuntimeError: ``ray start`` exited or did not open its port within START_TIMEOUT s (the
            message ends with its log).
    """
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's Unix sockets live under it
    gcs = _free_port()
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    command = [
        str(Path(sys.executable).with_name("ray")),
        "start",
        "--head",
        "--block",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(gcs),
        "--num-cpus",
        str(num_cpus),
        "--num-gpus",
        "0",
        "--include-dashboard",
        "false",
        "--disable-usage-stats",
        "--temp-dir",
        str(temp),
        *[str(a) for o in _PORT_OPTIONS for a in (o, _free_port())],
    ]
    with open(log, "w") as out:
        # Ray starts its workers at nice 15 (RAY_worker_niceness); here they compete for the CPU
        # on the same terms as the daemon's own worker (nice 0), for the tests and the bench
        env = dict(os.environ, **auth, OMP_NUM_THREADS="1", RAY_worker_niceness="0")
        head = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _port_open(gcs):
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start did not come up (exit status {head.poll()}): {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield LocalHead(f"127.0.0.1:{gcs}", auth, log)
    finally:
        for sig, wait in ((signal.SIGTERM, 2), (signal.SIGKILL, 10)):
            try:
                os.killpg(head.pid, sig)
                head.wait(wait)
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        shutil.rmtree(temp, ignore_errors=True)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class LocalCluster:
    """A head plus worker nodes on 127.0.0.1 (module docstring). Use as a context manager: on exit
    every node still running is killed with its process group.

    Args:
        head_cpus: CPUs of the head node (0: the head runs no trainings).
        log_dir: where each ``ray start`` writes its output (``head-N.log``, ``node-N.log``).
    """

    def __init__(self, head_cpus: int, log_dir: Path):
        self.head_cpus, self.log_dir = head_cpus, log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.gcs = _free_port()
        self.env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        self.address = f"127.0.0.1:{self.gcs}"
        self._nodes: dict[str, tuple[subprocess.Popen, Path]] = {}
        self._count = 0

    def __enter__(self) -> "LocalCluster":
        self.start_head()
        return self

    def __exit__(self, *exc: object) -> None:
        for name in list(self._nodes):
            self.kill(name)

    def start_head(self, num_cpus: int | None = None) -> str:
        """Start the head on the cluster's GCS port (again, after :meth:`kill` of ``"head"``), with
        ``num_cpus`` CPUs (default: ``head_cpus``). Worker nodes of a lost head do not rejoin."""
        cpus = self.head_cpus if num_cpus is None else num_cpus
        self._start(
            "head", ["--head", "--port", str(self.gcs), "--num-cpus", str(cpus), "--include-dashboard", "false"]
        )
        return "head"

    def node_of(self, pid: int) -> str | None:
        """The name of the node whose session holds ``pid`` (a Ray worker's), or None."""
        try:
            session = os.getsid(pid)
        except ProcessLookupError:
            return None
        return next((name for name, (process, _) in self._nodes.items() if process.pid == session), None)

    def add_node(self, num_cpus: int) -> str:
        """Start a worker node with ``num_cpus`` CPUs; returns its name for :meth:`kill`."""
        self._count += 1
        name = f"node-{self._count}"
        self._start(name, ["--address", self.address, "--num-cpus", str(num_cpus)])
        return name

    def kill(self, name: str) -> None:
        """SIGKILL every process of a node's session (its raylet, workers and, for the head, the
        GCS; Ray puts each worker in a process group of its own, but not in another session)."""
        process, temp = self._nodes.pop(name)
        for pid in _session(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(10)
        shutil.rmtree(temp, ignore_errors=True)

    def _start(self, name: str, options: list[str]) -> None:
        temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's Unix sockets live under it
        command = [
            str(Path(sys.executable).with_name("ray")),
            "start",
            "--block",
            "--node-ip-address",
            "127.0.0.1",
            *options,
            "--num-gpus",
            "0",
            "--disable-usage-stats",
            "--temp-dir",
            str(temp),
            *[str(a) for o in _PORT_OPTIONS for a in (o, _free_port())],
        ]
        log = self.log_dir / f"{name}-{sum(1 for _ in self.log_dir.glob(name + '-*.log')) + 1}.log"
        with open(log, "w") as out:
            env = dict(os.environ, **self.env, OMP_NUM_THREADS="1", RAY_worker_niceness="0")
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self._nodes[name] = (process, temp)
        if name == "head":
            deadline = time.monotonic() + START_TIMEOUT
            while not _port_open(self.gcs):
                if process.poll() is not None or time.monotonic() > deadline:
                    self.kill(name)
                    raise RuntimeError(
                        f"ray start did not come up (exit status {process.poll()}): {log.read_text()[-2000:]}"
                    )
                time.sleep(0.2)


def _session(sid: int) -> list[int]:
    """The processes of session ``sid`` (Linux ``/proc``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3]) == sid:
                    pids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return pids
