"""The outbox: only committed events are published; a relay crash loses nothing;
consumers see each event once even when it is delivered twice."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import redis.asyncio as aioredis

from kernel.eventbus import OutboxRelay, StreamConsumer
from kernel.outbox import Event, decode_event, write_event

STREAM = "fdtest:events"


async def _published(redis: aioredis.Redis) -> list[Event]:
    entries = await redis.xrange(STREAM)
    return [decode_event(fields[b"e"]) for _id, fields in entries]


async def test_relay_publishes_committed_events_in_order_and_none_from_rollbacks(db, redis):
    async with db.acquire() as conn:
        async with conn.transaction():
            first = await write_event(conn, "order.placed", {"n": 1}, "ord_1")
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await write_event(conn, "order.placed", {"n": 2}, "ord_2")
                raise RuntimeError("the order insert failed")
        async with conn.transaction():
            third = await write_event(conn, "order.accepted", {"n": 3}, "ord_1")
    relay = OutboxRelay(db, redis, STREAM)
    assert await relay.publish_batch() == 2
    assert await relay.publish_batch() == 0
    published = await _published(redis)
    assert [e.id for e in published] == [first.id, third.id]
    assert await relay.lag() == 0


async def test_event_survives_a_relay_that_dies_before_marking_it_published(db, redis, database_url):
    async with db.acquire() as conn:
        event = await write_event(conn, "order.placed", {"n": 1})
    # A relay that publishes to Redis and then loses its database connection before COMMIT.
    conn = await asyncpg.connect(database_url)
    tx = conn.transaction()
    await tx.start()
    rows = await conn.fetch("SELECT seq, payload::text AS p FROM outbox WHERE published_at IS NULL FOR UPDATE")
    await redis.xadd(STREAM, {"e": rows[0]["p"]})
    conn.terminate()  # the process dies: no COMMIT
    await asyncio.sleep(0.1)
    relay = OutboxRelay(db, redis, STREAM)
    assert await relay.publish_batch() == 1  # published again: at-least-once
    published = await _published(redis)
    assert [e.id for e in published] == [event.id, event.id]
    # ... and a consumer handles it once.
    handled: list[str] = []

    async def on_placed(conn: asyncpg.Connection, ev: Event) -> None:
        handled.append(ev.id)

    consumer = StreamConsumer(db, redis, STREAM, "test-group", "c1", {"order.placed": on_placed}, block_ms=10)
    await consumer.ensure_group()
    while await consumer.poll_once():
        pass
    assert handled == [event.id]
    pending = await redis.xpending(STREAM, "test-group")
    assert pending["pending"] == 0


async def test_consumer_does_not_ack_when_its_handler_fails_and_retries_later(db, redis):
    async with db.acquire() as conn:
        event = await write_event(conn, "order.ready", {"n": 1})
    await OutboxRelay(db, redis, STREAM).publish_batch()
    attempts: list[str] = []

    async def flaky(conn: asyncpg.Connection, ev: Event) -> None:
        attempts.append(ev.id)
        await conn.execute("CREATE TEMP TABLE IF NOT EXISTS side_effect (x int)")
        if len(attempts) == 1:
            raise RuntimeError("handler crashed mid-way")

    consumer = StreamConsumer(db, redis, STREAM, "g2", "c1", {"order.ready": flaky}, block_ms=10,
                              retry_backoff=0.05)
    await consumer.ensure_group()
    await consumer.poll_once()  # the failure is the event's: recorded, the entry stays pending
    assert (await redis.xpending(STREAM, "g2"))["pending"] == 1
    # The entry is handled again after its back-off; the failed attempt left no processed_events row.
    deadline = asyncio.get_running_loop().time() + 30
    while len(attempts) < 2 and asyncio.get_running_loop().time() < deadline:
        await consumer.poll_once()
    assert attempts == [event.id, event.id]
    assert (await redis.xpending(STREAM, "g2"))["pending"] == 0
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM processed_events WHERE event_id = $1", event.id) == 1
        assert await conn.fetchval("SELECT count(*) FROM dead_letters") == 0  # the failure record went


async def test_two_relays_together_publish_each_event_once(db, redis):
    async with db.acquire() as conn:
        for n in range(300):
            await write_event(conn, "order.placed", {"n": n})
    relays = [OutboxRelay(db, redis, STREAM, batch_size=50) for _ in range(2)]

    async def drain(relay: OutboxRelay) -> None:
        while await relay.publish_batch():
            pass

    await asyncio.gather(*(drain(r) for r in relays))
    published = await _published(redis)
    assert len(published) == 300
    assert len({e.id for e in published}) == 300


async def test_a_poison_entry_is_parked_and_the_consumer_goes_on(db, redis):
    await redis.xadd(STREAM, {"e": b"{not json"})
    await redis.xadd(STREAM, {"something": "else"})
    async with db.acquire() as conn:
        event = await write_event(conn, "order.ready", {"n": 2})
    await OutboxRelay(db, redis, STREAM).publish_batch()
    seen: list[str] = []

    async def record(conn: asyncpg.Connection, ev: Event) -> None:
        seen.append(ev.id)

    consumer = StreamConsumer(db, redis, STREAM, "g3", "c1", {"order.ready": record}, block_ms=10)
    await consumer.ensure_group()
    assert await consumer.poll_once() == 3
    assert seen == [event.id]
    assert (await redis.xpending(STREAM, "g3"))["pending"] == 0
    parked = await redis.xrange(f"{STREAM}.dead")
    assert [fields[b"group"] for _, fields in parked] == [b"g3", b"g3"]
    assert parked[0][1][b"e"] == b"{not json"


async def test_events_written_together_are_published_in_the_order_given(db, redis):
    from kernel.outbox import make_event, write_events

    batch = [make_event("courier.moved", {"n": n}, aggregate_id=None if n % 2 else f"cou_{n}") for n in range(50)]
    async with db.acquire() as conn, conn.transaction():
        await write_events(conn, batch)
    await OutboxRelay(db, redis, STREAM).publish_batch()
    published = await _published(redis)
    assert [e.id for e in published] == [e.id for e in batch]
    assert [e.data for e in published] == [{"n": n} for n in range(50)]
    assert published[2].aggregate_id == "cou_2" and published[1].aggregate_id is None
