"""What merging two single-order bundles would save, for every such pair of a round at once.

Most merges a round tries are one matched order taking on a second order of its restaurant.
`merge._best_merge` would plan each pair (`bundling.plan_bundle`), check its promise margin and
price it against the host's courier one pair at a time. Here the planning of all pairs runs in
numpy, in the same operation order as `bundling._plan_small` and `bundling.breaks_promise`, and the
price is the one cost function (`cost.pair_costs`), so each saving equals what the one-pair path
computes (tests/unit/dispatch compares them). Travel legs still come from the round's travel model
one by one (memoised), so any model works. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from dispatch.assign import Match, not_now_costs
from dispatch.bundling import BundlePlan
from dispatch.cost import DispatchConfig, FloatArray, PairColumns, acceptance_table, decline_chances, pair_costs
from geo.eta import TravelTime

PairKey = tuple[int, int]  # (id(host plan), id(guest plan))


class PairMerge(NamedTuple):
    """What merging a pair saves, and what the host's courier carrying both costs."""

    saving: float
    cost: float


class _Pairs(NamedTuple):
    """Ordered (host, guest) pairs: order a is the host's, b the guest's, the courier the host's."""

    keys: list[PairKey]
    refused: list[bool]  # the host's courier declined a or b
    acceptance: list[tuple[float, ...]]  # the host's courier's, per offer band
    ready_a: FloatArray
    ready_b: FloatArray
    promised_a: FloatArray
    promised_b: FloatArray
    to_a: FloatArray  # pickup -> a's drop-off
    to_b: FloatArray
    a_to_b: FloatArray  # between the drop-offs, both ways
    b_to_a: FloatArray
    depart: FloatArray  # when the host's courier leaves for the restaurant
    approach: FloatArray
    shift_end: FloatArray
    prior: FloatArray
    apart: FloatArray  # the two bundles' costs unmerged: both matches, or the host's and the guest's "not now"


class _Merged(NamedTuple):
    """Each pair planned as one bundle (`bundling._plan_small`): the drop-off order that scores best."""

    ready_at: FloatArray
    ready_first: FloatArray  # of the order dropped off first; `_second` the other
    ready_second: FloatArray
    promised_first: FloatArray
    promised_second: FloatArray
    offset_first: FloatArray  # drop-off instants relative to the pickup
    offset_second: FloatArray
    direct_first: FloatArray  # the same if it rode alone
    direct_second: FloatArray
    driven: FloatArray


def single_pair_savings(groups: Iterable[list[BundlePlan]], match_of: dict[int, Match], travel: TravelTime,
                        now: float, config: DispatchConfig) -> dict[PairKey, PairMerge | None]:
    """For each ordered pair (host, guest) of single-order plans of one restaurant, the host
    matched: the saving of the host's courier carrying both, and that match's cost (None when the
    pair may not merge: ready times too far apart, a promise broken past the margin, the courier
    refused or past its shift, or no saving)."""
    pairs = _gather(groups, match_of, travel, now, config)
    if pairs is None:
        return {}
    merged = _plan(pairs, config)
    cost = pair_costs(_priced_columns(pairs, merged), config.weights, config.pickup_service_s, config.decline_delay_s)
    saving = pairs.apart - cost  # -inf past the courier's shift: never a saving
    ok = ~_breaks_promise(merged, now, config) & ~np.asarray(pairs.refused) & (saving > 0)
    return {key: (PairMerge(s, c) if good else None)
            for key, s, c, good in zip(pairs.keys, saving.tolist(), cost.tolist(), ok.tolist(), strict=True)}


def _gather(groups: Iterable[list[BundlePlan]], match_of: dict[int, Match], travel: TravelTime,
            now: float, config: DispatchConfig) -> _Pairs | None:
    """Every pair whose ready times fall within the bundle window, with its legs; None if none."""
    if config.max_bundle_size < 2:
        return None
    singles_of: list[list[BundlePlan]] = []
    for group in groups:
        singles = [p for p in group if len(p.orders) == 1]
        if len(singles) > 1:
            singles_of.append(singles)
    keys: list[PairKey] = []
    refused: list[bool] = []
    acceptance: list[tuple[float, ...]] = []
    rows: list[tuple[float, ...]] = []
    apart: list[tuple[float, BundlePlan]] = []  # the host's match cost, and the guest (its cost added below)
    for singles in singles_of:
        for host in singles:
            host_match = match_of.get(id(host))
            if host_match is None:
                continue
            courier = host_match.courier
            depart = max(now, courier.free_at)
            a = host.orders[0]
            for guest in singles:
                b = guest.orders[0]
                if guest is host or abs(max(a.ready_at, now) - max(b.ready_at, now)) > config.bundle_ready_window_s:
                    continue
                keys.append((id(host), id(guest)))
                refused.append(courier.courier_id in a.excluded_couriers or courier.courier_id in b.excluded_couriers)
                acceptance.append(courier.acceptance)
                rows.append((
                    a.ready_at, b.ready_at, a.promised_at, b.promised_at,
                    travel.seconds(a.pickup, a.dropoff, "car"), travel.seconds(a.pickup, b.dropoff, "car"),
                    travel.seconds(a.dropoff, b.dropoff, "car"), travel.seconds(b.dropoff, a.dropoff, "car"),
                    depart, host_match.arrive_at - depart,
                    courier.shift_end if courier.shift_end is not None else np.inf, float(courier.delivered_count),
                ))
                apart.append((host_match.cost, guest))
    if not keys:
        return None
    waiting = {id(guest): guest for _, guest in apart if id(guest) not in match_of}
    not_now = dict(zip(waiting, not_now_costs(list(waiting.values()), now, config).tolist(), strict=True)
                   ) if waiting else {}
    guest_cost = [match_of[id(g)].cost if id(g) in match_of else not_now[id(g)] for _, g in apart]
    columns = np.array(rows, dtype=np.float64).T
    ra, rb, pa, pb, to_a, to_b, a_to_b, b_to_a, depart_s, approach, shift_end, prior = columns
    return _Pairs(keys, refused, acceptance, ra, rb, pa, pb, to_a, to_b, a_to_b, b_to_a, depart_s, approach, shift_end,
                  prior, apart=np.array([host + guest for (host, _), guest in zip(apart, guest_cost, strict=True)]))


def _plan(pairs: _Pairs, config: DispatchConfig) -> _Merged:
    """`bundling._plan_small` of every pair: a then b, or b then a when that scores lower."""
    half_pick, half_drop = config.pickup_service_s / 2, config.dropoff_service_s / 2
    lateness = config.weights.lateness
    ra, rb, pa, pb = pairs.ready_a, pairs.ready_b, pairs.promised_a, pairs.promised_b
    zero = np.zeros(len(pairs.keys))
    ready_at = np.maximum(ra, rb)
    off_a = half_pick + (pairs.to_a + half_drop)
    direct_a = half_pick + pairs.to_a + half_drop
    second_b = off_a + half_drop + (pairs.a_to_b + half_drop)
    score_ab = (off_a + second_b) + (lateness * np.maximum(zero, ready_at + off_a - pa)
                                     + lateness * np.maximum(zero, ready_at + second_b - pb))
    off_b = half_pick + (pairs.to_b + half_drop)
    direct_b = half_pick + pairs.to_b + half_drop
    second_a = off_b + half_drop + (pairs.b_to_a + half_drop)
    score_ba = (off_b + second_a) + (lateness * np.maximum(zero, ready_at + off_b - pb)
                                     + lateness * np.maximum(zero, ready_at + second_a - pa))
    ba = score_ba < score_ab
    return _Merged(
        ready_at, np.where(ba, rb, ra), np.where(ba, ra, rb), np.where(ba, pb, pa), np.where(ba, pa, pb),
        np.where(ba, off_b, off_a), np.where(ba, second_a, second_b),
        np.where(ba, direct_b, direct_a), np.where(ba, direct_a, direct_b),
        np.where(ba, pairs.to_b + pairs.b_to_a, pairs.to_a + pairs.a_to_b),
    )


def _priced_columns(pairs: _Pairs, merged: _Merged) -> PairColumns:
    """What `cost.pair_costs` reads for the host's courier carrying each merged pair."""
    zero = np.zeros(len(pairs.keys))
    n = len(pairs.keys)
    return PairColumns(
        arrive=pairs.depart + pairs.approach, approach_s=pairs.approach, shift_end=pairs.shift_end,
        prior_deliveries=pairs.prior, ready_at=merged.ready_at,
        ready_sum_s=merged.ready_first + merged.ready_second, n_orders=np.full(len(pairs.keys), 2.0),
        ride_delay_s=(np.maximum(zero, merged.offset_first - merged.direct_first)
                      + np.maximum(zero, merged.offset_second - merged.direct_second)),
        loaded_travel_s=merged.driven,
        promise_slack_s=(merged.promised_first - merged.offset_first, merged.promised_second - merged.offset_second),
        decline_p=decline_chances(acceptance_table(pairs.acceptance), np.arange(n), pairs.approach + merged.driven),
    )


def _breaks_promise(merged: _Merged, now: float, config: DispatchConfig) -> npt.NDArray[np.bool_]:
    """`bundling.breaks_promise` of every merged pair."""
    at_counter = np.maximum(merged.ready_at, now)
    margin = config.promise_margin_s
    first_alone = np.maximum(merged.ready_first, now) + merged.direct_first
    second_alone = np.maximum(merged.ready_second, now) + merged.direct_second
    return ((at_counter + merged.offset_first > np.maximum(merged.promised_first, first_alone) + margin)
            | (at_counter + merged.offset_second > np.maximum(merged.promised_second, second_alone) + margin))
