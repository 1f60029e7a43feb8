"""The protocol client and session the plugin talks to the daemon with, from one place.

In the release zip they are the plugin's private copy, ``singan_krita.vendor.protocol`` (with its
msgpack in ``singan_krita.vendor.msgpack``; built by :func:`protocol.bundle.copy_client`), so
neither becomes a top-level module of Krita's Python, which every plugin shares. In the project's
checkout (the tests, the build), which has no ``vendor`` folder, they are the repository's
``protocol`` package.

No ``krita`` or Qt import.
"""

from importlib.util import find_spec

if find_spec(".vendor", __package__) is not None:
    from .vendor.protocol import DEFAULT_ENDPOINT, requests
    from .vendor.protocol.advice import explain, training_estimate
    from .vendor.protocol.client import DaemonError, Image
    from .vendor.protocol.requests import FILL_NOISE, VARIATION_NOISE, inpaint_request, synthesis_request
    from .vendor.protocol.session import ConnectionState, Session, Signal, Task, preset_text
else:
    from protocol import DEFAULT_ENDPOINT, requests
    from protocol.advice import explain, training_estimate
    from protocol.client import DaemonError, Image
    from protocol.requests import FILL_NOISE, VARIATION_NOISE, inpaint_request, synthesis_request
    from protocol.session import ConnectionState, Session, Signal, Task, preset_text

__all__ = [
    "DEFAULT_ENDPOINT",
    "FILL_NOISE",
    "VARIATION_NOISE",
    "ConnectionState",
    "DaemonError",
    "Image",
    "Session",
    "Signal",
    "Task",
    "explain",
    "inpaint_request",
    "preset_text",
    "requests",
    "synthesis_request",
    "training_estimate",
]
