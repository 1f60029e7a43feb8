"""Background plates, a seamless texture, the saved .blend and Cycles renders:
``scene.py ENDPOINT MODEL OUTDIR OUT.json``.

Runs the add-on's operators (EXEC: they run the same polling step as the modal path, in a loop)
against the daemon at ENDPOINT, and writes into OUTDIR: the daemon's bytes of the plate and the
texture as the add-on received them (``*.rgba``, uint8 RGBA rows top first), the same images read
back from Blender's datablocks, ``scene.blend``, and the renders."""

import time
from pathlib import Path

import bpy
import numpy as np

import harness

RENDER_SAMPLES = 16
ASPECT_CASES = [  # resolution x, y, percentage, pixel aspect x, y, longest side asked for
    (1920, 640, 100, 1, 1, 192),  # 3:1 panorama
    (4096, 2048, 50, 1, 1, 1000),  # 2:1 equirectangular at half size
    (1000, 1000, 100, 2, 1, 100),  # anamorphic pixels: the frame is 2:1
    (1080, 1920, 25, 1, 1, 640),  # portrait
]


def links(tree):
    return sorted(
        (link.from_node.name, link.from_socket.identifier, link.to_node.name, link.to_socket.identifier)
        for link in tree.links
    )


def plate_state(scene):
    """Where the plate is and which images exist."""
    camera = scene.camera
    tree = scene.world.node_tree
    plate = tree.nodes.get("SinGAN Plate")
    planes = [child for child in camera.children if child.get("singan_kind") == "plate"]
    state = {
        "images": sorted(
            image.name for image in bpy.data.images if image.type in {"IMAGE", "UV_TEST"}
        ),  # generated results are UV_TEST until packed
        "world_nodes": sorted((node.name, node.bl_idname) for node in tree.nodes),
        "world_links": links(tree),
        "world_image": plate.image.name if plate is not None and plate.image else None,
        "camera_show_background_images": camera.data.show_background_images,
        "camera_images": [bg.image.name if bg.image else None for bg in camera.data.background_images],
        "planes": [plane.name for plane in planes],
        "objects": len(bpy.data.objects),
        "materials": len(bpy.data.materials),
    }
    if planes:
        plane = planes[0]
        state["plane_image"] = plane.active_material.node_tree.nodes["SinGAN Plate"].image.name
        state["plane_corners"] = [tuple(vertex.co) for vertex in plane.data.vertices]
        state["plane_parent"] = plane.parent.name
    return state


def image_info(image):
    return {
        "name": image.name,
        "size": tuple(image.size),
        "packed": image.packed_file is not None,
        "pack_on_save": bool(image.get("singan_pack_on_save")),
        "tags": {key: image[key] for key in image.keys()},
    }


def save_pixels(image, path):
    """A Blender image's pixels as uint8 RGBA rows, top row first (the wire's layout)."""
    width, height = image.size
    pixels = np.empty(width * height * 4, np.float32)
    image.pixels.foreach_get(pixels)
    rows = np.rint(pixels.reshape(height, width, 4)[::-1] * 255).astype(np.uint8)
    Path(path).write_bytes(rows.tobytes())


def render(scene, path, width, height):
    """A Cycles CPU render with colours passed straight through (Standard view, no dither)."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = RENDER_SAMPLES
    scene.cycles.use_denoising = False
    scene.render.threads_mode = "FIXED"
    scene.render.threads = 1
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = width, height, 100
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    scene.render.dither_intensity = 0.0
    settings = scene.render.image_settings
    settings.file_format, settings.color_mode, settings.color_depth = "PNG", "RGB", "8"
    scene.render.filepath = str(path)
    started = time.monotonic()
    bpy.ops.render.render(write_still=True)
    return time.monotonic() - started


def body(args, out):
    endpoint, model, outdir = args
    outdir = Path(outdir)
    addon = harness.enable()
    out["modules"] = harness.wire_modules()
    harness.preferences().endpoint = endpoint
    scene = bpy.context.scene
    frame = scene.render
    out["plate_sizes"] = []
    for x, y, percentage, pixel_x, pixel_y, longest in ASPECT_CASES:
        frame.resolution_x, frame.resolution_y, frame.resolution_percentage = x, y, percentage
        frame.pixel_aspect_x, frame.pixel_aspect_y = pixel_x, pixel_y
        out["plate_sizes"].append(addon.nodes.plate_size(addon.nodes.render_aspect(frame), longest))
    frame.pixel_aspect_x = frame.pixel_aspect_y = 1.0
    frame.resolution_x, frame.resolution_y, frame.resolution_percentage = 1920, 640, 100
    settings = scene.singan
    settings.model = model
    settings.plate_layout, settings.plate_render_size, settings.plate_size = (
        "FEATURE_SCALE",
        False,
        192,
    )  # the lift's path

    steps = [
        ("first", 1, "WINDOW", {"WORLD", "CAMERA", "PLANE"}),
        ("second", 2, "WINDOW", {"WORLD", "CAMERA", "PLANE"}),
        ("environment", 3, "ENVIRONMENT", {"WORLD"}),
        ("final", 2, "WINDOW", {"WORLD", "CAMERA", "PLANE"}),
    ]
    for step, seed, mapping, targets in steps:
        settings.plate_seed, settings.world_mapping, settings.plate_targets = seed, mapping, targets
        out[step] = harness.call_operator(bpy.ops.singan.generate_plate)
        out[step]["state"] = plate_state(scene)
    task = addon.jobs.TASKS["plate"]
    settings.plate_start_scale = 40  # beyond the model's scales: the daemon refuses it
    out["bad_scale"] = harness.call_operator(bpy.ops.singan.generate_plate)
    out["bad_scale"]["state"] = plate_state(scene)
    settings.plate_start_scale = addon.properties.PLATE_START_SCALE
    out["plate_params"] = task.job.params
    (outdir / "plate.rgba").write_bytes(bytes(task.job.images[0].data))
    plate = bpy.data.images[out["final"]["state"]["world_image"]]
    out["plate"] = image_info(plate)
    save_pixels(plate, outdir / "plate_blender.rgba")

    bpy.ops.mesh.primitive_plane_add(size=4, location=(0, 0, -1))
    floor = bpy.context.active_object
    settings.texture_size, settings.texture_repeat = 64, 3.0
    for step, seed in (("texture_first", 0), ("texture", 1)):
        settings.texture_seed = seed
        out[step] = harness.call_operator(bpy.ops.singan.generate_texture)
        material = floor.active_material
        texture_node = material.node_tree.nodes["SinGAN Texture"]
        out[step]["state"] = {
            "material": material.name,
            "links": links(material.node_tree),
            "nodes": len(material.node_tree.nodes),
            "extension": texture_node.extension,
            "repeat": tuple(material.node_tree.nodes["SinGAN Texture Mapping"].inputs["Scale"].default_value),
            "image": image_info(texture_node.image),
            "images": sorted(
                image.name for image in bpy.data.images if image.type in {"IMAGE", "UV_TEST"}
            ),  # generated results are UV_TEST until packed
        }
    texture_task = addon.jobs.TASKS["texture"]
    out["texture_params"] = texture_task.job.params
    (outdir / "texture.rgba").write_bytes(bytes(texture_task.job.images[0].data))
    save_pixels(floor.active_material.node_tree.nodes["SinGAN Texture"].image, outdir / "texture_blender.rgba")
    floor.hide_render = True  # the renders below look at the plate only

    bpy.ops.wm.save_as_mainfile(filepath=str(outdir / "scene.blend"))

    plane = bpy.data.objects[out["final"]["state"]["planes"][0]]
    plane.hide_render = True
    out["render_world_seconds"] = render(scene, outdir / "render_world.png", 64, 32)
    plane.hide_render = False
    background = next(node for node in scene.world.node_tree.nodes if node.bl_idname == "ShaderNodeBackground")
    background.inputs["Strength"].default_value = 0.0
    out["render_plane_seconds"] = render(scene, outdir / "render_plane.png", 96, 32)


if __name__ == "__main__":
    harness.main(body)
