"""Background plates with the add-on's default options (issue 28):
``plates.py ENDPOINT MODEL PHOTO OUTDIR OUT.json``.

1. Render 768 x 432 at 50 %, the default plate options, MODEL: the plate (photo's layout) at 384 x 216.
2. "Instant" from PHOTO, seeds 0, 1, 2: three plates kept as three images, the newest in the world;
   the seed-2 plate's bytes go to OUTDIR/instant.rgba (uint8 RGBA rows top first).
3. Layout "Feature scale" at 320 x 180, feature scales 0.1 ... 1 (issue 29's init-canvas bug).
4. The view-transform hint's operator (AgX -> Standard).
5. The arrival of a 3840 x 2160 plate: pixels.new_image and placing it in the world, timed (wall and
   CPU seconds of this process: the shared test machine's wall time is mostly waiting for a core).
"""

import time
from pathlib import Path

import bpy
import harness
import numpy as np

FEATURE_SCALES = (0.1, 0.25, 0.5, 1.0)


def world_image(scene):
    node = scene.world.node_tree.nodes.get("SinGAN Plate")
    return node.image.name if node is not None and node.image else None


def plates():
    return sorted(image.name for image in bpy.data.images if image.get("singan_kind") == "plate")


def body(args, out):
    endpoint, model, photo, outdir = args
    outdir = Path(outdir)
    addon = harness.enable()
    harness.preferences().endpoint = endpoint
    scene = bpy.context.scene
    render = scene.render
    render.resolution_x, render.resolution_y, render.resolution_percentage = 768, 432, 50
    settings = scene.singan
    out["defaults"] = {
        "layout": settings.plate_layout,
        "render_size": settings.plate_render_size,
        "targets": sorted(settings.plate_targets),
        "view_transform": scene.view_settings.view_transform,
    }
    settings.model = model
    out["default_plate"] = harness.call_operator(bpy.ops.singan.generate_plate)
    task = addon.jobs.TASKS["plate"]
    out["default_plate"].update(
        params=task.job.params,
        size=[task.job.images[0].width, task.job.images[0].height],
        world_image=world_image(scene),
        plates=plates(),
    )

    settings.detail_source, settings.instant_source, settings.instant_path = "INSTANT", "FILE", photo
    out["seeds"] = []
    for seed in (0, 1, 2):
        settings.plate_seed = seed
        run = harness.call_operator(bpy.ops.singan.generate_plate)
        run.update(world_image=world_image(scene), plates=plates(), op=addon.jobs.TASKS["plate"].job.op)
        out["seeds"].append(run)
    job = addon.jobs.TASKS["plate"].job
    out["instant_size"] = [job.images[0].width, job.images[0].height]
    (outdir / "instant.rgba").write_bytes(bytes(job.images[0].data))

    settings.detail_source, settings.plate_layout = "MODEL", "FEATURE_SCALE"
    render.resolution_x, render.resolution_y, render.resolution_percentage = 320, 180, 100
    out["feature_scales"] = []
    for scale in FEATURE_SCALES:
        settings.feature_scale = scale
        run = harness.call_operator(bpy.ops.singan.generate_plate)
        job = addon.jobs.TASKS["plate"].job
        run.update(
            scale=scale, params=job.params, size=[job.images[0].width, job.images[0].height] if job.images else None
        )
        out["feature_scales"].append(run)

    out["view_standard"] = harness.call_operator(bpy.ops.singan.view_standard)
    out["view_after"] = scene.view_settings.view_transform

    from importlib import import_module

    pixels = import_module(f"{harness.EXTENSION}.pixels")
    operators = import_module(f"{harness.EXTENSION}.operators")
    wire = import_module(f"{harness.EXTENSION}.protocol.client")
    h, w = 2160, 3840
    ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] * np.ones((h, 1, 4), np.float32)
    ramp[..., 3] = 255
    image = wire.Image("sample", w, h, "RGBA", ramp.astype(np.uint8).tobytes())
    started, cpu = time.perf_counter(), time.process_time()
    arrived = pixels.new_image("4K plate", image, {"singan_kind": "plate"})
    operators._place_plate(scene, arrived, {"WORLD"}, "WINDOW")
    out["arrival_4k_s"], out["arrival_4k_cpu_s"] = time.perf_counter() - started, time.process_time() - cpu
    out["arrival_4k_world"] = world_image(scene)
    out["arrival_4k_packed"] = arrived.packed_file is not None
    started = time.perf_counter()
    bpy.ops.wm.save_as_mainfile(filepath=str(outdir / "plates.blend"))
    out["save_s"] = time.perf_counter() - started
    out["packed_after_save"] = {name: bpy.data.images[name].packed_file is not None for name in plates()}


if __name__ == "__main__":
    harness.main(body)
