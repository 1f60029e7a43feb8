"""The interactive job ops on a loaded model: wire parameters and images in, wire images out.

Each function takes the loaded model (:class:`~daemon.cache.LoadedModel`; ``instant`` and ``inpaint`` none), the
validated params (:mod:`protocol.schema`) and the request's images by name, and returns an
:class:`OpResult`. The method lives in :mod:`singan_core`; this only converts and checks output
sizes against the protocol limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from protocol.schema import MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, MAX_OUTPUT_PIXELS, MIN_OUTPUT_SIDE
from protocol.errors import ProtocolError
from protocol.wire import Image
from singan_core import animation, editing, harmonization, paint
from singan_core.errors import InvalidArgument
from singan_core.fill import fill
from singan_core.full_resolution import instant as instant_images
from singan_core.full_resolution import MIN_OUTPUT_SIDE as MIN_LIFTED_SIDE
from singan_core.full_resolution import default_detail, sample_full_resolution
from singan_core.model import SinGANPyramid
from singan_core.plates import instant_plate, trained_plate
from singan_core.sampling import sample
from singan_core.storage import full_source_image

from .budget import MemoryBudget, output_cost
from .cache import LoadedModel
from .images import from_tensor, to_mask, to_tensor


@dataclass(frozen=True)
class OpResult:
    """What an op returns: its images, the scale used (or None), where generate's detail came
    from (``source`` | ``model``, or None), and a one-line notice for the user (or None)."""

    images: list[Image]
    scale: int | None = None
    detail: str | None = None
    notice: str | None = None


MAX_OUTPUT_SCALE = 64
"""Largest output size relative to the model (per side), as :func:`singan_core.sampling.sample` allows."""
Step = Callable[[int, int], None]
"""``on_step(done, total)`` after each scale (SinGAN) or level (patch synthesis); it may raise to
stop the op there."""


def check_output(
    n: int, height: int, width: int, count_field: str, size_field: str | None = None, budget: MemoryBudget | None = None
) -> None:
    """Raise ``too_large`` if ``n`` images of height x width pixels exceed the protocol limits
    (:data:`~protocol.schema.MAX_IMAGE_SIDE` px a side and :data:`~protocol.schema.MAX_IMAGE_PIXELS`
    per image, :data:`~protocol.schema.MAX_OUTPUT_PIXELS` per reply) or, with ``budget``, the
    working memory its work half allows (:func:`~daemon.budget.output_cost`). One image over its
    limits is blamed on ``size_field`` (the field that sets its size), too many in all on ``count_field``."""
    if max(height, width) > MAX_IMAGE_SIDE or height * width > MAX_IMAGE_PIXELS:
        field = size_field or count_field
        raise ProtocolError(
            f"{field}: one {width}x{height} px image is over the limit ({MAX_IMAGE_SIDE} px a side, "
            f"{MAX_IMAGE_PIXELS} px = {MAX_IMAGE_PIXELS // 2**20} Mi px per image)",
            field,
            "too_large",
        )
    if n * height * width > MAX_OUTPUT_PIXELS:
        raise ProtocolError(
            f"{count_field}: {n} x {width}x{height} px is over the limit of {MAX_OUTPUT_PIXELS} px "
            f"({MAX_OUTPUT_PIXELS // 2**20} Mi px) per reply",
            count_field,
            "too_large",
        )
    if budget is not None:
        one_too_many = output_cost(1, height, width) > budget.work
        budget.check_work(output_cost(n, height, width), (size_field or count_field) if one_too_many else count_field)


def output_scales(pyramid: SinGANPyramid, params: Any) -> tuple[float, float]:
    """(scale_h, scale_w) of a generate request: from width/height in pixels if given (one of them
    keeps the training aspect), else the relative scales."""
    h, w = pyramid.sizes[-1]
    if params.width is None and params.height is None:
        return params.scale_h, params.scale_w
    scale_w = params.width / w if params.width is not None else params.height / h
    scale_h = params.height / h if params.height is not None else scale_w
    return scale_h, scale_w


def _size_field(params: Any, width: bool) -> str:
    """The generate field that sets the output's width (``width=True``) or height: ``width`` /
    ``height`` if either was given, else ``scale_w`` / ``scale_h``."""
    if params.width is not None or params.height is not None:
        given = "width" if (width and params.width is not None) or params.height is None else "height"
        return f"params.{given}"
    return "params.scale_w" if width else "params.scale_h"


def generate(
    model: LoadedModel,
    params: Any,
    images: dict[str, Image],
    on_step: Step | None = None,
    on_level: Step | None = None,
    budget: MemoryBudget | None = None,
) -> OpResult:
    """Random samples (paper sec. 2); with ``detail: source`` lifted to the output size with the
    full-resolution source's detail (:func:`~singan_core.full_resolution.sample_full_resolution`)."""
    pyramid = model.pyramid
    if params.plate or _detail(model, params) == "source":
        return _generate_lifted(model, params, on_level, budget)
    scale_h, scale_w = output_scales(pyramid, params)
    h, w = pyramid.sizes[-1]
    for scale, is_width in ((scale_w, True), (scale_h, False)):
        if scale > MAX_OUTPUT_SCALE:
            field = _size_field(params, is_width)
            raise ProtocolError(
                f"{field}: the output would be {scale:.3g} x the model's {'width' if is_width else 'height'} "
                f"({w if is_width else h} px); at most {MAX_OUTPUT_SCALE} x",
                field,
                "too_large",
            )
    out_h, out_w = round(h * scale_h), round(w * scale_w)
    if min(out_h, out_w) < MIN_OUTPUT_SIDE:
        field = _size_field(params, out_w < MIN_OUTPUT_SIDE)
        raise ProtocolError(
            f"{field}: the output would be {out_w}x{out_h} px; at least {MIN_OUTPUT_SIDE} px a side", field
        )
    check_output(params.n, out_h, out_w, "params.n", _size_field(params, out_w >= out_h), budget)
    samples = sample(
        pyramid,
        params.n,
        scale_h,
        scale_w,
        params.gen_start_scale,
        params.seed,
        on_step=on_step,
        padding_mode=params.padding,
    )
    return OpResult([from_tensor(x, "sample", params.output_order) for x in samples], detail="model")


def _detail(model: LoadedModel, params: Any) -> str:
    """The request's ``detail``, or its default: ``source`` for a size in pixels from a model that
    keeps its full-resolution source, else ``model`` (old clients' relative scales unchanged)."""
    if params.detail is not None:
        return params.detail
    return default_detail(model.has_full_source, pixels=params.width is not None or params.height is not None)


def _lifted_size(source_hw: tuple[int, int], params: Any) -> tuple[int, int]:
    """(height, width) of a lifted generate: width/height in pixels (one alone keeps the source's
    aspect), else the source's size times scale_h/scale_w."""
    sh, sw = source_hw
    if params.width is None and params.height is None:
        return round(sh * params.scale_h), round(sw * params.scale_w)
    width = params.width if params.width is not None else round(params.height * sw / sh)
    height = params.height if params.height is not None else round(params.width * sh / sw)
    return height, width


def _generate_lifted(model: LoadedModel, params: Any, on_level: Step | None, budget: MemoryBudget | None) -> OpResult:
    pyramid, source = model.pyramid, model.source
    out_h, out_w = _lifted_size(tuple(source.image.shape[-2:]), params)
    size_field = _size_field(params, out_w >= out_h)
    if min(out_h, out_w) < MIN_LIFTED_SIDE:
        raise ProtocolError(
            f"{size_field}: the output would be {out_w}x{out_h} px; at least {MIN_LIFTED_SIDE} px a side with detail: source",
            size_field,
        )
    check_output(params.n, out_h, out_w, "params.n", size_field, budget)
    if params.plate:
        samples = trained_plate(
            pyramid,
            source,
            out_w,
            out_h,
            gen_start_scale=min(max(1, params.gen_start_scale), pyramid.num_scales - 1),
            n_samples=params.n,
            seed=params.seed,
            on_step=on_level,
        )
        return OpResult(
            [from_tensor(x, "sample", params.output_order) for x in samples], detail="source", notice=source.notice
        )
    samples = sample_full_resolution(
        pyramid,
        source,
        height=out_h,
        width=out_w,
        feature_scale=params.feature_scale,
        n_samples=params.n,
        gen_start_scale=params.gen_start_scale,
        seed=params.seed,
        padding_mode=params.padding,
        on_step=on_level,
    )
    return OpResult(
        [from_tensor(x, "sample", params.output_order) for x in samples], detail="source", notice=source.notice
    )


def instant(
    params: Any, images: dict[str, Image], on_level: Step | None = None, budget: MemoryBudget | None = None
) -> OpResult:
    """Variations of the request's ``image`` with no model (GPNN patch synthesis from noise, see
    :func:`singan_core.full_resolution.instant`): n images of width x height pixels (default: the
    input's size x ``feature_scale``, or the given side with the input's aspect)."""
    source = full_source_image(to_tensor(images["image"]))  # longest side capped at 4096 px, as a model's source
    ih, iw = images["image"].height, images["image"].width
    width, height = params.width, params.height
    if width is None and height is None:
        width, height = round(iw * params.feature_scale), round(ih * params.feature_scale)
    elif width is None:
        width = round(height * iw / ih)
    elif height is None:
        height = round(width * ih / iw)
    field = "params.width" if params.width is not None or params.height is None else "params.height"
    if min(width, height) < MIN_LIFTED_SIDE:
        raise ProtocolError(
            f"{field}: the output would be {width}x{height} px; at least {MIN_LIFTED_SIDE} px a side", field
        )
    check_output(params.n, height, width, "params.n", field, budget)
    if params.plate:
        if params.tile:
            raise ProtocolError(
                "params.tile: a plate cannot be a seamless tile; set plate or tile, not both", "params.tile"
            )
        out = instant_plate(source, width, height, n_samples=params.n, seed=params.seed, on_step=on_level)
        return OpResult([from_tensor(x, "sample", params.output_order) for x in out])
    # feature scale relative to the frame as sent (the cap may have shrunk the source)
    scale = params.feature_scale * iw / source.shape[-1]
    out = instant_images(
        source,
        height=height,
        width=width,
        feature_scale=scale,
        tile=params.tile,
        n_samples=params.n,
        seed=params.seed,
        on_step=on_level,
    )
    return OpResult([from_tensor(x, "sample", params.output_order) for x in out])


def inpaint(
    params: Any, images: dict[str, Image], on_level: Step | None = None, budget: MemoryBudget | None = None
) -> OpResult:
    """Content-aware fill (:func:`singan_core.fill`: GPNN's conditional inpainting, membrane cloning): n results
    of the request's ``image`` with the pixels under ``mask`` synthesised from the rest of it and
    everything else kept; result i uses seed ``seed + i``. The alpha of an RGBA/BGRA result is the
    synthesised region.

    Raises:
        ProtocolError: ``images`` when the mask's size differs from the image's, or when it is empty
            or leaves no whole patch of the image outside it; ``too_large`` over the output limits.
    """
    image, mask = images["image"], images["mask"]
    if (mask.width, mask.height) != (image.width, image.height):
        raise ProtocolError(
            f"images: the mask is {mask.width}x{mask.height} px, the image {image.width}x{image.height} px; "
            "they must be the same size",
            "images",
        )
    check_output(params.n, image.height, image.width, "params.n", budget=budget)
    source, hole = to_tensor(image), to_mask(mask)
    out = []
    for i in range(params.n):
        step = None if on_level is None else (lambda done, total, i=i: on_level(i * total + done, params.n * total))
        try:
            result = fill(source, hole.float(), seed=params.seed + i, noise_sigma=params.noise, on_step=step)
        except InvalidArgument as exc:
            if exc.field != "mask":
                raise
            raise ProtocolError(f"images: the mask {exc.message}", "images") from None
        out.append(from_tensor(result, "image", params.output_order, hole))
    return OpResult(out)


def harmonize(pyramid: SinGANPyramid, params: Any, images: dict[str, Image]) -> OpResult:
    result = harmonization.harmonize(
        pyramid,
        to_tensor(images["image"]),
        to_mask(images["mask"]),
        params.scale,
        method=params.method,
        strength=params.strength,
        noise=params.noise,
        seed=params.seed,
    )
    return OpResult([from_tensor(result.image, "image", params.output_order, result.weight > 0)], result.scale)


def edit(pyramid: SinGANPyramid, params: Any, images: dict[str, Image]) -> OpResult:
    result = editing.edit(
        pyramid,
        to_tensor(images["image"]),
        to_mask(images["mask"]),
        params.scale,
        method=params.method,
        noise=params.noise,
        seed=params.seed,
    )
    order = params.output_order
    region = result.weight > 0
    return OpResult(
        [from_tensor(result.image, "image", order, region), from_tensor(result.unmasked, "unmasked", order)],
        result.scale,
    )


def paint2image(pyramid: SinGANPyramid, params: Any, images: dict[str, Image]) -> OpResult:
    scale = paint.default_scale(pyramid) if params.scale is None else params.scale
    image = paint.paint_to_image(
        pyramid,
        to_tensor(images["image"]),
        scale,
        quantize=params.quantize,
        n_colors=params.colors,
        noise=params.noise,
        seed=params.seed,
    )
    return OpResult([from_tensor(image, "image", params.output_order)], scale)


def animate(
    pyramid: SinGANPyramid,
    params: Any,
    images: dict[str, Image],
    on_step: Step | None = None,
    budget: MemoryBudget | None = None,
) -> OpResult:
    h, w = pyramid.sizes[-1]
    check_output(params.frames, h, w, "params.frames", budget=budget)
    start = animation.default_start_scale(pyramid) if params.start_scale is None else params.start_scale
    frames = animation.animate(
        pyramid, params.frames, start, alpha=params.alpha, beta=params.beta, seed=params.seed, on_step=on_step
    )
    return OpResult([from_tensor(x, "frame", params.output_order) for x in frames], start)


INTERACTIVE: dict[str, Callable[[SinGANPyramid, Any, dict[str, Image]], OpResult]] = {
    "harmonize": harmonize,
    "edit": edit,
    "paint2image": paint2image,
}
"""One pass of the generators at the model's own pixel count, whatever the input's size: short."""


@torch.no_grad()
def run_interactive(
    op: str,
    model: LoadedModel | None,
    params: Any,
    images: dict[str, Image],
    on_step: Step | None = None,
    on_level: Step | None = None,
    budget: MemoryBudget | None = None,
) -> OpResult:
    """Run an interactive op. ``on_step`` is called between the scales of a model-scale
    ``generate``, ``on_level`` between the patch-synthesis levels of a lifted ``generate`` and of
    ``instant`` and ``inpaint`` (whose cost grows with the output size), and between the frame batches of
    ``animate``; harmonize, edit and paint2image run one pass at the model's own pixel count.
    ``model`` is None for ``instant`` and ``inpaint``. With ``budget``, outputs are costed before any work
    (:func:`check_output`).

    Raises ``ValueError`` (from the core: out-of-range scale, mask size; ModelLoadError for a
    damaged full-resolution source), :class:`ProtocolError`, or whatever the callbacks raise."""
    if op == "instant":
        return instant(params, images, on_level, budget)
    if op == "inpaint":
        return inpaint(params, images, on_level, budget)
    assert model is not None
    if op == "generate":
        return generate(model, params, images, on_step, on_level, budget)
    if op == "animate":
        return animate(model.pyramid, params, images, on_step, budget)
    return INTERACTIVE[op](model.pyramid, params, images)
