"""Typed errors of the library: callers (the CLI, the daemon) map them by class, never by message text."""

from __future__ import annotations


class InvalidArgument(ValueError):
    """A caller-supplied value is out of its range or of the wrong kind.

    ``field`` is the parameter's name as the public function spells it (``scale``, ``n_samples``,
    ``feature_scale``); ``str(error)`` is the one-line message ``"<field>: <what is wrong>"``.
    A ``ValueError``, so ``except ValueError`` keeps working.
    """

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

