"""Add-on preferences: where the daemon listens, and whether it answers."""

from __future__ import annotations

import bpy
from bpy.props import StringProperty

from . import client
from .protocol import DEFAULT_ENDPOINT


def _endpoint_changed(prefs: SinGANPreferences, context: bpy.types.Context) -> None:
    client.session(prefs.endpoint, prefs.token or None)  # connects at the next pump


class SinGANPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    endpoint: StringProperty(
        name="Daemon endpoint",
        description="ZeroMQ endpoint of the SinGAN Studio daemon (singan serve prints it)",
        default=DEFAULT_ENDPOINT,
        update=_endpoint_changed,
    )
    token: StringProperty(
        name="Token",
        description="The daemon's token, if it has one (remote daemons)",
        subtype="PASSWORD",
        update=_endpoint_changed,
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "endpoint")
        layout.prop(self, "token")
        row = layout.row()
        draw_connection(row)
        row.operator("singan.connect", icon="FILE_REFRESH")


_STATE_ICONS = {"connected": "CHECKMARK", "connecting": "TIME", "unreachable": "ERROR", "refused": "ERROR"}


def draw_connection(layout: bpy.types.UILayout) -> None:
    """One label: the session's state, e.g. the daemon's version and device, or why it is not connected."""
    link = client.current()
    if link is None:
        layout.label(text="Not connected yet", icon="UNLINKED")
    else:
        layout.label(text=link.status[:1].upper() + link.status[1:], icon=_STATE_ICONS.get(link.state.name, "UNLINKED"))


classes = (SinGANPreferences,)

register, unregister = bpy.utils.register_classes_factory(classes)
