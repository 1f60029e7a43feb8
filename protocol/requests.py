"""The parameters of the job requests both plugins send (Krita and Blender), built in one place so
that the two ask the same way (docs/protocol.md, section 5): training, injection and super-resolution
parameters, images at the artist's size, and content-aware fill.

* :func:`train_params`: a new model from an image, with a preset and padding.
* :func:`synthesis_request`: n images of width x height pixels at a feature scale (output px per
  source px), either from a trained model (``generate``, lifted to full resolution with the model's
  own source) or, before any training, from the image itself (``instant``, GPNN patch synthesis).
* :func:`injection_params`: ``harmonize`` / ``edit`` / ``paint2image`` at an injection scale.
* :func:`super_resolve_params`: ``super_resolve`` by a factor.
* :func:`inpaint_request`: content-aware fill of a masked region from the rest of the image.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .wire import Image


def train_params(name: str, preset: str, seamless: bool) -> dict[str, Any]:
    """``train``: a new model called ``name`` (1..60 characters), trained with ``preset``;
    ``seamless`` trains with circular padding (a model of seamless tiles), else zero padding."""
    return {"name": name, "preset": preset, "padding": "circular" if seamless else "zeros"}


def injection_params(
    model: str, num_scales: int, *, seed: int, output_order: str, scale: int | None = None
) -> dict[str, Any]:
    """``harmonize`` / ``edit`` / ``paint2image`` with ``model`` (of ``num_scales`` scales): the
    injection ``scale``, clamped to 1..num_scales-1, or the daemon's default when None."""
    params: dict[str, Any] = {"model": model, "seed": seed, "output_order": output_order}
    if scale is not None:
        params["scale"] = max(1, min(scale, num_scales - 1))
    return params


def super_resolve_params(name: str, factor: float, preset: str, output_order: str) -> dict[str, Any]:
    """``super_resolve`` by ``factor`` (e.g. 2 or 4); the daemon trains (or reuses) the image's own
    super-resolution model, called ``name``, with ``preset`` first."""
    return {"factor": float(factor), "preset": preset, "name": name, "output_order": output_order}


def synthesis_request(
    width: int,
    height: int,
    *,
    model: str | None = None,
    image: Image | None = None,
    n: int = 1,
    seed: int = 0,
    feature_scale: float = 1.0,
    tile: bool = False,
    gen_start_scale: int = 0,
    output_order: str = "RGB",
    plate: bool = False,
) -> tuple[str, dict[str, Any], list[Image]]:
    """(op, params, images) for n images of ``width`` x ``height`` px at ``feature_scale``.

    With ``model``: a ``generate`` with ``detail: source`` (SinGAN's layout, the source's detail;
    ``tile`` asks for circular padding, a seamless tile). Without: an ``instant`` of ``image`` (the
    frame named ``image``, any order; no model, no training). A model, when given, wins: it
    refines the instant result. ``plate``: a background plate (the photo's composition fitted to the
    height, extended to the aspect; ``feature_scale`` ignored), sent only when true.

    Raises:
        ValueError: neither ``model`` nor ``image`` is given.
    """
    if model is not None:
        params: dict[str, Any] = {
            "model": model,
            "n": n,
            "seed": seed,
            "width": width,
            "height": height,
            "feature_scale": feature_scale,
            "detail": "source",
            "gen_start_scale": gen_start_scale,
            "output_order": output_order,
        }
        if tile:
            params["padding"] = "circular"
        if plate:
            params["plate"] = True
        return "generate", params, []
    if image is None:
        raise ValueError("synthesis_request: give a model or an image")
    params = {
        "n": n,
        "seed": seed,
        "width": width,
        "height": height,
        "feature_scale": feature_scale,
        "tile": tile,
        "output_order": output_order,
    }
    if plate:
        params["plate"] = True
    return "instant", params, [replace(image, name="image")]


FILL_NOISE = 0.25
"""``inpaint``'s noise for removing an object: the hole continues its surroundings most plainly."""
VARIATION_NOISE = 1.0
"""``inpaint``'s noise for variations inside a selection: clearly different results per seed."""


def inpaint_request(
    image: Image,
    mask: Image,
    *,
    n: int = 1,
    seed: int = 0,
    noise: float = FILL_NOISE,
    output_order: str = "RGB",
) -> tuple[str, dict[str, Any], list[Image]]:
    """(op, params, images) of an ``inpaint``: n results of ``image`` with the pixels where ``mask``
    (same size; ``GRAY`` 255 = to synthesise, or any order whose alpha or luminance is over 50 %)
    synthesised from the rest of ``image``, which stays fixed as their boundary (content-aware fill;
    a variation that meets the canvas around a selection with no seam). ``noise``:
    :data:`FILL_NOISE` to remove an object, :data:`VARIATION_NOISE` for variations.

    Raises:
        ValueError: ``mask`` and ``image`` differ in size.
    """
    if (mask.width, mask.height) != (image.width, image.height):
        raise ValueError(
            f"inpaint_request: the mask is {mask.width}x{mask.height} px, the image {image.width}x{image.height} px"
        )
    params = {"n": n, "seed": seed, "noise": noise, "output_order": output_order}
    return "inpaint", params, [replace(image, name="image"), replace(mask, name="mask")]
