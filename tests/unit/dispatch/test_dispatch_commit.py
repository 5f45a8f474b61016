from dataclasses import replace

import pytest
from dispatch_factories import MIN, TRAVEL, courier, order

from dispatch.core import decide
from dispatch.cost import DispatchConfig
from dispatch.model import Policy

CONFIG = DispatchConfig(step_s=60.0)


def test_courier_close_to_the_restaurant_is_held_until_it_must_leave():
    a = order("a", ready=20)  # restaurant at (0, 0)
    c = courier("c", (1200, 0))  # 2 minutes away
    # Arrival 2 + service 2 = 4: sending it at minute 0 would leave it waiting 16 minutes.
    early = decide([a], [c], TRAVEL, 0.0, CONFIG)
    assert early.assignments == () and early.held_order_ids == ("a",)
    # At minute 16 it arrives at 18, picks up at 20: leaving one round later would be late.
    on_time = decide([a], [c], TRAVEL, 16 * MIN, CONFIG)
    assert [x.courier_id for x in on_time.assignments] == ["c"]
    assert on_time.assignments[0].route.pickup_at == 20 * MIN


def test_far_courier_is_committed_at_once_when_it_is_already_late():
    a = order("a", ready=5)
    far = courier("far", (12000, 0))  # 20 minutes away
    decision = decide([a], [far], TRAVEL, 0.0, CONFIG)
    assert [x.courier_id for x in decision.assignments] == ["far"]


def test_busy_courier_who_will_be_close_is_waited_for_instead_of_a_far_idle_one():
    a = order("a", ready=15)
    soon_free_here = courier("near", (600, 0), free=5)  # free at 5, 1 minute away
    idle_far = courier("far", (9000, 0))  # 15 minutes away: would pick up at 17
    decision = decide([a], [soon_free_here, idle_far], TRAVEL, 0.0, CONFIG)
    assert decision.assignments == ()  # matched with the busy one: nothing to send yet
    assert decision.held_order_ids == ("a",)


def test_commit_slack_sends_couriers_earlier():
    a = order("a", ready=20)
    c = courier("c", (1200, 0))
    assert decide([a], [c], TRAVEL, 13 * MIN, CONFIG).assignments == ()
    eager = replace(CONFIG, commit_slack_s=5 * MIN)
    assert len(decide([a], [c], TRAVEL, 13 * MIN, eager).assignments) == 1


def test_a_courier_excluded_for_an_order_never_gets_it():
    a = replace(order("a", ready=0), excluded_couriers=frozenset({"c1"}))
    decision = decide([a], [courier("c1", (0, 0)), courier("c2", (6000, 0))], TRAVEL, 0.0, CONFIG)
    assert [x.courier_id for x in decision.assignments] == ["c2"]


def test_nobody_gets_two_bundles_and_no_order_is_assigned_twice():
    orders = [order(f"o{i}", store=f"r{i}", store_at=(600.0 * i, 0), ready=0) for i in range(6)]
    couriers = [courier(f"c{i}", (600.0 * i, 600)) for i in range(3)]
    decision = decide(orders, couriers, TRAVEL, 0.0, CONFIG)
    assigned = [oid for x in decision.assignments for oid in x.bundle.order_ids]
    assert len(assigned) == len(set(assigned))
    assert len({x.courier_id for x in decision.assignments}) == len(decision.assignments) == 3
    assert set(assigned) | set(decision.held_order_ids) == {o.order_id for o in orders}
    assert not set(assigned) & set(decision.held_order_ids)


def test_repositioning_moves_an_idle_courier_toward_food_nobody_takes():
    a = order("a", ready=0)
    config = replace(CONFIG, reposition=True, hold_horizon_s=60.0)
    # The only courier is an hour away: a match is worse than waiting, so it is repositioned.
    decision = decide([a], [courier("c", (36000 * 2, 0))], TRAVEL, 0.0, config)
    assert decision.assignments == ()
    assert [(m.courier_id, m.store_id) for m in decision.repositions] == [("c", "r1")]
    assert decide([a], [courier("c", (36000 * 2, 0))], TRAVEL, 0.0, CONFIG).repositions == ()


def test_repositioning_sends_the_nearest_spare_courier_but_never_one_who_declined_that_food():
    config = replace(CONFIG, reposition=True)
    declined = replace(order("a", ready=0), excluded_couriers=frozenset({"near"}))
    couriers = [courier("near", (600.0, 0)), courier("mid", (6000.0, 0)), courier("far", (12000.0, 0))]
    # Nobody may take `a` (its only candidate declined it): the nearest of the others is sent.
    decision = decide([declined], couriers, TRAVEL, 0.0, config, candidates={"r1": ["near"]})
    assert decision.assignments == ()
    assert [(m.courier_id, m.store_id, m.target) for m in decision.repositions] == [("mid", "r1", (0.0, 0.0))]


@pytest.mark.parametrize("policy", list(Policy))
def test_candidates_limit_which_couriers_a_store_can_get(policy):
    config = replace(CONFIG, policy=policy)
    a = order("a", ready=0)  # store r1
    b = order("b", store="r2", store_at=(6000, 0), ready=0)
    nearest_to_both = courier("c1", (3000, 0))
    other = courier("c2", (-6000, 0))
    unrestricted = decide([a, b], [nearest_to_both, other], TRAVEL, 0.0, config)
    assert len(unrestricted.assignments) == 2
    # r1 may only use c2 and r2 has no candidates at all: b waits, a gets the far courier.
    limited = decide([a, b], [nearest_to_both, other], TRAVEL, 0.0, config, candidates={"r1": ["c2"]})
    assert [(x.courier_id, x.bundle.order_ids) for x in limited.assignments] == [("c2", ("a",))]
    assert limited.held_order_ids == ("b",)
