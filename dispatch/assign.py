"""Courier <-> bundle matching with OR-Tools min-cost flow, and the commitment rule.

The network: source -> bundle -> (courier | "not now") -> sink. Every bundle sends one unit, so
each one either gets a courier or explicitly waits; each courier takes at most one bundle.
Couriers who are still busy take part too: matching a bundle to a soon-free courier who is
close is how the core learns that it should *not* send a far idle courier now.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from ortools.graph.python import min_cost_flow

from dispatch.bundling import BundlePlan
from dispatch.cost import CostBreakdown, DispatchConfig
from dispatch.model import Courier, CourierState, Route
from geo.eta import TravelTime, seconds_many

COST_SCALE = 10  # min-cost flow wants integers; a tenth of a cost unit is plenty


@dataclass(frozen=True, slots=True)
class Match:
    """A bundle matched to a courier leaving at `depart_at`, `approach_s` from the restaurant. The
    route is built only when asked for: a round matches every bundle but commits few."""

    plan: BundlePlan
    courier: Courier
    depart_at: float
    approach_s: float
    cost: float
    pickup_service_s: float
    dropoff_service_s: float

    @property
    def arrive_at(self) -> float:
        """Arrival at the restaurant (the route's first stop)."""
        return self.depart_at + self.approach_s

    @property
    def route(self) -> Route:
        return self.plan.route(self.depart_at, self.approach_s, self.pickup_service_s, self.dropoff_service_s)


@dataclass(slots=True)
class PriceCache:
    """What one round has priced already, so matching again after a merge re-prices only the
    merged bundles. Valid for one `couriers` list and one `now` (keys are courier positions in it)."""

    approach: dict[tuple[int, str], float] = field(default_factory=dict)
    rows: dict[int, tuple[BundlePlan, list[tuple[float, int]]]] = field(default_factory=dict)
    holds: dict[int, tuple[BundlePlan, float]] = field(default_factory=dict)

    def hold(self, plan: BundlePlan, now: float, config: DispatchConfig) -> float:
        kept = self.holds.get(id(plan))
        if kept is None or kept[0] is not plan:
            kept = self.holds[id(plan)] = (plan, not_now_cost(plan, now, config))
        return kept[1]


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
                  candidates: Mapping[str, Sequence[str]] | None = None,
                  cache: PriceCache | None = None) -> list[Match]:
    """Solve the matching; bundles absent from the result are "not now".

    Each bundle first gets arcs to its `candidates_per_bundle` cheapest couriers only (that keeps
    the network small). A bundle whose few candidates all went elsewhere would otherwise wait
    round after round in a corner of town, so bundles left unmatched get arcs to every courier
    and the network is solved once more.

    With `candidates` (store id -> courier ids, e.g. the nearest ones from the live index) a bundle
    is priced only against its store's candidates, so a large region costs pairs per store, not
    bundles x couriers; a store missing from the mapping gets no courier this round.
    `cache` (one per round and courier list) keeps rows already priced for the same plan objects.
    """
    if not plans or not couriers:
        return []
    cache = cache if cache is not None else PriceCache()
    index = {c.courier_id: ci for ci, c in enumerate(couriers)}
    todo: list[tuple[BundlePlan, Iterable[int]]] = []
    for plan in plans:
        kept = cache.rows.get(id(plan))
        if kept is not None and kept[0] is plan:
            continue
        if candidates is None:
            allowed: Iterable[int] = range(len(couriers))
        else:
            allowed = [index[cid] for cid in candidates.get(plan.bundle.store_id, ()) if cid in index]
        todo.append((plan, allowed))
    if todo:
        for (plan, _), row in zip(todo, _price_rows(todo, couriers, travel, now, config, cache.approach),
                                  strict=True):
            cache.rows[id(plan)] = (plan, row)
    approach = cache.approach
    priced = [cache.rows[id(plan)][1] for plan in plans]
    holds = [cache.hold(plan, now, config) for plan in plans]
    arcs = [heapq.nsmallest(config.candidates_per_bundle, row) for row in priced]
    chosen = _solve_flow(arcs, holds, len(couriers))
    # Only a bundle with a priced courier beyond its arcs that beats waiting can gain from more arcs.
    starved = [pi for pi in range(len(plans)) if pi not in chosen and len(arcs[pi]) < len(priced[pi])
               and _below(priced[pi], holds[pi]) > _below(arcs[pi], holds[pi])]
    if starved:
        for pi in starved:
            arcs[pi] = priced[pi]
        chosen = _solve_flow(arcs, holds, len(couriers))
    matches = []
    for pi, (ci, cost) in chosen.items():
        plan, courier = plans[pi], couriers[ci]
        matches.append(Match(plan, courier, max(now, courier.free_at), approach[(ci, plan.bundle.store_id)], cost,
                             config.pickup_service_s, config.dropoff_service_s))
    return matches


def _price_rows(todo: Sequence[tuple[BundlePlan, Iterable[int]]], couriers: Sequence[Courier],
                travel: TravelTime, now: float, config: DispatchConfig,
                approach: dict[tuple[int, str], float]) -> list[list[tuple[float, int]]]:
    """`price_match` of every (bundle, allowed courier) pair, in numpy: per bundle, its (cost,
    courier index) pairs in the allowed order, the refused ones (excluded, past the shift) left out.

    The same operations in the same order as `_cost_at` and `CostBreakdown.total`, so a cost is the
    one `price_match` gives for the same approach time. Approach times missing from `approach`
    (courier index, store) are computed in one `seconds_many` call and kept there.
    """
    pair_plan: list[int] = []
    pair_courier: list[int] = []
    for k, (plan, allowed) in enumerate(todo):
        excluded = plan.excluded
        for ci in allowed:
            if excluded and couriers[ci].courier_id in excluded:
                continue
            pair_plan.append(k)
            pair_courier.append(ci)
    rows: list[list[tuple[float, int]]] = [[] for _ in todo]
    if not pair_plan:
        return rows
    keys = [(ci, todo[k][0].bundle.store_id) for k, ci in zip(pair_plan, pair_courier, strict=True)]
    missing = list(dict.fromkeys(key for key in keys if key not in approach))
    if missing:
        pickup = {todo[k][0].bundle.store_id: todo[k][0].bundle.pickup for k in set(pair_plan)}
        found = seconds_many(travel, [couriers[ci].position for ci, _ in missing], [pickup[s] for _, s in missing],
                             [couriers[ci].vehicle for ci, _ in missing])
        approach.update(zip(missing, found.tolist(), strict=True))
    weights, half = config.weights, config.pickup_service_s / 2
    plan_idx = np.asarray(pair_plan, dtype=np.intp)
    courier_idx = np.asarray(pair_courier, dtype=np.intp)
    approach_s = np.asarray([approach[key] for key in keys], dtype=np.float64)
    free = np.asarray([max(now, c.free_at) for c in couriers], dtype=np.float64)[courier_idx]
    shift_end = np.asarray([math.inf if c.shift_end is None else c.shift_end for c in couriers],
                           dtype=np.float64)[courier_idx]
    prior = np.asarray([c.delivered_count for c in couriers], dtype=np.float64)[courier_idx]
    plans = [plan for plan, _ in todo]
    width = max(len(p.promise_slack_s) for p in plans)
    slack = np.full((len(plans), width), math.inf)
    for k, plan in enumerate(plans):
        slack[k, :len(plan.promise_slack_s)] = plan.promise_slack_s
    ready = np.asarray([p.ready_at for p in plans])[plan_idx]
    ready_sum = np.asarray([p.ready_sum_s for p in plans])[plan_idx]
    n_orders = np.asarray([float(len(p.orders)) for p in plans])[plan_idx]
    ride_delay = np.asarray([p.ride_delay_s for p in plans])[plan_idx]
    loaded = np.asarray([p.loaded_travel_s for p in plans])[plan_idx]

    arrive = free + approach_s
    pickup_at = np.maximum(arrive + half, ready)
    allowed_mask = ~(pickup_at > shift_end)
    lateness = np.zeros(len(pair_plan))
    for j in range(width):
        late_by = pickup_at - slack[plan_idx, j]
        late = np.where(pickup_at > slack[plan_idx, j], late_by, 0.0)
        lateness = lateness + weights.lateness * late * (1.0 + late / weights.lateness_doubling_s)
    cost = (lateness
            + weights.food_wait * (n_orders * pickup_at - ready_sum)
            + weights.ride_delay * ride_delay
            + weights.courier_wait * (pickup_at - arrive - half)
            + weights.travel * (approach_s + loaded)
            + weights.fairness * prior)
    for k, c, ci, ok in zip(pair_plan, cost.tolist(), pair_courier, allowed_mask.tolist(), strict=True):
        if ok:
            rows[k].append((c, ci))
    return rows


def _below(row: list[tuple[float, int]], hold: float) -> int:
    return sum(1 for cost, _ in row if cost < hold)


def _solve_flow(arcs: list[list[tuple[float, int]]], holds: list[float],
                n_couriers: int) -> dict[int, tuple[int, float]]:
    """Min-cost flow source -> bundle -> courier | not-now -> sink; bundle index -> (courier index, cost).

    The arcs are laid out with numpy and go in with one batched call, in the order the solver
    always saw them (per bundle: from the source, to "not now", to its couriers that beat waiting;
    then couriers to the sink, then "not now" to the sink).
    """
    flow = min_cost_flow.SimpleMinCostFlow()
    n_plans = len(arcs)
    source, not_now, sink = n_plans + n_couriers, n_plans + n_couriers + 1, n_plans + n_couriers + 2
    sizes = [len(row) for row in arcs]
    total = sum(sizes)
    arc_cost = np.fromiter((cost for row in arcs for cost, _ in row), np.float64, total)
    arc_courier = np.fromiter((ci for row in arcs for _, ci in row), np.int64, total)
    arc_plan = np.repeat(np.arange(n_plans, dtype=np.int64), sizes)
    hold = np.asarray(holds, dtype=np.float64)
    kept = np.flatnonzero(arc_cost < hold[arc_plan])
    k_plan, k_courier, k_cost = arc_plan[kept], arc_courier[kept], arc_cost[kept]
    per_plan = np.bincount(k_plan, minlength=n_plans)
    starts = np.cumsum(2 + per_plan) - (2 + per_plan)  # where each bundle's block of arcs begins
    rank = np.arange(len(kept)) - np.repeat(np.cumsum(per_plan) - per_plan, per_plan)
    position = starts[k_plan] + 2 + rank
    n_arcs = int(starts[-1] + 2 + per_plan[-1]) if n_plans else 0
    tails = np.empty(n_arcs + n_couriers + 1, dtype=np.int32)
    heads = np.empty_like(tails)
    costs = np.zeros(len(tails), dtype=np.int64)
    plans = np.arange(n_plans)
    tails[starts], heads[starts] = source, plans
    tails[starts + 1], heads[starts + 1] = plans, not_now
    costs[starts + 1] = np.rint(hold * COST_SCALE)
    tails[position], heads[position] = k_plan, n_plans + k_courier
    costs[position] = np.rint(k_cost * COST_SCALE)
    tails[n_arcs:-1], heads[n_arcs:-1] = np.arange(n_plans, n_plans + n_couriers), sink
    tails[-1], heads[-1] = not_now, sink
    caps = np.ones(len(tails), dtype=np.int64)
    caps[-1] = n_plans
    flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    flow.set_node_supply(source, n_plans)
    flow.set_node_supply(sink, -n_plans)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed with status {status}")
    if not len(kept):
        return {}
    used = flow.flows(position.astype(np.int32)) > 0
    return {int(pi): (int(ci), float(cost))
            for pi, ci, cost in zip(k_plan[used].tolist(), k_courier[used].tolist(), k_cost[used].tolist(),
                                    strict=True)}


def should_commit(match: Match, now: float, config: DispatchConfig) -> bool:
    """Rolling-horizon commitment: send the courier only if waiting a round would cost something.

    A courier who is not free yet cannot be sent. A free one is sent once leaving at the next
    round would make it reach the counter after the food is ready (less `commit_slack_s`);
    before that, holding keeps both the courier and the order open to a better match.
    """
    if match.courier.free_at > now:
        return False
    arrival_if_held = match.arrive_at + config.step_s
    return arrival_if_held + config.pickup_service_s / 2 > match.plan.ready_at - config.commit_slack_s
