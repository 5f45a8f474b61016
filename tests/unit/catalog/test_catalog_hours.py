"""Opening hours in the store's timezone: DST change days, midnight-crossing periods, special days."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from catalog.model import (
    SpecialDay,
    WeeklyHours,
    day_periods,
    effective_status,
    is_open,
    next_opening_today,
)
from kernel.errors import ValidationFailed

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
EVERY_DAY_LUNCH_DINNER = WeeklyHours.from_periods(
    [(d, "11:00", "14:00") for d in range(7)] + [(d, "17:30", "22:00") for d in range(7)]
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_spring_forward_day_opens_at_local_wall_clock_time() -> None:
    # 2024-03-31: Berlin jumps from CET (+1) to CEST (+2) at 02:00 local.
    assert is_open(EVERY_DAY_LUNCH_DINNER, {}, BERLIN, utc(2024, 3, 31, 9, 0))  # 11:00 CEST
    assert not is_open(EVERY_DAY_LUNCH_DINNER, {}, BERLIN, utc(2024, 3, 30, 9, 0))  # 10:00 CET, day before
    assert is_open(EVERY_DAY_LUNCH_DINNER, {}, BERLIN, utc(2024, 3, 30, 10, 0))  # 11:00 CET


def test_fall_back_day_uses_the_new_offset_after_the_change() -> None:
    # 2024-11-03: New York goes from EDT (-4) to EST (-5) at 02:00 local.
    assert not is_open(EVERY_DAY_LUNCH_DINNER, {}, NEW_YORK, utc(2024, 11, 3, 15, 30))  # 10:30 EST
    assert is_open(EVERY_DAY_LUNCH_DINNER, {}, NEW_YORK, utc(2024, 11, 3, 16, 0))  # 11:00 EST
    assert is_open(EVERY_DAY_LUNCH_DINNER, {}, NEW_YORK, utc(2024, 11, 2, 15, 0))  # 11:00 EDT, day before


def test_period_crossing_midnight_runs_into_the_next_day() -> None:
    late = WeeklyHours.from_periods([(4, "20:00", "02:00")])  # Friday night until 02:00 Saturday
    assert is_open(late, {}, BERLIN, utc(2024, 6, 7, 21, 0))  # Friday 23:00 CEST
    assert is_open(late, {}, BERLIN, utc(2024, 6, 7, 23, 30))  # Saturday 01:30
    assert not is_open(late, {}, BERLIN, utc(2024, 6, 8, 0, 0))  # Saturday 02:00: closed
    assert not is_open(late, {}, BERLIN, utc(2024, 6, 6, 23, 30))  # Friday 01:30: Thursday had no late period


def test_period_crossing_midnight_on_a_dst_night_closes_at_wall_clock_time() -> None:
    late = WeeklyHours.from_periods([(5, "22:00", "03:00")])  # Saturday 2024-03-30 into Sunday (spring forward)
    assert is_open(late, {}, BERLIN, utc(2024, 3, 31, 0, 30))  # 01:30 CET
    assert is_open(late, {}, BERLIN, utc(2024, 3, 31, 0, 59))  # 01:59 CET
    assert not is_open(late, {}, BERLIN, utc(2024, 3, 31, 1, 0))  # 03:00 CEST: closed


def test_holiday_closure_overrides_the_weekly_hours_only_on_its_date() -> None:
    xmas = {date(2024, 12, 25): SpecialDay(date(2024, 12, 25), closed=True)}
    assert not is_open(EVERY_DAY_LUNCH_DINNER, xmas, BERLIN, utc(2024, 12, 25, 11, 0))
    assert is_open(EVERY_DAY_LUNCH_DINNER, xmas, BERLIN, utc(2024, 12, 26, 11, 0))


def test_extended_hours_on_a_special_day_replace_the_weekly_ones() -> None:
    nye = {date(2024, 12, 31): SpecialDay(date(2024, 12, 31), False, day_periods([("18:00", "03:00")]))}
    assert not is_open(EVERY_DAY_LUNCH_DINNER, nye, BERLIN, utc(2024, 12, 31, 11, 0))  # lunch is off
    assert is_open(EVERY_DAY_LUNCH_DINNER, nye, BERLIN, utc(2025, 1, 1, 1, 30))  # 02:30 on New Year


def test_closed_special_day_keeps_the_night_before_running_past_midnight() -> None:
    late = WeeklyHours.from_periods([(1, "20:00", "02:00")])  # Tuesday into Wednesday
    closed_wed = {date(2024, 12, 25): SpecialDay(date(2024, 12, 25), closed=True)}
    assert is_open(late, closed_wed, BERLIN, utc(2024, 12, 25, 0, 30))  # 01:30 Wednesday


def test_next_opening_today_finds_dinner_after_lunch() -> None:
    at = utc(2024, 6, 3, 13, 0)  # 15:00 CEST, between lunch and dinner
    assert next_opening_today(EVERY_DAY_LUNCH_DINNER, {}, BERLIN, at) == datetime(2024, 6, 3, 17, 30, tzinfo=BERLIN)
    assert next_opening_today(EVERY_DAY_LUNCH_DINNER, {}, BERLIN, utc(2024, 6, 3, 21, 0)) is None


@pytest.mark.parametrize(("periods", "param"), [
    ([(0, "11:00", "14:00"), (0, "13:00", "15:00")], "periods[1]"),
    ([(0, "22:00", "03:00"), (1, "02:00", "05:00")], "periods[1]"),
    ([(6, "22:00", "03:00"), (0, "01:00", "05:00")], "periods[1]"),  # Sunday night wraps into Monday
    ([(0, "11:00", "25:00")], "periods[0].closes"),
    ([(7, "11:00", "14:00")], "periods[0].weekday"),
])
def test_overlapping_or_malformed_periods_are_rejected_with_the_path(periods, param) -> None:
    with pytest.raises(ValidationFailed) as err:
        WeeklyHours.from_periods(periods)
    assert err.value.param == param


def test_adjacent_periods_do_not_overlap() -> None:
    WeeklyHours.from_periods([(0, "11:00", "14:00"), (0, "14:00", "16:00"), (0, "20:00", "24:00")])


def test_timed_pause_reopens_by_itself() -> None:
    until = utc(2024, 6, 3, 12, 0)
    assert effective_status("paused", until, utc(2024, 6, 3, 11, 59)) == "paused"
    assert effective_status("paused", until, until) == "online"
    assert effective_status("paused", None, utc(2030, 1, 1)) == "paused"
    assert effective_status("closed", None, until) == "closed"
