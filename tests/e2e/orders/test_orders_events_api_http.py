"""The events API (GET /v1/events, GET /v1/events/{id}) and manual webhook redelivery, over HTTP with a
local webhook receiver: what a webhook delivered is fetchable by its event id with the same bytes,
lists page and filter, another tenant's events are 404, a redelivery reaches the receiver again
(once per Idempotency-Key), and events older than 30 days are deleted."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from aiohttp import web
from orders_helpers import LAT, LNG, MENU, SQUARE, Shop, eventually, make_customer, make_shop, ok, place

from fooddispatch.app import create_app
from kernel.clock import ManualClock
from orders.events_web import EVENTS

SOON = 30.0  # seconds: generous, the machine is shared


class Receiver:
    """A merchant's webhook endpoint on a local port: keeps every body and header it gets."""

    def __init__(self) -> None:
        self.got: list[tuple[bytes, dict[str, str]]] = []

    async def hook(self, request: web.Request) -> web.Response:
        self.got.append((await request.read(), dict(request.headers)))
        return web.Response(status=200)

    def bodies_of(self, event_id: str) -> list[bytes]:
        return [body for body, _ in self.got if json.loads(body)["id"] == event_id]


@pytest.fixture
async def receiver(aiohttp_server):
    r = Receiver()
    app = web.Application()
    app.router.add_post("/hook", r.hook)
    server = await aiohttp_server(app)
    r.url = str(server.make_url("/hook"))  # type: ignore[attr-defined]
    return r


B_LINES = [{"item_id": "itm_b_wrap", "quantity": 1}]  # item ids are unique across stores


async def other_shop(client, make_principal) -> Shop:
    """A second tenant with a store of its own, selling `B_LINES`."""
    _, operator = await make_principal("operator")
    tenant = await ok(await client.post("/v1/tenants", json={"name": "Wrap Co"}, headers=operator), 201)
    _, staff = await make_principal("staff", tenant_id=tenant["id"])
    store = await ok(await client.post(f"/v1/tenants/{tenant['id']}/stores", headers=staff, json={
        "name": "Wedding", "lat": LAT, "lng": LNG, "timezone": "Europe/Berlin", "currency": "EUR",
        "tax_rate_bps": 700, "prep_time_default_s": 600}), 201)
    sid = store["id"]
    await ok(await client.put(f"/v1/merchant/stores/{sid}/hours", headers=staff, json={
        "periods": [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]}))
    await ok(await client.put(f"/v1/merchant/stores/{sid}/zones", headers=staff, json={
        "zones": [SQUARE], "max_delivery_m": 8000, "fee_bands": [{"up_to_m": 8000, "fee": 299}]}))
    await ok(await client.put(f"/v1/merchant/stores/{sid}/menu", headers=staff, json={"categories": [
        {"name": "Mains", "id": "cat_b", "items": [{"id": "itm_b_wrap", "name": "Wrap", "price": 900}]}]}))
    return Shop(tenant["id"], sid, staff, operator)


async def events_of(client, headers: dict, count: int, **params) -> list[dict]:
    """The caller's order events (unless `type` says otherwise), once there are `count` of them (the
    consumer records them shortly after)."""
    async def listed() -> list[dict] | None:
        page = await ok(await client.get("/v1/events", headers=headers,
                                         params={"limit": "100", "type": "order.*", **params}))
        return page["items"] if len(page["items"]) >= count else None
    return await eventually(listed, within=SOON)


async def test_a_delivered_webhook_is_fetchable_by_its_event_id_with_the_same_bytes(
        client, make_principal, receiver) -> None:
    shop = await make_shop(client, make_principal)
    await ok(await client.post("/v1/merchant/webhook_endpoints", headers=shop.staff, json={
        "url": receiver.url, "event_types": ["order.placed", "order.accepted"]}), 201)
    _, cust, pm = await make_customer(client, make_principal)
    order = await place(client, cust, pm, shop.store_id)
    await ok(await client.post(f"/v1/orders/{order['id']}/accept", json={}, headers=shop.staff))
    await eventually(lambda: _true(len(receiver.got) >= 2), within=SOON)
    for body, headers in receiver.got:
        event_id = json.loads(body)["id"]
        assert headers["Fooddispatch-Event-Id"] == event_id
        resp = await client.get(f"/v1/events/{event_id}", headers=shop.staff)
        assert resp.status == 200 and resp.content_type == "application/json"
        assert await resp.read() == body  # byte for byte what the webhook carried
    # The list embeds the same bodies.
    listed = await events_of(client, shop.staff, 2)
    assert sorted(json.dumps(e, sort_keys=True) for e in listed) == sorted(
        json.dumps(json.loads(b), sort_keys=True) for b, _ in receiver.got)


async def _true(value: bool) -> bool:
    return value


async def test_events_list_newest_first_filters_and_pages(client, make_principal) -> None:
    shop = await make_shop(client, make_principal)
    _, cust, pm = await make_customer(client, make_principal)
    first = await place(client, cust, pm, shop.store_id, key="one")
    second = await place(client, cust, pm, shop.store_id, key="two")
    await ok(await client.post(f"/v1/orders/{first['id']}/accept", json={}, headers=shop.staff))
    every = await events_of(client, shop.staff, 3)
    assert [e["type"] for e in every] == ["order.accepted", "order.placed", "order.placed"]
    assert [e["data"]["object"]["order_id"] for e in every] == [first["id"], second["id"], first["id"]]
    assert [e["id"] for e in every] == sorted((e["id"] for e in every), reverse=True)
    assert {e["object"] for e in every} == {"event"}
    # type: one, several, a family
    placed = await ok(await client.get("/v1/events", headers=shop.staff, params={"type": "order.placed"}))
    assert [e["id"] for e in placed["items"]] == [e["id"] for e in every[1:]]
    both = await ok(await client.get("/v1/events", headers=shop.staff,
                                     params={"type": "order.accepted,order.placed"}))
    family = await ok(await client.get("/v1/events", headers=shop.staff, params={"type": "order.*"}))
    assert [e["id"] for e in both["items"]] == [e["id"] for e in family["items"]] == [e["id"] for e in every]
    none = await ok(await client.get("/v1/events", headers=shop.staff, params={"type": "payment.*"}))
    assert none["items"] == []  # payments' events are not a merchant's
    # time range, inclusive, on `created`
    created = every[0]["created"]
    assert [e["id"] for e in (await ok(await client.get("/v1/events", headers=shop.staff, params={
        "created[gte]": str(created + 1), "type": "order.*"})))["items"]] == []
    in_range = await ok(await client.get("/v1/events", headers=shop.staff, params={
        "created[gte]": str(every[-1]["created"]), "created[lte]": str(created), "type": "order.*"}))
    assert len(in_range["items"]) == 3
    before = await ok(await client.get("/v1/events", headers=shop.staff, params={
        "created[lte]": str(every[-1]["created"] - 1), "type": "order.*"}))
    assert before["items"] == []
    # pages of one, by cursor, give the same events in the same order
    seen, cursor = [], None
    while True:
        more = {"cursor": cursor} if cursor else {}
        page = await ok(await client.get("/v1/events", headers=shop.staff,
                                         params={"limit": "1", "type": "order.*", **more}))
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in every]
    for bad in ({"cursor": "garbage"}, {"cursor": "ord_01J00000000000000000000000"}):
        resp = await client.get("/v1/events", headers=shop.staff, params=bad)
        assert (resp.status, (await resp.json())["error"]["code"]) == (400, "cursor_invalid"), bad
    for bad in ({"limit": "0"}, {"type": "order.placed;drop"}, {"created[gte]": "yesterday"}, {"colour": "red"}):
        resp = await client.get("/v1/events", headers=shop.staff, params=bad)
        assert resp.status == 422, (bad, resp.status)
        assert (await resp.json())["error"]["code"] == "validation_error"


async def test_another_tenants_event_is_not_found_and_not_listed(client, make_principal) -> None:
    a = await make_shop(client, make_principal)
    b = await other_shop(client, make_principal)
    _, cust, pm = await make_customer(client, make_principal)
    await place(client, cust, pm, a.store_id, key="a")
    await place(client, cust, pm, b.store_id, key="b", lines=B_LINES)
    (event_a,) = await events_of(client, a.staff, 1)
    (event_b,) = await events_of(client, b.staff, 1)
    assert event_a["id"] != event_b["id"]
    resp = await client.get(f"/v1/events/{event_a['id']}", headers=b.staff)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "resource_missing"
    missing = await client.get("/v1/events/evt_01J00000000000000000000000", headers=a.staff)
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "resource_missing"
    named = await client.get("/v1/events", headers=b.staff, params={"tenant_id": a.tenant_id})
    assert named.status == 404 and (await named.json())["error"]["code"] == "resource_missing"
    # Operators see every tenant's, or one tenant's.
    both = await events_of(client, a.operator, 2)
    assert {e["id"] for e in both} == {event_a["id"], event_b["id"]}
    only_a = await ok(await client.get("/v1/events", headers=a.operator, params={"tenant_id": a.tenant_id,
                                                                                       "type": "order.*"}))
    assert [e["id"] for e in only_a["items"]] == [event_a["id"]]
    assert (await ok(await client.get(f"/v1/events/{event_b['id']}", headers=a.operator)))["id"] == event_b["id"]
    # A store-scoped key (a tablet's) does not read the tenant's events.
    key = await ok(await client.post(f"/v1/tenants/{a.tenant_id}/api_keys", headers=a.staff,
                                     json={"name": "tablet", "store_id": a.store_id}), 201)
    refused = await client.get("/v1/events", headers={"X-Api-Key": key["key"]})
    assert refused.status == 403


async def test_redelivery_sends_the_event_again_once_per_idempotency_key(
        client, make_principal, receiver) -> None:
    shop = await make_shop(client, make_principal)
    endpoint = await ok(await client.post("/v1/merchant/webhook_endpoints", headers=shop.staff, json={
        "url": receiver.url, "event_types": ["order.placed"]}), 201)
    _, cust, pm = await make_customer(client, make_principal)
    await place(client, cust, pm, shop.store_id)
    await ok(await client.post(f"/v1/orders/{(await place(client, cust, pm, shop.store_id, key='2'))['id']}/accept",
                               json={}, headers=shop.staff))
    await eventually(lambda: _true(len(receiver.got) >= 2), within=SOON)
    event_id = json.loads(receiver.got[0][0])["id"]
    url = f"/v1/merchant/webhook_endpoints/{endpoint['id']}/deliveries"
    headers = {**shop.staff, "Idempotency-Key": "redeliver-1"}
    first = await client.post(url, json={"event_id": event_id}, headers=headers)
    assert first.status == 201
    delivery = await first.json()
    assert (delivery["event_id"], delivery["event_type"], delivery["status"]) == (event_id, "order.placed", "pending")
    await eventually(lambda: _true(len(receiver.bodies_of(event_id)) == 2), within=SOON)
    again = await client.post(url, json={"event_id": event_id}, headers=headers)
    assert again.status == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == delivery
    a, b = receiver.bodies_of(event_id)
    assert a == b == await (await client.get(f"/v1/events/{event_id}", headers=shop.staff)).read()
    log = await ok(await client.get(url, headers=shop.staff))
    assert [d["event_id"] for d in log["items"]].count(event_id) == 2  # the first delivery and one redelivery
    assert next(d for d in log["items"] if d["id"] == delivery["id"])["status"] == "succeeded"
    # An event the endpoint does not subscribe to may be redelivered too (the merchant asks for it).
    accepted = (await events_of(client, shop.staff, 1, type="order.accepted"))[0]
    await ok(await client.post(url, json={"event_id": accepted["id"]}, headers=shop.staff), 201)
    await eventually(lambda: _true(len(receiver.bodies_of(accepted["id"])) == 1), within=SOON)
    # Another tenant's event, or another tenant's endpoint: 404; a disabled endpoint: 409.
    other = await other_shop(client, make_principal)
    await place(client, cust, pm, other.store_id, key="other", lines=B_LINES)
    (theirs,) = await events_of(client, other.staff, 1)
    for path, who, body in ((url, shop.staff, {"event_id": theirs["id"]}),
                            (url, other.staff, {"event_id": theirs["id"]}),
                            (url, other.staff, {"event_id": 7})):
        resp = await client.post(path, json=body, headers=who)
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "resource_missing", (who, body)
    await ok(await client.delete(f"/v1/merchant/webhook_endpoints/{endpoint['id']}", headers=shop.staff), 204)
    gone = await client.post(url, json={"event_id": event_id}, headers=shop.staff)
    assert gone.status == 404


async def test_redelivery_to_a_disabled_endpoint_is_409(client, db, make_principal, receiver) -> None:
    shop = await make_shop(client, make_principal)
    endpoint = await ok(await client.post("/v1/merchant/webhook_endpoints", headers=shop.staff, json={
        "url": receiver.url, "event_types": ["order.placed"]}), 201)
    _, cust, pm = await make_customer(client, make_principal)
    await place(client, cust, pm, shop.store_id)
    (event,) = await events_of(client, shop.staff, 1)
    async with db.acquire() as conn:  # as the worker leaves it after too many failures
        await conn.execute("UPDATE webhook_endpoints SET enabled = false WHERE id = $1", endpoint["id"])
    resp = await client.post(f"/v1/merchant/webhook_endpoints/{endpoint['id']}/deliveries",
                             json={"event_id": event["id"]}, headers=shop.staff)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "webhook_endpoint_disabled"


async def test_events_are_kept_30_days_by_a_job_under_a_lease(aiohttp_client, settings, db, make_principal) -> None:
    clock = ManualClock(datetime.now(UTC))
    app = create_app(settings, clock=clock, components=("catalog", "payments", "orders"))
    client = await aiohttp_client(app)
    shop = await make_shop(client, make_principal)
    _, cust, pm = await make_customer(client, make_principal)
    await place(client, cust, pm, shop.store_id)
    (event,) = await events_of(client, shop.staff, 1)

    async def leased() -> bool:  # the job runs in one process: it took its lease at start
        async with db.acquire() as conn:
            return bool(await conn.fetchval("SELECT count(*) FROM job_leases WHERE job = 'orders-event-retention'"))
    await eventually(leased, within=SOON)
    clock.advance(29 * 86400)
    assert await app[EVENTS].purge_expired() == 0
    await ok(await client.get(f"/v1/events/{event['id']}", headers=shop.staff))
    clock.advance(2 * 86400)
    assert await app[EVENTS].purge_expired() >= 1  # the order's event and the store's (menu.published)
    resp = await client.get(f"/v1/events/{event['id']}", headers=shop.staff)
    assert resp.status == 404
    assert (await ok(await client.get("/v1/events", headers=shop.staff)))["items"] == []


async def test_a_stores_pause_reopen_menu_and_sold_out_item_reach_its_merchant_only(
        client, make_principal, receiver) -> None:
    shop = await make_shop(client, make_principal)
    other = await other_shop(client, make_principal)
    await ok(await client.post("/v1/merchant/webhook_endpoints", headers=shop.staff, json={
        "url": receiver.url, "event_types": ["store.paused", "store.opened", "menu.published", "item.sold_out"]}),
        201)
    store = f"/v1/merchant/stores/{shop.store_id}"
    await ok(await client.post(f"{store}/pause", headers=shop.staff,
                               json={"until": "2099-01-01T00:00:00Z", "reason": "kitchen flooded"}))
    await ok(await client.post(f"{store}/open", headers=shop.staff))
    await ok(await client.patch(f"{store}/items/itm_fries", headers=shop.staff, json={"availability": "sold_out"}))
    await ok(await client.put(f"{store}/menu", headers=shop.staff, json=MENU))
    await eventually(lambda: _true(len(receiver.got) >= 4), within=SOON)
    by_type = {json.loads(body)["type"]: body for body, _ in receiver.got}
    assert set(by_type) == {"store.paused", "store.opened", "item.sold_out", "menu.published"}
    paused = json.loads(by_type["store.paused"])["data"]["object"]
    assert (paused["store_id"], paused["tenant_id"], paused["reason"]) == (
        shop.store_id, shop.tenant_id, "kitchen flooded")
    assert json.loads(by_type["item.sold_out"])["data"]["object"]["item_id"] == "itm_fries"
    for body in by_type.values():
        event_id = json.loads(body)["id"]
        assert await (await client.get(f"/v1/events/{event_id}", headers=shop.staff)).read() == body
        hidden = await client.get(f"/v1/events/{event_id}", headers=other.staff)
        assert hidden.status == 404
    stores = await events_of(client, shop.staff, 2, type="store.*")
    assert [e["type"] for e in stores] == ["store.opened", "store.paused"]
    assert (await ok(await client.get("/v1/events", headers=other.staff, params={"type": "store.*,item.*"})))[
        "items"] == []
