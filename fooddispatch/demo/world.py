"""What the simulated people see and share: the simulated clock, the physical world (a bag
handed over the counter) and the tallies the terminal table shows. No I/O.

Time: the server runs on the wall clock; the actors compress theirs by `speed` (a kitchen that
needs 12 simulated minutes hands the bag over after 12 / speed real minutes; a courier covers
speed × its vehicle's metres per real second). The KPIs (orders/min, on time, click-to-door) are
`fooddispatch.ops.kpis`'s, on the server's own timestamps of each order, at scale `speed`: the
ops console computes the same ones from the same timestamps (the demo sets its time scale).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from fooddispatch.ops import kpis


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
    placed_at: float  # the server's timestamps (unix seconds): placed, end of the promised window
    promised_at: float
    pickup: dict[str, float] | None = None  # {"lat", "lng"}: the address on the bag
    dropoff: dict[str, float] | None = None
    delivered_at: float | None = None
    outcome: str | None = None  # the final status the customer saw (delivered, cancelled, rejected, expired)

    @property
    def cancelled(self) -> bool:
        return self.outcome == "cancelled"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    found = kpis.nearest_rank(values, q)
    return 0.0 if found is None else found


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

    def on_time_pct(self) -> float | None:
        return kpis.percent(self.on_time, self.delivered)


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
    peak_online: int = 0
    peak_busy: int = 0

    def placed(self, track: OrderTrack) -> None:
        self.orders[track.order_id] = track
        self.tally.placed += 1

    def delivered(self, order_id: str, delivered_at: float) -> None:
        """The customer saw the order delivered; `delivered_at` is the server's timestamp."""
        track = self.orders.get(order_id)
        if track is None or track.delivered_at is not None:
            return
        track.delivered_at, track.outcome = delivered_at, "delivered"
        scale = self.clock.speed
        self.tally.delivered += 1
        self.tally.click_to_door.append(kpis.elapsed(track.placed_at, delivered_at, scale))
        if kpis.on_time(track.placed_at, track.promised_at, delivered_at, scale):
            self.tally.on_time += 1

    def orders_per_minute(self, now: float) -> float:
        """`kpis.orders_per_minute` of the orders placed so far, at `now` (unix seconds)."""
        return kpis.orders_per_minute((t.placed_at for t in self.orders.values()), now, self.clock.speed)

    def undelivered(self) -> Counter[str]:
        """Orders placed and not delivered, by how they ended ("open": still on their way)."""
        return Counter(t.outcome or "open" for t in self.orders.values() if t.outcome != "delivered")

    def count_couriers(self) -> None:
        self.peak_online = max(self.peak_online, len(self.couriers_online))
        self.peak_busy = max(self.peak_busy, len(self.couriers_busy))

    def skip(self, part: str, why: str) -> None:
        self.not_simulated.setdefault(part, why)
