"""Who may talk to the daemon: the user's credential files and ZeroMQ security (ZAP).

Needs only pyzmq (platformdirs if installed), so the plugins read the same files as the daemon.

* **Loopback** (the default): the daemon's socket is a ZeroMQ ``PLAIN`` server checked through
  ZAP (RFC 27, pyzmq's :mod:`zmq.auth`): a peer must log in as :data:`PLAIN_USER` with the
  user's token. The token is made on the daemon's first start in :func:`credentials_dir`
  (``token``, readable by the user only, 0600, in a 0700 folder, like Jupyter's server token)
  and read from there by :class:`protocol.client.Client`, so the plugins and the CLI connect with
  no manual step while other users of the machine cannot (they cannot read the file). A peer
  without it never completes the handshake: it delivers no message at all, so it cannot make the
  daemon buffer anything. ``--token`` replaces the file's token.
* **Remote** (``--allow-remote``): ZeroMQ ``CURVE`` (CurveZMQ, RFC 26) through ZAP: traffic is
  encrypted, and only clients whose public key is in ``clients/`` of the credentials folder get a
  connection. The daemon makes ``server.key`` / ``server.key_secret`` and one client key pair
  (``client.key`` / ``client.key_secret``, its public half allowed) on its first start; a client
  on another machine needs ``server.key`` and a key pair whose ``.key`` is copied to ``clients/``.

The folder is ``$SINGAN_CREDENTIALS_DIR`` if set, else the user config directory's
``singan-studio/credentials`` (e.g. ``~/.config/singan-studio/credentials`` on Linux).
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import sys
from pathlib import Path
from typing import cast

import zmq

PLAIN_USER = "singan"
"""The PLAIN user name of every client (the token is the password)."""
MIN_TOKEN_LENGTH = 16
"""Fewest characters a token may have."""
TOKEN_FILE = "token"
CLIENT_KEYS = "clients"
"""Subfolder of allowed CURVE client public keys (``*.key``)."""

_TCP = re.compile(r"^tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.*-]+):(?P<port>\*|[0-9]{1,5})$")


def tcp_host(endpoint: str) -> str | None:
    """The host of a ``tcp://HOST:PORT`` endpoint (brackets removed), or None for another form."""
    match = _TCP.match(endpoint)
    return match["host"].strip("[]") if match else None


def is_loopback(endpoint: str) -> bool:
    """True for ``ipc://``/``inproc://`` and ``tcp://HOST:PORT`` with HOST ``localhost`` or an IP
    on 127.0.0.0/8, ``::1`` or IPv4-mapped 127.0.0.0/8; False for everything else, including any
    endpoint with ``;``, ``*``, ``0.0.0.0``, interface and host names."""
    if ";" in endpoint:
        return False
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    host = tcp_host(endpoint)
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # '*', an interface name, a host name
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def check_token(token: str, what: str = "token") -> None:
    """Raise ValueError (one line naming ``what``) unless ``token`` is at least
    :data:`MIN_TOKEN_LENGTH` printable characters, none of them white space (zero-width and
    other format characters are not printable)."""
    bad = next((c for c in token if not c.isprintable() or c.isspace()), None)
    if bad is not None:
        raise ValueError(f"{what}: must be printable characters without white space; got {ascii(bad)}")
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"{what}: must have at least {MIN_TOKEN_LENGTH} characters besides white space (got {len(token)})"
        )


def credentials_dir() -> Path:
    """``$SINGAN_CREDENTIALS_DIR``, else ``<user config dir>/singan-studio/credentials``."""
    if os.environ.get("SINGAN_CREDENTIALS_DIR"):
        return Path(os.environ["SINGAN_CREDENTIALS_DIR"])
    try:
        import platformdirs

        base = platformdirs.user_config_path("singan-studio")
    except ImportError:  # a host's Python without platformdirs: the same folders by hand
        if sys.platform == "win32":
            base = (
                Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "singan-studio" / "singan-studio"
            )
        elif sys.platform == "darwin":
            base = Path.home() / "Library" / "Application Support" / "singan-studio"
        else:
            base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "singan-studio"
    return base / "credentials"


def _private_dir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    return folder


def _write_private(path: Path, text: str) -> bool:
    """Create ``path`` readable by the user only (0600) with ``text``, atomically: written to a
    temporary file first, then linked to its name, so a reader never sees it half-written and of
    two processes creating it at once one wins. False if it exists already."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def read_token(folder: Path | None = None) -> str | None:
    """The user's token from ``folder`` (default :func:`credentials_dir`), or None if there is none
    or it cannot be read."""
    try:
        return (Path(folder or credentials_dir()) / TOKEN_FILE).read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def ensure_token(folder: Path | None = None) -> str:
    """The user's token, made (43 random URL-safe characters, 0600) if the folder has none.
    Two daemons starting at once make one token: the file is created exclusively.

    Raises:
        OSError: the folder cannot be written. ValueError: the file holds a malformed token.
    """
    folder = _private_dir(Path(folder or credentials_dir()))
    path = folder / TOKEN_FILE
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(32) + "\n")
    os.chmod(path, 0o600)  # a copy with looser permissions is tightened
    token = path.read_text().strip()
    check_token(token, str(path))
    return token


def ensure_curve_keys(folder: Path | None = None) -> tuple[bytes, bytes, Path]:
    """The daemon's CURVE key pair (public, secret; Z85) and the folder of allowed client public
    keys, made on first use together with one allowed client key pair (see the module docstring)."""
    import zmq.auth

    folder = _private_dir(Path(folder or credentials_dir()))
    allowed = _private_dir(folder / CLIENT_KEYS)
    for name in ("server", "client"):
        if not (folder / f"{name}.key_secret").exists():
            public, secret = zmq.curve_keypair()
            _write_private(folder / f"{name}.key", _certificate(public))
            _write_private(folder / f"{name}.key_secret", _certificate(public, secret))
            if name == "client":
                _write_private(allowed / "client.key", _certificate(public))
    server_public, server_secret = zmq.auth.load_certificate(folder / "server.key_secret")
    return server_public, cast(bytes, server_secret), allowed  # a .key_secret file holds both keys


def _certificate(public: bytes, secret: bytes | None = None) -> str:
    """A ZPL certificate as :func:`zmq.auth.load_certificate` reads it."""
    lines = [
        "#   ZeroMQ CURVE certificate (SinGAN Studio)",
        "metadata",
        "curve",
        f'    public-key = "{public.decode()}"',
    ]
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode()}"')
    return "\n".join(lines) + "\n"


def client_curve_keys(folder: Path | None = None) -> tuple[bytes, bytes, bytes] | None:
    """(server public, client public, client secret) for a CURVE client, or None if missing."""
    import zmq.auth

    folder = Path(folder or credentials_dir())
    try:
        server, _ = zmq.auth.load_certificate(folder / "server.key")
        public, secret = zmq.auth.load_certificate(folder / "client.key_secret")
    except (OSError, ValueError):
        return None
    return server, public, cast(bytes, secret)  # a .key_secret file holds both keys


def secure_client(socket: zmq.Socket, curve: bool, token: str | None, folder: Path | None = None) -> None:
    """Set a client socket's security before it connects: CURVE with the folder's keys, or
    PLAIN with ``token`` (default: the folder's). Without a credential the socket stays NULL and
    the daemon refuses its handshake."""
    if curve:
        keys = client_curve_keys(folder)
        if keys is not None:
            socket.curve_serverkey, socket.curve_publickey, socket.curve_secretkey = keys
        return
    token = token or read_token(folder)
    if token:
        socket.plain_username, socket.plain_password = PLAIN_USER.encode(), token.encode()
