"""The discovery index's per-minute hours cache gives exactly what the rules give, minute by minute,
through a DST change, a midnight-crossing period, a special day and timed pauses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from catalog.index import DiscoveryIndex, Listing
from catalog.model import OpenPeriod, SpecialDay
from catalog.rules import build_rules

SQUARE = {"type": "Polygon", "coordinates": [[[13.38, 52.50], [13.42, 52.50], [13.42, 52.54], [13.38, 52.54],
                                              [13.38, 52.50]]]}
HOURS = [{"weekday": d, "opens": o, "closes": c} for d in range(7) for o, c in (("11:30", "14:00"), ("18:00", "02:00"))]
SPECIAL = {date(2024, 3, 31): SpecialDay(date(2024, 3, 31), False, (OpenPeriod.of("09:15", "12:45"),))}


def listing(status: str = "online", paused_until: datetime | None = None) -> Listing:
    rules = build_rules({"id": "sto_1", "version": 1, "timezone": "Europe/Berlin", "hours": HOURS,
                         "zones": [SQUARE], "max_delivery_m": 5000, "fee_bands": []})
    return Listing("sto_1", 1, "S", 52.52, 13.40, "EUR", status, paused_until, 900, rules, SPECIAL)


def exact(item: Listing, at: datetime) -> tuple[bool, datetime | None] | None:
    rules = item.rules
    open_now = rules.open_at(item.status, item.paused_until, item.special, at)
    opens_at = None if open_now else rules.opens_later_today(item.status, item.paused_until, item.special, at)
    return None if not open_now and opens_at is None else (open_now, opens_at)


@pytest.mark.parametrize("status,paused_until", [
    ("online", None),
    ("paused", None),
    ("paused", datetime(2024, 3, 31, 10, 7, 30, tzinfo=UTC)),  # ends mid-minute, during lunch
    ("paused", datetime(2024, 3, 30, 16, 59, 59, tzinfo=UTC)),  # ends just before dinner opens
])
def test_cached_state_equals_the_rules_every_20_s_across_a_dst_change_day(status, paused_until) -> None:
    item = listing(status, paused_until)
    at = datetime(2024, 3, 30, 8, 0, 10, tzinfo=UTC)  # Saturday; Sunday 31 March is spring forward
    while at < datetime(2024, 4, 1, 3, 0, tzinfo=UTC):
        assert item.state_at(at, int(at.timestamp() // 60)) == exact(item, at), at
        at += timedelta(seconds=20)


def test_index_replaces_a_store_and_its_cells() -> None:
    index = DiscoveryIndex()
    index.put(listing(), [(1, True), (2, False)])
    index.put(listing(), [(3, False)])
    assert index.version("sto_1") == 1 and len(index) == 1
    assert index._cells == {3: {"sto_1": False}}
    index.drop("sto_1")
    assert len(index) == 0 and index._cells == {}
