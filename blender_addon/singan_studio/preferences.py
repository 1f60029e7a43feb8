"""Add-on preferences: where the daemon listens, and whether it answers."""

from __future__ import annotations

import bpy
from bpy.props import StringProperty

from . import client
from .protocol import DEFAULT_ENDPOINT


def _endpoint_changed(prefs: SinGANPreferences, context: bpy.types.Context) -> None:
    client.connect(prefs.endpoint, prefs.token or None)  # shown as not connected until it answers


class SinGANPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    endpoint: StringProperty(
        name="Daemon endpoint",
        description="ZeroMQ endpoint of the SinGAN Studio daemon (singan serve prints it)",
        default=DEFAULT_ENDPOINT, update=_endpoint_changed,
    )
    token: StringProperty(
        name="Token", description="The daemon's token, if it has one (remote daemons)", subtype="PASSWORD",
        update=_endpoint_changed,
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "endpoint")
        layout.prop(self, "token")
        row = layout.row()
        draw_connection(row)
        row.operator("singan.connect", icon="FILE_REFRESH")


def draw_connection(layout: bpy.types.UILayout) -> None:
    """One label: the daemon's version and device, the last error, or that nothing was asked yet."""
    link = client.current()
    if link is not None and link.info is not None:
        info = link.info
        layout.label(text=f"Connected: SinGAN Studio {info['server_version']} on {info['device']}", icon="CHECKMARK")
    elif link is not None and link.error is not None:
        layout.label(text=f"Not connected: {link.error}", icon="ERROR")
    else:
        layout.label(text="Not connected yet", icon="UNLINKED")


classes = (SinGANPreferences,)

register, unregister = bpy.utils.register_classes_factory(classes)
