"""What each action does: read the canvas, send the job(s), and put the result into the document
when it arrives (from the session's timer, never blocking the GUI). The daemon's limits come from
its ``hello`` (:attr:`protocol.session.Session.limits`). Every function raises a
:class:`~.errors.PluginError` when it cannot start; the extension shows that in the docker.
"""

from __future__ import annotations

from dataclasses import replace

from .daemon_client import Image

from . import canvas, hiding, ops, pixels
from .canvas import Region, Target
from .daemon_client import ConnectionState
from .errors import BadInput, NoModel, NotConnected
from .studio import Studio

VARIATIONS_GROUP = "SinGAN variations"
MAX_TRAIN_SIDE = 2048
"""Longest side (pixels) of a training image as sent: the daemon trains at 1024 px at most, and a
larger canvas would only cost transfer time and seconds of the daemon's socket thread."""


def _check_connected(studio: Studio) -> None:
    if studio.session.state is not ConnectionState.connected:
        raise NotConnected(studio.session.status)


def _chosen_model(studio: Studio) -> dict:
    """The chosen model's ModelInfo. Raises NoModel if none is chosen or it is not ready."""
    model_id = studio.options.model
    if model_id is None:
        raise NoModel("choose a model in the SinGAN docker first (or train one from a layer)")
    model = studio.session.model(model_id)
    if model is None:
        raise NoModel(f"the daemon has no model '{model_id}' (any more)")
    if model["status"] != "ready" or model.get("kind") != "generative":
        raise NoModel(f"the model '{model['name']}' cannot make images: it is {model['status']} ({model.get('kind')})")
    return model


def _bgra(name: str, data: bytes, region: Region) -> Image:
    return Image(name, region.width, region.height, "BGRA", data)


def _training_image(data: bytes, region: Region) -> Image:
    """BGRA pixels of ``region`` as the ``image`` of a training, shrunk (Qt's smooth filter) to at
    most :data:`MAX_TRAIN_SIDE` px on the longer side."""
    longest = max(region.width, region.height)
    if longest <= MAX_TRAIN_SIDE:
        return _bgra("image", data, region)
    width, height = (max(1, round(side * MAX_TRAIN_SIDE / longest)) for side in (region.width, region.height))
    return Image("image", width, height, "BGRA", canvas.resized(data, region.width, region.height, width, height))


def _clipped(data: bytes, target: Target, size: tuple[int, int]) -> bytes:
    """``data`` with the selection's mask as alpha, if there is a non-rectangular selection of ``size``."""
    if target.mask is None or size != (target.region.width, target.region.height):
        return data
    return pixels.with_alpha(data, target.mask)


def train(studio: Studio) -> None:
    """Train a model on the active layer's pixels in the selection (or the whole layer)."""
    _check_connected(studio)
    target, options = canvas.active_target(), replace(studio.options)
    name = f"{canvas.document_title(target.document)} - {target.node.name()}"
    task = studio.start(f"Training '{name}'")
    studio.report(f"Training '{name}'… Quick variations work meanwhile", is_error=False)

    def trained(data: dict, images: list) -> str:
        if studio.options.model is None:
            studio.options.model = data["model"]["id"]
        return f"model '{data['model']['id']}' is ready"

    image = _training_image(canvas.read(target.document, target.node, target.region), target.region)
    task.submit("train", ops.train_params(name, options), [image], trained, "training")


def _variation_layers(target: Target, size: tuple[int, int], name: str, seed: int):
    """The step that puts a job's images (``size`` (w, h) each, image i of seed ``seed + i``) as
    layers "<name> seed <s>" of a new :data:`VARIATIONS_GROUP` group above the active layer, at the
    selection's (or layer's) top left corner; only the first (top) one visible."""

    def place(data: dict, images: list) -> str:
        region = Region(target.region.x, target.region.y, *size)
        layers = [
            canvas.new_layer(target.document, f"{name} seed {seed + i}", _clipped(image.data, target, size), region,
                             visible=i == 0)
            for i, image in enumerate(images)
        ]
        canvas.add_above(target.document, target.node, canvas.new_group(target.document, VARIATIONS_GROUP, layers))
        return f"{len(layers)} variations in '{VARIATIONS_GROUP}'"

    return place


def variations(studio: Studio) -> None:
    """``count`` samples of the chosen model at the selection's (or layer's) position, at the chosen
    size and feature scale (the source's detail: docs/protocol.md, ``generate``), as layers of a new
    group above the active layer; only the first (top) one visible."""
    _check_connected(studio)
    target = canvas.active_target()  # first: without a document nothing else matters
    model, options = _chosen_model(studio), replace(studio.options)
    size = options.output_size(target.region.width, target.region.height, studio.session.limits["max_image_side"])
    params = ops.generate_params(model, size, options)
    task = studio.start(f"Variations of '{model['name']}'")
    task.submit("generate", params, [], _variation_layers(target, size, model["name"], params["seed"]), "variations")


def quick_variations(studio: Studio) -> None:
    """Like :func:`variations`, with no model: ``count`` results of the active layer's pixels in the
    selection (or the whole layer) themselves, in seconds (the daemon's ``instant``: GPNN patch
    synthesis, no training). It runs ahead of trainings, so it also works while one trains."""
    _check_connected(studio)
    target, options = canvas.active_target(), replace(studio.options)
    size = options.output_size(target.region.width, target.region.height, studio.session.limits["max_image_side"])
    image = _bgra("image", canvas.read(target.document, target.node, target.region), target.region)
    params, images = ops.instant_request(image, size, options)
    name = ops.display_name(target.node.name())
    task = studio.start(f"Quick variations of '{name}'")
    task.submit("instant", params, images, _variation_layers(target, size, f"{name} quick", params["seed"]),
                "quick variations")


def harmonize(studio: Studio) -> None:
    """Blend the active layer (a pasted object; its alpha is the mask) into the layers below it.
    Uses the chosen model, else first trains one on the composite below the object (chosen preset).

    The result, "Harmonized <name>", goes directly above the object: the daemon's output (alpha 255
    where it may change pixels: the dilated mask) made opaque wherever the object has any alpha.
    The object layer is hidden, not deleted, for as long as that layer is in the document (see
    :mod:`.hiding`): one undo, or deleting that layer, restores the document exactly.
    """
    _check_connected(studio)
    target, options = canvas.active_target(), replace(studio.options)
    document, node, region = target.document, target.node, canvas.whole_image(target.document)
    mask = pixels.alpha(canvas.read(document, node, region))
    if pixels.is_blank(mask):
        raise BadInput(f"the layer '{node.name()}' has no opaque pixels: select the pasted object's layer")
    composite, background = canvas.composites(document, node)
    model = _chosen_model(studio) if options.model is not None else None
    task = studio.start(f"Harmonize '{node.name()}'")

    def place(data: dict, images: list) -> str:
        result = images[0].data
        cover = pixels.union(pixels.alpha(result), pixels.coverage(mask))
        layer = canvas.new_layer(document, f"Harmonized {node.name()}", pixels.with_alpha(result, cover), region)
        canvas.add_above(document, node, layer)
        hiding.LINKS.hide_under(document, layer, node)
        return f"'Harmonized {node.name()}' is above '{node.name()}', which is hidden (scale {data.get('scale')})"

    def run(model: dict) -> None:
        images = [_bgra("image", composite, region), Image("mask", region.width, region.height, "GRAY", mask)]
        task.submit("harmonize", ops.injection_params(model, options), images, place, "harmonizing")

    if model is not None:
        run(model)
    else:
        background_name = f"{canvas.document_title(document)} background"
        task.submit("train", ops.train_params(background_name, options), [_training_image(background, region)],
                    lambda data, images: run(data["model"]), "training the background model")


def paint_to_image(studio: Studio) -> None:
    """Turn the active layer (a rough colour sketch) into an image of the chosen model's world, as
    a new layer above it at the chosen size (the daemon paints at the model's resolution)."""
    _check_connected(studio)
    target = canvas.active_target()  # first: without a document nothing else matters
    model, options = _chosen_model(studio), replace(studio.options)
    size = options.output_size(target.region.width, target.region.height, studio.session.limits["max_image_side"])
    name = target.node.name()
    task = studio.start(f"Paint to image '{name}'")

    def place(data: dict, images: list) -> str:
        out = images[0]
        painted = canvas.resized(out.data, out.width, out.height, *size)
        region = Region(target.region.x, target.region.y, *size)
        layer_name = f"{name} as {model['name']}"
        canvas.add_above(target.document, target.node,
                         canvas.new_layer(target.document, layer_name, _clipped(painted, target, size), region))
        return f"'{layer_name}' is above '{name}' (scale {data.get('scale')})"

    image = _bgra("image", canvas.read(target.document, target.node, target.region), target.region)
    task.submit("paint2image", ops.injection_params(model, options), [image], place, "painting")


def super_resolve(studio: Studio, factor: int) -> None:
    """Super-resolve the selection (or layer) by ``factor`` into a new document; the daemon first
    trains (or reuses) a model of that image with the chosen preset."""
    _check_connected(studio)
    target, options = canvas.active_target(), replace(studio.options)
    region, max_side = target.region, studio.session.limits["max_sr_input_side"]
    if max(region.width, region.height) > max_side:
        raise BadInput(f"super-resolution takes at most {max_side} px on the longer side; "
                       f"select a smaller part than {region.width} x {region.height} px")
    name = f"{canvas.document_title(target.document)} {factor}x"
    task = studio.start(f"Super-resolve {factor}x")

    def open_result(data: dict, images: list) -> str:
        out = images[0]
        canvas.open_document(name, out.data, out.width, out.height, like=target.document)
        return f"new document '{name}', {out.width} x {out.height} px"

    image = _bgra("image", canvas.read(target.document, target.node, region), region)
    task.submit("super_resolve", ops.super_resolve_params(target.node.name(), factor, options), [image],
                open_result, "training the super-resolution model")
