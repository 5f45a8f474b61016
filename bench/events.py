"""Event pipeline benchmark: the outbox relay's batch path and a consumer group's hot path (about a minute).

    .venv/bin/python bench/events.py [--events 5000] [--groups 3] [--rounds 3]

Embedded PostgreSQL and Redis, started here; everything in this one process (no HTTP). Per round:

1. relay: `--events` events are written to the outbox (not timed), then `OutboxRelay.publish_batch` is
   called until the outbox is drained: events/s from outbox to stream. Baseline, same run: the same
   payloads pipelined to a second stream with XADD in batches of 500 (Redis alone, no PostgreSQL).
   Also this process's CPU per event (`time.process_time`), which other load on the machine disturbs less
   than the rates.
2. consumers: `--groups` consumer groups, one `StreamConsumer` each with a handler for every event type
   that does nothing, all polling together until every group has handled every event: events/s per group
   and for all groups together. Baseline, same run: one transaction per event that records it
   (`INSERT INTO processed_events`), `--groups` connections at once (PostgreSQL alone, no Redis).

It uses only `OutboxRelay(pool, redis, stream).publish_batch()` and
`StreamConsumer(pool, redis, stream, group, consumer, handlers).ensure_group() / poll_once()`, so the same
script measures an older tree too (`PYTHONPATH=<tree> python <tree>/bench/events.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import redis.asyncio as aioredis

TYPES = ("order.placed", "order.accepted", "order.ready", "order.picked_up", "order.delivered")


async def write_outbox(pool: asyncpg.Pool, n: int) -> None:
    from kernel.outbox import make_event, write_events

    for start in range(0, n, 1000):
        batch = [make_event(TYPES[i % len(TYPES)], {"order_id": f"ord_{i}", "n": i}, f"ord_{i}")
                 for i in range(start, min(n, start + 1000))]
        async with pool.acquire() as conn, conn.transaction():
            await write_events(conn, batch)


async def relay_round(pool: asyncpg.Pool, redis: aioredis.Redis, stream: str, n: int) -> tuple[float, float]:
    """Events/s, and this process's CPU µs per event."""
    from kernel.eventbus import OutboxRelay

    await write_outbox(pool, n)
    relay = OutboxRelay(pool, redis, stream)
    started, cpu = time.perf_counter(), time.process_time()
    published = 0
    while published < n:
        published += await relay.publish_batch()
    return n / (time.perf_counter() - started), (time.process_time() - cpu) / n * 1e6


async def xadd_baseline(pool: asyncpg.Pool, redis: aioredis.Redis, stream: str, n: int) -> float:
    rows = await pool.fetch("SELECT payload::text AS p FROM outbox ORDER BY seq DESC LIMIT $1", n)
    started = time.perf_counter()
    for start in range(0, len(rows), 500):
        pipe = redis.pipeline(transaction=False)
        for row in rows[start:start + 500]:
            pipe.xadd(stream, {"e": row["p"]}, maxlen=1_000_000, approximate=True)
        await pipe.execute()
    return len(rows) / (time.perf_counter() - started)


class Groups:
    """`groups` consumer groups with a handler that only counts, created (and polled once, empty) before
    the relay publishes: what a running app's consumers look like when a burst arrives."""

    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, stream: str, groups: int, tag: str) -> None:
        from kernel.eventbus import StreamConsumer

        self.counts = [0] * groups

        def handler_for(g: int):
            async def handle(conn: asyncpg.Connection, event: object) -> None:
                self.counts[g] += 1
            return handle

        self.consumers = [StreamConsumer(pool, redis, stream, f"bench-{tag}-{g}", "c1",
                                         {t: handler_for(g) for t in TYPES}, block_ms=50) for g in range(groups)]

    async def start(self) -> None:
        for consumer in self.consumers:
            await consumer.ensure_group()
            await consumer.poll_once()


async def consumer_round(consumer_groups: Groups, n: int) -> tuple[float, list[float], float]:
    consumers, counts = consumer_groups.consumers, consumer_groups.counts
    groups = len(consumers)
    finished: list[float] = [0.0] * groups
    started, cpu = time.perf_counter(), time.process_time()

    async def drain(g: int) -> None:
        while counts[g] < n:
            await consumers[g].poll_once()
        finished[g] = time.perf_counter() - started

    await asyncio.gather(*(drain(g) for g in range(groups)))
    total = time.perf_counter() - started
    return n * groups / total, [n / s for s in finished], (time.process_time() - cpu) / (n * groups) * 1e6


async def processed_baseline(pool: asyncpg.Pool, n: int, groups: int) -> float:
    ids = [f"evt_base_{i}" for i in range(n)]

    async def one_group(g: int) -> None:
        async with pool.acquire() as conn:
            for event_id in ids:
                async with conn.transaction():
                    await conn.fetchval("INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) "
                                        "ON CONFLICT DO NOTHING RETURNING true", f"base-{g}", event_id)

    started = time.perf_counter()
    await asyncio.gather(*(one_group(g) for g in range(groups)))
    return n * groups / (time.perf_counter() - started)


async def bench(args: argparse.Namespace) -> None:
    import kernel
    from fooddispatch.database import release_connection
    from fooddispatch.embedded import start_postgres, start_redis
    from fooddispatch.migrate import apply_migrations

    folder = Path(tempfile.mkdtemp(prefix="fd-bench-events-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg = start_postgres(folder / "pg")
    rd = start_redis(folder / "redis")
    try:
        conn = await asyncpg.connect(pg.url)
        await apply_migrations(conn)
        await conn.close()
        # The app's pool settings: its reset only rolls back an abandoned transaction (asyncpg's default
        # sends four statements per release, which the app does not pay).
        pool = await asyncpg.create_pool(pg.url, min_size=args.groups + 1, max_size=args.groups + 2,
                                         reset=release_connection)
        redis = aioredis.Redis.from_url(rd.url)
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}; "
              f"kernel from {Path(kernel.__file__).parent}; load {os.getloadavg()[0]:.2f}")
        relay_rates, xadd_rates, consume_rates, base_rates, relay_cpu, consume_cpu = [], [], [], [], [], []
        for r in range(args.rounds):
            stream = f"bench{r}:events"
            consumer_groups = Groups(pool, redis, stream, args.groups, str(r))
            await consumer_groups.start()
            rate, cpu = await relay_round(pool, redis, stream, args.events)
            relay_rates.append(rate)
            relay_cpu.append(cpu)
            xadd_rates.append(await xadd_baseline(pool, redis, f"bench{r}:baseline", args.events))
            total, per_group, cpu = await consumer_round(consumer_groups, args.events)
            consume_rates.append(total)
            consume_cpu.append(cpu)
            base_rates.append(await processed_baseline(pool, args.events // 4, args.groups))
            print(f"round {r + 1}: relay {relay_rates[-1]:,.0f} events/s, {relay_cpu[-1]:.0f} µs CPU each "
                  f"(XADD alone {xadd_rates[-1]:,.0f}/s); {args.groups} groups {total:,.0f} handled/s, "
                  f"{consume_cpu[-1]:.0f} µs CPU each, per group {', '.join(f'{x:,.0f}' for x in per_group)}/s "
                  f"(one txn per event alone {base_rates[-1]:,.0f}/s)")
        print(f"median: relay {statistics.median(relay_rates):,.0f} events/s = "
              f"{statistics.median(relay_rates) / statistics.median(xadd_rates):.0%} of XADD alone, "
              f"{statistics.median(relay_cpu):.0f} µs CPU per event; "
              f"consumers {statistics.median(consume_rates):,.0f} handled/s = "
              f"{statistics.median(consume_rates) / statistics.median(base_rates):.0%} of one txn per event alone, "
              f"{statistics.median(consume_cpu):.0f} µs CPU per handled event; load {os.getloadavg()[0]:.2f}")
        await redis.aclose()
        await pool.close()
    finally:
        rd.stop()
        pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
