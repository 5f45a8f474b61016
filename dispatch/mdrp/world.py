"""A misbehaving world for the MDRP replay: couriers who decline, kitchens that run late, traffic.

Everything here is a pure function of the world seed `N` and the ids as written in the instance,
through `h(x) = int(sha256(x.encode()).hexdigest(), 16)`, so the same courier and order always get the
same answer whatever the policy does, and anyone can re-check a solution against the world
(`checker.check_solution(..., world=...)` does):

- Declines: courier `c` declines with rate `r_c = 2 * P * (h(f"{N}:{c}") % 10000) / 10000`, and
  declines every offer of order `o` exactly when `h(f"{N}:{c}:{o}") % 10000 < r_c * 10000` (an offer
  of a bundle is declined when any of its orders is). A declined offer is known only when it times
  out (`offer_timeout_s`), and only then may its orders go to someone else.
- Late kitchens: order `o` is really ready `kitchen_delay_min(o)` after the instance's ready time,
  exponential with mean `kitchen_delay_s`: `-mean * ln(1 - u)` with `u = (h(f"{N}:kitchen:{o}") % 2**53)
  / 2**53`. The dispatcher sees the announced time until a courier reaches the restaurant.
- Traffic: the leg from place `a` to place `b` (ids as in the courier moves file, the on-location
  `0` written as the courier's id) takes the instance's time times `exp(|z|)`, `z` drawn from
  N(0, `travel_sigma`) as `inv_cdf((h(f"{N}:travel:{a}:{b}") % 2**53 + 0.5) / 2**53)`: traffic only
  ever slows a trip. The same leg is as slow for every courier who drives it.

Realised durations are rounded up to a thousandth of a minute, so the solution files (three decimals)
hold every realised time exactly. With every option off the world is the instance's perfect one
and every function returns the instance's own figures unchanged.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from statistics import NormalDist

from dispatch.mdrp.instance import Instance, Order

GRID = 1000  # realised times are whole thousandths of a minute
_U53 = 2 ** 53


def h(text: str) -> int:
    """The world's hash: sha256 of the text, as an integer."""
    return int(hashlib.sha256(text.encode()).hexdigest(), 16)


def on_grid(minutes: float) -> float:
    """`minutes` rounded up to the world's grid (a whole number stays as it is)."""
    return math.ceil(minutes * GRID - 1e-9) / GRID


@dataclass(frozen=True, slots=True)
class World:
    declines: float = 0.0  # P: the mean decline rate over couriers (each courier's rate is in [0, 2P])
    kitchen_delay_s: float = 0.0  # mean of the exponential delay past the announced ready time
    travel_sigma: float = 0.0  # S: each leg takes its time x exp(|N(0, S)|)
    seed: int = 0  # N
    offer_timeout_s: float = 30.0  # simulated seconds before a declined offer's orders are free again

    def __post_init__(self) -> None:
        if not 0.0 <= self.declines <= 0.5:
            raise ValueError("declines must be between 0 and 0.5 (a courier's rate is at most 2P)")
        if not (self.kitchen_delay_s >= 0.0 and math.isfinite(self.kitchen_delay_s)):
            raise ValueError("kitchen_delay_s must be a non-negative number of seconds")
        if not (self.travel_sigma >= 0.0 and math.isfinite(self.travel_sigma)):
            raise ValueError("travel_sigma must be non-negative")
        if not (self.offer_timeout_s >= 0.0 and math.isfinite(self.offer_timeout_s)):
            raise ValueError("offer_timeout_s must be a non-negative number of seconds")

    @property
    def perfect(self) -> bool:
        """Every option off: the instance's own world."""
        return self.declines == 0.0 and self.kitchen_delay_s == 0.0 and self.travel_sigma == 0.0

    # -- declines -------------------------------------------------------------------------------

    def decline_rate(self, courier_id: str) -> float:
        return 2 * self.declines * (h(f"{self.seed}:{courier_id}") % 10000) / 10000

    def declines_order(self, courier_id: str, order_id: str) -> bool:
        """True if `courier_id` declines every offer holding `order_id`."""
        if self.declines == 0.0:
            return False
        return h(f"{self.seed}:{courier_id}:{order_id}") % 10000 < self.decline_rate(courier_id) * 10000

    def declines_bundle(self, courier_id: str, order_ids: tuple[str, ...] | list[str]) -> bool:
        return any(self.declines_order(courier_id, oid) for oid in order_ids)

    # -- kitchens -------------------------------------------------------------------------------

    def kitchen_delay_min(self, order_id: str) -> float:
        if self.kitchen_delay_s == 0.0:
            return 0.0
        u = (h(f"{self.seed}:kitchen:{order_id}") % _U53) / _U53
        return on_grid(-self.kitchen_delay_s * math.log1p(-u) / 60.0)

    def actual_ready_min(self, order: Order) -> float:
        """When the food of `order` is really ready (minutes)."""
        if self.kitchen_delay_s == 0.0:
            return order.ready_time
        return on_grid(order.ready_time + self.kitchen_delay_min(order.order_id))

    # -- traffic --------------------------------------------------------------------------------

    def travel_factor(self, origin_id: str, destination_id: str) -> float:
        """The slow-down of the leg between two places (ids as in the moves file, `0` as the courier's id)."""
        if self.travel_sigma == 0.0:
            return 1.0
        u = (h(f"{self.seed}:travel:{origin_id}:{destination_id}") % _U53 + 0.5) / _U53
        return math.exp(abs(NormalDist(0.0, self.travel_sigma).inv_cdf(u)))

    def leg_min(self, instance: Instance, courier_id: str, origin_id: str, destination_id: str) -> float:
        """How long the courier's move from `origin_id` to `destination_id` really takes (minutes)."""
        computed = instance.travel_min(instance.location(origin_id, courier_id),
                                       instance.location(destination_id, courier_id))
        if self.travel_sigma == 0.0:
            return computed
        origin = courier_id if origin_id == "0" else origin_id
        return on_grid(computed * self.travel_factor(origin, destination_id))

    # -- the best any policy could do here ------------------------------------------------------

    def lower_bound_min(self, instance: Instance, order: Order) -> float:
        """Click-to-door with a courier already waiting at the counter: (actual ready - placement)
        + half the pickup service + the realised ride to the customer + half the drop-off service."""
        params = instance.parameters
        ride = self.leg_min(instance, "", order.restaurant, order.order_id)
        return (self.actual_ready_min(order) - order.placement_time + params.pickup_service_min / 2 + ride
                + params.dropoff_service_min / 2)
