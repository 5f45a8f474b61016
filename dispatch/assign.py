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
import numpy.typing as npt
from ortools.graph.python import min_cost_flow

from dispatch.bundling import BundlePlan
from dispatch.cost import (
    DispatchConfig,
    FloatArray,
    IntArray,
    PairColumns,
    acceptance_table,
    decline_chances,
    pair_costs,
)
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

    def holds_of(self, plans: Sequence[BundlePlan], now: float, config: DispatchConfig) -> list[float]:
        """`not_now_cost` of each plan; the ones not kept yet priced in one batch."""
        todo = [plan for plan in plans if self.holds.get(id(plan), (None,))[0] is not plan]
        if todo:
            for plan, hold in zip(todo, not_now_costs(todo, now, config).tolist(), strict=True):
                self.holds[id(plan)] = (plan, hold)
        return [self.holds[id(plan)][1] for plan in plans]


def candidate_couriers(couriers: Sequence[Courier], now: float, config: DispatchConfig) -> list[Courier]:
    """Couriers who could start a bundle within the horizon and may still pick up."""
    horizon = now + config.horizon_s
    return [c for c in couriers
            if c.state is not CourierState.OFFLINE and c.free_at <= horizon
            and (c.shift_end is None or max(now, c.free_at) <= c.shift_end)]


def price_match(plan: BundlePlan, courier: Courier, approach_s: float, now: float,
                config: DispatchConfig) -> float | None:
    """The cost of `courier` taking `plan`, or None if the rules forbid it: `price_matches` of one."""
    return price_matches([(plan, courier, approach_s)], now, config)[0]


def price_matches(pairs: Sequence[tuple[BundlePlan, Courier, float]], now: float,
                  config: DispatchConfig) -> list[float | None]:
    """`pair_costs` of each (plan, courier, approach time): the courier leaves when free (now at the
    earliest); None where the rules forbid the pair (the courier declined one of the orders, or
    would pick up after its shift ends).

    This is `route_breakdown` on `plan.route(...)` without building the route: pricing runs for
    every courier-bundle pair of a round, the route only for the few kept.
    """
    allowed = [(plan, courier, approach) for plan, courier, approach in pairs if not _declined(plan, courier)]
    costs: list[float] = []
    if allowed:
        n = len(allowed)
        approach_s = np.fromiter((approach for _, _, approach in allowed), np.float64, n)
        depart = np.fromiter((max(now, courier.free_at) for _, courier, _ in allowed), np.float64, n)
        shift_end = np.fromiter((math.inf if c.shift_end is None else c.shift_end for _, c, _ in allowed),
                                np.float64, n)
        prior = np.fromiter((c.delivered_count for _, c, _ in allowed), np.float64, n)
        table = acceptance_table([c.acceptance for _, c, _ in allowed])
        columns = _pair_columns([plan for plan, _, _ in allowed], np.arange(n), depart + approach_s, approach_s,
                                shift_end, prior, table, np.arange(n))
        costs = pair_costs(columns, config.weights, config.pickup_service_s, config.decline_delay_s).tolist()
    priced = iter(costs)
    result: list[float | None] = []
    for plan, courier, _ in pairs:
        cost = None if _declined(plan, courier) else next(priced)
        result.append(None if cost == math.inf else cost)  # inf: it would pick up after its shift ends
    return result


def _declined(plan: BundlePlan, courier: Courier) -> bool:
    return bool(plan.excluded) and courier.courier_id in plan.excluded


def not_now_cost(plan: BundlePlan, now: float, config: DispatchConfig) -> float:
    """`not_now_costs` of one plan."""
    return float(not_now_costs([plan], now, config)[0])


def not_now_costs(plans: Sequence[BundlePlan], now: float, config: DispatchConfig) -> FloatArray:
    """Price of "not now" for each plan: the bundle served `hold_horizon_s` later by a courier already
    waiting at the counter. It grows with the bundle's lateness like any match does, so an order
    that has waited long is not put off again for a fresh one; and a match is only refused when it
    is worse than waiting that long.
    """
    n = len(plans)
    ready = np.fromiter((p.ready_at for p in plans), np.float64, n)
    arrive = np.maximum(now, ready - config.pickup_service_s / 2) + config.hold_horizon_s
    zero = np.zeros(n)
    cost = pair_costs(_pair_columns(plans, np.arange(n), arrive, zero, np.full(n, math.inf), zero),
                      config.weights, config.pickup_service_s, config.decline_delay_s)
    return cost * config.weights.hold


def _pair_columns(plans: Sequence[BundlePlan], plan_idx: npt.NDArray[np.intp], arrive: FloatArray,
                  approach_s: FloatArray, shift_end: FloatArray, prior: FloatArray,
                  acceptance: FloatArray | None = None, courier_idx: IntArray | None = None) -> PairColumns:
    """The columns `pair_costs` reads for pairs (plans[plan_idx[i]], a courier given by the rest:
    its acceptance is row `courier_idx[i]` of `acceptance`, an `acceptance_table`; None: accepts)."""
    width = max((len(p.promise_slack_s) for p in plans), default=0)
    slack = np.full((len(plans), width), math.inf)
    for k, plan in enumerate(plans):
        slack[k, :len(plan.promise_slack_s)] = plan.promise_slack_s

    def column(values: Iterable[float]) -> FloatArray:
        return np.fromiter(values, np.float64, len(plans))[plan_idx]

    loaded = column(p.loaded_travel_s for p in plans)
    return PairColumns(
        arrive, approach_s, shift_end, prior,
        ready_at=column(p.ready_at for p in plans),
        ready_sum_s=column(p.ready_sum_s for p in plans),
        n_orders=column(float(len(p.orders)) for p in plans),
        ride_delay_s=column(p.ride_delay_s for p in plans),
        loaded_travel_s=loaded,
        promise_slack_s=tuple(slack[plan_idx, j] for j in range(width)),
        decline_p=decline_chances(acceptance, courier_idx if courier_idx is not None else plan_idx,
                                  approach_s + loaded),
    )


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
    holds = cache.holds_of(plans, now, config)
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

    Approach times missing from `approach` (courier index, store) are computed in one
    `seconds_many` call and kept there.
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
    courier_idx = np.asarray(pair_courier, dtype=np.intp)
    approach_s = np.asarray([approach[key] for key in keys], dtype=np.float64)
    free = np.asarray([max(now, c.free_at) for c in couriers], dtype=np.float64)[courier_idx]
    shift_end = np.asarray([math.inf if c.shift_end is None else c.shift_end for c in couriers],
                           dtype=np.float64)[courier_idx]
    prior = np.asarray([c.delivered_count for c in couriers], dtype=np.float64)[courier_idx]
    pairs = _pair_columns([plan for plan, _ in todo], np.asarray(pair_plan, dtype=np.intp), free + approach_s,
                          approach_s, shift_end, prior, acceptance_table([c.acceptance for c in couriers]),
                          courier_idx)
    cost = pair_costs(pairs, config.weights, config.pickup_service_s, config.decline_delay_s)
    for k, c, ci in zip(pair_plan, cost.tolist(), pair_courier, strict=True):
        if c != math.inf:  # inf: the courier would pick up after its shift ends
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
