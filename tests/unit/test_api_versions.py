"""The version a request is answered with (fooddispatch/versions.py), and the downgrades it gets."""

from __future__ import annotations

import pytest

from fooddispatch.versions import CURRENT, HEADER, KNOWN, VERSIONS, ApiVersionUnknown, downgrades, requested_version
from kernel.http import STAFF, Principal
from orders.messages import OrderPage


def _key(pin: str | None) -> Principal:
    return Principal(account_id="key_1", role=STAFF, tenant_id="ten_1", via="api_key", api_version=pin)


def test_the_header_wins_then_the_keys_pin_then_the_current_version() -> None:
    assert requested_version(f" {KNOWN[0]} ", _key(CURRENT)) == KNOWN[0]
    assert requested_version(None, _key(KNOWN[0])) == KNOWN[0]
    assert requested_version(None, _key(None)) == CURRENT
    assert requested_version(None, None) == CURRENT


def test_a_pin_this_release_does_not_know_moves_to_the_first_known_version_after_it() -> None:
    assert requested_version(None, _key("2026-11-15")) == "2026-12-07"
    assert requested_version(None, _key("2099-01-01")) == CURRENT


def test_an_unknown_header_names_the_known_versions() -> None:
    with pytest.raises(ApiVersionUnknown) as refused:
        requested_version("2026-12-08", None)
    assert (refused.value.status, refused.value.param, refused.value.extra) == (
        400, HEADER, {"known_versions": list(KNOWN)})


def test_versions_are_dated_and_in_release_order() -> None:
    assert list(KNOWN) == sorted(KNOWN) and len(set(KNOWN)) == len(KNOWN)
    assert all(len(v.name) == 10 and v.name[4] == v.name[7] == "-" for v in VERSIONS)


def test_an_old_version_gets_every_newer_downgrade_and_the_current_none() -> None:
    assert downgrades(CURRENT, OrderPage) == []
    steps = downgrades(KNOWN[0], OrderPage)
    assert len(steps) == 1
    page = {"items": [], "next_cursor": None, "has_more": False}
    assert steps[0](page) == {"items": [], "next_cursor": None}
    assert downgrades(KNOWN[0], dict) == []  # a response no change names
