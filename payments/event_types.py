"""The events payments publishes: one payload Struct per event type (docs/EVENTS.md is generated from them).

Payments' published contract with the packages that consume its events (orders, the ops console): it
imports nothing but msgspec and the kernel. Fields are in wire order. An intent's `reference` is what it
pays for: the order id, `<order id>:tip:<n>` for a tip's own intent, or null for an intent made through
`POST /v1/payment_intents` (and for a hold confirmed after 3-D Secure until checkout attaches it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

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


class RefundCreated(IntentMoved, frozen=True, kw_only=True):
    """A refund was made, whichever path made it (an operator's `POST /v1/refunds`, a merchant's refund,
    missing items reported after delivery): `refund_id` names it, `order_id` the order its intent pays for
    (`reference`'s first part) and `tenant_id` the restaurant whose order that is (null when the intent
    pays for no restaurant's order); `borne_by` says whose money paid it: the `restaurant`'s balance or
    the `platform`; `destination` is `card` or `wallet`. Merchants receive it; `payment.refunded` is its
    twin for the packages that count refunds."""

    event_type = "refund.created"
    refund_id: str
    order_id: str | None
    tenant_id: str | None
    reason: str | None
    destination: str
    borne_by: Literal["restaurant", "platform"]


class PayoutChanged(EventData, frozen=True, kw_only=True):
    """What every payout event carries: the payout as it is after the change. `tenant_id` is the
    restaurant tenant a restaurant payout pays (null for a courier's); `amount` left the balance, `fee`
    of it was the platform's; `settles_until` is set on a scheduled restaurant payout (docs/MONEY.md);
    `failure_reason` and `next_attempt_at` are null but on `payout.failed`."""

    payout_id: str
    owner_id: str
    kind: Literal["courier", "restaurant"]
    tenant_id: str | None
    amount: MoneyData
    fee: MoneyData
    status: str
    method: Literal["instant", "standard"]
    batch_id: str | None
    settles_until: datetime | None
    failure_reason: str | None
    next_attempt_at: datetime | None


class PayoutCreated(PayoutChanged, frozen=True, kw_only=True):
    """A payout was made (by a restaurant's payout schedule, an operator's batch or a courier's cash-out):
    its `amount` left the balance at once. `retry_of` names the failed payouts of the same balance it
    pays again (their money was back in the balance)."""

    event_type = "payout.created"
    retry_of: list[str]


class PayoutPaid(PayoutChanged, frozen=True, kw_only=True):
    """The payout reached the owner's bank account."""

    event_type = "payout.paid"


class PayoutFailed(PayoutChanged, frozen=True, kw_only=True):
    """The payout failed (`failure_reason`, as the bank gave it): its amount is back in the balance.
    `next_attempt_at` is the next run of the owner's payout schedule in its currency, which pays it again
    with what is available then, if that reaches the minimum (null without such a schedule: an operator's
    batch pays it then); that payout's `payout.created` names this one in `retry_of`."""

    event_type = "payout.failed"


PaymentEvent = PaymentAuthorized | PaymentCaptured | PaymentVoided | PaymentRefunded | RefundCreated
"""Payments' events, tagged by the envelope's `type`."""

PayoutEvent = PayoutCreated | PayoutPaid | PayoutFailed
"""Payout events, tagged by the envelope's `type`."""

EVENTS: tuple[type[EventData], ...] = (PaymentAuthorized, PaymentCaptured, PaymentVoided, PaymentRefunded,
                                       RefundCreated, PayoutCreated, PayoutPaid, PayoutFailed)
