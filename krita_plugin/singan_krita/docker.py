"""The SinGAN Studio docker: widgets only. It shows the session's :class:`~.studio.Studio`
(connection, models, running task, messages), writes the artist's choices into its options, and
its buttons trigger the plugin's Krita actions (the same ones as Tools > Scripts).
"""

from __future__ import annotations

from krita import DockWidget, Krita
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from . import actions, studio, words
from . import options as opts
from .connection import ConnectionState
from .extension import save_endpoint

TITLE = "SinGAN Studio"
GENERIC_SCALES = 6  # scale choices shown while no model is chosen (a draft model has about 6)
BUTTONS = (
    ("Train", actions.TRAIN), ("Variations", actions.VARIATIONS), ("Harmonize", actions.HARMONIZE),
    ("Paint to image", actions.PAINT_TO_IMAGE), ("Super-res 2x", actions.SUPER_RESOLVE_2X),
    ("Super-res 4x", actions.SUPER_RESOLVE_4X),
)


class SinGANDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle(TITLE)
        self.studio = studio.instance()
        self._num_scales = 0  # K the scale choices are shown for
        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.addWidget(self._daemon_box())
        layout.addWidget(self._model_box())
        layout.addWidget(self._options_box())
        layout.addLayout(self._buttons())
        layout.addLayout(self._progress())
        self.message = QLabel(wordWrap=True, textInteractionFlags=Qt.TextSelectableByMouse)
        layout.addWidget(self.message)
        layout.addStretch(1)
        self.setWidget(body)
        self._subscriptions = (
            (self.studio.connection.state_changed, self._show_connection),
            (self.studio.connection.models_changed, self._show_models),
            (self.studio.task_changed, self._show_task),
            (self.studio.message_changed, self._show_message),
        )
        for signal, slot in self._subscriptions:
            signal.connect(slot)
        self.destroyed.connect(lambda: self._unsubscribe())  # a lambda: the bound method would be gone
        self._show_connection()
        self._show_models()
        self._show_task(self.studio.current_task)
        self._show_message()

    def canvasChanged(self, canvas) -> None:
        pass

    def _unsubscribe(self) -> None:
        for signal, slot in self._subscriptions:
            signal.disconnect(slot)

    # -- building -------------------------------------------------------------------------

    def _daemon_box(self) -> QGroupBox:
        box = QGroupBox("Daemon")
        layout = QVBoxLayout(box)
        self.status = QLabel(wordWrap=True)
        self.status.setToolTip(f"Using {self.studio.pyzmq}")
        row = QHBoxLayout()
        self.endpoint = QLineEdit(self.studio.connection.endpoint)
        self.endpoint.setToolTip("ZeroMQ endpoint of `singan serve` (saved in Krita's settings)")
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(lambda: save_endpoint(self.endpoint.text()))
        self.endpoint.returnPressed.connect(self.connect_button.click)
        row.addWidget(self.endpoint, 1)
        row.addWidget(self.connect_button)
        layout.addWidget(self.status)
        layout.addLayout(row)
        return box

    def _model_box(self) -> QGroupBox:
        box = QGroupBox("Model")
        layout = QVBoxLayout(box)
        self.models = QListWidget()
        self.models.setMaximumHeight(120)
        self.models.setToolTip("The model used by Variations, Harmonize and Paint to image")
        self.models.currentItemChanged.connect(self._choose_model)
        layout.addWidget(self.models)
        return box

    def _options_box(self) -> QGroupBox:
        box = QGroupBox("Options")
        form = QFormLayout(box)
        options = self.studio.options
        self.preset = QComboBox()
        self.preset.addItems(opts.PRESETS)
        self.preset.setCurrentText(options.preset)
        self.preset.setToolTip("Training quality: tiny = seconds (tests), draft = minutes on a CPU, paper = the paper's (long)")
        self.preset.currentTextChanged.connect(lambda text: setattr(options, "preset", text))
        self.seamless = QCheckBox("Seamless (tileable)")
        self.seamless.setChecked(options.seamless)
        self.seamless.toggled.connect(lambda on: setattr(options, "seamless", on))
        self.count = self._spin(1, 64, options.count, lambda v: setattr(options, "count", v))
        self.seed = self._spin(0, 2**31 - 1, options.seed, lambda v: setattr(options, "seed", v))
        self.start_scale = QComboBox()
        self.start_scale.setToolTip("Where variations start: the coarsest scale draws new layouts, finer ones keep the layout")
        self.start_scale.currentIndexChanged.connect(
            lambda i: setattr(options, "start_scale", self.start_scale.itemData(i)))
        self.injection_scale = QComboBox()
        self.injection_scale.setToolTip("How much Harmonize and Paint to image repaint: coarse scales repaint more")
        self.injection_scale.currentIndexChanged.connect(
            lambda i: setattr(options, "injection_scale", self.injection_scale.itemData(i)))
        form.addRow("Training", self.preset)
        form.addRow("", self.seamless)
        form.addRow("Variations", self.count)
        form.addRow("Seed", self.seed)
        form.addRow("Vary", self.start_scale)
        form.addRow("Repaint", self.injection_scale)
        form.addRow("Output size", self._size_row())
        return box

    def _spin(self, low: int, high: int, value: int, store) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        spin.valueChanged.connect(store)
        return spin

    def _size_row(self) -> QHBoxLayout:
        options = self.studio.options
        row = QHBoxLayout()
        self.size_mode = QComboBox()
        for mode, text in zip(opts.SIZE_MODES, ("1x selection", "2x selection", "W x H")):
            self.size_mode.addItem(text, mode)
        self.width_spin = self._spin(opts.MIN_SIDE, opts.MAX_SIDE, options.width, lambda v: setattr(options, "width", v))
        self.height_spin = self._spin(opts.MIN_SIDE, opts.MAX_SIDE, options.height, lambda v: setattr(options, "height", v))
        self.size_mode.currentIndexChanged.connect(self._choose_size_mode)
        self.size_mode.setCurrentIndex(opts.SIZE_MODES.index(options.size_mode))
        self._choose_size_mode(self.size_mode.currentIndex())
        for widget in (self.size_mode, self.width_spin, self.height_spin):
            row.addWidget(widget)
        return row

    def _buttons(self) -> QGridLayout:
        grid = QGridLayout()
        for i, (text, info) in enumerate(BUTTONS):
            button = QPushButton(text)
            button.setToolTip(info.tip)
            button.clicked.connect(lambda checked=False, action_id=info.id: Krita.instance().action(action_id).trigger())
            grid.addWidget(button, i // 2, i % 2)
        return grid

    def _progress(self) -> QVBoxLayout:
        layout = QVBoxLayout()
        self.task_title = QLabel(wordWrap=True)
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(lambda: Krita.instance().action(actions.CANCEL.id).trigger())
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel)
        layout.addWidget(self.task_title)
        layout.addLayout(row)
        return layout

    # -- choices ----------------------------------------------------------------------------

    def _choose_model(self, item: QListWidgetItem | None) -> None:
        self.studio.options.model = item.data(Qt.UserRole) if item is not None else None
        self._show_scales()

    def _choose_size_mode(self, index: int) -> None:
        self.studio.options.size_mode = self.size_mode.itemData(index)
        custom = self.studio.options.size_mode == "custom"
        self.width_spin.setEnabled(custom)
        self.height_spin.setEnabled(custom)

    # -- showing the studio -------------------------------------------------------------------

    def _show_connection(self) -> None:
        connection = self.studio.connection
        self.status.setText(connection.status)
        color = "#3fae49" if connection.state is ConnectionState.connected else "#e04040"
        self.status.setStyleSheet(f"color: {color}")

    def _show_models(self) -> None:
        connection, chosen = self.studio.connection, self.studio.options.model
        self.models.blockSignals(True)
        self.models.clear()
        none = QListWidgetItem("(none: Harmonize trains one on the background)")
        none.setData(Qt.UserRole, None)
        self.models.addItem(none)
        self.models.setCurrentItem(none)
        for model in connection.models:
            if model.get("kind") != "generative":
                continue
            item = QListWidgetItem(words.model_text(model, connection.jobs))
            item.setData(Qt.UserRole, model["id"])
            self.models.addItem(item)
            if model["id"] == chosen:
                self.models.setCurrentItem(item)
        self.models.blockSignals(False)
        self._show_scales()

    def _show_scales(self) -> None:
        options = self.studio.options
        model = self.studio.connection.model(options.model)
        num_scales = model["num_scales"] if model else GENERIC_SCALES
        if num_scales == self._num_scales:
            return
        self._num_scales = num_scales
        self._fill(self.start_scale, words.start_scales(num_scales), min(options.start_scale, num_scales - 1))
        self._fill(self.injection_scale, words.injection_scales(num_scales), options.injection_scale)

    @staticmethod
    def _fill(combo: QComboBox, choices: list, current) -> None:
        """Show ``choices`` ((value, text) pairs) with ``current`` selected, without changing the options."""
        combo.blockSignals(True)
        combo.clear()
        for value, text in choices:
            combo.addItem(text, value)
        combo.setCurrentIndex(max(0, combo.findData(current)))
        combo.blockSignals(False)

    def _show_task(self, task) -> None:
        task = self.studio.current_task
        if task is None:
            self.task_title.setText("No job running")
            self.progress.setValue(0)
            self.cancel.setEnabled(False)
            return
        self.task_title.setText(f"{task.title}: {task.phase}")
        if task.fraction is None and not task.finished:
            self.progress.setRange(0, 0)  # busy indicator
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int((task.fraction or 0.0) * 1000))
        self.cancel.setEnabled(not task.finished)

    def _show_message(self) -> None:
        self.message.setText(self.studio.message)
        self.message.setStyleSheet("color: #e04040" if self.studio.message_is_error else "")
