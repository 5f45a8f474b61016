"""The replay's seeded world (dispatch/mdrp/world.py): the decline rule as issue 22 writes it, kitchen
delays and travel factors reproducible from the seed, and the checker judging a solution against
the realised world."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace

import pytest
from dispatch_factories import write_instance

from dispatch.mdrp import World, check_solution, load_instance
from dispatch.mdrp.solution import AssignmentRow, MoveRow, OrderRow, Solution

# h(x) % 10000 computed outside Python, with coreutils and bc:
#   hex=$(printf '%s' "1:c1" | sha256sum | cut -d' ' -f1); echo "ibase=16; ${hex^^} % 2710" | bc
# ("2710" is 10000 in base 16).
HASH_MOD_10000 = {"1:c1": 6648, "1:c1:o1": 404, "1:c1:o2": 244, "1:c1:o3": 5702, "1:c2": 9102, "1:c2:o1": 9335,
                  "7:c1": 9269}


def test_a_couriers_decline_rate_and_answers_follow_the_hand_computed_hashes() -> None:
    world = World(declines=0.2, seed=1)
    assert world.decline_rate("c1") == pytest.approx(2 * 0.2 * 6648 / 10000)  # 0.26592
    assert world.decline_rate("c2") == pytest.approx(2 * 0.2 * 9102 / 10000)  # 0.36408
    # c1 declines when h % 10000 < 2659.2: o1 (404) and o2 (244), not o3 (5702); c2 takes o1 (9335 >= 3640.8).
    assert world.declines_order("c1", "o1") and world.declines_order("c1", "o2")
    assert not world.declines_order("c1", "o3")
    assert not world.declines_order("c2", "o1")
    assert world.declines_bundle("c1", ("o3", "o1")) and not world.declines_bundle("c1", ("o3",))
    # Another seed is another fleet: c1's rate under seed 7 comes from h("7:c1").
    assert World(declines=0.2, seed=7).decline_rate("c1") == pytest.approx(2 * 0.2 * 9269 / 10000)
    # No declines at all without the option, whatever the hashes say.
    assert not World(seed=1).declines_order("c1", "o1")


def test_decline_rates_average_to_p_over_a_fleet_and_answers_never_change() -> None:
    world = World(declines=0.2, seed=3)
    rates = [world.decline_rate(f"c{i}") for i in range(2000)]
    assert statistics.mean(rates) == pytest.approx(0.2, abs=0.01)
    assert 0.0 <= min(rates) and max(rates) <= 0.4
    answers = [world.declines_order(f"c{i % 50}", f"o{i}") for i in range(5000)]
    assert statistics.mean(answers) == pytest.approx(0.2, abs=0.03)
    assert answers == [World(declines=0.2, seed=3).declines_order(f"c{i % 50}", f"o{i}") for i in range(5000)]


@pytest.fixture
def instance(tmp_path):
    # 600 m/min: r1 at (0, 0), customers 1200 m (2 min) and 1800 m east; c1 starts at r1.
    return load_instance(write_instance(
        tmp_path / "tiny", orders=[("o1", 1200, 0, 0, "r1", 10), ("o2", 1800, 0, 0, "r1", 12)],
        restaurants=[("r1", 0, 0)], couriers=[("c1", 0, 0, 0, 120), ("c2", 600, 0, 0, 120)]))


def test_kitchen_delays_are_seeded_exponential_and_on_the_thousandth_minute_grid(instance) -> None:
    world = World(kitchen_delay_s=300.0, seed=5)
    delays = [world.kitchen_delay_min(f"o{i}") for i in range(4000)]
    assert statistics.mean(delays) == pytest.approx(5.0, rel=0.06)  # 300 s = 5 min on average
    assert statistics.median(delays) == pytest.approx(5.0 * math.log(2), rel=0.08)  # exponential, not fixed
    assert min(delays) >= 0.0 and all(abs(d * 1000 - round(d * 1000)) < 1e-6 for d in delays)
    assert delays == [World(kitchen_delay_s=300.0, seed=5).kitchen_delay_min(f"o{i}") for i in range(4000)]
    assert delays != [World(kitchen_delay_s=300.0, seed=6).kitchen_delay_min(f"o{i}") for i in range(4000)]
    o1 = instance.orders["o1"]
    assert world.actual_ready_min(o1) == pytest.approx(o1.ready_time + world.kitchen_delay_min("o1"))
    assert World().actual_ready_min(o1) == o1.ready_time  # off: the instance's ready time, unchanged


def test_travel_factors_are_seeded_never_speed_a_leg_up_and_average_as_exp_of_a_half_normal(instance) -> None:
    sigma = 0.25
    world = World(travel_sigma=sigma, seed=2)
    factors = [world.travel_factor(f"r{i}", f"o{i}") for i in range(4000)]
    assert min(factors) >= 1.0
    # E[exp(S|Z|)] = 2 exp(S^2 / 2) Phi(S)
    expected = 2 * math.exp(sigma ** 2 / 2) * statistics.NormalDist().cdf(sigma)
    assert statistics.mean(factors) == pytest.approx(expected, rel=0.02)
    assert factors == [World(travel_sigma=sigma, seed=2).travel_factor(f"r{i}", f"o{i}") for i in range(4000)]
    # A leg is as slow for every courier; a courier's first leg is keyed by its own on-location.
    leg = world.leg_min(instance, "c1", "r1", "o2")
    assert leg == world.leg_min(instance, "c2", "r1", "o2") >= 3
    assert leg == math.ceil(3 * world.travel_factor("r1", "o2") * 1000 - 1e-9) / 1000
    first = world.leg_min(instance, "c2", "0", "r1")
    assert first == math.ceil(1 * world.travel_factor("c2", "r1") * 1000 - 1e-9) / 1000
    assert World().leg_min(instance, "c2", "0", "r1") == 1  # off: the instance's travel rule


def _carry_both(pickup: float, drop_o1: float, drop_o2: float) -> Solution:
    return Solution(
        assignments=(AssignmentRow(0, pickup, "c1", ("o1", "o2")),),
        orders=(OrderRow("o1", pickup, drop_o1, "c1"), OrderRow("o2", pickup, drop_o2, "c1")),
        moves=(MoveRow("c1", 0, "0", "r1"), MoveRow("c1", pickup + 2, "r1", "o1"),
               MoveRow("c1", drop_o1 + 2, "o1", "o2")),
    )


def test_the_checker_judges_pickups_by_actual_ready_times(instance) -> None:
    perfect_ok = _carry_both(12, 18, 23)  # pickup at 12 (o2 announced ready), leave 14, o1 2 min on, o2 1 more
    assert check_solution(instance, perfect_ok) == []
    late = World(kitchen_delay_s=300.0, seed=5)
    ready = max(late.actual_ready_min(o) for o in instance.orders.values())
    assert ready > 12
    violations = check_solution(instance, perfect_ok, late)
    assert any("before ready" in v for v in violations)
    waited = _carry_both(ready, ready + 6, ready + 11)
    assert check_solution(instance, waited, late) == []


def test_the_checker_uses_realised_legs_and_refuses_a_diversion(instance) -> None:
    slow = World(travel_sigma=0.5, seed=4)
    leg_o1 = slow.leg_min(instance, "c1", "r1", "o1")
    leg_o2 = slow.leg_min(instance, "c1", "o1", "o2")
    assert leg_o1 > 2 or leg_o2 > 1
    nominal = _carry_both(12, 18, 23)
    assert any("travel gives" in v for v in check_solution(instance, nominal, slow))
    drop_o1 = 12 + 2 + leg_o1 + 2  # leave the counter 2 min after the pickup, the drop-off 2 min after arriving
    realised = _carry_both(12, drop_o1, drop_o1 + 2 + leg_o2 + 2)
    assert check_solution(instance, realised, slow) == []
    assert check_solution(instance, realised) != []  # the instance's own rule says those legs are quicker
    detour = MoveRow("c1", realised.moves[2].departure_time, "o1", "r1")
    diverted = replace(realised, moves=(*realised.moves[:2], detour))
    assert any("diversion" in v for v in check_solution(instance, diverted, slow))


def test_the_checker_refuses_a_courier_carrying_an_order_it_declines(tmp_path) -> None:
    # Under seed 1, c1 declines o1 and o2 (see the hashes above) and c2 takes o1.
    instance = load_instance(write_instance(
        tmp_path / "declines", orders=[("o1", 1200, 0, 0, "r1", 10)], restaurants=[("r1", 0, 0)],
        couriers=[("c1", 0, 0, 0, 120), ("c2", 0, 0, 0, 120)]))
    world = World(declines=0.2, seed=1)

    def carried_by(courier_id: str) -> Solution:
        return Solution((AssignmentRow(0, 10, courier_id, ("o1",)),), (OrderRow("o1", 10, 16, courier_id),),
                        (MoveRow(courier_id, 0, "0", "r1"), MoveRow(courier_id, 12, "r1", "o1")))

    assert check_solution(instance, carried_by("c1")) == []  # fine in the perfect world
    assert any("declines" in v for v in check_solution(instance, carried_by("c1"), world))
    assert check_solution(instance, carried_by("c2"), world) == []


def test_a_world_refuses_impossible_settings() -> None:
    for bad in (dict(declines=0.6), dict(declines=-0.1), dict(kitchen_delay_s=-1.0), dict(travel_sigma=math.inf),
                dict(offer_timeout_s=-5.0)):
        with pytest.raises(ValueError):
            World(**bad)  # type: ignore[arg-type]
    assert World().perfect and not World(travel_sigma=0.1).perfect
