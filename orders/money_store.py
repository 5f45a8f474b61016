"""The Postgres adapter for an order's money after checkout: its payment records (missing-item
refunds, tip holds and charges: `order_payments`), its refunds (counted once, by payments' refund
id) and the collections that delivery could not make (retried by the sweep). Every function takes
the caller's connection: the caller owns the transaction (see `orders.money`)."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def count_refund(conn: asyncpg.Connection, *, refund_id: str, order_id: str, intent_id: str, amount: int,
                       reason: str | None, at: datetime) -> int | None:
    """Count a refund on the order unless it is counted already (by its refund id): the order's
    `refunded` after it, or None when it was counted before (or the order does not exist)."""
    refunded: int | None = await conn.fetchval(
        """WITH r AS (INSERT INTO order_refunds (refund_id, order_id, intent_id, amount, reason, at)
                      SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM orders WHERE id = $2)
                      ON CONFLICT (refund_id) DO NOTHING RETURNING amount)
           UPDATE orders o SET refunded = o.refunded + r.amount FROM r WHERE o.id = $2 RETURNING o.refunded""",
        refund_id, order_id, intent_id, amount, reason, at,
    )
    return refunded


async def add_withheld(conn: asyncpg.Connection, order_id: str, amount: int) -> int:
    """Missing items reported before delivery: the customer gets `amount` back by being charged
    that much less at delivery. Returns the order's `refunded` after it."""
    refunded: int = await conn.fetchval(
        "UPDATE orders SET refunded = refunded + $2 WHERE id = $1 RETURNING refunded", order_id, amount)
    return refunded


async def defer_collection(conn: asyncpg.Connection, order_id: str, *, error: str, next_attempt_at: datetime,
                           give_up: bool, now: datetime) -> int:
    """Record (or update, after another failed try) a collection delivery could not make; returns
    how many tries failed so far."""
    attempts: int = await conn.fetchval(
        """INSERT INTO order_collections (order_id, attempts, last_error, next_attempt_at, failed_at)
           VALUES ($1, 1, $2, $3, CASE WHEN $4 THEN $5::timestamptz END)
           ON CONFLICT (order_id) DO UPDATE SET attempts = order_collections.attempts + 1,
                  last_error = EXCLUDED.last_error, next_attempt_at = EXCLUDED.next_attempt_at,
                  failed_at = EXCLUDED.failed_at
           RETURNING attempts""",
        order_id, error, next_attempt_at, give_up, now,
    )
    return attempts


async def due_collections(conn: asyncpg.Connection, now: datetime, limit: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT order_id FROM order_collections WHERE failed_at IS NULL AND next_attempt_at <= $1 "
        "ORDER BY next_attempt_at LIMIT $2", now, limit,
    )
    return [r["order_id"] for r in rows]


async def lock_collection(conn: asyncpg.Connection, order_id: str, now: datetime) -> asyncpg.Record | None:
    """The collection if it is still due, locked (skipped while another process retries it)."""
    return await conn.fetchrow(
        "SELECT order_id, attempts, last_error FROM order_collections WHERE order_id = $1 AND failed_at IS NULL "
        "AND next_attempt_at <= $2 FOR UPDATE SKIP LOCKED", order_id, now,
    )


async def collection_of(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT order_id, attempts, last_error, next_attempt_at, failed_at FROM order_collections "
        "WHERE order_id = $1", order_id,
    )


async def finish_collection(conn: asyncpg.Connection, order_id: str) -> None:
    await conn.execute("DELETE FROM order_collections WHERE order_id = $1", order_id)


async def add_captured(conn: asyncpg.Connection, order_id: str, amount: int) -> None:
    """What a late collection captured, on top of what the order shows."""
    await conn.execute("UPDATE orders SET captured = captured + $2 WHERE id = $1", order_id, amount)


async def add_payment(
    conn: asyncpg.Connection, order_id: str, kind: str, amount: int, at: datetime, *,
    intent_id: str | None = None, tax: int = 0, reference: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO order_payments (order_id, kind, intent_id, amount, tax, reference, at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        order_id, kind, intent_id, amount, tax, reference, at,
    )


async def payments_of(conn: asyncpg.Connection, order_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT kind, intent_id, amount, tax, settled FROM order_payments WHERE order_id = $1 ORDER BY id",
        order_id,
    )


async def settle_payments(conn: asyncpg.Connection, order_id: str, kind: str) -> None:
    await conn.execute(
        "UPDATE order_payments SET settled = true WHERE order_id = $1 AND kind = $2 AND NOT settled",
        order_id, kind,
    )


async def record_settlement(conn: asyncpg.Connection, *, reference: str, order_id: str, tenant_id: str,
                            currency: str, commission: int, commission_bps: int, tip: int, at: datetime) -> None:
    """What a split of the order (by its ledger reference) took as commission and passed through as
    tip, for the merchant's statement; a split posted before (a retried collection) is kept as it was."""
    await conn.execute(
        """INSERT INTO order_settlements (reference, order_id, tenant_id, currency, commission, commission_bps, tip, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (reference) DO NOTHING""",
        reference, order_id, tenant_id, currency, commission, commission_bps, tip, at,
    )


async def settlements(conn: asyncpg.Connection, references: list[str]) -> list[asyncpg.Record]:
    """The recorded commission and tip of these split references."""
    return await conn.fetch(
        "SELECT reference, order_id, commission, commission_bps, tip FROM order_settlements "
        "WHERE reference = ANY($1::text[])", references,
    )
