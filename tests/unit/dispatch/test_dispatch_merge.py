from dataclasses import replace

from dispatch_factories import MIN, TRAVEL, courier, order

from dispatch.core import decide
from dispatch.cost import DispatchConfig

CONFIG = DispatchConfig()


def two_orders_one_near_courier():
    orders = [order("a", to=(1200, 0), ready=10), order("b", to=(1800, 0), ready=10)]
    couriers = [courier("near", (0, 0)), courier("far", (18000, 0))]  # far: 30 minutes away
    return orders, couriers


def test_a_far_second_courier_loses_to_one_courier_carrying_both():
    orders, couriers = two_orders_one_near_courier()
    decision = decide(orders, couriers, TRAVEL, 8 * MIN, CONFIG)
    assert [(x.courier_id, set(x.bundle.order_ids)) for x in decision.assignments] == [("near", {"a", "b"})]


def test_without_the_merge_step_each_order_takes_its_own_courier():
    orders, couriers = two_orders_one_near_courier()
    decision = decide(orders, couriers, TRAVEL, 8 * MIN, replace(CONFIG, merge_after_matching=False))
    assert sorted(len(x.bundle.order_ids) for x in decision.assignments) == [1, 1]


def test_with_two_near_couriers_nobody_waits_for_a_second_drop_off():
    orders, _ = two_orders_one_near_courier()
    couriers = [courier("near", (0, 0)), courier("also_near", (600, 0))]
    decision = decide(orders, couriers, TRAVEL, 8 * MIN, CONFIG)
    assert sorted(len(x.bundle.order_ids) for x in decision.assignments) == [1, 1]


def test_orders_of_different_restaurants_are_never_merged():
    orders = [order("a", to=(1200, 0), ready=10),
              order("b", store="r2", store_at=(60, 0), to=(1800, 0), ready=10)]
    couriers = [courier("near", (0, 0)), courier("far", (18000, 0))]
    decision = decide(orders, couriers, TRAVEL, 8 * MIN, CONFIG)
    assert all(len(x.bundle.order_ids) == 1 for x in decision.assignments)
