"""Jobs without an event loop: ``job_control.py ENDPOINT CLOSED_ENDPOINT IMAGE DOOMED_ENDPOINT DOOMED_PID OUT.json``.

Background mode delivers no events, so ``invoke`` cannot be reached through ``bpy.ops``: a copy of
each real job operator is registered whose ``execute`` calls the original ``invoke`` (everything
else is the operator's own code), and the job is then driven by calling the task's polling step,
as the operator's timer would. Covers: an unreachable daemon, invoke returning at once, poll times
while a training runs, cancelling it, a training from an image datablock to its end, a 2x
super-resolution, and a daemon (DOOMED_PID, at DOOMED_ENDPOINT) killed while it trains."""

import os
import signal
import time

import bpy

import harness

INVOKES: dict = {}
"""Result and seconds of each probe's invoke, by operator name."""


def invoke_probe(cls):
    """``bpy.ops.singan_test.<name>``: the real operator ``cls`` with an ``execute`` that calls its ``invoke``."""
    name = cls.bl_idname.split(".")[1]

    def execute(self, context):
        started = time.perf_counter()
        result = self.invoke(context, None)
        INVOKES[name] = {"result": sorted(result), "seconds": time.perf_counter() - started}
        return result

    namespace = {key: value for key, value in vars(cls).items() if key not in ("__dict__", "__weakref__", "bl_rna")}
    namespace.update(bl_idname=f"singan_test.{name}", execute=execute)
    bpy.utils.register_class(type(f"SINGAN_TEST_OT_{name}", cls.__bases__, namespace))
    return getattr(bpy.ops.singan_test, name)


def follow(task, seconds: float | None) -> dict:
    """Poll a task every 50 ms for ``seconds`` (None: until it ends); the poll times and progress seen."""
    durations, fractions, statuses = [], [], []
    deadline = time.monotonic() + (seconds if seconds is not None else 600)
    while time.monotonic() < deadline:
        started = time.perf_counter()
        done = task.poll()
        durations.append(time.perf_counter() - started)
        fractions.append(task.fraction)
        if not statuses or statuses[-1] != task.status():
            statuses.append(task.status())
        if done:
            break
        time.sleep(0.05)
    return {"durations": durations, "fractions": fractions, "statuses": statuses, "finished": task.finished,
            "job": task.job.id, "model": task.job.model}


def body(args, out):
    endpoint, closed_endpoint, image_path, doomed_endpoint, doomed_pid = args
    addon = harness.enable()
    out["modules"] = harness.wire_modules()
    prefs, settings = harness.preferences(), bpy.context.scene.singan
    train = invoke_probe(addon.operators.SINGAN_OT_train)

    prefs.endpoint = closed_endpoint
    settings.model = "chelsea"
    out["unreachable_exec"] = harness.call_operator(bpy.ops.singan.generate_plate)
    settings.train_source, settings.train_path, settings.train_name, settings.train_preset = "FILE", image_path, "cancel-me", "tiny"
    out["unreachable_invoke"] = {**harness.call_operator(train), "invoke": INVOKES.pop("train", None)}

    prefs.endpoint = endpoint
    out["connect"] = harness.call_operator(bpy.ops.singan.connect)  # so that invoke below only sends the job
    link = addon.client.current()
    out["connect"].update(info=link.info, models=[info["id"] for info in link.models])
    out["invoke"] = {**harness.call_operator(train), "invoke": INVOKES.pop("train", None)}
    task = addon.jobs.TASKS["train"]
    out["running"] = follow(task, 3.0)
    out["cancel"] = harness.call_operator(bpy.ops.singan.cancel_job, slot="train")
    out["after_cancel"] = follow(task, 30.0)
    out["after_cancel"].update(cancelled=task.cancelled, error=str(task.error))

    photo = bpy.data.images.load(image_path)
    photo.name = "Chelsea photo"
    settings.train_source, settings.train_image, settings.train_name = "IMAGE", photo, ""
    out["train"] = {**harness.call_operator(train), "invoke": INVOKES.pop("train", None)}
    task = addon.jobs.TASKS["train"]
    out["train"].update(follow(task, None), message=task.message, error=str(task.error), scene_model=settings.model)

    prefs.endpoint = doomed_endpoint
    settings.train_name = "doomed"
    out["killed"] = {**harness.call_operator(train), "invoke": INVOKES.pop("train", None)}
    task = addon.jobs.TASKS["train"]
    while task.fraction == 0 and not task.poll():
        time.sleep(0.05)
    os.kill(int(doomed_pid), signal.SIGKILL)
    killed = time.monotonic()
    out["killed"].update(follow(task, 30.0), error=str(task.error), seconds=time.monotonic() - killed)
    prefs.endpoint = endpoint

    small = photo.copy()
    small.scale(45, 30)
    small.name = "small"
    settings.sr_image, settings.sr_factor, settings.sr_preset = small, "2", "tiny"
    out["super_resolve"] = harness.call_operator(bpy.ops.singan.super_resolve)
    result = bpy.data.images.get("small x2")
    if result is not None:
        out["super_resolve"].update(size=tuple(result.size), packed=result.packed_file is not None,
                                    kind=result.get("singan_kind"), model=result.get("singan_model"))


if __name__ == "__main__":
    harness.main(body)
