"""docs/protocol.md's example exchanges (section 13), run against a real daemon (issue 29).

Every request in 13.1, 13.3 and 13.4 written out in full is sent as written; its final reply
must match the document's: the same type, the same error code, field and message, the same
result keys (values such as ``instance`` and ``seconds`` differ by nature), and for ``hello``
the same ops, presets, preset details and limit names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgpack
import pytest

from conftest import TRAIN_IMAGE, submit_training
from protocol.auth import secure_client

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
pytestmark = pytest.mark.slow


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"### {title}")
    return text[start : text.index("\n### ", start + 1)]


def exchanges(text: str) -> list[tuple[str, dict]]:
    """("→" | "←", header) of every message of the section's code blocks written out as JSON."""
    out, entry = [], None
    for block in re.findall(r"```\n(.*?)```", text, re.S):
        for line in block.splitlines() + ["→"]:
            if line.startswith(("→", "←")):
                if entry is not None:
                    body = re.sub(r"^(frame 0 \(\d+ B\):|frame 0:)\s*", "", entry[1].strip())
                    try:
                        out.append((entry[0], json.loads(body)))
                    except ValueError:
                        pass  # abbreviated ("...") or not a header
                entry = [line[0], line[1:]]
            elif entry is not None and line.startswith(" ") and not line.strip().startswith("frame"):
                entry[1] += " " + line.strip()
    return out


def final_replies(peer, count: int) -> dict[str, dict]:
    replies: dict[str, dict] = {}
    while len(replies) < count:
        assert peer.poll(60_000), f"no reply; have {sorted(replies)}"
        header = msgpack.unpackb(peer.recv_multipart()[0], raw=False)
        if header["type"] in ("result", "error"):
            replies[header["id"]] = header
    return replies


def test_the_documents_examples_are_what_the_daemon_answers(start_daemon, shared_images):
    import zmq

    daemon = start_daemon()
    with daemon.client(timeout=10) as client:
        model = submit_training(client, shared_images / TRAIN_IMAGE, "Chelsea").wait(timeout=300)["model"]["id"]
    assert model == "chelsea"
    cases = [e for title in ("13.1 hello", "13.3 generate", "13.4 Errors") for e in exchanges(section(title))]
    requests = [h for d, h in cases if d == "→"]
    expected = {h["id"]: h for d, h in cases if d == "←" and h.get("type") in ("result", "error")}
    assert {r["id"] for r in requests} == set(expected) - {None} == {"r1", "r3", "r5", "r7", "r8"}, (requests, expected)
    assert None in expected  # 13.4's reply to a frame that is not a map
    peer = zmq.Context.instance().socket(zmq.DEALER)
    peer.setsockopt(zmq.LINGER, 0)
    secure_client(peer, curve=False, token=None)
    peer.connect(daemon.endpoint)
    for request in requests:
        peer.send(msgpack.packb(request))
    peer.send(bytes.fromhex("93010203"))  # 13.4's last example: an array, not a map
    got = final_replies(peer, len(requests) + 1)
    peer.close(linger=0)
    for request_id, want in expected.items():
        have = got[request_id]
        assert have["type"] == want["type"] and set(have) == set(want), (request_id, have, want)
        if want["type"] == "error":
            assert have["error"] == want["error"], (request_id, have["error"], want["error"])
        else:
            assert set(have["data"]) == set(want["data"]), (request_id, sorted(have["data"]), sorted(want["data"]))
            assert [i["name"] for i in have["images"]] == [i["name"] for i in want["images"]], request_id
    hello, documented = got["r1"]["data"], expected["r1"]["data"]
    for key in ("ops", "presets", "auth_required", "protocol_version"):
        assert hello[key] == documented[key], (key, hello[key], documented[key])
    # a preset's seconds are the cost model's, calibrated by this store's trainings: a measurement
    measured = [{k: v for k, v in item.items() if k != "seconds"} for item in hello["preset_details"]]
    assert measured == [{k: v for k, v in item.items() if k != "seconds"} for item in documented["preset_details"]]
    assert all(set(item) == {"name", "max_size", "iterations", "seconds"} for item in hello["preset_details"])
    assert all(item["seconds"] is None or item["seconds"] > 0 for item in hello["preset_details"])
    assert set(hello["limits"]) == set(documented["limits"])
