"""A new model's preparation: the work between a training request and its first training step.

Decoding the training image, hashing it, building its pyramid and writing (with fsync) the model
directory takes about 2 s for an 8192 x 4096 image. The socket loop must not do it (nobody would be
answered meanwhile), so it only checks the image's geometry (:func:`reserve`: dimensions only, no
pixel is touched) and reserves the model id; the worker does the rest (:func:`prepare_model`,
progress phase ``preparing``) in its interactive lane, i.e. within seconds even while another
model trains, and the training is then queued behind the other trainings.

A super-resolution request first looks for a model of the same image, preset and factor
(:func:`sr_model`); that takes the hash of its pixels on the socket loop, since the accepted reply
names the model. Its input is at most ``MAX_SR_INPUT_SIDE`` px on the longer side. A ``resume``
request clears an interrupted model's stopped flag and error (:func:`resumable`); the worker then
trains on from its last finished scale.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from protocol.schema import MAX_SR_INPUT_SIDE, ModelInfo, SuperResolveParams, TrainParams
from protocol.errors import ProtocolError
from protocol.wire import Image
from singan_core.config import SinGANConfig, preset
from singan_core.pyramid import pyramid_geometry
from singan_core.storage import create_model_dir
from singan_core.super_resolution import sr_config, sr_steps
from singan_core.training import new_pyramid

from .budget import MemoryBudget
from .images import decode_file, image_sha256, to_tensor
from .jobs import Job
from .ops import check_output
from .store import ModelStore, StudioMeta


@dataclass(frozen=True)
class Preparation:
    """What the worker needs to create a model directory.

    Attributes:
        config: the training configuration. preset: its name, as recorded in ``model.json``.
        studio: the daemon's metadata of the new model (display name, kind).
        source_name: the source's name (the train request's ``name``, or the watched file's name).
        image: the training image as sent (train, super_resolve), or None.
        file_bytes: a watched file's bytes, or None (exactly one of image / file_bytes is set).
        sha256: the source hash if already known (watched files: of the file bytes), else None:
            the hash of the image's 8-bit RGB pixels is computed by the worker.
    """

    config: SinGANConfig
    preset: str
    studio: StudioMeta
    source_name: str
    image: Image | None = None
    file_bytes: bytes | None = None
    sha256: str | None = None


def reserve(store: ModelStore, prep: Preparation, height: int, width: int) -> str:
    """Check that a ``height`` x ``width`` px image can be trained with ``prep.config`` (geometry
    only) and reserve a model id for it, listed as ``queued`` until the worker prepares it.

    Raises:
        ProtocolError: ``images[0]``, the image is too small for the preset.
    """
    try:
        geometry = pyramid_geometry(height, width, prep.config.pyramid)
    except ValueError as exc:
        raise ProtocolError(f"images[0]: {exc}", "images[0]") from None
    finest_h, finest_w = geometry.sizes[-1]
    now = time.time()
    info = ModelInfo(
        id="reserved",
        name=prep.studio.name,
        status="queued",
        kind=prep.studio.kind,
        scales_done=0,
        num_scales=geometry.num_scales,
        width=finest_w,
        height=finest_h,
        preset=prep.preset,
        padding=prep.config.net.padding_mode,
        source_name=prep.source_name,
        source_sha256=prep.sha256 or "",
        created=now,
        updated=now,
    )
    return store.reserve(prep.studio.name, info)


def train_model(store: ModelStore, image: Image, params: TrainParams) -> tuple[str, Preparation]:
    """A reserved new model for a ``train`` request and its preparation (:func:`reserve`)."""
    config = preset(params.preset).with_overrides(
        max_size=params.max_size, padding_mode=params.padding, seed=params.seed
    )
    prep = Preparation(config, params.preset, StudioMeta(name=params.name), params.name, image=image)
    return reserve(store, prep, image.height, image.width), prep


def sr_model(
    store: ModelStore, image: Image, params: SuperResolveParams, budget: MemoryBudget
) -> tuple[str, Preparation | None]:
    """The super-resolution model for this image, preset and factor: an existing one (and no
    preparation), or a reserved new one and its preparation.

    Raises:
        ProtocolError: ``params.factor``, the output is over the limits or the memory budget;
            ``images[0]`` (``too_large``), the image is over ``MAX_SR_INPUT_SIDE``; or as :func:`reserve`.
    """
    check_output(
        1, round(image.height * params.factor), round(image.width * params.factor), "params.factor", budget=budget
    )
    if max(image.width, image.height) > MAX_SR_INPUT_SIDE:
        raise ProtocolError(
            f"images[0]: {image.width}x{image.height} px; super_resolve takes at most {MAX_SR_INPUT_SIDE} px on the longer side",
            "images[0]",
            "too_large",
        )
    _, r = sr_steps(params.factor)
    sha = image_sha256(image)
    for model_id in store.find(sha, "super_resolution"):
        meta = store.meta(model_id)
        if meta.preset == params.preset and abs(meta.scale_factor - r) < 1e-4 and not store.studio(model_id).error:
            return model_id, None
    config = sr_config(preset(params.preset), params.factor, image.height, image.width)
    name = f"{params.name}-sr"
    studio = StudioMeta(name=name, kind="super_resolution", sr_factor=params.factor)
    prep = Preparation(config, params.preset, studio, name, image=image, sha256=sha)
    return reserve(store, prep, image.height, image.width), prep


def prepare_model(store: ModelStore, model_id: str, prep: Preparation) -> None:
    """Decode, hash, build the pyramid and write the model directory of a reserved ``model_id``.

    Raises:
        ProtocolError: ``images[0]``, the image cannot be decoded or trained (the reservation stays:
            the caller releases it).
        OSError: the store cannot be written.
    """
    try:
        if prep.image is not None:
            tensor, sha = to_tensor(prep.image), prep.sha256 or image_sha256(prep.image)
        else:
            assert prep.file_bytes is not None and prep.sha256 is not None
            tensor, sha = decode_file(prep.file_bytes, prep.source_name), prep.sha256
        pyramid = new_pyramid(tensor, prep.config, torch.device("cpu"))
    except ValueError as exc:
        raise ProtocolError(f"images[0]: {exc}", "images[0]") from None
    # a generative model keeps the image as sent (capped at 4096 px) as its full-resolution source: the lift's detail
    full_source = tensor if prep.studio.kind == "generative" else None
    create_model_dir(store.path(model_id), pyramid, sha, prep.source_name, prep.preset, full_source=full_source)
    store.write_studio(model_id, prep.studio)  # also puts the real model in the index


def resumable(store: ModelStore, model_id: str, running: Job | None) -> str:
    """``model_id`` made resumable (its stopped flag and error cleared) for a ``resume`` request;
    ``running`` is the model's queued or running training job, if any.

    Raises:
        ProtocolError: ``not_found`` (no such model), ``busy`` (its training is queued or
            running), ``invalid_request`` (already completely trained). Field ``params.model``.
    """
    if running is not None:
        raise ProtocolError(f"params.model: {model_id} is already training (job {running.id})", "params.model", "busy")
    try:
        meta = store.meta(model_id)
    except KeyError:
        raise ProtocolError(
            f"params.model: no model {model_id!r} (see list_models)", "params.model", "not_found"
        ) from None
    if meta.is_complete:
        raise ProtocolError(f"params.model: {model_id} is completely trained; nothing to resume", "params.model")
    studio = store.studio(model_id)
    if studio.stopped or studio.error:
        store.write_studio(model_id, studio.model_copy(update={"stopped": False, "error": None}))
    return model_id
