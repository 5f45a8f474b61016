"""The lifecycle paths after checkout, over HTTP: reject, prep time, missing items, tips, rating,
surge in quotes, auto-pause after expiries, webhook auto-disable and the tablet feed."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import WSServerHandshakeError, web
from orders_helpers import LAT, LNG, cart, eventually, make_customer, make_shop, ok, place

from dispatch.live import DispatchKeys, SurgeBoardStore
from dispatch.surge import cell_of
from fooddispatch.app import create_app
from kernel.clock import ManualClock
from orders.web import ORDERS, WEBHOOKS
from orders.webhooks import WebhookPolicy

# The conftest cart: 2 x (burger 1000 + cheese 150) + fries 400 = 2700 food, 299 delivery, 270 service,
# 7 % tax on food = 189, tip 200.
TOTAL = 2700 + 299 + 270 + 189 + 200


async def deliver_by_courier(client, make_principal, oid: str) -> tuple[str, dict]:
    """An operator assigns a courier (dispatch's job otherwise), who picks up and delivers."""
    _, operator = await make_principal("operator")
    courier, headers = await make_principal("courier")
    await ok(await client.post(f"/v1/orders/{oid}/courier", json={"courier_id": courier.account_id},
                               headers=operator))
    await ok(await client.post(f"/v1/orders/{oid}/pickup", json={}, headers=headers))
    done = await ok(await client.post(f"/v1/orders/{oid}/deliver", json={"proof": {"code": "0000"}},
                                      headers=headers))
    assert done["status"] == "delivered"
    return courier.account_id, done


async def balances(db) -> dict[str, int]:
    async with db.acquire() as conn:
        return {r["id"]: abs(r["balance"]) for r in await conn.fetch("SELECT id, balance FROM ledger_accounts")}


async def test_checkout_answers_with_the_order_exactly_as_get_shows_it(
        client, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    placed = await place(client, cust, pm, shop.store_id)
    got = await ok(await client.get(f"/v1/orders/{placed['id']}", headers=cust))
    assert placed == got
    assert [line["name"] for line in placed["lines"]] == ["Burger", "Fries"]
    assert [h["to_status"] for h in placed["history"]] == ["placed"]


async def test_restaurant_rejects_with_a_reason_code_the_hold_is_voided_and_stock_given_back(
        client, db, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    await ok(await client.put(f"/v1/merchant/stores/{shop.store_id}/stock/itm_fries", json={"count": 4},
                              headers=shop.staff))
    _, cust, pm = await customer_factory()
    order = await place(client, cust, pm, shop.store_id)
    url = f"/v1/orders/{order['id']}/reject"
    bad = await client.post(url, json={"reason": "bored"}, headers=shop.staff)
    assert bad.status == 422 and (await bad.json())["error"]["param"] == "reason"
    assert (await client.post(url, json={"reason": "capacity"}, headers=cust)).status == 403
    done = await ok(await client.post(url, json={"reason": "capacity"}, headers=shop.staff))
    assert done["status"] == "rejected" and done["end_reason"] == "capacity"
    assert done["history"][-1]["actor"] == "restaurant" and done["captured"]["amount"] == 0
    assert (await client.post(f"/v1/orders/{order['id']}/accept", json={}, headers=shop.staff)).status == 409
    stock = await ok(await client.get(f"/v1/merchant/stores/{shop.store_id}/stock", headers=shop.staff))
    assert {s["item_id"]: s["count"] for s in stock["items"]}["itm_fries"] == 4
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM payment_intents WHERE reference = $1",
                                   order["id"]) == "canceled"


async def test_prep_time_change_moves_ready_at_and_tells_dispatch_only_while_in_the_kitchen(
        client, db, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    order = await place(client, cust, pm, shop.store_id)
    url = f"/v1/orders/{order['id']}/prep_time"
    early = await client.post(url, json={"prep_time_s": 1200}, headers=shop.staff)
    assert early.status == 409 and (await early.json())["error"]["code"] == "invalid_transition"
    accepted = await ok(await client.post(f"/v1/orders/{order['id']}/accept", json={"prep_time_s": 600},
                                          headers=shop.staff))
    changed = await ok(await client.post(url, json={"prep_time_s": 1200}, headers=shop.staff))
    accepted_at = datetime.fromisoformat(accepted["accepted_at"])
    assert changed["prep_time_s"] == 1200
    assert datetime.fromisoformat(changed["ready_at"]) == accepted_at + timedelta(seconds=1200)
    assert (await client.post(url, json={"prep_time_s": 1200}, headers=cust)).status == 403
    async with db.acquire() as conn:
        payload = await conn.fetchval("SELECT payload::text FROM outbox WHERE type = 'order.prep_time_changed' "
                                      "AND aggregate_id = $1", order["id"])
    assert payload is not None and changed["ready_at"][:19] in payload.replace(" ", "T")


async def test_missing_item_after_acceptance_is_refunded_partly_and_captured_less_at_delivery(
        client, db, shop_factory, customer_factory, make_principal) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    order = await place(client, cust, pm, shop.store_id)
    url = f"/v1/orders/{order['id']}/missing_items"
    assert (await client.post(url, json={"lines": [{"line_no": 2, "quantity": 1}]},
                              headers=shop.staff)).status == 409  # not accepted yet
    await ok(await client.post(f"/v1/orders/{order['id']}/accept", json={}, headers=shop.staff))
    too_many = await client.post(url, json={"lines": [{"line_no": 2, "quantity": 2}]}, headers=shop.staff)
    assert too_many.status == 422 and (await too_many.json())["error"]["param"] == "lines[0].quantity"
    after = await ok(await client.post(url, json={"lines": [{"line_no": 2, "quantity": 1}]}, headers=shop.staff))
    # The fries (400) and the tax they no longer bear: 7 % of 2700 = 189, of 2300 = 161.
    assert after["refunded"]["amount"] == 400 + 28
    assert [line["missing_quantity"] for line in after["lines"]] == [0, 1]
    _, done = await deliver_by_courier(client, make_principal, order["id"])
    assert done["captured"]["amount"] == TOTAL - 428
    async with db.acquire() as conn:
        intent = await conn.fetchrow("SELECT status, amount_captured FROM payment_intents WHERE reference = $1",
                                     order["id"])
    assert intent["status"] == "succeeded" and intent["amount_captured"] == TOTAL - 428
    assert (await balances(db))["tax_payable:EUR"] == 161


async def test_higher_tip_before_delivery_takes_a_top_up_hold_captured_at_delivery(
        client, db, shop_factory, customer_factory, make_principal) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    order = await place(client, cust, pm, shop.store_id)
    oid = order["id"]
    raised = await ok(await client.post(f"/v1/orders/{oid}/tip", json={"tip": 500}, headers=cust))
    assert raised["total"]["amount"] == TOTAL + 300
    assert [f["amount"]["amount"] for f in raised["fees"] if f["kind"] == "tip"] == [500]
    async with db.acquire() as conn:
        top_up = await conn.fetchrow("SELECT status, amount FROM payment_intents WHERE reference = $1",
                                     f"{oid}:tip:1")
    assert top_up["status"] == "requires_capture" and top_up["amount"] == 300
    await ok(await client.post(f"/v1/orders/{oid}/accept", json={}, headers=shop.staff))
    courier_id, done = await deliver_by_courier(client, make_principal, oid)
    assert done["captured"]["amount"] == TOTAL + 300
    async with db.acquire() as conn:
        captured = await conn.fetchval("SELECT sum(amount_captured) FROM payment_intents WHERE reference LIKE $1",
                                       f"{oid}%")
    assert captured == TOTAL + 300
    assert (await balances(db))[f"courier_earnings:{courier_id}:EUR"] == 299 + 500


async def test_after_delivery_a_higher_tip_is_charged_at_once_and_a_lower_one_refused(
        client, db, shop_factory, customer_factory, make_principal) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    order = await place(client, cust, pm, shop.store_id)
    oid = order["id"]
    await ok(await client.post(f"/v1/orders/{oid}/accept", json={}, headers=shop.staff))
    courier_id, done = await deliver_by_courier(client, make_principal, oid)
    assert done["tip_changeable_until"] is not None
    more = await ok(await client.post(f"/v1/orders/{oid}/tip", json={"tip": 450}, headers=cust))
    assert more["captured"]["amount"] == TOTAL + 250 and more["total"]["amount"] == TOTAL + 250
    assert (await balances(db))[f"courier_earnings:{courier_id}:EUR"] == 299 + 450
    lower = await client.post(f"/v1/orders/{oid}/tip", json={"tip": 100}, headers=cust)
    assert lower.status == 409 and (await lower.json())["error"]["code"] == "tip_not_changeable"
    _, stranger = await make_principal("customer")
    assert (await client.post(f"/v1/orders/{oid}/tip", json={"tip": 900}, headers=stranger)).status == 404


async def test_rating_only_a_delivered_order_and_only_once(
        client, shop_factory, customer_factory, make_principal) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    order = await place(client, cust, pm, shop.store_id)
    url = f"/v1/orders/{order['id']}/rating"
    early = await client.post(url, json={"stars": 5}, headers=cust)
    assert early.status == 409
    bad = await client.post(url, json={"stars": 6}, headers=cust)
    assert bad.status == 422 and (await bad.json())["error"]["param"] == "stars"
    await ok(await client.post(f"/v1/orders/{order['id']}/accept", json={}, headers=shop.staff))
    await deliver_by_courier(client, make_principal, order["id"])
    rated = await ok(await client.post(url, json={"stars": 4, "comment": "warm"}, headers=cust))
    assert rated["rating"] == 4
    again = await client.post(url, json={"stars": 1}, headers=cust)
    assert again.status == 409 and (await again.json())["error"]["code"] == "already_rated"
    assert (await ok(await client.get(f"/v1/orders/{order['id']}", headers=cust)))["rating"] == 4


async def test_published_surge_above_one_shows_a_busy_area_line_in_the_quote(
        client, redis, settings, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    calm = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    assert "busy_area" not in [f["kind"] for f in calm["fees"]] and calm["surge_multiplier"] == "1"
    # Dispatch publishes levels per H3 cell for orders; the pickup's cell is surging.
    board = SurgeBoardStore(redis, DispatchKeys(settings.redis_prefix, settings.region))
    await board.publish({cell_of((LAT, LNG)): 1.5}, {}, time.time())
    busy = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    lines = {f["kind"]: f for f in busy["fees"]}
    assert lines["busy_area"]["label"] == "Busy area (x1.50)"
    assert lines["busy_area"]["amount"]["amount"] == busy["busy_area_fee"]["amount"] > 0
    assert busy["surge_multiplier"] == "3/2"
    assert busy["total"]["amount"] == calm["total"]["amount"] + busy["busy_area_fee"]["amount"]
    # Another cell's surge does not touch this store.
    await board.publish({cell_of((48.14, 11.58)): 2.0}, {}, time.time())
    again = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    assert again["total"] == calm["total"]
    # The busy quote keeps its price at checkout although the surge has gone since.
    order = await ok(await client.post("/v1/orders", json={"quote_id": busy["id"], "payment_method_id": pm},
                                       headers={**cust, "Idempotency-Key": "busy"}), 201)
    assert order["total"] == busy["total"]
    assert "busy_area" in [f["kind"] for f in order["fees"]]


async def test_store_is_paused_after_three_orders_in_a_row_expire(
        aiohttp_client, settings, make_principal) -> None:
    clock = ManualClock(datetime.now(UTC))
    app = create_app(settings, clock=clock, components=("catalog", "payments", "orders"))
    client = await aiohttp_client(app)
    shop = await make_shop(client, make_principal, accept_window_s=60)
    _, cust, pm = await make_customer(client, make_principal)
    for i in range(2):
        await place(client, cust, pm, shop.store_id, key=f"exp{i}")
    clock.advance(61)
    assert await app[ORDERS].lifecycle.expire_overdue() == 2
    store = await ok(await client.get(f"/v1/merchant/stores/{shop.store_id}", headers=shop.staff))
    assert store["status"] == "online"  # two in a row: not yet
    await place(client, cust, pm, shop.store_id, key="exp2")
    clock.advance(61)
    assert await app[ORDERS].lifecycle.expire_overdue() == 1
    store = await ok(await client.get(f"/v1/merchant/stores/{shop.store_id}", headers=shop.staff))
    assert store["status"] == "paused"
    closed = await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust)
    assert closed.status == 409 and (await closed.json())["error"]["code"] == "store_unavailable"


async def test_webhook_endpoint_failing_in_a_row_is_disabled_with_a_notice_and_can_be_enabled(
        aiohttp_client, aiohttp_server, settings, db, make_principal) -> None:
    attempts: list[int] = []

    async def broken(request: web.Request) -> web.Response:
        attempts.append(1)
        return web.Response(status=503)

    receiver = web.Application()
    receiver.router.add_post("/hook", broken)
    server = await aiohttp_server(receiver)
    clock = ManualClock(datetime.now(UTC))
    app = create_app(settings, clock=clock, components=("catalog", "payments", "orders"))
    client = await aiohttp_client(app)
    app[WEBHOOKS].policy = WebhookPolicy(disable_after=2)
    shop = await make_shop(client, make_principal)
    endpoint = await ok(await client.post("/v1/merchant/webhook_endpoints", headers=shop.staff, json={
        "url": str(server.make_url("/hook")), "event_types": ["order.placed"]}), 201)
    _, cust, pm = await make_customer(client, make_principal)
    await place(client, cust, pm, shop.store_id)
    await eventually(lambda: asyncio.sleep(0, len(attempts) >= 1))
    clock.advance(31)  # the retry is due within 15-30 s

    async def disabled() -> dict | None:
        listed = await ok(await client.get("/v1/merchant/webhook_endpoints", headers=shop.staff))
        row = next(e for e in listed["items"] if e["id"] == endpoint["id"])
        return row if not row["enabled"] else None

    row = await eventually(disabled)
    assert row["disabled_reason"] == "2 consecutive failed deliveries" and len(attempts) == 2
    async with db.acquire() as conn:
        notice = await conn.fetchval("SELECT payload::text FROM outbox WHERE type = 'webhook_endpoint.disabled'")
    assert notice is not None and endpoint["id"] in notice
    clock.advance(3600)
    await asyncio.sleep(0.8)  # the worker polls every 0.5 s: a disabled endpoint gets nothing
    assert len(attempts) == 2
    enabled = await ok(await client.post(f"/v1/merchant/webhook_endpoints/{endpoint['id']}/enable",
                                         headers=shop.staff))
    assert enabled["enabled"] and enabled["consecutive_failures"] == 0 and enabled["disabled_reason"] is None


async def test_tablet_feed_says_hello_with_active_orders_then_pushes_the_store_order_events(
        client, shop_factory, customer_factory, make_principal) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    first = await place(client, cust, pm, shop.store_id, key="before")
    _, stranger = await make_principal("staff", tenant_id="ten_someone_else")
    async with client.ws_connect(f"/v1/stores/{shop.store_id}/orders/feed", headers=shop.staff) as ws:
        hello = json.loads(await ws.receive_str(timeout=5))  # JSON in text frames (receive_str refuses binary)
        assert hello["type"] == "hello" and hello["store_id"] == shop.store_id
        assert [o["id"] for o in hello["active_orders"]] == [first["id"]]
        second = await place(client, cust, pm, shop.store_id, key="after")
        await ok(await client.post(f"/v1/orders/{second['id']}/accept", json={}, headers=shop.staff))
        seen: list[tuple[str, str, str]] = []
        while ("order.accepted", second["id"], "accepted") not in seen:
            # The first order's event may still be on its way: frames come as events are relayed.
            frame = json.loads(await ws.receive_str(timeout=10))
            assert frame["type"] == "order" and frame["data"]["store_id"] == shop.store_id
            seen.append((frame["event_type"], frame["order_id"], frame["status"]))
        assert seen.index(("order.placed", second["id"], "placed")) < seen.index(
            ("order.accepted", second["id"], "accepted"))
    # Another tenant's staff: 404 before the socket opens (not an empty hello), as for no store at all.
    for store_id in (shop.store_id, "sto_unknown"):
        with pytest.raises(WSServerHandshakeError) as refused:
            await client.ws_connect(f"/v1/stores/{store_id}/orders/feed", headers=stranger)
        assert refused.value.status == 404
