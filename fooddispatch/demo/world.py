"""What the simulated people see and share: the simulated clock, the physical world (a bag
handed over the counter) and the tallies the terminal table shows. No I/O.

Time: the server runs on the wall clock; the actors compress theirs by `speed` (a kitchen that
needs 12 simulated minutes hands the bag over after 12 / speed real minutes; a courier covers
speed × its vehicle's metres per real second). KPIs are measured in simulated time, as the
customers experience it, and compared with the server's promise read as simulated minutes.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field


class SimClock:
    def __init__(self, speed: float, started: float | None = None) -> None:
        self.speed = speed
        self.started = time.monotonic() if started is None else started

    def now(self) -> float:
        """Simulated seconds since the city opened."""
        return (time.monotonic() - self.started) * self.speed

    def real(self, sim_seconds: float) -> float:
        """How many real seconds `sim_seconds` of simulated time take."""
        return sim_seconds / self.speed

    def label(self) -> str:
        total = int(self.now())
        start = 18 * 3600  # the city opens at 18:00 (dinner peak)
        h, m = divmod((start + total) // 60, 60)
        return f"day {1 + h // 24} {h % 24:02d}:{m:02d}"


@dataclass
class OrderTrack:
    order_id: str
    customer: str
    store_id: str
    placed_sim: float
    promise_s: float  # the server's promised click-to-door, read in simulated seconds
    pickup: dict[str, float] | None = None  # {"lat", "lng"}: the address on the bag
    dropoff: dict[str, float] | None = None
    delivered_sim: float | None = None
    cancelled: bool = False


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Tally:
    placed: int = 0
    delivered: int = 0
    cancelled: int = 0
    rejected: int = 0
    declined_payments: int = 0
    closed_store_errors: int = 0
    quotes: int = 0
    offers: int = 0
    offers_accepted: int = 0
    offers_declined: int = 0
    gps_points: int = 0
    gps_acked: int = 0
    gps_errors: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)  # checkout outcomes by code
    unexpected: Counter[str] = field(default_factory=Counter)  # errors nobody should see
    click_to_door: list[float] = field(default_factory=list)  # simulated seconds
    on_time: int = 0

    def on_time_pct(self) -> float:
        return 100.0 * self.on_time / self.delivered if self.delivered else 0.0


@dataclass
class World:
    clock: SimClock
    tally: Tally = field(default_factory=Tally)
    orders: dict[str, OrderTrack] = field(default_factory=dict)
    bags_ready: set[str] = field(default_factory=set)  # order ids handed over the counter
    couriers_online: set[str] = field(default_factory=set)
    couriers_busy: set[str] = field(default_factory=set)
    accepting_orders: bool = True
    not_simulated: dict[str, str] = field(default_factory=dict)  # part of the city -> why
    surge_cells: int = 0
    dispatch_round_ms: float | None = None

    def delivered(self, order_id: str) -> None:
        track = self.orders.get(order_id)
        if track is None or track.delivered_sim is not None:
            return
        track.delivered_sim = self.clock.now()
        ctd = track.delivered_sim - track.placed_sim
        self.tally.delivered += 1
        self.tally.click_to_door.append(ctd)
        if ctd <= track.promise_s:
            self.tally.on_time += 1

    def skip(self, part: str, why: str) -> None:
        self.not_simulated.setdefault(part, why)
