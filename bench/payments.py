"""Payments benchmark on the embedded PostgreSQL and Redis (about 40 s).

    .venv/bin/python bench/payments.py [--seconds 4] [--concurrency 8] [--batch 1000] [--ledger-concurrency 2]
                                       [--profile server.prof]

The app runs in its own process (components: payments; its background loops and the outbox relay run), so
the load generator here shares the machine's cores but not the server's event loop. Phases, each timed for
`--seconds` with `--concurrency` requests in flight:

1. baseline: single-row `INSERT` round trips (each its own commit) from this process, on a pool as large as
   the server's. Measured before and after the HTTP phase; the ratio uses their mean, so a change in the
   machine's other load during the run shows up as a gap between the two, not as a skewed ratio;
2. ledger: balanced 5-posting split entries posted with `ledger.post_batch` (many restaurant and courier
   accounts plus the shared hot ones); postings/s counted from the rows written;
3. HTTP pairs: `POST /v1/payment_intents` (confirm) then `POST /v1/payment_intents/{id}/capture`, as a
   client sends them: a bearer token and a fresh `Idempotency-Key` on each write, through the whole app
   (auth, rate limit, idempotency, fraud screen in Redis, test-mode processor, ledger, outbox, webhooks).
   The server counts the PostgreSQL statements each route sends and the commits among them (an asyncpg
   query logger, attributed to the request by a context variable; background loops are not counted);
4. reference, for context only: the same HTTP stack around one `INSERT` (`POST /bench/insert`, a bench-only
   route with the same auth and Idempotency-Key), i.e. what any idempotent write costs on this machine.

Bench-only adjustments in the server: rate limits and the fraud screen's velocity thresholds are set out of
reach (the bench reuses a few cards thousands of times); screening still runs in full.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import itertools
import json
import os
import platform
import random
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import asyncpg
from serverproc import Server, run_server

SECRET = "bench-secret-0123456789abcdefghijklmnop"
VAULT_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
TARGET_RATIO = 0.25
TARGET_POSTINGS = 10_000
PAIR = ("POST /v1/payment_intents", "POST /v1/payment_intents/{id}/capture")

# ---- the server process ---------------------------------------------------------------------------------

REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("bench_request", default="background")


def serve(port: int, pool_max: int) -> None:
    """Run the app on `port`; answer `stats` / `reset` lines on stdin with JSON on stdout."""
    import logging

    import structlog
    from aiohttp import web

    from fooddispatch.app import create_app
    from fooddispatch.config import Settings
    from fooddispatch.keys import DB
    from kernel.http import CUSTOMER, endpoint, json_response
    from payments.model import FraudRules
    from payments.web import PAYMENTS

    logging.getLogger().setLevel(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    counts: Counter[str] = Counter()

    def on_query(record: Any, conn: asyncpg.Connection, processor: bool) -> None:  # in the querying task's context
        tag = REQUEST.get()
        if processor:  # the test-mode processor's own records: an external service in production, counted apart
            counts[f"processor {tag}"] += 1
            return
        counts[tag] += 1
        # A commit: COMMIT itself, or a write sent outside a transaction (it commits on its own).
        words = record.query.split(None, 1)
        verb = words[0].upper().rstrip(";") if words else ""
        if verb == "COMMIT" or (verb in ("INSERT", "UPDATE", "DELETE", "WITH") and not conn.is_in_transaction()):
            counts[f"commits {tag}"] += 1

    real_create_pool = asyncpg.create_pool

    def create_pool(*args: Any, **kw: Any) -> Any:  # count every statement of every pooled connection
        processor = (kw.get("server_settings") or {}).get("application_name") == "fooddispatch-test-processor"

        async def init(conn: asyncpg.Connection) -> None:
            conn.add_query_logger(lambda record: on_query(record, conn, processor))
        return real_create_pool(*args, init=init, **kw)

    asyncpg.create_pool = create_pool  # type: ignore[assignment]

    # The app's own pool is a BoundedPool built directly (fooddispatch.database): count its statements too.
    from fooddispatch import database

    real_pool_init = database.BoundedPool.__init__

    def pool_init(self: Any, *args: Any, **kw: Any) -> None:
        processor = (kw.get("server_settings") or {}).get("application_name") == "fooddispatch-test-processor"

        async def init(conn: asyncpg.Connection) -> None:
            conn.add_query_logger(lambda record: on_query(record, conn, processor))
        real_pool_init(self, *args, init=init, **kw)

    database.BoundedPool.__init__ = pool_init  # type: ignore[method-assign]

    @web.middleware
    async def tag(request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.match_info.route.resource
        name = f"{request.method} {route.canonical if route else request.path}"
        REQUEST.set(name)
        counts[f"requests {name}"] += 1
        return await handler(request)

    settings = Settings(
        data_dir=Path(os.environ["BENCH_DIR"]), database_url=os.environ["DATABASE_URL"],
        redis_url=os.environ["REDIS_URL"], jwt_secret=SECRET, vault_key=VAULT_KEY, db_pool_min=pool_max,
        db_pool_max=pool_max, rate_limit_per_minute=10_000_000, rate_limit_burst=10_000_000,
        tenant_rate_limit_per_minute=100_000_000, tenant_rate_limit_burst=10_000_000, log_level="warning",
        redis_prefix="bench:",
    )
    app = create_app(settings, components=("payments",))
    app.middlewares.insert(0, tag)

    @endpoint(roles={CUSTOMER}, idempotent=True)
    async def insert_one(request: web.Request) -> web.Response:
        async with request.app[DB].acquire() as conn:
            row_id = await conn.fetchval("INSERT INTO bench_rows (payload) VALUES ($1) RETURNING id", "x" * 40)
        return json_response({"id": row_id})

    app.router.add_post("/bench/insert", insert_one)

    async def relax_fraud(app: web.Application) -> None:
        big = 10**9
        app[PAYMENTS].fraud.rules = FraudRules(card_velocity=big, customer_velocity=big, device_velocity=big,
                                               ip_velocity=big, cards_per_customer=big)

    app.on_startup.append(relax_fraud)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print(json.dumps({"ready": True}), flush=True)
        loop = asyncio.get_running_loop()
        while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
            if line == "reset":
                counts.clear()
                print(json.dumps({}), flush=True)
            elif line == "stats":
                print(json.dumps(dict(counts)), flush=True)
        await runner.cleanup()

    run_server(main)



# ---- the load generator -----------------------------------------------------------------------------------

async def timed(seconds: float, concurrency: int, work: Callable[[int], Awaitable[int]]) -> tuple[int, float]:
    """Run `work(worker)` in `concurrency` loops for `seconds`; returns (units done, elapsed seconds)."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            n = await work(i)  # not `done += await ...`: that reads `done` before the await and loses updates
            done += n

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done, time.perf_counter() - started


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))] * 1000 if s else float("nan")


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} cores)"


async def baseline(pool: asyncpg.Pool, seconds: float, concurrency: int) -> float:
    async def one(_: int) -> int:
        async with pool.acquire() as conn:
            await conn.fetchval("INSERT INTO bench_rows (payload) VALUES ($1) RETURNING id", "x" * 40)
        return 1

    n, elapsed = await timed(seconds, concurrency, one)
    return n / elapsed


async def postings(pool: asyncpg.Pool, seconds: float, concurrency: int, batch: int) -> tuple[float, float]:
    from payments import ledger, model
    from payments.model import Split

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

    async with pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM postings")
        entries_before = await conn.fetchval("SELECT count(*) FROM journal_entries")

    async def one(_: int) -> int:
        entries = [split_entry() for _ in range(batch)]
        async with pool.acquire() as conn:
            outcomes = await ledger.post_batch(conn, entries)
        return sum(o.accepted for o in outcomes)

    _, elapsed = await timed(seconds, concurrency, one)
    async with pool.acquire() as conn:
        assert await ledger.sums_per_currency(conn) == {"EUR": 0}
        assert await ledger.balances_match_postings(conn) == []
        rows = await conn.fetchval("SELECT count(*) FROM postings") - before
        entries = await conn.fetchval("SELECT count(*) FROM journal_entries") - entries_before
    return rows / elapsed, entries / elapsed


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.keys = itertools.count()

    async def post(self, path: str, headers: dict[str, str], body: Any, expect: int = 200) -> Any:
        async with self.session.post(self.base + path, json=body,
                                     headers={**headers, "Idempotency-Key": f"bench-{next(self.keys)}"}) as r:
            data = await r.json()
            if r.status != expect:
                raise AssertionError(f"POST {path}: {r.status} {data}")
            return data


async def http_pairs(api: Client, customers: list[tuple[dict[str, str], str]], operator: dict[str, str],
                     seconds: float, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def one(i: int) -> int:
        h, pm = customers[i]
        t0 = time.perf_counter()
        intent = await api.post("/v1/payment_intents", h, {"amount": 2500, "currency": "EUR", "payment_method": pm,
                                                           "confirm": True})
        assert intent["status"] == "requires_capture", intent
        captured = await api.post(f"/v1/payment_intents/{intent['id']}/capture", operator, {})
        assert captured["status"] == "succeeded" and captured["amount_received"] == 2500, captured
        latencies.append(time.perf_counter() - t0)
        return 1

    n, elapsed = await timed(seconds, concurrency, one)
    return n / elapsed, latencies


async def http_inserts(api: Client, customers: list[tuple[dict[str, str], str]], seconds: float,
                       concurrency: int) -> float:
    async def one(i: int) -> int:
        await api.post("/bench/insert", customers[i][0], {})
        return 1

    n, elapsed = await timed(seconds, concurrency, one)
    return n / elapsed


async def bench(args: argparse.Namespace) -> None:
    from fooddispatch.embedded import start_postgres, start_redis
    from fooddispatch.identity import IdentityService, Tokens
    from fooddispatch.migrate import apply_migrations

    t_start = time.perf_counter()
    c = args.concurrency
    pool_max = c + 4  # the server's pool; the baseline's is as large
    folder = Path(tempfile.mkdtemp(prefix="fd-bench-payments-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg = start_postgres(folder / "pg")
    rd = start_redis(folder / "redis")
    server: Server | None = None
    try:
        conn = await asyncpg.connect(pg.url)
        await apply_migrations(conn)
        await conn.execute("CREATE TABLE bench_rows (id bigserial PRIMARY KEY, payload text NOT NULL)")
        await conn.close()
        port = args.port or _free_port()
        server = Server(__file__, [str(port), str(pool_max)], pg.url, rd.url, folder, port,
                        {"BENCH_PROFILE": args.profile} if args.profile else None)
        server.ask()  # ready
        pool = await asyncpg.create_pool(pg.url, min_size=pool_max, max_size=pool_max)
        identity = IdentityService(pool, Tokens({"k1": SECRET}, "k1", 3600))
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}; "
              f"server: its own process, pool {pool_max}; {c} in flight, {args.seconds:g} s per phase")
        print(f"start: {load_average()}")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                         timeout=aiohttp.ClientTimeout(total=60)) as session:
            api = Client(session, server.base)
            operator = await identity.create_account("operator", name="bench operator")
            op_h = {"Authorization": f"Bearer {identity.tokens.issue(operator)}"}
            customers = []
            for i in range(c):
                who = await identity.create_account("customer", name=f"bench {i}")
                h = {"Authorization": f"Bearer {identity.tokens.issue(who)}"}
                pm = await api.post("/v1/payment_methods", h, {
                    "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
                customers.append((h, pm["id"]))
            await http_pairs(api, customers, op_h, min(1.0, args.seconds), c)  # warm up (statement caches)
            await baseline(pool, min(1.0, args.seconds), c)

            base1 = await baseline(pool, args.seconds, c)
            print(f"\nbaseline, single-row INSERTs ({c} in flight):         {base1:8.0f} /s")
            server.ask("reset")
            pairs, lat = await http_pairs(api, customers, op_h, args.seconds, c)
            stats = server.ask("stats")
            base2 = await baseline(pool, args.seconds, c)
            print(f"baseline again, after the HTTP phase:                {base2:8.0f} /s")
            base = (base1 + base2) / 2
            done = stats.get(f"requests {PAIR[0]}", 0)
            trips = [stats.get(route, 0) / max(done, 1) for route in PAIR]
            pair_commits = sum(stats.get(f"commits {route}", 0) for route in PAIR) / max(done, 1)
            ratio = pairs / base
            print(f"\nHTTP authorize (confirm) + capture pairs:            {pairs:8.0f} pairs/s  "
                  f"(p50 {pct(lat, 0.5):.1f} ms, p95 {pct(lat, 0.95):.1f} ms per pair)")
            print(f"  PostgreSQL statements per pair: {sum(trips):.1f} (authorize {trips[0]:.1f}, capture "
                  f"{trips[1]:.1f}; BEGIN/COMMIT and pool resets included), of which commits: {pair_commits:.1f}")
            external = sum(stats.get(f"processor {route}", 0) for route in PAIR) / max(done, 1)
            print(f"  and {external:.1f} statements per pair of the test-mode processor's own records (on its own "
                  "pool; a real processor is an external service)")
            print(f"  = {ratio:.1%} of the baseline (mean of the two)   target >= {TARGET_RATIO:.0%}: "
                  f"{'MET' if ratio >= TARGET_RATIO else 'NOT MET'}")
            floor = await http_inserts(api, customers, args.seconds, c)
            print(f"  reference: one INSERT per request through the same HTTP stack (auth, rate limit, "
                  f"Idempotency-Key): {floor:.0f} /s = {floor / base:.0%} of the baseline; "
                  f"a pair is two requests, so {floor / 2 / base:.0%} is the most any pair could reach here")
        per_posting, per_entry = await postings(pool, args.seconds, args.ledger_concurrency, args.batch)
        print(f"\nledger post_batch ({args.batch} entries per batch, {args.ledger_concurrency} in flight): "
              f"{per_posting:8.0f} postings/s ({per_entry:.0f} entries/s, 5 postings each); books balance   "
              f"target >= {TARGET_POSTINGS:,}/s: {'MET' if per_posting >= TARGET_POSTINGS else 'NOT MET'}")
        print(f"\nend: {load_average()}; total {time.perf_counter() - t_start:.0f} s "
              "(other engineers' work may load this machine)")
        await pool.close()
    finally:
        if server is not None:
            server.stop()
        rd.stop()
        pg.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--ledger-concurrency", type=int, default=2)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--profile", help="write the server's cProfile stats to this path")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
