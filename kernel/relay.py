"""The outbox relay: publishes the outbox to the stream, and publishes again what the stream lost.
The delivery design (what "settled" means, when and why an event is published again) is in
`kernel.eventbus`."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from kernel import eventstore
from kernel.tasks import TaskMetrics, every

log = logging.getLogger(__name__)


def epoch_key(stream: str) -> str:
    """A key that lives and dies with the stream's data: gone after FLUSHALL or a restart that kept
    nothing, and deleted by a consumer that found its group gone. Its absence tells the relay that the
    stream may have lost what it held. The stream's whole name is its hash tag: on a Redis Cluster the
    epoch sits in the stream's slot, so a shard that restarts empty loses both (`{fd:events}:epoch`
    hashes like the key `fd:events`)."""
    return f"{{{stream}}}:epoch"


def stream_id_ms(entry_id: bytes | str) -> int:
    """The millisecond time in a stream entry id (`<ms>-<seq>`)."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


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
        check_interval: float = 0.5,
        redeliver_after: float = 60.0,
        retention: timedelta = timedelta(hours=24),
        group_expiry: timedelta | None = None,
        clock_margin: float = 5.0,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._stream = stream
        self._batch_size = batch_size
        self._idle = idle_interval
        self._maxlen = maxlen
        self._check_interval = check_interval
        self._redeliver_after = timedelta(seconds=redeliver_after)
        self.retention = retention
        self.group_expiry = group_expiry or retention  # a group silent this long no longer holds events back
        self._margin_ms = int(clock_margin * 1000)
        self._epoch = secrets.token_hex(8)
        self._next_check = 0.0
        self._stream_seen = False
        self._lost = False  # the stream lost entries and the outbox has not been published again yet
        self._settle_from = 0
        self._overdue_from = 0
        self.republished = 0  # events published again (after a loss, or overdue)
        self.recoveries = 0

    @property
    def epoch_key(self) -> str:
        return epoch_key(self._stream)

    # -- publishing --------------------------------------------------------------------------------------

    async def _xadd(self, rows: Sequence[asyncpg.Record]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for row in rows:
            pipe.xadd(self._stream, {"e": row["payload"]}, maxlen=self._maxlen, approximate=True)
        await pipe.execute()

    async def publish_batch(self) -> int:
        """Publish one batch of what was never published; returns how many events went out."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await eventstore.claim_unpublished(conn, self._batch_size)
            if not rows:
                return 0
            await self._xadd(rows)
            await eventstore.mark_published(conn, [r["seq"] for r in rows])
            return len(rows)

    async def lag(self) -> int:
        """Outbox rows not yet published."""
        return await eventstore.unpublished_count(self._pool)

    # -- losses ------------------------------------------------------------------------------------------

    async def stream_lost(self) -> bool:
        """True when the stream lost its entries since the last look: the epoch key is gone (FLUSHALL, a
        Redis restart without persistence, a consumer found its group gone) or the stream was deleted.
        Of several relays, the one that puts the epoch back answers True."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.setnx(self.epoch_key, self._epoch)
        pipe.exists(self._stream)
        created, exists = await pipe.execute()
        lost = bool(created) or (self._stream_seen and not exists)
        self._stream_seen = bool(exists)
        return lost

    async def republish_unsettled(self) -> int:
        """Publish again every event not yet settled (what some group may not have seen), oldest first."""
        up_to = await eventstore.max_seq(self._pool)
        after = total = 0
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await eventstore.claim_unsettled(conn, after, up_to, self._batch_size)
                if not rows:
                    return total
                await self._xadd(rows)
                await eventstore.mark_published(conn, [r["seq"] for r in rows])
            after = rows[-1]["seq"]
            total += len(rows)

    async def step(self) -> int:
        """One round of the relay loop: look for a loss now and then (and make it good), then publish a
        batch. Returns the batch's size."""
        now = time.monotonic()
        if self._lost or now >= self._next_check:
            first = self._next_check == 0.0
            if await self.stream_lost():
                self._lost = True
                # At this process's first look the epoch may simply never have been set (a new Redis).
                log.log(logging.INFO if first else logging.WARNING,
                        "event stream %s has no epoch or was deleted (FLUSHALL, Redis restart or deletion): "
                        "publishing every unsettled event again", self._stream)
            self._next_check = now + self._check_interval
            if self._lost:
                count = await self.republish_unsettled()
                self._lost = False
                self.recoveries += 1
                self.republished += count
                log.log(logging.WARNING if count else logging.INFO,
                        "event stream %s: %d unsettled events published again", self._stream, count)
        return await self.publish_batch()

    async def run(self, metrics: TaskMetrics | None = None) -> None:
        await every("outbox-relay", self._idle, self.step, metrics=metrics,
                    busy=lambda n: n >= self._batch_size, backoff=0.2, backoff_cap=5.0)

    # -- settling, the safety net and pruning (each one recurring job) --------------------------------------

    async def settle(self, *, rounds: int = 20) -> int:
        """Mark settled what every group has; returns how many rows."""
        settled = 0
        for _ in range(rounds):
            done = await eventstore.settle(self._pool, self._stream, self.group_expiry, self._settle_from, 2000)
            if done is None:
                break  # another process is settling
            count, self._settle_from = done
            settled += count
            if self._settle_from == 0:
                break
        return settled

    async def _positions(self) -> tuple[dict[str, int], dict[str, bool]]:
        """Per group in Redis: the time of the last entry delivered to it, and whether it has been
        delivered everything the stream holds."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.xinfo_stream(self._stream)
        pipe.xinfo_groups(self._stream)
        try:
            info, groups = await pipe.execute()
        except ResponseError:  # no stream: the loss check publishes everything again
            return {}, {}
        last = info["last-generated-id"]
        positions, caught_up = {}, {}
        for g in groups:
            name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
            positions[name] = stream_id_ms(g["last-delivered-id"])
            caught_up[name] = g["last-delivered-id"] == last
        return positions, caught_up

    def _passed(self, group: str, published_at: datetime, positions: dict[str, int],
                caught_up: dict[str, bool]) -> bool:
        """Did `group` read past an event published at `published_at`? Then the event, still missing,
        is not in the stream any more (trimmed, or lost in a restart that kept an older snapshot)."""
        if group not in positions:
            return False  # its consumer creates it again and reads the stream from the start
        return caught_up[group] or positions[group] >= published_at.timestamp() * 1000 + self._margin_ms

    async def redeliver_overdue(self) -> int:
        """The safety net for losses the epoch cannot see: publish again an event that is still unsettled
        `redeliver_after` after its publication when a group missing it has read past it."""
        positions, caught_up = await self._positions()
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await eventstore.claim_overdue(conn, self._stream, self.group_expiry, self._redeliver_after,
                                                  self._overdue_from, self._batch_size)
            due = [r for r in rows if any(self._passed(g, r["published_at"], positions, caught_up)
                                          for g in r["missing"])]
            if due:
                await self._xadd(due)
                await eventstore.mark_published(conn, [r["seq"] for r in due])
        self._overdue_from = rows[-1]["seq"] if len(rows) >= self._batch_size else 0
        if due:
            self.republished += len(due)
            log.warning("event stream %s: %d overdue events published again", self._stream, len(due))
        return len(due)

    async def prune(self) -> int:
        """Forget what every group had longer than the retention: the stream's entries first (so no entry
        outlives the record that dedupes it), then the outbox rows and their processed-event records; and
        the consumers of processes long gone. Returns the outbox rows deleted."""
        cutoff_ms = int((time.time() - self.retention.total_seconds()) * 1000)
        await self._redis.xtrim(self._stream, minid=f"{cutoff_ms}-0", approximate=False)
        await self._forget_idle_consumers()
        return await eventstore.prune(self._pool, self._stream, self.retention)

    async def _forget_idle_consumers(self) -> None:
        """A consumer name per process start accumulates in each group; drop those with nothing pending
        that were idle longer than the retention (a live one that reads again is simply re-added)."""
        try:
            groups = await self._redis.xinfo_groups(self._stream)
        except ResponseError:
            return
        idle_ms = self.retention.total_seconds() * 1000
        for group in groups:
            for consumer in await self._redis.xinfo_consumers(self._stream, group["name"]):
                if consumer["pending"] == 0 and consumer["idle"] > idle_ms:
                    await self._redis.xgroup_delconsumer(self._stream, group["name"], consumer["name"])
