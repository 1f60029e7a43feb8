"""The wire contract between SinGAN Studio's daemon and its clients (Krita, Blender, the CLI).

Importing this package (and :mod:`protocol.wire`, :mod:`protocol.client`) needs only pyzmq and
msgpack, so it works inside Krita's and Blender's Python. :mod:`protocol.schema` (pydantic) is
the authoritative definition of every message, used by the daemon and the docs; the full
description with examples is ``docs/protocol.md``.
"""

PROTOCOL_VERSION = 1
"""Version of the message format; sent as ``v`` in every header. A daemon answers other versions
with an ``unsupported_version`` error."""

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5557"
"""Where the daemon listens unless told otherwise (loopback only)."""

__all__ = ["DEFAULT_ENDPOINT", "PROTOCOL_VERSION"]
