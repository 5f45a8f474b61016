"""The memberships Postgres adapter: plans, subscriptions and invoices. The only file with SQL.

Every function takes the caller's connection, so a command's writes (and the payments calls that
join them) are one transaction. Rows come back as the model's values, never as driver records.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from kernel.money import Money
from memberships.model import Benefits, Interval, Invoice, InvoiceStatus, Plan, Status, Subscription

_SUBSCRIPTION_COLUMNS = (
    "id", "customer_id", "plan_id", "status", "payment_method_id", "anchor", "period_index", "current_period_start",
    "current_period_end", "trial_end", "cancel_at_period_end", "canceled_at", "cancel_reason", "next_action_at",
    "open_invoice_id", "dunning_attempts", "created_at")
_SUBSCRIPTION_CHANGES = frozenset(_SUBSCRIPTION_COLUMNS) - {"id", "customer_id", "plan_id", "created_at"}
_INVOICE_CHANGES = frozenset({"status", "attempts", "payment_intent_id", "last_error", "amount_refunded",
                              "refund_id", "paid_at"})


def _plan(row: asyncpg.Record) -> Plan:
    cur = row["currency"]
    return Plan(id=row["id"], name=row["name"], region=row["region"], price=Money(row["amount"], cur),
                interval=Interval(row["interval"]), trial_days=row["trial_days"],
                benefits=Benefits(cur, row["free_delivery_min_subtotal"], row["service_fee_discount_bps"]),
                active=row["active"], created_at=row["created_at"])


def _subscription(row: asyncpg.Record) -> Subscription:
    values = {name: row[name] for name in _SUBSCRIPTION_COLUMNS}
    values["status"] = Status(values["status"])
    return Subscription(**values)


def _invoice(row: asyncpg.Record) -> Invoice:
    error = row["last_error"]
    return Invoice(
        id=row["id"], subscription_id=row["subscription_id"], customer_id=row["customer_id"],
        period_index=row["period_index"], period_start=row["period_start"], period_end=row["period_end"],
        amount=Money(row["amount"], row["currency"]), status=InvoiceStatus(row["status"]), attempts=row["attempts"],
        payment_intent_id=row["payment_intent_id"], last_error=json.loads(error) if isinstance(error, str) else error,
        amount_refunded=row["amount_refunded"], refund_id=row["refund_id"], created_at=row["created_at"],
        paid_at=row["paid_at"])


# ---------------------------------------------------------------- plans


async def insert_plan(conn: asyncpg.Connection, plan: Plan, created_by: str) -> Plan:
    row = await conn.fetchrow(
        """INSERT INTO membership_plans (id, name, region, currency, amount, interval, trial_days,
                                         free_delivery_min_subtotal, service_fee_discount_bps, active, created_by,
                                         created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *""",
        plan.id, plan.name, plan.region, plan.price.currency, plan.price.amount, plan.interval.value,
        plan.trial_days, plan.benefits.free_delivery_min_subtotal, plan.benefits.service_fee_discount_bps,
        plan.active, created_by, plan.created_at)
    return _plan(row)


async def get_plan(conn: asyncpg.Connection, plan_id: str) -> Plan | None:
    row = await conn.fetchrow("SELECT * FROM membership_plans WHERE id = $1", plan_id)
    return None if row is None else _plan(row)


async def list_plans(conn: asyncpg.Connection, *, region: str | None, currency: str | None, active_only: bool,
                     starting_after: str | None = None, limit: int) -> list[Plan]:
    """Newest first (ids are time-ordered and unique, so the order is total); the page after the id
    `starting_after` (keyset, no OFFSET)."""
    rows = await conn.fetch(
        """SELECT * FROM membership_plans
            WHERE ($1::text IS NULL OR region = $1) AND ($2::text IS NULL OR currency = $2) AND (active OR NOT $3)
              AND ($4::text IS NULL OR id < $4)
            ORDER BY id DESC LIMIT $5""", region, currency, active_only, starting_after, limit)
    return [_plan(r) for r in rows]


async def set_plan_active(conn: asyncpg.Connection, plan_id: str, active: bool) -> Plan | None:
    row = await conn.fetchrow("UPDATE membership_plans SET active = $2 WHERE id = $1 RETURNING *", plan_id, active)
    return None if row is None else _plan(row)


# ---------------------------------------------------------------- subscriptions


async def insert_subscription(conn: asyncpg.Connection, sub: Subscription) -> Subscription | None:
    """The new subscription, or None when the customer has one that has not ended."""
    values = [getattr(sub, name) for name in _SUBSCRIPTION_COLUMNS]
    values[_SUBSCRIPTION_COLUMNS.index("status")] = sub.status.value
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 2))
    row = await conn.fetchrow(
        f"""INSERT INTO membership_subscriptions ({", ".join(_SUBSCRIPTION_COLUMNS)}, updated_at) VALUES ({marks})
            ON CONFLICT (customer_id) WHERE status <> 'canceled' DO NOTHING RETURNING *""",
        *values, sub.created_at)
    return None if row is None else _subscription(row)


async def claim_trial(conn: asyncpg.Connection, customer_id: str, sub_id: str, at: datetime) -> bool:
    """Record that the customer's subscription `sub_id` (about to be inserted, in this transaction) starts
    their one trial: False when they have had one (a committed row, or a concurrent transaction's, which
    this insert waits for on the primary key and sees once it commits)."""
    row = await conn.fetchval(
        """INSERT INTO membership_trials (customer_id, subscription_id, started_at) VALUES ($1, $2, $3)
            ON CONFLICT (customer_id) DO NOTHING RETURNING customer_id""", customer_id, sub_id, at)
    return row is not None


async def get_subscription(conn: asyncpg.Connection, sub_id: str, *, lock: bool = False) -> Subscription | None:
    row = await conn.fetchrow(
        "SELECT * FROM membership_subscriptions WHERE id = $1" + (" FOR UPDATE" if lock else ""), sub_id)
    return None if row is None else _subscription(row)


async def list_subscriptions(conn: asyncpg.Connection, customer_id: str | None, limit: int, *,
                             starting_after: str | None = None) -> list[Subscription]:
    """Newest first by id; the page after the id `starting_after` (keyset, no OFFSET)."""
    rows = await conn.fetch(
        """SELECT * FROM membership_subscriptions WHERE ($1::text IS NULL OR customer_id = $1)
              AND ($2::text IS NULL OR id < $2)
            ORDER BY id DESC LIMIT $3""", customer_id, starting_after, limit)
    return [_subscription(r) for r in rows]


async def update_subscription(conn: asyncpg.Connection, sub_id: str, now: datetime, **changes: Any) -> Subscription:
    unknown = set(changes) - _SUBSCRIPTION_CHANGES
    if unknown:
        raise ValueError(f"not a subscription column to change: {sorted(unknown)}")
    names = sorted(changes)
    values = [changes[n].value if isinstance(changes[n], Status) else changes[n] for n in names]
    sets = ", ".join(f"{n} = ${i}" for i, n in enumerate(names, start=3))
    row = await conn.fetchrow(
        f"UPDATE membership_subscriptions SET updated_at = $2{', ' + sets if sets else ''} WHERE id = $1 RETURNING *",
        sub_id, now, *values)
    return _subscription(row)


async def claim_due(conn: asyncpg.Connection, now: datetime, *, skip: Sequence[str] = ()) -> Subscription | None:
    """One subscription whose next action is due (and not in `skip`), locked for this transaction; rows
    another worker holds are skipped (`SKIP LOCKED`), so every process may run the job and each due
    subscription is handled by one of them."""
    row = await conn.fetchrow(
        """SELECT * FROM membership_subscriptions
            WHERE status <> 'canceled' AND next_action_at <= $1 AND id <> ALL($2::text[])
            ORDER BY next_action_at LIMIT 1 FOR UPDATE SKIP LOCKED""", now, list(skip))
    return None if row is None else _subscription(row)


async def live_benefits(conn: asyncpg.Connection, customer_id: str, region: str, currency: str,
                        statuses: Sequence[Status]) -> Benefits | None:
    """The benefits of the customer's subscription in one of `statuses`, to a plan of this region and
    currency; None when there is none."""
    row = await conn.fetchrow(
        """SELECT p.currency, p.free_delivery_min_subtotal, p.service_fee_discount_bps
             FROM membership_subscriptions s JOIN membership_plans p ON p.id = s.plan_id
            WHERE s.customer_id = $1 AND s.status = ANY($4::text[]) AND p.region = $2 AND p.currency = $3""",
        customer_id, region, currency, [s.value for s in statuses])
    return None if row is None else Benefits(row["currency"], row["free_delivery_min_subtotal"],
                                             row["service_fee_discount_bps"])


# ---------------------------------------------------------------- invoices


async def insert_invoice(conn: asyncpg.Connection, inv: Invoice) -> Invoice | None:
    """The new invoice, or None when its subscription's period has one already (unique per period)."""
    row = await conn.fetchrow(
        """INSERT INTO membership_invoices (id, subscription_id, customer_id, period_index, period_start, period_end,
                                            currency, amount, status, attempts, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (subscription_id, period_start) DO NOTHING RETURNING *""",
        inv.id, inv.subscription_id, inv.customer_id, inv.period_index, inv.period_start, inv.period_end,
        inv.amount.currency, inv.amount.amount, inv.status.value, inv.attempts, inv.created_at)
    return None if row is None else _invoice(row)


async def get_invoice(conn: asyncpg.Connection, invoice_id: str, *, lock: bool = False) -> Invoice | None:
    row = await conn.fetchrow(
        "SELECT * FROM membership_invoices WHERE id = $1" + (" FOR UPDATE" if lock else ""), invoice_id)
    return None if row is None else _invoice(row)


async def paid_invoice_of_period(conn: asyncpg.Connection, sub_id: str, period_start: datetime) -> Invoice | None:
    row = await conn.fetchrow(
        """SELECT * FROM membership_invoices WHERE subscription_id = $1 AND period_start = $2 AND status = 'paid'
            FOR UPDATE""", sub_id, period_start)
    return None if row is None else _invoice(row)


async def list_invoices(conn: asyncpg.Connection, *, customer_id: str | None, subscription_id: str | None,
                        starting_after: str | None = None, limit: int) -> list[Invoice]:
    """Newest first by id; the page after the id `starting_after` (keyset, no OFFSET)."""
    rows = await conn.fetch(
        """SELECT * FROM membership_invoices
            WHERE ($1::text IS NULL OR customer_id = $1) AND ($2::text IS NULL OR subscription_id = $2)
              AND ($3::text IS NULL OR id < $3)
            ORDER BY id DESC LIMIT $4""", customer_id, subscription_id, starting_after, limit)
    return [_invoice(r) for r in rows]


async def update_invoice(conn: asyncpg.Connection, invoice_id: str, **changes: Any) -> Invoice:
    unknown = set(changes) - _INVOICE_CHANGES
    if unknown:
        raise ValueError(f"not an invoice column to change: {sorted(unknown)}")
    names = sorted(changes)
    values = [changes[n].value if isinstance(changes[n], InvoiceStatus)
              else json.dumps(changes[n]) if n == "last_error" and changes[n] is not None else changes[n]
              for n in names]
    sets = ", ".join(f"{n} = ${i}" + ("::jsonb" if n == "last_error" else "") for i, n in enumerate(names, start=2))
    row = await conn.fetchrow(f"UPDATE membership_invoices SET {sets} WHERE id = $1 RETURNING *", invoice_id, *values)
    return _invoice(row)
