"""Shared fixtures: the test images in shared/images and one tiny model trained once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from singan_core import SinGANPyramid, create_model_dir, file_sha256, new_pyramid, preset, save_scale, train
from singan_core.imageio import load_image
from singan_core.workflow import run_training, sr_training

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "images"
TRAIN_IMAGE = "chelsea.png"


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
        pytest.skip(f"test images not found: {IMAGES}")
    return IMAGES


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
