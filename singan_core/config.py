"""Typed configuration for SinGAN pyramids, one frozen dataclass per concern.

Scale indexing, used everywhere in this project (library, CLI, protocol):
scales are numbered ``k = 0 .. K-1`` from the **coarsest** (``k = 0``) to the
**finest** (``k = K-1``), the order in which they are trained and sampled, as
in the original code release. The paper numbers them the other way round,
``n = N .. 0`` with ``N = K-1`` the coarsest, so ``n = N - k``.
``gen_start_scale = 0`` therefore means "generate from the coarsest scale".

Configs are never mutated. Derived values (number of scales, the actual
``scale_factor`` r) are *returned* by :func:`singan_core.pyramid.pyramid_geometry`,
not written back into a config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InvalidArgument

PaddingMode = Literal["zeros", "circular"]
Precision = Literal["fp32", "bf16"]
ScaleRule = Literal["paper", "consingan"]


@dataclass(frozen=True)
class PyramidConfig:
    """How the training image is turned into a pyramid (paper sec. 2, original ``adjust_scales2image``)."""

    max_size: int = 250  # longest side of the finest scale, pixels (the image is only ever shrunk)
    min_size: int = 25  # shortest side of the coarsest scale, pixels
    scale_factor_init: float = 0.75  # initial r; the actual r is derived so the coarsest side lands on min_size
    # True: r = scale_factor_init exactly, and scales are added while the coarsest shorter side stays
    # >= min_size (the super-resolution pyramid, whose r must divide the SR factor; paper sec. 4)
    exact_scale_factor: bool = False
    # "paper": scales spaced geometrically by r (SinGAN). "consingan": ConSinGAN's fewer stages weighted
    # to low resolution (Hinz et al., WACV 2021, its improved rescaling): `num_stages` scales, x_k the
    # finest scaled by r ** ((K-2) / ln(K-1) * ln(K-1-k) + 1) for k < K-1, r = (min_size / finest short
    # side) ** (1 / (K-1)); see singan_core.pyramid.pyramid_geometry.
    scale_rule: ScaleRule = "paper"
    num_stages: int = 6  # K under scale_rule="consingan" (ConSinGAN's train_stages); unused by "paper"

    def __post_init__(self) -> None:
        if self.scale_rule not in ("paper", "consingan"):
            raise InvalidArgument("scale_rule", f"must be 'paper' or 'consingan', got {self.scale_rule!r}")
        if self.num_stages < 2:
            raise InvalidArgument("num_stages", f"must be >= 2, got {self.num_stages}")
        if self.exact_scale_factor and self.scale_rule != "paper":
            raise InvalidArgument(
                "scale_rule", "must be 'paper' with exact_scale_factor (the super-resolution pyramid)"
            )


@dataclass(frozen=True)
class NetConfig:
    """Architecture of every ``G_n`` and ``D_n`` (paper sec. 2.1, supplementary)."""

    nfc_base: int = 32  # channels at the coarsest scale
    nfc_max: int = 128  # channel cap
    nfc_double_every: int = 4  # nfc = min(nfc_base * 2**floor(k / nfc_double_every), nfc_max)
    num_layers: int = 5  # conv blocks per net (head, num_layers-2 body blocks, tail)
    kernel_size: int = 3
    padding_mode: PaddingMode = "zeros"  # "circular": wrap-around padding -> seamless, tileable output


@dataclass(frozen=True)
class TrainConfig:
    """Per-scale optimisation (paper sec. 2.2, eq. 1-2; original code defaults)."""

    iterations: int = 2000  # per scale
    lr_g: float = 5e-4
    lr_d: float = 5e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_decay_at: float = 0.8  # fraction of `iterations` after which lr is multiplied by `gamma` (1600/2000)
    gamma: float = 0.1
    d_steps: int = 3  # critic (D_n) updates per iteration
    g_steps: int = 3  # generator (G_n) updates per iteration
    alpha: float = 10.0  # reconstruction weight (eq. 1)
    lambda_grad: float = 0.1  # WGAN-GP weight
    # Lazy regularisation (Karras et al., StyleGAN2, CVPR 2020, sec. 3.1): the WGAN-GP term only on every
    # gp_every-th critic step of a scale, multiplied by gp_every (same expected penalty, fewer double
    # backwards). 1 = every step (the paper).
    gp_every: int = 1
    # ConSinGAN's concurrent training (Hinz et al., WACV 2021; its train_depth and lr_scale): while
    # scale k trains, the generators of the concurrent_stages - 1 scales below it are optimised too,
    # G_{k-d} at lr_g * stage_lr_scale**d, by back-propagating the scale-k losses through them (see
    # singan_core.training.train_scale). 1 = one scale at a time (the paper); ConSinGAN uses 3 and 0.1.
    concurrent_stages: int = 1
    stage_lr_scale: float = 0.1
    # Two sampling details of the original release (tamarott/SinGAN, training.py) that the paper does not
    # state; off = this project's reading (see singan_core.training.train_scale). redraw_coarsest_z_opt:
    # at the coarsest scale, draw z_opt anew in every iteration (the reconstruction then maps fresh
    # noise to x_0; the last draw is kept; the release's issue #43). prev_per_d_step: a fresh random
    # sample of the coarser scales (and G_n's output on it) for every critic step, instead of one per
    # iteration; the generator steps use the last one.
    redraw_coarsest_z_opt: bool = False
    prev_per_d_step: bool = False
    noise_amp_init: float = 0.1  # noise_amp_n = noise_amp_init * RMSE(upsampled coarser reconstruction, x_n)
    precision: Precision = "fp32"  # "bf16": autocast for convolutions
    seed: int = 0  # seeds z_opt and every training noise draw

    def __post_init__(self) -> None:
        if self.gp_every < 1:
            raise InvalidArgument(
                "gp_every", f"must be >= 1 (1 = the paper's penalty on every critic step), got {self.gp_every}"
            )
        if self.concurrent_stages < 1:
            raise InvalidArgument(
                "concurrent_stages", f"must be >= 1 (1 = the paper's one scale at a time), got {self.concurrent_stages}"
            )
        if not 0 < self.stage_lr_scale <= 1:
            raise InvalidArgument("stage_lr_scale", f"must be in (0, 1], got {self.stage_lr_scale}")

    @property
    def lr_decay_iteration(self) -> int:
        """Iteration index at which the learning rates drop by `gamma`."""
        return int(round(self.iterations * self.lr_decay_at))


@dataclass(frozen=True)
class SinGANConfig:
    """Everything needed to train a pyramid; stored in full in ``model.json``."""

    pyramid: PyramidConfig = field(default_factory=PyramidConfig)
    net: NetConfig = field(default_factory=NetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SinGANConfig":
        """Inverse of :meth:`to_dict`. Raises ``TypeError`` on unknown fields."""
        return cls(
            pyramid=PyramidConfig(**data["pyramid"]),
            net=NetConfig(**data["net"]),
            train=TrainConfig(**data["train"]),
        )

    def with_overrides(
        self,
        *,
        max_size: int | None = None,
        padding_mode: PaddingMode | None = None,
        seed: int | None = None,
        precision: Precision | None = None,
    ) -> "SinGANConfig":
        """Copy with the options users commonly change (the CLI/protocol knobs) replaced."""
        pyramid, net, train = self.pyramid, self.net, self.train
        if max_size is not None:
            pyramid = dataclasses.replace(pyramid, max_size=max_size)
        if padding_mode is not None:
            net = dataclasses.replace(net, padding_mode=padding_mode)
        if seed is not None:
            train = dataclasses.replace(train, seed=seed)
        if precision is not None:
            train = dataclasses.replace(train, precision=precision)
        return SinGANConfig(pyramid=pyramid, net=net, train=train)


PRESETS: dict[str, SinGANConfig] = {
    # The paper and the original code release's defaults, unchanged.
    "paper": SinGANConfig(),
    # For artists on a laptop CPU: the paper's nets and scale rule at max_size 128 with 60 instead of
    # 2000 iterations per scale (lr drop at 48). Chosen by measurement on balloons.png (docs/benchmarks.md).
    "draft": SinGANConfig(
        pyramid=PyramidConfig(max_size=128),
        train=TrainConfig(iterations=60),
    ),
    # A candidate, not a default: ConSinGAN's schedule (Hinz et al., WACV 2021; its release's defaults:
    # 6 low-resolution-weighted stages, the last 3 trained concurrently with lr x 0.1 per stage below,
    # 2000 iterations) on the paper's nets (ConSinGAN's own nets differ: 64 channels, 3 layers). The
    # channels follow the scale index as in the paper (nfc_at), so its 6 stages have 32 x 4 and 64 x 2
    # channels: the finest is narrower than the paper's 128.
    "consingan": SinGANConfig(
        pyramid=PyramidConfig(scale_rule="consingan", num_stages=6),
        train=TrainConfig(concurrent_stages=3, stage_lr_scale=0.1),
    ),
    # For tests: a few seconds on a CPU.
    "tiny": SinGANConfig(
        pyramid=PyramidConfig(max_size=48, min_size=20, scale_factor_init=0.7),
        net=NetConfig(nfc_base=16, nfc_max=16),
        train=TrainConfig(iterations=80),
    ),
}


def preset(name: str) -> SinGANConfig:
    """The named preset. Raises ``ValueError`` naming the known presets."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"preset: unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
