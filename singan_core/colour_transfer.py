"""Colour statistics transfer: move a region's colours towards those of its surroundings.

Reinhard, Ashikhmin, Gooch and Shirley, "Color Transfer between Images", IEEE CG&A 2001: in a
decorrelated colour space, shift each channel's mean and scale its standard deviation to the
target's. Here the space is CIE L*a*b* (D65; decorrelated like the paper's l-alpha-beta and
perceptually uniform, so the same space measures the result as CIE Delta E), the source is the
object inside a mask and the target the ring of background around it. The object's own shading
(the spread of L*) is only partly rescaled, so its form stays readable.

Images are (1, 3, H, W) float in [-1, 1] (sRGB); masks (1, 1, H, W) bool.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# sRGB (D65) primaries to CIE XYZ, IEC 61966-2-1.
_RGB_TO_XYZ = torch.tensor(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883])
_EPSILON, _KAPPA = 216 / 24389, 24389 / 27  # CIE's exact constants


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """sRGB (N, 3, H, W) in [-1, 1] to CIE L*a*b* (N, 3, H, W): L* in [0, 100], a*, b* about -128..127."""
    rgb = ((x.clamp(-1, 1) + 1) / 2).to(torch.float32)
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = torch.einsum("ij,njhw->nihw", _RGB_TO_XYZ.to(x.device), linear) / _WHITE_D65.to(x.device)[:, None, None]
    f = torch.where(xyz > _EPSILON, xyz.clamp_min(1e-12) ** (1 / 3), (_KAPPA * xyz + 16) / 116)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE L*a*b* (N, 3, H, W) to sRGB (N, 3, H, W) in [-1, 1] (out-of-gamut colours clamped)."""
    fy = (lab[:, 0] + 16) / 116
    f = torch.stack([fy + lab[:, 1] / 500, fy, fy - lab[:, 2] / 200], 1)
    xyz = torch.where(f**3 > _EPSILON, f**3, (116 * f - 16) / _KAPPA) * _WHITE_D65.to(lab.device)[:, None, None]
    linear = torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB_TO_XYZ).to(lab.device), xyz).clamp(0, 1)
    rgb = torch.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear.clamp_min(1e-12) ** (1 / 2.4) - 0.055)
    return rgb.clamp(0, 1) * 2 - 1


@dataclass(frozen=True)
class TransferConfig:
    """How far the object's statistics follow the ring's.

    Attributes:
        strength: 0 = unchanged, 1 = the object's mean L*a*b* becomes the ring's (linear in between).
        exposure_range: (min, max) of the factor on the object's L*: ring mean L* / object mean
            L*. L* is scaled rather than shifted (unlike Reinhard's), so the object's shading keeps
            its proportions and its blacks do not fall below black or lift to grey.
        chroma_gain: (min, max) of Reinhard's ratio ring std / object std on a* and b*.
    """

    strength: float = 0.6
    exposure_range: tuple[float, float] = (0.2, 5.0)
    chroma_gain: tuple[float, float] = (0.25, 1.5)


def _stats(lab: torch.Tensor, where: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (3,) of ``lab`` (1, 3, H, W) over ``where`` (1, 1, H, W) bool."""
    values = lab[0][:, where[0, 0]]
    return values.mean(1), values.std(1, unbiased=False).clamp_min(1e-3)


def reinhard_transfer(
    image: torch.Tensor,
    mask: torch.Tensor,
    ring: torch.Tensor,
    config: TransferConfig = TransferConfig(),
) -> torch.Tensor:
    """Reinhard et al. 2001 colour transfer of the object (``mask``) towards its ``ring``, in L*a*b*.

    a* and b* inside the mask become ``mu_ring + g * (x - mu_obj)`` (g: Reinhard's std ratio,
    clamped, see :class:`TransferConfig`); L* becomes ``L * mu_ring / mu_obj``; the result is
    blended with the input by ``config.strength``.

    Args:
        image: (1, 3, H, W) in [-1, 1].
        mask: (1, 1, H, W) bool, the object.
        ring: (1, 1, H, W) bool, the background pixels whose statistics are the target.

    Returns:
        (1, 3, H, W) in [-1, 1]; equal to ``image`` outside ``mask`` (bit-identical).

    Raises:
        ValueError: ``mask`` or ``ring`` is empty, or ``strength`` is outside [0, 1].
    """
    if not 0.0 <= config.strength <= 1.0:
        raise ValueError(f"strength: must be in [0, 1], got {config.strength}")
    if not bool(mask.any()) or not bool(ring.any()):
        raise ValueError("mask: the object and the ring around it must both have pixels")
    lab = rgb_to_lab(image)
    mu_o, sd_o = _stats(lab, mask)
    mu_r, sd_r = _stats(lab, ring)
    ratio = sd_r / sd_o
    chroma = ratio[1:].clamp(*config.chroma_gain)[:, None, None]
    exposure = (mu_r[0] / mu_o[0].clamp_min(1.0)).clamp(*config.exposure_range)
    target = torch.cat(
        [
            lab[0, :1] * exposure,  # L*: scaled, so black stays black and the shading keeps its proportions
            mu_r[1:, None, None] + chroma * (lab[0, 1:] - mu_o[1:, None, None]),
        ]
    )
    moved = lab[0] + config.strength * (target - lab[0])
    out = lab_to_rgb(moved[None]).to(image.dtype)
    return torch.where(mask, out, image)


def restrain_drift(image: torch.Tensor, before: torch.Tensor, mask: torch.Tensor, ring: torch.Tensor) -> torch.Tensor:
    """Let a change of the object's mean colour go towards the ring's mean, never away from it.

    With m0 and m1 the object's mean L*a*b* in ``before`` and ``image`` and r the ring's: only the
    part of m1 - m0 along r - m0, clamped to [0, |r - m0|], is kept; the object in ``image`` is
    shifted in L*a*b* by the rest (its local variation, shading and detail untouched). So the
    object's Delta E to the ring is at most ``before``'s (up to gamut clamping).

    Args:
        image: (1, 3, H, W) in [-1, 1], the changed composite.
        before: (1, 3, H, W) in [-1, 1], the composite before the change.
        mask, ring: (1, 1, H, W) bool, the object and the background around it (both non-empty).

    Returns:
        (1, 3, H, W) in [-1, 1], ``image`` bit-identical outside ``mask``.
    """
    lab = rgb_to_lab(image)
    m0, m1 = _stats(rgb_to_lab(before), mask)[0], _stats(lab, mask)[0]
    towards = _stats(lab, ring)[0] - m0
    distance = towards.norm().clamp_min(1e-6)
    along = ((m1 - m0) @ towards / distance).clamp(0, float(distance))
    target = m0 + along * towards / distance
    out = lab_to_rgb(lab + (target - m1)[None, :, None, None]).to(image.dtype)
    return torch.where(mask, out, image)
