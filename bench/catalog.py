"""Discovery benchmark: 5,000 stores with irregular delivery zones in one metro.

Measures `GET /v1/stores?lat=&lng=` at the service level (the handler only decodes the query and
encodes the result): requests/s and latency percentiles with the H3 cell prefilter, against two
baselines in the same run:
  - scan: the same discovery query without the prefilter: every store row is read and every zone
    is tested with shapely (prepared geometries, cached as in the real path);
  - shapely-only: no database at all, one vectorised shapely `contains` over all 5,000 zones per
    request, which is the floor of any scan-every-zone design.

    .venv/bin/python bench/catalog.py [--stores 5000] [--seconds 8] [--concurrency 8]

Starts an embedded PostgreSQL in a temporary folder and removes it afterwards.
"""

# ruff: noqa: E402  (bench/ must leave the import path before the imports below)
from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the package it measures: keep bench/ off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import math
import random
import statistics
import tempfile
import time
import warnings
from datetime import UTC, datetime

import asyncpg
import numpy as np
import shapely

from catalog.messages import DiscoveryQuery
from catalog.service import CatalogService
from fooddispatch.embedded import start_postgres
from fooddispatch.migrate import apply_migrations, discover
from geo.zones import cover_zone, parse_zone
from kernel.clock import SystemClock

CENTER = (52.515, 13.40)  # Berlin
METRO_KM = (30.0, 40.0)  # north-south, east-west extent of the store locations
AT = datetime(2024, 6, 5, 16, 0, tzinfo=UTC)  # a Wednesday, 18:00 local


def _offset(lat: float, lng: float, north_m: float, east_m: float) -> tuple[float, float]:
    return lat + north_m / 110_574, lng + east_m / (111_320 * math.cos(math.radians(lat)))


def make_zone(rng: random.Random, lat: float, lng: float) -> dict:
    """An irregular star-shaped polygon, 1.5-5 km around the store, 16-40 vertices."""
    radius = rng.uniform(1500, 5000)
    n = rng.randint(16, 40)
    ring = []
    for k in range(n):
        a = 2 * math.pi * k / n
        r = radius * rng.uniform(0.7, 1.2)
        y, x = _offset(lat, lng, r * math.sin(a), r * math.cos(a))
        ring.append([round(x, 6), round(y, 6)])
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def random_point(rng: random.Random) -> tuple[float, float]:
    return _offset(*CENTER, rng.uniform(-0.5, 0.5) * METRO_KM[0] * 1000, rng.uniform(-0.5, 0.5) * METRO_KM[1] * 1000)


async def load(conn: asyncpg.Connection, n: int, rng: random.Random) -> tuple[list, float]:
    import json

    started = time.perf_counter()
    await conn.execute("INSERT INTO catalog_tenants (id, name, created_by) VALUES ('ten_bench', 'Bench', 'bench')")
    hours = json.dumps([{"weekday": d, "opens": o, "closes": c} for d in range(7)
                        for o, c in (("11:00", "15:00"), ("17:00", "23:30"))])
    stores, cells, geoms = [], [], []
    for i in range(n):
        lat, lng = random_point(rng)
        zone = make_zone(rng, lat, lng)
        geom = parse_zone(zone)
        geoms.append(geom)
        sid = f"sto_bench{i:05d}"
        bands = json.dumps([{"up_to_m": 2000, "fee": 99}, {"up_to_m": 8000, "fee": 299}])
        stores.append((sid, "ten_bench", f"Store {i}", lat, lng, "Europe/Berlin", "EUR", "bench",
                       hours, json.dumps([zone]), 1, 8000, bands))
        cells += [(c.cell, sid, c.interior) for c in cover_zone(geom)]
    await conn.copy_records_to_table("catalog_stores", records=stores, columns=[
        "id", "tenant_id", "name", "lat", "lng", "timezone", "currency", "region", "hours", "zones",
        "zone_version", "max_delivery_m", "fee_bands"])
    await conn.copy_records_to_table("catalog_zone_cells", records=cells, columns=["cell", "store_id", "interior"])
    await conn.execute("ANALYZE")
    print(f"loaded {n} stores, {len(cells)} cover cells ({len(cells) / n:.1f}/store) "
          f"in {time.perf_counter() - started:.1f} s")
    return geoms, time.perf_counter() - started


async def measure(name: str, call, seconds: float, concurrency: int, rng: random.Random) -> dict:
    latencies: list[float] = []
    results: list[int] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            lat, lng = random_point(rng)
            t0 = time.perf_counter()
            found = await call(lat, lng)
            latencies.append(time.perf_counter() - t0)
            results.append(found)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    out = {
        "name": name, "requests": len(latencies), "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "mean_found": statistics.fmean(results) if results else 0.0,
    }
    print(f"{name:>13}: {out['requests']:6d} req in {elapsed:4.1f} s = {out['rps']:8.1f} req/s, "
          f"p50 {out['p50_ms']:7.2f} ms, p99 {out['p99_ms']:7.2f} ms, {out['mean_found']:.1f} stores/answer")
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg = start_postgres(Path(tmp) / "pg")
        try:
            pool = await asyncpg.create_pool(pg.url, min_size=args.concurrency, max_size=args.concurrency)
            async with pool.acquire() as conn:
                await apply_migrations(conn, discover(("kernel", "fooddispatch", "catalog")))
                geoms, _ = await load(conn, args.stores, rng)
            service = CatalogService(pool, SystemClock())

            async def indexed(lat: float, lng: float) -> int:
                return len((await service.customer.discover(DiscoveryQuery(lat=lat, lng=lng, limit=100), AT)).items)

            async def scan(lat: float, lng: float) -> int:
                q = DiscoveryQuery(lat=lat, lng=lng, limit=100)
                return len((await service.customer.discover(q, AT, scan_all=True)).items)

            zones = np.array(geoms)
            shapely.prepare(zones)

            async def shapely_only(lat: float, lng: float) -> int:
                await asyncio.sleep(0)
                return int(shapely.contains(zones, shapely.Point(lng, lat)).sum())

            # Warm the parsed-rules cache for both paths, and check they agree.
            for _ in range(20):
                lat, lng = random_point(rng)
                a = await service.customer.discover(DiscoveryQuery(lat=lat, lng=lng, limit=100), AT)
                b = await service.customer.discover(DiscoveryQuery(lat=lat, lng=lng, limit=100), AT, scan_all=True)
                assert [c.id for c in a.items] == [c.id for c in b.items], "prefilter changed the answer"
            print(f"machine: {__import__('os').cpu_count()} cores; concurrency {args.concurrency}, "
                  f"{args.seconds:.0f} s per run")
            fast = await measure("h3 prefilter", indexed, args.seconds, args.concurrency, rng)
            slow = await measure("scan (same q)", scan, args.seconds, args.concurrency, rng)
            floor = await measure("shapely-only", shapely_only, args.seconds / 2, 1, rng)
            print(f"speed-up vs scan: {fast['rps'] / slow['rps']:.1f}x throughput, "
                  f"p99 {slow['p99_ms'] / fast['p99_ms']:.1f}x lower; "
                  f"vs shapely-only: {fast['rps'] / floor['rps']:.1f}x")
            await pool.close()
        finally:
            pg.stop()


if __name__ == "__main__":
    asyncio.run(main())
