"""The daemon requests the plugin sends, built from the artist's :class:`~.options.Options`
(parameters as in docs/protocol.md, section 5). Pixels go out as Krita's BGRA and every result is
asked for as ``BGRA``, so it goes straight back into ``Node.setPixelData``.

No ``krita`` or Qt import: tested in the project's environment.
"""

from __future__ import annotations

from .daemon_client import FILL_NOISE, VARIATION_NOISE, Image, inpaint_request, requests, synthesis_request
from .options import Options

OUTPUT_ORDER = "BGRA"


def display_name(name: str, limit: int = 60) -> str:
    """``name`` trimmed to 1..``limit`` characters (``layer`` if empty), for the daemon's ``name``."""
    return name.strip()[:limit] or "layer"


def train_params(name: str, options: Options) -> dict:
    """``train``: a new model named after the layer, with the chosen preset and padding."""
    return requests.train_params(display_name(name), options.preset, options.seamless)


def generate_params(model: dict, size: tuple[int, int], options: Options) -> dict:
    """``generate``: ``options.count`` samples of ``model`` (a ModelInfo) at ``size`` (w, h) pixels
    and ``options.feature_scale`` (output px per source px), with the source's detail (``detail:
    source``, built by the shared :func:`protocol.requests.synthesis_request`). The start scale is
    clamped to the model's finest scale; seamless asks for circular padding (a seamless tile)."""
    _, params, _ = synthesis_request(
        *size,
        model=model["id"],
        n=options.count,
        seed=options.seed,
        feature_scale=options.feature_scale,
        tile=options.seamless,
        gen_start_scale=min(options.start_scale, model["num_scales"] - 1),
        output_order=OUTPUT_ORDER,
    )
    return params


def instant_request(image: Image, size: tuple[int, int], options: Options) -> tuple[dict, list[Image]]:
    """``instant`` (params, images): ``options.count`` results of ``image`` (the selection's pixels,
    no model) at ``size`` (w, h) pixels and ``options.feature_scale`` (output px per px of
    ``image``); seamless makes seamless tiles."""
    _, params, images = synthesis_request(
        *size,
        image=image,
        n=options.count,
        seed=options.seed,
        feature_scale=options.feature_scale,
        tile=options.seamless,
        output_order=OUTPUT_ORDER,
    )
    return params, images


def fill_request(image: Image, mask: Image, options: Options) -> tuple[dict, list[Image]]:
    """``inpaint`` (params, images) for Fill selection: one result of ``image`` (the canvas around
    the selection) with the pixels under ``mask`` (the selection there, ``GRAY``) synthesised from
    the rest of it, with the noise that continues the surroundings most plainly; seed ``options.seed``."""
    _, params, images = inpaint_request(
        image, mask, n=1, seed=options.seed, noise=FILL_NOISE, output_order=OUTPUT_ORDER
    )
    return params, images


def boundary_variations_request(image: Image, mask: Image, options: Options) -> tuple[dict, list[Image]]:
    """``inpaint`` (params, images) for Quick variations inside a selection: ``options.count``
    results of ``image`` (the canvas around the selection) with the selection (``mask``)
    synthesised anew from the canvas around it, which stays fixed as their boundary; the noise
    of variations (clearly different results per seed)."""
    _, params, images = inpaint_request(
        image, mask, n=options.count, seed=options.seed, noise=VARIATION_NOISE, output_order=OUTPUT_ORDER
    )
    return params, images


HEAL_BAND = 12
"""Width (px) of the band inside a selection's border over which a trained variation is joined to
the canvas around it (:func:`join_request`)."""


def join_request(image: Image, band: Image, seed: int) -> tuple[dict, list[Image]]:
    """``inpaint`` (params, images) that joins a trained variation to the canvas around it: one
    result of ``image`` (the canvas with the variation in the selection) with ``band`` (the band
    along the selection's border, ``GRAY``) synthesised anew, with the noise that continues its
    surroundings most plainly."""
    _, params, images = inpaint_request(image, band, n=1, seed=seed, noise=FILL_NOISE, output_order=OUTPUT_ORDER)
    return params, images


def injection_params(model: dict, options: Options) -> dict:
    """``harmonize`` / ``paint2image`` with ``model`` (a ModelInfo): the chosen injection scale
    (clamped to 1..K-1) or, if None, the daemon's default."""
    return requests.injection_params(
        model["id"], model["num_scales"], seed=options.seed, output_order=OUTPUT_ORDER, scale=options.injection_scale
    )


def super_resolve_params(name: str, factor: int, options: Options) -> dict:
    """``super_resolve`` by ``factor`` (2 or 4); the daemon trains (or reuses) the image's own SR
    model with the chosen preset first."""
    return requests.super_resolve_params(display_name(name), factor, options.preset, OUTPUT_ORDER)
