"""The add-on's one session with the SinGAN Studio daemon, and the timer that pumps it.

The session (``.protocol.session.Session``, bundled at build time) holds the connection state,
the daemon's ``hello`` (version, device, presets, limits), its models and the running tasks; it
never waits on the network. Blender runs everything on its main thread, so one module-level
session serves every operator and panel, and a ``bpy.app.timers`` function pumps it every
:data:`PUMP_INTERVAL_S` s (each pump reads what has arrived with a zero timeout). Running job
operators pump it from their modal timer events too. When the state or the models change, the
panels and the status bar are redrawn.
"""

from __future__ import annotations

import bpy

from .protocol.session import Session

PUMP_INTERVAL_S = 0.1
"""Seconds between two pumps of the session by the application timer."""

_session: Session | None = None


def _redraw() -> None:
    """Redraw the areas that show the session: sidebars, properties, preferences, status bar."""
    window_manager = bpy.context.window_manager
    for window in window_manager.windows if window_manager is not None else ():
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PROPERTIES", "PREFERENCES", "STATUSBAR"}:
                area.tag_redraw()


def session(endpoint: str, token: str | None = None) -> Session:
    """The shared session, pointed at ``endpoint`` (a change drops the old connection: the jobs it
    followed fail here as ``unavailable`` and go on in the old daemon). Never blocks: it connects
    at the next pump."""
    global _session
    if _session is None:
        _session = Session(endpoint, token)
        _session.state_changed.connect(_redraw)
        _session.models_changed.connect(_redraw)
    elif (_session.endpoint, _session.token) != (endpoint.strip(), token):
        _session.set_endpoint(endpoint, token)
    return _session


def current() -> Session | None:
    """The shared session, if one was made."""
    return _session


def pump() -> None:
    """Handle what has arrived from the daemon and send what is due (returns at once)."""
    if _session is not None:
        _session.pump()


def _pump_timer() -> float:
    prefs = bpy.context.preferences.addons.get(__package__)
    if prefs is not None:
        session(prefs.preferences.endpoint, prefs.preferences.token or None).pump()
    return PUMP_INTERVAL_S


def register() -> None:
    bpy.app.timers.register(_pump_timer, first_interval=PUMP_INTERVAL_S, persistent=True)


def unregister() -> None:
    """Stop pumping and close the socket (running jobs go on in the daemon)."""
    global _session
    if bpy.app.timers.is_registered(_pump_timer):
        bpy.app.timers.unregister(_pump_timer)
    if _session is not None:
        _session.close()
        _session = None
