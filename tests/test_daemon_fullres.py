"""Full-resolution and instant results through the daemon (issue 13): a real ``singan serve``
subprocess, a real socket, the real client, serving the session's tiny model of brick.png.

Measured on the 2-core dev machine (one torch thread): the 512 x 512 lift of the tiny brick model
has the source's brick period (37 px) within 3 %; the patch-synthesis levels of a 1024 x 1024 lift
take 1-4 s each, so a cancel is answered within one level.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from protocol.client import DaemonError
from protocol.requests import synthesis_request
from singan_core.full_resolution import instant as instant_images
from singan_core.full_resolution import sample_full_resolution
from singan_core.imageio import to_uint8
from singan_core.metrics import copied_region_fraction, dominant_period, sharpness
from singan_core.pyramid import resize
from singan_core.storage import full_source_image, load_full_source, load_pyramid
from singan_core.workflow import model_lift_source

from conftest import DaemonProcess, wire_image

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
]  # the session's brick model trains (20 s idle, minutes on a busy machine)

PERIOD_TOLERANCE = 0.15  # issue 12's measure: the brick period within 15 % of the source's


def as_tensor(image) -> torch.Tensor:
    """A wire image (uint8 RGB) as (1, 3, H, W) in [-1, 1]."""
    array = np.frombuffer(image.data, np.uint8).reshape(image.height, image.width, 3)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


def save(image, name: str) -> None:
    """Write a result to /tmp for a look at the size the artist gets."""
    from PIL import Image as PILImage

    array = np.frombuffer(image.data, np.uint8).reshape(image.height, image.width, 3)
    PILImage.fromarray(array).save(f"/tmp/fullres-daemon-{name}.png")


@pytest.fixture(scope="module")
def brick_daemon(tmp_path_factory, shared_images, brick_model_dir):
    """A daemon with the tiny model ``brick`` (brick.png, grayscale): the session's model directory
    copied into its store, as a daemon training leaves it (that a training through the daemon keeps
    the full-resolution source is checked on the session's ``served_model``)."""
    store = tmp_path_factory.mktemp("daemon") / "store"
    shutil.copytree(brick_model_dir, store / "models" / "brick")
    daemon = DaemonProcess(store)
    with daemon.client() as client:
        assert client.get_model("brick")["status"] == "ready"
    yield daemon, shared_images / "brick.png"
    assert daemon.stop() == 0


def test_training_through_the_daemon_keeps_the_full_resolution_source(served_model, shared_images):
    source = load_full_source(served_model.daemon.store / "models" / served_model.model)
    sent = wire_image(shared_images / "chelsea.png")
    assert source is not None and source.shape[-2:] == (sent.height, sent.width)  # as sent, not the model's 48 px
    assert np.array_equal(
        to_uint8(source), np.frombuffer(sent.data, np.uint8).reshape(sent.height, sent.width, 3)
    )  # lossless


def test_a_512_generate_has_the_brick_period(brick_daemon):
    daemon, path = brick_daemon
    source = load_full_source(daemon.store / "models" / "brick")
    assert source is not None and source.shape[-2:] == (512, 512)
    with daemon.client(timeout=30) as client:
        job = client.submit("generate", {"model": "brick", "width": 512, "height": 512, "seed": 1})
        result = job.wait(timeout=300)
        assert result["detail"] == "source" and result["notice"] is None
        (lifted,) = job.images
        assert (lifted.width, lifted.height) == (512, 512)
        old = client.submit("generate", {"model": "brick", "width": 96, "height": 96, "detail": "model"})
        assert old.wait(timeout=300)["detail"] == "model"  # the model-scale output on request
    assert (old.images[0].width, old.images[0].height) == (96, 96)
    save(lifted, "brick-lift-512")
    source_period = dominant_period(source)
    period = dominant_period(as_tensor(lifted))
    assert abs(period / source_period - 1) <= PERIOD_TOLERANCE, (period, source_period)
    # (that today's model-scale output misses the period by far is shown in test_full_resolution)

    # the library's lift, and (independently of it) a new sharp brick wall: not the stored source
    # sent back, not a bicubic upsampling of the model's 48 px (the controls)
    pyramid, meta = load_pyramid(daemon.store / "models" / "brick")
    expected = sample_full_resolution(
        pyramid, model_lift_source(daemon.store / "models" / "brick", pyramid, meta), height=512, width=512, seed=1
    )
    assert close_pixels(lifted, expected)
    bicubic = resize(resize(source, pyramid.sizes[-1]), (512, 512)).clamp(-1, 1)
    assert new_sharp_texture(as_tensor(lifted), source), texture_figures(as_tensor(lifted), source)
    for control in (source, bicubic):
        assert not new_sharp_texture(control, source), texture_figures(control, source)
    print(
        "lift, source, bicubic: (copied, sharpness, period)",
        [texture_figures(x, source) for x in (as_tensor(lifted), source, bicubic)],
    )


def close_pixels(image, expected: torch.Tensor) -> bool:
    """Whether a wire image (RGB) is ``expected`` (1, 3, H, W) as 8-bit pixels, one level of rounding allowed."""
    got = np.frombuffer(image.data, np.uint8).reshape(image.height, image.width, 3).astype(int)
    return got.shape == to_uint8(expected).shape and int(np.abs(got - to_uint8(expected)).max()) <= 1


MAX_COPIED = 0.5  # copied-region fraction (issue 24's measure): lift 0.26, instant <= 0.25; the source, crops, shifted copies about 1
MIN_SHARPNESS = 0.4  # x the source's (lift and instant 0.63-1.0; bicubic from the model: 0.001)


def texture_figures(out: torch.Tensor, source: torch.Tensor) -> tuple[float, float, float]:
    """(copied-region fraction, sharpness ratio, period ratio) of ``out`` against ``source``."""
    return (
        copied_region_fraction(out, source),
        sharpness(out) / sharpness(source),
        dominant_period(out) / dominant_period(source),
    )


def new_sharp_texture(out: torch.Tensor, source: torch.Tensor) -> bool:
    """``out`` (1, 3, H, W) is a new picture of the source's texture: not copied regions, about as
    sharp, the same brick period."""
    copied, sharp, period = texture_figures(out, source)
    return copied <= MAX_COPIED and sharp >= MIN_SHARPNESS and abs(period - 1) <= PERIOD_TOLERANCE


def test_instant_returns_the_requested_sizes_differs_by_seed_and_repeats(brick_daemon):
    daemon, path = brick_daemon
    image = wire_image(path)
    with daemon.client(timeout=30) as client:
        events: list[dict] = []
        op, params, frames = synthesis_request(200, 120, image=image, n=2, seed=3)  # what the plugins send
        first = client.submit(op, params, frames, on_progress=lambda job, event: events.append(event))
        result = first.wait(timeout=120)
        again = client.submit("instant", {"n": 1, "seed": 3, "width": 200, "height": 120}, [image])
        again.wait(timeout=120)
        default = client.submit("instant", {"feature_scale": 0.5}, [image])
        default.wait(timeout=120)
    assert result["model"] is None
    assert [(im.width, im.height) for im in first.images] == [(200, 120), (200, 120)]
    assert (default.images[0].width, default.images[0].height) == (256, 256)  # the input's size x feature_scale
    assert first.images[0].data == again.images[0].data  # the same seed repeats exactly
    a, b = (as_tensor(im) for im in first.images)
    assert (a - b).abs().mean() > 0.05  # seeds differ
    # the library's instant, and (independently of it) new brick walls of the source's texture,
    # which a crop of the source, a flat fill and noise (the controls) are not
    source = as_tensor(image)
    expected = instant_images(full_source_image(source), height=120, width=200, n_samples=2, seed=3)
    assert all(close_pixels(im, x[None]) for im, x in zip(first.images, expected))
    for out in (a, b):
        assert new_sharp_texture(out, source), texture_figures(out, source)
    noise = torch.rand(1, 3, 120, 200, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for control in (source[..., 100:220, 50:250], torch.full_like(a, a.mean().item()), noise):
        assert not new_sharp_texture(control, source)
    levels = [(e["level"], e["levels"]) for e in events if e.get("level") is not None]
    assert levels and levels[-1][0] == levels[-1][1] and [k for k, _ in levels] == sorted(k for k, _ in levels)
    save(first.images[0], "brick-instant-200x120")


def seams_like_the_interior(x: torch.Tensor) -> bool:
    """The wrap-around seams of ``x`` (1, 3, H, W) differ no more than interior neighbours (x 1.2)."""
    seam = torch.cat([(x[..., 0] - x[..., -1]).flatten(), (x[..., 0, :] - x[..., -1, :]).flatten()]).abs().mean()
    inner = torch.cat([x.diff(dim=-1).flatten(), x.diff(dim=-2).flatten()]).abs().mean()
    return bool(seam <= 1.2 * inner)


def test_a_seamless_instant_tile_is_a_new_brick_wall_that_wraps_around(brick_daemon):
    """``tile: true`` over the wire: the tile wraps around and is new brick wall. A flat tile and
    noise wrap around too, and a rolled crop of the source is brick wall: each fails one of the two."""
    daemon, path = brick_daemon
    image = wire_image(path)
    with daemon.client(timeout=30) as client:
        job = client.submit("instant", {"width": 160, "height": 160, "tile": True, "seed": 2}, [image])
        job.wait(timeout=120)
    tile, source = as_tensor(job.images[0]), as_tensor(image)
    save(job.images[0], "brick-tile-160")
    assert seams_like_the_interior(tile) and new_sharp_texture(tile, source), texture_figures(tile, source)
    noise = torch.rand(1, 3, 160, 160, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for control in (torch.full_like(tile, tile.mean().item()), noise, source[..., :160, :160].roll((40, 70), (-2, -1))):
        assert not (seams_like_the_interior(control) and new_sharp_texture(control, source))


@pytest.mark.parametrize("op", ["generate", "instant"])
def test_a_running_lift_or_instant_is_cancelled_within_one_level_and_hello_answers(brick_daemon, op):
    daemon, path = brick_daemon
    params = {"width": 1536, "height": 1536, "n": 2}
    images = [wire_image(path)] if op == "instant" else []
    if op == "generate":
        params["model"] = "brick"
    with daemon.client(timeout=30) as client:
        events: list[dict] = []
        job = client.submit(op, params, images, on_progress=lambda job, event: events.append(event))
        while not (job.done or any(e.get("level") for e in events)):
            client.poll(0.1)
            assert client.hello()["protocol_version"] == 1  # the socket loop answers while the worker computes
        assert not job.done, "the job ended before its first level was reported"
        assert job.cancel()
        reported = max(e["level"] for e in events if e.get("level"))
        with pytest.raises(DaemonError) as err:
            job.wait(timeout=120)
        assert err.value.code == "cancelled"
        after = [e["level"] for e in events if e.get("level")]
        assert max(after) - reported <= 1 and max(after) < events[-1]["levels"], events
        assert client.hello()["protocol_version"] == 1


@pytest.mark.parametrize(
    "op, params, field",
    [
        ("generate", {"model": "brick", "width": 512, "feature_scale": 0}, "params.feature_scale"),
        ("generate", {"model": "brick", "width": 4096, "height": 4096, "feature_scale": 0.02}, "params.feature_scale"),
        ("generate", {"model": "brick", "width": 512, "detail": "photo"}, "params.detail"),
        ("instant", {"width": 8}, "params.width"),
        ("instant", {"width": 5000, "height": 5000, "n": 3}, "params.n"),
    ],
)
def test_bad_lift_and_instant_values_name_their_field(brick_daemon, op, params, field):
    daemon, path = brick_daemon
    images = [wire_image(path)] if op == "instant" else []
    with daemon.client(timeout=30) as client:
        with pytest.raises(DaemonError) as err:
            client.submit(op, params, images).wait(timeout=60)
    assert err.value.field == field and field.split(".")[-1] in err.value.message.split(":")[0], err.value


def test_a_feature_scale_whose_canvas_exceeds_the_output_is_served(brick_daemon):
    """Issues 28/29: feature_scale 0.05 on a 48 px model of a 512 px photo makes a 960 px SinGAN canvas
    for a 512 px output; it failed after 5 s of sampling ("init: is 960x960, larger than the output").
    The canvas is now fitted to the output at its cause (singan_core.full_resolution), so it is served,
    with the bricks about a twentieth of their size, like 0.1 (a tenth)."""
    daemon, _ = brick_daemon
    with daemon.client(timeout=30) as client:
        for scale in (0.05, 0.1):
            job = client.submit("generate", {"model": "brick", "width": 512, "height": 512, "feature_scale": scale})
            job.wait(timeout=300)
            assert (job.images[0].width, job.images[0].height) == (512, 512)
            save(job.images[0], f"feature-scale-{scale}")


def test_a_cancel_lands_inside_a_single_large_patch_synthesis_level(brick_daemon):
    """Issue 29: a 20 x 20 px image to a large instant is one level (42 s at 5792 px, and a cancel
    waited for it). Now the level itself checks for a cancel: the job ends ``cancelled`` before
    its only level is reported done. The 2 s goal is measured (printed); the bound asserted is 10x."""
    import time

    from protocol.wire import Image

    daemon, _ = brick_daemon
    rng = np.random.default_rng(0)
    tiny = Image("image", 20, 20, "RGB", rng.integers(0, 256, 20 * 20 * 3, dtype=np.uint8).tobytes())
    with daemon.client(timeout=30) as client:
        events: list[dict] = []
        job = client.submit(
            "instant", {"width": 3072, "height": 3072}, [tiny], on_progress=lambda job, event: events.append(event)
        )
        while not any(e.get("phase") == "sampling" for e in events):
            client.poll(0.05)
        time.sleep(1.0)  # well inside the level (about 12 CPU s at 3072 px)
        asked = time.monotonic()
        assert job.cancel()
        with pytest.raises(DaemonError) as err:
            job.wait(timeout=60)
        latency = time.monotonic() - asked
    assert err.value.code == "cancelled", err.value
    assert not [e for e in events if e.get("level")], f"the level finished before the cancel landed: {events}"
    print(f"cancel inside a 3072 px single-level instant answered after {latency:.2f} s")
    assert latency < 20
