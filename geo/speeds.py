"""Learned travel times: how much slower (or faster) couriers really move than the nominal speed,
per H3 cell and local hour of day, learned from consecutive positions. Pure: no I/O, no clock.

The live model is haversine x detour factor / nominal speed (`geo.eta.HaversineTravelTime`). A
courier's two consecutive fixes a few seconds apart are a short hop along the street, so the
hop's own length divided by the nominal speed is what the model expects it to take, and the time
it really took is what it took: the correction of a cell and hour is

    factor = sum(observed seconds) / sum(nominal seconds)

over the hops that started and ended around there at that hour (time-weighted, so a slow crawl
counts for as long as it lasted). The sums decay with a half-life, so the table follows a city
that changes (road works, a new bridge) and old data weighs less. With few samples the factor is
shrunk towards the cell's all-day factor, and that one towards 1 (the nominal model): a cell seen
once at 3 am does not get a factor of 2.4 from one red light. The result is clamped to a sane range.

Hops are rejected when they cannot be travel: no time between the fixes or a gap too long to be
one straight hop, a jump faster than any vehicle (a GPS teleport), or no real movement (parked,
waiting at a counter, GPS jitter): the factor is about moving, waiting is priced elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from types import MappingProxyType
from zoneinfo import ZoneInfo

import h3
import numpy as np
import numpy.typing as npt

from geo.eta import HaversineTravelTime, Point, TravelTime, haversine_m, seconds_many

SPEED_RESOLUTION = 7  # ~5 km² cells: a few streets' worth, enough hops per cell and hour to learn from
ALL_DAY = 24  # the hour value of a cell's all-day row


@dataclass(frozen=True, slots=True)
class SpeedLearning:
    """How hops are judged and how fast the table learns and forgets."""

    resolution: int = SPEED_RESOLUTION
    timezone: str = "UTC"  # the region's: hours of day are local
    min_dt_s: float = 2.0  # fixes closer in time are one measurement twice (or zero dt)
    max_dt_s: float = 120.0  # longer gaps are not one straight hop along a street
    min_move_m: float = 25.0  # less is GPS jitter around a parked courier
    min_speed_ratio: float = 0.2  # slower than this share of nominal: not travelling (waiting, parked)
    max_speed_ratio: float = 3.0  # faster than this multiple of nominal: a GPS teleport
    half_life_s: float = 14 * 86_400.0  # an hour bin gets a day's worth of data once a day
    prior_s: float = 600.0  # nominal seconds of evidence before the data outweighs the prior
    min_factor: float = 0.5
    max_factor: float = 3.0

    def __post_init__(self) -> None:
        if not 0 < self.min_dt_s < self.max_dt_s:
            raise ValueError("need 0 < min_dt_s < max_dt_s")
        if not 0 < self.min_speed_ratio < 1 < self.max_speed_ratio:
            raise ValueError("need 0 < min_speed_ratio < 1 < max_speed_ratio")
        if self.half_life_s <= 0 or self.prior_s <= 0:
            raise ValueError("half_life_s and prior_s must be positive")
        if not 0 < self.min_factor <= 1 <= self.max_factor:
            raise ValueError("need 0 < min_factor <= 1 <= max_factor")

    @property
    def zone(self) -> tzinfo:
        return UTC if self.timezone == "UTC" else ZoneInfo(self.timezone)

    def hour_of(self, ts: float) -> int:
        return datetime.fromtimestamp(ts, self.zone).hour


@dataclass(frozen=True, slots=True)
class Fix:
    """A courier's position at a device time (epoch seconds)."""

    lat: float
    lng: float
    ts: float
    vehicle: str = "car"


@dataclass(frozen=True, slots=True)
class Hop:
    """One accepted hop: where and when, how long it took, how long the nominal model says."""

    cell: str
    hour: int
    observed_s: float
    nominal_s: float
    at: float


def hop_between(before: Fix, after: Fix, nominal: HaversineTravelTime, learning: SpeedLearning) -> Hop | None:
    """The hop from `before` to `after`, or None if it is not travel (see the module doc)."""
    dt = after.ts - before.ts
    if not learning.min_dt_s <= dt <= learning.max_dt_s:
        return None
    meters = haversine_m((before.lat, before.lng), (after.lat, after.lng))
    if meters < learning.min_move_m:
        return None
    speed = nominal.speed_mps.get(after.vehicle, nominal.speed_mps[nominal.default_vehicle])
    observed = meters / dt
    if not learning.min_speed_ratio * speed <= observed <= learning.max_speed_ratio * speed:
        return None
    cell = h3.latlng_to_cell((before.lat + after.lat) / 2, (before.lng + after.lng) / 2, learning.resolution)
    return Hop(cell, learning.hour_of(after.ts), dt, meters / speed, after.ts)


@dataclass(frozen=True, slots=True)
class CellSpeed:
    """Decayed sums of one (cell, hour): seconds observed and seconds the nominal model expected."""

    observed_s: float
    nominal_s: float
    samples: int
    updated_at: float

    def decayed(self, at: float, half_life_s: float) -> CellSpeed:
        if at <= self.updated_at:
            return self
        keep = 0.5 ** ((at - self.updated_at) / half_life_s)
        return CellSpeed(self.observed_s * keep, self.nominal_s * keep, self.samples, at)

    def factor(self, prior: float, prior_s: float) -> float:
        """observed / nominal, shrunk towards `prior` by `prior_s` nominal seconds of pseudo-evidence."""
        return (self.observed_s + prior * prior_s) / (self.nominal_s + prior_s)


Key = tuple[str, int]  # (cell, local hour 0-23, or ALL_DAY)


@dataclass(frozen=True, slots=True)
class SpeedTable:
    """The learned sums per (cell, hour) and per (cell, ALL_DAY). Immutable: `observed` returns a
    new table, so a round can price with a snapshot while the next hops are learned."""

    learning: SpeedLearning = field(default_factory=SpeedLearning)
    cells: Mapping[Key, CellSpeed] = field(default_factory=lambda: MappingProxyType({}))

    def observed(self, hops: Iterable[Hop]) -> tuple[SpeedTable, set[Key]]:
        """A table that has learned `hops`, and the keys that changed."""
        merged = dict(self.cells)
        changed: set[Key] = set()
        for hop in hops:
            for key in ((hop.cell, hop.hour), (hop.cell, ALL_DAY)):
                prev = merged.get(key)
                if prev is None:
                    merged[key] = CellSpeed(hop.observed_s, hop.nominal_s, 1, hop.at)
                else:
                    prev = prev.decayed(hop.at, self.learning.half_life_s)
                    merged[key] = CellSpeed(prev.observed_s + hop.observed_s, prev.nominal_s + hop.nominal_s,
                                            prev.samples + 1, max(prev.updated_at, hop.at))
                changed.add(key)
        return SpeedTable(self.learning, MappingProxyType(merged)), changed

    def factor(self, cell: str, hour: int, at: float) -> float:
        """The travel-time multiplier of `cell` at local `hour` (1 where nothing was learned)."""
        learning = self.learning
        day = self.cells.get((cell, ALL_DAY))
        prior = 1.0 if day is None else day.decayed(at, learning.half_life_s).factor(1.0, learning.prior_s)
        entry = self.cells.get((cell, hour))
        value = prior if entry is None else entry.decayed(at, learning.half_life_s).factor(prior, learning.prior_s)
        return min(learning.max_factor, max(learning.min_factor, value))

    def factors_at(self, at: float) -> dict[str, float]:
        """Every learned cell's multiplier at the local hour of `at`: one round's snapshot."""
        hour = self.learning.hour_of(at)
        return {cell: self.factor(cell, hour, at) for cell, h in self.cells if h == ALL_DAY}


def leg_hops(start_cell: str, end_cell: str, hour: int, observed_s: float, nominal_s: float, at: float
             ) -> tuple[Hop, Hop]:
    """A whole leg learned as two hops, half in the cell it starts in and half in the cell it ends in:
    `LearnedTravelTime` prices a leg with the mean of those two cells' factors, so this is the
    evidence that model can use (a replay learns from legs, the live loop from GPS hops)."""
    return (Hop(start_cell, hour, observed_s / 2, nominal_s / 2, at), Hop(end_cell, hour, observed_s / 2,
                                                                          nominal_s / 2, at))


class LearnedTravelTime:
    """`base` travel time x the learned multiplier of the cells the leg starts and ends in (their
    mean: a leg across town pays for both ends). Cells with nothing learned count as 1. Build one
    per round from `SpeedTable.factors_at`; it remembers the cell of every point it has seen.
    Points are (lat, lng) unless `cell_of` says which cell a point is in (planar replay points)."""

    __slots__ = ("_factor_of_point", "base", "cell_of", "factors", "resolution")

    def __init__(self, base: TravelTime, factors: Mapping[str, float], resolution: int = SPEED_RESOLUTION,
                 cell_of: Callable[[Point], str] | None = None) -> None:
        self.base = base
        self.factors = factors
        self.resolution = resolution
        self.cell_of = cell_of
        self._factor_of_point: dict[Point, float] = {}

    def factor_at(self, point: Point) -> float:
        found = self._factor_of_point.get(point)
        if found is None:
            found = 1.0
            if self.factors:
                try:
                    cell = (self.cell_of(point) if self.cell_of is not None
                            else h3.latlng_to_cell(point[0], point[1], self.resolution))
                    found = self.factors.get(cell, 1.0)
                except (ValueError, h3.H3BaseException):
                    found = 1.0
            self._factor_of_point[point] = found
        return found

    def seconds(self, origin: Point, destination: Point, vehicle: str = "car") -> float:
        base = self.base.seconds(origin, destination, vehicle)
        if not self.factors:
            return base
        known = self._factor_of_point
        start = known.get(origin)
        if start is None:
            start = self.factor_at(origin)
        end = known.get(destination)
        if end is None:
            end = self.factor_at(destination)
        return base * ((start + end) / 2)

    def minutes(self, origin: Point, destination: Point, vehicle: str = "car") -> float:
        return self.seconds(origin, destination, vehicle) / 60.0

    def seconds_array(self, origins: Sequence[Point], destinations: Sequence[Point],
                      vehicles: Sequence[str]) -> npt.NDArray[np.float64]:
        base = seconds_many(self.base, origins, destinations, vehicles)
        if not self.factors:
            return base
        known, factor_at = self._factor_of_point, self.factor_at
        start = np.fromiter((known[p] if p in known else factor_at(p) for p in origins), np.float64, len(origins))
        end = np.fromiter((known[p] if p in known else factor_at(p) for p in destinations), np.float64,
                          len(destinations))
        return base * ((start + end) / 2)


class HopTracker:
    """Each courier's last fix, and the hop its next fix makes from it. A fix no newer than the last
    (the same point read twice, or an older one arriving late) is ignored; a fix that makes no
    acceptable hop (a teleport, a long gap) still becomes the last one, so learning resumes from it."""

    def __init__(self, nominal: HaversineTravelTime, learning: SpeedLearning) -> None:
        self.nominal = nominal
        self.learning = learning
        self.last: dict[str, Fix] = {}

    def observe(self, courier_id: str, fix: Fix) -> Hop | None:
        if not (math.isfinite(fix.lat) and math.isfinite(fix.lng) and math.isfinite(fix.ts)):
            return None
        before = self.last.get(courier_id)
        if before is not None and fix.ts <= before.ts:
            return None
        self.last[courier_id] = fix
        return None if before is None else hop_between(before, fix, self.nominal, self.learning)

    def keep_only(self, courier_ids: Iterable[str]) -> None:
        """Forget couriers no longer seen (offline ones would otherwise pile up)."""
        keep = set(courier_ids)
        self.last = {cid: fix for cid, fix in self.last.items() if cid in keep}
