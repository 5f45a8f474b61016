"""Bundling: group orders of one restaurant whose food is ready at about the same time.

A bundle saves a courier trip but delays every drop-off after the first, so the core bundles
only as hard as supply requires (`target_bundle_size`) and never past the promise margin.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from dispatch.cost import DispatchConfig
from dispatch.model import Bundle, Courier, OpenOrder, Route, Stop, StopKind
from geo.eta import Point, TravelTime


@dataclass(frozen=True, slots=True)
class BundlePlan:
    """A bundle with its drop-off sequence worked out; only the courier's approach is missing.

    `dropoff_offsets_s[i]` is the i-th drop-off instant relative to the pickup instant.
    """

    bundle: Bundle
    orders: tuple[OpenOrder, ...]  # in drop-off order
    ready_at: float  # the latest ready time: the pickup cannot be earlier
    dropoff_offsets_s: tuple[float, ...]
    loaded_travel_s: float
    direct_ride_s: dict[str, float]  # drop-off relative to pickup if the order rode alone

    # Sums the matching prices every courier against, worked out once per bundle.
    ready_sum_s: float
    ride_delay_s: float  # total extra ride time the bundle causes (0 for a singleton)
    promise_slack_s: tuple[float, ...]  # per order, the latest pickup that keeps its promise
    excluded: frozenset[str]  # couriers who declined any of these orders

    def route(self, depart_at: float, approach_s: float, pickup_service_s: float,
              dropoff_service_s: float) -> Route:
        """The full route for a courier leaving at `depart_at`, `approach_s` from the restaurant."""
        arrive = depart_at + approach_s
        pickup_at = max(arrive + pickup_service_s / 2, self.ready_at)
        stops = [Stop(StopKind.PICKUP, self.bundle.pickup, self.bundle.order_ids, arrive, pickup_at,
                      pickup_at + pickup_service_s / 2)]
        for order, offset in zip(self.orders, self.dropoff_offsets_s, strict=True):
            done = pickup_at + offset
            stops.append(Stop(StopKind.DROPOFF, order.dropoff, (order.order_id,),
                              done - dropoff_service_s / 2, done, done + dropoff_service_s / 2))
        return Route(depart_at, tuple(stops))


def plan_bundle(orders: Sequence[OpenOrder], travel: TravelTime, config: DispatchConfig,
                vehicle: str = "car") -> BundlePlan:
    """Plan one bundle: the drop-off order that minimises the sum of drop-off times (plus lateness)."""
    first = orders[0]
    if any(o.store_id != first.store_id for o in orders):
        raise ValueError("a bundle holds orders of one restaurant only")
    if len(orders) <= 2:
        return _plan_small(orders, travel, config, vehicle)
    return _plan_any(orders, travel, config, vehicle)


def _plan_any(orders: Sequence[OpenOrder], travel: TravelTime, config: DispatchConfig, vehicle: str) -> BundlePlan:
    """Every drop-off sequence tried; the first of the cheapest kept."""
    first = orders[0]
    half_pick, half_drop = config.pickup_service_s / 2, config.dropoff_service_s / 2
    ready_at = max(o.ready_at for o in orders)
    legs: dict[tuple[Point, Point], float] = {}  # each leg once, however many sequences use it

    def leg_s(origin: Point, destination: Point) -> float:
        found = legs.get((origin, destination))
        if found is None:
            found = legs[(origin, destination)] = travel.seconds(origin, destination, vehicle)
        return found

    direct = {o.order_id: half_pick + leg_s(first.pickup, o.dropoff) + half_drop for o in orders}
    best: tuple[float, tuple[OpenOrder, ...], tuple[float, ...], float] | None = None
    for sequence in itertools.permutations(orders) if len(orders) > 1 else (tuple(orders),):
        offsets: list[float] = []
        clock, here, driven = half_pick, first.pickup, 0.0
        for order in sequence:
            leg = leg_s(here, order.dropoff)
            driven += leg
            clock += leg + half_drop
            offsets.append(clock)
            clock += half_drop
            here = order.dropoff
        # Score as if picked up the moment the last food is ready: lateness only bites then.
        score = sum(offsets) + sum(
            config.weights.lateness * max(0.0, ready_at + off - o.promised_at)
            for o, off in zip(sequence, offsets, strict=True))
        if best is None or score < best[0]:
            best = (score, tuple(sequence), tuple(offsets), driven)
    assert best is not None
    _, chosen, chosen_offsets, driven = best
    bundle = Bundle(first.store_id, first.pickup, tuple(o.order_id for o in chosen))
    pairs = list(zip(chosen, chosen_offsets, strict=True))
    return BundlePlan(
        bundle, chosen, ready_at, chosen_offsets, driven, direct,
        ready_sum_s=sum(o.ready_at for o in chosen),
        ride_delay_s=sum(max(0.0, off - direct[o.order_id]) for o, off in pairs),
        promise_slack_s=tuple(o.promised_at - off for o, off in pairs),
        excluded=frozenset().union(*(o.excluded_couriers for o in chosen)),
    )


def _plan_small(orders: Sequence[OpenOrder], travel: TravelTime, config: DispatchConfig,
                vehicle: str) -> BundlePlan:
    """`plan_bundle` of one or two orders, written out: most plans of a round are singletons and
    most merges tried are pairs. The same arithmetic in the same order as the general loop, so the
    plan is equal to the one it would return (tests/unit/dispatch compares them)."""
    half_pick, half_drop = config.pickup_service_s / 2, config.dropoff_service_s / 2
    a = orders[0]
    pickup = a.pickup
    to_a = travel.seconds(pickup, a.dropoff, vehicle)
    direct_a = half_pick + to_a + half_drop
    off_a = half_pick + (to_a + half_drop)
    if len(orders) == 1:
        return BundlePlan(
            Bundle(a.store_id, pickup, (a.order_id,)), (a,), a.ready_at, (off_a,), to_a, {a.order_id: direct_a},
            ready_sum_s=a.ready_at, ride_delay_s=max(0.0, off_a - direct_a), promise_slack_s=(a.promised_at - off_a,),
            excluded=frozenset(a.excluded_couriers),
        )
    b = orders[1]
    ready_at = max(a.ready_at, b.ready_at)
    to_b = travel.seconds(pickup, b.dropoff, vehicle)
    a_to_b = travel.seconds(a.dropoff, b.dropoff, vehicle)
    b_to_a = travel.seconds(b.dropoff, a.dropoff, vehicle)
    lateness = config.weights.lateness
    # a then b
    second_b = off_a + half_drop + (a_to_b + half_drop)
    score_ab = (off_a + second_b) + (lateness * max(0.0, ready_at + off_a - a.promised_at)
                                     + lateness * max(0.0, ready_at + second_b - b.promised_at))
    # b then a
    off_b = half_pick + (to_b + half_drop)
    second_a = off_b + half_drop + (b_to_a + half_drop)
    score_ba = (off_b + second_a) + (lateness * max(0.0, ready_at + off_b - b.promised_at)
                                     + lateness * max(0.0, ready_at + second_a - a.promised_at))
    direct = {a.order_id: direct_a, b.order_id: half_pick + to_b + half_drop}
    if score_ba < score_ab:
        first, second, offsets, driven = b, a, (off_b, second_a), to_b + b_to_a
    else:
        first, second, offsets, driven = a, b, (off_a, second_b), to_a + a_to_b
    return BundlePlan(
        Bundle(a.store_id, pickup, (first.order_id, second.order_id)), (first, second), ready_at, offsets, driven,
        direct,
        ready_sum_s=first.ready_at + second.ready_at,
        ride_delay_s=max(0.0, offsets[0] - direct[first.order_id]) + max(0.0, offsets[1] - direct[second.order_id]),
        promise_slack_s=(first.promised_at - offsets[0], second.promised_at - offsets[1]),
        excluded=frozenset().union(first.excluded_couriers, second.excluded_couriers),
    )


def breaks_promise(plan: BundlePlan, now: float, config: DispatchConfig) -> bool:
    """True if bundling pushes some order past its promise by more than the margin.

    Times are what they would be with a courier waiting at the counter, from `now` on. An order
    already past its promise may still be bundled if the bundle delays it by at most the margin:
    in a shortage that is how the late ones get a courier at all.
    """
    if len(plan.orders) == 1:
        return False
    pickup = max(plan.ready_at, now)
    for order, offset in zip(plan.orders, plan.dropoff_offsets_s, strict=True):
        alone = max(order.ready_at, now) + plan.direct_ride_s[order.order_id]
        if pickup + offset > max(order.promised_at, alone) + config.promise_margin_s:
            return True
    return False


def target_bundle_size(orders: Sequence[OpenOrder], couriers: Sequence[Courier], now: float,
                       config: DispatchConfig) -> int:
    """How many orders a bundle should hold this round, from demand against supply.

    Orders whose food is ready within the shortage window (a backlog of late orders included)
    compete for couriers who are free within it;
    with at least one courier per order there is no reason to make anyone wait for a second
    drop-off, and past that bundles grow with the shortage.
    """
    horizon = now + config.shortage_window_s
    demand = sum(1 for o in orders if o.ready_at <= horizon)
    supply = sum(1 for c in couriers
                 if c.free_at <= horizon and (c.shift_end is None or max(c.free_at, now) <= c.shift_end))
    if demand == 0:
        return 1
    ratio = config.bundle_pressure * demand / max(1, supply)
    return max(1, min(config.max_bundle_size, math.ceil(ratio)))


def build_bundles(orders: Sequence[OpenOrder], target_size: int, travel: TravelTime, now: float,
                  config: DispatchConfig) -> list[BundlePlan]:
    """Split each restaurant's open orders into bundles of about `target_size`, by ready time.

    A candidate group that spans more than the ready window or breaks a promise beyond the margin
    is split again, down to singletons, so every order appears in exactly one plan.
    """
    by_store: dict[str, list[OpenOrder]] = defaultdict(list)
    for order in orders:
        by_store[order.store_id].append(order)
    plans: list[BundlePlan] = []
    for store_orders in by_store.values():
        store_orders.sort(key=lambda o: (o.ready_at, o.placed_at, o.order_id))
        if target_size <= 1 or len(store_orders) == 1:
            plans.extend(plan_bundle([o], travel, config) for o in store_orders)
            continue
        groups = math.ceil(len(store_orders) / target_size)
        size, extra = divmod(len(store_orders), groups)
        start = 0
        for g in range(groups):
            end = start + size + (1 if g < extra else 0)
            plans.extend(_feasible_split(store_orders[start:end], travel, now, config))
            start = end
    return plans


def _feasible_split(group: list[OpenOrder], travel: TravelTime, now: float,
                    config: DispatchConfig) -> list[BundlePlan]:
    if len(group) == 1:
        return [plan_bundle(group, travel, config)]
    # Food that is ready already waits either way, so the spread counts from now on.
    ready = [max(o.ready_at, now) for o in group]
    if ready[-1] - ready[0] <= config.bundle_ready_window_s:
        plan = plan_bundle(group, travel, config)
        if not breaks_promise(plan, now, config):
            return [plan]
    # Split at the widest gap in ready times: the two halves are the most homogeneous.
    gaps = [ready[i + 1] - ready[i] for i in range(len(group) - 1)]
    cut = gaps.index(max(gaps)) + 1
    return _feasible_split(group[:cut], travel, now, config) + _feasible_split(group[cut:], travel, now, config)
