"""A decline inside the caller's transaction, against real servers: the declined intent the 402 names is written
apart from that transaction, so the caller's rollback keeps it, and the same key answers the same 402 from it."""

from __future__ import annotations

import json

import pytest

from kernel.money import Money
from payments import WALLET, PaymentDeclined, store
from payments.service import PaymentsService

EUR = "EUR"


async def declined_in_a_rolled_back_checkout(payments: PaymentsService, db, pm: str, key: str,
                                             amount: int = 2500) -> PaymentDeclined:
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        with pytest.raises(PaymentDeclined) as declined:
            await payments.authorize(conn, customer_id="cus_1", payment_method_id=pm, amount=Money(amount, EUR),
                                     reference="ord_1", idempotency_key=key)
        await tx.rollback()  # orders refusing the checkout
    return declined.value


async def test_a_declined_card_keeps_its_intent_webhook_and_decision_past_the_callers_rollback(
        payments, add_card, db, test_processor) -> None:
    async with db.acquire() as conn:
        await store.insert_webhook_endpoint(conn, url="https://hooks.example/p", secret="whsec_test",
                                            event_types=["payment_intent.payment_failed"], created_by="test")
    pm = await add_card("cus_1", "4000000000009995")
    first = await declined_in_a_rolled_back_checkout(payments, db, pm, "k1")
    assert first.decline_code == "insufficient_funds" and first.payment_intent is not None
    await payments.close()  # the fraud decision of a decline travels with its intent; nothing is queued
    async with db.acquire() as conn:
        intent = await store.get_intent(conn, first.payment_intent)
        assert intent is not None
        assert (intent.status, intent.reference, intent.hold, intent.amount_capturable) == (
            "requires_payment_method", None, "none", 0)
        assert intent.last_error is not None and intent.last_error["decline_code"] == "insufficient_funds"
        [hook] = await conn.fetch("SELECT payload::text AS payload FROM payment_webhook_deliveries")
        assert json.loads(hook["payload"])["data"]["object"]["id"] == intent.id
        assert await conn.fetchval("SELECT count(*) FROM fraud_decisions WHERE intent_id = $1", intent.id) == 1
    calls = test_processor.calls

    again = await declined_in_a_rolled_back_checkout(payments, db, pm, "k1")
    assert (again.payment_intent, again.code, again.decline_code, again.status) == (
        first.payment_intent, first.code, first.decline_code, 402)
    assert test_processor.calls == calls  # answered from the kept intent, not by asking the processor again
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM payment_intents") == 1


async def test_a_declined_wallet_payment_keeps_its_intent_and_moves_no_money(payments, db) -> None:
    declined = await declined_in_a_rolled_back_checkout(payments, db, WALLET, "w1")
    assert declined.decline_code == "insufficient_funds"
    async with db.acquire() as conn:
        intent = await store.get_intent(conn, declined.payment_intent or "")
        assert intent is not None and (intent.status, intent.payment_method_id) == ("requires_payment_method", WALLET)
        assert await conn.fetchval("SELECT count(*) FROM journal_entries") == 0
