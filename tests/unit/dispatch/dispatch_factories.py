"""Small builders for dispatch unit tests (planar meter coordinates, MDRP-style travel)."""

from __future__ import annotations

from pathlib import Path

from dispatch.model import Courier, CourierState, OpenOrder
from geo.eta import MdrpTravelTime

# 600 m per minute: a point 600*k m away is exactly k minutes away, no ceiling surprises.
TRAVEL = MdrpTravelTime(600.0)
MIN = 60.0


def order(order_id: str, store: str = "r1", store_at: tuple[float, float] = (0.0, 0.0),
          to: tuple[float, float] = (3000.0, 0.0), placed: float = 0.0, ready: float = 10.0,
          promise: float = 40.0) -> OpenOrder:
    """An open order; times in minutes."""
    return OpenOrder(order_id, store, store_at, to, placed * MIN, ready * MIN, (placed + promise) * MIN)


def courier(courier_id: str, at: tuple[float, float], free: float = 0.0, now: float = 0.0,
            shift_end: float | None = None, delivered: int = 0) -> Courier:
    """A courier free at minute `free` (idle if `free` <= `now`)."""
    state = CourierState.IDLE if free <= now else CourierState.BUSY
    return Courier(courier_id, at, free * MIN, state, None if shift_end is None else shift_end * MIN,
                   delivered_count=delivered)


def write_instance(folder: Path, orders: list[tuple], restaurants: list[tuple], couriers: list[tuple],
                   speed: float = 600.0) -> Path:
    """Write an MDRP instance folder: orders (id, x, y, placed, restaurant, ready),
    restaurants (id, x, y), couriers (id, x, y, on, off)."""
    folder.mkdir(parents=True, exist_ok=True)

    def table(name: str, header: list[str], rows: list[tuple]) -> None:
        lines = ["\t".join(header)] + ["\t".join(str(v) for v in row) for row in rows]
        (folder / name).write_text("\n".join(lines) + "\n")

    table("orders.txt", ["order", "x", "y", "placement_time", "restaurant", "ready_time"], orders)
    table("restaurants.txt", ["restaurant", "x", "y"], restaurants)
    table("couriers.txt", ["courier", "x", "y", "on_time", "off_time"], couriers)
    table("instance_parameters.txt",
          ["meters_per_minute", "pickup service minutes", "dropoff service minutes", "target click-to-door",
           "maximum click-to-door", "pay per order", "guaranteed pay per hour"],
          [(speed, 4, 4, 40, 90, 10, 15)])
    return folder
