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
from fractions import Fraction
from typing import Any, TypeAlias

import asyncpg
import msgspec

from kernel.money import Money
from kernel.outbox import Event, encode_event
from orders.model import Status
from orders.order import Order, OrderHeader, OrderLine, OrderParties, Transition
from orders.pricing import PriceBreakdown, Promo, PromoKind, PromoUsage, breakdown_from_dict
from orders.quote import QuoteClaim

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


async def claim_quote(conn: asyncpg.Connection, quote_id: str, customer_id: str, key: str,
                      order_id: str) -> QuoteClaim:
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
    row = await conn.fetchrow(
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
    return QuoteClaim(
        quote_id=row["id"], request=row["request"], total=row["total"], expires_at=row["expires_at"],
        surge=Fraction(row["surge"]) if row["surge"] else None, claimed=row["claimed"], used_by=row["used_by"],
        existing_order=row["existing_order"], first_order=row["first_order"],
    )


async def quote_taken(conn: asyncpg.Connection, quote_id: str, customer_id: str,
                      key: str) -> tuple[str | None, str | None]:
    """After a claim lost to a concurrent checkout (a fresh snapshot): the order that took the quote,
    and the order this key made, if that checkout was this key's own."""
    row = await conn.fetchrow(
        "SELECT (SELECT order_id FROM order_quotes WHERE id = $1) AS used_by, "
        "(SELECT id FROM orders WHERE customer_id = $2 AND idempotency_key = $3) AS existing_order",
        quote_id, customer_id, key,
    )
    return row["used_by"], row["existing_order"]


async def order_id_by_key(conn: asyncpg.Connection, customer_id: str, key: str) -> str | None:
    """The order the customer's idempotency key placed, if any."""
    order_id: str | None = await conn.fetchval(
        "SELECT id FROM orders WHERE customer_id = $1 AND idempotency_key = $2", customer_id, key)
    return order_id


# ---- promos ----------------------------------------------------------------------------------------

PROMO_COLUMNS = (
    "id, code, kind, percent_bps, amount, currency, max_discount, min_subtotal, first_order_only, "
    "per_customer_limit, budget, budget_used, valid_from, valid_until, store_id, active, tenant_id"
)


def _promo(row: Row) -> Promo:
    return Promo(
        id=row["id"], code=row["code"], kind=PromoKind(row["kind"]), percent_bps=row["percent_bps"],
        amount=row["amount"], currency=row["currency"], max_discount=row["max_discount"],
        min_subtotal=row["min_subtotal"], first_order_only=row["first_order_only"],
        per_customer_limit=row["per_customer_limit"], budget=row["budget"], budget_used=row["budget_used"],
        valid_from=row["valid_from"], valid_until=row["valid_until"], store_id=row["store_id"], active=row["active"],
        tenant_id=row["tenant_id"],
    )


async def promo_with_usage(conn: asyncpg.Connection, code: str, customer_id: str, *,
                           tenant_id: str) -> tuple[Promo, PromoUsage] | None:
    """The promo `code` names at a store of `tenant_id`: the tenant's own, else a platform-wide one
    (codes are unique per tenant, so another tenant's code of the same spelling is never found),
    with what the customer did before as far as its rules care."""
    row = await conn.fetchrow(
        f"SELECT {PROMO_COLUMNS}, "
        "(SELECT count(*) FROM promo_redemptions r WHERE r.promo_id = p.id AND r.customer_id = $2 "
        " AND r.released_at IS NULL) AS redemptions_by_customer, "
        "EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = $2 "
        " AND o.status NOT IN ('cancelled', 'rejected', 'expired')) AS customer_has_orders "
        "FROM promos p WHERE upper(p.code) = upper($1) AND (p.tenant_id = $3 OR p.tenant_id IS NULL) "
        "ORDER BY p.tenant_id IS NULL LIMIT 1",
        code, customer_id, tenant_id,
    )
    if row is None:
        return None
    return _promo(row), PromoUsage(row["redemptions_by_customer"], row["customer_has_orders"])


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


async def insert_promo(conn: asyncpg.Connection, values: dict[str, Any]) -> Promo:
    columns = list(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return _promo(await conn.fetchrow(
        f"INSERT INTO promos ({', '.join(columns)}) VALUES ({placeholders}) RETURNING {PROMO_COLUMNS}",
        *values.values(),
    ))


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
    conn: asyncpg.Connection, order: dict[str, Any], lines: Sequence[tuple], events: Sequence[Event], *,
    pricing: PriceBreakdown | None = None,
) -> Order:
    """The order, its lines, its first history row and its events, in one round trip; returns the
    order as `order_view` does (built from the inserted rows, so the response needs no read back).
    `lines`: (line_no, item_id, name, quantity, unit_price, line_total, options_json); `pricing`: the
    breakdown the order's pricing column was written from, when the caller has it (checkout's hot
    path: spares parsing it back)."""
    line_args = [list(col) for col in zip(*lines, strict=True)] if lines else [[]] * 7
    return _order(await conn.fetchrow(_insert_order_sql(tuple(order)), *order.values(), *line_args,
                                      *_outbox_args(events)), pricing)


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
    "captured, proof::text AS proof, rating, rating_comment, delivery_note, courier_by_operator"
)


_LINE_COLUMNS = "line_no, item_id, name, quantity, unit_price, line_total, options, missing_quantity"
_HISTORY_COLUMNS = "id, from_status, to_status, actor, reason, at"


async def lock_order(conn: asyncpg.Connection, order_id: str) -> Row | None:
    return await conn.fetchrow(f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 FOR UPDATE", order_id)


async def courier_and_status(conn: asyncpg.Connection, order_id: str) -> tuple[str | None, str | None]:
    """The order's assigned courier and its status ((None, None): no such order)."""
    row = await conn.fetchrow("SELECT courier_id, status FROM orders WHERE id = $1", order_id)
    return (None, None) if row is None else (row["courier_id"], row["status"])


async def order_parties(conn: asyncpg.Connection, order_id: str) -> OrderParties | None:
    """Who the order belongs to and where it stands (for a live view's access check), with the
    time of its last transition."""
    row = await conn.fetchrow(
        "SELECT id, customer_id, tenant_id, region, status, courier_id, store_id, "
        "coalesce((SELECT max(at) FROM order_status_history h WHERE h.order_id = o.id), placed_at) AS at "
        "FROM orders o WHERE id = $1",
        order_id,
    )
    return None if row is None else OrderParties(row["id"], row["customer_id"], row["tenant_id"], row["region"],
                                                 row["status"], row["courier_id"], row["at"], row["store_id"])


class _LineRow(msgspec.Struct):
    """An `order_lines` row as `json_agg` gives it."""

    line_no: int
    item_id: str
    name: str
    quantity: int
    unit_price: int
    line_total: int
    options: list[dict[str, Any]]
    missing_quantity: int


class _HistoryRow(msgspec.Struct):
    """An `order_status_history` row as `json_agg` gives it."""

    from_status: str | None
    to_status: str
    actor: str
    reason: str | None
    at: datetime


# Typed decoders, built once: they read an order's lines and history several times faster than
# json.loads plus per-field conversion, which keeps building an `Order` off checkout's CPU budget.
_lines_decoder = msgspec.json.Decoder(list[_LineRow])
_history_decoder = msgspec.json.Decoder(list[_HistoryRow])


def _order(row: Row, pricing: PriceBreakdown | None = None) -> Order:
    """The order of a row of `ORDER_COLUMNS` with its `lines` and `history` as JSON arrays (`pricing`:
    the breakdown its pricing column holds, when known)."""
    cur = row["currency"]
    return Order(
        id=row["id"], status=Status(row["status"]), customer_id=row["customer_id"], store_id=row["store_id"],
        tenant_id=row["tenant_id"], region=row["region"],
        pricing=pricing or breakdown_from_dict(msgspec.json.decode(row["pricing"])),
        total=Money(row["total"], cur), refunded=Money(row["refunded"], cur), captured=Money(row["captured"], cur),
        cancel_fee=Money(row["cancel_fee"], cur), pickup=(row["pickup_lat"], row["pickup_lng"]),
        dropoff=(row["dropoff_lat"], row["dropoff_lng"]), address=row["address"], placed_at=row["placed_at"],
        accept_by=row["accept_by"], accepted_at=row["accepted_at"], prep_time_s=row["prep_time_s"],
        ready_at=row["ready_at"], picked_up_at=row["picked_up_at"], delivered_at=row["delivered_at"],
        promised_window=(row["promised_from"], row["promised_to"]), courier_id=row["courier_id"],
        end_reason=row["end_reason"], rating=row["rating"],
        lines=tuple(
            OrderLine(ln.line_no, ln.item_id, ln.name, ln.quantity, Money(ln.unit_price, cur),
                      Money(ln.line_total, cur), ln.options, ln.missing_quantity)
            for ln in _lines_decoder.decode(row["lines"])),
        history=tuple(Transition(h.from_status, h.to_status, h.actor, h.reason, h.at)
                      for h in _history_decoder.decode(row["history"])),
        delivery_note=row["delivery_note"],
    )


async def order_view(conn: asyncpg.Connection, order_id: str) -> Order | None:
    """The order with its lines and history, in one round trip."""
    row = await conn.fetchrow(
        f"SELECT {ORDER_COLUMNS}, "
        f"(SELECT coalesce(json_agg(l ORDER BY l.line_no), '[]') FROM (SELECT {_LINE_COLUMNS} FROM order_lines "
        " WHERE order_id = $1) l)::text AS lines, "
        f"(SELECT coalesce(json_agg(h ORDER BY h.id), '[]') FROM (SELECT {_HISTORY_COLUMNS} "
        " FROM order_status_history WHERE order_id = $1) h)::text AS history "
        "FROM orders WHERE id = $1",
        order_id,
    )
    return None if row is None else _order(row)


# Columns a transition may set; None leaves the current value.
TRANSITION_FIELDS = (
    "accepted_at", "ready_at", "prep_time_s", "picked_up_at", "delivered_at", "ended_at", "end_reason",
    "courier_id", "courier_by_operator", "cancel_fee", "captured", "refunded", "total", "proof", "pricing",
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
) -> list[OrderHeader]:
    rows = await conn.fetch(
        "SELECT id, status, store_id, customer_id, total, currency, placed_at, accept_by, ready_at, courier_id "
        "FROM orders WHERE ($1::text IS NULL OR customer_id = $1) AND ($2::text IS NULL OR store_id = $2) "
        "AND ($3::text IS NULL OR tenant_id = $3) AND ($4::text[] IS NULL OR status = ANY($4)) "
        "AND ($5::text IS NULL OR id < $5) ORDER BY id DESC LIMIT $6",
        customer_id, store_id, tenant_id, statuses, cursor, limit,
    )
    return [OrderHeader(r["id"], r["status"], r["store_id"], r["customer_id"], Money(r["total"], r["currency"]),
                        r["placed_at"], r["accept_by"], r["ready_at"], r["courier_id"]) for r in rows]


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


async def assign_courier(conn: asyncpg.Connection, order_ids: list[str], courier_id: str) -> None:
    """Dispatch's assignment (`dispatch.assigned`): not of an order an operator gave a courier by hand
    (dispatch's decision about it is older than the hand-over, see migrations/0006)."""
    await conn.execute(
        "UPDATE orders SET courier_id = $2 WHERE id = ANY($1) "
        "AND status IN ('placed', 'accepted', 'preparing', 'ready') AND NOT courier_by_operator",
        order_ids, courier_id,
    )


async def unassign_courier(conn: asyncpg.Connection, order_ids: list[str], courier_id: str) -> None:
    """The courier let go of the orders (`dispatch.unassigned`): back to dispatch, whoever assigned them."""
    await conn.execute(
        "UPDATE orders SET courier_id = NULL, courier_by_operator = false WHERE id = ANY($1) AND courier_id = $2 "
        "AND status IN ('placed', 'accepted', 'preparing', 'ready')",
        order_ids, courier_id,
    )


async def set_rating(conn: asyncpg.Connection, order_id: str, stars: int, comment: str | None) -> bool:
    return bool(await conn.fetchval(
        "UPDATE orders SET rating = $2, rating_comment = $3 WHERE id = $1 AND rating IS NULL RETURNING true",
        order_id, stars, comment,
    ))
