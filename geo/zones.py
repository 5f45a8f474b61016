"""Delivery zones: GeoJSON polygons validated with shapely, and their H3 cover.

A zone arrives as GeoJSON (`Polygon` or `MultiPolygon`, coordinates `[lng, lat]`). `parse_zone`
turns it into a shapely geometry or raises `ValidationFailed` with the path of the offending part.

Discovery must not scan every zone, so each zone is covered once, when it changes, by H3 cells
(`cover_zone`): every cell at `COVER_RES` that overlaps the zone, compacted to coarser parents where
all seven children are present. Each cell is flagged `interior` when it lies wholly inside the zone,
so a point in an interior cell needs no exact test. A lookup asks for the point's cell and all its
parents (`lookup_cells`), which finds compacted cells too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import h3
import shapely
import shapely.affinity
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.prepared import PreparedGeometry, prep
from shapely.validation import explain_validity

from kernel.errors import ValidationFailed

COVER_RES = 8  # ~0.74 km² hexagons (edge ~530 m): a 5 km zone is ~100 cells, ~40 once compacted
MAX_ZONE_AREA_KM2 = 5_000.0  # larger than any city delivery area; bigger is a typo in the coordinates
MAX_VERTICES = 10_000

Zone: TypeAlias = Polygon | MultiPolygon


def _fail(message: str, param: str) -> ValidationFailed:
    return ValidationFailed(message, param=param)


def _check_ring(ring: Any, param: str) -> None:
    if not isinstance(ring, list) or len(ring) < 4:
        raise _fail("a linear ring needs at least 4 positions (first = last)", param)
    for i, pos in enumerate(ring):
        if (not isinstance(pos, list | tuple) or len(pos) < 2
                or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in pos[:2])):
            raise _fail("a position is [lng, lat] in degrees", f"{param}[{i}]")
        lng, lat = pos[0], pos[1]
        if not (math.isfinite(lng) and -180.0 <= lng <= 180.0):
            raise _fail(f"longitude {lng} is outside [-180, 180]", f"{param}[{i}][0]")
        if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
            raise _fail(f"latitude {lat} is outside [-90, 90]", f"{param}[{i}][1]")
    if list(ring[0][:2]) != list(ring[-1][:2]):
        raise _fail("a linear ring must be closed (first position = last position)", param)


def area_km2(geom: Zone) -> float:
    """Approximate area: the geometry projected on a local equirectangular plane at its centroid."""
    if geom.is_empty:
        return 0.0
    lat0 = math.radians(geom.centroid.y)
    kx = 111.320 * math.cos(lat0)
    ky = 110.574
    return shapely.affinity.scale(geom, xfact=kx, yfact=ky, origin=(0, 0)).area


def parse_zone(geojson: Any, param: str = "zone") -> Zone:
    """A validated shapely geometry from a GeoJSON Polygon/MultiPolygon, or ValidationFailed."""
    if not isinstance(geojson, dict):
        raise _fail("a zone is a GeoJSON object", param)
    kind = geojson.get("type")
    coords = geojson.get("coordinates")
    if kind == "Polygon":
        polygons = [coords]
        paths = [f"{param}.coordinates"]
    elif kind == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise _fail("a MultiPolygon needs at least one polygon", f"{param}.coordinates")
        polygons = coords
        paths = [f"{param}.coordinates[{i}]" for i in range(len(coords))]
    else:
        raise _fail("a zone must be a GeoJSON Polygon or MultiPolygon", f"{param}.type")
    vertices = 0
    for rings, path in zip(polygons, paths, strict=True):
        if not isinstance(rings, list) or not rings:
            raise _fail("a polygon needs an outer ring", path)
        for j, ring in enumerate(rings):
            _check_ring(ring, f"{path}[{j}]")
            vertices += len(ring)
    if vertices > MAX_VERTICES:
        raise _fail(f"a zone may have at most {MAX_VERTICES} vertices", f"{param}.coordinates")
    geom = shape(geojson)
    if geom.is_empty or geom.area == 0:
        raise _fail("the zone is empty (no area)", f"{param}.coordinates")
    if not geom.is_valid:
        raise _fail(f"the zone is not a valid polygon: {explain_validity(geom)}", f"{param}.coordinates")
    area = area_km2(geom)
    if area > MAX_ZONE_AREA_KM2:
        raise _fail(f"the zone covers {area:.0f} km², more than the {MAX_ZONE_AREA_KM2:.0f} km² allowed",
                    f"{param}.coordinates")
    return geom


def union_zones(zones: Sequence[Zone]) -> Zone:
    merged = shapely.union_all(list(zones))
    return merged


@dataclass(frozen=True, slots=True)
class CoverCell:
    cell: int  # the H3 index as a signed 64-bit int (fits Postgres bigint)
    interior: bool  # wholly inside the zone: a point here needs no exact test


def _to_int(cell: str) -> int:
    value = h3.str_to_int(cell)
    return value - (1 << 64) if value >= (1 << 63) else value


def _cell_polygon(cell: str) -> Polygon:
    return Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(cell)])


def _h3shape(geom: Zone) -> h3.H3Shape:
    # shapely coordinates are (lng, lat); h3's geo interface takes GeoJSON-like mappings.
    return h3.geo_to_h3shape(shapely.geometry.mapping(geom))


def cover_zone(geom: Zone, res: int = COVER_RES) -> list[CoverCell]:
    """H3 cells at `res` (compacted) that together contain the whole zone, with interior flags."""
    cells = h3.h3shape_to_cells_experimental(_h3shape(geom), res, contain="overlap")
    if not cells:
        return []
    shapely.prepare(geom)
    inside = shapely.contains_properly(geom, [_cell_polygon(c) for c in cells])
    interior = [c for c, ok in zip(cells, inside, strict=True) if ok]
    boundary = [c for c, ok in zip(cells, inside, strict=True) if not ok]
    # Compact each class separately so an interior parent never swallows a boundary child.
    out = [CoverCell(_to_int(c), True) for c in h3.compact_cells(interior)]
    out += [CoverCell(_to_int(c), False) for c in h3.compact_cells(boundary)]
    return out


def lookup_cells(lat: float, lng: float, res: int = COVER_RES) -> list[int]:
    """The point's cell at `res` and all its parents: every cover cell that can hold the point."""
    cell = h3.latlng_to_cell(lat, lng, res)
    return [_to_int(h3.cell_to_parent(cell, r)) for r in range(res, -1, -1)]


def prepared(geom: Zone) -> PreparedGeometry:
    return prep(geom)


def contains_point(zone: PreparedGeometry | Zone, lat: float, lng: float) -> bool:
    """Exact test; a point on the boundary counts as inside (a customer at the edge is served)."""
    point = shapely.Point(lng, lat)
    return bool(zone.covers(point))
