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


# The payouts of one balance (owner, kind, currency) that a failed payout `f` leaves to: the first made after
# it failed (`updated_at`: failed is final) is its retry, paying what is available then, its money included.
_RETRIED_BY = """(SELECT r.id FROM payouts r
                    WHERE {f}.status = 'failed' AND r.owner_id = {f}.owner_id AND r.kind = {f}.kind
                      AND r.currency = {f}.currency AND r.id <> {f}.id AND r.created_at >= {f}.updated_at
                    ORDER BY r.created_at, r.id LIMIT 1)"""
# The failed payouts of the same balance that payout `p` is the retry of.
_RETRY_OF = """ARRAY(SELECT f.id FROM payouts f
                     WHERE f.owner_id = {p}.owner_id AND f.kind = {p}.kind AND f.currency = {p}.currency
                       AND f.status = 'failed' AND f.id <> {p}.id AND f.updated_at <= {p}.created_at
                       AND NOT EXISTS (SELECT 1 FROM payouts x
                                        WHERE x.owner_id = f.owner_id AND x.kind = f.kind AND x.currency = f.currency
                                          AND x.id NOT IN (f.id, {p}.id) AND x.created_at >= f.updated_at
                                          AND x.created_at < {p}.created_at)
                     ORDER BY f.id)"""
# When a failed restaurant payout not retried yet is paid again: its tenant's next scheduled run in its currency.
_NEXT_ATTEMPT = """(SELECT s.next_run_at FROM merchant_payout_schedules s
                     WHERE {f}.status = 'failed' AND {f}.kind = 'restaurant' AND s.tenant_id = {f}.owner_id
                       AND s.currency = {f}.currency AND """ + _RETRIED_BY + """ IS NULL)"""


async def retry_facts(conn: asyncpg.Connection, payout_ids: list[str]) -> dict[str, asyncpg.Record]:
    """Per payout: `retry_of` (the failed payouts it pays again), `retried_by` (a failed one's retry, if
    made) and `next_attempt_at` (a failed one's next scheduled run, if any and while it is not retried)."""
    rows = await conn.fetch(
        f"""SELECT p.id, {_RETRY_OF.format(p="p")} AS retry_of, {_RETRIED_BY.format(f="p")} AS retried_by,
                   {_NEXT_ATTEMPT.format(f="p")} AS next_attempt_at
              FROM payouts p WHERE p.id = ANY($1::text[])""", payout_ids)
    return {r["id"]: r for r in rows}


async def restaurant_payouts(conn: asyncpg.Connection, owner_id: str, starting_after: str | None,
                             limit: int) -> list[asyncpg.Record]:
    """The tenant's restaurant payouts, newest first, each with the `settles_until` of the last payout
    before it that did not fail (`settles_from`: where the statement lines it settles start), and its
    `retry_of`, `retried_by` and `next_attempt_at` (see `retry_facts`)."""
    return await conn.fetch(
        f"""SELECT p.*, (SELECT q.settles_until FROM payouts q
                          WHERE q.owner_id = p.owner_id AND q.kind = 'restaurant' AND q.status <> 'failed'
                            AND q.settles_until IS NOT NULL AND q.id < p.id
                          ORDER BY q.id DESC LIMIT 1) AS settles_from,
                   {_RETRY_OF.format(p="p")} AS retry_of, {_RETRIED_BY.format(f="p")} AS retried_by,
                   {_NEXT_ATTEMPT.format(f="p")} AS next_attempt_at
              FROM payouts p
             WHERE p.owner_id = $1 AND p.kind = 'restaurant' AND ($2::text IS NULL OR p.id < $2)
             ORDER BY p.id DESC LIMIT $3""",
        owner_id, starting_after, limit,
    )
