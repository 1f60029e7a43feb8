"""Test-only Krita plugin: once the main window exists, runs the scenarios of :mod:`.scenarios`
against the SinGAN Studio plugin (installed beside it), writes ``results.json`` (and raw pixel
files, PNGs) into ``$SINGAN_HARNESS_OUT`` and leaves Krita with ``os._exit``."""

from krita import Extension, Krita
from PyQt5.QtCore import QTimer


class HarnessExtension(Extension):
    def setup(self):
        pass

    def createActions(self, window):
        from .scenarios import start

        QTimer.singleShot(500, start)  # after the window and its dockers are built


Krita.instance().addExtension(HarnessExtension(Krita.instance()))
