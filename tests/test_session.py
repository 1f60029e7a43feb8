"""protocol.session without any host: connection states, heartbeat loss, limits and presets from
``hello``, a task chain (train then generate) and cancelling, progress words. Against real daemon
subprocesses (conftest), pumped the way a host's UI timer pumps them."""

from __future__ import annotations

import socket
import time
import typing

import numpy as np

from conftest import wire_image
from protocol.client import DaemonError, Image
from protocol.schema import MAX_IMAGE_SIDE, MAX_OUTPUT_PIXELS, MAX_SAMPLES, Preset
from protocol.session import (
    ConnectionState,
    PresetInfo,
    Session,
    Task,
    describe_error,
    describe_progress,
    eta_text,
    preset_text,
)
from singan_core.config import PRESETS


def closed_endpoint() -> str:
    """A loopback TCP endpoint nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


def pump_until(session: Session, condition, limit: float = 60.0, tick: float = 0.02) -> None:
    """Pump like a host's timer until ``condition()`` (pump times are measured in
    bench/session_pump.py). ``limit`` only stops a broken test from hanging; it is not the
    property under test."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"not reached in {limit} s; session is {session.status}"
        session.pump()
        time.sleep(tick)


def recorder(session: Session) -> list[ConnectionState]:
    states = [session.state]
    session.state_changed.connect(lambda: states.append(session.state) if states[-1] is not session.state else None)
    return states


def test_a_stopped_daemon_is_unreachable_and_waiting_tasks_fail_with_the_reason():
    session = Session(closed_endpoint())
    states = recorder(session)
    task = Task(session, "Variations")
    task.submit("generate", {"model": "m"}, [], lambda data, images: "never", "generating")
    assert session.state is ConnectionState.connecting and not task.finished  # submit asked, nothing waited
    pump_until(session, lambda: task.finished)
    assert states == [ConnectionState.disconnected, ConnectionState.connecting, ConnectionState.unreachable]
    assert task.failed and not task.cancelled
    assert "no answer from the SinGAN daemon" in task.message and "singan serve" in task.message
    assert session.status.startswith("unreachable: no answer")
    # a task cancelled while it still waits for the connection ends at once, as cancelled
    waiting = Task(session, "Plate")
    waiting.submit("generate", {"model": "m"}, [], lambda data, images: "never", "generating")
    waiting.cancel()
    assert waiting.finished and waiting.cancelled and waiting.message == "cancelled"
    session.close()


def test_a_bad_endpoint_is_refused_at_once():
    session = Session("not an endpoint")
    task = Task(session, "Train")
    task.submit("train", {}, [], lambda data, images: None, "training")
    assert session.state is ConnectionState.refused and "is not a ZeroMQ endpoint" in session.status
    assert task.failed and "is not a ZeroMQ endpoint" in task.message


def test_hello_gives_limits_presets_and_the_heartbeat_the_models(served_model):
    session = Session(served_model.daemon.endpoint)
    states = recorder(session)
    changes = []
    session.models_changed.connect(lambda: changes.append(len(session.models)))
    pump_until(session, lambda: session.model(served_model.model) is not None)
    assert states == [ConnectionState.disconnected, ConnectionState.connecting, ConnectionState.connected]
    assert changes and session.model(served_model.model)["status"] == "ready"
    assert session.limits["max_image_side"] == MAX_IMAGE_SIDE and session.limits["max_samples"] == MAX_SAMPLES
    assert session.limits["max_output_pixels"] == MAX_OUTPUT_PIXELS
    trainable = typing.get_args(Preset)  # what train accepts, not every preset of the core (issue 29: consingan)
    expected = [PresetInfo(name, PRESETS[name].pyramid.max_size, PRESETS[name].train.iterations) for name in trainable]
    assert session.presets == expected
    assert preset_text(session.presets[1]) == "draft: 128 px, 60 iterations per scale"
    session.connect()  # Refresh while connected: asks again and stays connected
    until = time.monotonic() + 1.0
    pump_until(session, lambda: time.monotonic() > until)
    assert states[-1] is ConnectionState.connected and states.count(ConnectionState.connected) == 1
    session.close()


def test_a_daemon_that_dies_while_idle_is_noticed_by_the_heartbeat(start_daemon):
    daemon = start_daemon()
    session = Session(daemon.endpoint)
    pump_until(session, lambda: session.state is ConnectionState.connected)
    states = recorder(session)
    daemon.kill()
    pump_until(session, lambda: session.state is ConnectionState.unreachable)
    assert states == [ConnectionState.connected, ConnectionState.unreachable]
    assert "no answer from the SinGAN daemon" in session.error
    # it keeps trying: another daemon at a new endpoint is reached after set_endpoint
    second = start_daemon()
    session.set_endpoint(second.endpoint)
    pump_until(session, lambda: session.state is ConnectionState.connected)
    session.close()


def small_image(shared_images) -> Image:
    """chelsea.png at 30 x 20 px: a tiny-preset training of two scales, a few seconds."""
    from PIL import Image as PILImage

    with PILImage.open(shared_images / "chelsea.png") as im:
        small = im.convert("RGB").resize((30, 20), PILImage.BICUBIC)
    return Image("image", 30, 20, "RGB", np.asarray(small).tobytes())


def test_a_task_chain_trains_then_generates_with_progress_words(served_model, shared_images):
    session = Session(served_model.daemon.endpoint)
    task = Task(session, "Variations of a new model")
    phases, fractions, results = [], [], {}
    task.changed.connect(lambda t: (phases.append(t.phase), fractions.append(t.fraction)))

    def trained(data: dict, images: list) -> None:
        results["model"] = data["model"]["id"]
        task.submit("generate", {"model": results["model"], "n": 2, "seed": 3}, [], generated, "generating")

    def generated(data: dict, images: list) -> str:
        results["images"] = images
        return f"{len(images)} variations"

    task.submit("train", {"name": "chain", "preset": "tiny"}, [small_image(shared_images)], trained, "training a model")
    pump_until(session, lambda: task.finished)
    assert not task.failed, task.message
    assert task.message == "2 variations" and len(results["images"]) == 2
    assert phases[0] == "training a model" and "generating" in phases
    assert any(phase.startswith("training a model: scale 2 of 2") for phase in phases), phases
    # the same model and seed through a plain client: the chain's second job is the real one
    with served_model.daemon.client() as client:
        again = client.submit("generate", {"model": results["model"], "n": 2, "seed": 3})
        again.wait(timeout=60)
    assert [bytes(image.data) for image in results["images"]] == [bytes(image.data) for image in again.images]
    session.close()


def test_cancelling_a_training_ends_it_on_the_daemon(served_model, shared_images):
    session = Session(served_model.daemon.endpoint)
    task = Task(session, "Train")
    task.submit(
        "train",
        {"name": "cancelled", "preset": "draft"},
        [wire_image(shared_images / "chelsea.png")],
        lambda data, images: "trained",
        "training",
    )
    pump_until(session, lambda: task.job is not None and task.job.id is not None)
    job = task.job.id
    pump_until(session, lambda: job in {entry["job"] for entry in session.jobs})  # the heartbeat lists it while it runs
    task.cancel()
    assert task.phase == "cancelling" and not task.finished  # cancel only sent a request
    pump_until(session, lambda: task.finished)
    assert task.cancelled and task.message == "cancelled"
    pump_until(session, lambda: job not in {entry["job"] for entry in session.jobs})  # the heartbeat's job list


def test_progress_and_error_words():
    event = {"phase": "training", "scale": 1, "num_scales": 5, "fraction": 0.4, "eta_seconds": 12.4}
    assert describe_progress(event) == "scale 2 of 5, 40 %, 12 s left"
    assert describe_progress({"phase": "training"}) == "training"
    assert describe_progress({"phase": "sampling", "fraction": 0.5}) == "generating"
    assert describe_progress({"phase": "loading"}) == "loading the model"
    assert [eta_text(s) for s in (None, 5, 210, 3900)] == ["", "5 s left", "4 min left", "1 h 05 min left"]
    assert describe_error(DaemonError("not_found", "no model 'x'")) == "the daemon refused: no model 'x'"
    assert describe_error(DaemonError("cancelled", "")) == "cancelled"
    assert describe_error(KeyError("k")).startswith("internal error: KeyError")
    assert preset_text(PresetInfo("paper")) == "paper"
