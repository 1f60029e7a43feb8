"""The per-scale nets ``G_n`` and ``D_n`` (paper sec. 2.1, Fig. 5; supplementary material).

Both are fully convolutional stacks of ``num_layers`` 3x3 convolutions without padding: the
generator pads its input once, up front, by ``num_layers * (kernel_size // 2)`` pixels so its
output keeps the input size; the discriminator is unpadded and returns a patch score map.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .cancel import cancel_point
from .config import NetConfig, PaddingMode

BAND_MACS = 2**30
"""Multiply-accumulates of one row band of a generator pass without autograd (:meth:`Generator.forward`):
larger passes run band by band, with a cancel point between bands."""


def nfc_at(k: int, net: NetConfig) -> int:
    """Channel count of the nets at scale k (k = 0 coarsest): ``min(nfc_base * 2**floor(k/4), nfc_max)``."""
    return min(net.nfc_base * 2 ** (k // net.nfc_double_every), net.nfc_max)


class ConvBlock(nn.Sequential):
    """3x3 conv (no padding) -> BatchNorm -> LeakyReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(0.2),
        )


def _conv_stack(in_channels: int, nfc: int, out_channels: int, net: NetConfig) -> nn.Sequential:
    blocks: list[nn.Module] = [ConvBlock(in_channels, nfc, net.kernel_size)]
    blocks += [ConvBlock(nfc, nfc, net.kernel_size) for _ in range(net.num_layers - 2)]
    blocks.append(nn.Conv2d(nfc, out_channels, net.kernel_size))
    return nn.Sequential(*blocks)


def init_weights(module: nn.Module) -> None:
    """Original code's init: conv weights ~ N(0, 0.02); BatchNorm weight ~ N(1, 0.02), bias 0."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """``G_n``: residual generator of one scale.

    ``G_n(z, prev) = prev + tanh(convs(pad(z + prev)))`` where ``prev`` is the upsampled output of
    the coarser scale (zeros at the coarsest) and ``z`` the noise map already scaled by
    ``noise_amp_n`` (paper eq. 4).
    """

    def __init__(self, nfc: int, net: NetConfig, image_channels: int = 3):
        super().__init__()
        self.padding = net.num_layers * (net.kernel_size // 2)
        self.padding_mode = net.padding_mode
        self.body = _conv_stack(image_channels, nfc, image_channels, net)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor, prev: torch.Tensor, padding_mode: PaddingMode | None = None) -> torch.Tensor:
        """z, prev: (N, 3, H, W), prev in [-1, 1]. Returns (N, 3, H, W), roughly [-2, 2]: prev + residual.
        ``padding_mode``: this call's padding (``circular`` for a seamless tile); None: the trained one."""
        mode = padding_mode or self.padding_mode
        x = F.pad(z + prev, (self.padding,) * 4, mode="constant" if mode == "zeros" else "circular")
        return prev + torch.tanh(self._body(x, prev.shape[-2]))

    def _body(self, x: torch.Tensor, height: int) -> torch.Tensor:
        """``body(x)`` for the padded input x, (N, 3, height + 2p, W + 2p). Without autograd a large
        pass runs in bands of output rows (each band reads its rows plus the 2p-row halo its
        unpadded convolutions consume), with a :func:`~singan_core.cancel.cancel_point` between
        bands: a cancel lands within a band's time, and only one band's features are held at once.
        Eval-mode BatchNorm is per pixel, so the bands give the same values as one pass (train mode:
        batch statistics, one pass)."""
        rows = self._band_rows(x.shape[0] * (x.shape[-1] - 2 * self.padding))
        if self.training or torch.is_grad_enabled() or rows >= height:
            return self.body(x)
        bands = []
        for top in range(0, height, rows):
            cancel_point()
            bands.append(self.body(x[..., top : min(top + rows, height) + 2 * self.padding, :]))
        return torch.cat(bands, dim=-2)

    def _band_rows(self, row_pixels: int) -> int:
        """Output rows per band: BAND_MACS over the multiply-accumulates of one output row (at least 1)."""
        macs = sum(m.weight.numel() for m in self.body.modules() if isinstance(m, nn.Conv2d))
        return max(1, BAND_MACS // (macs * row_pixels))


class Discriminator(nn.Module):
    """``D_n``: Markovian (patch) critic of one scale; receptive field 11x11 with the defaults."""

    def __init__(self, nfc: int, net: NetConfig, image_channels: int = 3):
        super().__init__()
        self.body = _conv_stack(image_channels, nfc, 1, net)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, H, W) in [-1, 1]. Returns the critic map (N, 1, H - 10, W - 10) with the defaults."""
        return self.body(x)
