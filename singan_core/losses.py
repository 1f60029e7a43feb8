"""SinGAN's per-scale losses (paper sec. 2.2, eq. 1): WGAN-GP adversarial + alpha * reconstruction.

Pure functions of critic outputs and images; images are (N, 3, H, W) in [-1, 1].
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def critic_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """WGAN critic loss ``E[D(fake)] - E[D(real)]`` over the patch score maps (minimised by D_n)."""
    return d_fake.mean() - d_real.mean()


def generator_adversarial_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """WGAN generator loss ``-E[D(fake)]`` (minimised by G_n)."""
    return -d_fake.mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    lambda_grad: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017) as SinGAN's code computes it.

    ``lambda_grad * mean_pixels((||grad_x D(x_hat)||_channels - 1)^2)`` with
    ``x_hat = a * real + (1 - a) * fake``, one scalar ``a ~ U(0, 1)`` per call; the gradient norm is
    taken over the channel dimension at each pixel (as the original code does), then averaged.

    Args:
        critic: D_n.
        real, fake: (1, 3, H, W); ``fake`` detached from G.
        generator: CPU random generator for ``a`` (reproducible training).

    Returns:
        Scalar tensor, differentiable w.r.t. the critic's parameters (double backward).
    """
    a = torch.rand(1, generator=generator).to(real)
    x_hat = (a * real + (1 - a) * fake).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return lambda_grad * ((grad.float().norm(2, dim=1) - 1) ** 2).mean()


def reconstruction_loss(reconstruction: torch.Tensor, real: torch.Tensor, alpha: float) -> torch.Tensor:
    """``alpha * ||G_n(noise_amp_n * z_opt + up(x_rec), up(x_rec)) - x_n||^2`` as a mean (paper eq. 5)."""
    return alpha * F.mse_loss(reconstruction.float(), real.float())
