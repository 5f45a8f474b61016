"""Wallets and payouts: customer wallets (refunds, promotional credit that expires),
courier wallets (earnings, instant cash-out with a fee, weekly payouts), restaurant
balances (daily payout batches). Money leaves a balance the moment a payout is
created, so it cannot be spent twice; a failed payout puts it back.

Payout states: pending -> in_transit -> paid | failed (pending -> failed too).

`Wallets` is a collaborator of the `PaymentsService` facade (see `service`), built with the pool
and the clock.
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from typing import Any

import asyncpg

from kernel.clock import Clock
from kernel.errors import InvalidTransition, ValidationFailed
from kernel.ids import new_id
from kernel.money import Money, currency_exponent, round_half_even
from kernel.outbox import MoneyData, write_events
from payments import ledger, model, payout_store, store
from payments.errors import ResourceMissing
from payments.event_types import PayoutChanged, PayoutCreated, PayoutFailed, PayoutPaid
from payments.intents import webhook_payload
from payments.merchant import BalanceParts, MerchantMoneyPolicy, StatementMovement, balance_parts
from payments.model import Account, credit, debit

# A wallet payment the balance cannot cover: its own code (402), not a card's decline, so the app
# says "top up or pay by card" instead of "your card was declined".
INSUFFICIENT_WALLET_BALANCE = "insufficient_wallet_balance"

OWNER_ACCOUNT = {"courier": "courier_earnings", "restaurant": "restaurant_payable"}
PAYOUT_EVENTS: dict[str, type[PayoutChanged]] = {
    "payout.created": PayoutCreated, "payout.paid": PayoutPaid, "payout.failed": PayoutFailed}
PAYOUT_TRANSITIONS = {"pending": {"in_transit", "failed"}, "in_transit": {"paid", "failed"}}


# The instant cash-out fee's floor per currency, in its minor units; another currency's floor is 0.50 of it.
INSTANT_FEE_MINIMUM = {"JPY": 75, "KRW": 700, "KWD": 150, "BHD": 200}


def instant_fee(amount: Money, bps: int = 150) -> int:
    """Instant cash-out fee: 1.5 % with a floor, rounded once (half-even), never the whole amount."""
    minimum = INSTANT_FEE_MINIMUM.get(
        amount.currency, max(1, round_half_even(Fraction(10 ** currency_exponent(amount.currency), 2))))
    return min(max(amount.percent(bps).amount, minimum), amount.amount - 1)


def payout_entry(payout_id: str, account: Account, amount: int, fee: int, actor: str) -> model.JournalEntry:
    cur = account.currency
    return model.entry("payout", cur, [debit(account, amount), credit(Account("payouts_in_transit", cur), amount - fee),
                                       credit(Account("platform_revenue", cur), fee)],
                       actor=actor, reason="payout", payout_id=payout_id, idempotency_key=f"payout:{payout_id}")


class Wallets:
    def __init__(self, pool: asyncpg.Pool, clock: Clock) -> None:
        self.pool = pool
        self.clock = clock

    async def grant_credit(self, customer_id: str, amount: Money, expires_at: datetime, actor: str,
                           reason: str) -> asyncpg.Record:
        if expires_at <= self.clock.now():
            raise ValidationFailed("expires_at must be in the future", param="expires_at")
        credit_id = new_id("ccr")
        cur = amount.currency
        async with self.pool.acquire() as conn, conn.transaction():
            await ledger.post(conn, model.entry(
                "promo_credit", cur, [debit(Account("platform_promotions", cur), amount.amount),
                                      credit(Account("customer_wallet", cur, customer_id), amount.amount)],
                actor=actor, reason=reason, reference=credit_id, idempotency_key=f"credit:{credit_id}"))
            return await store.insert_credit(conn, id=credit_id, customer_id=customer_id, amount=amount,
                                             expires_at=expires_at, granted_by=actor, reason=reason)

    async def expire_credits(self) -> int:
        """Take back unused expired credit: what is left of it, never more than the wallet holds
        (spending is assumed to use promotional credit first)."""
        expired = 0
        async with self.pool.acquire() as conn, conn.transaction():
            for row in await store.lock_expired_credits(conn, self.clock.now()):
                wallet = Account("customer_wallet", row["currency"], row["customer_id"])
                take = min(row["amount"], await ledger.balance(conn, wallet))
                if take > 0:
                    await ledger.post(conn, model.entry(
                        "promo_expiry", row["currency"],
                        [debit(wallet, take), credit(Account("platform_promotions", row["currency"]), take)],
                        actor="system", reason="promotional credit expired", reference=row["id"],
                        idempotency_key=f"expiry:{row['id']}"))
                await store.mark_credit_expired(conn, row["id"], take)
                expired += 1
        return expired

    async def cash_out(self, courier_id: str, amount: Money, *, instant: bool, actor: str) -> asyncpg.Record:
        """A courier moves earnings out now (instant, with a fee) or with the next batch (standard)."""
        payout_id = new_id("po")
        fee = instant_fee(amount) if instant else 0
        account = Account("courier_earnings", amount.currency, courier_id)
        async with self.pool.acquire() as conn, conn.transaction():
            await ledger.post(conn, payout_entry(payout_id, account, amount.amount, fee, actor))
            status = "in_transit" if instant else "pending"
            await store.insert_payouts(conn, [(payout_id, None, account.id, courier_id, "courier", amount.amount, fee,
                                               amount.currency, instant, status, actor)])
            row = await store.get_payout(conn, payout_id)
            await announce_payout(conn, "payout.created", row)
            return row

    async def create_batch(self, kind: str, currency: str, actor: str) -> tuple[str, list[asyncpg.Record]]:
        """Pay out every positive balance of this kind: one payout per account, each posted on its own."""
        batch_id = new_id("pob")
        async with self.pool.acquire() as conn, conn.transaction():
            await store.insert_batch(conn, id=batch_id, kind=kind, currency=currency, created_by=actor)
            accounts = await ledger.accounts_with_balance(conn, OWNER_ACCOUNT[kind], currency)
            entries, rows = [], []
            for acc in accounts:
                payout_id = new_id("po")
                entries.append(payout_entry(payout_id, Account.parse(acc["id"]), acc["balance"], 0, actor))
                rows.append((payout_id, batch_id, acc["id"], acc["owner_id"], kind, acc["balance"], 0, currency,
                             False, "pending", actor))
            outcomes = await ledger.post_batch(conn, entries)
            accepted = [row for row, o in zip(rows, outcomes, strict=True) if o.accepted]
            await store.insert_payouts(conn, accepted)
            payouts = await store.list_payouts(conn, owner_id=None, batch_id=batch_id, starting_after=None, limit=10**6)
            await announce_payouts(conn, "payout.created", payouts)
        return batch_id, payouts

    async def update_payout(self, payout_id: str, status: str, failure_reason: str | None,
                            actor: str) -> asyncpg.Record:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await store.get_payout(conn, payout_id, lock=True)
            if row is None:
                raise ResourceMissing(f"No such payout: '{payout_id}'", param="id")
            if row["status"] == status:
                return row
            if status not in PAYOUT_TRANSITIONS.get(row["status"], set()):
                raise InvalidTransition(f"a {row['status']} payout cannot become {status}")
            cur, net, fee = row["currency"], row["amount"] - row["fee"], row["fee"]
            transit = Account("payouts_in_transit", cur)
            if status == "paid":
                await ledger.post(conn, model.entry(
                    "payout_paid", cur, [debit(transit, net), credit(Account("platform_cash", cur), net)],
                    actor=actor, reason="payout paid", payout_id=payout_id, idempotency_key=f"paid:{payout_id}"))
            elif status == "failed":
                await ledger.post(conn, model.entry(
                    "payout_failed", cur, [debit(transit, net), debit(Account("platform_revenue", cur), fee),
                                           credit(Account.parse(row["account_id"]), row["amount"])],
                    actor=actor, reason=failure_reason or "payout failed", payout_id=payout_id,
                    idempotency_key=f"failed:{payout_id}"))
            row = await store.set_payout_status(conn, payout_id, status, failure_reason)
            if status in ("paid", "failed"):
                await announce_payout(conn, f"payout.{status}", row)
            return row

    async def balances(self, owner_id: str) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return await ledger.balances_of_owner(conn, owner_id)

    async def merchant_balance(self, tenant_id: str, policy: MerchantMoneyPolicy) -> list[BalanceParts]:
        """The tenant's restaurant balance per currency, divided as `payments.merchant` says."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            rows = await ledger.restaurant_balances(conn, tenant_id, policy.pending_since(now),
                                                    policy.window_since(now))
        return [balance_parts(r["currency"], r["balance"], r["pending_credits"], r["window_credits"], policy)
                for r in rows]

    async def restaurant_statement(self, conn: asyncpg.Connection, tenant_id: str, start: datetime,
                                   end: datetime) -> list[StatementMovement]:
        """Per order of the tenant, what its split and refund entries in [start, end) moved."""
        return await restaurant_statement(conn, tenant_id, start, end)

    async def history(self, owner_id: str, kind: str, currency: str | None, starting_after: str | None,
                      limit: int) -> list[asyncpg.Record]:
        """The owner's movements on its `kind` account in `currency`, or on each of its currencies."""
        async with self.pool.acquire() as conn:
            return await ledger.history(conn, owner_id, kind, currency, starting_after, limit)


async def restaurant_statement(conn: asyncpg.Connection, tenant_id: str, start: datetime,
                               end: datetime) -> list[StatementMovement]:
    """Per order of the tenant, what its split and refund entries in [start, end) moved."""
    rows = await ledger.restaurant_statement(conn, tenant_id, start, end)
    return [StatementMovement(order_id=r["order_id"], currency=r["currency"], first_at=r["first_at"],
                              gross=r["gross"], tax=r["tax"], restaurant=r["restaurant"],
                              refunded_by_platform=r["refunded_by_platform"],
                              refunded_by_restaurant=r["refunded_by_restaurant"], splits=tuple(r["splits"]))
            for r in rows]


async def announce_payout(conn: asyncpg.Connection, event_type: str, payout: asyncpg.Record) -> None:
    """Announce a payout's change in the transaction that made it: its event (`payout.created`, `.paid`,
    `.failed`), which merchants receive for their restaurant payouts, and the platform's webhook."""
    await announce_payouts(conn, event_type, [payout])


async def announce_payouts(conn: asyncpg.Connection, event_type: str, payouts: list[asyncpg.Record]) -> None:
    """`announce_payout` for several payouts (a batch), their events written with one statement."""
    facts = await payout_store.retry_facts(conn, [p["id"] for p in payouts])
    await write_events(conn, [payout_event(event_type, p, facts[p["id"]]).event(p["id"]) for p in payouts])
    for p in payouts:
        await store.enqueue_webhook(conn, event_type, webhook_payload(event_type, payout_object(p)))


def payout_event(event_type: str, payout: asyncpg.Record, facts: asyncpg.Record) -> PayoutChanged:
    """The payout event of `event_type` for the payout as it is now, with its retry facts."""
    kind = PAYOUT_EVENTS[event_type]
    cur = payout["currency"]
    return kind(
        payout_id=payout["id"], owner_id=payout["owner_id"], kind=payout["kind"],
        tenant_id=payout["owner_id"] if payout["kind"] == "restaurant" else None,
        amount=MoneyData(payout["amount"], cur), fee=MoneyData(payout["fee"], cur), status=payout["status"],
        method="instant" if payout["instant"] else "standard", batch_id=payout["batch_id"],
        settles_until=payout["settles_until"], failure_reason=payout["failure_reason"],
        next_attempt_at=facts["next_attempt_at"],
        **({"retry_of": list(facts["retry_of"])} if kind is PayoutCreated else {}))


def payout_object(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "object": "payout", "owner": row["owner_id"], "kind": row["kind"],
            "amount": row["amount"], "fee": row["fee"], "currency": row["currency"], "status": row["status"],
            "method": "instant" if row["instant"] else "standard", "batch": row["batch_id"],
            "failure_reason": row["failure_reason"], "created": int(row["created_at"].timestamp())}
