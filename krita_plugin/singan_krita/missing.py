"""The docker shown instead of the real one when pyzmq cannot be imported: it says exactly what to
install (see :mod:`.deps`). Imports nothing that needs pyzmq."""

from __future__ import annotations

from krita import DockWidget
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QLabel

PROBLEM = ""
"""What to install; set by the package's ``__init__`` before Krita creates the docker."""


class MissingDepsDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle("SinGAN Studio")
        label = QLabel(PROBLEM, wordWrap=True, textInteractionFlags=Qt.TextSelectableByMouse)
        label.setStyleSheet("color: #e04040")
        self.setWidget(label)

    def canvasChanged(self, canvas) -> None:
        pass
