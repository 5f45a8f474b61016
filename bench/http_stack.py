"""What the shared HTTP stack costs per request, on the embedded PostgreSQL and Redis (about 30 s).

    .venv/bin/python bench/http_stack.py [--seconds 4] [--concurrency 32] [--profile server.prof]

The app (no components: only the foundation's middlewares, auth, rate limit, idempotency, metrics and
logging) runs in its own process with four bench-only routes; the load generator sends from this one:

1. `GET /bench/public`: no credentials (error, auth, rate-limit and idempotency middlewares still run);
2. `GET /bench/private`: a bearer token, the customer role required;
3. `POST /bench/idempotent`: the token and a fresh `Idempotency-Key` (the key claimed and the response
   stored in PostgreSQL);
4. `POST /bench/insert`: the same plus one `INSERT ... RETURNING` in the handler;
5. baseline, in the same run: that `INSERT ... RETURNING` sent straight from this process on a pool as large
   as the server's, before and after the HTTP phases (their mean is the baseline).

The ratio of (4) to (5) bounds what any idempotent write route can reach against a bare-INSERT baseline
(the checkout and payments benches use that baseline). Server CPU is read from /proc for each phase.
Rate limits are set out of reach; the limiter still runs its script for every request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import asyncpg
from serverproc import Server, run_server

SECRET = "bench-secret-0123456789abcdefghijklmnop"
POOL = 36


def serve(port: int) -> None:
    import logging

    import structlog
    from aiohttp import web

    from fooddispatch.app import create_app
    from fooddispatch.config import Settings
    from fooddispatch.keys import DB
    from kernel.http import CUSTOMER, endpoint, json_response

    logging.getLogger().setLevel(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    settings = Settings(
        data_dir=Path(os.environ["BENCH_DIR"]), database_url=os.environ["DATABASE_URL"],
        redis_url=os.environ["REDIS_URL"], jwt_secret=SECRET, db_pool_min=POOL, db_pool_max=POOL,
        rate_limit_per_minute=10_000_000, rate_limit_burst=10_000_000, tenant_rate_limit_per_minute=10_000_000,
        tenant_rate_limit_burst=10_000_000, log_level="warning", redis_prefix="bench:",
    )
    app = create_app(settings, components=())

    @endpoint(roles=None)
    async def public(request: web.Request) -> web.Response:
        return json_response({"ok": True})

    @endpoint(roles={CUSTOMER})
    async def private(request: web.Request) -> web.Response:
        return json_response({"ok": True})

    @endpoint(roles={CUSTOMER}, idempotent=True)
    async def idempotent(request: web.Request) -> web.Response:
        return json_response({"ok": True})

    @endpoint(roles={CUSTOMER}, idempotent=True)
    async def insert(request: web.Request) -> web.Response:
        async with request.app[DB].acquire() as conn:
            row_id = await conn.fetchval("INSERT INTO bench_rows (payload) VALUES ($1) RETURNING id", "x" * 40)
        return json_response({"id": row_id})

    app.router.add_get("/bench/public", public)
    app.router.add_get("/bench/private", private)
    app.router.add_post("/bench/idempotent", idempotent)
    app.router.add_post("/bench/insert", insert)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
        loop = asyncio.get_running_loop()
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip():
            print(json.dumps({}), flush=True)
        await runner.cleanup()

    run_server(main)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(base: str, method: str, path: str, headers: dict[str, str], seconds: float,
                concurrency: int) -> tuple[float, float, float]:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker() -> None:
            while time.perf_counter() < stop:
                sent = dict(headers)
                if method == "POST":
                    sent["Idempotency-Key"] = uuid.uuid4().hex
                started = time.perf_counter()
                async with session.request(method, base + path, headers=sent, data=b"{}") as resp:
                    await resp.read()
                    if resp.status >= 300:
                        raise RuntimeError(f"{method} {path}: {resp.status} {await resp.text()}")
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return len(latencies) / elapsed, latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000


async def baseline(url: str, seconds: float, concurrency: int) -> float:
    pool = await asyncpg.create_pool(url, min_size=POOL, max_size=POOL)
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            async with pool.acquire() as conn:
                await conn.fetchval("INSERT INTO bench_rows (payload) VALUES ($1) RETURNING id", "x" * 40)
            done += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = done / (time.perf_counter() - began)
    await pool.close()
    return rate


async def bench(args: argparse.Namespace) -> None:
    from fooddispatch.embedded import embedded_servers

    folder = Path(tempfile.mkdtemp(prefix="fd-bench-http-"))
    with embedded_servers(folder, postgres=True, redis=True) as (pg_url, redis_url):
        await measure(args, folder, pg_url or "", redis_url or "")


async def measure(args: argparse.Namespace, folder: Path, pg_url: str, redis_url: str) -> None:
    from fooddispatch.identity import Tokens
    from fooddispatch.migrate import apply_migrations
    from kernel.http import CUSTOMER, Principal

    conn = await asyncpg.connect(pg_url)
    await apply_migrations(conn)
    await conn.execute("CREATE TABLE bench_rows (id bigserial PRIMARY KEY, payload text NOT NULL)")
    await conn.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Server(__file__, [str(port)], pg_url, redis_url, folder, port,
                    {"BENCH_PROFILE": args.profile} if args.profile else None)
    try:
        pid = server.ask()["pid"]
        token = Tokens({"k1": SECRET}, "k1", 3600).issue(Principal("cus_bench", CUSTOMER))
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        c, s = args.concurrency, args.seconds
        one, five, fifteen = os.getloadavg()
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}; "
              f"{c} in flight, {s:g} s per phase; load average {one:.2f}, {five:.2f}, {fifteen:.2f}")
        before = await baseline(pg_url, s, c)
        rows = []
        for name, method, path, headers in [
            ("public GET", "GET", "/bench/public", {}),
            ("authenticated GET", "GET", "/bench/private", auth),
            ("idempotent POST", "POST", "/bench/idempotent", auth),
            ("idempotent POST + INSERT", "POST", "/bench/insert", auth),
        ]:
            cpu = cpu_seconds(pid)
            rate, p50, p99 = await drive(server.base, method, path, headers, s, c)
            rows.append((name, rate, p50, p99, (cpu_seconds(pid) - cpu) / s * 100))
        after = await baseline(pg_url, s, c)
    finally:
        server.stop()
    mean = (before + after) / 2
    print(f"\nbaseline, INSERT ... RETURNING from this process: {before:,.0f} /s before, {after:,.0f} /s after\n")
    print(f"{'route':26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'server CPU':>11} {'of baseline':>12}")
    for name, rate, p50, p99, cpu in rows:
        print(f"{name:26} {rate:8,.0f} {p50:8.1f} {p99:8.1f} {cpu:10.0f}% {rate / mean:11.0%}")

def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile", help="write the server's cProfile stats (CPU time) to this path")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
