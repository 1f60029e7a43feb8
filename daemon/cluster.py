"""Trainings on a Ray cluster (``singan serve --ray ADDRESS``); Ray itself is imported only in the
driver child (:mod:`daemon.cluster_driver`) and on the Ray workers.

Hand-off. The daemon's store stays the single source of truth. For each training the daemon
loads the model directory (:func:`~singan_core.workflow.resume_training`) and ships its state as
the task's argument (:class:`~daemon.cluster_task.PyramidState`); the task
(:func:`~daemon.cluster_task.train_remaining`, a Ray *streaming generator*) trains the remaining
scales with the core's ``train`` and yields each finished scale k (the states of every scale
``scales_changed_by(config, k)``) between its progress reports. The daemon installs them into its
own copy of the pyramid and writes them with :func:`~singan_core.storage.save_scale`, the call a
local training makes, so the files, their order and their atomicity are the same: resume,
``kill -9`` of the daemon and the plugins see no difference. A streaming generator rather than an
actor or a queue: its items arrive in order, one object each (a scale is written as soon as it
exists, not at the task's end), it needs no extra process, and ``ray.cancel`` ends it; workers
never need the daemon's disk.

Retries. Tasks run with ``max_retries=0`` and the daemon resubmits: a task Ray retries re-runs
with its *original* argument, so it would redo every scale the store got meanwhile (and the
daemon would have to drop them as duplicates). When a task is lost (its worker process or node
died: Ray's system errors, :func:`~daemon.cluster_driver.lost_errors`), the daemon reloads the model from the store and
submits a fresh task from its last finished scale, on whichever worker Ray picks. After
``max_attempts`` losses in a row without a new finished scale, the model is marked failed with the
reason. An exception inside the training (a bug, out of memory) is not retried: the model fails.

The driver. The daemon itself never imports Ray: a child process it supervises is the Ray driver
(:mod:`daemon.cluster_driver`), so a lost head cannot take the daemon down. While no driver is
connected the cluster is reported ``unreachable`` (``hello``'s ``cluster``), no training starts,
and running ones wait (``jobs`` phase ``waiting``); when a new driver connects they resume from
their last finished scale (not counted as lost attempts).

Concurrency. One dispatcher thread takes prepared ``train`` jobs from the daemon's queue, in queue
order (interactive jobs and model preparation stay in the daemon's own worker, which no longer
interleaves trainings), as long as the cluster's total CPUs and GPUs (re-read as nodes come and
go) hold the declared resources of the running ones plus the next one (``num_cpus`` /
``num_gpus``, per preset if configured): with 1 CPU each on a 2-CPU cluster, two at a time.
Each running training has its own thread that waits on its task's items from the driver (never
blocking the socket loop or the worker) and sends progress over its own inproc PUSH socket.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

import torch
import zmq

from protocol.errors import MAX_MESSAGE_CHARS, one_line
from protocol.schema import Error, ModelResult, Result
from singan_core.config import PRESETS
from singan_core.storage import save_scale
from singan_core.training import TrainProgress
from singan_core.workflow import TrainJob, resume_training

from .cluster_driver import ClusterState, DriverDown, RayDriver
from .cluster_task import Placement, ScaleDone, install_scales, pyramid_state
from .estimate import CalibratedEstimate
from .errors import CancelReason, JobCancelled, RayTrainingLost
from .jobs import Job, JobQueue
from .store import ModelStore
from .replies import PROGRESS_INTERVAL, Throttle, error_reply, progress_reply, send_reply, training_preview

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "singan-studio[cluster]"'


@dataclass(frozen=True)
class ClusterConfig:
    """How the daemon uses a Ray cluster (``singan serve --ray ...`` options).

    Attributes:
        address: ``auto`` (a cluster started on this machine), a GCS address ``host:port`` as
            ``ray start --head`` prints it, or ``ray://host:port`` (Ray Client).
        num_cpus: CPUs each training task declares; also its torch thread count (at least 1).
        num_gpus: GPUs each training task declares (0: CPU trainings; 1: one GPU each).
        max_attempts: tasks lost in a row (no new finished scale between) before the model fails.
        per_preset: ``(preset, num_cpus, num_gpus)`` for the presets that declare other resources
            (``--ray-preset paper=4,1``); the others use ``num_cpus`` / ``num_gpus``.
    """

    address: str
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_attempts: int = 3
    per_preset: tuple[tuple[str, float, float], ...] = ()

    def __post_init__(self) -> None:
        if not self.address.strip():
            raise ValueError("ray: empty address; use auto, HOST:PORT or ray://HOST:PORT")
        if not self.num_cpus > 0:
            raise ValueError(f"ray-cpus: must be > 0, got {self.num_cpus}")
        if self.num_gpus < 0:
            raise ValueError(f"ray-gpus: must be >= 0, got {self.num_gpus}")
        if self.max_attempts < 1:
            raise ValueError(f"ray-attempts: must be >= 1, got {self.max_attempts}")
        for name, cpus, gpus in self.per_preset:
            if name not in PRESETS:
                raise ValueError(f"ray-preset: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
            if not cpus > 0 or gpus < 0:
                raise ValueError(f"ray-preset: {name} needs CPUs > 0 and GPUs >= 0, got {cpus:g}, {gpus:g}")

    def resources(self, preset: str) -> tuple[float, float]:
        """(num_cpus, num_gpus) a training of ``preset`` declares."""
        for name, cpus, gpus in self.per_preset:
            if name == preset:
                return cpus, gpus
        return self.num_cpus, self.num_gpus


def parse_preset_resources(specs: list[str]) -> tuple[tuple[str, float, float], ...]:
    """``["paper=4,1", "draft=2"]`` (PRESET=CPUS[,GPUS]) -> ``(("paper", 4.0, 1.0), ("draft", 2.0, 0.0))``.

    Raises:
        ValueError: a spec not of that form (one line naming ``ray-preset``).
    """
    out = []
    for spec in specs:
        name, _, amounts = spec.partition("=")
        parts = amounts.split(",")
        try:
            if not name or len(parts) > 2:
                raise ValueError
            out.append((name.strip(), float(parts[0]), float(parts[1]) if len(parts) == 2 else 0.0))
        except ValueError:
            raise ValueError(f"ray-preset: {spec!r} is not PRESET=CPUS[,GPUS], e.g. paper=4,1") from None
    return tuple(out)


def task_threads(num_cpus: float) -> int:
    """Torch threads of a task that declares ``num_cpus``: rounded down, at least 1."""
    return max(1, math.floor(num_cpus))


def is_ray_training(job: Job) -> bool:
    """The jobs the Ray trainer takes: ``train`` jobs whose model directory exists (prepared).
    Super-resolution models still train in the daemon's worker, as part of their op."""
    return job.op == "train" and job.prepare is None


def check_ray_installed() -> None:
    """Raises ValueError naming ``--ray`` and the extra to install when Ray is not installed
    (without importing it: the daemon process never does)."""
    if importlib.util.find_spec("ray") is None:
        raise ValueError(f"ray: --ray needs Ray, which is not installed; {INSTALL_HINT}")


class _TaskLost(RuntimeError):
    """A task's worker or node died (message: Ray's reason): resubmitted."""


class _TaskFailed(RuntimeError):
    """The training inside a task raised (message: its exception, one line): the model fails."""


class RayTrainer:
    """Runs the daemon's trainings as Ray tasks (module docstring). ``start`` connects and starts
    the dispatcher; ``join`` (after the queue is closed) waits for every training thread."""

    POLL = 0.2
    """Seconds between checks for a cancel while a task is silent; also the dispatcher's tick."""

    def __init__(
        self,
        config: ClusterConfig,
        queue: JobQueue,
        store: ModelStore,
        context: zmq.Context,
        events_endpoint: str,
        preview_interval: float = 3.0,
    ):
        self.config, self.queue, self.store = config, queue, store
        self.context, self.events_endpoint, self.preview_interval = context, events_endpoint, preview_interval
        self._threads: list[threading.Thread] = []
        self.driver: RayDriver | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect to the cluster and start taking trainings.

        Raises:
            ValueError: Ray is not installed, or the cluster cannot be reached (one line).
        """
        check_ray_installed()
        self.driver = RayDriver(self.config.address)
        try:
            self.driver.start()
        except ValueError as exc:
            raise ValueError(f"ray: {one_line(str(exc))}{_auth_hint()}") from None
        state = self.driver.state
        log.info(
            "training on the Ray cluster at %s (%g CPU, %g GPU; %g CPU and %g GPU per training%s)",
            self.config.address,
            state.cpus,
            state.gpus,
            self.config.num_cpus,
            self.config.num_gpus,
            "".join(f", {name}: {cpus:g} CPU and {gpus:g} GPU" for name, cpus, gpus in self.config.per_preset),
        )
        dispatcher = threading.Thread(target=self._dispatch, name="singan-ray-dispatch")
        dispatcher.start()
        self._threads.append(dispatcher)

    def join(self) -> None:
        """Wait for the dispatcher and every training (the queue is closed: they stop), then disconnect."""
        while self._threads:
            self._threads.pop().join()
        if self.driver is not None:
            self.driver.stop()

    @property
    def state(self) -> ClusterState:
        """The cluster as the daemon sees it (``hello``'s ``cluster``)."""
        assert self.driver is not None
        return self.driver.state

    def _total(self) -> tuple[float, float]:
        """The cluster's (CPUs, GPUs) at the driver's last heartbeat (nodes come and go); (0, 0)
        while it is unreachable."""
        state = self.state
        return (state.cpus, state.gpus) if state.connected else (0.0, 0.0)

    def _resources(self, job: Job) -> tuple[float, float]:
        try:
            return self.config.resources(self.store.indexed(job.model).preset)
        except KeyError:  # deleted meanwhile: its training fails at once with a clear error
            return self.config.num_cpus, self.config.num_gpus

    def _dispatch(self) -> None:
        """Start the first queued training whenever the cluster has room for its resources beside
        the running ones (FIFO: a later training never overtakes one that does not fit yet)."""
        running: dict[threading.Thread, tuple[float, float]] = {}
        torch.set_num_threads(1)
        waiting_logged = None
        while not self.queue.closed:
            running = {t: r for t, r in running.items() if t.is_alive()}
            job = self.queue.peek(is_ray_training)
            if job is None:
                time.sleep(self.POLL)
                continue
            need, total = self._resources(job), self._total()
            free = (total[0] - sum(r[0] for r in running.values()), total[1] - sum(r[1] for r in running.values()))
            if need[0] > free[0] + 1e-9 or need[1] > free[1] + 1e-9:
                if not running and waiting_logged is not job and total != (0.0, 0.0):
                    waiting_logged = job
                    log.warning(
                        "job %s (train %s) needs %g CPU and %g GPU; the Ray cluster has %g and %g: it waits for more nodes",
                        job.id,
                        job.model,
                        *need,
                        *total,
                    )
                time.sleep(self.POLL)
                continue
            if self.queue.take(timeout=0, accept=lambda j: j is job) is None:
                continue  # cancelled meanwhile
            thread = threading.Thread(target=self._run, args=(job, need), name=f"singan-ray-{job.id}")
            thread.start()
            running[thread] = need
            self._threads.append(thread)

    # -- one training -------------------------------------------------------------------------

    def _run(self, job: Job, need: tuple[float, float]) -> None:
        """Run one training job to its final reply (a result, or an error) with ``need`` =
        (num_cpus, num_gpus) declared."""
        torch.set_num_threads(1)  # installing scales and previews are small
        out = self.context.socket(zmq.PUSH)
        out.connect(self.events_endpoint)
        try:
            message = self._execute(job, need, lambda m, images=(): send_reply(out, job, m, images))
            self.queue.finish(job)  # before the final reply, as the worker does
            if isinstance(message, Error) and job.client is None:
                log.warning("job %s (%s %s): %s", job.id, job.op, job.model, message.error.message)
            send_reply(out, job, message)
        finally:
            out.close(linger=1000)

    def _execute(self, job: Job, need: tuple[float, float], send: Callable[..., None]) -> Result | Error:
        start = time.perf_counter()
        try:
            self._train(job, need, send)
            log.info("job %s (train %s) done on Ray in %.2f s", job.id, job.model, time.perf_counter() - start)
            return Result(id=job.request_id or "", job=job.id, data=ModelResult(model=self.store.info(job.model)))
        except JobCancelled as exc:
            if exc.reason is CancelReason.SHUTDOWN:  # left to be resumed at the next start
                return error_reply(
                    job,
                    "cancelled",
                    f"job {job.id} (train) was cancelled: {exc.reason.value}; "
                    "its training resumes when the daemon starts again",
                )
            self.store.stop_training(job.model)
            return error_reply(job, "cancelled", f"job {job.id} (train) was cancelled: {exc.reason.value}")
        except Exception as exc:
            log.exception("job %s (train %s) failed on Ray", job.id, job.model)
            reason = (
                str(exc)
                if isinstance(exc, _TaskFailed)
                else one_line(f"{type(exc).__name__}: {exc}", MAX_MESSAGE_CHARS)
            )
            self.store.stop_training(job.model, error=reason)
            return error_reply(job, "internal", f"job {job.id} (train) failed: {reason}")

    def _train(self, job: Job, need: tuple[float, float], send: Callable[..., None]) -> None:
        """Train the job's model on Ray from its last finished scale, resubmitting lost tasks and
        waiting while the cluster is unreachable."""
        driver, lost = self.driver, 0
        assert driver is not None
        while True:
            training = resume_training(self.store.path(job.model), torch.device("cpu"))
            if training.pyramid.is_complete:
                return
            done_before = training.pyramid.scales_done
            estimate = CalibratedEstimate(training.pyramid)
            try:
                if not driver.state.connected:
                    self._wait_for_cluster(job, estimate.start_fraction)
                    continue
                job.progress = dict(phase="training", fraction=estimate.start_fraction, eta_seconds=None)
                send(progress_reply(job))
                items = driver.submit(job.id, pyramid_state(training.pyramid), task_threads(need[0]), *need)
            except DriverDown:
                continue
            try:
                self._consume(job, training, estimate, items, send)
                return
            except DriverDown as exc:
                job.placement = None
                log.warning(
                    "job %s (train %s): %s; it resumes from scale %d when the cluster answers",
                    job.id,
                    job.model,
                    exc,
                    training.pyramid.scales_done,
                )
                continue
            except Exception as exc:  # a cancel, a lost task, a failure in the task or in saving
                driver.cancel(job.id)  # whatever stopped us, the task must not go on
                if not isinstance(exc, _TaskLost):
                    raise
                lost = 1 if training.pyramid.scales_done > done_before else lost + 1
                job.placement = None
                reason = f"the Ray task was lost ({exc})"
                if lost >= self.config.max_attempts:
                    raise RayTrainingLost(f"{reason}; {lost} attempts in a row without a finished scale") from None
                log.warning(
                    "job %s (train %s): %s; resubmitting from scale %d (attempt %d of %d)",
                    job.id,
                    job.model,
                    reason,
                    training.pyramid.scales_done,
                    lost + 1,
                    self.config.max_attempts,
                )

    def _wait_for_cluster(self, job: Job, fraction: float) -> None:
        """Wait (``jobs`` phase ``waiting``) until a driver is connected; raises JobCancelled."""
        assert self.driver is not None
        job.progress = dict(phase="waiting", fraction=fraction, eta_seconds=None)
        while not self.driver.wait_connected(self.POLL):
            job.check_cancelled()
            if self.queue.closed:
                raise JobCancelled(CancelReason.SHUTDOWN)

    def _consume(
        self, job: Job, training: TrainJob, estimate: CalibratedEstimate, items: queue.Queue, send: Callable[..., None]
    ) -> None:
        """Apply a task's items until it ends; raises JobCancelled, _TaskLost, _TaskFailed or DriverDown."""
        progress_due, preview_due = Throttle(PROGRESS_INTERVAL), Throttle(self.preview_interval, wait_first=True)
        while True:
            job.check_cancelled()
            try:
                kind, item = items.get(timeout=self.POLL)
            except queue.Empty:
                continue
            if kind == "end":
                return
            if kind in ("lost", "failed", "down"):
                raise {"lost": _TaskLost, "failed": _TaskFailed, "down": DriverDown}[kind](item)
            if isinstance(item, Placement):
                job.placement = item
                log.info(
                    "job %s (train %s) runs on Ray node %s (%s), worker pid %d, %d threads",
                    job.id,
                    job.model,
                    item.node_ip,
                    item.node_id[:12],
                    item.pid,
                    item.threads,
                )
            elif isinstance(item, TrainProgress):
                fraction = estimate.fraction(item)
                if progress_due(force=item.iteration == item.iterations):
                    job.progress = dict(
                        phase="training",
                        fraction=fraction,
                        eta_seconds=estimate.eta_seconds(fraction),
                        scale=item.scale,
                        num_scales=item.num_scales,
                        iteration=item.iteration,
                        iterations=item.iterations,
                    )
                    send(progress_reply(job))
            elif isinstance(item, ScaleDone):
                self._save(job, training, item, preview_due, send)

    def _save(
        self, job: Job, training: TrainJob, done: ScaleDone, preview_due: Throttle, send: Callable[..., None]
    ) -> None:
        """Install finished scale k and write it as a local training does (``save_scale``, in order)."""
        pyramid = training.pyramid
        install_scales(pyramid, done.states)
        training.meta = save_scale(training.path, pyramid, done.k)
        self.store.refresh(job.model)
        if preview_due(force=done.k == pyramid.num_scales - 1):
            send(progress_reply(job), [training_preview(pyramid)])


def _auth_hint() -> str:
    """A cluster with token authentication refuses a process that connects to an explicit address
    without ``RAY_AUTH_MODE=token`` (Ray 2.60 only switches it on by itself for ``auto``)."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return ""
    return (
        "; if the cluster uses token authentication, start the daemon with RAY_AUTH_MODE=token and RAY_AUTH_TOKEN set"
    )
