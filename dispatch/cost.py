"""The dispatch cost model: named weights and the cost of a courier carrying a planned bundle.

Every cost term is in seconds of some kind of waiting, multiplied by a weight, so the weights
read as "one second of X is worth w seconds of a customer's food sitting at the counter".

The cost of a (bundle, courier) pair has one definition, `pair_costs`, in numpy over a batch of
pairs: a round prices thousands of pairs in the matching, every candidate merge, and "not now"
for every bundle, each in one call. Pricing one pair (`assign.price_match`, `not_now_cost`) is the
same function on a batch of one. The weights are applied in one place (`weighted_costs`), which
also totals the term-by-term breakdown of a built route (`route_breakdown`: what the greedy
baseline reports, and the readable reference the tests check `pair_costs` against).

A courier who may decline an offer costs the expected delay of a decline: with chance 1 - p the
bundle's orders wait until the offer lapses and the next round offers them to someone else. `p`
is the courier's learned acceptance for an offer of that size (`Courier.acceptance` per band of
trip time, see `OFFER_BANDS_S`); a courier who always accepts adds nothing, so among near-equal
couriers the likely one gets the offer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from dispatch.model import Courier, OpenOrder, Policy, Route

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Seconds = TypeVar("Seconds", float, FloatArray)  # the lateness curve reads one value or a column

# Offers are told apart by their trip (driving to the restaurant and on to the customers) when
# learning who accepts what: short (< 15 min), medium (< 30 min), long. The trip is what a courier
# weighs against the payout, which grows with it.
OFFER_BANDS_S = (900.0, 1800.0)


@dataclass(frozen=True, slots=True)
class CostWeights:
    """How much one second of each kind of waste costs, relative to the others."""

    lateness: float = 2.0  # per second an order is dropped off after its promise
    lateness_doubling_s: float = 1800.0  # lateness weight doubles every this many seconds late, so
    # the oldest late orders come first instead of starving behind fresh ones
    food_wait: float = 1.0  # per second food waits at the restaurant after it is ready
    ride_delay: float = 1.0  # per second a bundled order arrives later than a direct ride would
    courier_wait: float = 0.25  # per second a courier waits at the restaurant: idle time costs like driving
    travel: float = 0.25  # per second of courier driving (empty and loaded)
    fairness: float = 10.0  # per order the courier already delivered this shift
    hold: float = 1.0  # scales the "not now" price (see assign.not_now_cost)
    decline: float = 2.0  # per second an order is expected to wait because its courier may decline


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    """Everything a round needs besides the orders, couriers and travel model."""

    policy: Policy = Policy.OPTIMIZER
    weights: CostWeights = field(default_factory=CostWeights)
    step_s: float = 60.0  # time to the next round; the commitment rule needs it
    pickup_service_s: float = 240.0  # split in halves around the pickup instant (MDRP rule)
    dropoff_service_s: float = 240.0  # split in halves around the drop-off instant
    max_bundle_size: int = 3
    bundle_ready_window_s: float = 600.0  # ready times in one bundle at most this far apart
    promise_margin_s: float = 1200.0  # a bundle may not push any order this far past its promise
    horizon_s: float = 1200.0  # look-ahead for soon-free couriers in the matching
    shortage_window_s: float = 600.0  # demand vs supply for bundling is measured over this window
    bundle_pressure: float = 1.0  # scales the demand/supply ratio that sets the bundle size
    merge_after_matching: bool = True  # merge a restaurant's bundles when one courier is cheaper
    commit_slack_s: float = 0.0  # commit this much earlier than the latest useful departure
    candidates_per_bundle: int = 12  # cheapest couriers kept per bundle in the matching
    hold_horizon_s: float = 3600.0  # "not now" is priced as being served this much later
    reposition: bool = False  # MDRP's base rules keep idle couriers where they are
    offer_timeout_s: float = 30.0  # a declined (or unanswered) offer holds its orders this long

    def __post_init__(self) -> None:
        if self.step_s <= 0:
            raise ValueError("step_s must be positive")
        if not 1 <= self.max_bundle_size <= 6:
            raise ValueError("max_bundle_size must be between 1 and 6")
        if self.candidates_per_bundle < 1:
            raise ValueError("candidates_per_bundle must be at least 1")
        if self.offer_timeout_s < 0:
            raise ValueError("offer_timeout_s must not be negative")

    @property
    def decline_delay_s(self) -> float:
        """How long a declined offer delays its orders: until the first round after it lapses."""
        return math.ceil(self.offer_timeout_s / self.step_s - 1e-9) * self.step_s


class PairColumns(NamedTuple):
    """A batch of (bundle, courier) pairs to price: one float64 entry per pair in each column.

    Courier side: when it reaches the counter, how long it drove there, its shift end (inf: none)
    and the orders it delivered this shift. Bundle side: the figures a `BundlePlan` works out once
    (its latest ready time, the sum of its ready times, its size, the extra ride time bundling
    causes, its loaded driving time) and, per drop-off position, the latest pickup that keeps
    that order's promise (inf past the bundle's last order, so a shorter bundle is never late there).
    The pair: the chance the courier declines the offer (0 for a courier who always accepts).
    """

    arrive: FloatArray
    approach_s: FloatArray
    shift_end: FloatArray
    prior_deliveries: FloatArray
    ready_at: FloatArray
    ready_sum_s: FloatArray
    n_orders: FloatArray
    ride_delay_s: FloatArray
    loaded_travel_s: FloatArray
    promise_slack_s: tuple[FloatArray, ...]
    decline_p: FloatArray


def pair_costs(pairs: PairColumns, weights: CostWeights, pickup_service_s: float,
               decline_delay_s: float) -> FloatArray:
    """The cost of each courier carrying its bundle: inf where it would pick up after its shift ends.

    The pickup is half a service time after the courier reaches the counter, or when the last food
    is ready if that is later; then every term of `route_breakdown` follows from the bundle's
    figures, without building the route.
    """
    half = pickup_service_s / 2
    pickup_at = np.maximum(pairs.arrive + half, pairs.ready_at)
    lateness_s = tuple(np.where(pickup_at > slack, pickup_at - slack, 0.0) for slack in pairs.promise_slack_s)
    cost = weighted_costs(
        lateness_s,
        food_wait_s=pairs.n_orders * pickup_at - pairs.ready_sum_s,
        ride_delay_s=pairs.ride_delay_s,
        courier_wait_s=pickup_at - pairs.arrive - half,
        travel_s=pairs.approach_s + pairs.loaded_travel_s,
        prior_deliveries=pairs.prior_deliveries,
        decline_risk_s=pairs.decline_p * pairs.n_orders * decline_delay_s,
        weights=weights,
    )
    return np.where(pickup_at > pairs.shift_end, np.inf, cost)


def acceptance_table(acceptances: Sequence[tuple[float, ...]]) -> FloatArray | None:
    """One row per courier, one column per offer band: the chance it accepts (a courier's tuple may
    be shorter than the bands: its last value holds for the longer ones; empty: accepts all).
    None when every courier accepts everything, the perfect world's case: nothing to price."""
    if not any(acceptances):
        return None
    table = np.ones((len(acceptances), len(OFFER_BANDS_S) + 1))
    for row, accept in enumerate(acceptances):
        for band in range(table.shape[1]):
            if accept:
                table[row, band] = accept[min(band, len(accept) - 1)]
    return table


def decline_chances(table: FloatArray | None, courier_idx: IntArray, trip_s: FloatArray) -> FloatArray:
    """Per pair: the chance its courier (a row of `acceptance_table`) declines a trip of `trip_s`."""
    if table is None:
        return np.zeros(len(trip_s))
    return 1.0 - table[courier_idx, offer_bands(trip_s)]


def offer_bands(trip_s: FloatArray) -> IntArray:
    """The band (index into a row of `acceptance_table`) of each trip of `trip_s` seconds."""
    return np.searchsorted(np.asarray(OFFER_BANDS_S), trip_s, side="right")


def weighted_costs(lateness_s: Sequence[FloatArray], *, food_wait_s: FloatArray, ride_delay_s: FloatArray,
                   courier_wait_s: FloatArray, travel_s: FloatArray, prior_deliveries: FloatArray,
                   decline_risk_s: FloatArray, weights: CostWeights) -> FloatArray:
    """The weights applied to raw seconds, one entry per pair. `lateness_s` holds one column per
    drop-off position (0 where on time): lateness is priced per order, it is not linear."""
    lateness = np.zeros(len(food_wait_s))
    for late in lateness_s:  # in drop-off order, so a sum is the same whatever the batch
        lateness = lateness + lateness_cost(late, weights)
    return (lateness
            + weights.food_wait * food_wait_s
            + weights.ride_delay * ride_delay_s
            + weights.courier_wait * courier_wait_s
            + weights.travel * travel_s
            + weights.fairness * prior_deliveries
            + weights.decline * decline_risk_s)


def lateness_cost(lateness_s: Seconds, weights: CostWeights) -> Seconds:
    """Price of one order's lateness: grows faster than linearly so old orders are not starved."""
    return weights.lateness * lateness_s * (1.0 + lateness_s / weights.lateness_doubling_s)


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """The raw seconds behind the cost of one built route, before weighting."""

    lateness_s: tuple[float, ...]  # per order: `lateness_cost` is not linear, so no summing first
    food_wait_s: float
    ride_delay_s: float
    courier_wait_s: float
    travel_s: float
    prior_deliveries: int
    decline_risk_s: float = 0.0  # the orders' expected wait if the courier declines

    def total(self, weights: CostWeights) -> float:
        return float(total_costs([self], weights)[0])


def total_costs(breakdowns: Sequence[CostBreakdown], weights: CostWeights) -> FloatArray:
    """`CostBreakdown.total` of many routes in one batch (a route with fewer orders is on time at
    the positions it lacks, which adds nothing)."""
    n = len(breakdowns)

    def column(values: Iterable[float]) -> FloatArray:
        return np.fromiter(values, np.float64, n)

    width = max((len(b.lateness_s) for b in breakdowns), default=0)
    return weighted_costs(
        [column(b.lateness_s[j] if j < len(b.lateness_s) else 0.0 for b in breakdowns) for j in range(width)],
        food_wait_s=column(b.food_wait_s for b in breakdowns), ride_delay_s=column(b.ride_delay_s for b in breakdowns),
        courier_wait_s=column(b.courier_wait_s for b in breakdowns), travel_s=column(b.travel_s for b in breakdowns),
        prior_deliveries=column(b.prior_deliveries for b in breakdowns),
        decline_risk_s=column(b.decline_risk_s for b in breakdowns), weights=weights)


def route_driving_s(route: Route) -> float:
    """A route's driving: to the restaurant, then from stop to stop (what `travel_s` holds, the trip
    whose band sets a courier's acceptance). 0 for a route without stops."""
    driving, left = 0.0, route.depart_at
    for stop in route.stops:
        driving += stop.arrive_at - left
        left = stop.leave_at
    return driving


def route_breakdown(
    route: Route,
    orders: dict[str, OpenOrder],
    courier: Courier,
    direct_ride_s: dict[str, float],
    travel_s: float,
    pickup_service_s: float,
    decline_delay_s: float = 0.0,
) -> CostBreakdown:
    """Break a planned route down into the waste it causes.

    `direct_ride_s[o]` is the drop-off time of `o` relative to its pickup if it rode alone, so
    ride delay measures only what bundling adds. `travel_s` is the route's total driving time (the
    trip whose band sets the courier's acceptance); a decline delays the orders `decline_delay_s`.
    """
    pickup = route.stops[0]
    food_wait = 0.0
    ride_delay = 0.0
    lateness: list[float] = []
    for stop in route.stops[1:]:
        for order_id in stop.order_ids:
            order = orders[order_id]
            food_wait += max(0.0, pickup.done_at - order.ready_at)
            ride_delay += max(0.0, stop.done_at - pickup.done_at - direct_ride_s[order_id])
            lateness.append(max(0.0, stop.done_at - order.promised_at))
    courier_wait = max(0.0, pickup.done_at - (pickup.arrive_at + pickup_service_s / 2))
    decline_p = float(decline_chances(acceptance_table([courier.acceptance]), np.zeros(1, np.intp),
                                      np.array([travel_s]))[0])
    return CostBreakdown(tuple(lateness), food_wait, ride_delay, courier_wait, travel_s, courier.delivered_count,
                         decline_p * len(lateness) * decline_delay_s)
