"""What merging two single-order bundles would save, for every such pair of a round at once.

Most merges a round tries are one matched order taking on a second order of its restaurant.
`merge._best_merge` would plan each pair (`bundling.plan_bundle`), check its promise margin and
price it against the host's courier one pair at a time; here the same arithmetic runs in numpy
over all pairs, in the same operation order, so each saving equals what the one-pair path computes
(tests/unit/dispatch compares them). Travel legs still come from the round's travel model one by
one (memoised), so any model works. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from dispatch.assign import Match, not_now_cost
from dispatch.bundling import BundlePlan
from dispatch.cost import DispatchConfig
from geo.eta import TravelTime

PairKey = tuple[int, int]  # (id(host plan), id(guest plan))


def single_pair_savings(groups: Iterable[list[BundlePlan]], match_of: dict[int, Match], travel: TravelTime,
                        now: float, config: DispatchConfig) -> dict[PairKey, float | None]:
    """For each ordered pair (host, guest) of single-order plans of one restaurant, the host
    matched: the saving of the host's courier carrying both (None when the pair may not merge:
    ready times too far apart, a promise broken past the margin, the courier refused or past its
    shift, or no saving)."""
    half_pick, half_drop = config.pickup_service_s / 2, config.dropoff_service_s / 2
    keys: list[PairKey] = []
    cols: list[list[float]] = [[] for _ in range(16)]
    refused: list[bool] = []
    for group in groups:
        singles = [p for p in group if len(p.orders) == 1]
        if len(singles) < 2 or config.max_bundle_size < 2:
            continue
        for host in singles:
            host_match = match_of.get(id(host))
            if host_match is None:
                continue
            courier = host_match.courier
            host_depart = max(now, courier.free_at)
            host_approach = host_match.arrive_at - host_depart
            a = host.orders[0]
            for guest in singles:
                if guest is host:
                    continue
                b = guest.orders[0]
                ready = [max(a.ready_at, now), max(b.ready_at, now)]
                if max(ready) - min(ready) > config.bundle_ready_window_s:
                    continue
                guest_match = match_of.get(id(guest))
                pair_apart = host_match.cost + (guest_match.cost if guest_match else not_now_cost(guest, now, config))
                pickup = a.pickup
                keys.append((id(host), id(guest)))
                refused.append(bool(a.excluded_couriers or b.excluded_couriers)
                               and (courier.courier_id in a.excluded_couriers
                                    or courier.courier_id in b.excluded_couriers))
                for col, value in zip(cols, (
                        a.ready_at, b.ready_at, a.promised_at, b.promised_at,
                        travel.seconds(pickup, a.dropoff, "car"), travel.seconds(pickup, b.dropoff, "car"),
                        travel.seconds(a.dropoff, b.dropoff, "car"), travel.seconds(b.dropoff, a.dropoff, "car"),
                        host_depart, host_approach, courier.shift_end if courier.shift_end is not None else np.inf,
                        float(courier.delivered_count), pair_apart, 0.0, 0.0, 0.0), strict=True):
                    col.append(value)
    if not keys:
        return {}
    ra, rb, pa, pb, to_a, to_b, a_to_b, b_to_a, depart, approach, shift_end, prior, apart = (
        np.asarray(c, dtype=np.float64) for c in cols[:13])
    weights = config.weights
    lateness = weights.lateness
    zero = np.zeros(len(keys))

    # bundling._plan_small, both sequences
    ready_at = np.maximum(ra, rb)
    off_a = half_pick + (to_a + half_drop)
    direct_a = half_pick + to_a + half_drop
    second_b = off_a + half_drop + (a_to_b + half_drop)
    score_ab = (off_a + second_b) + (lateness * np.maximum(zero, ready_at + off_a - pa)
                                     + lateness * np.maximum(zero, ready_at + second_b - pb))
    off_b = half_pick + (to_b + half_drop)
    direct_b = half_pick + to_b + half_drop
    second_a = off_b + half_drop + (b_to_a + half_drop)
    score_ba = (off_b + second_a) + (lateness * np.maximum(zero, ready_at + off_b - pb)
                                     + lateness * np.maximum(zero, ready_at + second_a - pa))
    ba = score_ba < score_ab
    o1, o2 = np.where(ba, off_b, off_a), np.where(ba, second_a, second_b)
    r1, r2 = np.where(ba, rb, ra), np.where(ba, ra, rb)
    p1, p2 = np.where(ba, pb, pa), np.where(ba, pa, pb)
    d1, d2 = np.where(ba, direct_b, direct_a), np.where(ba, direct_a, direct_b)
    driven = np.where(ba, to_b + b_to_a, to_a + a_to_b)
    ready_sum = r1 + r2
    ride_delay = np.maximum(zero, o1 - d1) + np.maximum(zero, o2 - d2)
    slack1, slack2 = p1 - o1, p2 - o2

    # bundling.breaks_promise
    at_counter = np.maximum(ready_at, now)
    breaks = ((at_counter + o1 > np.maximum(p1, np.maximum(r1, now) + d1) + config.promise_margin_s)
              | (at_counter + o2 > np.maximum(p2, np.maximum(r2, now) + d2) + config.promise_margin_s))

    # assign.price_match -> _cost_at -> CostBreakdown.total
    arrive = depart + approach
    pickup_at = np.maximum(arrive + half_pick, ready_at)
    late1 = np.where(pickup_at > slack1, pickup_at - slack1, 0.0)
    late2 = np.where(pickup_at > slack2, pickup_at - slack2, 0.0)
    doubling = weights.lateness_doubling_s
    cost = ((lateness * late1 * (1.0 + late1 / doubling) + lateness * late2 * (1.0 + late2 / doubling))
            + weights.food_wait * (2.0 * pickup_at - ready_sum)
            + weights.ride_delay * ride_delay
            + weights.courier_wait * (pickup_at - arrive - half_pick)
            + weights.travel * (approach + driven)
            + weights.fairness * prior)
    saving = apart - cost
    ok = ~breaks & ~(pickup_at > shift_end) & ~np.asarray(refused) & (saving > 0)
    return {key: (s if good else None) for key, s, good in zip(keys, saving.tolist(), ok.tolist(), strict=True)}
