"""Background plates: a photo's composition at a render's size and aspect.

A photographer's plate keeps the scene's layout: sky on top, the horizon at its height, the ground
below. A plate of ``width`` x ``height`` pixels from a photo of ``Hs`` x ``Ws`` pixels:

1. **Fitted layout.** The photo's height is fitted to the plate's: the plate shows the photo at
   f = ``height / Hs`` output px per photo px, and the plate's aspect is reached by new content at
   the sides (or by cropping them, for a plate narrower than the photo).
2. **Retargeting at the photo's scale.** At ``min(f, 1)`` (the photo's own pixels, or the plate's
   when the photo is larger) the canvas ``(h, h x width / height)`` is synthesised from the photo's
   patches. *Instant* (no model): GPNN's retargeting (Granot et al., "Drop the GAN", CVPR 2022,
   sec. 4): the coarsest level is the photo resized to the canvas's height, its sides extended with
   its edge columns, plus noise (weak on the photo's part, stronger at the sides), and patch synthesis (:func:`singan_core.patch_synthesis.synthesize`)
   fills them with the photo's content, coarse to fine. *Trained*: SinGAN's retargeting by
   injection (Shaham et al., ICCV 2019, sec. 4): the canvas at the model's scale, generated from
   ``gen_start_scale >= 1`` on with the photo injected at the scale below (resized, its sides
   extended as the instant plate's) and fresh noise at the sides only (:func:`trained_plate`),
   then lifted to the photo's resolution by patch synthesis from the photo, as the full-resolution
   lift does (:mod:`singan_core.full_resolution`).
3. **Detail at the plate's resolution.** Where the plate is larger than the photo (f > 1), the
   canvas is enlarged by one patch-synthesis level (:func:`detail_pass`) whose queries are the
   canvas upsampled, its keys the canvas blurred by the same factor (down and up), its values the
   canvas sharp: the canvas's own patches, at the photo's scale, paint the detail (the local
   self-examples of Freedman and Fattal, "Image and video upscaling from local self-examples",
   ACM TOG 2011), not bicubic stretching. The detail keeps the photo's size (grain, dots, rock
   texture as in the photo) while the layout is f times larger.

Feature scale (:mod:`singan_core.full_resolution`) stays for textures; a plate's scale is the fit.

Images are (N, 3, H, W) float32 in [-1, 1]; sizes are (height, width) in pixels.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from .errors import InvalidArgument
from .full_resolution import MAX_OUTPUT_SIDE, MIN_OUTPUT_SIDE, LiftSource
from .model import SinGANPyramid
from .patch_synthesis import PatchSynthesisConfig, level_sizes, synthesize
from .pyramid import Size, resize
from .sampling import draw_noise, generate, sample_sizes

__all__ = [
    "LAYOUT_NOISE",
    "PROGRESS_UNITS",
    "SIDE_NOISE",
    "detail_pass",
    "instant_plate",
    "plate_canvas",
    "trained_plate",
]

StepCallback = Callable[[int, int], None]
LAYOUT_NOISE = 0.15  # std of the noise on the photo's part of the coarsest level ([-1, 1] units); GPNN's 1.0
# there broke seascape's composition (cliffs in the sky, the sea mixed with clouds); 0.15 keeps it
SIDE_NOISE = 0.5  # std of the noise on the extended sides: new content there (sailboats, more sea on seascape)


def plate_canvas(source_hw: Size, width: int, height: int) -> Size:
    """(h, w) of the retargeting canvas: the plate's aspect at the photo's scale, capped at the plate.

    ``h = min(Hs, height)``, ``w = round(h x width / height)`` (pixels)."""
    h = min(source_hw[0], height)
    return h, max(MIN_OUTPUT_SIDE, round(h * width / height))


def _check(source: torch.Tensor, width: int, height: int, n_samples: int) -> None:
    if not isinstance(source, torch.Tensor) or source.dim() != 4 or tuple(source.shape[:2]) != (1, 3):
        shape = tuple(source.shape) if isinstance(source, torch.Tensor) else type(source).__name__
        raise InvalidArgument("source", f"must be one RGB image (1, 3, H, W), got {shape}")
    if min(source.shape[-2:]) < MIN_OUTPUT_SIDE:
        raise InvalidArgument(
            "source",
            f"must be at least {MIN_OUTPUT_SIDE}x{MIN_OUTPUT_SIDE} px, got {source.shape[-1]}x{source.shape[-2]}",
        )
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(name, f"must be a whole number of pixels, got {value!r}")
        if not MIN_OUTPUT_SIDE <= value <= MAX_OUTPUT_SIDE:
            raise InvalidArgument(name, f"must be {MIN_OUTPUT_SIDE}..{MAX_OUTPUT_SIDE} px, got {value}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise InvalidArgument("n_samples", f"must be >= 1, got {n_samples!r}")


def _fitted(source: torch.Tensor, h: int) -> torch.Tensor:
    """The photo at ``h`` px height, aspect kept (antialiased bicubic; unchanged at its own height)."""
    hs, ws = source.shape[-2:]
    return resize(source, (h, max(MIN_OUTPUT_SIDE, round(ws * h / hs)))).clamp(-1, 1)


def _extended(photo: torch.Tensor, size: Size, seed: int) -> torch.Tensor:
    """``photo`` (1, 3, h, wp) at height h centred on a (h, w) canvas, the sides beyond it repeating
    its edge columns (a narrower canvas: its centre crop), plus N(0, SIDE_NOISE^2) noise on the
    sides (new content there) and N(0, LAYOUT_NOISE^2) on the photo's part (the seeds differ, the
    composition stays)."""
    w, wp = size[1], photo.shape[-1]
    sides = torch.zeros(1, 1, 1, w, device=photo.device)
    if w <= wp:
        left = (wp - w) // 2
        canvas = photo[..., left : left + w]
    else:
        left = (w - wp) // 2
        canvas = torch.nn.functional.pad(photo, (left, w - wp - left, 0, 0), mode="replicate")
        sides[..., :left] = sides[..., left + wp :] = 1
    noise = torch.randn(canvas.shape, generator=torch.Generator().manual_seed(seed)).to(photo.device)
    return canvas + (LAYOUT_NOISE + (SIDE_NOISE - LAYOUT_NOISE) * sides) * noise


def _coarsest(canvas: Size, photo_h: int, config: PatchSynthesisConfig) -> Size:
    """The coarsest level of the retargeting: ``coarsest_size`` px on the photo's smaller side."""
    f = min(1.0, config.coarsest_size / photo_h)
    return max(config.patch_size, round(canvas[0] * f)), max(config.patch_size, round(canvas[1] * f))


MAX_DETAIL_STEP = 10.0  # largest enlargement of one detail pass (PatchSynthesisConfig.ratio >= 0.1)


def detail_pass(
    image: torch.Tensor,
    height: int,
    width: int,
    *,
    seed: int = 0,
    config: PatchSynthesisConfig = PatchSynthesisConfig(),
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """``image`` enlarged to ``height`` x ``width`` with detail from its own patches at its own scale
    (step 3 of the module docstring).

    One :func:`~singan_core.patch_synthesis.synthesize` level at the output size with ``source`` =
    ``image`` (its pixel scale is the output's: its 7 x 7 patches keep their size) and ``init`` =
    ``image``: the first iteration matches the queries (the image upsampled) against the source
    blurred by the same factor (down and up) and pastes the matching sharp patches (Freedman and
    Fattal 2011); later iterations make the overlapping patches agree. The engine's ``ratio`` is
    set to 0.1 so that the whole enlargement (up to 10x; a larger one starts from the image
    bicubic-enlarged to a tenth of the output, as the queries' layout only) is one level: finer
    steps would take the source down with the output and lose its detail.

    Args:
        image: (1, 3, h, w) in [-1, 1], no larger than the output (an equal size returns it).
        height, width: output size in pixels (the image's aspect, up to rounding).
        seed: the patch engine's seed.
        config: the patch engine's settings (``ratio`` is replaced).
        on_step: ``on_step(1, 1)`` when done; it may raise.

    Returns:
        (1, 3, height, width) in [-1, 1].
    """
    h, w = image.shape[-2:]
    if (h, w) == (height, width):
        return image
    init = image
    if h * MAX_DETAIL_STEP < height or w * MAX_DETAIL_STEP < width:
        init = resize(image, (math.ceil(height / MAX_DETAIL_STEP), math.ceil(width / MAX_DETAIL_STEP))).clamp(-1, 1)
    one_level = dataclasses.replace(config, ratio=1 / MAX_DETAIL_STEP)
    return synthesize(image, height, width, init=init, seed=seed, config=one_level, on_step=on_step)


PROGRESS_UNITS = 100
"""Work units of one plate in its ``on_step(done, total)`` reports (``total`` = 100 x plates)."""


class _Progress:
    """One ``on_step(done, total)`` over a plate's stages (SinGAN's scales, patch-synthesis levels,
    the detail pass), in work units: each step's share of the plates' work is its output pixels
    over all steps' (patch synthesis costs about the same per output pixel at every level), so the
    report grows with the time spent; the detail pass at the plate's size, most of the work, is
    no longer one step of six that starts at 83 %."""

    def __init__(self, on_step: StepCallback | None, costs: list[float], n_samples: int):
        self.on_step, self.total = on_step, PROGRESS_UNITS * n_samples
        every = costs * n_samples
        self._cumulative = [sum(every[: i + 1]) / sum(every) for i in range(len(every))]
        self.done = 0  # steps done

    def stage(self) -> StepCallback | None:
        on_step = self.on_step
        if on_step is None:
            return None
        base = self.done

        def step(done: int, total: int) -> None:
            self.done = min(base + done, len(self._cumulative))
            on_step(round(self.total * self._cumulative[self.done - 1]), self.total)

        return step


def _pixels(sizes: list[Size]) -> list[float]:
    return [float(h * w) for h, w in sizes]


def instant_plate(
    source: torch.Tensor,
    width: int,
    height: int,
    *,
    n_samples: int = 1,
    seed: int = 0,
    config: PatchSynthesisConfig = PatchSynthesisConfig(),
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """Plates from a photo with no model: GPNN retargeting, then self-example upscaling (see module).

    Sample i uses seed ``seed + i`` (the coarsest level's noise and the patch engine).

    Args:
        source: the photo (1, 3, Hs, Ws) in [-1, 1], at least 16 px a side.
        width, height: plate size in pixels, each 16..8192.
        n_samples: number of plates (>= 1).
        seed: base seed.
        config: the patch engine's settings (GPNN defaults).
        on_step: ``on_step(done, total)`` after each level and step of each plate, in work units
            (``total`` = :data:`PROGRESS_UNITS` x ``n_samples``; each step's share is its output
            pixels' share, see :class:`_Progress`); may raise to stop.

    Returns:
        (n_samples, 3, height, width) in [-1, 1].

    Raises:
        InvalidArgument: ``source``, ``width``, ``height`` or ``n_samples`` out of range, naming it.
    """
    _check(source, width, height, n_samples)
    source = source.float()
    canvas = plate_canvas((source.shape[-2], source.shape[-1]), width, height)
    photo = _fitted(source, canvas[0])
    start = _coarsest(canvas, canvas[0], config)
    steps = level_sizes(start, canvas, config.ratio) + ([(height, width)] if canvas != (height, width) else [])
    progress = _Progress(on_step, _pixels(steps), n_samples)
    out = []
    for i in range(n_samples):
        init = _extended(_fitted(source, start[0]), start, seed + i).clamp(-1, 1)
        x = synthesize(photo, *canvas, init=init, seed=seed + i, config=config, on_step=progress.stage())
        out.append(detail_pass(x, height, width, seed=seed + i, config=config, on_step=progress.stage()))
    return torch.cat(out)


def trained_plate(
    pyramid: SinGANPyramid,
    source: LiftSource,
    width: int,
    height: int,
    *,
    gen_start_scale: int = 1,
    n_samples: int = 1,
    seed: int = 0,
    config: PatchSynthesisConfig = PatchSynthesisConfig(),
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """Plates from a trained model: SinGAN retargeting by injection, the lift, then self-example upscaling.

    The canvas :func:`plate_canvas` at the model's scale (the model's height, the plate's aspect) is
    generated by SinGAN from scale ``gen_start_scale`` on, injected with the photo resized to the
    scale below (paper sec. 4, injection: "starting the generation at a coarse scale with a given
    image") and extended with its edge columns plus noise (:func:`_extended`, as the instant
    plate's coarsest level): the new content at the sides keeps the photo's rows (sky above the
    horizon, sea below). Fresh noise goes to the sides only (:func:`_side_mask`). SinGAN's own
    layout path drew the sides' coarsest noise freely: a new global layout there, which moved
    seascape's horizon. A weak model's generators still repaint the injected photo from coarse
    scales (a ``tiny`` model turned seascape's pale sea into clouds from scale 1; injected at
    scale 2 it held; docs/benchmarks.md, Plates). The
    model-scale canvas then initialises the lift (:func:`~singan_core.patch_synthesis.synthesize`
    on the photo fitted to the canvas's height, its keys and values), and :func:`detail_pass`
    enlarges it to the plate. Sample i uses seed ``seed + i`` (side noise, SinGAN's noise, the patch engine).

    Args:
        pyramid: a completely trained pyramid.
        source: its :class:`~singan_core.full_resolution.LiftSource`.
        width, height: plate size in pixels, each 16..8192.
        gen_start_scale: first scale with fresh noise, 1..K-1 (0 gives new global layouts: no horizon).
        n_samples, seed, config, on_step: as :func:`instant_plate` (``on_step`` counts SinGAN's
            scales, the lift's levels and the detail pass).

    Returns:
        (n_samples, 3, height, width) in [-1, 1] on the pyramid's device.

    Raises:
        InvalidArgument: sizes, ``n_samples`` or ``gen_start_scale`` out of range, naming it.
        ValueError: the pyramid is not completely trained.
    """
    _check(source.image, width, height, n_samples)
    if (
        isinstance(gen_start_scale, bool)
        or not isinstance(gen_start_scale, int)
        or not 1 <= gen_start_scale < pyramid.num_scales
    ):
        raise InvalidArgument(
            "gen_start_scale",
            f"must be 1..{pyramid.num_scales - 1} for a plate (1 keeps the photo's layout), got {gen_start_scale!r}",
        )
    pyramid.require_complete()
    canvas = plate_canvas((source.image.shape[-2], source.image.shape[-1]), width, height)
    photo = _fitted(source.image.float().to(pyramid.device), canvas[0])
    finest_h, finest_w = pyramid.sizes[-1]
    sizes = sample_sizes(pyramid, 1.0, canvas[1] / canvas[0] * finest_h / finest_w)
    model_canvas = sizes[-1] if sizes[-1][0] <= canvas[0] else canvas
    steps = sizes[gen_start_scale:] + level_sizes(model_canvas, canvas, config.ratio)
    progress = _Progress(on_step, _pixels(steps + ([(height, width)] if canvas != (height, width) else [])), n_samples)
    coarse = _fitted(source.image.float().to(pyramid.device), sizes[gen_start_scale - 1][0])  # injected at scale g - 1
    span = min(1.0, coarse.shape[-1] / sizes[gen_start_scale - 1][1])  # the photo's share of the canvas width
    out = []
    for i in range(n_samples):
        start = _extended(coarse, sizes[gen_start_scale - 1], seed + i)
        noise = torch.Generator().manual_seed(_PLATE_NOISE + seed + i)
        noises = [
            draw_noise(1, sizes[k], k, noise, pyramid.device) * _side_mask(sizes[k][1], span, pyramid.device)
            for k in range(gen_start_scale, pyramid.num_scales)
        ]
        x = generate(pyramid, noises, gen_start_scale, start, on_step=progress.stage()).clamp(-1, 1)
        x = resize(x, model_canvas).clamp(-1, 1) if tuple(x.shape[-2:]) != model_canvas else x
        x = synthesize(photo, *canvas, init=x, seed=seed + i, config=config, on_step=progress.stage())
        out.append(detail_pass(x, height, width, seed=seed + i, config=config, on_step=progress.stage()))
    return torch.cat(out)


def _side_mask(width: int, span: float, device: torch.device) -> torch.Tensor:
    """(1, 1, 1, width): 0 on the centred share ``span`` of the width (the photo's part), 1 beyond
    it, with linear ramps of a tenth of the photo's width inside its edges (no seam)."""
    x = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width - 0.5  # -0.5 .. 0.5
    ramp = max(span / 10, 1e-6)
    return ((x.abs() - (span / 2 - ramp)) / ramp).clamp(0, 1).view(1, 1, 1, width)


_PLATE_NOISE = 0x9A7E_0000_0000
"""SinGAN noise of trained plates draws from its own stream (seed 0 must not give z_opt back)."""
