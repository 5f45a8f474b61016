"""The events payments publishes: one payload Struct per event type (docs/EVENTS.md is generated from them).

Payments' published contract with the packages that consume its events (orders, the ops console): it
imports nothing but msgspec and the kernel. Fields are in wire order. An intent's `reference` is what it
pays for: the order id, `<order id>:tip:<n>` for a tip's own intent, or null for an intent made through
`POST /v1/payment_intents` (and for a hold confirmed after 3-D Secure until checkout attaches it).
"""

from __future__ import annotations

from kernel.outbox import EventData, MoneyData


class IntentMoved(EventData, frozen=True, kw_only=True):
    """Money of an intent moved: `amount` of the intent `intent_id`, which pays for `reference`."""

    intent_id: str
    reference: str | None
    amount: MoneyData


class PaymentAuthorized(IntentMoved, frozen=True, kw_only=True):
    """The processor authorized a hold of `amount` on the customer's card (`reference` null for an
    intent confirmed after 3-D Secure, which checkout attaches to its order later)."""

    event_type = "payment.authorized"


class PaymentCaptured(IntentMoved, frozen=True, kw_only=True):
    """An intent's hold was captured, `amount` of it (an intent captures once, as at Stripe; the rest
    of its hold is released)."""

    event_type = "payment.captured"


class PaymentVoided(IntentMoved, frozen=True, kw_only=True):
    """An intent's hold of `amount` was released without a capture (`reference` null for a 3-D
    Secure hold that no order took, see CHECKOUT.md)."""

    event_type = "payment.voided"


class PaymentRefunded(IntentMoved, frozen=True, kw_only=True):
    """One refund of a captured intent, whoever started it (an operator's `POST /v1/refunds`, or
    orders). `refund_id` names it for good: consumers count a refund by it, so one they started
    themselves, and counted in the transaction that made it, is not counted again when its event
    comes back. `destination` is `card` or `wallet`; `amount_captured` and `amount_refunded` are the
    intent's totals after this refund (null in events written before they were added)."""

    event_type = "payment.refunded"
    refund_id: str
    reason: str | None = None
    destination: str = "card"  # card | wallet
    amount_captured: int | None = None
    amount_refunded: int | None = None


PaymentEvent = PaymentAuthorized | PaymentCaptured | PaymentVoided | PaymentRefunded
"""Payments' events, tagged by the envelope's `type`."""

EVENTS: tuple[type[EventData], ...] = (PaymentAuthorized, PaymentCaptured, PaymentVoided, PaymentRefunded)
