"""Courier <-> bundle matching with OR-Tools min-cost flow, and the commitment rule.

The network: source -> bundle -> (courier | "not now") -> sink. Every bundle sends one unit, so
each one either gets a courier or explicitly waits; each courier takes at most one bundle.
Couriers who are still busy take part too: matching a bundle to a soon-free courier who is
close is how the core learns that it should *not* send a far idle courier now.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ortools.graph.python import min_cost_flow

from dispatch.bundling import BundlePlan
from dispatch.cost import CostBreakdown, DispatchConfig
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
    return _cost_at(plan, max(now, courier.free_at) + approach_s, approach_s, courier, config)


def not_now_cost(plan: BundlePlan, now: float, config: DispatchConfig) -> float:
    """Price of "not now": the bundle served `hold_horizon_s` later by a courier already waiting at
    the counter. It grows with the bundle's lateness like any match does, so an order that has
    waited long is not put off again for a fresh one; and a match is only refused when it is worse
    than waiting that long.
    """
    ideal = Courier("", plan.bundle.pickup, free_at=now)
    arrive = max(now, plan.ready_at - config.pickup_service_s / 2) + config.hold_horizon_s
    cost = _cost_at(plan, arrive, 0.0, ideal, config)
    assert cost is not None
    return cost * config.weights.hold


def _cost_at(plan: BundlePlan, arrive: float, approach_s: float, courier: Courier,
             config: DispatchConfig) -> float | None:
    pickup_at = max(arrive + config.pickup_service_s / 2, plan.ready_at)
    if courier.shift_end is not None and pickup_at > courier.shift_end:
        return None
    n = len(plan.orders)
    breakdown = CostBreakdown(
        lateness_s=tuple(pickup_at - slack for slack in plan.promise_slack_s if pickup_at > slack),
        food_wait_s=n * pickup_at - plan.ready_sum_s,
        ride_delay_s=plan.ride_delay_s,
        courier_wait_s=pickup_at - arrive - config.pickup_service_s / 2,
        travel_s=approach_s + plan.loaded_travel_s,
        prior_deliveries=courier.delivered_count,
    )
    return breakdown.total(config.weights)


def match_bundles(plans: Sequence[BundlePlan], couriers: Sequence[Courier], travel: TravelTime,
                  now: float, config: DispatchConfig,
                  candidates: Mapping[str, Sequence[str]] | None = None) -> list[Match]:
    """Solve the matching; bundles absent from the result are "not now".

    Each bundle first gets arcs to its `candidates_per_bundle` cheapest couriers only (that keeps
    the network small). A bundle whose few candidates all went elsewhere would otherwise wait
    round after round in a corner of town, so bundles left unmatched get arcs to every courier
    and the network is solved once more.

    With `candidates` (store id -> courier ids, e.g. the nearest ones from the live index) a bundle
    is priced only against its store's candidates, so a large region costs pairs per store, not
    bundles x couriers; a store missing from the mapping gets no courier this round.
    """
    if not plans or not couriers:
        return []
    index = {c.courier_id: ci for ci, c in enumerate(couriers)}
    approach: dict[tuple[int, str], float] = {}
    priced: list[list[tuple[float, int]]] = []
    for plan in plans:
        row: list[tuple[float, int]] = []
        if candidates is None:
            allowed: Iterable[int] = range(len(couriers))
        else:
            allowed = [index[cid] for cid in candidates.get(plan.bundle.store_id, ()) if cid in index]
        for ci in allowed:
            courier = couriers[ci]
            key = (ci, plan.bundle.store_id)
            if key not in approach:
                approach[key] = travel.seconds(courier.position, plan.bundle.pickup, courier.vehicle)
            cost = price_match(plan, courier, approach[key], now, config)
            if cost is not None:
                row.append((cost, ci))
        priced.append(row)
    holds = [not_now_cost(plan, now, config) for plan in plans]
    arcs = [heapq.nsmallest(config.candidates_per_bundle, row) for row in priced]
    chosen = _solve_flow(arcs, holds, len(couriers))
    starved = [pi for pi in range(len(plans)) if pi not in chosen and len(arcs[pi]) < len(priced[pi])]
    if starved:
        for pi in starved:
            arcs[pi] = priced[pi]
        chosen = _solve_flow(arcs, holds, len(couriers))
    matches = []
    for pi, (ci, cost) in chosen.items():
        plan, courier = plans[pi], couriers[ci]
        route = plan.route(max(now, courier.free_at), approach[(ci, plan.bundle.store_id)],
                           config.pickup_service_s, config.dropoff_service_s)
        matches.append(Match(plan, courier, route, cost))
    return matches


def _solve_flow(arcs: list[list[tuple[float, int]]], holds: list[float],
                n_couriers: int) -> dict[int, tuple[int, float]]:
    """Min-cost flow source -> bundle -> courier | not-now -> sink; bundle index -> (courier index, cost)."""
    flow = min_cost_flow.SimpleMinCostFlow()
    n_plans = len(arcs)
    source, not_now, sink = n_plans + n_couriers, n_plans + n_couriers + 1, n_plans + n_couriers + 2
    arc_match: dict[int, tuple[int, int, float]] = {}
    for pi, hold in enumerate(holds):
        flow.add_arc_with_capacity_and_unit_cost(source, pi, 1, 0)
        flow.add_arc_with_capacity_and_unit_cost(pi, not_now, 1, round(hold * COST_SCALE))
        for cost, ci in arcs[pi]:
            if cost < hold:
                arc = flow.add_arc_with_capacity_and_unit_cost(pi, n_plans + ci, 1, round(cost * COST_SCALE))
                arc_match[arc] = (pi, ci, cost)
    for ci in range(n_couriers):
        flow.add_arc_with_capacity_and_unit_cost(n_plans + ci, sink, 1, 0)
    flow.add_arc_with_capacity_and_unit_cost(not_now, sink, n_plans, 0)
    flow.set_node_supply(source, n_plans)
    flow.set_node_supply(sink, -n_plans)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed with status {status}")
    return {pi: (ci, cost) for arc, (pi, ci, cost) in arc_match.items() if flow.flow(arc) > 0}


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
