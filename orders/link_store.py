"""The Postgres adapter of tracking links: the revocation list (links themselves are signed tokens,
never stored; see orders/tracking_link.py)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

EVERY_LINK = "*"


async def is_revoked(conn: asyncpg.Connection, order_id: str, link_id: str, issued_at: datetime) -> bool:
    """The link is listed, or every link of its order issued up to `issued_at` or later was revoked."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM order_tracking_revocations WHERE order_id = $1 "
        "AND (link_id = $2 OR (link_id = '*' AND revoked_at >= $3)))",
        order_id, link_id, issued_at,
    ))


async def revoke(conn: asyncpg.Connection, order_id: str, link_id: str, at: datetime, by: str | None) -> None:
    """List the link (or with `EVERY_LINK`, every link issued up to `at`); revoking again moves the
    cut-off forward, never back."""
    await conn.execute(
        "INSERT INTO order_tracking_revocations (order_id, link_id, revoked_at, revoked_by) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (order_id, link_id) DO UPDATE SET revoked_at = greatest("
        "order_tracking_revocations.revoked_at, excluded.revoked_at), revoked_by = excluded.revoked_by",
        order_id, link_id, at, by,
    )
