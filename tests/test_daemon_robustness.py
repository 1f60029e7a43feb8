"""The daemon under abuse, over its real socket: a seeded fuzz of malformed messages, many clients
at once, and clients facing a daemon that is not there or is killed mid-job.

Every daemon here is ``singan serve`` in a subprocess (conftest's ``start_daemon``); nothing is
mocked. The fuzz talks through a bare DEALER socket because :class:`protocol.client.Client` would
refuse to build most of its messages.
"""

from __future__ import annotations

import random
import socket
import threading
import time
import typing
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest
import zmq
from conftest import TRAIN_IMAGE, wire_image
from zmq.utils.monitor import recv_monitor_message

from protocol import PROTOCOL_VERSION
from protocol.client import Client, DaemonError, DaemonUnavailable
from protocol.auth import secure_client
from protocol.schema import MAX_IMAGE_SIDE, MAX_MESSAGE_BYTES, Error, ErrorCode
from protocol.wire import MAX_HEADER_BYTES, ProtocolError, decode_header

SEED = 20240611
"""Seed of the fuzz: a failure names its case index; ``Fuzzer(SEED).case(i)`` for i = 0.. replays it."""
FUZZ_MESSAGES = 1000
REPLY_TIMEOUT = 5.0
"""Seconds the daemon may take to answer one malformed message."""
ERROR_CODES = frozenset(typing.get_args(ErrorCode))
MISSING_MODEL = "no-such-model"
"""A well-formed model id that no daemon here has: job ops naming it end in not_found."""
ORDERS = {"GRAY": 1, "RGB": 3, "RGBA": 4, "BGRA": 4}
MODEL_OPS = ("get_model", "delete_model", "generate", "harmonize", "edit", "paint2image", "animate")
QUICK_OPS = ("hello", "list_models", "jobs")  # valid with no params at all
DEEP = "\x00deep\x00"
"""A placeholder that :meth:`Fuzzer.deep_nesting` replaces by a nested list in the packed header."""


# ----------------------------------------------------------------------------- a bare socket


class RawPeer:
    """A bare DEALER socket to the daemon: sends any frames, returns reply frames as bytes."""

    def __init__(self, endpoint: str, monitor_events: int = 0):
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        secure_client(self.socket, curve=False, token=None)  # the user's token file, as every client
        self.monitor = self.socket.get_monitor_socket(monitor_events) if monitor_events else None
        self.socket.connect(endpoint)

    def send(self, frames: list[bytes]) -> None:
        self.socket.send_multipart(frames)

    def recv(self, timeout: float) -> list[bytes] | None:
        """The next reply's frames, or None after ``timeout`` seconds."""
        if not self.socket.poll(max(0, int(timeout * 1000)), zmq.POLLIN):
            return None
        return self.socket.recv_multipart()

    def close(self) -> None:
        if self.monitor is not None:
            self.socket.disable_monitor()
            self.monitor.close(linger=0)
        self.socket.close(linger=0)


def readable_id(frame: bytes) -> str | None:
    """The request id the daemon can echo: frame 0 passes the protocol's strict header decoder and
    its ``id`` is a string within the schema's 64 characters. None otherwise."""
    try:
        header = decode_header(frame)
    except ProtocolError:
        return None
    request_id = header.get("id")
    return request_id if isinstance(request_id, str) and len(request_id) <= 64 else None


# ----------------------------------------------------------------------------- the fuzz cases


@dataclass
class Case:
    """One fuzz message. ``expect``: error fields it must get (``code``, ``field``), if that is certain."""

    index: int
    kind: str
    frames: list[bytes]
    expect: dict[str, Any] | None = None

    def __str__(self) -> str:
        head = self.frames[0][:120] if self.frames else b""
        return f"fuzz case {self.index} ({self.kind}, seed {SEED}, {len(self.frames)} frames, frame 0 starts {head!r})"


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def spec(name: str, width: int, height: int, order: str = "RGB", dtype: str = "uint8") -> dict:
    return {"name": name, "width": width, "height": height, "channels": ORDERS[order], "order": order, "dtype": dtype}


class Fuzzer:
    """Malformed (and a few valid) requests from a seeded ``random.Random``; see :meth:`case`."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.kinds: list[tuple[str, Callable[[str], tuple[list[bytes], dict | None]], int]] = [
            ("random_bytes", self.random_bytes, 8),
            ("header_not_a_map", self.header_not_a_map, 6),
            ("missing_field", self.missing_field, 8),
            ("wrong_version", self.wrong_version, 6),
            ("unknown_op", self.unknown_op, 6),
            ("bad_params", self.bad_params, 16),
            ("bad_image_descriptor", self.bad_image_descriptor, 14),
            ("wrong_image_names", self.wrong_image_names, 6),
            ("bad_model_id", self.bad_model_id, 8),
            ("long_strings", self.long_strings, 5),
            ("too_small_to_train", self.too_small_to_train, 7),
            ("ext_types", self.ext_types, 4),
            ("odd_msgpack", self.odd_msgpack, 4),
            ("deep_nesting", self.deep_nesting, 3),
            ("strictness", self.strictness, 8),
            ("valid", self.valid, 3),
        ]

    def case(self, index: int) -> Case:
        """Message ``index`` (cases depend on all earlier ones: replay from 0 with the same seed)."""
        kind, make, _ = self.rng.choices(self.kinds, [weight for *_, weight in self.kinds])[0]
        frames, expect = make(f"fz{index}")
        return Case(index, kind, frames, expect)

    # -- building blocks --------------------------------------------------------------------

    def text(self, longest: int = 40) -> str:
        return "".join(self.rng.choice("abcXYZ09_-./\\ \x00äß🙂") for _ in range(self.rng.randint(0, longest)))

    def leaf(self) -> Any:
        """A junk scalar: out-of-range numbers, strings, bytes, nil, bools."""
        r = self.rng
        return r.choice(
            [
                lambda: -r.randint(1, 2**63),
                lambda: r.randint(2**31, 2**64 - 1),
                lambda: 0,
                lambda: r.choice([float("nan"), float("inf"), float("-inf"), -0.0, 1e308, -1e-308, 0.5]),
                lambda: self.text(),
                lambda: str(r.randint(-10, 10**6)),  # digits in a string where an int is expected
                lambda: r.randbytes(r.randint(0, 32)),
                lambda: None,
                lambda: r.choice([True, False]),
            ]
        )()

    def junk(self) -> Any:
        """A junk value: a leaf, a list or map of leaves, or a deeply nested list."""
        r = self.rng
        return r.choice(
            [
                self.leaf,
                self.leaf,
                self.leaf,
                lambda: [self.leaf() for _ in range(r.randint(0, 5))],
                lambda: {self.text(8): self.leaf() for _ in range(r.randint(0, 5))},
                lambda: {"a": {"b": [1, {"c": [None, {"d": self.leaf()}]}]}},
                lambda: self.nested(r.randint(10, 400)),
            ]
        )()

    @staticmethod
    def nested(depth: int) -> Any:
        value: Any = 1
        for _ in range(depth):
            value = [value]
        return value

    def image(
        self, name: str, width: int, height: int, order: str | None = None, dtype: str = "uint8"
    ) -> tuple[dict, bytes]:
        """A consistent (descriptor, buffer) pair of random pixels."""
        order = order or self.rng.choice(list(ORDERS))
        size = width * height * ORDERS[order] * (4 if dtype == "float32" else 1)
        return spec(name, width, height, order, dtype), self.rng.randbytes(size)

    def request(self, request_id: Any, op: Any, params: Any = None, images: list | None = None, **extra: Any) -> dict:
        header = {
            "v": PROTOCOL_VERSION,
            "id": request_id,
            "op": op,
            "params": {} if params is None else params,
            **extra,
        }
        if images is not None:
            header["images"] = images
        return header

    def base_request(self, request_id: str) -> tuple[dict, list[bytes]]:
        """A well-formed request that the daemon answers without a trained model, and its buffers."""
        r = self.rng
        choice = r.randrange(5)
        if choice == 0:
            return self.request(request_id, r.choice(QUICK_OPS)), []
        if choice == 1:
            return self.request(request_id, "get_model", {"model": MISSING_MODEL}), []
        if choice == 2:
            return self.request(request_id, "generate", {"model": MISSING_MODEL, "n": 2, "seed": 7, "width": 64}), []
        if choice == 3:
            return self.request(request_id, "cancel", {"job": "j999999"}), []
        desc, buffer = self.image("image", r.randint(1, 19), r.randint(1, 19))
        return self.request(request_id, "train", {"name": "fuzz", "preset": "tiny"}, [desc]), [buffer]

    # -- the kinds ----------------------------------------------------------------------------

    def random_bytes(self, request_id: str):
        r = self.rng
        frames = [r.randbytes(r.randint(0, 300))]
        frames += [r.randbytes(r.randint(0, 64)) for _ in range(r.choice([0, 0, 1, 3]))]
        return frames, None

    def header_not_a_map(self, request_id: str):
        valid, _ = self.base_request(request_id)
        value = self.rng.choice(
            [
                [],
                [1, 2, 3],
                [valid],
                0,
                -1,
                2**64 - 1,
                "hello",
                "",
                None,
                True,
                1.5,
                b"\x00\x01",
                self.text(),
            ]
        )
        return [pack(value)], {"code": "invalid_request", "field": "header"}

    def missing_field(self, request_id: str):
        header, buffers = self.base_request(request_id)
        for key in self.rng.sample(["v", "id", "op", "params"], self.rng.randint(1, 2)):
            del header[key]
        return [pack(header), *buffers], None

    def wrong_version(self, request_id: str):
        header, buffers = self.base_request(request_id)
        header["v"] = self.rng.choice([0, 2, 3, -1, 255, 2**40, "1", "v1", None, [1], {"v": 1}, 0.5, b"\x01"])
        if self.rng.random() < 0.2:
            header["op"] = "shutdown"  # must not stop the daemon
        return [pack(header), *buffers], {"code": "unsupported_version", "field": "v"}

    def unknown_op(self, request_id: str):
        op = self.rng.choice(
            [
                "",
                "HELLO",
                "hello ",
                " hello",
                "Hello",
                "_op_hello",
                "op_hello",
                "__init__",
                "__class__",
                "stop",
                "run",
                "exec",
                "generate\x00",
                "train/../hello",
                "list-models",
                self.text(),
                5,
                None,
                [],
                {},
                True,
            ]
        )
        return [pack(self.request(request_id, op))], {"code": "invalid_request", "field": "op"}

    def bad_params(self, request_id: str):
        """A job or model op whose params have a junk value, an unknown key, or are not a map."""
        r = self.rng
        op = r.choice([*MODEL_OPS, "train", "super_resolve", "cancel"])
        fields = {
            "get_model": ["model"],
            "delete_model": ["model"],
            "cancel": ["job"],
            "generate": [
                "model",
                "n",
                "seed",
                "scale_h",
                "scale_w",
                "width",
                "height",
                "gen_start_scale",
                "padding",
                "output_order",
            ],
            "harmonize": ["model", "scale", "seed", "noise", "output_order"],
            "edit": ["model", "scale", "seed", "noise", "output_order"],
            "paint2image": ["model", "scale", "seed", "noise", "quantize", "colors", "output_order"],
            "animate": ["model", "frames", "start_scale", "alpha", "beta", "seed", "output_order"],
            "train": ["name", "preset", "padding", "max_size", "seed"],
            "super_resolve": ["factor", "preset", "name", "output_order"],
        }[op]
        params: Any = {"model": MISSING_MODEL} if op in MODEL_OPS else {"name": "fuzz"} if op == "train" else {}
        if op == "cancel":
            params = {"job": "j999999"}
        mode = r.random()
        if mode < 0.75:
            for key in r.sample(fields, r.randint(1, min(3, len(fields)))):
                params[key] = (
                    self.junk() if r.random() < 0.7 else r.choice([-1, -(2**63), 2**64 - 1, 10**9, 0, 65, 8193])
                )
        elif mode < 0.9:
            params[r.choice(["bogus", "N", "model_", "__class__", "images", ""])] = self.leaf()
        else:
            params = r.choice([[], ["model", MISSING_MODEL], "model", 0, None, True, b"params"])
        images: list[dict] = []
        buffers: list[bytes] = []
        needs = {
            "train": ["image"],
            "super_resolve": ["image"],
            "paint2image": ["image"],
            "harmonize": ["image", "mask"],
            "edit": ["image", "mask"],
        }
        for name in needs.get(op, []):  # too small to train on, so a valid-by-chance training is rejected
            desc, buffer = self.image(name, r.randint(1, 12), r.randint(1, 12))
            images.append(desc)
            buffers.append(buffer)
        return [pack(self.request(request_id, op, params, images)), *buffers], None

    def bad_image_descriptor(self, request_id: str):
        """A train request whose one image descriptor, buffer or frame count is wrong."""
        r = self.rng
        desc, buffer = self.image("image", r.randint(1, 12), r.randint(1, 12))
        descs: Any = [desc]
        buffers = [buffer]
        expect: dict | None = {"code": "invalid_request"}
        mutation = r.randrange(14)
        if mutation == 0:
            desc[r.choice(["width", "height"])] = r.choice(
                [0, -1, -(2**63), 2**64 - 1, 2**40, 1.5, "4", None, [4], {"w": 4}, True]
            )
        elif mutation == 1:
            desc["order"] = r.choice(["CMYK", "rgb", "", "BGR", None, 3, ["RGB"], {"RGB": 3}, b"RGB"])
        elif mutation == 2:
            desc["dtype"] = r.choice(["uint16", "float64", "int8", "", None, 1, ["uint8"], {"uint8": 1}, b"uint8"])
        elif mutation == 3:  # a channel count that does not match the order
            desc["channels"] = r.choice(
                [c for c in (0, 1, 2, 3, 4, 5, -3, 2**40) if c != desc["channels"]] + ["3", [3], None, 3.5]
            )
        elif mutation == 4:
            desc["name"] = r.choice(["", "x" * 33, 5, None, ["image"], b"image"])
        elif mutation == 5:
            del desc[r.choice(["name", "width", "height", "order"])]
        elif mutation == 6:
            descs = [r.choice(["image", 5, None, [], b"spec", [desc]])]
        elif mutation == 7:  # the buffer does not match the descriptor
            buffers = [r.choice([b"", buffer[:-1], buffer + b"\x00", buffer * 2])]
            expect = {"code": "invalid_request", "field": "images[0]"}
        elif mutation == 8:  # more buffer frames than described
            buffers += [r.randbytes(r.randint(0, 40)) for _ in range(r.randint(1, 3))]
            expect = {"code": "invalid_request", "field": "images"}
        elif mutation == 9:  # fewer buffer frames than described
            buffers = []
            expect = {"code": "invalid_request", "field": "images"}
        elif mutation == 10:
            descs = r.choice([{"0": desc}, "image", 7, b"images", None])
        elif mutation == 11:  # consistent, but over the side limit
            side = r.randint(MAX_IMAGE_SIDE + 1, MAX_IMAGE_SIDE + 100)
            width, height = (side, 1) if r.random() < 0.5 else (1, side)
            desc, buffer = self.image("image", width, height, "GRAY")
            descs, buffers = [desc], [buffer]
            expect = {"code": "too_large", "field": "images[0]"}
        elif mutation == 12:  # a float32 image whose buffer was sized for uint8
            desc["dtype"] = "float32"
            expect = {"code": "invalid_request", "field": "images[0]"}
        else:  # huge dimensions with a small buffer
            desc["width"], desc["height"] = r.choice([(2**31, 2**31), (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), (2**62, 1)])
            expect = {"code": "invalid_request", "field": "images[0]"}
        header = self.request(
            request_id, r.choice(["train", "super_resolve"]), {"name": "fuzz", "preset": "tiny"}, descs
        )
        return [pack(header), *buffers], expect

    def wrong_image_names(self, request_id: str):
        """Well-formed (small) images, named as another op would want them."""
        r = self.rng
        op = r.choice(
            ["generate", "animate", "train", "super_resolve", "harmonize", "edit", "paint2image", "hello", "jobs"]
        )
        names = r.choice(
            [
                [],
                ["image"],
                ["mask"],
                ["image", "mask"],
                ["image", "image"],
                ["sample"],
                ["preview", "image"],
                ["IMAGE"],
            ]
        )
        params = {"model": MISSING_MODEL} if op in MODEL_OPS else {"name": "fuzz"} if op == "train" else {}
        descs, buffers = [], []
        for name in names:  # too small to train on, so correct names still end in an error
            desc, buffer = self.image(name, r.randint(1, 8), r.randint(1, 8))
            descs.append(desc)
            buffers.append(buffer)
        return [pack(self.request(request_id, op, params, descs)), *buffers], None

    def bad_model_id(self, request_id: str):
        """Model ids that are not slugs (paths above all): refused before any path is built."""
        r = self.rng
        model = r.choice(
            [
                "../x",
                "a/b",
                "..",
                ".",
                "/etc/passwd",
                "..\\x",
                "a\\b",
                "models/../x",
                "~",
                "~/x",
                "a\x00b",
                "",
                "x" * 65,
                "x" * r.randint(66, 20000),
                "Model",
                " x",
                "x ",
                "-x",
                "_x",
                "ä",
                "a b",
                "a:b",
                "%2e%2e",
            ]
        )
        op = r.choice(MODEL_OPS)
        return [pack(self.request(request_id, op, {"model": model}))], {
            "code": "invalid_request",
            "field": "params.model",
        }

    def long_strings(self, request_id: str):
        r = self.rng
        choice = r.randrange(5)
        if choice == 0:  # an id over 64 characters: refused, and not echoed
            return [pack(self.request("i" * r.randint(65, 3000), "hello"))], {"code": "invalid_request", "field": "id"}
        if choice == 1:  # a header over MAX_HEADER_BYTES
            return [pack(self.request(request_id, "hello", token="t" * (MAX_HEADER_BYTES + r.randint(0, 1000))))], {
                "code": "too_large"
            }
        if choice == 2:
            return [pack(self.request(request_id, "x" * r.randint(100, 50000)))], {
                "code": "invalid_request",
                "field": "op",
            }
        if choice == 3:
            return [pack(self.request(request_id, "hello", token="t" * r.randint(257, 5000)))], {
                "code": "invalid_request",
                "field": "token",
            }
        desc, buffer = self.image("image", 4, 4)
        header = self.request(request_id, "train", {"name": "n" * r.randint(65, 20000), "preset": "tiny"}, [desc])
        return [pack(header), buffer], {"code": "invalid_request", "field": "params.name"}

    def too_small_to_train(self, request_id: str):
        """train and super_resolve of a consistent image with a side under every preset's min_size."""
        r = self.rng
        short, long = r.randint(1, 19), r.randint(1, 256)
        width, height = (short, long) if r.random() < 0.5 else (long, short)
        desc, buffer = self.image("image", width, height, dtype=r.choice(["uint8", "uint8", "float32"]))
        preset = r.choice(["tiny", "draft", "paper"])
        if r.random() < 0.7:
            params = {
                "name": self.text(20) or "x",
                "preset": preset,
                "max_size": r.choice([None, 32, 1024]),
                "seed": r.randint(0, 99),
            }
            op = "train"
        else:
            params = {"preset": preset, "factor": r.choice([1.25, 2.0, 4, 16])}
            op = "super_resolve"
        return [pack(self.request(request_id, op, params, [desc])), buffer], {
            "code": "invalid_request",
            "field": "images[0]",
        }

    def ext_types(self, request_id: str):
        """msgpack ext types anywhere in the header: refused by the decoder (nothing is built from them)."""
        r = self.rng
        header, buffers = self.base_request(request_id)
        ext = r.choice(
            [
                msgpack.ExtType(r.randint(0, 127), r.randbytes(r.randint(0, 16))),
                msgpack.Timestamp(r.randint(0, 2**32), r.randint(0, 999_999_999)),  # the predefined ext type -1
            ]
        )
        where = r.randrange(3)
        if where == 0:
            header["x"] = ext
        elif where == 1:
            header["params"] = dict(header["params"], seed=ext)
        else:
            header["id"] = ext
        frame = pack(header)
        return [frame, *buffers], {"code": "invalid_request", "field": "header"}

    def odd_msgpack(self, request_id: str):
        """msgpack the strict decoder refuses or that is merely odd: non-string keys, bytes keys,
        big arrays, truncation, trailing bytes."""
        r = self.rng
        header, buffers = self.base_request(request_id)
        choice = r.randrange(5)
        if choice == 0:
            frame = pack({**header, r.choice([1, -1, 2.5]): "x"})
        elif choice == 1:  # bytes keys only: no "v" a str key could find
            frame = pack({k.encode(): v for k, v in header.items()})
        elif choice == 2:  # arrays at and over the decoder's 4096 elements
            params = {"model": MISSING_MODEL, "n": list(range(r.choice([4096, 4097, 5000])))}
            frame, buffers = pack(self.request(request_id, "generate", params)), []
        elif choice == 3:
            whole = pack(header)
            frame = whole[: r.randint(0, len(whole) - 1)]
        else:
            frame = pack(header) + r.randbytes(r.randint(1, 8))
        return [frame, *buffers], None

    def deep_nesting(self, request_id: str):
        """A list nested about 1,000 deep (just within msgpack's stack, deeper than ``repr`` can
        go) or beyond it, in a field whose error message shows the value."""
        r = self.rng
        depth = r.randint(990, 1021) if r.random() < 0.8 else r.randint(1022, 5000)
        desc, buffer = self.image("image", 4, 4)
        header = self.request(request_id, "train", {"name": "fuzz", "preset": "tiny"}, [desc])
        where = r.choice(
            ["v", "op", "id", "token", "params.seed", "images.order", "images.dtype", "images.channels", "images.width"]
        )
        if where.startswith("params."):
            header["params"][where[7:]] = DEEP
        elif where.startswith("images."):
            desc[where[7:]] = DEEP
        else:
            header[where] = DEEP
        frame = pack(header).replace(pack(DEEP), b"\x91" * depth + b"\xc0")
        return [frame, buffer], None

    def strictness(self, request_id: str):
        """What the strict decoder refuses (issue 15): duplicate map keys (``op: hello`` then
        ``op: shutdown`` must not shut down), ``v`` true or 1.0, bin ``id``/``token``, client
        strings with line breaks (answered on one line), and maps nested about 1,000 deep."""
        r = self.rng
        header, buffers = self.base_request(request_id)
        choice = r.randrange(6)
        if choice == 0:
            where = header if r.random() < 0.6 else header["params"]
            key, value = ("op", "shutdown") if where is header else (r.choice([*where, "x"]), r.choice([1, "x", None]))
            pairs = [*where.items(), (key, value)] if key in where else [*where.items(), (key, value), (key, value)]
            raw = b"\xde" + len(pairs).to_bytes(2, "big") + b"".join(pack(k) + pack(v) for k, v in pairs)
            frame = pack(header).replace(pack(where), raw) if where is not header else raw
            return [frame, *buffers], {"code": "invalid_request", "field": "header"}
        if choice == 1:
            header["v"] = r.choice([True, 1.0])
            return [pack(header), *buffers], {"code": "unsupported_version", "field": "v"}
        if choice == 2:
            header["id"] = request_id.encode()
            return [pack(header), *buffers], {"code": "invalid_request", "field": "id"}
        if choice == 3:
            header["token"] = r.randbytes(r.randint(0, 20))
            return [pack(header), *buffers], {"code": "invalid_request", "field": "token"}
        if choice == 4:
            evil = r.choice(["a\nINJECTED: fake", "x\r\nINJECTED: fake", "\x1b[2J\nINJECTED"])
            spot = r.randrange(4)
            if spot == 0:
                header["op"] = evil
            elif spot == 1:
                header["params"][evil] = 1
            elif spot == 2:
                header["params"] = {"model": evil}
                header["op"] = "get_model"
            else:
                desc, buffer = self.image(evil[:32], 4, 4)
                header, buffers = self.request(request_id, "train", {"name": evil, "preset": "tiny"}, [desc]), [buffer]
            return [pack(header), *buffers], None
        depth = r.randint(900, 1021) if r.random() < 0.8 else r.randint(1022, 3000)
        header["x"] = DEEP
        frame = pack(header).replace(pack(DEEP), b"\x81\xa1a" * depth + b"\xc0")
        return [frame, *buffers], None

    def valid(self, request_id: str):
        """Controls: well-formed requests (answered with a result, or not_found for the missing model)."""
        header, buffers = self.base_request(request_id)
        return [pack(header), *buffers], None


# ----------------------------------------------------------------------------- checks


def answer_of(peer: RawPeer, case: Case, jobs_accepted: set[str]) -> dict:
    """Send ``case`` and return the header of its answer, skipping late replies of jobs accepted earlier."""
    peer.send(case.frames)
    deadline = time.monotonic() + REPLY_TIMEOUT
    while True:
        frames = peer.recv(deadline - time.monotonic())
        assert frames is not None, f"{case}: no reply within {REPLY_TIMEOUT} s"
        header = msgpack.unpackb(frames[0], raw=False)
        if header.get("id") in jobs_accepted and header.get("type") != "accepted":
            continue
        return header


def check_answer(case: Case, header: dict) -> None:
    """An error reply with a structured, known code (or a result/accepted for a valid message),
    echoing the request id when it could be read."""
    assert isinstance(header, dict), f"{case}: the reply header is not a map: {header!r}"
    expected_id = readable_id(case.frames[0])
    kind = header.get("type")
    if kind in ("result", "accepted"):
        assert case.expect is None, f"{case}: expected an error {case.expect}, got {header}"
        assert header.get("id") == expected_id and expected_id is not None, f"{case}: reply id {header.get('id')!r}"
        return
    assert kind == "error", f"{case}: reply type {kind!r}: {header}"
    assert header.get("images") == [], f"{case}: an error reply carries no images: {header}"
    Error.model_validate(
        {k: v for k, v in header.items() if k != "images"}
    )  # {type, v, id, job, error: {code, message, field}}
    error = header["error"]
    assert error["code"] in ERROR_CODES and isinstance(error["message"], str) and error["message"], f"{case}: {error}"
    assert error["code"] != "internal", f"{case}: a malformed request hit a daemon bug: {error['message']}"
    for text in (error["message"], error.get("field") or ""):
        assert "\n" not in text and "\r" not in text and "\x1b" not in text, f"{case}: not one line: {error}"
    assert header["id"] == expected_id, (
        f"{case}: error id {header['id']!r}, the request's id is {expected_id!r}: {error}"
    )
    for key, value in (case.expect or {}).items():
        assert error[key] == value, f"{case}: expected {key} {value!r}, got {error}"


def wait_for_event(monitor: zmq.Socket, event: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if monitor.poll(int(left * 1000)) and recv_monitor_message(monitor)["event"] == event:
            return
    raise AssertionError(f"no socket event {zmq.Event(event).name} within {timeout} s")


def assert_dropped_without_reply(endpoint: str) -> None:
    """A message with a frame over MAX_MESSAGE_BYTES: ZeroMQ drops the connection, nothing answers."""
    peer = RawPeer(endpoint, zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
    try:
        wait_for_event(peer.monitor, zmq.EVENT_HANDSHAKE_SUCCEEDED, 10)
        header = pack({"v": PROTOCOL_VERSION, "id": "oversize", "op": "hello", "params": {}})
        peer.socket.send_multipart([header, bytes(MAX_MESSAGE_BYTES + 1)], copy=False)  # zero pages: no real memory
        wait_for_event(peer.monitor, zmq.EVENT_DISCONNECTED, 30)
        assert peer.recv(1.0) is None, "the daemon answered a message over MAX_MESSAGE_BYTES"
    finally:
        peer.close()


# ----------------------------------------------------------------------------- tests


def test_fuzzed_messages_get_structured_errors(start_daemon):
    """1,000 seeded malformed messages (plus one over the size limit) never stop or hang the daemon:
    each gets, within 5 s, an ``error`` with a known code (never ``internal``), the expected code
    and field where the kind of damage fixes them, and the request's id whenever it could be read;
    a frame over MAX_MESSAGE_BYTES is dropped with its connection and no reply. Afterwards the
    daemon serves hello and list_models, has created no model, and is still running."""
    daemon = start_daemon()
    assert_dropped_without_reply(daemon.endpoint)

    fuzzer, peer, accepted = Fuzzer(SEED), RawPeer(daemon.endpoint), set()
    kinds: dict[str, int] = {}
    try:
        for index in range(FUZZ_MESSAGES):
            case = fuzzer.case(index)
            kinds[case.kind] = kinds.get(case.kind, 0) + 1
            header = answer_of(peer, case, accepted)
            check_answer(case, header)
            if header.get("type") == "accepted":
                accepted.add(header["id"])
            assert daemon.proc.poll() is None, f"{case}: the daemon exited with {daemon.proc.returncode}"
    finally:
        peer.close()
    assert len(kinds) == len(fuzzer.kinds), f"every kind of damage was sent: {kinds}"

    with daemon.client(timeout=5.0, retries=1) as client:
        assert client.hello()["protocol_version"] == PROTOCOL_VERSION
        assert client.list_models() == []
    assert daemon.proc.poll() is None
    assert not [line for line in daemon.log.read_text().splitlines() if "INJECTED" in line.split(":", 1)[0]], (
        "a client string broke a log line"
    )


CLIENTS, REQUESTS_PER_CLIENT = 8, 20
WIDTH, HEIGHT = 64, 48


def seeds_of(client_index: int) -> list[int]:
    """Client c asks for seeds 10c .. 10c+19: neighbours share ten seeds, so results can be compared."""
    return [10 * client_index + j for j in range(REQUESTS_PER_CLIENT)]


@pytest.mark.slow
def test_concurrent_clients_each_get_their_own_results(start_daemon, shared_images):
    """8 threads, each with its own Client, submit 20 generate requests each before waiting for any:
    all 160 results arrive, each job ends exactly once with one image of the requested size, the
    daemon gives 160 distinct job ids, and results depend on the seed alone — the same seed from two
    clients gives identical pixels, different seeds give different pixels. A short client timeout
    makes the clients probe the daemon (``jobs``) while their jobs wait in the queue."""
    daemon = start_daemon()
    with daemon.client(timeout=10.0) as client:
        trained = client.submit(
            "train", {"name": "chelsea", "preset": "tiny"}, [wire_image(shared_images / TRAIN_IMAGE)]
        ).wait(timeout=600)
    model = trained["model"]["id"]
    start = threading.Barrier(CLIENTS)

    def run_client(index: int) -> list[tuple[int, Any, int]]:
        """Submit all requests, then wait for all; returns (seed, job, on_done calls) per request."""
        done_calls: dict[str, int] = {}

        def on_done(job) -> None:
            done_calls[job.request_id] = done_calls.get(job.request_id, 0) + 1

        with daemon.client(timeout=2.0, retries=3) as client:
            start.wait(timeout=30)
            jobs = [
                (
                    seed,
                    client.submit(
                        "generate",
                        {"model": model, "n": 1, "seed": seed, "width": WIDTH, "height": HEIGHT},
                        on_done=on_done,
                    ),
                )
                for seed in seeds_of(index)
            ]
            for _, job in jobs:
                job.wait(timeout=300)
            client.poll(0.3)  # a second final reply, or a reply meant for another client, would arrive now
            stray = [
                header for header, _ in client._replies.values() if header.get("job") is not None
            ]  # unmatched job replies
            assert not stray, f"client {index}: job replies that match none of its open jobs: {stray}"
            return [(seed, job, done_calls.get(job.request_id, 0)) for seed, job in jobs]

    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = [item for result in pool.map(run_client, range(CLIENTS)) for item in result]

    assert len(outcomes) == CLIENTS * REQUESTS_PER_CLIENT
    pixels_by_seed: dict[int, set[bytes]] = {}
    for seed, job, calls in outcomes:
        assert calls == 1 and job.error is None, f"seed {seed}: {calls} final replies, error {job.error}"
        assert job.result["model"] == model and job.params["seed"] == seed
        assert [(i.name, i.width, i.height, i.order) for i in job.images] == [("sample", WIDTH, HEIGHT, "RGB")]
        assert len(job.images[0].data) == WIDTH * HEIGHT * 3
        pixels_by_seed.setdefault(seed, set()).add(bytes(job.images[0].data))
    assert len({job.id for _, job, _ in outcomes}) == len(outcomes), "every request got its own job id"
    assert all(len(pixels) == 1 for pixels in pixels_by_seed.values()), "the same seed gave different pixels"
    shared = [seed for seed in pixels_by_seed if sum(s == seed for s, _, _ in outcomes) == 2]
    assert len(shared) == 70
    distinct = {next(iter(pixels)) for pixels in pixels_by_seed.values()}
    assert len(distinct) == len(pixels_by_seed), "different seeds gave identical pixels"
    assert daemon.proc.poll() is None


def free_port() -> int:
    """A loopback TCP port nothing listens on (bound and released at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_client_without_daemon_raises_unavailable():
    """A client pointed at a port where no daemon runs fails with DaemonUnavailable instead of
    hanging: within 10x its timeout x retries (measured: 1.0 s)."""
    client = Client(f"tcp://127.0.0.1:{free_port()}", timeout=0.5, retries=2)
    started = time.monotonic()
    try:
        with pytest.raises(DaemonUnavailable) as info:
            client.hello()
    finally:
        client.close()
    elapsed = time.monotonic() - started
    assert info.value.code == "unavailable"
    assert elapsed < 10 * 0.5 * 2, f"took {elapsed:.1f} s"


def test_job_fails_unavailable_when_daemon_is_killed(start_daemon, shared_images):
    """A job in flight when its daemon is SIGKILLed ends, through JobHandle.wait(), in DaemonError code
    ``unavailable``, never a hang: within 10x timeout x (retries + 1) (one silent timeout before the
    first probe, then ``retries`` unanswered probes; measured: about 3 s). Training is only started,
    not awaited."""
    daemon = start_daemon()
    timeout, retries = 1.0, 2
    with daemon.client(timeout=timeout, retries=retries) as client:
        job = client.submit("train", {"name": "doomed", "preset": "tiny"}, [wire_image(shared_images / TRAIN_IMAGE)])
        deadline = time.monotonic() + 30
        while job.id is None and not job.done:
            assert time.monotonic() < deadline, "the training was never accepted"
            client.poll(0.1)
        assert job.id is not None and not job.done, f"the job should be running: {job.error}"
        daemon.kill()
        killed = time.monotonic()
        with pytest.raises(DaemonError) as info:
            job.wait(timeout=10 * timeout * (retries + 1))
        elapsed = time.monotonic() - killed
    assert info.value.code == "unavailable", info.value
    assert elapsed < 10 * timeout * (retries + 1), f"took {elapsed:.1f} s"


# --------------------------------------------------------------------------- endpoints (issue 15)


@pytest.mark.parametrize(
    ("endpoint", "accepted"),
    [
        ("tcp://127.0.0.1:*", True),
        ("tcp://127.0.0.2:5557", True),
        ("tcp://localhost:5557", True),
        ("tcp://[::1]:5557", True),
        ("tcp://[::ffff:127.0.0.1]:5557", True),
        ("ipc:///tmp/singan.sock", True),
        ("tcp://127.0.0.1:49659;0.0.0.0:49660", False),
        ("tcp://127.0.0.1;0.0.0.0:49660", False),
        ("tcp://0.0.0.0:5557", False),
        ("tcp://[::ffff:0.0.0.0]:5557", False),
        ("tcp://*:5557", False),
        ("tcp://[::]:5557", False),
        ("tcp://lo:5557", False),
        ("tcp://eth0:5557", False),
        ("tcp://example.org:5557", False),
        ("tcp://user@127.0.0.1:5557", False),
        ("tcp://127.0.0.1", False),
    ],
)
def test_endpoint_forms_without_allow_remote(endpoint, accepted):
    from daemon.endpoint import check_endpoint

    if accepted:
        check_endpoint(endpoint, allow_remote=False, token=None)
    else:
        with pytest.raises(ValueError, match=r"^endpoint: ") as err:
            check_endpoint(endpoint, allow_remote=False, token=None)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("tcp://127.0.0.1:0", True),
        ("tcp://[::ffff:127.0.0.1]:0", True),
        ("tcp://localhost:0", True),
        ("tcp://[::1]:0", True),
        ("tcp://0.0.0.0:0", False),
        ("tcp://*:0", False),
    ],
)
def test_the_address_libzmq_bound_is_checked_and_printed_as_serve_accepts_it(endpoint, loopback):
    from daemon.endpoint import check_bound, check_endpoint, display_endpoint

    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.IPV6, 1)  # as the daemon does
    try:
        router.bind(endpoint)
        bound = router.getsockopt_string(zmq.LAST_ENDPOINT)
    finally:
        router.close(linger=0)
    if loopback:
        check_bound(bound, allow_remote=False)
        check_endpoint(display_endpoint(bound), allow_remote=False, token=None)
    else:
        with pytest.raises(ValueError, match=r"^endpoint: ZeroMQ bound "):
            check_bound(bound, allow_remote=False)
        check_bound(bound, allow_remote=True)


@pytest.mark.parametrize("token", ["", " " * 20, "\t\n", "fifteen-chars!!"])
def test_weak_tokens_are_refused(token):
    from daemon.endpoint import check_endpoint

    with pytest.raises(ValueError, match=r"^token: must have at least 16 characters"):
        check_endpoint("tcp://0.0.0.0:5557", allow_remote=True, token=token)
    check_endpoint("tcp://0.0.0.0:5557", allow_remote=True, token="sixteen-chars!!!")


# --------------------------------------------------------------------------- thread policy (issue 15)


def test_worker_threads_leave_a_core_to_the_host_app(monkeypatch):
    from singan_core.device import shared_machine_threads, usable_cores

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert shared_machine_threads() == max(1, usable_cores() - 1)
    assert shared_machine_threads(3) == 3  # --threads wins
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert shared_machine_threads() == 5 and shared_machine_threads(2) == 2
    with pytest.raises(ValueError, match="^threads: "):
        shared_machine_threads(0)
