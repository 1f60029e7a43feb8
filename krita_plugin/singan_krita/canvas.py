"""Reading and writing Krita documents for the plugin's actions (the only module besides the UI
that imports ``krita``). This is where pixels cross between Krita and the plugin, so they are
converted here, once: the plugin and the daemon see 8-bit RGBA pixel data (BGRA bytes, rows top to
bottom, ``bytes``) whatever the document's colour model and depth, and every result goes back in
the document's own colour space (model, depth and profile).

Colour conversion is Krita's own (:func:`_converted`: a throw-away document converted with
``Document.setColorSpace``, the engine of Image > Convert Image Color Space). Measured in Krita
5.1.5: RGBA U8 -> GRAYA U8, RGBA U16/F32, LABA U16, XYZA U16 and back gives the 8-bit pixels back
exactly (GRAYA keeps the luminance); 20-60 ms for a small image, so 8-bit RGBA documents skip it.

Undo (measured in Krita 5.1.5): adding a node, even a group with children and pixels, is one undo
step; ``Node.setVisible`` and ``setPixelData`` on a node already in the image are not undoable.
So every result is built completely before it is added, with one ``addChildNode`` (one undo step).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from krita import Document, Krita, Node
from PyQt5.QtCore import Qt
from PyQt5.QtGui import QImage

from . import pixels
from .errors import BadInput, NoDocument, UnsupportedDocument


@dataclass(frozen=True)
class Region:
    """A rectangle of the image, in pixels (x, y: top left; width, height >= 1)."""

    x: int
    y: int
    width: int
    height: int


PIXEL_LAYER = "paintlayer"
"""The one node type whose own pixels an action reads; any other active node (a group, a vector,
filter, fill, file or clone layer, a mask) makes the actions read what the artist sees instead
(the projection): a group's own pixel buffer can be empty (a group just added holds 0 bytes until
Krita renders it), and a filter or fill layer has no pixels of its own to vary."""


@dataclass(frozen=True)
class Target:
    """What an action works on.

    Attributes:
        document, node: the active document and layer.
        region: the selection's bounding box, else the layer's bounds clipped to the image (the
            whole image for an empty layer, a group or a layer without bounds).
        mask: the selection over ``region`` (one byte per pixel, 0..255) if it is not a full
            rectangle, else None.
    """

    document: Document
    node: Node
    region: Region
    mask: bytes | None

    @property
    def reads_layer(self) -> bool:
        """True when the actions read the active layer's own pixels (a paint layer), False when
        they read the visible image (:data:`PIXEL_LAYER`)."""
        return self.node.type() == PIXEL_LAYER

    @property
    def source_name(self) -> str:
        """The source in words for layer names: the layer's name, or ``Visible`` for the projection."""
        return self.node.name() if self.reads_layer else "Visible"


@dataclass(frozen=True)
class ColorSpace:
    """A Krita colour space: model (``RGBA``, ``GRAYA``, ``CMYKA``, ``LABA``, ``XYZA``, ``YCbCrA``),
    depth (``U8``, ``U16``, ``F16``, ``F32``) and profile name (``""``: Krita's default for them)."""

    model: str
    depth: str
    profile: str = ""

    @classmethod
    def of(cls, document: Document) -> ColorSpace:
        return cls(document.colorModel(), document.colorDepth(), document.colorProfile())


RGBA8 = ColorSpace("RGBA", "U8")
"""What the plugin and the daemon work in (Krita's default sRGB profile; BGRA bytes)."""


def _is_rgba8(space: ColorSpace) -> bool:
    return (space.model, space.depth) == (RGBA8.model, RGBA8.depth)


def check_document(document: Document) -> None:
    """Raises:
    UnsupportedDocument: Krita cannot convert the document's colour space to 8-bit RGBA (the
        message names it and the menu to convert it)."""
    space = ColorSpace.of(document)
    if not _is_rgba8(space):
        _converted(bytes(4), 1, 1, RGBA8, space)  # one pixel: raises if Krita cannot convert


def _converted(data: bytes, width: int, height: int, source: ColorSpace, target: ColorSpace) -> bytes:
    """``data`` (``width`` x ``height`` pixels of Krita pixel data in ``source``) in ``target``,
    converted by Krita (a throw-away document and ``Document.setColorSpace``).

    Raises:
        UnsupportedDocument: Krita has no conversion between them.
    """
    app = Krita.instance()
    scratch = app.createDocument(width, height, "singan-conversion", source.model, source.depth, source.profile, 72.0)
    if scratch is None:
        raise _unconvertible(source)
    try:
        scratch.setBatchmode(True)
        scratch.rootNode().childNodes()[0].setPixelData(data, 0, 0, width, height)
        if not scratch.setColorSpace(target.model, target.depth, target.profile):
            raise _unconvertible(source if _is_rgba8(target) else target)
        scratch.waitForDone()
        return bytes(scratch.rootNode().childNodes()[0].pixelData(0, 0, width, height))
    finally:
        scratch.close()


def _unconvertible(space: ColorSpace) -> UnsupportedDocument:
    return UnsupportedDocument(
        f"Krita cannot convert this document's colour space ({space.model} {space.depth} "
        f"{space.profile or 'default profile'}) to 8-bit RGB for SinGAN. Convert it with "
        "Image > Convert Image Color Space... (Model: RGB/Alpha, Depth: 8-bit integer/channel)."
    )


def to_rgba8(data: bytes, width: int, height: int, space: ColorSpace) -> bytes:
    """Krita pixel data of ``space`` as 8-bit BGRA bytes (unchanged if already 8-bit RGBA)."""
    return bytes(data) if _is_rgba8(space) else _converted(bytes(data), width, height, space, RGBA8)


def from_rgba8(bgra, width: int, height: int, space: ColorSpace) -> bytes:
    """8-bit BGRA pixels (any buffer: ``bytes``, the client's ``memoryview``) as ``bytes`` of Krita
    pixel data in ``space``: what ``Node.setPixelData`` takes (it refuses a memoryview)."""
    data = bytes(bgra)
    return data if _is_rgba8(space) else _converted(data, width, height, RGBA8, space)


def document_title(document: Document) -> str:
    """The document's name, else its file's name without extension, else ``image``."""
    return document.name() or os.path.splitext(os.path.basename(document.fileName()))[0] or "image"


def active_target() -> Target:
    """The active document's active layer and the selection's (or the layer's) region.

    Raises:
        NoDocument: no document or no active layer. UnsupportedDocument: see :func:`check_document`.
    """
    document = Krita.instance().activeDocument()
    if document is None:
        raise NoDocument("open a document first")
    check_document(document)
    node = document.activeNode()
    if node is None:
        raise NoDocument("select a layer first")
    selection = document.selection()
    if selection is not None and selection.width() > 0 and selection.height() > 0:
        region = Region(selection.x(), selection.y(), selection.width(), selection.height())
        mask = bytes(selection.pixelData(region.x, region.y, region.width, region.height))
        return Target(document, node, region, None if mask.count(255) == len(mask) else mask)
    return Target(document, node, _layer_region(document, node), None)


def _layer_region(document: Document, node: Node) -> Region:
    bounds = node.bounds().intersected(document.bounds())
    if bounds.isEmpty() or node.type() != PIXEL_LAYER:
        bounds = document.bounds()
    return Region(bounds.x(), bounds.y(), bounds.width(), bounds.height())


def read(document: Document, node: Node, region: Region) -> bytes:
    """The layer's pixels in ``region`` as 8-bit BGRA (``width * height * 4`` bytes)."""
    data = node.pixelData(region.x, region.y, region.width, region.height)
    return to_rgba8(data, region.width, region.height, ColorSpace.of(document))


def read_source(target: Target) -> bytes:
    """What the actions vary, train on or paint from, in ``target.region`` (8-bit BGRA): the
    active paint layer's pixels, else the visible image (the projection; :data:`PIXEL_LAYER`).

    Raises:
        BadInput: the region holds no visible pixel (an empty layer or a transparent part); the
            message names the layer and what to select.
    """
    if target.reads_layer:
        data = read(target.document, target.node, target.region)
        where = f"the layer '{target.node.name()}' is empty"
    else:
        data = _projection(target.document, target.region)
        where = "the image is empty"
    if pixels.is_blank(pixels.alpha(data)):
        place = " in the selection" if target.document.selection() is not None else ""
        raise BadInput(f"{where}{place}: make a layer with pixels active, or select a part that has some")
    return data


def placement(document: Document, region: Region, size: tuple[int, int]) -> tuple[Region, str]:
    """Where a result of ``size`` (w, h) made from ``region`` goes, and what to tell the artist
    about it: at the region's top left corner when it fits inside the canvas there (1x, and 2x
    or W x H with room); otherwise centred on the region (so it covers what it was made from),
    with a sentence saying so, and that the canvas can be grown to show all of it."""
    width, height = size
    if region.x + width <= document.width() and region.y + height <= document.height():
        return Region(region.x, region.y, width, height), ""
    x = region.x + (region.width - width) // 2
    y = region.y + (region.height - height) // 2
    note = f"{width} x {height} px, centred on the area it was made from"
    if width > document.width() or height > document.height():
        note += (
            f"; larger than the {document.width()} x {document.height()} px canvas: "
            "Image > Trim to Current Layer grows the canvas to show all of it"
        )
    return Region(x, y, width, height), note


def has_selection(document: Document) -> bool:
    """Whether the document has a selection that is not empty."""
    selection = document.selection()
    return selection is not None and selection.width() > 0 and selection.height() > 0


def surroundings(document: Document, region: Region, margin: int) -> Region:
    """``region`` grown by ``margin`` px on every side, clipped to the image: the canvas around a
    selection that a fill continues and takes its patches from."""
    x, y = max(0, region.x - margin), max(0, region.y - margin)
    right = min(document.width(), region.x + region.width + margin)
    bottom = min(document.height(), region.y + region.height + margin)
    return Region(x, y, right - x, bottom - y)


def read_visible(document: Document, region: Region) -> bytes:
    """What the artist sees in ``region`` (the projection of every visible layer), as 8-bit BGRA."""
    return _projection(document, region)


def add_on_top(document: Document, new_node: Node) -> None:
    """Put ``new_node`` on top of the layer stack (one undo step), over everything it was made from."""
    document.rootNode().addChildNode(new_node, None)
    document.refreshProjection()


def whole_image(document: Document) -> Region:
    return Region(0, 0, document.width(), document.height())


def composites(document: Document, node: Node) -> tuple[bytes, bytes]:
    """The whole image composited from ``node`` and everything below it (8-bit BGRA), and the same
    without ``node``: computed in a throw-away clone of the document, so the artist's layers
    are never touched.

    Raises:
        BadInput: ``node`` is not in the document's layer tree.
    """
    clone = document.clone()
    try:
        twin = find(clone.rootNode(), node.uniqueId())
        if twin is None:
            raise BadInput(f"the layer '{node.name()}' is not in the image's layer stack")
        _remove_above(twin)
        region = whole_image(clone)
        with_node = _projection(clone, region)
        twin.setVisible(False)
        return with_node, _projection(clone, region)
    finally:
        clone.close()


def find(root: Node, unique_id) -> Node | None:
    """The node below ``root`` (at any depth) whose ``uniqueId()`` is ``unique_id``, else None."""
    for child in root.childNodes():
        if child.uniqueId() == unique_id:
            return child
        found = find(child, unique_id)
        if found is not None:
            return found
    return None


def _remove_above(node: Node) -> None:
    """Remove every node drawn over ``node``: its later siblings and those of each ancestor."""
    while node.parentNode() is not None:
        parent = node.parentNode()
        siblings = parent.childNodes()  # bottom to top
        index = next(i for i, sibling in enumerate(siblings) if sibling.uniqueId() == node.uniqueId())
        for sibling in siblings[index + 1 :]:
            sibling.remove()
        node = parent


def _projection(document: Document, region: Region) -> bytes:
    document.refreshProjection()
    document.waitForDone()
    data = document.pixelData(region.x, region.y, region.width, region.height)
    return to_rgba8(data, region.width, region.height, ColorSpace.of(document))


def new_layer(document: Document, name: str, bgra, region: Region, visible: bool = True) -> Node:
    """A paint layer (not yet in the layer stack) holding ``bgra`` (8-bit BGRA, any buffer) at
    ``region``, in the document's colour space."""
    layer = document.createNode(name, "paintlayer")
    data = from_rgba8(bgra, region.width, region.height, ColorSpace.of(document))
    layer.setPixelData(data, region.x, region.y, region.width, region.height)
    layer.setVisible(visible)
    return layer


def add_above(document: Document, node: Node, new_node: Node) -> None:
    """Put ``new_node`` directly above ``node`` (one undo step) and show the result.

    When ``node`` is no longer in the layer stack (deleted while the job ran, or the just-deleted
    layer Krita still reported as active), ``new_node`` goes on top of the document instead."""
    parent = node.parentNode()
    if parent is None:
        document.rootNode().addChildNode(new_node, None)
    else:
        parent.addChildNode(new_node, node)
    document.refreshProjection()


def new_group(document: Document, name: str, layers: list[Node]) -> Node:
    """A group (not yet in the layer stack) of ``layers``, the first one on top."""
    group = document.createGroupLayer(name)
    for layer in reversed(layers):
        group.addChildNode(layer, None)  # None: on top of the children added so far
    return group


def open_document(name: str, bgra, width: int, height: int, like: Document) -> Document:
    """A new document of ``width`` x ``height`` holding ``bgra`` (8-bit BGRA, any buffer), with
    ``like``'s colour space and resolution, shown in a new view of the active window."""
    app = Krita.instance()
    space = ColorSpace.of(like)
    document = app.createDocument(width, height, name, space.model, space.depth, space.profile, like.resolution())
    layer = document.rootNode().childNodes()[0]
    layer.setPixelData(from_rgba8(bgra, width, height, space), 0, 0, width, height)
    layer.setName(name)
    document.refreshProjection()
    app.activeWindow().addView(document)
    return document


def resized(bgra, width: int, height: int, new_width: int, new_height: int) -> bytes:
    """8-bit BGRA pixels (any buffer) scaled smoothly (Qt's bilinear filter) from ``width`` x
    ``height`` to ``new_width`` x ``new_height``."""
    bgra = bytes(bgra)
    if (width, height) == (new_width, new_height):
        return bgra
    image = QImage(bgra, width, height, width * 4, QImage.Format_ARGB32)  # ARGB32 is B, G, R, A in memory
    scaled = image.scaled(new_width, new_height, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
    scaled = scaled.convertToFormat(QImage.Format_ARGB32)
    bits = scaled.constBits()
    bits.setsize(scaled.sizeInBytes())
    return bytes(bits)
