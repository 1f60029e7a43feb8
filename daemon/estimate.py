"""The daemon's training cost model: the share of a training done and the time left, with each
scale's iterations weighted by their measured cost.

:class:`singan_core.training.TrainingEstimate` weights an iteration of scale k by its
convolutions' FLOPs, pixels x nfc_k^2 (the *unit*). On a CPU the small coarse scales cost far more
than that: each iteration also has a fixed part (3 critic and 3 generator steps with their
optimiser updates, the noise, the reconstruction pass, Python), so at the coarse scales the
fraction crept and the time left, extrapolated from it, was many times too long (issue 28: "15 min
left" for a 3.8 min training). Here an iteration of scale k costs ``OVERHEAD_UNITS + unit_k``
units: the fixed part in units, from the least-squares line ``seconds = a + b * unit`` through the
per-scale CPU seconds of a measured training (``bench/training_estimate.py``; the figures are in
docs/benchmarks.md), ``OVERHEAD_UNITS = a / b``. The time left still extrapolates the speed
measured in this training (so it follows the machine and its load), but that speed is now nearly
constant from the first scale on.
"""

from __future__ import annotations

from singan_core.models import nfc_at
from singan_core.model import SinGANPyramid
from singan_core.training import TrainingEstimate, scales_changed_by

OVERHEAD_UNITS = 1.6e6
"""The fixed cost of one training iteration, in units of pixels x nfc^2 (see the module docstring)."""


class CalibratedEstimate(TrainingEstimate):
    """:class:`~singan_core.training.TrainingEstimate` with the calibrated per-iteration cost
    ``OVERHEAD_UNITS + unit_k`` (same interface: ``start_fraction``, ``fraction(progress)`` in [0, 1],
    ``eta_seconds(fraction)`` in seconds or None)."""

    def __init__(self, pyramid: SinGANPyramid, overhead_units: float = OVERHEAD_UNITS):
        super().__init__(pyramid)
        cfg = pyramid.config
        own = [h * w * nfc_at(k, cfg.net) ** 2 for k, (h, w) in enumerate(pyramid.sizes)]
        self._cost = [overhead_units + own[k] + 0.5 * sum(own[j] for j in scales_changed_by(cfg, k)[:-1])
                      for k in range(len(own))]
        self._total = sum(self._cost) * self.iterations
        self.start_fraction = self._done_before(pyramid.scales_done)
