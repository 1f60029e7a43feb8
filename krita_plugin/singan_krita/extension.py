"""The Krita extension: creates the session's studio, pumps its daemon session from a 50 ms Qt
timer (stopped when Krita closes), and registers the actions under Tools > Scripts with Krita
action ids (shortcuts: Settings > Configure Krita > Keyboard Shortcuts > Scripts, listed through
``singan_krita.action``). Errors of an action go to the docker's message line, never to Krita's
traceback dialog.
"""

from __future__ import annotations

from collections.abc import Callable

from krita import Extension, Krita
from PyQt5.QtCore import QTimer

from .daemon_client import DEFAULT_ENDPOINT

from . import actions, hiding, studio, workflows
from .deps import Deps
from .options import Options, from_settings, to_settings

SETTINGS_GROUP = "SinGANStudio"
"""kritarc group of the plugin's settings: ``endpoint`` and every docker option
(:func:`.options.to_settings`). Krita writes kritarc when it quits."""
PUMP_INTERVAL_MS = 50
HIDING_EVERY = 5
"""Pumps between two updates of the objects hidden under harmonized layers (:mod:`.hiding`): 250 ms."""


def cancel(the_studio: studio.Studio) -> None:
    """Cancel the docker's current task, if it is running."""
    task = the_studio.current_task
    if task is not None:
        task.cancel()


RUNS: dict[str, Callable[[studio.Studio], None]] = {
    actions.TRAIN.id: workflows.train,
    actions.VARIATIONS.id: workflows.variations,
    actions.QUICK_VARIATIONS.id: workflows.quick_variations,
    actions.FILL_SELECTION.id: workflows.fill_selection,
    actions.HARMONIZE.id: workflows.harmonize,
    actions.PAINT_TO_IMAGE.id: workflows.paint_to_image,
    actions.SUPER_RESOLVE_2X.id: lambda s: workflows.super_resolve(s, 2),
    actions.SUPER_RESOLVE_4X.id: lambda s: workflows.super_resolve(s, 4),
    actions.CANCEL.id: cancel,
}
"""What each action of :data:`.actions.ACTIONS` runs."""


def save_endpoint(endpoint: str) -> None:
    """Persist ``endpoint`` in kritarc and reconnect to it."""
    Krita.instance().writeSetting(SETTINGS_GROUP, "endpoint", endpoint)
    session = studio.instance().session
    session.set_endpoint(endpoint)
    session.connect()


def save_options(options: Options) -> None:
    """Persist every docker option in kritarc (read back by the next Krita session's ``setup``)."""
    for name, text in to_settings(options).items():
        Krita.instance().writeSetting(SETTINGS_GROUP, name, text)


def run_action(run: Callable[[studio.Studio], None]) -> None:
    """Run an action; any exception is shown in the docker's message line."""
    the_studio = studio.instance()
    try:
        run(the_studio)
    except Exception as error:  # never let Krita show a traceback dialog
        the_studio.report(error)


class SinGANExtension(Extension):
    """Args:
    parent: Krita's application object. deps: what :func:`.deps.activate` found (pyzmq's origin
        is shown in the docker's tooltip).
    """

    def __init__(self, parent, deps: Deps):
        super().__init__(parent)
        self._deps = deps
        self._timer = QTimer(self)
        self._pumps = 0

    def setup(self) -> None:
        endpoint = Krita.instance().readSetting(SETTINGS_GROUP, "endpoint", DEFAULT_ENDPOINT)
        the_studio = studio.create(endpoint)
        the_studio.pyzmq = self._deps.zmq or ""
        the_studio.options = from_settings(lambda name: Krita.instance().readSetting(SETTINGS_GROUP, name, ""))
        self._timer.setInterval(PUMP_INTERVAL_MS)
        self._timer.timeout.connect(self._pump)
        self._timer.start()
        Krita.instance().notifier().applicationClosing.connect(self._stop)

    def createActions(self, window) -> None:
        for info in actions.ACTIONS:
            action = window.createAction(info.id, info.text, "tools/scripts")
            action.setToolTip(info.tip)
            action.triggered.connect(lambda checked=False, run=RUNS[info.id]: run_action(run))

    def _pump(self) -> None:
        self._pumps += 1
        try:
            studio.instance().session.pump()
            if self._pumps % HIDING_EVERY == 0:
                hiding.LINKS.update()
        except Exception as error:  # a bug in a result handler: show it, keep pumping
            studio.instance().report(error)

    def _stop(self) -> None:
        self._timer.stop()
        studio.instance().session.close()
