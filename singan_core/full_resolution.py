"""Results at the artist's scale: full-resolution samples of a trained model, and instant results.

A SinGAN model learns its image at ``max_size`` pixels (48-256 px for the tiny/draft presets), far
below the photo the user trained from. Two ways to get output whose features have the source's
own size, at any output size:

* :func:`sample_full_resolution` ("lift"): SinGAN samples the layout at the model's scale on a
  canvas of the requested size and aspect, then the patch engine
  (:func:`singan_core.patch_synthesis.synthesize`, GPNN: Granot et al., "Drop the GAN", CVPR 2022)
  brings it up to the output size with the full-resolution source's own patches. The structure is
  SinGAN's, the detail the source's.
* :func:`instant`: the same engine from noise, no model at all (GPNN's retargeting/variations).

**Feature scale** ``feature_scale`` = s = output pixels per source pixel (1.0: a brick that is 40 px
tall in the source is 40 px tall in the output; 0.5: 20 px). Patch synthesis can only reproduce
the detail the source has, so above the source's resolution (s > 1) it runs at s = 1 (an output of
``(H / s, W / s)`` pixels) and the rest is plain antialiased bicubic upsampling (circular for tiles).

Images are (N, 3, H, W) float32 in [-1, 1]; sizes are (height, width) in pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from .config import PaddingMode
from .errors import InvalidArgument
from .model import SinGANPyramid
from .patch_synthesis import PatchSynthesisConfig, synthesize
from .pyramid import Size, resize
from .sampling import sample
from .storage import FULL_SOURCE_MAX_SIZE

__all__ = [
    "MAX_FEATURE_SCALE",
    "MAX_OUTPUT_SIDE",
    "MIN_OUTPUT_SIDE",
    "Detail",
    "LiftSource",
    "default_detail",
    "instant",
    "lift_source",
    "sample_full_resolution",
]

Detail = Literal["source", "model"]


def default_detail(has_full_source: bool, pixels: bool = True) -> Detail:
    """The ``detail`` of a request that names none: ``source`` for an output size in pixels
    (``pixels``) from a model that keeps its full-resolution source, else ``model`` (relative
    scales, and models without a source, keep the model's own detail)."""
    return "source" if pixels and has_full_source else "model"


MIN_OUTPUT_SIDE = 16  # pixels: smaller outputs hold too few 7 x 7 patches to synthesise
MAX_OUTPUT_SIDE = 8192  # pixels, per side
MAX_FEATURE_SCALE = 16.0  # output pixels per source pixel
_MAX_CANVAS_SCALE = 64.0  # the SinGAN canvas at most this many times the model's finest size (as sampling.sample)

StepCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class LiftSource:
    """Where a model's full-resolution detail comes from.

    Attributes:
        image: (1, 3, Hs, Ws) in [-1, 1]: the model's ``full_source.png``; for a model saved before
            full-resolution sources existed, its finest training image x_{K-1} upsampled (bicubic)
            back to the size of the image it was trained from (``1 / input_scale``, at most 4096 px),
            so feature scales mean the same for old and new models.
        model_px_per_source_px: (height, width) ratio of the model's finest scale to ``image`` (<= 1).
        full_resolution: False for the fallback: features come out at the right size, but with
            only the model's detail (blurrier than the source had).
    """

    image: torch.Tensor
    model_px_per_source_px: tuple[float, float]
    full_resolution: bool

    @property
    def notice(self) -> str | None:
        """One line for the user when the model has no full-resolution source, else ``None``."""
        if self.full_resolution:
            return None
        return (
            "this model was saved without its full-resolution source; detail comes from its "
            "training image at the model's resolution (retrain it for the source's full detail)"
        )


def lift_source(pyramid: SinGANPyramid, full_source: torch.Tensor | None) -> LiftSource:
    """The :class:`LiftSource` of a model.

    Args:
        pyramid: the trained pyramid.
        full_source: its full-resolution source (1, 3, Hs, Ws) in [-1, 1], as returned by
            :func:`singan_core.storage.load_full_source`, or ``None`` for a model without one
            (then the finest training image, upsampled to the trained-from size, stands in).

    Returns:
        The source on the pyramid's device with the model-to-source pixel ratio.
    """
    finest_h, finest_w = pyramid.sizes[-1]
    if full_source is None:
        factor = min(1.0 / pyramid.geometry.input_scale, FULL_SOURCE_MAX_SIZE / max(finest_h, finest_w))
        size = (max(1, round(finest_h * factor)), max(1, round(finest_w * factor)))
        image = resize(pyramid.reals[-1].detach(), size).clamp(-1, 1)
        return LiftSource(image, (finest_h / size[0], finest_w / size[1]), full_resolution=False)
    h, w = full_source.shape[-2:]
    return LiftSource(full_source.to(pyramid.device), (finest_h / h, finest_w / w), full_resolution=True)


# --------------------------------------------------------------------------- argument checks


def _check_output(width: int, height: int, feature_scale: float, n_samples: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(name, f"must be a whole number of pixels, got {value!r}")
        if not MIN_OUTPUT_SIDE <= value <= MAX_OUTPUT_SIDE:
            raise InvalidArgument(name, f"must be {MIN_OUTPUT_SIDE}..{MAX_OUTPUT_SIDE} px, got {value}")
    if (
        not (isinstance(feature_scale, (int, float)) and math.isfinite(feature_scale))
        or not 0 < feature_scale <= MAX_FEATURE_SCALE
    ):
        raise InvalidArgument(
            "feature_scale", f"must be in (0, {MAX_FEATURE_SCALE:g}] output px per source px, got {feature_scale!r}"
        )
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise InvalidArgument("n_samples", f"must be >= 1, got {n_samples!r}")


def _scaled_source(source: torch.Tensor, feature_scale: float, field: str) -> torch.Tensor:
    """``source`` resized by ``min(feature_scale, 1)`` (antialiased bicubic); it must keep a 16 px side."""
    if feature_scale >= 1.0:
        return source
    h, w = source.shape[-2:]
    size = (round(h * feature_scale), round(w * feature_scale))
    if min(size) < MIN_OUTPUT_SIDE:
        smallest = MIN_OUTPUT_SIDE / min(h, w)
        raise InvalidArgument(
            "feature_scale",
            f"{feature_scale:g} shrinks the {w}x{h} px {field} below {MIN_OUTPUT_SIDE} px; use >= {smallest:.3g}",
        )
    return resize(source, size).clamp(-1, 1)


def _synthesis_size(height: int, width: int, feature_scale: float) -> Size:
    """Where patch synthesis stops: the output size, or the source's resolution when s > 1."""
    if feature_scale <= 1.0:
        return height, width
    return max(MIN_OUTPUT_SIDE, round(height / feature_scale)), max(MIN_OUTPUT_SIDE, round(width / feature_scale))


def _at_least_patch(init: torch.Tensor, patch_size: int, target: Size) -> torch.Tensor:
    """A canvas smaller than one patch (a small output of a low-resolution model) upsampled to a
    patch on its shorter side (aspect kept, never beyond ``target``): only the lift's first level
    moves, not the feature scale."""
    h, w = init.shape[-2:]
    if min(h, w) >= patch_size:
        return init
    factor = patch_size / min(h, w)
    size = (min(target[0], math.ceil(h * factor)), min(target[1], math.ceil(w * factor)))
    return resize(init, size).clamp(-1, 1)


def _within(init: torch.Tensor, target: Size, circular: bool) -> torch.Tensor:
    """The SinGAN canvas resized down (antialiased) to fit the synthesis size ``target``.

    The canvas is ``target x model_px_per_source_px / s`` pixels: larger than the output whenever
    the model's pixels are finer than the output's (s below the model's pixels per source pixel, e.g.
    a 128 px ``draft`` model of a 256 px photo at s = 0.5, whose ``ceil``-rounded finest scale gives
    0.503 model px per source px: a 1086 px canvas for a 1080 px output). The layout is then already
    finer than the output needs; it is taken down to the output and the lift starts there."""
    h, w = init.shape[-2:]
    if h <= target[0] and w <= target[1]:
        return init
    return resize(init, (min(h, target[0]), min(w, target[1])), "circular" if circular else "zeros").clamp(-1, 1)


def _upsample(x: torch.Tensor, height: int, width: int, circular: bool) -> torch.Tensor:
    return resize(x, (height, width), "circular" if circular else "zeros").clamp(-1, 1)


def _progress(on_step: StepCallback | None, index: int, count: int) -> StepCallback | None:
    """``on_step`` for image ``index`` of ``count``: its levels counted into the whole job's."""
    if on_step is None:
        return None
    return lambda done, total: on_step(index * total + done, count * total)


# --------------------------------------------------------------------------- SinGAN + lift


def sample_full_resolution(
    pyramid: SinGANPyramid,
    source: LiftSource,
    *,
    height: int,
    width: int,
    feature_scale: float = 1.0,
    detail: Detail = "source",
    n_samples: int = 1,
    gen_start_scale: int = 0,
    seed: int = 0,
    layout_seed: int = 0,
    padding_mode: PaddingMode | None = None,
    config: PatchSynthesisConfig = PatchSynthesisConfig(),
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """Random samples of a trained model at ``width`` x ``height`` output pixels ("lift").

    ``detail="source"``: SinGAN (paper sec. 2, :func:`singan_core.sampling.sample`) runs at the
    model's finest scale on a canvas of ``(height, width) * model_px_per_source_px / s`` pixels,
    where s = ``feature_scale`` (new layouts of that size and aspect; with ``gen_start_scale`` > 0 the
    training image's layout, extended, exactly as ``sample`` does with ``scale_h``/``scale_w``). Each
    sample then initialises :func:`~singan_core.patch_synthesis.synthesize` on the source resized
    by s: the patch engine's levels run from the canvas size up to the output size, keys and values
    from the source's pyramid. For s > 1 synthesis stops at the source's resolution
    (``(height, width) / s``) and the result is upsampled (antialiased bicubic) to the output size.

    ``detail="model"``: the model-scale sample at ``width`` x ``height`` pixels
    (a canvas that many model pixels wide; features at the model's size; ``feature_scale`` is
    ignored).

    Sample i uses seed ``seed + i`` for SinGAN's noise and for the patch engine: the same call
    gives the same images.

    Args:
        pyramid: a completely trained pyramid.
        source: its :class:`LiftSource` (:func:`lift_source`).
        height, width: output size in pixels, each 16..8192.
        feature_scale: output px per source px, in (0, 16]; the source resized by it keeps at least
            16 px on its shorter side.
        detail: ``"source"`` (the source's detail) or ``"model"`` (the model's own, features at the model's size).
        n_samples: number of images (>= 1).
        gen_start_scale: first SinGAN scale given fresh noise (0 = new global layouts).
        seed: base seed.
        layout_seed: seed of the layout's new content where the canvas exceeds the training image
            (``gen_start_scale`` > 0 only).
        padding_mode: SinGAN's padding for this call (None: the model's own); ``"circular"`` makes
            a seamless tile: the layout wraps around, and so do the lift's patches.
        config: the patch engine's settings (GPNN defaults).
        on_step: ``on_step(done, total)`` after each patch-synthesis level of each sample (``total`` =
            levels x ``n_samples``); it may raise to stop between levels.

    Returns:
        (n_samples, 3, height, width) in [-1, 1], on the pyramid's device.

    Raises:
        InvalidArgument: ``width``, ``height``, ``feature_scale``, ``n_samples``, ``detail`` or
            ``gen_start_scale`` out of range (naming it), or a canvas over 64x the model's size.
        ValueError: the pyramid is not completely trained.
    """
    _check_output(width, height, feature_scale, n_samples)
    if detail not in ("source", "model"):
        raise InvalidArgument("detail", f"must be 'source' or 'model', got {detail!r}")
    finest_h, finest_w = pyramid.sizes[-1]
    if detail == "model":
        return sample(
            pyramid,
            n_samples,
            height / finest_h,
            width / finest_w,
            gen_start_scale,
            seed,
            layout_seed=layout_seed,
            padding_mode=padding_mode,
        )
    mh, mw = source.model_px_per_source_px
    scale_h, scale_w = height * mh / feature_scale / finest_h, width * mw / feature_scale / finest_w
    if max(scale_h, scale_w) > _MAX_CANVAS_SCALE:
        raise InvalidArgument(
            "feature_scale",
            f"{feature_scale:g} needs a SinGAN canvas over {_MAX_CANVAS_SCALE:g}x the model's size; use a larger feature_scale",
        )
    tile = (padding_mode or pyramid.config.net.padding_mode) == "circular"
    layouts = _layouts(pyramid, n_samples, scale_h, scale_w, gen_start_scale, seed, layout_seed, padding_mode, tile)
    values = _scaled_source(source.image, feature_scale, "source")
    target = _synthesis_size(height, width, feature_scale)
    out = []
    for i, init in enumerate(layouts):
        step = _progress(on_step, i, n_samples)
        init = _at_least_patch(_within(init[None], target, tile), config.patch_size, target)
        lifted = synthesize(values, *target, init=init, circular=tile, seed=seed + i, config=config, on_step=step)
        out.append(_upsample(lifted, height, width, circular=tile))
    return torch.cat(out)


def _layouts(
    pyramid: SinGANPyramid,
    n: int,
    scale_h: float,
    scale_w: float,
    gen_start_scale: int,
    seed: int,
    layout_seed: int,
    padding_mode: PaddingMode | None,
    tile: bool,
) -> torch.Tensor:
    """SinGAN's samples on the lift's canvas. A circular canvas whose coarsest scale is smaller than
    the generators' padding (``num_layers`` px a side: torch wraps at most once; e.g. a 64 px tile
    of a 450 px photo from a 48 px model) is sampled at the smallest size that wraps and resized
    (circular) down to the canvas: still a tile, its layout slightly finer than asked."""
    if not tile:
        return sample(
            pyramid, n, scale_h, scale_w, gen_start_scale, seed, layout_seed=layout_seed, padding_mode=padding_mode
        )
    pad = pyramid.generators[0].padding
    (h0, w0), (finest_h, finest_w) = pyramid.sizes[0], pyramid.sizes[-1]
    wrap_h, wrap_w = max(scale_h, pad / h0), max(scale_w, pad / w0)
    x = sample(pyramid, n, wrap_h, wrap_w, gen_start_scale, seed, layout_seed=layout_seed, padding_mode=padding_mode)
    canvas = (max(1, round(finest_h * scale_h)), max(1, round(finest_w * scale_w)))
    return resize(x, canvas, "circular").clamp(-1, 1)


# --------------------------------------------------------------------------- instant


def instant(
    source: torch.Tensor,
    *,
    height: int,
    width: int,
    feature_scale: float = 1.0,
    tile: bool = False,
    n_samples: int = 1,
    seed: int = 0,
    config: PatchSynthesisConfig = PatchSynthesisConfig(),
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """Variations of an image at any size with no training (GPNN, Granot et al., CVPR 2022, sec. 3).

    :func:`~singan_core.patch_synthesis.synthesize` from noise on ``source`` resized by s =
    ``feature_scale``, at ``width`` x ``height``; for s > 1 at ``(height, width) / s`` on the source
    itself, then upsampled (antialiased bicubic; circular with ``tile``). Sample i uses seed
    ``seed + i``.

    Args:
        source: the image (1, 3, Hs, Ws) in [-1, 1] (any device; the output is on it).
        height, width: output size in pixels, each 16..8192.
        feature_scale: output px per source px, in (0, 16]; the source resized by it keeps at least
            16 px on its shorter side.
        tile: a seamless tile: patches wrap around the output's edges (``circular``).
        n_samples: number of images (>= 1).
        seed: base seed.
        config: the patch engine's settings (GPNN defaults).
        on_step: ``on_step(done, total)`` after each level of each sample (``total`` = levels x
            ``n_samples``); it may raise to stop between levels.

    Returns:
        (n_samples, 3, height, width) in [-1, 1].

    Raises:
        InvalidArgument: ``source``, ``width``, ``height``, ``feature_scale`` or ``n_samples`` out of
            range, naming it.
    """
    if not isinstance(source, torch.Tensor) or source.dim() != 4 or tuple(source.shape[:2]) != (1, 3):
        shape = tuple(source.shape) if isinstance(source, torch.Tensor) else type(source).__name__
        raise InvalidArgument("source", f"must be one RGB image (1, 3, H, W), got {shape}")
    if min(source.shape[-2:]) < MIN_OUTPUT_SIDE:
        raise InvalidArgument(
            "source",
            f"must be at least {MIN_OUTPUT_SIDE}x{MIN_OUTPUT_SIDE} px, got {source.shape[-1]}x{source.shape[-2]}",
        )
    _check_output(width, height, feature_scale, n_samples)
    values = _scaled_source(source.float(), feature_scale, "source")
    target = _synthesis_size(height, width, feature_scale)
    out = []
    for i in range(n_samples):
        step = _progress(on_step, i, n_samples)
        image = synthesize(values, *target, circular=tile, seed=seed + i, config=config, on_step=step)
        out.append(_upsample(image, height, width, circular=tile))
    return torch.cat(out)
