"""Charging an invoice and recording what came of it: the one path every charge takes (the first
period's at subscribe, a renewal, a retry in dunning, a customer paying an open invoice), and the
events (outbox) and webhooks that announce a subscription's or an invoice's change.

A charge is an off-session hold on the subscription's card, captured at once and settled to
platform revenue in the ledger, through payments (`ports.Billing`) and in the caller's
transaction. Its payments idempotency key names the subscription, the period and the attempt
(`model.renewal_key`), so a worker that rolled back and tries again reaches the same charge, never a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from kernel.errors import DomainError
from kernel.money import Money
from kernel.outbox import EventData, MoneyData, announce
from memberships import event_types as ev
from memberships import messages, model, store
from memberships.model import Invoice, InvoiceStatus, Status, Subscription
from memberships.ports import Billing
from payments import PaymentDeclined, PaymentRequiresAction, ProcessorUnavailable, Split

SETTLED = ("requires_capture", "succeeded")  # an authorization that can be (or was) captured


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one charge of an invoice came to: paid (`error` None) or failed, and the intent tried."""

    number: int
    intent_id: str | None
    error: dict[str, str] | None


def revenue_split(amount: Money) -> Split:
    """A membership charge is all platform revenue (no restaurant, no courier, no tax line)."""
    return Split(currency=amount.currency, customer_charged=amount.amount, restaurant_payable=0, restaurant_id="",
                 courier_earnings=0, courier_id=None, platform_revenue=amount.amount, tax_payable=0)


def invoice_facts(inv: Invoice) -> dict[str, Any]:
    return {"invoice_id": inv.id, "subscription_id": inv.subscription_id, "customer_id": inv.customer_id,
            "amount": MoneyData(inv.amount.amount, inv.amount.currency), "period_start": inv.period_start,
            "period_end": inv.period_end}


def subscription_facts(sub: Subscription) -> dict[str, Any]:
    return {"subscription_id": sub.id, "customer_id": sub.customer_id, "plan_id": sub.plan_id,
            "status": sub.status.value, "current_period_end": sub.current_period_end}


def failed_attempt(exc: PaymentDeclined | PaymentRequiresAction) -> dict[str, str]:
    """The invoice's `last_payment_error` for a decline or a 3-D Secure challenge."""
    if isinstance(exc, PaymentRequiresAction):
        return {"code": "authentication_required", "decline_code": "authentication_required",
                "message": "The card needs 3-D Secure, which a charge off-session cannot give."}
    return {"code": exc.code, "decline_code": exc.decline_code, "message": exc.message}


class Charges:
    def __init__(self, billing: Billing) -> None:
        self.billing = billing

    async def tell(self, conn: asyncpg.Connection, payload: EventData, obj: msgspec.Struct, aggregate_id: str) -> None:
        """The event in the outbox and the same change to the webhook endpoints, in the caller's transaction."""
        await announce(conn, payload, aggregate_id)
        await self.billing.send_webhook(conn, payload.event_type, msgspec.to_builtins(obj))

    async def charge(self, conn: asyncpg.Connection, sub: Subscription, inv: Invoice, number: int) -> str:
        """Charge `inv` (its `number`-th attempt) on the subscription's card; returns the intent id. A
        decline or a 3-D Secure challenge raises payments' 402 errors; an authorization left unsettled
        by a processor outage raises `ProcessorUnavailable` (the caller rolls back and tries again)."""
        async with conn.transaction():
            auth = await self.billing.authorize(
                conn, customer_id=sub.customer_id, payment_method_id=sub.payment_method_id, amount=inv.amount,
                reference=inv.id, idempotency_key=model.renewal_key(sub.id, inv.period_index, number),
                metadata={"subscription_id": sub.id, "invoice_id": inv.id})
            if auth.status not in SETTLED:
                raise ProcessorUnavailable()
            await self.billing.capture(conn, auth.intent_id, inv.amount)
            await self.billing.post_split(conn, reference=inv.id, split=revenue_split(inv.amount))
        return auth.intent_id

    async def attempt(self, conn: asyncpg.Connection, sub: Subscription, inv: Invoice, number: int) -> Attempt:
        """`charge`, with a decline or a challenge (which off-session cannot meet) as a failed attempt, and
        so any refusal of payments' (a card detached since, a charge the processor refused). Payments
        unavailable (503) is not an attempt: it raises, and the job tries again later under the same key."""
        try:
            return Attempt(number, await self.charge(conn, sub, inv, number), None)
        except (PaymentDeclined, PaymentRequiresAction) as exc:
            return Attempt(number, exc.payment_intent, failed_attempt(exc))
        except DomainError as exc:
            if exc.status >= 503:
                raise
            return Attempt(number, None, {"code": exc.code, "decline_code": "", "message": exc.message})

    async def record(self, conn: asyncpg.Connection, sub: Subscription, inv: Invoice, tried: Attempt,
                     now: datetime, *, before: Subscription | None = None) -> Subscription:
        """Write what an attempt came to: the invoice paid and the subscription active until its period
        ends, or the attempt counted and the subscription moved along the dunning schedule."""
        if tried.error is None:
            assert tried.intent_id is not None
            inv = await store.update_invoice(conn, inv.id, status=InvoiceStatus.PAID, attempts=tried.number,
                                             payment_intent_id=tried.intent_id, last_error=None, paid_at=now)
            after = await store.update_subscription(
                conn, sub.id, now, status=model.transition(sub.status, Status.ACTIVE), open_invoice_id=None,
                dunning_attempts=0, next_action_at=inv.period_end)
            await self.tell(conn, ev.InvoicePaid(**invoice_facts(inv), payment_intent_id=tried.intent_id,
                                                 attempt=tried.number), messages.invoice_view(inv), inv.id)
        else:
            step = model.after_failure(sub.status, tried.number, inv.period_start, now)
            inv = await store.update_invoice(conn, inv.id, status=InvoiceStatus.OPEN, attempts=tried.number,
                                             payment_intent_id=tried.intent_id, last_error=tried.error)
            after = await store.update_subscription(conn, sub.id, now, status=step.status, open_invoice_id=inv.id,
                                                    dunning_attempts=tried.number, next_action_at=step.next_action_at)
            await self.tell(conn, ev.InvoicePaymentFailed(
                **invoice_facts(inv), attempt=tried.number, code=tried.error["code"],
                payment_intent_id=tried.intent_id, next_attempt_at=None if step.final else step.next_action_at),
                messages.invoice_view(inv), inv.id)
        await self.updated(conn, before or sub, after)
        return after

    async def updated(self, conn: asyncpg.Connection, before: Subscription, after: Subscription) -> None:
        """`subscription.updated`, when something a subscriber sees changed."""
        seen = ("status", "current_period_end", "cancel_at_period_end", "payment_method_id", "open_invoice_id")
        if all(getattr(before, name) == getattr(after, name) for name in seen):
            return
        await self.tell(conn, ev.SubscriptionUpdated(
            **subscription_facts(after), previous_status=before.status.value,
            cancel_at_period_end=after.cancel_at_period_end), messages.subscription_view(after), after.id)

    async def canceled(self, conn: asyncpg.Connection, sub: Subscription, reason: str, now: datetime) -> Subscription:
        """End `sub` now: its open invoice (if any) uncollectible, no next action."""
        if sub.open_invoice_id is not None:
            inv = await store.update_invoice(conn, sub.open_invoice_id, status=InvoiceStatus.UNCOLLECTIBLE)
            await self.tell(conn, ev.InvoiceUncollectible(**invoice_facts(inv)),
                            messages.invoice_view(inv), inv.id)
        after = await store.update_subscription(
            conn, sub.id, now, status=model.transition(sub.status, Status.CANCELED), canceled_at=now,
            cancel_reason=reason, next_action_at=None, open_invoice_id=None)
        await self.tell(conn, ev.SubscriptionCanceled(**subscription_facts(after), reason=reason),
                        messages.subscription_view(after), after.id)
        return after
