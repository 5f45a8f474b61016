"""The Postgres adapter for quotes, orders, their lines and history, and promos.

Every function takes the caller's connection (the service owns the transaction).
Writes that belong together go in one statement (data-modifying CTEs), because
round trips, not CPU, bound checkout throughput. Events go into the kernel's
outbox in the same statement, built with `kernel.outbox.make_event`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from kernel.outbox import Event, encode_event

Row: TypeAlias = asyncpg.Record

# ---- quotes ----------------------------------------------------------------------------------------


async def insert_quote(
    conn: asyncpg.Connection, *, quote_id: str, customer_id: str, store_id: str, request: str, priced: str,
    total: int, currency: str, created_at: datetime, expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO order_quotes (id, customer_id, store_id, request, priced, total, currency, created_at, "
        "expires_at) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, $9)",
        quote_id, customer_id, store_id, request, priced, total, currency, created_at, expires_at,
    )


async def checkout_lookup(conn: asyncpg.Connection, quote_id: str, customer_id: str, key: str, order_id: str) -> Row:
    """The customer's quote (with the surge it was priced at), an order this key already created
    and whether the customer has had an order delivered yet, and the quote claimed for `order_id`
    (the order this checkout is about to write): one round trip. Always one row (the LEFT JOIN
    from `(SELECT 1)`): its quote columns are NULL when there is no such quote.

    The claim is a conditional UPDATE (`order_id IS NULL`), made only when this key made no order:
    `claimed` says whether it took. A concurrent checkout of the quote holds its row lock until it
    commits or rolls back; this statement waits for it, so it claims the quote only if that one gave
    it back. `used_by` is the quote's order as of this statement's snapshot, which was taken before
    that wait: not claimed and `used_by` NULL means a concurrent checkout took it (`quote_taken`
    says by which order). The caller's rollback (a decline, a price change) gives the claim back."""
    return await conn.fetchrow(
        "WITH prior AS (SELECT o.id FROM orders o WHERE o.customer_id = $2 AND o.idempotency_key = $3), "
        "claim AS (UPDATE order_quotes SET order_id = $4 WHERE id = $1 AND customer_id = $2 AND order_id IS NULL "
        " AND NOT EXISTS (SELECT 1 FROM prior) RETURNING id) "
        "SELECT q.id, q.request::text AS request, q.total, q.expires_at, "
        "q.priced->'pricing'->>'surge_multiplier' AS surge, q.order_id AS used_by, "
        "EXISTS (SELECT 1 FROM claim) AS claimed, (SELECT id FROM prior) AS existing_order, "
        "NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = $2 AND o.status = 'delivered') AS first_order "
        "FROM (SELECT 1) AS one LEFT JOIN order_quotes q ON q.id = $1 AND q.customer_id = $2",
        quote_id, customer_id, key, order_id,
    )


async def quote_taken(conn: asyncpg.Connection, quote_id: str, customer_id: str, key: str) -> Row:
    """After a claim lost to a concurrent checkout (a fresh snapshot): the order that took the quote,
    and the order this key made, if that checkout was this key's own."""
    return await conn.fetchrow(
        "SELECT (SELECT order_id FROM order_quotes WHERE id = $1) AS used_by, "
        "(SELECT id FROM orders WHERE customer_id = $2 AND idempotency_key = $3) AS existing_order",
        quote_id, customer_id, key,
    )


# ---- promos ----------------------------------------------------------------------------------------

PROMO_COLUMNS = (
    "id, code, kind, percent_bps, amount, currency, max_discount, min_subtotal, first_order_only, "
    "per_customer_limit, budget, budget_used, valid_from, valid_until, store_id, active"
)


async def promo_with_usage(conn: asyncpg.Connection, code: str, customer_id: str, *, tenant_id: str) -> Row | None:
    """The promo `code` names at a store of `tenant_id`: the tenant's own, else a platform-wide one
    (codes are unique per tenant, so another tenant's code of the same spelling is never found)."""
    return await conn.fetchrow(
        f"SELECT {PROMO_COLUMNS}, tenant_id, "
        "(SELECT count(*) FROM promo_redemptions r WHERE r.promo_id = p.id AND r.customer_id = $2 "
        " AND r.released_at IS NULL) AS redemptions_by_customer, "
        "EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = $2 "
        " AND o.status NOT IN ('cancelled', 'rejected', 'expired')) AS customer_has_orders "
        "FROM promos p WHERE upper(p.code) = upper($1) AND (p.tenant_id = $3 OR p.tenant_id IS NULL) "
        "ORDER BY p.tenant_id IS NULL LIMIT 1",
        code, customer_id, tenant_id,
    )


async def redeem_promo(
    conn: asyncpg.Connection, *, promo_id: str, order_id: str, customer_id: str, discount: int, at: datetime
) -> bool:
    """Count one redemption and spend budget, atomically; False when the budget or the
    customer's limit ran out since the quote (the promo row lock orders racing checkouts)."""
    return bool(await conn.fetchval(
        """WITH spent AS (
               UPDATE promos p SET budget_used = budget_used + $4
                WHERE p.id = $1 AND p.active
                  AND (p.budget IS NULL OR p.budget_used + $4 <= p.budget)
                  AND (p.per_customer_limit IS NULL OR p.per_customer_limit > (
                       SELECT count(*) FROM promo_redemptions r
                        WHERE r.promo_id = $1 AND r.customer_id = $3 AND r.released_at IS NULL))
               RETURNING p.id)
           INSERT INTO promo_redemptions (order_id, promo_id, customer_id, discount, redeemed_at)
           SELECT $2, id, $3, $4, $5 FROM spent RETURNING true""",
        promo_id, order_id, customer_id, discount, at,
    ))


async def release_promo(conn: asyncpg.Connection, order_id: str, at: datetime) -> None:
    """Give a cancelled order's redemption back (budget and the customer's count), once."""
    await conn.execute(
        """WITH released AS (
               UPDATE promo_redemptions SET released_at = $2
                WHERE order_id = $1 AND released_at IS NULL RETURNING promo_id, discount)
           UPDATE promos p SET budget_used = p.budget_used - r.discount
             FROM released r WHERE p.id = r.promo_id""",
        order_id, at,
    )


async def insert_promo(conn: asyncpg.Connection, values: dict[str, Any]) -> Row:
    columns = list(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return await conn.fetchrow(
        f"INSERT INTO promos ({', '.join(columns)}) VALUES ({placeholders}) RETURNING {PROMO_COLUMNS}",
        *values.values(),
    )


# ---- orders ----------------------------------------------------------------------------------------

_OUTBOX_CTE = (
    "INSERT INTO outbox (event_id, type, aggregate_id, occurred_at, payload) "
    "SELECT * FROM unnest(${0}::text[], ${1}::text[], ${2}::text[], ${3}::timestamptz[], ${4}::jsonb[])"
)


def _outbox_args(events: Sequence[Event]) -> list[list[Any]]:
    return [
        [e.id for e in events], [e.type for e in events], [e.aggregate_id for e in events],
        [e.occurred_at for e in events], [encode_event(e).decode() for e in events],
    ]


async def insert_order(
    conn: asyncpg.Connection, order: dict[str, Any], lines: Sequence[tuple], events: Sequence[Event]
) -> Row:
    """The order, its lines, its first history row and its events, in one round trip; returns the
    order as `order_view` does (built from the inserted rows, so the response needs no read back).
    `lines`: (line_no, item_id, name, quantity, unit_price, line_total, options_json)."""
    line_args = [list(col) for col in zip(*lines, strict=True)] if lines else [[]] * 7
    return await conn.fetchrow(_insert_order_sql(tuple(order)), *order.values(), *line_args, *_outbox_args(events))


@functools.lru_cache(maxsize=8)
def _insert_order_sql(cols: tuple[str, ...]) -> str:
    """The statement for an order with these columns (built once: checkout always passes the same)."""
    values = ", ".join(f"${i}::jsonb" if c == "pricing" else f"${i}" for i, c in enumerate(cols, 1))
    base = len(cols) + 1
    return (
        f"WITH o AS (INSERT INTO orders ({', '.join(cols)}) VALUES ({values}) RETURNING {ORDER_COLUMNS}), "
        f"l AS (INSERT INTO order_lines (order_id, line_no, item_id, name, quantity, unit_price, line_total, "
        f"options) SELECT ${cols.index('id') + 1}, a, b, c, d, e, f, g::jsonb FROM unnest(${base}::int[], "
        f"${base + 1}::text[], ${base + 2}::text[], ${base + 3}::int[], ${base + 4}::bigint[], "
        f"${base + 5}::bigint[], ${base + 6}::text[]) AS t(a, b, c, d, e, f, g) RETURNING {_LINE_COLUMNS}), "
        f"h AS (INSERT INTO order_status_history (order_id, from_status, to_status, actor, actor_id, reason, at) "
        f"VALUES (${cols.index('id') + 1}, NULL, 'placed', 'customer', ${cols.index('customer_id') + 1}, NULL, "
        f"${cols.index('placed_at') + 1}) RETURNING {_HISTORY_COLUMNS}), "
        f"e AS ({_OUTBOX_CTE.format(base + 7, base + 8, base + 9, base + 10, base + 11)}) "
        "SELECT o.*, (SELECT coalesce(json_agg(l ORDER BY l.line_no), '[]') FROM l)::text AS lines, "
        "(SELECT coalesce(json_agg(h ORDER BY h.id), '[]') FROM h)::text AS history FROM o"
    )


ORDER_COLUMNS = (
    "id, customer_id, quote_id, store_id, tenant_id, region, status, version, currency, total, "
    "pricing::text AS pricing, payment_method_id, intent_id, promo_id, pickup_lat, pickup_lng, dropoff_lat, "
    "dropoff_lng, address, prep_time_s, placed_at, accept_by, scheduled_for, promised_from, promised_to, "
    "accepted_at, ready_at, picked_up_at, delivered_at, ended_at, end_reason, courier_id, cancel_fee, refunded, "
    "captured, proof::text AS proof, rating, rating_comment, delivery_note"
)


_LINE_COLUMNS = "line_no, item_id, name, quantity, unit_price, line_total, options, missing_quantity"
_HISTORY_COLUMNS = "id, from_status, to_status, actor, reason, at"


async def lock_order(conn: asyncpg.Connection, order_id: str) -> Row | None:
    return await conn.fetchrow(f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 FOR UPDATE", order_id)


async def order_parties(conn: asyncpg.Connection, order_id: str) -> Row | None:
    """Who the order belongs to and where it stands (for a live view's access check), with the
    time of its last transition."""
    return await conn.fetchrow(
        "SELECT id, customer_id, tenant_id, region, status, courier_id, "
        "coalesce((SELECT max(at) FROM order_status_history h WHERE h.order_id = o.id), placed_at) AS at "
        "FROM orders o WHERE id = $1",
        order_id,
    )


async def order_view(conn: asyncpg.Connection, order_id: str) -> Row | None:
    """The order with its lines and history, in one round trip."""
    return await conn.fetchrow(
        f"SELECT {ORDER_COLUMNS}, "
        f"(SELECT coalesce(json_agg(l ORDER BY l.line_no), '[]') FROM (SELECT {_LINE_COLUMNS} FROM order_lines "
        " WHERE order_id = $1) l)::text AS lines, "
        f"(SELECT coalesce(json_agg(h ORDER BY h.id), '[]') FROM (SELECT {_HISTORY_COLUMNS} "
        " FROM order_status_history WHERE order_id = $1) h)::text AS history "
        "FROM orders WHERE id = $1",
        order_id,
    )


# Columns a transition may set; None leaves the current value.
TRANSITION_FIELDS = (
    "accepted_at", "ready_at", "prep_time_s", "picked_up_at", "delivered_at", "ended_at", "end_reason",
    "courier_id", "cancel_fee", "captured", "refunded", "total", "proof", "pricing",
)


async def apply_change(
    conn: asyncpg.Connection, order_id: str, *, from_status: str, to_status: str, actor: str,
    actor_id: str | None, reason: str | None, at: datetime, changes: dict[str, Any], events: Sequence[Event],
    record_history: bool,
) -> None:
    """Update the order (state and fields), append its history row and write its events: one round trip."""
    unknown = set(changes) - set(TRANSITION_FIELDS)
    if unknown:
        raise ValueError(f"cannot change {unknown}")
    sets = ["status = $2", "version = version + 1"]
    args: list[Any] = [order_id, to_status]
    for name, value in changes.items():
        args.append(value)
        cast = "::jsonb" if name in ("proof", "pricing") else ""
        sets.append(f"{name} = ${len(args)}{cast}")
    history = ""
    if record_history:
        args.extend([from_status, actor, actor_id, reason, at])
        k = len(args)
        history = (
            f", h AS (INSERT INTO order_status_history (order_id, from_status, to_status, actor, actor_id, "
            f"reason, at) VALUES ($1, ${k - 4}, $2, ${k - 3}, ${k - 2}, ${k - 1}, ${k}))"
        )
    outbox = ""
    if events:
        k = len(args)
        args.extend(_outbox_args(events))
        outbox = f", e AS ({_OUTBOX_CTE.format(k + 1, k + 2, k + 3, k + 4, k + 5)})"
    await conn.execute(
        f"WITH u AS (UPDATE orders SET {', '.join(sets)} WHERE id = $1 RETURNING id){history}{outbox} "
        "SELECT id FROM u",
        *args,
    )


async def list_orders(
    conn: asyncpg.Connection, *, customer_id: str | None, store_id: str | None, tenant_id: str | None,
    statuses: list[str] | None, cursor: str | None, limit: int,
) -> list[Row]:
    return await conn.fetch(
        "SELECT id, status, store_id, customer_id, total, currency, placed_at, accept_by, ready_at, courier_id "
        "FROM orders WHERE ($1::text IS NULL OR customer_id = $1) AND ($2::text IS NULL OR store_id = $2) "
        "AND ($3::text IS NULL OR tenant_id = $3) AND ($4::text[] IS NULL OR status = ANY($4)) "
        "AND ($5::text IS NULL OR id < $5) ORDER BY id DESC LIMIT $6",
        customer_id, store_id, tenant_id, statuses, cursor, limit,
    )


async def overdue_orders(conn: asyncpg.Connection, now: datetime, limit: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT id FROM orders WHERE status = 'placed' AND accept_by <= $1 ORDER BY accept_by LIMIT $2",
        now, limit,
    )
    return [r["id"] for r in rows]


async def bump_expiry_streak(conn: asyncpg.Connection, store_id: str) -> int:
    return await conn.fetchval(
        "INSERT INTO store_expiry_streaks (store_id, streak) VALUES ($1, 1) ON CONFLICT (store_id) "
        "DO UPDATE SET streak = store_expiry_streaks.streak + 1 RETURNING streak",
        store_id,
    )


async def reset_expiry_streak(conn: asyncpg.Connection, store_id: str) -> None:
    await conn.execute("UPDATE store_expiry_streaks SET streak = 0 WHERE store_id = $1 AND streak <> 0", store_id)


async def lines_of(conn: asyncpg.Connection, order_id: str) -> list[Row]:
    return await conn.fetch(
        "SELECT line_no, item_id, quantity, line_total, missing_quantity FROM order_lines WHERE order_id = $1 "
        "ORDER BY line_no", order_id,
    )


async def mark_missing(conn: asyncpg.Connection, order_id: str, missing: dict[int, int]) -> None:
    await conn.execute(
        "UPDATE order_lines l SET missing_quantity = l.missing_quantity + m.q FROM unnest($2::int[], $3::int[]) "
        "AS m(n, q) WHERE l.order_id = $1 AND l.line_no = m.n",
        order_id, list(missing), list(missing.values()),
    )


async def add_payment(
    conn: asyncpg.Connection, order_id: str, kind: str, amount: int, at: datetime, *,
    intent_id: str | None = None, tax: int = 0, reference: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO order_payments (order_id, kind, intent_id, amount, tax, reference, at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        order_id, kind, intent_id, amount, tax, reference, at,
    )


async def payments_of(conn: asyncpg.Connection, order_id: str) -> list[Row]:
    return await conn.fetch(
        "SELECT kind, intent_id, amount, tax, settled FROM order_payments WHERE order_id = $1 ORDER BY id",
        order_id,
    )


async def settle_payments(conn: asyncpg.Connection, order_id: str, kind: str) -> None:
    await conn.execute(
        "UPDATE order_payments SET settled = true WHERE order_id = $1 AND kind = $2 AND NOT settled",
        order_id, kind,
    )


async def assign_courier(conn: asyncpg.Connection, order_ids: list[str], courier_id: str) -> None:
    await conn.execute(
        "UPDATE orders SET courier_id = $2 WHERE id = ANY($1) "
        "AND status IN ('placed', 'accepted', 'preparing', 'ready')",
        order_ids, courier_id,
    )


async def unassign_courier(conn: asyncpg.Connection, order_ids: list[str], courier_id: str) -> None:
    await conn.execute(
        "UPDATE orders SET courier_id = NULL WHERE id = ANY($1) AND courier_id = $2 "
        "AND status IN ('placed', 'accepted', 'preparing', 'ready')",
        order_ids, courier_id,
    )


async def set_rating(conn: asyncpg.Connection, order_id: str, stars: int, comment: str | None) -> bool:
    return bool(await conn.fetchval(
        "UPDATE orders SET rating = $2, rating_comment = $3 WHERE id = $1 AND rating IS NULL RETURNING true",
        order_id, stars, comment,
    ))
