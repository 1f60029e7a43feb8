"""Cycles renders of background plates (issue 28): each plate as the world background of a small
scene, rendered with 16 samples, and a contact sheet of the renders.

Run with Blender's Python (the bpy wheel; pillow is not needed there)::

    python bench/plate_renders.py --out DIR PLATE.png [PLATE.png ...]

The world is wired as the add-on does for a plate shown behind the scene ("Window" mapping:
Texture Coordinate (Window) -> Image Texture -> Background), with the Standard view transform the
add-on's hint sets; the scene is a white diffuse sphere and a grey diffuse cube, lit by the plate
only, in front of the camera (a mirror would show the Window mapping's screen-space lookup, not the
plate). Each render is written to DIR/render_<plate name>.png
at --width x --height (default 960 x 540: half of the 1920 x 1080 plates), and the contact sheet
of them, two per row, to DIR/renders_sheet.png.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import bpy
import numpy as np

SAMPLES = 16


def scene(width: int, height: int) -> bpy.types.Scene:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    s = bpy.context.scene
    s.render.engine = "CYCLES"
    s.cycles.samples, s.cycles.device = SAMPLES, "CPU"
    s.cycles.use_denoising = False
    s.render.resolution_x, s.render.resolution_y, s.render.resolution_percentage = width, height, 100
    s.view_settings.view_transform, s.view_settings.look = "Standard", "None"
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    s.collection.objects.link(camera)
    camera.location, camera.rotation_euler = (0, -6, 1), (math.radians(85), 0, 0)
    s.camera = camera
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.8, location=(-1.0, 0, 0.8), segments=48, ring_count=24)
    white = bpy.data.materials.new("White")
    white.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.8, 0.8, 0.8, 1)
    bpy.context.object.data.materials.append(white)
    bpy.ops.object.shade_smooth()
    bpy.ops.mesh.primitive_cube_add(size=1.1, location=(1.1, 0.3, 0.55), rotation=(0, 0, math.radians(30)))
    grey = bpy.data.materials.new("Grey")
    grey.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.5, 0.5, 0.5, 1)
    bpy.context.object.data.materials.append(grey)
    s.world = bpy.data.worlds.new("World")
    return s


def set_plate(s: bpy.types.Scene, path: Path) -> None:
    tree = s.world.node_tree
    tree.nodes.clear()
    coords, texture = tree.nodes.new("ShaderNodeTexCoord"), tree.nodes.new("ShaderNodeTexImage")
    background, output = tree.nodes.new("ShaderNodeBackground"), tree.nodes.new("ShaderNodeOutputWorld")
    texture.image = bpy.data.images.load(str(path))
    texture.extension = "EXTEND"
    tree.links.new(coords.outputs["Window"], texture.inputs["Vector"])
    tree.links.new(texture.outputs["Color"], background.inputs["Color"])
    tree.links.new(background.outputs["Background"], output.inputs["Surface"])


def render(s: bpy.types.Scene, out: Path) -> tuple[np.ndarray, float]:
    s.render.filepath = str(out)
    started = time.process_time()
    bpy.ops.render.render(write_still=True)
    seconds = time.process_time() - started
    image = bpy.data.images.load(str(out))
    pixels = np.array(image.pixels[:], np.float32).reshape(image.size[1], image.size[0], 4)[::-1, :, :3]
    bpy.data.images.remove(image)
    return pixels, seconds


def sheet(images: list[np.ndarray], out: Path, per_row: int = 2) -> None:
    """Images (h, w, 3) floats in [0, 1], rows top first, ``per_row`` a row, 8 px white gaps."""
    h, w = images[0].shape[:2]
    rows = math.ceil(len(images) / per_row)
    canvas = np.ones((rows * h + (rows - 1) * 8, per_row * w + (per_row - 1) * 8, 4), np.float32)
    for i, image in enumerate(images):
        top, left = (i // per_row) * (h + 8), (i % per_row) * (w + 8)
        canvas[top : top + h, left : left + w, :3] = image
    result = bpy.data.images.new("sheet", canvas.shape[1], canvas.shape[0])
    result.pixels.foreach_set(canvas[::-1].ravel())
    result.filepath_raw, result.file_format = str(out), "PNG"
    result.save()


def main() -> None:
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("plates", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--width", type=int, default=960)
    parser.add_argument("--height", type=int, default=540)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    s = scene(args.width, args.height)
    renders = []
    for path in args.plates:
        set_plate(s, path)
        pixels, seconds = render(s, args.out / f"render_{path.stem}.png")
        renders.append(pixels)
        print(f"{path.stem}: Cycles {SAMPLES} samples, {args.width}x{args.height}, {seconds:.1f} CPU s", flush=True)
    sheet(renders, args.out / "renders_sheet.png")
    print(f"contact sheet: {args.out / 'renders_sheet.png'}")


if __name__ == "__main__":
    main()
