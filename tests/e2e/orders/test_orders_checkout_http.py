"""Quote, checkout and the full lifecycle over HTTP against the real catalog and payments."""

from __future__ import annotations

from orders_helpers import cart, ok, place

from kernel.outbox import write_event


async def test_happy_path_placed_to_delivered_posts_the_split_to_the_ledger(
        client, db, shop_factory, customer_factory, make_principal) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    # 2 x (1000 + 150) + 400 = 2700 food; fees: 299 delivery, 270 service; tax 7 % on food = 189; tip 200
    assert quote["subtotal"]["amount"] == 2700
    assert quote["tax"]["amount"] == 189
    assert quote["total"]["amount"] == 2700 + 299 + 270 + 189 + 200
    order = await ok(await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_method_id": pm},
                                       headers={**cust, "Idempotency-Key": "happy"}), 201)
    oid = order["id"]
    assert order["status"] == "placed"
    assert order["total"] == quote["total"]
    listed = await ok(await client.get(f"/v1/stores/{shop.store_id}/orders?status=placed", headers=shop.staff))
    assert [o["id"] for o in listed["items"]] == [oid]

    accepted = await ok(await client.post(f"/v1/orders/{oid}/accept", json={"prep_time_s": 900}, headers=shop.staff))
    assert accepted["status"] == "accepted"
    assert accepted["cancel"]["fee"]["amount"] == 1350  # half the food after acceptance
    await ok(await client.post(f"/v1/orders/{oid}/ready", headers=shop.staff))

    courier, courier_headers = await make_principal("courier")
    async with db.acquire() as conn:  # dispatch and tracking speak through the event stream
        await write_event(conn, "dispatch.assigned", {"offer_id": "ofr_1", "courier_id": courier.account_id,
                                                      "order_ids": [oid], "at": "2025-01-01T00:00:00Z"})

    async def assigned() -> bool:
        got = await ok(await client.get(f"/v1/orders/{oid}", headers=cust))
        return got["courier_id"] == courier.account_id

    from orders_helpers import eventually

    await eventually(assigned)
    async with db.acquire() as conn:
        await write_event(conn, "courier.picked_up", {"courier_id": courier.account_id, "order_id": oid,
                                                      "at": "2025-01-01T00:00:00Z", "proof": None})

    async def status_is(expected: str):
        got = await ok(await client.get(f"/v1/orders/{oid}", headers=cust))
        return got if got["status"] == expected else None

    await eventually(lambda: status_is("picked_up"))
    # A courier cannot deliver what another courier carries; the assigned one can.
    _, stranger = await make_principal("courier")
    assert (await client.post(f"/v1/orders/{oid}/deliver", json={}, headers=stranger)).status == 404
    done = await ok(await client.post(f"/v1/orders/{oid}/deliver", json={"proof": {"code": "1234"}},
                                      headers=courier_headers))
    assert done["status"] == "delivered"
    total = quote["total"]["amount"]
    assert done["captured"]["amount"] == total
    assert [h["to_status"] for h in done["history"]] == ["placed", "accepted", "ready", "picked_up", "delivered"]

    async with db.acquire() as conn:
        balances = {r["id"]: r["balance"] for r in await conn.fetch("SELECT id, balance FROM ledger_accounts")}
        intent = await conn.fetchrow("SELECT status, amount_captured FROM payment_intents WHERE reference = $1", oid)
    assert intent["status"] == "succeeded" and intent["amount_captured"] == total
    restaurant = 2700 - 405  # net food minus 15 % commission
    assert abs(balances[f"restaurant_payable:{shop.tenant_id}:EUR"]) == restaurant
    assert abs(balances[f"courier_earnings:{courier.account_id}:EUR"]) == 299 + 200
    assert abs(balances["tax_payable:EUR"]) == 189
    assert abs(balances["platform_revenue:EUR"]) == 270 + 405


async def test_decline_is_402_and_leaves_no_order_and_no_reservation(
        client, db, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    await ok(await client.put(f"/v1/merchant/stores/{shop.store_id}/stock/itm_fries", json={"count": 5},
                              headers=shop.staff))
    _, cust, pm = await customer_factory(card="4000000000000002")
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    resp = await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_method_id": pm},
                             headers={**cust, "Idempotency-Key": "dec"})
    assert resp.status == 402
    err = (await resp.json())["error"]
    assert err["decline_code"]
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0
    stock = await ok(await client.get(f"/v1/merchant/stores/{shop.store_id}/stock", headers=shop.staff))
    assert {s["item_id"]: s["count"] for s in stock["items"]}["itm_fries"] == 5


async def test_second_checkout_with_same_key_returns_same_order_and_one_hold(
        client, db, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    body = {"quote_id": quote["id"], "payment_method_id": pm}
    first = await ok(await client.post("/v1/orders", json=body, headers={**cust, "Idempotency-Key": "same"}), 201)
    again = await client.post("/v1/orders", json=body, headers={**cust, "Idempotency-Key": "same"})
    assert (await ok(again, 201))["id"] == first["id"]
    # The order row is keyed on (customer, key) too: even without the stored response, a retry finds it.
    async with db.acquire() as conn:
        await conn.execute("DELETE FROM idempotency_keys")
    third = await client.post("/v1/orders", json=body, headers={**cust, "Idempotency-Key": "same"})
    assert (await ok(third, 201))["id"] == first["id"]
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM payment_intents") == 1
        assert await conn.fetchval("SELECT count(*) FROM orders") == 1


async def test_changed_price_is_409_with_the_new_quote_and_bad_cart_is_422_with_path(
        client, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    bad = await client.post("/v1/quotes", json=cart(shop.store_id, lines=[
        {"item_id": "itm_burger", "quantity": 1, "options": [{"option_id": "nope"}]}]), headers=cust)
    assert bad.status == 422
    assert (await bad.json())["error"]["param"].startswith("lines[0].options[0]")
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    await ok(await client.patch(f"/v1/merchant/stores/{shop.store_id}/items/itm_fries", json={"price": 450},
                                headers=shop.staff))
    resp = await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_method_id": pm},
                             headers={**cust, "Idempotency-Key": "pc"})
    assert resp.status == 409
    err = (await resp.json())["error"]
    assert err["code"] == "price_changed"
    assert err["quote"]["total"]["amount"] == quote["total"]["amount"] + 50 + 5 + 3  # fries, fee, tax 192.5->192


async def test_customer_cancel_before_acceptance_is_free_and_gives_stock_back(
        client, db, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    await ok(await client.put(f"/v1/merchant/stores/{shop.store_id}/stock/itm_fries", json={"count": 3},
                              headers=shop.staff))
    _, cust, pm = await customer_factory()
    order = await place(client, cust, pm, shop.store_id)
    done = await ok(await client.post(f"/v1/orders/{order['id']}/cancel", json={}, headers=cust))
    assert done["status"] == "cancelled" and done["captured"]["amount"] == 0
    stock = await ok(await client.get(f"/v1/merchant/stores/{shop.store_id}/stock", headers=shop.staff))
    assert {s["item_id"]: s["count"] for s in stock["items"]}["itm_fries"] == 3
    async with db.acquire() as conn:
        status = await conn.fetchval("SELECT status FROM payment_intents WHERE reference = $1", order["id"])
    assert status == "canceled"
