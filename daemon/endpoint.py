"""Which endpoints the daemon may bind, checked before binding and again on the address bound.

libzmq reads more endpoint forms than a URL parser does: ``tcp://SRC;DEST`` binds DEST (the
part before ``;`` is a source address), ``*`` and ``0.0.0.0`` mean every interface, and a name
can be an interface (``eth0``) or a host. The check therefore accepts only forms it reads
exactly as libzmq does — ``ipc://PATH``, ``inproc://NAME`` and ``tcp://HOST:PORT`` with HOST an
IP literal or ``localhost`` and no ``;`` anywhere — and, after binding, checks ``LAST_ENDPOINT``
(what libzmq actually bound) with the same rule. An IPv4-mapped IPv6 loopback address
(``[::ffff:127.0.0.1]``, the form libzmq reports with ``ZMQ_IPV6`` on) is loopback.
"""

from __future__ import annotations

import ipaddress

from protocol.auth import MIN_TOKEN_LENGTH, check_token, is_loopback, tcp_host

__all__ = ["check_bound", "check_endpoint", "display_endpoint", "is_loopback", "tcp_host", "MIN_TOKEN_LENGTH"]


def check_endpoint(endpoint: str, allow_remote: bool, token: str | None) -> None:
    """Refuse, before binding, what the daemon must not serve on.

    Raises:
        ValueError: one line naming the option: an endpoint with ``;`` (libzmq's source syntax),
            one that is not ``ipc://``, ``inproc://`` or ``tcp://HOST:PORT``, a non-loopback one
            without ``--allow-remote`` and a token, or a token that is not at least
            :data:`MIN_TOKEN_LENGTH` printable characters without white space
            (:func:`protocol.auth.check_token`), or a TCP port over 65535.
    """
    if token is not None:
        check_token(token.strip())
    if ";" in endpoint:
        raise ValueError(
            f"endpoint: {endpoint!r} has ';' (ZeroMQ's source;destination syntax), which the daemon does not accept"
        )
    if not endpoint.startswith(("ipc://", "inproc://")) and tcp_host(endpoint) is None:
        raise ValueError(
            f"endpoint: {endpoint!r} is not of the form tcp://HOST:PORT (HOST an IP address or localhost), ipc://PATH or inproc://NAME"
        )
    port = endpoint.rsplit(":", 1)[1] if tcp_host(endpoint) is not None else "*"
    if port != "*" and int(port) > 65535:
        raise ValueError(f"endpoint: port {port} is out of range (0..65535, or * for a free one)")
    if is_loopback(endpoint):
        return
    if not allow_remote:
        raise ValueError(
            f"endpoint: {endpoint} is not a loopback address; add --allow-remote and a --token to serve other machines"
        )
    if not token:
        raise ValueError(
            f"endpoint: {endpoint} is reachable from other machines; --allow-remote needs --token (or SINGAN_TOKEN)"
        )


def check_bound(bound: str, allow_remote: bool) -> None:
    """Refuse an address libzmq bound (``LAST_ENDPOINT``) that is not loopback without ``--allow-remote``.

    Raises:
        ValueError: naming the endpoint that was bound.
    """
    if not allow_remote and not is_loopback(bound):
        raise ValueError(
            f"endpoint: ZeroMQ bound {bound}, which is not a loopback address; refused (add --allow-remote and a --token to serve other machines)"
        )


def display_endpoint(bound: str) -> str:
    """``bound`` in a form ``--endpoint`` and clients accept: ``tcp://[::ffff:127.0.0.1]:5557`` -> ``tcp://127.0.0.1:5557``."""
    host = tcp_host(bound)
    if host is None:
        return bound
    try:
        mapped = getattr(ipaddress.ip_address(host), "ipv4_mapped", None)
    except ValueError:
        return bound
    return bound if mapped is None else f"tcp://{mapped}:{bound.rsplit(':', 1)[1]}"
