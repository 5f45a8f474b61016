"""A replay's solution in the three files the MDRP evaluator reads, and back.

Formats (whitespace separated, one header line), as `compute_performance_summary.py` parses them:
- solution_info_assignments.txt: assignment_time pickup_time courier order [order ...]
  (orders in drop-off sequence)
- solution_info_orders.txt: order placement_time restaurant x y ready_time pickup_time dropoff_time courier
- solution_info_couriers.txt: courier departure_time origin destination, grouped per courier in
  execution order; origin 0 is the courier's on-location.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dispatch.mdrp.instance import Instance

ASSIGNMENTS_FILE = "solution_info_assignments.txt"
ORDERS_FILE = "solution_info_orders.txt"
COURIERS_FILE = "solution_info_couriers.txt"


@dataclass(frozen=True, slots=True)
class AssignmentRow:
    assignment_time: float
    pickup_time: float
    courier_id: str
    order_ids: tuple[str, ...]  # drop-off sequence


@dataclass(frozen=True, slots=True)
class OrderRow:
    order_id: str
    pickup_time: float
    dropoff_time: float
    courier_id: str


@dataclass(frozen=True, slots=True)
class MoveRow:
    courier_id: str
    departure_time: float
    origin: str  # "0" = on-location, else a restaurant or order id
    destination: str


@dataclass(frozen=True, slots=True)
class Solution:
    assignments: tuple[AssignmentRow, ...]
    orders: tuple[OrderRow, ...]
    moves: tuple[MoveRow, ...]  # grouped per courier, in execution order


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


def write_solution(solution: Solution, instance: Instance, out_dir: str | Path) -> None:
    """Write the three solution files into `out_dir` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["assignment_time pickup_time courier orders"]
    lines += [" ".join([_fmt(a.assignment_time), _fmt(a.pickup_time), a.courier_id, *a.order_ids])
              for a in solution.assignments]
    (out / ASSIGNMENTS_FILE).write_text("\n".join(lines) + "\n")

    lines = ["order placement_time restaurant x y ready_time pickup_time dropoff_time courier"]
    for row in solution.orders:
        o = instance.orders[row.order_id]
        lines.append(" ".join([o.order_id, _fmt(o.placement_time), o.restaurant, _fmt(o.x), _fmt(o.y),
                               _fmt(o.ready_time), _fmt(row.pickup_time), _fmt(row.dropoff_time), row.courier_id]))
    (out / ORDERS_FILE).write_text("\n".join(lines) + "\n")

    lines = ["courier departure_time origin destination"]
    lines += [f"{m.courier_id} {_fmt(m.departure_time)} {m.origin} {m.destination}" for m in solution.moves]
    (out / COURIERS_FILE).write_text("\n".join(lines) + "\n")


def read_solution(folder: str | Path) -> Solution:
    """Parse the three files back (the checker validates what was written, not what was meant)."""
    root = Path(folder)
    assignments = []
    for line in (root / ASSIGNMENTS_FILE).read_text().splitlines()[1:]:
        parts = line.split()
        if parts:
            assignments.append(AssignmentRow(float(parts[0]), float(parts[1]), parts[2], tuple(parts[3:])))
    orders = []
    for line in (root / ORDERS_FILE).read_text().splitlines()[1:]:
        parts = line.split()
        if parts:
            orders.append(OrderRow(parts[0], float(parts[6]), float(parts[7]), parts[8]))
    moves = []
    for line in (root / COURIERS_FILE).read_text().splitlines()[1:]:
        parts = line.split()
        if parts:
            moves.append(MoveRow(parts[0], float(parts[1]), parts[2], parts[3]))
    return Solution(tuple(assignments), tuple(orders), tuple(moves))
