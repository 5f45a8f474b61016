"""Surge: a delivery-fee multiplier per H3 cell (resolution 7) from demand against supply.

Pure: the caller feeds counts of open orders and available couriers per cell each round and
keeps the returned `SurgeBoard`; nothing here reads a clock or a store. The multiplier follows
the ratio of orders to couriers averaged over a sliding window, is capped, moves in fixed steps
and only when the target has moved a full band away and the current level has been held for a
minimum time, so a ratio hovering around a threshold does not make the fee flap.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import h3

from geo.eta import Point


@dataclass(frozen=True, slots=True)
class SurgeConfig:
    resolution: int = 7
    window_s: float = 600.0  # demand and supply are averaged over this sliding window
    free_ratio: float = 1.0  # orders per available courier that still cost nothing extra
    slope: float = 0.5  # multiplier added per unit of ratio above `free_ratio`
    cap: float = 2.0
    step: float = 0.25  # published multipliers are multiples of this above 1
    band: float = 0.2  # the target must leave the current level by more than this to move it
    min_hold_s: float = 300.0  # a level stays at least this long before it moves again

    def __post_init__(self) -> None:
        if self.cap < 1.0 or self.step <= 0 or self.band < 0 or self.window_s <= 0:
            raise ValueError("invalid surge configuration")


@dataclass(frozen=True, slots=True)
class CellSample:
    cell: str
    at: float
    open_orders: int
    available_couriers: int


@dataclass(frozen=True, slots=True)
class SurgeBoard:
    """Published multipliers per cell, when each last changed, and the samples in the window."""

    multipliers: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    changed_at: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    samples: tuple[CellSample, ...] = ()

    def multiplier(self, cell: str) -> float:
        return self.multipliers.get(cell, 1.0)


def cell_of(point: Point, resolution: int = 7) -> str:
    """The H3 cell of a (lat, lng) point."""
    return h3.latlng_to_cell(point[0], point[1], resolution)


def sample_cells(order_points: Iterable[Point], courier_points: Iterable[Point], at: float,
                 config: SurgeConfig) -> list[CellSample]:
    """Count open orders (by pickup) and available couriers per cell at one instant."""
    demand = Counter(cell_of(p, config.resolution) for p in order_points)
    supply = Counter(cell_of(p, config.resolution) for p in courier_points)
    return [CellSample(cell, at, demand[cell], supply[cell]) for cell in sorted(set(demand) | set(supply))]


def target_multiplier(open_orders: float, available_couriers: float, config: SurgeConfig) -> float:
    """The unsmoothed multiplier a demand/supply ratio asks for (before steps and hysteresis)."""
    ratio = open_orders / max(available_couriers, 1.0)
    return min(config.cap, max(1.0, 1.0 + config.slope * (ratio - config.free_ratio)))


def _quantize(value: float, config: SurgeConfig) -> float:
    """The nearest published level (a multiple of `step` above 1, at most the cap)."""
    return min(config.cap, 1.0 + round((value - 1.0) / config.step) * config.step)


def update_surge(board: SurgeBoard, samples: Iterable[CellSample], now: float, config: SurgeConfig) -> SurgeBoard:
    """The board after one more round of samples.

    A cell with no sample in the window decays to 1.0 through the same hysteresis.
    """
    kept = tuple(s for s in (*board.samples, *samples) if s.at > now - config.window_s)
    # Average per sampling instant, so a cell sampled twice as often does not look twice as busy.
    instants = {s.at for s in kept}
    demand: Counter[str] = Counter()
    supply: Counter[str] = Counter()
    for s in kept:
        demand[s.cell] += s.open_orders
        supply[s.cell] += s.available_couriers
    n = max(1, len(instants))
    multipliers = dict(board.multipliers)
    changed = dict(board.changed_at)
    for cell in set(multipliers) | set(demand) | set(supply):
        current = multipliers.get(cell, 1.0)
        target = target_multiplier(demand[cell] / n, supply[cell] / n, config)
        held_long_enough = now - changed.get(cell, -math.inf) >= config.min_hold_s
        if abs(target - current) > config.band and held_long_enough:
            level = _quantize(target, config)
            if level != current:
                multipliers[cell] = level
                changed[cell] = now
    # Forget quiet cells back at 1.0, so the board does not grow with every cell ever seen.
    multipliers = {c: m for c, m in multipliers.items() if m > 1.0 or c in demand or c in supply}
    changed = {c: t for c, t in changed.items() if c in multipliers}
    return SurgeBoard(MappingProxyType(multipliers), MappingProxyType(changed), kept)
