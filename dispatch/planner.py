"""How a live round calls the decision core on a large region without pricing every pair.

`dispatch.core.decide` prices every bundle against every courier it is given; a region with a
thousand open orders and two thousand couriers is two million pairs, seconds of Python. The live
round only ever considers each restaurant's nearest candidates anyway, so it splits the round by
restaurant: one `decide` per store with that store's orders and its nearest free candidates, most
urgent store first, a courier taken by one store gone for the next. Within a store the core is
exact (bundling, the min-cost flow with "not now", the commitment rule); across stores it is
greedy by urgency. Pure: no I/O, no clock besides the time budget.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dispatch.core import decide
from dispatch.cost import DispatchConfig
from dispatch.model import Assignment, Courier, OpenOrder
from geo.eta import TravelTime


@dataclass(slots=True)
class RoundPlan:
    assignments: list[Assignment] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # not looked at: the time budget ran out
    subproblems: int = 0
    solve_s: float = 0.0


def plan_round(orders: Sequence[OpenOrder], candidates: Mapping[str, Sequence[str]],
               couriers: Mapping[str, Courier], travel: TravelTime, now: float, config: DispatchConfig,
               budget_s: float = 1.0) -> RoundPlan:
    """Assign `orders` among `couriers`, each store's orders seeing only `candidates[store_id]`
    (courier ids, nearest first). Stores whose budget ran out wait for the next round."""
    started = time.perf_counter()
    by_store: dict[str, list[OpenOrder]] = defaultdict(list)
    for order in orders:
        by_store[order.store_id].append(order)
    urgency = sorted(by_store, key=lambda s: min((o.promised_at, o.order_id) for o in by_store[s]))
    used: set[str] = set()
    plan = RoundPlan()
    for i, store_id in enumerate(urgency):
        if time.perf_counter() - started > budget_s:
            plan.skipped.extend(o.order_id for s in urgency[i:] for o in by_store[s])
            break
        store_orders = by_store[store_id]
        pool = [couriers[c] for c in candidates.get(store_id, ()) if c not in used and c in couriers]
        if not pool:
            plan.held.extend(o.order_id for o in store_orders)
            continue
        decision = decide(store_orders, pool, travel, now, config)
        plan.subproblems += 1
        for a in decision.assignments:
            used.add(a.courier_id)
            plan.assignments.append(a)
        plan.held.extend(decision.held_order_ids)
    plan.solve_s = time.perf_counter() - started
    return plan
