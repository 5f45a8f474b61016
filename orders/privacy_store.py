"""Orders' part of a person's privacy rights (docs/PRIVACY.md), the package's narrow public interface for
them: `export_person` (what orders holds about a customer or courier) and `erase_person` (a customer's
personal data pseudonymised; the orders, their money and their history stay, linked only by the account
id, whose name and email the composition root erases). Plain SQL over orders' own tables; the
composition root (`fooddispatch.privacy`) calls them with its connection and person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from kernel.http import COURIER, CUSTOMER, Principal

ERASED = "[erased]"
# Coordinates of an erased customer's drop-off are kept to 2 decimals (about a kilometre): the order's
# distance and fees stay explainable, the door does not.
ROUND_TO = 2

_ORDER = """SELECT id, status, store_id, tenant_id, currency, total, pricing, placed_at, accepted_at, picked_up_at,
       delivered_at, ended_at, end_reason, address, delivery_note, dropoff_lat, dropoff_lng, scheduled_for,
       payment_method_id, intent_id, captured, refunded, cancel_fee, rating, rating_comment, courier_id
  FROM orders WHERE customer_id = $1 ORDER BY placed_at, id"""


def _rows(records: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(r) for r in records]


def _by_order(records: list[asyncpg.Record]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        row = dict(r)
        found.setdefault(row.pop("order_id"), []).append(row)
    return found


async def _customer_orders(conn: asyncpg.Connection, customer_id: str) -> list[dict[str, Any]]:
    orders = _rows(await conn.fetch(_ORDER, customer_id))
    ids = [o["id"] for o in orders]
    lines = _by_order(await conn.fetch(
        "SELECT order_id, line_no, item_id, name, quantity, unit_price, line_total, options, missing_quantity "
        "FROM order_lines WHERE order_id = ANY($1::text[]) ORDER BY order_id, line_no", ids))
    history = _by_order(await conn.fetch(
        "SELECT order_id, from_status, to_status, actor, actor_id, reason, at FROM order_status_history "
        "WHERE order_id = ANY($1::text[]) ORDER BY order_id, id", ids))
    payments = _by_order(await conn.fetch(
        "SELECT order_id, kind, amount, tax, at FROM order_payments WHERE order_id = ANY($1::text[]) "
        "ORDER BY order_id, id", ids))
    refunds = _by_order(await conn.fetch(
        "SELECT order_id, refund_id, amount, reason, at FROM order_refunds WHERE order_id = ANY($1::text[]) "
        "ORDER BY order_id, at", ids))
    for o in orders:
        o["lines"], o["history"] = lines.get(o["id"], []), history.get(o["id"], [])
        o["payments"], o["refunds"] = payments.get(o["id"], []), refunds.get(o["id"], [])
    return orders


async def export_person(conn: asyncpg.Connection, person: Principal) -> dict[str, Any]:
    """A customer's orders (lines, status history, money moves, refunds, rating), the addresses they gave,
    and what operators and the system did to their orders; a courier's deliveries (no customer's data)."""
    if person.role == CUSTOMER:
        orders = await _customer_orders(conn, person.account_id)
        addresses = sorted({o["address"] for o in orders if o["address"]})
        actions = [dict(h, order_id=o["id"]) for o in orders for h in o["history"]
                   if h["actor"] in ("operator", "system")]
        revocations = _rows(await conn.fetch(
            "SELECT r.order_id, r.link_id, r.revoked_at, r.revoked_by FROM order_tracking_revocations r "
            "JOIN orders o ON o.id = r.order_id WHERE o.customer_id = $1 ORDER BY r.revoked_at", person.account_id))
        return {"orders": orders, "addresses": addresses, "support_actions": actions,
                "tracking_link_revocations": revocations}
    if person.role == COURIER:
        carried = _rows(await conn.fetch(
            "SELECT id, status, store_id, picked_up_at, delivered_at, proof FROM orders WHERE courier_id = $1 "
            "ORDER BY placed_at, id", person.account_id))
        return {"deliveries": carried}
    return {}


async def orders_in_progress(conn: asyncpg.Connection, person: Principal) -> int:
    """The person's orders that have not ended (a customer's, or those a courier carries): their address
    is still needed to deliver them, so an erasure waits for them."""
    column = {CUSTOMER: "customer_id", COURIER: "courier_id"}.get(person.role)
    if column is None:
        return 0
    return int(await conn.fetchval(
        f"SELECT count(*) FROM orders WHERE {column} = $1 AND status NOT IN "
        "('delivered', 'rejected', 'cancelled', 'expired')", person.account_id))


async def erase_person(conn: asyncpg.Connection, person: Principal, at: datetime) -> dict[str, Any]:
    """Pseudonymise a customer's orders: address, delivery note and rating comment gone, the drop-off
    rounded, the quotes' copies of them gone, every tracking link revoked. Amounts, lines, statuses and
    history stay (financial records). Idempotent. Returns counts and the order ids (for the packages
    that hold a projection of them); a courier's orders name them by id only: nothing to do."""
    if person.role != CUSTOMER:
        return {"orders": 0, "order_ids": []}
    ids = await conn.fetch(
        """UPDATE orders SET address = $2, delivery_note = NULL, rating_comment = NULL,
                  dropoff_lat = round(dropoff_lat::numeric, $3)::double precision,
                  dropoff_lng = round(dropoff_lng::numeric, $3)::double precision
            WHERE customer_id = $1 RETURNING id""",
        person.account_id, ERASED, ROUND_TO,
    )
    await conn.execute(
        "UPDATE order_quotes SET request = request - 'address' - 'delivery_note' - 'dropoff' WHERE customer_id = $1",
        person.account_id)
    order_ids = [r["id"] for r in ids]
    await conn.execute(
        "INSERT INTO order_tracking_revocations (order_id, link_id, revoked_at, revoked_by) "
        "SELECT unnest($1::text[]), '*', $2, 'privacy:erasure' "
        "ON CONFLICT (order_id, link_id) DO UPDATE SET revoked_at = greatest(order_tracking_revocations.revoked_at, "
        "excluded.revoked_at)", order_ids, at)
    return {"orders": len(order_ids), "order_ids": order_ids}


async def purge_delivered_webhooks(conn: asyncpg.Connection, before: datetime, *, batch: int = 5000) -> int:
    """Retention: merchant webhook deliveries finished (succeeded or failed for good) before `before` go,
    with their attempts. Pending ones stay whatever their age. Returns how many deliveries went."""
    gone = await conn.fetch(
        """WITH d AS (DELETE FROM webhook_deliveries WHERE id IN (
                SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND completed_at < $1 LIMIT $2)
              RETURNING id),
            a AS (DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM d))
           SELECT id FROM d""", before, batch)
    return len(gone)
