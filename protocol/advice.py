"""What a host tells the artist around a daemon job, shared by the Krita plugin and the Blender
add-on (no host import; it needs only what the client needs):

* :func:`explain`: a daemon error as one sentence that says what to do, with the daemon's own
  words kept apart as details (a tooltip, a log), so raw protocol text ("images[0]: buffer has
  0 bytes ...") never is the message an artist reads. Codes and fields: docs/protocol.md 7.
* :func:`training_estimate`: how long a training will take before it is queued, so that a host
  can ask before a long one. The cost model is the daemon's progress model
  (``singan_core.training.TrainingEstimate``: compute grows with the finest scale's pixels x the
  iterations per scale), read from ``hello``'s ``preset_details`` (``max_size``, ``iterations``)
  and calibrated by the trainings of the same preset this daemon has finished (a ready model's
  ``updated - created`` seconds: its own device and load); with none, the time is unknown. A ``seconds`` entry of a preset in ``preset_details``
  (a daemon that measures its own cost: seconds for a ``max_size`` square) is used first.
"""

from __future__ import annotations

from typing import NamedTuple

from .errors import DaemonError

__all__ = ["Estimate", "explain", "training_estimate"]


# ------------------------------------------------------------------------------- errors

_BY_CODE = {
    "unsupported_version": "the daemon speaks another protocol version: update the plugin or the daemon so they match",
    "unauthorized": "the daemon asks for a token this plugin does not have: start it without one, or set the token",
    "not_found": "the daemon no longer has that model (deleted?): choose another model, or train one",
    "busy": "that model is still training: wait until it is ready, or choose a ready model",
    "out_of_memory": "the daemon ran out of GPU memory: choose a smaller output size or fewer variations",
    "internal": "the daemon failed on this job (a bug, or a damaged model): see the daemon's log, "
    "and try another model",
}
_SIZE_FIELDS = (
    "params.width",
    "params.height",
    "params.n",
    "params.scale_w",
    "params.scale_h",
    "params.factor",
    "params.frames",
)
_SCALE_FIELDS = ("params.scale", "params.gen_start_scale", "params.start_scale")


def explain(error: BaseException) -> tuple[str, str]:
    """``(sentence, details)`` for a failed job or request: the sentence says what went wrong and
    what to do, in an artist's words, one line; the details are the daemon's own message (code,
    field, text) for a bug report, or ``""``. Errors that are not :class:`DaemonError` get
    ``str(error)`` as the sentence (a host's own errors already speak to the artist)."""
    if not isinstance(error, DaemonError):
        return str(error), ""
    details = f"{error.code}: {error.message}" + (f" (field {error.field})" if error.field else "")
    code, field = error.code, error.field or ""
    if code == "cancelled":
        return "cancelled", details
    if code == "unavailable":
        return f"not connected: {error.message}", ""  # the client's own words, with the fix
    if code in _BY_CODE:
        return _BY_CODE[code], details
    if field.startswith("images") or field.startswith("image"):
        if code == "too_large":
            return "the picture sent is too large for the daemon: select a smaller part", details
        return (
            "the daemon could not use the picture sent (empty or unreadable): make a layer with pixels "
            "active, or select a part of it, and try again"
        ), details
    if field in _SIZE_FIELDS or code == "too_large":
        return "the result would be too large for the daemon: choose a smaller output size or fewer variations", details
    if field in _SCALE_FIELDS:
        return "the chosen scale does not exist in this model: choose another scale", details
    if field == "params.model":
        return _BY_CODE["not_found"], details
    return "the daemon could not take this request: check the options, and see the details in the tooltip", details


# ------------------------------------------------------------------------------- estimates

MIN_SAMPLES_SIDE = 8
"""Models smaller than this on a side are too small to calibrate from."""
CALIBRATION_MODELS = 5
"""The newest ready models of the preset asked for that the rate is taken from."""


class Estimate(NamedTuple):
    """A training's expected duration.

    Attributes:
        seconds: expected wall seconds on the daemon's device, or None when nothing to go by.
        max_size, iterations: the preset's finest side (px) and iterations per scale, or None.
        basis: where the figure comes from, in words (e.g. ``going by this daemon's last 3 'tiny' trainings``).
    """

    seconds: float | None
    max_size: int | None
    iterations: int | None
    basis: str


def _finest_pixels(width: int, height: int, max_size: int) -> float:
    """Pixels of the finest scale: the image shrunk so its longer side is at most ``max_size``."""
    shrink = min(1.0, max_size / max(width, height, 1))
    return width * shrink * height * shrink


def _cost(pixels: float, iterations: int) -> float:
    """Compute units of a training of one preset: the progress model's finest-scale pixels x
    iterations (its channel counts and coarser scales are a factor of the preset, calibrated away
    by comparing trainings of the same preset only)."""
    return pixels * iterations


def training_estimate(hello: dict, models: list[dict], preset: str, width: int, height: int) -> Estimate:
    """How long training ``preset`` on a ``width`` x ``height`` image will take.

    Args:
        hello: the daemon's ``hello`` data (``preset_details``). models: its ModelInfo list
            (``list_models``); ready generative ones with ``created``/``updated`` calibrate the rate.
        preset: the preset's name. width, height: the image sent, pixels.

    Returns:
        An :class:`Estimate` (``seconds`` None when the preset is unknown or no model was ever
        trained on this daemon).
    """
    details = {item.get("name"): item for item in hello.get("preset_details") or []}
    detail = details.get(preset)
    if not detail or not detail.get("max_size") or not detail.get("iterations"):
        return Estimate(None, None, None, f"the daemon does not describe the preset '{preset}'")
    max_size, iterations = int(detail["max_size"]), int(detail["iterations"])
    cost = _cost(_finest_pixels(width, height, max_size), iterations)
    if detail.get("seconds"):
        seconds = float(detail["seconds"]) * cost / _cost(max_size * max_size, iterations)
        return Estimate(seconds, max_size, iterations, "from the daemon's cost model")
    rates = _rates(models, preset, iterations)
    if not rates:
        return Estimate(None, max_size, iterations, f"no '{preset}' training has finished on this daemon yet")
    rate = sorted(rates)[len(rates) // 2]  # the median: robust to a training that waited in the queue
    trainings = f"{len(rates)} '{preset}' trainings" if len(rates) > 1 else f"'{preset}' training"
    return Estimate(rate * cost, max_size, iterations, f"going by this daemon's last {trainings}")


def _rates(models: list[dict], preset: str, iterations: int) -> list[float]:
    """Seconds per compute unit of the newest ready generative models of ``preset`` (only the same
    preset: presets differ in channels and scales, which ``hello`` does not describe; the
    ``tiny`` preset's 16 channels make it tens of times cheaper per pixel than ``draft``'s 32-128)."""
    rates = []
    for model in sorted(models, key=lambda m: m.get("created") or 0, reverse=True):
        if (
            model.get("status") != "ready"
            or model.get("kind", "generative") != "generative"
            or model.get("preset") != preset
        ):
            continue
        seconds = (model.get("updated") or 0) - (model.get("created") or 0)
        if seconds <= 0 or min(model.get("width", 0), model.get("height", 0)) < MIN_SAMPLES_SIDE:
            continue
        rates.append(seconds / _cost(model["width"] * model["height"], iterations))
        if len(rates) == CALIBRATION_MODELS:
            break
    return rates
