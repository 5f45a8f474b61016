"""Great-circle distances on (lat, lng) points in degrees. Pure, no I/O."""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), the same constant geo.eta uses

Point = tuple[float, float]


def haversine_m(origin: Point, destination: Point) -> float:
    """Distance in meters along the Earth's surface between two (lat, lng) points."""
    lat1, lng1 = math.radians(origin[0]), math.radians(origin[1])
    lat2, lng2 = math.radians(destination[0]), math.radians(destination[1])
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def haversine_m_int(origin: Point, destination: Point) -> int:
    """The same distance rounded to whole meters, as the API reports it."""
    return round(haversine_m(origin, destination))
