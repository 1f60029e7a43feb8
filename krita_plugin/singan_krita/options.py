"""What the artist chose in the docker, and the words the docker uses for SinGAN's scales.

Scales are numbered k = 0 (coarsest) .. K-1 (finest), K = the model's ``num_scales``
(docs/protocol.md). Two scale choices matter to an artist:

* **variations** start from scale ``gen_start_scale``: 0 draws new layouts, higher values keep the
  training image's layout and only draw new shapes, then only new detail;
* **harmonize / paint to image** inject the picture at scale k (1..K-1): a coarse k repaints
  shapes and colours, a fine k only touches up texture. None leaves the daemon's default
  (harmonize max(1, K-3), paint to image 1: README "Applications").

No ``krita`` or Qt import: tested in the project's environment.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BadInput

PRESETS = ("tiny", "draft", "paper")
SIZE_MODES = ("1x", "2x", "custom")
MIN_SIDE, MAX_SIDE = 8, 8192  # generate's width/height range (pixels)

DEFAULT_START_SCALE = 0
"""Variations start at the coarsest scale: new layouts, the paper's default (see the README)."""


@dataclass
class Options:
    """The docker's current choices (one instance per Krita session, shared by all windows).

    Attributes:
        model: id of the chosen model, or None (harmonize then trains one on the background).
        preset: training preset for Train, harmonize's background model and super-resolution.
        seamless: circular padding: tileable training and variations.
        count: number of variations, 1..64. seed: first seed, 0..2**31-1 (variation i uses seed + i).
        start_scale: variations' ``gen_start_scale`` (clamped to the model's K-1 when sent).
        injection_scale: harmonize/paint-to-image scale k, or None for the daemon's default.
        size_mode: ``1x``/``2x`` the selection (or layer), or ``custom`` = ``width`` x ``height`` pixels.
    """

    model: str | None = None
    preset: str = "draft"
    seamless: bool = False
    count: int = 4
    seed: int = 0
    start_scale: int = DEFAULT_START_SCALE
    injection_scale: int | None = None
    size_mode: str = "1x"
    width: int = 512
    height: int = 512

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """The result's size in pixels for a selection (or layer) of ``width`` x ``height``.

        Raises:
            BadInput: the size is outside 8..8192 pixels per side.
        """
        if self.size_mode == "custom":
            size = (self.width, self.height)
        else:
            factor = 2 if self.size_mode == "2x" else 1
            size = (width * factor, height * factor)
        if not all(MIN_SIDE <= side <= MAX_SIDE for side in size):
            raise BadInput(f"the output would be {size[0]} x {size[1]} px; each side must be {MIN_SIDE} to {MAX_SIDE} px")
        return size


def _position(k: int, num_scales: int) -> float:
    return k / max(1, num_scales - 1)


def start_scale_label(k: int, num_scales: int) -> str:
    """Words for variations starting at scale ``k`` of ``num_scales``, e.g. ``new layouts (scale 0)``."""
    if k == 0:
        words = "new layouts"
    elif _position(k, num_scales) <= 0.5:
        words = "same rough layout, new shapes"
    else:
        words = "same layout, new fine detail"
    return f"{words} (scale {k})"


def injection_scale_label(k: int, num_scales: int) -> str:
    """Words for injecting at scale ``k`` of ``num_scales``, e.g. ``repaint shapes and colours (scale 1)``."""
    position = _position(k, num_scales)
    if position <= 1 / 3:
        words = "repaint shapes and colours"
    elif position <= 2 / 3:
        words = "adapt colours and texture"
    else:
        words = "touch up fine texture"
    return f"{words} (scale {k})"


def start_scales(num_scales: int) -> list[tuple[int, str]]:
    """(k, label) for every start scale 0..K-1 of a model with ``num_scales`` = K."""
    return [(k, start_scale_label(k, num_scales)) for k in range(max(1, num_scales))]


def injection_scales(num_scales: int) -> list[tuple[int | None, str]]:
    """(k, label) for the default (None) and every injection scale 1..K-1."""
    default = (None, "default (harmonize: scale K-3, paint: scale 1)")
    return [default] + [(k, injection_scale_label(k, num_scales)) for k in range(1, num_scales)]
