"""A same-machine baseline: the per-iteration work of the original SinGAN code, rendered with our nets.

The original release cannot be fetched here, so ``bench/train_speed.py --baseline`` times this
rendering of what its ``train_single_scale`` does in one iteration, in the same order:

- each of the 3 D steps samples the whole coarser pyramid again (``draw_concat``), runs G_n forward
  with a graph, and back-propagates D(real), D(fake) and the gradient penalty separately;
- each of the 3 G steps back-propagates -D(fake) into both D_n's and G_n's parameters, then the
  reconstruction loss (fixed path recomputed by the caller once, as the original caches ``z_prev``).

One difference is unavoidable on torch 2.x: the original's 2nd and 3rd G steps back-propagate through
the first step's graph after the optimiser changed G_n in place, which torch now refuses, so G_n's
forward is recomputed there (two extra G forwards; the baseline is slightly slower than the original).
"""

from __future__ import annotations

import torch.nn.functional as F

import torch

from singan_core.losses import gradient_penalty
from singan_core.pyramid import resize
from singan_core.sampling import draw_noise, generate, reconstruct
from singan_core.model import SinGANPyramid


def upsampled_reconstruction(pyramid: SinGANPyramid, k: int) -> torch.Tensor:
    """up(rec_{k-1}) at the size of x_k (1, 3, h, w); zeros at k = 0 (the original caches it as ``z_prev``)."""
    real = pyramid.reals[k]
    if k == 0:
        return torch.zeros_like(real)
    return resize(reconstruct(pyramid, k), real.shape[-2:], pyramid.config.net.padding_mode)


def random_prev(pyramid: SinGANPyramid, k: int, rng: torch.Generator) -> torch.Tensor:
    """up(a sample of scales 0..k-1 with fresh noise) at the size of x_k; zeros at k = 0 (``draw_concat``)."""
    real = pyramid.reals[k]
    if k == 0:
        return torch.zeros_like(real)
    noises = [draw_noise(1, pyramid.sizes[j], j, rng, real.device) for j in range(k)]
    return resize(generate(pyramid, noises), real.shape[-2:], pyramid.config.net.padding_mode)


def original_iteration(pyramid, generator, critic, opt_d, opt_g, rng, noise_amp, z_opt, rec_prev) -> None:
    """One training iteration at scale k = pyramid.scales_done, as the original code does it."""
    cfg = pyramid.config.train
    k = pyramid.scales_done
    real = pyramid.reals[k]
    z = noise_amp * draw_noise(1, real.shape[-2:], k, rng, real.device)
    for _ in range(cfg.d_steps):
        prev = random_prev(pyramid, k, rng)
        critic.zero_grad()
        (-critic(real).mean()).backward()
        fake = generator(z, prev)
        critic(fake.detach()).mean().backward()
        gradient_penalty(critic, real, fake.detach(), cfg.lambda_grad, rng).backward()
        opt_d.step()
    for step in range(cfg.g_steps):
        generator.zero_grad()
        if step > 0:
            fake = generator(z, prev)
        (-critic(fake).mean()).backward()
        (cfg.alpha * F.mse_loss(generator(noise_amp * z_opt, rec_prev), real)).backward()
        opt_g.step()
