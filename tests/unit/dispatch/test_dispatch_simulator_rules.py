"""The simulator owns the instance rules: proposals that break one are refused, never executed."""

from dataclasses import replace

import pytest
from dispatch_factories import write_instance

import dispatch.mdrp.simulator as simulator
from dispatch.cost import DispatchConfig
from dispatch.mdrp import check_solution, load_instance, replay
from dispatch.model import Assignment, Bundle, Decision, Route


@pytest.fixture
def instance(tmp_path):
    return load_instance(write_instance(
        tmp_path / "rules",
        orders=[("o1", 1200, 0, 0, "r1", 5), ("o2", 7200, 0, 0, "r2", 5), ("o3", 1200, 600, 30, "r1", 35)],
        restaurants=[("r1", 0, 0), ("r2", 6000, 0)],
        couriers=[("c1", 0, 0, 0, 120), ("c2", 6000, 0, 10, 120)],
    ))


def proposal(courier_id: str, store: str, *order_ids: str) -> Assignment:
    return Assignment(courier_id, Bundle(store, (0.0, 0.0), order_ids), Route(0.0, ()), 0.0)


def test_rule_breaking_proposals_are_refused_and_the_day_stays_feasible(instance, monkeypatch):
    seen_at: dict[str, float] = {}

    def rogue_core(orders, couriers, travel, now, config):
        for o in orders:
            seen_at.setdefault(o.order_id, now / 60)
        ids = {o.order_id for o in orders}
        bad = [
            proposal("c1", "r1", "o1", "o2"),  # two restaurants in one bundle
            proposal("c2", "r2", "o2"),  # c2's shift has not started before minute 10
            proposal("c1", "r1", "o3"),  # o3 is not placed before minute 30
            proposal("ghost", "r1", "o1"),  # no such courier
        ]
        good = [proposal("c1", "r1", "o1")] if "o1" in ids else []
        good += [proposal("c2", "r2", "o2")] if now >= 10 * 60 and "o2" in ids else []
        good += [proposal("c1", "r1", "o3")] if "o3" in ids else []
        return Decision(tuple(bad + good), ())

    monkeypatch.setattr(simulator, "decide", rogue_core)
    result = replay(instance, DispatchConfig())
    assert result.refused > 0
    assert check_solution(instance, result.solution) == []
    assert seen_at["o3"] == 30  # orders are visible from their placement, not before
    by_order = {row.order_id: row for row in result.solution.orders}
    assert set(by_order) == {"o1", "o2", "o3"}
    assert by_order["o2"].courier_id == "c2"
    first_move = next(m for m in result.solution.moves if m.courier_id == "c2")
    assert first_move.departure_time >= 10


def test_no_courier_takes_a_bundle_it_would_pick_up_after_its_shift(instance, monkeypatch):
    late = replace(instance, couriers={"c1": replace(instance.couriers["c1"], off_time=4)})

    def eager_core(orders, couriers, travel, now, config):
        return Decision(tuple(proposal("c1", o.store_id, o.order_id) for o in orders[:1]), ())

    monkeypatch.setattr(simulator, "decide", eager_core)
    result = replay(late, DispatchConfig())
    assert result.solution.assignments == ()  # food ready at 5, shift over at 4
    assert result.refused > 0
