"""A handler that keeps failing: retried with back-off, parked as a dead letter, the next events still
handled, and a replay after the fix handles it once. A dependency outage is not the event's fault."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

import asyncpg

from kernel import eventstore
from kernel.eventbus import OutboxRelay, StreamConsumer
from kernel.outbox import Event, make_event, write_events

STREAM = "fdtest:events"


async def write(db: asyncpg.Pool, *kinds: str) -> list[Event]:
    events = [make_event("order.placed", {"kind": kind}, f"ord_{i}") for i, kind in enumerate(kinds)]
    async with db.acquire() as conn, conn.transaction():
        await write_events(conn, events)
    return events


async def until(condition: Callable[[], Awaitable[bool]], what: str, seconds: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await condition():
        assert loop.time() < deadline, f"gave up waiting: {what}"


class Orders:
    """A handler that fails on `poison` events until fixed."""

    def __init__(self) -> None:
        self.fixed = False
        self.attempts: collections.Counter[str] = collections.Counter()
        self.handled: list[str] = []

    async def on_placed(self, conn: asyncpg.Connection, event: Event) -> None:
        self.attempts[event.id] += 1
        await conn.execute("SELECT 1")
        if event.data["kind"] == "poison" and not self.fixed:
            raise KeyError("courier_id")  # a bug, not an outage
        self.handled.append(event.id)


async def test_a_poison_event_is_retried_parked_and_replayed_while_the_rest_flows(db, redis) -> None:
    orders, other = Orders(), Orders()
    consumer = StreamConsumer(db, redis, STREAM, "orders", "c1", {"order.placed": orders.on_placed},
                              block_ms=10, max_attempts=3, retry_backoff=0.05)
    bystander = StreamConsumer(db, redis, STREAM, "dispatch", "c1", {"order.placed": other.on_placed},
                               block_ms=10)
    other.fixed = True  # this group's handler has no bug
    for c in (consumer, bystander):
        await c.register()
        await c.ensure_group()
    relay = OutboxRelay(db, redis, STREAM)
    before, poison, after = await write(db, "fine", "poison", "fine")
    await relay.step()
    await consumer.poll_once()
    # The events on either side of the poison one are handled at once; the poison one waits for a retry.
    assert orders.handled == [before.id, after.id]
    assert (await redis.xpending(STREAM, "orders"))["pending"] == 1
    later = (await write(db, "fine"))[0]
    await relay.step()

    async def parked() -> bool:
        await consumer.poll_once()
        return consumer.parked == 1

    await until(parked, "the poison event is parked")
    assert orders.attempts[poison.id] == 3
    assert later.id in orders.handled
    assert (await redis.xpending(STREAM, "orders"))["pending"] == 0  # acknowledged: the group goes on
    letters = await eventstore.dead_letters(db)
    assert [(d.group, d.event_id, d.event_type, d.attempts) for d in letters] == [
        ("orders", poison.id, "order.placed", 3)]
    assert "KeyError" in letters[0].error and letters[0].parked_at is not None
    assert letters[0].first_failed_at < letters[0].last_failed_at
    # Parked counts as had: the event settles, and is not published again by the safety net.
    await bystander.poll_once()
    await relay.settle()
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE settled_at IS NULL") == 0

    orders.fixed = True
    replayed = await eventstore.replay(db, letters[0].id)
    assert replayed is not None and replayed.event_id == poison.id
    assert await eventstore.replay(db, letters[0].id) is None  # once
    await relay.step()

    async def handled() -> bool:
        await consumer.poll_once()
        await bystander.poll_once()
        return poison.id in orders.handled

    await until(handled, "the replayed event is handled")
    assert orders.handled.count(poison.id) == 1
    assert sorted(other.handled) == sorted(e.id for e in (before, poison, after, later))  # none twice
    assert await eventstore.dead_letters(db) == []
    await relay.settle()
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE settled_at IS NULL") == 0


async def test_a_dependency_outage_is_retried_without_dead_lettering(db, redis) -> None:
    failures = 3
    handled: list[str] = []

    async def flaky_dependency(conn: asyncpg.Connection, event: Event) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise ConnectionResetError("the payments processor went away")
        handled.append(event.id)

    consumer = StreamConsumer(db, redis, STREAM, "orders", "c1", {"order.placed": flaky_dependency},
                              block_ms=10, max_attempts=2, retry_backoff=0.01)
    await consumer.register()
    await consumer.ensure_group()
    events = await write(db, "fine", "fine")
    await OutboxRelay(db, redis, STREAM).publish_batch()
    runner = asyncio.create_task(consumer.run())
    try:
        async def both() -> bool:
            await asyncio.sleep(0.05)
            return len(handled) == 2

        await until(both, "both events handled once the dependency is back")
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert handled == [e.id for e in events]
    assert await db.fetchval("SELECT count(*) FROM dead_letters") == 0
    assert (await redis.xpending(STREAM, "orders"))["pending"] == 0


async def test_a_handler_error_caused_by_a_lost_connection_is_transient() -> None:
    from kernel.errors import DomainError
    from kernel.eventbus import is_transient

    class Unavailable(DomainError):
        code, status = "dependency_unavailable", 503

    try:
        try:
            raise ConnectionRefusedError("redis")
        except OSError as exc:
            raise ValueError("could not publish the tablet frame") from exc
    except ValueError as wrapped:
        assert is_transient(wrapped)
    assert is_transient(Unavailable("payments down"))
    assert not is_transient(KeyError("courier_id"))
    assert not is_transient(asyncpg.UniqueViolationError("duplicate"))
