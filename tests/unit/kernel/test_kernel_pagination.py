"""The one cursor rule (kernel/pagination.py): a query's cursor of the wrong shape is 400
`cursor_invalid` naming it, whatever the list; any other bad query value stays 422."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest
from aiohttp.test_utils import make_mocked_request

from kernel.errors import ValidationFailed
from kernel.http import decode_query
from kernel.ids import new_id
from kernel.pagination import CursorInvalid, decode_opaque, encode_opaque, id_cursor


class Page(msgspec.Struct, forbid_unknown_fields=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20
    starting_after: Annotated[str, id_cursor("po")] | None = None


def _query(text: str) -> Page:
    return decode_query(make_mocked_request("GET", f"/v1/payouts?{text}"), Page)


def test_an_id_of_the_lists_kind_is_a_cursor() -> None:
    payout = new_id("po")
    assert _query(f"starting_after={payout}").starting_after == payout


@pytest.mark.parametrize("cursor", ["garbage", "", new_id("ord"), new_id("po") + "x", "po_" + "I" * 26])
def test_garbage_and_another_kinds_id_are_cursor_invalid(cursor: str) -> None:
    with pytest.raises(CursorInvalid) as refused:
        _query(f"starting_after={cursor}")
    assert (refused.value.status, refused.value.code, refused.value.param) == (400, "cursor_invalid", "starting_after")


def test_another_bad_parameter_is_still_a_validation_error() -> None:
    with pytest.raises(ValidationFailed) as refused:
        _query("limit=0")
    assert refused.value.param == "limit" and not isinstance(refused.value, CursorInvalid)


def test_an_opaque_cursor_carries_its_key_and_nothing_else_decodes() -> None:
    assert decode_opaque(encode_opaque([812.5, "sto_1"])) == [812.5, "sto_1"]
    for garbage in ("garbage", "!!", "x"):
        with pytest.raises(CursorInvalid):
            decode_opaque(garbage)
