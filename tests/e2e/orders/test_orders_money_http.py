"""An order's money agrees with payments', over HTTP, whichever path moved it: an operator's refund
through `POST /v1/refunds` reaches the order and its merchant webhook, a refund orders makes itself is
counted once when its event comes back, and an order's intent is moved only by the order."""

from __future__ import annotations

from orders_helpers import eventually, ok, place
from orders_money_world import deliver, intents_of, keyed, ledger_refunds, refunds_stored, start_receiver

from kernel.outbox import decode_event
from orders.web import ORDERS
from payments import PaymentRefunded

TOTAL = 2700 + 299 + 270 + 189 + 200  # the conftest cart (see test_orders_lifecycle_http)


async def _delivered(client, make_principal, shop, cust, pm, key: str = "k1") -> dict:
    order = await place(client, cust, pm, shop.store_id, key=key)
    await ok(await client.post(f"/v1/orders/{order['id']}/accept", json={}, headers=shop.staff))
    done = await deliver(client, make_principal, order["id"])
    assert (done["status"], done["captured"]["amount"]) == ("delivered", TOTAL)
    return done


async def test_an_operator_refund_reaches_the_order_and_its_merchant_webhook(
        client, db, aiohttp_server, shop_factory, customer_factory, make_principal) -> None:
    shop = await shop_factory()
    receiver = await start_receiver(aiohttp_server, client, shop, ["order.refunded"])
    _, cust, pm = await customer_factory()
    order = await _delivered(client, make_principal, shop, cust, pm)
    [intent] = await intents_of(db, order["id"])
    _, operator = await make_principal("operator")

    refund = await ok(await client.post("/v1/refunds", headers=keyed(operator),
                                         json={"payment_intent": intent["id"], "amount": 500}))

    async def refunded() -> dict | None:
        got = await ok(await client.get(f"/v1/orders/{order['id']}", headers=shop.operator))
        return got if got["refunded"]["amount"] else None

    got = await eventually(refunded)
    assert got["refunded"]["amount"] == 500 and got["captured"]["amount"] == TOTAL
    hooks = await eventually(lambda: _some(receiver.refunds_of(order["id"])))
    assert [(h["amount"]["amount"], h["refund_id"], h["reason"], h["refunded"]["amount"]) for h in hooks] == [
        (500, refund["id"], "requested_by_customer", 500)]

    # More than what remains refundable is refused and changes nothing anywhere.
    over = await client.post("/v1/refunds", headers=keyed(operator),
                             json={"payment_intent": intent["id"], "amount": TOTAL - 499})
    assert over.status == 422 and (await over.json())["error"]["code"] == "amount_too_large"
    rest = await ok(await client.post("/v1/refunds", headers=keyed(operator),
                                      json={"payment_intent": intent["id"]}))  # the rest, by default
    assert rest["amount"] == TOTAL - 500
    got = await eventually(lambda: _when(client, order["id"], shop.operator, TOTAL))
    pi = await ok(await client.get(f"/v1/payment_intents/{intent['id']}", headers=operator))
    assert (pi["amount_received"], pi["amount_refunded"]) == (TOTAL, TOTAL)
    assert await ledger_refunds(db, [intent["id"]]) == TOTAL
    hooks = await eventually(lambda: _some(receiver.refunds_of(order["id"]), 2))
    assert sorted(h["refund_id"] for h in hooks) == sorted(await refunds_stored(db, [intent["id"]]))
    assert sum(h["amount"]["amount"] for h in hooks) == TOTAL


async def test_missing_items_after_delivery_refund_the_card_once_though_the_event_comes_back(
        client, db, app, shop_factory, customer_factory, make_principal) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    order = await _delivered(client, make_principal, shop, cust, pm)
    oid = order["id"]
    url = f"/v1/orders/{oid}/missing_items"
    late = await client.post(url, json={"lines": [{"line_no": 2, "quantity": 1}]}, headers=shop.staff)
    assert late.status == 409  # the restaurant reports before pickup; after delivery it is an operator's call
    after = await ok(await client.post(url, json={"lines": [{"line_no": 2, "quantity": 1}]}, headers=shop.operator))
    assert after["refunded"]["amount"] == 428  # the fries and their 7 % tax, as before pickup
    [intent] = await intents_of(db, oid)
    assert (intent["amount_captured"], intent["amount_refunded"]) == (TOTAL, 428)
    assert await ledger_refunds(db, [intent["id"]]) == 428

    # The refund's payment.refunded comes back to the orders consumer (twice, even): counted already.
    async with db.acquire() as conn:
        raw = await conn.fetchval("SELECT payload::text FROM outbox WHERE type = 'payment.refunded' "
                                  "AND aggregate_id = $1", intent["id"])
    event = decode_event(raw)
    for _ in range(2):
        async with db.acquire() as conn, conn.transaction():
            await app[ORDERS].lifecycle.money.on_payment_refunded(conn, PaymentRefunded.from_data(event.data))
    got = await ok(await client.get(f"/v1/orders/{oid}", headers=cust))
    assert got["refunded"]["amount"] == 428
    async with db.acquire() as conn:
        announced = await conn.fetch("SELECT payload->'data' AS data FROM outbox WHERE type = 'order.refunded' "
                                     "AND aggregate_id = $1", oid)
    assert len(announced) == 1 and '"refund_id": "re_' in announced[0]["data"]


async def test_an_orders_intent_is_captured_and_voided_only_by_the_order(
        client, db, shop_factory, customer_factory, make_principal) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    order = await place(client, cust, pm, shop.store_id)
    [intent] = await intents_of(db, order["id"])
    _, operator = await make_principal("operator")
    for path, who in (("capture", operator), ("cancel", operator), ("cancel", cust)):
        resp = await client.post(f"/v1/payment_intents/{intent['id']}/{path}", headers=keyed(who), json={})
        body = await resp.json()
        assert resp.status == 409 and body["error"]["code"] == "payment_intent_managed_by_order", body
    await ok(await client.post(f"/v1/orders/{order['id']}/accept", json={}, headers=shop.staff))
    done = await deliver(client, make_principal, order["id"])
    assert done["captured"]["amount"] == TOTAL


async def test_a_refund_of_a_tip_raised_after_delivery_reaches_the_order(
        client, db, shop_factory, customer_factory, make_principal) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    order = await _delivered(client, make_principal, shop, cust, pm)
    more = await ok(await client.post(f"/v1/orders/{order['id']}/tip", json={"tip": 500}, headers=cust))
    assert more["captured"]["amount"] == TOTAL + 300
    _hold, tip = await intents_of(db, order["id"])
    assert tip["reference"] == f"{order['id']}:tip:1" and tip["amount_captured"] == 300
    _, operator = await make_principal("operator")
    await ok(await client.post("/v1/refunds", headers=keyed(operator), json={"payment_intent": tip["id"]}))
    got = await eventually(lambda: _when(client, order["id"], cust, 300))
    assert got["captured"]["amount"] == TOTAL + 300


async def _when(client, oid: str, headers: dict, refunded: int) -> dict | None:
    got = await ok(await client.get(f"/v1/orders/{oid}", headers=headers))
    return got if got["refunded"]["amount"] == refunded else None


async def _some(items: list, at_least: int = 1) -> list | None:
    return items if len(items) >= at_least else None
