"""The events memberships publishes: one payload Struct per event type (docs/EVENTS.md is generated from
them). Imports nothing but msgspec and the kernel. Fields are in wire order. Each is also sent, as a
Stripe-shaped event of the same type whose object is the subscription or the invoice as the API shows
it, to the platform's webhook endpoints (`POST /v1/webhook_endpoints`) that take it.
"""

from __future__ import annotations

from datetime import datetime

from kernel.outbox import EventData, MoneyData


class SubscriptionFacts(EventData, frozen=True, kw_only=True):
    """What every subscription event starts with."""

    subscription_id: str
    customer_id: str
    plan_id: str
    status: str  # trialing | active | past_due | canceled
    current_period_end: datetime


class SubscriptionCreated(SubscriptionFacts, frozen=True, kw_only=True):
    """A customer subscribed to a plan: `trialing` until `current_period_end`, or `active` and paid
    for its first period."""

    event_type = "subscription.created"


class SubscriptionUpdated(SubscriptionFacts, frozen=True, kw_only=True):
    """A subscription changed: its status (`previous_status`: what it was), its period (a renewal),
    its card, or `cancel_at_period_end`."""

    event_type = "subscription.updated"
    previous_status: str
    cancel_at_period_end: bool


class SubscriptionCanceled(SubscriptionFacts, frozen=True, kw_only=True):
    """A subscription ended: `reason` is `requested` (canceled now), `period_end` (canceled at the end of
    its period) or `payment_failed` (past_due too long). Its benefits stopped."""

    event_type = "subscription.canceled"
    reason: str


class InvoiceFacts(EventData, frozen=True, kw_only=True):
    """What every invoice event starts with."""

    invoice_id: str
    subscription_id: str
    customer_id: str
    amount: MoneyData
    period_start: datetime
    period_end: datetime


class InvoicePaid(InvoiceFacts, frozen=True, kw_only=True):
    """An invoice was paid by the intent `payment_intent_id`, at its `attempt`-th charge."""

    event_type = "invoice.paid"
    payment_intent_id: str
    attempt: int


class InvoicePaymentFailed(InvoiceFacts, frozen=True, kw_only=True):
    """A charge of an invoice failed (declined, or 3-D Secure needed off-session): `code` says why;
    `next_attempt_at` is the next retry (null after the last one: the subscription is past_due)."""

    event_type = "invoice.payment_failed"
    attempt: int
    code: str
    payment_intent_id: str | None
    next_attempt_at: datetime | None


class InvoiceRefunded(InvoiceFacts, frozen=True, kw_only=True):
    """Part of a paid invoice was given back (the unused share of the period, `refunded`), refund
    `refund_id`."""

    event_type = "invoice.refunded"
    refunded: MoneyData
    refund_id: str


class InvoiceUncollectible(InvoiceFacts, frozen=True, kw_only=True):
    """An invoice will not be charged again: its subscription was canceled unpaid (`past_due` too long,
    or canceled by the customer while its invoice was open)."""

    event_type = "invoice.uncollectible"


EVENTS: tuple[type[EventData], ...] = (
    SubscriptionCreated, SubscriptionUpdated, SubscriptionCanceled, InvoicePaid, InvoicePaymentFailed,
    InvoiceRefunded, InvoiceUncollectible)
