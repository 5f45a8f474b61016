"""A consumer whose process is gone (its liveness lock is free) leaves entries pending: the group's
next poll on a live process takes them over at once, not after `claim_idle_ms`; a live consumer's
pending entries stay its own."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis

from fooddispatch.instance import consumer_name, instance_of
from fooddispatch.liveness import ProcessLiveness, gone_instances
from kernel.eventbus import OutboxRelay, StreamConsumer
from kernel.outbox import Event, make_event, write_events

STREAM = "fdtest:gone:events"
GROUP = "orders"


async def _publish(db: asyncpg.Pool, redis: aioredis.Redis, n: int) -> list[str]:
    events = [make_event("order.placed", {"n": i}, f"ord_{i}") for i in range(n)]
    async with db.acquire() as conn, conn.transaction():
        await write_events(conn, events)
    await OutboxRelay(db, redis, STREAM).step()
    return [e.id for e in events]


async def test_entries_left_by_a_gone_process_are_taken_over_at_once_and_a_live_ones_are_not(
        db, redis, database_url) -> None:
    handled: list[str] = []

    async def handle(conn: asyncpg.Connection, event: Event) -> None:
        handled.append(event.id)

    dead, alive = ProcessLiveness(database_url), ProcessLiveness(database_url)
    await dead.start()
    await alive.start()
    try:
        async def gone(names: list[str]) -> set[str]:
            ids = {n: instance_of(n) for n in names}
            found = await gone_instances(db, [i for i in ids.values() if i is not None])
            return {n for n, i in ids.items() if i in found}

        me = StreamConsumer(db, redis, STREAM, GROUP, consumer_name(10**12), {"order.placed": handle},
                            block_ms=10, claim_idle_ms=600_000, gone_consumers=gone)
        await me.register()
        await me.ensure_group()
        ids = await _publish(db, redis, 4)
        # Two other processes read two entries each and never acknowledge them.
        for owner in (dead, alive):
            read = await redis.xreadgroup(GROUP, consumer_name(owner.instance_id), {STREAM: ">"}, count=2)
            assert len(read[0][1]) == 2
        await dead.stop()  # the process dies: its lock is free at once

        await me.poll_once()
        assert sorted(handled) == sorted(ids[:2])  # the dead one's, without waiting 600 s
        pending = await redis.xpending(STREAM, GROUP)
        assert pending["pending"] == 2  # the live one's entries stay with it
        await me.poll_once()
        assert sorted(handled) == sorted(ids[:2])
    finally:
        await alive.stop()
        await dead.stop()
