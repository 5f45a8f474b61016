"""The Postgres adapter for payment methods, the vault, intents, payment_refunds, fraud
decisions and webhook deliveries. (The ledger's SQL is in `ledger.py`, payouts'
in `wallets.py`'s store functions below: one file per concern keeps each short.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from kernel.ids import new_id
from kernel.money import Money
from kernel.outbox import Event, encode_event
from payments import ledger as ledger_sql
from payments.model import JournalEntry
from payments.vault import Sealed

_json = msgspec.json.Encoder()


def _dumps(value: Any) -> str | None:
    return None if value is None else _json.encode(value).decode()


def _loads(value: str | None) -> Any:
    return None if value is None else msgspec.json.decode(value)


@dataclass(frozen=True, slots=True)
class Intent:
    id: str
    customer_id: str
    payment_method_id: str | None
    amount: Money
    capture_method: str
    status: str
    amount_capturable: int
    amount_captured: int
    amount_refunded: int
    hold: str
    reference: str | None
    idempotency_key: str | None
    processor_ref: str | None
    next_action: dict[str, Any] | None
    last_error: dict[str, Any] | None
    cancellation_reason: str | None
    metadata: dict[str, Any]
    created_at: datetime
    # Written apart by `authorize` for a checkout (or tip) whose retry is to claim it with
    # `attach_authorized`, which clears it: the only holds the unused-hold sweeper may void.
    awaiting_order: bool = False
    # Which authorization of this intent its processor key names (`service.processor_key`): 1 until a
    # confirmation after a failed attempt starts another one (migration 0004).
    authorization_attempt: int = 1

    @classmethod
    def from_row(cls, r: asyncpg.Record) -> Intent:
        return cls(
            id=r["id"], customer_id=r["customer_id"], payment_method_id=r["payment_method_id"],
            amount=Money(r["amount"], r["currency"]), capture_method=r["capture_method"], status=r["status"],
            amount_capturable=r["amount_capturable"], amount_captured=r["amount_captured"],
            amount_refunded=r["amount_refunded"], hold=r["hold"], reference=r["reference"],
            idempotency_key=r["idempotency_key"], processor_ref=r["processor_ref"],
            next_action=_loads(r["next_action"]), last_error=_loads(r["last_error"]),
            cancellation_reason=r["cancellation_reason"], metadata=_loads(r["metadata"]) or {},
            created_at=r["created_at"], awaiting_order=r["awaiting_order"],
            authorization_attempt=r["authorization_attempt"],
        )


# ------------------------------------------------------------ payment methods


async def insert_payment_method(conn: asyncpg.Connection, *, id: str, customer_id: str, brand: str, last4: str,
                                exp_month: int, exp_year: int, fingerprint: str, holder_name: str | None,
                                sealed: Sealed) -> asyncpg.Record:
    async with conn.transaction():
        has_default = await conn.fetchval(
            "SELECT true FROM payment_methods WHERE customer_id = $1 AND is_default AND detached_at IS NULL",
            customer_id,
        )
        row = await conn.fetchrow(
            """INSERT INTO payment_methods (id, customer_id, brand, last4, exp_month, exp_year, fingerprint,
                                            holder_name, is_default)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *""",
            id, customer_id, brand, last4, exp_month, exp_year, fingerprint, holder_name, not has_default,
        )
        await conn.execute(
            "INSERT INTO card_vault (payment_method_id, key_id, nonce, ciphertext) VALUES ($1, $2, $3, $4)",
            id, sealed.key_id, sealed.nonce, sealed.ciphertext,
        )
    return row


async def get_payment_method(conn: asyncpg.Connection, pm_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM payment_methods WHERE id = $1", pm_id)


async def list_payment_methods(conn: asyncpg.Connection, customer_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM payment_methods WHERE customer_id = $1 AND detached_at IS NULL ORDER BY id DESC", customer_id
    )


async def get_payment_method_for_charge(conn: asyncpg.Connection, pm_id: str) -> asyncpg.Record | None:
    """The method and its vault row in one round trip (the vault columns are NULL once detached)."""
    return await conn.fetchrow(
        "SELECT p.*, v.key_id, v.nonce, v.ciphertext FROM payment_methods p "
        "LEFT JOIN card_vault v ON v.payment_method_id = p.id WHERE p.id = $1", pm_id,
    )


async def method_and_intent(conn: asyncpg.Connection, pm_id: str, customer_id: str,
                            idempotency_key: str | None) -> asyncpg.Record:
    """The payment method with its vault row (columns NULL when unknown), and the id of an intent the
    customer already made with this idempotency key (`existing_intent`), in one round trip."""
    return await conn.fetchrow(
        "SELECT p.*, v.key_id, v.nonce, v.ciphertext, "
        "(SELECT i.id FROM payment_intents i WHERE i.customer_id = $2 AND i.idempotency_key = $3) AS existing_intent "
        "FROM (SELECT 1) AS one LEFT JOIN payment_methods p ON p.id = $1 "
        "LEFT JOIN card_vault v ON v.payment_method_id = p.id", pm_id, customer_id, idempotency_key,
    )


def sealed_of(row: asyncpg.Record) -> Sealed | None:
    return None if row["key_id"] is None else Sealed(row["key_id"], bytes(row["nonce"]), bytes(row["ciphertext"]))


async def detach_payment_method(conn: asyncpg.Connection, pm_id: str, customer_id: str) -> asyncpg.Record | None:
    async with conn.transaction():
        row = await conn.fetchrow(
            "UPDATE payment_methods SET detached_at = now(), is_default = false "
            "WHERE id = $1 AND customer_id = $2 AND detached_at IS NULL RETURNING *", pm_id, customer_id,
        )
        if row is not None:
            await conn.execute("DELETE FROM card_vault WHERE payment_method_id = $1", pm_id)
    return row


async def set_default_payment_method(conn: asyncpg.Connection, pm_id: str, customer_id: str) -> asyncpg.Record | None:
    async with conn.transaction():
        await conn.execute(
            "UPDATE payment_methods SET is_default = false WHERE customer_id = $1 AND is_default", customer_id
        )
        return await conn.fetchrow(
            "UPDATE payment_methods SET is_default = true WHERE id = $1 AND customer_id = $2 "
            "AND detached_at IS NULL RETURNING *", pm_id, customer_id,
        )


# ------------------------------------------------------------ intents


async def claim_intent(conn: asyncpg.Connection, *, customer_id: str, payment_method_id: str | None,
                       amount: Money, status: str, capture_method: str, reference: str | None,
                       idempotency_key: str | None, metadata: dict[str, Any] | None) -> tuple[Intent, bool]:
    """Insert a new intent, or return the one already made with this idempotency key
    (a concurrent twin waits on the unique index, then sees the winner's row)."""
    row = await conn.fetchrow(
        """INSERT INTO payment_intents (id, customer_id, payment_method_id, amount, currency, status,
                                        capture_method, reference, idempotency_key, metadata)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)
           ON CONFLICT (customer_id, idempotency_key) DO NOTHING RETURNING *""",
        new_id("pi"), customer_id, payment_method_id, amount.amount, amount.currency, status, capture_method,
        reference, idempotency_key, _dumps(metadata or {}),
    )
    if row is not None:
        return Intent.from_row(row), True
    row = await conn.fetchrow(
        "SELECT * FROM payment_intents WHERE customer_id = $1 AND idempotency_key = $2 FOR UPDATE",
        customer_id, idempotency_key,
    )
    return Intent.from_row(row), False


async def get_intent(conn: asyncpg.Connection, intent_id: str, *, lock: bool = False) -> Intent | None:
    row = await conn.fetchrow(
        "SELECT * FROM payment_intents WHERE id = $1" + (" FOR UPDATE" if lock else ""), intent_id
    )
    return None if row is None else Intent.from_row(row)


_INTENT_COLUMNS = {"status", "payment_method_id", "amount_capturable", "amount_captured", "amount_refunded", "hold",
                   "processor_ref", "next_action", "last_error", "cancellation_reason", "authorization_attempt"}


def _intent_sets(changes: dict[str, Any]) -> tuple[list[str], list[Any]]:
    sets, values = [], []
    for i, (column, value) in enumerate(changes.items(), start=2):
        if column not in _INTENT_COLUMNS:
            raise ValueError(f"not an updatable column: {column}")
        cast = "::jsonb" if column in ("next_action", "last_error") else ""
        sets.append(f"{column} = ${i}{cast}")
        values.append(_dumps(value) if cast else value)
    return sets, values


async def update_intent(conn: asyncpg.Connection, intent_id: str, **changes: Any) -> Intent:
    sets, values = _intent_sets(changes)
    row = await conn.fetchrow(
        f"UPDATE payment_intents SET {', '.join(sets)}, updated_at = now() WHERE id = $1 RETURNING *",
        intent_id, *values,
    )
    return Intent.from_row(row)


async def attach_intent(conn: asyncpg.Connection, intent_id: str, reference: str,
                        metadata: dict[str, Any]) -> Intent:
    """Give an intent the reference of what it pays for (its metadata merged with `metadata`); it
    awaits no order any more."""
    row = await conn.fetchrow(
        "UPDATE payment_intents SET reference = $2, metadata = metadata || $3::jsonb, awaiting_order = false, "
        "updated_at = now() WHERE id = $1 RETURNING *", intent_id, reference, _dumps(metadata),
    )
    return Intent.from_row(row)


@dataclass(frozen=True, slots=True)
class FraudDecision:
    intent_id: str | None
    customer_id: str
    score: int
    level: str
    action: str
    reasons: list[str]


_ANNOUNCE = """
     o AS (INSERT INTO outbox (event_id, type, aggregate_id, occurred_at, payload)
           SELECT e.id, e.type, e.aggregate_id, e.occurred_at, e.payload::jsonb
             FROM unnest({p[0]}::text[], {p[1]}::text[], {p[2]}::text[], {p[3]}::timestamptz[], {p[4]}::text[])
                  AS e(id, type, aggregate_id, occurred_at, payload)
            WHERE EXISTS (SELECT 1 FROM i)),
     w AS (INSERT INTO payment_webhook_deliveries (id, endpoint_id, event_id, event_type, payload)
           SELECT 'whd_' || md5(random()::text || e.id), e.id, h.event_id, h.event_type, h.payload::jsonb
             FROM unnest({p[5]}::text[], {p[6]}::text[], {p[7]}::text[]) AS h(event_id, event_type, payload)
             JOIN payment_webhook_endpoints e ON e.disabled_at IS NULL
                  AND (h.event_type = ANY(e.event_types) OR '*' = ANY(e.event_types))
            WHERE EXISTS (SELECT 1 FROM i)),
     f AS (INSERT INTO fraud_decisions (id, intent_id, customer_id, score, level, action, reasons)
           SELECT {p[8]}::text, {p[9]}::text, {p[10]}::text, {p[11]}::integer, {p[12]}::text, {p[13]}::text,
                  {p[14]}::jsonb
            WHERE {p[8]}::text IS NOT NULL AND EXISTS (SELECT 1 FROM i)){ledger}
SELECT * FROM i"""


def _announce_args(events: Sequence[Event], webhooks: Sequence[dict[str, Any]],
                   decision: FraudDecision | None) -> list[Any]:
    ev, hooks, d = list(events), list(webhooks), decision
    return [
        [e.id for e in ev], [e.type for e in ev], [e.aggregate_id for e in ev], [e.occurred_at for e in ev],
        [encode_event(e).decode() for e in ev],
        [h["id"] for h in hooks], [h["type"] for h in hooks], [_dumps(h) for h in hooks],
        new_id("frd") if d else None, d.intent_id if d else None, d.customer_id if d else None,
        d.score if d else None, d.level if d else None, d.action if d else None, _dumps(d.reasons) if d else None,
    ]


def _announce_sql(head: str, first: int, ledger_ctes: str = "") -> str:
    """`head` (the intent's UPDATE or INSERT, as CTE `i`) plus its outbox, webhook and fraud-decision
    INSERTs and any ledger CTEs, as one statement; the extra parameters are numbered from `first`.
    Nothing is announced when `i` wrote no row."""
    p = [f"${first + k}" for k in range(15)]
    return f"WITH i AS ({head}),{_ANNOUNCE.format(p=p, ledger=ledger_ctes)}"


async def update_intent_and_announce(conn: asyncpg.Connection, intent_id: str, changes: dict[str, Any], *,
                                     events: Sequence[Event] = (), webhooks: Sequence[dict[str, Any]] = (),
                                     decision: FraudDecision | None = None,
                                     entry: JournalEntry | None = None) -> Intent:
    """One round trip for what a state change writes: the intent's new columns, its outbox
    events, a delivery per subscribed webhook endpoint for each webhook event (payloads as
    `enqueue_webhook` builds them), the fraud decision that led to it and the ledger entry
    that moves its money (`entry`: written with its postings and balances, see `ledger.entry_ctes`)."""
    sets, values = _intent_sets(changes)
    head = f"UPDATE payment_intents SET {', '.join(sets)}, updated_at = now() WHERE id = $1 RETURNING *"
    first = len(values) + 2
    args = _announce_args(events, webhooks, decision)
    ctes = ""
    if entry is not None:
        ctes, ledger_args = ledger_sql.entry_ctes(entry, first + len(args))
        args += ledger_args
    row = await conn.fetchrow(_announce_sql(head, first, ctes), intent_id, *values, *args)
    return Intent.from_row(row)


_INSERT_INTENT = (
    "INSERT INTO payment_intents (id, customer_id, payment_method_id, amount, currency, status, capture_method, "
    "amount_capturable, hold, reference, idempotency_key, processor_ref, next_action, last_error, metadata, "
    "created_at, updated_at, awaiting_order) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14::jsonb, $15::jsonb, $16, $16, $17) "
    "ON CONFLICT (customer_id, idempotency_key) DO NOTHING RETURNING *"
)


async def insert_intent_and_announce(conn: asyncpg.Connection, intent: Intent, *, events: Sequence[Event] = (),
                                     webhooks: Sequence[dict[str, Any]] = (),
                                     decision: FraudDecision | None = None) -> Intent:
    """Write a new intent already in the state its confirmation reached, with what announces it
    (as `update_intent_and_announce`), in one round trip. When the customer's idempotency key
    already names an intent (a concurrent twin committed first), nothing is written and that
    intent is returned."""
    i = intent
    row = await conn.fetchrow(
        _announce_sql(_INSERT_INTENT, 18), i.id, i.customer_id, i.payment_method_id, i.amount.amount,
        i.amount.currency, i.status, i.capture_method, i.amount_capturable, i.hold, i.reference, i.idempotency_key,
        i.processor_ref, _dumps(i.next_action), _dumps(i.last_error), _dumps(i.metadata), i.created_at,
        i.awaiting_order, *_announce_args(events, webhooks, decision),
    )
    if row is not None:
        return Intent.from_row(row)
    row = await conn.fetchrow("SELECT * FROM payment_intents WHERE customer_id = $1 AND idempotency_key = $2",
                              i.customer_id, i.idempotency_key)
    return Intent.from_row(row)


async def list_intents(conn: asyncpg.Connection, customer_id: str | None, starting_after: str | None,
                       limit: int) -> list[Intent]:
    rows = await conn.fetch(
        """SELECT * FROM payment_intents WHERE ($1::text IS NULL OR customer_id = $1)
              AND ($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3""",
        customer_id, starting_after, limit,
    )
    return [Intent.from_row(r) for r in rows]


async def processing_intents(conn: asyncpg.Connection, older_than_seconds: float, limit: int = 100) -> list[str]:
    rows = await conn.fetch(
        "SELECT id FROM payment_intents WHERE status = 'processing' "
        "AND updated_at < now() - make_interval(secs => $1) ORDER BY updated_at LIMIT $2",
        older_than_seconds, limit,
    )
    return [r["id"] for r in rows]


# A hold written apart for a checkout that no order claimed (see `PaymentsService.release_unused_holds`):
# the predicate of the partial index `payment_intents_unused_holds` (migration 0003), so both queries use
# it. An intent created through the API is never `awaiting_order`, so never matches.
_UNUSED_HOLD = ("awaiting_order AND status = 'requires_capture' AND reference IS NULL "
                "AND updated_at < now() - make_interval(secs => $1)")


async def unused_holds(conn: asyncpg.Connection, older_than_seconds: float, limit: int = 100) -> list[str]:
    """Ids of authorized holds that `authorize` wrote apart for a checkout and no order claimed
    (`awaiting_order`, no reference), authorized at least `older_than_seconds` ago, oldest first."""
    rows = await conn.fetch(
        f"SELECT id FROM payment_intents WHERE {_UNUSED_HOLD} ORDER BY updated_at LIMIT $2",
        older_than_seconds, limit,
    )
    return [r["id"] for r in rows]


async def lock_unused_hold(conn: asyncpg.Connection, intent_id: str, older_than_seconds: float) -> Intent | None:
    """The intent, locked, if it is still an unclaimed checkout hold that old; None when it was taken
    by an order, captured or canceled meanwhile, or is locked right now (a checkout attaching it: it
    is not waited for, and is seen again next round if that checkout rolls back)."""
    row = await conn.fetchrow(
        f"SELECT * FROM payment_intents WHERE id = $2 AND {_UNUSED_HOLD} FOR UPDATE SKIP LOCKED",
        older_than_seconds, intent_id,
    )
    return None if row is None else Intent.from_row(row)


# ------------------------------------------------------------ payment_refunds


async def find_refund_by_key(conn: asyncpg.Connection, intent_id: str, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM payment_refunds WHERE payment_intent_id = $1 AND idempotency_key = $2", intent_id, key
    )


async def insert_refund(conn: asyncpg.Connection, *, id: str, intent_id: str, amount: Money, status: str,
                        destination: str, reason: str | None, processor_ref: str | None,
                        idempotency_key: str | None, created_by: str) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO payment_refunds (id, payment_intent_id, amount, currency, status, destination, reason,
                                        processor_ref, idempotency_key, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *""",
        id, intent_id, amount.amount, amount.currency, status, destination, reason, processor_ref,
        idempotency_key, created_by,
    )


async def get_refund(conn: asyncpg.Connection, refund_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT r.*, i.customer_id FROM payment_refunds r JOIN payment_intents i ON i.id = r.payment_intent_id "
        "WHERE r.id = $1", refund_id,
    )


# ------------------------------------------------------------ fraud decisions


async def insert_fraud_decisions(conn: asyncpg.Connection, decisions: Sequence[FraudDecision]) -> None:
    """Several decisions in one statement (those written apart from their intent's transaction)."""
    ds = list(decisions)
    await conn.execute(
        "INSERT INTO fraud_decisions (id, intent_id, customer_id, score, level, action, reasons) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::text[], "
        "$7::text[]::jsonb[])",
        [new_id("frd") for _ in ds], [d.intent_id for d in ds], [d.customer_id for d in ds], [d.score for d in ds],
        [d.level for d in ds], [d.action for d in ds], [_dumps(d.reasons) for d in ds],
    )


async def list_fraud_decisions(conn: asyncpg.Connection, *, level: str | None, intent_id: str | None,
                               starting_after: str | None, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT * FROM fraud_decisions WHERE ($1::text IS NULL OR level = $1)
              AND ($2::text IS NULL OR intent_id = $2) AND ($3::text IS NULL OR id < $3)
            ORDER BY id DESC LIMIT $4""",
        level, intent_id, starting_after, limit,
    )
    return [{**dict(r), "reasons": _loads(r["reasons"])} for r in rows]


# ------------------------------------------------------------ webhooks


async def enqueue_webhook(conn: asyncpg.Connection, event_type: str, payload: dict[str, Any]) -> None:
    """One delivery per active endpoint subscribed to this type, in the caller's transaction."""
    await conn.execute(
        """INSERT INTO payment_webhook_deliveries (id, endpoint_id, event_id, event_type, payload)
           SELECT 'whd_' || md5(random()::text || id), id, $1, $2, $3::jsonb FROM payment_webhook_endpoints
            WHERE disabled_at IS NULL AND ($2 = ANY(event_types) OR '*' = ANY(event_types))""",
        payload["id"], event_type, _dumps(payload),
    )


async def insert_webhook_endpoint(conn: asyncpg.Connection, *, url: str, secret: str, event_types: list[str],
                                  created_by: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO payment_webhook_endpoints (id, url, secret, event_types, created_by) VALUES ($1, $2, $3, $4, $5) "
        "RETURNING *", new_id("we"), url, secret, event_types, created_by,
    )


async def list_webhook_endpoints(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM payment_webhook_endpoints WHERE disabled_at IS NULL ORDER BY id")


async def claim_due_deliveries(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Due deliveries, locked for this worker (call inside a transaction)."""
    return await conn.fetch(
        """SELECT d.id, d.event_type, d.payload::text AS payload, d.attempts, e.url, e.secret
             FROM payment_webhook_deliveries d JOIN payment_webhook_endpoints e ON e.id = d.endpoint_id
            WHERE d.status = 'pending' AND d.next_attempt_at <= now()
            ORDER BY d.next_attempt_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED""",
        limit,
    )


async def finish_delivery(conn: asyncpg.Connection, delivery_id: str, *, delivered: bool, error: str | None,
                          retry_in_seconds: float | None) -> None:
    await conn.execute(
        """UPDATE payment_webhook_deliveries SET attempts = attempts + 1, last_error = $2,
                  status = CASE WHEN $3 THEN 'delivered' WHEN $4::float8 IS NULL THEN 'failed' ELSE 'pending' END,
                  delivered_at = CASE WHEN $3 THEN now() END,
                  next_attempt_at = now() + make_interval(secs => coalesce($4::float8, 0))
            WHERE id = $1""",
        delivery_id, error, delivered, retry_in_seconds,
    )


# ------------------------------------------------------------ wallets and payouts


async def insert_credit(conn: asyncpg.Connection, *, id: str, customer_id: str, amount: Money, expires_at: datetime,
                        granted_by: str, reason: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO payment_wallet_credits (id, customer_id, amount, currency, expires_at, granted_by, reason) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
        id, customer_id, amount.amount, amount.currency, expires_at, granted_by, reason,
    )


async def lock_expired_credits(conn: asyncpg.Connection, now: datetime, limit: int = 500) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM payment_wallet_credits WHERE expired_amount IS NULL AND expires_at <= $1 "
        "ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED", now, limit,
    )


async def mark_credit_expired(conn: asyncpg.Connection, credit_id: str, expired_amount: int) -> None:
    await conn.execute("UPDATE payment_wallet_credits SET expired_amount = $2 WHERE id = $1", credit_id, expired_amount)


async def insert_batch(conn: asyncpg.Connection, *, id: str, kind: str, currency: str, created_by: str) -> None:
    await conn.execute("INSERT INTO payout_batches (id, kind, currency, created_by) VALUES ($1, $2, $3, $4)",
                       id, kind, currency, created_by)


async def insert_payouts(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    """rows: (id, batch_id, account_id, owner_id, kind, amount, fee, currency, instant, status, created_by)."""
    await conn.executemany(
        "INSERT INTO payouts (id, batch_id, account_id, owner_id, kind, amount, fee, currency, instant, status, "
        "created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)", rows,
    )


async def get_payout(conn: asyncpg.Connection, payout_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM payouts WHERE id = $1" + (" FOR UPDATE" if lock else ""), payout_id)


async def set_payout_status(conn: asyncpg.Connection, payout_id: str, status: str,
                            failure_reason: str | None) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE payouts SET status = $2, failure_reason = $3, updated_at = now() WHERE id = $1 RETURNING *",
        payout_id, status, failure_reason,
    )


async def list_payouts(conn: asyncpg.Connection, *, owner_id: str | None, batch_id: str | None,
                       starting_after: str | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM payouts WHERE ($1::text IS NULL OR owner_id = $1) AND ($2::text IS NULL OR batch_id = $2)
              AND ($3::text IS NULL OR id < $3) ORDER BY id DESC LIMIT $4""",
        owner_id, batch_id, starting_after, limit,
    )


# ------------------------------------------------------------ reconciliation


async def save_report(conn: asyncpg.Connection, day: Any, matched: int, mismatches: list[dict[str, Any]]) -> None:
    await conn.execute(
        """INSERT INTO payment_reconciliation_reports (day, matched, mismatches) VALUES ($1, $2, $3::jsonb)
           ON CONFLICT (day) DO UPDATE SET matched = EXCLUDED.matched, mismatches = EXCLUDED.mismatches,
                                           created_at = now()""",
        day, matched, _dumps(mismatches),
    )


async def get_report(conn: asyncpg.Connection, day: Any) -> tuple[int, list[dict[str, Any]]] | None:
    row = await conn.fetchrow("SELECT matched, mismatches FROM payment_reconciliation_reports WHERE day = $1", day)
    return None if row is None else (row["matched"], _loads(row["mismatches"]))
