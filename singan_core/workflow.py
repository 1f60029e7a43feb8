"""Whole jobs on model directories, shared by the CLI and the daemon (its worker resumes trainings with them): train, sample, evaluate.

These glue :mod:`singan_core.training`, :mod:`singan_core.storage`, :mod:`singan_core.sampling` and
:mod:`singan_core.metrics` together; they print nothing. Errors are raised as ``ValueError``
subclasses (:class:`~singan_core.imageio.ImageReadError`, :class:`~singan_core.storage.ModelLoadError`)
or ``OSError`` with one-line messages.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from .config import SinGANConfig
from .errors import ImageReadError
from .imageio import image_bytes, image_format, load_image, png_bytes
from .full_resolution import LiftSource, lift_source
from .metrics import patch_swd, pixel_diversity, sifid
from .model import SinGANPyramid
from .sampling import sample
from .super_resolution import sr_config, sr_steps
from .storage import (
    META_FILE,
    ModelMeta,
    atomic_write_bytes,
    create_model_dir,
    discard_model_dir,
    file_sha256,
    full_source_image,
    load_full_source,
    load_pyramid,
    save_scale,
)
from .training import ProgressCallback, ScaleDoneCallback, new_pyramid, train

__all__ = [
    "EvalResult",
    "TrainJob",
    "demo_image",
    "evaluate",
    "is_model_dir",
    "load_instant_source",
    "model_lift_source",
    "resume_training",
    "run_training",
    "sr_model_name",
    "sr_training",
    "start_training",
    "write_image",
    "write_pngs",
    "write_samples",
]


@contextlib.contextmanager
def demo_image() -> Iterator[Path]:
    """A filesystem path of the bundled demo image (``singan_core/data/demo.png``)."""
    with importlib.resources.as_file(importlib.resources.files("singan_core") / "data" / "demo.png") as path:
        yield Path(path)


@dataclass
class TrainJob:
    """A pyramid being trained into a model directory.

    Attributes:
        path: the model directory.
        pyramid: the pyramid (finished scales loaded when resuming).
        meta: the directory's current ``model.json`` contents.
        fresh: True if this job started the directory (so a failure before the first finished scale
            removes it again); False when resuming.
        created_dir: True if the directory did not exist before this job.
    """

    path: Path
    pyramid: SinGANPyramid
    meta: ModelMeta
    fresh: bool
    created_dir: bool = False


def start_training(
    image_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: SinGANConfig,
    preset_name: str,
    device: torch.device,
    *,
    overwrite: bool = False,
) -> TrainJob:
    """Validate the image, then start a model directory for it (see :func:`create_model_dir`),
    with the image itself as the model's full-resolution source (``full_source.png``).

    Nothing is written unless the image loads and fits the pyramid settings.

    Raises:
        ImageReadError: missing or unreadable image.
        ValueError: the image is too small for ``min_size`` (or ``max_size`` too small, see
            :func:`pyramid_geometry`); ``out_dir`` holds something that must not be replaced.
    """
    image_path, out_dir = Path(image_path), Path(out_dir)
    image = load_image(image_path)
    pyramid = new_pyramid(image, config, device)
    sha = file_sha256(image_path)
    created_dir = not out_dir.exists()
    meta = create_model_dir(out_dir, pyramid, sha, image_path.name, preset_name, full_source=image, overwrite=overwrite)
    return TrainJob(out_dir, pyramid, meta, fresh=True, created_dir=created_dir)


def resume_training(
    model_dir: str | os.PathLike, device: torch.device, image_path: str | os.PathLike | None = None
) -> TrainJob:
    """Load a (partially) trained model directory to continue training it.

    Args:
        image_path: if given, it must be the image the model was started from (same SHA-256).

    Raises:
        ModelLoadError: the directory is not a loadable model.
        ValueError: ``image_path`` is not the model's source image.
    """
    model_dir = Path(model_dir)
    pyramid, meta = load_pyramid(model_dir, device)
    if image_path is not None:
        if not Path(image_path).is_file():
            raise ImageReadError(f"image: no such file: {image_path}")
        if file_sha256(image_path) != meta.source_sha256:
            raise ValueError(f"{model_dir}: was trained on another image ({meta.source_name}), not {image_path}")
    return TrainJob(model_dir, pyramid, meta, fresh=False)


def is_model_dir(path: str | os.PathLike) -> bool:
    """True if ``path`` is a directory with a ``model.json`` (valid or not)."""
    return (Path(path) / META_FILE).is_file()


def run_training(
    job: TrainJob,
    on_progress: ProgressCallback | None = None,
    on_scale_done: ScaleDoneCallback | None = None,
    report_every: int = 10,
) -> ModelMeta:
    """Train the job's remaining scales, saving each one as soon as it is finished.

    If training stops early (an exception, ``KeyboardInterrupt``), every finished scale is on disk
    and the directory can be resumed; a fresh job that had not finished its first scale removes
    its files (and the directory, if it created it), so no half-made model is left behind.
    The exception is re-raised.
    """

    def saved(pyramid: SinGANPyramid, k: int) -> None:
        job.meta = save_scale(job.path, pyramid, k)
        if on_scale_done is not None:
            on_scale_done(pyramid, k)

    try:
        train(job.pyramid, on_progress=on_progress, on_scale_done=saved, report_every=report_every)
    except BaseException:
        if job.fresh and job.meta.scales_done == 0:
            discard_model_dir(job.path, remove_dir=job.created_dir)
        raise
    return job.meta


def write_image(x: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write (1, 3, H, W) in [-1, 1] as an 8-bit RGB image, format from the suffix, atomically.

    Creates missing parent directories. Raises ``ValueError`` for a suffix Pillow cannot write
    (checked before anything is written).
    """
    path = Path(path)
    data = image_bytes(x, image_format(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return path


def sr_model_name(image_path: str | os.PathLike, factor: float, preset_name: str) -> str:
    """Directory name of a super-resolution model: ``<stem>-sr-<preset>-r<r>``.

    Factors with the same r (2, 4, 8: r = 2^(-1/3)) share one model.
    """
    _, r = sr_steps(factor)
    return f"{Path(image_path).stem}-sr-{preset_name}-r{r:.4f}"


def sr_training(
    image_path: str | os.PathLike,
    factor: float,
    base: SinGANConfig,
    preset_name: str,
    model_dir: str | os.PathLike,
    device: torch.device,
) -> TrainJob:
    """The super-resolution model of an image for ``factor``: resumed (or finished) if ``model_dir``
    already holds one for this image, otherwise started with :func:`sr_config` of ``base``.

    Raises:
        ImageReadError: missing or unreadable image.
        ValueError: ``factor`` out of range; ``model_dir`` holds a model of another image or one
            whose scale factor does not fit ``factor``.
    """
    if is_model_dir(model_dir):
        job = resume_training(model_dir, device, image_path)
        _, r = sr_steps(factor)
        if abs(job.pyramid.geometry.scale_factor - r) > 1e-4:
            raise ValueError(
                f"{model_dir}: was trained with scale factor r={job.pyramid.geometry.scale_factor:.4f}, "
                f"factor {factor} needs r={r:.4f}; choose another model directory"
            )
        return job
    image = load_image(image_path)
    config = sr_config(base, factor, *image.shape[-2:])
    return start_training(image_path, model_dir, config, preset_name, device)


def write_samples(
    pyramid: SinGANPyramid,
    out_dir: str | os.PathLike,
    n_samples: int = 8,
    scale_h: float = 1.0,
    scale_w: float = 1.0,
    gen_start_scale: int = 0,
    seed: int = 0,
) -> list[Path]:
    """Generate samples (see :func:`singan_core.sampling.sample`) and write ``sample_seed<s>.png`` files.

    Sample i has seed ``seed + i``. Each file is written atomically. Returns the paths written.

    Raises:
        ValueError: an argument out of range or an incompletely trained pyramid.
    """
    images = sample(pyramid, n_samples, scale_h, scale_w, gen_start_scale, seed)
    return write_pngs(images, out_dir, "sample", seed)


def write_pngs(images: torch.Tensor, out_dir: str | os.PathLike, stem: str, seed: int) -> list[Path]:
    """Write images (N, 3, H, W) in [-1, 1] as ``<stem>_seed<seed + i>.png`` in ``out_dir``, atomically.

    Creates ``out_dir`` if needed. Returns the paths written, in order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        target = out_dir / f"{stem}_seed{seed + i}.png"
        atomic_write_bytes(target, png_bytes(image))
        paths.append(target)
    return paths


def model_lift_source(model_dir: str | os.PathLike, pyramid: SinGANPyramid, meta: ModelMeta) -> LiftSource:
    """The full-resolution detail source of a loaded model directory (see :func:`lift_source`).

    Raises:
        ModelLoadError: the directory should hold ``full_source.png`` but it is missing or corrupt.
    """
    return lift_source(pyramid, load_full_source(model_dir, meta))


def load_instant_source(image_path: str | os.PathLike) -> torch.Tensor:
    """An image for :func:`~singan_core.full_resolution.instant`: (1, 3, H, W) in [-1, 1], longest
    side capped at 4096 px like a model's full-resolution source. Raises :class:`ImageReadError`."""
    return full_source_image(load_image(image_path))


@dataclass(frozen=True)
class EvalResult:
    """Metrics of ``n`` random samples against the real finest-scale image (all sizes equal).

    Attributes:
        patch_swd: per-sample patch sliced-Wasserstein distance (lower = closer patch statistics).
        diversity: SinGAN pixel diversity of the samples (std across samples / std of the real image).
        sifid: mean SIFID over the samples, or None when no Inception weights were given.
    """

    patch_swd: list[float]
    diversity: float
    sifid: float | None

    @property
    def patch_swd_median(self) -> float:
        return statistics.median(self.patch_swd)

    @property
    def patch_swd_mean(self) -> float:
        return statistics.fmean(self.patch_swd)


def evaluate(
    pyramid: SinGANPyramid,
    n_samples: int = 16,
    seed: int = 0,
    sifid_weights: str | os.PathLike | None = None,
) -> EvalResult:
    """Sample ``n_samples`` images at the training size and score them against the real image.

    Raises:
        ValueError: ``n_samples < 2`` (diversity needs two samples), an incompletely trained pyramid,
            or a weights file without the Inception keys.
        FileNotFoundError: ``sifid_weights`` does not exist.
    """
    if n_samples < 2:
        raise ValueError(f"n_samples: must be >= 2 to measure diversity, got {n_samples}")
    if sifid_weights is not None and not Path(sifid_weights).is_file():
        raise FileNotFoundError(f"sifid weights: no such file: {sifid_weights}")
    samples = sample(pyramid, n_samples, seed=seed).cpu()
    real = pyramid.reals[-1].detach().cpu()
    swd = [patch_swd(s[None], real) for s in samples]
    diversity = pixel_diversity(samples, real)
    score = None
    if sifid_weights is not None:
        score = statistics.fmean(sifid(real, s[None], sifid_weights) for s in samples)
    return EvalResult(patch_swd=swd, diversity=diversity, sifid=score)
