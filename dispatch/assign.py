"""Courier <-> bundle matching with OR-Tools min-cost flow, and the commitment rule.

The network: source -> bundle -> (courier | "not now") -> sink. Every bundle sends one unit, so
each one either gets a courier or explicitly waits; each courier takes at most one bundle.
Couriers who are still busy take part too: matching a bundle to a soon-free courier who is
close is how the core learns that it should *not* send a far idle courier now.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from ortools.graph.python import min_cost_flow

from dispatch.bundling import BundlePlan
from dispatch.cost import CostBreakdown, DispatchConfig, hold_cost
from dispatch.model import Courier, CourierState, Route
from geo.eta import TravelTime

COST_SCALE = 10  # min-cost flow wants integers; a tenth of a cost unit is plenty


@dataclass(frozen=True, slots=True)
class Match:
    plan: BundlePlan
    courier: Courier
    route: Route
    cost: float


def candidate_couriers(couriers: Sequence[Courier], now: float, config: DispatchConfig) -> list[Courier]:
    """Couriers who could start a bundle within the horizon and may still pick up."""
    horizon = now + config.horizon_s
    return [c for c in couriers
            if c.state is not CourierState.OFFLINE and c.free_at <= horizon
            and (c.shift_end is None or max(now, c.free_at) <= c.shift_end)]


def price_match(plan: BundlePlan, courier: Courier, approach_s: float, now: float,
                config: DispatchConfig) -> float | None:
    """The cost of `courier` taking `plan`, or None if the rules forbid it.

    This is `route_breakdown` on `plan.route(...)` without building the route: it runs for every
    courier-bundle pair of a round, the route only for the few kept.
    """
    if plan.excluded and courier.courier_id in plan.excluded:
        return None
    arrive = max(now, courier.free_at) + approach_s
    pickup_at = max(arrive + config.pickup_service_s / 2, plan.ready_at)
    if courier.shift_end is not None and pickup_at > courier.shift_end:
        return None
    n = len(plan.orders)
    lateness = 0.0
    for slack in plan.promise_slack_s:
        if pickup_at > slack:
            lateness += pickup_at - slack
    breakdown = CostBreakdown(
        lateness_s=lateness,
        food_wait_s=n * pickup_at - plan.ready_sum_s,
        ride_delay_s=plan.ride_delay_s,
        courier_wait_s=pickup_at - arrive - config.pickup_service_s / 2,
        travel_s=approach_s + plan.loaded_travel_s,
        prior_deliveries=courier.delivered_count,
    )
    return breakdown.total(config.weights)


def match_bundles(plans: Sequence[BundlePlan], couriers: Sequence[Courier], travel: TravelTime,
                  now: float, config: DispatchConfig) -> list[Match]:
    """Solve the matching; bundles absent from the result are "not now"."""
    if not plans or not couriers:
        return []
    approach: dict[tuple[int, str], float] = {}
    arcs: list[list[tuple[float, int, Route]]] = []
    for plan in plans:
        priced: list[tuple[float, int, Route]] = []
        for ci, courier in enumerate(couriers):
            key = (ci, plan.bundle.store_id)
            if key not in approach:
                approach[key] = travel.seconds(courier.position, plan.bundle.pickup, courier.vehicle)
            cost = price_match(plan, courier, approach[key], now, config)
            if cost is not None:
                priced.append((cost, ci))
        kept = heapq.nsmallest(config.candidates_per_bundle, priced)
        arcs.append([(cost, ci, plan.route(max(now, couriers[ci].free_at), approach[(ci, plan.bundle.store_id)],
                                            config.pickup_service_s, config.dropoff_service_s))
                     for cost, ci in kept])

    flow = min_cost_flow.SimpleMinCostFlow()
    n_plans, n_couriers = len(plans), len(couriers)
    source, not_now, sink = n_plans + n_couriers, n_plans + n_couriers + 1, n_plans + n_couriers + 2
    arc_route: dict[int, tuple[int, int, float, Route]] = {}
    for pi, plan in enumerate(plans):
        flow.add_arc_with_capacity_and_unit_cost(source, pi, 1, 0)
        hold = hold_cost(len(plan.orders), config)
        flow.add_arc_with_capacity_and_unit_cost(pi, not_now, 1, round(hold * COST_SCALE))
        for cost, ci, route in arcs[pi]:
            if cost >= hold:
                continue
            arc = flow.add_arc_with_capacity_and_unit_cost(pi, n_plans + ci, 1, round(cost * COST_SCALE))
            arc_route[arc] = (pi, ci, cost, route)
    for ci in range(n_couriers):
        flow.add_arc_with_capacity_and_unit_cost(n_plans + ci, sink, 1, 0)
    flow.add_arc_with_capacity_and_unit_cost(not_now, sink, n_plans, 0)
    flow.set_node_supply(source, n_plans)
    flow.set_node_supply(sink, -n_plans)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed with status {status}")
    matches: list[Match] = []
    for arc, (pi, ci, cost, route) in arc_route.items():
        if flow.flow(arc) > 0:
            matches.append(Match(plans[pi], couriers[ci], route, cost))
    return matches


def should_commit(match: Match, now: float, config: DispatchConfig) -> bool:
    """Rolling-horizon commitment: send the courier only if waiting a round would cost something.

    A courier who is not free yet cannot be sent. A free one is sent once leaving at the next
    round would make it reach the counter after the food is ready (less `commit_slack_s`);
    before that, holding keeps both the courier and the order open to a better match.
    """
    if match.courier.free_at > now:
        return False
    pickup = match.route.stops[0]
    arrival_if_held = pickup.arrive_at + config.step_s
    return arrival_if_held + config.pickup_service_s / 2 > match.plan.ready_at - config.commit_slack_s
