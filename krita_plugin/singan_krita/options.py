"""What the artist chose in the docker (:class:`Options`); :mod:`.words` says what the scale
choices mean.

No ``krita`` or Qt import: tested in the project's environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from .errors import BadInput

SIZE_MODES = ("1x", "2x", "custom")
MIN_SIDE = 8
"""Smallest output side the docker offers (pixels); the largest is the daemon's ``max_image_side``
(``hello``'s limits), checked by :meth:`Options.output_size`."""
FEATURE_SCALE_RANGE = (0.1, 16.0)
"""The docker's feature-scale range (output px per source px; the daemon takes (0, 16])."""
SPIN_MAX = 65536  # the W x H spin boxes' range; the daemon's limit is checked when an action runs

DEFAULT_START_SCALE = 0
"""Variations start at the coarsest scale: new layouts, the paper's default. Compared on
shared/images with 4 seeds at 1.5x and 2x the training width (brick, draft, K = 8; gravel, tiny,
K = 5; chelsea, tiny, K = 3): only scale 0 gives visibly different images per seed; from scale 1
on every seed shows the same layout (chelsea's face, the same bricks) with barely visible changes."""


@dataclass
class Options:
    """The docker's current choices (one instance per Krita session, shared by all windows).

    Attributes:
        model: id of the chosen model, or None (harmonize then trains one on the background).
        preset: training preset for Train, harmonize's background model and super-resolution (one
            of the daemon's presets from ``hello``).
        seamless: circular padding: tileable training and variations.
        count: number of variations, 1..64. seed: the next action's first seed, 0..2**31-1 (variation i
            uses seed + i); Variations, Quick variations and Fill selection advance it past the seeds they used.
        start_scale: variations' ``gen_start_scale`` (clamped to the model's K-1 when sent).
        injection_scale: harmonize/paint-to-image scale k, or None for the daemon's default.
        size_mode: ``1x``/``2x`` the selection (or layer), or ``custom`` = ``width`` x ``height`` pixels.
        feature_scale: output px per source px of Variations and Quick variations (the daemon's
            ``feature_scale``, docs/protocol.md 5.2): 1.0 keeps the source's brick size at any
            output size (2x and W x H then hold more content), 0.5 shows it at half size.
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
    feature_scale: float = 1.0

    def output_size(self, width: int, height: int, max_side: int) -> tuple[int, int]:
        """The result's size in pixels for a selection (or layer) of ``width`` x ``height``.

        Raises:
            BadInput: a side is outside :data:`MIN_SIDE` .. ``max_side`` pixels (the daemon's
                ``max_image_side``).
        """
        if self.size_mode == "custom":
            size = (self.width, self.height)
        else:
            factor = 2 if self.size_mode == "2x" else 1
            size = (width * factor, height * factor)
        if not all(MIN_SIDE <= side <= max_side for side in size):
            raise BadInput(
                f"the output would be {size[0]} x {size[1]} px; each side must be {MIN_SIDE} to {max_side} px"
            )
        return size


def to_settings(options: Options) -> dict[str, str]:
    """``options`` as setting name -> text, for Krita's settings (kritarc); None is ``""``."""
    return {f.name: "" if getattr(options, f.name) is None else str(getattr(options, f.name)) for f in fields(options)}


def from_settings(read: Callable[[str], str]) -> Options:
    """The options saved by :func:`to_settings`; ``read(name)`` gives a setting's text (``""`` if
    absent). A missing or unreadable value (an older or hand-edited kritarc) keeps its default."""
    chosen = Options()
    parsers = {
        "model": lambda text: text or None,
        "preset": lambda text: text,  # checked by the daemon (its presets may change)
        "seamless": lambda text: {"True": True, "False": False}[text],
        "count": lambda text: _within(int(text), 1, 64),
        "seed": lambda text: _within(int(text), 0, 2**31 - 1),
        "start_scale": lambda text: _within(int(text), 0, 64),
        "injection_scale": lambda text: None if text == "" else _within(int(text), 1, 64),
        "size_mode": lambda text: _one_of(text, SIZE_MODES),
        "width": lambda text: _within(int(text), MIN_SIDE, SPIN_MAX),
        "height": lambda text: _within(int(text), MIN_SIDE, SPIN_MAX),
        "feature_scale": lambda text: _within(float(text), *FEATURE_SCALE_RANGE),
    }
    for name, parse in parsers.items():
        text = read(name)
        if text == "":  # absent (None is saved as "" too: the default of the fields that take it)
            continue
        try:
            setattr(chosen, name, parse(text))
        except (KeyError, ValueError):
            pass
    return chosen


def _within(value: float, low: float, high: float) -> float:
    if not low <= value <= high:
        raise ValueError(value)
    return value


def _one_of(text: str, choices: tuple[str, ...]) -> str:
    if text not in choices:
        raise ValueError(text)
    return text
