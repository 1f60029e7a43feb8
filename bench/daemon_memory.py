"""The daemon's peak RSS under the hostile sequences (the earlier outside check's reproductions),
read from outside (``/proc/PID/status`` VmHWM), one fresh daemon per sequence.

    python bench/daemon_memory.py [--budget MIB] [--only NAME ...]

Sequences: ``giant-no-credential`` (raw ZMTP, 17 frames of 500 MiB, no credential),
``wrong-token`` (4 x 256 MiB from a PLAIN client with a wrong token), ``frames-with-credential``
(8 x 256 MiB from the user's own client: buffered by ZeroMQ and refused, or, where that passes
the overflow guard's limit, dropped on its way),
``queued-uint8`` (12 queued 8192 x 4096 RGBA uint8 inputs), ``queued-float32`` (4 as float32),
``tiny-to-largest`` (a 20 x 20 instant asked for 5792 x 5792, n=2). Prints one line per
sequence: VmHWM after start and after the sequence, MiB. Linux only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgpack
import zmq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from protocol.auth import secure_client  # noqa: E402
from test_daemon_budget import MiB, blast_without_handshake, request, spec, vm_kib  # noqa: E402


def start(store: Path, budget: int | None) -> tuple[subprocess.Popen, str]:
    args = [
        sys.executable,
        "-m",
        "singan_cli.cli",
        "serve",
        "--endpoint",
        "tcp://127.0.0.1:*",
        "--store",
        str(store),
        "--log-file",
        str(store.parent / "daemon.log"),
    ]
    if budget:
        args += ["--memory-budget", str(budget)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    return proc, proc.stdout.readline().split()[-1]


def peer(endpoint: str, token: str | None = None, credential: bool = True) -> zmq.Socket:
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    if credential:
        secure_client(s, curve=False, token=token)
    s.connect(endpoint)
    return s


def drain(s: zmq.Socket, seconds: float) -> list[dict]:
    out, end = [], time.monotonic() + seconds
    while s.poll(max(0, int((end - time.monotonic()) * 1000))):
        out.append(msgpack.unpackb(s.recv_multipart()[0], raw=False))
    return out


def frames_of(endpoint: str, count: int, size: int, token: str | None = None) -> list[dict]:
    s = peer(endpoint, token)
    frame = bytes(size)
    s.send_multipart(
        [request("big", "hello", images=[spec(f"i{i}", size // 4, 1) for i in range(count)]), *[frame] * count],
        copy=False,
    )
    return drain(s, 20)


def queued(endpoint: str, count: int, dtype: str) -> list[dict]:
    s = peer(endpoint)
    frame = bytes(8192 * 4096 * 4 * (4 if dtype == "float32" else 1))
    s.send_multipart(
        [
            request("busy", "instant", {"width": 1024, "height": 1024}, [spec("image", 256, 256, "RGB")]),
            bytes(256 * 256 * 3),
        ]
    )
    for i in range(count):
        s.send_multipart(
            [
                request(f"q{i}", "instant", {"width": 16, "height": 16}, [spec("image", 8192, 4096, "RGBA", dtype)]),
                frame,
            ],
            copy=False,
        )
    return drain(s, 20)


SEQUENCES = {
    "giant-no-credential": lambda e: blast_without_handshake(e, 17, 500 * MiB),
    "wrong-token": lambda e: frames_of(e, 3, 256 * MiB, token="x" * 20),
    "frames-with-credential": lambda e: frames_of(e, 8, 256 * MiB),
    "queued-uint8": lambda e: queued(e, 12, "uint8"),
    "queued-float32": lambda e: queued(e, 4, "float32"),
    "tiny-to-largest": lambda e: (
        peer(e).send_multipart(
            [
                request("t", "instant", {"width": 5792, "height": 5792, "n": 2}, [spec("image", 20, 20, "RGB")]),
                bytes(1200),
            ]
        ),
        time.sleep(5),
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=None, help="--memory-budget MiB (default: the daemon's)")
    parser.add_argument("--only", nargs="*", default=list(SEQUENCES))
    args = parser.parse_args()
    for name in args.only:
        with tempfile.TemporaryDirectory() as tmp:
            proc, endpoint = start(Path(tmp) / "store", args.budget)
            try:
                time.sleep(1)
                before = vm_kib(proc.pid, "VmHWM") / 1024
                replies = SEQUENCES[name](endpoint)
                time.sleep(1)
                after = vm_kib(proc.pid, "VmHWM") / 1024
                codes = (
                    sorted({r.get("error", {}).get("code", r["type"]) for r in replies})
                    if isinstance(replies, list)
                    else replies
                )
                print(
                    f"{name:24s} VmHWM {before:6.0f} MiB after start, {after:6.0f} MiB after; replies: {codes}",
                    flush=True,
                )
            finally:
                proc.terminate()
                proc.wait(60)


if __name__ == "__main__":
    main()
