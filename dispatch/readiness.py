"""When a store's food will be ready, and how sure that is. Pure: observations in, estimates out.

The expected prep time is the live one: the stated prep time corrected by the store's learned
lateness (`geo.eta.PrepTimeEstimator`, the estimate `dispatch.service` uses). Kitchens are not
punctual around that estimate either, and the two ways of being wrong cost differently: a courier
who arrives before the food waits (cheap: `CostWeights.courier_wait`), food ready before its courier
waits with the customer's clock running (`CostWeights.food_wait`). So the plan aims at a quantile of
the ready time, not its mean: the newsvendor's `courier_wait / (courier_wait + food_wait)`, the time
by which the food is ready that often. The spread is measured, not assumed: the quantile of how far
recent orders landed from their expectation at the time (all stores pooled: a store sees too few
orders a day to know its own spread).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from dispatch.cost import CostWeights
from geo.eta import PrepTimeEstimator


def ready_quantile(weights: CostWeights) -> float:
    """The share of orders whose food should be ready by the planned time (see the module doc)."""
    return weights.courier_wait / (weights.courier_wait + weights.food_wait)


@dataclass(frozen=True, slots=True)
class ReadyLearning:
    alpha: float = 0.2  # the store lateness's weight of each new order (the live `prep_alpha`)
    quantile: float = 0.2  # plan for the food being ready by then this often (`ready_quantile`)
    window: int = 500  # recent misses the spread is measured over

    def __post_init__(self) -> None:
        if not 0.0 < self.quantile < 1.0 or self.window < 1:
            raise ValueError("need 0 < quantile < 1 and a window of at least one order")


@dataclass(slots=True)
class ReadyTimes:
    """A store's expected and planned prep time, learning from orders whose food was seen ready."""

    learning: ReadyLearning = field(default_factory=ReadyLearning)
    estimator: PrepTimeEstimator = field(default_factory=PrepTimeEstimator)
    misses: deque[float] = field(default_factory=deque)
    _margin: float | None = None

    def __post_init__(self) -> None:
        self.estimator = PrepTimeEstimator(alpha=self.learning.alpha, lateness_s=self.estimator.lateness_s)
        self.misses = deque(self.misses, maxlen=self.learning.window)

    def expected_prep_s(self, store_id: str, stated_prep_s: float) -> float:
        return self.estimator.estimate_s(store_id, stated_prep_s)

    def planned_prep_s(self, store_id: str, stated_prep_s: float) -> float:
        """The prep time to plan with: expected, moved to the quantile of recent misses."""
        return self.expected_prep_s(store_id, stated_prep_s) + self.margin_s()

    def margin_s(self) -> float:
        if self._margin is None:
            self._margin = float(np.quantile(np.fromiter(self.misses, np.float64), self.learning.quantile)
                                 ) if self.misses else 0.0
        return self._margin

    def observe(self, store_id: str, stated_prep_s: float, actual_prep_s: float) -> None:
        """The food of one order at `store_id` took `actual_prep_s` where `stated_prep_s` was announced."""
        self.misses.append(actual_prep_s - self.expected_prep_s(store_id, stated_prep_s))
        self._margin = None
        self.estimator = self.estimator.observed(store_id, stated_prep_s, actual_prep_s)
