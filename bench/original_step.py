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

from singan_core.losses import gradient_penalty
from singan_core.sampling import draw_noise
from singan_core.training import _random_prev


def original_iteration(pyramid, generator, critic, opt_d, opt_g, rng, noise_amp, z_opt, rec_prev) -> None:
    """One training iteration at scale k = pyramid.scales_done, as the original code does it."""
    cfg = pyramid.config.train
    k = pyramid.scales_done
    real = pyramid.reals[k]
    z = noise_amp * draw_noise(1, real.shape[-2:], k, rng, real.device)
    for _ in range(cfg.d_steps):
        prev = _random_prev(pyramid, k, rng)
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
