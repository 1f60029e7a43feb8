"""What the daemon sends back is the library's picture: the real ``singan serve`` subprocess over a
real socket (the session's ``served_model``), compared pixel for pixel with the same call made in
this process on the model directory the daemon wrote (``load_pyramid``).

The library side runs on the device the daemon chose (``select_device("auto")``, the daemon's
default). On the CPU both run torch on one thread and the 8-bit pixels agree exactly in practice;
the comparison allows one level of rounding on a few pixels (another summation order).
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from safetensors.torch import load_file

from protocol.wire import Image
from singan_core import animation, editing, harmonization, paint
from singan_core.device import select_device
from singan_core.harmonization_metrics import gradient_correlation
from singan_core.imageio import from_uint8, to_uint8
from singan_core.sampling import sample
from singan_core.storage import load_pyramid
from singan_core.super_resolution import super_resolve

from conftest import wire_image

pytestmark = pytest.mark.slow

DEVICE = select_device("auto")  # what ``singan serve`` uses without --device


def pixels(image: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a wire image in RGB, RGBA or BGRA order."""
    array = np.frombuffer(bytes(image.data), np.uint8).reshape(image.height, image.width, -1)
    return array[..., [2, 1, 0]] if image.order == "BGRA" else array[..., :3]


def same_pixels(received: list[Image], expected: torch.Tensor) -> bool:
    """Whether the wire images are ``expected`` ((N, 3, H, W) in [-1, 1]) as 8-bit pixels: same
    count and sizes, no pixel more than one level off and at most 0.1 % of them off at all."""
    if len(received) != expected.shape[0]:
        return False
    for image, x in zip(received, expected):
        want = to_uint8(x).astype(int)
        got = pixels(image).astype(int)
        if got.shape != want.shape:
            return False
        diff = np.abs(got - want)
        if diff.max() > 1 or (diff > 0).mean() > 1e-3:
            return False
    return True


def model_pyramid(served_model, model_id: str):
    return load_pyramid(served_model.daemon.store / "models" / model_id, DEVICE)[0]


def run(served_model, op: str, params: dict, images: list[Image] = (), timeout: float = 120):
    """Submit a job to the served daemon and wait for it; returns the finished job (``.result``,
    ``.images``, ``.model``)."""
    with served_model.daemon.client() as client:
        job = client.submit(op, params, list(images))
        job.wait(timeout=timeout)
        return job


def noise_images(like: list[Image], seed: int = 0) -> list[Image]:
    """The control: random uint8 pictures of the same sizes and order."""
    rng = np.random.default_rng(seed)
    return [
        Image(im.name, im.width, im.height, im.order, rng.integers(0, 256, len(bytes(im.data)), np.uint8).tobytes())
        for im in like
    ]


def test_generate_equals_the_library_sample(served_model):
    pyramid = model_pyramid(served_model, served_model.model)
    h, w = pyramid.sizes[-1]
    for params, (scale_h, scale_w) in (
        ({}, (1.0, 1.0)),
        ({"width": 2 * w, "height": h, "detail": "model"}, (1.0, 2.0)),
    ):
        images = run(
            served_model, "generate", {"model": served_model.model, "n": 3, "seed": 7, "output_order": "BGRA", **params}
        ).images
        expected = sample(pyramid, 3, scale_h, scale_w, seed=7)
        assert same_pixels(images, expected), params
        assert not same_pixels(images, sample(pyramid, 3, scale_h, scale_w, seed=8))  # the seed matters
        assert not same_pixels(noise_images(images), expected)  # the control: noise does not pass


def test_super_resolve_equals_the_library_call(served_model, shared_images, tmp_path):
    with PILImage.open(shared_images / "reference" / "33039_LR.png") as im:
        low = np.asarray(im.convert("RGB").crop((16, 40, 64, 72)))  # 48 x 32 px
    image = Image("image", low.shape[1], low.shape[0], "RGB", np.ascontiguousarray(low).tobytes())
    job = run(served_model, "super_resolve", {"factor": 2, "preset": "tiny", "name": "lr-crop"}, [image], timeout=300)
    images = job.images
    [out] = images
    assert (out.width, out.height) == (96, 64)
    PILImage.fromarray(pixels(out)).save(tmp_path / "sr_2x_from_the_daemon.png")
    pyramid = model_pyramid(served_model, job.model)
    expected = super_resolve(pyramid, 2)
    assert same_pixels(images, expected)
    assert not same_pixels(noise_images(images), expected)
    # and it is a picture of the input: shrunk back it is the input within a few levels
    back = torch.nn.functional.interpolate(from_uint8(pixels(out)), size=low.shape[:2], mode="area")
    assert np.abs(to_uint8(back).astype(int) - low).mean() < 8


def composite_and_mask(shared_images) -> tuple[np.ndarray, np.ndarray]:
    """chelsea with a piece of the rocket photo pasted on it (uint8 RGB) and that region (uint8 0/255)."""
    with PILImage.open(shared_images / "chelsea.png") as cat, PILImage.open(shared_images / "rocket.jpg") as rocket:
        composite = np.array(cat.convert("RGB"))
        piece = np.asarray(rocket.convert("RGB"))[150:260, 300:380]
    composite[60:170, 250:330] = piece
    mask = np.zeros(composite.shape[:2], np.uint8)
    mask[60:170, 250:330] = 255
    return composite, mask


def test_edit_over_the_wire_is_the_library_edit(served_model, shared_images, tmp_path):
    composite, mask = composite_and_mask(shared_images)
    h, w = mask.shape
    frames = [Image("image", w, h, "RGB", composite.tobytes()), Image("mask", w, h, "GRAY", mask.tobytes())]
    job = run(served_model, "edit", {"model": served_model.model, "seed": 3}, frames)
    result, images = job.result, job.images
    assert [im.name for im in images] == ["image", "unmasked"]
    PILImage.fromarray(pixels(images[0])).save(tmp_path / "edited_by_the_daemon.png")
    expected = editing.edit(
        model_pyramid(served_model, served_model.model),
        from_uint8(composite).to(DEVICE),
        torch.from_numpy(mask > 127)[None, None].to(DEVICE),
        seed=3,
    )
    assert result["scale"] == expected.scale
    assert same_pixels(images[:1], expected.image) and same_pixels(images[1:], expected.unmasked)
    assert not same_pixels(noise_images(images[:1]), expected.image)
    # sensible content: the edited region changed, the pixels far from it did not
    got = pixels(images[0]).astype(int)
    inside, far = mask > 127, expected.weight[0, 0].cpu().numpy() == 0
    assert np.abs(got - composite)[inside].mean() > 5
    assert far.mean() > 0.3 and np.array_equal(got[far], composite[far])


def test_animate_over_the_wire_is_the_library_animation(served_model):
    job = run(served_model, "animate", {"model": served_model.model, "frames": 6, "seed": 2})
    result, images = job.result, job.images
    pyramid = model_pyramid(served_model, served_model.model)
    assert result["scale"] == animation.default_start_scale(pyramid)
    expected = animation.animate(pyramid, 6, result["scale"], seed=2)
    assert same_pixels(images, expected)
    assert not same_pixels(noise_images(images), expected)
    frames = np.stack([pixels(im).astype(int) for im in images])
    steps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    assert (steps > 0).all()  # it moves


def test_bgra_training_input_trains_the_rgb_model(served_model, shared_images):
    """Krita sends BGRA: the daemon stores the same training image as for RGB, and (training is
    seeded, and deterministic on the CPU) the same model: its samples equal those of the
    RGB-trained model. (CUDA training is not bit-reproducible: there only the source is compared.)"""
    image = shared_images / "chelsea.png"
    with served_model.daemon.client() as client:
        job = client.submit("train", {"name": "chelsea-bgra", "preset": "tiny"}, [wire_image(image, order="BGRA")])
        bgra = job.wait(timeout=300)["model"]["id"]
    store = served_model.daemon.store / "models"
    rgb_real = load_file(str(store / served_model.model / "source.safetensors"))["real"]
    bgra_real = load_file(str(store / bgra / "source.safetensors"))["real"]
    assert torch.equal(bgra_real, rgb_real)
    assert not torch.equal(rgb_real.flip(1), rgb_real)  # the control: a channel swap would show
    if DEVICE.type == "cpu":
        from_bgra = run(served_model, "generate", {"model": bgra, "n": 2, "seed": 5}).images
        assert same_pixels(from_bgra, sample(model_pyramid(served_model, served_model.model), 2, seed=5))


# --------------------------------------------------------------------------- issue 30: the other ops, each with a reference of its own


def test_generate_from_a_finer_start_scale_is_the_library_sample_and_keeps_the_photos_layout(
    served_model, shared_images
):
    """``gen_start_scale``, ``scale_h`` and ``output_order: RGBA`` over the wire. The independent
    reference: started at the finest scale (the coarser ones on the reconstruction path, paper
    sec. 4) a sample is close to the training image itself, which a sample started at the
    coarsest scale (the control) is not."""
    pyramid = model_pyramid(served_model, served_model.model)
    last = pyramid.num_scales - 1
    images = run(
        served_model,
        "generate",
        {
            "model": served_model.model,
            "n": 2,
            "seed": 4,
            "gen_start_scale": 1,
            "scale_h": 1.5,
            "detail": "model",
            "output_order": "RGBA",
        },
    ).images
    expected = sample(pyramid, 2, 1.5, 1.0, 1, seed=4)
    assert [im.order for im in images] == ["RGBA"] * 2 and all(
        bytes(im.data)[3::4] == b"\xff" * (im.width * im.height) for im in images
    )
    assert same_pixels(images, expected) and not same_pixels(noise_images(images), expected)
    assert not same_pixels(images, sample(pyramid, 2, 1.5, 1.0, 0, seed=4))  # the start scale reached the library

    real = to_uint8(pyramid.reals[-1]).astype(int)

    def distance_to_the_photo(start: int) -> float:
        [image] = run(
            served_model,
            "generate",
            {"model": served_model.model, "seed": 1, "gen_start_scale": start, "detail": "model"},
        ).images
        return float(np.abs(pixels(image).astype(int) - real).mean())

    finest, coarsest = distance_to_the_photo(last), distance_to_the_photo(0)
    assert finest < 12 < coarsest, (finest, coarsest)


def composite_tensors(composite: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return from_uint8(composite).to(DEVICE), torch.from_numpy(mask > 127)[None, None].to(DEVICE)


def test_harmonize_over_the_wire_is_the_library_call_and_keeps_the_objects_shape(served_model, shared_images):
    """The default method (``reinhard_guided``) with ``output_order: RGBA``. Independent of the
    library call: outside the marked region the composite's pixels are kept bit for bit, and inside
    the mask the object keeps its structure (the core's check: gradient correlation >= 0.6, issue
    23), which a flat fill or noise inside the mask (the controls) does not."""
    composite, mask = composite_and_mask(shared_images)
    h, w = mask.shape
    frames = [Image("image", w, h, "RGB", composite.tobytes()), Image("mask", w, h, "GRAY", mask.tobytes())]
    job = run(served_model, "harmonize", {"model": served_model.model, "seed": 4, "output_order": "RGBA"}, frames)
    [image] = job.images
    x, m = composite_tensors(composite, mask)
    expected = harmonization.harmonize(
        model_pyramid(served_model, served_model.model),
        x,
        m,
        None,
        method="reinhard_guided",
        strength=0.6,
        noise=True,
        seed=4,
    )
    assert job.result["scale"] == expected.scale
    assert same_pixels([image], expected.image) and not same_pixels(noise_images([image]), expected.image)

    rgba = np.frombuffer(bytes(image.data), np.uint8).reshape(h, w, 4)
    alpha, got = rgba[..., 3], rgba[..., :3]
    assert set(np.unique(alpha)) == {0, 255} and (alpha[mask > 127] == 255).all()
    assert np.array_equal(got[alpha == 0], composite[alpha == 0])
    assert np.abs(got[mask > 127].astype(int) - composite[mask > 127]).mean() > 3  # harmonized, not returned as it came

    def structure(picture: np.ndarray) -> float:
        return gradient_correlation(
            from_uint8(picture), from_uint8(composite), torch.from_numpy(mask > 127)[None, None]
        )

    flat, noise = composite.copy(), composite.copy()
    flat[mask > 127] = composite[mask > 127].mean(0).round().astype(np.uint8)
    noise[mask > 127] = np.random.default_rng(0).integers(0, 256, (int((mask > 127).sum()), 3), np.uint8)
    assert structure(got) >= 0.6 and structure(flat) < 0.6 and structure(noise) < 0.6, (
        structure(got),
        structure(flat),
        structure(noise),
    )


def chelsea_paint(shared_images, blocks: tuple[int, int] = (10, 15)) -> np.ndarray:
    """A paint of chelsea.png's layout: the photo shrunk to 15 x 10 flat blocks of colour, at its
    size (uint8 RGB)."""
    with PILImage.open(shared_images / "chelsea.png") as im:
        photo = im.convert("RGB")
        small = photo.resize(blocks[::-1], PILImage.BOX)
        return np.asarray(small.resize(photo.size, PILImage.NEAREST))


def coarse_layout_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two uint8 pictures shrunk to 10 x 15 px (each channel's mean removed)."""

    def coarse(x: np.ndarray) -> np.ndarray:
        small = np.asarray(PILImage.fromarray(x).resize((15, 10), PILImage.BOX), np.float64)
        return (small - small.mean(axis=(0, 1))).ravel()

    ca, cb = coarse(a), coarse(b)
    return float(ca @ cb / (np.linalg.norm(ca) * np.linalg.norm(cb)))


def test_paint2image_over_the_wire_is_the_library_call_with_quantize_colors_and_no_noise(served_model, shared_images):
    """``quantize``/``colors`` and ``noise: false`` over the wire. Independent of the library call:
    without noise and quantize nothing is random, so two seeds give the same bytes; the output keeps the paint's
    layout (coarse correlation >= 0.8) and is not the paint (texture added), which the paint turned
    upside down (the control) does not pass."""
    paint_pixels = chelsea_paint(shared_images)
    h, w = paint_pixels.shape[:2]
    frame = Image("image", w, h, "RGB", np.ascontiguousarray(paint_pixels).tobytes())
    params = {"model": served_model.model, "quantize": True, "colors": 4, "noise": False}
    job = run(served_model, "paint2image", {**params, "seed": 2}, [frame])
    [image] = job.images
    pyramid = model_pyramid(served_model, served_model.model)
    expected = paint.paint_to_image(
        pyramid,
        from_uint8(paint_pixels).to(DEVICE),
        job.result["scale"],
        quantize=True,
        n_colors=4,
        noise=False,
        seed=2,
    )
    assert same_pixels([image], expected) and not same_pixels(noise_images([image]), expected)
    unquantized = paint.paint_to_image(
        pyramid, from_uint8(paint_pixels).to(DEVICE), job.result["scale"], noise=False, seed=2
    )
    assert not same_pixels([image], unquantized)  # quantize reached the library
    plain = {"model": served_model.model, "noise": False}  # (k-means is seeded: without quantize nothing is)
    seeds = [
        bytes(run(served_model, "paint2image", {**plain, "seed": seed}, [frame]).images[0].data) for seed in (2, 3)
    ]
    assert seeds[0] == seeds[1]

    got = pixels(image)
    assert coarse_layout_correlation(got, paint_pixels) >= 0.8
    assert coarse_layout_correlation(np.ascontiguousarray(got[::-1]), paint_pixels) < 0.8  # the control
    painted = np.asarray(PILImage.fromarray(paint_pixels).resize((image.width, image.height), PILImage.BOX))
    assert np.abs(got.astype(int) - painted).mean() > 5  # (the output is at the model's size)
