"""How a live round calls the decision core on a large region without pricing every pair.

`dispatch.core.decide` prices every bundle against every courier unless it is told whom each
store may see; a region with a thousand open orders and two thousand couriers is two million
pairs, seconds of Python. The live round only ever considers each restaurant's nearest
candidates (from the live index), so it calls `decide` once for the whole region with that
candidate map: each store's bundles are priced against its own candidates only, and one
min-cost flow settles every conflict between stores (a courier near two restaurants goes where
it saves the most, not to whichever store was looked at first). Pure: no I/O, no clock.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from dispatch.core import decide
from dispatch.cost import DispatchConfig
from dispatch.model import Assignment, Courier, OpenOrder, Reposition
from geo.eta import TravelTime


@dataclass(slots=True)
class RoundPlan:
    assignments: list[Assignment] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # not looked at: the solve timed out
    repositions: list[Reposition] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)


def plan_round(orders: Sequence[OpenOrder], candidates: Mapping[str, Sequence[str]],
               couriers: Mapping[str, Courier], travel: TravelTime, now: float,
               config: DispatchConfig) -> RoundPlan:
    """Assign `orders` among `couriers`, each store's orders seeing only `candidates[store_id]`
    (courier ids, nearest first); a store with no candidate holds its orders this round."""
    if not orders:
        return RoundPlan()
    known = {store_id: [c for c in ids if c in couriers] for store_id, ids in candidates.items()}
    with _collector_paused():
        decision = decide(orders, list(couriers.values()), travel, now, config, known)
    return RoundPlan(list(decision.assignments), list(decision.held_order_ids),
                     repositions=list(decision.repositions), stats=dict(decision.stats))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one solve.

    A region's solve allocates a few hundred thousand short-lived, acyclic objects (plans,
    prices, matches) that reference counting frees anyway; with the collector on, they trigger
    full passes over the whole process heap in the middle of the solve (~20 ms of a ~120 ms
    solve in bench/dispatch_round.py). Paused, the collector catches up after the round, when
    nothing waits on it. Left alone if someone else has paused it already.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
