"""A declined PaymentIntent confirmed again over HTTP, as Stripe allows: `POST /v1/payment_intents/{id}/confirm`
with another `payment_method` is a new authorization at the processor, under a processor idempotency key of its
own (the old attempt's key would only replay the decline), and that key is stable across the retries of the new
attempt, so an outage during it is resolved to its one charge, never two."""

from __future__ import annotations

import pytest

from fooddispatch.components import payments as component
from kernel.http import OPERATOR
from payments import ledger
from payments.web import PAYMENTS
from tests.e2e.orders.orders_helpers import cart, make_customer, make_shop, ok
from tests.e2e.payments.conftest import key_headers

DECLINE = "4000000000000002"
GOOD = "4242424242424242"
CARD_3DS = "4000002500003155"


async def _declined(client, customer: dict, add_card, pay, **extra) -> dict:
    """A PaymentIntent created and confirmed with a card that is declined: 402 naming it."""
    resp = await pay(customer, await add_card(customer, DECLINE), **extra)
    err = (await resp.json())["error"]
    assert resp.status == 402 and (err["code"], err["decline_code"]) == ("card_declined", "generic_decline"), err
    return await ok(await client.get(f"/v1/payment_intents/{err['payment_intent']}", headers=customer))


async def _charges(processor) -> list[tuple[str, str, int]]:
    """Each charge the test-mode processor made: status, currency and amount, in the order made."""
    return [(c.status, c.amount.currency, c.amount.amount) for c in await processor.list_charges()]


async def _settled(processor) -> list[tuple[str, int]]:
    """The processor's settlement lines of today: type and amount."""
    return [(line.type, line.amount.amount) for line in await processor.settlement_report(processor.today())]


async def _ledger_balances(db) -> None:
    async with db.acquire() as conn:
        assert await ledger.sums_per_currency(conn) == {"EUR": 0}
        assert await ledger.balances_match_postings(conn) == []


@pytest.mark.parametrize("capture_method,after_confirm", [("manual", "requires_capture"),
                                                          ("automatic", "succeeded")])
async def test_a_declined_intent_confirmed_with_another_card_is_authorized_on_that_card(
        client, app, db, make_principal, add_card, pay, capture_method, after_confirm) -> None:
    _, customer = await make_principal("customer")
    _, operator = await make_principal(OPERATOR)
    processor = app[PAYMENTS].processor.inner
    intent = await _declined(client, customer, add_card, pay, capture_method=capture_method)
    assert intent["status"] == "requires_payment_method"
    good = await add_card(customer, GOOD)

    confirm = key_headers(customer, "confirm-good-card")
    resp = await client.post(f"/v1/payment_intents/{intent['id']}/confirm", headers=confirm,
                             json={"payment_method": good})
    confirmed = await ok(resp)
    assert (confirmed["status"], confirmed["payment_method"], confirmed["last_payment_error"]) == (
        after_confirm, good, None)
    # The processor tried the new card: one declined charge (the first attempt) and one authorized.
    assert sorted(c[0] for c in (await _charges(processor))) == sorted(
        ["declined", "authorized" if capture_method == "manual" else "captured"])
    assert len(await processor.list_charges()) == 2  # two attempts, two processor keys (a charge each)

    # The same confirm request again (its Idempotency-Key): the stored answer, no third processor call.
    calls = processor.calls
    replay = await client.post(f"/v1/payment_intents/{intent['id']}/confirm", headers=confirm,
                               json={"payment_method": good})
    assert replay.headers.get("Idempotent-Replayed") == "true" and await replay.json() == confirmed
    assert processor.calls == calls and len(await processor.list_charges()) == 2

    if capture_method == "manual":
        captured = await ok(await client.post(f"/v1/payment_intents/{intent['id']}/capture",
                                              headers=key_headers(operator), json={}))
        assert (captured["status"], captured["amount_received"]) == ("succeeded", 2500)
    assert [c[0] for c in (await _charges(processor))] == ["declined", "captured"]
    assert await _settled(processor) == [("capture", 2500)]
    await _ledger_balances(db)


async def test_a_declined_intent_confirmed_again_with_the_same_card_asks_the_processor_again(
        client, app, make_principal, add_card, pay) -> None:
    """Another attempt on the same card is a new authorization too (the bank may say yes this time); the
    processor's test card declines it again, as a second declined charge, not a replay of the first."""
    _, customer = await make_principal("customer")
    processor = app[PAYMENTS].processor.inner
    intent = await _declined(client, customer, add_card, pay)
    resp = await client.post(f"/v1/payment_intents/{intent['id']}/confirm", headers=key_headers(customer),
                             json={"payment_method": intent["payment_method"]})
    assert resp.status == 402 and (await resp.json())["error"]["payment_intent"] == intent["id"]
    assert [c[0] for c in (await _charges(processor))] == ["declined", "declined"]


async def test_a_declined_intent_confirmed_with_a_3d_secure_card_authenticates_that_card(
        client, app, make_principal, add_card, pay) -> None:
    _, customer = await make_principal("customer")
    processor = app[PAYMENTS].processor.inner
    intent = await _declined(client, customer, add_card, pay)
    card_3ds = await add_card(customer, CARD_3DS)
    action = await ok(await client.post(f"/v1/payment_intents/{intent['id']}/confirm",
                                        headers=key_headers(customer), json={"payment_method": card_3ds}))
    assert action["status"] == "requires_action"
    done = await ok(await client.post(f"/v1/payment_intents/{intent['id']}/confirm",
                                      headers=key_headers(customer), json={"authentication": "succeeded"}))
    assert done["status"] == "requires_capture"
    assert [c[0] for c in (await _charges(processor))] == ["declined", "authorized"]


@pytest.mark.parametrize("trouble", ["lose_responses", "outage"])
async def test_an_outage_during_the_second_attempt_resolves_to_its_charge_once(
        manual_resolver, client, app, db, make_principal, add_card, pay, trouble) -> None:
    """`lose_responses`: the processor authorizes the new card but its answer is lost; `outage`: it never
    hears of it. Either way the intent is `processing`, and the resolver asks with the second attempt's key:
    it finds that charge (or places it), not the first attempt's decline, and never a second hold."""
    _, customer = await make_principal("customer")
    _, operator = await make_principal(OPERATOR)
    service = app[PAYMENTS]
    processor = service.processor.inner
    service.processor.backoff = 0.001
    intent = await _declined(client, customer, add_card, pay)
    good = await add_card(customer, GOOD)

    setattr(processor, trouble, True)
    pending = await ok(await client.post(f"/v1/payment_intents/{intent['id']}/confirm",
                                         headers=key_headers(customer), json={"payment_method": good}))
    assert pending["status"] == "processing"
    processor.outage, processor.lose_responses = True, False
    assert await service.resolve_processing() == 0  # still down: stays processing
    processor.outage = False
    service.processor.breaker.cooldown = 0
    assert await service.resolve_processing() == 1
    assert await service.resolve_processing() == 0

    got = await ok(await client.get(f"/v1/payment_intents/{intent['id']}", headers=customer))
    assert (got["status"], got["amount_capturable"], got["last_payment_error"]) == ("requires_capture", 2500, None)
    assert (await processor.authorizations()) == 1
    assert [c[0] for c in (await _charges(processor))] == ["declined", "authorized"]
    async with db.acquire() as conn:
        charge = await conn.fetchval("SELECT processor_ref FROM payment_intents WHERE id = $1", intent["id"])
    assert (await processor.charge(charge)).status == "authorized"

    captured = await ok(await client.post(f"/v1/payment_intents/{intent['id']}/capture",
                                          headers=key_headers(operator), json={}))
    assert captured["amount_received"] == 2500
    assert (await processor.charge(charge)).status == "captured" and len(await _settled(processor)) == 1
    await _ledger_balances(db)


async def test_canceling_a_second_attempt_left_processing_voids_its_charge(
        manual_resolver, client, app, make_principal, add_card, pay) -> None:
    """A cancel of an intent left `processing` asks the processor for the current attempt's charge (the
    first attempt's declined charge is not it) and voids it: no hold stays on the new card."""
    _, customer = await make_principal("customer")
    service = app[PAYMENTS]
    processor = service.processor.inner
    service.processor.backoff = 0.001
    intent = await _declined(client, customer, add_card, pay)
    good = await add_card(customer, GOOD)
    processor.lose_responses = True
    pending = await ok(await client.post(f"/v1/payment_intents/{intent['id']}/confirm",
                                         headers=key_headers(customer), json={"payment_method": good}))
    assert pending["status"] == "processing"
    processor.lose_responses = False
    service.processor.breaker.cooldown = 0
    canceled = await ok(await client.post(f"/v1/payment_intents/{intent['id']}/cancel",
                                          headers=key_headers(customer), json={}))
    assert canceled["status"] == "canceled"
    assert [c[0] for c in (await _charges(processor))] == ["declined", "voided"]


# ------------------------------------------------------------ the checkout flavour


@pytest.fixture
def checkout_app(settings, monkeypatch):
    from fooddispatch.app import create_app

    monkeypatch.setattr(component, "RESOLVE_EVERY_SECONDS", 3600.0)
    return create_app(settings, components=("catalog", "payments", "orders"))


@pytest.fixture
async def checkout_client(aiohttp_client, checkout_app):
    return await aiohttp_client(checkout_app)


async def test_a_declined_checkout_intent_confirmed_with_a_good_card_pays_for_the_order(
        checkout_client, checkout_app, db, make_principal) -> None:
    client = checkout_client
    processor = checkout_app[PAYMENTS].processor.inner
    shop = await make_shop(client, make_principal)
    _, cust, declining = await make_customer(client, make_principal, DECLINE)
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)

    resp = await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_method_id": declining},
                             headers={**cust, "Idempotency-Key": "k1"})
    err = (await resp.json())["error"]
    assert resp.status == 402 and err["code"] == "card_declined", err
    intent_id = err["payment_intent"]

    good = await ok(await client.post("/v1/payment_methods", headers={**cust, "Idempotency-Key": "pm-good"}, json={
        "card": {"number": GOOD, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}))
    confirmed = await ok(await client.post(f"/v1/payment_intents/{intent_id}/confirm",
                                           json={"payment_method": good["id"]},
                                           headers={**cust, "Idempotency-Key": "confirm"}))
    assert (confirmed["status"], confirmed["amount_capturable"]) == ("requires_capture", quote["total"]["amount"])
    assert [c.status for c in await processor.list_charges()] == ["declined", "authorized"]

    order = await ok(await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_intent": intent_id},
                                       headers={**cust, "Idempotency-Key": "k2"}), 201)
    async with db.acquire() as conn:
        row = await conn.fetchrow("SELECT reference, awaiting_order, status FROM payment_intents WHERE id = $1",
                                  intent_id)
        assert await conn.fetchval("SELECT count(*) FROM payment_intents") == 1
    assert (row["reference"], row["awaiting_order"], row["status"]) == (order["id"], False, "requires_capture")
    assert (await processor.authorizations()) == 1
