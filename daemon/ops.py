"""The interactive job ops on a loaded pyramid: wire parameters and images in, wire images out.

Each function takes the ready pyramid, the validated params (:mod:`protocol.schema`) and the
request's images by name, and returns (output images, the scale used or None). The method lives
in :mod:`singan_core`; this only converts and checks output sizes against the protocol limits.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from protocol.schema import MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, MAX_OUTPUT_PIXELS, MIN_OUTPUT_SIDE
from protocol.wire import Image, ProtocolError
from singan_core import animation, editing, harmonization, paint
from singan_core.model import SinGANPyramid
from singan_core.sampling import sample

from .images import from_tensor, to_mask, to_tensor

OpResult = tuple[list[Image], int | None]
MAX_OUTPUT_SCALE = 64
"""Largest output size relative to the model (per side), as :func:`singan_core.sampling.sample` allows."""
Step = Callable[[int, int], None]
"""``on_step(done, total)`` after each scale; it may raise to stop the op between scales."""


def check_output(n: int, height: int, width: int, count_field: str, size_field: str | None = None) -> None:
    """Raise ``too_large`` if ``n`` images of height x width pixels exceed the protocol limits
    (:data:`~protocol.schema.MAX_IMAGE_SIDE` px a side and :data:`~protocol.schema.MAX_IMAGE_PIXELS`
    per image, :data:`~protocol.schema.MAX_OUTPUT_PIXELS` per reply). One image over its limits is
    blamed on ``size_field`` (the field that sets its size), too many pixels in all on ``count_field``."""
    if max(height, width) > MAX_IMAGE_SIDE or height * width > MAX_IMAGE_PIXELS:
        field = size_field or count_field
        raise ProtocolError(
            f"{field}: one {width}x{height} px image is over the limit ({MAX_IMAGE_SIDE} px a side, "
            f"{MAX_IMAGE_PIXELS} px = {MAX_IMAGE_PIXELS // 2**20} Mi px per image)", field, "too_large",
        )
    if n * height * width > MAX_OUTPUT_PIXELS:
        raise ProtocolError(
            f"{count_field}: {n} x {width}x{height} px is over the limit of {MAX_OUTPUT_PIXELS} px "
            f"({MAX_OUTPUT_PIXELS // 2**20} Mi px) per reply", count_field, "too_large",
        )


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


def generate(pyramid: SinGANPyramid, params: Any, images: dict[str, Image], on_step: Step | None = None) -> OpResult:
    scale_h, scale_w = output_scales(pyramid, params)
    h, w = pyramid.sizes[-1]
    for scale, is_width in ((scale_w, True), (scale_h, False)):
        if scale > MAX_OUTPUT_SCALE:
            field = _size_field(params, is_width)
            raise ProtocolError(
                f"{field}: the output would be {scale:.3g} x the model's {'width' if is_width else 'height'} "
                f"({w if is_width else h} px); at most {MAX_OUTPUT_SCALE} x", field, "too_large")
    out_h, out_w = round(h * scale_h), round(w * scale_w)
    if min(out_h, out_w) < MIN_OUTPUT_SIDE:
        field = _size_field(params, out_w < MIN_OUTPUT_SIDE)
        raise ProtocolError(f"{field}: the output would be {out_w}x{out_h} px; at least {MIN_OUTPUT_SIDE} px a side", field)
    check_output(params.n, out_h, out_w, "params.n", _size_field(params, out_w >= out_h))
    samples = sample(pyramid, params.n, scale_h, scale_w, params.gen_start_scale, params.seed, on_step=on_step, padding_mode=params.padding)
    return [from_tensor(x, "sample", params.output_order) for x in samples], None


def harmonize(pyramid: SinGANPyramid, params: Any, images: dict[str, Image]) -> OpResult:
    result = harmonization.harmonize(
        pyramid, to_tensor(images["image"]), to_mask(images["mask"]), params.scale, noise=params.noise, seed=params.seed,
    )
    return [from_tensor(result.image, "image", params.output_order, result.weight > 0)], result.scale


def edit(pyramid: SinGANPyramid, params: Any, images: dict[str, Image]) -> OpResult:
    result = editing.edit(
        pyramid, to_tensor(images["image"]), to_mask(images["mask"]), params.scale, noise=params.noise, seed=params.seed,
    )
    order = params.output_order
    region = result.weight > 0
    return [from_tensor(result.image, "image", order, region), from_tensor(result.unmasked, "unmasked", order)], result.scale


def paint2image(pyramid: SinGANPyramid, params: Any, images: dict[str, Image]) -> OpResult:
    scale = paint.default_scale(pyramid) if params.scale is None else params.scale
    image = paint.paint_to_image(
        pyramid, to_tensor(images["image"]), scale, quantize=params.quantize, n_colors=params.colors,
        noise=params.noise, seed=params.seed,
    )
    return [from_tensor(image, "image", params.output_order)], scale


def animate(pyramid: SinGANPyramid, params: Any, images: dict[str, Image]) -> OpResult:
    h, w = pyramid.sizes[-1]
    check_output(params.frames, h, w, "params.frames")
    start = animation.default_start_scale(pyramid) if params.start_scale is None else params.start_scale
    frames = animation.animate(pyramid, params.frames, start, alpha=params.alpha, beta=params.beta, seed=params.seed)
    return [from_tensor(x, "frame", params.output_order) for x in frames], start


INTERACTIVE: dict[str, Callable[[SinGANPyramid, Any, dict[str, Image]], OpResult]] = {
    "generate": generate,
    "harmonize": harmonize,
    "edit": edit,
    "paint2image": paint2image,
    "animate": animate,
}


@torch.no_grad()
def run_interactive(op: str, pyramid: SinGANPyramid, params: Any, images: dict[str, Image], on_step: Step | None = None) -> OpResult:
    """Run an interactive op. ``on_step`` is called between the scales of ``generate`` (whose cost
    grows with the output size; the other ops run one pass at the input's size).

    Raises ``ValueError`` (from the core: out-of-range scale, mask size), :class:`ProtocolError`,
    or whatever ``on_step`` raises."""
    if op == "generate":
        return generate(pyramid, params, images, on_step)
    return INTERACTIVE[op](pyramid, params, images)
