"""A (possibly partially) trained SinGAN pyramid: the state that sampling and storage work on."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .config import SinGANConfig
from .nets import Discriminator, Generator
from .pyramid import PyramidGeometry, Size


@dataclass
class SinGANPyramid:
    """Everything learnt from one image. Index k = 0 is the coarsest scale (paper's n = N - k).

    Attributes:
        config: the full training configuration.
        geometry: per-scale sizes and the actual ``scale_factor`` r.
        reals: x_k, (1, 3, h_k, w_k) in [-1, 1], for **all** scales (known before training).
        generators: ``G_k`` of the finished scales (eval mode, frozen); ``len`` = scales done.
        discriminators: ``D_k`` of the finished scales (kept to warm-start/resume training).
        noise_amps: ``noise_amp_k`` of the finished scales (1.0 at k = 0).
        z_opts: fixed reconstruction noise maps (1, 3, h_k, w_k): noise at k = 0, zeros elsewhere.
    """

    config: SinGANConfig
    geometry: PyramidGeometry
    reals: list[torch.Tensor]
    generators: list[Generator] = field(default_factory=list)
    discriminators: list[Discriminator] = field(default_factory=list)
    noise_amps: list[float] = field(default_factory=list)
    z_opts: list[torch.Tensor] = field(default_factory=list)

    @property
    def num_scales(self) -> int:
        """K, the number of scales of the finished model (coarsest index N = K - 1 in the paper)."""
        return self.geometry.num_scales

    @property
    def scales_done(self) -> int:
        return len(self.generators)

    @property
    def is_complete(self) -> bool:
        return self.scales_done == self.num_scales

    def require_complete(self) -> None:
        """Raise ``ValueError`` naming how many scales are trained unless all of them are."""
        if not self.is_complete:
            raise ValueError(f"model: only {self.scales_done} of {self.num_scales} scales are trained")

    @property
    def sizes(self) -> tuple[Size, ...]:
        return self.geometry.sizes

    @property
    def device(self) -> torch.device:
        return self.reals[0].device

    def add_scale(
        self, generator: Generator, discriminator: Discriminator, noise_amp: float, z_opt: torch.Tensor
    ) -> None:
        """Freeze and append a finished scale."""
        for net in (generator, discriminator):
            net.eval().requires_grad_(False)
        self.generators.append(generator)
        self.discriminators.append(discriminator)
        self.noise_amps.append(float(noise_amp))
        self.z_opts.append(z_opt)

    def to(self, device: torch.device) -> "SinGANPyramid":
        """Move every tensor and net to ``device`` in place; returns self."""
        self.reals = [x.to(device) for x in self.reals]
        self.z_opts = [z.to(device) for z in self.z_opts]
        for net in (*self.generators, *self.discriminators):
            net.to(device)
        return self
