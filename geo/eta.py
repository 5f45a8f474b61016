"""Travel-time and prep-time models: pure functions of points and observations, no I/O.

Two travel-time models share one protocol so the dispatch core does not care which it gets:
`MdrpTravelTime` applies the Grubhub MDRP rule (planar meters, ceil to whole minutes) for
replays; `HaversineTravelTime` is the live model on latitude/longitude.
`PrepTimeEstimator` corrects a store's stated prep time by how late its food really was.
`MemoTravelTime` remembers every leg it was asked for (one round's worth), and `seconds_many`
prices many legs at once with a model's vectorised `seconds_array` where it has one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Point = tuple[float, float]

EARTH_RADIUS_M = 6_371_008.8


@runtime_checkable
class TravelTime(Protocol):
    """Travel time between two points for a vehicle type."""

    def seconds(self, origin: Point, destination: Point, vehicle: str = "car") -> float: ...

    def minutes(self, origin: Point, destination: Point, vehicle: str = "car") -> float: ...


@dataclass(frozen=True, slots=True)
class MdrpTravelTime:
    """MDRP rule: ceil(euclidean meters / meters_per_minute) whole minutes, for every vehicle.

    The ceiling is part of the instance rules (the evaluator applies it), so the triangle
    inequality may fail; callers must not assume it holds.
    """

    meters_per_minute: float

    def __post_init__(self) -> None:
        if not self.meters_per_minute > 0:
            raise ValueError("meters_per_minute must be positive")

    def minutes(self, origin: Point, destination: Point, vehicle: str = "car") -> float:
        meters = math.hypot(destination[0] - origin[0], destination[1] - origin[1])
        return float(math.ceil(meters / self.meters_per_minute))

    def seconds(self, origin: Point, destination: Point, vehicle: str = "car") -> float:
        return 60.0 * self.minutes(origin, destination, vehicle)


def haversine_m(origin: Point, destination: Point) -> float:
    """Great-circle distance in meters between two (lat, lng) points in degrees."""
    lat1, lng1 = math.radians(origin[0]), math.radians(origin[1])
    lat2, lng2 = math.radians(destination[0]), math.radians(destination[1])
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _default_speeds() -> Mapping[str, float]:
    # Typical urban door-to-door speeds, m/s; operators override them in config.
    return MappingProxyType({"bicycle": 4.2, "scooter": 6.5, "car": 7.0, "walk": 1.4})


@dataclass(frozen=True, slots=True)
class HaversineTravelTime:
    """Live model: haversine distance x detour factor / speed of the vehicle, on (lat, lng) points.

    `detour_factor` turns crow-flies distance into street distance (1.3-1.4 in most cities).
    An unknown vehicle falls back to `default_vehicle`, so one odd client value cannot break a round.
    """

    detour_factor: float = 1.35
    speed_mps: Mapping[str, float] = field(default_factory=_default_speeds)
    default_vehicle: str = "car"

    def __post_init__(self) -> None:
        if self.detour_factor < 1.0:
            raise ValueError("detour_factor must be >= 1 (streets are never shorter than a straight line)")
        if self.default_vehicle not in self.speed_mps:
            raise ValueError(f"default vehicle {self.default_vehicle!r} has no speed")
        if any(speed <= 0 for speed in self.speed_mps.values()):
            raise ValueError("every speed must be positive")

    def seconds(self, origin: Point, destination: Point, vehicle: str = "car") -> float:
        speed = self.speed_mps.get(vehicle, self.speed_mps[self.default_vehicle])
        return haversine_m(origin, destination) * self.detour_factor / speed

    def minutes(self, origin: Point, destination: Point, vehicle: str = "car") -> float:
        return self.seconds(origin, destination, vehicle) / 60.0

    def seconds_array(self, origins: Sequence[Point], destinations: Sequence[Point],
                      vehicles: Sequence[str]) -> npt.NDArray[np.float64]:
        """`seconds` of many legs at once (numpy; equal to the scalar one to rounding)."""
        o = np.asarray(origins, dtype=np.float64).reshape(-1, 2)
        d = np.asarray(destinations, dtype=np.float64).reshape(-1, 2)
        default = self.speed_mps[self.default_vehicle]
        speeds = np.fromiter((self.speed_mps.get(v, default) for v in vehicles), np.float64, len(vehicles))
        return haversine_m_array(o, d) * self.detour_factor / speeds


def haversine_m_array(origins: npt.NDArray[np.float64],
                      destinations: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """`haversine_m` of rows of (lat, lng) degrees."""
    lat1, lng1 = np.radians(origins[:, 0]), np.radians(origins[:, 1])
    lat2, lng2 = np.radians(destinations[:, 0]), np.radians(destinations[:, 1])
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))


def seconds_many(travel: TravelTime, origins: Sequence[Point], destinations: Sequence[Point],
                 vehicles: Sequence[str]) -> npt.NDArray[np.float64]:
    """Travel seconds of many legs: the model's `seconds_array` if it has one, else one call a leg."""
    vectorised = getattr(travel, "seconds_array", None)
    if vectorised is not None:
        return np.asarray(vectorised(origins, destinations, vehicles), dtype=np.float64)
    return np.fromiter((travel.seconds(o, d, v) for o, d, v in zip(origins, destinations, vehicles, strict=True)),
                       np.float64, len(origins))


class MemoTravelTime:
    """A travel model that remembers each leg it computed: one round asks for the same legs many
    times (a bundle's drop-off legs in every sequence, a store's legs in every merge tried). Build
    one per round: it grows with the legs asked for and is never emptied."""

    __slots__ = ("_minutes", "_seconds", "inner")

    def __init__(self, inner: TravelTime) -> None:
        self.inner = inner
        self._seconds: dict[tuple[Point, Point, str], float] = {}
        self._minutes: dict[tuple[Point, Point, str], float] = {}

    def seconds(self, origin: Point, destination: Point, vehicle: str = "car") -> float:
        key = (origin, destination, vehicle)
        found = self._seconds.get(key)
        if found is None:
            found = self._seconds[key] = self.inner.seconds(origin, destination, vehicle)
        return found

    def minutes(self, origin: Point, destination: Point, vehicle: str = "car") -> float:
        key = (origin, destination, vehicle)
        found = self._minutes.get(key)
        if found is None:
            found = self._minutes[key] = self.inner.minutes(origin, destination, vehicle)
        return found

    def seconds_array(self, origins: Sequence[Point], destinations: Sequence[Point],
                      vehicles: Sequence[str]) -> npt.NDArray[np.float64]:
        return seconds_many(self.inner, origins, destinations, vehicles)


@dataclass(frozen=True, slots=True)
class PrepTimeEstimator:
    """Stated prep time corrected by an exponentially weighted mean of each store's lateness.

    Immutable: `observed` returns a new estimator, so a dispatcher round can use a snapshot while
    the next one is being learned. Lateness may be negative (food ready early) and shortens the
    estimate, but never below `min_prep_s`.
    """

    alpha: float = 0.2
    min_prep_s: float = 0.0
    lateness_s: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")

    def estimate_s(self, store_id: str, stated_prep_s: float) -> float:
        """Expected prep time in seconds for a new order at `store_id`."""
        return max(self.min_prep_s, stated_prep_s + self.lateness_s.get(store_id, 0.0))

    def observed(self, store_id: str, stated_prep_s: float, actual_prep_s: float) -> PrepTimeEstimator:
        """A new estimator that has learned from one order whose food took `actual_prep_s`."""
        lateness = actual_prep_s - stated_prep_s
        previous = self.lateness_s.get(store_id)
        updated = lateness if previous is None else (1 - self.alpha) * previous + self.alpha * lateness
        merged = dict(self.lateness_s)
        merged[store_id] = updated
        return PrepTimeEstimator(self.alpha, self.min_prep_s, MappingProxyType(merged))
