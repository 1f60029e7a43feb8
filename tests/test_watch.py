"""The folder watch with a real daemon and real watchdog (issue 18): a file is read once per version.

The 20 watched images are small distinct PNGs whose models already exist in the store (made with
the storage API, untrained and marked stopped, so nothing trains and nothing resumes): each is
recognised by its bytes and skipped. That is the start-up path for half of them (in the folder
before the daemon starts) and the drop path for the other half. Reads are counted by the daemon
(``jobs`` reply, ``watch.reads``), skips by its log.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from daemon.store import ModelStore, StudioMeta
from singan_core import create_model_dir, new_pyramid, preset
from singan_core.imageio import load_image

from conftest import DaemonProcess

pytestmark = pytest.mark.slow

IDLE_SECONDS = 30
IDLE_CPU_BOUND = 1.5
"""CPU seconds the daemon may use over IDLE_SECONDS of watching 20 unchanged files (5 %); the
daemon measured 0.02 s on a busy 2-core machine. Re-hashing every file every 2 s (the bug)
costs far more."""


def _png(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    PILImage.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path)
    return path


def _known(store: ModelStore, image: Path) -> None:
    """A model of ``image``'s bytes in the store, as the daemon would have made it (not trained)."""
    model_id = store.new_id(image.stem)
    pyramid = new_pyramid(load_image(image), preset("tiny"), torch.device("cpu"))
    create_model_dir(store.path(model_id), pyramid, hashlib.sha256(image.read_bytes()).hexdigest(), image.name, "tiny")
    store.write_studio(model_id, StudioMeta(name=image.stem, stopped=True))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _watch_state(client) -> dict:
    return client.call("jobs")[0]["watch"]


def _wait_watch(client, condition, timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    while not condition(state := _watch_state(client)):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}: {state}"
        time.sleep(0.2)
    return state


def _skip_lines(log: Path, name: str) -> int:
    return sum(f"{name}: already trained (same content), skipped" in line for line in log.read_text().splitlines())


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the daemon's CPU time from /proc")
def test_watched_files_are_read_once_per_version(tmp_path):
    inbox, staging, store = tmp_path / "inbox", tmp_path / "staging", ModelStore(tmp_path / "store")
    inbox.mkdir(), staging.mkdir()
    images = [_png((inbox if i < 10 else staging) / f"img-{i:02d}.png", i) for i in range(20)]
    for image in images:
        _known(store, image)
    daemon = DaemonProcess(store.root, "--watch", str(inbox), "--watch-preset", "tiny", "--debounce", "0.5")
    with daemon.client() as client:
        _wait_watch(client, lambda s: s["reads"] == 10, 30, "the 10 files there at start")
        for image in images[10:]:  # dropped while the daemon watches
            shutil.move(image, inbox / image.name)
        shutil.copy(inbox / "img-00.png", inbox / "dup.png")  # a duplicate under another name
        state = _wait_watch(client, lambda s: s["reads"] == 21, 30, "the 10 dropped files and the duplicate")

        cpu_before = _cpu_seconds(daemon.proc.pid)
        time.sleep(IDLE_SECONDS)
        idle_cpu = _cpu_seconds(daemon.proc.pid) - cpu_before
        after_idle = _watch_state(client)
        assert state == after_idle == {**state, "files_seen": 21, "reads": 21, "trained": 0, "skipped": 21, "failed": 0}
        assert idle_cpu < IDLE_CPU_BOUND, f"the daemon used {idle_cpu:.2f} CPU s in {IDLE_SECONDS} s of idle watching"
        for name in [image.name for image in images] + ["dup.png"]:
            assert _skip_lines(daemon.log, name) == 1, name

        _png(inbox / "img-01.png", 1000)  # other content under the same name: a new model
        state = _wait_watch(client, lambda s: s["trained"] == 1, 30, "the replaced file")
        time.sleep(3)  # several debounce periods: no second handling
        assert _watch_state(client) == {**state, "files_seen": 21, "reads": 22, "skipped": 21, "failed": 0}
        new = [
            m
            for m in client.list_models()
            if m["source_name"] == "img-01.png" and m["status"] in ("queued", "training")
        ]
        assert [m["id"] for m in new] == ["img-01-2"]
    daemon.stop()
    print(f"idle CPU {idle_cpu:.2f} s over {IDLE_SECONDS} s")


def _bomb_png(path: Path, side: int = 16384) -> Path:
    """A 1-bit PNG of side x side px (268 M px, past PIL's decompression-bomb limit) in about 32 KB."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor, row = zlib.compressobj(9), b"\x00" * (1 + side // 8)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_no_file_stops_the_watch(tmp_path):
    """A decompression bomb, a truncated PNG, a symlink loop and a folder named like an image are
    each counted ``failed`` (the folder: ignored) with a one-line warning, and a good file dropped
    after them is still trained (issue 29: the bomb killed the watch thread for the daemon's life)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bomb = _bomb_png(inbox / "bomb.png")
    assert bomb.stat().st_size < 100_000
    with pytest.raises(PILImage.DecompressionBombError):  # control: the file really is a bomb to PIL
        PILImage.open(bomb)
    good = _png(tmp_path / "good.png", 7)
    (inbox / "truncated.png").write_bytes(good.read_bytes()[:-200])
    (inbox / "loop.png").symlink_to(inbox / "loop.png")
    (inbox / "folder.png").mkdir()
    daemon = DaemonProcess(tmp_path / "store", "--watch", str(inbox), "--watch-preset", "tiny", "--debounce", "0.5")
    with daemon.client() as client:
        _wait_watch(client, lambda s: s["failed"] == 3, 30, "the bomb, the truncated file and the loop to fail")
        shutil.copy(good, inbox / "good.png")
        state = _wait_watch(client, lambda s: s["trained"] == 1, 30, "the good file after them")
        assert state["failed"] == 3 and state["skipped"] == 0, state
        model = next(m for m in client.list_models() if m["source_name"] == "good.png")
        deadline = time.monotonic() + 240
        while (model := client.get_model(model["id"]))["status"] != "ready":
            assert model["status"] in ("queued", "training") and time.monotonic() < deadline, model
            time.sleep(0.5)
    daemon.stop()
    log = daemon.log.read_text()
    for name in ("bomb.png", "truncated.png", "loop.png"):
        lines = [line for line in log.splitlines() if f"{name}: not trained:" in line]
        assert len(lines) == 1 and "WARNING" in lines[0], (name, lines)
    assert "Traceback" not in log
