"""Every message of the protocol as a pydantic v2 model: the daemon validates requests with these,
``singan protocol schema`` exports them as JSON Schema, docs/protocol.md describes them.

Requests (client -> daemon) are discriminated by ``op``, replies (daemon -> client) by ``type``.
A job op (train, generate, harmonize, edit, paint2image, super_resolve, animate, instant, inpaint) is answered by
``accepted``, then any number of ``progress`` events, then one ``result`` or ``error``; every other
op by one ``result`` or ``error``. Every reply carries the request's ``id``.

Images travel as raw frames after the header (see :mod:`protocol.wire`); a request's ``images``
entries name them: ``"image"`` (the input) and ``"mask"`` (white/opaque = selected).
Output images are uint8 in the order the request asks for (``output_order``).

Scales are numbered k = 0 (coarsest) .. K-1 (finest), as everywhere in SinGAN Studio (the paper's
n = N - k).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints, TypeAdapter, ValidationError, create_model

from . import PROTOCOL_VERSION
from .errors import ProtocolError
from .wire import Image, short_repr

# ----------------------------------------------------------------------------- limits

MAX_IMAGE_SIDE = 8192
"""Longest side (pixels) of any image sent or produced."""
MAX_IMAGE_PIXELS = 32 * 1024 * 1024
"""Most pixels of any one image sent or produced."""
MAX_OUTPUT_PIXELS = 64 * 1024 * 1024
"""Most pixels of all images of one reply together (n samples, animation frames)."""
MIN_OUTPUT_SIDE = 8
"""Shortest side (pixels) of a generate output, whether set by width/height or by scale_h/scale_w
(the model's own detail; ``detail: source`` needs the core's ``full_resolution.MIN_OUTPUT_SIDE``)."""
MAX_SAMPLES = 64
MAX_FRAMES = 600
MAX_SR_INPUT_SIDE = 1024
"""Longest side (pixels) of a super_resolve input (its model is trained at the input's full size)."""
MAX_MESSAGE_BYTES = 4 * MAX_IMAGE_PIXELS * 4 + 1024 * 1024
"""ZMQ_MAXMSGSIZE of the daemon's socket: a float32 RGBA image of MAX_IMAGE_PIXELS plus a header.
Larger frames make ZeroMQ drop the connection (no reply is possible)."""

ModelId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
"""A model id: a slug of 1..64 characters a-z, 0-9, '-', '_' (never a path)."""
JobId = Annotated[str, StringConstraints(pattern=r"^j[0-9]{1,12}-[0-9a-f]{6}$")]
"""A job id, ``j<n>-<hex>``: unique within a daemon process, and different after a restart."""
OutputOrder = Literal["RGB", "RGBA", "BGRA"]
Preset = Literal["tiny", "draft", "paper"]
Padding = Literal["zeros", "circular"]
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
InjectionScale = Annotated[int | None, Field(ge=1, le=63)]
FeatureScale = Annotated[float, Field(gt=0, le=16)]
"""Output pixels per source pixel (1.0: the source's own feature size)."""
Detail = Literal["source", "model"]
HarmonizeMethod = Literal["paper", "guided", "reinhard", "reinhard_guided", "analogies"]
"""Harmonization methods (:data:`singan_core.harmonization.METHODS`)."""
EditMethod = Literal["paper", "analogies"]
"""Editing methods (:data:`singan_core.editing.METHODS`)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


# ----------------------------------------------------------------------------- parameters


class NoParams(_Model):
    """No parameters."""


class ModelParams(_Model):
    model: ModelId
    """The model's id (see ``list_models``)."""


class CancelParams(_Model):
    job: JobId
    """The job to cancel, as given in its ``accepted`` reply."""


class TrainParams(_Model):
    """Train a new model on frame ``image`` (any size; shrunk to ``max_size``). Queued behind other trainings."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    """Display name; the model id is its slug, made unique (``Brick wall`` -> ``brick-wall``, ``brick-wall-2``)."""
    preset: Preset = "draft"
    """tiny (tests, seconds), draft (minutes on a CPU), paper (the paper's settings, long)."""
    padding: Padding = "zeros"
    """zeros, or circular for seamless, tileable output."""
    max_size: Annotated[int | None, Field(ge=32, le=1024)] = None
    """Longest side of the finest scale in pixels (default: the preset's)."""
    seed: Seed = 0
    """Training seed."""


class GenerateParams(_Model):
    """Random samples of a ready model (paper sec. 2, Figs. 4, 6-8)."""

    model: ModelId
    n: Annotated[int, Field(ge=1, le=MAX_SAMPLES)] = 1
    """Number of samples; sample i uses seed ``seed + i``."""
    seed: Seed = 0
    scale_h: Annotated[float, Field(gt=0, le=64)] = 1.0
    """Output height relative to the training image (both scales are ignored if width or height is
    given). The output must have at least MIN_OUTPUT_SIDE px a side and fit the per-image limits."""
    scale_w: Annotated[float, Field(gt=0, le=64)] = 1.0
    """Output width relative to the training image (both scales are ignored if width or height is given)."""
    width: Annotated[int | None, Field(ge=MIN_OUTPUT_SIDE, le=MAX_IMAGE_SIDE)] = None
    """Output width in pixels; with only one of width/height the other keeps the model's aspect."""
    height: Annotated[int | None, Field(ge=MIN_OUTPUT_SIDE, le=MAX_IMAGE_SIDE)] = None
    """Output height in pixels."""
    gen_start_scale: Annotated[int, Field(ge=0, le=63)] = 0
    """First scale with fresh noise: 0 = new layouts; higher = the training image's layout, new detail."""
    padding: Padding | None = None
    """None: the model's own. circular: force wrap-around padding for a seamless tile (best with
    models trained with circular padding)."""
    feature_scale: FeatureScale = 1.0
    """Output px per source px with ``detail: source`` (1.0: the source photo's own feature size;
    0.5: features half as large). Ignored with ``detail: model``."""
    detail: Detail | None = None
    """``source``: SinGAN lays out the output at the model's scale, then the full-resolution lift
    (GPNN patch synthesis from the model's full-resolution source) brings it to the output size
    with the source's own detail; output size = width x height, or the source's size x
    scale_h/scale_w. ``model``: the output of a model-scale pyramid (features at the model's size,
    as in protocol version 1's generate). None (default): ``source`` when width or height is given and the model
    keeps a full-resolution source, else ``model`` (requests of old clients with scale_h/scale_w
    keep their meaning)."""
    plate: bool = False
    """A background plate: the source photo's composition (sky on top, the horizon at its
    height, the ground below) with its height fitted to the output's, extended to the output's aspect
    with new content at the sides, detail at the output's resolution from the photo's own patches
    (self-example upscaling), not bicubic stretching. ``feature_scale`` is ignored: the fit sets it. SinGAN's retargeting: ``gen_start_scale`` 0 is taken as 1 (the photo's coarse layout kept);
    ``detail`` is ``source``."""
    output_order: OutputOrder = "RGB"


class InstantParams(_Model):
    """Variations of frame ``image`` with no model and no training: GPNN patch synthesis (Granot
    et al., "Drop the GAN", CVPR 2022) from noise, at any size and feature scale, in seconds. An
    interactive job (runs ahead of trainings and between their iterations); progress per level."""

    n: Annotated[int, Field(ge=1, le=MAX_SAMPLES)] = 1
    """Number of images; image i uses seed ``seed + i``."""
    seed: Seed = 0
    width: Annotated[int | None, Field(ge=16, le=MAX_IMAGE_SIDE)] = None
    """Output width in pixels (default: the input's width x feature_scale, or the height's aspect)."""
    height: Annotated[int | None, Field(ge=16, le=MAX_IMAGE_SIDE)] = None
    """Output height in pixels (default: the input's height x feature_scale, or the width's aspect)."""
    feature_scale: FeatureScale = 1.0
    """Output px per input px (1.0: the input's own feature size)."""
    tile: bool = False
    """A seamless tile: patches wrap around the output's edges."""
    plate: bool = False
    """A background plate: the source photo's composition (sky on top, the horizon at its
    height, the ground below) with its height fitted to the output's, extended to the output's aspect
    with new content at the sides, detail at the output's resolution from the photo's own patches
    (self-example upscaling), not bicubic stretching. ``feature_scale`` is ignored: the fit sets it. GPNN's retargeting; ``tile`` must be false."""
    output_order: OutputOrder = "RGB"


class InpaintParams(_Model):
    """Content-aware fill with no model and no training: the pixels of frame ``image`` where frame
    ``mask`` is white (luminance, or alpha if it has transparency, over 50 %) are synthesised from
    the patches of the rest of ``image``, with everything outside the mask kept fixed as their
    boundary (GPNN's conditional inpainting: Granot et al., "Drop the GAN", CVPR 2022, sec. 4), then
    the region's colour offset along its border is removed (membrane cloning, Farbman et al. 2009),
    so the result continues its surroundings with no seam. Removes an object (Fill selection), or
    gives a variation of a selection that meets the canvas around it. ``mask`` has ``image``'s
    size and must leave a 7 x 7 px patch of ``image`` outside it. Returns n frames ``image`` of the
    input's size, equal to it outside the mask; with an RGBA/BGRA ``output_order`` the alpha is
    255 inside the mask and 0 outside (a layer to put over the image). An interactive job (runs
    ahead of trainings); progress per level."""

    n: Annotated[int, Field(ge=1, le=MAX_SAMPLES)] = 1
    """Number of results; result i uses seed ``seed + i``."""
    seed: Seed = 0
    noise: Annotated[float, Field(ge=0, le=2)] = 0.25
    """Standard deviation (on [-1, 1] pixel values) of the noise the hole starts from, over the
    colours around it: 0.25 continues the surroundings most plainly (removing an object); about 1
    gives clearly different results per seed (variations)."""
    output_order: OutputOrder = "RGB"


class _InjectionParams(_Model):
    model: ModelId
    scale: InjectionScale = None
    """Injection scale k, 1..K-1 (coarser = repaints more). Default: the application's."""
    seed: Seed = 0
    noise: bool = True
    """False: zero noise at the injected scales (deterministic)."""
    output_order: OutputOrder = "RGB"


class HarmonizeParams(_InjectionParams):
    """Blend a pasted object (frames ``image`` = the naive composite, ``mask`` = the object) into
    the background the model was trained on, at the composite's size (paper sec. 4.2, Fig. 13).
    Default scale K-3. Pixels outside the dilated mask come back unchanged; with an RGBA/BGRA
    ``output_order`` the alpha is 255 inside the dilated mask and 0 outside (a layer to put over
    the composite)."""

    method: HarmonizeMethod = "reinhard_guided"
    """``paper``: the paper's method exactly (the model's change upsampled bicubically into the
    dilated, feathered mask). ``guided``: the model's change brought to the composite's size by a
    guided filter fitted on the object alone (He et al. 2010); only the object's pixels change.
    ``reinhard``: no model pass, the object's L*a*b* statistics moved towards the ring of
    background around it (Reinhard et al. 2001). ``reinhard_guided`` (default): both, colour first.
    ``analogies``: ``reinhard_guided``, then the object's finest frequency band taken from the
    background's own full-resolution patches (image analogies, Hertzmann et al. 2001). With the methods other than ``paper`` the RGBA/BGRA alpha is 255 on the mask itself."""
    strength: Annotated[float, Field(ge=0, le=1)] = 0.6
    """Colour transfer strength of ``reinhard`` and ``reinhard_guided``: 0 keeps the object's
    colours, 1 gives it the ring's mean colour (its shading kept)."""


class EditParams(_InjectionParams):
    """Make a rough edit (frames ``image`` = the edited image, ``mask`` = the edited regions) look
    natural (paper sec. 4.3, Fig. 12). Default scale K-4. Returns ``image`` and ``unmasked``;
    with an RGBA/BGRA ``output_order`` the alpha of ``image`` is 255 inside the dilated mask and 0
    outside, that of ``unmasked`` 255."""

    method: EditMethod = "analogies"
    """``paper``: the paper's method exactly. ``analogies`` (default): the same, then the finest
    frequency band inside the dilated mask taken from the image's own full-resolution patches
    outside the edited regions (image analogies, Hertzmann et al. 2001)."""


class Paint2ImageParams(_InjectionParams):
    """Turn a rough paint (frame ``image``) into an image of the model's world (paper sec. 4.4,
    Fig. 11). Default scale 1. Output: the model's resolution with the paint's aspect."""

    quantize: bool = False
    """First reduce the paint to the training image's main colours (k-means)."""
    colors: Annotated[int, Field(ge=1, le=64)] = 5


class SuperResolveParams(_Model):
    """Super-resolve frame ``image`` by ``factor`` with a SinGAN trained on the image itself (paper
    sec. 4.1). Trains that model first (queued like ``train``; reused for the same image, preset
    and factor); the model appears in ``list_models`` as ``<name>-sr``."""

    factor: Annotated[float, Field(ge=1.25, le=16)] = 4.0
    preset: Preset = "draft"
    name: Annotated[str, StringConstraints(min_length=1, max_length=60)] = "image"
    """Display name of the SR model (``<name>-sr``)."""
    output_order: OutputOrder = "RGB"


class AnimateParams(_Model):
    """A looping animation of the training image: a random walk in noise space (paper sec. 4.5)."""

    model: ModelId
    frames: Annotated[int, Field(ge=1, le=MAX_FRAMES)] = 30
    start_scale: Annotated[int | None, Field(ge=0, le=63)] = None
    """First scale that moves: 0 = objects move (default), higher = only detail moves."""
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.1
    """Pull towards the training image's reconstruction noise (0 = free walk)."""
    beta: Annotated[float, Field(ge=0, le=0.999)] = 0.9
    """Momentum of the walk (higher = smoother)."""
    seed: Seed = 0
    output_order: OutputOrder = "RGB"


# ----------------------------------------------------------------------------- requests


class ImageSpec(_Model):
    """Describes the raw frame that follows the header at the same position (frame i + 1)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    """Role: ``image`` or ``mask`` in requests; ``sample``, ``image``, ``unmasked``, ``frame``, ``preview`` in replies."""
    width: Annotated[int, Field(ge=1)]
    height: Annotated[int, Field(ge=1)]
    channels: Literal[1, 3, 4]
    order: Literal["GRAY", "RGB", "RGBA", "BGRA"]
    """Interleaved channel order (Krita's 8-bit pixel data is BGRA)."""
    dtype: Literal["uint8", "float32"] = "uint8"
    """uint8: 0..255 (sRGB as stored); float32: 0..1 (reserved for HDR)."""


class _Request(_Model):
    v: Literal[PROTOCOL_VERSION]  # type: ignore[valid-type]
    """Protocol version."""
    id: Annotated[str, Strict(), StringConstraints(min_length=1, max_length=64)]
    """Chosen by the client, echoed in every reply to this request. A msgpack str (bin is refused,
    and such a request's error reply has ``id: nil``)."""
    token: Annotated[str, Strict(), StringConstraints(max_length=256)] | None = None
    """The daemon's auth token: required in every request (hello included) whenever the daemon has
    one (``--token`` or ``SINGAN_TOKEN``; always with ``--allow-remote``)."""
    images: list[ImageSpec] = []


def _request(op: str, params: type[_Model], doc: str, images: tuple[str, ...] = ()) -> type[_Request]:
    optional = all(not f.is_required() for f in params.model_fields.values())
    fields: dict[str, Any] = {
        "op": (Literal[op], ...),  # type: ignore[valid-type]
        "params": (params, Field(default_factory=params) if optional else ...),
    }
    model = create_model(
        f"{''.join(p.title() for p in op.split('_'))}Request", __base__=_Request, __doc__=doc, **fields
    )
    model.required_images = images  # type: ignore[attr-defined]
    return model


HelloRequest = _request("hello", NoParams, "Protocol and server versions, device, limits, capabilities.")
ListModelsRequest = _request("list_models", NoParams, "Every model in the store with its status.")
GetModelRequest = _request("get_model", ModelParams, "One model's details.")
DeleteModelRequest = _request(
    "delete_model", ModelParams, "Delete a model that is not training (error busy otherwise)."
)
TrainRequest = _request("train", TrainParams, TrainParams.__doc__ or "", ("image",))
ResumeRequest = _request(
    "resume",
    ModelParams,
    "Continue an interrupted training (status interrupted or failed) from its first unfinished scale; "
    "queued like train and answered like it ({model: ModelInfo}).",
)
GenerateRequest = _request("generate", GenerateParams, GenerateParams.__doc__ or "")
HarmonizeRequest = _request("harmonize", HarmonizeParams, HarmonizeParams.__doc__ or "", ("image", "mask"))
EditRequest = _request("edit", EditParams, EditParams.__doc__ or "", ("image", "mask"))
Paint2ImageRequest = _request("paint2image", Paint2ImageParams, Paint2ImageParams.__doc__ or "", ("image",))
SuperResolveRequest = _request("super_resolve", SuperResolveParams, SuperResolveParams.__doc__ or "", ("image",))
AnimateRequest = _request("animate", AnimateParams, AnimateParams.__doc__ or "")
InstantRequest = _request("instant", InstantParams, InstantParams.__doc__ or "", ("image",))
InpaintRequest = _request("inpaint", InpaintParams, InpaintParams.__doc__ or "", ("image", "mask"))
CancelRequest = _request("cancel", CancelParams, "Cancel a queued or running job; it ends with error code cancelled.")
JobsRequest = _request("jobs", NoParams, "The running job and the queue, with progress.")
ShutdownRequest = _request(
    "shutdown", NoParams, "Stop the daemon: a running training keeps its finished scales, queued jobs are cancelled."
)

REQUESTS = (
    HelloRequest,
    ListModelsRequest,
    GetModelRequest,
    DeleteModelRequest,
    TrainRequest,
    GenerateRequest,
    HarmonizeRequest,
    EditRequest,
    Paint2ImageRequest,
    SuperResolveRequest,
    AnimateRequest,
    CancelRequest,
    JobsRequest,
    ShutdownRequest,
    InstantRequest,
    InpaintRequest,
    ResumeRequest,
)
Request = Annotated[Union[REQUESTS], Field(discriminator="op")]  # type: ignore[valid-type]
OPS = tuple(r.model_fields["op"].annotation.__args__[0] for r in REQUESTS)  # type: ignore[union-attr]
JOB_OPS = (
    "train",
    "generate",
    "harmonize",
    "edit",
    "paint2image",
    "super_resolve",
    "animate",
    "instant",
    "inpaint",
    "resume",
)
"""Ops answered by accepted -> progress... -> result | error; the others get one reply."""
TRAINING_OPS = ("train", "super_resolve", "resume")
"""Job ops that train, queued behind each other; the other job ops go ahead of them."""

_REQUEST_ADAPTER: TypeAdapter[Any] = TypeAdapter(Request)


def parse_request(header: dict[str, Any], images: list[Image]) -> Any:
    """Validate a decoded header (see :func:`protocol.wire.decode`) into one of the request models.

    Raises:
        ProtocolError: ``unsupported_version`` for a ``v`` that is not the integer 1 (``true`` and
            ``1.0`` included); ``invalid_request`` naming the first bad field (``op``, ``id`` or
            ``token`` that is not a str, ``params.n``, ``images``); ``too_large`` for an image over
            the limits. Client strings in the message are escaped to one line.
    """
    if type(header.get("v")) is not int or header["v"] != PROTOCOL_VERSION:  # true and 1.0 equal 1 in Python
        raise ProtocolError(
            f"v: this daemon speaks protocol version {PROTOCOL_VERSION}, got {short_repr(header.get('v'))}",
            "v",
            "unsupported_version",
        )
    op = header.get("op")
    if op not in OPS:
        raise ProtocolError(f"op: unknown op {short_repr(op)}; one of {', '.join(OPS)}", "op")
    try:
        request = _REQUEST_ADAPTER.validate_python(header)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(part) for part in error["loc"][1:]]  # [0] is the union tag
        field = ".".join(loc) or None
        got = "" if error["type"] == "missing" else f", got {short_repr(error['input'])}"
        raise ProtocolError(f"{field or 'request'}: {error['msg']}{got}", field) from None
    _check_images(request, images)
    return request


def _check_images(request: Any, images: list[Image]) -> None:
    names = [image.name for image in images]
    required = type(request).required_images
    if sorted(names) != sorted(required):
        want = ", ".join(required) or "none"
        raise ProtocolError(
            f"images: {request.op} takes images named {want}, got {', '.join(names) or 'none'}", "images"
        )
    for i, image in enumerate(images):
        if max(image.width, image.height) > MAX_IMAGE_SIDE or image.width * image.height > MAX_IMAGE_PIXELS:
            raise ProtocolError(
                f"images[{i}]: {image.width}x{image.height} px is over the limit "
                f"(longest side {MAX_IMAGE_SIDE} px, {MAX_IMAGE_PIXELS} px in all)",
                f"images[{i}]",
                "too_large",
            )


# ----------------------------------------------------------------------------- replies

ErrorCode = Literal[
    "invalid_request",
    "unsupported_version",
    "not_found",
    "too_large",
    "busy",
    "cancelled",
    "out_of_memory",
    "unauthorized",
    "internal",
]


class ErrorInfo(_Model):
    code: ErrorCode
    message: str
    """One line naming the field and the limit."""
    field: str | None = None
    """The offending field (``params.n``, ``images[0]``), when one is to blame."""


class ModelInfo(_Model):
    """A model in the daemon's store."""

    id: ModelId
    name: str
    status: Literal["queued", "training", "ready", "interrupted", "failed"]
    """interrupted: partly trained and not queued (cancelled); its finished scales are kept, but it is
    not trained further (delete it, or train the image again). failed: the training raised ``error``."""
    kind: Literal["generative", "super_resolution"]
    scales_done: int
    num_scales: int
    """K; the coarsest scale N = K - 1."""
    width: int
    """Finest-scale (training) width in pixels."""
    height: int
    preset: str
    padding: Padding
    source_name: str
    source_sha256: str
    created: float
    """Unix time, seconds."""
    updated: float
    job: JobId | None = None
    """The job training it, while queued or training."""
    error: str | None = None
    """Why it failed (status failed)."""


class JobInfo(_Model):
    job: JobId
    op: str
    state: Literal["queued", "running"]
    model: ModelId | None = None
    position: int
    """0 = running; 1.. = place in the queue (interactive jobs run before trainings)."""
    phase: str
    fraction: float
    eta_seconds: float | None = None
    node_ip: str | None = None
    """A training on a Ray cluster (``singan serve --ray``): the IP of the Ray node it runs on, once its task started."""
    node_id: str | None = None
    """That node's Ray node id (hex)."""
    worker_pid: int | None = None
    """The process id of the Ray worker running it, on that node."""


class Accepted(_Model):
    """First reply to a job op."""

    type: Literal["accepted"] = "accepted"
    v: int = PROTOCOL_VERSION
    id: str
    job: JobId
    model: ModelId | None = None
    """The model the job trains or uses."""
    position: int
    """Jobs ahead of this one (0 = starts now)."""


class Progress(_Model):
    """Progress of a job. During training at most every few seconds one carries a ``preview`` image
    (a random sample of the finished scales)."""

    type: Literal["progress"] = "progress"
    v: int = PROTOCOL_VERSION
    id: str
    job: JobId
    phase: Literal["queued", "preparing", "loading", "training", "sampling"]
    """preparing: a new model's training image is decoded and its model directory written."""
    fraction: Annotated[float, Field(ge=0, le=1)]
    """Share of the job done, by compute (never decreases)."""
    eta_seconds: float | None = None
    """Estimated seconds left, once known."""
    scale: int | None = None
    """k being trained (0 = coarsest)."""
    num_scales: int | None = None
    iteration: int | None = None
    iterations: int | None = None
    """Iterations per scale."""
    level: int | None = None
    """Patch-synthesis levels done so far (full-resolution lift, instant): k of ``levels``, counted
    over all images of the job; the job can be cancelled between levels."""
    levels: int | None = None


class PresetDetails(_Model):
    """A training preset as an artist chooses it (singan_core.config.PRESETS)."""

    name: str
    max_size: int
    """Longest side of the finest scale, pixels (larger images are shrunk to it)."""
    iterations: int
    """Training iterations per scale."""
    seconds: float | None = None
    """The daemon's cost model's time to train a ``max_size`` x ``max_size`` image (seconds), once a
    training of this preset on this daemon has calibrated it; None before."""


class ClusterInfo(_Model):
    """The Ray cluster of a daemon started with ``--ray`` (``hello``'s ``cluster``)."""

    address: str
    """The ``--ray`` address."""
    state: Literal["connected", "unreachable"]
    """unreachable: its head does not answer (or cannot be reached); no training starts, running
    ones wait (``jobs`` phase ``waiting``) and resume from their last finished scale when it answers."""
    since: float
    """Unix time of the last change of ``state``."""
    message: str | None = None
    """Why it is unreachable (one line)."""
    cpus: float = 0
    """The cluster's CPUs (0 while unreachable)."""
    gpus: float = 0


class HelloResult(_Model):
    protocol_version: int
    server_version: str
    instance: str
    """Random per daemon process: a change means the daemon restarted (job ids are gone)."""
    device: str
    """e.g. ``cpu`` or ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    device_memory_bytes: int | None
    ops: list[str]
    presets: list[str]
    preset_details: list[PresetDetails] = []
    """Each of ``presets`` with its size and iterations, in the same order."""
    limits: dict[str, int]
    auth_required: bool
    cluster: ClusterInfo | None = None
    """The Ray cluster trainings run on (``singan serve --ray``); None: they run in the daemon."""


class ModelListResult(_Model):
    models: list[ModelInfo]


class ModelResult(_Model):
    model: ModelInfo


class DeletedResult(_Model):
    deleted: ModelId


class WatchInfo(_Model):
    """The folder watch (``singan serve --watch``) since the daemon started: what it has done."""

    folder: str
    files_seen: int
    """Image files in the folder handled at least once (and not deleted or moved away since)."""
    reads: int
    """File reads: one per file version handled. A file that does not change is read once."""
    trained: int
    """Versions that started a training."""
    skipped: int
    """Versions skipped because a generative model of the same bytes exists."""
    failed: int
    """Versions that could not be read or trained (logged as warnings)."""


class JobListResult(_Model):
    jobs: list[JobInfo]
    watch: WatchInfo | None = None
    """The folder watch, or None without ``--watch``."""


class CancelResult(_Model):
    job: JobId
    cancelled: bool
    """False if the job had already finished."""


class ImagesResult(_Model):
    """Result of generate, harmonize, edit, paint2image, super_resolve, animate, instant, inpaint: the images follow as frames."""

    model: ModelId | None
    """The model used (None for instant)."""
    seconds: float
    """Compute time of the job (excluding queueing)."""
    scale: int | None = None
    """The injection scale used (harmonize, edit, paint2image) or start scale (animate)."""
    detail: Detail | None = None
    """generate: where the output's detail came from (``source``: the full-resolution lift)."""
    notice: str | None = None
    """One line for the user, e.g. that the model has no full-resolution source (lifted from its
    training image: less detail)."""


class ShutdownResult(_Model):
    shutting_down: bool = True


class Result(_Model):
    """The one final reply of a successful request."""

    type: Literal["result"] = "result"
    v: int = PROTOCOL_VERSION
    id: str
    job: JobId | None = None
    data: Union[
        HelloResult,
        ModelListResult,
        ModelResult,
        DeletedResult,
        JobListResult,
        CancelResult,
        ImagesResult,
        ShutdownResult,
    ]


class Error(_Model):
    """The final reply of a failed request or job."""

    type: Literal["error"] = "error"
    v: int = PROTOCOL_VERSION
    id: str | None
    """None when the request was too broken to read its id."""
    job: JobId | None = None
    error: ErrorInfo


Reply = Annotated[Union[Accepted, Progress, Result, Error], Field(discriminator="type")]


def json_schema() -> dict[str, Any]:
    """JSON Schema of every request and reply (``singan protocol schema``)."""
    request = TypeAdapter(Request).json_schema(ref_template="#/$defs/{model}")
    reply = TypeAdapter(Reply).json_schema(ref_template="#/$defs/{model}")
    defs = {**request.pop("$defs", {}), **reply.pop("$defs", {})}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"SinGAN Studio protocol v{PROTOCOL_VERSION}",
        "description": "Frame 0 of every message (msgpack). Images follow as raw frames, see docs/protocol.md.",
        "$defs": defs,
        "properties": {"request": request, "reply": reply},
    }
