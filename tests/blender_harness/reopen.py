"""Open a saved .blend in a fresh process and read back what the add-on left there:
``reopen.py BLEND OUTDIR OUT.json``. The add-on is not enabled: the file must stand on its own.
Writes the packed images' pixels to OUTDIR (``plate.rgba``, ``texture.rgba``: uint8 RGBA rows,
top row first)."""

from pathlib import Path

import bpy

import harness
from scene import image_info, links, save_pixels


def body(args, out):
    blend, outdir = args
    bpy.ops.wm.open_mainfile(filepath=blend)
    scene = bpy.context.scene
    world_tree = scene.world.node_tree
    plate = world_tree.nodes["SinGAN Plate"].image
    out["addon_enabled"] = harness.EXTENSION in bpy.context.preferences.addons
    out["plate"] = {**image_info(plate), "filepath": plate.filepath, "source": plate.source}
    out["world_links"] = links(world_tree)
    out["camera_images"] = [bg.image.name if bg.image else None for bg in scene.camera.data.background_images]
    out["plane_images"] = [
        child.active_material.node_tree.nodes["SinGAN Plate"].image.name
        for child in scene.camera.children
        if child.get("singan_kind") == "plate"
    ]
    save_pixels(plate, Path(outdir) / "plate.rgba")
    texture = next(image for image in bpy.data.images if image.get("singan_kind") == "texture")
    out["texture"] = image_info(texture)
    save_pixels(texture, Path(outdir) / "texture.rgba")


if __name__ == "__main__":
    harness.main(body)
