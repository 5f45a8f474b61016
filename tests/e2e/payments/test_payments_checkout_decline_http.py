"""A declined checkout over HTTP, as a customer's app sees it: the 402 names a PaymentIntent that outlives the
refused checkout (Stripe keeps failed intents), so the app can show why it failed; no order, no reservation."""

from __future__ import annotations

import pytest

from tests.e2e.orders.orders_helpers import VISA_DECLINE, cart, make_customer, make_shop, ok


@pytest.fixture
def app(settings):
    from fooddispatch.app import create_app

    return create_app(settings, components=("catalog", "payments", "orders"))


async def test_a_declined_checkout_names_an_intent_that_shows_the_decline_and_places_nothing(
        client, db, make_principal) -> None:
    shop = await make_shop(client, make_principal)
    await ok(await client.put(f"/v1/merchant/stores/{shop.store_id}/stock/itm_fries", json={"count": 5},
                              headers=shop.staff))
    customer_id, cust, pm = await make_customer(client, make_principal, VISA_DECLINE)
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    body = {"quote_id": quote["id"], "payment_method_id": pm}

    resp = await client.post("/v1/orders", json=body, headers={**cust, "Idempotency-Key": "k1"})
    err = (await resp.json())["error"]
    assert resp.status == 402, err
    assert (err["code"], err["decline_code"]) == ("card_declined", "generic_decline")
    intent = await ok(await client.get(f"/v1/payment_intents/{err['payment_intent']}", headers=cust))
    assert (intent["status"], intent["customer"], intent["amount"]) == (
        "requires_payment_method", customer_id, quote["total"]["amount"])
    assert intent["last_payment_error"]["decline_code"] == "generic_decline"
    assert intent["last_payment_error"]["code"] == "card_declined"
    assert intent["amount_capturable"] == 0

    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0
        assert await conn.fetchval("SELECT count(*) FROM catalog_reservations") == 0
        assert await conn.fetchval("SELECT reference FROM payment_intents WHERE id = $1", intent["id"]) is None
    stock = await ok(await client.get(f"/v1/merchant/stores/{shop.store_id}/stock", headers=shop.staff))
    assert {s["item_id"]: s["count"] for s in stock["items"]}["itm_fries"] == 5

    # The same key: the same 402, from the stored response and, once that is gone, from the kept intent.
    again = await client.post("/v1/orders", json=body, headers={**cust, "Idempotency-Key": "k1"})
    assert again.status == 402 and (await again.json())["error"] == err
    async with db.acquire() as conn:
        await conn.execute("DELETE FROM idempotency_keys")
    third = await client.post("/v1/orders", json=body, headers={**cust, "Idempotency-Key": "k1"})
    third_err = (await third.json())["error"]
    assert third.status == 402
    assert (third_err["payment_intent"], third_err["decline_code"]) == (err["payment_intent"], "generic_decline")
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM payment_intents") == 1
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0
