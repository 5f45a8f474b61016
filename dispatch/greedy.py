"""Baseline policy: first come, first served, nearest idle courier, no bundles, no holding.

It is what a dispatcher does without an optimizer, and the yardstick the benchmarks compare to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dispatch.bundling import plan_bundle
from dispatch.cost import CostBreakdown, DispatchConfig, route_breakdown, total_costs
from dispatch.model import Assignment, Bundle, Courier, CourierState, Decision, OpenOrder, Route
from geo.eta import TravelTime


def decide_greedy(orders: Sequence[OpenOrder], couriers: Sequence[Courier], travel: TravelTime,
                  now: float, config: DispatchConfig,
                  candidates: Mapping[str, Sequence[str]] | None = None) -> Decision:
    """Give each order, oldest first, the idle courier who reaches its restaurant soonest
    (among its store's `candidates` when given)."""
    idle = {c.courier_id: c for c in couriers
            if c.state is not CourierState.OFFLINE and c.free_at <= now}
    chosen: list[tuple[str, Bundle, Route, CostBreakdown]] = []
    held: list[str] = []
    for order in sorted(orders, key=lambda o: (o.placed_at, o.order_id)):
        plan = plan_bundle([order], travel, config)
        best: tuple[float, Courier] | None = None
        pool = idle.values() if candidates is None else [
            idle[cid] for cid in candidates.get(order.store_id, ()) if cid in idle]
        for courier in pool:
            if courier.courier_id in order.excluded_couriers:
                continue
            approach = travel.seconds(courier.position, order.pickup, courier.vehicle)
            pickup_at = max(now + approach + config.pickup_service_s / 2, order.ready_at)
            if courier.shift_end is not None and pickup_at > courier.shift_end:
                continue
            if best is None or approach < best[0]:
                best = (approach, courier)
        if best is None:
            held.append(order.order_id)
            continue
        approach, courier = best
        del idle[courier.courier_id]
        route = plan.route(now, approach, config.pickup_service_s, config.dropoff_service_s)
        chosen.append((courier.courier_id, plan.bundle, route,
                       route_breakdown(route, {order.order_id: order}, courier, plan.direct_ride_s,
                                       approach + plan.loaded_travel_s, config.pickup_service_s,
                                       config.decline_delay_s)))
    costs = total_costs([parts for *_, parts in chosen], config.weights).tolist()  # one batch, not one per order
    assignments = tuple(Assignment(courier_id, bundle, route, cost)
                        for (courier_id, bundle, route, _), cost in zip(chosen, costs, strict=True))
    return Decision(assignments, tuple(held))
