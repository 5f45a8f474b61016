"""Plain data the dispatch core reads and returns. No I/O; every time is in seconds.

The live driver uses epoch seconds, the MDRP replay uses seconds since the start of the day;
the core only ever subtracts times, so either origin works.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from geo.eta import Point


class CourierState(StrEnum):
    IDLE = "idle"  # waiting for work where it stands (MDRP: at its last drop-off)
    BUSY = "busy"  # carrying a bundle; becomes free at `free_at` at `position`
    OFFLINE = "offline"


class StopKind(StrEnum):
    PICKUP = "pickup"
    DROPOFF = "dropoff"


class Policy(StrEnum):
    OPTIMIZER = "optimizer"
    GREEDY = "greedy"


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """An order waiting for a courier."""

    order_id: str
    store_id: str
    pickup: Point
    dropoff: Point
    placed_at: float
    ready_at: float  # stated or estimated (see geo.eta.PrepTimeEstimator)
    promised_at: float  # the click-to-door promise shown to the customer
    excluded_couriers: frozenset[str] = frozenset()  # declined or timed out for this order


@dataclass(frozen=True, slots=True)
class Courier:
    """A courier as the core sees it: where and when it can start its next bundle."""

    courier_id: str
    position: Point  # now if idle; where its current bundle ends if busy
    free_at: float  # <= now means idle now
    state: CourierState = CourierState.IDLE
    shift_end: float | None = None  # no pickups after it (drop-offs may finish later)
    vehicle: str = "car"
    current_bundle: tuple[str, ...] = ()
    delivered_count: int = 0  # orders delivered this shift, for fairness
    acceptance: tuple[float, ...] = ()  # learned chance it accepts an offer, per band (cost.OFFER_BANDS_S)


@dataclass(frozen=True, slots=True)
class Bundle:
    """Orders from one store carried together (a singleton is a bundle of one)."""

    store_id: str
    pickup: Point
    order_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Stop:
    kind: StopKind
    point: Point
    order_ids: tuple[str, ...]
    arrive_at: float
    done_at: float  # pickup or drop-off instant (middle of the service time)
    leave_at: float


@dataclass(frozen=True, slots=True)
class Route:
    """A courier's plan for one bundle: depart, one pickup, then drop-offs in order."""

    depart_at: float
    stops: tuple[Stop, ...]

    @property
    def pickup_at(self) -> float:
        return self.stops[0].done_at

    @property
    def finish_at(self) -> float:
        return self.stops[-1].leave_at

    def dropoff_at(self, order_id: str) -> float:
        for stop in self.stops[1:]:
            if order_id in stop.order_ids:
                return stop.done_at
        raise KeyError(order_id)


@dataclass(frozen=True, slots=True)
class Assignment:
    courier_id: str
    bundle: Bundle
    route: Route
    cost: float


@dataclass(frozen=True, slots=True)
class Reposition:
    """Move an idle, unassigned courier toward a store that has food waiting for couriers."""

    courier_id: str
    store_id: str
    target: Point


@dataclass(frozen=True, slots=True)
class Decision:
    """What one dispatch round decided: commit these, hold those, move these couriers."""

    assignments: tuple[Assignment, ...] = ()
    held_order_ids: tuple[str, ...] = ()
    repositions: tuple[Reposition, ...] = ()
    stats: dict[str, float] = field(default_factory=dict)
