"""Orders meets the live sockets, over HTTP and websockets as the apps use them: a courier's pick-up and
delivery frames move the order (an impossible step is refused with an error frame naming the order's
state, never acked), and a customer may open the tracking socket the moment checkout answers 201."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from orders_helpers import cart, ok

from fooddispatch.app import create_app

FRIES = [{"item_id": "itm_fries", "quantity": 1}]


@pytest.fixture
def app(settings):
    return create_app(settings, components=("catalog", "payments", "tracking", "orders"))


async def _frame(ws: aiohttp.ClientWebSocketResponse, match, within: float = 10.0) -> dict:
    async with asyncio.timeout(within):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data)
            frame = json.loads(msg.data)
            if match(frame):
                return frame


def _about(action_id: str):
    return lambda f: f.get("id") == action_id


async def _status(client, order_id: str, headers: dict) -> str:
    return (await ok(await client.get(f"/v1/orders/{order_id}", headers=headers)))["status"]


async def _outbox(db, type_: str) -> int:
    async with db.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM outbox WHERE type = $1", type_)


async def test_a_courier_step_moves_the_order_and_an_impossible_one_is_refused_with_its_state(
        client, db, shop_factory, customer_factory, make_principal) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id, lines=FRIES), headers=cust), 201)
    order = await ok(await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_method_id": pm},
                                       headers={**cust, "Idempotency-Key": "s1"}), 201)
    oid = order["id"]
    await ok(await client.post(f"/v1/orders/{oid}/accept", json={}, headers=shop.staff))
    courier, courier_headers = await make_principal("courier")
    await ok(await client.post(f"/v1/orders/{oid}/courier", json={"courier_id": courier.account_id},
                               headers=shop.operator))
    _, stranger_headers = await make_principal("courier")

    async with client.ws_connect("/v1/courier/ws", headers=courier_headers) as ws, \
            client.ws_connect("/v1/courier/ws", headers=stranger_headers) as stranger:
        await ws.send_json({"type": "delivered", "order_id": oid, "proof": {"code": "1234"}, "id": "a1"})
        refused = await _frame(ws, _about("a1"))
        assert (refused["type"], refused["code"], refused["state"]) == ("error", "invalid_transition", "accepted")
        assert await _status(client, oid, cust) == "accepted"

        await stranger.send_json({"type": "picked_up", "order_id": oid, "id": "x1"})
        assert (await _frame(stranger, _about("x1")))["code"] == "resource_missing"  # not this courier's

        for _ in range(2):  # a resent action is acked again and applied once
            await ws.send_json({"type": "picked_up", "order_id": oid, "id": "a2"})
            assert await _frame(ws, _about("a2")) == {"type": "ack", "id": "a2"}
            assert await _status(client, oid, cust) == "picked_up"  # moved when acked, not later
        await ws.send_json({"type": "picked_up", "order_id": oid, "id": "a3"})
        again = await _frame(ws, _about("a3"))
        assert (again["code"], again["state"]) == ("invalid_transition", "picked_up")

        await ws.send_json({"type": "delivered", "order_id": oid, "proof": {"code": "1234"}, "id": "a4"})
        assert await _frame(ws, _about("a4")) == {"type": "ack", "id": "a4"}
    done = await ok(await client.get(f"/v1/orders/{oid}", headers=cust))
    assert done["status"] == "delivered" and done["captured"] == quote["total"]
    assert [h["to_status"] for h in done["history"]] == ["placed", "accepted", "picked_up", "delivered"]
    # Only the steps that happened were recorded (the refused ones left no event behind).
    assert (await _outbox(db, "courier.picked_up"), await _outbox(db, "courier.delivered")) == (1, 1)
    assert (await _outbox(db, "order.picked_up"), await _outbox(db, "order.delivered")) == (1, 1)


async def test_the_tracking_socket_opens_right_after_checkout_for_the_customer_only(
        client, shop_factory, customer_factory, make_principal) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    _, other = await make_principal("customer")
    for i in range(12):
        quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id, lines=FRIES), headers=cust), 201)
        order = await ok(await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_method_id": pm},
                                           headers={**cust, "Idempotency-Key": f"t{i}"}), 201)
        # At once, before the order's event can have reached tracking's projection.
        async with client.ws_connect(f"/v1/orders/{order['id']}/track", headers=cust) as ws:
            first = await _frame(ws, lambda f: f["type"] == "status" and f.get("status") is not None)
            assert (first["order_id"], first["status"]) == (order["id"], "placed")
        if i == 0:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(f"/v1/orders/{order['id']}/track", headers=other)
            assert refused.value.status == 404
