"""The events a merchant may see: what its webhooks carry, kept 30 days, readable again.

Every event that becomes merchant webhooks is kept once per tenant (`merchant_events`), in the
transaction that enqueues its deliveries and with the very body they send (`Webhooks.enqueue`), so
`GET /v1/events/{id}` answers with the bytes a delivery carried and a merchant can fetch what its
endpoint missed. The internal outbox is not shown: it holds every package's events, most of them
not a merchant's business, and is pruned on its own schedule.

Staff and tenant API keys see their tenant's events; operators see every tenant's (or one, with
`tenant_id`). A retention job (one process at a time, under a job lease) deletes events older than
`RETENTION`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from kernel.clock import Clock
from orders import webhook_store as db
from orders.errors import EventNotFound

RETENTION = timedelta(days=30)
PURGE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a list shows: exact types and type families (`order.*` → prefix `order.`),
    both empty for every type; created in [since, before), either end open. `created` is whole
    seconds, so `created[lte]=T` takes every event of second T: before = T + 1 s."""

    types: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    since: datetime | None = None
    before: datetime | None = None

    @classmethod
    def parse(cls, type_list: str | None, gte: int | None, lte: int | None) -> EventFilter:
        names = [t for t in (type_list or "").split(",") if t]
        return cls(
            types=tuple(t for t in names if not t.endswith(".*")),
            prefixes=tuple(t[:-1] for t in names if t.endswith(".*")),
            since=None if gte is None else datetime.fromtimestamp(gte, UTC),
            before=None if lte is None else datetime.fromtimestamp(lte + 1, UTC),
        )


@dataclass(frozen=True, slots=True)
class MerchantEvent:
    id: str
    tenant_id: str
    type: str
    created_at: datetime
    payload: bytes  # the webhook body, as sent


def _event(row: asyncpg.Record) -> MerchantEvent:
    return MerchantEvent(row["id"], row["tenant_id"], row["type"], row["created_at"], bytes(row["payload"]))


class MerchantEvents:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, retention: timedelta = RETENTION) -> None:
        self.pool = pool
        self.clock = clock
        self.retention = retention

    async def get(self, event_id: str, tenant_id: str | None) -> MerchantEvent:
        """The event, when `tenant_id` (None: an operator) may see it; another tenant's is 404."""
        async with self.pool.acquire() as conn:
            row = await db.get_event(conn, event_id)
        if row is None or (tenant_id is not None and row["tenant_id"] != tenant_id):
            raise EventNotFound("no such event", param="event_id")
        return _event(row)

    async def page(self, tenant_id: str | None, where: EventFilter, cursor: str | None,
                   limit: int) -> tuple[list[MerchantEvent], str | None]:
        """One page, newest first, and the cursor of the next (None on the last page)."""
        async with self.pool.acquire() as conn:
            rows = await db.list_events(conn, tenant_id, types=list(where.types), prefixes=list(where.prefixes),
                                        since=where.since, before=where.before, cursor=cursor, limit=limit + 1)
        events = [_event(r) for r in rows[:limit]]
        return events, (events[-1].id if len(rows) > limit else None)

    async def purge_expired(self) -> int:
        """Delete the events older than the retention, in batches; returns how many went."""
        before = self.clock.now() - self.retention
        total = 0
        while True:
            async with self.pool.acquire() as conn:
                deleted = await db.delete_events_before(conn, before, PURGE_BATCH)
            total += deleted
            if deleted < PURGE_BATCH:
                return total
