"""Second look at bundling, priced by the matching itself.

The target bundle size only says how short of couriers the round is overall. After the matching,
two bundles of one restaurant can be compared exactly: if the courier of one can carry both for
less than the two matches cost apart (the other courier's trip, or the other bundle's "not now"),
they are merged and the matching is solved again with the courier that was set free.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

from dispatch.assign import Match, not_now_costs, price_matches
from dispatch.bundling import BundlePlan, breaks_promise, plan_bundle
from dispatch.cost import DispatchConfig
from dispatch.merge_pairs import PairKey, PairMerge, single_pair_savings
from dispatch.model import Courier
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


class _Candidate(NamedTuple):
    """One merge `_best_merge` considers: `merged` is planned here, or None for a pair of single
    orders whose saving and cost `single_pair_savings` worked out (`known`; None: may not merge)."""

    host: BundlePlan
    guest: BundlePlan
    merged: BundlePlan | None
    known: PairMerge | None


def _best_merge(group: list[BundlePlan], match_of: dict[int, Match], travel: TravelTime, now: float,
                config: DispatchConfig, known: dict[PairKey, PairMerge | None] | None = None,
                ) -> tuple[BundlePlan, BundlePlan, BundlePlan, Match] | None:
    """The merge of two of `group`'s plans that saves most (the first of equals), or None.
    Pairs of single orders are looked up in `known` (`single_pair_savings`); the others are planned
    here and priced in one batch."""
    candidates = _candidates(group, match_of, travel, now, config, known)
    best: tuple[_Candidate, PairMerge] | None = None
    for candidate, found in zip(candidates, _savings(candidates, match_of, now, config), strict=True):
        if found is not None and found.saving > 0 and (best is None or found.saving > best[1].saving):
            best = (candidate, found)
    if best is None:
        return None
    (host, guest, merged, _), (_, cost) = best
    if merged is None:  # the very plan single_pair_savings priced
        merged = plan_bundle([*host.orders, *guest.orders], travel, config)
    host_match = match_of[id(host)]
    depart = max(now, host_match.courier.free_at)
    return host, guest, merged, Match(merged, host_match.courier, depart, host_match.arrive_at - depart, cost,
                                      config.pickup_service_s, config.dropoff_service_s)


def _candidates(group: list[BundlePlan], match_of: dict[int, Match], travel: TravelTime, now: float,
                config: DispatchConfig, known: dict[PairKey, PairMerge | None] | None) -> list[_Candidate]:
    """Every (host, guest) merge of the group that may be tried, in the order the first of equals wins:
    the host matched (the merged bundle needs a courier to be priced against), the size within the
    limit, ready times within the window, no promise broken past the margin."""
    candidates: list[_Candidate] = []
    for host in group:
        if id(host) not in match_of:
            continue
        for guest in group:
            if guest is host or len(host.orders) + len(guest.orders) > config.max_bundle_size:
                continue
            if known is not None and len(host.orders) == 1 and len(guest.orders) == 1:
                candidates.append(_Candidate(host, guest, None, known.get((id(host), id(guest)))))
                continue
            orders = [*host.orders, *guest.orders]
            ready = [max(o.ready_at, now) for o in orders]
            if max(ready) - min(ready) > config.bundle_ready_window_s:
                continue
            merged = plan_bundle(orders, travel, config)
            if not breaks_promise(merged, now, config):
                candidates.append(_Candidate(host, guest, merged, None))
    return candidates


def _savings(candidates: list[_Candidate], match_of: dict[int, Match], now: float,
             config: DispatchConfig) -> list[PairMerge | None]:
    """Each candidate's saving and the cost of the host's courier carrying the merged bundle (None:
    it may not merge). Apart, the two cost both matches, or the host's match and the guest's "not now"."""
    pairs: list[tuple[BundlePlan, Courier, float]] = []
    waiting: dict[int, BundlePlan] = {}
    for host, guest, merged, _ in candidates:
        if merged is not None:
            courier = match_of[id(host)].courier
            pairs.append((merged, courier, match_of[id(host)].arrive_at - max(now, courier.free_at)))
            if id(guest) not in match_of:
                waiting[id(guest)] = guest
    costs = iter(price_matches(pairs, now, config) if pairs else [])
    not_now = dict(zip(waiting, not_now_costs(list(waiting.values()), now, config).tolist(), strict=True)
                   ) if waiting else {}
    savings: list[PairMerge | None] = []
    for host, guest, merged, known in candidates:
        cost = next(costs) if merged is not None else None
        if cost is None:
            savings.append(known)  # a pair of single orders, or None: the courier may not take it
            continue
        guest_match = match_of.get(id(guest))
        apart = match_of[id(host)].cost + (guest_match.cost if guest_match else not_now[id(guest)])
        savings.append(PairMerge(apart - cost, cost))
    return savings
