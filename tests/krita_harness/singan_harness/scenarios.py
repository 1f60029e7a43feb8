"""The scenarios the Krita test runs, in one Krita session. Each fills a dict in ``results.json``
with what it found; pixel data goes to ``<name>.raw`` files (BGRA or one byte per pixel), which
``tests/test_krita_plugin.py`` compares with numpy. PNGs of the results and of the docker are for
people to look at.

Environment: SINGAN_HARNESS_OUT (output folder), SINGAN_TEST_MODEL (a ready model of the daemon
whose endpoint is in kritarc), SINGAN_TEST_IMAGES (shared/images), SINGAN_SECOND_ENDPOINT and
SINGAN_SECOND_PID (a second daemon the harness shuts down), SINGAN_HARNESS_LIMIT (seconds).
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

from .runner import Runner, guarded, sleep, until

OUT = Path(os.environ["SINGAN_HARNESS_OUT"])
MODEL = os.environ["SINGAN_TEST_MODEL"]
IMAGES = Path(os.environ["SINGAN_TEST_IMAGES"])
SECOND_ENDPOINT = os.environ["SINGAN_SECOND_ENDPOINT"]
SECOND_PID = int(os.environ["SINGAN_SECOND_PID"])
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
    of a task is raised at once."""
    st = studio()
    message_before = st.message

    def done():
        if len(st.tasks) > first_new:
            return st.tasks[first_new].finished
        if st.message_is_error and st.message != message_before:
            raise RuntimeError(f"the action reported: {st.message}")
        return False

    return until(done, timeout, what)


def save(name, data):
    (OUT / f"{name}.raw").write_bytes(bytes(data))
    return name


def png(name, bgra, width, height):
    QImage(bytes(bgra), width, height, width * 4, QImage.Format_ARGB32).save(str(OUT / f"{name}.png"))


def shot(name):
    widget = docker()
    widget.grab().save(str(OUT / f"{name}.png"))


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
    yield until(lambda: doc.activeNode() is not None and doc.activeNode().name() == node.name(), 5,
                f"{node.name()} to become the active layer")


def new_doc(name, width, height):
    return show(Krita.instance().createDocument(width, height, name, "RGBA", "U8", "", 72.0))


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
    return b"".join(rows[r * image.bytesPerLine(): r * image.bytesPerLine() + width] for r in range(height))


def select(doc, x, y, width, height, mask=None):
    selection = Selection()
    if mask is None:
        selection.select(x, y, width, height, 255)
    else:
        selection.setPixelData(mask, x, y, width, height)
    doc.setSelection(selection)


def choose_model(model_id):
    models = docker().models
    for row in range(models.count()):
        if models.item(row).data(Qt.UserRole) == model_id:
            models.setCurrentItem(models.item(row))
            return
    raise RuntimeError(f"model {model_id!r} not in the docker's list")


def layer_info(node):
    bounds = node.bounds()
    return {"name": node.name(), "visible": node.visible(), "type": node.type(),
            "bounds": [bounds.x(), bounds.y(), bounds.width(), bounds.height()]}


def stack(doc):
    return [layer_info(node) for node in doc.rootNode().childNodes()]  # bottom to top


def find(doc, name):
    node = doc.nodeByName(name)
    if node is None:
        raise RuntimeError(f"no layer {name!r}; layers: {stack(doc)}")
    return node


def model_items():
    models = docker().models
    return [models.item(row).text() for row in range(models.count())]


# -- scenarios --------------------------------------------------------------------------------

def startup(entry):
    yield until(lambda: docker() is not None, 30, "the SinGAN Studio docker")
    app = Krita.instance()
    entry["actions"] = {a.objectName(): a.text() for a in app.actions() if a.objectName().startswith("singan_")}
    tools = next(a.menu() for a in app.activeWindow().qwindow().menuBar().actions() if a.text().replace("&", "") == "Tools")
    scripts = next(a.menu() for a in tools.actions() if a.menu() is not None and a.text().replace("&", "") == "Scripts")
    entry["scripts_menu"] = [a.text() for a in scripts.actions()]
    st = studio()
    entry["endpoint"] = st.connection.endpoint
    started = time.monotonic()
    yield until(lambda: st.connection.model(MODEL) is not None, 30, "the test model in the model list")
    entry["seconds_to_models"] = round(time.monotonic() - started, 2)
    import msgpack
    import zmq

    import protocol

    entry["zmq_file"], entry["zmq_version"] = zmq.__file__, zmq.__version__
    entry["msgpack_file"], entry["protocol_file"] = msgpack.__file__, protocol.__file__
    entry["pyzmq_tooltip"] = docker().status.toolTip()
    entry["status"] = docker().status.text()
    entry["hello"] = st.connection.info
    docker().show()
    yield sleep(0.3)
    shot("docker_startup")


def unsupported_document(entry):
    st = studio()
    show(Krita.instance().createDocument(64, 64, "deep", "RGBA", "U16", "", 72.0))
    yield sleep(0.3)
    tasks = len(st.tasks)
    trigger("singan_train")
    entry.update(message=docker().message.text(), is_error=st.message_is_error, new_tasks=len(st.tasks) - tasks)


def variations(entry):
    st, d = studio(), docker()
    doc = show(Krita.instance().openDocument(str(IMAGES / "chelsea.png")))
    yield sleep(0.3)
    x, y, w, h = 120, 80, 96, 64
    mask = ellipse_mask(w, h)
    select(doc, x, y, w, h, mask)
    choose_model(MODEL)
    d.count.setValue(3)
    d.seed.setValue(5)
    d.size_mode.setCurrentIndex(0)
    entry.update(width=doc.width(), height=doc.height(), region=[x, y, w, h], mask=save("variations_mask", mask),
                 active=doc.activeNode().name(), start_scale=st.options.start_scale)
    entry["before"] = save("variations_before", projection(doc))
    first = len(st.tasks)
    trigger("singan_variations")
    yield task_done(first, 60, "the variations")
    task = st.tasks[first]
    entry["task"] = {"failed": task.failed, "message": task.message}
    after = projection(doc)
    entry["after"] = save("variations_after", after)
    entry["stack"] = stack(doc)
    group = find(doc, "SinGAN variations")
    entry["layers"] = []
    for i, node in enumerate(reversed(group.childNodes())):  # top first
        info = layer_info(node)
        info["pixels"] = save(f"variations_layer{i}", node.pixelData(x, y, w, h))
        entry["layers"].append(info)
    png("variations_result", after, doc.width(), doc.height())
    shot("docker_variations")


def paint_to_image(entry):
    st, d = studio(), docker()
    w, h = 160, 120
    doc = new_doc("sketch", w, h)
    layer = doc.rootNode().childNodes()[0]
    sky, ground, blob = bytes([150, 110, 60, 255]), bytes([70, 90, 110, 255]), bytes([40, 40, 40, 255])
    rows = [(sky if r < h // 2 else ground) * w for r in range(h)]
    rows = [row[:60 * 4] + blob * 40 + row[100 * 4:] if 40 <= r < 80 else row for r, row in enumerate(rows)]
    sketch = b"".join(rows)
    layer.setPixelData(sketch, 0, 0, w, h)
    layer.setName("Sketch")
    yield from activate(doc, layer)
    choose_model(MODEL)
    d.size_mode.setCurrentIndex(0)
    entry.update(width=w, height=h, active=doc.activeNode().name(), sketch=save("paint_sketch", sketch))
    first = len(st.tasks)
    trigger("singan_paint_to_image")
    yield task_done(first, 60, "paint to image")
    entry["task"] = {"failed": st.tasks[first].failed, "message": st.tasks[first].message}
    entry["stack"] = stack(doc)
    painted = doc.rootNode().childNodes()[-1]
    entry["painted"] = save("paint_result_layer", painted.pixelData(0, 0, w, h))
    png("paint_result", projection(doc), w, h)


def train_and_cancel(entry):
    st, d = studio(), docker()
    doc = show(Krita.instance().openDocument(str(IMAGES / "chelsea.png")))
    yield sleep(0.3)
    select(doc, 0, 0, 240, 160)
    d.preset.setCurrentText("tiny")
    chosen = st.options.model
    first = len(st.tasks)
    trigger("singan_train")
    yield until(lambda: len(st.tasks) > first and (st.tasks[first].fraction or 0) > 0, 60, "training progress")
    task = st.tasks[first]
    entry["progress"] = {"phase": task.phase, "fraction": task.fraction, "bar": d.progress.value(),
                         "title": d.task_title.text(), "cancel_enabled": d.cancel.isEnabled()}
    yield until(lambda: any(": training" in text for text in model_items()), 10, "the training model in the list")
    entry["list_while_training"] = model_items()
    shot("docker_training")
    d.cancel.click()
    yield until(lambda: task.finished, 30, "the cancelled training to end")
    entry["task"] = {"failed": task.failed, "message": task.message}
    entry["message"] = d.message.text()
    yield sleep(2.5)  # two heartbeats: the list shows the interrupted (or deleted) model
    entry["list_after"] = model_items()
    entry["model_choice_kept"] = st.options.model == chosen


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
    d.models.setCurrentRow(0)  # "(none: Harmonize trains one on the background)"
    d.preset.setCurrentText("tiny")
    before = projection(doc)
    entry.update(width=w, height=h, object=[ox, oy, ow, oh], active=doc.activeNode().name(),
                 model_choice=st.options.model, before=save("harmonize_before", before),
                 object_pixels=save("harmonize_object", obj.pixelData(0, 0, w, h)))
    png("harmonize_before", before, w, h)
    first = len(st.tasks)
    trigger("singan_harmonize")
    phases = []  # every phase the task went through (its changed signal; replies arrive only from the timer)
    st.tasks[first].changed.connect(lambda task: phases.append(task.phase))
    yield until(lambda: st.tasks[first].finished, 240, "harmonization (with training)")
    entry["phases_seen"] = sorted(set(phases))
    entry["task"] = {"failed": st.tasks[first].failed, "message": st.tasks[first].message}
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
    Krita.instance().action("edit_undo").trigger()
    yield sleep(0.6)  # the plugin checks its hidden objects every 250 ms
    entry["undone"] = save("harmonize_undone", projection(doc))
    entry["stack_undone"] = stack(doc)
    Krita.instance().action("edit_redo").trigger()
    yield sleep(0.6)
    entry["stack_redone"] = stack(doc)
    find(doc, "Harmonized Pasted").remove()
    yield sleep(0.6)
    entry["deleted"] = save("harmonize_deleted", projection(doc))
    entry["stack_deleted"] = stack(doc)


def super_resolve(entry):
    st, d = studio(), docker()
    doc = Krita.instance().openDocument(str(IMAGES / "chelsea.png"))
    entry["region"] = [300, 100, 40, 30]
    select(doc, *entry["region"])
    d.preset.setCurrentText("tiny")
    for factor in (2, 4):
        show(doc)  # a view of the source in front (the 2x result opened in front of it)
        yield until(lambda: Krita.instance().activeDocument().fileName() == doc.fileName(), 5, "the source document")
        count = len(Krita.instance().documents())
        first = len(st.tasks)
        trigger(f"singan_super_resolve_{factor}x")
        yield task_done(first, 180, f"super-resolution {factor}x")
        entry[f"task{factor}"] = {"failed": st.tasks[first].failed, "message": st.tasks[first].message}
        result = Krita.instance().activeDocument()
        entry[f"documents{factor}"] = len(Krita.instance().documents()) - count
        entry[f"size{factor}"] = [result.width(), result.height()]
        entry[f"name{factor}"] = result.name()
        png(f"sr{factor}x", projection(result), result.width(), result.height())


def daemon_stopped(entry):
    st, d = studio(), docker()
    d.endpoint.setText(SECOND_ENDPOINT)
    d.connect_button.click()
    yield until(lambda: st.connection.info.get("instance") and d.status.text().startswith("connected"), 30,
                "the second daemon")
    entry["connected_status"] = d.status.text()
    entry["saved_endpoint"] = Krita.instance().readSetting("SinGANStudio", "endpoint", "")
    entry["second_endpoint"] = SECOND_ENDPOINT
    from protocol.client import Client

    with Client(SECOND_ENDPOINT, timeout=5, retries=1) as client:
        client.call("shutdown")
    stat = Path(f"/proc/{SECOND_PID}/stat")
    yield until(lambda: not stat.exists() or stat.read_text().split(")")[1].split()[0] == "Z", 60, "the daemon to exit")
    exited = time.monotonic()
    entry["status_at_exit"] = d.status.text()
    doc = show(Krita.instance().openDocument(str(IMAGES / "chelsea.png")))
    select(doc, 0, 0, 64, 64)
    ticks = []
    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    _keep.append(timer)
    started = time.monotonic()
    trigger("singan_train")
    yield until(lambda: "not connected" in d.message.text(), 10, "'not connected' in the docker's message line")
    entry["seconds_to_message"] = round(time.monotonic() - started, 2)
    entry["message"] = d.message.text()
    yield until(lambda: d.status.text().startswith("not connected"), 10, "'not connected' in the status line")
    entry["seconds_exit_to_status"] = round(time.monotonic() - exited, 2)
    entry["status"] = d.status.text()
    yield sleep(max(0.0, 3.0 - (time.monotonic() - started)))
    timer.stop()
    gaps = [b - a for a, b in pairwise(ticks)]
    entry["ticks"] = len(ticks)
    entry["tick_window"] = round(ticks[-1] - ticks[0], 2) if ticks else 0
    entry["max_tick_gap"] = round(max(gaps), 3) if gaps else None
    shot("docker_not_connected")


SCENARIOS = (("startup", startup), ("unsupported_document", unsupported_document), ("variations", variations), ("paint_to_image", paint_to_image),
             ("train_and_cancel", train_and_cancel), ("harmonize", harmonize), ("super_resolve", super_resolve),
             ("daemon_stopped", daemon_stopped))


def steps():
    for name, scenario in SCENARIOS:
        yield from guarded(results, name, scenario)
        if name == "startup" and "error" in results[name]:
            return  # nothing else can work


def finish(code):
    (OUT / "results.json").write_text(json.dumps(results, indent=1, default=str))
    os._exit(code)


def start():
    QTimer.singleShot(int(LIMIT * 1000), lambda: (results.update(watchdog=True), finish(3)))
    _keep.append(Runner(steps(), lambda: finish(0)))
