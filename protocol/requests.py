"""Requests for images at the artist's size, shared by the Krita and Blender plugins (issue 13).

A plugin asks for n images of width x height pixels at a feature scale (output px per source px)
either from a trained model (``generate``, lifted to full resolution with the model's own source)
or, before any training, from the image itself (``instant``, GPNN patch synthesis). One function
builds both, so the two plugins ask the same way.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .wire import Image


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
    height, extended to the aspect; ``feature_scale`` ignored; issue 28), sent only when true.

    Raises:
        ValueError: neither ``model`` nor ``image`` is given.
    """
    if model is not None:
        params: dict[str, Any] = {
            "model": model, "n": n, "seed": seed, "width": width, "height": height, "feature_scale": feature_scale,
            "detail": "source", "gen_start_scale": gen_start_scale, "output_order": output_order,
        }
        if tile:
            params["padding"] = "circular"
        if plate:
            params["plate"] = True
        return "generate", params, []
    if image is None:
        raise ValueError("synthesis_request: give a model or an image")
    params = {"n": n, "seed": seed, "width": width, "height": height, "feature_scale": feature_scale,
              "tile": tile, "output_order": output_order}
    if plate:
        params["plate"] = True
    return "instant", params, [replace(image, name="image")]
