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
from singan_core import animation, editing
from singan_core.device import select_device
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
    return [Image(im.name, im.width, im.height, im.order, rng.integers(0, 256, len(bytes(im.data)), np.uint8).tobytes())
            for im in like]


def test_generate_equals_the_library_sample(served_model):
    pyramid = model_pyramid(served_model, served_model.model)
    h, w = pyramid.sizes[-1]
    for params, (scale_h, scale_w) in (({}, (1.0, 1.0)), ({"width": 2 * w, "height": h, "detail": "model"}, (1.0, 2.0))):
        images = run(served_model, "generate", {"model": served_model.model, "n": 3, "seed": 7, "output_order": "BGRA", **params}).images
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
    expected = editing.edit(model_pyramid(served_model, served_model.model), from_uint8(composite).to(DEVICE),
                            torch.from_numpy(mask > 127)[None, None].to(DEVICE), seed=3)
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
