"""The body of a Ray training task, and the state it travels with (see :mod:`daemon.cluster`).

This module runs on the Ray workers; it imports no Ray at import time and touches no file. The
daemon ships a model's current state (:class:`PyramidState`: its config, geometry, the reals x_k
of every scale and the finished scales' G_k / D_k state dicts, noise_amp_k and z_k) to
:func:`train_remaining`, which rebuilds the pyramid and trains the remaining scales with the same
core call as a local training (:func:`singan_core.training.train`) — there is no second training
loop. It yields, in order: one :class:`Placement` (where it runs, with how many threads), then
:class:`~singan_core.training.TrainProgress` reports (at most every :data:`daemon.replies.PROGRESS_INTERVAL`
seconds and at the end of each scale) and one :class:`ScaleDone` per finished scale k, carrying
the states of every scale in :func:`~singan_core.training.scales_changed_by` ``(config, k)``.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from typing import Iterator, Union

import torch

from singan_core.config import SinGANConfig
from singan_core.device import select_device
from singan_core.model import SinGANPyramid
from singan_core.nets import Discriminator, Generator, nfc_at
from singan_core.pyramid import PyramidGeometry
from singan_core.training import TrainProgress, scales_changed_by, train

from .replies import PROGRESS_INTERVAL, Throttle


@dataclass(frozen=True)
class ScaleState:
    """Everything scale k adds to a pyramid, on the CPU.

    Attributes:
        k: the scale index (0 = coarsest).
        generator, discriminator: ``state_dict`` of G_k and D_k.
        noise_amp: noise_amp_k (1.0 at k = 0).
        z_opt: the fixed reconstruction noise z_k, (1, 3, h_k, w_k).
    """

    k: int
    generator: dict[str, torch.Tensor]
    discriminator: dict[str, torch.Tensor]
    noise_amp: float
    z_opt: torch.Tensor


@dataclass(frozen=True)
class PyramidState:
    """A (partly) trained pyramid as plain data: what a Ray task gets as its argument.

    Attributes:
        config: :meth:`SinGANConfig.to_dict` of the model's config.
        geometry: per-scale sizes, r and the input scale.
        reals: x_k of every scale, (1, 3, h_k, w_k) in [-1, 1], on the CPU.
        scales: the finished scales 0 .. scales_done - 1, in order.
    """

    config: dict
    geometry: PyramidGeometry
    reals: list[torch.Tensor]
    scales: list[ScaleState]


@dataclass(frozen=True)
class Placement:
    """Where a task runs: the Ray node (id and IP), the worker process id, and the torch threads
    of its training thread (``torch.get_num_threads()`` there, read after setting them)."""

    node_id: str
    node_ip: str
    pid: int
    threads: int


@dataclass(frozen=True)
class ScaleDone:
    """Scale k is finished; ``states`` are those of every scale ``scales_changed_by(config, k)``."""

    k: int
    states: list[ScaleState]


TaskItem = Union[Placement, TrainProgress, ScaleDone]


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: t.detach().to("cpu", copy=True) for name, t in state.items()}


def scale_state(pyramid: SinGANPyramid, k: int) -> ScaleState:
    """Finished scale k of ``pyramid`` as a :class:`ScaleState` (copied to the CPU)."""
    return ScaleState(
        k,
        _cpu(pyramid.generators[k].state_dict()),
        _cpu(pyramid.discriminators[k].state_dict()),
        float(pyramid.noise_amps[k]),
        pyramid.z_opts[k].detach().cpu().clone(),
    )


def pyramid_state(pyramid: SinGANPyramid) -> PyramidState:
    """The whole pyramid (finished scales included) as a :class:`PyramidState`."""
    return PyramidState(
        pyramid.config.to_dict(),
        pyramid.geometry,
        [x.detach().cpu() for x in pyramid.reals],
        [scale_state(pyramid, k) for k in range(pyramid.scales_done)],
    )


def install_scales(pyramid: SinGANPyramid, states: list[ScaleState]) -> None:
    """Put finished scales into ``pyramid``: a scale it already has is overwritten in place, the next
    one is appended (:meth:`SinGANPyramid.add_scale`). Tensors are moved to the pyramid's device.

    Raises:
        ValueError: a state skips a scale (k > scales_done) or does not fit the nets of scale k.
    """
    net, device = pyramid.config.net, pyramid.device
    for s in states:
        if s.k > pyramid.scales_done:
            raise ValueError(f"scale {s.k}: cannot be installed, only {pyramid.scales_done} scales are done")
        if s.k < pyramid.scales_done:
            pyramid.generators[s.k].load_state_dict(s.generator)
            pyramid.discriminators[s.k].load_state_dict(s.discriminator)
            pyramid.noise_amps[s.k], pyramid.z_opts[s.k] = s.noise_amp, s.z_opt.to(device)
            continue
        generator, critic = Generator(nfc_at(s.k, net), net), Discriminator(nfc_at(s.k, net), net)
        generator.load_state_dict(s.generator)
        critic.load_state_dict(s.discriminator)
        pyramid.add_scale(generator.to(device), critic.to(device), s.noise_amp, s.z_opt.to(device))


def rebuild_pyramid(state: PyramidState, device: torch.device) -> SinGANPyramid:
    """The pyramid of ``state`` on ``device`` (inverse of :func:`pyramid_state`)."""
    pyramid = SinGANPyramid(SinGANConfig.from_dict(state.config), state.geometry, [x.to(device) for x in state.reals])
    install_scales(pyramid, state.scales)
    return pyramid


class _Stopped(Exception):
    """Raised in the training thread when the task's generator was closed (cancelled)."""


def train_remaining(state: PyramidState, threads: int) -> Iterator[TaskItem]:
    """Train the scales of ``state`` not yet finished, yielding :data:`TaskItem` s (module docstring).

    The Ray task body (a streaming generator). ``train`` reports through callbacks, which cannot
    yield, so it runs in a thread of this task and hands its items over a queue; when the
    generator is closed (``ray.cancel``) the thread stops at its next iteration. The device is
    :func:`singan_core.device.select_device` ``("auto")`` (the GPU Ray assigned, if any).

    Args:
        state: the model's current state (:func:`pyramid_state`).
        threads: torch threads of the training, set explicitly (the task's ``num_cpus``; Ray also
            sets ``OMP_NUM_THREADS`` from it, but a thread's own pool must be sized by hand).

    Raises:
        Whatever the training raises (a bad config, out of memory): re-raised in the task.
    """
    import ray  # only ever imported on a Ray worker

    node = (ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address(), os.getpid())
    pyramid = rebuild_pyramid(state, select_device("auto"))
    items: queue.Queue = queue.Queue()
    stop = threading.Event()
    progress_due = Throttle(PROGRESS_INTERVAL)

    def on_progress(p: TrainProgress) -> None:
        if stop.is_set():
            raise _Stopped
        if progress_due(force=p.iteration == p.iterations):
            items.put(p)

    def on_scale_done(trained: SinGANPyramid, k: int) -> None:
        items.put(ScaleDone(k, [scale_state(trained, j) for j in scales_changed_by(trained.config, k)]))

    def body() -> None:
        torch.set_num_threads(threads)  # this thread's pool: a new thread starts at the default
        items.put(Placement(*node, torch.get_num_threads()))
        try:
            train(pyramid, on_progress=on_progress, on_scale_done=on_scale_done, report_every=1)
            items.put(None)
        except BaseException as exc:  # handed to the generator, which re-raises it in the task
            items.put(exc)

    thread = threading.Thread(target=body, name="singan-ray-training", daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
