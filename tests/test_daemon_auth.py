"""Only its user gets in (issue 29): the daemon's ZAP security against a real daemon process.

Each test points ``SINGAN_CREDENTIALS_DIR`` (which the daemon and every client read) at its own
folder, so the user's real credentials are never touched.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from conftest import DaemonProcess
from protocol import PROTOCOL_VERSION
from protocol.auth import check_token, secure_client
from protocol.client import Client, DaemonError
from protocol.session import ConnectionState, Session
from protocol.wire import encode

TOKEN = "s3cret-s3cret-s3cret"


@pytest.fixture
def credentials(tmp_path, monkeypatch):
    folder = tmp_path / "credentials"
    monkeypatch.setenv("SINGAN_CREDENTIALS_DIR", str(folder))
    monkeypatch.delenv("SINGAN_TOKEN", raising=False)
    return folder


def _events(socket: zmq.Socket, timeout: float) -> set[int]:
    monitor, seen, deadline = socket.get_monitor_socket(), set(), time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0 and monitor.poll(int(left * 1000)):
            seen.add(recv_monitor_message(monitor)["event"])
            if seen & {
                zmq.EVENT_HANDSHAKE_SUCCEEDED,
                zmq.EVENT_HANDSHAKE_FAILED_AUTH,
                zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
            }:
                break
    finally:
        socket.disable_monitor()
        monitor.close(linger=0)
    return seen


def test_loopback_needs_the_users_token_which_clients_read_by_themselves(credentials, tmp_path):
    daemon = DaemonProcess(tmp_path / "store")
    token_file = credentials / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and stat.S_IMODE(credentials.stat().st_mode) == 0o700
    check_token(token_file.read_text().strip())
    with daemon.client() as client:  # no token given: read from the file, as the plugins and the CLI do
        assert client.hello()["protocol_version"] == PROTOCOL_VERSION
    session = Session(daemon.endpoint)  # the Krita plugin's and the Blender add-on's way in
    deadline = time.monotonic() + 10
    while session.state is not ConnectionState.connected and time.monotonic() < deadline:
        session.pump()
        time.sleep(0.05)
    assert session.state is ConnectionState.connected, session.status
    session.close()

    # a process without the credential (another user cannot read the file), or with a wrong token:
    # refused, not left to time out (a 30 s timeout; the refusal comes in milliseconds)
    other = tmp_path / "other-user"
    other.mkdir()
    for kwargs in ({"credentials": other}, {"token": "x" * 20}):
        start = time.monotonic()
        with pytest.raises(DaemonError) as refused, Client(daemon.endpoint, timeout=30, retries=1, **kwargs) as client:
            client.hello()
        assert refused.value.code == "unauthorized", refused.value
        assert time.monotonic() - start < 10, "the refusal waited for the timeout"
    # a bare ZeroMQ peer (NULL mechanism) never completes the handshake: nothing it sends arrives
    peer = zmq.Context.instance().socket(zmq.DEALER)
    peer.setsockopt(zmq.LINGER, 0)
    peer.connect(daemon.endpoint)
    peer.send_multipart(encode({"v": PROTOCOL_VERSION, "id": "x", "op": "shutdown", "params": {}}))
    events = _events(peer, 5)
    assert zmq.EVENT_HANDSHAKE_SUCCEEDED not in events and peer.poll(1000) == 0
    peer.close(linger=0)
    with daemon.client() as client:  # control: the shutdown did not arrive
        assert client.hello()["protocol_version"] == PROTOCOL_VERSION
    daemon.stop()


def test_a_second_start_keeps_the_token(credentials, tmp_path):
    DaemonProcess(tmp_path / "store").stop()
    first = (credentials / "token").read_text()
    daemon = DaemonProcess(tmp_path / "store")
    assert (credentials / "token").read_text() == first
    daemon.stop()


def test_curve_with_allow_remote_lets_only_allowed_keys_in(credentials, tmp_path):
    """--allow-remote on loopback (CURVE is what --allow-remote serves): the key pair the daemon
    made and allowed gets in; a client with a key pair of its own that was not allowed delivers nothing."""
    daemon = DaemonProcess(tmp_path / "store", "--allow-remote", "--token", TOKEN)
    for name in ("server.key_secret", "client.key_secret", "token"):
        path = credentials / name
        assert not path.exists() or stat.S_IMODE(path.stat().st_mode) == 0o600, name
    with Client(daemon.endpoint, token=TOKEN, curve=True) as client:
        assert client.hello()["auth_required"] is True

    stranger = zmq.Context.instance().socket(zmq.DEALER)
    stranger.setsockopt(zmq.LINGER, 0)
    public, secret = zmq.curve_keypair()
    secure_client(stranger, curve=True, token=None)  # the right server key ...
    stranger.curve_publickey, stranger.curve_secretkey = public, secret  # ... but a key that was not allowed
    stranger.connect(daemon.endpoint)
    stranger.send_multipart(encode({"v": PROTOCOL_VERSION, "id": "x", "op": "shutdown", "token": TOKEN, "params": {}}))
    events = _events(stranger, 5)
    assert zmq.EVENT_HANDSHAKE_FAILED_AUTH in events and zmq.EVENT_HANDSHAKE_SUCCEEDED not in events, events
    assert stranger.poll(1000) == 0
    stranger.close(linger=0)
    # control: a PLAIN client with the right token is not let in either (remote needs CURVE)
    with (
        pytest.raises(DaemonError) as refused,
        Client(daemon.endpoint, token=TOKEN, curve=False, timeout=10, retries=1) as client,
    ):
        client.hello()
    assert refused.value.code == "unauthorized"
    with Client(daemon.endpoint, token=TOKEN, curve=True) as client:  # and the shutdown never arrived
        assert client.hello()["protocol_version"] == PROTOCOL_VERSION
    daemon.stop()


@pytest.mark.parametrize("token", ["\u200b" * 16, "sixteen chars ok", "tab\tinside-the-token", "é" * 8 + "\x1b" * 8])
def test_tokens_must_be_printable_without_spaces(token):
    with pytest.raises(ValueError, match=r"^token: must be printable characters without white space"):
        check_token(token)
    check_token("sixteen-chars-ok")  # control


OTHER_UID = 54321
"""A uid no account uses: the second local user, run with ``subprocess``'s ``user``/``group`` (root only)."""

_OTHER_USER = """
import sys, zmq
from protocol.client import Client, DaemonError
from protocol.wire import encode
from protocol import PROTOCOL_VERSION
endpoint = sys.argv[1]
try:
    with Client(endpoint, timeout=10, retries=1) as client:  # reads the credential by itself, as the plugins do
        client.hello()
    print("client: let in")
except DaemonError as exc:
    print("client:", exc.code)
peer = zmq.Context.instance().socket(zmq.DEALER)  # a bare ZeroMQ peer asking the daemon to stop
peer.setsockopt(zmq.LINGER, 0)
peer.connect(endpoint)
peer.send_multipart(encode({"v": PROTOCOL_VERSION, "id": "x", "op": "shutdown", "params": {}}))
print("peer:", "answered" if peer.poll(3000) else "nothing")
"""


def _usable_by_others(path: Path) -> bool:
    """Every folder above ``path`` searchable and ``path`` executable by any user."""
    path = path.resolve()
    return all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents))


def _python_for_another_user() -> str:
    """This Python, or one of the same version in the system's folders when this one sits in a folder
    other users cannot enter (a per-user pyenv); the test's packages are put on its PYTHONPATH."""
    if _usable_by_others(Path(sys.executable)):
        return sys.executable
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for folder in ("/usr/bin", "/usr/local/bin", "/bin"):
        if (Path(folder) / name).exists() and _usable_by_others(Path(folder) / name):
            return str(Path(folder) / name)
    pytest.skip(f"no {name} that another user can run")


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="running a process as another uid needs root"
)
def test_another_local_uid_is_refused_on_loopback(credentials, tmp_path):
    """A real second user: a process with another uid on the same machine, given the daemon's
    endpoint and even the path of its owner's credential folder (0700, so unreadable to it), is
    refused (``unauthorized``), and a bare ZeroMQ peer of that uid gets no answer; the daemon
    stays up. Control: the same script as the daemon's own user is let in."""
    python = _python_for_another_user()
    packages = [p for p in sys.path if p.endswith("-packages")]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *packages]),
        "HOME": "/",
        "SINGAN_CREDENTIALS_DIR": str(credentials),
    }
    daemon = DaemonProcess(tmp_path / "store")
    try:
        other = subprocess.run(
            [python, "-c", _OTHER_USER, daemon.endpoint],
            user=OTHER_UID,
            group=OTHER_UID,
            extra_groups=[],
            env=env,
            cwd="/",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert other.stdout.split("\n")[:2] == ["client: unauthorized", "peer: nothing"], (
            other.stdout,
            other.stderr[-2000:],
        )
        owner = subprocess.run(
            [python, "-c", _OTHER_USER.replace('"shutdown"', '"hello"'), daemon.endpoint],
            env=env,
            cwd="/",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert owner.stdout.split("\n")[:2] == ["client: let in", "peer: nothing"], (owner.stdout, owner.stderr[-2000:])
        with daemon.client() as client:  # the other user's shutdown never arrived
            assert client.hello()["protocol_version"] == PROTOCOL_VERSION
    finally:
        daemon.stop()
