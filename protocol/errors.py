"""The protocol's error classes, and the one-line form of every message a reply or a host's UI shows.

:class:`ProtocolError` is what the daemon sends back in an ``error`` reply; :class:`DaemonError` is
how a client (:mod:`protocol.client`) reports one, or a failure on its side. docs/protocol.md lists
the codes.
"""

from __future__ import annotations

MAX_MESSAGE_CHARS = 1000
"""Longest error message (characters) the daemon sends; longer ones are cut."""


def one_line(text: str, limit: int = 200) -> str:
    """``text`` (a client string, a file name) safe for one line of a message or log: every
    non-printable character (newline, carriage return, escape, ...) is written as its Python escape
    (``\\n``, ``\\x1b``), and the result is cut to ``limit`` characters, with ``...`` if cut.
    Idempotent: one-line text comes back unchanged (up to the cut)."""
    escaped = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return escaped if len(escaped) <= limit else escaped[: limit - 3] + "..."


class ProtocolError(ValueError):
    """A request that cannot be served, as sent back in an ``error`` reply.

    Attributes:
        code: ``invalid_request``, ``unsupported_version``, ``not_found``, ``too_large``, ``busy``,
            ``cancelled``, ``out_of_memory``, ``unauthorized`` or ``internal`` (see docs/protocol.md).
        message: one line for humans, naming the field and the limit.
        field: the offending part of the message (``params.n``, ``images[0].width``), or None.
    """

    def __init__(self, message: str, field: str | None = None, code: str = "invalid_request"):
        message = one_line(message, MAX_MESSAGE_CHARS)  # client strings in it stay on one line
        super().__init__(message)
        self.message = message
        self.field = None if field is None else one_line(field, 200)
        self.code = code


class DaemonError(Exception):
    """An ``error`` reply (see docs/protocol.md for the codes), or a client-side failure.

    Attributes:
        code: e.g. ``invalid_request``, ``not_found``, ``cancelled``, ``unavailable``.
        message: one line naming the problem.
        field: the offending request field, if any.
    """

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.field = code, message, field


class DaemonUnavailable(DaemonError):
    """No answer from the daemon within the timeout after all retries."""

    def __init__(self, message: str):
        super().__init__("unavailable", message)
