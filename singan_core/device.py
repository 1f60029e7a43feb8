"""The one place where the compute device and the CPU thread count are chosen."""

from __future__ import annotations

import os
import re

import torch

__all__ = ["configure_threads", "select_device", "shared_machine_threads", "usable_cores"]

_CUDA_NAME = re.compile(r"cuda(:\d+)?")


def select_device(name: str | None = None) -> torch.device:
    """The device to train and sample on.

    Args:
        name: ``None`` or ``"auto"``: CUDA if available, else the CPU. ``"cpu"``, ``"cuda"`` or
            ``"cuda:N"``: that device, forced.

    Raises:
        ValueError: an unknown name, CUDA requested but not available, or ``cuda:N`` with no GPU N.
    """
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not _CUDA_NAME.fullmatch(name):
        raise ValueError(f"device: unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ValueError(f"device: {name} requested but CUDA is not available (no GPU or a CPU-only torch build)")
    device = torch.device(name)
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ValueError(f"device: {name} requested but only {count} CUDA device(s) are visible")
    return device


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity mask (``os.sched_getaffinity``) where the
    platform has one, else ``os.cpu_count()``."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def shared_machine_threads(requested: int | None = None) -> int:
    """Torch threads for compute that shares the machine with a busy application (the daemon's
    worker beside an artist's Krita or Blender): ``requested`` if given (``--threads``), else an
    explicit ``OMP_NUM_THREADS``, else usable cores - 1, at least 1.

    One core is left free because OpenMP's threads wait for each other at every parallel region:
    when another process keeps one core busy, a pool as large as the machine stalls on its
    descheduled thread (a tiny training took over 10x longer; bench/contention.py measures it).
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"threads: must be >= 1, got {requested}")
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, usable_cores() - 1)


def configure_threads() -> int:
    """Set torch's intra-op thread count to the number of usable CPU cores and return it.

    Usable cores are those of this process's CPU affinity mask (``os.sched_getaffinity``) where the
    platform has one, else ``os.cpu_count()``. An explicit ``OMP_NUM_THREADS`` environment
    variable (a positive integer) takes precedence, so users and test runs can cap the threads.
    """
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        threads = int(env)
    else:
        threads = usable_cores()
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()
