"""The Postgres adapter for restaurant payout schedules and the scheduled payouts they make
(payments migration 0007); the payouts themselves are the `payouts` rows `store.py` reads."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def get_schedule(conn: asyncpg.Connection, tenant_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM merchant_payout_schedules WHERE tenant_id = $1", tenant_id)


async def put_schedule(conn: asyncpg.Connection, *, tenant_id: str, currency: str, every: str, weekday: int | None,
                       minimum_amount: int, next_run_at: datetime) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO merchant_payout_schedules (tenant_id, currency, every, weekday, minimum_amount, next_run_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (tenant_id) DO UPDATE SET currency = EXCLUDED.currency, every = EXCLUDED.every,
                  weekday = EXCLUDED.weekday, minimum_amount = EXCLUDED.minimum_amount,
                  next_run_at = EXCLUDED.next_run_at, updated_at = now()
           RETURNING *""",
        tenant_id, currency, every, weekday, minimum_amount, next_run_at,
    )


async def lock_due_schedules(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Schedules due by `now`, locked for this run (another process skips them)."""
    return await conn.fetch(
        "SELECT * FROM merchant_payout_schedules WHERE next_run_at <= $1 ORDER BY next_run_at LIMIT $2 "
        "FOR UPDATE SKIP LOCKED", now, limit,
    )


async def advance_schedule(conn: asyncpg.Connection, tenant_id: str, next_run_at: datetime) -> None:
    await conn.execute("UPDATE merchant_payout_schedules SET next_run_at = $2 WHERE tenant_id = $1",
                       tenant_id, next_run_at)


async def insert_scheduled_payout(conn: asyncpg.Connection, *, id: str, account_id: str, owner_id: str,
                                  amount: int, currency: str, settles_until: datetime) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO payouts (id, account_id, owner_id, kind, amount, fee, currency, instant, status, created_by,
                                settles_until)
           VALUES ($1, $2, $3, 'restaurant', $4, 0, $5, false, 'pending', 'system:payout_schedule', $6)
           RETURNING *""",
        id, account_id, owner_id, amount, currency, settles_until,
    )


async def restaurant_payouts(conn: asyncpg.Connection, owner_id: str, starting_after: str | None,
                             limit: int) -> list[asyncpg.Record]:
    """The tenant's restaurant payouts, newest first, each with the `settles_until` of the last payout
    before it that did not fail (`settles_from`: where the statement lines it settles start)."""
    return await conn.fetch(
        """SELECT p.*, (SELECT q.settles_until FROM payouts q
                         WHERE q.owner_id = p.owner_id AND q.kind = 'restaurant' AND q.status <> 'failed'
                           AND q.settles_until IS NOT NULL AND q.id < p.id
                         ORDER BY q.id DESC LIMIT 1) AS settles_from
             FROM payouts p
            WHERE p.owner_id = $1 AND p.kind = 'restaurant' AND ($2::text IS NULL OR p.id < $2)
            ORDER BY p.id DESC LIMIT $3""",
        owner_id, starting_after, limit,
    )
