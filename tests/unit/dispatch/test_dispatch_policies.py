"""Greedy against the optimizer on tiny hand-built days, replayed under the MDRP rules."""

from dataclasses import replace

import pytest
from dispatch_factories import write_instance

from dispatch.cost import DispatchConfig
from dispatch.mdrp import check_solution, load_instance, replay, solution_metrics
from dispatch.model import Policy


def run(instance, policy: Policy) -> dict:
    result = replay(instance, replace(DispatchConfig(), policy=policy))
    assert check_solution(instance, result.solution) == []
    assert result.refused == 0
    return solution_metrics(instance, result.solution)


def test_optimizer_avoids_the_first_come_first_served_trap(tmp_path):
    # o1 (at rB) comes first in line; c1 sits at rA and is nearest to rB by one minute. Greedy gives
    # it o1, then only far c2 is left for o2 at rA. The optimizer swaps them.
    folder = write_instance(
        tmp_path / "swap",
        orders=[("o1", 6000, 1200, 0, "rB", 10), ("o2", 0, 1200, 0, "rA", 10)],
        restaurants=[("rA", 0, 0), ("rB", 6000, 0)],
        couriers=[("c1", 0, 0, 0, 120), ("c2", 12600, 0, 0, 120)],
    )
    instance = load_instance(folder)
    greedy, optimizer = run(instance, Policy.GREEDY), run(instance, Policy.OPTIMIZER)
    assert greedy["delivered"] == optimizer["delivered"] == 2
    assert optimizer["click_to_door_min"]["mean"] < greedy["click_to_door_min"]["mean"] - 3
    assert optimizer["ready_to_pickup_min"]["max"] <= 3  # c2 reaches rB at 11, picks up at 13


def test_optimizer_bundles_when_one_courier_faces_three_orders(tmp_path):
    # Three orders of one restaurant, ready together, customers on one street, one courier.
    folder = write_instance(
        tmp_path / "bundle",
        orders=[(f"o{i}", 1200 + 600 * i, 0, 0, "r1", 10) for i in range(3)],
        restaurants=[("r1", 0, 0)],
        couriers=[("c1", 0, 0, 0, 240)],
    )
    instance = load_instance(folder)
    greedy, optimizer = run(instance, Policy.GREEDY), run(instance, Policy.OPTIMIZER)
    assert greedy["bundle_size"]["max"] == 1
    assert optimizer["bundle_size"]["max"] == 3
    assert optimizer["click_to_door_min"]["mean"] < greedy["click_to_door_min"]["mean"]


def test_with_a_courier_per_order_nobody_waits_for_a_second_drop_off(tmp_path):
    folder = write_instance(
        tmp_path / "plenty",
        orders=[(f"o{i}", 1200 + 600 * i, 0, 0, "r1", 10) for i in range(3)],
        restaurants=[("r1", 0, 0)],
        couriers=[(f"c{i}", 600 * i, 600, 0, 240) for i in range(3)],
    )
    metrics = run(load_instance(folder), Policy.OPTIMIZER)
    assert metrics["bundle_size"]["max"] == 1
    # Every order is picked up the minute it is ready: the lower bound is reached.
    assert metrics["ready_to_pickup_min"]["max"] == 0


@pytest.mark.parametrize("policy", list(Policy))
def test_no_pickup_after_the_shift_ends(tmp_path, policy):
    # The only courier's shift ends before the food is ready: the order cannot be served.
    folder = write_instance(tmp_path / "late", orders=[("o1", 1200, 0, 0, "r1", 30)],
                            restaurants=[("r1", 0, 0)], couriers=[("c1", 0, 0, 0, 20)])
    metrics = run(load_instance(folder), policy)
    assert metrics["delivered"] == 0
