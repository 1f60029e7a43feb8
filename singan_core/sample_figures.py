"""Figures of a set of samples against their source, and the rule that a trained result is no worse
than the instant one.

A single-image model is judged on a set of samples, not on one: the median patch-SWD of the samples
against the source (GPDM, Granot et al., CVPR 2022), their pixel diversity (SinGAN, Shaham et al.,
ICCV 2019, sec. 3) and the median density of bright features (pixels above the source's 98th
luminance percentile: sparse stars, galaxies and highlights that a GAN tends to drop). ``singan
demo`` prints them for its instant and trained variations; ``bench/quality.py`` records the same
figures in its ledger.

:func:`compare_to_instant` is the check that a trained model earns its training: where both apply,
its samples' patch-SWD is at most :data:`MAX_SWD_RATIO` times the instant samples', its diversity
at least :data:`MIN_DIVERSITY_RATIO` times theirs, and its bright-feature density within
:data:`BRIGHT_TOLERANCE` of the source's own.

Images are (N, 3, H, W) float tensors in [-1, 1].
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from .metrics import bright_density, patch_swd, pixel_diversity

__all__ = [
    "BRIGHT_TOLERANCE",
    "MAX_SWD_RATIO",
    "MIN_DIVERSITY_RATIO",
    "SetFigures",
    "compare_to_instant",
    "set_figures",
]

MAX_SWD_RATIO = 1.2
"""A trained set's median patch-SWD may be at most this many times the instant set's."""
MIN_DIVERSITY_RATIO = 0.9
"""A trained set's pixel diversity must be at least this fraction of the instant set's."""
BRIGHT_TOLERANCE = 0.2
"""A set's median bright-feature density must be within this relative distance of the source's."""


@dataclass(frozen=True)
class SetFigures:
    """Figures of one set of samples against its source.

    Attributes:
        patch_swd: median over the samples of the patch-SWD to the source (lower: closer patches).
        diversity: pixel diversity of the set (the per-pixel standard deviation over the samples
            divided by the source's; 0 for identical samples); None for a single image.
        bright_density: median over the samples of the fraction of pixels above the source's 98th
            luminance percentile.
        bright_density_source: the same fraction of the source itself (about 0.02).
    """

    patch_swd: float
    diversity: float | None
    bright_density: float
    bright_density_source: float

    def text(self) -> str:
        """One line: ``patch-SWD 0.0017, diversity 0.46, bright 2.4 %`` (no diversity for one image)."""
        diversity = "" if self.diversity is None else f", diversity {self.diversity:.2f}"
        return f"patch-SWD {self.patch_swd:.4f}{diversity}, bright {100 * self.bright_density:.1f} %"


def set_figures(samples: torch.Tensor, source: torch.Tensor) -> SetFigures:
    """:class:`SetFigures` of ``samples`` (S, 3, H, W), S >= 1, against ``source`` (1, 3, h, w).

    The source is resized to the samples' size for the diversity (as :func:`~.metrics.pixel_diversity`
    does; a single image has none); patch-SWD and bright density compare distributions, so sizes may
    differ (a panorama against its source).

    Raises:
        ValueError: no sample, or images that are not 3-channel (N, 3, H, W).
    """
    if samples.dim() != 4 or samples.shape[0] < 1:
        raise ValueError(f"samples: need (S, 3, H, W) with S >= 1, got {tuple(samples.shape)}")
    samples, source = samples.detach().float().cpu(), source.detach().float().cpu()
    return SetFigures(
        patch_swd=statistics.median(patch_swd(s[None], source) for s in samples),
        diversity=pixel_diversity(samples, source) if samples.shape[0] > 1 else None,
        bright_density=statistics.median(bright_density(s[None], source) for s in samples),
        bright_density_source=bright_density(source, source),
    )


def compare_to_instant(trained: SetFigures, instant: SetFigures) -> list[str]:
    """What keeps a trained set from being at least as good as the instant one; empty when it is.

    Each failed rule is one sentence with both figures and the limit (issue 25, item 4):
    patch-SWD <= :data:`MAX_SWD_RATIO` x instant's, diversity >= :data:`MIN_DIVERSITY_RATIO` x
    instant's (where both sets have one), bright density within :data:`BRIGHT_TOLERANCE` of the
    source's.
    """
    failures = []
    if trained.patch_swd > MAX_SWD_RATIO * instant.patch_swd:
        failures.append(
            f"patch-SWD {trained.patch_swd:.4f} is above {MAX_SWD_RATIO:g}x the instant {instant.patch_swd:.4f}"
        )
    if (
        trained.diversity is not None
        and instant.diversity is not None
        and trained.diversity < MIN_DIVERSITY_RATIO * instant.diversity
    ):
        failures.append(
            f"diversity {trained.diversity:.2f} is below {MIN_DIVERSITY_RATIO:g}x the instant {instant.diversity:.2f}"
        )
    low, high = (
        (1 - BRIGHT_TOLERANCE) * trained.bright_density_source,
        (1 + BRIGHT_TOLERANCE) * trained.bright_density_source,
    )
    if not low <= trained.bright_density <= high:
        failures.append(
            f"bright density {100 * trained.bright_density:.2f} % is outside "
            f"{100 * low:.2f}-{100 * high:.2f} % (the source's {100 * trained.bright_density_source:.2f} % +-{BRIGHT_TOLERANCE:.0%})"
        )
    return failures
