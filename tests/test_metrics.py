"""Tests for singan_core.metrics on real photographs from shared/images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from singan_core.metrics import MetricUnavailable, _frechet_distance, _patches_at, patch_swd, pixel_diversity, sifid

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "images"
SIZE = 80  # longest side after downsizing, keeps every test well under a second


def load(name: str, size: int = SIZE) -> torch.Tensor:
    """Image as (1, 3, H, W) float32 in [-1, 1], longest side ``size`` (antialiased bicubic)."""
    path = IMAGES / name
    if not path.is_file():
        pytest.skip(f"test image not found: {path}")
    img = Image.open(path).convert("RGB")
    x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).reshape(img.height, img.width, 3)
    x = x.permute(2, 0, 1).unsqueeze(0).float() / 127.5 - 1
    scale = size / max(img.height, img.width)
    hw = (round(img.height * scale), round(img.width * scale))
    return F.interpolate(x, size=hw, mode="bicubic", antialias=True, align_corners=False).clamp(-1, 1)


@pytest.fixture(scope="module")
def cat() -> torch.Tensor:
    return load("chelsea.png")


@pytest.fixture(scope="module")
def coffee() -> torch.Tensor:
    return load("coffee.png")


def noisy(x: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def noise_image(shape, seed: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (0.5 * torch.randn(shape, generator=g)).clamp(-1, 1)


# --------------------------------------------------------------------------- patch_swd


def test_patch_gather_matches_unfold(cat):
    x = cat[..., :20, :23]
    unfolded = F.unfold(x, kernel_size=7)[0].T  # (L, 147)
    idx = torch.arange(unfolded.shape[0])
    assert torch.equal(_patches_at(x, idx, 7), unfolded)


def test_swd_identical_is_zero(cat):
    assert patch_swd(cat, cat) == pytest.approx(0.0, abs=1e-10)
    assert patch_swd(cat[0], cat) == pytest.approx(0.0, abs=1e-10)  # (3, H, W) accepted


def test_swd_orders_small_noise_other_image_and_noise(cat, coffee):
    d_noisy = patch_swd(cat, noisy(cat, 0.05))
    d_other = patch_swd(cat, coffee)
    d_noise = patch_swd(cat, noise_image(cat.shape))
    assert 0 < d_noisy < 0.1 * d_other
    assert d_noisy < 0.1 * d_noise


def test_swd_deterministic_and_nearly_symmetric(cat, coffee):
    d = patch_swd(cat, coffee, seed=3)
    assert patch_swd(cat, coffee, seed=3) == d
    assert patch_swd(coffee, cat, seed=3) == pytest.approx(d, rel=1e-5)  # same directions, no subsampling
    assert patch_swd(cat, coffee, seed=4) == pytest.approx(d, rel=0.2)  # other directions, same scale


def test_swd_subsampling_is_deterministic_and_small_for_same_image(cat, coffee):
    kw = dict(max_patches=500, n_directions=64)
    d_same = patch_swd(cat, cat, **kw, seed=5)
    assert d_same == patch_swd(cat, cat, **kw, seed=5)
    assert 0 < d_same < 0.2 * patch_swd(cat, coffee, **kw, seed=5)  # independent draws per image


def test_swd_different_sizes(cat, coffee):
    small = F.interpolate(cat, scale_factor=0.75, mode="bicubic", antialias=True, align_corners=False)
    d_scaled = patch_swd(cat, small)
    assert d_scaled == pytest.approx(patch_swd(small, cat), rel=1e-5)
    assert 0 < d_scaled < patch_swd(small, coffee)
    assert patch_swd(cat[..., :40, :], cat) < patch_swd(coffee[..., :40, :], cat)  # crop of itself is closer


@pytest.mark.parametrize(
    "a_shape, b_shape, name",
    [
        ((1, 3, 6, 30), (1, 3, 30, 30), "a"),
        ((1, 3, 30, 30), (3, 30, 6), "b"),
        ((1, 1, 30, 30), (1, 3, 30, 30), "a"),
        ((2, 3, 30, 30), (1, 3, 30, 30), "a"),
        ((1, 3, 30, 30), (30, 30), "b"),
    ],
)
def test_swd_rejects_bad_inputs(a_shape, b_shape, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        patch_swd(torch.zeros(a_shape), torch.zeros(b_shape))


# --------------------------------------------------------------------------- pixel_diversity


def test_diversity_identical_samples_is_zero(cat):
    assert pixel_diversity(cat.repeat(4, 1, 1, 1), cat) == 0.0


def test_diversity_noise_samples_is_large_and_resizes_real(cat):
    g = torch.Generator().manual_seed(0)
    samples = 2 * torch.rand((8, 3, 32, 40), generator=g) - 1  # uniform noise, std ~0.58 per pixel
    d = pixel_diversity(samples, cat)  # real is 53x80, resized to 32x40
    assert d > 0.8
    real_std = F.interpolate(cat, size=(32, 40), mode="bicubic", antialias=True, align_corners=False).std(correction=0)
    assert d == pytest.approx(float(samples.std(0, correction=0).mean() / real_std), rel=1e-6)


def test_diversity_noisy_copies_scale_with_noise(cat):
    low = torch.cat([noisy(cat, 0.02, s) for s in range(4)])
    high = torch.cat([noisy(cat, 0.2, s) for s in range(4)])
    assert 0 < pixel_diversity(low, cat) < pixel_diversity(high, cat)


def test_diversity_needs_two_samples(cat):
    with pytest.raises(ValueError, match="at least 2"):
        pixel_diversity(cat, cat)
    with pytest.raises(ValueError, match="samples"):
        pixel_diversity(cat[0], cat)


# --------------------------------------------------------------------------- sifid


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory) -> Path:
    """A randomly initialised weights file with pytorch-fid key names (plus an ignored extra key)."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    tensors = {"Mixed_5b.branch1x1.conv.weight": torch.zeros(1)}
    for name, cin, cout in (("Conv2d_1a_3x3", 3, 32), ("Conv2d_2a_3x3", 32, 32), ("Conv2d_2b_3x3", 32, 64)):
        tensors[f"{name}.conv.weight"] = torch.randn((cout, cin, 3, 3), generator=g) * (2 / (9 * cin)) ** 0.5
        tensors[f"{name}.bn.weight"] = 1 + 0.1 * torch.randn(cout, generator=g)
        tensors[f"{name}.bn.bias"] = 0.1 * torch.randn(cout, generator=g)
        tensors[f"{name}.bn.running_mean"] = 0.1 * torch.randn(cout, generator=g)
        tensors[f"{name}.bn.running_var"] = 1 + torch.rand(cout, generator=g)
    path = tmp_path_factory.mktemp("sifid") / "inception_block0.safetensors"
    save_file(tensors, str(path))
    return path


def test_frechet_distance_matches_eigenvalues_of_product():
    g = torch.Generator().manual_seed(0)
    a = torch.randn((200, 8), generator=g, dtype=torch.float64)
    b = torch.randn((200, 8), generator=g, dtype=torch.float64) @ torch.randn((8, 8), generator=g, dtype=torch.float64)
    s1, s2, m1, m2 = torch.cov(a.T), torch.cov(b.T), a.mean(0), b.mean(0)
    # tr sqrt(S1 S2) = sum of square roots of the (real, non-negative) eigenvalues of S1 S2
    tr_sqrt = torch.linalg.eigvals(s1 @ s2).real.clamp(min=0).sqrt().sum()
    expected = (m1 - m2).pow(2).sum() + s1.trace() + s2.trace() - 2 * tr_sqrt
    assert _frechet_distance(m1, s1, m2, s2) == pytest.approx(float(expected), rel=1e-9)
    assert _frechet_distance(m1, s1, m1, s1) == pytest.approx(0.0, abs=1e-9)


def test_sifid_without_weights_is_unavailable(cat):
    with pytest.raises(MetricUnavailable, match="no download is attempted"):
        sifid(cat, cat, None)
    assert issubclass(MetricUnavailable, RuntimeError)


def test_sifid_missing_file(cat, tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        sifid(cat, cat, tmp_path / "nope.safetensors")


def test_sifid_incomplete_file(cat, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "partial.safetensors"
    save_file({"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 3, 3)}, str(path))
    with pytest.raises(ValueError, match="Conv2d_2b_3x3.bn.running_var"):
        sifid(cat, cat, path)


def test_sifid_with_local_weights(cat, coffee, inception_weights):
    assert sifid(cat, cat, inception_weights) == pytest.approx(0.0, abs=1e-6)
    d_noisy = sifid(cat, noisy(cat, 0.05), str(inception_weights))
    d_other = sifid(cat, coffee, inception_weights)
    assert 0 < d_noisy < d_other
    assert sifid(coffee, cat, inception_weights) == pytest.approx(d_other, rel=1e-6)


def test_sifid_rejects_tiny_image(cat, inception_weights):
    with pytest.raises(ValueError, match="^fake "):
        sifid(cat, cat[..., :10, :10], inception_weights)
