"""Shared fixtures: the test images in shared/images and one tiny model trained once per session."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
import torch

from singan_core import SinGANPyramid, create_model_dir, file_sha256, new_pyramid, preset, save_scale, train
from singan_core.imageio import load_image
from singan_core.workflow import run_training, sr_training

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "images"
TRAIN_IMAGE = "chelsea.png"


TRAINING_FIXTURES = frozenset(
    {
        "tiny_trained",
        "chelsea_model",
        "tiny_model_of",
        "sr_model",
        "tiny_model",
        "served_model",
        "served",
        "brick_daemon",
        "ray_cluster",
        "brick_model_dir",
    }
)
"""Fixtures that train a model (directly, or through a daemon): a test that uses one is ``slow``."""


def pytest_collection_modifyitems(config, items):
    """Mark ``slow`` every test whose fixtures (transitively) train, so that ``-m "not slow"`` is the
    fast tier with no training; :func:`_no_training_unless_slow` keeps it so."""
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def _no_training_unless_slow(item: pytest.Item):
    """While a test not marked ``slow`` sets up (its fixtures of any scope included) and runs, training a
    scale in this process fails and says to mark it. Trainings in subprocesses (the CLI, a daemon)
    are not seen: tests that start them are marked by hand."""
    if item.get_closest_marker("slow") is not None:
        return contextlib.nullcontext()

    def refuse(*args, **kwargs):
        raise AssertionError(f"{item.nodeid} trains a model: mark it @pytest.mark.slow")

    return mock.patch("singan_core.training.train_scale", refuse)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    with _no_training_unless_slow(item):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with _no_training_unless_slow(item):
        yield


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """The tiny preset's tensors are too small to gain from threads, and a busy 2-core machine
    (e.g. a benchmark next to the tests) makes multi-threaded torch crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_images() -> Path:
    """shared/images beside the repository (test photos, see its LICENSES.md)."""
    if not IMAGES.is_dir():
        missing_input(f"test images not found: {IMAGES}")
    return IMAGES


def missing_input(message: str) -> None:
    """Skip a test whose input files are absent; under CI (``CI=true``) fail it instead, since CI has them."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: CI runs with ../shared beside the clone)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def textures():
    """bench/textures.py (procedural chainmail, plaster, wood; bench/ is scripts, not a package)."""
    path = Path(__file__).resolve().parents[1] / "bench" / "textures.py"
    spec = importlib.util.spec_from_file_location("bench_textures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class TinyModel:
    path: Path  # the model directory
    pyramid: SinGANPyramid  # the in-memory pyramid that was saved there
    image: Path  # the training image


@pytest.fixture(scope="session")
def tiny_trained(tmp_path_factory, shared_images) -> TinyModel:
    """chelsea.png trained with the tiny preset (CPU) into a model directory, through the storage API."""
    image = shared_images / TRAIN_IMAGE
    path = tmp_path_factory.mktemp("models") / "chelsea"
    pyramid = new_pyramid(load_image(image), preset("tiny"), torch.device("cpu"))
    create_model_dir(path, pyramid, file_sha256(image), image.name, "tiny")
    train(pyramid, on_scale_done=lambda p, k: save_scale(path, p, k))
    return TinyModel(path, pyramid, image)


@pytest.fixture(scope="session")
def chelsea_model(tiny_trained) -> SinGANPyramid:
    """chelsea.png trained with the tiny preset (the session's shared model; do not modify it)."""
    return tiny_trained.pyramid


@pytest.fixture(scope="session")
def tiny_model_of():
    """``tiny_model_of(image_path)``: that image trained with the tiny preset (CPU), once per session."""
    cache: dict[Path, SinGANPyramid] = {}

    def get(image: Path) -> SinGANPyramid:
        if image not in cache:
            cache[image] = train(new_pyramid(load_image(image), preset("tiny"), torch.device("cpu")))
        return cache[image]

    return get


def store_model(path: Path, pyramid: SinGANPyramid, image: Path) -> Path:
    """A model directory at ``path`` holding ``pyramid`` (trained on ``image``, tiny preset) with
    its full-resolution source, as a training through the daemon or the CLI leaves it."""
    untrained = new_pyramid(load_image(image), pyramid.config, torch.device("cpu"))
    create_model_dir(path, untrained, file_sha256(image), image.name, "tiny", full_source=load_image(image))
    for k in range(pyramid.num_scales):
        save_scale(path, pyramid, k)
    return path


@pytest.fixture(scope="session")
def brick_model_dir(tmp_path_factory, shared_images, tiny_model_of) -> Path:
    """brick.png's tiny model (``tiny_model_of``) as a model directory with its 512 x 512
    full-resolution source (do not modify it: copy it first)."""
    image = shared_images / "brick.png"  # grayscale: loaded as RGB
    return store_model(tmp_path_factory.mktemp("models") / "brick", tiny_model_of(image), image)


@pytest.fixture(scope="session")
def sr_model(tmp_path_factory, shared_images) -> SinGANPyramid:
    """The super-resolution model of reference/33039_LR.png for factor 4 (tiny preset), trained into
    a model directory through the workflow the CLI uses."""
    image = shared_images / "reference" / "33039_LR.png"
    job = sr_training(image, 4, preset("tiny"), "tiny", tmp_path_factory.mktemp("models") / "sr", torch.device("cpu"))
    run_training(job)
    return job.pyramid


@pytest.fixture(scope="session")
def tiny_model(tiny_trained) -> Path:
    """The directory of the session's tiny model (do not modify it: copy it first)."""
    return tiny_trained.path


# --------------------------------------------------------------------------- the daemon, as a real subprocess

REPO = Path(__file__).resolve().parents[1]


class DaemonProcess:
    """``singan serve`` running in a subprocess on a free loopback port (see :func:`start_daemon`)."""

    def __init__(self, store: Path, *args: str, log: Path | None = None):
        env = dict(
            os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
        )
        self.store = store
        self.log = log or store.parent / f"{store.name}-daemon.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "singan_cli.cli",
                "serve",
                "--endpoint",
                "tcp://127.0.0.1:*",
                "--store",
                str(store),
                "--log-file",
                str(self.log),
                "--log-level",
                "info",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        line = self.proc.stdout.readline()  # "listening on tcp://127.0.0.1:PORT"
        if not line.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(
                f"daemon did not start: {line!r}; log: {self.log.read_text() if self.log.exists() else ''}"
            )
        self.endpoint = line.split()[-1]

    def client(self, **kwargs):
        from protocol.client import Client

        return Client(self.endpoint, **{"timeout": 5.0, **kwargs})

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def start_daemon(tmp_path):
    """``start_daemon(store=None, *args)`` -> a running :class:`DaemonProcess`; all are stopped at the end."""
    started: list[DaemonProcess] = []

    def start(store: Path | None = None, *args: str) -> DaemonProcess:
        daemon = DaemonProcess(store or tmp_path / "store", *args)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def wire_image(path: Path, name: str = "image", order: str = "RGB"):
    """An image file as a :class:`protocol.wire.Image` (uint8, RGB or BGRA)."""
    import numpy as np
    from PIL import Image as PILImage

    from protocol.wire import Image

    with PILImage.open(path) as im:
        array = np.asarray(im.convert("RGBA" if order in ("RGBA", "BGRA") else "RGB"))
    if order == "BGRA":
        array = array[..., [2, 1, 0, 3]]
    return Image(name, array.shape[1], array.shape[0], order, np.ascontiguousarray(array).tobytes())


@dataclass(frozen=True)
class ServedModel:
    daemon: DaemonProcess
    model: str  # the id of a ready tiny model of TRAIN_IMAGE in the daemon's store
    events: tuple[dict, ...] = ()  # the progress events of its training


@pytest.fixture(scope="session")
def served_model(tmp_path_factory, shared_images) -> ServedModel:
    """One daemon for the plugin tests (Krita, Blender), with ``chelsea.png`` trained through it
    (tiny preset, about 20 s); stopped at the end of the session. Tests may add models to it but
    must not delete or retrain ``model``."""
    daemon = DaemonProcess(tmp_path_factory.mktemp("served") / "store")
    events: list[dict] = []
    with daemon.client() as client:
        model = submit_training(client, shared_images / TRAIN_IMAGE, "chelsea", events).wait(timeout=300)["model"]["id"]
    yield ServedModel(daemon, model, tuple(events))
    daemon.stop()


def submit_training(client, image: Path, name: str, events: list | None = None, **params):
    """Submit a tiny-preset training of ``image`` through ``client``; progress events are appended to ``events``."""
    on_progress = None if events is None else (lambda job, event: events.append(event))
    return client.submit(
        "train", {"name": name, "preset": "tiny", **params}, [wire_image(image)], on_progress=on_progress
    )


def wait_for(condition, timeout: float, what: str, poll=None) -> None:
    """Poll ``condition()`` every 0.1 s (through ``poll(0.1)`` when given) until true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        if poll is not None:
            poll(0.1)
        else:
            time.sleep(0.1)
