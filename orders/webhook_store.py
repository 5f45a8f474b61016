"""The Postgres adapter for merchant webhook endpoints, deliveries and the attempt log.
(Split from `store.py` by concern: these tables are the webhook worker's.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from kernel.ids import new_id
from kernel.outbox import Event, write_events

ENDPOINT_COLUMNS = (
    "id, tenant_id, url, event_types, enabled, disabled_reason, consecutive_failures, created_at, "
    "previous_expires_at"
)


async def insert_endpoint(conn: asyncpg.Connection, endpoint_id: str, tenant_id: str, url: str,
                          event_types: list[str], secret: str, at: datetime) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, secret, created_at) "
        f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ENDPOINT_COLUMNS}",
        endpoint_id, tenant_id, url, event_types, secret, at,
    )


async def list_endpoints(conn: asyncpg.Connection, tenant_id: str | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE deleted_at IS NULL "
        "AND ($1::text IS NULL OR tenant_id = $1) ORDER BY id",
        tenant_id,
    )


async def get_endpoint(conn: asyncpg.Connection, endpoint_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
        endpoint_id,
    )


async def rotate(conn: asyncpg.Connection, endpoint_id: str, secret: str, previous_until: datetime) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE webhook_endpoints SET previous_secret = secret, previous_expires_at = $3, secret = $2 "
        f"WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}",
        endpoint_id, secret, previous_until,
    )


async def set_enabled(conn: asyncpg.Connection, endpoint_id: str, enabled: bool, reason: str | None) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE webhook_endpoints SET enabled = $2, disabled_reason = $3, consecutive_failures = 0 "
        f"WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}",
        endpoint_id, enabled, reason,
    )


async def delete_endpoint(conn: asyncpg.Connection, endpoint_id: str, at: datetime) -> None:
    await conn.execute("UPDATE webhook_endpoints SET deleted_at = $2, enabled = false WHERE id = $1", endpoint_id, at)


async def enqueue(conn: asyncpg.Connection, tenant_id: str, event_id: str, event_type: str, payload: bytes,
                  at: datetime) -> int:
    """One delivery per enabled endpoint of the tenant subscribed to this type; a redelivered
    event adds nothing (unique endpoint, event)."""
    rows = await conn.fetch(
        "SELECT id FROM webhook_endpoints WHERE tenant_id = $1 AND enabled AND deleted_at IS NULL "
        "AND $2 = ANY(event_types)",
        tenant_id, event_type,
    )
    if not rows:
        return 0
    await conn.executemany(
        "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, next_attempt_at, "
        "created_at) VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (endpoint_id, event_id) WHERE NOT manual "
        "DO NOTHING",
        [(new_id("whd"), r["id"], event_id, event_type, payload, at) for r in rows],
    )
    return len(rows)


async def claim_due(conn: asyncpg.Connection, now: datetime, lease_until: datetime, limit: int) -> list[Any]:
    """Take due deliveries of enabled endpoints; the lease keeps another worker off them."""
    return await conn.fetch(
        """WITH due AS (
               SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
                WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.enabled AND e.deleted_at IS NULL
                ORDER BY d.next_attempt_at LIMIT $3 FOR UPDATE OF d SKIP LOCKED)
           UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = $2
             FROM due, webhook_endpoints e
            WHERE d.id = due.id AND e.id = d.endpoint_id
        RETURNING d.id, d.endpoint_id, d.event_id, d.event_type, d.payload, d.attempts, d.created_at,
                  e.url, e.tenant_id, e.secret, e.previous_secret, e.previous_expires_at""",
        now, lease_until, limit,
    )


async def record_attempt(
    conn: asyncpg.Connection, delivery_id: str, endpoint_id: str, *, attempt: int, at: datetime,
    status_code: int | None, error: str | None, duration_ms: int, ok: bool, retry_at: datetime | None,
) -> int:
    """Log the attempt, settle or reschedule the delivery; returns the endpoint's failure streak."""
    await conn.execute(
        "INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error, duration_ms) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        delivery_id, attempt, at, status_code, error, duration_ms,
    )
    status = "succeeded" if ok else ("pending" if retry_at is not None else "failed")
    await conn.execute(
        "UPDATE webhook_deliveries SET status = $2, last_status = $3, last_error = $4, "
        "next_attempt_at = coalesce($5, next_attempt_at), completed_at = CASE WHEN $2 = 'pending' THEN NULL "
        "ELSE $6::timestamptz END WHERE id = $1",
        delivery_id, status, status_code, error, retry_at, at,
    )
    return await conn.fetchval(
        "UPDATE webhook_endpoints SET consecutive_failures = CASE WHEN $2 THEN 0 ELSE consecutive_failures + 1 END "
        "WHERE id = $1 RETURNING consecutive_failures",
        endpoint_id, ok,
    )


async def disable(conn: asyncpg.Connection, endpoint_id: str, reason: str) -> bool:
    return bool(await conn.fetchval(
        "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2 WHERE id = $1 AND enabled "
        "RETURNING true",
        endpoint_id, reason,
    ))


async def write_notice(conn: asyncpg.Connection, event: Event) -> None:
    await write_events(conn, [event])


async def deliveries(conn: asyncpg.Connection, endpoint_id: str, cursor: str | None, limit: int) -> list[Any]:
    return await conn.fetch(
        "SELECT d.id, d.event_id, d.event_type, d.status, d.created_at, "
        "CASE WHEN d.status = 'pending' THEN d.next_attempt_at END AS next_attempt_at, "
        "(SELECT coalesce(json_agg(a ORDER BY a.id), '[]') FROM (SELECT id, attempt, at, status_code, error, "
        " duration_ms FROM webhook_attempts WHERE delivery_id = d.id) a)::text AS attempts "
        "FROM webhook_deliveries d WHERE d.endpoint_id = $1 AND ($2::text IS NULL OR d.id < $2) "
        "ORDER BY d.id DESC LIMIT $3",
        endpoint_id, cursor, limit,
    )


# ---- the events a merchant may see (GET /v1/events) and manual redelivery -------------------------

async def record_event(conn: asyncpg.Connection, event_id: str, tenant_id: str, event_type: str, at: datetime,
                       payload: bytes) -> bytes:
    """Keep the event as its webhooks carry it; returns the body kept (the first one, on a repeat)."""
    kept = await conn.fetchval(
        "INSERT INTO merchant_events (id, tenant_id, type, created_at, payload) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (id) DO NOTHING RETURNING payload",
        event_id, tenant_id, event_type, at, payload,
    )
    if kept is None:
        kept = await conn.fetchval("SELECT payload FROM merchant_events WHERE id = $1", event_id)
    return bytes(kept)


async def get_event(conn: asyncpg.Connection, event_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, tenant_id, type, created_at, payload FROM merchant_events WHERE id = $1", event_id)


async def list_events(conn: asyncpg.Connection, tenant_id: str | None, *, types: list[str], prefixes: list[str],
                      since: datetime | None, before: datetime | None, cursor: str | None,
                      limit: int) -> list[asyncpg.Record]:
    """Newest first (ids are time-ordered); `types` exact, `prefixes` for `order.*`; either empty: any."""
    return await conn.fetch(
        "SELECT id, tenant_id, type, created_at, payload FROM merchant_events "
        "WHERE ($1::text IS NULL OR tenant_id = $1) "
        "AND (cardinality($2::text[]) + cardinality($3::text[]) = 0 OR type = ANY($2::text[]) "
        "     OR type LIKE ANY($3::text[])) "
        "AND ($4::timestamptz IS NULL OR created_at >= $4) AND ($5::timestamptz IS NULL OR created_at < $5) "
        "AND ($6::text IS NULL OR id < $6) ORDER BY id DESC LIMIT $7",
        tenant_id, types, [p + "%" for p in prefixes], since, before, cursor, limit,
    )


async def delete_events_before(conn: asyncpg.Connection, before: datetime, limit: int) -> int:
    """Delete up to `limit` events older than `before` (in batches, so one run never holds long locks)."""
    deleted = await conn.fetch(
        "DELETE FROM merchant_events WHERE id IN (SELECT id FROM merchant_events WHERE created_at < $1 "
        "LIMIT $2) RETURNING id",
        before, limit,
    )
    return len(deleted)


async def insert_manual_delivery(conn: asyncpg.Connection, endpoint_id: str, event_id: str, event_type: str,
                                 payload: bytes, at: datetime) -> asyncpg.Record:
    """One more delivery of the event to the endpoint, due now (whatever was delivered before)."""
    return await conn.fetchrow(
        "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, next_attempt_at, "
        "created_at, manual) VALUES ($1, $2, $3, $4, $5, $6, $6, true) "
        "RETURNING id, event_id, event_type, status, created_at, next_attempt_at, '[]' AS attempts",
        new_id("whd"), endpoint_id, event_id, event_type, payload, at,
    )
