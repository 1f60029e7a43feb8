"""Panels: World properties ("SinGAN Background") and the 3D viewport sidebar ("SinGAN" tab).

Widgets only: the settings live in ``scene.singan``, running jobs in :data:`jobs.TASKS`, the
connection and the models in the session (:mod:`.client`). Drawing reads them; nothing here sends
or waits. The status bar shows the connection and the running jobs too.
"""

from __future__ import annotations

import bpy

from . import client, jobs, operators
from .preferences import draw_connection
from .protocol import advice
from .protocol.session import ConnectionState, eta_text, preset_text


def draw_task(layout: bpy.types.UILayout, slot: str) -> None:
    """The slot's running job (progress bar and Cancel button), or how its last job failed."""
    task = jobs.TASKS.get(slot)
    if task is None:
        return
    if not task.finished:
        row = layout.row(align=True)
        row.progress(factor=task.fraction or 0.0, type="BAR", text=task.phase)
        row.operator("singan.cancel_job", text="", icon="CANCEL").slot = slot
    elif task.failed and not task.cancelled:
        layout.label(text=task.message, icon="ERROR")


def draw_model(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    settings = context.scene.singan
    row = layout.row(align=True)
    row.prop(settings, "model", icon="OUTLINER_OB_IMAGE")
    row.operator("singan.connect", text="", icon="FILE_REFRESH")
    link = client.current()
    info = link.model(settings.model) if link is not None else None
    if info is not None:
        layout.label(
            text=f"{info['width']}x{info['height']} px, {info['num_scales']} scales (0-{info['num_scales'] - 1}), "
            f"{info['preset']}, {info['padding']} padding"
        )


def draw_unfinished(layout: bpy.types.UILayout) -> None:
    """The daemon's interrupted (or failed) trainings, each with Resume and Delete buttons."""
    models = operators.unfinished_models(client.current())
    if not models:
        return
    box = layout.box()
    box.label(text="Interrupted trainings", icon="PAUSE")
    for info in models:
        row = box.row(align=True)
        why = "failed" if info["status"] == "failed" else "interrupted"
        row.label(text=f"{info['name']}: {why}, {info['scales_done']} of {info['num_scales']} scales")
        row.operator("singan.resume_model", text="", icon="PLAY").model = info["id"]
        row.operator("singan.delete_model", text="", icon="TRASH").model = info["id"]
    draw_task(box, "models")


def draw_preset(layout: bpy.types.UILayout, name: str) -> None:
    """The preset's size and iterations, as the daemon's ``hello`` gave them."""
    link = client.current()
    preset = next((preset for preset in link.presets if preset.name == name), None) if link is not None else None
    if preset is not None:
        layout.label(text=preset_text(preset), icon="INFO")


def draw_training_estimate(layout: bpy.types.UILayout, settings) -> None:
    """How long the training will take (:func:`protocol.advice.training_estimate`: the daemon's cost
    model from ``hello``, else its last trainings of the preset), as the Krita docker says it. An
    image file's size is not read while drawing: a long side of at least the preset's size is assumed."""
    link = client.current()
    if link is None or not link.info:
        return
    image = settings.train_image if settings.train_source == "IMAGE" else None
    width, height = tuple(image.size) if image is not None and image.size[0] else (4096, 4096)
    estimate = advice.training_estimate(link.info, link.models, settings.train_preset, width, height)
    if estimate.seconds is None:
        layout.label(text=f"Time unknown: {estimate.basis}", icon="TIME")
    else:
        layout.label(text=f"About {eta_text(estimate.seconds).removesuffix(' left')}, {estimate.basis}", icon="TIME")


def draw_train(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    settings = context.scene.singan
    layout.row().prop(settings, "train_source", expand=True)
    if settings.train_source == "FILE":
        layout.prop(settings, "train_path")
    else:
        layout.template_ID(settings, "train_image", open="image.open")
    layout.prop(settings, "train_name")
    row = layout.row()
    row.prop(settings, "train_preset")
    row.prop(settings, "train_seamless")
    draw_preset(layout, settings.train_preset)
    draw_training_estimate(layout, settings)
    layout.operator("singan.train", icon="PLAY")
    draw_task(layout, "train")


def draw_source(layout: bpy.types.UILayout, settings, feature_scale: bool = True) -> None:
    """Where plates and textures come from (a model or an instant image) and their feature scale."""
    layout.row().prop(settings, "detail_source", expand=True)
    if settings.detail_source == "INSTANT":
        layout.row().prop(settings, "instant_source", expand=True)
        if settings.instant_source == "IMAGE":
            layout.template_ID(settings, "instant_image", open="image.open")
        else:
            layout.prop(settings, "instant_path")
    if feature_scale:
        layout.prop(settings, "feature_scale")


def draw_plate(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    settings, scene = context.scene.singan, context.scene
    fitted = settings.plate_layout == "FITTED"
    draw_source(layout, settings, feature_scale=not fitted)
    layout.row().prop(settings, "plate_layout", expand=True)
    layout.label(
        text="Photo's height fitted, horizon kept, new content at the sides"
        if fitted
        else "New layouts of the photo's features at the feature scale",
        icon="INFO",
    )
    width, height = operators.plate_pixels(scene)
    row = layout.row()
    row.prop(settings, "plate_render_size")
    if not settings.plate_render_size:
        row.prop(settings, "plate_size")
    row.label(text=f"{width} x {height} px")
    row = layout.row(align=True)
    row.prop(settings, "plate_seed")
    row.prop(settings, "plate_start_scale")
    layout.row().prop(settings, "plate_targets")
    if "WORLD" in settings.plate_targets:
        layout.row().prop(settings, "world_mapping", expand=True)
    view = scene.view_settings.view_transform
    if view != "Standard":
        row = layout.row()
        row.alert = True
        row.label(text=f"The {view} view changes the plate's colours", icon="ERROR")
        row.operator("singan.view_standard", text="Standard")
    layout.operator("singan.generate_plate", icon="WORLD")
    draw_task(layout, "plate")


def draw_texture(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    settings = context.scene.singan
    draw_source(layout, settings)
    row = layout.row()
    row.prop(settings, "texture_size")
    row.prop(settings, "texture_repeat")
    row = layout.row(align=True)
    row.prop(settings, "texture_seed")
    row.prop(settings, "texture_start_scale")
    layout.operator("singan.generate_texture", icon="TEXTURE")
    draw_task(layout, "texture")


def draw_super_resolve(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    settings = context.scene.singan
    layout.template_ID(settings, "sr_image", open="image.open")
    row = layout.row()
    row.prop(settings, "sr_factor", expand=True)
    row.prop(settings, "sr_preset")
    link = client.current()
    preset = next((p for p in link.presets if p.name == settings.sr_preset), None) if link is not None else None
    if preset is not None and preset.iterations is not None:
        layout.label(text=f"Trains at the image's own size, {preset.iterations} iterations per scale", icon="INFO")
    layout.operator("singan.super_resolve", icon="FULLSCREEN_ENTER")
    draw_task(layout, "super_resolve")
    if settings.sr_result is not None:
        layout.label(text=f"Result: {settings.sr_result.name} (shown in open Image Editors)", icon="IMAGE_DATA")


class SINGAN_PT_world(bpy.types.Panel):
    bl_label = "SinGAN Background"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "world"

    def draw(self, context):
        draw_model(self.layout, context)
        draw_plate(self.layout, context)


class _Sidebar:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "SinGAN"


class SINGAN_PT_sidebar(_Sidebar, bpy.types.Panel):
    bl_label = "SinGAN Studio"

    def draw(self, context):
        draw_connection(self.layout)
        draw_model(self.layout, context)
        draw_unfinished(self.layout)


class SINGAN_PT_train(_Sidebar, bpy.types.Panel):
    bl_label = "Train"
    bl_parent_id = "SINGAN_PT_sidebar"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        draw_train(self.layout, context)


class SINGAN_PT_plate(_Sidebar, bpy.types.Panel):
    bl_label = "Background Plate"
    bl_parent_id = "SINGAN_PT_sidebar"

    def draw(self, context):
        draw_plate(self.layout, context)


class SINGAN_PT_texture(_Sidebar, bpy.types.Panel):
    bl_label = "Seamless Texture"
    bl_parent_id = "SINGAN_PT_sidebar"

    def draw(self, context):
        draw_texture(self.layout, context)


class SINGAN_PT_super_resolve(_Sidebar, bpy.types.Panel):
    bl_label = "Super-resolution"
    bl_parent_id = "SINGAN_PT_sidebar"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        draw_super_resolve(self.layout, context)


def draw_status_bar(self, context) -> None:
    """In Blender's status bar: the connection while it is not connected, and each running job."""
    link = client.current()
    if link is not None and link.state is not ConnectionState.connected:
        self.layout.label(text=f"SinGAN: {link.status}", icon="UNLINKED")
    for task in jobs.TASKS.values():
        if not task.finished:
            self.layout.label(text=f"SinGAN: {task.phase}", icon="TIME")


classes = (
    SINGAN_PT_world,
    SINGAN_PT_sidebar,
    SINGAN_PT_train,
    SINGAN_PT_plate,
    SINGAN_PT_texture,
    SINGAN_PT_super_resolve,
)

_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register_classes()
    bpy.types.STATUSBAR_HT_header.append(draw_status_bar)


def unregister() -> None:
    bpy.types.STATUSBAR_HT_header.remove(draw_status_bar)
    _unregister_classes()
