"""Checkout with a card that needs 3-D Secure, over HTTP as a customer's app does it: checkout answers 402
`authentication_required` naming a PaymentIntent that exists, the customer confirms it, and a second checkout
(a new Idempotency-Key) with `payment_intent` places the order on that one hold."""

from __future__ import annotations

import asyncio

from orders_helpers import cart, eventually, ok

from kernel.outbox import write_event
from payments.web import PAYMENTS

CARD_3DS = "4000002500003155"
FRIES_ONLY = [{"item_id": "itm_fries", "quantity": 1}]


async def _authentication_required(client, headers: dict, body: dict, key: str) -> dict:
    resp = await client.post("/v1/orders", json=body, headers={**headers, "Idempotency-Key": key})
    err = (await resp.json())["error"]
    assert resp.status == 402, err
    assert err["code"] == "authentication_required" and err["next_action"]["type"] == "use_stripe_sdk"
    return err


async def _confirm(client, headers: dict, intent_id: str, key: str) -> dict:
    resp = await client.post(f"/v1/payment_intents/{intent_id}/confirm", json={"authentication": "succeeded"},
                             headers={**headers, "Idempotency-Key": key})
    return await ok(resp)


async def test_3d_secure_checkout_confirm_then_checkout_with_the_intent_places_the_order_on_one_hold(
        client, db, shop_factory, customer_factory, make_principal) -> None:
    shop = await shop_factory()
    await ok(await client.put(f"/v1/merchant/stores/{shop.store_id}/stock/itm_fries", json={"count": 5},
                              headers=shop.staff))
    customer_id, cust, pm = await customer_factory(card=CARD_3DS)
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    total = quote["total"]["amount"]

    # 1. Checkout: 402 naming an intent that outlived the checkout's rollback.
    err = await _authentication_required(client, cust, {"quote_id": quote["id"], "payment_method_id": pm}, "a")
    intent_id = err["payment_intent"]
    intent = await ok(await client.get(f"/v1/payment_intents/{intent_id}", headers=cust))
    assert (intent["status"], intent["amount"], intent["customer"]) == ("requires_action", total, customer_id)
    assert intent["next_action"]["type"] == "use_stripe_sdk"
    async with db.acquire() as conn:  # no order and no reservation left by the refused attempt
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0
        fraud = await eventually(lambda: conn.fetchval(
            "SELECT count(*) FROM fraud_decisions WHERE intent_id = $1", intent_id))
        assert fraud == 1
    stock = await ok(await client.get(f"/v1/merchant/stores/{shop.store_id}/stock", headers=shop.staff))
    assert {s["item_id"]: s["count"] for s in stock["items"]}["itm_fries"] == 5
    # The first key's 402 is a stored response: the same key replays it, naming the same intent.
    again = await _authentication_required(client, cust, {"quote_id": quote["id"], "payment_method_id": pm}, "a")
    assert again["payment_intent"] == intent_id
    # Not authenticated yet: the intent cannot pay for an order.
    resp = await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_intent": intent_id},
                             headers={**cust, "Idempotency-Key": "early"})
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "payment_intent_unexpected_state"

    # 2. The customer authenticates: the intent becomes an authorized hold.
    confirmed = await _confirm(client, cust, intent_id, "confirm-a")
    assert (confirmed["status"], confirmed["amount_capturable"]) == ("requires_capture", total)

    # 3. Checkout again, with a new key and the intent: the order is placed on that hold.
    body = {"quote_id": quote["id"], "payment_intent": intent_id}
    order = await ok(await client.post("/v1/orders", json=body, headers={**cust, "Idempotency-Key": "b"}), 201)
    assert order["status"] == "placed" and order["total"]["amount"] == total
    replay = await ok(await client.post("/v1/orders", json=body, headers={**cust, "Idempotency-Key": "b"}), 201)
    assert replay["id"] == order["id"]
    stock = await ok(await client.get(f"/v1/merchant/stores/{shop.store_id}/stock", headers=shop.staff))
    assert {s["item_id"]: s["count"] for s in stock["items"]}["itm_fries"] == 4
    async with db.acquire() as conn:
        row = await conn.fetchrow("SELECT intent_id, payment_method_id FROM orders WHERE id = $1", order["id"])
        assert (row["intent_id"], row["payment_method_id"]) == (intent_id, pm)
        assert await conn.fetchval("SELECT count(*) FROM orders") == 1
        intents = await conn.fetch("SELECT id, reference, status FROM payment_intents WHERE customer_id = $1",
                                   customer_id)
    assert [(i["id"], i["reference"], i["status"]) for i in intents] == [(intent_id, order["id"], "requires_capture")]
    assert (await client.app[PAYMENTS].processor.inner.authorizations()) == 1  # one hold at the processor, not two

    # 4. The hold pays for one order only; another customer's intent is not there for them.
    second = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    resp = await client.post("/v1/orders", json={"quote_id": second["id"], "payment_intent": intent_id},
                             headers={**cust, "Idempotency-Key": "c"})
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "payment_intent_already_used"
    _, stranger, _ = await customer_factory()
    theirs = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=stranger), 201)
    resp = await client.post("/v1/orders", json={"quote_id": theirs["id"], "payment_intent": intent_id},
                             headers={**stranger, "Idempotency-Key": "d"})
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "resource_missing"
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 1

    # 5. Placed to delivered captures that intent.
    oid = order["id"]
    await ok(await client.post(f"/v1/orders/{oid}/accept", json={"prep_time_s": 900}, headers=shop.staff))
    await ok(await client.post(f"/v1/orders/{oid}/ready", headers=shop.staff))
    courier, courier_headers = await make_principal("courier")
    async with db.acquire() as conn:
        await write_event(conn, "dispatch.assigned", {"offer_id": "ofr_1", "courier_id": courier.account_id,
                                                      "order_ids": [oid], "at": "2025-01-01T00:00:00Z"})

    async def has_courier() -> bool:
        return (await ok(await client.get(f"/v1/orders/{oid}", headers=cust)))["courier_id"] == courier.account_id

    await eventually(has_courier)
    async with db.acquire() as conn:
        await write_event(conn, "courier.picked_up", {"courier_id": courier.account_id, "order_id": oid,
                                                      "at": "2025-01-01T00:00:00Z", "proof": None})

    async def picked_up() -> bool:
        return (await ok(await client.get(f"/v1/orders/{oid}", headers=cust)))["status"] == "picked_up"

    await eventually(picked_up)
    done = await ok(await client.post(f"/v1/orders/{oid}/deliver", json={"proof": {"code": "1234"}},
                                      headers=courier_headers))
    assert done["status"] == "delivered" and done["captured"]["amount"] == total
    captured = await ok(await client.get(f"/v1/payment_intents/{intent_id}", headers=cust))
    assert (captured["status"], captured["amount_received"]) == ("succeeded", total)


async def test_an_authorized_intent_for_another_total_is_refused_and_stays_unused(
        client, db, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory(card=CARD_3DS)
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    err = await _authentication_required(client, cust, {"quote_id": quote["id"], "payment_method_id": pm}, "a")
    await _confirm(client, cust, err["payment_intent"], "confirm")
    smaller = await ok(await client.post("/v1/quotes", json=cart(shop.store_id, lines=FRIES_ONLY), headers=cust),
                       201)
    assert smaller["total"]["amount"] != quote["total"]["amount"]
    resp = await client.post("/v1/orders", json={"quote_id": smaller["id"], "payment_intent": err["payment_intent"]},
                             headers={**cust, "Idempotency-Key": "b"})
    body = (await resp.json())["error"]
    assert resp.status == 422, body
    assert (body["code"], body["param"]) == ("payment_intent_amount_mismatch", "payment_intent")
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0
        assert await conn.fetchval("SELECT reference FROM payment_intents WHERE id = $1", err["payment_intent"]) is None
    # The quote it was authorized for still takes it.
    placed = await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_intent": err["payment_intent"]},
                               headers={**cust, "Idempotency-Key": "c"})
    await ok(placed, 201)


async def test_checkout_takes_exactly_one_of_payment_method_id_and_payment_intent(
        client, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    for i, body in enumerate([{"quote_id": quote["id"]},
                              {"quote_id": quote["id"], "payment_method_id": pm, "payment_intent": "pi_x"}]):
        resp = await client.post("/v1/orders", json=body, headers={**cust, "Idempotency-Key": f"k{i}"})
        assert resp.status == 422, await resp.text()
        assert (await resp.json())["error"]["code"] == "validation_error"


async def test_two_checkouts_racing_for_one_authorized_intent_place_one_order(
        client, db, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory(card=CARD_3DS)
    quotes = [await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
              for _ in range(2)]
    err = await _authentication_required(client, cust, {"quote_id": quotes[0]["id"], "payment_method_id": pm}, "a")
    await _confirm(client, cust, err["payment_intent"], "confirm")
    async with db.acquire() as blocker, db.acquire() as watcher:
        # Hold the intent's row so both checkouts reach it before either can take it: the race, made certain.
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT 1 FROM payment_intents WHERE id = $1 FOR UPDATE", err["payment_intent"])
        racing = [asyncio.ensure_future(client.post(
            "/v1/orders", json={"quote_id": q["id"], "payment_intent": err["payment_intent"]},
            headers={**cust, "Idempotency-Key": f"race-{i}"})) for i, q in enumerate(quotes)]

        async def both_waiting() -> bool:
            return await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                " AND pid <> pg_backend_pid()") == 2

        await eventually(both_waiting)
        await tx.rollback()
        responses = await asyncio.gather(*racing)
    assert sorted(r.status for r in responses) == [201, 409]
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM orders WHERE intent_id = $1", err["payment_intent"]) == 1


async def test_a_retry_with_the_first_key_after_its_stored_402_is_gone_takes_the_confirmed_intent(
        client, db, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory(card=CARD_3DS)
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    body = {"quote_id": quote["id"], "payment_method_id": pm}
    err = await _authentication_required(client, cust, body, "a")
    await _confirm(client, cust, err["payment_intent"], "confirm")
    async with db.acquire() as conn:  # the stored 402 expired (24 h): the key reaches checkout again
        await conn.execute("DELETE FROM idempotency_keys")
    order = await ok(await client.post("/v1/orders", json=body, headers={**cust, "Idempotency-Key": "a"}), 201)
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT intent_id FROM orders WHERE id = $1", order["id"]) == err["payment_intent"]
        assert await conn.fetchval("SELECT reference FROM payment_intents WHERE id = $1",
                                   err["payment_intent"]) == order["id"]
        assert await conn.fetchval("SELECT count(*) FROM payment_intents") == 1
