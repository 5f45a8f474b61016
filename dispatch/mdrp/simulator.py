"""Replay an MDRP instance in simulated time through the dispatch core.

The simulator owns the rules, the core only proposes: orders become visible at placement,
couriers exist only from `on_time` and may not pick up after `off_time`, travel is
ceil(euclid / speed), pickup and drop-off services are split in halves around the pickup and
drop-off instants, pickup is never before the food is ready, a bundle holds one restaurant's
orders, a courier sent on a bundle completes it without diversion and then waits at its last
drop-off. Any proposal breaking a rule is refused and counted, never executed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dispatch.core import decide
from dispatch.cost import DispatchConfig
from dispatch.mdrp.instance import CourierShift, Instance, Order
from dispatch.mdrp.solution import AssignmentRow, MoveRow, OrderRow, Solution
from dispatch.model import Assignment, Courier, CourierState, OpenOrder
from geo.eta import MdrpTravelTime


@dataclass(slots=True)
class _Track:
    """One courier's state during a replay (mutable, private to one run)."""

    shift: CourierShift
    position: tuple[float, float]
    place: str = "0"  # the id the next move departs from
    free_at: float = 0.0  # minutes
    delivered: int = 0
    moves: list[MoveRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    instance: Instance
    config: DispatchConfig
    solution: Solution
    round_solve_s: tuple[float, ...]  # one entry per round that had open orders
    refused: int  # proposals the simulator refused as breaking a rule
    wall_s: float


def _open_order(order: Order, instance: Instance) -> OpenOrder:
    r = instance.restaurants[order.restaurant]
    target = instance.parameters.target_click_to_door_min
    return OpenOrder(order.order_id, order.restaurant, (r.x, r.y), (order.x, order.y),
                     placed_at=order.placement_time * 60, ready_at=order.ready_time * 60,
                     promised_at=(order.placement_time + target) * 60)


def replay(instance: Instance, config: DispatchConfig,
           progress: Callable[[str], None] | None = None) -> ReplayResult:
    """Run the whole day; return the solution and per-round solve times."""
    started = time.perf_counter()
    params = instance.parameters
    travel = MdrpTravelTime(params.meters_per_minute)
    step = config.step_s / 60.0
    horizon = config.horizon_s / 60.0
    tracks = {cid: _Track(c, (c.x, c.y), free_at=c.on_time) for cid, c in instance.couriers.items()}
    waiting = sorted(instance.orders.values(), key=lambda o: (o.placement_time, o.order_id))
    open_orders: dict[str, OpenOrder] = {}
    assignments: list[AssignmentRow] = []
    outcomes: list[OrderRow] = []
    solve_times: list[float] = []
    refused = 0
    last_shift_end = max((c.off_time for c in instance.couriers.values()), default=0.0)
    t = math.floor(waiting[0].placement_time / step) * step
    next_report = t
    cursor = 0
    while (cursor < len(waiting) or open_orders) and t <= last_shift_end:
        while cursor < len(waiting) and waiting[cursor].placement_time <= t:
            open_orders[waiting[cursor].order_id] = _open_order(waiting[cursor], instance)
            cursor += 1
        if not open_orders:
            t = math.ceil(waiting[cursor].placement_time / step) * step
            continue
        couriers = [
            Courier(cid, tr.position, free_at=tr.free_at * 60,
                    state=CourierState.IDLE if tr.free_at <= t else CourierState.BUSY,
                    shift_end=tr.shift.off_time * 60, delivered_count=tr.delivered)
            for cid, tr in tracks.items()
            if tr.shift.on_time <= t + horizon and max(t, tr.free_at) <= tr.shift.off_time
        ]
        round_started = time.perf_counter()
        decision = decide(list(open_orders.values()), couriers, travel, t * 60, config)
        solve_times.append(time.perf_counter() - round_started)
        for assignment in decision.assignments:
            if _commit(assignment, t, tracks, open_orders, instance, travel, assignments, outcomes):
                for oid in assignment.bundle.order_ids:
                    del open_orders[oid]
            else:
                refused += 1
        if progress is not None and t >= next_report:
            progress(f"{instance.name} [{config.policy}] t={t:5.0f} min  assigned {len(outcomes)}/"
                     f"{len(instance.orders)}  open {len(open_orders)}")
            next_report = t + 60
        t += step
    moves = tuple(m for tr in tracks.values() for m in tr.moves)
    return ReplayResult(instance, config, Solution(tuple(assignments), tuple(outcomes), moves),
                        tuple(solve_times), refused, time.perf_counter() - started)


def _commit(assignment: Assignment, t: float, tracks: dict[str, _Track], open_orders: dict[str, OpenOrder],
            instance: Instance, travel: MdrpTravelTime, assignments: list[AssignmentRow],
            outcomes: list[OrderRow]) -> bool:
    """Execute one proposal under the instance rules; False (and nothing done) if it breaks one."""
    track = tracks.get(assignment.courier_id)
    order_ids = assignment.bundle.order_ids
    if track is None or not order_ids or len(set(order_ids)) != len(order_ids):
        return False
    if any(oid not in open_orders for oid in order_ids):
        return False
    orders = [instance.orders[oid] for oid in order_ids]
    restaurant_id = orders[0].restaurant
    if any(o.restaurant != restaurant_id for o in orders):
        return False
    depart = float(math.ceil(t - 1e-9))  # the evaluator reads whole minutes
    if track.shift.on_time > depart or track.free_at > depart:
        return False
    params = instance.parameters
    half_pick, half_drop = params.pickup_service_min / 2, params.dropoff_service_min / 2
    r = instance.restaurants[restaurant_id]
    arrive = depart + travel.minutes(track.position, (r.x, r.y))
    pickup = max(arrive + half_pick, max(o.ready_time for o in orders))
    if pickup > track.shift.off_time:
        return False
    track.moves.append(MoveRow(track.shift.courier_id, depart, track.place, restaurant_id))
    leave, here, here_id = pickup + half_pick, (r.x, r.y), restaurant_id
    for o in orders:
        track.moves.append(MoveRow(track.shift.courier_id, leave, here_id, o.order_id))
        dropoff = leave + travel.minutes(here, (o.x, o.y)) + half_drop
        outcomes.append(OrderRow(o.order_id, pickup, dropoff, track.shift.courier_id))
        leave, here, here_id = dropoff + half_drop, (o.x, o.y), o.order_id
    assignments.append(AssignmentRow(depart, pickup, track.shift.courier_id, tuple(order_ids)))
    track.position, track.place, track.free_at = here, here_id, leave
    track.delivered += len(orders)
    return True
