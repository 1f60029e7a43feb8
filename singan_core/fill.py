"""Content-aware fill: a region of an image synthesised from the rest of it, continuing its
surroundings with no visible border (what Photoshop's Content-Aware Fill and GIMP Resynthesizer's
Heal Selection do).

Two steps: GPNN's conditional inpainting (:func:`singan_core.patch_synthesis.inpaint`: Granot et
al., "Drop the GAN", CVPR 2022, sec. 4; the region's patches come from the rest of the image, the
rest stays fixed as their boundary), then membrane cloning (:func:`singan_core.membrane.membrane_clone`:
Farbman et al., SIGGRAPH 2009) of the region's colour offset along its border.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .errors import InvalidArgument
from .membrane import membrane_clone
from .patch_synthesis import PatchSynthesisConfig, inpaint

__all__ = ["fill"]


@torch.no_grad()
def fill(
    image: torch.Tensor,
    mask: torch.Tensor,
    *,
    seed: int = 0,
    noise_sigma: float = 0.25,
    on_step: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """The pixels of ``image`` where ``mask`` is over 0.5, synthesised from the rest of ``image``.

    Args:
        image: (1, 3, H, W) float in [-1, 1].
        mask: (1, 1, H, W) or (H, W) in [0, 1]; 1 where to synthesise. It must leave a whole
            7 x 7 patch of the image outside it.
        seed: seeds the synthesis (bit-identical on the CPU for a seed).
        noise_sigma: standard deviation (on [-1, 1] values) of the noise the region starts from
            over the colours around it: 0.25 continues the surroundings most plainly (removing an
            object); about 1 gives clearly different results per seed (variations).
        on_step: ``on_step(level_done, levels_total)`` after each pyramid level; may raise to stop.

    Returns:
        (1, 3, H, W) float32 in [-1, 1], equal to ``image`` where ``mask`` < 0.5.

    Raises:
        InvalidArgument: as :func:`~singan_core.patch_synthesis.inpaint` (``image``, ``mask``,
            ``seed``), or ``noise_sigma`` negative or not finite.
    """
    if not 0 <= noise_sigma < float("inf"):
        raise InvalidArgument("noise_sigma", f"must be a finite number >= 0, got {noise_sigma!r}")
    config = PatchSynthesisConfig(noise_sigma=noise_sigma)
    out = inpaint(image, mask, seed=seed, config=config, on_step=on_step)
    hole = mask.reshape(1, 1, *mask.shape[-2:]).to(out.device) >= 0.5
    return membrane_clone(out, hole)
