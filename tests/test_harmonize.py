"""Harmonization an artist would keep (issue 23): no halo, the scene's colours, the object's shape.

The checks are issue 23's acceptance figures (:mod:`singan_core.harmonization_metrics`) on small
composites whose background is known. Each check has a negative control asserted to fail it: the
paper's upsampled correction (halo), a flat fill with the ring's colour (shape), a global colour
shift of the object (texture), the unchanged composite (colour).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from protocol.wire import Image as WireImage

from singan_core.colour_transfer import lab_to_rgb, reinhard_transfer, rgb_to_lab
from singan_core.compositing import upsampled_correction
from singan_core.guided_filter import guided_upsample
from singan_core.harmonization import METHODS, harmonize, ring_around
from singan_core.harmonization_texture import AnalogyConfig, analogy_detail, gaussian_blur
from singan_core.harmonization_metrics import gradient_correlation, halo, ring_delta_e, texture_swd
from singan_core.imageio import from_uint8, load_image, to_uint8
from singan_core.pyramid import resize

RING_PX = (10, 30)  # the bench's 60-100 px ring, at these images' size
BAND_PX = 8  # the halo band (bench: 40 px)
HALO_LIMIT = 1.0  # mean |difference| from the true background, 8-bit units


# --------------------------------------------------------------------------- the checks


def colour_ok(result, naive, mask) -> bool:
    """Delta E object-vs-ring reduced by at least 40 %."""
    return ring_delta_e(result, mask, *RING_PX) <= 0.6 * ring_delta_e(naive, mask, *RING_PX)


def halo_ok(result, background, mask) -> bool:
    return halo(result, background, mask, BAND_PX) <= HALO_LIMIT


def shape_ok(result, pasted, mask) -> bool:
    return gradient_correlation(result, pasted, mask) >= 0.6


def texture_ok(result, naive, background, mask) -> bool:
    """The object's texture (patches minus their mean colour) is closer to the background's than the naive composite's."""
    return texture_swd(result, background, mask, detail=True) < texture_swd(naive, background, mask, detail=True)


def band_ok(result, naive, background, mask) -> bool:
    """The object's finest band (the texture at the canvas's scale) is at most half as far from the
    background's as the naive composite's."""
    return texture_swd(result, background, mask, band_sigma=1.0) < 0.5 * texture_swd(
        naive, background, mask, band_sigma=1.0
    )


# --------------------------------------------------------------------------- a composite with a known background


def paste(
    background: torch.Tensor, obj: torch.Tensor, top: int, left: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(naive composite, pasted object on the canvas, mask): ``obj`` cut out by an ellipse at (top, left)."""
    h, w = obj.shape[-2:]
    shape = Image.new("L", (w, h), 0)
    ImageDraw.Draw(shape).ellipse((0, 0, w - 1, h - 1), fill=255)
    mask = torch.zeros(1, 1, *background.shape[-2:], dtype=torch.bool)
    mask[..., top : top + h, left : left + w] = torch.from_numpy(np.asarray(shape) > 127)
    pasted = background.clone()
    pasted[..., top : top + h, left : left + w] = obj
    return torch.where(mask, pasted, background), pasted, mask


@pytest.fixture(scope="module")
def cup_on_cat(shared_images):
    """The coffee cup (a warm, sharp object) pasted onto chelsea.png (the tiny model's image)."""
    background = load_image(shared_images / "chelsea.png")
    cup = load_image(shared_images / "coffee.png")[..., 20:380, 40:480]
    cup = F.interpolate(cup, size=(110, 134), mode="area")
    return (background, *paste(background, cup, 40, 60))


@pytest.fixture(scope="module")
def synthetic():
    """A blue-grey sky with a vertical gradient and an orange disk with a light band (no model)."""
    h, w = 96, 128
    y = torch.linspace(-0.6, -0.2, h)[:, None].expand(h, w)
    background = torch.stack([y - 0.2, y, y + 0.4])[None].clamp(-1, 1)
    obj = torch.tensor([0.5, 0.1, -0.5])[None, :, None, None].expand(1, 3, 40, 40).clone()
    obj[..., 15:25, :] = 0.55  # a light band: structure to keep
    return (background, *paste(background, obj, 28, 44))


@pytest.fixture(scope="module")
def hatched():
    """A scene with a fine texture (a diagonal hatching of period 5 px on a vertical gradient, the
    stand-in for a photo's grain or a canvas's weave) and a smooth object with structure (vertical
    bands 19 px wide on an orange disk) pasted in: the texture is known and the object has none."""
    h, w = 120, 160
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    background = (
        torch.stack([yy / h * 0.4 - 0.6, yy / h * 0.4 - 0.4, yy / h * 0.4])[None]
        + 0.12 * torch.sin(2 * torch.pi * (xx + yy) / 5)
    ).clamp(-1, 1)
    bands = 0.35 * torch.sign(torch.sin(xx[:70, :90] / 6))
    obj = (torch.tensor([0.5, 0.1, -0.5])[None, :, None, None] + bands).clamp(-1, 1)
    return (background, *paste(background, obj, 25, 35))


# --------------------------------------------------------------------------- building blocks (fast)


def test_lab_round_trip():
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert torch.allclose(lab_to_rgb(rgb_to_lab(x)), x, atol=1e-4)
    white = rgb_to_lab(torch.ones(1, 3, 1, 1))[0, :, 0, 0]
    assert torch.allclose(white, torch.tensor([100.0, 0.0, 0.0]), atol=0.05)


def test_guided_upsample_keeps_the_change_inside(synthetic):
    """The model's low-resolution change is +0.4 inside the object and -0.4 outside: the guided
    upsampling gives the object +0.4 up to its edge and leaves every outside pixel bit-identical;
    the paper's bicubic correction (the control) leaks the outside's change into the object's rim
    and the inside's into the background."""
    background, naive, _, mask = synthetic
    low_in = resize(naive, (24, 32))
    low_mask = F.interpolate(mask.float(), size=(24, 32), mode="area")
    low_out = low_in + 0.4 * (2 * low_mask - 1)
    guided = guided_upsample(naive, low_in, low_out, mask)
    assert torch.equal(guided[~mask.expand_as(guided)], naive[~mask.expand_as(naive)])
    rim = mask & ~(-F.max_pool2d(-mask.float(), 5, 1, 2) > 0.5)  # the object's outer 2 px
    change = (guided - naive).mean(1, keepdim=True)
    assert change[rim].min() > 0.25 and change[mask].mean() > 0.35
    assert halo_ok(guided, background, mask)
    paper = upsampled_correction(naive, low_out).clamp(-1, 1)
    assert not halo_ok(paper, background, mask)
    assert (paper - naive).mean(1, keepdim=True)[rim].min() < 0.2


def test_reinhard_moves_the_colour_and_keeps_the_shape(synthetic):
    background, naive, pasted, mask = synthetic
    ring = ring_around(mask, 20)
    result = reinhard_transfer(naive, mask, ring)
    assert torch.equal(result[~mask.expand_as(result)], naive[~mask.expand_as(naive)])
    assert colour_ok(result, naive, mask) and halo_ok(result, background, mask) and shape_ok(result, pasted, mask)
    assert not colour_ok(naive, naive, mask)  # control: the unchanged composite


def test_analogies_lay_the_scenes_texture_on_the_object(hatched):
    """The object's finest band comes from the scene's own patches (image analogies): its texture
    moves towards the scene's, its bands (shape) stay, and nothing outside it changes. Controls:
    the unchanged composite and a blur of the object (softer, not the scene's texture) fail the
    texture check; grain of the same energy (white noise, the band's std) lands farther from the
    scene's texture than the analogy; the analogy without its coherence pass (each query its own
    best key, overlapping values of unrelated phases averaged) lands farther too; the flat ring
    fill fails the shape check."""
    background, naive, pasted, mask = hatched
    result = analogy_detail(naive, mask)
    outside = ~mask.expand_as(naive)
    assert torch.equal(result[outside], naive[outside])
    assert texture_ok(result, naive, background, mask) and shape_ok(result, pasted, mask)
    assert halo_ok(result, background, mask)
    band = background - gaussian_blur(background, 1.0)
    noise = naive + band.std() * torch.randn(naive.shape, generator=torch.Generator().manual_seed(0))
    controls = {
        "unchanged": naive,
        "blur": torch.where(mask, gaussian_blur(naive, 1.5), naive),
        "noise": torch.where(mask, noise.clamp(-1, 1), naive),
        "no coherence": analogy_detail(naive, mask, AnalogyConfig(rounds=0)),
    }
    assert band_ok(result, naive, background, mask)
    swd = {name: texture_swd(x, background, mask, band_sigma=1.0) for name, x in controls.items()}
    ours = texture_swd(result, background, mask, band_sigma=1.0)
    assert all(ours < 0.8 * value for value in swd.values()), (ours, swd)
    assert not band_ok(controls["unchanged"], naive, background, mask)
    assert not band_ok(controls["blur"], naive, background, mask)
    # the mean-removed patch distance cannot tell: the blur lowers it too (the object's edges soften)
    assert texture_ok(controls["blur"], naive, background, mask)
    ring = ring_around(mask, RING_PX[1])
    flat = torch.where(mask, naive[0][:, ring[0, 0]].mean(1)[None, :, None, None], naive)
    assert not shape_ok(flat, pasted, mask)


def test_analogies_keys_never_come_from_the_excluded_region(hatched):
    """``exclude`` bans sources: with the whole scene excluded but the object nothing can be copied
    and the image comes back unchanged (a key taken from the object itself would copy the object)."""
    _, naive, _, mask = hatched
    assert torch.equal(analogy_detail(naive, mask, exclude=torch.ones_like(mask)), naive)


def test_controls_fail_their_checks(cup_on_cat):
    """Each plausible wrong answer fails the check meant to catch it."""
    background, naive, pasted, mask = cup_on_cat
    ring = ring_around(mask, RING_PX[1])
    flat = torch.where(mask, naive[0][:, ring[0, 0]].mean(1)[None, :, None, None], naive)
    assert colour_ok(flat, naive, mask) and not shape_ok(flat, pasted, mask)
    # the object's mean colour moved onto the ring's (unclamped), its texture untouched
    shift = naive[0][:, ring[0, 0]].mean(1) - naive[0][:, mask[0, 0]].mean(1)
    shifted = torch.where(mask, naive + shift[None, :, None, None], naive)
    assert not texture_ok(shifted, naive, background, mask)
    assert shape_ok(shifted, pasted, mask)  # the shape check alone cannot catch it
    assert not texture_ok(naive, naive, background, mask)
    assert not colour_ok(naive, naive, mask)


def test_bad_arguments_name_the_field(synthetic, chelsea_model):
    _, naive, _, mask = synthetic
    with pytest.raises(ValueError, match="method: unknown method 'best'"):
        harmonize(chelsea_model, naive, mask, method="best")
    with pytest.raises(ValueError, match=r"strength: must be in \[0, 1\], got 1.5"):
        harmonize(chelsea_model, naive, mask, strength=1.5)
    with pytest.raises(ValueError, match="mask: covers the whole image"):
        harmonize(chelsea_model, naive, torch.ones_like(mask), method="reinhard")


# --------------------------------------------------------------------------- with the model (tiny, trained once)


@pytest.mark.slow
def test_default_method_passes_every_check_and_the_paper_fails_the_halo(cup_on_cat, chelsea_model):
    background, naive, pasted, mask = cup_on_cat
    result = harmonize(chelsea_model, naive, mask, seed=1)
    assert result.image.shape == naive.shape
    outside = ~mask.expand_as(naive)
    assert torch.equal(result.image[outside], naive[outside])
    assert colour_ok(result.image, naive, mask)
    assert halo_ok(result.image, background, mask)
    assert shape_ok(result.image, pasted, mask)
    assert texture_ok(result.image, naive, background, mask)
    paper = harmonize(chelsea_model, naive, mask, method="paper", seed=1).image
    assert not halo_ok(paper, background, mask)
    assert halo(result.image, background, mask, BAND_PX) <= 0.25 * halo(paper, background, mask, BAND_PX)


@pytest.mark.slow
def test_every_method_keeps_far_pixels_and_paper_is_unchanged(cup_on_cat, chelsea_model):
    """``method="paper"`` is the masked injection exactly as before issue 23."""
    from singan_core.compositing import masked_injection
    from singan_core.harmonization import DILATION, default_scale

    _, naive, _, mask = cup_on_cat
    far = ~ring_around(mask, 60) & ~mask
    for method in METHODS:
        out = harmonize(chelsea_model, naive, mask, method=method, noise=False).image
        assert torch.equal(out[far.expand_as(out)], naive[far.expand_as(naive)]), method
    old = masked_injection(chelsea_model, naive, mask, default_scale(chelsea_model), DILATION, noise=False)
    assert torch.equal(harmonize(chelsea_model, naive, mask, method="paper", noise=False).image, old.image)


@pytest.mark.slow
def test_analogies_passes_every_check(cup_on_cat, chelsea_model):
    background, naive, pasted, mask = cup_on_cat
    result = harmonize(chelsea_model, naive, mask, method="analogies", seed=1).image
    outside = ~mask.expand_as(naive)
    assert torch.equal(result[outside], naive[outside])
    assert colour_ok(result, naive, mask) and halo_ok(result, background, mask)
    assert shape_ok(result, pasted, mask) and texture_ok(result, naive, background, mask)


@pytest.mark.slow
def test_edit_shares_the_path_and_paper_is_unchanged(cup_on_cat, chelsea_model):
    """``edit(method="paper")`` is the masked injection exactly; the default (``analogies``) differs
    from it only in the finest band (its blur is the paper's blur) and only where the feathered
    mask is above 0."""
    from singan_core.compositing import masked_injection
    from singan_core.editing import DILATION, default_scale, edit

    _, naive, _, mask = cup_on_cat
    k = default_scale(chelsea_model)
    old = masked_injection(chelsea_model, naive, mask, k, DILATION, noise=False, image_name="edited image")
    paper = edit(chelsea_model, naive, mask, method="paper", noise=False)
    assert torch.equal(paper.image, old.image) and torch.equal(paper.unmasked, old.unmasked)
    new = edit(chelsea_model, naive, mask, noise=False)
    untouched = (new.weight == 0).expand_as(naive)
    assert torch.equal(new.image[untouched], naive[untouched])
    assert not torch.equal(new.image, paper.image)
    coarse = (gaussian_blur(new.image, 3.0) - gaussian_blur(paper.image, 3.0)).abs().mean()
    assert coarse < 0.25 * (new.image - paper.image).abs().mean() + 1e-3
    with pytest.raises(ValueError, match="method: unknown method"):
        edit(chelsea_model, naive, mask, method="best")


def test_schema_defaults_are_the_cores():
    from protocol.schema import HarmonizeParams
    from singan_core.harmonization import DEFAULT_METHOD, DEFAULT_STRENGTH

    params = HarmonizeParams(model="m")
    assert (params.method, params.strength) == (DEFAULT_METHOD, DEFAULT_STRENGTH)
    assert set(HarmonizeParams.model_fields["method"].annotation.__args__) == set(METHODS)
    from protocol.schema import EditParams
    from singan_core import editing

    assert EditParams(model="m").method == editing.DEFAULT_METHOD
    assert set(EditParams.model_fields["method"].annotation.__args__) == set(editing.METHODS)


# --------------------------------------------------------------------------- through the daemon


def wire(pixels: np.ndarray, name: str, order: str) -> WireImage:
    h, w = pixels.shape[:2]
    return WireImage(name, w, h, order, np.ascontiguousarray(pixels).tobytes())


@pytest.mark.slow
def test_daemon_harmonize_default_is_the_new_method(served_model, cup_on_cat):
    """A harmonize request with only the model and the two images: the default method's layer
    (RGBA, opaque on the object only) passes the halo and colour checks; the same request with
    ``method: paper`` (the control) fails the halo check. Outside the object the 8-bit composite
    is the true background."""
    _, naive, _, mask = cup_on_cat
    h, w = naive.shape[-2:]
    sent = to_uint8(naive)
    images = [wire(sent, "image", "RGB"), wire(mask[0, 0].numpy().astype(np.uint8) * 255, "mask", "GRAY")]
    layers = {}
    with served_model.daemon.client() as client:
        for method in ("default", "paper"):
            params = {"model": served_model.model, "output_order": "RGBA"} | (
                {"method": method} if method == "paper" else {}
            )
            job = client.submit("harmonize", params, images)
            job.wait(timeout=120)
            layers[method] = np.frombuffer(job.images[0].data, np.uint8).reshape(h, w, 4)
    assert ((layers["default"][..., 3] == 255) == mask[0, 0].numpy()).all()  # the layer is the object, nothing else
    composite = from_uint8(sent)
    new, paper = (from_uint8(layers[m][..., :3]) for m in ("default", "paper"))
    assert halo_ok(new, composite, mask) and colour_ok(new, composite, mask)
    assert not halo_ok(paper, composite, mask)
