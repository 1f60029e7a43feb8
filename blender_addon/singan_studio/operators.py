"""Operators: connect, train, background plate, seamless texture, super-resolve, resume or delete
an interrupted model, cancel.

Nothing here waits on the network. Connect asks the session for a ``hello`` and returns; the
answer (or "unreachable") shows in the panels and the status bar when a pump gets it. Every daemon
job runs in a modal operator: ``invoke`` reads the document, starts a session task (sent at once,
or as soon as the session is connected) and returns; each timer event pumps the session (a
zero-timeout poll), updates the progress and, when the task ends, reports it (its result was
applied by the pump that received it). Esc or the panel's Cancel button send the cancel and
return. ``execute`` takes the same modal path in Blender's UI (Repeat Last, a script run there);
only in background mode (no event loop) it pumps until the task ends.
Results are applied by name (scene, object, image) looked up when they arrive, so undo or
renaming in between cannot leave a stale reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import bpy
from bpy.props import StringProperty

from . import client, jobs, nodes, pixels
from .protocol.client import Image
from .protocol.requests import super_resolve_params, synthesis_request, train_params
from .protocol.session import Session, Task

POLL_INTERVAL_S = 0.1
"""Seconds between two polls of a running job (the timer's interval)."""

Request = tuple[str, dict, list[Image], jobs.Finish]
"""(op, params, images, finish) of a job."""


def session(context: bpy.types.Context) -> Session:
    """The shared session with the endpoint set in the add-on preferences (nothing is sent)."""
    prefs = context.preferences.addons[__package__].preferences
    return client.session(prefs.endpoint, prefs.token or None)


def _redraw_panels(context: bpy.types.Context) -> None:
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PROPERTIES", "STATUSBAR"}:
                area.tag_redraw()


class SINGAN_OT_connect(bpy.types.Operator):
    """Ask the daemon for its version, device and models (the answer shows in the panel and the status bar)"""

    bl_idname = "singan.connect"
    bl_label = "Connect / Refresh"

    @classmethod
    def poll(cls, context):
        if not context.preferences.addons[__package__].preferences.endpoint:
            cls.poll_message_set("Set the daemon's endpoint in the add-on preferences")
            return False
        return True

    def execute(self, context):
        link = session(context)
        link.connect()
        _redraw_panels(context)
        self.report({"INFO"}, f"SinGAN daemon: {link.status}")
        return {"FINISHED"}


class _JobOperator:
    """A daemon job as a modal operator. Subclasses set ``slot`` and ``title`` and implement
    :meth:`missing` (why it cannot run now, for ``poll``) and :meth:`request`."""

    slot: str
    title: str

    @classmethod
    def poll(cls, context):
        why = f"{cls.title}: a job is already running" if jobs.running(cls.slot) else cls.missing(context)
        if why:
            cls.poll_message_set(why)
        return why is None

    @classmethod
    def missing(cls, context: bpy.types.Context) -> str | None:
        """Why the operator cannot run in this context, or None."""
        raise NotImplementedError

    def request(self, context: bpy.types.Context) -> Request:
        """The job to send and how to apply its result (reads the scene's settings now)."""
        raise NotImplementedError

    def start(self, context: bpy.types.Context) -> Task:
        return jobs.start(self.slot, session(context), self.title, *self.request(context))

    def invoke(self, context, event):
        try:
            self.task = self.start(context)
        except Exception as error:
            return self.fail(error)
        wm = context.window_manager
        self.timer = wm.event_timer_add(POLL_INTERVAL_S, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0.0, 1.0)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            self.task.cancel()  # sends the cancel; the task ends at a later pump
            _redraw_panels(context)
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        client.pump()
        _redraw_panels(context)
        if not self.task.finished:
            context.window_manager.progress_update(self.task.fraction or 0.0)
            return {"PASS_THROUGH"}  # other operators' timers tick through here too
        self.stop_timer(context)
        return self.outcome(self.task)

    def cancel(self, context):
        """Blender ends the operator (e.g. another file is opened): stop following the job. It goes
        on in the daemon (a training still makes its model) but its result is not applied."""
        self.stop_timer(context)
        self.task.detach()

    def stop_timer(self, context: bpy.types.Context) -> None:
        context.window_manager.event_timer_remove(self.timer)
        context.window_manager.progress_end()

    def execute(self, context):
        """In Blender's UI (Repeat Last, a script run there): the modal path, which never waits.
        In background mode (no event loop to deliver timer events): pump until the job ends."""
        if not bpy.app.background:
            return self.invoke(context, None)
        try:
            task = self.start(context)
        except Exception as error:
            return self.fail(error)
        while not task.finished:
            client.pump()
            time.sleep(POLL_INTERVAL_S)
        return self.outcome(task)

    def outcome(self, task: Task) -> set[str]:
        if task.cancelled:
            self.report({"WARNING"}, f"{self.title}: cancelled")
            return {"CANCELLED"}
        if task.failed:
            return self.fail(task.message)
        self.report({"INFO"}, f"{self.title}: {task.message}")
        return {"FINISHED"}

    def fail(self, error: Exception | str) -> set[str]:
        self.report({"ERROR"}, f"{self.title} failed: {error}")
        return {"CANCELLED"}


def _model_missing(context: bpy.types.Context) -> str | None:
    return None if context.scene.singan.model else "Choose a model (train one, or Connect / Refresh to list them)"


def _source_missing(context: bpy.types.Context) -> str | None:
    """Why plates and textures cannot be made from the chosen source (a model, or an instant image)."""
    settings = context.scene.singan
    if settings.detail_source == "MODEL":
        return _model_missing(context)
    if settings.instant_source == "IMAGE":
        return None if settings.instant_image is not None else "Choose an image for instant results"
    return None if settings.instant_path else "Choose an image file for instant results"


def _synthesis(
    settings, width: int, height: int, seed: int, start_scale: int, tile: bool, plate: bool = False
) -> tuple[str, dict, list[Image], str]:
    """(op, params, images, label) of a plate or texture of width x height px at the scene's
    feature scale (``plate``: the photo's fitted layout instead): a lifted ``generate`` of the chosen
    model, or an ``instant`` of the chosen image (:func:`protocol.requests.synthesis_request`);
    label names the result (the model id or ``<image> instant``)."""
    common = {
        "n": 1,
        "seed": seed,
        "feature_scale": settings.feature_scale,
        "tile": tile,
        "output_order": "RGBA",
        "plate": plate,
    }
    if settings.detail_source == "MODEL":
        op, params, images = synthesis_request(
            width, height, model=settings.model, gen_start_scale=start_scale, **common
        )
        return op, params, images, settings.model
    image, name = _source_image(settings.instant_source, settings.instant_image, settings.instant_path)
    op, params, images = synthesis_request(width, height, image=image, **common)
    return op, params, images, f"{name} instant"


def _replace(name: str, result: Image, tags: dict, place: Callable[[bpy.types.Image], list]) -> bpy.types.Image:
    """Make the result's packed datablock ``name``, put it in its slots with ``place`` (which
    returns the images it replaced), delete those if now unused, and give the new image its name
    back if a replaced one had it (Blender had appended ``.001``)."""
    image = pixels.new_image(name, result, tags)
    for previous in {previous for previous in place(image) if previous is not None and previous != image}:
        pixels.remove_if_unused(previous)
    if image.name != name and bpy.data.images.get(name) is None:
        image.name = name
    return image


class SINGAN_OT_train(_JobOperator, bpy.types.Operator):
    """Train a new model on an image file or an image of this .blend (in the daemon)"""

    bl_idname = "singan.train"
    bl_label = "Train"
    bl_options = {"REGISTER", "UNDO"}
    slot, title = "train", "Training"

    @classmethod
    def missing(cls, context):
        settings = context.scene.singan
        if settings.train_source == "FILE" and not settings.train_path:
            return "Choose an image file to train on"
        if settings.train_source == "IMAGE" and settings.train_image is None:
            return "Choose an image to train on"
        return None

    def request(self, context):
        settings = context.scene.singan
        image, default_name = _training_image(settings)
        params = train_params(settings.train_name or default_name, settings.train_preset, settings.train_seamless)

        return "train", params, [image], _model_ready(context.scene.name)


def _model_ready(scene_name: str) -> jobs.Finish:
    """A training's finish: the new model becomes the scene's model."""

    def finish(data: dict, images: list) -> str:
        model = data["model"]
        if (scene := bpy.data.scenes.get(scene_name)) is not None:
            scene.singan.model = model["id"]
        return f"model '{model['id']}' is ready ({model['num_scales']} scales, {model['width']}x{model['height']} px)"

    return finish


def unfinished_models(link: Session | None) -> list[dict]:
    """The daemon's models whose training stopped before the end (interrupted or failed) and is not
    queued or running: the ones the panel offers to resume or delete."""
    return [info for info in (link.models if link is not None else []) if info["status"] in ("interrupted", "failed")]


class SINGAN_OT_resume_model(_JobOperator, bpy.types.Operator):
    """Train this interrupted model on from its first unfinished scale (its finished scales are kept)"""

    bl_idname = "singan.resume_model"
    bl_label = "Resume Training"
    bl_options = {"REGISTER"}
    slot, title = "train", "Training"
    model: StringProperty(name="Model", description="Id of the interrupted model", options={"HIDDEN"})

    @classmethod
    def missing(cls, context):
        return None

    def request(self, context):
        if not self.model:
            raise ValueError("no model to resume")
        return "resume", {"model": self.model}, [], _model_ready(context.scene.name)


class SINGAN_OT_delete_model(_JobOperator, bpy.types.Operator):
    """Delete this model from the daemon's store (its files are removed)"""

    bl_idname = "singan.delete_model"
    bl_label = "Delete Model"
    bl_options = {"REGISTER"}
    slot, title = "models", "Delete model"
    model: StringProperty(name="Model", description="Id of the model to delete", options={"HIDDEN"})

    @classmethod
    def missing(cls, context):
        return None

    def invoke(self, context, event):
        if event is None:  # execute's modal path (Repeat Last, a script): no dialog
            return _JobOperator.invoke(self, context, event)
        return context.window_manager.invoke_confirm(self, event, message=f"Delete the model '{self.model}'?")

    def request(self, context):
        if not self.model:
            raise ValueError("no model to delete")
        scene_name, model, link = context.scene.name, self.model, session(context)

        def finish(data: dict, images: list) -> str:
            scene = bpy.data.scenes.get(scene_name)
            if scene is not None and scene.singan.model == model:
                scene.singan.model = ""
            link.connect()  # the model list without it, at the next pump
            return f"model '{data['deleted']}' deleted"

        return "delete_model", {"model": model}, [], finish


def _training_image(settings) -> tuple[Image, str]:
    """The image to train on as a wire image, and a default model name (the file's stem or the
    image's name). A file is loaded through Blender (any format it reads) and unloaded again.

    Raises:
        RuntimeError: Blender cannot read the file. ValueError: the image has no pixels.
    """
    return _source_image(settings.train_source, settings.train_image, settings.train_path)


def _source_image(source: str, image: bpy.types.Image | None, file_path: str) -> tuple[Image, str]:
    """The image of a File/Image choice (``source`` FILE or IMAGE) as a wire image, and its name."""
    if source == "IMAGE":
        return pixels.read_image(image), image.name
    path = bpy.path.abspath(file_path)
    loaded = bpy.data.images.load(path, check_existing=False)
    try:
        return pixels.read_image(loaded), bpy.path.display_name_from_filepath(path)
    finally:
        bpy.data.images.remove(loaded)


class SINGAN_OT_generate_plate(_JobOperator, bpy.types.Operator):
    """Generate a background plate at the render's size and use it as world, camera background
    and/or camera plane (earlier plates stay in the .blend as images)"""

    bl_idname = "singan.generate_plate"
    bl_label = "Generate Plate"
    bl_options = {"REGISTER", "UNDO"}
    slot, title = "plate", "Background plate"

    @classmethod
    def missing(cls, context):
        targets = context.scene.singan.plate_targets
        if not targets:
            return "Choose where the plate goes (World, Camera, Plane)"
        if targets & {"CAMERA", "PLANE"} and context.scene.camera is None:
            return "The scene has no camera"
        return _source_missing(context)

    def request(self, context):
        settings, scene = context.scene.singan, context.scene
        width, height = plate_pixels(scene)
        fitted = settings.plate_layout == "FITTED"
        op, params, images, label = _synthesis(
            settings, width, height, settings.plate_seed, settings.plate_start_scale, tile=False, plate=fitted
        )
        scene_name, targets, mapping = scene.name, set(settings.plate_targets), settings.world_mapping
        tags = {
            nodes.KIND: "plate",
            "singan_model": params.get("model", ""),
            "singan_seed": settings.plate_seed,
            "singan_start_scale": settings.plate_start_scale,
            "singan_layout": settings.plate_layout,
        }
        if not fitted:
            tags["singan_feature_scale"] = settings.feature_scale

        def finish(data: dict, images: list) -> str:
            scene, name = bpy.data.scenes[scene_name], f"{label} plate seed {params['seed']}"
            same_seed = bpy.data.images.get(name)
            image = pixels.new_image(name, images[0], tags)
            image.use_fake_user = True  # kept in the .blend when the next plate takes its place
            _place_plate(scene, image, targets, mapping)
            if same_seed is not None and same_seed.get(nodes.KIND) == "plate":  # the same seed again: one image of it
                same_seed.use_fake_user = False
                pixels.remove_if_unused(same_seed)
                if bpy.data.images.get(name) is None:
                    image.name = name
            return f"'{image.name}', {width}x{height} px"

        return op, params, images, finish


def plate_pixels(scene: bpy.types.Scene) -> tuple[int, int]:
    """(width, height) of the scene's next plate: the render's size (resolution x percentage), or
    the plate size setting's longest side at the render's aspect."""
    settings = scene.singan
    if settings.plate_render_size:
        return nodes.render_size(scene.render)
    return nodes.plate_size(nodes.render_aspect(scene.render), settings.plate_size)


class SINGAN_OT_view_standard(bpy.types.Operator):
    """Show the plate's colours as photographed: set the scene's view transform to Standard (AgX and
    Filmic tone-map the 8-bit plate, so its colours change in the render)"""

    bl_idname = "singan.view_standard"
    bl_label = "Use Standard View"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        view = context.scene.view_settings
        view.view_transform = "Standard"
        view.look = "None"
        return {"FINISHED"}


def _place_plate(scene: bpy.types.Scene, image: bpy.types.Image, targets: set[str], mapping: str) -> list:
    """Put the plate into the chosen targets; returns the images it replaced."""
    replaced = []
    if "WORLD" in targets:
        if scene.world is None:
            scene.world = bpy.data.worlds.new("World")
        replaced.append(nodes.set_world_plate(scene.world, image, mapping))
    if targets & {"CAMERA", "PLANE"} and scene.camera is None:
        raise ValueError("the scene has no camera any more")
    if "CAMERA" in targets:
        replaced.append(nodes.set_camera_plate(scene.camera.data, image))
    if "PLANE" in targets:
        replaced.append(nodes.set_plane_plate(scene, scene.camera, image))
    return replaced


class SINGAN_OT_generate_texture(_JobOperator, bpy.types.Operator):
    """Generate a seamless (tileable) texture and use it as the base colour of the active object's
    active material (made if missing)"""

    bl_idname = "singan.generate_texture"
    bl_label = "Generate Texture"
    bl_options = {"REGISTER", "UNDO"}
    slot, title = "texture", "Seamless texture"

    @classmethod
    def missing(cls, context):
        obj = context.active_object
        if obj is None or obj.data is None or not hasattr(obj.data, "materials"):
            return "Select an object that can have a material"
        return _source_missing(context)

    def request(self, context):
        settings = context.scene.singan
        size = settings.texture_size
        op, params, images, label = _synthesis(
            settings, size, size, settings.texture_seed, settings.texture_start_scale, tile=True
        )
        object_name, repeat = context.active_object.name, settings.texture_repeat
        tags = {
            nodes.KIND: "texture",
            "singan_model": params.get("model", ""),
            "singan_seed": settings.texture_seed,
            "singan_start_scale": settings.texture_start_scale,
            "singan_feature_scale": settings.feature_scale,
        }

        def finish(data: dict, images: list) -> str:
            obj = bpy.data.objects.get(object_name)
            if obj is None:
                raise ValueError(f"object '{object_name}' is gone")
            image = _replace(
                f"{label} tile seed {params['seed']}",
                images[0],
                tags,
                lambda image: [nodes.set_material_texture(obj, image, repeat)],
            )
            return f"'{image.name}' in material '{obj.active_material.name}'"

        return op, params, images, finish


class SINGAN_OT_super_resolve(_JobOperator, bpy.types.Operator):
    """Enlarge an image 2x or 4x into a new image (the daemon first trains a model on it)"""

    bl_idname = "singan.super_resolve"
    bl_label = "Super-resolve"
    bl_options = {"REGISTER", "UNDO"}
    slot, title = "super_resolve", "Super-resolution"

    @classmethod
    def missing(cls, context):
        return None if context.scene.singan.sr_image is not None else "Choose an image to enlarge"

    def request(self, context):
        settings = context.scene.singan
        source = settings.sr_image
        factor = int(settings.sr_factor)
        params = super_resolve_params(source.name[:60], factor, settings.sr_preset, "RGBA")
        name, scene_name = f"{source.name} x{factor}", context.scene.name

        def finish(data: dict, images: list) -> str:
            image = pixels.new_image(name, images[0], {nodes.KIND: "super_resolution", "singan_model": data["model"]})
            bpy.data.scenes[scene_name].singan.sr_result = image
            _show_in_image_editors(image)
            return f"'{image.name}', {image.size[0]}x{image.size[1]} px"

        return "super_resolve", params, [pixels.read_image(source)], finish


def _show_in_image_editors(image: bpy.types.Image) -> None:
    """Show ``image`` in every open Image Editor (none open: nothing; the panel names it)."""
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.spaces.active.image = image


class SINGAN_OT_cancel_job(bpy.types.Operator):
    """Cancel this job on the daemon"""

    bl_idname = "singan.cancel_job"
    bl_label = "Cancel"
    slot: StringProperty(name="Slot", description="train, plate, texture or super_resolve", options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        if not any(jobs.running(slot) for slot in jobs.TASKS):
            cls.poll_message_set("No SinGAN job is running")
            return False
        return True

    def execute(self, context):
        task = jobs.running(self.slot)
        if task is None:
            self.report({"WARNING"}, "That job has already ended")
            return {"CANCELLED"}
        task.cancel()  # sends the cancel; the task ends at a later pump
        _redraw_panels(context)
        return {"FINISHED"}


classes = (
    SINGAN_OT_connect,
    SINGAN_OT_train,
    SINGAN_OT_generate_plate,
    SINGAN_OT_view_standard,
    SINGAN_OT_generate_texture,
    SINGAN_OT_super_resolve,
    SINGAN_OT_resume_model,
    SINGAN_OT_delete_model,
    SINGAN_OT_cancel_job,
)

register, unregister = bpy.utils.register_classes_factory(classes)
