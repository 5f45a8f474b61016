"""Re-validate a solution against the instance rules, independently of the simulator.

It re-derives every courier's timeline from the courier moves with the instance's travel rule,
so a solution that only *claims* good times (pickup before ready, a courier in two places,
a bundle from two restaurants, a diversion) is rejected with a message saying where.
Given the replay's `World`, it checks against the realised world instead: each leg's realised
time, each order's actual ready time, and no courier carrying an order the world says it declines.
"""

from __future__ import annotations

from collections import defaultdict

from dispatch.mdrp.instance import Instance
from dispatch.mdrp.solution import AssignmentRow, MoveRow, OrderRow, Solution
from dispatch.mdrp.world import World

EPS = 1e-6


class InfeasibleSolutionError(ValueError):
    """The solution breaks at least one instance rule; `violations` lists them all."""

    def __init__(self, violations: list[str]) -> None:
        super().__init__(f"{len(violations)} violation(s): " + "; ".join(violations[:5]))
        self.violations = violations


def check_solution(instance: Instance, solution: Solution, world: World | None = None) -> list[str]:
    """Every rule violation found in `solution` (empty if it is feasible), in `world` if given
    (the replay's seeded world), else in the instance's own perfect one."""
    world = world if world is not None else World()
    violations: list[str] = []
    rows = {row.order_id: row for row in solution.orders}
    if len(rows) != len(solution.orders):
        violations.append("an order has more than one row in the orders file")
    owner: dict[str, AssignmentRow] = {}
    by_courier: dict[str, list[AssignmentRow]] = defaultdict(list)
    for a in solution.assignments:
        violations += _check_assignment(instance, world, a, owner)
        if a.courier_id in instance.couriers:
            by_courier[a.courier_id].append(a)
    for oid, row in rows.items():
        carrier = owner.get(oid)
        if carrier is None:
            violations.append(f"order {oid} has a drop-off but is in no assignment")
        elif row.courier_id != carrier.courier_id or abs(row.pickup_time - carrier.pickup_time) > EPS:
            violations.append(f"order {oid}: courier/pickup differ between orders and assignments files")
    for oid in owner:
        if oid not in rows:
            violations.append(f"order {oid} is assigned but never dropped off")

    moves_by_courier: dict[str, list[MoveRow]] = defaultdict(list)
    seen_order: list[str] = []
    for move in solution.moves:
        if not seen_order or seen_order[-1] != move.courier_id:
            if move.courier_id in seen_order:
                violations.append(f"courier {move.courier_id}: moves are not grouped together")
            seen_order.append(move.courier_id)
        moves_by_courier[move.courier_id].append(move)
    for cid in set(moves_by_courier) | set(by_courier):
        if cid not in instance.couriers:
            violations.append(f"unknown courier {cid}")
            continue
        bundles = sorted(by_courier.get(cid, []), key=lambda a: a.assignment_time)
        violations += _check_route(instance, world, cid, moves_by_courier.get(cid, []), bundles, rows)
    return violations


def assert_feasible(instance: Instance, solution: Solution, world: World | None = None) -> None:
    violations = check_solution(instance, solution, world)
    if violations:
        raise InfeasibleSolutionError(violations)


def _check_assignment(instance: Instance, world: World, a: AssignmentRow, owner: dict[str, AssignmentRow]
                      ) -> list[str]:
    out: list[str] = []
    where = f"assignment of {a.courier_id} at {a.assignment_time:g}"
    shift = instance.couriers.get(a.courier_id)
    if shift is None:
        return [f"{where}: unknown courier"]
    if not a.order_ids:
        return [f"{where}: empty bundle"]
    unknown = [oid for oid in a.order_ids if oid not in instance.orders]
    if unknown:
        return [f"{where}: unknown orders {unknown}"]
    orders = [instance.orders[oid] for oid in a.order_ids]
    if len({o.restaurant for o in orders}) > 1:
        out.append(f"{where}: bundle from several restaurants {sorted({o.restaurant for o in orders})}")
    for o in orders:
        if a.assignment_time < o.placement_time - EPS:
            out.append(f"{where}: order {o.order_id} assigned before it was placed")
        ready = world.actual_ready_min(o)
        if a.pickup_time < ready - EPS:
            out.append(f"{where}: order {o.order_id} picked up at {a.pickup_time:g} before ready at "
                       f"{ready:g}")
        if world.declines_order(a.courier_id, o.order_id):
            out.append(f"{where}: carries order {o.order_id}, which this courier declines")
        if o.order_id in owner:
            out.append(f"order {o.order_id} is in more than one assignment")
        owner[o.order_id] = a
    if a.assignment_time < shift.on_time - EPS:
        out.append(f"{where}: before the courier's shift starts at {shift.on_time:g}")
    if a.pickup_time > shift.off_time + EPS:
        out.append(f"{where}: pickup at {a.pickup_time:g} after the courier's off_time {shift.off_time:g}")
    return out


def _check_route(instance: Instance, world: World, cid: str, moves: list[MoveRow], bundles: list[AssignmentRow],
                 rows: dict[str, OrderRow]) -> list[str]:
    """Walk one courier's moves; each bundle must be one restaurant visit then its drop-offs."""
    params = instance.parameters
    half_pick, half_drop = params.pickup_service_min / 2, params.dropoff_service_min / 2
    shift = instance.couriers[cid]
    place, free_from = "0", shift.on_time
    expected: list[tuple[str, AssignmentRow]] = []
    for a in bundles:
        first = instance.orders.get(a.order_ids[0]) if a.order_ids else None
        if first is None:
            return []  # already reported by _check_assignment
        expected.append((first.restaurant, a))
        expected += [(oid, a) for oid in a.order_ids]
    if len(moves) != len(expected):
        return [f"courier {cid}: {len(moves)} moves for {len(expected)} planned stops (diversion or missing move)"]
    out: list[str] = []
    for move, (stop, a) in zip(moves, expected, strict=True):
        if move.origin != place:
            out.append(f"courier {cid}: leaves {move.origin} at {move.departure_time:g} but is at {place}")
        if move.departure_time < free_from - EPS:
            out.append(f"courier {cid}: in two places at once (leaves {move.origin} at "
                       f"{move.departure_time:g}, busy there until {free_from:g})")
        if move.destination != stop:
            out.append(f"courier {cid}: goes to {move.destination} instead of {stop} (diversion)")
            return out
        try:
            leg = world.leg_min(instance, cid, move.origin, stop)
        except KeyError:
            return [*out, f"courier {cid}: unknown place {move.origin}"]
        arrive = move.departure_time + leg
        if stop in instance.restaurants:
            if move.departure_time < a.assignment_time - EPS:
                out.append(f"courier {cid}: heads to {stop} at {move.departure_time:g} before being assigned")
            if a.pickup_time < arrive + half_pick - EPS:
                out.append(f"courier {cid}: pickup at {stop} at {a.pickup_time:g} but arrives at {arrive:g}")
            free_from = a.pickup_time + half_pick
        else:
            row = rows.get(stop)
            if row is not None and abs(row.dropoff_time - (arrive + half_drop)) > EPS:
                out.append(f"courier {cid}: drop-off of {stop} claimed at {row.dropoff_time:g}, "
                           f"travel gives {arrive + half_drop:g}")
            free_from = arrive + half_drop + half_drop
        place = stop
    return out
