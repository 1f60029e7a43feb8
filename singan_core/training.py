"""Coarse-to-fine training of a SinGAN pyramid, one scale at a time (paper sec. 2.2).

:func:`new_pyramid` builds the untrained pyramid from an image; :func:`train` trains the remaining
scales (so a pyramid loaded from a half-finished model directory resumes where it stopped);
:func:`train_scale` is the optimisation of one scale. Nothing here touches files: finished scales
are handed to an ``on_scale_done`` callback (the storage layer saves them).

Every scale k draws its randomness (net init, noise, GP mixing) from its own generator seeded with
``(seed, k)``, so a training resumed after scale k gives the same nets as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .config import SinGANConfig, TrainConfig
from .losses import critic_loss, generator_adversarial_loss, gradient_penalty, reconstruction_loss
from .model import SinGANPyramid
from .nets import Discriminator, Generator, nfc_at
from .pyramid import build_real_pyramid, resize
from .sampling import draw_noise, generate, reconstruct


@dataclass(frozen=True)
class TrainProgress:
    """A progress report, sent every ``report_every`` iterations and at the end of each scale.

    ``scale`` is k (0 = coarsest) out of ``num_scales``; ``iteration`` counts from 1 up to
    ``iterations``; losses are the last iteration's; ``seconds`` is the wall time spent on this scale.
    """

    scale: int
    num_scales: int
    iteration: int
    iterations: int
    loss_d: float
    loss_g: float
    loss_rec: float
    seconds: float


ProgressCallback = Callable[[TrainProgress], None]
ScaleDoneCallback = Callable[[SinGANPyramid, int], None]


class TrainingEstimate:
    """How much of a pyramid's training is done, and the time left, from its progress reports.

    Each iteration is weighted by its scale's cost, pixels x channels^2 (the convolutions' FLOPs
    up to a constant), so the fraction grows with compute, not with the iteration count; under
    concurrent training (``train.concurrent_stages`` > 1) half the cost of each concurrently trained
    scale below is added (their generators run forward and backward in the G steps; no critic).
    The ETA extrapolates the speed measured since this object was made (e.g. since a resume).
    """

    def __init__(self, pyramid: SinGANPyramid):
        cfg = pyramid.config
        self.iterations = cfg.train.iterations
        own = [h * w * nfc_at(k, cfg.net) ** 2 for k, (h, w) in enumerate(pyramid.sizes)]
        self._cost = [own[k] + 0.5 * sum(own[j] for j in scales_changed_by(cfg, k)[:-1]) for k in range(len(own))]
        self._total = sum(self._cost) * self.iterations
        self.start_fraction = self._done_before(pyramid.scales_done)
        """Share done before this object was made (finished scales of a resumed training)."""
        self._start = time.perf_counter()

    def _done_before(self, k: int) -> float:
        return sum(self._cost[:k]) * self.iterations / self._total

    def fraction(self, p: TrainProgress) -> float:
        """Share of the whole training (all scales) done after report ``p``, in [0, 1]."""
        return min(1.0, self._done_before(p.scale) + self._cost[p.scale] * p.iteration / self._total)

    def eta_seconds(self, fraction: float) -> float | None:
        """Seconds left at ``fraction`` done, or None before any measurable progress."""
        done_here = fraction - self.start_fraction
        if done_here <= 0:
            return None
        return (time.perf_counter() - self._start) * (1.0 - fraction) / done_here


def new_pyramid(image: torch.Tensor, config: SinGANConfig, device: torch.device) -> SinGANPyramid:
    """An untrained pyramid for ``image`` (1, 3, H, W) in [-1, 1]: the reals x_k and geometry.

    Raises:
        ValueError: the image is too small for ``min_size`` (see :func:`pyramid_geometry`).
    """
    reals, geometry = build_real_pyramid(image.to(device, torch.float32), config.pyramid)
    return SinGANPyramid(config=config, geometry=geometry, reals=reals)


def train(
    pyramid: SinGANPyramid,
    on_progress: ProgressCallback | None = None,
    on_scale_done: ScaleDoneCallback | None = None,
    report_every: int = 10,
) -> SinGANPyramid:
    """Train every scale not yet finished, coarsest first, and return the (same) pyramid.

    Warm start: ``G_k``/``D_k`` start from ``G_{k-1}``/``D_{k-1}`` when the channel count is
    unchanged (original code). ``on_scale_done(pyramid, k)`` is called after each scale; an exception
    raised by a callback (e.g. a cancellation) stops training after the last finished scale.
    """
    cfg = pyramid.config
    for k in range(pyramid.scales_done, pyramid.num_scales):
        rng = torch.Generator().manual_seed(_scale_seed(cfg.train.seed, k))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_scale_seed(cfg.train.seed, k))
            generator, critic = _init_nets(pyramid, k)
        noise_amp, z_opt = train_scale(pyramid, generator, critic, rng, on_progress, report_every)
        pyramid.add_scale(generator, critic, noise_amp, z_opt)
        if on_scale_done is not None:
            on_scale_done(pyramid, k)
    return pyramid


def scales_changed_by(config: SinGANConfig, k: int) -> range:
    """The scales whose nets (and noise_amp, z_opt) training scale k changes, coarsest first.

    With the paper's schedule only scale k itself: ``range(k, k + 1)``. ConSinGAN's concurrent
    schedule (``train.concurrent_stages`` = c > 1) also changes the generators of the c - 1 scales
    below k: ``range(max(0, k - c + 1), k + 1)`` (their D, noise_amp and z_opt stay as they were).
    Whoever saves or ships a finished scale k (storage, a remote trainer) saves or ships all of these.
    """
    return range(max(0, k - config.train.concurrent_stages + 1), k + 1)


def _scale_seed(seed: int, k: int) -> int:
    return seed * 1_000_003 + k


def _init_nets(pyramid: SinGANPyramid, k: int) -> tuple[Generator, Discriminator]:
    net = pyramid.config.net
    nfc = nfc_at(k, net)
    generator, critic = Generator(nfc, net), Discriminator(nfc, net)
    if k > 0 and nfc_at(k - 1, net) == nfc:
        generator.load_state_dict(pyramid.generators[k - 1].state_dict())
        critic.load_state_dict(pyramid.discriminators[k - 1].state_dict())
    return generator.to(pyramid.device).train(), critic.to(pyramid.device).train()


def train_scale(
    pyramid: SinGANPyramid,
    generator: Generator,
    critic: Discriminator,
    rng: torch.Generator,
    on_progress: ProgressCallback | None = None,
    report_every: int = 10,
) -> tuple[float, torch.Tensor]:
    """Optimise ``G_k``, ``D_k`` for the next scale k = ``pyramid.scales_done`` (paper eq. 1).

    Per iteration: draw z_k and one random sample of the coarser scales (``prev``, the same for all
    D and G steps of the iteration); ``d_steps`` critic updates on WGAN-GP; ``g_steps`` generator
    updates on ``-D(G(z, prev)) + alpha * reconstruction``. The reconstruction input (the upsampled
    reconstruction of scale k-1) is fixed, so it is computed once per scale. With ``gp_every`` > 1
    the gradient penalty is lazy (StyleGAN2 sec. 3.1): only critic steps 0, gp_every, 2 gp_every ...
    of the scale (counted across iterations) add it, weighted ``lambda_grad * gp_every``.

    Differences from the original code, none changing the objective: one coarser-scale sample per
    iteration (the original draws one per D step, ``prev_per_d_step``; both are unbiased samples of
    the same expectation); G(z, prev) computed once for all D steps and the first G step (G_k does
    not change in between, so values are identical); no D_k parameter gradients in G steps; later G
    steps use the current G_k (the original back-propagates through the first step's stale fake); a
    fixed z_opt at the coarsest scale (the original draws it anew in every iteration,
    ``redraw_coarsest_z_opt``).

    Concurrent training (``concurrent_stages`` = c > 1; Hinz et al., ConSinGAN, WACV 2021; its release's
    ``train_depth`` and ``lr_scale``):
    the generators ``G_{k-c+1} .. G_{k-1}`` already in the pyramid are optimised together with G_k,
    ``G_{k-d}`` at ``lr_g * stage_lr_scale**d`` (Adam parameter groups, decayed with G_k's). The
    coarser sample ``prev`` and the reconstruction input now depend on them, so both are recomputed
    through them with autograd in every G step (the scales below ``k-c+1`` stay frozen and are run
    once per iteration / once per scale). Only D_k is trained, as in ConSinGAN. What this means for
    SinGAN's architecture, which differs from ConSinGAN's single growing generator:

    - each ``G_j`` stays a separate image-to-image residual net with its own noise input; the
      gradient reaches ``G_j`` through the upsampled *image* it passes on (ConSinGAN passes features);
    - ``G_j`` is no longer held to x_j's patch statistics by its own critic once scale j is done:
      it is shaped by the finer scale's adversarial and reconstruction losses, damped by the
      smaller learning rate (ConSinGAN's guard against overfitting the coarse layout);
    - ``noise_amp_j`` and ``z_opt_j`` of the earlier scales keep the values computed when scale j
      started (ConSinGAN keeps them too), and ``noise_amp_k`` is computed from the reconstruction
      as it stands when scale k starts;
    - the earlier generators stay in eval mode: their BatchNorm layers keep the running
      statistics they are sampled with (their affine parameters are trained);
    - a finished scale k changes the saved files of scales k-c+1 .. k
      (:func:`scales_changed_by`, :func:`singan_core.storage.save_scale`).

    Returns:
        (noise_amp_k, z_opt_k): ``noise_amp_k = noise_amp_init * RMSE(up(rec_{k-1}), x_k)`` (1 at
        k = 0) and the fixed reconstruction noise (1, 3, h, w): N(0, 1) at k = 0, zeros elsewhere.
    """
    cfg = pyramid.config.train
    k = pyramid.scales_done
    real = pyramid.reals[k]
    size, device = real.shape[-2:], real.device
    along = scales_changed_by(pyramid.config, k)[:-1]  # earlier scales trained concurrently (ConSinGAN)
    first = along.start if along else k  # scales below `first` are frozen
    rec_frozen = reconstruct(pyramid, first) if first > 0 else None
    rec_noises = pyramid.z_opts[first:k]
    with torch.no_grad():
        rec_prev = _upsampled(pyramid, k, rec_frozen, rec_noises)
    noise_amp = 1.0 if k == 0 else cfg.noise_amp_init * math.sqrt(F.mse_loss(rec_prev, real).item())
    z_opt = draw_noise(1, size, 0, rng, device) if k == 0 else torch.zeros_like(real)
    rec_input = noise_amp * z_opt
    earlier = [pyramid.generators[j] for j in along]
    opt_d, opt_g, schedulers = _optimizers(generator, critic, cfg, earlier)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    start = time.perf_counter()

    for net in earlier:
        net.requires_grad_(True)  # stays in eval mode: BatchNorm keeps its running statistics
    try:
        for it in range(1, cfg.iterations + 1):
            if k == 0 and cfg.redraw_coarsest_z_opt:  # the original release's coarsest scale
                z_opt = draw_noise(1, size, 0, rng, device)
                rec_input = noise_amp * z_opt
            z = noise_amp * draw_noise(1, size, k, rng, device)
            for step in range(cfg.d_steps):
                if step == 0 or cfg.prev_per_d_step:
                    noises = [draw_noise(1, pyramid.sizes[j], j, rng, device) for j in range(k)]
                    prev_frozen = generate(pyramid, noises[:first]) if first > 0 else None
                    prev = _upsampled(pyramid, k, prev_frozen, noises[first:])
                    with autocast:
                        fake = generator(z, prev)  # G_k is unchanged during the D steps: one forward serves all
                fake_d = fake.detach().float()
                with autocast:
                    loss_d = critic_loss(critic(real), critic(fake_d))
                    if ((it - 1) * cfg.d_steps + step) % cfg.gp_every == 0:  # lazy regularisation
                        loss_d = loss_d + gradient_penalty(critic, real, fake_d, cfg.lambda_grad * cfg.gp_every, rng)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()

            critic.requires_grad_(False)
            for step in range(cfg.g_steps):
                if along:  # the earlier generators change in every G step: run them again
                    if step > 0:
                        prev = _upsampled(pyramid, k, prev_frozen, noises[first:])
                    rec_prev = _upsampled(pyramid, k, rec_frozen, rec_noises)
                with autocast:
                    if step > 0:  # G_k changed: the fake of the first step is stale
                        fake = generator(z, prev)
                    loss_g = generator_adversarial_loss(critic(fake))
                    loss_rec = reconstruction_loss(generator(rec_input, rec_prev), real, cfg.alpha)
                opt_g.zero_grad(set_to_none=True)
                (loss_g + loss_rec).backward()
                opt_g.step()
            critic.requires_grad_(True)

            for scheduler in schedulers:
                scheduler.step()
            if on_progress is not None and (it % report_every == 0 or it == cfg.iterations):
                on_progress(
                    TrainProgress(
                        scale=k,
                        num_scales=pyramid.num_scales,
                        iteration=it,
                        iterations=cfg.iterations,
                        loss_d=loss_d.item(),
                        loss_g=loss_g.item(),
                        loss_rec=loss_rec.item(),
                        seconds=time.perf_counter() - start,
                    )
                )
    finally:
        for net in earlier:
            net.requires_grad_(False)
    return noise_amp, z_opt


def _optimizers(generator: Generator, critic: Discriminator, cfg: TrainConfig, earlier: Sequence[Generator] = ()):
    """Adam for D_k and for G_k (+ the concurrently trained ``earlier`` generators, coarsest first:
    G_{k-d} at ``lr_g * stage_lr_scale**d``), and their step-decay schedulers."""
    betas = (cfg.beta1, cfg.beta2)
    opt_d = torch.optim.Adam(critic.parameters(), lr=cfg.lr_d, betas=betas)
    groups = [{"params": list(generator.parameters()), "lr": cfg.lr_g}]
    groups += [
        {"params": list(net.parameters()), "lr": cfg.lr_g * cfg.stage_lr_scale ** (len(earlier) - i)}
        for i, net in enumerate(earlier)
    ]
    opt_g = torch.optim.Adam(groups, lr=cfg.lr_g, betas=betas)
    schedulers = [
        torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[cfg.lr_decay_iteration], gamma=cfg.gamma)
        for opt in (opt_d, opt_g)
    ]
    return opt_d, opt_g, schedulers


def _upsampled(pyramid: SinGANPyramid, k: int, frozen: torch.Tensor | None, noises: list[torch.Tensor]) -> torch.Tensor:
    """up(x_{k-1}) at the size of x_k: ``frozen`` (the output of the frozen coarser scales, None if
    there are none) run through the concurrently trained scales ``k - len(noises) .. k - 1`` on
    ``noises`` with autograd (nothing to run under the paper's schedule); zeros at k = 0."""
    real = pyramid.reals[k]
    if k == 0:
        return torch.zeros_like(real)
    x = generate(pyramid, noises, k - len(noises), frozen, differentiable=True) if noises else frozen
    assert x is not None, "k > 0 with no concurrent scales has a frozen coarser output"
    return resize(x, real.shape[-2:], pyramid.config.net.padding_mode)
