"""Typed errors of the library, all of them: callers (the CLI, the daemon) map them by class, never by message text."""

from __future__ import annotations


class InvalidArgument(ValueError):
    """A caller-supplied value is out of its range or of the wrong kind.

    ``field`` is the parameter's name as the public function spells it (``scale``, ``n_samples``,
    ``feature_scale``); ``str(error)`` is the one-line message ``"<field>: <what is wrong>"``, or
    with ``sentence=True`` ``"<field> <what is wrong>"`` (``"real is constant (std 0)"``).
    A ``ValueError``, so ``except ValueError`` keeps working.
    """

    def __init__(self, field: str, message: str, *, sentence: bool = False):
        super().__init__(f"{field} {message}" if sentence else f"{field}: {message}")
        self.field = field
        self.message = message


class ModelLoadError(ValueError):
    """A model directory is missing, incomplete, corrupt or of an unsupported format.

    The message is one line naming the offending path and the problem.
    """


class OutputDirNotEmpty(ValueError):
    """:func:`~singan_core.storage.create_model_dir` was pointed at a directory that holds something it must not replace."""


class ImageReadError(ValueError):
    """The file is missing or is not an image Pillow can read."""


class MetricUnavailable(RuntimeError):
    """A metric cannot be computed here because a required resource is missing."""
