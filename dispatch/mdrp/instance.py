"""Load and validate a Grubhub MDRP instance folder (see ../shared/mdrp/FORMAT.md)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

REQUIRED_FILES = ("orders.txt", "restaurants.txt", "couriers.txt", "instance_parameters.txt")
HEADERS = {
    "orders.txt": ["order", "x", "y", "placement_time", "restaurant", "ready_time"],
    "restaurants.txt": ["restaurant", "x", "y"],
    "couriers.txt": ["courier", "x", "y", "on_time", "off_time"],
}
PARAMETER_HEADER = ["meters_per_minute", "pickup service minutes", "dropoff service minutes",
                    "target click-to-door", "maximum click-to-door", "pay per order", "guaranteed pay per hour"]


class MalformedInstanceError(ValueError):
    """The folder is not a readable MDRP instance; the message says what and where."""


@dataclass(frozen=True, slots=True)
class Parameters:
    meters_per_minute: float
    pickup_service_min: float
    dropoff_service_min: float
    target_click_to_door_min: float
    max_click_to_door_min: float
    pay_per_order: float
    guaranteed_pay_per_hour: float


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    x: float
    y: float
    placement_time: float
    restaurant: str
    ready_time: float


@dataclass(frozen=True, slots=True)
class Restaurant:
    restaurant_id: str
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class CourierShift:
    courier_id: str
    x: float
    y: float
    on_time: float
    off_time: float


@dataclass(frozen=True, slots=True)
class Instance:
    name: str
    parameters: Parameters
    orders: dict[str, Order]
    restaurants: dict[str, Restaurant]
    couriers: dict[str, CourierShift]

    def travel_min(self, origin: tuple[float, float], destination: tuple[float, float]) -> int:
        """The instance's travel rule: ceil(euclidean meters / meters_per_minute)."""
        meters = math.hypot(destination[0] - origin[0], destination[1] - origin[1])
        return math.ceil(meters / self.parameters.meters_per_minute)

    def location(self, place_id: str, courier_id: str) -> tuple[float, float]:
        """Where an id from a courier route is: '0' is the courier's on-location."""
        if place_id == "0" or place_id == courier_id:
            c = self.couriers[courier_id]
            return (c.x, c.y)
        if place_id in self.restaurants:
            r = self.restaurants[place_id]
            return (r.x, r.y)
        o = self.orders[place_id]
        return (o.x, o.y)

    def restricted(self, keep_order: Callable[[Order], bool], keep_courier: Callable[[CourierShift], bool]
                   ) -> Instance:
        """A smaller instance with the orders and couriers kept by the predicates (for quick replays)."""
        return replace(self, orders={k: o for k, o in self.orders.items() if keep_order(o)},
                       couriers={k: c for k, c in self.couriers.items() if keep_courier(c)})


def _rows(path: Path, header: list[str]) -> list[list[str]]:
    try:
        lines = [line.rstrip("\n") for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise MalformedInstanceError(f"{path}: cannot read ({exc})") from exc
    if not lines:
        raise MalformedInstanceError(f"{path}: empty file")
    found = [h.strip() for h in lines[0].split("\t")]
    if found != header:
        raise MalformedInstanceError(f"{path}: header is {found}, expected {header}")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(header):
            raise MalformedInstanceError(f"{path}:{number}: {len(fields)} fields, expected {len(header)}")
        rows.append([f.strip() for f in fields])
    return rows


def _number(value: str, path: Path, row: int, column: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise MalformedInstanceError(f"{path}:{row}: {column} is {value!r}, not a number") from None
    if not math.isfinite(number):
        raise MalformedInstanceError(f"{path}:{row}: {column} is not finite")
    return number


def _unique(ids: list[str], path: Path) -> None:
    if len(set(ids)) != len(ids):
        raise MalformedInstanceError(f"{path}: duplicate ids")


def load_instance(folder: str | Path) -> Instance:
    """Read an instance folder, checking every rule the replay relies on.

    Raises MalformedInstanceError with the file and line at fault.
    """
    root = Path(folder)
    if not root.is_dir():
        raise MalformedInstanceError(f"{root}: not a directory")
    missing = [name for name in REQUIRED_FILES if not (root / name).is_file()]
    if missing:
        raise MalformedInstanceError(f"{root}: missing {', '.join(missing)}")

    params_path = root / "instance_parameters.txt"
    params_rows = _rows(params_path, PARAMETER_HEADER)
    if len(params_rows) != 1:
        raise MalformedInstanceError(f"{params_path}: expected exactly one data row")
    values = [_number(v, params_path, 2, c) for v, c in zip(params_rows[0], PARAMETER_HEADER, strict=True)]
    parameters = Parameters(*values)
    if parameters.meters_per_minute <= 0 or parameters.pickup_service_min < 0 or parameters.dropoff_service_min < 0:
        raise MalformedInstanceError(f"{params_path}: speed must be positive and service times non-negative")

    path = root / "restaurants.txt"
    restaurants = {}
    for i, (rid, x, y) in enumerate(_rows(path, HEADERS["restaurants.txt"]), start=2):
        restaurants[rid] = Restaurant(rid, _number(x, path, i, "x"), _number(y, path, i, "y"))
    _unique([r[0] for r in _rows(path, HEADERS["restaurants.txt"])], path)

    path = root / "orders.txt"
    order_rows = _rows(path, HEADERS["orders.txt"])
    _unique([r[0] for r in order_rows], path)
    orders = {}
    for i, (oid, x, y, placed, rid, ready) in enumerate(order_rows, start=2):
        order = Order(oid, _number(x, path, i, "x"), _number(y, path, i, "y"),
                      _number(placed, path, i, "placement_time"), rid, _number(ready, path, i, "ready_time"))
        if rid not in restaurants:
            raise MalformedInstanceError(f"{path}:{i}: unknown restaurant {rid!r}")
        if order.ready_time < order.placement_time:
            raise MalformedInstanceError(f"{path}:{i}: ready_time before placement_time")
        orders[oid] = order

    path = root / "couriers.txt"
    courier_rows = _rows(path, HEADERS["couriers.txt"])
    _unique([r[0] for r in courier_rows], path)
    couriers = {}
    for i, (cid, x, y, on, off) in enumerate(courier_rows, start=2):
        shift = CourierShift(cid, _number(x, path, i, "x"), _number(y, path, i, "y"),
                             _number(on, path, i, "on_time"), _number(off, path, i, "off_time"))
        if shift.off_time < shift.on_time:
            raise MalformedInstanceError(f"{path}:{i}: off_time before on_time")
        couriers[cid] = shift
    clashes = set(orders) & set(restaurants) | set(orders) & set(couriers) | set(restaurants) & set(couriers)
    if clashes or "0" in orders or "0" in restaurants:
        raise MalformedInstanceError(f"{root}: ids shared between files: {sorted(clashes)[:5]}")
    if not orders:
        raise MalformedInstanceError(f"{root / 'orders.txt'}: no orders")
    return Instance(root.name, parameters, orders, restaurants, couriers)
