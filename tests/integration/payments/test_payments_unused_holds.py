"""The unused-hold sweeper against real servers: an authorized hold that checkout left waiting for an order is
voided once it is old enough, through the same path as any cancel, and never one an order holds or is taking, nor
a manual-capture intent created through the API (it has no reference either, but its integrator captures it)."""

from __future__ import annotations

import asyncio
import json

import pytest

from kernel.money import Money
from payments import WALLET, PaymentDeclined, PaymentRequiresAction, RiskContext, ledger, store
from payments.errors import IntentUnexpectedState
from payments.model import Account, credit, debit, entry
from payments.service import PaymentsService

EUR = "EUR"
HOUR = 3600.0
WEEK = 7 * 24 * HOUR
CARD_3DS = "4000002500003155"
CARD_OK = "4242424242424242"


async def refused_in_checkout(payments: PaymentsService, db, pm: str, refusal: type[Exception], customer: str,
                              key: str, amount: int) -> str:
    """What checkout leaves when the card is refused: the intent its 402 names, after the rollback."""
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        with pytest.raises(refusal) as refused:
            await payments.authorize(conn, customer_id=customer, payment_method_id=pm, amount=Money(amount, EUR),
                                     reference="ord_never", idempotency_key=key)
        await tx.rollback()
    intent_id = refused.value.payment_intent
    assert intent_id is not None
    return intent_id


async def refused_for_3ds(payments: PaymentsService, db, pm: str, customer: str = "cus_1", key: str = "k1",
                          amount: int = 2500) -> str:
    """What checkout leaves when the card asks for 3-D Secure: an intent waiting for the customer."""
    return await refused_in_checkout(payments, db, pm, PaymentRequiresAction, customer, key, amount)


async def confirmed_after_3ds(payments: PaymentsService, db, pm: str, customer: str = "cus_1",
                              key: str = "k1", amount: int = 2500) -> str:
    """...and once the customer authenticated: an authorized hold with no reference."""
    intent_id = await refused_for_3ds(payments, db, pm, customer, key, amount)
    intent = await payments.confirm_intent(intent_id, payment_method_id=None, authentication="succeeded",
                                           risk=RiskContext(), actor=customer)
    assert (intent.status, intent.reference, intent.hold) == ("requires_capture", None, "held")
    return intent.id


async def declined_in_checkout(payments: PaymentsService, db, pm: str, customer: str = "cus_1", key: str = "k1",
                               amount: int = 2500) -> str:
    """What checkout leaves when the payment is declined: a failed intent (no hold) the 402 names."""
    return await refused_in_checkout(payments, db, pm, PaymentDeclined, customer, key, amount)


async def api_hold(payments: PaymentsService, pm: str, customer: str = "cus_1", amount: int = 2500) -> str:
    """A manual-capture intent an integrator created and confirmed through `POST /v1/payment_intents`
    (after 3-D Secure when the card asks for it): an authorized hold with no reference, waiting for them."""
    intent = await payments.create_intent(
        customer_id=customer, amount=Money(amount, EUR), payment_method_id=pm, confirm=True, capture_method="manual",
        metadata={"integrator": "pos"}, idempotency_key=None, risk=RiskContext())
    if intent.status == "requires_action":
        intent = await payments.confirm_intent(intent.id, payment_method_id=None, authentication="succeeded",
                                               risk=RiskContext(), actor=customer)
    assert (intent.status, intent.reference, intent.hold, intent.capture_method) == (
        "requires_capture", None, "held", "manual")
    return intent.id


async def age(db, intent_id: str, seconds: float) -> None:
    async with db.acquire() as conn:
        await conn.execute("UPDATE payment_intents SET updated_at = now() - make_interval(secs => $2) WHERE id = $1",
                           intent_id, seconds)


async def subscribe(db, *event_types: str) -> None:
    async with db.acquire() as conn:
        await store.insert_webhook_endpoint(conn, url="https://hooks.example/payments", secret="whsec_test",
                                            event_types=list(event_types), created_by="test")


async def test_an_old_unused_hold_is_voided_as_abandoned_with_its_event_and_webhook(
        payments, add_card, db, test_processor) -> None:
    await subscribe(db, "payment_intent.canceled")
    intent_id = await confirmed_after_3ds(payments, db, await add_card("cus_1", CARD_3DS))
    await age(db, intent_id, 2 * HOUR)

    assert await payments.release_unused_holds(HOUR) == 1

    async with db.acquire() as conn:
        intent = await store.get_intent(conn, intent_id)
        assert intent is not None
        assert (intent.status, intent.cancellation_reason, intent.hold, intent.amount_capturable) == (
            "canceled", "abandoned", "released", 0)
        [event] = await conn.fetch("SELECT type, payload::text AS payload FROM outbox WHERE aggregate_id = $1 "
                                   "AND type = 'payment.voided'", intent_id)
        assert json.loads(event["payload"])["data"]["reference"] is None
        [hook] = await conn.fetch("SELECT payload::text AS payload FROM payment_webhook_deliveries "
                                  "WHERE event_type = 'payment_intent.canceled'")
        sent = json.loads(hook["payload"])["data"]["object"]
        assert (sent["id"], sent["status"], sent["cancellation_reason"]) == (intent_id, "canceled", "abandoned")
    assert test_processor.book.charges[intent.processor_ref].status == "voided"  # the hold is released at the bank
    assert await payments.release_unused_holds(HOUR) == 0  # done once


async def test_a_young_hold_an_attached_hold_and_unconfirmed_intents_are_left_alone(
        payments, add_card, db, test_processor) -> None:
    pm = await add_card("cus_1", CARD_3DS)
    young = await confirmed_after_3ds(payments, db, pm, key="young")
    await age(db, young, HOUR - 60)
    attached = await confirmed_after_3ds(payments, db, pm, key="attached")
    async with db.acquire() as conn, conn.transaction():
        await payments.attach_authorized(conn, intent_id=attached, customer_id="cus_1", amount=Money(2500, EUR),
                                         reference="ord_1")
    await age(db, attached, 2 * HOUR)
    waiting = await refused_for_3ds(payments, db, pm, key="waiting")  # no hold yet, nothing to release
    await age(db, waiting, 2 * HOUR)
    automatic = await payments.create_intent(
        customer_id="cus_1", amount=Money(900, EUR), payment_method_id=await add_card("cus_1"), confirm=True,
        capture_method="automatic", metadata={}, idempotency_key=None, risk=RiskContext())
    await age(db, automatic.id, 2 * HOUR)

    assert await payments.release_unused_holds(HOUR) == 0

    async with db.acquire() as conn:
        rows = {r["id"]: (r["status"], r["reference"]) for r in await conn.fetch(
            "SELECT id, status, reference FROM payment_intents")}
    assert rows == {young: ("requires_capture", None), attached: ("requires_capture", "ord_1"),
                    waiting: ("requires_action", None), automatic.id: ("succeeded", None)}
    async with db.acquire() as conn:
        marks = {r["id"]: r["awaiting_order"]
                 for r in await conn.fetch("SELECT id, awaiting_order FROM payment_intents")}
    assert marks == {young: True, attached: False, waiting: True, automatic.id: False}
    assert {c.status for c in test_processor.book.charges.values()} == {"authorized", "requires_action", "captured"}


async def grant(db, customer: str, amount: int) -> None:
    async with db.acquire() as conn:
        await ledger.post(conn, entry("grant", EUR, [debit(Account("platform_promotions", EUR), amount),
                                                     credit(Account("customer_wallet", EUR, customer), amount)],
                                      actor="test"))


async def test_an_unused_checkout_wallet_hold_goes_back_to_the_wallet_and_the_books_balance(payments, db) -> None:
    # Checkout's wallet payment is declined (empty wallet); the customer tops up and confirms that intent again.
    declined = await declined_in_checkout(payments, db, WALLET)
    await grant(db, "cus_1", 5000)
    held = await payments.confirm_intent(declined, payment_method_id=WALLET, authentication=None,
                                         risk=RiskContext(), actor="cus_1")
    assert (held.status, held.reference, held.hold, held.awaiting_order) == ("requires_capture", None, "held", True)
    wallet = Account("customer_wallet", EUR, "cus_1")
    async with db.acquire() as conn:
        assert await ledger.balance(conn, wallet) == 3200 - 700  # 5000 less the 2500 held
    await age(db, held.id, 2 * HOUR)

    assert await payments.release_unused_holds(HOUR) == 1

    async with db.acquire() as conn:
        assert await ledger.balance(conn, wallet) == 5000
        assert await ledger.balance(conn, Account("wallet_holds", EUR)) == 0
        kinds = [r["kind"] for r in await conn.fetch("SELECT kind FROM journal_entries WHERE intent_id = $1 "
                                                     "ORDER BY created_at", held.id)]
        assert kinds == ["wallet_hold", "wallet_release"]
        assert await ledger.sums_per_currency(conn) == {EUR: 0}
        assert await ledger.balances_match_postings(conn) == []
        intent = await store.get_intent(conn, held.id)
    assert intent is not None and (intent.status, intent.cancellation_reason) == ("canceled", "abandoned")


async def test_manual_capture_holds_created_through_the_api_are_never_voided_however_old(
        payments, add_card, db, test_processor) -> None:
    """The integrator's hold looks like an unclaimed checkout hold (requires_capture, manual, no reference,
    even confirmed after 3-D Secure), but no checkout made it: it waits for its integrator, not for an order."""
    card = await api_hold(payments, await add_card("cus_1", CARD_OK))
    after_3ds = await api_hold(payments, await add_card("cus_1", CARD_3DS), amount=1200)
    await grant(db, "cus_1", 5000)
    wallet = await api_hold(payments, WALLET, amount=1800)
    checkout = await confirmed_after_3ds(payments, db, await add_card("cus_1", CARD_3DS), key="checkout")
    for intent_id in (card, after_3ds, wallet):
        await age(db, intent_id, WEEK)
    await age(db, checkout, 2 * HOUR)

    assert await payments.release_unused_holds(HOUR) == 1  # the checkout's hold, and only that one
    assert await payments.release_unused_holds(0) == 0  # however short the window

    async with db.acquire() as conn:
        rows = {r["id"]: tuple(r[1:]) for r in await conn.fetch(
            "SELECT id, status, hold, cancellation_reason, awaiting_order FROM payment_intents")}
        assert await ledger.balance(conn, Account("customer_wallet", EUR, "cus_1")) == 3200
        assert await ledger.balance(conn, Account("wallet_holds", EUR)) == 1800
    assert rows == {card: ("requires_capture", "held", None, False),
                    after_3ds: ("requires_capture", "held", None, False),
                    wallet: ("requires_capture", "held", None, False),
                    checkout: ("canceled", "released", "abandoned", True)}
    statuses = {c.status for ref, c in test_processor.book.charges.items()}
    assert statuses == {"authorized", "voided"}
    # Still the integrator's to capture.
    captured = await payments.capture_intent(card, None, actor="cus_1")
    assert (captured.status, captured.amount_captured) == ("succeeded", 2500)


async def test_a_checkout_attaching_the_hold_keeps_it_and_one_that_rolls_back_leaves_it_to_the_sweeper(
        payments, add_card, db, test_processor) -> None:
    pm = await add_card("cus_1", CARD_3DS)
    intent_id = await confirmed_after_3ds(payments, db, pm)
    await age(db, intent_id, 2 * HOUR)
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await payments.attach_authorized(conn, intent_id=intent_id, customer_id="cus_1", amount=Money(2500, EUR),
                                         reference="ord_1")
        # The checkout holds the row: the sweeper does not wait for it, nor void it.
        assert await asyncio.wait_for(payments.release_unused_holds(HOUR), 5) == 0
        await tx.rollback()  # that checkout failed after attaching: the hold pays for nothing again
    assert await payments.release_unused_holds(HOUR) == 1
    async with db.acquire() as conn:
        intent = await store.get_intent(conn, intent_id)
        assert intent is not None and intent.status == "canceled"
        with pytest.raises(IntentUnexpectedState) as refused:  # too late now
            async with conn.transaction():
                await payments.attach_authorized(conn, intent_id=intent_id, customer_id="cus_1",
                                                 amount=Money(2500, EUR), reference="ord_2")
    assert refused.value.status == 409 and refused.value.code == "payment_intent_unexpected_state"
    assert test_processor.book.charges[intent.processor_ref].status == "voided"


async def test_a_checkout_that_reaches_the_hold_while_the_sweeper_voids_it_gets_409(
        payments, add_card, db, test_processor) -> None:
    pm = await add_card("cus_1", CARD_3DS)
    intent_id = await confirmed_after_3ds(payments, db, pm)
    await age(db, intent_id, 2 * HOUR)
    test_processor.latency = 0.3  # the sweeper holds the row while the processor voids the hold
    sweeping = asyncio.ensure_future(payments.release_unused_holds(HOUR))
    async with db.acquire() as watcher:
        async def row_locked() -> bool:
            return bool(await watcher.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'payment_intents' AND l.mode = 'RowShareLock' AND l.granted"))

        for _ in range(200):
            if await row_locked():
                break
            await asyncio.sleep(0.005)
        else:
            pytest.fail("the sweeper never locked the intent")
    async with db.acquire() as conn:
        with pytest.raises(IntentUnexpectedState) as refused:
            async with conn.transaction():
                await payments.attach_authorized(conn, intent_id=intent_id, customer_id="cus_1",
                                                 amount=Money(2500, EUR), reference="ord_1")
        assert await sweeping == 1
        assert (await conn.fetchrow("SELECT status, reference FROM payment_intents WHERE id = $1",
                                    intent_id)) == ("canceled", None)
    assert refused.value.code == "payment_intent_unexpected_state"


async def test_sweeper_and_checkouts_racing_never_leave_an_order_on_a_voided_hold(
        payments, add_card, db, test_processor) -> None:
    pm = await add_card("cus_1", CARD_3DS)
    ids = [await confirmed_after_3ds(payments, db, pm, key=f"r{i}") for i in range(12)]
    for intent_id in ids:
        await age(db, intent_id, 2 * HOUR)
    test_processor.latency = 0.002

    async def checkout(i: int, intent_id: str) -> str | None:
        await asyncio.sleep(0.003 * i)
        async with db.acquire() as conn:
            try:
                async with conn.transaction():
                    await payments.attach_authorized(conn, intent_id=intent_id, customer_id="cus_1",
                                                     amount=Money(2500, EUR), reference=f"ord_{i}")
                    await asyncio.sleep(0.005)  # the rest of the checkout, with the row held
                return f"ord_{i}"
            except IntentUnexpectedState:
                return None

    results = await asyncio.gather(payments.release_unused_holds(HOUR),
                                   *(checkout(i, intent_id) for i, intent_id in enumerate(ids)))
    voided, placed = results[0], results[1:]
    async with db.acquire() as conn:
        rows = {r["id"]: r for r in await conn.fetch("SELECT * FROM payment_intents")}
    for intent_id, order in zip(ids, placed, strict=True):
        row = rows[intent_id]
        charge = test_processor.book.charges[row["processor_ref"]].status
        if order is None:  # the sweeper won: a voided hold, and the checkout was refused
            assert (row["status"], row["reference"], row["cancellation_reason"], charge) == (
                "canceled", None, "abandoned", "voided")
        else:  # the checkout won: its order has a live hold
            assert (row["status"], row["reference"], row["hold"], charge) == (
                "requires_capture", order, "held", "authorized")
    assert voided == sum(order is None for order in placed)
