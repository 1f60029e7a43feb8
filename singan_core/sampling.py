"""Generation through the pyramid: random samples, the reconstruction path, any size, any start scale.

Images are (N, 3, H, W) float in [-1, 1]; sizes (height, width) in pixels; scale index k = 0 is the
coarsest (paper's n = N - k). One loop, :func:`generate`, serves training (drawing the coarser
scales' samples), reconstruction and sampling.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from .cancel import cancel_point
from .config import PaddingMode
from .errors import InvalidArgument
from .model import SinGANPyramid
from .pyramid import Size, SizeLike, resize


def draw_noise(n: int, size: SizeLike, k: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """A standard-normal noise map z_k of shape (n, 3, h, w).

    At the coarsest scale (k = 0) one channel is drawn and repeated over RGB (as the original), finer
    scales get independent noise per channel. Drawn on the CPU so a seed gives the same noise on
    every device.
    """
    channels = 1 if k == 0 else 3
    z = torch.randn(n, channels, *size, generator=generator)
    return z.expand(n, 3, *size).to(device)


def generate(
    pyramid: SinGANPyramid,
    noises: list[torch.Tensor],
    start_scale: int = 0,
    start_image: torch.Tensor | None = None,
    on_step: Callable[[int, int], None] | None = None,
    padding_mode: PaddingMode | None = None,
    *,
    differentiable: bool = False,
) -> torch.Tensor:
    """Run the finished generators from ``start_scale`` upward (paper eq. 3-4).

    ``x_k = G_k(noise_amp_k * z_k + up(x_{k-1}), up(x_{k-1}))`` where ``up`` resizes to the size of
    ``z_k``; the scale sizes are taken from the noise maps, so any size and aspect works.

    Args:
        pyramid: a pyramid with at least ``start_scale + len(noises)`` finished scales.
        noises: unscaled noise maps z_k for k = start_scale, start_scale + 1, ..., each (N, 3, h_k, w_k).
        start_scale: index of the first generator to run.
        start_image: (N, 3, h, w) input of the first generator, resized to the first noise map's size;
            zeros (the paper's coarsest input) when None.
        on_step: called as ``on_step(done, total)`` after each scale (``total = len(noises)``); it
            may raise to stop between scales (the daemon cancels jobs this way).
        padding_mode: padding of the generators and of the resizing between scales for this call
            (``"circular"``: every output wraps around, a seamless tile); None: the model's own.
            The pyramid is not modified.
        differentiable: False (sampling): run without autograd. True: autograd records the pass
            (unless the caller disabled it), so a loss on the output reaches the parameters of
            these generators that require gradients (concurrent training,
            :func:`singan_core.training.train_scale`).

    Returns:
        (N, 3, h, w) output of the last scale run, unclamped (roughly [-1, 1]).
    """
    mode = padding_mode or pyramid.config.net.padding_mode
    with contextlib.nullcontext() if differentiable else torch.no_grad():
        x = torch.zeros_like(noises[0]) if start_image is None else resize(start_image, noises[0].shape[-2:], mode)
        for i, z in enumerate(noises):
            k = start_scale + i
            cancel_point()  # the generator pass has its own, between row bands
            x = _resize_each(x, z.shape[-2:], mode)
            x = pyramid.generators[k](pyramid.noise_amps[k] * z, x, mode)
            if on_step is not None:
                on_step(i + 1, len(noises))
    return x


def _resize_each(x: torch.Tensor, size: SizeLike, mode: PaddingMode) -> torch.Tensor:
    """``resize`` of a batch one image at a time into one output, with a cancel point before each:
    the same values as one batched call, no more memory, and a cancel lands within one image's
    resize (a 4-sample batch at the largest sizes took seconds as one call)."""
    if x.shape[0] == 1 or tuple(x.shape[-2:]) == tuple(size):
        return resize(x, size, mode)
    first = resize(x[:1], size, mode)
    out = first.new_empty((x.shape[0], *first.shape[1:]))
    out[:1] = first
    del first
    for j in range(1, x.shape[0]):
        cancel_point()
        out[j : j + 1] = resize(x[j : j + 1], size, mode)
    return out


def reconstruct(pyramid: SinGANPyramid, stop_scale: int | None = None) -> torch.Tensor:
    """The reconstruction path: all scales fed their fixed ``z_opt`` (paper eq. 5, Fig. 4).

    Args:
        stop_scale: number of scales to run (default: all finished ones); must be >= 1.

    Returns:
        (1, 3, h, w) output of scale ``stop_scale - 1``; for a trained model it approximates x_k.
    """
    stop = pyramid.scales_done if stop_scale is None else stop_scale
    return generate(pyramid, pyramid.z_opts[:stop])


def preview(pyramid: SinGANPyramid, seed: int = 0) -> torch.Tensor:
    """A random sample of the finished scales of a (partly) trained pyramid, for progress displays.

    Returns:
        (1, 3, h_k, w_k) in [-1, 1] at the size of the last finished scale k.

    Raises:
        ValueError: no scale is finished yet.
    """
    if pyramid.scales_done == 0:
        raise ValueError("model: no scale is trained yet, nothing to preview")
    sizes = list(pyramid.sizes[: pyramid.scales_done])
    return generate(pyramid, _noise_batch(pyramid, sizes, 0, range(seed, seed + 1))).clamp(-1, 1)


def sample_sizes(pyramid: SinGANPyramid, scale_h: float, scale_w: float) -> list[Size]:
    """Per-scale sizes of a sample ``scale_h`` x ``scale_w`` times the training image (pixels, >= 1)."""
    return [(max(1, round(h * scale_h)), max(1, round(w * scale_w))) for h, w in pyramid.sizes]


def sample(
    pyramid: SinGANPyramid,
    n_samples: int = 1,
    scale_h: float = 1.0,
    scale_w: float = 1.0,
    gen_start_scale: int = 0,
    seed: int = 0,
    batch_size: int = 8,
    layout_seed: int = 0,
    on_step: Callable[[int, int], None] | None = None,
    padding_mode: PaddingMode | None = None,
) -> torch.Tensor:
    """Random samples from a trained pyramid (paper sec. 2, Figs. 4, 6-8).

    Scales coarser than ``gen_start_scale`` give the shared layout; from ``gen_start_scale`` on,
    fresh noise is injected (0 = new global layouts; higher = same layout, new details). The
    sample size is ``scale_h`` x ``scale_w`` times the training image at every scale.

    The layout (``gen_start_scale`` > 0) is the reconstruction path run at the sample size: the
    training image's reconstruction noise ``z_opt`` is centred on the canvas and, where the canvas
    is larger than the training image (a 3:1 panorama from a 4:3 photo, or a 2x larger texture),
    the coarsest scale's noise around it is drawn from ``layout_seed``. At the training size this
    is exactly the reconstruction of the training image; at any other size or aspect it is the
    training image's layout extended with new content (never stretched). All samples of a call
    share the layout.

    Sample i uses seed ``seed + i``: the same call always gives bit-identical images, and the same
    seed gives the same image whatever ``n_samples`` or ``batch_size`` (up to float rounding,
    about 1e-6, since batched convolutions may sum in another order).

    Args:
        pyramid: a completely trained pyramid.
        n_samples: number of images (>= 1).
        scale_h, scale_w: output size relative to the training image, each in (0, 64].
        gen_start_scale: first scale with random noise, 0 (coarsest) .. K - 1 (finest).
        seed: base seed.
        batch_size: samples generated together (memory vs speed).
        layout_seed: seed of the layout's new content beyond the training image's (only used when
            ``gen_start_scale`` > 0 and the sample is larger than the training image).
        on_step: called as ``on_step(done, total)`` after each scale of each batch (``total`` =
            batches x scales run); it may raise to stop between scales (see :func:`generate`).
        padding_mode: ``"circular"`` for seamless tiles (even from a model trained with zero
            padding, which was not trained to wrap: a circular-trained model tiles best), ``"zeros"``,
            or None for the model's own (see :func:`generate`).

    Returns:
        (n_samples, 3, H, W) in [-1, 1] where (H, W) = round(finest size * (scale_h, scale_w)).

    Raises:
        ValueError: naming the argument that is out of range or an incompletely trained pyramid.
    """
    _check_sample_args(pyramid, n_samples, scale_h, scale_w, gen_start_scale)
    sizes = sample_sizes(pyramid, scale_h, scale_w)
    start_image = layout(pyramid, sizes, gen_start_scale, layout_seed, padding_mode) if gen_start_scale > 0 else None
    out, batches = [], range(0, n_samples, batch_size)
    for b, first in enumerate(batches):
        seeds = range(seed + first, seed + min(first + batch_size, n_samples))
        noises = _noise_batch(pyramid, sizes, gen_start_scale, seeds)
        start = None if start_image is None else start_image.expand(len(seeds), -1, -1, -1)
        step = None if on_step is None else (lambda done, total, b=b: on_step(b * total + done, len(batches) * total))
        out.append(
            generate(pyramid, noises, gen_start_scale, start, on_step=step, padding_mode=padding_mode).clamp(-1, 1)
        )
    return torch.cat(out)


def layout(
    pyramid: SinGANPyramid,
    sizes: list[Size],
    stop_scale: int,
    layout_seed: int = 0,
    padding_mode: PaddingMode | None = None,
) -> torch.Tensor:
    """The reconstruction path of scales ``0 .. stop_scale - 1`` run at the per-scale ``sizes``.

    Each scale's noise is its ``z_opt`` centred on a canvas of the scale's size (cropped if the
    canvas is smaller); canvas outside ``z_opt`` is N(0, 1) noise from ``layout_seed`` at the
    coarsest scale and zeros at finer scales (where ``z_opt`` is zero too).

    Returns:
        (1, 3, h, w) output of scale ``stop_scale - 1`` at ``sizes[stop_scale - 1]``; equal to
        :func:`reconstruct` when ``sizes`` are the training sizes.
    """
    gen = torch.Generator().manual_seed(layout_seed)
    noises = []
    for k in range(stop_scale):
        canvas = (
            draw_noise(1, sizes[k], k, gen, pyramid.device)
            if k == 0
            else torch.zeros(1, 3, *sizes[k], device=pyramid.device)
        )
        noises.append(_paste_centred(canvas, pyramid.z_opts[k]))
    return generate(pyramid, noises, padding_mode=padding_mode)


def _paste_centred(canvas: torch.Tensor, patch: torch.Tensor) -> torch.Tensor:
    """``canvas`` with the centre of ``patch`` pasted on its centre (both (1, C, h, w))."""
    out = canvas.clone()
    (ch, cw), (ph, pw) = canvas.shape[-2:], patch.shape[-2:]
    h, w = min(ch, ph), min(cw, pw)
    top, left = (ch - h) // 2, (cw - w) // 2
    ptop, pleft = (ph - h) // 2, (pw - w) // 2
    out[..., top : top + h, left : left + w] = patch[..., ptop : ptop + h, pleft : pleft + w]
    return out


# Sample seeds draw from their own stream. Training draws the coarsest z_opt from
# Generator(train_seed * 1_000_003) (training._scale_seed), so with plain Generator(seed) sample
# seed 0 of a seed-0 model got z_opt itself: the reconstruction, not a random sample.
_SAMPLE_STREAM = 0x5A3F_1E00_0000


def _noise_batch(pyramid: SinGANPyramid, sizes: list[Size], start: int, seeds: range) -> list[torch.Tensor]:
    per_sample = []
    for s in seeds:
        gen = torch.Generator().manual_seed(_SAMPLE_STREAM + s)
        maps = []
        for k in range(start, len(sizes)):
            cancel_point()
            maps.append(draw_noise(1, sizes[k], k, gen, pyramid.device))
        per_sample.append(maps)
    return [torch.cat(maps) for maps in zip(*per_sample)]


def _check_sample_args(
    pyramid: SinGANPyramid, n_samples: int, scale_h: float, scale_w: float, gen_start_scale: int
) -> None:
    pyramid.require_complete()
    if n_samples < 1:
        raise InvalidArgument("n_samples", f"must be >= 1, got {n_samples}")
    for name, value in (("scale_h", scale_h), ("scale_w", scale_w)):
        if not 0 < value <= 64:
            raise InvalidArgument(name, f"must be in (0, 64], got {value}")
    if not 0 <= gen_start_scale < pyramid.num_scales:
        raise InvalidArgument(
            "gen_start_scale", f"must be in 0..{pyramid.num_scales - 1} (0 = coarsest), got {gen_start_scale}"
        )
