"""Authorization attempts: when a confirmation is a new one, and the processor key each attempt is asked with."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from kernel.money import Money
from payments import model
from payments.service import attempt_id, processor_key
from payments.store import Intent

DECLINE = {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline", "message": "no"}


def intent(*, key: str | None = "k1", attempt: int = 1, customer: str = "cus_1", id: str = "pi_1") -> Intent:
    return Intent(
        id=id, customer_id=customer, payment_method_id="pm_1", amount=Money(2500, "EUR"), capture_method="manual",
        status=model.REQUIRES_PAYMENT_METHOD, amount_capturable=0, amount_captured=0, amount_refunded=0,
        hold=model.HOLD_NONE, reference=None, idempotency_key=key, processor_ref=None, next_action=None,
        last_error=None, cancellation_reason=None, metadata={}, created_at=datetime(2026, 11, 25, tzinfo=UTC),
        authorization_attempt=attempt,
    )


@pytest.mark.parametrize("status,error,new", [
    (model.REQUIRES_PAYMENT_METHOD, DECLINE, True),  # declined, blocked, or 3-D Secure failed
    (model.REQUIRES_PAYMENT_METHOD, None, False),  # created without a payment method: never tried
    (model.REQUIRES_CONFIRMATION, None, False),  # created unconfirmed
])
def test_only_a_confirmation_after_a_failed_attempt_starts_a_new_one(status: str, error: dict | None,
                                                                     new: bool) -> None:
    assert model.starts_new_attempt(status, error) is new


def test_the_first_attempt_keeps_the_key_it_always_had() -> None:
    assert processor_key(intent()) == "auth:cus_1:k1"
    assert processor_key(intent(key=None)) == "auth:pi_1"
    assert attempt_id(intent()) == "pi_1"


def test_later_attempts_have_keys_of_their_own_stable_for_that_attempt() -> None:
    second, third = intent(attempt=2), intent(attempt=3)
    keys = {processor_key(intent()), processor_key(second), processor_key(third)}
    assert len(keys) == 3
    assert processor_key(replace(second, status=model.PROCESSING)) == processor_key(second) == "auth-2:pi_1"
    assert len({attempt_id(intent()), attempt_id(second), attempt_id(third)}) == 3


def test_no_later_attempt_key_equals_another_intents_first_attempt_key() -> None:
    """A caller's key may contain anything, colons and digits included (checkout's do: `checkout:cus:K`)."""
    later = processor_key(intent(attempt=2))
    for other in (intent(key="k1:2", id="pi_2"), intent(key=None, id="pi_1:2"), intent(key="2", customer="pi_1"),
                  intent(key="pi_1", customer="auth-2")):
        assert processor_key(other) != later
