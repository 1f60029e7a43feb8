"""The wire and schema layers without sockets: encode/decode/parse round trips and the strict
decoder's refusals (duplicate keys, bool/float ``v``, bin ``id``/``token``, one-line messages)."""

from __future__ import annotations

import msgpack
import pytest

from protocol import PROTOCOL_VERSION
from protocol.schema import REQUESTS, CancelResult, Error, ErrorInfo, GenerateRequest, Progress, Result, parse_request
from protocol.wire import Image, ProtocolError, decode, decode_header, encode, one_line


def _image(name: str = "image", width: int = 3, height: int = 2, order: str = "RGB", dtype: str = "uint8") -> Image:
    size = {"uint8": 1, "float32": 4}[dtype] * width * height * {"GRAY": 1, "RGB": 3, "RGBA": 4, "BGRA": 4}[order]
    return Image(name, width, height, order, bytes(i % 251 for i in range(size)), dtype)


def _request(op: str = "hello", **fields) -> dict:
    return {"v": PROTOCOL_VERSION, "id": "r1", "op": op, "params": {}, **fields}


@pytest.mark.parametrize("order", ["GRAY", "RGB", "RGBA", "BGRA"])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_encode_decode_round_trip(order, dtype):
    images = [_image("image", 5, 3, order, dtype), _image("mask", 5, 3, "GRAY")]
    header, decoded = decode(encode(_request("harmonize", params={"model": "m"}), images))
    assert header["op"] == "harmonize" and header["params"] == {"model": "m"}
    assert [(i.name, i.width, i.height, i.order, i.dtype, bytes(i.data)) for i in decoded] == [
        (i.name, i.width, i.height, i.order, i.dtype, bytes(i.data)) for i in images
    ]


def test_every_request_model_parses_what_it_dumps():
    """A validated request dumped and parsed again is the same request (for each op)."""
    examples = {
        "get_model": {"model": "cat"},
        "delete_model": {"model": "cat"},
        "cancel": {"job": "j1-abcdef"},
        "train": {"name": "Cat"},
        "generate": {"model": "cat", "n": 2, "seed": 3},
        "harmonize": {"model": "cat"},
        "edit": {"model": "cat"},
        "paint2image": {"model": "cat"},
        "super_resolve": {"factor": 2.0},
        "animate": {"model": "cat"},
        "resume": {"model": "cat"},
    }
    for model in REQUESTS:
        op = model.model_fields["op"].annotation.__args__[0]
        names = model.required_images
        images = [_image(name, 24, 24, "GRAY" if name == "mask" else "RGB") for name in names]
        header, decoded = decode(encode(_request(op, params=examples.get(op, {})), images))
        request = parse_request(header, decoded)
        again = parse_request(decode_header(encode(request.model_dump(mode="json"), images)[0]), decoded)
        assert again == request and type(request) is model


def test_replies_round_trip():
    for reply in [
        Result(id="r1", data=CancelResult(job="j1-abcdef", cancelled=True)),
        Error(id=None, error=ErrorInfo(code="invalid_request", message="id: must be a str", field="id")),
        Progress(id="r1", job="j1-abcdef", phase="sampling", fraction=0.5),
    ]:
        header, _ = decode(encode(reply.model_dump(mode="json")))
        assert type(reply).model_validate({k: v for k, v in header.items() if k != "images"}) == reply


def test_duplicate_keys_are_refused_at_any_depth():
    top = b"\x84" + b"".join(msgpack.packb(x) for x in ("v", 1, "id", "r1", "op", "hello", "op", "shutdown"))
    with pytest.raises(ProtocolError, match=r"^header: duplicate map key 'op'$") as err:
        decode_header(top)
    assert err.value.field == "header"
    nested = msgpack.packb(_request("generate", params={"model": "a"})).replace(
        msgpack.packb({"model": "a"}),
        b"\x82" + msgpack.packb("model") + msgpack.packb("a") + msgpack.packb("model") + msgpack.packb("b"),
    )
    with pytest.raises(ProtocolError, match="duplicate map key 'model'"):
        decode_header(nested)


@pytest.mark.parametrize("v", [True, 1.0, "1", None, 2])
def test_version_must_be_the_integer_1(v):
    with pytest.raises(ProtocolError) as err:
        parse_request(_request(v=v), [])
    assert (err.value.code, err.value.field) == ("unsupported_version", "v")


@pytest.mark.parametrize("field", ["id", "token"])
def test_bin_id_and_token_are_refused_not_coerced(field):
    header = decode_header(msgpack.packb(_request(**{field: b"r1"}), use_bin_type=True))
    with pytest.raises(ProtocolError) as err:
        parse_request(header, [])
    assert (err.value.code, err.value.field) == ("invalid_request", field)


@pytest.mark.parametrize("evil", ["a\nINJECTED: fake", "b\r\nINJECTED", "\x1b[2J"])
def test_client_strings_are_escaped_to_one_line(evil):
    errors = []
    for header, images in [
        (_request(evil), []),
        (_request("hello", params={evil: 1}), []),
        (_request("get_model", params={"model": evil}), []),
        (_request("hello"), [_image(evil[:32])]),
    ]:
        with pytest.raises(ProtocolError) as err:
            parse_request(header, images)
        errors.append(err.value)
    for error in errors:
        assert "\n" not in error.message and "\r" not in error.message and "\x1b" not in error.message
        assert error.field is None or ("\n" not in error.field and "\x1b" not in error.field)
    assert one_line(one_line(evil)) == one_line(evil)


def test_generate_params_parse_with_defaults():
    request = parse_request(_request("generate", params={"model": "cat"}), [])
    assert isinstance(request, GenerateRequest) and request.params.model == "cat"
    params = request.params
    assert (params.n, params.scale_h, params.scale_w, params.width, params.height, params.gen_start_scale) == (
        1,
        1.0,
        1.0,
        None,
        None,
        0,
    )
