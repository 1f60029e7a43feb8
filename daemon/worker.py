"""The worker: owns the compute device and runs jobs, in the daemon's main thread (PyTorch's CPU
thread pool is much slower for small tensors when driven from a secondary thread).

Replies go to the socket loop as :mod:`daemon.replies` builds them. A training
calls back after every iteration; there the worker checks for cancellation and first runs every
queued interactive job — training yields to artists between iterations.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import torch
import zmq

from protocol.schema import Error, ImagesResult, ModelInfo, ModelResult, Result
from protocol.errors import ProtocolError
from protocol.wire import Image
from singan_core.errors import InvalidArgument
from singan_core.full_resolution import lift_source
from singan_core.cancel import interruptible
from singan_core.storage import load_full_source, load_pyramid
from singan_core.super_resolution import super_resolve
from singan_core.training import TrainProgress
from singan_core.workflow import resume_training, run_training

from .budget import MemoryBudget
from .cache import LoadedModel, PyramidCache
from .estimate import CalibratedEstimate, CostRate
from .images import from_tensor
from .errors import CancelReason, JobCancelled
from .jobs import Job, JobQueue
from .prepare import prepare_model
from .ops import check_output, run_interactive
from .replies import PROGRESS_INTERVAL, Throttle, error_reply, progress_reply, send_reply, training_preview
from .store import ModelStore, require_ready

log = logging.getLogger(__name__)

_CORE_ARGUMENTS = {"n_samples": "n"}
SIGNAL_CHECK_SECONDS = 0.5
"""Longest untimed stretch of the idle worker's wait, so that SIGTERM/SIGINT handlers run."""
"""Core argument names (:class:`~singan_core.errors.InvalidArgument` ``field``) that differ from the protocol's params."""


class Worker:
    """Runs jobs from ``queue`` until it is closed; replies go to ``events_endpoint`` (inproc PULL)."""

    def __init__(
        self,
        queue: JobQueue,
        store: ModelStore,
        device: torch.device,
        context: zmq.Context,
        events_endpoint: str,
        cache_bytes: int,
        preview_interval: float = 3.0,
        accept: Callable[[Job], bool] | None = None,
        on_close: Callable[[], None] | None = None,
        budget: MemoryBudget | None = None,
    ):
        """``accept``: the jobs this worker takes (None: all; with ``--ray`` all but the prepared
        ``train`` jobs, which the Ray trainer takes). ``on_close``: called when the queue is closed,
        before the worker's final message (the Ray trainer's last replies go first). ``budget``:
        every output is costed against it before it runs (:mod:`daemon.budget`)."""
        self.queue, self.store, self.device, self.context = queue, store, device, context
        self.events_endpoint, self.preview_interval = events_endpoint, preview_interval
        self.accept, self.on_close, self.budget = accept, on_close, budget
        self.cache = PyramidCache(self._load, cache_bytes)
        self.cost_rate = CostRate()  # calibrated by each finished training; hello's preset seconds
        self._out: zmq.Socket | None = None

    # -- loop -------------------------------------------------------------------------------

    def run(self) -> None:
        """Run jobs until the queue is closed, then send an empty final message (the loop's cue)."""
        self._out = self.context.socket(zmq.PUSH)
        self._out.connect(self.events_endpoint)
        try:
            while not self.queue.closed:
                # a timed wait: the worker runs in the main thread, and a signal (SIGTERM) delivered to
                # another thread would not wake an untimed lock wait to run its Python handler
                job = self.queue.take(timeout=SIGNAL_CHECK_SECONDS, accept=self.accept)
                if job is not None:
                    self._run(job)
        finally:
            if self.on_close is not None:
                self.on_close()
            self._out.send(b"")
            self._out.close(linger=1000)

    def _run(self, job: Job) -> None:
        if job.prepare is not None:
            failure = self._prepare(job)
            if failure is None:
                self.queue.requeue(job)  # now a training, queued behind the others
                return
            message, images = failure, []
        else:
            message, images = self._execute(job)
        self.queue.finish(job)  # before the final reply: a client that then asks for jobs must not see it
        if isinstance(message, Error) and job.client is None:
            log.warning("job %s (%s %s): %s", job.id, job.op, job.model, message.error.message)
        self._emit(job, message, images)

    def _execute(self, job: Job) -> tuple[Result | Error, list[Image]]:
        """Run a job; its final reply (a result, or an error for any failure) and its images."""
        start = time.perf_counter()
        try:
            job.check_cancelled()
            if job.op == "train":
                data, images = ModelResult(model=self._train(job)), []
            elif job.op == "super_resolve":
                images = self._super_resolve(job)
                data = ImagesResult(model=job.model, seconds=time.perf_counter() - start)
            else:
                model = None
                if job.model is not None:  # instant has none
                    self._progress(job, phase="loading", fraction=0.0)
                    model = self._ready_model(job.model)
                self._progress(job, phase="sampling", fraction=0.0)
                with interruptible(job.check_cancelled):  # a cancel lands inside a level or a generator pass too
                    out = run_interactive(
                        job.op,
                        model,
                        job.params,
                        job.images,
                        self._sampling_step(job),
                        self._level_step(job),
                        self.budget,
                    )
                self.cache.trim()  # a lift read the model's full-resolution source
                job.check_cancelled()  # cancelled while it ran: the client no longer wants the result
                images = out.images
                data = ImagesResult(
                    model=job.model,
                    seconds=time.perf_counter() - start,
                    scale=out.scale,
                    detail=out.detail,
                    notice=out.notice,
                )
            log.info("job %s (%s %s) done in %.2f s", job.id, job.op, job.model, time.perf_counter() - start)
            return Result(id=job.request_id or "", job=job.id, data=data), images
        except JobCancelled as exc:
            return error_reply(job, "cancelled", f"job {job.id} ({job.op}) was cancelled: {exc.reason.value}"), []
        except ProtocolError as exc:
            return error_reply(job, exc.code, exc.message, exc.field), []
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            self.cache.discard(job.model or "")
            return error_reply(
                job, "out_of_memory", f"job {job.id} ({job.op}): the GPU ran out of memory; try a smaller size or n"
            ), []
        except InvalidArgument as exc:  # the core's range checks name their argument: "scale: must be in 1..6, got 9"
            field = _CORE_ARGUMENTS.get(exc.field, exc.field)
            known = field in getattr(type(job.params), "model_fields", {})
            return error_reply(
                job,
                "invalid_request",
                f"params.{field}: {exc.message}" if known else str(exc),
                f"params.{field}" if known else None,
            ), []
        except ValueError as exc:  # other bad input the core found (a mask of the wrong size): no field to blame
            return error_reply(job, "invalid_request", str(exc)), []
        except Exception as exc:
            log.exception("job %s (%s) failed", job.id, job.op)
            return error_reply(
                job, "internal", f"job {job.id} ({job.op}) failed: {type(exc).__name__}: {exc} (see the daemon log)"
            ), []

    def _prepare(self, job: Job) -> Error | None:
        """Create the job's reserved model (:func:`~daemon.prepare.prepare_model`, phase
        ``preparing``); None when done, else the job's final error (the reservation is released)."""
        try:
            job.check_cancelled()
            self._progress(job, phase="preparing", fraction=0.0)
            start = time.perf_counter()
            prepare_model(self.store, job.model, job.prepare)
            job.prepare, job.images = None, {}  # the model directory has the image now: a queued training holds nothing
            log.info("job %s (%s %s) prepared in %.2f s", job.id, job.op, job.model, time.perf_counter() - start)
            return None
        except JobCancelled as exc:
            failure = error_reply(job, "cancelled", f"job {job.id} ({job.op}) was cancelled: {exc.reason.value}")
        except ProtocolError as exc:
            failure = error_reply(job, exc.code, exc.message, exc.field)
        except Exception as exc:
            log.exception("job %s (%s) failed while preparing", job.id, job.op)
            failure = error_reply(
                job, "internal", f"job {job.id} ({job.op}) failed: {type(exc).__name__}: {exc} (see the daemon log)"
            )
        self.store.release(job.model)
        return failure

    def _sampling_step(self, job: Job):
        """``on_step(done, total)`` of an interactive job: stop at a cancel (between scales), report progress."""

        start = time.monotonic()

        def on_step(done: int, total: int) -> None:
            job.check_cancelled()
            self._progress(job, phase="sampling", fraction=done / total, eta_seconds=_eta(start, done, total))

        return on_step

    def _level_step(self, job: Job):
        """``on_step(done, total)`` of a patch-synthesis job (lift, instant): stop at a cancel
        (between levels), report level k of K."""

        start = time.monotonic()

        def on_level(done: int, total: int) -> None:
            job.check_cancelled()
            self._progress(
                job,
                phase="sampling",
                fraction=done / total,
                eta_seconds=_eta(start, done, total),
                level=done,
                levels=total,
            )

        return on_level

    def _serve_interactive(self) -> None:
        """Run every queued interactive job now (called between training iterations)."""
        while (job := self.queue.take(interactive_only=True)) is not None:
            self._run(job)

    # -- replies ----------------------------------------------------------------------------

    def _emit(self, job: Job, message: Any, images: list[Image] = ()) -> None:
        assert self._out is not None
        send_reply(self._out, job, message, images)

    def _progress(self, job: Job, **fields: Any) -> None:
        job.progress = fields
        self._emit(job, progress_reply(job))

    # -- models -----------------------------------------------------------------------------

    def _load(self, model_id: str) -> LoadedModel:
        path = self.store.path(model_id)
        pyramid, meta = load_pyramid(path, self.device)
        return LoadedModel(
            pyramid, meta.full_source is not None, lambda p: lift_source(p, load_full_source(path, meta))
        )

    def _ready_model(self, model_id: str) -> LoadedModel:
        require_ready(self.store, model_id)  # it may have been deleted while the job was queued
        return self.cache.get(model_id)

    def _train(self, job: Job) -> ModelInfo:
        """Train (or resume) the job's model; returns its ModelInfo."""
        training = resume_training(self.store.path(job.model), self.device)
        estimate = CalibratedEstimate(training.pyramid)
        progress_due, preview_due = Throttle(PROGRESS_INTERVAL), Throttle(self.preview_interval, wait_first=True)

        def on_progress(p: TrainProgress) -> None:
            job.check_cancelled()
            fraction = estimate.fraction(p)
            if progress_due(force=p.iteration == p.iterations):
                self._progress(
                    job,
                    phase="training",
                    fraction=fraction,
                    eta_seconds=estimate.eta_seconds(fraction),
                    scale=p.scale,
                    num_scales=p.num_scales,
                    iteration=p.iteration,
                    iterations=p.iterations,
                )
            self._serve_interactive()

        def on_scale_done(pyramid, k: int) -> None:
            self.store.refresh(job.model)  # scales_done, as just saved
            if preview_due(force=k == pyramid.num_scales - 1):
                self._emit(job, progress_reply(job), [training_preview(pyramid)])

        self._progress(job, phase="training", fraction=estimate.start_fraction)
        try:
            run_training(training, on_progress, on_scale_done, report_every=1)
        except JobCancelled as exc:
            if exc.reason is not CancelReason.SHUTDOWN:  # a shutdown leaves it to be resumed at the next start
                self.store.stop_training(job.model)
            raise
        except Exception as exc:
            self.store.stop_training(job.model, error=f"{type(exc).__name__}: {exc}")
            raise
        self.cost_rate.calibrate(self.store.info(job.model).preset, estimate, time.perf_counter())
        self.cache.discard(job.model)
        return self.store.info(job.model)

    def _super_resolve(self, job: Job) -> list[Image]:
        if not self.store.meta(job.model).is_complete:
            self._train(job)
        pyramid = self.cache.get(job.model).pyramid
        h, w = pyramid.sizes[-1]
        factor = job.params.factor
        check_output(1, round(h * factor), round(w * factor), "params.factor", budget=self.budget)
        self._progress(job, phase="sampling", fraction=1.0)
        with torch.no_grad():
            image = super_resolve(pyramid, factor)
        return [from_tensor(image, "image", job.params.output_order)]


def _eta(start: float, done: int, total: int) -> float | None:
    """Seconds left of an interactive job after ``done`` of ``total`` steps, extrapolated from the
    time since ``start`` (monotonic); None before the first step, 0.0 at the end."""
    if done <= 0 or total <= 0:
        return None
    return (time.monotonic() - start) * (total - done) / done
