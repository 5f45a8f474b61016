"""Learned travel times in the live loop: the lease holder reads every courier's last fix from the
live index every few seconds (between rounds), learns from the hop each made since the previous
read (`geo.speeds`), and stores the cells that changed in dispatch's own table; a round prices
with the base model corrected by the learned factor of each leg's cells at the local hour.

Positions come from geo's live index (the state tracking writes through `geo.live`), never from
tracking's tables. The table is in Postgres, not Redis: it is weeks of learning that nothing else
could rebuild, and a new lease holder (or a restart) loads it and carries on."""

from __future__ import annotations

from types import MappingProxyType

import asyncpg

from dispatch import store
from geo.eta import HaversineTravelTime, TravelTime
from geo.live import CourierIndex
from geo.speeds import CellSpeed, Fix, Hop, HopTracker, LearnedTravelTime, SpeedLearning, SpeedTable


class SpeedKeeper:
    def __init__(self, pool: asyncpg.Pool, region: str, learning: SpeedLearning, base: TravelTime) -> None:
        self.pool = pool
        self.region = region
        self.learning = learning
        self.base = base
        nominal = base if isinstance(base, HaversineTravelTime) else HaversineTravelTime()
        self.table = SpeedTable(learning)
        self.hops = HopTracker(nominal, learning)
        self._factors: tuple[int, SpeedTable, dict[str, float]] | None = None  # (hour, table, snapshot)

    def travel_at(self, now: float) -> TravelTime:
        """The base model x the learned factors at the local hour of `now` (one snapshot per hour
        and table, so a round only looks cells up)."""
        hour = self.learning.hour_of(now)
        if self._factors is None or self._factors[0] != hour or self._factors[1] is not self.table:
            self._factors = (hour, self.table, self.table.factors_at(now))
        return LearnedTravelTime(self.base, self._factors[2], self.learning.resolution)

    async def load(self) -> None:
        """Replace the table with the stored one (a new lease term, or a restart)."""
        async with self.pool.acquire() as conn:
            rows = await store.load_speed_cells(conn, self.region)
        self.table = SpeedTable(self.learning, MappingProxyType({
            (r["cell"], r["hour"]): CellSpeed(r["observed_s"], r["nominal_s"], r["samples"], float(r["updated_at"]))
            for r in rows}))

    async def learn(self, index: CourierIndex) -> int:
        """One pass over the region's couriers: learn their hops since the last pass and store the
        changed cells (one statement). Returns how many hops were learned."""
        hops: list[Hop] = []
        seen: list[str] = []
        async for cid, st in index.scan_states():
            if st.status != "online" or st.lat is None or st.lng is None:
                continue
            seen.append(cid)
            hop = self.hops.observe(cid, Fix(st.lat, st.lng, st.ts if st.ts is not None else st.seen,
                                             st.vehicle or "car"))
            if hop is not None:
                hops.append(hop)
        self.hops.keep_only(seen)
        if not hops:
            return 0
        table, changed = self.table.observed(hops)
        async with self.pool.acquire() as conn:
            await store.save_speed_cells(conn, self.region, [
                (cell, hour, entry.observed_s, entry.nominal_s, entry.samples, entry.updated_at)
                for cell, hour in sorted(changed) for entry in (table.cells[(cell, hour)],)])
        self.table = table
        return len(hops)
