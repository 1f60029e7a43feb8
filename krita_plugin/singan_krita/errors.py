"""Why an action cannot run. The docker shows ``str(error)`` of these in its message line; anything
else that escapes an action is shown as an internal error (never a traceback dialog)."""

from __future__ import annotations


class PluginError(Exception):
    """An action cannot run as asked; the message says why and what to do, in the artist's words."""


class NoConnection(PluginError):
    """No daemon answers at the configured endpoint (the message starts with "not connected")."""


class NoDocument(PluginError):
    """No open document, or no active layer in it."""


class UnsupportedDocument(PluginError):
    """The document's colour model or depth is not 8-bit RGBA."""


class NoModel(PluginError):
    """The action needs a ready model and none is chosen."""


class BadInput(PluginError):
    """The layer or selection cannot be used (empty, too small, too large)."""
