"""The delivery KPIs, defined once: the ops console and the demo's terminal both call these, on the
server's own timestamps (unix seconds), so they show the same figure for the same orders.

Time scale: the server runs on the wall clock. The demo compresses its customers', kitchens' and
couriers' time by `--speed`, so a delivery that took 4 real minutes took 40 simulated minutes; the
server's promise (placed to the end of the promised window, say 40 minutes) is a duration in the
world's own time. `scale` is simulated seconds per real second: 1 in production, `--speed` in the
demo (`FOODDISPATCH_OPS_TIME_SCALE`). Durations measured on the wall clock are multiplied by it;
the promise is not. Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

RATE_WINDOW_MIN = 10  # orders/min counts the orders placed in the last 10 (simulated) minutes


def elapsed(start: float, end: float, scale: float) -> float:
    """Seconds from `start` to `end` (wall clock), in the world's time."""
    return (end - start) * scale


def on_time(placed_at: float, promised_at: float, delivered_at: float, scale: float) -> bool:
    """Delivered within the promise: click-to-door (scaled) at most the promised duration."""
    return elapsed(placed_at, delivered_at, scale) <= promised_at - placed_at


def late(placed_at: float, promised_at: float, now: float, scale: float) -> bool:
    """An undelivered order whose promise has passed by `now`."""
    return elapsed(placed_at, now, scale) > promised_at - placed_at


def orders_per_minute(placed: Iterable[float], now: float, scale: float) -> float:
    """Orders placed during the last `RATE_WINDOW_MIN` minutes of world time, per minute."""
    since = now - RATE_WINDOW_MIN * 60 / scale
    return round(sum(1 for t in placed if since <= t <= now) / RATE_WINDOW_MIN, 1)


def percent(hits: int, total: int) -> float | None:
    """A share in percent with one decimal; None when there is nothing to count."""
    return round(100 * hits / total, 1) if total else None


def nearest_rank(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
