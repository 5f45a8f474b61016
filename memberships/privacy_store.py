"""Memberships' part of a person's privacy rights (docs/PRIVACY.md), the package's narrow public interface
for them: `export_person` (a customer's subscriptions and invoices), `live_subscriptions` (an erasure waits
until the membership has ended: its renewals still charge the customer's card) and `erase_person`
(invoices and subscriptions stay, as financial records under the bare account id; nothing in them names
the person). Plain SQL over memberships' own tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from kernel.http import CUSTOMER, Principal


async def export_person(conn: asyncpg.Connection, person: Principal) -> dict[str, Any]:
    if person.role != CUSTOMER:
        return {}
    subscriptions = await conn.fetch(
        "SELECT s.id, s.plan_id, p.name AS plan, s.status, s.payment_method_id, s.current_period_start, "
        "s.current_period_end, s.trial_end, s.cancel_at_period_end, s.canceled_at, s.cancel_reason, s.created_at "
        "FROM membership_subscriptions s JOIN membership_plans p ON p.id = s.plan_id "
        "WHERE s.customer_id = $1 ORDER BY s.created_at, s.id", person.account_id)
    invoices = await conn.fetch(
        "SELECT id, subscription_id, period_start, period_end, currency, amount, status, attempts, "
        "payment_intent_id, amount_refunded, created_at, paid_at FROM membership_invoices "
        "WHERE customer_id = $1 ORDER BY created_at, id", person.account_id)
    return {"subscriptions": [dict(r) for r in subscriptions], "invoices": [dict(r) for r in invoices]}


async def live_subscriptions(conn: asyncpg.Connection, person: Principal) -> int:
    """The customer's subscriptions that have not ended (renewals would still charge their card)."""
    if person.role != CUSTOMER:
        return 0
    return int(await conn.fetchval(
        "SELECT count(*) FROM membership_subscriptions WHERE customer_id = $1 AND status <> 'canceled'",
        person.account_id))


async def erase_person(conn: asyncpg.Connection, person: Principal, at: datetime) -> dict[str, Any]:
    """The reasons given for cancelling go (free text); subscriptions and invoices stay. Idempotent."""
    if person.role != CUSTOMER:
        return {"subscriptions": 0}
    done = await conn.execute("UPDATE membership_subscriptions SET cancel_reason = NULL, updated_at = $2 "
                              "WHERE customer_id = $1 AND cancel_reason IS NOT NULL", person.account_id, at)
    return {"subscriptions": int(done.split()[-1])}
