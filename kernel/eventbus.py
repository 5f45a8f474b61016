"""Outbox relay and stream consumers.

Relay: moves unpublished outbox rows to one Redis Stream, oldest first, in
batches. Rows are claimed with `FOR UPDATE SKIP LOCKED`, published with one
pipelined XADD per batch, then marked published in the same transaction. A
crash between XADD and COMMIT publishes the batch again (at-least-once); the
rows stay locked meanwhile, so two relays never publish the same batch at once.

Ordering: one relay publishes in `seq` order. Two relays may interleave
batches, and a transaction that commits late publishes late; consumers must
not assume a global order (events carry `occurred_at`).

Consumer: a consumer group on the stream. The handler runs inside a Postgres
transaction that also records (consumer, event_id) in `processed_events`; a
redelivered event finds its row and is skipped. XACK happens only after that
transaction commits, so a crash mid-handler leaves the entry pending, and
`XAUTOCLAIM` hands it to a live consumer later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

import asyncpg
import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from kernel.outbox import Event, decode_event

log = logging.getLogger(__name__)

EventHandler = Callable[[asyncpg.Connection, Event], Awaitable[None]]


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        stream: str,
        *,
        batch_size: int = 500,
        idle_interval: float = 0.05,
        maxlen: int = 1_000_000,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._stream = stream
        self._batch_size = batch_size
        self._idle = idle_interval
        self._maxlen = maxlen

    async def publish_batch(self) -> int:
        """Publish one batch; returns how many events went out."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT seq, payload::text AS payload FROM outbox WHERE published_at IS NULL "
                "ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch_size,
            )
            if not rows:
                return 0
            pipe = self._redis.pipeline(transaction=False)
            for row in rows:
                pipe.xadd(self._stream, {"e": row["payload"]}, maxlen=self._maxlen, approximate=True)
            await pipe.execute()
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])",
                [r["seq"] for r in rows],
            )
            return len(rows)

    async def lag(self) -> int:
        async with self._pool.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")

    async def run(self) -> None:
        while True:
            try:
                published = await self.publish_batch()
            except (OSError, asyncpg.PostgresError, aioredis.RedisError) as exc:
                log.warning("outbox relay batch failed, retrying: %s", exc)
                published = 0
                await asyncio.sleep(1.0)
            if published < self._batch_size:
                await asyncio.sleep(self._idle)


class StreamConsumer:
    """One member of a consumer group; `handlers` maps event type to handler."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        stream: str,
        group: str,
        consumer: str,
        handlers: dict[str, EventHandler],
        *,
        block_ms: int = 200,
        claim_idle_ms: int = 30_000,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._stream = stream
        self._group = group
        self._consumer = consumer
        self._handlers = handlers
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms

    async def ensure_group(self) -> None:
        try:
            # "0": a new group also sees events published before it existed.
            await self._redis.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def handle(self, entry_id: bytes | str, fields: dict) -> None:
        raw = fields.get(b"e") or fields.get("e")
        try:
            if raw is None:
                raise ValueError("the entry has no event field")
            event = decode_event(raw)
        except (ValueError, msgspec.DecodeError) as exc:
            # A poison entry must not stop the group: park it where an operator can look, and move on.
            log.error("consumer %s: stream entry %r is not an event (%s); moved to %s.dead",
                      self._group, entry_id, exc, self._stream)
            await self._redis.xadd(f"{self._stream}.dead", {**fields, "group": self._group, "error": str(exc)[:500]},
                                   maxlen=10_000, approximate=True)
            await self._redis.xack(self._stream, self._group, entry_id)
            return
        handler = self._handlers.get(event.type)
        if handler is not None:
            async with self._pool.acquire() as conn, conn.transaction():
                fresh = await conn.fetchval(
                    "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) "
                    "ON CONFLICT DO NOTHING RETURNING true",
                    self._group,
                    event.id,
                )
                if fresh:
                    await handler(conn, event)
        await self._redis.xack(self._stream, self._group, entry_id)

    async def _entries(self, response: Iterable) -> list[tuple]:
        out = []
        for _stream, entries in response or []:
            out.extend(entries)
        return out

    async def poll_once(self) -> int:
        """Handle what is pending for this consumer, then new entries. Returns the count handled."""
        handled = 0
        # Entries abandoned by a dead consumer come back after claim_idle_ms.
        claimed = await self._redis.xautoclaim(
            self._stream, self._group, self._consumer, self._claim_idle_ms, "0-0", count=100
        )
        for entry_id, fields in claimed[1]:
            if fields:
                await self.handle(entry_id, fields)
                handled += 1
        response = await self._redis.xreadgroup(
            self._group, self._consumer, {self._stream: ">"}, count=100, block=self._block_ms
        )
        for entry_id, fields in await self._entries(response):
            await self.handle(entry_id, fields)
            handled += 1
        return handled

    async def run(self) -> None:
        await self.ensure_group()
        while True:
            try:
                await self.poll_once()
            except (OSError, asyncpg.PostgresError, aioredis.RedisError) as exc:
                log.warning("consumer %s/%s failed, retrying: %s", self._group, self._consumer, exc)
                await asyncio.sleep(1.0)
