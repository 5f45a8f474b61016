"""Payments benchmark on the embedded PostgreSQL and Redis.

    .venv/bin/python bench/payments.py [--seconds 8] [--concurrency 8] [--batch 500]

1. baseline: single-row INSERTs (one per round trip) at the given concurrency;
2. ledger: balanced split entries (5 postings each) posted with `ledger.post_batch`,
   same concurrency, many restaurant and courier accounts plus the shared hot ones;
3. HTTP: authorize (POST /v1/payment_intents, confirm) + capture pairs through the
   whole app (auth, rate limit, Idempotency-Key, fraud screen, processor, ledger).
Client and server share this one process (and the machine's cores).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import asyncpg
from aiohttp import web

from fooddispatch.app import create_app
from fooddispatch.config import Settings
from fooddispatch.embedded import start_postgres, start_redis
from fooddispatch.identity import IdentityService, Tokens
from fooddispatch.migrate import apply_migrations
from payments import ledger, model
from payments.model import FraudRules, Split
from payments.web import PAYMENTS

SECRET = "bench-secret-0123456789abcdefghijklmnop"


async def timed(seconds: float, concurrency: int, work) -> tuple[int, float]:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            done += await work(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done, time.perf_counter() - started


async def baseline(pool: asyncpg.Pool, seconds: float, concurrency: int) -> float:
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE bench_rows (id bigserial PRIMARY KEY, payload text NOT NULL)")

    async def one(_: int) -> int:
        async with pool.acquire() as conn:
            await conn.execute("INSERT INTO bench_rows (payload) VALUES ($1)", "x" * 40)
        return 1

    n, elapsed = await timed(seconds, concurrency, one)
    return n / elapsed


async def postings(pool: asyncpg.Pool, seconds: float, concurrency: int, batch: int) -> tuple[float, float]:
    counter = itertools.count()

    def split_entry() -> model.JournalEntry:
        i = next(counter)
        charged = random.randint(1500, 6000)
        courier = random.randint(200, 600)
        tax = charged // 10
        fee = charged // 5
        split = Split("EUR", charged, charged - courier - tax - fee, f"res_{i % 500}", courier, f"cou_{i % 2000}",
                      fee, tax)
        return model.entry("split", "EUR", model.split_postings(split), actor="bench", reference=f"ord_{i}",
                           idempotency_key=f"split:ord_{i}")

    async def one(_: int) -> int:
        entries = [split_entry() for _ in range(batch)]
        async with pool.acquire() as conn:
            outcomes = await ledger.post_batch(conn, entries)
        return sum(len(e.postings) for e, o in zip(entries, outcomes, strict=True) if o.accepted)

    _, elapsed = await timed(seconds, concurrency, one)
    async with pool.acquire() as conn:
        assert await ledger.sums_per_currency(conn) == {"EUR": 0}
        assert await ledger.balances_match_postings(conn) == []
        entries = await conn.fetchval("SELECT count(*) FROM journal_entries")
        rows = await conn.fetchval("SELECT count(*) FROM postings")
    return rows / elapsed, entries / elapsed


async def http_pairs(settings: Settings, pool: asyncpg.Pool, seconds: float, concurrency: int) -> tuple[float, float]:
    app = create_app(settings, background=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    # The bench reuses a few cards thousands of times: velocity rules would (rightly) block it.
    # Screening still runs in full; only the thresholds are out of reach.
    big = 10**9
    app[PAYMENTS].fraud.rules = FraudRules(card_velocity=big, customer_velocity=big, device_velocity=big,
                                           ip_velocity=big, cards_per_customer=big)
    identity = IdentityService(pool, Tokens({"k1": SECRET}, "k1", 3600))
    operator = await identity.create_account("operator", name="bench operator")
    op_h = {"Authorization": f"Bearer {identity.tokens.issue(operator)}"}
    keys = itertools.count()
    base = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency * 2)) as session:
        customers = []
        for i in range(concurrency):
            who = await identity.create_account("customer", name=f"bench {i}")
            h = {"Authorization": f"Bearer {identity.tokens.issue(who)}"}
            async with session.post(f"{base}/v1/payment_methods", headers={**h, "Idempotency-Key": f"pm{i}"}, json={
                    "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}) as r:
                pm = (await r.json())["id"]
            customers.append((h, pm))

        async def one(i: int) -> int:
            h, pm = customers[i]
            t0 = time.perf_counter()
            async with session.post(f"{base}/v1/payment_intents", headers={**h, "Idempotency-Key": f"a{next(keys)}"},
                                    json={"amount": 2500, "currency": "EUR", "payment_method": pm,
                                          "confirm": True}) as r:
                intent = await r.json()
                assert r.status == 200 and intent["status"] == "requires_capture", intent
            async with session.post(f"{base}/v1/payment_intents/{intent['id']}/capture",
                                    headers={**op_h, "Idempotency-Key": f"c{next(keys)}"}, json={}) as r:
                assert r.status == 200, await r.text()
            latencies.append(time.perf_counter() - t0)
            return 1

        n, elapsed = await timed(seconds, concurrency, one)
    await runner.cleanup()
    latencies.sort()
    return n / elapsed, latencies[int(len(latencies) * 0.95)] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--ledger-concurrency", type=int, default=2)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="fd-bench-payments-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg = start_postgres(folder / "pg")
    rd = start_redis(folder / "redis")
    try:
        conn = await asyncpg.connect(pg.url)
        await apply_migrations(conn)
        await conn.close()
        pool = await asyncpg.create_pool(pg.url, min_size=args.concurrency, max_size=args.concurrency + 4)
        settings = Settings(data_dir=folder, database_url=pg.url, redis_url=rd.url, jwt_secret=SECRET,
                            vault_key="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", db_pool_max=args.concurrency + 4,
                            rate_limit_per_minute=10_000_000, rate_limit_burst=10_000_000,
                            tenant_rate_limit_per_minute=100_000_000, log_level="warning")
        import logging

        logging.getLogger().setLevel(logging.WARNING)
        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        c = args.concurrency
        print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}, "
              f"concurrency {c}, {args.seconds:.0f} s per phase")
        base = await baseline(pool, args.seconds, c)
        print(f"baseline single-row INSERTs:        {base:9.0f} rows/s")
        per_posting, per_entry = await postings(pool, args.seconds, args.ledger_concurrency, args.batch)
        print(f"ledger post_batch (batch {args.batch}, {args.ledger_concurrency} workers): "
              f"{per_posting:9.0f} postings/s ({per_entry:.0f} entries/s, 5 postings each)")
        pairs, p95 = await http_pairs(settings, pool, args.seconds, c)
        print(f"HTTP authorize+capture:             {pairs:9.0f} pairs/s (p95 pair {p95:.1f} ms) = "
              f"{pairs / base:.0%} of the baseline")
        await pool.close()
    finally:
        rd.stop()
        pg.stop()


if __name__ == "__main__":
    asyncio.run(main())
