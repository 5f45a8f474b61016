"""Every metric FORMAT.md lists, computed the way the source evaluator computes them."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from dispatch.mdrp.instance import Instance
from dispatch.mdrp.solution import Solution
from dispatch.mdrp.world import World


def describe(values: Sequence[float]) -> dict[str, float | None]:
    """mean, std (sample, like pandas), min, 10th pct, median, 90th pct, max (linear interpolation)."""
    if not values:
        return {"count": 0, "mean": None, "std": None, "min": None, "p10": None, "median": None,
                "p90": None, "max": None}
    ordered = sorted(values)
    n = len(ordered)
    mean = sum(ordered) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in ordered) / (n - 1)) if n > 1 else 0.0
    return {"count": n, "mean": mean, "std": std, "min": ordered[0], "p10": percentile(ordered, 10),
            "median": percentile(ordered, 50), "p90": percentile(ordered, 90), "max": ordered[-1]}


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile of sorted values (numpy's default rule)."""
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def solution_metrics(instance: Instance, solution: Solution, world: World | None = None) -> dict[str, Any]:
    """The summary of one solution: orders, couriers, pay and bundles. In a replay's `world`, ready
    times are the actual ones and driving is the realised one."""
    world = world if world is not None else World()
    params = instance.parameters
    delivered = {row.order_id: row for row in solution.orders}
    click_to_door, overage, ready_to_door, ready_to_pickup = [], [], [], []
    for oid, row in delivered.items():
        order = instance.orders[oid]
        c2d = row.dropoff_time - order.placement_time
        click_to_door.append(c2d)
        overage.append(max(0.0, c2d - params.target_click_to_door_min))
        ready = world.actual_ready_min(order)
        ready_to_door.append(row.dropoff_time - ready)
        ready_to_pickup.append(row.pickup_time - ready)

    orders_by_courier = Counter(row.courier_id for row in solution.orders)
    bundles_by_courier = Counter(a.courier_id for a in solution.assignments)
    driving: dict[str, float] = defaultdict(float)
    for move in solution.moves:
        driving[move.courier_id] += world.leg_min(instance, move.courier_id, move.origin, move.destination)

    orders_per_hour, bundles_per_hour, utilization, pay = [], [], [], []
    guaranteed_count = 0
    for cid, shift in instance.couriers.items():
        minutes = shift.off_time - shift.on_time
        hours = minutes / 60
        n_orders, n_bundles = orders_by_courier[cid], bundles_by_courier[cid]
        guaranteed = hours * params.guaranteed_pay_per_hour
        earned = n_orders * params.pay_per_order
        pay.append(max(guaranteed, earned))
        guaranteed_count += earned < guaranteed
        if minutes > 0:
            orders_per_hour.append(n_orders / hours)
            bundles_per_hour.append(n_bundles / hours)
            busy = (driving[cid] + params.pickup_service_min * n_bundles + params.dropoff_service_min * n_orders)
            utilization.append(busy / minutes)

    courier_hours = sum((c.off_time - c.on_time) / 60 for c in instance.couriers.values())
    total_pay = sum(pay)
    n_delivered = len(delivered)
    return {
        "instance": instance.name,
        "orders": len(instance.orders),
        "delivered": n_delivered,
        "delivered_pct": 100.0 * n_delivered / len(instance.orders),
        "click_to_door_min": describe(click_to_door),
        "click_to_door_overage_min": describe(overage),
        "ready_to_door_min": describe(ready_to_door),
        "ready_to_pickup_min": describe(ready_to_pickup),
        "couriers": len(instance.couriers),
        "courier_hours": courier_hours,
        "orders_per_courier_hour": n_delivered / courier_hours if courier_hours else None,
        "bundles_per_courier_hour": len(solution.assignments) / courier_hours if courier_hours else None,
        "orders_per_hour_by_courier": describe(orders_per_hour),
        "bundles_per_hour_by_courier": describe(bundles_per_hour),
        "utilization": describe(utilization),
        "bundle_size": describe([len(a.order_ids) for a in solution.assignments]),
        "total_courier_pay": total_pay,
        "pay_per_order": total_pay / n_delivered if n_delivered else None,
        "share_paid_guarantee": guaranteed_count / len(instance.couriers) if instance.couriers else None,
    }


def round_time_stats(solve_s: Sequence[float]) -> dict[str, float | None]:
    """p50 / p95 / max of per-round solve time, in seconds."""
    if not solve_s:
        return {"rounds": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(solve_s)
    return {"rounds": len(ordered), "p50": percentile(ordered, 50), "p95": percentile(ordered, 95),
            "max": ordered[-1]}
