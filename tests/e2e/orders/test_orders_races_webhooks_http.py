"""Concurrency races, accept-window expiry and signed merchant webhooks, over HTTP."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime

import stripe
from aiohttp import web
from orders_helpers import cart, eventually, make_customer, make_shop, ok, place

from fooddispatch.app import create_app
from kernel.clock import ManualClock
from orders.web import ORDERS, WEBHOOKS


async def test_two_tablets_accepting_at_once_one_wins_the_other_gets_409(
        client, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    order = await place(client, cust, pm, shop.store_id)
    url = f"/v1/orders/{order['id']}/accept"
    a, b = await asyncio.gather(client.post(url, json={}, headers=shop.staff),
                                client.post(url, json={}, headers=shop.staff))
    assert sorted([a.status, b.status]) == [200, 409]
    loser = a if a.status == 409 else b
    assert (await loser.json())["error"]["code"] == "invalid_transition"


async def test_cancel_racing_accept_ends_in_one_state_with_matching_money(
        client, db, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    for i in range(4):
        _, cust, pm = await customer_factory()
        order = await place(client, cust, pm, shop.store_id, key=f"race{i}")
        oid = order["id"]
        acc, can = await asyncio.gather(client.post(f"/v1/orders/{oid}/accept", json={}, headers=shop.staff),
                                        client.post(f"/v1/orders/{oid}/cancel", json={}, headers=cust))
        assert can.status == 200  # a customer may cancel before or after acceptance
        final = await ok(await client.get(f"/v1/orders/{oid}", headers=cust))
        assert final["status"] == "cancelled"
        async with db.acquire() as conn:
            intent = await conn.fetchrow(
                "SELECT status, amount_captured FROM payment_intents WHERE reference = $1", oid)
        if acc.status == 200:  # accepted first: half the food is charged, nothing else
            assert final["cancel_fee"]["amount"] == 1350
            assert intent["amount_captured"] == 1350
        else:  # cancelled first: the hold is voided, the accept is 409
            assert acc.status == 409
            assert final["cancel_fee"]["amount"] == 0
            assert intent["status"] == "canceled" and intent["amount_captured"] == 0


async def test_unanswered_order_expires_after_the_accept_window_and_voids_the_hold(
        aiohttp_client, settings, db, make_principal) -> None:
    clock = ManualClock(datetime.now(UTC))
    app = create_app(settings, clock=clock, components=("catalog", "payments", "orders"))
    client = await aiohttp_client(app)
    shop = await make_shop(client, make_principal, accept_window_s=60)
    _, cust, pm = await make_customer(client, make_principal)
    order = await place(client, cust, pm, shop.store_id)
    assert await app[ORDERS].lifecycle.expire_overdue() == 0
    clock.advance(61)
    await app[ORDERS].lifecycle.expire_overdue()
    got = await ok(await client.get(f"/v1/orders/{order['id']}", headers=cust))
    assert got["status"] == "expired"
    assert got["history"][-1]["actor"] == "system"
    late = await client.post(f"/v1/orders/{order['id']}/accept", json={}, headers=shop.staff)
    assert late.status == 409
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM payment_intents WHERE reference = $1",
                                   order["id"]) == "canceled"


async def test_webhook_is_signed_for_stripe_verifiers_and_retried_after_a_failure(
        aiohttp_client, aiohttp_server, settings, make_principal) -> None:
    received: list[dict] = []
    statuses = iter([500, 200, 200, 200, 200])

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        status = next(statuses)
        received.append({"body": body, "sig": request.headers["Fooddispatch-Signature"], "status": status})
        return web.Response(status=status)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    server = await aiohttp_server(receiver)
    clock = ManualClock(datetime.now(UTC))
    app = create_app(settings, clock=clock, components=("catalog", "payments", "orders"))
    client = await aiohttp_client(app)
    shop = await make_shop(client, make_principal)
    endpoint = await ok(await client.post("/v1/merchant/webhook_endpoints", headers=shop.staff, json={
        "url": str(server.make_url("/hook")), "event_types": ["order.placed"]}), 201)
    _, cust, pm = await make_customer(client, make_principal)
    order = await place(client, cust, pm, shop.store_id)

    await eventually(lambda: asyncio.sleep(0, len(received) >= 1))
    assert received[0]["status"] == 500
    clock.advance(31)  # the first retry is due within 15-30 s
    await eventually(lambda: asyncio.sleep(0, len(received) >= 2))
    second = received[1]
    event = stripe.Webhook.construct_event(second["body"].decode(), second["sig"], endpoint["secret"])
    assert event["type"] == "order.placed"
    assert event["data"]["object"]["order_id"] == order["id"]
    assert json.loads(received[0]["body"])["id"] == event["id"]  # same event id on the retry: dedupe by it
    log = await ok(await client.get(f"/v1/merchant/webhook_endpoints/{endpoint['id']}/deliveries", headers=shop.staff))
    assert log["items"][0]["status"] == "succeeded"
    assert [a["status_code"] for a in log["items"][0]["attempts"]] == [500, 200]
    # Rotation: both secrets verify during the overlap.
    rotated = await ok(await client.post(f"/v1/merchant/webhook_endpoints/{endpoint['id']}/rotate_secret",
                                         json={"overlap_seconds": 3600}, headers=shop.staff))
    assert rotated["secret"] != endpoint["secret"]
    assert app[WEBHOOKS] is not None


async def test_as_many_checkouts_in_flight_as_pool_connections_all_complete(
        aiohttp_client, settings, make_principal) -> None:
    # Nothing in checkout may wait for a second pooled connection while holding one: with as many
    # checkouts in flight as connections, they would all wait forever (payments once did).
    app = create_app(replace(settings, db_pool_min=1, db_pool_max=4), components=("catalog", "payments", "orders"))
    client = await aiohttp_client(app)
    shop = await make_shop(client, make_principal)
    buyers = [await make_customer(client, make_principal) for _ in range(4)]
    quotes = [await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=h), 201)
              for _, h, _ in buyers]
    responses = await asyncio.wait_for(asyncio.gather(*(
        client.post("/v1/orders", json={"quote_id": q["id"], "payment_method_id": pm},
                    headers={**h, "Idempotency-Key": "full-pool"})
        for (_, h, pm), q in zip(buyers, quotes, strict=True))), timeout=30)
    assert [r.status for r in responses] == [201] * 4
