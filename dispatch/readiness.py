"""When a store's food will be ready, and how sure that is. Pure: observations in, estimates out.

Kitchens miss their announced ready time in two ways: every kitchen by a spread of minutes from
order to order (a rush, a missing ingredient), and some stores by a steady margin. The plan is:
- the announced prep time,
- plus the quantile of recent lateness over all stores (pooled: a store sees too few orders a day
  to know its own spread) that the cost weights ask for: a courier who arrives before the food waits
  (cheap: `CostWeights.courier_wait`), food ready before its courier waits with the customer's clock
  running (`CostWeights.food_wait`), so aim at the newsvendor's `courier_wait / (courier_wait +
  food_wait)`, the time by which the food is ready that often;
- plus the store's own mean lateness beyond the pool's, shrunk towards nothing by `store_weight`
  pseudo-orders, so a store's steady lateness counts once its orders show it, and a few unlucky
  orders at a punctual store do not move its plan (planning a courier's arrival later than the
  food is ready costs the customer; measured on the MDRP replays, an unshrunk per-store average
  planned 0.5-1 min of click-to-door worse than the announced time when lateness is noise).
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field

import numpy as np

from dispatch.cost import CostWeights


def ready_quantile(weights: CostWeights) -> float:
    """The share of orders whose food should be ready by the planned time (see the module doc)."""
    return weights.courier_wait / (weights.courier_wait + weights.food_wait)


@dataclass(frozen=True, slots=True)
class ReadyLearning:
    quantile: float = 0.2  # plan for the food being ready by then this often (`ready_quantile`)
    window: int = 500  # recent orders the pooled lateness is measured over
    store_weight: float = 20.0  # pseudo-orders of pool-like lateness behind each store's own mean

    def __post_init__(self) -> None:
        if not 0.0 < self.quantile < 1.0 or self.window < 1 or self.store_weight <= 0:
            raise ValueError("need 0 < quantile < 1, a window of at least one order and a positive store_weight")


@dataclass(slots=True)
class ReadyTimes:
    """Planned prep times, learning from orders whose food was seen ready. Mutable: a replay adds
    each order as a courier reaches its counter."""

    learning: ReadyLearning = field(default_factory=ReadyLearning)
    pooled: deque[float] = field(default_factory=deque)  # recent lateness, seconds, every store
    seen: Counter[str] = field(default_factory=Counter)  # orders seen per store
    late_sum: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # seconds, summed
    _pool: tuple[float, float] | None = None  # (quantile, mean) of `pooled`, until the next order

    def __post_init__(self) -> None:
        self.pooled = deque(self.pooled, maxlen=self.learning.window)

    def planned_prep_s(self, store_id: str, stated_prep_s: float) -> float:
        """The prep time to plan with (see the module doc); the stated one until an order is seen."""
        if not self.pooled:
            return stated_prep_s
        quantile, mean = self._pool_stats()
        return max(0.0, stated_prep_s + quantile + self.store_offset_s(store_id, mean))

    def store_offset_s(self, store_id: str, pool_mean_s: float | None = None) -> float:
        """The store's lateness beyond the pool's, shrunk by `store_weight` pseudo-orders."""
        n = self.seen.get(store_id, 0)
        if n == 0:
            return 0.0
        mean = self._pool_stats()[1] if pool_mean_s is None else pool_mean_s
        return (self.late_sum[store_id] - n * mean) / (n + self.learning.store_weight)

    def observe(self, store_id: str, stated_prep_s: float, actual_prep_s: float) -> None:
        """The food of one order at `store_id` took `actual_prep_s` where `stated_prep_s` was announced."""
        late = actual_prep_s - stated_prep_s
        self.pooled.append(late)
        self.seen[store_id] += 1
        self.late_sum[store_id] += late
        self._pool = None

    def _pool_stats(self) -> tuple[float, float]:
        if self._pool is None:
            values = np.fromiter(self.pooled, np.float64)
            self._pool = (float(np.quantile(values, self.learning.quantile)), float(values.mean()))
        return self._pool
