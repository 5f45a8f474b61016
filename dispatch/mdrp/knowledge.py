"""What the dispatcher knows of a replay's world, and what it learns as simulated time passes.

In the instance's perfect world it knows everything that matters up front (announced ready times
are the real ones, the MDRP travel rule is exact, every courier accepts) and learns nothing. In a
seeded `World` it sees only what a live dispatcher would, when it would:
- a courier's answer: an acceptance at once, a decline when the offer lapses (the acceptance book,
  `dispatch.acceptance`, as the live dispatcher's);
- a kitchen's real ready time when a courier reaches the counter (the pooled spread of lateness and
  each store's own steady lateness, `dispatch.readiness`);
- a leg's real duration when the courier arrives (per H3 cell and hour, `geo.speeds`, as the live
  loop learns from GPS hops; the instance's planar meters are laid on a tangent plane for H3).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import h3

from dispatch.acceptance import AcceptanceBook
from dispatch.cost import DispatchConfig
from dispatch.mdrp.instance import Instance, Order
from dispatch.mdrp.world import World
from dispatch.model import OpenOrder
from dispatch.readiness import ReadyLearning, ReadyTimes, ready_quantile
from geo.eta import MdrpTravelTime, Point, TravelTime
from geo.speeds import LearnedTravelTime, SpeedLearning, SpeedTable, leg_hops

ANCHOR = (40.0, -75.0)  # where the planar meters are laid for H3 (any point away from the poles)
METERS_PER_DEGREE = 111_320.0


@dataclass(frozen=True, slots=True)
class LegSeen:
    origin: Point
    destination: Point
    nominal_s: float  # what the instance's travel rule says
    observed_s: float  # what it took


@dataclass(frozen=True, slots=True)
class ReadySeen:
    store_id: str
    stated_prep_s: float
    actual_prep_s: float


@dataclass(frozen=True, slots=True)
class AnswerSeen:
    courier_id: str
    trip_s: float  # the offer's trip as the dispatcher planned it (its band)
    accepted: bool


Observation = LegSeen | ReadySeen | AnswerSeen


class Knowledge:
    """The dispatcher's side of one replay: its estimates, and what it has yet to see."""

    def __init__(self, instance: Instance, config: DispatchConfig, world: World) -> None:
        self.instance = instance
        self.learns = not world.perfect
        self.base = MdrpTravelTime(instance.parameters.meters_per_minute)
        self.acceptance = AcceptanceBook()
        self.ready = ReadyTimes(ReadyLearning(quantile=ready_quantile(config.weights)))
        self.speeds = SpeedTable(SpeedLearning())
        self._cells: dict[Point, str] = {}
        self._queue: list[tuple[float, int, Observation]] = []
        self._seq = 0
        self._snapshot: tuple[int, SpeedTable, dict[str, float]] | None = None

    # -- seeing ---------------------------------------------------------------------------------

    def see(self, at_min: float, observation: Observation) -> None:
        """`observation` becomes known at `at_min` (simulated minutes)."""
        if self.learns:
            self._seq += 1
            heapq.heappush(self._queue, (at_min, self._seq, observation))

    def learn_until(self, t_min: float) -> None:
        """Take in everything that became known by `t_min`."""
        legs: list[tuple[LegSeen, float]] = []
        while self._queue and self._queue[0][0] <= t_min:
            at, _, seen = heapq.heappop(self._queue)
            if isinstance(seen, LegSeen):
                legs.append((seen, at))
            elif isinstance(seen, ReadySeen):
                self.ready.observe(seen.store_id, seen.stated_prep_s, seen.actual_prep_s)
            else:
                self.acceptance.observe(seen.courier_id, seen.trip_s, seen.accepted)
        if legs:
            learning = self.speeds.learning
            hops = [hop for leg, at in legs if leg.nominal_s > 0
                    for hop in leg_hops(self.cell_of(leg.origin), self.cell_of(leg.destination),
                                        learning.hour_of(at * 60), leg.observed_s, leg.nominal_s, at * 60)]
            self.speeds = self.speeds.observed(hops)[0]

    # -- the dispatcher's estimates --------------------------------------------------------------

    def travel(self, now_s: float) -> TravelTime:
        """The instance's travel rule, times what has been learned of each cell at this hour."""
        if not self.learns:
            return self.base
        hour = self.speeds.learning.hour_of(now_s)
        if self._snapshot is None or self._snapshot[0] != hour or self._snapshot[1] is not self.speeds:
            self._snapshot = (hour, self.speeds, self.speeds.factors_at(now_s))
        return LearnedTravelTime(self.base, self._snapshot[2], self.speeds.learning.resolution, self.cell_of)

    def open_order(self, order: Order, excluded: frozenset[str]) -> OpenOrder:
        """The order as the dispatcher sees it: its planned ready time, the couriers who declined it."""
        r = self.instance.restaurants[order.restaurant]
        target = self.instance.parameters.target_click_to_door_min
        ready = order.ready_time * 60
        if self.learns:
            stated = (order.ready_time - order.placement_time) * 60
            ready = order.placement_time * 60 + self.ready.planned_prep_s(order.restaurant, stated)
        return OpenOrder(order.order_id, order.restaurant, (r.x, r.y), (order.x, order.y),
                         placed_at=order.placement_time * 60, ready_at=ready,
                         promised_at=(order.placement_time + target) * 60, excluded_couriers=excluded)

    def acceptance_of(self, courier_id: str) -> tuple[float, ...]:
        return self.acceptance.acceptance(courier_id) if self.learns else ()

    def cell_of(self, point: Point) -> str:
        """The H3 cell of a planar point, laid east and north of `ANCHOR`."""
        found = self._cells.get(point)
        if found is None:
            lat = ANCHOR[0] + point[1] / METERS_PER_DEGREE
            lng = ANCHOR[1] + point[0] / (METERS_PER_DEGREE * math.cos(math.radians(ANCHOR[0])))
            found = self._cells[point] = h3.latlng_to_cell(lat, lng, self.speeds.learning.resolution)
        return found
