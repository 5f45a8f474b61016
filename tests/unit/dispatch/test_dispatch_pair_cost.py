"""The one pair cost (`dispatch.cost.pair_costs`): priced in a batch or one pair at a time, a pair
costs the same to the last bit, and that cost is the one a built route breaks down into."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from dispatch_factories import TRAVEL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.assign import _price_rows, not_now_cost, not_now_costs, price_match
from dispatch.bundling import BundlePlan, plan_bundle
from dispatch.cost import CostWeights, DispatchConfig, PairColumns, pair_costs, route_breakdown
from dispatch.model import Courier, OpenOrder

NOW = 36_000.0
STORE = (0.0, 0.0)
# Drop-offs and courier positions: the restaurant itself (zero distance), near, far, off-grid.
SPOTS = st.sampled_from([STORE, (600.0, 0.0), (0.0, 1250.5), (-4321.0, 987.0), (9000.0, -9000.0)])
# Times around now: food long ready (early), ready now, not ready yet; promises already broken or far off.
OFFSET_S = st.floats(-5400.0, 5400.0) | st.just(0.0)


@st.composite
def orders(draw: st.DrawFn, order_id: str) -> OpenOrder:
    ready = NOW + draw(OFFSET_S)
    declined = draw(st.sets(st.sampled_from(["c0", "c1", "c2"]), max_size=1))
    return OpenOrder(order_id, "r1", STORE, draw(SPOTS), ready - draw(st.floats(0.0, 3600.0)), ready,
                     NOW + draw(OFFSET_S), frozenset(declined))


@st.composite
def plans(draw: st.DrawFn, prefix: str) -> BundlePlan:
    """A bundle of one or two orders (sometimes three), planned as the round plans it."""
    size = draw(st.sampled_from([1, 1, 2, 2, 3]))
    return plan_bundle([draw(orders(f"{prefix}{i}")) for i in range(size)], TRAVEL, CONFIGS[0])


@st.composite
def couriers(draw: st.DrawFn, courier_id: str) -> Courier:
    free = NOW + draw(st.sampled_from([0.0, -600.0, 300.0, 1234.5]))
    shift_end = draw(st.none() | st.floats(NOW - 600.0, NOW + 7200.0))
    # Learned acceptance per trip band: none (accepts all), one rate, or one per band (long trips shunned).
    acceptance = draw(st.sampled_from([(), (0.9,), (1.0, 0.5, 0.2), (0.7, 0.8, 0.6)]))
    return Courier(courier_id, draw(SPOTS), free, shift_end=shift_end, delivered_count=draw(st.integers(0, 30)),
                   acceptance=acceptance)


CONFIGS = [DispatchConfig(), replace(DispatchConfig(), pickup_service_s=0.0, dropoff_service_s=0.0),
           replace(DispatchConfig(), pickup_service_s=120.0, hold_horizon_s=600.0, step_s=5.0, offer_timeout_s=30.0)]
CASES = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@CASES
@given(batch=st.integers(1, 6).flatmap(lambda n: st.tuples(*(plans(f"o{i}_") for i in range(n)))),
       fleet=st.integers(1, 4).flatmap(lambda n: st.tuples(*(couriers(f"c{i}") for i in range(n)))),
       config=st.sampled_from(CONFIGS))
def test_a_batch_prices_every_pair_as_pricing_it_alone_does(batch, fleet, config) -> None:
    approach: dict[tuple[int, str], float] = {}
    rows = _price_rows([(plan, range(len(fleet))) for plan in batch], fleet, TRAVEL, NOW, config, approach)
    for plan, row in zip(batch, rows, strict=True):
        alone = [(price_match(plan, courier, approach.get((ci, "r1"), 0.0), NOW, config), ci)
                 for ci, courier in enumerate(fleet)]
        # Refused (declined or past the shift end) is left out of the batch and None alone.
        assert row == [(cost, ci) for cost, ci in alone if cost is not None]


@CASES
@given(batch=st.integers(1, 8).flatmap(lambda n: st.tuples(*(plans(f"o{i}_") for i in range(n)))),
       config=st.sampled_from(CONFIGS))
def test_not_now_of_a_batch_is_not_now_of_each_bundle(batch, config) -> None:
    assert not_now_costs(batch, NOW, config).tolist() == [not_now_cost(plan, NOW, config) for plan in batch]


@CASES
@given(plan=plans("o"), courier=couriers("c9"), config=st.sampled_from(CONFIGS))
def test_one_pair_costs_what_its_built_route_breaks_down_into(plan, courier, config) -> None:
    approach = TRAVEL.seconds(courier.position, plan.bundle.pickup, courier.vehicle)
    cost = price_match(plan, courier, approach, NOW, config)
    route = plan.route(max(NOW, courier.free_at), approach, config.pickup_service_s, config.dropoff_service_s)
    if courier.shift_end is not None and route.pickup_at > courier.shift_end:
        assert cost is None
        return
    orders = {o.order_id: o for o in plan.orders}
    reference = route_breakdown(route, orders, courier, plan.direct_ride_s, approach + plan.loaded_travel_s,
                                config.pickup_service_s, config.decline_delay_s).total(config.weights)
    # The route adds offsets to the pickup instant where the pair cost subtracts them from the
    # promise: the same seconds, rounded differently.
    assert cost == pytest.approx(reference, rel=1e-9, abs=1e-6)


def test_a_pair_costs_its_weighted_seconds_and_a_pickup_after_the_shift_is_refused() -> None:
    # Two orders ready at 300 and 400 s; the courier arrives at 100 s after a 60 s drive, so it
    # waits for the food: pickup at 400 s. The first order's promise needs a pickup by 350 s.
    pair = PairColumns(
        arrive=np.array([100.0, 100.0]), approach_s=np.array([60.0, 60.0]), shift_end=np.array([np.inf, 300.0]),
        prior_deliveries=np.array([2.0, 2.0]), ready_at=np.array([400.0, 400.0]), ready_sum_s=np.array([700.0, 700.0]),
        n_orders=np.array([2.0, 2.0]), ride_delay_s=np.array([50.0, 50.0]), loaded_travel_s=np.array([500.0, 500.0]),
        promise_slack_s=(np.array([350.0, 350.0]), np.array([1000.0, 1000.0])),
        decline_p=np.array([0.25, 0.25]),
    )
    late = 2.0 * 50 * (1 + 50 / 1800)  # 50 s late, the lateness weight doubling every 30 min
    decline = 2.0 * 0.25 * 2 * 60  # one time in four both orders wait a minute for the next offer
    expected = (late + 1.0 * (2 * 400 - 700) + 1.0 * 50 + 0.25 * (400 - 100 - 120) + 0.25 * (60 + 500) + 10.0 * 2
                + decline)
    cost = pair_costs(pair, CostWeights(), pickup_service_s=240.0, decline_delay_s=60.0)
    assert cost[0] == pytest.approx(expected, rel=1e-12)
    assert cost[1] == np.inf  # the second courier's shift ends before the food is ready
