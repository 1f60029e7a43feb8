"""The SinGAN Studio docker: widgets only. It shows the session's :class:`~.studio.Studio`
(connection, models, the daemon's presets, running task, messages), writes the artist's choices into its options (saved
in Krita's settings at each change), and its buttons trigger the plugin's Krita actions (the same
ones as Tools > Scripts).

Layout: the connection status (one line), the action buttons (three rows; Super-res opens a
menu of 2x and 4x), the task (one line) with its
progress and Cancel, and the message (at most :data:`MESSAGE_LINES` lines) are always shown; the
endpoint, the model list and the options are in a scroll area between them. Lines too long for the
docker are cut; their tooltips hold the whole text. Measured in Krita 5.1.5 with its default
layout (colour selector, layers, brush presets and this docker on the right): the main window
cannot be shorter than about 546 px plus this docker's minimum height, so that minimum must stay
under about 250 px for the window to fit a 1280 x 800 screen (:data:`MAX_MIN_HEIGHT`).
"""

from __future__ import annotations

from krita import DockWidget, Krita
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from . import actions, studio, words
from . import options as opts
from .daemon_client import ConnectionState, preset_text
from .extension import save_endpoint, save_options

TITLE = "SinGAN Studio"
MAX_MIN_HEIGHT = 250
"""The docker's minimum height (px) stays below this, so Krita's window fits a 1280 x 800 screen."""
MODEL_LIST_ROWS = 4  # rows the model list shows before it scrolls
SETTINGS_MIN_LINES = 3  # text lines of the scroll area that always show
MESSAGE_LINES = 3
PROGRESS_WIDTH = 64  # px
GENERIC_SCALES = 6  # scale choices shown while no model is chosen (a draft model has about 6)
BUTTONS = (
    ("Train", actions.TRAIN), ("Variations", actions.VARIATIONS),
    ("Quick variations", actions.QUICK_VARIATIONS), ("Harmonize", actions.HARMONIZE),
    ("Paint to image", actions.PAINT_TO_IMAGE),
    ("Super-res", (("2x", actions.SUPER_RESOLVE_2X), ("4x", actions.SUPER_RESOLVE_4X))),
)
"""The action buttons, two per row: (text, action), or (text, ((menu text, action), ...)) for a
button that opens a menu (so the buttons take three rows and the docker's minimum height stays put)."""


class SinGANDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle(TITLE)
        self.studio = studio.instance()
        self._num_scales = 0  # K the scale choices are shown for
        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(3)
        self.status = _one_line_label()
        layout.addWidget(self.status)
        layout.addWidget(self._settings(), 1)
        layout.addLayout(self._buttons())
        layout.addLayout(self._progress())
        self.message = QLabel(wordWrap=True, textInteractionFlags=Qt.TextSelectableByMouse)
        self.message.setMaximumHeight(MESSAGE_LINES * self.message.fontMetrics().lineSpacing() + 2)
        layout.addWidget(self.message)
        self.setWidget(body)
        self._subscriptions = (
            (self.studio.session.state_changed, self._show_connection),
            (self.studio.session.models_changed, self._show_models),
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

    def _settings(self) -> QScrollArea:
        """The endpoint, the model list and the options, scrolled when the docker is short."""
        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._endpoint_row())
        layout.addWidget(self._model_box())
        layout.addWidget(self._options_box())
        layout.addStretch(1)
        area = QScrollArea()
        area.setWidgetResizable(True)
        area.setFrameShape(QScrollArea.NoFrame)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        area.setWidget(inner)
        area.setMinimumHeight(SETTINGS_MIN_LINES * area.fontMetrics().lineSpacing())
        return area

    def _endpoint_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.endpoint = QLineEdit(self.studio.session.endpoint)
        self.endpoint.setToolTip("ZeroMQ endpoint of `singan serve` (saved in Krita's settings)")
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(lambda: save_endpoint(self.endpoint.text()))
        self.endpoint.returnPressed.connect(self.connect_button.click)
        row.addWidget(self.endpoint, 1)
        row.addWidget(self.connect_button)
        return row

    def _model_box(self) -> QGroupBox:
        box = QGroupBox("Model")
        layout = QVBoxLayout(box)
        self.models = QListWidget()
        self.models.setMaximumHeight(MODEL_LIST_ROWS * self.models.fontMetrics().height() + 8)
        self.models.setToolTip("The model used by Variations, Harmonize and Paint to image")
        self.models.currentItemChanged.connect(self._choose_model)
        layout.addWidget(self.models)
        return box

    def _options_box(self) -> QGroupBox:
        box = QGroupBox("Options")
        form = QFormLayout(box)
        options = self.studio.options
        self.preset = QComboBox()
        self.preset.setToolTip("Training preset (the daemon's): the finest scale's size and the iterations per scale")
        self.preset.currentIndexChanged.connect(lambda i: self._set("preset", self.preset.itemData(i)))
        self.seamless = QCheckBox("Seamless (tileable)")
        self.seamless.setChecked(options.seamless)
        self.seamless.toggled.connect(lambda on: self._set("seamless", on))
        self.count = self._spin(1, 64, options.count, "count")
        self.seed = self._spin(0, 2**31 - 1, options.seed, "seed")
        self.start_scale = QComboBox()
        self.start_scale.setToolTip("Where variations start: the coarsest scale draws new layouts, finer ones keep the layout")
        self.start_scale.currentIndexChanged.connect(
            lambda i: self._set("start_scale", self.start_scale.itemData(i)))
        self.injection_scale = QComboBox()
        self.injection_scale.setToolTip("How much Harmonize and Paint to image repaint: coarse scales repaint more")
        self.injection_scale.currentIndexChanged.connect(
            lambda i: self._set("injection_scale", self.injection_scale.itemData(i)))
        form.addRow("Training", self.preset)
        form.addRow("", self.seamless)
        form.addRow("Variations", self.count)
        form.addRow("Seed", self.seed)
        form.addRow("Vary", self.start_scale)
        form.addRow("Repaint", self.injection_scale)
        form.addRow("Output size", self._size_row())
        form.addRow("Feature scale", self._feature_scale())
        return box

    def _spin(self, low: int, high: int, value: int, option: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        spin.valueChanged.connect(lambda v: self._set(option, v))
        return spin

    def _size_row(self) -> QHBoxLayout:
        options = self.studio.options
        row = QHBoxLayout()
        self.size_mode = QComboBox()
        for mode, text in zip(opts.SIZE_MODES, ("1x selection", "2x selection", "W x H")):
            self.size_mode.addItem(text, mode)
        self.width_spin = self._spin(opts.MIN_SIDE, opts.SPIN_MAX, options.width, "width")
        self.height_spin = self._spin(opts.MIN_SIDE, opts.SPIN_MAX, options.height, "height")
        self.size_mode.currentIndexChanged.connect(self._choose_size_mode)
        self.size_mode.setCurrentIndex(opts.SIZE_MODES.index(options.size_mode))
        self._choose_size_mode(self.size_mode.currentIndex())
        for widget in (self.size_mode, self.width_spin, self.height_spin):
            row.addWidget(widget)
        return row

    def _feature_scale(self) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(*opts.FEATURE_SCALE_RANGE)
        spin.setDecimals(2)
        spin.setSingleStep(0.25)
        spin.setSuffix(" x")
        spin.setValue(self.studio.options.feature_scale)
        spin.setToolTip("Size of the features (bricks, leaves) in Variations and Quick variations, relative to the "
                        "image they come from: 1 keeps their size at any output size")
        spin.valueChanged.connect(lambda v: self._set("feature_scale", v))
        self.feature_scale = spin
        return spin

    def _buttons(self) -> QGridLayout:
        grid = QGridLayout()
        for i, (text, choice) in enumerate(BUTTONS):
            button = QPushButton(text)
            if isinstance(choice, actions.ActionInfo):
                button.setToolTip(choice.tip)
                button.clicked.connect(lambda checked=False, action_id=choice.id: _trigger(action_id))
            else:
                button.setToolTip("\n".join(info.tip for _, info in choice))
                menu = QMenu(button)
                for entry, info in choice:
                    menu.addAction(entry, lambda checked=False, action_id=info.id: _trigger(action_id))
                button.setMenu(menu)
            grid.addWidget(button, i // 2, i % 2)
        return grid

    def _progress(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.task_title = _one_line_label()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setFixedWidth(PROGRESS_WIDTH)
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(lambda: _trigger(actions.CANCEL.id))
        row.addWidget(self.task_title, 1)
        row.addWidget(self.progress)
        row.addWidget(self.cancel)
        return row

    # -- choices ----------------------------------------------------------------------------

    def _set(self, option: str, value) -> None:
        """Store one of the artist's choices and save the options in Krita's settings."""
        setattr(self.studio.options, option, value)
        save_options(self.studio.options)

    def _choose_model(self, item: QListWidgetItem | None) -> None:
        self._set("model", item.data(Qt.UserRole) if item is not None else None)
        self._show_scales()

    def _choose_size_mode(self, index: int) -> None:
        self._set("size_mode", self.size_mode.itemData(index))
        custom = self.studio.options.size_mode == "custom"
        self.width_spin.setEnabled(custom)
        self.height_spin.setEnabled(custom)

    # -- showing the studio -------------------------------------------------------------------

    def _show_connection(self) -> None:
        session = self.studio.session
        self.status.setText(session.status)
        self.status.setToolTip(f"{session.status}\n(using {self.studio.pyzmq})")
        color = "#3fae49" if session.state is ConnectionState.connected else "#e04040"
        self.status.setStyleSheet(f"color: {color}")
        self._show_presets()

    def _show_presets(self) -> None:
        """The daemon's presets (from ``hello``) with their sizes and iterations; the chosen one is
        kept (and shown by name) while the daemon is not there to list them."""
        chosen = self.studio.options.preset
        presets = [(p.name, preset_text(p)) for p in self.studio.session.presets]
        if chosen not in [name for name, _ in presets]:
            presets.append((chosen, chosen))
        self._fill(self.preset, presets, chosen)

    def _show_models(self) -> None:
        session, chosen = self.studio.session, self.studio.options.model
        self.models.blockSignals(True)
        self.models.clear()
        none = QListWidgetItem("(none: Harmonize trains one on the background)")
        none.setData(Qt.UserRole, None)
        self.models.addItem(none)
        self.models.setCurrentItem(none)
        models = [model for model in session.models if model.get("kind") == "generative"]
        for model, text in zip(models, words.model_texts(models, session.jobs)):
            item = QListWidgetItem(text)
            item.setData(Qt.UserRole, model["id"])
            item.setToolTip(f"id {model['id']}, trained on {model.get('source_name', '?')}")
            self.models.addItem(item)
            if model["id"] == chosen:
                self.models.setCurrentItem(item)
        self.models.blockSignals(False)
        self._show_scales()

    def _show_scales(self) -> None:
        options = self.studio.options
        model = self.studio.session.model(options.model)
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
        self.task_title.setToolTip(self.task_title.text())
        if task.fraction is None and not task.finished:
            self.progress.setRange(0, 0)  # busy indicator
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int((task.fraction or 0.0) * 1000))
        self.cancel.setEnabled(not task.finished)

    def _show_message(self) -> None:
        self.message.setText(self.studio.message)
        self.message.setToolTip(self.studio.message)
        self.message.setStyleSheet("color: #e04040" if self.studio.message_is_error else "")


def _trigger(action_id: str) -> None:
    Krita.instance().action(action_id).trigger()


def _one_line_label() -> QLabel:
    """A label that never wraps and never widens the docker: a long text is cut at its right edge."""
    label = QLabel()
    label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
    return label
