from dataclasses import replace

import pytest
from dispatch_factories import write_instance

from dispatch.mdrp import MalformedInstanceError, check_solution, load_instance
from dispatch.mdrp.checker import InfeasibleSolutionError, assert_feasible
from dispatch.mdrp.solution import AssignmentRow, MoveRow, OrderRow, Solution, read_solution, write_solution

# Speed 600 m/min: r1 at (0,0), r2 at (6000,0); customers 1200 m (2 min) east of r1.
ORDERS = [("o1", 1200, 0, 0, "r1", 10), ("o2", 1200, 600, 0, "r1", 12), ("o3", 7200, 0, 0, "r2", 10)]
RESTAURANTS = [("r1", 0, 0), ("r2", 6000, 0)]
COURIERS = [("c1", 0, 0, 0, 120), ("c2", 6000, 0, 0, 120)]


@pytest.fixture
def instance(tmp_path):
    return load_instance(write_instance(tmp_path / "tiny", ORDERS, RESTAURANTS, COURIERS))


def feasible_solution() -> Solution:
    # c1 leaves at 0, arrives r1 at 0, picks up o1+o2 at 12 (o2 ready 12), leaves 14;
    # o1 is 2 min away: arrive 16, drop-off 18, leave 20; o2 is 1 min further: arrive 21, drop-off 23.
    # c2 takes o3 at r2: pickup 10, leave 12, arrive 14, drop-off 16.
    return Solution(
        assignments=(AssignmentRow(0, 12, "c1", ("o1", "o2")), AssignmentRow(0, 10, "c2", ("o3",))),
        orders=(OrderRow("o1", 12, 18, "c1"), OrderRow("o2", 12, 23, "c1"), OrderRow("o3", 10, 16, "c2")),
        moves=(MoveRow("c1", 0, "0", "r1"), MoveRow("c1", 14, "r1", "o1"), MoveRow("c1", 20, "o1", "o2"),
               MoveRow("c2", 0, "0", "r2"), MoveRow("c2", 12, "r2", "o3")),
    )


def test_a_feasible_solution_passes_and_survives_the_files(instance, tmp_path):
    solution = feasible_solution()
    assert check_solution(instance, solution) == []
    write_solution(solution, instance, tmp_path / "out")
    assert check_solution(instance, read_solution(tmp_path / "out")) == []


def test_pickup_before_ready_is_rejected(instance):
    s = feasible_solution()
    s = replace(s, assignments=(AssignmentRow(0, 8, "c2", ("o3",)), s.assignments[0]),
                orders=(*s.orders[:2], OrderRow("o3", 8, 14, "c2")),
                moves=(*s.moves[:3], MoveRow("c2", 0, "0", "r2"), MoveRow("c2", 10, "r2", "o3")))
    violations = check_solution(instance, s)
    assert any("before ready" in v for v in violations)
    with pytest.raises(InfeasibleSolutionError):
        assert_feasible(instance, s)


def test_a_courier_in_two_places_at_once_is_rejected(instance):
    # c1 also takes o3 at r2, leaving r1's customers before it has finished there.
    s = Solution(
        assignments=(AssignmentRow(0, 12, "c1", ("o1", "o2")), AssignmentRow(0, 20, "c1", ("o3",))),
        orders=(OrderRow("o1", 12, 18, "c1"), OrderRow("o2", 12, 23, "c1"), OrderRow("o3", 20, 26, "c1")),
        moves=(MoveRow("c1", 0, "0", "r1"), MoveRow("c1", 14, "r1", "o1"), MoveRow("c1", 20, "o1", "o2"),
               MoveRow("c1", 10, "o2", "r2"), MoveRow("c1", 22, "r2", "o3")),
    )
    violations = check_solution(instance, s)
    assert any("two places at once" in v for v in violations)


def test_a_bundle_from_two_restaurants_is_rejected(instance):
    s = Solution(
        assignments=(AssignmentRow(0, 12, "c1", ("o1", "o3")),),
        orders=(OrderRow("o1", 12, 18, "c1"), OrderRow("o3", 12, 30, "c1")),
        moves=(MoveRow("c1", 0, "0", "r1"), MoveRow("c1", 14, "r1", "o1"), MoveRow("c1", 20, "o1", "o3")),
    )
    assert any("several restaurants" in v for v in check_solution(instance, s))


def test_claimed_drop_off_times_must_match_travel(instance):
    s = feasible_solution()
    s = replace(s, orders=(OrderRow("o1", 12, 17, "c1"), *s.orders[1:]))  # one minute too early
    assert any("drop-off of o1" in v for v in check_solution(instance, s))


def test_a_diversion_and_an_order_in_two_bundles_are_rejected(instance):
    s = feasible_solution()
    diverted = replace(s, moves=(s.moves[0], MoveRow("c1", 14, "r1", "o3"), *s.moves[2:]))
    assert any("diversion" in v for v in check_solution(instance, diverted))
    twice = replace(s, assignments=(*s.assignments, AssignmentRow(30, 40, "c2", ("o1",))))
    assert any("more than one assignment" in v for v in check_solution(instance, twice))


def test_pickup_after_off_time_and_assignment_before_placement_are_rejected(tmp_path):
    late_orders = [("o1", 1200, 0, 5, "r1", 10)]
    inst = load_instance(write_instance(tmp_path / "t", late_orders, RESTAURANTS, [("c1", 0, 0, 0, 9)]))
    s = Solution(
        assignments=(AssignmentRow(0, 10, "c1", ("o1",)),),
        orders=(OrderRow("o1", 10, 16, "c1"),),
        moves=(MoveRow("c1", 0, "0", "r1"), MoveRow("c1", 12, "r1", "o1")),
    )
    violations = check_solution(inst, s)
    assert any("after the courier's off_time" in v for v in violations)
    assert any("before it was placed" in v for v in violations)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: (d / "couriers.txt").unlink(), "missing couriers.txt"),
        (lambda d: (d / "orders.txt").write_text("order\tx\n"), "header"),
        (lambda d: (d / "orders.txt").write_text(
            "order\tx\ty\tplacement_time\trestaurant\tready_time\no1\t1\t2\t3\tr9\t4\n"), "unknown restaurant"),
        (lambda d: (d / "orders.txt").write_text(
            "order\tx\ty\tplacement_time\trestaurant\tready_time\no1\t1\t2\tsoon\tr1\t4\n"), "not a number"),
        (lambda d: (d / "orders.txt").write_text(
            "order\tx\ty\tplacement_time\trestaurant\tready_time\no1\t1\t2\t9\tr1\t4\n"), "before placement"),
    ],
)
def test_a_malformed_folder_raises_a_clear_error(tmp_path, mutate, message):
    folder = write_instance(tmp_path / "bad", ORDERS, RESTAURANTS, COURIERS)
    mutate(folder)
    with pytest.raises(MalformedInstanceError, match=message):
        load_instance(folder)


def test_a_missing_folder_raises_a_clear_error(tmp_path):
    with pytest.raises(MalformedInstanceError, match="not a directory"):
        load_instance(tmp_path / "nowhere")
