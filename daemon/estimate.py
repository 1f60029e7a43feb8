"""The daemon's training cost model: the share of a training done and the time left, with each
scale's iterations weighted by their measured cost.

:class:`singan_core.training.TrainingEstimate` weights an iteration of scale k by its
convolutions' FLOPs, pixels x nfc_k^2 (the *unit*). On a CPU the small coarse scales cost far more
than that: each iteration also has a fixed part (3 critic and 3 generator steps with their
optimiser updates, the noise, the reconstruction pass, Python), so at the coarse scales the
fraction crept and the time left, extrapolated from it, was many times too long (issue 28: "15 min
left" for a 3.8 min training). Here an iteration of scale k costs ``overhead + unit_k`` units: the
fixed part from the least-squares line ``seconds = a + b * unit`` through the per-scale CPU seconds
of measured trainings (``bench/training_estimate.py``; the figures are in docs/benchmarks.md),
``a / b``, which grows with the nets' base channel count: ``OVERHEAD_PIXELS x nfc_base^2``. The time left still extrapolates the speed
measured in this training (so it follows the machine and its load), but that speed is now nearly
constant from the first scale on. It is measured from the first progress report (not from the
start: loading the pyramid and the first iteration's allocations are not training speed), and no
time is given before :data:`MIN_SHARE` of the work is done since then (a guess from a handful of
iterations said "36 min left" for a one-minute training).
"""

from __future__ import annotations

import time

from singan_core.nets import nfc_at
from singan_core.config import SinGANConfig
from singan_core.model import SinGANPyramid
from singan_core.pyramid import pyramid_geometry
from singan_core.training import TrainingEstimate, scales_changed_by

OVERHEAD_PIXELS = 1400.0
"""The fixed cost of one training iteration, as pixels at the net's base channel count: it costs
``OVERHEAD_PIXELS x nfc_base^2`` units (fits: 1570 px for ``draft``/``paper``, nfc_base 32; 1275 px
for ``tiny``, nfc_base 16; see the module docstring)."""


MIN_SHARE = 0.02
"""The share of the training measured before a time left is given."""


def iteration_costs(
    sizes: list[tuple[int, int]], cfg: SinGANConfig, overhead_pixels: float = OVERHEAD_PIXELS
) -> list[float]:
    """Units of one training iteration of each scale of a pyramid of per-scale ``sizes`` (h, w)."""
    own = [h * w * nfc_at(k, cfg.net) ** 2 for k, (h, w) in enumerate(sizes)]
    overhead = overhead_pixels * cfg.net.nfc_base**2
    return [overhead + own[k] + 0.5 * sum(own[j] for j in scales_changed_by(cfg, k)[:-1]) for k in range(len(own))]


class CostRate:
    """Seconds per unit of this daemon's trainings of each preset, calibrated by its last finished
    training of that preset (the cost model's time for a preset, in ``hello``; presets differ in
    speed per unit: ``tiny``'s 16-channel convolutions use a core less well than ``draft``'s).
    Written by the worker thread, read by the socket thread: one dict entry replaced whole."""

    def __init__(self) -> None:
        self.seconds_per_unit: dict[str, float] = {}

    def calibrate(self, preset: str, estimate: CalibratedEstimate, now: float) -> None:
        """A training of ``preset`` with ``estimate`` just ended (fraction 1) at clock ``now``."""
        rate = estimate.seconds_per_unit(now)
        if rate is not None:
            self.seconds_per_unit[preset] = rate

    def preset_seconds(self, preset: str, cfg: SinGANConfig) -> float | None:
        """Predicted seconds to train a ``max_size`` x ``max_size`` image with ``preset`` (config
        ``cfg``), or None before a training of it finished on this daemon."""
        rate = self.seconds_per_unit.get(preset)
        if rate is None:
            return None
        side = cfg.pyramid.max_size
        sizes = list(pyramid_geometry(side, side, cfg.pyramid).sizes)
        return rate * sum(iteration_costs(sizes, cfg)) * cfg.train.iterations


class CalibratedEstimate(TrainingEstimate):
    """:class:`~singan_core.training.TrainingEstimate` with the calibrated per-iteration cost
    ``OVERHEAD_PIXELS x nfc_base^2 + unit_k`` (same interface: ``start_fraction``, ``fraction(progress)`` in [0, 1],
    ``eta_seconds(fraction)`` in seconds or None)."""

    def __init__(self, pyramid: SinGANPyramid, overhead_pixels: float = OVERHEAD_PIXELS):
        super().__init__(pyramid)
        self._cost = iteration_costs(list(pyramid.sizes), pyramid.config, overhead_pixels)
        self._total = sum(self._cost) * self.iterations
        self.start_fraction = self._done_before(pyramid.scales_done)
        self._first: tuple[float, float] | None = None  # (seconds, fraction) at the first report

    def eta_seconds(self, fraction: float) -> float | None:
        """Seconds left at ``fraction`` done (now), or None until :data:`MIN_SHARE` is measured."""
        return self.eta_at(fraction, time.perf_counter())

    def eta_at(self, fraction: float, now: float) -> float | None:
        """:meth:`eta_seconds` at clock reading ``now`` (seconds; the first call sets the baseline)."""
        if self._first is None:
            self._first = (now, fraction)
            return None
        start, first = self._first
        if fraction - first < MIN_SHARE:
            return None
        return (now - start) * (1.0 - fraction) / (fraction - first)

    def seconds_per_unit(self, now: float) -> float | None:
        """Seconds per cost unit measured since the first report, at full completion (None if unmeasured)."""
        if self._first is None or self._first[1] >= 1.0:
            return None
        start, first = self._first
        return (now - start) / ((1.0 - first) * self._total)
