"""Location history, cost per point on the event loop: the datetime path vs binary COPY rows.

    .venv/bin/python bench/history_copy.py [--points 20000] [--per-frame 1] [--rounds 7]

Starts an embedded PostgreSQL in a temporary folder (or uses DATABASE_URL), migrates it, and
for each round runs both paths on the same points, interleaved (the machine may be shared):

- old: what `keep_history` did before, a tuple per point with two `datetime.fromtimestamp`
  values, written in 2,000-row chunks with asyncpg's `copy_records_to_table` (which encodes);
- new: `tracking.history.encode_points` (one binary COPY row per point as it arrives), written
  with `tracking.store.copy_history` (`copy_to_table(format='binary')` of the joined rows).

Time is this process's CPU time (`time.process_time`: the server is another process), split into
keep (per frame, on receipt) and write (per chunk), and reported per point as the median of the
rounds, with points/s = 1e6 / total µs. `--per-frame`: points per `keep_history` call (1 is the
common frame, a courier pinging every few seconds; more is an offline buffer replayed).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from fooddispatch.migrate import apply_migrations
from tracking import store
from tracking.history import encode_points
from tracking.messages import Point
from tracking.model import Accepted

CHUNK = 2_000
OLD_COLUMNS = ("courier_id", "recorded_at", "received_at", "seq", "lat", "lng", "accuracy", "speed", "heading",
               "dispatchable")
Frame = tuple[str, list[Accepted], float]


def frames(count: int, per_frame: int, now: float) -> list[Frame]:
    rnd = random.Random(7)
    out = []
    for i in range(count // per_frame):
        received = now + i * 1e-4
        points = [Accepted(Point(52.5 + rnd.random() / 10, 13.4 + rnd.random() / 10, received - rnd.random() * 5,
                                 i * per_frame + k + 1, rnd.random() * 30, rnd.random() * 10, rnd.random() * 360),
                           rnd.random() < 0.9)
                  for k in range(per_frame)]
        out.append((f"courier-{i % 3000}", points, received))
    return out


def keep_old(history: list, courier_id: str, points: list[Accepted], received: float) -> None:
    """The replaced TrackingService.keep_history, verbatim."""
    fromts = datetime.fromtimestamp
    at = fromts(received, UTC)
    for p, ok in points:
        history.append((courier_id, fromts(p.ts, UTC), at, p.seq, p.lat, p.lng, p.accuracy, p.speed, p.heading, ok))


def keep_new(history: list, courier_id: str, points: list[Accepted], received: float) -> None:
    encode_points(courier_id, points, received, history)


async def write_old(pool: asyncpg.Pool, rows: list) -> None:
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(store.HISTORY_TABLE, records=rows, columns=OLD_COLUMNS)


async def run(pool: asyncpg.Pool, data: list[Frame], keep: Callable[..., None],
              write: Callable[[asyncpg.Pool, list], object]) -> tuple[float, float]:
    history: list = []
    gc.collect()
    started = time.process_time()
    for courier_id, points, received in data:
        keep(history, courier_id, points, received)
    kept = time.process_time()
    for start in range(0, len(history), CHUNK):
        await write(pool, history[start:start + CHUNK])  # type: ignore[misc]
    written = time.process_time()
    n = len(history)
    async with pool.acquire() as conn:
        assert await conn.fetchval(f"SELECT count(*) FROM {store.HISTORY_TABLE}") == n
        await conn.execute(f"TRUNCATE {store.HISTORY_TABLE}")
    return (kept - started) / n * 1e6, (written - kept) / n * 1e6


async def bench(url: str, args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(url)
    try:
        if await conn.fetchval("SELECT to_regclass($1)", store.HISTORY_TABLE) is None:
            await apply_migrations(conn)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    now = time.time()
    today = datetime.now(UTC).date()
    await store.ensure_partitions(pool, [today - timedelta(days=1), today, today + timedelta(days=1)])
    data = frames(args.points, args.per_frame, now)
    results: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
    for _ in range(args.rounds):
        results["old"].append(await run(pool, data, keep_old, write_old))
        results["new"].append(await run(pool, data, keep_new, store.copy_history))
    await pool.close()
    print(f"{len(data) * args.per_frame} points, {args.per_frame} per frame, {args.rounds} rounds interleaved; "
          "CPU µs per point, median (min-max of total)")
    totals = {}
    for name, runs in results.items():
        keep = statistics.median(k for k, _ in runs)
        write = statistics.median(w for _, w in runs)
        total = [k + w for k, w in runs]
        totals[name] = statistics.median(total)
        print(f"  {name}: keep {keep:.2f} + write {write:.2f} = {totals[name]:.2f} µs/point "
              f"({min(total):.2f}-{max(total):.2f}), {1e6 / totals[name]:,.0f} points/s")
    print(f"  new/old: {totals['new'] / totals['old']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--per-frame", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    if url:
        asyncio.run(bench(url, args))
        return
    from fooddispatch.embedded import start_postgres

    with tempfile.TemporaryDirectory(prefix="fooddispatch-bench-history-") as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg = start_postgres(Path(folder) / "pg")
        try:
            asyncio.run(bench(pg.url, args))
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
