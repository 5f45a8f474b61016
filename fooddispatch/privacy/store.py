"""The privacy module's own tables: erasure records and the access log (fooddispatch/migrations/0004_privacy.sql)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from fooddispatch.privacy.messages import AccessEntry, ErasureOut

_ERASURE = ("account_id, role, requested_by, requested_by_role, reason, requested_at, completed_at, "
            "summary::text AS summary")


def _erasure(row: asyncpg.Record | None) -> ErasureOut | None:
    if row is None:
        return None
    fields = dict(row)
    fields["summary"] = json.loads(fields["summary"])
    return ErasureOut(**fields)


async def erasure(conn: asyncpg.Connection, account_id: str, *, lock: bool = False) -> ErasureOut | None:
    return _erasure(await conn.fetchrow(
        f"SELECT {_ERASURE} FROM privacy_erasures WHERE account_id = $1{' FOR UPDATE' if lock else ''}", account_id))


async def request_erasure(conn: asyncpg.Connection, account_id: str, role: str, by_id: str, by_role: str,
                          reason: str, at: datetime) -> None:
    """Record the request (the first one stands: a second asks for what is under way or done)."""
    await conn.execute(
        "INSERT INTO privacy_erasures (account_id, role, requested_by, requested_by_role, reason, requested_at) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id) DO NOTHING",
        account_id, role, by_id, by_role, reason, at)


async def complete_erasure(conn: asyncpg.Connection, account_id: str, summary: dict[str, Any],
                           at: datetime) -> ErasureOut:
    row = await conn.fetchrow(
        f"UPDATE privacy_erasures SET completed_at = coalesce(completed_at, $2), summary = $3::jsonb "
        f"WHERE account_id = $1 RETURNING {_ERASURE}", account_id, at, json.dumps(summary))
    found = _erasure(row)
    assert found is not None  # requested in the same erasure
    return found


async def record_accesses(conn: asyncpg.Connection, *, actor_id: str, actor_role: str, subject_ids: list[str],
                          what: str, reason: str, at: datetime, request_id: str | None) -> None:
    """One read concerning several people (an order's customer and courier): one row each, one INSERT."""
    await conn.execute(
        "INSERT INTO privacy_access_log (actor_id, actor_role, subject_id, what, reason, at, request_id) "
        "SELECT $1, $2, s, $4, $5, $6, $7 FROM unnest($3::text[]) AS s",
        actor_id, actor_role, subject_ids, what, reason, at, request_id)


async def access_log(conn: asyncpg.Connection, *, subject_id: str | None, actor_id: str | None,
                     after: int | None, limit: int) -> list[AccessEntry]:
    rows = await conn.fetch(
        "SELECT id, actor_id, actor_role, subject_id, what, reason, at, request_id FROM privacy_access_log "
        "WHERE ($1::text IS NULL OR subject_id = $1) AND ($2::text IS NULL OR actor_id = $2) "
        "AND ($3::bigint IS NULL OR id > $3) ORDER BY id LIMIT $4", subject_id, actor_id, after, limit)
    return [AccessEntry(**dict(r)) for r in rows]


async def reads_of(conn: asyncpg.Connection, subject_id: str) -> list[dict[str, Any]]:
    """Who read the person's data (for their own export): the readers' roles, what, when and why."""
    rows = await conn.fetch(
        "SELECT actor_role, what, reason, at FROM privacy_access_log WHERE subject_id = $1 ORDER BY id", subject_id)
    return [dict(r) for r in rows]
