"""Distances on (lat, lng) points in degrees: great-circle, and a cheap approximation for hot
paths. Pure, no I/O."""

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


_M_PER_DEG = math.pi / 180.0 * EARTH_RADIUS_M
_RAD = math.pi / 360.0  # half a degree in radians: cos of the mean latitude


def distance_sq_m2(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Squared distance in m² by the equirectangular approximation: one cosine, no square root,
    for per-GPS-point checks. Within 0.1 % of the great-circle distance up to a few hundred km
    (tracking's plausibility checks compare it with limits of at most ~30 km and allow 50 m of
    jitter), and it never reads a long jump as a short one (wrapped across the antimeridian)."""
    dlng = abs(lng2 - lng1)
    if dlng > 180.0:
        dlng = 360.0 - dlng
    x = dlng * math.cos((lat1 + lat2) * _RAD)
    y = lat2 - lat1
    return (x * x + y * y) * (_M_PER_DEG * _M_PER_DEG)
