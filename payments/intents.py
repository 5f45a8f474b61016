"""What a payment intent looks like to its callers, the keys that name its authorization
attempts, and the shape of the webhooks that announce it. No I/O, so every collaborator of the
facade (`service`) imports it without importing the others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kernel.ids import new_id
from kernel.money import Money
from payments.store import Intent

WALLET = "wallet"  # as a payment_method_id: pay from the customer's wallet balance


@dataclass(frozen=True, slots=True)
class Authorization:
    intent_id: str
    status: str  # requires_capture on success; processing while the processor is unreachable
    amount: Money
    payment_method_id: str | None = None


@dataclass(frozen=True, slots=True)
class RiskContext:
    ip: str | None = None
    device_id: str | None = None
    first_order: bool = False
    promo_code: str | None = None


def webhook_intent(intent: Intent) -> dict[str, Any]:
    """The PaymentIntent object as webhooks and the API show it."""
    return {
        "id": intent.id, "object": "payment_intent", "amount": intent.amount.amount,
        "currency": intent.amount.currency, "status": intent.status, "customer": intent.customer_id,
        "payment_method": intent.payment_method_id, "capture_method": intent.capture_method,
        "amount_capturable": intent.amount_capturable, "amount_received": intent.amount_captured,
        "amount_refunded": intent.amount_refunded, "created": int(intent.created_at.timestamp()),
        "metadata": intent.metadata, "next_action": intent.next_action,
        "last_payment_error": intent.last_error, "cancellation_reason": intent.cancellation_reason,
    }


def webhook_payload(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A webhook event as it is queued (`store.enqueue_webhook`) and sent: Stripe's event object."""
    return {"id": new_id("evt"), "object": "event", "type": event_type, "created": int(time.time()),
            "data": {"object": obj}}


def processor_key(intent: Intent) -> str:
    """The processor idempotency key of the intent's current authorization attempt, the same for
    every retry of that attempt (the resolver of `processing` asks with it) and different for the
    next one (a confirmation after a decline), so a new card is tried, not the old decline replayed.

    The first attempt's is derived from the caller's key, so a caller that rolled back and retries
    (with a new draft intent) reaches the same charge; it is unchanged since before attempts were
    counted. Later attempts confirm a stored intent, so its id is stable: `auth-<n>:<intent id>`,
    which no first-attempt key (always `auth:...`) can equal, whatever the caller's key contains."""
    if intent.authorization_attempt > 1:
        return f"auth-{intent.authorization_attempt}:{intent.id}"
    if intent.idempotency_key:
        return f"auth:{intent.customer_id}:{intent.idempotency_key}"
    return f"auth:{intent.id}"


def attempt_id(intent: Intent) -> str:
    """The fraud screen's id of this authorization attempt: each confirmation of an intent counts in
    the velocity and decline windows (one intent confirmed with card after card is card testing)."""
    if intent.authorization_attempt > 1:
        return f"{intent.id}:{intent.authorization_attempt}"
    return intent.id
