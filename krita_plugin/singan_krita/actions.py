"""The plugin's Krita actions: ids (for shortcuts and ``Krita.instance().action(id)``), menu texts
under Tools > Scripts, and tips. The build writes :func:`action_file` as ``singan_krita.action``
into the release zip; Krita's importer puts it into the resources' ``actions/`` folder, which is
what lists the actions in Settings > Configure Krita > Keyboard Shortcuts > Scripts.

No ``krita`` or Qt import: used by the build and the tests.
"""

from __future__ import annotations

from typing import NamedTuple
from xml.sax.saxutils import escape


class ActionInfo(NamedTuple):
    id: str
    text: str
    tip: str


TRAIN = ActionInfo(
    "singan_train",
    "SinGAN: Train Model from Layer or Selection",
    "Train a model on the active layer (the selection's part of it)",
)
VARIATIONS = ActionInfo(
    "singan_variations", "SinGAN: Generate Variations", "New layers: variations of the chosen model at the selection"
)
QUICK_VARIATIONS = ActionInfo(
    "singan_quick_variations",
    "SinGAN: Quick Variations (no model)",
    "New layers in seconds: variations of the selection itself, no training",
)
FILL_SELECTION = ActionInfo(
    "singan_fill_selection",
    "SinGAN: Fill Selection (content-aware, no model)",
    "A new layer on top that removes what the selection holds by continuing what "
    "surrounds it (patches from the canvas around it), in seconds, no training",
)
HARMONIZE = ActionInfo(
    "singan_harmonize", "SinGAN: Harmonize Pasted Layer", "Blend the active (pasted) layer into the layers below it"
)
PAINT_TO_IMAGE = ActionInfo(
    "singan_paint_to_image",
    "SinGAN: Paint to Image",
    "Turn the active layer's rough colours into an image of the chosen model's world",
)
SUPER_RESOLVE_2X = ActionInfo(
    "singan_super_resolve_2x",
    "SinGAN: Super-resolve 2x",
    "The selection (or layer) at twice the size, as a new document",
)
SUPER_RESOLVE_4X = ActionInfo(
    "singan_super_resolve_4x",
    "SinGAN: Super-resolve 4x",
    "The selection (or layer) at four times the size, as a new document",
)
CANCEL = ActionInfo("singan_cancel", "SinGAN: Cancel Running Job", "Cancel the job shown in the SinGAN Studio docker")

ACTIONS = (
    TRAIN,
    VARIATIONS,
    QUICK_VARIATIONS,
    FILL_SELECTION,
    HARMONIZE,
    PAINT_TO_IMAGE,
    SUPER_RESOLVE_2X,
    SUPER_RESOLVE_4X,
    CANCEL,
)


def action_file() -> str:
    """The ``.action`` XML listing :data:`ACTIONS` under Scripts > SinGAN Studio (no default shortcuts)."""
    entries = "".join(
        f'        <Action name="{a.id}">\n'
        f"            <text>{escape(a.text)}</text>\n"
        f"            <toolTip>{escape(a.tip)}</toolTip>\n"
        f"            <statusTip>{escape(a.tip)}</statusTip>\n"
        "            <activationFlags>0</activationFlags>\n"
        "            <activationConditions>0</activationConditions>\n"
        "            <shortcut></shortcut>\n"
        "            <isCheckable>false</isCheckable>\n"
        "        </Action>\n"
        for a in ACTIONS
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ActionCollection version="2" name="Scripts">\n'
        '    <Actions category="Scripts">\n        <text>SinGAN Studio</text>\n'
        f"{entries}    </Actions>\n</ActionCollection>\n"
    )
