from dataclasses import replace

import pytest
from dispatch_factories import MIN, TRAVEL, courier, order

from dispatch.bundling import breaks_promise, build_bundles, plan_bundle, target_bundle_size
from dispatch.cost import DispatchConfig

CONFIG = DispatchConfig()


def test_a_bundle_never_mixes_restaurants():
    with pytest.raises(ValueError, match="one restaurant"):
        plan_bundle([order("a", store="r1"), order("b", store="r2", store_at=(10, 10))], TRAVEL, CONFIG)


def test_orders_of_several_restaurants_are_bundled_per_restaurant_only():
    orders = [order(f"a{i}", store="r1", ready=10) for i in range(3)]
    orders += [order(f"b{i}", store="r2", store_at=(600, 0), ready=10) for i in range(3)]
    plans = build_bundles(orders, 3, TRAVEL, 0.0, CONFIG)
    for plan in plans:
        assert len({o.store_id for o in plan.orders}) == 1
    assert sorted(oid for p in plans for oid in p.bundle.order_ids) == sorted(o.order_id for o in orders)
    assert sorted(len(p.orders) for p in plans) == [3, 3]


def test_bundles_hold_at_most_the_configured_size():
    orders = [order(f"o{i}", ready=10) for i in range(7)]
    plans = build_bundles(orders, 5, TRAVEL, 0.0, replace(CONFIG, max_bundle_size=3))
    # target above the cap is the caller's mistake; the split still honours the target size given
    assert sum(len(p.orders) for p in plans) == 7
    capped = build_bundles(orders, target_bundle_size(orders, [], 0.0, CONFIG), TRAVEL, 0.0, CONFIG)
    assert max(len(p.orders) for p in capped) <= CONFIG.max_bundle_size


def test_orders_ready_far_apart_are_not_bundled():
    early, late = order("early", ready=5), order("late", ready=25)
    plans = build_bundles([early, late], 2, TRAVEL, 0.0, CONFIG)  # window is 10 minutes
    assert sorted(p.bundle.order_ids for p in plans) == [("early",), ("late",)]
    close = build_bundles([order("x", ready=5), order("y", ready=12)], 2, TRAVEL, 0.0, CONFIG)
    assert [p.bundle.order_ids for p in close] in ([("x", "y")], [("y", "x")])


def test_food_already_ready_does_not_count_against_the_ready_window():
    # Both were ready long ago (a backlog): waiting for one costs the other nothing more.
    orders = [order("old", placed=-60, ready=-40, promise=200), order("new", placed=-20, ready=-1, promise=200)]
    plans = build_bundles(orders, 2, TRAVEL, 0.0, CONFIG)
    assert len(plans) == 1


def test_a_bundle_that_breaks_a_promise_beyond_the_margin_is_split():
    config = replace(CONFIG, promise_margin_s=5 * MIN)
    near = order("near", to=(600, 0), ready=10, promise=28)
    # Far drop-off the other way: alone it arrives at 10+2+15+2 = 29 (already past 28); after
    # the near one at 10+2+1+2+2+16+2 = 35, 6 minutes later: more than the 5-minute margin.
    far = order("far", to=(-9000, 0), ready=10, promise=28)
    plan = plan_bundle([near, far], TRAVEL, config)
    assert breaks_promise(plan, 0.0, config)
    assert len(build_bundles([near, far], 2, TRAVEL, 0.0, config)) == 2
    lenient = replace(config, promise_margin_s=60 * MIN)
    assert not breaks_promise(plan, 0.0, lenient)
    assert len(build_bundles([near, far], 2, TRAVEL, 0.0, lenient)) == 1


def test_target_size_is_one_with_enough_couriers_and_grows_with_the_shortage():
    config = replace(CONFIG, bundle_pressure=1.0)
    orders = [order(f"o{i}", ready=5) for i in range(6)]
    many = [courier(f"c{i}", (0, 0)) for i in range(6)]
    assert target_bundle_size(orders, many, 0.0, config) == 1
    assert target_bundle_size(orders, many[:3], 0.0, config) == 2
    assert target_bundle_size(orders, many[:1], 0.0, config) == config.max_bundle_size
    # Couriers busy beyond the window are no supply; orders ready beyond it are no demand yet.
    busy = [courier(f"b{i}", (0, 0), free=60) for i in range(6)]
    assert target_bundle_size(orders, busy + many[:3], 0.0, config) == 2
    later = [order(f"l{i}", ready=90) for i in range(20)]
    assert target_bundle_size(orders + later, many, 0.0, config) == 1
    # Pressure above 1 starts bundling before couriers run out completely.
    assert target_bundle_size(orders, many[:4], 0.0, config) == 2
    assert target_bundle_size(orders, many[:4], 0.0, replace(config, bundle_pressure=2.0)) == 3


def test_one_and_two_order_plans_are_exactly_what_trying_every_sequence_gives():
    import random

    from dispatch.bundling import _plan_any, _plan_small
    from dispatch.model import OpenOrder
    from geo.eta import HaversineTravelTime, MdrpTravelTime

    rng = random.Random(5)
    for travel, spread in ((MdrpTravelTime(320.0), 4000.0), (HaversineTravelTime(), 0.03)):
        for _ in range(300):
            store = (rng.uniform(-spread, spread), rng.uniform(-spread, spread))
            if isinstance(travel, HaversineTravelTime):
                store = (52.5 + store[0], 13.4 + store[1])
            orders = [
                OpenOrder(f"o{i}", "r1", store, (store[0] + rng.uniform(-spread, spread),
                                                  store[1] + rng.uniform(-spread, spread)),
                          0.0, rng.uniform(0, 1200), rng.uniform(600, 3000), frozenset({f"c{rng.randrange(3)}"}))
                for i in range(rng.choice((1, 2)))]
            config = DispatchConfig(pickup_service_s=rng.choice((120.0, 240.0)))
            assert _plan_small(orders, travel, config, "car") == _plan_any(orders, travel, config, "car")
