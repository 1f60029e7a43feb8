"""A full-resolution plate and an instant seamless texture (issue 13):
``fullres.py ENDPOINT MODEL IMAGE OUTDIR OUT.json``.

With the render at 1920 x 640 (3:1), a 960 px plate of MODEL at feature scale 1 (the source
photo's own scale), then, with the "Instant" source and IMAGE as its file (no model), a 128 px
seamless texture on a plane. Writes the daemon's bytes as the add-on received them into OUTDIR
(``plate.rgba``, ``texture.rgba``: uint8 RGBA rows top first)."""

from pathlib import Path

import bpy

import harness


def body(args, out):
    endpoint, model, image, outdir = args
    outdir = Path(outdir)
    addon = harness.enable()
    harness.preferences().endpoint = endpoint
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 1920, 640, 100
    settings = scene.singan
    settings.model, settings.plate_size, settings.feature_scale = model, 960, 1.0
    settings.plate_layout, settings.plate_render_size = "FEATURE_SCALE", False  # the lift at feature scale 1
    settings.plate_targets = {"WORLD"}
    out["plate"] = harness.call_operator(bpy.ops.singan.generate_plate)
    task = addon.jobs.TASKS["plate"]
    out["plate_params"] = task.job.params
    out["plate_size"] = [task.job.images[0].width, task.job.images[0].height]
    (outdir / "plate.rgba").write_bytes(bytes(task.job.images[0].data))

    settings.detail_source, settings.instant_source, settings.instant_path = "INSTANT", "FILE", image
    settings.texture_size = 128
    bpy.ops.mesh.primitive_plane_add(size=2)
    out["texture"] = harness.call_operator(bpy.ops.singan.generate_texture)
    task = addon.jobs.TASKS["texture"]
    out["texture_op"], out["texture_params"] = task.job.op, task.job.params
    out["texture_image"] = bpy.context.active_object.active_material.node_tree.nodes["SinGAN Texture"].image.name
    (outdir / "texture.rgba").write_bytes(bytes(task.job.images[0].data))


if __name__ == "__main__":
    harness.main(body)
