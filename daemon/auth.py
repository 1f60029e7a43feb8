"""The daemon's side of :mod:`protocol.auth`: a ZAP handler (pyzmq's ``ThreadAuthenticator``)
and the security options of its ROUTER socket, set before it binds.

Loopback: PLAIN, the user's token as the password (made on first start, 0600). Remote
(``--allow-remote``): CURVE, encrypted, only the allowed client keys. Either way a peer without
the credential fails the ZMTP handshake and delivers no message (docs/protocol.md, "Security").
"""

from __future__ import annotations

import logging
from pathlib import Path

import zmq
from zmq.auth.thread import ThreadAuthenticator

from protocol.auth import PLAIN_USER, ensure_curve_keys, ensure_token

log = logging.getLogger(__name__)

ZAP_DOMAIN = b"singan"


def secure_server(
    context: zmq.Context, router: zmq.Socket, curve: bool, token: str | None, folder: Path | None
) -> ThreadAuthenticator:
    """Start the ZAP handler on ``context`` and make ``router`` a PLAIN (``curve`` False: password
    ``token``, default the user's token file) or CURVE server. Stop the returned authenticator
    after the socket is closed.

    Raises:
        OSError: the credentials folder cannot be written. ValueError: a malformed token file.
    """
    auth = ThreadAuthenticator(context, log=logging.getLogger("daemon.zap"))
    if curve:
        public, secret, allowed = ensure_curve_keys(folder)
        auth.start()
        auth.configure_curve(domain=ZAP_DOMAIN.decode(), location=str(allowed))
        router.curve_server, router.curve_publickey, router.curve_secretkey = True, public, secret
        log.info("CURVE security: clients whose public key is in %s", allowed)
    else:
        password = token or ensure_token(folder)
        auth.start()
        auth.configure_plain(domain=ZAP_DOMAIN.decode(), passwords={PLAIN_USER: password})
        router.plain_server = True
    router.zap_domain = ZAP_DOMAIN
    return auth
