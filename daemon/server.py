"""The daemon's socket loop (zguide: an asynchronous ROUTER server with one worker).

One thread does all socket I/O: it reads requests from the ROUTER socket, answers the quick ops
itself (hello, list_models, jobs, cancel, ...), queues job ops for the :class:`~daemon.worker.Worker`,
and forwards the worker's replies (arriving on an inproc PULL socket) to the requesting client.
It routes: a new model is prepared by the worker (:mod:`daemon.prepare`; only a super-resolution
image's pixels are hashed here, to find its model), watched files are read, hashed and queued by the
watch's own thread (:mod:`daemon.watch`), and deleted models leave the disk in a thread of their own
(:mod:`daemon.store`).
Nothing a client sends can stop the loop: every request gets a reply or an error reply, except
frames over ``ZMQ_MAXMSGSIZE``, which ZeroMQ drops together with the connection.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, get_args

import torch
import zmq

from protocol import DEFAULT_ENDPOINT, PROTOCOL_VERSION
from protocol.schema import (
    JOB_OPS,
    MAX_FRAMES,
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE,
    MAX_OUTPUT_PIXELS,
    MAX_SAMPLES,
    MAX_SR_INPUT_SIDE,
    OPS,
    Accepted,
    Preset,
    CancelResult,
    ClusterInfo,
    DeletedResult,
    Error,
    ErrorInfo,
    HelloResult,
    JobInfo,
    JobListResult,
    ModelListResult,
    ModelResult,
    Result,
    ShutdownResult,
    WatchInfo,
    parse_request,
)
from protocol.errors import MAX_MESSAGE_CHARS, ProtocolError, one_line
from protocol.wire import Image, decode_header, decode_images, encode
from singan_core import __version__
from singan_core.config import PRESETS
from singan_core.device import select_device, shared_machine_threads

from .cluster import ClusterConfig, RayTrainer, is_ray_training
from .paths import default_store
from .endpoint import check_bound, check_endpoint, display_endpoint
from .images import compact
from .auth import secure_server
from .budget import MAX_MESSAGE_FRAMES, MAX_QUEUED_JOBS, RECEIVE_HWM, MemoryBudget, default_budget
from .overflow import SLACK, OverflowGuard, drop_connections
from .jobs import Job, JobQueue
from .prepare import resumable, sr_model, train_model
from .store import ModelStore, require_ready
from .watch import FolderWatch, WatchTrainer
from .worker import Worker

log = logging.getLogger(__name__)

TRAIN_PRESETS = get_args(Preset)
"""The presets ``train`` and ``super_resolve`` accept (hello lists exactly these)."""


@dataclass(frozen=True)
class DaemonConfig:
    """Settings of one daemon process (``singan serve`` options).

    Attributes:
        endpoint: ZeroMQ endpoint to bind (loopback unless ``allow_remote``).
        store: root of the model store (models in ``store/models/<id>``); None: the user data
            directory (:func:`default_store`, resolved when the daemon starts, not at import).
        watch: folder whose images are trained automatically, or None.
        watch_preset: preset of those trainings.
        debounce: seconds a watched file must stay unchanged before it is trained.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        token: shared secret every request must carry (required with ``allow_remote``).
        allow_remote: permit a non-loopback endpoint.
        cache_bytes: memory budget of loaded pyramids.
        preview_interval: least seconds between training previews.
        threads: torch threads of the worker; None: the shared-machine policy
            (:func:`singan_core.device.shared_machine_threads`: usable cores - 1).
        cluster: train on this Ray cluster (``--ray``, :mod:`daemon.cluster`), or None: locally.
        credentials: the folder of the user's token and CURVE keys (:mod:`protocol.auth`); None:
            ``$SINGAN_CREDENTIALS_DIR`` or the user config directory's.
        memory_budget: bytes the daemon's requests may hold (:mod:`daemon.budget`); None: a
            quarter of the machine's memory.
    """

    endpoint: str = DEFAULT_ENDPOINT
    store: Path | None = None
    watch: Path | None = None
    watch_preset: str = "draft"
    debounce: float = 2.0
    device: str = "auto"
    token: str | None = None
    allow_remote: bool = False
    cache_bytes: int = 2 * 1024**3
    preview_interval: float = 3.0
    threads: int | None = None
    cluster: ClusterConfig | None = None
    memory_budget: int | None = None
    credentials: Path | None = None


def _placement_fields(placement: Any) -> dict[str, Any]:
    """JobInfo's ``node_ip``, ``node_id``, ``worker_pid`` of a Ray training (none for local jobs)."""
    if placement is None:
        return {}
    return {"node_ip": placement.node_ip, "node_id": placement.node_id, "worker_pid": placement.pid}


def _cluster_info(config: Any, state: Any) -> ClusterInfo:
    """``hello``'s ``cluster`` from the trainer's :class:`~daemon.cluster_driver.ClusterState`."""
    return ClusterInfo(
        address=config.address,
        state="connected" if state.connected else "unreachable",
        since=state.since,
        message=state.message or None,
        cpus=state.cpus,
        gpus=state.gpus,
    )


def _device_description(device: torch.device) -> tuple[str, int | None]:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{device} ({props.name})", props.total_memory
    return str(device), None


class Daemon:
    """A daemon process: ``Daemon(config).run()`` serves until ``shutdown`` or SIGINT/SIGTERM."""

    def __init__(self, config: DaemonConfig):
        check_endpoint(config.endpoint, config.allow_remote, config.token)
        self.config = config
        self.device = select_device(config.device)
        self.store = ModelStore(config.store or default_store())
        self.threads = shared_machine_threads(config.threads)
        self.queue = JobQueue()
        self.budget = MemoryBudget(config.memory_budget or default_budget())
        self.instance = secrets.token_hex(8)
        self._events = f"inproc://singan-events-{self.instance}"
        self._requests: dict[tuple[bytes, str], Job] = {}  # open jobs by (client, request id)
        self._stop = threading.Event()
        self._cluster: RayTrainer | None = None
        self._context = zmq.Context()
        self.endpoint: str | None = None  # the bound endpoint (port filled in), once running
        self._watch: WatchTrainer | None = None

    def stop(self) -> None:
        """Ask the loop to shut down (thread- and signal-safe)."""
        self._stop.set()

    # -- main loop --------------------------------------------------------------------------

    def run(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve until :meth:`stop`. The calling thread (the main thread, which also receives
        SIGINT/SIGTERM) runs the worker; a second thread runs the socket loop.
        ``on_ready(endpoint)`` is called once the socket is bound.

        With ``config.cluster`` it first connects to the Ray cluster; trainings then run there
        (:class:`~daemon.cluster.RayTrainer`) and the worker runs everything else.

        Raises:
            zmq.ZMQError: the endpoint cannot be bound (e.g. the port is in use).
            ValueError: libzmq bound an address that is not loopback without ``allow_remote``
                (see :func:`daemon.endpoint.check_bound`); the socket is closed unserved. With
                ``config.cluster``: Ray is not installed or the cluster cannot be reached.
        """
        cluster = None
        if self.config.cluster is not None:
            cluster = RayTrainer(
                self.config.cluster, self.queue, self.store, self._context, self._events, self.config.preview_interval
            )
            cluster.start()
            self._cluster = cluster
        self._worker = Worker(
            self.queue,
            self.store,
            self.device,
            self._context,
            self._events,
            self.config.cache_bytes,
            self.config.preview_interval,
            accept=None if cluster is None else lambda job: not is_ray_training(job),
            on_close=None if cluster is None else cluster.join,
            budget=self.budget,
        )
        bound, failure = threading.Event(), []
        loop = threading.Thread(target=self._loop, args=(bound, failure), name="singan-sockets")
        loop.start()
        bound.wait()
        if failure:
            loop.join()
            if cluster is not None:
                cluster.join()
            raise failure[0]
        self._install_signals()
        torch.set_num_threads(self.threads)  # the worker's pool: it runs in this thread
        if on_ready is not None:
            on_ready(self.endpoint)
        try:
            self._worker.run()
        finally:
            self.stop()
            loop.join()
            self._context.term()  # waits until the last replies are sent (socket linger)

    def _loop(self, bound: threading.Event, failure: list) -> None:
        # This thread's tensor work is small; a second OpenMP pool beside the worker's would slow the worker.
        torch.set_num_threads(1)
        auth = None
        try:
            router = self._context.socket(zmq.ROUTER)
            auth = secure_server(
                self._context, router, self.config.allow_remote, self.config.token, self.config.credentials
            )
            router.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a client that reconnects keeps its identity
            router.setsockopt(zmq.MAXMSGSIZE, self.budget.frame_bytes)  # a larger frame is never read (daemon.budget)
            router.setsockopt(zmq.RCVHWM, RECEIVE_HWM)
            router.setsockopt(zmq.LINGER, 2000)
            router.setsockopt(zmq.SNDHWM, 100_000)  # a client that stops reading must not lose its results
            router.setsockopt(zmq.IPV6, 1)  # tcp://[::1]:port
            router.bind(self.config.endpoint)
            check_bound(router.getsockopt_string(zmq.LAST_ENDPOINT), self.config.allow_remote)
        except (zmq.ZMQError, ValueError, OSError) as exc:
            router.close(linger=0)
            if auth is not None:
                auth.stop()
            failure.append(exc)
            self.queue.close()
            bound.set()
            return
        self.endpoint, self._router = display_endpoint(router.getsockopt_string(zmq.LAST_ENDPOINT)), router
        events = self._context.socket(zmq.PULL)
        events.bind(self._events)
        bound.set()
        self._resume_unfinished()
        if self.config.watch is not None:
            self._watch = WatchTrainer(
                FolderWatch(self.config.watch, self.config.debounce),
                self.config.watch_preset,
                self.store,
                self.queue,
                self.budget,
                self._stop,
            )
            self._watch.start()
        log.info(
            "serving on %s (device %s, %d worker threads, store %s)",
            self.endpoint,
            self.device,
            self.threads,
            self.store.root,
        )
        guard = self._start_guard()
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(events, zmq.POLLIN)
        if guard is not None:
            poller.register(guard.signal, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if self._watch is not None:
                    self._watch.check()
                for socket, _ in poller.poll(200):
                    if socket is router:
                        self._on_request(router.recv_multipart(copy=False))
                    elif socket is events:
                        self._forward(events.recv_multipart(copy=False))
                    else:
                        self._on_overflow(socket.recv(), router)
        finally:
            if guard is not None:
                guard.stop()
            self._shutdown(events)
            auth.stop()

    def _start_guard(self) -> OverflowGuard | None:
        """The overflow guard (:mod:`daemon.overflow`) over a TCP or IPC endpoint: its limit is the
        resident memory now, plus the budget, the loaded models and :data:`~daemon.overflow.SLACK`."""
        if self.config.endpoint.startswith("inproc://"):
            return None
        return OverflowGuard.start(self._context, self.budget.total + SLACK, self._worker.cache.held_bytes)

    def _on_overflow(self, message: bytes, router: zmq.Socket) -> None:
        """Drop every connection: the guard saw resident memory over its limit."""
        resident = int.from_bytes(message, "little")
        log.warning(
            "memory at %d MiB, over the budget's limit: dropping every connection to free messages in flight "
            "(clients reconnect; queued jobs continue)",
            resident // 1024**2,
        )
        try:
            drop_connections(router, router.getsockopt_string(zmq.LAST_ENDPOINT))
        except zmq.ZMQError as exc:
            log.error("could not bind %s again after dropping its connections (%s); stopping", self.endpoint, exc)
            self.stop()

    def _shutdown(self, events: zmq.Socket) -> None:
        """Cancel the queue, let the running job stop at its next check, pass on its last replies."""
        log.info("shutting down")
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()  # before the queue closes: it may be queueing a training
        for job in self.queue.close():
            later = (
                "; its training resumes when the daemon starts again" if job.training and job.prepare is None else ""
            )
            self._send(
                job.client,
                Error(
                    id=job.request_id,
                    job=job.id,
                    error=ErrorInfo(
                        code="cancelled",
                        message=f"job {job.id} ({job.op}) was cancelled: the daemon is shutting down{later}",
                    ),
                ),
            )
        worker_done, deadline = False, time.monotonic() + 120
        while not worker_done and time.monotonic() < deadline:
            if events.poll(100):
                worker_done = not self._forward(events.recv_multipart(copy=False))
        events.close(linger=0)
        self._router.close()
        log.info("stopped")

    def _install_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: self.stop())

    # -- replies ----------------------------------------------------------------------------

    def _send(self, client: bytes | None, message: Any, images: list[Image] = ()) -> None:
        if client:
            self._router.send_multipart([client, *encode(message.model_dump(mode="json"), images)], copy=False)

    def _forward(self, frames: list) -> bool:
        """A worker reply: forget the job once its final reply passes, send it to its client.
        Returns False for the worker's empty last message."""
        if len(frames) == 1:
            return False
        client = bytes(frames[0].buffer)
        header = decode_header(bytes(frames[1].buffer))
        if header.get("type") in ("result", "error"):
            self._requests.pop((client, header.get("id")), None)
        if client:
            self._router.send_multipart([client, *frames[1:]], copy=False)
        return True

    # -- requests ---------------------------------------------------------------------------

    def _on_request(self, frames: list) -> None:
        client, request_id = bytes(frames[0].buffer), None
        try:
            if len(frames) < 2:
                raise ProtocolError("message: no frames", "header")
            header = decode_header(bytes(frames[1].buffer))
            if (
                isinstance(header.get("id"), str) and 0 < len(header["id"]) <= 64
            ):  # only ids the schema accepts are echoed
                request_id = header["id"]  # read before the images are checked, so their errors echo it too
            self._authorize(header)
            self.budget.check_frames(header, len(frames) - 1)
            images = decode_images(
                header, [f.buffer for f in frames[2:]]
            )  # specs against frame lengths: no pixel is read
            self.budget.check_inputs(sum(len(image.data) for image in images), self.queue.load()[1])
            request = parse_request(header, images)
            if request.op in JOB_OPS:
                self._submit(client, request, images)
            else:
                data = getattr(self, f"_op_{request.op}")(request.params)
                self._send(client, Result(id=request.id, data=data))
                if request.op == "shutdown":
                    self.stop()
        except ProtocolError as exc:
            self._send(
                client, Error(id=request_id, error=ErrorInfo(code=exc.code, message=exc.message, field=exc.field))
            )
        except Exception as exc:  # a bug: log it, answer, keep serving
            log.exception("request %s failed", one_line(str(request_id)))
            self._send(
                client,
                Error(
                    id=request_id,
                    error=ErrorInfo(
                        code="internal",
                        message=one_line(f"{type(exc).__name__}: {exc} (see the daemon log)", MAX_MESSAGE_CHARS),
                    ),
                ),
            )

    def _authorize(self, header: dict) -> None:
        """With a token configured, every request must carry it (checked before anything else)."""
        token = header.get("token")
        if self.config.token and not (
            isinstance(token, str) and hmac.compare_digest(token.encode(), self.config.token.encode())
        ):
            raise ProtocolError("token: missing or wrong auth token", "token", "unauthorized")

    def _submit(self, client: bytes, request: Any, images: list[Image]) -> None:
        known = self._requests.get((client, request.id))
        if known is not None:  # a resent request (the client retried): same job
            self._send(client, Accepted(id=request.id, job=known.id, model=known.model, position=0))
            return
        queued, _ = self.queue.load()
        if queued >= MAX_QUEUED_JOBS:
            raise ProtocolError(
                f"queue: {queued} jobs are waiting, the most the daemon queues; try again when some finish",
                "queue",
                "busy",
            )
        by_name, prep = {image.name: compact(image) for image in images}, None
        if request.op == "train":
            model, prep = train_model(self.store, by_name["image"], request.params)
        elif request.op == "super_resolve":
            model, prep = sr_model(self.store, by_name["image"], request.params, self.budget)
        elif request.op in ("instant", "inpaint"):
            model = None  # no model: patch synthesis from the image itself
        elif request.op == "resume":
            model = resumable(self.store, request.params.model, self._training_job(request.params.model))
        else:
            model = request.params.model
            require_ready(self.store, model)
        op = "train" if request.op == "resume" else request.op  # the worker trains on from the saved scales either way
        job = Job(op, request.params, model, by_name, client, request.id, prepare=prep)
        position = self.queue.put(job)
        self._requests[(client, request.id)] = job
        self._send(client, Accepted(id=request.id, job=job.id, model=model, position=position))

    # -- trainings --------------------------------------------------------------------------

    def _resume_unfinished(self) -> None:
        for model_id in self.store.unfinished():
            job = Job("train", None, model_id)
            self.queue.put(job)
            log.info("resuming the interrupted training of %s as job %s", model_id, job.id)

    # -- quick ops --------------------------------------------------------------------------

    def _op_hello(self, params: Any) -> HelloResult:
        device, memory = _device_description(self.device)
        return HelloResult(
            protocol_version=PROTOCOL_VERSION,
            server_version=__version__,
            instance=self.instance,
            device=device,
            device_memory_bytes=memory,
            ops=list(OPS),
            presets=list(TRAIN_PRESETS),
            preset_details=[
                {
                    "name": name,
                    "max_size": PRESETS[name].pyramid.max_size,
                    "iterations": PRESETS[name].train.iterations,
                    "seconds": self._worker.cost_rate.preset_seconds(name, PRESETS[name]),
                }
                for name in TRAIN_PRESETS
            ],
            auth_required=bool(self.config.token),
            cluster=None if self._cluster is None else _cluster_info(self.config.cluster, self._cluster.state),
            limits={
                "max_image_side": MAX_IMAGE_SIDE,
                "max_image_pixels": MAX_IMAGE_PIXELS,
                "max_output_pixels": MAX_OUTPUT_PIXELS,
                "max_samples": MAX_SAMPLES,
                "max_frames": MAX_FRAMES,
                "max_message_bytes": self.budget.frame_bytes,
                "max_sr_input_side": MAX_SR_INPUT_SIDE,
                "max_message_frames": MAX_MESSAGE_FRAMES,
                "max_queued_jobs": MAX_QUEUED_JOBS,
                "memory_budget_bytes": self.budget.total,
                "max_input_bytes": self.budget.inputs,
            },
        )

    def _training_job(self, model_id: str) -> Job | None:
        return self.queue.find_model(model_id)

    def _info(self, model_id: str):
        job = self._training_job(model_id)
        return self.store.info(model_id, job.id if job else None, bool(job and job.running))

    def _op_list_models(self, params: Any) -> ModelListResult:
        """Every model from the store's in-memory index (no file is read), with its training job."""
        return ModelListResult(models=[self._info(info.id) for info in self.store.listing()])

    def _op_get_model(self, params: Any) -> ModelResult:
        try:
            return ModelResult(model=self._info(params.model))
        except KeyError:
            raise ProtocolError(f"params.model: no model {params.model!r}", "params.model", "not_found") from None

    def _op_delete_model(self, params: Any) -> DeletedResult:
        job = self._training_job(params.model)
        if job is not None:
            raise ProtocolError(
                f"params.model: {params.model} is training (job {job.id}); cancel it first", "params.model", "busy"
            )
        try:
            self.store.delete(params.model)
        except KeyError:
            raise ProtocolError(f"params.model: no model {params.model!r}", "params.model", "not_found") from None
        self._worker.cache.discard(params.model)
        return DeletedResult(deleted=params.model)

    def _op_jobs(self, params: Any) -> JobListResult:
        jobs = [
            JobInfo(
                job=job.id,
                op=job.op,
                state="running" if position == 0 else "queued",
                model=job.model,
                position=position,
                phase=job.progress.get("phase", "queued"),
                fraction=job.progress.get("fraction", 0.0),
                eta_seconds=job.progress.get("eta_seconds"),
                **_placement_fields(job.placement),
            )
            for position, job in self.queue.snapshot()
        ]
        if self._watch is None:
            return JobListResult(jobs=jobs)
        watch = self._watch.watch
        info = WatchInfo(folder=str(watch.folder), files_seen=watch.files_seen, **vars(watch.counts))
        return JobListResult(jobs=jobs, watch=info)

    def _op_cancel(self, params: Any) -> CancelResult:
        job = self.queue.cancel(params.job)
        if job is None:
            return CancelResult(job=params.job, cancelled=False)
        if not job.running:  # it never reaches the worker: answer and clean up here
            if job.prepare is not None:
                self.store.release(job.model)
            elif job.training:
                self.store.stop_training(job.model)
            self._requests.pop((job.client, job.request_id), None)
            self._send(
                job.client,
                Error(
                    id=job.request_id,
                    job=job.id,
                    error=ErrorInfo(code="cancelled", message=f"job {job.id} ({job.op}) was cancelled on request"),
                ),
            )
        return CancelResult(job=job.id, cancelled=True)

    def _op_shutdown(self, params: Any) -> ShutdownResult:
        return ShutdownResult()
