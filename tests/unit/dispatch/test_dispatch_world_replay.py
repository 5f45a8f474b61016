"""A whole day replayed in a seeded world (dispatch/mdrp/simulator.py with dispatch/mdrp/world.py), and
`fooddispatch simulate`'s world options (dispatch/replay_cli.py): off is the perfect world, on is
reproducible and feasible against the realised world."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
from dispatch_factories import write_instance

from dispatch.cost import DispatchConfig
from dispatch.mdrp import World, check_solution, load_instance, replay
from dispatch.model import Policy
from dispatch.replay_cli import EXIT_OK, EXIT_USAGE, main

ISSUE_WORLD = World(declines=0.2, kitchen_delay_s=300.0, travel_sigma=0.25, seed=1)


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    """Forty orders at three restaurants over an hour, eight couriers: small enough for a unit test."""
    rng = random.Random(22)
    restaurants = [(f"r{i}", rng.randrange(0, 6000), rng.randrange(0, 6000)) for i in range(3)]
    orders = []
    for i in range(40):
        placed = rng.randrange(0, 60)
        orders.append((f"o{i}", rng.randrange(0, 8000), rng.randrange(0, 8000), placed,
                       rng.choice(restaurants)[0], placed + rng.randrange(0, 20)))
    couriers = [(f"c{i}", rng.randrange(0, 8000), rng.randrange(0, 8000), rng.choice((0, 0, 20)), 180)
                for i in range(8)]
    return write_instance(tmp_path_factory.mktemp("world") / "day", orders, restaurants, couriers, speed=320.0)


def test_with_every_option_off_the_replay_is_the_perfect_worlds_whatever_the_seed(day) -> None:
    instance = load_instance(day)
    for policy in Policy:
        config = replace(DispatchConfig(), policy=policy)
        perfect = replay(instance, config)
        seeded_off = replay(instance, config, world=World(seed=99, offer_timeout_s=120.0))
        assert seeded_off.solution == perfect.solution
        assert (seeded_off.offers, seeded_off.declined) == (0, 0)
        assert check_solution(instance, perfect.solution, World(seed=99)) == []
        assert len(perfect.solution.orders) == len(instance.orders)


def test_a_day_in_the_issues_world_is_reproducible_and_feasible_against_what_really_happened(day) -> None:
    instance = load_instance(day)
    config = DispatchConfig()
    first = replay(instance, config, world=ISSUE_WORLD)
    again = replay(instance, config, world=ISSUE_WORLD)
    assert first.solution == again.solution  # the same world and policy: the same day
    assert first.declined > 0 and first.offers > first.declined
    assert check_solution(instance, first.solution, ISSUE_WORLD) == []
    # Judged by the instance's own (perfect) rules, the realised day breaks them: late food, slow legs.
    assert check_solution(instance, first.solution) != []
    assert len(first.solution.orders) == len(instance.orders)
    for row in first.solution.orders:
        assert row.pickup_time >= ISSUE_WORLD.actual_ready_min(instance.orders[row.order_id]) - 1e-9
        assert not ISSUE_WORLD.declines_order(row.courier_id, row.order_id)
    other_seed = replay(instance, config, world=replace(ISSUE_WORLD, seed=2))
    assert other_seed.solution != first.solution


def test_simulate_writes_actual_ready_times_and_refuses_bad_world_options(day, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    code = main(["--mdrp", str(day), "--out", str(out), "--quiet", "--declines", "0.2", "--kitchen-delay", "300",
                 "--travel-sigma", "0.25", "--world-seed", "1"])
    assert code == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    instance = load_instance(day)
    assert summary["feasible"] is True
    assert summary["world"] == {"declines": 0.2, "kitchen_delay_s": 300.0, "travel_sigma": 0.25, "seed": 1,
                                "offer_timeout_s": 30.0}
    assert summary["actual_ready_min"] == {oid: ISSUE_WORLD.actual_ready_min(o) for oid, o in instance.orders.items()}
    assert any(summary["actual_ready_min"][oid] > o.ready_time for oid, o in instance.orders.items())
    assert summary["offers"]["declined"] > 0
    perfect_out = tmp_path / "perfect"
    assert main(["--mdrp", str(day), "--out", str(perfect_out), "--quiet"]) == EXIT_OK
    assert "actual_ready_min" not in json.loads((perfect_out / "summary.json").read_text())
    for bad in (["--declines", "0.7"], ["--kitchen-delay", "-1"], ["--travel-sigma", "x"], ["--world-seed", "1.5"]):
        capsys.readouterr()
        assert main(["--mdrp", str(day), "--out", str(tmp_path / "bad"), "--quiet", *bad]) == EXIT_USAGE
        assert bad[0] in capsys.readouterr().err
