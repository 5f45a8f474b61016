"""One live dispatch round at city scale: 1,000 open orders, 2,000 available couriers, one region.

A round is what the lease holder does every few seconds: read the open pool (Postgres), find each
restaurant's nearest available couriers and their states (one Lua call on the live index in Redis),
plan (the decision core once for the whole region, each store priced against its candidates, travel
times corrected by learned per-cell speeds, in an executor), write the offers (fenced Lua in Redis,
then offers + pool + outbox events in one Postgres transaction), publish the offer frames (one
call) and send repositioning moves. The surge update runs between rounds every 30 s: its time is
printed on its own, not counted in the round. The same round runs with the optimizer and with the
greedy nearest-courier policy; between rounds the pool is reset untimed, so every round sees the
same 1,000 open orders.

    .venv/bin/python bench/dispatch_round.py [--rounds 12] [--orders 1000] [--couriers 2000]

Starts embedded PostgreSQL and Redis in a temporary folder (or uses DATABASE_URL / REDIS_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import h3
import redis.asyncio as aioredis

from dispatch import store
from dispatch.events import DispatchEvents
from dispatch.live import DispatchKeys
from dispatch.model import Policy
from dispatch.service import Counters, Dispatcher, DispatcherConfig
from fooddispatch.embedded import start_postgres, start_redis
from fooddispatch.migrate import apply_migrations
from geo.h3cells import cell_of
from geo.live import CourierIndex, CourierUpdate, LiveState
from kernel.clock import ManualClock
from kernel.outbox import make_event

REGION = "bench"
PREFIX = "bench:"
CENTER = (52.5200, 13.4050)  # a 12 km x 12 km city around it


def _point(rng: random.Random, spread: float = 0.055) -> tuple[float, float]:
    return CENTER[0] + rng.uniform(-spread, spread), CENTER[1] + rng.uniform(-spread * 1.6, spread * 1.6)


async def seed(pool: asyncpg.Pool, redis: aioredis.Redis, n_orders: int, n_couriers: int, now: datetime) -> None:
    rng = random.Random(7)
    stores = [_point(rng) for _ in range(max(1, n_orders // 3))]
    handler = DispatchEvents(redis, PREFIX, REGION, Counters()).accepted
    async with pool.acquire() as conn, conn.transaction():
        for i in range(n_orders):
            s = rng.randrange(len(stores))
            placed = now - timedelta(seconds=rng.uniform(60, 900))
            ev = make_event("order.accepted", {
                "order_id": f"ord_{i:05d}", "store_id": f"sto_{s:04d}", "region": REGION,
                "pickup": {"lat": stores[s][0], "lng": stores[s][1]},
                "dropoff": dict(zip(("lat", "lng"), _point(rng), strict=True)),
                "placed_at": placed.isoformat(),
                "ready_at": (now + timedelta(seconds=rng.uniform(-120, 600))).isoformat(),
                "promised_at": (placed + timedelta(minutes=40)).isoformat(),
            })
            await handler(conn, ev)
    # Learned travel times for every res-7 cell of the city (what weeks of courier movement leave in
    # the table), so each round prices its legs with the per-cell correction a live region uses.
    cells = {h3.latlng_to_cell(*_point(rng, 0.07), 7) for _ in range(5000)}
    learned = []
    for cell in sorted(cells):
        factor = rng.uniform(0.9, 1.6)
        for hour in (now.hour, 24):
            learned.append((cell, hour, 3600.0 * factor, 3600.0, 300, now.timestamp()))
    async with pool.acquire() as conn:
        await store.save_speed_cells(conn, REGION, learned)
    index = CourierIndex(redis, PREFIX, REGION)
    seen = now.timestamp()
    updates = []
    for i in range(n_couriers):
        lat, lng = _point(rng, 0.06)
        updates.append(CourierUpdate(f"cou_{i:05d}", True, LiveState(status="online", seen=seen, lat=lat, lng=lng,
                                                                      cell=cell_of(lat, lng), vehicle="bicycle"),
                                     lat, lng, cell_of(lat, lng)))
    await index.flush(updates)


async def reset(pool: asyncpg.Pool, redis: aioredis.Redis) -> None:
    """Untimed: every round starts from the same open pool and no live offers."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM dispatch_offers")
        await conn.execute("UPDATE dispatch_orders SET status = 'open', offer_id = NULL, courier_id = NULL")
        await conn.execute("DELETE FROM outbox")
    keys = DispatchKeys(PREFIX, REGION)
    batch = [k async for k in redis.scan_iter(match=keys.base + "o*", count=5000)]
    batch += [k async for k in redis.scan_iter(match=keys.base + "courier:*", count=5000)]
    for i in range(0, len(batch), 1000):
        await redis.delete(*batch[i:i + 1000])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run_policy(pool: asyncpg.Pool, redis: aioredis.Redis, clock: ManualClock, policy: Policy,
                     rounds: int) -> dict[str, object]:
    live = DispatcherConfig(region=REGION, interval_s=5.0, solve_timeout_s=5.0)
    config = replace(live, core=replace(live.core_config, policy=policy))  # the live defaults, one policy
    d = Dispatcher(pool, redis, PREFIX, clock, config, f"bench-{policy.value}")
    lease = await d.lease.acquire()
    assert lease is not None
    await d.speed.load()  # what tick() does on a new term
    times: list[float] = []
    phases: dict[str, list[float]] = {}
    offers = []
    for i in range(rounds + 1):
        await reset(pool, redis)
        stat = await d.round(lease)
        if i == 0:
            continue  # warm-up: scripts loaded, connections open, caches warm
        times.append(stat.seconds)
        offers.append(stat.offers)
        for k, v in d.last_timings.items():
            phases.setdefault(k, []).append(v)
        phases.setdefault("surge_s", []).append(await d.update_surge())  # between rounds, as tick() does
    await d.lease.release(lease)
    return {"times": times, "offers": offers, "phases": {k: statistics.median(v) for k, v in phases.items()}}


async def main(args: argparse.Namespace) -> None:
    started = time.monotonic()
    servers = []
    db_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    base = Path(tempfile.mkdtemp(prefix="fd-bench-dispatch-"))
    if not db_url:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pg = start_postgres(base / "pg")
        servers.append(pg)
        db_url = pg.url
    if not redis_url:
        rd = start_redis(base / "redis")
        servers.append(rd)
        redis_url = rd.url
    try:
        admin = await asyncpg.connect(db_url)
        name = f"fd_bench_dispatch_{os.getpid()}"
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        parts = urlsplit(db_url)
        url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
        conn = await asyncpg.connect(url)
        await apply_migrations(conn)
        await conn.close()
        pool = await asyncpg.create_pool(url, min_size=2, max_size=4)
        redis = aioredis.Redis.from_url(redis_url)
        await redis.flushdb()
        clock = ManualClock(datetime.now(UTC))
        await seed(pool, redis, args.orders, args.couriers, clock.now())
        print(f"dispatch round: {args.orders} open orders, {args.couriers} couriers, one region; "
              f"{args.rounds} timed rounds per policy (+1 warm-up)")
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
              f"load average at start {os.getloadavg()[0]:.1f}")
        results = {}
        for policy in (Policy.OPTIMIZER, Policy.GREEDY):
            results[policy] = await run_policy(pool, redis, clock, policy, args.rounds)
        print(f"{'policy':<10} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'offers':>7}   median phase ms "
              "(pool / candidates / solve / offers; surge: between rounds, every 30 s, not in the round)")
        for policy, r in results.items():
            t = [x * 1000 for x in r["times"]]  # type: ignore[union-attr]
            ph = r["phases"]
            phase = " / ".join(f"{ph[k] * 1000:.0f}" for k in  # type: ignore[index]
                               ("pool_s", "candidates_s", "solve_s", "offers_s", "surge_s"))
            print(f"{policy.value:<10} {pct(t, 50):8.1f} {pct(t, 95):8.1f} {max(t):8.1f} "
                  f"{statistics.median(r['offers']):7.0f}   {phase}")  # type: ignore[arg-type]
        print(f"load average at end {os.getloadavg()[0]:.1f}; took {time.monotonic() - started:.0f} s")
        await redis.aclose()
        await pool.close()
        admin = await asyncpg.connect(db_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--couriers", type=int, default=2000)
    asyncio.run(main(parser.parse_args()))
