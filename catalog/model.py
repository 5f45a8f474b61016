"""The catalog's pure core: opening hours, store status, delivery fees, and the quote shape.

No I/O and no asyncio. Times are evaluated in the store's IANA timezone with zoneinfo, so a
DST change day has 23 or 25 hours and "11:00" still means 11:00 on the wall clock.

Hours rules:
- A weekly period opens on `weekday` at `opens` and closes at `closes`; when `closes <= opens` it
  crosses midnight and closes on the next day ("24:00" closes at the end of the day).
- A period belongs to the day it opens on. A special day replaces the periods that open on its
  date (closed, or its own periods); a period from the evening before that crosses into a special
  day still runs to its end.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from kernel.errors import ValidationFailed
from kernel.money import Money, is_known_currency

DAY_MINUTES = 24 * 60


# ---- hours ---------------------------------------------------------------------------------------

def parse_hhmm(text: str, param: str = "time") -> int:
    """Minutes after local midnight for 'HH:MM' (00:00 .. 24:00)."""
    try:
        hh, mm = text.split(":")
        minutes = int(hh) * 60 + int(mm)
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a HH:MM time", param=param) from None
    if not 0 <= int(mm) < 60 or not 0 <= minutes <= DAY_MINUTES:
        raise ValidationFailed(f"{text!r} is not a time between 00:00 and 24:00", param=param)
    return minutes


@dataclass(frozen=True, slots=True)
class OpenPeriod:
    """Opens `opens` minutes after local midnight, lasts until `closes` (may be > 1440: next day)."""

    opens: int
    closes: int

    @classmethod
    def of(cls, opens: str, closes: str, param: str = "") -> OpenPeriod:
        o = parse_hhmm(opens, f"{param}.opens" if param else "opens")
        c = parse_hhmm(closes, f"{param}.closes" if param else "closes")
        if o == DAY_MINUTES:
            raise ValidationFailed("a period cannot open at 24:00", param=f"{param}.opens" if param else "opens")
        if c <= o:
            c += DAY_MINUTES  # crosses midnight
        return cls(o, c)


@dataclass(frozen=True, slots=True)
class WeeklyHours:
    """Periods per weekday (0 = Monday)."""

    by_weekday: Mapping[int, tuple[OpenPeriod, ...]] = field(default_factory=dict)

    @classmethod
    def from_periods(cls, periods: Iterable[tuple[int, str, str]], param: str = "periods") -> WeeklyHours:
        """Build and validate: periods must not overlap, also across midnight and Sunday -> Monday."""
        spans: list[tuple[int, int, int]] = []  # (start in week minutes, end, index)
        by_day: dict[int, list[OpenPeriod]] = {}
        for i, (weekday, opens, closes) in enumerate(periods):
            if not 0 <= weekday <= 6:
                raise ValidationFailed("weekday is 0 (Monday) .. 6 (Sunday)", param=f"{param}[{i}].weekday")
            period = OpenPeriod.of(opens, closes, f"{param}[{i}]")
            by_day.setdefault(weekday, []).append(period)
            start = weekday * DAY_MINUTES + period.opens
            spans.append((start, start + period.closes - period.opens, i))
        _reject_overlaps(spans, 7 * DAY_MINUTES, param)
        return cls({d: tuple(sorted(ps, key=lambda p: p.opens)) for d, ps in by_day.items()})


def _reject_overlaps(spans: list[tuple[int, int, int]], cycle: int, param: str) -> None:
    spans = sorted(spans)
    for (_s1, e1, _i), (s2, _e2, i2) in itertools.pairwise(spans):
        if s2 < e1:
            raise ValidationFailed("this period overlaps another one", param=f"{param}[{i2}]")
    if len(spans) > 1:  # the last one of the week may wrap into the first
        s_first, _e, i_first = spans[0]
        _s, e_last, _i = spans[-1]
        if e_last - cycle > s_first:
            raise ValidationFailed("this period overlaps another one", param=f"{param}[{i_first}]")


def day_periods(periods: Iterable[tuple[str, str]], param: str = "periods") -> tuple[OpenPeriod, ...]:
    """Validated periods of one special day (no overlaps among them)."""
    out = [OpenPeriod.of(o, c, f"{param}[{i}]") for i, (o, c) in enumerate(periods)]
    _reject_overlaps([(p.opens, p.closes, i) for i, p in enumerate(out)], 10 * DAY_MINUTES, param)
    return tuple(sorted(out, key=lambda p: p.opens))


@dataclass(frozen=True, slots=True)
class SpecialDay:
    day: date
    closed: bool
    periods: tuple[OpenPeriod, ...] = ()


def _periods_opening_on(day: date, weekly: WeeklyHours, special: Mapping[date, SpecialDay]) -> tuple[OpenPeriod, ...]:
    override = special.get(day)
    if override is not None:
        return () if override.closed else override.periods
    return weekly.by_weekday.get(day.weekday(), ())


def _local(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """The instant of local wall time `minutes` after `day`'s midnight (may spill into later days).

    A wall time skipped by a DST jump (e.g. 02:30 on a spring-forward day) maps, per zoneinfo's
    fold=0 rule, to the instant one hour later on the wall clock, which is when the store opens."""
    extra_days, rem = divmod(minutes, DAY_MINUTES)
    d = day + timedelta(days=extra_days)
    return datetime.combine(d, time(rem // 60, rem % 60), tz)


def is_open(weekly: WeeklyHours, special: Mapping[date, SpecialDay], tz: ZoneInfo, at: datetime) -> bool:
    """Whether the hours say open at instant `at` (tz-aware)."""
    local = at.astimezone(tz)
    today = local.date()
    now_min = local.hour * 60 + local.minute + local.second / 60
    for p in _periods_opening_on(today, weekly, special):
        if p.opens <= now_min < p.closes:
            return True
    for p in _periods_opening_on(today - timedelta(days=1), weekly, special):
        if p.closes > DAY_MINUTES and now_min < p.closes - DAY_MINUTES:
            return True
    return False


def next_opening_today(
    weekly: WeeklyHours, special: Mapping[date, SpecialDay], tz: ZoneInfo, at: datetime
) -> datetime | None:
    """The next instant later on `at`'s local day when a period opens, or None."""
    local = at.astimezone(tz)
    today = local.date()
    now_min = local.hour * 60 + local.minute + local.second / 60
    later = [p.opens for p in _periods_opening_on(today, weekly, special) if p.opens > now_min]
    return _local(today, min(later), tz) if later else None


def next_local_midnight(tz: ZoneInfo, at: datetime) -> datetime:
    """The first instant of the local day after `at`'s, in UTC: where "sold out today" ends.

    Computed on the wall clock like the hours, so a 23- or 25-hour DST day still ends at its own
    midnight (never `at`'s midnight + 24 h); a midnight skipped by a DST jump maps to the jump."""
    return _local(at.astimezone(tz).date(), DAY_MINUTES, tz).astimezone(UTC)


# ---- store ---------------------------------------------------------------------------------------

def zone_info(name: str, param: str = "timezone") -> ZoneInfo:
    if name not in _timezones():
        raise ValidationFailed(f"unknown IANA timezone {name!r}", param=param)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(f"unknown IANA timezone {name!r}", param=param) from None


_TZ_CACHE: list[frozenset[str]] = []


def _timezones() -> frozenset[str]:
    if not _TZ_CACHE:
        _TZ_CACHE.append(frozenset(available_timezones()))
    return _TZ_CACHE[0]


def check_currency(code: str, param: str = "currency") -> str:
    if not is_known_currency(code):
        raise ValidationFailed(f"unknown ISO 4217 currency {code!r}", param=param)
    return code


def effective_status(status: str, paused_until: datetime | None, at: datetime) -> str:
    """A pause with an end reopens by itself once `at` reaches it."""
    if status == "paused" and paused_until is not None and at >= paused_until:
        return "online"
    return status


@dataclass(frozen=True, slots=True)
class FeeBandRule:
    up_to_m: int
    fee: int


def check_fee_bands(bands: Sequence[FeeBandRule], max_delivery_m: int, param: str = "fee_bands") -> None:
    previous = 0
    for i, band in enumerate(bands):
        if band.up_to_m <= previous:
            raise ValidationFailed("bands must be in increasing up_to_m order", param=f"{param}[{i}].up_to_m")
        previous = band.up_to_m
    if bands and bands[-1].up_to_m < max_delivery_m:
        raise ValidationFailed("the last band must reach max_delivery_m", param=f"{param}[{len(bands) - 1}].up_to_m")


def fee_for_distance(bands: Sequence[FeeBandRule], distance_m: float, currency: str) -> Money:
    """The fee of the first band that reaches the distance (the last band beyond it; none: free)."""
    for band in bands:
        if distance_m <= band.up_to_m:
            return Money(band.fee, currency)
    return Money(bands[-1].fee if bands else 0, currency)


# ---- the interface orders/ uses ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class QuoteContext:
    store_id: str
    tenant_id: str
    name: str
    currency: str
    timezone: str
    tax_rate_bps: int
    tax_inclusive: bool
    prep_time_default_s: int
    accept_window_s: int
    lat: float
    lng: float
    status: str  # "online" | "paused" | "closed", with an expired pause already counted as online
    open_at_time: bool
    deliverable: bool
    distance_m: int
    delivery_fee: Money
    region: str


@dataclass(frozen=True, slots=True)
class ResolvedOption:
    option_id: str
    name: str
    quantity: int
    unit_price: Money  # the option's own price plus its selected sub-options, per unit of this option
    options: tuple[ResolvedOption, ...] = ()


@dataclass(frozen=True, slots=True)
class ResolvedLine:
    item_id: str
    name: str
    quantity: int
    unit_price: Money  # item price plus every selected option
    options: list[ResolvedOption]
    line_total: Money
