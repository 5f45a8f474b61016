"""Per-store rules parsed once from a store row and cached by (store id, version).

Parsing hours, zones (shapely) and fee bands costs far more than evaluating them; discovery and
quotes evaluate them on every request, so a store's parsed rules are kept until its row changes.
Pure: no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shapely.prepared import PreparedGeometry

from catalog.model import (
    FeeBandRule,
    SpecialDay,
    WeeklyHours,
    day_periods,
    effective_status,
    is_open,
    next_opening_today,
)
from geo.zones import contains_point, parse_zone, prepared, union_zones


@dataclass(frozen=True, slots=True)
class StoreRules:
    tz: ZoneInfo
    weekly: WeeklyHours
    zone: PreparedGeometry | None
    max_delivery_m: int
    fee_bands: tuple[FeeBandRule, ...]

    def delivers_to(self, lat: float, lng: float) -> bool:
        return self.zone is not None and contains_point(self.zone, lat, lng)

    def open_at(self, status: str, paused_until: datetime | None, special: Mapping[date, SpecialDay],
                at: datetime) -> bool:
        return effective_status(status, paused_until, at) == "online" and is_open(self.weekly, special, self.tz, at)

    def opens_later_today(self, status: str, paused_until: datetime | None, special: Mapping[date, SpecialDay],
                          at: datetime) -> datetime | None:
        if status == "closed":
            return None
        opening = next_opening_today(self.weekly, special, self.tz, at)
        if opening is None:
            return None
        if effective_status(status, paused_until, opening) != "online":
            return None
        return opening


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def build_rules(row: Mapping[str, Any]) -> StoreRules:
    hours = _json(row["hours"])
    zones = _json(row["zones"])
    geom = union_zones([parse_zone(z) for z in zones]) if zones else None
    return StoreRules(
        tz=ZoneInfo(row["timezone"]),
        weekly=WeeklyHours.from_periods((p["weekday"], p["opens"], p["closes"]) for p in hours),
        zone=prepared(geom) if geom is not None else None,
        max_delivery_m=row["max_delivery_m"],
        fee_bands=tuple(FeeBandRule(b["up_to_m"], b["fee"]) for b in _json(row["fee_bands"])),
    )


def parse_special_days(rows: Any) -> dict[date, SpecialDay]:
    out: dict[date, SpecialDay] = {}
    if rows is None:
        return out
    for r in _json(rows):
        day = r["day"] if isinstance(r["day"], date) else date.fromisoformat(r["day"])
        periods = _json(r["periods"])
        out[day] = SpecialDay(day, r["closed"], day_periods((p["opens"], p["closes"]) for p in periods))
    return out


class RulesCache:
    """Parsed rules by store id, replaced when the store's version moves on. Bounded."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self._entries: dict[str, tuple[int, StoreRules]] = {}
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._entries)

    def cached(self, store_id: str, version: int) -> StoreRules | None:
        found = self._entries.get(store_id)
        return found[1] if found is not None and found[0] == version else None

    def version_of(self, store_id: str) -> int | None:
        """The version of the store whose rules are cached, or None."""
        found = self._entries.get(store_id)
        return None if found is None else found[0]

    def get(self, row: Mapping[str, Any]) -> StoreRules:
        found = self._entries.get(row["id"])
        if found is not None and found[0] == row["version"]:
            return found[1]
        rules = build_rules(row)
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[row["id"]] = (row["version"], rules)
        return rules
