"""Interrupted trainings in the panel, and a daemon that stops mid-training (issue 28, item 5):
``models.py ENDPOINT IMAGE OUT.json``.

Runs the operators' real modal path as job_control.py does (its docstring says how). The daemon
at ENDPOINT is the test's; when it exits, the test starts it again on the same endpoint and store
a few seconds later.

1. Train "interrupt-me" (tiny, from IMAGE scaled to 30 x 20 in Blender: two scales), Esc once a scale is
   saved: the panel lists it as interrupted with Resume and Delete buttons. Resume from the panel's
   button: the training ends, the model is ready and becomes the scene's model.
2. Train "delete-me", Esc once a scale is saved; Delete from the panel's button: the model leaves the
   daemon and the panel.
3. Train "restart-me"; once it trains, the daemon is shut down (``shutdown``, as ``singan serve``
   stopping does): the panel says so, and follows the resumed training when the daemon is back
   until the model is ready.
4. The Train panel's time estimate (the daemon's cost model in ``hello``, calibrated by the last
   training), then a training of "timed" (IMAGE at its own size) whose wall time it is compared with.
"""

import functools
import time
from types import SimpleNamespace

import bpy

import harness
import job_control
from job_control import PLAN, connect, modal_probe, run


class Panel:
    """Stands in for a ``UILayout``: records labels, progress bars and operator buttons (with the
    properties the draw code sets on them)."""

    def __init__(self):
        self.shown, self.buttons = [], []

    def label(self, text="", icon="NONE"):
        self.shown.append([text, icon])

    def progress(self, factor=0.0, type="BAR", text=""):
        self.shown.append([text, "PROGRESS"])

    def row(self, **kwargs):
        return self

    box = row

    def prop(self, *args, **kwargs):
        pass

    def operator(self, idname, **kwargs):
        button = SimpleNamespace(idname=idname)
        self.buttons.append(button)
        return button


def panel(addon) -> dict:
    """What the sidebar's interrupted-trainings box shows now."""
    layout = Panel()
    addon.panels.draw_unfinished(layout)
    return {"shown": layout.shown, "buttons": [vars(button) for button in layout.buttons]}


def pump_until(addon, condition, limit: float = 30.0) -> float:
    """Let the application timer pump until ``condition()``; seconds taken (``limit`` if never)."""
    started = time.monotonic()
    while not condition() and time.monotonic() - started < limit:
        time.sleep(addon.client.PUMP_INTERVAL_S)
        addon.client._pump_timer()
    return time.monotonic() - started


def status(link, model: str) -> str | None:
    info = link.model(model)
    return info["status"] if info is not None else None


def scale_saved(link):
    """A plan's ``after``: the running training has saved a scale (cancelling keeps the model)."""

    def due(task):
        info = link.model(task.job.model) if task.job is not None and task.job.model else None
        return info is not None and info["scales_done"] >= 1

    return due


def interrupted(addon, link, train, name: str) -> dict:
    """Train ``name`` and Esc once a scale is saved; wait until the heartbeat lists it interrupted."""
    bpy.context.scene.singan.train_name = name
    out = run(train, cancel="esc", after=scale_saved(link))
    out["listed_after"] = pump_until(addon, lambda: status(link, out["model"]) == "interrupted")
    out["panel"] = panel(addon)
    return out


def body(args, out):
    endpoint, image_path = args
    addon = PLAN["addon"] = harness.enable()
    harness.preferences().endpoint = endpoint
    ops = addon.operators
    train, resume, delete = (
        modal_probe(cls) for cls in (ops.SINGAN_OT_train, ops.SINGAN_OT_resume_model, ops.SINGAN_OT_delete_model)
    )
    photo = bpy.data.images.load(image_path)
    photo.scale(30, 20)  # two tiny scales: the least training that can be interrupted and resumed
    settings = bpy.context.scene.singan
    settings.train_source, settings.train_image, settings.train_preset = "IMAGE", photo, "tiny"
    out["connect"] = connect(addon, "connected")
    link = addon.client.current()
    out["panel_before"] = panel(addon)

    # 1. resume from the panel
    out["interrupt"] = interrupted(addon, link, train, "interrupt-me")
    model = out["interrupt"]["model"]
    out["resume"] = run(functools.partial(resume, model=model))
    pump_until(addon, lambda: status(link, model) != "training")  # the heartbeat after the result
    out["resume"].update(scene_model=settings.model, status=status(link, model), panel=panel(addon))

    # 2. delete from the panel
    out["doomed"] = interrupted(addon, link, train, "delete-me")
    model = out["doomed"]["model"]
    out["delete"] = run(functools.partial(delete, model=model))
    out["delete"]["gone_after"] = pump_until(addon, lambda: link.model(model) is None)
    out["delete"].update(
        listed=link.model(model) is not None, panel=panel(addon), models=[m["id"] for m in link.models]
    )

    # 3. the daemon stops mid-training and comes back
    settings.train_name = "restart-me"
    wire = addon.protocol.client
    stopped, seen = {}, []

    def stop_once_training(task):
        if not stopped and task.fraction:
            with wire.Client(endpoint, timeout=5.0) as client:
                client.shutdown()
            stopped["at"] = time.monotonic()
        if task.waiting_for_daemon and not seen:
            seen.append(
                {
                    "panel": job_control.shown(addon),
                    "seconds_after_stop": time.monotonic() - stopped["at"],
                    "phase": task.phase,
                }
            )

    out["restart"] = run(train, on_tick=stop_once_training)
    model = out["restart"].get("model")
    pump_until(addon, lambda: status(link, model) != "training")
    out["restart"].update(stopped_seen=seen, scene_model=settings.model, status=status(link, model))

    # 4. the panel's estimate before a training (the daemon's cost model, calibrated by the last
    # training), then the training's measured time
    harness.call_operator(bpy.ops.singan.connect)  # a fresh hello: the calibrated preset seconds
    pump_until(addon, lambda: any(item.get("seconds") for item in link.info.get("preset_details") or []))
    settings.train_image = bpy.data.images.load(image_path)  # full size: shrunk to the preset's 48 px
    estimate = Panel()
    addon.panels.draw_training_estimate(estimate, settings)
    settings.train_name = "timed"
    out["timed"] = run(train)
    out["timed"].update(estimate=estimate.shown, preset_details=link.info.get("preset_details"))


if __name__ == "__main__":
    harness.main(body)
