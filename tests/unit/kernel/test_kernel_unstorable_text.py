"""The one rule for text PostgreSQL cannot store, in the shared decoding, and the id shape cursors
and path ids are checked against."""

from __future__ import annotations

import re

import msgspec
import pytest

from kernel.errors import InvalidJson, ValidationFailed
from kernel.http import decode_json, unstorable_path
from kernel.ids import id_pattern, new_id


class Line(msgspec.Struct):
    name: str
    tags: list[str] = []


class Cart(msgspec.Struct):
    address: str
    lines: list[Line] = []
    metadata: dict[str, str] = {}


@pytest.mark.parametrize(("raw", "param"), [
    (b'{"address": "Torstr.\\u0000 1"}', "address"),
    (b'{"address": "a", "lines": [{"name": "ok"}, {"name": "x", "tags": ["v", "\\u0000"]}]}', "lines[1].tags[1]"),
    (b'{"address": "a", "metadata": {"k\\u0000": "v"}}', "metadata.k?"),
])
def test_a_nul_anywhere_in_a_body_is_422_naming_the_field(raw: bytes, param: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_json(raw, Cart)
    assert caught.value.param == param
    assert "\x00" not in caught.value.message + (caught.value.param or "")


def test_an_escaped_backslash_before_u0000_is_ordinary_text() -> None:
    assert decode_json(b'{"address": "C:\\\\u0000"}', Cart).address == "C:\\u0000"


def test_lone_surrogates_and_invalid_utf8_never_decode() -> None:
    for raw in (b'{"address": "\\ud800"}', b'{"address": "\xff"}'):
        with pytest.raises(InvalidJson):
            decode_json(raw, Cart)


def test_unstorable_path_finds_surrogates_too() -> None:
    assert unstorable_path({"a": ["ok", "x\udcff"]}) == "a[1]"
    assert unstorable_path("\x00") == ""
    assert unstorable_path({"a": ["ok", "🍔 e\u0301"]}) is None


def test_id_pattern_matches_exactly_the_ids_new_id_makes() -> None:
    order = new_id("ord")
    assert re.match(id_pattern("ord"), order)
    assert re.match(id_pattern(), order)
    assert not re.match(id_pattern("sto"), order)
    for wrong in ("ord_", "ord_x", order + "0", order.lower(), order[:-1] + "U", "garbage!"):
        assert not re.match(id_pattern("ord"), wrong)
