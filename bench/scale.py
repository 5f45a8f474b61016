"""Scale-out figures: `fooddispatch serve --workers N` on one Valkey node and on a local 3-primary
Valkey Cluster, driven over HTTP and websockets like the apps.

Per configuration (1 and 2 workers × single node and cluster):
- GPS ingest (bench/ingest.py's lean websocket generator, one process, 2 frames in flight per courier):
  stored fixes/s at saturation, p99 frame->ack there and at half of it, and server CPU per stored fix;
- checkouts (POST /v1/orders on prepared quotes, 16 at a time): checkouts/s and server CPU per checkout;
- payment requests (create+confirm an intent, then capture it, 16 at a time): requests/s and server CPU
  per request.
"Server CPU" is the user+system time of the `serve` process tree (parent and workers) over the phase,
divided by the units done: the figure that carries to a bigger machine. On a 2-core box the load
generator, PostgreSQL and Valkey share the cores with the server, so throughputs here are a floor.

    .venv/bin/python bench/scale.py [--couriers 400] [--seconds 5] [--workers 1,2] [--stores single,cluster]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
INGEST = REPO / "bench" / "ingest.py"
SECRET = "bench-secret-0123456789abcdefghijklmnop"  # bench/ingest.py's: its generator signs with it
VAULT_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
LAT, LNG = 52.52, 13.405
SQUARE = {"type": "Polygon", "coordinates": [[[13.30, 52.45], [13.50, 52.45], [13.50, 52.60], [13.30, 52.60],
                                              [13.30, 52.45]]]}
MENU = {"categories": [{"name": "Mains", "id": "cat_mains", "items": [
    {"id": "itm_burger", "name": "Burger", "price": 1090}, {"id": "itm_fries", "name": "Fries", "price": 350}]}]}
CONCURRENCY = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Served:
    """`fooddispatch serve --workers N` as a child, and the CPU time of its whole process tree."""

    def __init__(self, workers: int, env: dict[str, str], folder: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = (folder / f"serve-{self.port}.log").open("wb")
        full = {k: v for k, v in os.environ.items() if not k.startswith(("FOODDISPATCH_", "DATABASE_URL", "REDIS"))}
        full.update(env)
        self.proc = subprocess.Popen([sys.executable, "-m", "fooddispatch", "serve", "--port", str(self.port),
                                      "--workers", str(workers)], env=full, stdout=self.log, stderr=self.log)
        self.workers = workers
        self._dead: dict[int, float] = {}

    def cpu_seconds(self) -> float:
        total = 0.0
        with_children = [psutil.Process(self.proc.pid)]
        with_children += with_children[0].children(recursive=True)
        for p in with_children:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                continue
        return total

    async def ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        seen: set[str] = set()
        # A new connection per probe: the kernel spreads connections, not requests, over the workers.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
            while len(seen) < self.workers:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.log.flush()
                    raise RuntimeError(f"serve did not come up:\n{self.tail()}")
                try:
                    async with session.get(self.base + "/healthz") as r:
                        if r.status == 200:
                            seen.add(r.headers.get("X-Fooddispatch-Instance", "one"))
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)

    def tail(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# -- GPS ingest ---------------------------------------------------------------------------------------------

def ingest(served: Served, couriers: int, seconds: float) -> dict[str, Any]:
    """Run bench/ingest.py's generator against the server; server CPU per phase from its markers."""
    cmd = [sys.executable, str(INGEST), "--load", "--port", str(served.port), "--couriers", str(couriers),
           "--duration", str(seconds), "--window", "2", "--latency", "--issue-share", "0.5"]
    gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert gen.stdout is not None
    cpu: dict[str, float] = {}
    marks: dict[str, tuple[float, float]] = {}
    result: dict[str, Any] = {}
    for line in gen.stdout:
        line = line.strip()
        if line.startswith("PHASE "):
            marks[line.split()[1]] = (time.perf_counter(), served.cpu_seconds())
        elif line.startswith("END "):
            name = line.split()[1]
            if name in marks:
                t0, c0 = marks[name]
                cpu[name] = (served.cpu_seconds() - c0) / (time.perf_counter() - t0)  # cores busy
        elif line.startswith("RESULT "):
            result = json.loads(line[7:])
    gen.wait()
    sat, half = result.get("saturate", {}), result.get("rate_issue", {})
    fixes = sat.get("points_per_s", 0.0)
    return {"fixes_per_s": fixes, "p99_ms": sat.get("p99_ms"), "p99_half_ms": half.get("p99_ms"),
            "half_rate": half.get("offered_per_s"), "us_per_fix": 1e6 * cpu.get("saturate", 0.0) / max(fixes, 1.0),
            "server_cores": cpu.get("saturate", 0.0), "errors": result.get("errors")}


# -- the shop, checkouts and payments --------------------------------------------------------------------------

class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base
        self.keys = itertools.count()

    async def call(self, method: str, path: str, headers: dict[str, str], body: Any = None,
                   expect: tuple[int, ...] = (200, 201)) -> Any:
        key = {"Idempotency-Key": f"scale-{next(self.keys)}"} if method != "GET" else {}
        async with self.session.request(method, self.base + path, json=body, headers={**headers, **key}) as r:
            data = await r.json() if r.status != 204 else None
            if r.status not in expect:
                raise AssertionError(f"{method} {path}: {r.status} {data}")
            return data


async def run_all(n: int, work: Callable[[int], Awaitable[None]]) -> float:
    counter = itertools.count()

    async def worker() -> None:
        while (i := next(counter)) < n:
            await work(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


async def shop(api: Api, identity: Any, customers: int) -> tuple[str, list[tuple[dict[str, str], str]],
                                                                dict[str, str]]:
    def bearer(who: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {identity.tokens.issue(who)}"}

    operator = bearer(await identity.create_account("operator", name="scale operator"))
    tenant = await api.call("POST", "/v1/tenants", operator, {"name": "Scale Burgers"})
    staff = bearer(await identity.create_account("staff", tenant_id=tenant["id"], name="scale staff"))
    store = await api.call("POST", f"/v1/tenants/{tenant['id']}/stores", staff, {
        "name": "Mitte", "lat": LAT, "lng": LNG, "timezone": "Europe/Berlin", "currency": "EUR",
        "tax_rate_bps": 700, "prep_time_default_s": 600, "accept_window_s": 3600})
    sid = store["id"]
    await api.call("PUT", f"/v1/merchant/stores/{sid}/hours", staff,
                   {"periods": [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]})
    await api.call("PUT", f"/v1/merchant/stores/{sid}/zones", staff,
                   {"zones": [SQUARE], "max_delivery_m": 8000, "fee_bands": [{"up_to_m": 8000, "fee": 299}]})
    await api.call("PUT", f"/v1/merchant/stores/{sid}/menu", staff, MENU)
    buyers: list[tuple[dict[str, str], str]] = [({}, "")] * customers

    async def buyer(i: int) -> None:
        h = bearer(await identity.create_account("customer", name=f"scale customer {i}"))
        pm = await api.call("POST", "/v1/payment_methods", h, {"card": {
            "number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
        buyers[i] = (h, pm["id"])

    await run_all(customers, buyer)
    return sid, buyers, operator


async def checkouts(api: Api, served: Served, sid: str, buyers: list[tuple[dict[str, str], str]],
                    n: int) -> dict[str, float]:
    quotes = [""] * n
    body = {"store_id": sid, "dropoff": {"lat": 52.53, "lng": 13.41}, "address": "Torstr. 1, Berlin",
            "lines": [{"item_id": "itm_burger", "quantity": 1}]}

    async def quote(i: int) -> None:
        quotes[i] = (await api.call("POST", "/v1/quotes", buyers[i % len(buyers)][0], body))["id"]

    await run_all(n, quote)
    refused: list[int] = []

    async def checkout(i: int) -> None:
        h, pm = buyers[i % len(buyers)]
        async with api.session.post(f"{api.base}/v1/orders", json={"quote_id": quotes[i], "payment_method_id": pm},
                                    headers={**h, "Idempotency-Key": f"co-{served.port}-{i}"}) as r:
            await r.read()
            if r.status != 201:
                refused.append(r.status)

    cpu0 = served.cpu_seconds()
    elapsed = await run_all(n, checkout)
    cpu = served.cpu_seconds() - cpu0
    done = n - len(refused)
    return {"checkouts_per_s": done / elapsed, "ms_per_checkout": 1000 * cpu / max(done, 1), "refused": len(refused)}


async def payments(api: Api, served: Served, buyers: list[tuple[dict[str, str], str]], operator: dict[str, str],
                   pairs: int) -> dict[str, float]:
    async def pair(i: int) -> None:
        h, pm = buyers[-1 - (i % len(buyers))]  # other customers than the checkouts' first ones
        intent = await api.call("POST", "/v1/payment_intents", h,
                                {"amount": 2500, "currency": "EUR", "payment_method": pm, "confirm": True})
        await api.call("POST", f"/v1/payment_intents/{intent['id']}/capture", operator, {})

    cpu0 = served.cpu_seconds()
    elapsed = await run_all(pairs, pair)
    cpu = served.cpu_seconds() - cpu0
    return {"requests_per_s": 2 * pairs / elapsed, "ms_per_request": 1000 * cpu / (2 * pairs)}


# -- one configuration ----------------------------------------------------------------------------------------

async def configuration(args: argparse.Namespace, workers: int, store: str, redis_url: str, pg_url: str,
                        template: str, folder: Path) -> dict[str, Any]:
    import asyncpg

    from fooddispatch.config import Settings
    from fooddispatch.identity import IdentityService, Tokens
    from fooddispatch.livestore import close_redis, open_redis

    name = f"scale_{store}_{workers}"
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()
    db_url = with_database(pg_url, name)
    cluster = store == "cluster"
    live = open_redis(Settings(redis_url=redis_url, redis_cluster=cluster))
    await live.flushall()
    await close_redis(live)
    env = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "FOODDISPATCH_REDIS_CLUSTER": str(cluster).lower(),
           "FOODDISPATCH_DATA_DIR": str(folder / name), "FOODDISPATCH_JWT_SECRET": SECRET,
           "FOODDISPATCH_VAULT_KEY": VAULT_KEY, "FOODDISPATCH_LOG_LEVEL": "warning", "FOODDISPATCH_LOG_JSON": "true",
           "FOODDISPATCH_RATE_LIMIT_PER_MINUTE": "10000000", "FOODDISPATCH_RATE_LIMIT_BURST": "1000000",
           "FOODDISPATCH_TENANT_RATE_LIMIT_PER_MINUTE": "100000000",
           "FOODDISPATCH_TENANT_RATE_LIMIT_BURST": "10000000", "FOODDISPATCH_DB_POOL_MAX": "20",
           "FOODDISPATCH_TRACKING_STALE_SECONDS": "3600"}
    served = Served(workers, env, folder)
    try:
        await served.ready()
        out: dict[str, Any] = {"workers": workers, "store": store}
        out["ingest"] = await asyncio.to_thread(ingest, served, args.couriers, args.seconds)
        pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
        try:
            identity = IdentityService(pool, Tokens({"k1": SECRET}, "k1", 3600))
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:
                api = Api(session, served.base)
                sid, buyers, operator = await shop(api, identity, args.checkouts + args.pairs)
                out["checkout"] = await checkouts(api, served, sid, buyers, args.checkouts)
                out["payments"] = await payments(api, served, buyers, operator, args.pairs)
        finally:
            await pool.close()
        return out
    finally:
        served.stop()


def render(results: list[dict[str, Any]], load: str) -> str:
    lines = [f"machine: {platform.machine()}, {os.cpu_count()} cores, load average before the run {load}; the "
             "load generator, PostgreSQL and Valkey share these cores with the server",
             "| store | workers | stored fixes/s | p99 frame->ack (sat. / half) | µs CPU per fix | checkouts/s | "
             "ms CPU per checkout | payment requests/s | ms CPU per payment request |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        i, c, p = r["ingest"], r["checkout"], r["payments"]
        lines.append(f"| {r['store']} | {r['workers']} | {i['fixes_per_s']:,.0f} | {i['p99_ms']:.0f} / "
                     f"{i['p99_half_ms']:.0f} ms | {i['us_per_fix']:.1f} | {c['checkouts_per_s']:.0f} | "
                     f"{c['ms_per_checkout']:.2f} | {p['requests_per_s']:.0f} | {p['ms_per_request']:.2f} |")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    import asyncpg

    from fooddispatch.embedded import start_postgres, start_redis
    from fooddispatch.migrate import apply_migrations
    from fooddispatch.valkey_cluster import start_cluster

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="fd-scale-") as tmp:
        folder = Path(tmp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pg = start_postgres(folder / "pg")
        single = start_redis(folder / "redis") if "single" in args.stores else None
        cluster = start_cluster(folder / "cluster", 3) if "cluster" in args.stores else None
        results = []
        try:
            conn = await asyncpg.connect(pg.url)
            try:
                await conn.execute('CREATE DATABASE "scale_template"')
            finally:
                await conn.close()
            conn = await asyncpg.connect(with_database(pg.url, "scale_template"))
            try:
                await apply_migrations(conn)
            finally:
                await conn.close()
            for store in args.stores:
                url = single.url if store == "single" and single else cluster.url if cluster else ""
                for workers in args.workers:
                    result = await configuration(args, workers, store, url, pg.url, "scale_template", folder)
                    results.append(result)
                    print(json.dumps(result), flush=True)
        finally:
            if cluster:
                cluster.stop()
            if single:
                single.stop()
            pg.stop()
    print(render(results, load))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--couriers", type=int, default=3000,
                        help="sockets; each may send 20 frames/s (the courier socket's limit): enough to saturate")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per measured ingest phase")
    parser.add_argument("--checkouts", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=150, help="payment intents created+confirmed, then captured")
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    parser.add_argument("--stores", type=lambda s: s.split(","), default=["single", "cluster"])
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
