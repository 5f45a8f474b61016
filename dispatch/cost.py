"""The dispatch cost model: named weights and the cost of a courier carrying a planned route.

Every cost term is in seconds of some kind of waiting, multiplied by a weight, so the weights
read as "one second of X is worth w seconds of a customer's food sitting at the counter".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dispatch.model import Courier, OpenOrder, Policy, Route


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

    def __post_init__(self) -> None:
        if self.step_s <= 0:
            raise ValueError("step_s must be positive")
        if not 1 <= self.max_bundle_size <= 6:
            raise ValueError("max_bundle_size must be between 1 and 6")
        if self.candidates_per_bundle < 1:
            raise ValueError("candidates_per_bundle must be at least 1")


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """The raw seconds behind a cost, before weighting."""

    lateness_s: tuple[float, ...]  # per order: `lateness_cost` is not linear, so no summing first
    food_wait_s: float
    ride_delay_s: float
    courier_wait_s: float
    travel_s: float
    prior_deliveries: int

    def total(self, weights: CostWeights) -> float:
        return (
            sum(lateness_cost(late, weights) for late in self.lateness_s)
            + weights.food_wait * self.food_wait_s
            + weights.ride_delay * self.ride_delay_s
            + weights.courier_wait * self.courier_wait_s
            + weights.travel * self.travel_s
            + weights.fairness * self.prior_deliveries
        )


def lateness_cost(lateness_s: float, weights: CostWeights) -> float:
    """Price of one order's lateness: grows faster than linearly so old orders are not starved."""
    return weights.lateness * lateness_s * (1.0 + lateness_s / weights.lateness_doubling_s)


def route_breakdown(
    route: Route,
    orders: dict[str, OpenOrder],
    courier: Courier,
    direct_ride_s: dict[str, float],
    travel_s: float,
    pickup_service_s: float,
) -> CostBreakdown:
    """Break a planned route down into the waste it causes.

    `direct_ride_s[o]` is the drop-off time of `o` relative to its pickup if it rode alone, so
    ride delay measures only what bundling adds. `travel_s` is the route's total driving time.
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
    return CostBreakdown(tuple(lateness), food_wait, ride_delay, courier_wait, travel_s, courier.delivered_count)
