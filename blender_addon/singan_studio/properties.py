"""The add-on's settings, one set per scene (``scene.singan``)."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import client
from .protocol.session import preset_text

PLATE_START_SCALE = 0
"""Default start scale of background plates: the coarsest. Plates are several times the model's
size (1024 px from a 128-250 px model); from scale 1 on, they show the photo's layout as a small
island in the middle of content that is the same for every seed (compared on coffee.png and
chelsea.png models), while scale 0 gives an even, new layout for each seed."""
TEXTURE_START_SCALE = 0
"""Default start scale of seamless textures: the coarsest, so no large feature of the photo
repeats in every tile and each seed gives another pattern (compared on brick.png)."""


def _presets(settings: SinGANSettings, context: bpy.types.Context, text: str) -> list[tuple[str, str]]:
    """Search items of the preset fields: the daemon's presets with their sizes and iterations
    (from its ``hello``; none until connected)."""
    connection = client.current()
    return [
        (preset.name, preset_text(preset))
        for preset in (connection.presets if connection is not None else [])
        if text.lower() in preset.name
    ]


def _sr_presets(settings: SinGANSettings, context: bpy.types.Context, text: str) -> list[tuple[str, str]]:
    """Search items of the super-resolution preset: its iterations per scale (an SR model trains at
    the image's own size, not at the preset's size)."""
    connection = client.current()
    return [
        (
            preset.name,
            f"{preset.name}: {preset.iterations} iterations per scale, at the image's own size"
            if preset.iterations is not None
            else preset.name,
        )
        for preset in (connection.presets if connection is not None else [])
        if text.lower() in preset.name
    ]


def _ready_models(settings: SinGANSettings, context: bpy.types.Context, text: str) -> list[tuple[str, str]]:
    """Search items of the model field: the daemon's ready generative models (cached by
    Connect / Refresh and by training)."""
    connection = client.current()
    models = connection.models if connection is not None else []
    return [
        (info["id"], f"{info['name']}, {info['width']}x{info['height']} px, {info['num_scales']} scales")
        for info in models
        if info["status"] == "ready" and info["kind"] == "generative" and text.lower() in info["id"]
    ]


class SinGANSettings(bpy.types.PropertyGroup):
    model: StringProperty(
        name="Model",
        description="Id of a ready model in the daemon (Refresh lists them)",
        search=_ready_models,
    )

    train_source: EnumProperty(
        name="Source",
        items=[("FILE", "File", "An image file"), ("IMAGE", "Image", "An image in this .blend")],
    )
    train_path: StringProperty(name="File", description="Image file to learn from", subtype="FILE_PATH")
    train_image: PointerProperty(name="Image", description="Image to learn from", type=bpy.types.Image)
    train_name: StringProperty(name="Name", description="Name of the new model (empty: the image's name)")
    train_preset: StringProperty(
        name="Preset",
        description="Training preset: its size and iterations per scale come from the daemon",
        default="draft",
        search=_presets,
    )
    train_seamless: BoolProperty(
        name="Seamless",
        description="Train with circular padding, for tileable textures and wrap-around panoramas",
    )

    detail_source: EnumProperty(
        name="From",
        items=[
            (
                "MODEL",
                "Model",
                "The chosen trained model: SinGAN's layout, the source photo's detail at the output's size",
            ),
            ("INSTANT", "Instant", "No training: patch synthesis from an image (GPNN), in seconds"),
        ],
        description="Where plates and textures come from",
    )
    instant_source: EnumProperty(
        name="Instant from",
        items=[("FILE", "File", "An image file"), ("IMAGE", "Image", "An image in this .blend")],
    )
    instant_path: StringProperty(
        name="File", description="Image file of instant plates and textures", subtype="FILE_PATH"
    )
    instant_image: PointerProperty(
        name="Image", description="Image of instant plates and textures", type=bpy.types.Image
    )
    feature_scale: FloatProperty(
        name="Feature scale",
        description=(
            "Output pixels per source-photo pixel: 1 shows the photo's objects at the photo's own size, "
            "0.5 at half; the plate or tile is made at its pixel size either way"
        ),
        default=1.0,
        min=0.05,
        max=16.0,
        soft_min=0.1,
        soft_max=4.0,
    )

    plate_layout: EnumProperty(
        name="Layout",
        items=[
            (
                "FITTED",
                "Photo's layout",
                "A photographer's plate: the photo's height fitted to the plate's, its sky, horizon and ground kept, "
                "new content at the sides for the render's aspect, detail at the plate's resolution from the photo's own "
                "patches (feature scale is not used)",
            ),
            (
                "FEATURE_SCALE",
                "Feature scale",
                "New layouts made of the photo's features at the feature scale: more of the same content over the whole "
                "plate, as for textures; no horizon is kept",
            ),
        ],
        description="How the plate is laid out",
    )
    plate_render_size: BoolProperty(
        name="Render size",
        default=True,
        description="Make the plate at the render's resolution times its percentage (off: the longest side below)",
    )
    plate_size: IntProperty(
        name="Size",
        description="Longest side of the plate in pixels when Render size is off; the other side follows the render's aspect",
        default=1024,
        min=16,
        max=8192,
        subtype="PIXEL",
    )
    plate_seed: IntProperty(name="Seed", description="Same seed, same plate", min=0, max=2**31 - 1)
    plate_start_scale: IntProperty(
        name="Start scale",
        description=(
            "Feature-scale layout: first scale with new noise (0 = coarsest). 0: a new layout for each seed; higher: the "
            f"photo's layout in the middle, new detail only. Default {PLATE_START_SCALE}. Photo's layout: at least 1 "
            "(SinGAN's retargeting keeps the photo's coarse layout)"
        ),
        default=PLATE_START_SCALE,
        min=0,
        max=63,
    )
    plate_targets: EnumProperty(
        name="Use as",
        items=[
            ("WORLD", "World", "The world background"),
            ("CAMERA", "Camera", "The active camera's background image (camera view only)"),
            ("PLANE", "Plane", "An emissive plane parented to the camera, filling its view"),
        ],
        options={"ENUM_FLAG"},
        default={"WORLD"},
    )
    world_mapping: EnumProperty(
        name="Mapping",
        items=[
            ("WINDOW", "Window", "Fill the camera frame (Texture Coordinate Window)"),
            ("ENVIRONMENT", "Equirectangular", "All around the scene (Environment Texture); use a 2:1 render size"),
        ],
    )

    texture_size: IntProperty(
        name="Size", description="Side of the square tile in pixels", default=512, min=8, max=8192, subtype="PIXEL"
    )
    texture_seed: IntProperty(name="Seed", description="Same seed, same texture", min=0, max=2**31 - 1)
    texture_start_scale: IntProperty(
        name="Start scale",
        description=(
            "First scale with new noise (0 = coarsest). 0: a new pattern for each seed; higher: the photo's "
            f"layout with new detail. Default {TEXTURE_START_SCALE}: no large feature of the photo repeats in every tile"
        ),
        default=TEXTURE_START_SCALE,
        min=0,
        max=63,
    )
    texture_repeat: FloatProperty(
        name="Repeat", description="Tiles across the UV square", default=2.0, min=0.01, max=1000.0
    )

    sr_image: PointerProperty(
        name="Image", description="Image to enlarge (longest side at most 1024 px)", type=bpy.types.Image
    )
    sr_factor: EnumProperty(
        name="Factor", items=[("2", "2x", "Twice the size"), ("4", "4x", "Four times the size")], default="2"
    )
    sr_preset: StringProperty(
        name="Preset",
        description="Training preset of the super-resolution model: its iterations per scale (the model trains at the image's own size)",
        default="draft",
        search=_sr_presets,
    )
    sr_result: PointerProperty(name="Result", description="The last super-resolved image", type=bpy.types.Image)


classes = (SinGANSettings,)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.singan = PointerProperty(type=SinGANSettings)


def unregister() -> None:
    del bpy.types.Scene.singan
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
