"""Surge in the live loop: sample demand (open orders by pickup) and supply (available couriers,
counted per res-9 cell by the live index, summed to res 7) each round, move the board with
`dispatch.surge.update_surge` (capped, stepped, with hysteresis) and publish it for orders and
operators. The board lives on the lease holder; a new holder restores levels and their change
times from the published heat map, so a fail-over neither resets nor flaps the fees."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from types import MappingProxyType

import h3

from dispatch.live import HeatEntry, SurgeBoardStore
from dispatch.surge import CellSample, SurgeBoard, SurgeConfig, update_surge
from geo.eta import Point
from geo.live import CourierIndex


def samples_at(order_points: Sequence[Point], couriers_per_fine_cell: dict[str, int], at: float,
               config: SurgeConfig) -> list[CellSample]:
    demand = Counter(h3.latlng_to_cell(lat, lng, config.resolution) for lat, lng in order_points)
    supply: Counter[str] = Counter()
    for cell, n in couriers_per_fine_cell.items():
        try:
            parent = h3.cell_to_parent(cell, config.resolution) if h3.get_resolution(cell) > config.resolution \
                else cell
        except (ValueError, h3.H3BaseException):
            continue
        supply[parent] += n
    return [CellSample(c, at, demand[c], supply[c]) for c in sorted(set(demand) | set(supply))]


class SurgeKeeper:
    def __init__(self, published: SurgeBoardStore, config: SurgeConfig) -> None:
        self.published = published
        self.config = config
        self.board = SurgeBoard()

    async def restore(self) -> None:
        _, cells = await self.published.heat()
        self.board = SurgeBoard(
            MappingProxyType({c: e.multiplier for c, e in cells.items() if e.multiplier > 1.0}),
            MappingProxyType({c: e.changed_at for c, e in cells.items() if e.changed_at is not None}),
        )

    async def update(self, index: CourierIndex, order_points: Sequence[Point], now: float) -> SurgeBoard:
        counts = await index.available_counts()
        samples = samples_at(order_points, counts, now, self.config)
        self.board = update_surge(self.board, samples, now, self.config)
        latest = {s.cell: s for s in samples}
        heat = {}
        for cell in set(latest) | set(self.board.multipliers):
            s = latest.get(cell)
            heat[cell] = HeatEntry(s.open_orders if s else 0, s.available_couriers if s else 0,
                                   self.board.multiplier(cell), self.board.changed_at.get(cell))
        await self.published.publish(self.board.multipliers, heat, now)
        return self.board
