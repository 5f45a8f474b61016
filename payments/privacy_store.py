"""Payments' part of a person's privacy rights (docs/PRIVACY.md), the package's narrow public interface for
them: `export_person` (cards as brand, last4 and fingerprint only, never the number or the vault's
ciphertext; intents, refunds, credits, conversion quotes; a courier's earnings and payouts) and
`erase_person` (the cards' numbers destroyed and holder names gone; intents, refunds, the ledger and payouts
stay, as financial records, under the pseudonymous account id). Plain SQL over payments' own tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from kernel.http import COURIER, CUSTOMER, Principal


def _rows(records: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(r) for r in records]


async def _customer(conn: asyncpg.Connection, customer_id: str) -> dict[str, Any]:
    methods = _rows(await conn.fetch(
        "SELECT id, brand, last4, fingerprint, exp_month, exp_year, holder_name, is_default, created_at, detached_at "
        "FROM payment_methods WHERE customer_id = $1 ORDER BY created_at, id", customer_id))
    intents = _rows(await conn.fetch(
        "SELECT id, payment_method_id, amount, currency, status, amount_captured, amount_refunded, reference, "
        "created_at FROM payment_intents WHERE customer_id = $1 ORDER BY created_at, id", customer_id))
    refunds = _rows(await conn.fetch(
        "SELECT r.id, r.payment_intent_id, r.amount, r.currency, r.status, r.destination, r.reason, r.created_by, "
        "r.created_at FROM payment_refunds r JOIN payment_intents i ON i.id = r.payment_intent_id "
        "WHERE i.customer_id = $1 ORDER BY r.created_at, r.id", customer_id))
    credits = _rows(await conn.fetch(
        "SELECT id, amount, currency, expires_at, expired_amount, granted_by, reason, created_at "
        "FROM payment_wallet_credits WHERE customer_id = $1 ORDER BY created_at, id", customer_id))
    fraud = _rows(await conn.fetch(
        "SELECT id, intent_id, score, level, action, reasons, created_at FROM fraud_decisions "
        "WHERE customer_id = $1 ORDER BY created_at, id", customer_id))
    conversions = _rows(await conn.fetch(
        "SELECT q.id, q.rate_id, q.from_currency, q.from_amount, q.to_currency, q.to_amount, q.expires_at, "
        "q.conversion_id, q.used_at, q.created_at FROM conversion_quotes q WHERE q.customer_id = $1 "
        "ORDER BY q.created_at, q.id", customer_id))
    # What operators did about the customer's money: refunds they started, credits they granted.
    support = [{"kind": "refund", **r} for r in refunds if r["created_by"] != customer_id] + [
        {"kind": "credit", **c} for c in credits]
    return {"payment_methods": methods, "payment_intents": intents, "refunds": refunds, "wallet_credits": credits,
            "fraud_decisions": fraud, "conversion_quotes": conversions, "support_actions": support}


async def _ledger(conn: asyncpg.Connection, owner_id: str) -> dict[str, Any]:
    accounts = _rows(await conn.fetch(
        "SELECT id, kind, currency, balance, created_at FROM ledger_accounts WHERE owner_id = $1 ORDER BY id",
        owner_id))
    postings = _rows(await conn.fetch(
        "SELECT p.account_id, p.entry_id, p.amount, p.currency, e.kind, e.reason, e.reference, e.created_at "
        "FROM postings p JOIN journal_entries e ON e.id = p.entry_id "
        "WHERE p.account_id = ANY($1::text[]) ORDER BY e.created_at, p.entry_id, p.seq",
        [a["id"] for a in accounts]))
    payouts = _rows(await conn.fetch(
        "SELECT id, kind, amount, fee, currency, instant, status, failure_reason, created_at FROM payouts "
        "WHERE owner_id = $1 ORDER BY created_at, id", owner_id))
    return {"ledger_accounts": accounts, "earnings": postings, "payouts": payouts}


async def export_person(conn: asyncpg.Connection, person: Principal) -> dict[str, Any]:
    if person.role == CUSTOMER:
        return await _customer(conn, person.account_id) | await _ledger(conn, person.account_id)
    if person.role == COURIER:
        return await _ledger(conn, person.account_id)
    return {}


async def erase_person(conn: asyncpg.Connection, person: Principal, at: datetime) -> dict[str, Any]:
    """The customer's cards detached, their numbers deleted from the vault and holder names gone; the
    fraud screening's reasons (which may name the device or network) emptied. Idempotent."""
    if person.role != CUSTOMER:
        return {"payment_methods": 0}
    methods = await conn.fetch(
        "UPDATE payment_methods SET holder_name = NULL, is_default = false, detached_at = coalesce(detached_at, $2) "
        "WHERE customer_id = $1 RETURNING id", person.account_id, at)
    ids = [r["id"] for r in methods]
    await conn.execute("DELETE FROM card_vault WHERE payment_method_id = ANY($1::text[])", ids)
    await conn.execute("UPDATE fraud_decisions SET reasons = '[]'::jsonb WHERE customer_id = $1", person.account_id)
    return {"payment_methods": len(ids)}


async def purge_delivered_webhooks(conn: asyncpg.Connection, before: datetime, *, batch: int = 5000) -> int:
    """Retention: payment webhook deliveries delivered (or failed for good) before `before` go; pending stay."""
    gone = await conn.fetch(
        """DELETE FROM payment_webhook_deliveries WHERE id IN (
               SELECT id FROM payment_webhook_deliveries
                WHERE (status = 'delivered' AND delivered_at < $1) OR (status = 'failed' AND next_attempt_at < $1)
                LIMIT $2) RETURNING id""", before, batch)
    return len(gone)
