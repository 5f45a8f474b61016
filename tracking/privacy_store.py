"""Tracking's part of a person's privacy rights (docs/PRIVACY.md), the package's narrow public interface
for them: `export_person` (a courier's own track, shifts, actions and device keys; a customer's orders as
tracking saw them and the courier positions they were shown while watching), `erase_person` (a
courier's location history deleted and device keys revoked; a customer's drop-offs rounded), and
`purge_history` (retention). Plain SQL over tracking's own tables; the live index is forgotten by
`TrackingService.forget_courier`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from kernel.http import COURIER, CUSTOMER, Principal
from tracking import store

# A courier's shift, for the export: fixes no further apart than this are one stretch of work.
SHIFT_GAP = timedelta(minutes=30)
ROUND_TO = 2  # an erased customer's drop-off keeps 2 decimals (about a kilometre), as in orders


def _rows(records: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(r) for r in records]


def shifts(times: list[datetime], gap: timedelta = SHIFT_GAP) -> list[dict[str, Any]]:
    """Stretches of fixes (sorted times) with no silence longer than `gap`: when the courier worked."""
    found: list[dict[str, Any]] = []
    for at in times:
        if found and at - found[-1]["to"] <= gap:
            found[-1]["to"] = at
            found[-1]["fixes"] += 1
        else:
            found.append({"from": at, "to": at, "fixes": 1})
    return found


async def _courier(conn: asyncpg.Connection, courier_id: str) -> dict[str, Any]:
    track = _rows(await conn.fetch(
        f"SELECT recorded_at, received_at, seq, lat, lng, accuracy, speed, heading, dispatchable "
        f"FROM {store.HISTORY_TABLE} WHERE courier_id = $1 ORDER BY recorded_at, seq", courier_id))
    actions = _rows(await conn.fetch(
        "SELECT action_id, type, created_at FROM tracking_courier_actions WHERE courier_id = $1 ORDER BY created_at",
        courier_id))
    keys = _rows(await conn.fetch(
        "SELECT id, name, created_by, created_at, last_used_at, revoked_at FROM tracking_device_keys "
        "WHERE courier_id = $1 ORDER BY created_at", courier_id))
    return {"shifts": shifts([p["recorded_at"] for p in track]), "track": track, "actions": actions,
            "device_keys": keys}


async def _customer(conn: asyncpg.Connection, customer_id: str) -> dict[str, Any]:
    """The courier positions shown on the customer's tracking: while a courier had the order (from its
    hand-over until the order ended), that courier's fixes."""
    orders = _rows(await conn.fetch(
        "SELECT order_id, status, courier_id, courier_since, ended_at, dropoff_lat, dropoff_lng FROM tracking_orders "
        "WHERE customer_id = $1 ORDER BY order_id", customer_id))
    for o in orders:
        o["courier_positions_shown"] = [] if o["courier_id"] is None or o["courier_since"] is None else _rows(
            await conn.fetch(
                f"SELECT recorded_at, lat, lng FROM {store.HISTORY_TABLE} WHERE courier_id = $1 "
                f"AND recorded_at >= $2 AND ($3::timestamptz IS NULL OR recorded_at <= $3) ORDER BY recorded_at, seq",
                o["courier_id"], o["courier_since"], o["ended_at"]))
    return {"orders": orders}


async def export_person(conn: asyncpg.Connection, person: Principal) -> dict[str, Any]:
    if person.role == COURIER:
        return await _courier(conn, person.account_id)
    if person.role == CUSTOMER:
        return await _customer(conn, person.account_id)
    return {}


async def erase_person(conn: asyncpg.Connection, person: Principal, at: datetime) -> dict[str, Any]:
    """A courier: its whole location history deleted, its device keys revoked. A customer: the drop-offs of
    its orders rounded. Idempotent."""
    if person.role == COURIER:
        fixes = await conn.execute(f"DELETE FROM {store.HISTORY_TABLE} WHERE courier_id = $1", person.account_id)
        await conn.execute("UPDATE tracking_device_keys SET revoked_at = coalesce(revoked_at, $2), name = '' "
                           "WHERE courier_id = $1", person.account_id, at)
        return {"location_fixes": int(fixes.split()[-1])}
    if person.role == CUSTOMER:
        done = await conn.execute(
            "UPDATE tracking_orders SET dropoff_lat = round(dropoff_lat::numeric, $2)::double precision, "
            "dropoff_lng = round(dropoff_lng::numeric, $2)::double precision WHERE customer_id = $1",
            person.account_id, ROUND_TO)
        return {"orders": int(done.split()[-1])}
    return {}


async def purge_history(pool: asyncpg.Pool, before: datetime) -> int:
    """Retention: location fixes recorded before `before` go: whole day partitions dropped, then the rows of
    the day that straddles the cut-off deleted. Returns how many rows the deletion took (dropped
    partitions are not counted)."""
    await store.drop_partitions_before(pool, before.date())
    async with pool.acquire() as conn:
        done = await conn.execute(f"DELETE FROM {store.HISTORY_TABLE} WHERE recorded_at < $1", before)
    return int(done.split()[-1])
