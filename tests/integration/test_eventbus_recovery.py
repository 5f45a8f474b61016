"""Redis loses the stream (FLUSHALL, a deleted group, a deleted stream, trimmed entries): consumers heal,
the relay publishes again from the outbox, and every group handles every event exactly once."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg
import redis.asyncio as aioredis

from kernel import eventstore
from kernel.eventbus import OutboxRelay, StreamConsumer
from kernel.outbox import Event, encode_event, make_event, write_events

STREAM = "fdtest:events"
GROUPS = ("orders", "dispatch")
TYPES = ("order.placed", "order.accepted")


class Seen:
    """What each group's handler ran for, in commit order (a handler that rolls back leaves nothing)."""

    def __init__(self) -> None:
        self.by_group: dict[str, collections.Counter[str]] = {g: collections.Counter() for g in GROUPS}

    def handler(self, group: str) -> Callable[[asyncpg.Connection, Event], Awaitable[None]]:
        async def handle(conn: asyncpg.Connection, event: Event) -> None:
            self.by_group[group][event.id] += 1

        return handle

    def complete(self, ids: set[str]) -> bool:
        return all(set(c) >= ids for c in self.by_group.values())


async def write(db: asyncpg.Pool, n: int, type_: str = "order.placed") -> list[str]:
    events = [make_event(type_, {"n": i}, f"ord_{i}") for i in range(n)]
    async with db.acquire() as conn, conn.transaction():
        await write_events(conn, events)
    return [e.id for e in events]


def consumers(db: asyncpg.Pool, redis: aioredis.Redis, seen: Seen, **options: object) -> list[StreamConsumer]:
    return [StreamConsumer(db, redis, STREAM, g, "c1", {t: seen.handler(g) for t in TYPES}, block_ms=10,
                           **options) for g in GROUPS]  # type: ignore[arg-type]


async def start(group_consumers: list[StreamConsumer]) -> None:
    for c in group_consumers:
        await c.register()
        await c.ensure_group()


async def until(condition: Callable[[], Awaitable[bool]], what: str, seconds: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await condition():
        assert loop.time() < deadline, f"gave up waiting: {what}"
        await asyncio.sleep(0.02)


async def drive(relay: OutboxRelay, group_consumers: list[StreamConsumer], seen: Seen, ids: set[str]) -> None:
    """Relay steps, settling and polls, by hand, until every group handled every event."""

    async def done() -> bool:
        await relay.step()
        await relay.settle()
        for c in group_consumers:
            await c.poll_once()
        return seen.complete(ids)

    await until(done, "every group handles every event")


def assert_exactly_once(seen: Seen, ids: set[str]) -> None:
    for group, counts in seen.by_group.items():
        assert set(counts) == ids, f"{group} missed {len(ids - set(counts))} events"
        assert max(counts.values()) == 1, f"{group} handled an event twice"


async def test_consumers_and_relay_recover_from_flushall_mid_stream(db, redis) -> None:
    seen = Seen()
    group_consumers = consumers(db, redis, seen, count=10)
    await start(group_consumers)
    relay = OutboxRelay(db, redis, STREAM, batch_size=25)
    ids = set(await write(db, 60))
    await relay.step()  # 25 published
    for c in group_consumers:
        await c.poll_once()  # 10 handled by each group
    await relay.step()  # 25 more published, unread
    await redis.flushall()  # stream, groups and epoch gone
    ids |= set(await write(db, 20))  # and the checkouts go on
    await drive(relay, group_consumers, seen, ids)
    assert_exactly_once(seen, ids)
    assert all(c.groups_recreated >= 1 for c in group_consumers)
    assert relay.republished > 0


async def test_a_deleted_group_is_created_again_and_reads_what_the_stream_holds(db, redis) -> None:
    seen = Seen()
    group_consumers = consumers(db, redis, seen, count=10)
    await start(group_consumers)
    relay = OutboxRelay(db, redis, STREAM)
    ids = set(await write(db, 40))
    await relay.step()
    await group_consumers[0].poll_once()
    await redis.xgroup_destroy(STREAM, "orders")
    ids |= set(await write(db, 10))
    await drive(relay, group_consumers, seen, ids)
    assert_exactly_once(seen, ids)
    assert group_consumers[0].groups_recreated == 1


async def test_a_deleted_stream_is_published_again_from_the_outbox(db, redis) -> None:
    seen = Seen()
    group_consumers = consumers(db, redis, seen, count=10)
    await start(group_consumers)
    relay = OutboxRelay(db, redis, STREAM)
    ids = set(await write(db, 40))
    await relay.step()
    await group_consumers[1].poll_once()
    await redis.delete(STREAM)  # the epoch key stays: only the stream's absence tells
    await drive(relay, group_consumers, seen, ids)
    assert_exactly_once(seen, ids)


async def test_repeated_flushall_during_a_burst_loses_no_event(db, redis) -> None:
    """The issue's scenario: a burst of checkouts while Redis is flushed again and again, with the
    relay, the settling job and two groups' consumers running as the app runs them."""
    seen = Seen()
    group_consumers = consumers(db, redis, seen)
    await start(group_consumers)
    relay = OutboxRelay(db, redis, STREAM, check_interval=0.05)
    ids: set[str] = set()
    flushes = 0

    async def checkouts() -> None:
        for _ in range(60):
            ids.update(await write(db, 1, "order.placed"))
            ids.update(await write(db, 1, "order.accepted"))
            await asyncio.sleep(0.02)

    async def flusher(stop: asyncio.Event) -> None:
        nonlocal flushes
        while not stop.is_set():
            await asyncio.sleep(0.04)
            await redis.flushall()
            flushes += 1

    async def settler() -> None:
        while True:
            await relay.settle()
            await asyncio.sleep(0.1)

    running = [asyncio.create_task(relay.run()), asyncio.create_task(settler())]
    running += [asyncio.create_task(c.run()) for c in group_consumers]
    stop = asyncio.Event()
    flushing = asyncio.create_task(flusher(stop))
    try:
        await checkouts()
        stop.set()
        await flushing

        async def complete() -> bool:
            return seen.complete(ids)

        await until(complete, "every group handles every event after the flushes")
        await asyncio.sleep(0.5)  # and nothing is handled a second time afterwards
    finally:
        stop.set()
        for task in running:
            task.cancel()
        await asyncio.gather(*running, flushing, return_exceptions=True)
    assert flushes >= 20
    assert len(ids) == 120
    assert_exactly_once(seen, ids)


async def test_an_event_trimmed_before_a_group_read_it_is_published_again_when_overdue(db, redis) -> None:
    """A loss the epoch cannot see (trimming, a restart from an older snapshot): the safety net."""
    seen = Seen()
    group_consumers = consumers(db, redis, seen)
    await start(group_consumers)
    relay = OutboxRelay(db, redis, STREAM, redeliver_after=0.0, clock_margin=0.0)
    lost = set(await write(db, 5))
    await relay.step()
    await redis.xtrim(STREAM, maxlen=0, approximate=False)  # gone before either group read them
    later = set(await write(db, 5))
    await asyncio.sleep(0.01)
    await relay.step()
    for c in group_consumers:
        await c.poll_once()  # the later ones: each group reads past the lost ones
    assert seen.complete(later) and not seen.complete(lost)
    await relay.settle()
    assert await relay.redeliver_overdue() == 5
    for c in group_consumers:
        await c.poll_once()
    await relay.settle()
    assert_exactly_once(seen, lost | later)
    assert await relay.redeliver_overdue() == 0  # settled now
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE settled_at IS NULL") == 0


async def test_a_lagging_group_is_not_sent_duplicates(db, redis) -> None:
    seen = Seen()
    group_consumers = consumers(db, redis, seen)
    await start(group_consumers)
    relay = OutboxRelay(db, redis, STREAM, redeliver_after=0.0, clock_margin=0.0)
    ids = set(await write(db, 5))
    await relay.step()
    await group_consumers[0].poll_once()  # orders reads; dispatch has not yet: its entries still wait
    await relay.settle()
    assert await relay.redeliver_overdue() == 0
    assert await redis.xlen(STREAM) == 5
    await group_consumers[1].poll_once()
    assert_exactly_once(seen, ids)


async def test_settled_events_are_pruned_after_the_retention_with_their_records(db, redis) -> None:
    seen = Seen()
    group_consumers = consumers(db, redis, seen)
    await start(group_consumers)
    relay = OutboxRelay(db, redis, STREAM, retention=timedelta(milliseconds=300), group_expiry=timedelta(hours=1))
    handled = await write(db, 10)
    await write(db, 3, "order.ready")  # no group handles it: settled as soon as it is published
    await relay.step()
    for c in group_consumers:
        await c.poll_once()
    parked = make_event("order.placed", {"n": 99}, "ord_99")
    async with db.acquire() as conn, conn.transaction():
        await write_events(conn, [parked])
    await relay.step()
    async with db.acquire() as conn:
        await eventstore.record_failure(conn, "orders", parked, encode_event(parked).decode(), "boom", 1)
    await group_consumers[1].poll_once()  # dispatch handles it; orders parked it
    waiting = await write(db, 2)  # published, not handled yet: must stay
    await relay.step()
    assert await relay.settle() == 14
    await asyncio.sleep(0.4)
    assert await relay.prune() == 13
    left = {r["event_id"] for r in await db.fetch("SELECT event_id FROM outbox")}
    assert left == {*waiting, parked.id}  # unsettled, and named by a dead letter (a replay needs it)
    assert await db.fetchval("SELECT count(*) FROM processed_events WHERE event_id = ANY($1::text[])",
                             handled) == 0
    assert await db.fetchval("SELECT count(*) FROM processed_events WHERE event_id = $1", parked.id) == 1
    assert await redis.xlen(STREAM) == 0  # the stream is trimmed to the same window first
    # Consumers idle that long with nothing pending (processes long gone) leave their groups.
    assert [len(await redis.xinfo_consumers(STREAM, g)) for g in ("orders", "dispatch")] == [0, 0]
