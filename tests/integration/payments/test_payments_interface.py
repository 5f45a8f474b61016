"""The interface orders/ uses, on the caller's connection, against real servers."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from kernel.errors import InvalidTransition, ValidationFailed
from kernel.money import Money
from payments import WALLET, PaymentDeclined, PaymentRequiresAction, RiskContext, Split, ledger, store
from payments.errors import InsufficientBalance, ResourceMissing
from payments.model import Account, credit, debit, entry

EUR = "EUR"


async def authorize(payments, conn, customer, pm, amount=2500, key="k1", **kw):
    return await payments.authorize(conn, customer_id=customer, payment_method_id=pm, amount=Money(amount, EUR),
                                    reference=kw.pop("reference", "ord_1"), idempotency_key=key, **kw)


async def fund_wallet(db, customer: str, amount: int) -> None:
    async with db.acquire() as conn:
        await ledger.post(conn, entry("grant", EUR, [debit(Account("platform_promotions", EUR), amount),
                                                     credit(Account("customer_wallet", EUR, customer), amount)],
                                      actor="test"))


async def test_authorize_places_one_hold_per_idempotency_key(payments, add_card, db, test_processor) -> None:
    pm = await add_card("cus_1")
    async with db.acquire() as conn:
        first = await authorize(payments, conn, "cus_1", pm)
        again = await authorize(payments, conn, "cus_1", pm)
    assert first.status == "requires_capture" and first.amount == Money(2500, EUR)
    assert again == first
    assert (await test_processor.authorizations()) == 1


async def test_concurrent_authorizations_with_one_key_make_one_intent(payments, add_card, db, test_processor) -> None:
    pm = await add_card("cus_1")
    test_processor.latency = 0.05

    async def one():
        async with db.acquire() as conn, conn.transaction():
            return await authorize(payments, conn, "cus_1", pm, key="same")

    a, b = await asyncio.gather(one(), one())
    assert a.intent_id == b.intent_id
    assert (await test_processor.authorizations()) == 1


async def test_decline_and_3ds_raise_402_errors_with_stripe_codes(payments, add_card, db) -> None:
    declined = await add_card("cus_1", "4000000000009995")
    secure = await add_card("cus_1", "4000002500003155")
    async with db.acquire() as conn:
        with pytest.raises(PaymentDeclined) as exc:
            await authorize(payments, conn, "cus_1", declined, key="a")
        assert exc.value.status == 402 and exc.value.code == "card_declined"
        assert exc.value.extra["decline_code"] == "insufficient_funds"
        with pytest.raises(PaymentRequiresAction) as action:
            await authorize(payments, conn, "cus_1", secure, key="b")
        assert action.value.code == "authentication_required"
        intent = await store.get_intent(conn, action.value.payment_intent)
    assert intent is not None and intent.status == "requires_action"


async def test_authorize_refuses_a_method_of_another_customer(payments, add_card, db) -> None:
    pm = await add_card("cus_other")
    async with db.acquire() as conn:
        with pytest.raises(ResourceMissing):
            await authorize(payments, conn, "cus_1", pm)
        assert await conn.fetchval("SELECT count(*) FROM payment_intents") == 0


async def test_partial_capture_releases_the_rest_and_refunds_stay_within_captured(payments, add_card, db) -> None:
    pm = await add_card("cus_1")
    async with db.acquire() as conn:
        auth = await authorize(payments, conn, "cus_1", pm, amount=3000)
        with pytest.raises(ValidationFailed):
            await payments.capture(conn, auth.intent_id, Money(3001, EUR))
        await payments.capture(conn, auth.intent_id, Money(2000, EUR))
        await payments.capture(conn, auth.intent_id, Money(2000, EUR))  # a replay is a no-op
        intent = await store.get_intent(conn, auth.intent_id)
        assert intent is not None
        assert (intent.status, intent.amount_captured, intent.amount_capturable, intent.hold) == (
            "succeeded", 2000, 0, "captured")
        r1 = await payments.refund(conn, auth.intent_id, Money(500, EUR), "missing item")
        r2 = await payments.refund(conn, auth.intent_id, Money(1500, EUR), "cold food")
        assert r1 != r2
        with pytest.raises(ValidationFailed):
            await payments.refund(conn, auth.intent_id, Money(1, EUR), "greedy")
        with pytest.raises(InvalidTransition):
            await payments.void(conn, auth.intent_id, "too late")
        assert await ledger.sums_per_currency(conn) == {EUR: 0}
        assert await ledger.balances_match_postings(conn) == []


async def test_void_releases_the_hold_once(payments, add_card, db, test_processor) -> None:
    pm = await add_card("cus_1")
    async with db.acquire() as conn:
        auth = await authorize(payments, conn, "cus_1", pm)
        await payments.void(conn, auth.intent_id, "restaurant rejected")
        await payments.void(conn, auth.intent_id, "restaurant rejected")
        intent = await store.get_intent(conn, auth.intent_id)
        assert intent is not None and (intent.status, intent.hold) == ("canceled", "released")
        with pytest.raises(InvalidTransition):
            await payments.capture(conn, auth.intent_id, Money(100, EUR))
    charge = test_processor.book.charges[intent.processor_ref]
    assert charge.status == "voided"


async def test_post_split_credits_restaurant_and_courier_and_is_idempotent(payments, add_card, db) -> None:
    pm = await add_card("cus_1")
    split = Split(EUR, 2500, 1800, "res_1", 400, "cou_1", 200, 100)
    async with db.acquire() as conn, conn.transaction():
        auth = await authorize(payments, conn, "cus_1", pm, amount=2500)
        await payments.capture(conn, auth.intent_id, Money(2500, EUR))
        first = await payments.post_split(conn, reference="ord_1", split=split)
        again = await payments.post_split(conn, reference="ord_1", split=split)
    assert first == again
    async with db.acquire() as conn:
        assert await ledger.balance(conn, Account("restaurant_payable", EUR, "res_1")) == 1800
        assert await ledger.balance(conn, Account("courier_earnings", EUR, "cou_1")) == 400
        assert await ledger.balance(conn, Account("customer_card_clearing", EUR)) == 0
        assert await ledger.sums_per_currency(conn) == {EUR: 0}
        with pytest.raises(ValidationFailed):
            await payments.post_split(conn, reference="ord_2", split=Split(EUR, 10, 5, "res_1", 0, None, 0, 4))


async def test_rolled_back_caller_leaves_no_intent(payments, add_card, db, test_processor) -> None:
    pm = await add_card("cus_1")
    async with db.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await authorize(payments, conn, "cus_1", pm, key="retry-me")
                raise RuntimeError("orders failed after the hold")
        # The retry reaches the same processor authorization: no second hold.
        await authorize(payments, conn, "cus_1", pm, key="retry-me")
    assert (await test_processor.authorizations()) == 1


async def test_wallet_payment_holds_and_captures_wallet_money(payments, db) -> None:
    await fund_wallet(db, "cus_1", 1000)
    wallet = Account("customer_wallet", EUR, "cus_1")
    async with db.acquire() as conn:
        with pytest.raises(PaymentDeclined) as exc:
            await authorize(payments, conn, "cus_1", WALLET, amount=1001, key="w0")
        assert exc.value.decline_code == "insufficient_funds"
        auth = await authorize(payments, conn, "cus_1", WALLET, amount=800, key="w1")
        assert await ledger.balance(conn, wallet) == 200
        await payments.capture(conn, auth.intent_id, Money(600, EUR))
        assert await ledger.balance(conn, wallet) == 400
        await payments.refund(conn, auth.intent_id, Money(600, EUR), "refund to wallet")
        assert await ledger.balance(conn, wallet) == 1000
        assert await ledger.sums_per_currency(conn) == {EUR: 0}


async def test_concurrent_wallet_debits_cannot_overdraw(payments, db) -> None:
    await fund_wallet(db, "cus_1", 1000)

    async def spend(i: int):
        async with db.acquire() as conn:
            try:
                return await authorize(payments, conn, "cus_1", WALLET, amount=300, key=f"c{i}")
            except PaymentDeclined:
                return None

    results = await asyncio.gather(*(spend(i) for i in range(8)))
    assert sum(r is not None for r in results) == 3
    async with db.acquire() as conn:
        assert await ledger.balance(conn, Account("customer_wallet", EUR, "cus_1")) == 100


async def test_journal_is_append_only(payments, db) -> None:
    await fund_wallet(db, "cus_1", 100)
    async with db.acquire() as conn:
        import asyncpg

        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("UPDATE postings SET amount = amount * 2")
        with pytest.raises(asyncpg.RaiseError):
            await conn.execute("DELETE FROM journal_entries")
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE ledger_accounts SET balance = -1 WHERE kind = 'customer_wallet'")


async def test_batch_posting_applies_or_rejects_each_entry_on_its_own(db) -> None:
    w = Account("customer_wallet", EUR, "cus_b")
    promo = Account("platform_promotions", EUR)
    holds = Account("wallet_holds", EUR)
    grant = entry("grant", EUR, [debit(promo, 100), credit(w, 100)], actor="t", idempotency_key="g1")
    spend_ok = entry("spend", EUR, [debit(w, 60), credit(holds, 60)], actor="t")
    spend_bad = entry("spend", EUR, [debit(w, 60), credit(holds, 60)], actor="t")
    dup = entry("grant", EUR, [debit(promo, 100), credit(w, 100)], actor="t", idempotency_key="g1")
    async with db.acquire() as conn:
        outcomes = await ledger.post_batch(conn, [grant, spend_ok, spend_bad, dup])
        assert [o.accepted for o in outcomes] == [True, True, False, False]
        assert outcomes[2].reason == f"insufficient_funds:{w.id}"
        assert outcomes[3].duplicate and outcomes[3].entry_id == grant.id
        assert await ledger.balance(conn, w) == 40
        with pytest.raises(InsufficientBalance):
            await ledger.post(conn, spend_bad)


async def test_outage_leaves_processing_and_the_resolver_never_charges_twice(
        payments, add_card, db, test_processor) -> None:
    pm = await add_card("cus_1")
    test_processor.lose_responses = True  # the processor authorizes but every answer is lost
    async with db.acquire() as conn:
        auth = await authorize(payments, conn, "cus_1", pm, key="outage", risk=RiskContext(ip="10.0.0.1"))
    assert auth.status == "processing"
    assert (await test_processor.authorizations()) == 1
    assert await payments.resolve_processing() == 0  # still failing: stays processing
    test_processor.lose_responses = False
    await asyncio.sleep(0.06)  # the breaker's cool-down
    assert await payments.resolve_processing() == 1
    async with db.acquire() as conn:
        intent = await store.get_intent(conn, auth.intent_id)
        again = await authorize(payments, conn, "cus_1", pm, key="outage")
    assert intent is not None and intent.status == "requires_capture"
    assert again.status == "requires_capture"
    assert (await test_processor.authorizations()) == 1


async def test_outage_before_the_processor_acts_is_retried_by_the_resolver(
        payments, add_card, db, test_processor) -> None:
    pm = await add_card("cus_1")
    test_processor.outage = True
    async with db.acquire() as conn:
        auth = await authorize(payments, conn, "cus_1", pm, key="down")
    assert auth.status == "processing" and (await test_processor.authorizations()) == 0
    test_processor.outage = False
    await asyncio.sleep(0.06)
    assert await payments.resolve_processing() == 1
    assert (await test_processor.authorizations()) == 1


async def test_the_database_refuses_an_unbalanced_entry_that_skipped_the_checks(db) -> None:
    import asyncpg

    w = Account("customer_wallet", EUR, "cus_u")
    promo = Account("platform_promotions", EUR)
    lopsided = dataclasses.replace(entry("grant", EUR, [debit(promo, 100), credit(w, 100)], actor="t"),
                                   postings=(debit(promo, 100), credit(w, 99)))
    async with db.acquire() as conn:
        await ledger.post(conn, entry("grant", EUR, [debit(promo, 1), credit(w, 1)], actor="t"))  # accounts exist
        with pytest.raises(asyncpg.CheckViolationError, match="does not balance"):
            async with conn.transaction():
                await ledger._write(conn, [lopsided], {w.id: 99, promo.id: 100}, {})
        assert await ledger.sums_per_currency(conn) == {EUR: 0}
