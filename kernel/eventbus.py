"""Event delivery: outbox → relay → one Redis Stream → consumer groups. PostgreSQL is the truth.

The guarantee: every event committed to the outbox is handled by every consumer group that must see it,
once per group by event id, whatever happens to Redis meanwhile (FLUSHALL, a restart with or without
persistence, a deleted stream or group); or, if its handler keeps failing, parked as a dead letter that
an operator sees and replays. Redis only carries events; what was published, who has what, and what
failed live in PostgreSQL (`kernel.eventstore` has the SQL).

Who must see what. Each consumer registers its group with the event types it has handlers for
(`event_groups`: at start, refreshed every minute). An event must be seen by every group registered for
the stream with a handler for its type; a group silent longer than the retention drops out.

Had. A group has an event once `processed_events` holds (group, event id), written in the handler's own
transaction (the dedupe key: a redelivered event finds it and is skipped), or once the event is parked
for that group in `dead_letters`.

Relay. Unpublished outbox rows are claimed `FOR UPDATE SKIP LOCKED`, published with one pipelined XADD
per batch and marked published in the same transaction: two relays never publish the same batch at once,
and a crash between XADD and COMMIT publishes it again (at-least-once). Every second one process marks
settled (`settled_at`) the published rows every group has. Only unsettled rows, in steady state the last
second or so of events, can ever need publishing again. The relay publishes again:
1. after a loss: a key `{<stream>}:epoch` lives beside the stream, in its slot on a cluster (SETNX, with
   an EXISTS of the stream, in one round trip every 0.5 s). FLUSHALL and a Redis restart that kept
   nothing remove it, and so does a consumer that finds its group gone (a deleted stream or group); a
   deleted stream is also seen missing. The relay that puts the epoch back publishes every unsettled row
   again, oldest first, waiting for rows another relay holds (that batch may have gone into the stream
   that was lost);
2. when overdue, for losses the epoch cannot see (a restart from an older snapshot, MAXLEN trimming past
   a lagging group): a row still unsettled 60 s after its publication, once a group missing it has read
   past it (was delivered a younger entry, or everything). A group that merely lags is left to catch up.
Publishing again only ever adds duplicates to the stream, which consumers skip.

Consumers. One group per consuming package, one consumer per process. On NOGROUP (stream or group gone)
the consumer creates its group again at id 0 and carries on. Id 0 reads what the stream holds: after a
FLUSHALL, only what was published since (the relay re-fills it from the outbox); after a group was
deleted from a full stream, up to MAXLEN entries, which it skips in catch-up mode with one query per
read batch instead of one transaction per entry. On connection errors it backs off (0.2 s doubling to
5 s) and retries forever. It acknowledges after the handler's transaction commits, one XACK per batch;
an entry left pending by a transient error is read again by the same consumer, and one abandoned by a
dead process is claimed (XAUTOCLAIM, looked for every 5 s) after `claim_idle_ms`.

Failures. A transient failure (a lost connection, a timeout, a serialization failure, an error with HTTP
status 503: a dependency is down) is not the event's fault: the consumer backs off and tries the entry
again, without counting. Any other exception is: the attempt is recorded in `dead_letters` (attempts,
first and last failure, error), the entry stays pending and is retried with back-off (0.5, 1, 2, 4 s)
while the consumer goes on with the next entries, and at `max_attempts` (5) it is parked and acknowledged.
An operator lists the dead letters and replays one: the event goes back into the outbox unpublished, the
relay publishes it again, the groups that had it skip it. A stream entry that is not an event at all is
acknowledged and copied to `{stream}.dead` (there is nothing in PostgreSQL to replay).

Retention. Outbox rows settled longer than the retention (24 h) ago are deleted with their
`processed_events` rows, after the stream is trimmed to the same window (XTRIM MINID), so no entry
outlives the record that dedupes it. Rows a dead letter names stay.

Ordering: one relay publishes in `seq` order, but two relays interleave batches, a late commit publishes
late, and a retried event is handled after younger ones: consumers must not assume a global order
(events carry `occurred_at`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
import msgspec
import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from kernel import eventstore
from kernel.outbox import Event, decode_event
from kernel.relay import OutboxRelay, epoch_key
from kernel.tasks import TaskMetrics, backoff_delay, every

__all__ = ["EventHandler", "OutboxRelay", "StreamConsumer", "is_transient"]

log = logging.getLogger(__name__)

EventHandler = Callable[[asyncpg.Connection, Event], Awaitable[None]]
Entry = tuple[Any, dict[Any, Any]]

_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError, redis_errors.ConnectionError, redis_errors.TimeoutError,
    redis_errors.ReadOnlyError, redis_errors.ClusterError, redis_errors.ClusterDownError,
    redis_errors.TryAgainError, redis_errors.SlotNotCoveredError,
)


def is_transient(exc: BaseException) -> bool:
    """A failure of a dependency, not of the event: a lost connection, a timeout, a serialization
    failure or deadlock, an error that answers 503; or one caused by any of these."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, _TRANSIENT) or getattr(current, "status", None) == 503:
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class _Retry:
    fields: dict[Any, Any]
    attempts: int
    due: float


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
        count: int = 100,
        claim_idle_ms: int = 30_000,
        claim_every: float = 5.0,
        max_attempts: int = 5,
        retry_backoff: float = 0.5,
        handler_timeout: float = 30.0,
        heartbeat_every: float = 60.0,
        gone_consumers: Callable[[list[str]], Awaitable[set[str]]] | None = None,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self.stream = stream
        self.group = group
        self._consumer = consumer
        self._handlers = handlers
        self._block_ms = block_ms
        self._count = count
        self._claim_idle_ms = claim_idle_ms
        self._claim_every = claim_every
        self.max_attempts = max_attempts
        self._retry_backoff = retry_backoff
        self._handler_timeout = handler_timeout
        self._heartbeat_every = heartbeat_every
        self._gone_consumers = gone_consumers
        self._retries: dict[Any, _Retry] = {}
        self._has_group = False
        self._catching_up = False  # after (re)creating the group at 0: skip processed entries in bulk
        self._read_own = True  # our own pending entries come first (after a start or a transient error)
        self._own_from: Any = "0"
        self._next_claim = 0.0
        self._next_heartbeat = 0.0
        # What health checks read: monotonic time of the last poll that completed, and counters.
        self.running = False
        self.last_progress = time.monotonic()
        self.last_error: str | None = None
        self.groups_recreated = 0
        self.parked = 0

    # -- the group -----------------------------------------------------------------------------------------

    async def register(self) -> None:
        """Record in PostgreSQL that this group must see the event types it handles."""
        await eventstore.register_group(self._pool, self.stream, self.group, list(self._handlers))
        self._next_heartbeat = time.monotonic() + self._heartbeat_every

    async def ensure_group(self) -> None:
        try:
            # "0": a new group also sees what was published before it existed (and after a FLUSHALL,
            # what the relay publishes again before the consumer is back).
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            self._catching_up = True
        except redis_errors.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._has_group = True

    # -- one poll ---------------------------------------------------------------------------------------

    async def poll_once(self) -> int:
        """Handle due retries, our own pending entries, abandoned ones, then new entries. Returns how
        many entries were looked at. A missing group is created again."""
        try:
            if not self._has_group:
                await self.ensure_group()
            handled = await self._poll()
        except redis_errors.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.groups_recreated += 1
            log.warning("consumer group %s is gone from %s (FLUSHALL, Redis restart or deletion): creating it again",
                        self.group, self.stream)
            self._retries.clear()  # their entries went with the group; the relay publishes them again
            self._has_group = False
            # Tell the relay: whatever took the group (FLUSHALL, a deleted stream or group) may have taken
            # entries it had not read yet. The relay publishes every unsettled event again.
            await self._redis.delete(epoch_key(self.stream))
            await self.ensure_group()
            self._read_own = False
            handled = 0
        self.last_progress = time.monotonic()
        self.last_error = None
        return handled

    async def _poll(self) -> int:
        now = time.monotonic()
        if now >= self._next_heartbeat:
            await self.register()  # still here, still handling these types
        handled = 0
        due = [(entry_id, r.fields) for entry_id, r in self._retries.items() if r.due <= now]
        if due:
            handled += await self._handle_all(due, redelivered=True)
        if self._read_own:
            handled += await self._read_own_pending()
        if now >= self._next_claim:
            self._next_claim = now + self._claim_every
            handled += await self._claim_abandoned()
        block = self._block_ms
        if self._retries:
            first_due = min(r.due for r in self._retries.values())
            block = max(1, min(block, int((first_due - time.monotonic()) * 1000)))
        fresh = await self._read(">", block=None if handled else block)
        handled += await self._handle_all(fresh, redelivered=False)
        if self._catching_up and len(fresh) < self._count:
            self._catching_up = False
        return handled

    async def _read(self, position: str, *, block: int | None) -> list[Entry]:
        response = await self._redis.xreadgroup(self.group, self._consumer, {self.stream: position},
                                                count=self._count, block=block)
        out: list[Entry] = []
        # redis-py types the RESP2 and RESP3 replies at once; this client speaks RESP2:
        # [[stream, [(entry id, fields), ...]]], or empty when nothing came.
        for _stream, entries in cast(list[list[Any]], response) or []:
            out.extend(entries)
        return out

    async def _read_own_pending(self) -> int:
        """Entries delivered to this consumer and not acknowledged (a transient error stopped a batch),
        a page per poll."""
        own = await self._read(self._own_from, block=None)
        self._own_from = own[-1][0] if len(own) >= self._count else "0"
        self._read_own = len(own) >= self._count
        gone = [entry_id for entry_id, fields in own if not fields]  # deleted from the stream meanwhile
        if gone:
            await self._redis.xack(self.stream, self.group, *gone)
        return await self._handle_all([e for e in own if e[1] and e[0] not in self._retries], redelivered=True)

    async def _claim_abandoned(self) -> int:
        """Entries a dead consumer left pending: at once when `gone_consumers` says its process is gone,
        else once they have been idle for claim_idle_ms."""
        entries = await self._claim_from_gone()
        claimed = await self._redis.xautoclaim(self.stream, self.group, self._consumer, self._claim_idle_ms,
                                               "0-0", count=self._count)
        entries += [e for e in claimed[1] if e[0] not in self._retries]
        gone = [entry_id for entry_id, fields in entries if not fields]  # deleted from the stream meanwhile
        if gone:
            await self._redis.xack(self.stream, self.group, *gone)
        return await self._handle_all([e for e in entries if e[1]], redelivered=True)

    async def _claim_from_gone(self) -> list[Entry]:
        if self._gone_consumers is None:
            return []
        members = await self._redis.xinfo_consumers(self.stream, self.group)
        holding = [_text(m["name"]) for m in members if m["pending"] and _text(m["name"]) != self._consumer]
        gone = await self._gone_consumers(holding) if holding else set()
        entries: list[Entry] = []
        for name in sorted(gone):
            pending = await self._redis.xpending_range(self.stream, self.group, "-", "+", self._count,
                                                       consumername=name)
            ids: list[Any] = [p["message_id"] for p in pending]
            if ids:
                entries += cast(list[Entry], await self._redis.xclaim(self.stream, self.group, self._consumer, 0, ids))
        return [e for e in entries if e[0] not in self._retries]

    # -- handling ---------------------------------------------------------------------------------------

    async def _handle_all(self, entries: Sequence[Entry], *, redelivered: bool) -> int:
        if not entries:
            return 0
        acks: list[Any] = []
        try:
            async with self._pool.acquire() as conn:
                done = await self._already_processed(conn, entries) if self._catching_up else set()
                for entry_id, fields in entries:
                    if await self.handle(entry_id, fields, conn=conn, skip=done, redelivered=redelivered):
                        acks.append(entry_id)
        except Exception:
            self._read_own, self._own_from = True, "0"  # what is left pending is ours to read again
            raise
        finally:
            if acks:
                await self._redis.xack(self.stream, self.group, *acks)
        return len(entries)

    async def _already_processed(self, conn: asyncpg.Connection, entries: Sequence[Entry]) -> set[str]:
        ids = []
        for _entry_id, fields in entries:
            raw = fields.get(b"e") or fields.get("e")
            try:
                ids.append(decode_event(raw).id if raw is not None else "")
            except (ValueError, TypeError, msgspec.DecodeError):
                continue
        return await eventstore.processed_among(conn, self.group, ids)

    async def handle(self, entry_id: Any, fields: dict[Any, Any], *, conn: asyncpg.Connection | None = None,
                     skip: set[str] | frozenset[str] = frozenset(), redelivered: bool = False) -> bool:
        """Handle one entry; True when it may be acknowledged. Raises on a transient failure."""
        raw = fields.get(b"e") or fields.get("e")
        try:
            if raw is None:
                raise ValueError("the entry has no event field")
            event = decode_event(raw)
        except (ValueError, TypeError, msgspec.DecodeError) as exc:
            await self._park_entry(entry_id, fields, exc)
            return True
        handler = self._handlers.get(event.type)
        if handler is None or event.id in skip:
            return True
        if conn is None:
            async with self._pool.acquire() as own:
                return await self._run_handler(own, entry_id, fields, event, handler, redelivered)
        return await self._run_handler(conn, entry_id, fields, event, handler, redelivered)

    async def _run_handler(self, conn: asyncpg.Connection, entry_id: Any, fields: dict[Any, Any], event: Event,
                           handler: EventHandler, redelivered: bool) -> bool:
        retry = self._retries.get(entry_id)
        try:
            async with asyncio.timeout(self._handler_timeout), conn.transaction():
                if await eventstore.record_processed(conn, self.group, event.id):
                    await handler(conn, event)
                if retry is not None or redelivered:
                    await eventstore.clear_failure(conn, self.group, event.id)
        except Exception as exc:
            if is_transient(exc):
                raise
            return await self._failed(conn, entry_id, fields, event, exc)
        self._retries.pop(entry_id, None)
        return True

    async def _failed(self, conn: asyncpg.Connection, entry_id: Any, fields: dict[Any, Any], event: Event,
                      exc: Exception) -> bool:
        """Count the attempt; park the event at max_attempts (True: acknowledge), else retry it later."""
        raw = fields.get(b"e") or fields.get("e")
        payload = raw.decode() if isinstance(raw, bytes) else str(raw)
        error = f"{type(exc).__name__}: {exc}"
        attempts, parked = await eventstore.record_failure(conn, self.group, event, payload, error,
                                                           self.max_attempts)
        if parked:
            self._retries.pop(entry_id, None)
            self.parked += 1
            log.error("consumer %s: event %s (%s) failed %d times, parked as a dead letter: %s",
                      self.group, event.id, event.type, attempts, error, exc_info=exc)
            return True
        delay = backoff_delay(attempts, self._retry_backoff, cap=8 * self._retry_backoff)
        self._retries[entry_id] = _Retry(fields, attempts, time.monotonic() + delay)
        log.warning("consumer %s: event %s (%s) failed (attempt %d of %d), retrying in %.1f s: %s",
                    self.group, event.id, event.type, attempts, self.max_attempts, delay, error)
        return False

    async def _park_entry(self, entry_id: Any, fields: dict[Any, Any], exc: Exception) -> None:
        # Not an event: nothing in PostgreSQL to replay. Keep it where an operator can look, and move on.
        log.error("consumer %s: stream entry %r is not an event (%s); moved to %s.dead",
                  self.group, entry_id, exc, self.stream)
        await self._redis.xadd(f"{self.stream}.dead", {**fields, "group": self.group, "error": str(exc)[:500]},
                               maxlen=10_000, approximate=True)

    # -- the loop -----------------------------------------------------------------------------------------

    async def run(self, metrics: TaskMetrics | None = None) -> None:
        """Poll forever: connection errors back off and retry; a lost group is created again."""
        self.running = True
        try:
            await every(f"consumer:{self.group}", 0.0, self._step, metrics=metrics, backoff=0.2, backoff_cap=5.0)
        finally:
            self.running = False

    async def _step(self) -> int:
        try:
            return await self.poll_once()
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            raise
