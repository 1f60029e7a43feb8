"""The scenarios the Krita test runs, in two Krita sessions on one profile. Each fills a dict in
``results.json`` with what it found; pixel data goes to ``<name>.raw`` files (Krita's pixel data in
the document's colour space: BGRA bytes for 8-bit RGBA, gray + alpha for GRAYA U8, little-endian
uint16 B, G, R, A for RGBA U16; masks one byte per pixel), which ``tests/test_krita_plugin.py``
compares with numpy. PNGs of the results, of the docker and of the whole window are for people to
look at.

The first session (SINGAN_HARNESS_PHASE=first) runs :data:`FIRST` and quits Krita the way a user
does (File > Quit, so Krita writes kritarc); the second (``restart``) runs :data:`RESTART` on the
same profile, with the daemon it was last connected to already stopped.

Environment: SINGAN_HARNESS_OUT (output folder), SINGAN_HARNESS_PHASE, SINGAN_TEST_MODEL (a ready
model of the daemon whose endpoint is in kritarc), SINGAN_TEST_IMAGES (shared/images),
SINGAN_SECOND_ENDPOINT and SINGAN_SECOND_PID (a second daemon the harness shuts down),
SINGAN_HARNESS_LIMIT (seconds).
"""

import json
import os
import sys
import time
from itertools import pairwise
from pathlib import Path

from krita import Krita, Selection
from PyQt5.QtCore import Qt, QTimer
from PyQt5.QtGui import QImage, QPainter
from PyQt5.QtWidgets import QApplication, QPushButton

from .runner import Runner, guarded, sleep, until

OUT = Path(os.environ["SINGAN_HARNESS_OUT"])
PHASE = os.environ.get("SINGAN_HARNESS_PHASE", "first")
MODEL = os.environ["SINGAN_TEST_MODEL"]
IMAGES = Path(os.environ["SINGAN_TEST_IMAGES"])
SECOND_ENDPOINT = os.environ.get("SINGAN_SECOND_ENDPOINT", "")
SECOND_PID = int(os.environ.get("SINGAN_SECOND_PID", "0"))
LIMIT = float(os.environ.get("SINGAN_HARNESS_LIMIT", "280"))

results = {"python": sys.version}
_keep = []  # Qt objects that must outlive the function that made them


# -- helpers ----------------------------------------------------------------------------------


def studio():
    from singan_krita import studio as studio_module

    return studio_module.instance()


def docker():
    return next((d for d in Krita.instance().dockers() if d.windowTitle() == "SinGAN Studio"), None)


def trigger(action_id):
    Krita.instance().action(action_id).trigger()


def task_done(first_new, timeout, what):
    """Wait for the task started after ``first_new`` tasks to finish; an error reported instead
    of a task is raised at once. A question the docker asks first (a training's time) is answered
    yes through its button."""
    st = studio()
    count_before = st.message_count

    def done():
        if st.question is not None:
            docker().question_yes.click()
        if len(st.tasks) > first_new:
            return st.tasks[first_new].finished
        if st.message_is_error and st.message_count != count_before:
            raise RuntimeError(f"the action reported: {st.message}")
        return False

    return until(done, timeout, what)


def task_started(first_new, timeout, what, progress=False):
    """Wait for the task started after ``first_new`` tasks (to report progress, with ``progress``),
    answering the docker's question yes through its button if it asks one."""
    st = studio()

    def started():
        if st.question is not None:
            docker().question_yes.click()
        return len(st.tasks) > first_new and (not progress or (st.tasks[first_new].fraction or 0) > 0)

    return until(started, timeout, what)


def save(name, data):
    (OUT / f"{name}.raw").write_bytes(bytes(data))
    return name


def png(name, bgra, width, height):
    QImage(bytes(bgra), width, height, width * 4, QImage.Format_ARGB32).save(str(OUT / f"{name}.png"))


def shot(name):
    widget = docker()
    widget.grab().save(str(OUT / f"{name}.png"))


def window_shot(name):
    """The whole Krita window as the artist sees it."""
    QApplication.processEvents()
    Krita.instance().activeWindow().qwindow().grab().save(str(OUT / f"{name}.png"))


def projection(doc):
    doc.refreshProjection()
    doc.waitForDone()
    return bytes(doc.pixelData(0, 0, doc.width(), doc.height()))


def show(doc):
    Krita.instance().activeWindow().addView(doc)
    Krita.instance().setActiveDocument(doc)
    return doc


def activate(doc, node):
    """Make ``node`` the active layer (Krita activates a node it adds once events are processed,
    so this waits and checks)."""
    yield sleep(0.3)
    doc.setActiveNode(node)
    yield until(
        lambda: doc.activeNode() is not None and doc.activeNode().name() == node.name(),
        5,
        f"{node.name()} to become the active layer",
    )


def new_doc(name, width, height, model="RGBA", depth="U8"):
    return show(Krita.instance().createDocument(width, height, name, model, depth, "", 72.0))


def open_image(name):
    doc = show(Krita.instance().openDocument(str(IMAGES / name)))
    yield sleep(0.3)
    return doc


def deselect(doc):
    """No selection, the way the artist gets it (Select > Deselect)."""
    Krita.instance().action("deselect").trigger()
    yield until(lambda: doc.selection() is None or doc.selection().width() == 0, 5, "no selection")


def space(node_or_doc):
    return [node_or_doc.colorModel(), node_or_doc.colorDepth()]


def image_bytes(path, x, y, width, height):
    image = QImage(str(path)).convertToFormat(QImage.Format_ARGB32).copy(x, y, width, height)
    bits = image.constBits()
    bits.setsize(image.sizeInBytes())
    return bytes(bits)


def ellipse_mask(width, height):
    """One byte per pixel: 255 inside the ellipse filling width x height, 0 outside."""
    image = QImage(width, height, QImage.Format_Grayscale8)
    image.fill(0)
    painter = QPainter(image)
    painter.setPen(Qt.NoPen)
    painter.setBrush(Qt.white)
    painter.drawEllipse(0, 0, width, height)
    painter.end()
    bits = image.constBits()
    bits.setsize(image.sizeInBytes())
    rows = bytes(bits)
    return b"".join(rows[r * image.bytesPerLine() : r * image.bytesPerLine() + width] for r in range(height))


def select(doc, x, y, width, height, mask=None):
    selection = Selection()
    if mask is None:
        selection.select(x, y, width, height, 255)
    else:
        selection.setPixelData(mask, x, y, width, height)
    doc.setSelection(selection)


def choose_model(model_id):
    """Choose ``model_id`` in the docker's model box (None: no model)."""
    models = docker().models
    index = 0 if model_id is None else models.findData(model_id)  # the first entry: no model
    if index < 0:
        raise RuntimeError(f"model {model_id!r} not in the docker's list")
    models.setCurrentIndex(index)


def layer_info(node):
    bounds = node.bounds()
    return {
        "name": node.name(),
        "visible": node.visible(),
        "type": node.type(),
        "space": space(node),
        "bounds": [bounds.x(), bounds.y(), bounds.width(), bounds.height()],
    }


def stack(doc):
    return [layer_info(node) for node in doc.rootNode().childNodes()]  # bottom to top


def find(doc, name):
    node = doc.nodeByName(name)
    if node is None:
        raise RuntimeError(f"no layer {name!r}; layers: {stack(doc)}")
    return node


def choose_preset(name):
    """Choose a training preset in the docker (its entries show the daemon's sizes and iterations)."""
    index = docker().preset.findData(name)
    if index < 0:
        raise RuntimeError(f"preset {name!r} not in the docker's list")
    docker().preset.setCurrentIndex(index)


def model_items():
    """The whole text of each entry of the docker's model box (its tooltip's first line)."""
    models = docker().models
    return [(models.itemData(i, Qt.ToolTipRole) or "").split("\n")[0] for i in range(models.count())]


def model_item(model_id):
    models = docker().models
    index = models.findData(model_id)
    return None if index < 0 else (models.itemData(index, Qt.ToolTipRole) or "").split("\n")[0]


def run_task(action_id, timeout, what):
    """Trigger ``action_id`` and wait for its task to end; returns the task."""
    st = studio()
    first = len(st.tasks)
    trigger(action_id)
    yield task_done(first, timeout, what)
    return st.tasks[first]


def outcome(task):
    return {"failed": task.failed, "message": task.message}


def variation_layers(doc, entry, prefix, region):
    """Record the layers of the newest "SinGAN variations" group (top first) and their pixels in
    ``region`` (x, y, w, h)."""
    group = find(doc, "SinGAN variations")
    entry["group_index"] = [n.name() for n in doc.rootNode().childNodes()].index("SinGAN variations")
    entry["layers"] = []
    for i, node in enumerate(reversed(group.childNodes())):
        info = layer_info(node)
        info["pixels"] = save(f"{prefix}_layer{i}", node.pixelData(*region))
        entry["layers"].append(info)


def train_to_completion(doc, entry, region):
    """Train (tiny) on ``region`` of the active layer until the model is ready; the new model
    becomes the chosen one. Returns its id."""
    st, _ = studio(), docker()
    select(doc, *region)
    choose_model(None)  # none chosen: the trained model is chosen when ready
    choose_preset("tiny")
    task = yield from run_task("singan_train", 240, "a training to finish")
    entry["train"] = outcome(task)
    model_id = st.options.model
    entry["trained_model"] = model_id
    yield until(lambda: model_item(model_id) is not None, 10, "the trained model in the docker's list")
    choose_model(model_id)
    return model_id


def paste_object(doc, data, x, y, width, height):
    """A "Pasted" layer holding ``data`` (the document's pixel format) above the bottom layer, made active."""
    obj = doc.createNode("Pasted", "paintlayer")
    obj.setPixelData(data, x, y, width, height)
    doc.rootNode().addChildNode(obj, doc.rootNode().childNodes()[0])
    yield from activate(doc, obj)
    return obj


def harmonize_with_chosen_model(doc, obj, entry, prefix):
    entry["harmonize_before"] = save(f"{prefix}_before", projection(doc))
    task = yield from run_task("singan_harmonize", 120, "harmonization with the chosen model")
    entry["harmonize"] = outcome(task)
    entry["harmonize_after"] = save(f"{prefix}_after", projection(doc))
    result = find(doc, "Harmonized Pasted")
    entry["harmonized"] = layer_info(result)
    entry["stack"] = stack(doc)


# -- scenarios --------------------------------------------------------------------------------


def startup(entry):
    yield until(lambda: docker() is not None, 30, "the SinGAN Studio docker")
    app = Krita.instance()
    entry["actions"] = {a.objectName(): a.text() for a in app.actions() if a.objectName().startswith("singan_")}
    tools = next(
        a.menu() for a in app.activeWindow().qwindow().menuBar().actions() if a.text().replace("&", "") == "Tools"
    )
    scripts = next(a.menu() for a in tools.actions() if a.menu() is not None and a.text().replace("&", "") == "Scripts")
    entry["scripts_menu"] = [a.text() for a in scripts.actions()]
    st = studio()
    entry["endpoint"] = st.session.endpoint
    started = time.monotonic()
    yield until(lambda: st.session.model(MODEL) is not None, 30, "the test model in the model list")
    entry["seconds_to_models"] = round(time.monotonic() - started, 2)
    import zmq

    from singan_krita.vendor import msgpack, protocol

    entry["zmq_file"], entry["zmq_version"] = zmq.__file__, zmq.__version__
    entry["msgpack_file"], entry["protocol_file"] = msgpack.__file__, protocol.__file__
    entry["session_module"] = sys.modules["singan_krita.daemon_client"].Session.__module__
    entry["top_level"] = {
        name: getattr(sys.modules[name], "__file__", None) for name in ("protocol", "msgpack") if name in sys.modules
    }
    entry["pyzmq_tooltip"] = docker().status.toolTip()
    entry["status"] = docker().status.text()
    entry["hello"] = st.session.info
    combo = docker().preset
    entry["presets_offered"] = [(combo.itemData(i), combo.itemText(i)) for i in range(combo.count())]
    docker().show()
    window = app.activeWindow().qwindow()
    window.showMaximized()  # what an artist on a 1280 x 800 laptop does; Xvfb has no window manager, so also:
    window.setGeometry(window.screen().availableGeometry())  # Qt keeps the window's minimum size
    yield sleep(1.0)
    entry["screen_geometry"] = _screen(app)
    entry.update(_geometry(app))
    shot("docker_at_rest")
    window_shot("window_connected")
    docker().options_toggle.click()  # the folded options, shown: nothing may stick out sideways either
    yield sleep(0.3)
    entry["unfolded"] = _geometry(app)
    entry["unfolded"]["options_shown"] = docker().options_panel.isVisible()
    shot("docker_options")
    docker().scroll.widget().grab().save(str(OUT / "docker_content.png"))  # the whole column, unscrolled
    docker().options_toggle.click()
    yield sleep(0.1)


def _screen(app):
    screen = app.activeWindow().qwindow().screen().geometry()
    return [screen.x(), screen.y(), screen.width(), screen.height()]


ESSENTIALS = ("status", "connect_button", "models", "task_title", "progress", "cancel")
"""The docker's widgets an artist needs while working: visible without scrolling (issue 26)."""


def _fully_shown(widget, viewport):
    """Whether ``widget`` is visible and lies entirely inside ``viewport`` (no scrolling needed)."""
    if not widget.isVisible():
        return False
    top_left = widget.mapTo(viewport, widget.rect().topLeft())
    inside = viewport.rect()
    return inside.contains(top_left) and inside.contains(
        top_left.x() + widget.width() - 1, top_left.y() + widget.height() - 1
    )


def _geometry(app):
    """The window's frame, the docker's size and minimum height, whether Cancel is on the screen,
    which of the docker's widgets stick out of its viewport sideways, and which essentials
    (:data:`ESSENTIALS` and the action buttons) are not fully shown without scrolling."""
    from PyQt5.QtWidgets import QWidget

    d, window = docker(), app.activeWindow().qwindow()
    frame = window.frameGeometry()
    cancel_top_left = d.cancel.mapToGlobal(d.cancel.rect().topLeft())
    cancel_bottom_right = d.cancel.mapToGlobal(d.cancel.rect().bottomRight())
    viewport = d.scroll.viewport()
    overflow = []
    for widget in d.scroll.widget().findChildren(QWidget):
        if not widget.isVisible() or widget.parentWidget() is None:
            continue
        left = widget.mapTo(viewport, widget.rect().topLeft()).x()
        if left < 0 or left + widget.width() > viewport.width():
            overflow.append(
                f"{type(widget).__name__} {widget.objectName() or getattr(widget, 'text', lambda: '')()!r} "
                f"x {left}..{left + widget.width()}"
            )
    buttons = [b for b in d.actions_panel.findChildren(QPushButton)] if d.actions_panel.isVisible() else []
    hidden = [name for name in ESSENTIALS if not _fully_shown(getattr(d, name), viewport)]
    hidden += [b.text() for b in buttons if not _fully_shown(b, viewport)]
    return {
        "window_frame": [frame.x(), frame.y(), frame.width(), frame.height()],
        "docker_size": [d.width(), d.height()],
        "viewport_size": [viewport.width(), viewport.height()],
        "docker_min_height": d.minimumSizeHint().height(),
        "docker_visible": d.isVisible(),
        "horizontal_scroll": d.scroll.horizontalScrollBar().isVisible(),
        "overflow": overflow,
        "not_shown": hidden,
        "buttons": len(buttons),
        # a label whose text (plus the button's frame, and the menu arrow) is wider than its button is cut
        "cut_buttons": [
            b.text()
            for b in buttons
            if b.fontMetrics().horizontalAdvance(b.text()) + 8 + (16 if b.menu() else 0) > b.width()
        ],
        "cut_labels": {name: getattr(d, name).is_cut() for name in ("status", "task_title")},
        "cancel_visible": d.cancel.isVisible() and not d.cancel.visibleRegion().isEmpty(),
        "cancel_global": [cancel_top_left.x(), cancel_top_left.y(), cancel_bottom_right.x(), cancel_bottom_right.y()],
        "status_visible": d.status.isVisible() and not d.status.visibleRegion().isEmpty(),
        "progress_visible": d.progress.isVisible() and not d.progress.visibleRegion().isEmpty(),
    }


def no_document(entry):
    """Actions with no document open: a message, no task, no dialog."""
    st = studio()
    tasks = len(st.tasks)
    for action in ("singan_variations", "singan_train", "singan_harmonize"):
        trigger(action)
        entry[action] = {"message": docker().message.text(), "is_error": st.message_is_error}
    entry["new_tasks"] = len(st.tasks) - tasks
    yield sleep(1.0)  # the last highlight has ended
    count, entry["flashing_before"] = st.message_count, docker().flashing
    trigger("singan_variations")  # the same refusal again: shown as new
    entry["again"] = refusal(st, count)
    yield sleep(0.2)


VARIATION_CASES = (
    # name, selection (None, a rectangle or an ellipse: x, y, w, h), size mode, custom size
    ("none", None, 0, None),
    ("rectangle", ("rect", 120, 80, 96, 64), 0, None),
    ("ellipse", ("ellipse", 120, 80, 96, 64), 0, None),
    ("rectangle_2x", ("rect", 40, 30, 60, 40), 1, None),
    ("custom_no_selection", None, 2, (100, 50)),
)


def expected_region(doc, selection, size_mode, custom):
    """Where variations go (x, y, w, h): the selection's bounds' (else the layer's, here the whole
    image's) top left corner, at 1x or 2x its size or at W x H."""
    bounds = doc.selection()
    x, y, w, h = (
        (bounds.x(), bounds.y(), bounds.width(), bounds.height()) if selection else (0, 0, doc.width(), doc.height())
    )
    if custom:
        return [x, y, *custom]
    factor = 2 if size_mode == 1 else 1
    return [x, y, w * factor, h * factor]


def variations(entry):
    """Variations of the test model on chelsea.png for each case of :data:`VARIATION_CASES`, each
    in its own document (so each starts from the image's one layer)."""
    st, d = studio(), docker()
    choose_model(MODEL)
    d.count.setValue(2)
    d.seed.setValue(5)
    d.start_scale.setCurrentIndex(0)
    for name, selection, size_mode, custom in VARIATION_CASES:
        case = entry.setdefault(name, {})
        d.seed.setValue(5)  # each click advances the seed: every case asks for seeds 5 and 6
        doc = yield from open_image("chelsea.png")
        if selection is None:
            yield from deselect(doc)
        else:
            kind, x, y, w, h = selection
            select(doc, x, y, w, h, ellipse_mask(w, h) if kind == "ellipse" else None)
        d.size_mode.setCurrentIndex(size_mode)
        if custom:
            d.width_spin.setValue(custom[0])
            d.height_spin.setValue(custom[1])
        case.update(
            width=doc.width(),
            height=doc.height(),
            selection=selection,
            size_mode=st.options.size_mode,
            custom=custom,
            active=doc.activeNode().name(),
            space=space(doc),
        )
        case["before"] = save(f"variations_{name}_before", projection(doc))
        task = yield from run_task("singan_variations", 90, f"the variations ({name})")
        case["task"] = outcome(task)
        after = projection(doc)
        case["after"] = save(f"variations_{name}_after", after)
        case["stack"] = stack(doc)
        region = case["region"] = expected_region(doc, selection, size_mode, custom)
        if selection is not None:  # the selection over the region (one byte per pixel)
            case["mask"] = save(f"variations_{name}_mask", doc.selection().pixelData(*region))
        variation_layers(doc, case, f"variations_{name}", region)
        png(f"variations_{name}", after, doc.width(), doc.height())
    d.size_mode.setCurrentIndex(0)
    shot("docker_variations")


def paint_to_image(entry):
    _, d = studio(), docker()
    w, h = 160, 120
    doc = new_doc("sketch", w, h)
    layer = doc.rootNode().childNodes()[0]
    sky, ground, blob = bytes([150, 110, 60, 255]), bytes([70, 90, 110, 255]), bytes([40, 40, 40, 255])
    rows = [(sky if r < h // 2 else ground) * w for r in range(h)]
    rows = [row[: 60 * 4] + blob * 40 + row[100 * 4 :] if 40 <= r < 80 else row for r, row in enumerate(rows)]
    sketch = b"".join(rows)
    layer.setPixelData(sketch, 0, 0, w, h)
    layer.setName("Sketch")
    yield from activate(doc, layer)
    yield from deselect(doc)
    choose_model(MODEL)
    d.size_mode.setCurrentIndex(0)
    entry.update(width=w, height=h, active=doc.activeNode().name(), sketch=save("paint_sketch", sketch))
    task = yield from run_task("singan_paint_to_image", 60, "paint to image")
    entry["task"] = outcome(task)
    entry["stack"] = stack(doc)
    painted = doc.rootNode().childNodes()[-1]
    entry["painted"] = save("paint_result_layer", painted.pixelData(0, 0, w, h))
    png("paint_result", projection(doc), w, h)
    # with a rectangular selection: the painting of the selected part, at its place (the first
    # painting, which covers the whole sketch, is removed first so that the new one shows)
    painted.remove()
    yield from activate(doc, layer)
    entry["selection"] = [20, 30, 80, 60]
    select(doc, *entry["selection"])
    entry["before_selected"] = save("paint_before_selected", projection(doc))
    task = yield from run_task("singan_paint_to_image", 60, "paint to image of a selection")
    entry["task_selected"] = outcome(task)
    entry["stack_selected"] = stack(doc)
    entry["after_selected"] = save("paint_after_selected", projection(doc))


def train_and_cancel(entry):
    st, d = studio(), docker()
    doc = yield from open_image("chelsea.png")
    select(doc, 0, 0, 240, 160)
    choose_preset("tiny")
    chosen = st.options.model
    first = len(st.tasks)
    trigger("singan_train")
    yield task_started(first, 60, "training progress", progress=True)
    task = st.tasks[first]
    entry["progress"] = {
        "phase": task.phase,
        "fraction": task.fraction,
        "bar": d.progress.value(),
        "bar_text": d.progress.text(),
        "title": d.task_title.text(),
        "cancel_enabled": d.cancel.isEnabled(),
    }
    yield until(lambda: any(": training" in text for text in model_items()), 10, "the training model in the list")
    entry["list_while_training"] = model_items()
    entry.update(_geometry(Krita.instance()))
    shot("docker_training")
    window_shot("window_training")
    d.cancel.click()
    yield until(lambda: task.finished, 30, "the cancelled training to end")
    entry["task"] = outcome(task)
    entry["message"] = d.message.text()
    yield until(
        lambda: not any(": training" in text for text in model_items()), 10, "the list to show the end of the training"
    )
    entry["list_after"] = model_items()
    entry["model_choice_kept"] = st.options.model == chosen


GRAY_SELECTION = (96, 144, 320, 224)  # x, y, w, h of the rectangular selection on brick.png (512 x 512)


def grayscale(entry):
    """brick.png opens as GRAYA U8: train on a 320 x 224 selection of it and, while that trains,
    Quick variations of the same selection (no model ready); once trained, Variations at 1x the
    selection (the source's feature scale); then variations at 2x a small rectangular selection
    and a harmonization with the chosen (just trained) model."""
    st, d = studio(), docker()
    doc = yield from open_image("brick.png")
    entry["space"] = space(doc)
    entry["source"] = save("gray_source", projection(doc))
    yield from activate(doc, doc.rootNode().childNodes()[0])
    d.count.setValue(2)
    d.seed.setValue(5)
    d.size_mode.setCurrentIndex(0)  # 1x the selection
    entry["selection"] = GRAY_SELECTION
    select(doc, *GRAY_SELECTION)
    choose_model(None)  # none chosen: the trained model is chosen when ready
    choose_preset("tiny")
    first = len(st.tasks)
    trigger("singan_train")
    yield task_started(first, 10, "the training task")
    training = st.tasks[first]
    entry["trained_before_quick"] = training.finished
    entry["quick_button_enabled"] = [
        b.isEnabled() for b in d.findChildren(QPushButton) if b.text() == "Quick variations"
    ]
    task = yield from run_task("singan_quick_variations", 120, "quick variations while a model trains")
    quick = entry["quick"] = outcome(task)
    quick["chosen_model"] = st.options.model
    variation_layers(doc, quick, "gray_quick", GRAY_SELECTION)
    find(doc, "SinGAN variations").remove()
    yield until(lambda: training.finished, 240, "the training to finish")
    entry["train"] = outcome(training)
    model_id = entry["model"] = st.options.model
    yield until(lambda: model_item(model_id) is not None, 10, "the trained model in the docker's list")
    choose_model(model_id)
    select(doc, *GRAY_SELECTION)
    d.seed.setValue(5)  # the same seeds as the quick variations above (each click advances the seed)
    task = yield from run_task("singan_variations", 120, "variations at 1x a 320 x 224 selection")
    full = entry["full"] = outcome(task)
    variation_layers(doc, full, "gray_full", GRAY_SELECTION)
    find(doc, "SinGAN variations").remove()
    d.size_mode.setCurrentIndex(1)  # 2x the selection
    select(doc, 200, 100, 64, 48)
    entry["before"] = save("gray_variations_before", projection(doc))
    task = yield from run_task("singan_variations", 90, "variations of a grayscale document")
    entry["variations"] = outcome(task)
    entry["variations_after"] = save("gray_variations_after", projection(doc))
    variation_layers(doc, entry, "gray_variations", (200, 100, 128, 96))
    find(doc, "SinGAN variations").remove()
    d.size_mode.setCurrentIndex(0)
    ox, oy, ow, oh = entry["object"] = [300, 300, 80, 60]
    alpha = ellipse_mask(ow, oh)
    patch = bytearray(ow * oh * 2)
    patch[0::2] = bytes([235]) * (ow * oh)  # a light grey patch pasted onto the bricks
    patch[1::2] = alpha
    obj = yield from paste_object(doc, bytes(patch), ox, oy, ow, oh)
    yield from deselect(doc)
    yield from harmonize_with_chosen_model(doc, obj, entry, "gray_harmonize")
    png("gray_harmonized", _rgba8_view(doc), doc.width(), doc.height())


def deep(entry):
    """An RGBA U16 document named like brick.png's (so its model has the same name as the
    grayscale one): train to the end, variations at W x H without a selection, harmonize."""
    w, h = 300, 200
    doc = new_doc("brick", w, h)
    layer = doc.rootNode().childNodes()[0]
    layer.setName("Background")
    layer.setPixelData(image_bytes(IMAGES / "chelsea.png", 60, 40, w, h), 0, 0, w, h)
    entry["converted"] = doc.setColorSpace("RGBA", "U16", "")
    doc.waitForDone()
    entry["space"] = space(doc)
    yield from activate(doc, doc.rootNode().childNodes()[0])
    entry["model"] = yield from train_to_completion(doc, entry, (0, 0, 128, 96))
    same_name = [m["id"] for m in studio().session.models if m["name"] == "brick - Background"]
    yield until(
        lambda: all((model_item(i) or "").startswith("brick - Background: ready") for i in same_name),
        10,
        "both 'brick - Background' models ready in the list",
    )
    entry["same_name_entries"] = [model_item(model_id) for model_id in same_name]
    d = docker()
    yield from deselect(doc)
    d.size_mode.setCurrentIndex(2)
    d.width_spin.setValue(120)
    d.height_spin.setValue(80)
    entry["before"] = save("deep_variations_before", projection(doc))
    task = yield from run_task("singan_variations", 90, "variations of a 16-bit document")
    entry["variations"] = outcome(task)
    entry["variations_after"] = save("deep_variations_after", projection(doc))
    variation_layers(doc, entry, "deep_variations", (0, 0, 120, 80))
    find(doc, "SinGAN variations").remove()
    d.size_mode.setCurrentIndex(0)
    ox, oy, ow, oh = entry["object"] = [110, 70, 80, 60]
    alpha = ellipse_mask(ow, oh)
    pixel = (0).to_bytes(2, "little") + (65535).to_bytes(2, "little") * 2  # B 0, G and R full: yellow
    patch = b"".join(pixel + (a * 257).to_bytes(2, "little") for a in alpha)
    obj = yield from paste_object(doc, patch, ox, oy, ow, oh)
    yield from harmonize_with_chosen_model(doc, obj, entry, "deep_harmonize")
    png("deep_harmonized", _rgba8_view(doc), w, h)


def _rgba8_view(doc):
    """The document's image as 8-bit BGRA for a PNG to look at (a converted clone)."""
    clone = doc.clone()
    try:
        clone.setColorSpace("RGBA", "U8", "")
        clone.waitForDone()
        return projection(clone)
    finally:
        clone.close()


def big_canvas(entry):
    """A canvas over 2048 px: Train sends it shrunk (the daemon's model keeps its aspect), then a
    Variations task on it is cancelled (nothing is added)."""
    st, d = studio(), docker()
    w, h = entry["size"] = [2400, 1200]
    doc = new_doc("wide", w, h)
    image = QImage(str(IMAGES / "chelsea.png")).scaled(w, h).convertToFormat(QImage.Format_ARGB32)
    bits = image.constBits()
    bits.setsize(image.sizeInBytes())
    doc.rootNode().childNodes()[0].setPixelData(bytes(bits), 0, 0, w, h)
    yield from activate(doc, doc.rootNode().childNodes()[0])
    yield from deselect(doc)
    choose_preset("tiny")
    first = len(st.tasks)
    trigger("singan_train")
    yield task_started(first, 60, "training progress", progress=True)
    train = st.tasks[first]

    def running_training():
        return next((j for j in st.session.jobs if j.get("op") == "train" and j.get("state") == "running"), None)

    yield until(lambda: running_training() is not None, 10, "the training in the daemon's job list")
    job = running_training()
    model = st.session.model(job.get("model"))
    entry["trained_size"] = [model["width"], model["height"]] if model else None
    train.cancel()
    yield until(lambda: train.finished, 30, "the cancelled training")
    entry["train"] = outcome(train)
    choose_model(MODEL)
    d.count.setValue(1)
    first = len(st.tasks)
    trigger("singan_variations")
    yield until(lambda: len(st.tasks) > first, 5, "the variations task")
    task = st.tasks[first]
    d.cancel.click()
    entry["cancel_clicked_while"] = task.phase
    yield until(lambda: task.finished, 180, "the cancelled variations")  # the daemon stops between scales
    entry["variations"] = outcome(task)
    yield sleep(0.5)
    entry["stack"] = stack(doc)


def harmonize(entry):
    st, d = studio(), docker()
    w, h = 200, 150
    doc = new_doc("harmony", w, h)
    background = doc.rootNode().childNodes()[0]
    background.setPixelData(image_bytes(IMAGES / "chelsea.png", 60, 40, w, h), 0, 0, w, h)
    ox, oy, ow, oh = 76, 56, 48, 40
    patch = bytearray(image_bytes(IMAGES / "brick.png", 0, 0, ow, oh))
    patch[3::4] = ellipse_mask(ow, oh)
    obj = doc.createNode("Pasted", "paintlayer")
    obj.setPixelData(bytes(patch), ox, oy, ow, oh)
    doc.rootNode().addChildNode(obj, background)
    top = doc.createNode("Top", "paintlayer")
    top.setPixelData(bytes([0, 0, 255, 255]) * 16 * 16, 8, 8, 16, 16)
    doc.rootNode().addChildNode(top, obj)
    yield from activate(doc, obj)
    choose_model(None)  # "(none: Harmonize trains one on the background)"
    choose_preset("tiny")
    before = projection(doc)
    entry.update(
        width=w,
        height=h,
        object=[ox, oy, ow, oh],
        active=doc.activeNode().name(),
        model_choice=st.options.model,
        before=save("harmonize_before", before),
        object_pixels=save("harmonize_object", obj.pixelData(0, 0, w, h)),
    )
    png("harmonize_before", before, w, h)
    yield from harmonize_guards(entry, doc, background, obj)
    first = len(st.tasks)
    click("Harmonize")
    yield until(lambda: st.question is not None, 5, "the question before the background training")
    d.question_yes.click()
    phases = []  # every phase the task went through (its changed signal; replies arrive only from the timer)
    st.tasks[first].changed.connect(lambda task: phases.append(task.phase))
    yield until(lambda: st.tasks[first].finished, 240, "harmonization (with training)")
    entry["phases_seen"] = sorted(set(phases))
    entry["task"] = outcome(st.tasks[first])
    after = projection(doc)
    entry["after"] = save("harmonize_after", after)
    entry["stack"] = stack(doc)
    entry["layer"] = save("harmonize_layer", find(doc, "Harmonized Pasted").pixelData(0, 0, w, h))
    png("harmonize_after", after, w, h)
    shot("docker_harmonize")
    obj.setVisible(True)  # shown by hand, the object changes nothing: the harmonized layer covers it
    entry["object_shown"] = save("harmonize_object_shown", projection(doc))
    obj.setVisible(False)
    projection(doc)
    # the plugin checks its hidden objects every 250 ms: wait for the object's visibility to follow
    Krita.instance().action("edit_undo").trigger()
    yield until(lambda: doc.nodeByName("Harmonized Pasted") is None and obj.visible(), 10, "undo to show the object")
    entry["undone"] = save("harmonize_undone", projection(doc))
    entry["stack_undone"] = stack(doc)
    Krita.instance().action("edit_redo").trigger()
    yield until(
        lambda: doc.nodeByName("Harmonized Pasted") is not None and not obj.visible(),
        10,
        "redo to hide the object again",
    )
    entry["stack_redone"] = stack(doc)
    find(doc, "Harmonized Pasted").remove()
    yield until(lambda: obj.visible(), 10, "deleting the result to show the object")
    entry["deleted"] = save("harmonize_deleted", projection(doc))
    entry["stack_deleted"] = stack(doc)


def scaled_bytes(path, width, height):
    """``path`` scaled (smoothly) to width x height, as BGRA bytes."""
    image = QImage(str(path)).scaled(width, height, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
    image = image.convertToFormat(QImage.Format_ARGB32)
    bits = image.constBits()
    bits.setsize(image.sizeInBytes())
    return bytes(bits)


def harmonize_full_size(entry):
    """Harmonize at an artist's size (issue 23): a 1200x800 RGBA document, rocket.jpg (night) as the
    background, coffee.png's cup cut out by an ellipse on its own layer, the chosen model, no
    selection, the default options."""
    w, h = 1200, 800
    doc = new_doc("harmony_full", w, h)
    background = doc.rootNode().childNodes()[0]
    background.setPixelData(scaled_bytes(IMAGES / "rocket.jpg", w, h), 0, 0, w, h)
    ox, oy, ow, oh = 240, 160, 300, 260
    patch = bytearray(scaled_bytes(IMAGES / "coffee.png", ow, oh))
    patch[3::4] = ellipse_mask(ow, oh)
    obj = yield from paste_object(doc, bytes(patch), ox, oy, ow, oh)
    yield from deselect(doc)
    choose_model(MODEL)
    entry.update(
        width=w,
        height=h,
        object=[ox, oy, ow, oh],
        background=save("full_background", background.pixelData(0, 0, w, h)),
        object_pixels=save("full_object", obj.pixelData(0, 0, w, h)),
    )
    yield from harmonize_with_chosen_model(doc, obj, entry, "full_harmonize")
    png("full_harmonize_after", bytes(OUT.joinpath("full_harmonize_after.raw").read_bytes()), w, h)


def top_group(doc):
    """The topmost "SinGAN variations" group of the document."""
    return [n for n in doc.rootNode().childNodes() if n.name() == "SinGAN variations"][-1]


def started_then_cancelled(st, first, entry_name, entry):
    """Record whether the action started a task (rather than refusing), then cancel it."""
    if len(st.tasks) > first:
        task = st.tasks[first]
        yield until(
            lambda: task.finished or task.job is not None and task.job.id is not None, 30, f"{entry_name} accepted"
        )
        entry[entry_name] = {
            "started": True,
            "failed_before_cancel": task.failed and not task.cancelled,
            "message": task.message,
        }
        task.cancel()
        yield until(lambda: task.finished, 60, f"{entry_name} cancelled")
    else:
        entry[entry_name] = {"started": False, "message": st.message}


def second_click(entry):
    """Issue 26 item 2, through the docker's buttons: Quick variations three times in a row on a
    selection (after each run the new group is the active layer), then every action with that
    group active, then Quick variations and Harmonize with a vector and a filter layer active."""
    st, d = studio(), docker()
    doc = yield from open_image("chelsea.png")
    choose_model(MODEL)
    choose_preset("tiny")
    d.count.setValue(2)
    d.seed.setValue(3)
    d.size_mode.setCurrentIndex(0)
    x, y, w, h = entry["selection"] = [100, 60, 96, 64]
    select(doc, x, y, w, h)
    entry["source"] = save("second_source", projection(doc))
    entry["width"], entry["height"] = doc.width(), doc.height()
    runs = entry["quick"] = []
    for i in range(3):
        yield sleep(0.3)  # Krita activates the group it added once events are processed
        active = doc.activeNode()
        first = len(st.tasks)
        click("Quick variations")
        yield task_done(first, 120, f"quick variations #{i + 1}")
        run = {"active": [active.name(), active.type()], "task": outcome(st.tasks[first]), "message": st.message}
        group = top_group(doc)
        run["layers"] = [n.name() for n in reversed(group.childNodes())]
        run["pixels"] = save(f"second_quick{i}", list(reversed(group.childNodes()))[0].pixelData(x, y, w, h))
        runs.append(run)
    yield sleep(0.3)
    group = doc.activeNode()
    entry["group_active"] = [group.name(), group.type()]
    actions = entry["group_actions"] = {}
    for name in ("Variations", "Paint to image"):
        first = len(st.tasks)
        click(name)
        yield task_done(first, 120, f"{name} with a group active")
        actions[name] = outcome(st.tasks[first])
        yield from activate(doc, group)
    count = st.message_count
    click("Harmonize")
    actions["Harmonize"] = refusal(st, count)
    for name, action in (("Train", "singan_train"), ("Super-res 2x", "singan_super_resolve_2x")):
        first = len(st.tasks)
        if name == "Train":
            click("Train")
        else:
            next(
                a
                for a in next(b for b in d.findChildren(QPushButton) if b.text() == "Super-res").menu().actions()
                if a.text() == "2x"
            ).trigger()
        if st.question is not None:
            d.question_yes.click()
        yield from started_then_cancelled(st, first, name, actions)
    for kind in ("vector", "filter"):
        if kind == "vector":
            layer = doc.createVectorLayer("Shapes")
        else:
            layer = doc.createFilterLayer("Blur", Krita.instance().filter("blur"), Selection())
        doc.rootNode().addChildNode(layer, None)
        yield from activate(doc, layer)
        found = entry[kind] = {"type": layer.type()}
        first = len(st.tasks)
        click("Quick variations")
        yield task_done(first, 120, f"quick variations with a {kind} layer active")
        found["quick"] = outcome(st.tasks[first])
        yield from activate(doc, layer)
        count = st.message_count
        click("Harmonize")
        found["harmonize"] = refusal(st, count)
    shot("docker_after_second_click")


def larger_than_canvas(entry):
    """Issue 24 item 5: a W x H result larger than the canvas goes centred on the selection, and
    the message says so."""
    st, d = studio(), docker()
    doc = new_doc("small canvas", 96, 64)
    doc.rootNode().childNodes()[0].setPixelData(image_bytes(IMAGES / "chelsea.png", 200, 100, 96, 64), 0, 0, 96, 64)
    yield from activate(doc, doc.rootNode().childNodes()[0])
    entry["selection"] = [8, 8, 32, 32]
    select(doc, *entry["selection"])
    d.count.setValue(1)
    d.size_mode.setCurrentIndex(2)
    d.width_spin.setValue(128)
    d.height_spin.setValue(96)
    first = len(st.tasks)
    click("Quick variations")
    yield task_done(first, 120, "quick variations larger than the canvas")
    entry["task"] = outcome(st.tasks[first])
    entry["message"] = st.message
    entry["layers"] = [layer_info(n) for n in top_group(doc).childNodes()]
    d.size_mode.setCurrentIndex(0)
    d.count.setValue(2)


BRICK_SELECTION = [192, 160, 128, 128]  # x, y, w, h on brick.png (512 x 512)
CUP = [330, 20, 90, 60]  # where the coffee cup is pasted on chelsea.png (451 x 300): on the ear and the background
CUP_SELECTION = [326, 16, 98, 68]  # the rectangle selected around it


def fill_selection(entry):
    """Issue 24 item 4, through the docker's buttons: Quick variations at 1x on a rectangular
    selection of brick.png, twice in a row (the selection is synthesised with the canvas around it
    as a fixed boundary; the second click gets new seeds); then, on chelsea.png with a coffee cup
    pasted as its own layer, Fill selection without a selection (refused), with a rectangle around
    the cup, again (a new seed), and one undo."""
    st, d = studio(), docker()
    doc = yield from open_image("brick.png")
    yield from activate(doc, doc.rootNode().childNodes()[0])
    d.count.setValue(2)
    d.seed.setValue(11)
    d.size_mode.setCurrentIndex(0)
    quick = entry["quick"] = {"selection": BRICK_SELECTION, "width": doc.width(), "height": doc.height()}
    select(doc, *BRICK_SELECTION)
    quick["source"] = save("fill_brick_source", projection(doc))
    quick["runs"] = []
    for i in range(2):
        first = len(st.tasks)
        click("Quick variations")
        yield task_done(first, 180, f"quick variations #{i + 1} in a selection of brick.png")
        run = {"task": outcome(st.tasks[first]), "op": st.tasks[first].job.op, "seed_after": d.seed.value()}
        variation_layers(doc, run, f"fill_brick_quick{i}", BRICK_SELECTION)
        run["projection"] = save(f"fill_brick_after{i}", projection(doc))
        png(f"fill_brick_after{i}", _rgba8_view(doc), doc.width(), doc.height())
        quick["runs"].append(run)
        top_group(doc).remove()
        yield sleep(0.3)
        yield from activate(doc, doc.rootNode().childNodes()[0])

    doc = yield from open_image("chelsea.png")
    w, h = doc.width(), doc.height()
    fill = entry["fill"] = {"cup": CUP, "selection": CUP_SELECTION, "width": w, "height": h}
    fill["photo"] = save("fill_photo", projection(doc))
    cup = yield from paste_object(doc, scaled_bytes(IMAGES / "coffee.png", CUP[2], CUP[3]), *CUP)
    fill["before"] = save("fill_before", projection(doc))
    yield from deselect(doc)
    count, first = st.message_count, len(st.tasks)
    click("Fill selection")
    fill["no_selection"] = refusal(st, count)
    fill["no_selection"]["new_tasks"] = len(st.tasks) - first
    select(doc, *CUP_SELECTION)
    d.seed.setValue(21)
    runs = fill["runs"] = []
    for i in range(2):
        first = len(st.tasks)
        started = time.monotonic()
        click("Fill selection")
        run = {"click_seconds": round(time.monotonic() - started, 3)}
        ticks = [0]
        timer = QTimer()
        timer.timeout.connect(lambda: ticks.__setitem__(0, ticks[0] + 1))
        timer.start(50)
        yield task_done(first, 180, f"fill selection #{i + 1}")
        timer.stop()
        task = st.tasks[first]
        run.update(
            task=outcome(task),
            op=task.job.op,
            message=st.message,
            ui_ticks=ticks[0],
            stack=stack(doc),
            seed_after=d.seed.value(),
        )
        top = find(doc, f"Fill selection seed {21 + i}")
        run["layer"] = layer_info(top)
        run["pixels"] = save(f"fill_layer{i}", top.pixelData(0, 0, w, h))
        run["after"] = save(f"fill_after{i}", projection(doc))
        png(f"fill_after{i}", projection(doc), w, h)
        runs.append(run)
        if i == 0:
            Krita.instance().action("edit_undo").trigger()
            yield sleep(0.5)
            fill["undone_stack"] = stack(doc)
            fill["undone"] = save("fill_undone", projection(doc))
    fill["cup_layer"] = cup.name()
    shot("docker_fill_selection")
    window_shot("window_fill_selection")


def daemon_error(entry):
    """A daemon error reaches the docker as a sentence: the chosen model is deleted behind the
    docker's back (the list still shows it), then Variations."""
    st, d = studio(), docker()
    doc = new_doc("errors", 64, 64)
    yield from activate(doc, doc.rootNode().childNodes()[0])
    victim = next(
        m["id"]
        for m in st.session.models
        if m["status"] == "ready" and m["id"] != MODEL and m.get("kind") == "generative"
    )
    choose_model(victim)
    from singan_krita.vendor.protocol.client import Client

    with Client(st.session.endpoint, timeout=5, retries=1) as client:
        client.call("delete_model", {"model": victim})
    first = len(st.tasks)
    click("Variations")  # at once: the docker's list still has the model
    yield until(lambda: len(st.tasks) > first and st.tasks[first].finished, 30, "the refused variations")
    entry.update(
        model=victim,
        task=outcome(st.tasks[first]),
        message=st.message,
        tooltip=d.message.toolTip(),
        is_error=st.message_is_error,
    )
    yield sleep(0.1)
    shot("docker_daemon_error")
    choose_model(MODEL)


def click(text):
    """Click the docker's button ``text`` (an action, as the artist does)."""
    next(b for b in docker().findChildren(QPushButton) if b.text() == text and b.isVisible()).click()


def refusal(st, count_before):
    return {
        "message": st.message,
        "is_error": st.message_is_error,
        "reports": st.message_count - count_before,
        "flashing": docker().flashing,
        "question": st.question is not None,
    }


def harmonize_guards(entry, doc, background, obj):
    """Issue 23 item 5 and issue 26 item 3, through the docker's buttons: Harmonize with the
    (opaque) Background layer active refuses, twice (the second refusal highlighted again); with
    no model it asks before training, No queues nothing, Yes then Cancel leaves no model behind."""
    st, d = studio(), docker()
    tasks, models = len(st.tasks), {m["id"] for m in st.session.models}
    yield from activate(doc, background)
    count = st.message_count
    click("Harmonize")
    entry["background_first"] = refusal(st, count)
    yield sleep(1.0)  # the highlight has ended
    entry["flashing_after"] = d.flashing
    click("Harmonize")
    entry["background_second"] = refusal(st, count)
    entry["background_tasks"] = len(st.tasks) - tasks
    shot("docker_error")
    opaque = doc.createNode("Opaque", "paintlayer")  # not the bottom layer, but covering everything
    opaque.setPixelData(bytes([90, 120, 150, 255]) * doc.width() * doc.height(), 0, 0, doc.width(), doc.height())
    doc.rootNode().addChildNode(opaque, background)
    yield from activate(doc, opaque)
    count = st.message_count
    click("Harmonize")
    entry["opaque"] = refusal(st, count)
    opaque.remove()
    entry["opaque_tasks"] = len(st.tasks) - tasks
    yield from activate(doc, obj)
    click("Harmonize")
    yield until(lambda: st.question is not None, 5, "the question")
    yield sleep(0.2)
    entry["question"] = {
        "text": d.question_text.text(),
        "yes": d.question_yes.text(),
        "no": d.question_no.text(),
        "shown": d.question_panel.isVisible() and not d.question_panel.visibleRegion().isEmpty(),
        "buttons_hidden": not d.actions_panel.isVisible(),
    }
    entry["question_geometry"] = _geometry(Krita.instance())
    shot("docker_question")
    window_shot("window_question")
    d.question_no.click()
    yield sleep(2.5)  # two heartbeats: a queued job or a new model would be listed by now
    entry["after_no"] = {
        "tasks": len(st.tasks) - tasks,
        "question": st.question is not None,
        "new_models": sorted({m["id"] for m in st.session.models} - models),
        "jobs": [j.get("op") for j in st.session.jobs],
        "message": st.message,
        "buttons_back": d.actions_panel.isVisible(),
    }
    first = len(st.tasks)
    click("Harmonize")
    yield until(lambda: st.question is not None, 5, "the question, again")
    d.question_yes.click()
    yield task_started(first, 60, "the background training's progress", progress=True)
    task = st.tasks[first]
    yield until(lambda: task.job is not None and task.job.model, 10, "the background model's id")
    trained = task.job.model
    entry["training"] = {
        "title": d.task_title.text(),
        "bar": d.progress.text(),
        "phase": task.phase,
        "model_listed": model_item(trained),
    }
    entry["training_geometry"] = _geometry(Krita.instance())
    shot("docker_harmonize_training")
    d.cancel.click()
    yield until(lambda: task.finished, 30, "the cancelled background training")
    entry["cancelled"] = {"task": outcome(task), "message": st.message, "model": trained}
    yield until(lambda: st.session.model(trained) is None, 15, "the cancelled background model to be deleted")
    entry["cancelled"]["listed_after"] = model_item(trained)


def super_resolve(entry):
    """2x of a selection of chelsea.png; 4x of a small document without a selection."""
    st, d = studio(), docker()
    source = Krita.instance().openDocument(str(IMAGES / "chelsea.png"))
    entry["region"] = [300, 100, 40, 30]
    select(source, *entry["region"])
    small = Krita.instance().createDocument(40, 30, "small", "RGBA", "U8", "", 72.0)
    small.rootNode().childNodes()[0].setName(
        "Background"
    )  # the selection's pixels and layer name: its SR model is reused
    small.rootNode().childNodes()[0].setPixelData(image_bytes(IMAGES / "chelsea.png", 300, 100, 40, 30), 0, 0, 40, 30)
    entry["small"] = [40, 30]
    choose_preset("tiny")
    for factor, doc in ((2, source), (4, small)):
        show(doc)  # a view of the source in front (the 2x result opened in front of it)
        yield until(lambda: Krita.instance().activeDocument() == doc, 5, "the source document")
        if doc is small:
            yield from deselect(doc)
        count = len(Krita.instance().documents())
        first = len(st.tasks)
        super_res = next(button for button in d.findChildren(QPushButton) if button.text() == "Super-res")
        next(a for a in super_res.menu().actions() if a.text() == f"{factor}x").trigger()  # the docker's menu
        yield task_done(first, 180, f"super-resolution {factor}x")
        task = st.tasks[first]
        entry[f"task{factor}"] = outcome(task)
        result = Krita.instance().activeDocument()
        entry[f"documents{factor}"] = len(Krita.instance().documents()) - count
        entry[f"size{factor}"] = [result.width(), result.height()]
        entry[f"name{factor}"] = result.name()
        png(f"sr{factor}x", projection(result), result.width(), result.height())


def daemon_stopped(entry):
    st, d = studio(), docker()
    d.endpoint.setText(SECOND_ENDPOINT)
    d.connect_button.click()
    yield until(
        lambda: st.session.info.get("instance") and d.status.text().startswith("connected"), 30, "the second daemon"
    )
    entry["connected_status"] = d.status.text()
    entry["saved_endpoint"] = Krita.instance().readSetting("SinGANStudio", "endpoint", "")
    entry["second_endpoint"] = SECOND_ENDPOINT
    from singan_krita.vendor.protocol.client import Client

    with Client(SECOND_ENDPOINT, timeout=5, retries=1) as client:
        client.call("shutdown")
    stat = Path(f"/proc/{SECOND_PID}/stat")
    yield until(lambda: not stat.exists() or stat.read_text().split(")")[1].split()[0] == "Z", 60, "the daemon to exit")
    exited = time.monotonic()
    doc = yield from open_image("chelsea.png")
    select(doc, 0, 0, 64, 64)
    ticks = []
    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    _keep.append(timer)
    started = time.monotonic()
    trigger("singan_train")
    # the heartbeat may not have noticed the exit yet: then Train asks first (no training of the
    # preset has finished on this daemon, so the time is unknown), and the artist answers Train
    yield until(
        lambda: st.question is not None or (st.message_is_error and "SinGAN daemon at" in d.message.text()),
        30,
        "the question or the unreachable daemon in the docker's message line",
    )
    entry["asked_first"] = st.question is not None
    if st.question is not None:
        st.answer(True)
    yield until(
        lambda: st.message_is_error and "SinGAN daemon at" in d.message.text(),
        60,
        "the unreachable daemon in the docker's message line",
    )
    entry["seconds_to_message"] = round(time.monotonic() - started, 2)
    entry["message"] = d.message.text()
    yield until(lambda: "no answer" in d.status.text(), 60, "'no answer' in the status line")
    entry["seconds_exit_to_status"] = round(time.monotonic() - exited, 2)
    entry["status"] = d.status.text()
    yield sleep(max(0.0, 3.0 - (time.monotonic() - started)))
    timer.stop()
    gaps = [b - a for a, b in pairwise(ticks)]
    entry["ticks"] = len(ticks)
    entry["tick_window"] = round(ticks[-1] - ticks[0], 2) if ticks else 0
    entry["max_tick_gap"] = round(max(gaps), 3) if gaps else None
    shot("docker_not_connected")
    window_shot("window_error")


SAVED_OPTIONS = {
    "preset": "paper",
    "seamless": True,
    "count": 7,
    "seed": 1234,
    "size_mode": "custom",
    "width": 321,
    "height": 123,
    "start_scale": 1,
    "injection_scale": 2,
    "feature_scale": 0.75,
}


def choose_options(entry):
    """Set every docker option (through its widget) to a value that is not its default, for the
    restarted Krita to show."""
    d = docker()
    choose_model(None)
    choose_preset(SAVED_OPTIONS["preset"])
    d.seamless.setChecked(SAVED_OPTIONS["seamless"])
    d.count.setValue(SAVED_OPTIONS["count"])
    d.seed.setValue(SAVED_OPTIONS["seed"])
    d.size_mode.setCurrentIndex(2)
    d.width_spin.setValue(SAVED_OPTIONS["width"])
    d.height_spin.setValue(SAVED_OPTIONS["height"])
    d.start_scale.setCurrentIndex(d.start_scale.findData(SAVED_OPTIONS["start_scale"]))
    d.injection_scale.setCurrentIndex(d.injection_scale.findData(SAVED_OPTIONS["injection_scale"]))
    d.feature_scale.setValue(SAVED_OPTIONS["feature_scale"])
    entry["options"] = _options()
    yield sleep(0.1)


def _options():
    from dataclasses import asdict

    return asdict(studio().options)


def restarted(entry):
    """Krita started again on the same profile; the daemon it was last connected to is down."""
    started = time.monotonic()
    yield until(lambda: docker() is not None, 30, "the SinGAN Studio docker")
    d, st = docker(), studio()
    entry["options"] = _options()
    entry["widgets"] = {
        "preset": d.preset.currentData(),
        "seamless": d.seamless.isChecked(),
        "count": d.count.value(),
        "seed": d.seed.value(),
        "size_mode": d.size_mode.currentData(),
        "width": d.width_spin.value(),
        "height": d.height_spin.value(),
        "start_scale": d.start_scale.currentData(),
        "injection_scale": d.injection_scale.currentData(),
        "feature_scale": d.feature_scale.value(),
    }
    entry["endpoint"] = d.endpoint.text()
    entry["presets_offered"] = [d.preset.itemData(i) for i in range(d.preset.count())]
    yield until(lambda: "no answer" in d.status.text(), 30, "'no answer' in the status line")
    entry["seconds_to_status"] = round(time.monotonic() - started, 2)
    entry["status"] = d.status.text()
    yield from open_image("chelsea.png")
    trigger("singan_variations")
    entry["message"] = d.message.text()
    entry["is_error"] = st.message_is_error
    entry["tasks"] = len(st.tasks)
    yield sleep(0.3)
    window_shot("window_restarted")


FIRST = (
    ("startup", startup),
    ("no_document", no_document),
    ("second_click", second_click),
    ("larger_than_canvas", larger_than_canvas),
    ("fill_selection", fill_selection),
    ("harmonize", harmonize),
    ("harmonize_full_size", harmonize_full_size),
    ("variations", variations),
    ("paint_to_image", paint_to_image),
    ("train_and_cancel", train_and_cancel),
    ("grayscale", grayscale),
    ("deep", deep),
    ("daemon_error", daemon_error),
    ("big_canvas", big_canvas),
    ("super_resolve", super_resolve),
    ("daemon_stopped", daemon_stopped),
    ("choose_options", choose_options),
)
ONLY = [name for name in os.environ.get("SINGAN_HARNESS_ONLY", "").split(",") if name]
"""Scenarios to run (with startup), for a quick run while developing; empty: all of them."""
RESTART = (("restarted", restarted),)


def steps():
    for name, scenario in FIRST if PHASE == "first" else RESTART:
        if ONLY and PHASE == "first" and name not in ONLY and name != "startup":
            continue
        yield from guarded(results, name, scenario)
        if name == "startup" and "error" in results[name]:
            return  # nothing else can work


def finish(code):
    """Write the results; after the first phase quit like a user (File > Quit, with every document
    marked saved so Krita asks nothing), so that Krita writes its settings."""
    (OUT / "results.json").write_text(json.dumps(results, indent=1, default=str))
    if PHASE != "first" or code != 0:
        os._exit(code)
    QTimer.singleShot(60_000, lambda: os._exit(4))  # File > Quit did not end Krita
    for doc in Krita.instance().documents():
        doc.setModified(False)
    Krita.instance().action("file_quit").trigger()


def start():
    QTimer.singleShot(int(LIMIT * 1000), lambda: (results.update(watchdog=True), finish(3)))
    _keep.append(Runner(steps(), lambda: finish(0)))
