"""The one decision function both drivers call: live rounds and the MDRP replay."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from dispatch.assign import Match, PriceCache, candidate_couriers, match_bundles, should_commit
from dispatch.bundling import BundlePlan, build_bundles, target_bundle_size
from dispatch.cost import DispatchConfig
from dispatch.greedy import decide_greedy
from dispatch.merge import merge_matched_bundles
from dispatch.model import Assignment, Courier, Decision, OpenOrder, Policy, Reposition
from geo.eta import MemoTravelTime, Point, TravelTime, seconds_many


def decide(orders: Sequence[OpenOrder], couriers: Sequence[Courier], travel: TravelTime, now: float,
           config: DispatchConfig, candidates: Mapping[str, Sequence[str]] | None = None) -> Decision:
    """Decide one round: which couriers take which bundles now, which orders wait, who moves.

    `orders` are the open (unassigned) orders; `couriers` every courier the round may consider,
    including busy ones (their `free_at` and `position` say when and where they become free).
    Only couriers free at `now` receive assignments. Pure: same input, same decision.
    `candidates` (store id -> courier ids) limits which couriers each store's bundles are priced
    against; without it every bundle is priced against every courier (fine for hundreds, not for
    a region of thousands).
    """
    started = time.perf_counter()
    if not isinstance(travel, MemoTravelTime):
        travel = MemoTravelTime(travel)  # bundling, merging and matching ask for the same legs again
    if config.policy is Policy.GREEDY:
        decision = decide_greedy(orders, couriers, travel, now, config, candidates)
        decision.stats.update(solve_s=time.perf_counter() - started, target_bundle_size=1.0)
        return decision
    pool = candidate_couriers(couriers, now, config)
    size = target_bundle_size(orders, pool, now, config)
    plans = build_bundles(orders, size, travel, now, config)
    prices = PriceCache()
    matches = match_bundles(plans, pool, travel, now, config, candidates, prices)
    if config.merge_after_matching:
        merged = merge_matched_bundles(plans, matches, travel, now, config)
        if merged is not None:
            plans = merged
            matches = match_bundles(plans, pool, travel, now, config, candidates, prices)
    committed = [m for m in matches if should_commit(m, now, config)]
    assigned = {oid for m in committed for oid in m.plan.bundle.order_ids}
    held = tuple(o.order_id for o in orders if o.order_id not in assigned)
    moves = _repositions(plans, matches, pool, travel, now) if config.reposition else ()
    assignments = tuple(Assignment(m.courier.courier_id, m.plan.bundle, m.route, m.cost) for m in committed)
    stats = {"solve_s": time.perf_counter() - started, "target_bundle_size": float(size),
             "bundles": float(len(plans)), "matched": float(len(matches))}
    return Decision(assignments, held, moves, stats)


def _repositions(plans: Sequence[BundlePlan], matches: Sequence[Match], pool: Sequence[Courier], travel: TravelTime,
                 now: float) -> tuple[Reposition, ...]:
    """Send idle couriers nobody matched toward restaurants whose bundles found no courier (never
    toward a restaurant whose waiting orders that courier declined)."""
    matched_couriers = {m.courier.courier_id for m in matches}
    matched_plans = {m.plan.bundle.order_ids for m in matches}
    starving: dict[str, tuple[Point, set[str]]] = {}
    for p in plans:
        if p.bundle.order_ids not in matched_plans:
            starving.setdefault(p.bundle.store_id, (p.bundle.pickup, set()))[1].update(p.excluded)
    spare = [c for c in pool if c.free_at <= now and c.courier_id not in matched_couriers]
    moves: list[Reposition] = []
    for store_id, (point, declined) in starving.items():
        allowed = [c for c in spare if c.courier_id not in declined]
        if not allowed:
            continue
        # One vectorised call per store: a region can have hundreds of spare couriers.
        seconds = seconds_many(travel, [c.position for c in allowed], [point] * len(allowed),
                               [c.vehicle for c in allowed])
        nearest = allowed[int(seconds.argmin())]
        spare.remove(nearest)
        moves.append(Reposition(nearest.courier_id, store_id, point))
    return tuple(moves)
