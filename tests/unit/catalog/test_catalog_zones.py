"""Zone validation with shapely and the H3 cover used as the discovery prefilter."""

from __future__ import annotations

import math

import pytest

from geo.distance import haversine_m
from geo.zones import contains_point, cover_zone, lookup_cells, parse_zone
from kernel.errors import ValidationFailed

SQUARE = {"type": "Polygon", "coordinates": [[[13.30, 52.45], [13.50, 52.45], [13.50, 52.58], [13.30, 52.58],
                                              [13.30, 52.45]]]}


def circle(lat: float, lng: float, radius_m: float, n: int = 24) -> dict:
    ring = []
    for k in range(n):
        a = 2 * math.pi * k / n
        ring.append([lng + radius_m * math.cos(a) / (111_320 * math.cos(math.radians(lat))),
                     lat + radius_m * math.sin(a) / 110_574])
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


@pytest.mark.parametrize(("zone", "param"), [
    ({"type": "Point", "coordinates": [13.4, 52.5]}, "zone.type"),
    ({"type": "Polygon", "coordinates": [[[13.3, 52.4], [13.4, 52.4], [13.3, 52.4]]]}, "zone.coordinates[0]"),
    ({"type": "Polygon", "coordinates": [[[13.3, 52.4], [13.4, 52.4], [13.4, 52.5], [13.3, 52.41]]]},
     "zone.coordinates[0]"),  # not closed
    ({"type": "Polygon", "coordinates": [[[13.3, 52.4], [193.4, 52.4], [13.4, 52.5], [13.3, 52.4]]]},
     "zone.coordinates[0][1][0]"),
    ({"type": "Polygon", "coordinates": [[[13.3, 52.4], [13.4, 95.0], [13.4, 52.5], [13.3, 52.4]]]},
     "zone.coordinates[0][1][1]"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}, "zone.coordinates"),  # bowtie
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [2, 0], [0, 0]]]}, "zone.coordinates"),  # no area
    ({"type": "Polygon", "coordinates": [[[0, 0], [3, 0], [3, 3], [0, 3], [0, 0]]]}, "zone.coordinates"),  # huge
    ({"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"], [[[1, 1], [2, 2]]]]},
     "zone.coordinates[1][0]"),
])
def test_invalid_zones_are_rejected_with_the_path(zone, param) -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_zone(zone)
    assert err.value.param == param


def test_a_point_on_the_edge_is_inside_and_just_beyond_is_not() -> None:
    zone = parse_zone(SQUARE)
    assert contains_point(zone, 52.50, 13.40)
    assert contains_point(zone, 52.45, 13.40)  # on the southern edge
    assert not contains_point(zone, 52.4499, 13.40)


def test_h3_cover_finds_every_point_of_the_zone() -> None:
    zone = parse_zone(circle(52.52, 13.40, 4000))
    cover = {c.cell: c.interior for c in cover_zone(zone)}
    assert len(cover) < 200
    for k in range(400):  # points spread over the zone, edges included
        r = 4000 * math.sqrt((k % 20) / 19) * 0.999
        a = 2 * math.pi * (k // 20) / 20
        lat = 52.52 + r * math.sin(a) / 110_574
        lng = 13.40 + r * math.cos(a) / (111_320 * math.cos(math.radians(52.52)))
        hits = [cover[c] for c in lookup_cells(lat, lng) if c in cover]
        if contains_point(zone, lat, lng):
            assert hits, (lat, lng)
        if any(hits):  # an interior cell is a promise: the point is inside
            assert contains_point(zone, lat, lng)


def test_haversine_meters() -> None:
    assert haversine_m((52.52, 13.40), (52.52, 13.40)) == 0
    assert abs(haversine_m((52.5200, 13.4050), (48.8566, 2.3522)) - 877_500) < 2_000  # Berlin - Paris
