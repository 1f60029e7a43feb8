"""Tests of the GPNN patch engine (singan_core.patch_synthesis): instant and lift on small real images.

Sizes are 64-160 px so each test takes about a second on one CPU thread; the 512 px acceptance
cases (brick period, sharpness, copy score) are in tests/test_full_resolution.py.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from singan_core.errors import InvalidArgument
from singan_core.imageio import load_image
from singan_core.metrics import bond_ratio, copied_region_fraction, copy_score, lattice_ratios, sharpness
from singan_core.patch_synthesis import PatchSynthesisConfig, inpaint, level_sizes, synthesize


def photo(shared_images, name: str, size: int) -> torch.Tensor:
    """A test photo as (1, 3, h, w) in [-1, 1], its shorter side resized to ``size`` px."""
    x = load_image(shared_images / name)
    f = size / min(x.shape[-2:])
    return F.interpolate(x, scale_factor=f, mode="bicubic", antialias=True, align_corners=False).clamp(-1, 1)


@pytest.fixture(scope="module")
def brick(shared_images) -> torch.Tensor:
    return photo(shared_images, "brick.png", 128)


@pytest.fixture(scope="module")
def gravel(shared_images) -> torch.Tensor:
    return photo(shared_images, "gravel.png", 128)


SMALL = PatchSynthesisConfig(coarsest_size=24)


def test_instant_shape_range_and_device(brick):
    out = synthesize(brick, 96, 160, seed=1, config=SMALL)
    assert out.shape == (1, 3, 96, 160)
    assert out.dtype == torch.float32 and out.device == brick.device
    assert out.min() >= -1 and out.max() <= 1
    # made of the source's values: the grey source gives a grey output, not noise
    assert (out[:, 0] - out[:, 1]).abs().max() < 1e-4
    assert out.std() > 0.5 * brick.std()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_the_source_device(brick):
    out = synthesize(brick.cuda(), 96, 96, seed=1, config=SMALL)
    assert out.device == brick.cuda().device and out.shape == (1, 3, 96, 96)
    assert out.min() >= -1 and out.max() <= 1 and out.std() > 0.5 * brick.std()


def test_same_seed_repeats_exactly_and_seeds_differ(gravel):
    a = synthesize(gravel, 96, 96, seed=3, config=SMALL)
    b = synthesize(gravel, 96, 96, seed=3, config=SMALL)
    c = synthesize(gravel, 96, 96, seed=4, config=SMALL)
    assert torch.equal(a, b)
    assert (a - c).abs().mean() > 0.1  # different layouts, not a re-noised copy (measured 0.26)


def _seam_and_interior(x: torch.Tensor) -> tuple[float, float]:
    """The stronger of the two wrap-around seams (mean |difference| between the last and first
    column, and row) and the 90th percentile of the same measure between interior neighbours."""
    cols = (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=(0, 1, 2))
    rows = (x[..., 1:, :] - x[..., :-1, :]).abs().mean(dim=(0, 1, 3))
    seam_c = (x[..., :, 0] - x[..., :, -1]).abs().mean()
    seam_r = (x[..., 0, :] - x[..., -1, :]).abs().mean()
    return max(float(seam_c), float(seam_r)), float(torch.cat([cols, rows]).quantile(0.9))


def test_circular_output_tiles_and_plain_output_does_not(gravel):
    """Seam / interior measured over seeds 0-3: 0.84-1.13 tiled, 1.52-1.57 plain."""
    tile = synthesize(gravel, 128, 128, circular=True, seed=0, config=SMALL)
    seam, interior = _seam_and_interior(tile)
    assert seam <= 1.25 * interior
    plain = synthesize(gravel, 128, 128, circular=False, seed=0, config=SMALL)
    seam, interior = _seam_and_interior(plain)
    assert seam > 1.35 * interior  # the control: without wrap-around the edges do not meet


def test_lift_is_sharp_and_keeps_a_new_layout(brick):
    """A 48 px image of a new layout (not the source's thumbnail, which a copy would pass) lifted
    to 128 px: the source's detail on the init's structure (measured: sharpness 0.87 of the
    source's and 44x bicubic's, layout error 0.03 vs 0.11 to the source's own thumbnail, copy 0.08)."""
    thumb = F.interpolate(brick, size=(48, 48), mode="bicubic", antialias=True, align_corners=False)
    small = synthesize(thumb, 48, 48, seed=5, config=SMALL)
    bicubic = F.interpolate(small, size=(128, 128), mode="bicubic", align_corners=False).clamp(-1, 1)
    lifted = synthesize(brick, 128, 128, init=small, seed=0)
    assert lifted.shape == (1, 3, 128, 128)
    assert sharpness(lifted) > 0.6 * sharpness(brick)
    assert sharpness(lifted) > 10 * sharpness(bicubic)
    down = F.interpolate(lifted, size=(48, 48), mode="bicubic", antialias=True, align_corners=False)
    assert (down - small).abs().mean() < 0.06
    assert copy_score(lifted, brick) < 0.3


def test_on_step_reports_each_level_and_can_stop(brick):
    calls = []
    synthesize(brick, 96, 96, config=SMALL, on_step=lambda done, total: calls.append((done, total)))
    total = calls[-1][1]
    assert total >= 3 and calls == [(i, total) for i in range(1, total + 1)]

    class Stop(Exception):
        pass

    def stop(done, total):
        calls.append(done)
        raise Stop

    calls.clear()
    with pytest.raises(Stop):
        synthesize(brick, 96, 96, config=SMALL, on_step=stop)
    assert calls == [1]


def _completeness(out: torch.Tensor, source: torch.Tensor, p: int = 7) -> tuple[int, float]:
    """How many distinct source patches are the exact nearest neighbours of the output's patches,
    and the mean distance (per-element MSE) from each source patch to its nearest output patch."""
    q = F.unfold(out, p)[0].T
    k = F.unfold(source, p)[0].T
    d = torch.cdist(q, k).square() / q.shape[1]
    return int(d.argmin(1).unique().numel()), float(d.min(0).values.mean())


def test_alpha_uses_more_of_the_source_than_plain_nearest_neighbours(gravel):
    """GPNN's completeness: D / (alpha + min_q D) spreads the output over more source patches
    (measured 2997 vs 1964 distinct patches of 3364, reverse distance 0.008 vs 0.018)."""
    source = gravel[..., :64, :64]
    used, missed = _completeness(synthesize(source, 64, 64, seed=0, config=SMALL), source)
    plain = dataclasses.replace(SMALL, use_alpha=False)
    used_plain, missed_plain = _completeness(synthesize(source, 64, 64, seed=0, config=plain), source)
    assert used > 1.1 * used_plain
    assert missed < 0.7 * missed_plain


MAX_COPIED = 0.25  # copied-region fraction of a variation (issue 24); the source itself scores 1.0


def assert_keeps_lattice(out: torch.Tensor, source: torch.Tensor) -> None:
    """Issue 24's lattice rule: periods along x and y within 8 %, autocorrelation peak >= 0.7x."""
    rx, ry, peak = lattice_ratios(out, source)
    assert abs(rx - 1) <= 0.08 and abs(ry - 1) <= 0.08 and peak >= 0.7, (rx, ry, peak)


def test_instant_at_the_sources_own_size_is_a_new_lattice_not_a_copy(textures):
    """Chainmail with ~6 rings across, at its own size: GPNN's start (the source's coarsest level
    plus noise) gives the source back (measured copied fraction 0.53 and 0.86 for seeds 0-1);
    the lattice start keeps the lattice and rearranges it (0.06, periods 1.00, peak 0.96-1.03)."""
    mail = textures.chainmail(192, period=32)
    a = synthesize(mail, 192, 192, seed=0)
    b = synthesize(mail, 192, 192, seed=1)
    for out in (a, b):
        assert copied_region_fraction(out, mail) <= MAX_COPIED
        assert_keeps_lattice(out, mail)
    assert (a - b).abs().mean() > 0.1  # seeds differ clearly (measured 0.2)
    gpnn = synthesize(mail, 192, 192, seed=0, config=PatchSynthesisConfig(coarsest_start="resized"))
    assert copied_region_fraction(gpnn, mail) > MAX_COPIED


def test_instant_at_twice_the_size_keeps_the_lattice_a_random_start_loses_it(textures):
    """Measured at 256 px from a 128 px chainmail: lattice start peak 0.95; random mosaic start
    0.18 and GPNN's resized start 0.22 (rings become scribbles)."""
    mail = textures.chainmail(128, period=24)
    out = synthesize(mail, 256, 256, seed=0)
    assert copied_region_fraction(out, mail) <= MAX_COPIED
    assert_keeps_lattice(out, mail)
    scribbles = synthesize(mail, 256, 256, seed=0, config=PatchSynthesisConfig(coarsest_start="mosaic"))
    assert lattice_ratios(scribbles, mail)[2] < 0.7


def test_instant_is_as_sharp_as_its_source_the_mean_of_votes_is_not(gravel):
    """Gravel at its own size: the finest level's centre-weighted dense pass keeps the source's
    sharpness (measured 1.02 of it), GPNN's mean of overlapping votes loses a third (0.64)."""
    source = gravel[..., :128, :128]
    out = synthesize(source, 128, 128, seed=0)
    assert sharpness(out) >= 0.85 * sharpness(source)
    assert copied_region_fraction(out, source) <= MAX_COPIED
    averaged = synthesize(source, 128, 128, seed=0, config=PatchSynthesisConfig(finest_vote_sigma=None))
    assert sharpness(averaged) < 0.85 * sharpness(source)


def test_level_sizes_run_from_just_above_start_to_stop():
    sizes = level_sizes((128, 128), (1024, 1024), 0.75)
    assert sizes[-1] == (1024, 1024) and min(sizes[0]) > 128
    assert all(b[0] > a[0] for a, b in zip(sizes, sizes[1:]))
    assert sizes[0][0] * 0.75 <= 128  # the next coarser level would not be above the start


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(source=torch.zeros(3, 64, 64)), "source"),
        (dict(source=torch.zeros(1, 3, 4, 64)), "source"),
        (dict(source=torch.full((1, 3, 64, 64), float("nan"))), "source"),
        (dict(source=torch.zeros(1, 3, 64, 64, dtype=torch.uint8)), "source"),
        (dict(height=0), "height"),
        (dict(width=20000), "width"),
        (dict(width=64.0), "width"),
        (dict(init=torch.zeros(1, 3, 128, 64)), "init"),
        (dict(seed="1"), "seed"),
        (dict(seed=-1), "seed"),
        (dict(config=PatchSynthesisConfig(alpha=-1.0)), "config.alpha"),
        (dict(config=PatchSynthesisConfig(patch_size=6)), "config.patch_size"),
        (dict(config=PatchSynthesisConfig(ratio=1.0)), "config.ratio"),
        (dict(config=PatchSynthesisConfig(coarsest_start="noise")), "config.coarsest_start"),
        (dict(config=PatchSynthesisConfig(finest_vote_sigma=0.0)), "config.finest_vote_sigma"),
        (dict(config="fast"), "config"),
    ],
)
def test_bad_arguments_name_their_field(kwargs, field):
    args = dict(source=torch.zeros(1, 3, 64, 64), height=96, width=96) | kwargs
    source, height, width = args.pop("source"), args.pop("height"), args.pop("width")
    with pytest.raises(InvalidArgument) as err:
        synthesize(source, height, width, **args)
    assert err.value.field == field
    assert "\n" not in str(err.value)


def _seam_ratio(x: torch.Tensor, top: int, left: int, size: int) -> float:
    """Mean |luminance step| across the four sides of a square hole over the image's mean step."""
    y = x.mean(dim=1)[0]
    b, r = top + size, left + size
    steps = [
        (y[top - 1, left:r] - y[top, left:r]).abs().mean(),
        (y[b - 1, left:r] - y[b, left:r]).abs().mean(),
        (y[top:b, left - 1] - y[top:b, left]).abs().mean(),
        (y[top:b, r - 1] - y[top:b, r]).abs().mean(),
    ]
    inner = torch.cat([(y[:, 1:] - y[:, :-1]).abs().flatten(), (y[1:] - y[:-1]).abs().flatten()]).mean()
    return float(torch.stack(steps).mean() / inner)


def test_inpaint_removes_an_object_and_continues_its_surroundings(textures, shared_images):
    """A cat's fur pasted into bark-like wood, masked and filled: the rest stays bit-identical and
    the hole's border steps are measured 1.5x the image's mean step (the source's own there: 1.2x);
    a variation pasted without the boundary condition 3.5x (the control)."""
    wood = textures.wood(128)
    cat = load_image(shared_images / "chelsea.png")
    image = wood.clone()
    image[..., 40:80, 44:84] = cat[..., 100:140, 200:240]
    mask = torch.zeros(1, 1, 128, 128)
    mask[..., 38:82, 42:86] = 1
    out = inpaint(image, mask, seed=0)
    keep = mask.expand_as(out) < 0.5
    assert out.shape == image.shape and torch.equal(out[keep], image[keep])
    assert (out - image)[..., 40:80, 44:84].abs().mean() > 0.2  # the fur is gone
    pasted = image.clone()
    pasted[..., 38:82, 42:86] = synthesize(wood, 44, 44, seed=3, config=SMALL)
    assert _seam_ratio(out, 38, 42, 44) < 0.6 * _seam_ratio(pasted, 38, 42, 44)


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (torch.zeros(64, 64), "empty"),
        (torch.ones(64, 64), "no 7x7 patch"),
        (torch.zeros(32, 32), "64x64"),
        (torch.full((64, 64), 2.0), "[0, 1]"),
    ],
)
def test_inpaint_bad_masks_name_the_field(mask, message):
    with pytest.raises(InvalidArgument) as err:
        inpaint(torch.zeros(1, 3, 64, 64), mask)
    assert err.value.field == "mask" and message in str(err.value)


def test_bond_ratio_catches_the_brick_bond_that_todays_instant_loses(shared_images):
    """Issue 24 (open): at the source's own size, today's instant of brick.png keeps the column
    period and the axis peak (lattice_ratios pass), but its columns meander and its bricks merge
    into strips: the bond's peaks fall (measured 0.40 and 0.05 for seeds 0 and 1, the source's
    crops 0.79-0.94). This is the control that the bond check must fail; when the engine keeps
    the bond, assert ``>= 0.7`` here instead."""
    brick = load_image(shared_images / "brick.png")  # 512 px: the bond needs a few bricks' room
    h, w = brick.shape[-2:]
    for seed in (0, 1):
        out = synthesize(brick, h, w, seed=seed)
        rx, _, peak = lattice_ratios(out, brick)
        assert abs(rx - 1) < 0.08 and peak >= 0.7  # the axis numbers pass ...
        assert bond_ratio(out, brick) < 0.6  # ... the bond does not
