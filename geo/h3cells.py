"""H3 helpers for the live courier index: which res-9 cell a point is in, and the
cells around a point ring by ring (nearest first). Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Iterator

import h3

# Res 9 cells have ~174 m edges (~0.1 km²): a courier moving at city speed changes
# cell every 20-60 s, so most flushes move nobody, and a k-ring of 5 covers ~1.5 km.
LIVE_RESOLUTION = 9


def cell_of(lat: float, lng: float, resolution: int = LIVE_RESOLUTION) -> str:
    """The H3 cell (hex string) containing the point."""
    return h3.latlng_to_cell(lat, lng, resolution)


def rings(lat: float, lng: float, max_k: int, resolution: int = LIVE_RESOLUTION) -> Iterator[list[str]]:
    """Ring 0 (the point's own cell), then ring 1, ... up to ring `max_k`: the hollow
    rings, so a caller widening its search never reads a cell twice."""
    origin = cell_of(lat, lng, resolution)
    yield [origin]
    for k in range(1, max_k + 1):
        try:
            yield list(h3.grid_ring(origin, k))
        except h3.H3BaseException:  # a pentagon in the way: take the disk difference instead
            yield list(set(h3.grid_disk(origin, k)) - set(h3.grid_disk(origin, k - 1)))
