"""Second look at bundling, priced by the matching itself.

The target bundle size only says how short of couriers the round is overall. After the matching,
two bundles of one restaurant can be compared exactly: if the courier of one can carry both for
less than the two matches cost apart (the other courier's trip, or the other bundle's "not now"),
they are merged and the matching is solved again with the courier that was set free.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from dispatch.assign import Match, not_now_cost, price_match
from dispatch.bundling import BundlePlan, breaks_promise, plan_bundle
from dispatch.cost import DispatchConfig
from dispatch.merge_pairs import PairKey, single_pair_savings
from geo.eta import TravelTime


def merge_matched_bundles(plans: Sequence[BundlePlan], matches: Sequence[Match], travel: TravelTime,
                          now: float, config: DispatchConfig) -> list[BundlePlan] | None:
    """Plans with cost-saving same-restaurant merges applied, or None if no merge saves anything."""
    match_of = {id(m.plan): m for m in matches}
    by_store: dict[str, list[BundlePlan]] = defaultdict(list)
    for plan in plans:
        by_store[plan.bundle.store_id].append(plan)
    known = single_pair_savings(by_store.values(), match_of, travel, now, config)
    result: list[BundlePlan] = []
    changed = False
    for group in by_store.values():
        while len(group) > 1:
            best = _best_merge(group, match_of, travel, now, config, known)
            if best is None:
                break
            host, guest, merged, match = best
            group = [p for p in group if p is not host and p is not guest] + [merged]
            match_of[id(merged)] = match
            changed = True
        result.extend(group)
    return result if changed else None


def _best_merge(group: list[BundlePlan], match_of: dict[int, Match], travel: TravelTime, now: float,
                config: DispatchConfig, known: dict[PairKey, float | None] | None = None,
                ) -> tuple[BundlePlan, BundlePlan, BundlePlan, Match] | None:
    """The merge of two of `group`'s plans that saves most (the first of equals), or None.
    Pairs of single orders are looked up in `known` (`single_pair_savings`), others planned here."""
    best: tuple[float, BundlePlan, BundlePlan, BundlePlan | None, Match | None] | None = None
    merged: BundlePlan | None  # each candidate in the loop, then the best one's plan (None: planned below)
    for host in group:
        host_match = match_of.get(id(host))
        if host_match is None:
            continue  # the merged bundle needs a courier to be priced against
        courier = host_match.courier
        approach = host_match.arrive_at - max(now, courier.free_at)
        for guest in group:
            if guest is host or len(host.orders) + len(guest.orders) > config.max_bundle_size:
                continue
            if known is not None and len(host.orders) == 1 and len(guest.orders) == 1:
                found = known.get((id(host), id(guest)))
                if found is not None and (best is None or found > best[0]):
                    best = (found, host, guest, None, None)  # planned below if it stays the best
                continue
            orders = [*host.orders, *guest.orders]
            ready = [max(o.ready_at, now) for o in orders]
            if max(ready) - min(ready) > config.bundle_ready_window_s:
                continue
            merged = plan_bundle(orders, travel, config)
            if breaks_promise(merged, now, config):
                continue
            cost = price_match(merged, courier, approach, now, config)
            if cost is None:
                continue
            guest_match = match_of.get(id(guest))
            apart = host_match.cost + (guest_match.cost if guest_match else not_now_cost(guest, now, config))
            saving = apart - cost
            if saving > 0 and (best is None or saving > best[0]):
                best = (saving, host, guest, merged, Match(merged, courier, max(now, courier.free_at), approach,
                                                           cost, config.pickup_service_s, config.dropoff_service_s))
    if best is None:
        return None
    _, host, guest, merged, match = best
    if merged is None or match is None:
        host_match = match_of[id(host)]
        courier = host_match.courier
        approach = host_match.arrive_at - max(now, courier.free_at)
        merged = plan_bundle([*host.orders, *guest.orders], travel, config)
        cost = price_match(merged, courier, approach, now, config)
        assert cost is not None  # single_pair_savings priced this very plan
        match = Match(merged, courier, max(now, courier.free_at), approach, cost, config.pickup_service_s,
                      config.dropoff_service_s)
    return host, guest, merged, match
