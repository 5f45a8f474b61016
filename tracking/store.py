"""The Postgres adapter of tracking: the order projection, courier actions (with their
outbox events), location history (COPY into day partitions) and its retention."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

import asyncpg

from kernel.outbox import Event, announce, write_events
from orders.event_types import OrderAccepted, OrderPlaced
from tracking import history
from tracking.event_types import CourierEvent
from tracking.messages import BundleOrder, LatLng
from tracking.model import next_status

HISTORY_TABLE = "courier_locations"
HISTORY_COLUMNS = history.COLUMNS
HistoryRow = bytes  # one row of binary COPY data, from history.encode_points


class TrackedOrder(NamedTuple):
    order_id: str
    customer_id: str | None
    tenant_id: str | None
    region: str | None
    status: str
    courier_id: str | None
    version: int
    updated_at: datetime
    store_id: str | None = None


_ORDER_COLUMNS = "order_id, customer_id, tenant_id, region, status, courier_id, version, updated_at, store_id"


def _order(row: asyncpg.Record | None) -> TrackedOrder | None:
    return None if row is None else TrackedOrder(*(row[c] for c in TrackedOrder._fields))


async def tracked_order(pool: asyncpg.Pool, order_id: str, *, settled: bool = False) -> TrackedOrder | None:
    """The order's projection row. `settled`: wait for a change in progress to commit first.
    The consumer publishes a change before its transaction commits, so a watcher that
    subscribes after that publish and reads before the commit would see neither; `FOR SHARE`
    waits for the writer's row lock, so the read returns the change it missed."""
    lock = " FOR SHARE" if settled else ""
    async with pool.acquire() as conn:
        return _order(await conn.fetchrow(
            f"SELECT {_ORDER_COLUMNS} FROM tracking_orders WHERE order_id = $1{lock}", order_id
        ))


async def _locked(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_ORDER_COLUMNS}, picked_up, courier_by_operator FROM tracking_orders WHERE order_id = $1 "
        "FOR UPDATE", order_id
    )


async def _locked_or_new(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record:
    """The order's row, locked; a placeholder if a dispatch or status event came first
    (the order.placed / accepted event fills it in when it arrives)."""
    await conn.execute(
        "INSERT INTO tracking_orders (order_id, status) VALUES ($1, 'placed') ON CONFLICT DO NOTHING", order_id
    )
    return await _locked(conn, order_id)


async def record_order(conn: asyncpg.Connection, order: OrderPlaced | OrderAccepted, status: str
                       ) -> TrackedOrder | None:
    """order.placed / order.accepted: create or complete the row; returns it if it changed."""
    order_id = order.order_id
    row = await conn.fetchrow(
        f"""INSERT INTO tracking_orders AS t (order_id, customer_id, tenant_id, store_id, region,
                pickup_lat, pickup_lng, dropoff_lat, dropoff_lng, status)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (order_id) DO UPDATE SET
                customer_id = coalesce(t.customer_id, excluded.customer_id),
                tenant_id = coalesce(t.tenant_id, excluded.tenant_id),
                store_id = coalesce(t.store_id, excluded.store_id),
                region = coalesce(t.region, excluded.region),
                pickup_lat = coalesce(excluded.pickup_lat, t.pickup_lat),
                pickup_lng = coalesce(excluded.pickup_lng, t.pickup_lng),
                dropoff_lat = coalesce(excluded.dropoff_lat, t.dropoff_lat),
                dropoff_lng = coalesce(excluded.dropoff_lng, t.dropoff_lng)
            RETURNING {_ORDER_COLUMNS}, (xmax = 0) AS inserted""",
        order_id, order.customer_id, order.tenant_id, order.store_id, order.region,
        order.pickup.lat, order.pickup.lng, order.dropoff.lat, order.dropoff.lng, status,
    )
    if row["inserted"]:
        return _order(row)
    return await set_status(conn, order_id, status)


async def set_status(conn: asyncpg.Connection, order_id: str, status: str) -> TrackedOrder | None:
    """Move the order's status forward (never back, never out of a terminal one)."""
    row = await _locked_or_new(conn, order_id)
    new = next_status(row["status"], status)
    if new is None:
        return None
    return _order(await conn.fetchrow(
        f"""UPDATE tracking_orders SET status = $2, picked_up = picked_up OR $2 = 'picked_up',
               ended_at = CASE WHEN $2 IN ('delivered', 'cancelled', 'rejected', 'expired')
                               THEN coalesce(ended_at, now()) END,
               version = version + 1, updated_at = now() WHERE order_id = $1 RETURNING {_ORDER_COLUMNS}""",
        order_id, new,
    ))


async def set_courier(
    conn: asyncpg.Connection, order_id: str, courier_id: str | None, only_if: str | None = None
) -> tuple[TrackedOrder | None, str | None]:
    """Dispatch's assignment (or with None, unassignment) of the order's courier. `only_if`: unassign
    only if this courier still holds it. An order an operator gave a courier by hand keeps that courier
    (dispatch decided before it heard of the hand-over); the courier letting go of it ends the hold.
    Returns (the changed row or None, the previous courier)."""
    row = await _locked_or_new(conn, order_id)
    previous = row["courier_id"]
    if only_if is not None and previous != only_if:
        return None, previous
    if previous == courier_id or (courier_id is not None and (row["courier_by_operator"] or row["status"] in (
            "delivered", "cancelled", "rejected", "expired"))):
        return None, previous
    changed = _order(await conn.fetchrow(
        f"""UPDATE tracking_orders SET courier_id = $2, version = version + 1, updated_at = now(),
               courier_since = CASE WHEN $2::text IS NOT NULL THEN now() END,
               courier_by_operator = courier_by_operator AND $2::text IS NOT NULL
            WHERE order_id = $1 RETURNING {_ORDER_COLUMNS}""", order_id, courier_id,
    ))
    return changed, previous


async def hand_to(conn: asyncpg.Connection, order_id: str, courier_id: str) -> tuple[TrackedOrder | None, str | None]:
    """An operator gave the order to `courier_id` by hand: the courier carries it, and dispatch's later
    assignments of it leave it so (see `set_courier`). Returns (the row if the courier changed, the previous
    courier); an ended order changes nothing."""
    row = await _locked_or_new(conn, order_id)
    previous = row["courier_id"]
    if row["status"] in ("delivered", "cancelled", "rejected", "expired"):
        return None, previous
    changed = _order(await conn.fetchrow(
        f"""UPDATE tracking_orders SET courier_id = $2, courier_by_operator = true, updated_at = now(),
               courier_since = CASE WHEN courier_id IS DISTINCT FROM $2 THEN now() ELSE courier_since END,
               version = version + (courier_id IS DISTINCT FROM $2)::int
            WHERE order_id = $1 RETURNING {_ORDER_COLUMNS}""", order_id, courier_id,
    ))
    return (changed if previous != courier_id else None), previous


async def courier_bundle(conn: asyncpg.Connection, courier_id: str) -> list[BundleOrder]:
    """The orders the courier carries now: assigned to it and not finished."""
    rows = await conn.fetch(
        """SELECT order_id, pickup_lat, pickup_lng, dropoff_lat, dropoff_lng, picked_up FROM tracking_orders
           WHERE courier_id = $1 AND status NOT IN ('delivered', 'cancelled', 'rejected', 'expired')
           ORDER BY order_id""", courier_id,
    )
    return [
        BundleOrder(
            r["order_id"],
            LatLng(r["pickup_lat"], r["pickup_lng"]) if r["pickup_lat"] is not None else None,
            LatLng(r["dropoff_lat"], r["dropoff_lng"]) if r["dropoff_lat"] is not None else None,
            r["picked_up"],
        )
        for r in rows
    ]


async def record_action(
    pool: asyncpg.Pool, courier_id: str, action_id: str | None, action: CourierEvent,
    aggregate_id: str | None, also: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> bool:
    """Write the courier's action as an outbox event, once per action id. Returns False
    for a resent action (already recorded; nothing written). `also` runs in the same
    transaction before the event (the order's transition); if it raises, nothing is kept."""
    async with pool.acquire() as conn, conn.transaction():
        if action_id is not None:
            fresh = await conn.fetchval(
                "INSERT INTO tracking_courier_actions (courier_id, action_id, type) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING RETURNING true", courier_id, action_id, action.event_type,
            )
            if not fresh:
                return False
        if also is not None:
            await also(conn)
        await announce(conn, action, aggregate_id)
    return True


async def record_events(pool: asyncpg.Pool, events: Sequence[Event]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await write_events(conn, list(events))


# -- history ------------------------------------------------------------------------------


def partition_name(day: date) -> str:
    return f"{HISTORY_TABLE}_p{day:%Y%m%d}"


async def ensure_partitions(pool: asyncpg.Pool, days: Sequence[date]) -> None:
    async with pool.acquire() as conn:
        for day in days:
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            try:
                await conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF {HISTORY_TABLE} "
                    f"FOR VALUES FROM ('{start.isoformat()}') TO ('{(start + timedelta(days=1)).isoformat()}')"
                )
            except (asyncpg.DuplicateTableError, asyncpg.UniqueViolationError):
                pass  # another process created it at the same moment


async def drop_partitions_before(pool: asyncpg.Pool, day: date) -> list[str]:
    """Drop whole day partitions older than `day` (retention). Returns the names dropped."""
    async with pool.acquire() as conn:
        names = await conn.fetch(
            """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1""", HISTORY_TABLE,
        )
        dropped = []
        cutoff = partition_name(day)
        for row in names:
            name = row["relname"]
            if name.startswith(f"{HISTORY_TABLE}_p") and len(name) == len(cutoff) and name < cutoff:
                await conn.execute(f"DROP TABLE IF EXISTS {name}")
                dropped.append(name)
        return dropped


async def copy_history(pool: asyncpg.Pool, rows: Sequence[HistoryRow]) -> None:
    data = history.copy_data(rows)
    async with pool.acquire() as conn:
        # A memoryview, not the bytes: asyncpg takes a bytes `source` for a file path.
        await conn.copy_to_table(HISTORY_TABLE, source=memoryview(data), columns=HISTORY_COLUMNS, format="binary")
