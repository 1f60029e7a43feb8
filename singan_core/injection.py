"""Generation with an image injected at a scale: the primitive behind every SinGAN application.

Paper sec. 4 (Figs. 11-13): a downsampled image is fed to the pyramid at some scale n in place of
the coarser scales' output, and the generators from there to the finest add the training image's
patch statistics. Harmonization, editing and paint-to-image are this plus pre/post-processing.

Images are (1, 3, H, W) float in [-1, 1]; sizes (height, width) in pixels; scale index k = 0 is the
coarsest (the paper's n = N - k).
"""

from __future__ import annotations

import math

import torch

from .errors import InvalidArgument
from .model import SinGANPyramid
from .pyramid import Size, resize
from .sampling import draw_noise, generate, sample_sizes


def working_sizes(pyramid: SinGANPyramid, height: int, width: int) -> list[Size]:
    """Per-scale sizes at which the model processes an image of ``height`` x ``width`` pixels.

    The model works at its own resolution: the finest working size has the pixel count of the
    training image's finest scale and the aspect ratio of the given image (so an image with the
    training image's aspect, at any resolution, is processed at the training sizes).
    """
    h_f, w_f = pyramid.sizes[-1]
    s = math.sqrt(h_f * w_f / (height * width))
    return sample_sizes(pyramid, height * s / h_f, width * s / w_f)


def check_injection_scale(pyramid: SinGANPyramid, scale: int) -> None:
    """Raise ``ValueError`` naming ``scale`` unless it is in 1 .. K-1.

    Scale 0 has no coarser output to stand in for (the coarsest generator only ever saw zeros as
    its input), so injection starts at 1, as in the original code.
    """
    pyramid.require_complete()
    if not 1 <= scale <= pyramid.num_scales - 1:
        raise InvalidArgument("scale", f"must be in 1..{pyramid.num_scales - 1} (0 = coarsest), got {scale}")


@torch.no_grad()
def inject(
    pyramid: SinGANPyramid, image: torch.Tensor, scale: int, *, noise: bool = True, seed: int = 0
) -> torch.Tensor:
    """Run the generators from ``scale`` to the finest with ``image`` as the input of ``scale``.

    The image is downsampled to the size of scale ``scale - 1`` and then upsampled to the size of
    ``scale`` as the coarser scale's output would be (original ``harmonization.py``/``editing.py``),
    so only its content at scale ``scale - 1``'s resolution is kept: a coarser scale lets the model
    repaint more. Scales run at :func:`working_sizes` of the image.

    Args:
        pyramid: a completely trained pyramid.
        image: (1, 3, H, W) in [-1, 1], any size.
        scale: injection scale k, 1 .. K-1 (0 = coarsest).
        noise: True: fresh noise z_k (seeded by ``seed``) times ``noise_amp_k`` at every scale from
            ``scale`` on, as the original applications; False: zero noise (deterministic).
        seed: noise seed.

    Returns:
        (1, 3, h, w) in [-1, 1], the finest working size.

    Raises:
        ValueError: ``scale`` out of range or an incompletely trained pyramid.
    """
    check_injection_scale(pyramid, scale)
    sizes = working_sizes(pyramid, *image.shape[-2:])
    mode = pyramid.config.net.padding_mode
    coarser = resize(image.to(pyramid.device, torch.float32), sizes[scale - 1], mode)
    gen = torch.Generator().manual_seed(seed)
    noises = [
        draw_noise(1, sizes[k], k, gen, pyramid.device)
        if noise
        else torch.zeros(1, 3, *sizes[k], device=pyramid.device)
        for k in range(scale, pyramid.num_scales)
    ]
    return generate(pyramid, noises, scale, coarser).clamp(-1, 1)
