"""Replay an MDRP instance in simulated time through the dispatch core.

The simulator owns the rules, the core only proposes: orders become visible at placement,
couriers exist only from `on_time` and may not pick up after `off_time`, travel is
ceil(euclid / speed), pickup and drop-off services are split in halves around the pickup and
drop-off instants, pickup is never before the food is ready, a bundle holds one restaurant's
orders, a courier sent on a bundle completes it without diversion and then waits at its last
drop-off. Any proposal breaking a rule is refused and counted, never executed.

In a seeded `World` (dispatch.mdrp.world) a proposal is an offer: the courier declines it as the
world says (and an offer it could not pick up before its shift ends), which holds the courier and
its orders until the offer lapses; an accepted one is driven in the realised world (late food,
slow legs). The dispatcher sees only what `Knowledge` lets it: announced ready times until a
courier reaches the counter, its own plan of a busy courier's route as revised by each arrival,
and answers when they come.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from dispatch.core import decide
from dispatch.cost import DispatchConfig, route_driving_s
from dispatch.mdrp.instance import CourierShift, Instance, Order
from dispatch.mdrp.knowledge import AnswerSeen, Knowledge, LegSeen, ReadySeen
from dispatch.mdrp.solution import AssignmentRow, MoveRow, OrderRow, Solution
from dispatch.mdrp.world import World
from dispatch.model import Assignment, Courier, CourierState


@dataclass(slots=True)
class _Track:
    """One courier's state during a replay (mutable, private to one run)."""

    shift: CourierShift
    position: tuple[float, float]
    place: str = "0"  # the id the next move departs from
    free_at: float = 0.0  # minutes
    delivered: int = 0
    moves: list[MoveRow] = field(default_factory=list)
    offer_until: float = -math.inf  # minutes: holding an offer it will decline until then
    # The dispatcher's estimate of `free_at` (seconds) while busy, each from the minute it is known.
    expected: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Lapsing:
    """A declined offer: its orders are held until it lapses."""

    until: float  # minutes
    courier_id: str
    order_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    instance: Instance
    config: DispatchConfig
    solution: Solution
    round_solve_s: tuple[float, ...]  # one entry per round that had open orders
    refused: int  # proposals the simulator refused as breaking a rule
    wall_s: float
    world: World = field(default_factory=World)
    offers: int = 0  # proposals that reached a courier (accepted or declined)
    declined: int = 0


def replay(instance: Instance, config: DispatchConfig, progress: Callable[[str], None] | None = None,
           world: World | None = None) -> ReplayResult:
    """Run the whole day (in `world`, else the instance's perfect one); return the solution and
    per-round solve times."""
    started = time.perf_counter()
    world = world if world is not None else World()
    if not world.perfect:
        config = replace(config, offer_timeout_s=world.offer_timeout_s)  # the dispatcher knows its timeout
    day = _Day(instance, config, world)
    solve_times = day.run(progress)
    moves = tuple(m for tr in day.tracks.values() for m in tr.moves)
    return ReplayResult(instance, config, Solution(tuple(day.assignments), tuple(day.outcomes), moves),
                        tuple(solve_times), day.refused, time.perf_counter() - started, world, day.offers,
                        day.declined)


class _Day:
    def __init__(self, instance: Instance, config: DispatchConfig, world: World) -> None:
        self.instance = instance
        self.config = config
        self.world = world
        self.knowledge = Knowledge(instance, config, world)
        self.tracks = {cid: _Track(c, (c.x, c.y), free_at=c.on_time) for cid, c in instance.couriers.items()}
        self.open: dict[str, Order] = {}
        self.excluded: dict[str, frozenset[str]] = {}
        self.lapsing: list[_Lapsing] = []
        self.assignments: list[AssignmentRow] = []
        self.outcomes: list[OrderRow] = []
        self.refused = self.offers = self.declined = 0

    def run(self, progress: Callable[[str], None] | None) -> list[float]:
        instance, config = self.instance, self.config
        step = config.step_s / 60.0
        horizon = config.horizon_s / 60.0
        waiting = sorted(instance.orders.values(), key=lambda o: (o.placement_time, o.order_id))
        solve_times: list[float] = []
        last_shift_end = max((c.off_time for c in instance.couriers.values()), default=0.0)
        t = math.floor(waiting[0].placement_time / step) * step
        next_report = t
        cursor = 0
        while (cursor < len(waiting) or self.open or self.lapsing) and t <= last_shift_end:
            self._settle(t)
            while cursor < len(waiting) and waiting[cursor].placement_time <= t:
                self.open[waiting[cursor].order_id] = waiting[cursor]
                cursor += 1
            if not self.open:
                due = [o.until for o in self.lapsing]
                if cursor < len(waiting):
                    due.append(waiting[cursor].placement_time)
                t = math.ceil(min(due) / step) * step
                continue
            orders = [self.knowledge.open_order(o, self.excluded.get(oid, frozenset())) for oid, o in self.open.items()]
            couriers = self._couriers(t, horizon)
            round_started = time.perf_counter()
            decision = decide(orders, couriers, self.knowledge.travel(t * 60), t * 60, config)
            solve_times.append(time.perf_counter() - round_started)
            for assignment in decision.assignments:
                self._offer(assignment, t)
            if progress is not None and t >= next_report:
                progress(f"{instance.name} [{config.policy}] t={t:5.0f} min  assigned {len(self.outcomes)}/"
                         f"{len(instance.orders)}  open {len(self.open)}")
                next_report = t + 60
            t += step
        return solve_times

    def _settle(self, t: float) -> None:
        """Declined offers that lapsed by `t` free their orders (without that courier); the
        dispatcher takes in what it has seen by `t`."""
        if self.lapsing:
            lapsed = [o for o in self.lapsing if o.until <= t]
            self.lapsing = [o for o in self.lapsing if o.until > t]
            for offer in lapsed:
                for oid in offer.order_ids:
                    self.open[oid] = self.instance.orders[oid]
                    self.excluded[oid] = self.excluded.get(oid, frozenset()) | {offer.courier_id}
        self.knowledge.learn_until(t)

    def _couriers(self, t: float, horizon: float) -> list[Courier]:
        return [
            Courier(cid, tr.position, free_at=self._expected_free_s(tr, t),
                    state=CourierState.IDLE if tr.free_at <= t else CourierState.BUSY,
                    shift_end=tr.shift.off_time * 60, delivered_count=tr.delivered,
                    acceptance=self.knowledge.acceptance_of(cid))
            for cid, tr in self.tracks.items()
            if tr.shift.on_time <= t + horizon and max(t, tr.free_at) <= tr.shift.off_time and tr.offer_until <= t
        ]

    def _expected_free_s(self, track: _Track, t: float) -> float:
        """When the dispatcher expects the courier free: known once it is; while busy, its plan of
        the route as revised by the last arrival it has seen (never before the next round)."""
        if self.world.perfect or track.free_at <= t:
            return track.free_at * 60
        expected = track.free_at * 60  # a proposal without a route: the simulator's own timing
        for known_from, value in track.expected:
            if known_from > t:
                break
            expected = value
        return max(expected, t * 60 + self.config.step_s)

    def _offer(self, assignment: Assignment, t: float) -> None:
        """Execute one proposal under the instance rules and the world's answers."""
        found = self._check(assignment, t)
        if found is None:
            self.refused += 1
            return
        track, orders = found
        depart = float(math.ceil(t - 1e-9))  # the evaluator reads whole minutes
        world, cid = self.world, track.shift.courier_id
        r = orders[0].restaurant
        arrive = depart + world.leg_min(self.instance, cid, track.place, r)
        pickup = max(arrive + self.instance.parameters.pickup_service_min / 2,
                     max(world.actual_ready_min(o) for o in orders))
        if world.perfect:
            if pickup > track.shift.off_time:
                self.refused += 1
                return
        else:
            self.offers += 1
            trip_s = route_driving_s(assignment.route)
            if world.declines_bundle(cid, [o.order_id for o in orders]) or pickup > track.shift.off_time:
                self._decline(track, orders, t, trip_s)
                return
            self.knowledge.see(t, AnswerSeen(cid, trip_s, True))
        self._drive(track, assignment, orders, depart, arrive, pickup)

    def _check(self, assignment: Assignment, t: float) -> tuple[_Track, list[Order]] | None:
        """The courier's track and the orders, or None if the proposal breaks a rule."""
        track = self.tracks.get(assignment.courier_id)
        order_ids = assignment.bundle.order_ids
        if track is None or not order_ids or len(set(order_ids)) != len(order_ids):
            return None
        if any(oid not in self.open for oid in order_ids):
            return None
        orders = [self.instance.orders[oid] for oid in order_ids]
        if any(o.restaurant != orders[0].restaurant for o in orders):
            return None
        depart = float(math.ceil(t - 1e-9))
        if track.shift.on_time > depart or track.free_at > depart or track.offer_until > t:
            return None
        if any(track.shift.courier_id in self.excluded.get(oid, ()) for oid in order_ids):
            return None
        return track, orders

    def _decline(self, track: _Track, orders: list[Order], t: float, trip_s: float) -> None:
        """The courier lets the offer lapse: it and the orders are held until then."""
        until = t + self.world.offer_timeout_s / 60
        cid = track.shift.courier_id
        track.offer_until = until
        for o in orders:
            del self.open[o.order_id]
        self.lapsing.append(_Lapsing(until, cid, tuple(o.order_id for o in orders)))
        self.knowledge.see(until, AnswerSeen(cid, trip_s, False))
        self.declined += 1

    def _drive(self, track: _Track, assignment: Assignment, orders: list[Order], depart: float, arrive: float,
               pickup: float) -> None:
        """The courier drives the bundle: moves, pickup and drop-offs in the realised world."""
        instance, world, cid = self.instance, self.world, track.shift.courier_id
        params = instance.parameters
        half_pick, half_drop = params.pickup_service_min / 2, params.dropoff_service_min / 2
        r = instance.restaurants[orders[0].restaurant]
        plan = _Plan(assignment, depart)
        self._saw_leg(track.place, r.restaurant_id, cid, depart, arrive)
        for o in orders:
            self.knowledge.see(arrive, ReadySeen(o.restaurant, (o.ready_time - o.placement_time) * 60,
                                                 (world.actual_ready_min(o) - o.placement_time) * 60))
        track.expected = plan.initial() + plan.revised(arrive, pickup, 0)
        track.moves.append(MoveRow(cid, depart, track.place, r.restaurant_id))
        leave, here, here_id = pickup + half_pick, (r.x, r.y), r.restaurant_id
        for i, o in enumerate(orders, start=1):
            track.moves.append(MoveRow(cid, leave, here_id, o.order_id))
            reached = leave + world.leg_min(instance, cid, here_id, o.order_id)
            self._saw_leg(here_id, o.order_id, cid, leave, reached)
            dropoff = reached + half_drop
            track.expected += plan.revised(reached, dropoff, i)
            self.outcomes.append(OrderRow(o.order_id, pickup, dropoff, cid))
            leave, here, here_id = dropoff + half_drop, (o.x, o.y), o.order_id
            del self.open[o.order_id]
        self.assignments.append(AssignmentRow(depart, pickup, cid, tuple(o.order_id for o in orders)))
        track.position, track.place, track.free_at = here, here_id, leave
        track.delivered += len(orders)

    def _saw_leg(self, origin_id: str, destination_id: str, courier_id: str, left: float, reached: float) -> None:
        if not self.knowledge.learns:
            return
        origin = self.instance.location(origin_id, courier_id)
        destination = self.instance.location(destination_id, courier_id)
        nominal = self.instance.travel_min(origin, destination) * 60.0
        self.knowledge.see(reached, LegSeen(origin, destination, nominal, (reached - left) * 60))


class _Plan:
    """The dispatcher's own plan of a route (its `Assignment.route`), laid on the real departure:
    how long after each stop it expects the courier to be free."""

    def __init__(self, assignment: Assignment, depart: float) -> None:
        route = assignment.route
        self.depart = depart
        self.stops = route.stops
        self.finish_after_depart = route.finish_at - route.depart_at if route.stops else None

    def initial(self) -> list[tuple[float, float]]:
        if self.finish_after_depart is None:
            return []
        return [(self.depart, self.depart * 60 + self.finish_after_depart)]

    def revised(self, known_at: float, stop_done: float, stop: int) -> list[tuple[float, float]]:
        """At `known_at` the courier is seen at stop `stop` (0: the pickup), done there at `stop_done`."""
        if self.finish_after_depart is None or stop >= len(self.stops):
            return []
        remaining = self.stops[-1].leave_at - self.stops[stop].done_at
        return [(known_at, stop_done * 60 + remaining)]
