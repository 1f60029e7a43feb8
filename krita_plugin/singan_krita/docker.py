"""The SinGAN Studio docker: widgets only. It shows the session's :class:`~.studio.Studio`
(connection, models, the daemon's presets, running task, messages, the question it asks before
a long training), writes the artist's choices into its options (saved in Krita's settings at
each change), and its buttons trigger the plugin's Krita actions (the same ones as Tools > Scripts).

Layout, top to bottom, for a docker 250-350 px wide (Krita's default docker width) on a
1280 x 800 screen: the connection status (one line, cut with the whole text in its tooltip) with
Connect; the model (a one-line combo box: name, preset, state; the whole entry in its tooltip);
the action buttons (three rows; Super-res opens a menu of 2x and 4x), replaced by the question
and its two answers while one is open; the job line (what runs, one line) and its progress bar,
whose text is the job's real state (scale i of K, percent, time left), beside Cancel; the message
(wrapped, at most :data:`MESSAGE_LINES` lines, briefly highlighted whenever it is reported, so a
repeated refusal shows as new); and an "Options" toggle that folds the rarely changed options
(endpoint, training preset, seamless, count, seed, scales, output size, feature scale) away,
as krita-ai-diffusion keeps its settings out of its narrow docker. Everything sits in one
vertical scroll area that never scrolls sideways: no widget is wider than the docker's minimum
(:data:`MIN_WIDTH`), long texts are cut or wrapped, and the parts an artist needs while working
(status and Connect, model, actions, job line and Cancel) come first, so they show without
scrolling in the height Krita's default workspace gives the docker.
"""

from __future__ import annotations

from krita import DockWidget, Krita
from PyQt5.QtCore import Qt, QTimer
from PyQt5.QtGui import QPainter
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import actions, studio, words
from . import options as opts
from .daemon_client import ConnectionState, preset_text
from .extension import save_endpoint, save_options

TITLE = "SinGAN Studio"
MIN_WIDTH = 200
"""No widget asks for more width than this (px), so the docker never scrolls or clips sideways
at Krita's default docker widths (about 250-350 px)."""
MAX_MIN_HEIGHT = 250
"""The docker's minimum height (px) stays below this, so Krita's window fits a 1280 x 800 screen."""
MESSAGE_LINES = 3
COMBO_CHARACTERS = 8  # a combo box asks for room for this many characters; longer entries are cut
FLASH_MS = 700  # how long a reported message stays highlighted
GENERIC_SCALES = 6  # scale choices shown while no model is chosen (a draft model has about 6)
NO_MODEL = "(no model: Harmonize trains one)"
BUTTON_ROWS = (
    (("Train", actions.TRAIN), ("Variations", actions.VARIATIONS), ("Harmonize", actions.HARMONIZE)),
    (("Quick variations", actions.QUICK_VARIATIONS), ("Fill selection", actions.FILL_SELECTION)),
    (
        ("Paint to image", actions.PAINT_TO_IMAGE),
        ("Super-res", (("2x", actions.SUPER_RESOLVE_2X), ("4x", actions.SUPER_RESOLVE_4X))),
    ),
)
"""The action buttons by row (short labels three to a row, long ones two): (text, action), or
(text, ((menu text, action), ...)) for a button that opens a menu. Three rows keep the essentials
within the height Krita's default workspace gives the docker on a 1280 x 800 screen."""
GRID_COLUMNS = 6  # a row of n buttons gives each GRID_COLUMNS // n grid columns


class SinGANDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle(TITLE)
        self.studio = studio.instance()
        self._num_scales = 0  # K the scale choices are shown for
        self._flash = QTimer(self, singleShot=True, interval=FLASH_MS)
        self._flash.timeout.connect(self._end_flash)
        self.flashing = False
        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(3)
        layout.addLayout(self._status_row())
        layout.addWidget(self._model_box())
        layout.addWidget(self._buttons())
        layout.addWidget(self._question())
        layout.addWidget(self._job_line())
        layout.addLayout(self._progress())
        self.message = QLabel(wordWrap=True, textInteractionFlags=Qt.TextSelectableByMouse)
        self.message.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.message.setMaximumHeight(MESSAGE_LINES * self.message.fontMetrics().lineSpacing() + 4)
        layout.addWidget(self.message)
        layout.addWidget(self._options_toggle())
        layout.addWidget(self._options_box())
        layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.scroll.setWidget(inner)
        self.setWidget(self.scroll)
        self.scroll.setMinimumHeight(self._essential_height(layout))
        self._subscriptions = (
            (self.studio.session.state_changed, self._show_connection),
            (self.studio.session.models_changed, self._show_models),
            (self.studio.task_changed, self._show_task),
            (self.studio.message_changed, self._show_message),
            (self.studio.question_changed, self._show_question),
            (self.studio.options_changed, self._show_seed),
        )
        for signal, slot in self._subscriptions:
            signal.connect(slot)
        self.destroyed.connect(lambda: self._unsubscribe())  # a lambda: the bound method would be gone
        self._show_connection()
        self._show_models()
        self._show_task(self.studio.current_task)
        self._show_message()
        self._show_question()

    def _essential_height(self, layout: QVBoxLayout) -> int:
        """The height (px) that shows the essentials (status and Connect, model, actions, job line,
        progress and Cancel) and the message's first line without scrolling: the scroll area's
        minimum, so that Krita's default workspace never squeezes them out of sight (and, at
        about 200 px, the docker's minimum stays under :data:`MAX_MIN_HEIGHT`)."""
        rows = [
            max(self.status.sizeHint().height(), self.connect_button.sizeHint().height()),
            self.models.sizeHint().height(),
            self.actions_panel.sizeHint().height(),
            self.task_title.sizeHint().height(),
            max(self.progress.sizeHint().height(), self.cancel.sizeHint().height()),
            self.message.fontMetrics().lineSpacing(),
        ]
        margins = layout.contentsMargins()
        return sum(rows) + layout.spacing() * (len(rows) - 1) + margins.top() + 2

    def canvasChanged(self, canvas) -> None:
        pass

    def _unsubscribe(self) -> None:
        for signal, slot in self._subscriptions:
            signal.disconnect(slot)

    # -- building -------------------------------------------------------------------------

    def _status_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.status = _one_line_label()
        self.connect_button = QPushButton("Connect")
        self.connect_button.setToolTip(
            "Connect to the daemon at the endpoint under Options (saved in Krita's settings)"
        )
        self.connect_button.clicked.connect(lambda: save_endpoint(self.endpoint.text()))
        row.addWidget(self.status, 1)
        row.addWidget(self.connect_button)
        return row

    def _model_box(self) -> QComboBox:
        self.models = _combo()
        self.models.view().setTextElideMode(Qt.ElideMiddle)
        self.models.currentIndexChanged.connect(self._choose_model)
        return self.models

    def _buttons(self) -> QWidget:
        self.actions_panel = QWidget()
        grid = QGridLayout(self.actions_panel)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(3)
        for row, buttons in enumerate(BUTTON_ROWS):
            for i, (text, choice) in enumerate(buttons):
                span = GRID_COLUMNS // len(buttons)
                grid.addWidget(self._button(text, choice), row, i * span, 1, span)
        return self.actions_panel

    @staticmethod
    def _button(text: str, choice) -> QPushButton:
        button = QPushButton(text)
        button.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)  # never widens the docker
        if isinstance(choice, actions.ActionInfo):
            button.setToolTip(choice.tip)
            button.clicked.connect(lambda checked=False, action_id=choice.id: _trigger(action_id))
        else:
            button.setToolTip("\n".join(info.tip for _, info in choice))
            menu = QMenu(button)
            for entry, info in choice:
                menu.addAction(entry, lambda checked=False, action_id=info.id: _trigger(action_id))
            button.setMenu(menu)
        return button

    def _question(self) -> QFrame:
        """The open question (:meth:`.studio.Studio.ask`) and its answers, in place of the buttons."""
        self.question_panel = QFrame()
        self.question_panel.setFrameShape(QFrame.StyledPanel)
        layout = QVBoxLayout(self.question_panel)
        layout.setContentsMargins(4, 4, 4, 4)
        self.question_text = QLabel(wordWrap=True)
        self.question_text.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.question_yes, self.question_no = QPushButton(), QPushButton()
        for button, yes in ((self.question_yes, True), (self.question_no, False)):
            button.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
            button.clicked.connect(lambda checked=False, yes=yes: self.studio.answer(yes))
        answers = QHBoxLayout()
        answers.addWidget(self.question_yes)
        answers.addWidget(self.question_no)
        layout.addWidget(self.question_text)
        layout.addLayout(answers)
        return self.question_panel

    def _job_line(self) -> QLabel:
        self.task_title = _one_line_label()
        return self.task_title

    def _progress(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        self.progress.setAlignment(Qt.AlignCenter)
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(lambda: _trigger(actions.CANCEL.id))
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel)
        return row

    def _options_toggle(self) -> QToolButton:
        self.options_toggle = QToolButton()
        self.options_toggle.setText("Options (preset, seed, size…)")
        self.options_toggle.setToolTip(
            "Show or hide the options that are changed rarely: the daemon's endpoint, the "
            "training preset, seamless, count, seed, Vary and Repaint scales, output size "
            "and feature scale"
        )
        self.options_toggle.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.options_toggle.setArrowType(Qt.RightArrow)
        self.options_toggle.setCheckable(True)
        self.options_toggle.setAutoRaise(True)
        self.options_toggle.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        self.options_toggle.toggled.connect(self._fold)
        return self.options_toggle

    def _options_box(self) -> QWidget:
        self.options_panel = QWidget()
        form = QFormLayout(self.options_panel)
        form.setContentsMargins(0, 0, 0, 0)
        form.setRowWrapPolicy(QFormLayout.WrapLongRows)
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        options = self.studio.options
        self.endpoint = QLineEdit(self.studio.session.endpoint)
        self.endpoint.setToolTip(
            "ZeroMQ endpoint of `singan serve` (saved in Krita's settings); Enter or Connect uses it"
        )
        self.endpoint.setMinimumWidth(0)
        self.endpoint.returnPressed.connect(self.connect_button.click)
        self.preset = _combo()
        self.preset.setToolTip("Training preset (the daemon's): the finest scale's size and the iterations per scale")
        self.preset.currentIndexChanged.connect(lambda i: self._set("preset", self.preset.itemData(i)))
        self.seamless = QCheckBox("Seamless (tileable)")
        self.seamless.setChecked(options.seamless)
        self.seamless.toggled.connect(lambda on: self._set("seamless", on))
        self.count = self._spin(1, 64, options.count, "count")
        self.seed = self._spin(0, 2**31 - 1, options.seed, "seed")
        self.start_scale = _combo()
        self.start_scale.setToolTip(
            "Where variations start: the coarsest scale draws new layouts, finer ones keep the layout"
        )
        self.start_scale.currentIndexChanged.connect(lambda i: self._set("start_scale", self.start_scale.itemData(i)))
        self.injection_scale = _combo()
        self.injection_scale.setToolTip(
            "How much Harmonize and Paint to image repaint (their strength): coarse scales repaint more"
        )
        self.injection_scale.currentIndexChanged.connect(
            lambda i: self._set("injection_scale", self.injection_scale.itemData(i))
        )
        form.addRow("Daemon", self.endpoint)
        form.addRow("Training", self.preset)
        form.addRow("", self.seamless)
        form.addRow("Variations", self.count)
        form.addRow("Seed", self.seed)
        form.addRow("Vary", self.start_scale)
        form.addRow("Repaint", self.injection_scale)
        self._size_rows(form)
        form.addRow("Features", self._feature_scale())
        self.options_panel.setVisible(False)
        return self.options_panel

    def _spin(self, low: int, high: int, value: int, option: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setMinimumWidth(0)
        spin.valueChanged.connect(lambda v: self._set(option, v))
        return spin

    def _size_rows(self, form: QFormLayout) -> None:
        """The output size: its mode on one row, W x H (for the W x H mode) on the next."""
        options = self.studio.options
        self.size_mode = _combo()
        for mode, text in zip(opts.SIZE_MODES, ("1x selection", "2x selection", "W x H")):
            self.size_mode.addItem(text, mode)
        self.width_spin = self._spin(opts.MIN_SIDE, opts.SPIN_MAX, options.width, "width")
        self.height_spin = self._spin(opts.MIN_SIDE, opts.SPIN_MAX, options.height, "height")
        self.size_mode.currentIndexChanged.connect(self._choose_size_mode)
        self.size_mode.setCurrentIndex(opts.SIZE_MODES.index(options.size_mode))
        self._choose_size_mode(self.size_mode.currentIndex())
        row = QHBoxLayout()
        row.addWidget(self.width_spin, 1)
        row.addWidget(QLabel("x"))
        row.addWidget(self.height_spin, 1)
        form.addRow("Output", self.size_mode)
        form.addRow("W x H", row)

    def _feature_scale(self) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(*opts.FEATURE_SCALE_RANGE)
        spin.setDecimals(2)
        spin.setSingleStep(0.25)
        spin.setSuffix(" x")
        spin.setValue(self.studio.options.feature_scale)
        spin.setToolTip(
            "Size of the features (bricks, leaves) in Variations and Quick variations, relative to the "
            "image they come from: 1 keeps their size at any output size"
        )
        spin.valueChanged.connect(lambda v: self._set("feature_scale", v))
        self.feature_scale = spin
        return spin

    # -- choices ----------------------------------------------------------------------------

    def _set(self, option: str, value) -> None:
        """Store one of the artist's choices and save the options in Krita's settings."""
        setattr(self.studio.options, option, value)
        save_options(self.studio.options)

    def _choose_model(self, index: int) -> None:
        self._set("model", self.models.itemData(index) if index >= 0 else None)
        self.models.setToolTip(self.models.itemData(index, Qt.ToolTipRole) or "")
        self._show_scales()

    def _choose_size_mode(self, index: int) -> None:
        self._set("size_mode", self.size_mode.itemData(index))
        custom = self.studio.options.size_mode == "custom"
        self.width_spin.setEnabled(custom)
        self.height_spin.setEnabled(custom)

    def _fold(self, unfolded: bool) -> None:
        self.options_panel.setVisible(unfolded)
        self.options_toggle.setArrowType(Qt.DownArrow if unfolded else Qt.RightArrow)
        if unfolded:  # once laid out: scroll down to them (fold them to see the actions again)
            QTimer.singleShot(0, lambda: self.scroll.ensureWidgetVisible(self.options_panel, 0, 0))

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
        self.preset.setToolTip(self.preset.currentText())

    def _show_models(self) -> None:
        session, chosen = self.studio.session, self.studio.options.model
        models = [model for model in session.models if model.get("kind") == "generative"]
        choices = [(None, NO_MODEL, "No model chosen: Harmonize first trains one on the layers below the object")]
        choices += [
            (model["id"], short, f"{full}\nid {model['id']}, trained on {model.get('source_name', '?')}")
            for model, (short, full) in zip(models, words.model_choices(models, session.jobs))
        ]
        self.models.blockSignals(True)
        self.models.clear()
        for model_id, text, tip in choices:
            self.models.addItem(text, model_id)
            self.models.setItemData(self.models.count() - 1, tip, Qt.ToolTipRole)
        self.models.setCurrentIndex(max(0, self.models.findData(chosen)))
        self.models.setToolTip(self.models.itemData(self.models.currentIndex(), Qt.ToolTipRole) or "")
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
            combo.setItemData(combo.count() - 1, text, Qt.ToolTipRole)
        combo.setCurrentIndex(max(0, combo.findData(current)))
        combo.blockSignals(False)

    def _show_task(self, task) -> None:
        task = self.studio.current_task
        if task is None:
            self.task_title.setText("No job running")
            self.task_title.setToolTip("")
            self.progress.setFormat("")
            self.progress.setValue(0)
            self.cancel.setEnabled(False)
            return
        what = f"{task.title}: {task.step}" if task.step and not task.finished else f"{task.title}: {task.phase}"
        self.task_title.setText(what)
        self.task_title.setToolTip(f"{task.title}: {task.phase}")
        state = task.progress if not task.finished else task.phase
        if task.fraction is None and not task.finished:
            self.progress.setRange(0, 0)  # busy indicator
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int((task.fraction or 0.0) * 1000))
        self.progress.setFormat(state or (f"{(task.fraction or 0) * 100:.0f} %" if task.fraction is not None else ""))
        self.progress.setToolTip(task.phase)
        self.cancel.setEnabled(not task.finished)

    def _show_message(self) -> None:
        """The message, highlighted for :data:`FLASH_MS` ms at every report (a repeated one too)."""
        studio_ = self.studio
        self.message.setText(studio_.message)
        tip = studio_.message + (
            f"\n\nDetails (for a bug report): {studio_.message_details}" if studio_.message_details else ""
        )
        self.message.setToolTip(tip)
        self.flashing = bool(studio_.message)
        self._show_message_style()
        if self.flashing:
            self._flash.start()

    def _end_flash(self) -> None:
        self.flashing = False
        self._show_message_style()

    def _show_message_style(self) -> None:
        """The message's colours: red for an error; the highlight while it is new."""
        colour = "color: #e04040;" if self.studio.message_is_error else ""
        flash = "background: palette(highlight); color: palette(highlighted-text);" if self.flashing else ""
        self.message.setStyleSheet(f"QLabel {{ {colour} {flash} }}" if colour or flash else "")

    def _show_seed(self) -> None:
        """An action advanced the seed: show it (without signalling a choice) and save it."""
        self.seed.blockSignals(True)
        self.seed.setValue(self.studio.options.seed)
        self.seed.blockSignals(False)
        save_options(self.studio.options)

    def _show_question(self) -> None:
        question = self.studio.question
        self.question_panel.setVisible(question is not None)
        self.actions_panel.setVisible(question is None)
        if question is not None:
            self.question_text.setText(question.text)
            self.question_text.setToolTip(f"{question.text}\n\nTraining preset: {self.preset.currentText()}")
            self.question_yes.setText(question.yes)
            self.question_no.setText(question.no)
            self.scroll.ensureWidgetVisible(self.question_panel, 0, 0)


def _trigger(action_id: str) -> None:
    Krita.instance().action(action_id).trigger()


class ElidedLabel(QLabel):
    """A one-line label that never widens the docker: a text too long for it ends in "…" where it
    is cut (the whole text stays in :meth:`text` and its tooltip, unless one is set after it)."""

    def __init__(self):
        super().__init__()
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        rect = self.contentsRect()
        painter.drawText(
            rect,
            int(self.alignment()) | Qt.TextSingleLine,
            self.fontMetrics().elidedText(self.text(), Qt.ElideRight, rect.width()),
        )

    def is_cut(self) -> bool:
        """Whether the text is wider than the label (shown with "…")."""
        return self.fontMetrics().horizontalAdvance(self.text()) > self.contentsRect().width()


def _one_line_label() -> ElidedLabel:
    return ElidedLabel()


def _combo() -> QComboBox:
    """A combo box that asks for little width (:data:`COMBO_CHARACTERS`) and never widens the docker."""
    combo = QComboBox()
    combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(COMBO_CHARACTERS)
    combo.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
    return combo
