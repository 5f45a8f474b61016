""""Sold out today", without servers: where the day ends in the store's timezone (DST nights included),
the ends a written menu gets, and how reads decide at their own instant."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest

from catalog.errors import ItemUnavailable
from catalog.menu import availability_at, index_menu, items_by_id, menu_at, prepare_menu, resolve_lines, settle_sold_out
from catalog.messages import CartLineInput, MenuIn
from catalog.model import next_local_midnight
from kernel.errors import ValidationFailed

BERLIN = ZoneInfo("Europe/Berlin")
_ids = itertools.count()


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids)}"


def menu(*items: dict) -> MenuIn:
    return prepare_menu(msgspec.convert({"categories": [{"name": "Main", "items": list(items)}]}, MenuIn), new_id)


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


@pytest.mark.parametrize(("sold_at", "day_ends"), [
    (berlin(2026, 6, 3, 22, 0), datetime(2026, 6, 3, 22, 0, tzinfo=UTC)),     # summer: 00:00 CEST
    (berlin(2026, 1, 13, 22, 0), datetime(2026, 1, 13, 23, 0, tzinfo=UTC)),   # winter: 00:00 CET
    # 2026-03-29 has 23 hours (02:00 -> 03:00): its midnight is 22:00 UTC, not its start + 24 h
    (berlin(2026, 3, 29, 22, 0), datetime(2026, 3, 29, 22, 0, tzinfo=UTC)),
    (berlin(2026, 3, 29, 0, 30), datetime(2026, 3, 29, 22, 0, tzinfo=UTC)),
    (berlin(2026, 3, 28, 22, 0), datetime(2026, 3, 28, 23, 0, tzinfo=UTC)),   # the night of the jump
    # 2026-10-25 has 25 hours (03:00 -> 02:00): its midnight is 23:00 UTC
    (berlin(2026, 10, 25, 22, 0), datetime(2026, 10, 25, 23, 0, tzinfo=UTC)),
    (berlin(2026, 10, 25, 0, 30), datetime(2026, 10, 25, 23, 0, tzinfo=UTC)),
    (berlin(2026, 10, 24, 22, 0), datetime(2026, 10, 24, 22, 0, tzinfo=UTC)),
    (berlin(2026, 6, 3, 0, 0), datetime(2026, 6, 3, 22, 0, tzinfo=UTC)),      # at midnight: the next one
])
def test_the_day_ends_at_the_next_local_midnight(sold_at: datetime, day_ends: datetime) -> None:
    ends = next_local_midnight(BERLIN, sold_at.astimezone(UTC))
    assert ends == day_ends and ends.tzinfo is UTC
    assert ends.astimezone(BERLIN).time().isoformat() == "00:00:00"
    assert ends.astimezone(BERLIN).date() == sold_at.date() + timedelta(days=1)


@pytest.mark.parametrize("day", [(2026, 3, 29), (2026, 10, 25), (2026, 6, 3)])
def test_sold_out_at_22_is_unavailable_at_23_59_and_back_at_midnight(day: tuple[int, int, int]) -> None:
    now = berlin(*day, 22, 0).astimezone(UTC)
    written = settle_sold_out(menu({"id": "itm_a", "name": "A", "price": 100, "availability": "sold_out"}),
                              {}, BERLIN, now)
    indexed = index_menu(written, 1, "EUR")
    cart = [CartLineInput("itm_a", 1)]
    for local in (berlin(*day, 22, 0), berlin(*day, 23, 59), berlin(*day, 23, 59, 59)):
        assert availability_at(indexed.items["itm_a"], local.astimezone(UTC)) == "sold_out"
        with pytest.raises(ItemUnavailable, match="sold out") as err:
            resolve_lines(indexed, cart, {}, at=local.astimezone(UTC))
        assert err.value.param == "lines[0].item_id"
    midnight = (berlin(*day, 12, 0) + timedelta(days=1)).replace(hour=0)
    [line] = resolve_lines(indexed, cart, {}, at=midnight.astimezone(UTC))
    assert line.line_total.amount == 100
    assert availability_at(indexed.items["itm_a"], midnight.astimezone(UTC)) == "in_stock"


def test_counted_stock_still_decides_after_the_day_ends() -> None:
    now = datetime(2026, 6, 3, 20, 0, tzinfo=UTC)
    indexed = index_menu(settle_sold_out(
        menu({"id": "itm_a", "name": "A", "price": 1, "availability": "sold_out"}), {}, BERLIN, now), 1, "EUR")
    with pytest.raises(ItemUnavailable):
        resolve_lines(indexed, [CartLineInput("itm_a", 2)], {"itm_a": 1}, at=now + timedelta(days=1))


def test_hidden_stays_hidden_and_an_item_without_an_end_stays_sold_out() -> None:
    m = index_menu(menu({"id": "itm_h", "name": "H", "price": 1, "availability": "hidden"},
                        {"id": "itm_s", "name": "S", "price": 1, "availability": "sold_out"}), 1, "EUR")
    later = datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(ItemUnavailable, match="no item"):
        resolve_lines(m, [CartLineInput("itm_h", 1)], {}, at=later)
    with pytest.raises(ItemUnavailable, match="sold out"):  # written before ends existed
        resolve_lines(m, [CartLineInput("itm_s", 1)], {}, at=later)


def test_menu_at_turns_ended_sold_outs_into_in_stock_and_keeps_the_rest() -> None:
    now = datetime(2026, 6, 3, 20, 0, tzinfo=UTC)
    written = settle_sold_out(menu({"id": "itm_a", "name": "A", "price": 1, "availability": "sold_out"},
                                   {"id": "itm_b", "name": "B", "price": 1}), {}, BERLIN, now)
    assert menu_at(written, now) is written  # nothing ended: no copy
    after = items_by_id(menu_at(written, datetime(2026, 6, 3, 22, 0, tzinfo=UTC)))
    assert (after["itm_a"].availability, after["itm_a"].sold_out_until) == ("in_stock", None)
    assert after["itm_b"] == items_by_id(written)["itm_b"]


def test_a_sold_out_item_without_an_end_keeps_the_end_it_already_has() -> None:
    now = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
    friday = datetime(2026, 6, 5, 16, 0, tzinfo=UTC)
    current = items_by_id(settle_sold_out(menu(
        {"id": "itm_a", "name": "A", "price": 1, "availability": "sold_out", "sold_out_until": friday.isoformat()}),
        {}, BERLIN, now - timedelta(hours=1)))
    rewritten = items_by_id(settle_sold_out(menu(
        {"id": "itm_a", "name": "A", "price": 2, "availability": "sold_out"},
        {"id": "itm_b", "name": "B", "price": 1, "availability": "sold_out"}), current, BERLIN, now))
    assert rewritten["itm_a"].sold_out_until == friday
    assert rewritten["itm_b"].sold_out_until == datetime(2026, 6, 3, 22, 0, tzinfo=UTC)


def test_a_given_end_is_kept_in_utc() -> None:
    now = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
    given = berlin(2026, 6, 4, 11, 30)
    [item] = items_by_id(settle_sold_out(menu(
        {"id": "itm_a", "name": "A", "price": 1, "availability": "sold_out", "sold_out_until": given.isoformat()}),
        {}, BERLIN, now)).values()
    assert item.sold_out_until == given and item.sold_out_until is not None and item.sold_out_until.tzinfo is UTC


@pytest.mark.parametrize(("item", "message"), [
    ({"availability": "sold_out", "sold_out_until": "2026-06-03T09:59:59Z"}, "in the future"),
    ({"availability": "sold_out", "sold_out_until": "2026-06-03T10:00:00Z"}, "in the future"),
    ({"availability": "sold_out", "sold_out_until": "2026-07-03T10:00:01Z"}, "at most 30 days"),
    ({"availability": "in_stock", "sold_out_until": "2026-06-04T10:00:00Z"}, "only a sold_out item"),
    ({"availability": "hidden", "sold_out_until": "2026-06-04T10:00:00Z"}, "only a sold_out item"),
])
def test_bad_ends_are_422_with_the_field_path(item: dict, message: str) -> None:
    now = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
    m = menu({"id": "itm_ok", "name": "OK", "price": 1}, {"id": "itm_x", "name": "X", "price": 1, **item})
    with pytest.raises(ValidationFailed, match=message) as err:
        settle_sold_out(m, {}, BERLIN, now, "menu")
    assert err.value.param == "menu.categories[0].items[1].sold_out_until"


def test_an_end_30_days_ahead_is_accepted() -> None:
    now = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
    settle_sold_out(menu({"name": "X", "price": 1, "availability": "sold_out",
                          "sold_out_until": "2026-07-03T10:00:00Z"}), {}, BERLIN, now)


def test_a_naive_end_is_rejected_at_the_edge() -> None:
    with pytest.raises(msgspec.ValidationError, match="timezone"):
        menu({"name": "X", "price": 1, "availability": "sold_out", "sold_out_until": "2026-06-04T10:00:00"})
