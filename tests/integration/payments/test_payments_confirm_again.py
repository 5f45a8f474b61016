"""A declined intent confirmed again, against real servers: each confirmation after a decline is an authorization
attempt of its own, for the processor (its own idempotency key, stored with the intent) and for the fraud screen
(its own attempt in the velocity and decline windows)."""

from __future__ import annotations

from kernel.money import Money
from payments import store
from payments.model import FraudRules
from payments.service import PaymentsService, RiskContext, processor_key

EUR = "EUR"
DECLINE = "4000000000000002"
GOOD = "4242424242424242"


async def declined(payments: PaymentsService, pm: str, *, amount: int = 2500, key: str | None = "k1"):
    return await payments.create_intent(customer_id="cus_1", amount=Money(amount, EUR), payment_method_id=pm,
                                        confirm=True, capture_method="manual", metadata={}, idempotency_key=key,
                                        risk=RiskContext())


async def test_the_attempt_and_its_processor_key_are_stored_and_the_first_key_is_unchanged(
        payments, add_card, db, test_processor) -> None:
    intent = await declined(payments, await add_card("cus_1", DECLINE))
    assert (intent.status, intent.authorization_attempt) == ("requires_payment_method", 1)
    assert processor_key(intent) == "auth:cus_1:k1"  # what every first attempt was asked with, before attempts
    assert list(test_processor.book.by_key) == ["auth:cus_1:k1"]

    again = await payments.confirm_intent(intent.id, payment_method_id=await add_card("cus_1", GOOD),
                                          authentication=None, risk=RiskContext(), actor="cus_1")
    assert (again.status, again.authorization_attempt) == ("requires_capture", 2)
    async with db.acquire() as conn:
        stored = await store.get_intent(conn, intent.id)
    assert stored is not None and stored.authorization_attempt == 2
    assert list(test_processor.book.by_key) == ["auth:cus_1:k1", f"auth-2:{intent.id}"]
    assert test_processor.book.charges[test_processor.book.by_key[f"auth-2:{intent.id}"]].id == again.processor_ref


async def test_a_risk_review_of_the_second_attempt_authenticates_it_and_not_the_first_attempts_charge(
        payments, add_card, test_processor) -> None:
    """The risk rules ask the second attempt for 3-D Secure before any processor call: the first attempt's
    declined charge must not be the one the authentication completes."""
    intent = await declined(payments, await add_card("cus_1", DECLINE))
    rules = payments.fraud.rules
    payments.fraud.rules = FraudRules(elevated_at=0, block_at=101)  # every confirmation is reviewed
    review = await payments.confirm_intent(intent.id, payment_method_id=await add_card("cus_1", GOOD),
                                           authentication=None, risk=RiskContext(), actor="cus_1")
    payments.fraud.rules = rules
    assert review.status == "requires_action" and review.next_action is not None
    assert review.next_action["reason"] == "risk_review" and review.processor_ref is None
    done = await payments.confirm_intent(intent.id, payment_method_id=None, authentication="succeeded",
                                         risk=RiskContext(), actor="cus_1")
    assert (done.status, done.amount_capturable) == ("requires_capture", 2500)
    assert [c.status for c in test_processor.book.charges.values()] == ["declined", "authorized"]


async def test_one_intent_confirmed_with_card_after_card_counts_every_small_decline_as_card_testing(
        payments, add_card, test_processor) -> None:
    """Three small declines on one intent are three attempts (the screen's card-testing rule), so a fourth
    confirmation, with a card that would pass, is blocked before the processor sees it."""
    intent = await declined(payments, await add_card("cus_1", DECLINE), amount=300)
    for number in ("4000000000009995", "4000000000000127"):
        intent = await payments.confirm_intent(intent.id, payment_method_id=await add_card("cus_1", number),
                                               authentication=None, risk=RiskContext(), actor="cus_1")
        assert intent.status == "requires_payment_method"
    assert [c.status for c in test_processor.book.charges.values()] == ["declined"] * 3
    blocked = await payments.confirm_intent(intent.id, payment_method_id=await add_card("cus_1", GOOD),
                                            authentication=None, risk=RiskContext(), actor="cus_1")
    assert blocked.status == "requires_payment_method" and blocked.last_error is not None
    assert blocked.last_error["decline_code"] == "fraudulent"
    assert len(test_processor.book.charges) == 3 and blocked.authorization_attempt == 4


async def test_an_intent_created_without_confirming_is_still_on_its_first_attempt_when_confirmed(
        payments, add_card, test_processor) -> None:
    """No decline, no new attempt: an API intent created unconfirmed and then confirmed keeps the key it
    always had (a retry of that create-and-confirm reaches the same charge)."""
    created = await payments.create_intent(customer_id="cus_1", amount=Money(900, EUR), payment_method_id=None,
                                           confirm=False, capture_method="manual", metadata={}, idempotency_key="c1",
                                           risk=RiskContext())
    assert created.status == "requires_payment_method"
    confirmed = await payments.confirm_intent(created.id, payment_method_id=await add_card("cus_1", GOOD),
                                              authentication=None, risk=RiskContext(), actor="cus_1")
    assert (confirmed.status, confirmed.authorization_attempt) == ("requires_capture", 1)
    assert list(test_processor.book.by_key) == ["auth:cus_1:c1"]
