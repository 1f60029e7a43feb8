"""Jobs through the operators' real modal path:
``job_control.py ENDPOINT CLOSED_ENDPOINT IMAGE DOOMED_ENDPOINT DOOMED_PID OUTDIR OUT.json``.

Background mode has no window and no event loop, so Blender never calls ``invoke`` or ``modal``
itself. In a real session, clicking a job button calls the operator's ``invoke``; while it returns
RUNNING_MODAL, Blender's window-manager handler loop calls its ``modal(context, event)`` with each
event: a TIMER event every POLL_INTERVAL_S (the timer ``invoke`` added), an ESC press when the
artist hits Esc, and others it passes through; the operator ends when ``modal`` returns FINISHED or
CANCELLED, and Blender shows its reports. This harness does the same with the add-on's own
operator objects: a probe operator (the real job operator's class body, registered as
``singan_test.<name>``; only ``execute`` is the probe's, and ``fail`` also records the error it
reports: Blender prints no report of a modal step outside an operator call) calls the real ``invoke`` and returns its RUNNING_MODAL, so Blender keeps the operator
alive as a modal one; the harness then dispatches events to that operator's real ``modal`` (an
object with the ``type`` and ``value`` Blender's events carry) until it ends. (Returning from
``execute`` only after ``modal`` ended would make Blender free the operator under the modal
handler ``invoke`` added: bpy 5.0.1 then crashes at the next ``modal_handler_add``.) The
application timer that pumps the session (``client._pump_timer``) is called the same way. What
is not exercised is Blender's C event queue itself; every line of the add-on that runs in a real
session runs here.

Scenarios: with nothing listening (CLOSED_ENDPOINT) Connect, starting a job and cancelling it;
with the daemon at ENDPOINT: Connect, a training cancelled with Esc, a training from an image
datablock to its end, cancelling a plate, a texture and a super-resolution, a 2x super-resolution
to its end (pixels to OUTDIR/sr.rgba), and a daemon (DOOMED_PID, at DOOMED_ENDPOINT) killed while
it trains (the add-on says it stopped, then Esc ends the wait; models.py restarts one)."""

import os
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import bpy

import harness


class Event(NamedTuple):
    """What ``modal`` reads of a Blender event."""

    type: str
    value: str = "NOTHING"


TIMER, ESC = Event("TIMER"), Event("ESC", "PRESS")
RUNNING = ({"RUNNING_MODAL"}, {"PASS_THROUGH"})

PLAN: dict = {}
"""The next probe run's plan: ``cancel`` ("esc" or "button") and ``after`` (seconds after invoke,
or a callable(task) -> bool), ``on_tick`` (callable(task), before each timer event); the probe
writes what it saw into ``PLAN["log"]``."""


class Layout:
    """Stands in for a ``UILayout`` and records what a draw function shows: [text, icon] of each
    label and progress bar (background mode has no UI to draw into)."""

    def __init__(self):
        self.shown = []

    def label(self, text="", icon="NONE"):
        self.shown.append([text, icon])

    def progress(self, factor=0.0, type="BAR", text=""):
        self.shown.append([text, "PROGRESS"])

    def row(self, **kwargs):
        return self

    def prop(self, *args, **kwargs):
        pass

    def operator(self, *args, **kwargs):
        return SimpleNamespace()


def shown(addon) -> dict:
    """What the preferences/sidebar connection line and Blender's status bar show now, and the
    longest of those draws (seconds)."""
    panel, status_bar = Layout(), Layout()
    tick = time.perf_counter()
    addon.preferences.draw_connection(panel)
    addon.panels.draw_status_bar(SimpleNamespace(layout=status_bar), bpy.context)
    return {"panel": panel.shown, "status_bar": status_bar.shown, "seconds": time.perf_counter() - tick}


def drive(op, context) -> set:
    """Dispatch events to ``op.modal`` as Blender's handler loop does, until it ends; its result."""
    log, plan = PLAN["log"], PLAN
    interval = op.timer.time_step
    started, cancelled = time.monotonic(), False
    log.update(steps=[], phases=[], fractions=[])
    while True:
        time.sleep(interval)
        task = op.task
        if plan.get("on_tick"):
            plan["on_tick"](task)
        due = plan.get("after", 0.0)
        if plan.get("cancel") and not cancelled and (due(task) if callable(due) else time.monotonic() - started >= due):
            cancelled = True
            tick = time.perf_counter()
            if plan["cancel"] == "esc":
                answer = sorted(op.modal(context, ESC))
            else:
                answer = harness.call_operator(bpy.ops.singan.cancel_job, slot=op.slot)["result"]
            log["cancel"] = {
                "result": answer,
                "seconds": time.perf_counter() - tick,
                "phase": task.phase,
                "job": task.job.id if task.job else None,
                "model": task.job.model if task.job else None,
            }
            continue
        tick = time.perf_counter()
        result = op.modal(context, TIMER)
        log["steps"].append(time.perf_counter() - tick)
        log["fractions"].append(task.fraction)
        if not log["phases"] or log["phases"][-1] != task.phase:
            log["phases"].append(task.phase)
        if "shown" not in log and " scale " in task.phase:
            log["shown"] = shown(PLAN["addon"])  # what the artist sees while the job runs
        if result not in RUNNING:
            log.update(
                modal_seconds=time.monotonic() - started,
                message=task.message,
                cancelled=task.cancelled,
                job=task.job.id if task.job else None,
                model=task.job.model if task.job else None,
            )
            return result


def modal_probe(cls):
    """``bpy.ops.singan_test.<name>``: the real operator ``cls``; its ``execute`` runs ``invoke``
    and keeps the operator in ``PLAN["op"]``."""
    name = cls.bl_idname.split(".")[1]

    def execute(self, context):
        PLAN["op"] = self
        tick = time.perf_counter()
        result = self.invoke(context, None)
        PLAN["log"]["invoke"] = {"result": sorted(result), "seconds": time.perf_counter() - tick}
        return result

    def fail(self, error):
        PLAN["log"]["reported"] = f"{self.title} failed: {error}"  # what cls.fail reports as an ERROR
        return cls.fail(self, error)

    namespace = {key: value for key, value in vars(cls).items() if key not in ("__dict__", "__weakref__", "bl_rna")}
    namespace.update(bl_idname=f"singan_test.{name}", execute=execute, fail=fail)
    bpy.utils.register_class(type(f"SINGAN_TEST_OT_{name}", cls.__bases__, namespace))
    return getattr(bpy.ops.singan_test, name)


def run(operator, **plan) -> dict:
    """Run a probe with ``plan`` (see :data:`PLAN`) until its modal path ends: what it saw, its
    result, its ERROR report (None if none) and its seconds from invoke to the end."""
    addon = PLAN.get("addon")
    PLAN.clear()
    PLAN.update(plan, log={}, addon=addon)
    outcome = harness.call_operator(operator)
    if outcome["result"] == ["RUNNING_MODAL"]:
        outcome["result"] = sorted(drive(PLAN["op"], bpy.context))
        outcome["seconds"] = PLAN["log"]["invoke"]["seconds"] + PLAN["log"]["modal_seconds"]
    outcome["error"] = outcome["error"] or PLAN["log"].get("reported")
    return {**PLAN["log"], **outcome}


def connect(addon, want: str) -> dict:
    """Press Connect, then let the application timer pump until the state is ``want`` (and, when
    connected, the heartbeat brought the model list), or 10 s."""
    out = harness.call_operator(bpy.ops.singan.connect)
    link = addon.client.current()
    started, seen = time.monotonic(), [link.state.name]
    while (link.state.name != want or (want == "connected" and not link.models)) and time.monotonic() - started < 10:
        time.sleep(addon.client.PUMP_INTERVAL_S)
        addon.client._pump_timer()
        if seen[-1] != link.state.name:
            seen.append(link.state.name)
    out.update(
        state=link.state.name, states=seen, until=time.monotonic() - started, status=link.status, shown=shown(addon)
    )
    return out


def body(args, out):
    endpoint, closed_endpoint, image_path, doomed_endpoint, doomed_pid, outdir = args
    addon = PLAN["addon"] = harness.enable()
    out["modules"] = harness.wire_modules()
    out["top_level"] = sorted(name for name in ("protocol", "session", "client", "wire") if name in sys.modules)
    prefs, settings = harness.preferences(), bpy.context.scene.singan
    ops = addon.operators
    train, plate, texture, sr = (
        modal_probe(cls)
        for cls in (
            ops.SINGAN_OT_train,
            ops.SINGAN_OT_generate_plate,
            ops.SINGAN_OT_generate_texture,
            ops.SINGAN_OT_super_resolve,
        )
    )
    photo = bpy.data.images.load(image_path)
    photo.name = "Chelsea photo"
    small = photo.copy()
    small.scale(45, 30)
    small.name = "small"

    # -- nothing listening
    prefs.endpoint = closed_endpoint
    out["stopped_connect"] = connect(addon, "unreachable")
    settings.model = "chelsea"
    out["stopped_plate"] = run(plate)
    settings.train_source, settings.train_path, settings.train_name, settings.train_preset = (
        "FILE",
        image_path,
        "cancel-me",
        "tiny",
    )
    out["stopped_cancel_esc"] = run(train, cancel="esc")
    out["stopped_cancel_button"] = run(train, cancel="button")

    # -- the served daemon
    prefs.endpoint = endpoint
    out["connect"] = connect(addon, "connected")
    link = addon.client.current()
    out["connect"].update(info=link.info, models=[info["id"] for info in link.models])
    settings.train_preset = "draft"  # long enough to be cancelled in the middle
    out["train_esc"] = run(train, cancel="esc", after=3.0)
    settings.train_preset = "tiny"

    settings.train_source, settings.train_image, settings.train_name = "IMAGE", photo, ""
    out["train"] = run(train)
    out["train"].update(scene_model=settings.model)

    settings.plate_size, settings.texture_size = 512, 256  # the model is the one just trained
    settings.plate_render_size = False
    bpy.ops.mesh.primitive_plane_add(size=2)  # the texture's object
    images_before = sorted(image.name for image in bpy.data.images)
    out["plate_cancel"] = run(plate, cancel="button")
    out["texture_cancel"] = run(texture, cancel="esc")
    settings.sr_image, settings.sr_factor, settings.sr_preset = small, "2", "tiny"
    out["sr_cancel"] = run(sr, cancel="button", after=lambda task: task.job is not None and task.job.id is not None)
    out["images_unchanged"] = sorted(image.name for image in bpy.data.images) == images_before

    out["super_resolve"] = run(sr)
    result = bpy.data.images.get("small x2")
    if result is not None:
        out["super_resolve"].update(
            size=tuple(result.size),
            packed=result.packed_file is not None or bool(result.get("singan_pack_on_save")),
            kind=result.get("singan_kind"),
            model=result.get("singan_model"),
            panel_result=settings.sr_result.name if settings.sr_result else None,
        )
        (Path(outdir) / "sr.rgba").write_bytes(bytes(addon.jobs.TASKS["super_resolve"].job.images[0].data))

    # -- a daemon killed while it trains
    prefs.endpoint = doomed_endpoint
    out["doomed_connect"] = connect(addon, "connected")
    settings.train_name, settings.train_preset = "doomed", "draft"
    killed = {}

    def kill_once_training(task):
        if not killed and task.fraction:
            os.kill(int(doomed_pid), signal.SIGKILL)
            killed["at"] = time.monotonic()
        if task.waiting_for_daemon and "seen" not in killed:
            killed.update(seen=time.monotonic(), phase=task.phase)

    out["killed"] = run(train, on_tick=kill_once_training, cancel="esc", after=lambda task: "seen" in killed)
    out["killed"].update(
        seconds_after_kill=killed["seen"] - killed["at"] if "seen" in killed else None,
        stopped_phase=killed.get("phase"),
    )
    prefs.endpoint = endpoint


if __name__ == "__main__":
    harness.main(body)
