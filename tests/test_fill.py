"""Content-aware fill in the core (issue 24 item 4): singan_core.fill, singan_core.membrane and
the seam measure (singan_core.metrics.seam_ratio), on small images."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from singan_core import fill
from singan_core.errors import InvalidArgument
from singan_core.imageio import load_image
from singan_core.membrane import membrane_clone, membrane_fill
from singan_core.metrics import seam_ratio
from singan_core.patch_synthesis import PatchSynthesisConfig, synthesize


@pytest.fixture(scope="module")
def cat(shared_images) -> torch.Tensor:
    x = load_image(shared_images / "chelsea.png")
    return F.interpolate(x, size=(150, 226), mode="area")


def square(shape, top: int, left: int, size: int) -> torch.Tensor:
    mask = torch.zeros(1, 1, *shape)
    mask[..., top : top + size, left : left + size] = 1
    return mask


def test_seam_ratio_is_about_one_on_the_image_itself_and_high_for_a_pasted_patch(cat):
    mask = square(cat.shape[-2:], 40, 60, 48)
    assert 0.6 < seam_ratio(cat, mask) < 1.3
    pasted = cat.clone()
    pasted[..., 40:88, 60:108] = cat[..., 90:138, 160:208]  # another part of the photo, no boundary condition
    assert seam_ratio(pasted, mask) > 1.5
    assert torch.isnan(torch.tensor(seam_ratio(cat, torch.ones(1, 1, *cat.shape[-2:]))))  # no border inside
    with pytest.raises(ValueError):
        seam_ratio(cat, torch.zeros(10, 10))


def test_membrane_fill_carries_the_border_colours_in_smoothly():
    x = torch.zeros(1, 3, 32, 32)
    x[..., :, :16] = -1.0
    x[..., :, 16:] = 1.0
    hole = square((32, 32), 8, 8, 16) > 0.5
    out = membrane_fill(x, hole)
    assert torch.equal(out[~hole.expand_as(out)], x[~hole.expand_as(x)])
    row = out[0, 0, 16, 8:24]
    assert row[0] < -0.5 and row[-1] > 0.5 and bool((row[1:] >= row[:-1] - 1e-6).all())  # a ramp, left to right


def test_membrane_clone_removes_a_colour_offset_and_keeps_the_texture(cat):
    hole = square(cat.shape[-2:], 40, 60, 48) > 0.5
    shifted = torch.where(hole, (cat + 0.3).clamp(-1, 1), cat)  # the right texture, too bright
    out = membrane_clone(shifted, hole)
    assert torch.equal(out[~hole.expand_as(out)], cat[~hole.expand_as(cat)])
    inside = hole.expand_as(out)
    assert (out - cat)[inside].mean().abs() < 0.3 * 0.3  # most of the offset is gone
    assert seam_ratio(out, hole.float()) < 0.6 * seam_ratio(shifted, hole.float())
    high = lambda y: y - F.avg_pool2d(y, 5, 1, 2, count_include_pad=False)  # noqa: E731
    assert (high(out) - high(cat))[..., 44:84, 64:104].abs().mean() < 0.02  # the detail is the fill's own


def test_fill_removes_an_object_keeps_the_rest_and_leaves_no_seam(cat):
    image = cat.clone()
    image[..., 20:56, 150:196] = torch.tensor([0.9, -0.9, -0.9]).view(1, 3, 1, 1)  # a red block on the ear
    mask = torch.zeros(1, 1, *cat.shape[-2:])
    mask[..., 16:60, 146:200] = 1
    out = fill(image, mask, seed=0)
    keep = mask.expand_as(out) < 0.5
    assert torch.equal(out[keep], image[keep])
    assert (out[:, 0] - out[:, 1])[..., 20:56, 150:196].mean() < 0.5  # the red is gone
    assert seam_ratio(out, mask) <= 1.2
    control = image.clone()
    control[..., 16:60, 146:200] = synthesize(
        cat[..., 16:60, 146:200], 44, 54, seed=1, config=PatchSynthesisConfig(coarsest_size=24)
    )
    assert seam_ratio(control, mask) > 1.2  # a variation pasted without the boundary condition
    assert torch.equal(fill(image, mask, seed=0), out)  # a seed repeats


def test_fill_refuses_a_negative_noise():
    with pytest.raises(InvalidArgument) as err:
        fill(torch.zeros(1, 3, 32, 32), torch.ones(32, 32), noise_sigma=-1.0)
    assert err.value.field == "noise_sigma"
