"""What each action does: read the canvas, send the job(s), and put the result into the document
when it arrives (from the session's timer, never blocking the GUI). The daemon's limits come from
its ``hello`` (:attr:`protocol.session.Session.limits`). Every function raises a
:class:`~.errors.PluginError` when it cannot start; the extension shows that in the docker.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import canvas, hiding, ops, pixels, words
from .canvas import Region, Target
from .daemon_client import ConnectionState, Image, training_estimate
from .errors import BadInput, NoConnection, NoModel
from .studio import Question, Studio

VARIATIONS_GROUP = "SinGAN variations"
MAX_TRAIN_SIDE = 2048
"""Longest side (pixels) of a training image as sent: the daemon trains at 1024 px at most, and a
larger canvas would only cost transfer time and seconds of the daemon's socket thread."""
CONFIRM_SECONDS = 60
"""A training the artist starts (Train, Super-resolve) whose estimate is longer than this (or
unknown) is asked about first; Harmonize's background training, which the artist did not ask
for by name, is always asked about."""


def _ask_to_train(
    studio: Studio,
    action: str,
    lead: str,
    subject: str,
    size: tuple[int, int],
    ask: str,
    yes: str,
    go,
    always: bool = False,
) -> None:
    """Run ``go()`` now, or first ask (:meth:`Studio.ask`) when the training it queues may take
    longer than :data:`CONFIRM_SECONDS` by the shared estimate (:func:`protocol.advice.training_estimate`,
    from ``hello`` and this daemon's finished trainings), or ``always``."""
    preset = studio.options.preset
    estimate = training_estimate(studio.session.info, studio.session.models, preset, *size)
    if not always and estimate.seconds is not None and estimate.seconds <= CONFIRM_SECONDS:
        go()
        return
    studio.ask(
        Question(
            words.training_question(lead, subject, preset, estimate, ask),
            yes,
            "Don't train",
            go,
            f"{action}: nothing was queued",
        )
    )


def _check_connected(studio: Studio) -> None:
    if studio.session.state is not ConnectionState.connected:
        raise NoConnection(studio.session.status)


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
    name = f"{canvas.document_title(target.document)} - {target.source_name}"
    image = _training_image(canvas.read_source(target), target.region)

    def trained(data: dict, images: list) -> str:
        if studio.options.model is None:
            studio.options.model = data["model"]["id"]
        return f"model '{data['model']['id']}' is ready"

    def go() -> None:
        task = studio.start(f"Training '{name}'")
        studio.report(f"Training '{name}'… Quick variations work meanwhile", is_error=False)
        task.submit("train", ops.train_params(name, options), [image], trained, "training")

    _ask_to_train(studio, "Train", "Train makes", f"'{name}'", (image.width, image.height), "Train it?", "Train", go)


def _variation_layers(target: Target, size: tuple[int, int], name: str, seed: int):
    """The step that puts a job's images (``size`` (w, h) each, image i of seed ``seed + i``) as
    layers "<name> seed <s>" of a new :data:`VARIATIONS_GROUP` group above the active layer, at the
    selection's (or layer's) top left corner, or centred on it where that would not fit the canvas
    (:func:`.canvas.placement`, said in the summary); only the first (top) one visible."""

    def place(data: dict, images: list) -> str:
        region, note = canvas.placement(target.document, target.region, size)
        layers = [
            canvas.new_layer(
                target.document, f"{name} seed {seed + i}", _clipped(image.data, target, size), region, visible=i == 0
            )
            for i, image in enumerate(images)
        ]
        canvas.add_above(target.document, target.node, canvas.new_group(target.document, VARIATIONS_GROUP, layers))
        plural = "s" if len(layers) != 1 else ""
        return f"{len(layers)} variation{plural} in '{VARIATIONS_GROUP}'" + (f" ({note})" if note else "")

    return place


def variations(studio: Studio) -> None:
    """``count`` samples of the chosen model at the selection's (or layer's) position, at the chosen
    size and feature scale (the source's detail: docs/protocol.md, ``generate``), as layers of a new
    group above the active layer; only the first (top) one visible.

    Inside a selection at 1x (feature scale 1, not seamless) with canvas around it, each sample is
    then joined to that canvas: the band :data:`.ops.HEAL_BAND` px wide inside the selection's border is
    synthesised anew with the canvas outside and the sample inside as its fixed boundary (the
    daemon's ``inpaint``), so there is no seam at the selection's border. Each click advances the
    seed past the ones it used."""
    _check_connected(studio)
    target = canvas.active_target()  # first: without a document nothing else matters
    model, options = _chosen_model(studio), replace(studio.options)
    size = options.output_size(target.region.width, target.region.height, studio.session.limits["max_image_side"])
    params = ops.generate_params(model, size, options)
    place = _variation_layers(target, size, model["name"], params["seed"])
    around = _boundary(target, size, options)
    task = studio.start(f"Variations of '{model['name']}'")
    if around is not None:
        place = _joined(task, around, target, options, place)
    task.submit("generate", params, [], place, "variations")
    studio.advance_seed(options.count)


def _boundary(target: Target, size: tuple[int, int], options) -> _Surroundings | None:
    """The canvas around the selection that variations of ``size`` continue (:func:`_surroundings`),
    or None: not at 1x the selection, another feature scale than 1, seamless, no room around it,
    or a partly transparent canvas there."""
    region = target.region
    if size != (region.width, region.height) or options.feature_scale != 1.0 or options.seamless:
        return None
    around = _surroundings(target, _margin(region, VARIATION_MARGIN, 1))
    if around is None or pixels.transparent_outside(around.data, around.mask.data):
        return None
    return around


def _joined(task, around: _Surroundings, target: Target, options, place):
    """``generate``'s result step for variations inside a selection: each sample is put into the
    canvas around the selection and the band along the selection's border (:data:`.ops.HEAL_BAND`)
    synthesised anew (``inpaint``, one job per sample, in turn), then ``place`` gets the joined
    samples (cut back to the selection)."""
    region, width = target.region, around.region.width
    x, y = region.x - around.region.x, region.y - around.region.y
    band = Image("mask", width, around.region.height, "GRAY", pixels.band(around.mask.data, width, ops.HEAL_BAND))
    finish = _cropped(place, around.region, region)

    def join(data: dict, samples: list) -> str | None:
        joined: list = []

        def next_sample(i: int) -> str | None:
            if i == len(samples):
                return finish(data, joined)
            composite = pixels.paste(
                around.data, width, bytes(samples[i].data), x, y, region.width, region.height, target.mask
            )
            params, images = ops.join_request(_bgra("image", composite, around.region), band, options.seed + i)

            def joined_one(result: dict, images: list) -> str | None:
                out = images[0]  # its alpha is the band: the whole image is the variation now
                opaque = pixels.with_alpha(bytes(out.data), bytes([255]) * (out.width * out.height))
                joined.append(Image(out.name, out.width, out.height, out.order, opaque))
                return next_sample(i + 1)

            task.submit(
                "inpaint", params, images, joined_one, f"joining variation {i + 1} of {len(samples)} to the canvas"
            )
            return None

        return next_sample(0)

    return join


def quick_variations(studio: Studio) -> None:
    """Like :func:`variations`, with no model: ``count`` results of the active paint layer's pixels
    (or, with a group or another kind of layer active, of the visible image) in the selection (or
    the whole layer) themselves, in seconds, with no training. It runs ahead of trainings, so it
    also works while one trains.

    Inside a selection at 1x (feature scale 1, not seamless) with canvas around it, the selection is
    synthesised anew with the canvas around it as a fixed boundary (the daemon's ``inpaint``:
    GPNN's conditional inpainting), so the results continue that canvas with no seam at the
    selection's border; otherwise they are the daemon's ``instant`` (GPNN patch synthesis of the
    selection's pixels). Each click advances the seed past the ones it used."""
    _check_connected(studio)
    target, options = canvas.active_target(), replace(studio.options)
    size = options.output_size(target.region.width, target.region.height, studio.session.limits["max_image_side"])
    name = ops.display_name(target.source_name)
    around = _boundary(target, size, options)
    place = _variation_layers(target, size, f"{name} quick", options.seed)
    if around is not None:
        op = "inpaint"
        params, images = ops.boundary_variations_request(around.data_image, around.mask, options)
        place = _cropped(place, around.region, target.region)
    else:
        op = "instant"
        image = _bgra("image", canvas.read_source(target), target.region)
        params, images = ops.instant_request(image, size, options)
    task = studio.start(f"Quick variations of '{name}'")
    task.submit(op, params, images, place, "quick variations")
    studio.advance_seed(options.count)


VARIATION_MARGIN = (64, 256)
"""The canvas around a selection that Quick variations continue and take their patches from:
the selection's longer side each way, at least and at most these (px), clipped to the canvas."""
FILL_MARGIN = (128, 512)
"""The canvas around a selection that Fill selection continues and takes its patches from: twice
the selection's longer side each way, at least and at most these (px), clipped to the canvas."""


@dataclass(frozen=True)
class _Surroundings:
    """The canvas around a selection: ``region``, its pixels ``data`` (8-bit BGRA, what the action
    reads) and the selection over it (``mask``, a ``GRAY`` image named ``mask``: 255 = synthesise)."""

    region: Region
    data: bytes
    mask: Image

    @property
    def data_image(self) -> Image:
        return _bgra("image", self.data, self.region)


def _margin(region: Region, bounds: tuple[int, int], factor: int) -> int:
    return max(bounds[0], min(bounds[1], factor * max(region.width, region.height)))


def _surroundings(target: Target, margin: int, visible: bool = False) -> _Surroundings | None:
    """The canvas up to ``margin`` px around the selection (:func:`.canvas.surroundings`) as the
    action reads it (``visible``: the visible image, else :func:`.canvas.read_source`'s choice),
    and the selection's mask over it; None without a selection, for a selection that reaches
    outside the canvas, or when less canvas than the selection's own area lies around it (too
    little to continue and to take patches from)."""
    document, region = target.document, target.region
    if (
        not canvas.has_selection(document)
        or region.x < 0
        or region.y < 0
        or region.x + region.width > document.width()
        or region.y + region.height > document.height()
    ):
        return None
    around = canvas.surroundings(document, region, margin)
    mask = pixels.embed(
        target.mask, region.x - around.x, region.y - around.y, region.width, region.height, around.width, around.height
    )
    hole = pixels.count_over_half(mask)
    if around.width * around.height - hole < hole:
        return None
    data = canvas.read_visible(document, around) if visible else canvas.read_source(replace(target, region=around))
    return _Surroundings(around, data, Image("mask", around.width, around.height, "GRAY", mask))


def _cropped(place, around: Region, region: Region):
    """``place`` (a result step of ``region``-sized images) given results of ``around`` (the
    canvas around ``region``): each is cut to ``region`` first."""

    def step(data: dict, images: list) -> str:
        x, y = region.x - around.x, region.y - around.y
        cut = [
            Image(
                image.name,
                region.width,
                region.height,
                image.order,
                pixels.crop(bytes(image.data), around.width, x, y, region.width, region.height),
            )
            for image in images
        ]
        return place(data, cut)

    return step


def fill_selection(studio: Studio) -> None:
    """Content-aware fill: remove what the selection holds by continuing what surrounds it (the
    daemon's ``inpaint``, patches from the canvas around the selection, which stays fixed). It
    reads the visible image, and puts the result on top of the layer stack as one new layer,
    "Fill selection seed <s>", the selection's shape (its soft edge kept); one undo removes it.
    Each click advances the seed, so a second one gives another fill.

    Raises:
        BadInput: no selection, or one that leaves too little canvas around it or reaches outside it;
            the canvas around it is transparent.
    """
    _check_connected(studio)
    target, options = canvas.active_target(), replace(studio.options)
    document = target.document
    if not canvas.has_selection(document):
        raise BadInput(
            "Fill selection removes what the selection holds: select the object first "
            "(a rectangle or a freehand selection around it)"
        )
    around = _surroundings(target, _margin(target.region, FILL_MARGIN, 2), visible=True)
    if around is None:
        raise BadInput(
            "the selection leaves too little canvas around it to continue (it must lie inside the "
            "canvas, with at least its own area of canvas around it): select less"
        )
    if pixels.transparent_outside(around.data, around.mask.data):
        raise BadInput(
            "the canvas around the selection is partly transparent: Fill selection continues visible "
            "pixels; fill the background first, or select an object on an opaque background"
        )
    params, images = ops.fill_request(around.data_image, around.mask, options)
    layer_name = f"Fill selection seed {options.seed}"

    def place(data: dict, results: list) -> str:
        filled = pixels.with_alpha(bytes(results[0].data), around.mask.data)
        canvas.add_on_top(document, canvas.new_layer(document, layer_name, filled, around.region))
        return f"'{layer_name}' is on top: the selection continues what surrounds it"

    task = studio.start("Fill selection")
    task.submit("inpaint", params, images, place, "filling the selection")
    studio.advance_seed(1)


def _harmonizable(target: Target) -> bytes:
    """The active layer's alpha over the whole image (one byte per pixel): the mask Harmonize
    blends. Raises BadInput, naming the layer and what to make active, for a layer Harmonize
    cannot blend: not a paint layer (a group, a vector or filter layer), the bottom layer or a
    layer without transparency (it covers everything below it: blending it would repaint the whole
    picture), or a layer with no opaque pixel."""
    document, node = target.document, target.node
    what = "make the pasted object's layer (a paint layer with transparency around the object) active"
    if not target.reads_layer:
        raise BadInput(
            f"Harmonize blends one pasted layer into the layers below it, and '{node.name()}' is a "
            f"{node.type().replace('layer', ' layer')}: {what}"
        )
    parent = node.parentNode()
    if parent is not None and parent.parentNode() is None and parent.childNodes()[0].uniqueId() == node.uniqueId():
        raise BadInput(f"'{node.name()}' is the bottom layer, with nothing below it to blend into: {what}")
    mask = pixels.alpha(canvas.read(document, node, canvas.whole_image(document)))
    if mask.count(255) == len(mask):
        raise BadInput(f"'{node.name()}' has no transparency, so it would repaint the whole picture: {what}")
    if pixels.is_blank(mask):
        raise BadInput(f"the layer '{node.name()}' has no opaque pixels: {what}")
    return mask


def harmonize(studio: Studio) -> None:
    """Blend the active layer (a pasted object; its alpha is the mask) into the layers below it.
    Uses the chosen model, else, once the artist says yes to the docker's question (what it will
    train and for how long), first trains one on the composite below the object (chosen preset);
    a cancelled background training leaves no model behind (:meth:`Studio.discard_if_cancelled`).
    A layer Harmonize cannot blend is refused with a sentence (:func:`_harmonizable`).

    The result, "Harmonized <name>", goes directly above the object: the daemon's output (alpha 255
    where it may change pixels: the dilated mask) made opaque wherever the object has any alpha.
    The object layer is hidden, not deleted, for as long as that layer is in the document (see
    :mod:`.hiding`): one undo, or deleting that layer, restores the document exactly.
    """
    _check_connected(studio)
    target, options = canvas.active_target(), replace(studio.options)
    document, node, region = target.document, target.node, canvas.whole_image(target.document)
    mask = _harmonizable(target)
    model = _chosen_model(studio) if options.model is not None else None
    composite, background = canvas.composites(document, node)

    def place(data: dict, images: list) -> str:
        result = images[0].data
        cover = pixels.union(pixels.alpha(result), pixels.coverage(mask))
        layer = canvas.new_layer(document, f"Harmonized {node.name()}", pixels.with_alpha(result, cover), region)
        canvas.add_above(document, node, layer)
        hiding.LINKS.hide_under(document, layer, node)
        return f"'Harmonized {node.name()}' is above '{node.name()}', which is hidden (scale {data.get('scale')})"

    def run(task, model: dict) -> None:
        images = [_bgra("image", composite, region), Image("mask", region.width, region.height, "GRAY", mask)]
        task.submit("harmonize", ops.injection_params(model, options), images, place, "harmonizing")

    if model is not None:
        run(studio.start(f"Harmonize '{node.name()}'"), model)
        return
    image = _training_image(background, region)

    def train_then_run() -> None:
        task = studio.start(f"Harmonize '{node.name()}'")
        studio.discard_if_cancelled(task)
        background_name = f"{canvas.document_title(document)} background"
        task.submit(
            "train",
            ops.train_params(background_name, options),
            [image],
            lambda data, images: run(task, data["model"]),
            "training the background model",
        )

    _ask_to_train(
        studio,
        "Harmonize",
        "No model chosen: Harmonize first trains",
        "the background",
        (image.width, image.height),
        "Train it and harmonize?",
        "Train and harmonize",
        train_then_run,
        always=True,
    )


def paint_to_image(studio: Studio) -> None:
    """Turn the active paint layer (a rough colour sketch; with a group or another kind of layer
    active, the visible image) into an image of the chosen model's world, as
    a new layer above it at the chosen size (the daemon paints at the model's resolution)."""
    _check_connected(studio)
    target = canvas.active_target()  # first: without a document nothing else matters
    model, options = _chosen_model(studio), replace(studio.options)
    size = options.output_size(target.region.width, target.region.height, studio.session.limits["max_image_side"])
    name = target.source_name
    image = _bgra("image", canvas.read_source(target), target.region)
    task = studio.start(f"Paint to image '{name}'")

    def place(data: dict, images: list) -> str:
        out = images[0]
        painted = canvas.resized(out.data, out.width, out.height, *size)
        region, note = canvas.placement(target.document, target.region, size)
        layer_name = f"{name} as {model['name']}"
        canvas.add_above(
            target.document,
            target.node,
            canvas.new_layer(target.document, layer_name, _clipped(painted, target, size), region),
        )
        return f"'{layer_name}' is above '{target.node.name()}' (scale {data.get('scale')})" + (
            f" ({note})" if note else ""
        )

    task.submit("paint2image", ops.injection_params(model, options), [image], place, "painting")


def super_resolve(studio: Studio, factor: int) -> None:
    """Super-resolve the selection (or layer) by ``factor`` into a new document; the daemon first
    trains (or reuses) a model of that image with the chosen preset."""
    _check_connected(studio)
    target, options = canvas.active_target(), replace(studio.options)
    region, max_side = target.region, studio.session.limits["max_sr_input_side"]
    if max(region.width, region.height) > max_side:
        raise BadInput(
            f"super-resolution takes at most {max_side} px on the longer side; "
            f"select a smaller part than {region.width} x {region.height} px"
        )
    name = f"{canvas.document_title(target.document)} {factor}x"

    def open_result(data: dict, images: list) -> str:
        out = images[0]
        canvas.open_document(name, out.data, out.width, out.height, like=target.document)
        return f"new document '{name}', {out.width} x {out.height} px"

    image = _bgra("image", canvas.read_source(target), region)

    def go() -> None:
        task = studio.start(f"Super-resolve {factor}x")
        task.submit(
            "super_resolve",
            ops.super_resolve_params(target.source_name, factor, options),
            [image],
            open_result,
            "training the super-resolution model",
        )

    _ask_to_train(
        studio,
        f"Super-resolve {factor}x",
        f"Super-resolve {factor}x first trains (or reuses)",
        f"'{target.source_name}'",
        (region.width, region.height),
        "Train it and super-resolve?",
        "Train and super-resolve",
        go,
    )
