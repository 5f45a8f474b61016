"""Discovery benchmark: 5,000 stores with irregular delivery zones in one metro.

`GET /v1/stores?lat=&lng=` (a page of 20, sorted by ETA: the API's defaults), measured twice:
  1. service level (`CatalogService.customer.discover`, 8 concurrent callers in this process): what
     the catalog code costs, without HTTP;
  2. over HTTP: the real app (catalog component only, every middleware incl. the Redis rate limit)
     in a separate server process, 8 concurrent aiohttp clients here.
Each against the same-run baseline: the same query without the prefilter and without the index,
reading every store row from PostgreSQL and testing every zone with shapely (prepared geometries,
cached as in the real path). Over HTTP the baseline is served by a bench-only route on the same
server with the same decoding and encoding. Before timing, both paths must return identical pages
(every field of every card, both sort orders, walking every cursor) on 20 random points.

    .venv/bin/python bench/catalog.py [--stores 5000] [--seconds 5] [--concurrency 8] [--no-http]

Starts an embedded PostgreSQL (and Redis for the HTTP part) in a temporary folder and removes them
afterwards. Target (issue 4): >= 20x the baseline's throughput.
"""

# ruff: noqa: E402  (bench/ must leave the import path before the imports below)
from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the package it measures: keep bench/ off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import json
import math
import os
import random
import socket
import statistics
import subprocess
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import msgspec

from catalog.messages import DiscoveryQuery, StoreCards
from catalog.service import CatalogService
from fooddispatch.embedded import start_postgres, start_redis
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


class BenchClock(SystemClock):
    """Real monotonic time (so the index polls for changes as in production), a fixed `now`."""

    def now(self) -> datetime:
        return AT


def load_average() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


Call = Callable[[float, float], Awaitable[int]]


async def measure(name: str, call: Call, seconds: float, concurrency: int, rng: random.Random) -> dict[str, Any]:
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
    print(f"  {name:<34} {out['requests']:6d} req in {elapsed:4.1f} s = {out['rps']:8.1f} req/s, "
          f"p50 {out['p50_ms']:7.2f} ms, p99 {out['p99_ms']:7.2f} ms, {out['mean_found']:5.1f} cards/answer  "
          f"[{load_average()}]")
    return out


def verdict(level: str, fast: dict[str, Any], base: dict[str, Any]) -> str:
    ratio = fast["rps"] / base["rps"]
    met = "MET" if ratio >= 20 else "NOT met"
    return (f"{level}: {ratio:.1f}x the baseline's throughput ({fast['rps']:.0f} vs {base['rps']:.0f} req/s), "
            f"p99 {base['p99_ms'] / fast['p99_ms']:.1f}x lower; target >= 20x {met}")


async def check_identical(service: CatalogService, rng: random.Random, points: int) -> int:
    """Every page of both sort orders, walked by cursor, must be byte-identical on both paths."""
    compared = 0
    for _ in range(points):
        lat, lng = random_point(rng)
        for sort in ("eta", "distance"):
            cursor = None
            while True:
                q = DiscoveryQuery(lat=lat, lng=lng, sort=sort, limit=20, cursor=cursor)  # type: ignore[arg-type]
                a = await service.customer.discover(q, AT)
                b = await service.customer.discover(q, AT, scan_all=True)
                assert msgspec.json.encode(a) == msgspec.json.encode(b), f"index changed the answer at {lat},{lng}"
                compared += len(a.items)
                cursor = a.next_cursor
                if cursor is None:
                    break
    return compared


# ---- the HTTP server process ---------------------------------------------------------------------

def serve(port: int) -> None:
    """The real app, catalog component only, plus a bench-only route serving the scan baseline."""
    import logging

    import structlog
    from aiohttp import web

    from catalog.web import CATALOG
    from fooddispatch.app import create_app
    from fooddispatch.config import Settings
    from kernel.http import decode_query, endpoint, json_response

    logging.getLogger().setLevel(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    settings = Settings(
        data_dir=Path(os.environ["BENCH_DIR"]), database_url=os.environ["DATABASE_URL"],
        redis_url=os.environ["REDIS_URL"], jwt_secret="bench-secret-0123456789abcdefghijklmnop",
        db_pool_min=4, db_pool_max=16, rate_limit_per_minute=10_000_000, rate_limit_burst=10_000_000,
        log_level="warning", redis_prefix="bench:",
    )
    app = create_app(settings, clock=BenchClock(), components=("catalog",))

    @endpoint(roles=None, query=DiscoveryQuery, response=StoreCards, summary="bench only: the scan baseline")
    async def scan(request: web.Request) -> web.Response:
        service = request.app[CATALOG]
        query = decode_query(request, DiscoveryQuery)
        return json_response(await service.customer.discover(query, service.clock.now(), scan_all=True))

    app.router.add_get("/bench/stores_scan", scan)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print(json.dumps({"ready": True}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)  # until the bench closes stdin
        await runner.cleanup()

    asyncio.run(main())


def start_server(pg_url: str, redis_url: str, folder: Path) -> tuple[int, subprocess.Popen[str]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": pg_url, "REDIS_URL": redis_url, "BENCH_DIR": str(folder)}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and json.loads(proc.stdout.readline())["ready"], "the server did not start"
    return port, proc


async def over_http(args: argparse.Namespace, pg_url: str, folder: Path, rng: random.Random) -> tuple[dict, dict]:
    redis = start_redis(folder / "redis")
    port, proc = start_server(pg_url, redis.url, folder)
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            def caller(path: str) -> Call:
                async def call(lat: float, lng: float) -> int:
                    async with session.get(base + path, params={"lat": f"{lat:.6f}", "lng": f"{lng:.6f}"}) as r:
                        assert r.status == 200, await r.text()
                        return len((await r.json())["items"])
                return call

            t0 = time.perf_counter()
            await caller("/v1/stores")(*CENTER)  # the server loads its index on first use
            print(f"  server's first request (index load): {time.perf_counter() - t0:.1f} s")
            for _ in range(20):
                lat, lng = random_point(rng)
                async with session.get(base + "/v1/stores", params={"lat": lat, "lng": lng}) as r:
                    a = await r.read()
                async with session.get(base + "/bench/stores_scan", params={"lat": lat, "lng": lng}) as r:
                    b = await r.read()
                assert a == b, "over HTTP the index changed the answer"
            fast = await measure("index, page of 20 (HTTP)", caller("/v1/stores"), args.seconds,
                                 args.concurrency, rng)
            slow = await measure("baseline: scan, page of 20 (HTTP)", caller("/bench/stores_scan"), args.seconds,
                                 args.concurrency, rng)
        return fast, slow
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        redis.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-http", action="store_true", help="service level only")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    began = time.perf_counter()
    print(f"machine: {os.cpu_count()} cores; {args.concurrency} concurrent callers, {args.seconds:.0f} s per run; "
          f"at start: {load_average()}")
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg = start_postgres(Path(tmp) / "pg")
        try:
            pool = await asyncpg.create_pool(pg.url, min_size=args.concurrency, max_size=args.concurrency)
            async with pool.acquire() as conn:
                await apply_migrations(conn, discover(("kernel", "fooddispatch", "catalog")))
                await load(conn, args.stores, rng)
            service = CatalogService(pool, BenchClock())
            t0 = time.perf_counter()
            await service.customer.refresh()
            print(f"index loaded: {len(service.customer.index)} stores in {time.perf_counter() - t0:.1f} s")
            cards = await check_identical(service, rng, 20)
            print(f"identical answers: 20 points x 2 sort orders, every cursor page, {cards} cards compared")

            def via_service(limit: int, scan_all: bool) -> Call:
                async def call(lat: float, lng: float) -> int:
                    q = DiscoveryQuery(lat=lat, lng=lng, limit=limit)
                    return len((await service.customer.discover(q, AT, scan_all=scan_all)).items)
                return call

            print("service level (CatalogService.customer.discover, no HTTP):")
            fast = await measure("index, page of 20", via_service(20, False), args.seconds, args.concurrency, rng)
            slow = await measure("baseline: scan, page of 20", via_service(20, True), args.seconds,
                                 args.concurrency, rng)
            await measure("index, limit 100 (every store)", via_service(100, False), args.seconds / 2,
                          args.concurrency, rng)
            lines = [verdict("service level", fast, slow)]
            await pool.close()
            if not args.no_http:
                print("over HTTP (the app in its own process; this process only sends requests):")
                fast_http, slow_http = await over_http(args, pg.url, Path(tmp), rng)
                lines.append(verdict("over HTTP    ", fast_http, slow_http))
        finally:
            pg.stop()
    print("\n".join(lines))
    print(f"total {time.perf_counter() - began:.0f} s; at end: {load_average()}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
    else:
        asyncio.run(main())
